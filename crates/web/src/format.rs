//! How values read on a page: times relative to now with the absolute time beside, durations,
//! states in words.

use picket_core::ScanState;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A moment as a page shows it: relative text, and the absolute UTC time for `title` and the
/// `datetime` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    pub relative: String,
    pub absolute: String,
    pub iso: String,
}

/// `at` relative to `now` ("3 min ago", "in 2 days").
pub fn when(at: OffsetDateTime, now: OffsetDateTime) -> When {
    let secs = (now - at).whole_seconds();
    let (future, secs) = (secs < 0, secs.unsigned_abs());
    let amount = match secs {
        0..=44 => None,
        45..=2699 => Some(plural(((secs + 30) / 60).max(1), "min", "min")),
        2700..=129_599 => Some(plural(((secs + 1800) / 3600).max(1), "hour", "hours")),
        _ => Some(plural((secs + 43_200) / 86_400, "day", "days")),
    };
    let relative = match (amount, future) {
        (None, _) => "just now".to_owned(),
        (Some(a), false) => format!("{a} ago"),
        (Some(a), true) => format!("in {a}"),
    };
    let utc = at.to_offset(time::UtcOffset::UTC);
    When {
        relative,
        absolute: format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            utc.year(),
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second()
        ),
        iso: utc.format(&Rfc3339).unwrap_or_default(),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration in seconds as "850 ms", "42 s", "3 min 5 s", "2 h 4 min".
pub fn duration(secs: f64) -> String {
    if secs < 1.0 {
        return format!("{} ms", (secs * 1000.0).round() as i64);
    }
    let s = secs.round() as i64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// How long from `from` to `to` (or to `now` while it runs).
pub fn elapsed(from: OffsetDateTime, to: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    duration((to.unwrap_or(now) - from).as_seconds_f64().max(0.0))
}

/// A scan state in words.
pub fn state_label(state: ScanState) -> &'static str {
    match state {
        ScanState::Queued => "queued",
        ScanState::Claimed => "starting",
        ScanState::Running => "running",
        ScanState::Reporting => "reporting",
        ScanState::Succeeded => "done",
        ScanState::Failed => "failed",
        ScanState::Cancelled => "cancelled",
        ScanState::TimedOut => "timed out",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn relative_times_read_naturally() {
        let now = datetime!(2026-12-01 12:00:00 UTC);
        assert_eq!(when(now, now).relative, "just now");
        assert_eq!(
            when(datetime!(2026-12-01 11:57:00 UTC), now).relative,
            "3 min ago"
        );
        assert_eq!(
            when(datetime!(2026-12-01 11:00:00 UTC), now).relative,
            "1 hour ago"
        );
        assert_eq!(
            when(datetime!(2026-11-28 12:00:00 UTC), now).relative,
            "3 days ago"
        );
        assert_eq!(
            when(datetime!(2026-12-03 12:00:00 UTC), now).relative,
            "in 2 days"
        );
        assert_eq!(when(now, now).absolute, "2026-12-01 12:00:00 UTC");
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(duration(0.25), "250 ms");
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(185.0), "3 min 5 s");
        assert_eq!(duration(7440.0), "2 h 4 min");
    }
}
