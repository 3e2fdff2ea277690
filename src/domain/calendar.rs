//! The working calendar (工作日历): working hours, weekends, public holidays and the make-up
//! working days (调休上班) on weekends, one year a file (`config/calendar/cn-YYYY.toml`).
//! It answers one question for the review SLA: what moment lies a given amount of working
//! time after another. Pure: the files come in as text, time comes in as arguments.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

/// One year's file, as published by the State Council.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarYear {
    pub year: i32,
    pub working_hours: WorkingHoursText,
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    #[serde(default)]
    pub makeup_working_days: Vec<NaiveDate>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHoursText {
    pub start: String,
    pub end: String,
}

/// A run of days off, both ends included.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Why a calendar file was refused; each names the year and the date or field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar file: {0}")]
    Syntax(String),
    #[error("calendar {year}: working_hours {0:?} is not HH:MM", year = .1)]
    BadTime(String, i32),
    #[error("calendar {0}: working_hours end must be after start")]
    EmptyHours(i32),
    #[error("calendar {year}: {date} lies outside the year", year = .0, date = .1)]
    OutsideYear(i32, NaiveDate),
    #[error("calendar {year}: holiday {name:?} ends before it starts", year = .0, name = .1)]
    Reversed(i32, String),
    #[error("calendar {year}: {date} is in two holidays ({first:?} and {second:?})", year = .0, date = .1, first = .2, second = .3)]
    Overlap(i32, NaiveDate, String, String),
    #[error("calendar {year}: make-up working day {date} is not a Saturday or Sunday", year = .0, date = .1)]
    MakeupOnWeekday(i32, NaiveDate),
    #[error("calendar {year}: make-up working day {date} is also a holiday", year = .0, date = .1)]
    MakeupOnHoliday(i32, NaiveDate),
    #[error("calendar {year}: make-up working day {date} is listed twice", year = .0, date = .1)]
    MakeupTwice(i32, NaiveDate),
    #[error("calendar {0} is given twice")]
    YearTwice(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours {
            start: NaiveTime::from_hms_opt(9, 0, 0).expect("09:00"),
            end: NaiveTime::from_hms_opt(17, 0, 0).expect("17:00"),
        }
    }
}

impl WorkingHours {
    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

/// Working time in one time zone. Years without a file follow the plain rule (Monday to
/// Friday, default working hours): the SLA never stops because a file is missing.
#[derive(Debug, Clone)]
pub struct WorkingCalendar {
    tz: Tz,
    default_hours: WorkingHours,
    hours_by_year: BTreeMap<i32, WorkingHours>,
    days_off: BTreeSet<NaiveDate>,
    makeup_days: BTreeSet<NaiveDate>,
}

fn parse_hhmm(text: &str, year: i32) -> Result<NaiveTime, CalendarError> {
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| CalendarError::BadTime(text.into(), year))
}

fn is_weekend(date: NaiveDate) -> bool {
    date.weekday().number_from_monday() >= 6
}

impl CalendarYear {
    /// Reads one year's file.
    pub fn parse(text: &str) -> Result<CalendarYear, CalendarError> {
        toml::from_str(text).map_err(|e| CalendarError::Syntax(e.message().to_string()))
    }
}

impl WorkingCalendar {
    /// Monday to Friday with the default hours, no holidays: what a year without a file gets.
    pub fn plain(tz: Tz) -> WorkingCalendar {
        WorkingCalendar {
            tz,
            default_hours: WorkingHours::default(),
            hours_by_year: BTreeMap::new(),
            days_off: BTreeSet::new(),
            makeup_days: BTreeSet::new(),
        }
    }

    /// Checks every year and builds the calendar: dates outside their year, holidays that
    /// overlap, make-up days on weekdays or holidays, and a year given twice are refused.
    pub fn new(tz: Tz, years: Vec<CalendarYear>) -> Result<WorkingCalendar, CalendarError> {
        let mut calendar = WorkingCalendar::plain(tz);
        for year in years {
            calendar.add_year(year)?;
        }
        Ok(calendar)
    }

    fn add_year(&mut self, file: CalendarYear) -> Result<(), CalendarError> {
        let y = file.year;
        if self.hours_by_year.contains_key(&y) {
            return Err(CalendarError::YearTwice(y));
        }
        let hours = WorkingHours {
            start: parse_hhmm(&file.working_hours.start, y)?,
            end: parse_hhmm(&file.working_hours.end, y)?,
        };
        if hours.end <= hours.start {
            return Err(CalendarError::EmptyHours(y));
        }
        let in_year = |d: NaiveDate| {
            if d.year() == y {
                Ok(())
            } else {
                Err(CalendarError::OutsideYear(y, d))
            }
        };
        let mut owner: BTreeMap<NaiveDate, &str> = BTreeMap::new();
        for h in &file.holidays {
            in_year(h.from)?;
            in_year(h.to)?;
            if h.to < h.from {
                return Err(CalendarError::Reversed(y, h.name.clone()));
            }
            for day in h.from.iter_days().take_while(|d| *d <= h.to) {
                if let Some(first) = owner.insert(day, &h.name) {
                    return Err(CalendarError::Overlap(y, day, first.into(), h.name.clone()));
                }
            }
        }
        let mut makeup = BTreeSet::new();
        for &d in &file.makeup_working_days {
            in_year(d)?;
            if !is_weekend(d) {
                return Err(CalendarError::MakeupOnWeekday(y, d));
            }
            if owner.contains_key(&d) {
                return Err(CalendarError::MakeupOnHoliday(y, d));
            }
            if !makeup.insert(d) {
                return Err(CalendarError::MakeupTwice(y, d));
            }
        }
        self.hours_by_year.insert(y, hours);
        self.days_off.extend(owner.keys());
        self.makeup_days.extend(makeup);
        Ok(())
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The years that have a file.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.hours_by_year.keys().copied()
    }

    pub fn hours(&self, date: NaiveDate) -> WorkingHours {
        self.hours_by_year
            .get(&date.year())
            .copied()
            .unwrap_or(self.default_hours)
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.makeup_days.contains(&date) {
            return true;
        }
        !is_weekend(date) && !self.days_off.contains(&date)
    }

    fn next_working_day(&self, mut date: NaiveDate) -> NaiveDate {
        loop {
            date = date.succ_opt().expect("dates stay in chrono's range");
            if self.is_working_day(date) {
                return date;
            }
        }
    }

    fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.tz).naive_local()
    }

    fn utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        // China has no daylight saving; `earliest` keeps this total for zones that do.
        self.tz
            .from_local_datetime(&local)
            .earliest()
            .unwrap_or_else(|| self.tz.from_utc_datetime(&local))
            .with_timezone(&Utc)
    }

    /// Is `at` inside working hours of a working day (both ends of the hours included)?
    pub fn is_working_time(&self, at: DateTime<Utc>) -> bool {
        let local = self.local(at);
        let hours = self.hours(local.date());
        self.is_working_day(local.date())
            && local.time() >= hours.start
            && local.time() <= hours.end
    }

    /// The moment `working` of working time after `start`. Time outside working hours does
    /// not count; a start outside them counts from the next opening. The answer is always
    /// working time (a result that uses a day up exactly is that day's closing time).
    pub fn add_working_time(&self, start: DateTime<Utc>, working: Duration) -> DateTime<Utc> {
        let mut remaining = working.max(Duration::zero());
        let local = self.local(start);
        let mut date = local.date();
        let mut time = local.time();
        // Move to the first working moment at or after `start`.
        let hours = self.hours(date);
        if !self.is_working_day(date) || time > hours.end {
            date = self.next_working_day(date);
            time = self.hours(date).start;
        } else if time < hours.start {
            time = hours.start;
        }
        loop {
            let end = self.hours(date).end;
            let left_today = end - time;
            if remaining <= left_today {
                return self.utc(date.and_time(time) + remaining);
            }
            remaining -= left_today;
            date = self.next_working_day(date);
            time = self.hours(date).start;
        }
    }

    /// One working day's worth of working time on `date`'s calendar year (the SLA unit).
    pub fn working_day_length(&self, date: NaiveDate) -> Duration {
        self.hours(date).length()
    }

    /// `days` working days of working time after `start` (the hours of the day the clock
    /// starts on give a day's length).
    pub fn add_working_days(&self, start: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let length = self.working_day_length(self.local(start).date());
        self.add_working_time(start, length * days as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CN_2026: &str = include_str!("../../config/calendar/cn-2026.toml");
    const CN_2025: &str = include_str!("../../config/calendar/cn-2025.toml");

    fn calendar() -> WorkingCalendar {
        WorkingCalendar::new(
            chrono_tz::Asia::Shanghai,
            vec![
                CalendarYear::parse(CN_2025).unwrap(),
                CalendarYear::parse(CN_2026).unwrap(),
            ],
        )
        .unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn national_day_pushes_the_deadline_past_the_holiday() {
        let due = calendar().add_working_days(at("2026-09-30T16:00:00+08:00"), 1);
        assert_eq!(due, at("2026-10-08T16:00:00+08:00"));
    }

    #[test]
    fn sunday_start_is_due_at_the_end_of_monday() {
        let due = calendar().add_working_days(at("2026-11-22T10:00:00+08:00"), 1);
        assert_eq!(due, at("2026-11-23T17:00:00+08:00"));
    }

    #[test]
    fn make_up_saturday_is_a_working_day() {
        let c = calendar();
        // Sat 2026-10-10 is a make-up working day; Fri 2026-10-09 16:00 + 1 day ends there.
        assert!(c.is_working_day(NaiveDate::from_ymd_opt(2026, 10, 10).unwrap()));
        let due = c.add_working_days(at("2026-10-09T16:00:00+08:00"), 1);
        assert_eq!(due, at("2026-10-10T16:00:00+08:00"));
    }

    #[test]
    fn friday_before_a_holiday_is_due_on_the_next_working_day() {
        // Fri 2026-04-03 16:00, Qingming 4–6 April: due Tue 7 April 16:00.
        let due = calendar().add_working_days(at("2026-04-03T16:00:00+08:00"), 1);
        assert_eq!(due, at("2026-04-07T16:00:00+08:00"));
    }

    #[test]
    fn after_hours_start_counts_from_the_next_opening() {
        let due = calendar().add_working_time(at("2026-11-24T20:00:00+08:00"), Duration::hours(2));
        assert_eq!(due, at("2026-11-25T11:00:00+08:00"));
    }

    #[test]
    fn years_without_a_file_follow_the_weekday_rule() {
        let due = calendar().add_working_days(at("2030-01-04T16:00:00+08:00"), 1); // a Friday
        assert_eq!(due, at("2030-01-07T16:00:00+08:00"));
    }

    fn refused(text: &str) -> CalendarError {
        WorkingCalendar::new(
            chrono_tz::Asia::Shanghai,
            vec![CalendarYear::parse(text).unwrap()],
        )
        .unwrap_err()
    }

    #[test]
    fn bad_files_are_refused_naming_the_date() {
        let head = "year = 2026\nworking_hours = { start = \"09:00\", end = \"17:00\" }\n";
        let overlap = format!(
            "{head}holidays = [{{ name = \"A\", from = \"2026-10-01\", to = \"2026-10-03\" }}, {{ name = \"B\", from = \"2026-10-03\", to = \"2026-10-04\" }}]"
        );
        assert!(matches!(refused(&overlap), CalendarError::Overlap(2026, d, _, _) if d.day() == 3));
        let outside = format!("{head}makeup_working_days = [\"2027-01-02\"]");
        assert!(matches!(
            refused(&outside),
            CalendarError::OutsideYear(2026, _)
        ));
        let weekday = format!("{head}makeup_working_days = [\"2026-11-24\"]");
        assert!(matches!(
            refused(&weekday),
            CalendarError::MakeupOnWeekday(2026, _)
        ));
        let on_holiday = format!(
            "{head}holidays = [{{ name = \"A\", from = \"2026-10-03\", to = \"2026-10-04\" }}]\nmakeup_working_days = [\"2026-10-03\"]"
        );
        assert!(matches!(
            refused(&on_holiday),
            CalendarError::MakeupOnHoliday(2026, _)
        ));
        let hours = "year = 2026\nworking_hours = { start = \"17:00\", end = \"09:00\" }\n";
        assert_eq!(refused(hours), CalendarError::EmptyHours(2026));
        let unknown = format!("{head}holydays = []");
        assert!(matches!(
            CalendarYear::parse(&unknown),
            Err(CalendarError::Syntax(_))
        ));
        let twice = WorkingCalendar::new(
            chrono_tz::Asia::Shanghai,
            vec![
                CalendarYear::parse(CN_2026).unwrap(),
                CalendarYear::parse(CN_2026).unwrap(),
            ],
        );
        assert_eq!(twice.unwrap_err(), CalendarError::YearTwice(2026));
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        // 2025-01-01 .. 2027-06-30, minute resolution.
        (1_735_660_800i64..1_814_400_000i64)
            .prop_map(|s| DateTime::from_timestamp(s - s % 60, 0).unwrap())
    }

    fn working() -> impl Strategy<Value = Duration> {
        (0i64..5 * 8 * 60).prop_map(Duration::minutes)
    }

    proptest! {
        #[test]
        fn adding_is_monotonic(a in instant(), b in instant(), d in working()) {
            let c = calendar();
            let (early, late) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(c.add_working_time(early, d) <= c.add_working_time(late, d));
        }

        #[test]
        fn adding_twice_is_adding_the_sum(t in instant(), d1 in working(), d2 in working()) {
            let c = calendar();
            prop_assert_eq!(
                c.add_working_time(c.add_working_time(t, d1), d2),
                c.add_working_time(t, d1 + d2)
            );
        }

        #[test]
        fn never_lands_in_non_working_time(t in instant(), d in working()) {
            let c = calendar();
            let due = c.add_working_time(t, d);
            prop_assert!(c.is_working_time(due), "{t} + {d} = {due}");
            prop_assert!(due >= t);
        }
    }
}
