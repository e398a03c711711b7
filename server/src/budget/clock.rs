//! The time budgets are measured on, and their periods: the UTC day and the
//! calendar month. Injected, so tests can roll the day over.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const DAY_MS: i64 = 86_400_000;

/// Unix milliseconds now. Cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Default for Clock {
    fn default() -> Self {
        Self(Arc::new(crate::store::now_ms))
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

impl Clock {
    /// A clock that reads `time` (Unix ms), which the caller moves.
    pub fn manual(time: Arc<AtomicI64>) -> Self {
        Self(Arc::new(move || time.load(Ordering::SeqCst)))
    }

    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

/// Start of the UTC day holding `t`.
pub fn day_start(t: i64) -> i64 {
    t.div_euclid(DAY_MS) * DAY_MS
}

/// Start of the next UTC day.
pub fn next_day(t: i64) -> i64 {
    day_start(t) + DAY_MS
}

/// Start of the calendar month (UTC) holding `t`.
pub fn month_start(t: i64) -> i64 {
    let (y, m, _) = civil_from_days(t.div_euclid(DAY_MS));
    days_from_civil(y, m, 1) * DAY_MS
}

/// Start of the next calendar month (UTC).
pub fn next_month(t: i64) -> i64 {
    let (y, m, _) = civil_from_days(t.div_euclid(DAY_MS));
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, 1) * DAY_MS
}

/// `YYYY-MM-DD` of the UTC day holding `t`.
pub fn date(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to (year, month, day); H. Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-01T10:27:00Z
    const T: i64 = 1_796_120_820_000;

    #[test]
    fn days_and_months_are_utc_calendar_periods() {
        assert_eq!(date(T), "2026-12-01");
        assert_eq!(date(day_start(T)), "2026-12-01");
        assert_eq!(date(next_day(T)), "2026-12-02");
        assert_eq!(next_day(T) - day_start(T), DAY_MS);
        assert_eq!(month_start(T), day_start(T));
        assert_eq!(date(next_month(T)), "2027-01-01");
        assert_eq!(date(month_start(day_start(T) - 1)), "2026-11-01");
        assert_eq!(date(next_month(day_start(T) - 1)), "2026-12-01");
        assert_eq!(date(month_start(951_782_400_000)), "2000-02-01");
        assert_eq!(date(next_month(951_782_400_000)), "2000-03-01");
    }
}
