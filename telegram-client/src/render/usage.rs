//! `/usage`: what a user spent and what is left, as Telegram HTML.

use moai_proto::v1::PrincipalUsage;

fn usd(v: f64) -> String {
    format!("${v:.2}")
}

/// Today's and this month's spend against the budgets, then the models.
#[must_use]
pub fn usage_html(u: &PrincipalUsage) -> String {
    let line = |what: &str, spent: f64, limit: Option<f64>| match limit {
        Some(limit) => format!(
            "{what}: {} of {} ({} left)\n",
            usd(spent),
            usd(limit),
            usd((limit - spent).max(0.0))
        ),
        None => format!("{what}: {} (no limit)\n", usd(spent)),
    };
    let mut html = String::from("<b>Your usage</b>\n");
    html.push_str(&line("Today", u.spent_today_usd, u.daily_budget_usd));
    html.push_str(&line("This month", u.spent_month_usd, u.monthly_budget_usd));
    if u.daily_budget_usd.is_some() {
        html.push_str("The daily budget resets at 00:00 UTC.\n");
    }
    if !u.by_model.is_empty() {
        html.push_str("\n<b>This month by model</b>\n");
        for m in &u.by_model {
            html.push_str(&format!(
                "<code>{}</code> · {} · {} calls\n",
                super::html::escape(&m.model),
                usd(m.cost_usd),
                m.calls
            ));
        }
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_shows_what_is_left_and_no_limit_when_unlimited() {
        let html = usage_html(&PrincipalUsage {
            spent_today_usd: 0.2,
            daily_budget_usd: Some(0.5),
            spent_month_usd: 1.25,
            ..Default::default()
        });
        assert!(
            html.contains("Today: $0.20 of $0.50 ($0.30 left)"),
            "{html}"
        );
        assert!(html.contains("This month: $1.25 (no limit)"), "{html}");
        assert!(html.contains("resets at 00:00 UTC"), "{html}");
    }
}
