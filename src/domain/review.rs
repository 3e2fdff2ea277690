//! The review SLA in working time (`spec/domain.md`, "Manual review and the one-working-day
//! SLA"): when a review is due, when it is at risk, and when each escalation falls due. Pure:
//! the calendar and the times come in as arguments.

use chrono::{DateTime, Duration, Utc};

use super::calendar::WorkingCalendar;

/// The SLA rules of the configuration (`review.sla_working_days`, `review.at_risk_ratio`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlaRules {
    pub working_days: u32,
    pub at_risk_ratio: f64,
}

/// The checkpoints of one review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sla {
    pub at_risk_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

impl SlaRules {
    /// The checkpoints of a review opened at `opened`: the deadline is `working_days` of
    /// working time later, the at-risk moment `at_risk_ratio` of that working time later.
    pub fn checkpoints(&self, calendar: &WorkingCalendar, opened: DateTime<Utc>) -> Sla {
        let local_date = opened.with_timezone(&calendar.timezone()).date_naive();
        let total = calendar.working_day_length(local_date) * self.working_days as i32;
        let ratio = self.at_risk_ratio.clamp(0.0, 1.0);
        let at_risk = Duration::milliseconds((total.num_milliseconds() as f64 * ratio) as i64);
        Sla {
            at_risk_at: calendar.add_working_time(opened, at_risk),
            deadline: calendar.add_working_time(opened, total),
        }
    }
}

/// When escalation `level` (1 = the breach itself) falls due after the previous level fell
/// due at `previous`: one further working day. Level 1 falls due at the deadline.
pub fn next_escalation(calendar: &WorkingCalendar, previous: DateTime<Utc>) -> DateTime<Utc> {
    calendar.add_working_days(previous, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::CalendarYear;

    fn calendar() -> WorkingCalendar {
        let text = include_str!("../../config/calendar/cn-2026.toml");
        WorkingCalendar::new(
            chrono_tz::Asia::Shanghai,
            vec![CalendarYear::parse(text).unwrap()],
        )
        .unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    const ONE_DAY: SlaRules = SlaRules {
        working_days: 1,
        at_risk_ratio: 0.75,
    };

    #[test]
    fn national_day_review_is_at_risk_and_due_after_the_holiday() {
        let sla = ONE_DAY.checkpoints(&calendar(), at("2026-09-30T16:00:00+08:00"));
        assert_eq!(sla.deadline, at("2026-10-08T16:00:00+08:00"));
        // 6 h of working time: 1 h on 30 September, then 5 h from 09:00 on 8 October.
        assert_eq!(sla.at_risk_at, at("2026-10-08T14:00:00+08:00"));
    }

    #[test]
    fn sunday_review_is_due_at_the_end_of_monday() {
        let sla = ONE_DAY.checkpoints(&calendar(), at("2026-11-22T10:00:00+08:00"));
        assert_eq!(sla.deadline, at("2026-11-23T17:00:00+08:00"));
        assert_eq!(sla.at_risk_at, at("2026-11-23T15:00:00+08:00"));
    }

    #[test]
    fn escalations_follow_working_days() {
        let c = calendar();
        // Friday 16:00 -> Monday 16:00 (the weekend does not count).
        let next = next_escalation(&c, at("2026-11-27T16:00:00+08:00"));
        assert_eq!(next, at("2026-11-30T16:00:00+08:00"));
    }

    #[test]
    fn two_days_and_a_zero_ratio() {
        let rules = SlaRules {
            working_days: 2,
            at_risk_ratio: 0.0,
        };
        let sla = rules.checkpoints(&calendar(), at("2026-11-24T10:00:00+08:00"));
        assert_eq!(sla.deadline, at("2026-11-26T10:00:00+08:00"));
        assert_eq!(sla.at_risk_at, at("2026-11-24T10:00:00+08:00"));
    }
}
