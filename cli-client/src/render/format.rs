//! Short human forms of durations, token counts, costs and times.

use std::time::Duration;

use moai_proto::v1::{Message, Usage};

/// `850ms`, `2.4s`, `1m05s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// `1,234`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `$0.0012`, or nothing when the provider reported no cost.
pub fn cost(usd: f64) -> Option<String> {
    if usd <= 0.0 || !usd.is_finite() {
        None
    } else if usd < 0.01 {
        Some(format!("${usd:.4}"))
    } else {
        Some(format!("${usd:.2}"))
    }
}

/// `12 → 345 tokens`, or nothing when unknown.
pub fn tokens(usage: &Usage) -> Option<String> {
    (usage.prompt_tokens + usage.completion_tokens > 0).then(|| {
        format!(
            "{} → {} tokens",
            thousands(usage.prompt_tokens),
            thousands(usage.completion_tokens)
        )
    })
}

/// The facts after ✓: `2.4s · 12 → 345 tokens · $0.0012`.
pub fn message_stats(message: &Message) -> String {
    let mut parts = Vec::new();
    if message.latency_ms > 0 {
        parts.push(duration(Duration::from_millis(message.latency_ms)));
    }
    if let Some(usage) = &message.usage {
        parts.extend(tokens(usage));
        parts.extend(cost(usage.cost_usd));
    }
    parts.join(" · ")
}

/// A protobuf timestamp as `2026-11-28 14:05` (UTC).
pub fn timestamp(ts: Option<&prost_types::Timestamp>) -> String {
    let Some(ts) = ts else { return "-".into() };
    let secs = ts.seconds;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The first eight characters of an id, for tables.
pub fn short_id(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(i, _)| &id[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_tokens_and_costs() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(2_449)), "2.4s");
        assert_eq!(duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(cost(0.0), None);
        assert_eq!(cost(0.00123).as_deref(), Some("$0.0012"));
        assert_eq!(cost(1.5).as_deref(), Some("$1.50"));
    }

    #[test]
    fn message_stats_leave_out_what_is_unknown() {
        let message = Message {
            latency_ms: 1500,
            usage: Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 1200,
                cost_usd: 0.0,
            }),
            ..Default::default()
        };
        assert_eq!(message_stats(&message), "1.5s · 10 → 1,200 tokens");
    }

    #[test]
    fn timestamps_are_utc_dates() {
        let ts = prost_types::Timestamp {
            seconds: 1_795_874_700,
            nanos: 0,
        };
        assert_eq!(timestamp(Some(&ts)), "2026-11-28 14:05");
    }
}
