//! `moai usage`: what was spent today and this month, against which budgets.

use moai_proto::v1::{GetUsageRequest, PrincipalUsage};

use crate::args::UsageArgs;
use crate::errors::{CliError, ExitCode};
use crate::output::Mode;
use crate::render::format::timestamp;
use crate::render::table::Table;
use crate::session::Session;

/// Prints the caller's usage (or another's, or everyone's, for an admin).
///
/// # Errors
/// The server's error (PERMISSION_DENIED for a non-admin asking about others).
pub async fn run(session: &mut Session, args: UsageArgs) -> Result<ExitCode, CliError> {
    let client = session.client().await?;
    let usages = client
        .usage
        .clone()
        .get_usage(GetUsageRequest {
            principal: args.principal.unwrap_or_default(),
            all: args.all,
        })
        .await
        .map_err(client.error("GetUsage"))?
        .into_inner()
        .usages;
    if session.out.mode == Mode::Json {
        for usage in &usages {
            session.out.json(usage)?;
        }
        return Ok(ExitCode::Success);
    }
    let mut lines = Vec::new();
    let mut table = Table::new(&[
        "PRINCIPAL",
        "TODAY",
        "DAILY BUDGET",
        "MONTH",
        "MONTHLY BUDGET",
        "RESETS",
    ]);
    for u in &usages {
        table.row(vec![
            u.principal.clone(),
            usd(u.spent_today_usd),
            budget(u.daily_budget_usd, u.spent_today_usd),
            usd(u.spent_month_usd),
            budget(u.monthly_budget_usd, u.spent_month_usd),
            timestamp(u.resets_at.as_ref()),
        ]);
    }
    lines.extend(table.render(session.out.theme, session.out.width()));
    if let [one] = usages.as_slice() {
        lines.extend(by_model(one, session));
    }
    session.out.lines(&lines)?;
    Ok(ExitCode::Success)
}

/// This month's spend per model, when there is any.
fn by_model(u: &PrincipalUsage, session: &Session) -> Vec<String> {
    if u.by_model.is_empty() {
        return Vec::new();
    }
    let mut table = Table::new(&["MODEL", "CALLS", "COST THIS MONTH"]);
    for m in &u.by_model {
        table.row(vec![m.model.clone(), m.calls.to_string(), usd(m.cost_usd)]);
    }
    let mut lines = vec![String::new()];
    lines.extend(table.render(session.out.theme, session.out.width()));
    lines
}

fn usd(v: f64) -> String {
    format!("${v:.2}")
}

/// `$2.00 ($0.50 left)`, or `unlimited`.
pub fn budget(limit: Option<f64>, spent: f64) -> String {
    match limit {
        Some(limit) => format!("{} ({} left)", usd(limit), usd((limit - spent).max(0.0))),
        None => "unlimited".into(),
    }
}
