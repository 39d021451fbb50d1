//! The weekly full-scan schedule (domain.md §1).
//!
//! When a project is added it gets an initial scan at once, and a weekly slot drawn uniformly at
//! random within the following 6 days. The slot is stored as weekday + time of day (UTC, to the
//! second) and recurs at that same weekday and time every week. Spreading slots at random keeps a
//! bulk import of thousands of projects from scanning them all at the same moment each week.

use rand::Rng;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime, Time, UtcOffset, Weekday};

/// How far after the initial scan the first weekly scan may fall.
pub const FIRST_SLOT_WINDOW: Duration = Duration::days(6);
const WEEK: Duration = Duration::weeks(1);

/// A project's weekly scan time: a weekday and a time of day, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklySlot {
    pub weekday: Weekday,
    pub time: Time,
}

impl WeeklySlot {
    /// Draws the slot of a project added at `now`: a uniformly random instant in
    /// `(now, now + 6 days]`, to the second. Returns the slot and that first instant.
    pub fn draw(now: OffsetDateTime, rng: &mut impl Rng) -> (WeeklySlot, OffsetDateTime) {
        let window = FIRST_SLOT_WINDOW.whole_seconds();
        let first = truncate_to_second(now.to_offset(UtcOffset::UTC))
            + Duration::seconds(rng.gen_range(1..=window));
        (Self::of(first), first)
    }

    /// The slot an instant falls in.
    pub fn of(at: OffsetDateTime) -> WeeklySlot {
        let at = at.to_offset(UtcOffset::UTC);
        WeeklySlot {
            weekday: at.weekday(),
            time: at.time(),
        }
    }

    /// Weekday as stored: 0 = Monday … 6 = Sunday.
    pub fn weekday_index(self) -> i16 {
        i16::from(self.weekday.number_days_from_monday())
    }

    /// Builds a slot from its stored form; `None` when the weekday index is out of range.
    pub fn from_parts(weekday_index: i16, time: Time) -> Option<WeeklySlot> {
        let weekday = match weekday_index {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            6 => Weekday::Sunday,
            _ => return None,
        };
        Some(WeeklySlot { weekday, time })
    }

    /// The most recent occurrence of the slot at or before `now`.
    pub fn latest_at_or_before(self, now: OffsetDateTime) -> OffsetDateTime {
        let now = now.to_offset(UtcOffset::UTC);
        let days_back = (i64::from(now.weekday().number_days_from_monday())
            - i64::from(self.weekday.number_days_from_monday()))
        .rem_euclid(7);
        let candidate = (now - Duration::days(days_back)).replace_time(self.time);
        if candidate > now {
            candidate - WEEK
        } else {
            candidate
        }
    }

    /// The first occurrence of the slot strictly after `now`.
    pub fn next_after(self, now: OffsetDateTime) -> OffsetDateTime {
        self.latest_at_or_before(now) + WEEK
    }

    /// The weekly scan due at `now` for a project added at `added_at`, if any: the latest occurrence
    /// of the slot, provided it is after the project was added (the initial scan covers the time
    /// before). The returned instant is the idempotency key of that week's scan.
    pub fn due(self, added_at: OffsetDateTime, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let latest = self.latest_at_or_before(now);
        (latest > added_at).then_some(latest)
    }
}

fn truncate_to_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).expect("0 is a valid nanosecond")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use time::macros::datetime;

    #[test]
    fn first_slot_falls_within_six_days() {
        let now = datetime!(2026-11-28 12:34:56.789 UTC);
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let (slot, first) = WeeklySlot::draw(now, &mut rng);
            assert!(first > now && first <= now + Duration::days(6), "{first}");
            assert_eq!(WeeklySlot::of(first), slot);
            assert_eq!(slot.latest_at_or_before(first), first);
        }
    }

    #[test]
    fn draws_are_spread_uniformly_over_the_window() {
        // Six one-day buckets; with 60,000 draws each expects 10,000. A chi-square statistic above
        // 20.5 (5 degrees of freedom, p = 0.001) would mean the draw is biased.
        let now = datetime!(2026-11-28 00:00 UTC);
        let mut rng = StdRng::seed_from_u64(42);
        let mut buckets = [0u32; 6];
        for _ in 0..60_000 {
            let (_, first) = WeeklySlot::draw(now, &mut rng);
            let day = ((first - now).whole_seconds() - 1) / 86_400;
            buckets[day as usize] += 1;
        }
        let chi2: f64 = buckets
            .iter()
            .map(|&n| (f64::from(n) - 10_000.0).powi(2) / 10_000.0)
            .sum();
        assert!(chi2 < 20.5, "buckets {buckets:?}, chi2 {chi2}");
    }

    #[test]
    fn slot_recurs_same_weekday_and_time() {
        let slot = WeeklySlot {
            weekday: Weekday::Wednesday,
            time: time::macros::time!(03:15:00),
        };
        // 2026-11-28 is a Saturday.
        let now = datetime!(2026-11-28 10:00 UTC);
        assert_eq!(
            slot.latest_at_or_before(now),
            datetime!(2026-11-25 03:15 UTC)
        );
        assert_eq!(slot.next_after(now), datetime!(2026-12-02 03:15 UTC));
        // Exactly at the slot counts as due.
        let at = datetime!(2026-12-02 03:15 UTC);
        assert_eq!(slot.latest_at_or_before(at), at);
        // Same weekday, earlier in the day: last week's occurrence.
        let early = datetime!(2026-12-02 03:14:59 UTC);
        assert_eq!(
            slot.latest_at_or_before(early),
            datetime!(2026-11-25 03:15 UTC)
        );
    }

    #[test]
    fn nothing_is_due_before_the_first_slot() {
        let added = datetime!(2026-11-28 10:00 UTC);
        let slot = WeeklySlot {
            weekday: Weekday::Monday,
            time: time::macros::time!(09:00),
        };
        assert_eq!(slot.due(added, datetime!(2026-11-29 10:00 UTC)), None);
        assert_eq!(
            slot.due(added, datetime!(2026-11-30 09:00 UTC)),
            Some(datetime!(2026-11-30 09:00 UTC))
        );
        // A week later the key moves on by a week, so each week gets its own scan.
        assert_eq!(
            slot.due(added, datetime!(2026-12-08 00:00 UTC)),
            Some(datetime!(2026-12-07 09:00 UTC))
        );
    }

    #[test]
    fn stored_form_round_trips() {
        for i in 0..7 {
            let slot = WeeklySlot::from_parts(i, Time::MIDNIGHT).unwrap();
            assert_eq!(slot.weekday_index(), i);
        }
        assert!(WeeklySlot::from_parts(7, Time::MIDNIGHT).is_none());
    }
}
