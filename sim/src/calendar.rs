//! The simulated world's own business calendar: the dates the custodian settles on, the market
//! closes on, the scheduler fires on, and the reference model expects.
//!
//! Written apart from the platform's `acme_processes::calendar` and calling none of its date
//! arithmetic, so that a mistake there (T+2 counted in calendar days, a holiday missing from its
//! table, the clock change an hour off) moves the platform's dates and not the world's, and the
//! oracles see the difference. Where the platform keeps a table of bank holidays, this derives
//! England and Wales' from their rules (Easter by the computus, the May and August Mondays,
//! substitute days for Christmas, Boxing Day and New Year); where the platform asks the IANA
//! time zone database, this applies the UK's summer-time rule (from 01:00 UTC on the last
//! Sunday of March to 01:00 UTC on the last Sunday of October). It shares with the platform only
//! the `Date` type (a day number since 1970-01-01), never its methods beyond the number.

use acme_processes::calendar::{Date, Ts};
use std::collections::BTreeSet;

const NS_PER_MIN: u64 = 60_000_000_000;
const NS_PER_DAY: u64 = 24 * 60 * NS_PER_MIN;

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_days(y: i32, m: u32) -> u32 {
    const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if m == 2 && is_leap(y) {
        29
    } else {
        DAYS[(m - 1) as usize]
    }
}

/// Day number of a civil date from 1970 on, by counting whole years and months (not the
/// platform's closed formula).
pub fn day_number(y: i32, m: u32, d: u32) -> Date {
    assert!(y >= 1970 && (1..=12).contains(&m) && d >= 1 && d <= month_days(y, m));
    let years: u32 = (1970..y)
        .map(|yy| if is_leap(yy) { 366 } else { 365 })
        .sum();
    let months: u32 = (1..m).map(|mm| month_days(y, mm)).sum();
    Date(years + months + d - 1)
}

/// The civil year of a day number.
pub fn year_of(date: Date) -> i32 {
    let mut y = 1970;
    let mut left = date.0;
    loop {
        let len = if is_leap(y) { 366 } else { 365 };
        if left < len {
            return y;
        }
        left -= len;
        y += 1;
    }
}

/// 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(date: Date) -> u32 {
    (date.0 + 3) % 7
}

fn plus(date: Date, days: i64) -> Date {
    Date((date.0 as i64 + days) as u32)
}

/// Easter Sunday (Meeus/Jones/Butcher Gregorian algorithm).
fn easter(y: i32) -> Date {
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    day_number(y, month as u32, day as u32)
}

/// The last `wd` (0 = Monday) of month `m`.
fn last_weekday(y: i32, m: u32, wd: u32) -> Date {
    let mut d = day_number(y, m, month_days(y, m));
    while weekday(d) != wd {
        d = plus(d, -1);
    }
    d
}

/// England and Wales bank holidays of year `y`, by their rules.
fn holidays_of(y: i32) -> Vec<Date> {
    let mut out = Vec::new();
    let e = easter(y);
    out.push(plus(e, -2)); // Good Friday
    out.push(plus(e, 1)); // Easter Monday
    let mut may = day_number(y, 5, 1);
    while weekday(may) != 0 {
        may = plus(may, 1);
    }
    out.push(may);
    out.push(last_weekday(y, 5, 0));
    out.push(last_weekday(y, 8, 0));
    // Fixed days on a weekend move to the next weekday not already a holiday.
    let mut fixed: Vec<Date> = Vec::new();
    for (m, d) in [(1, 1), (12, 25), (12, 26)] {
        let mut day = day_number(y, m, d);
        while weekday(day) >= 5 || fixed.contains(&day) {
            day = plus(day, 1);
        }
        fixed.push(day);
    }
    out.extend(fixed);
    out
}

/// The world's business days and London clock for a span of years.
#[derive(Clone, Debug)]
pub struct WorldCalendar {
    holidays: BTreeSet<Date>,
    /// Per year covered, summer time's start and end instants (UTC).
    summer: Vec<(i32, Ts, Ts)>,
}

impl WorldCalendar {
    /// England and Wales, `first_year..=last_year`.
    pub fn england_and_wales(first_year: i32, last_year: i32) -> WorldCalendar {
        let years = first_year..=last_year;
        let at_1am_utc = |d: Date| d.0 as u64 * NS_PER_DAY + 60 * NS_PER_MIN;
        WorldCalendar {
            holidays: years.clone().flat_map(holidays_of).collect(),
            summer: years
                .map(|y| {
                    let start = at_1am_utc(last_weekday(y, 3, 6));
                    let end = at_1am_utc(last_weekday(y, 10, 6));
                    (y, start, end)
                })
                .collect(),
        }
    }

    pub fn is_holiday(&self, date: Date) -> bool {
        self.holidays.contains(&date)
    }

    pub fn is_business_day(&self, date: Date) -> bool {
        weekday(date) < 5 && !self.is_holiday(date)
    }

    /// The first business day on or after `date`.
    pub fn on_or_after(&self, date: Date) -> Date {
        let mut d = date;
        while !self.is_business_day(d) {
            d = plus(d, 1);
        }
        d
    }

    /// `n` business days after `date`: T+n.
    pub fn add_business_days(&self, date: Date, n: u32) -> Date {
        let mut d = date;
        let mut left = n;
        while left > 0 {
            d = plus(d, 1);
            if self.is_business_day(d) {
                left -= 1;
            }
        }
        d
    }

    fn in_summer(&self, utc: Ts) -> bool {
        self.summer
            .iter()
            .any(|&(_, start, end)| (start..end).contains(&utc))
    }

    /// The instant London's clocks show `minute` minutes after midnight on `date` (never a
    /// minute in the hour a clock change skips or repeats, 01:00 to 02:00).
    pub fn london(&self, date: Date, minute: u32) -> Ts {
        let wall = date.0 as u64 * NS_PER_DAY + minute as u64 * NS_PER_MIN;
        let as_summer = wall - 60 * NS_PER_MIN;
        if self.in_summer(as_summer) {
            as_summer
        } else {
            wall
        }
    }

    /// London's date at `ts`.
    pub fn london_date(&self, ts: Ts) -> Date {
        let shifted = if self.in_summer(ts) {
            ts + 60 * NS_PER_MIN
        } else {
            ts
        };
        Date((shifted / NS_PER_DAY) as u32)
    }

    /// The dealing date of an instruction intake received at `received`, with the cut-off at
    /// `cutoff_min` London time: the business rule, stated once more for the model.
    pub fn dealing_date(&self, received: Ts, cutoff_min: u32) -> Date {
        let today = self.london_date(received);
        if self.is_business_day(today) && received < self.london(today, cutoff_min) {
            today
        } else {
            self.add_business_days(today, 1)
        }
    }

    /// Whether `year` is covered.
    pub fn covers(&self, year: i32) -> bool {
        self.summer.iter().any(|&(y, _, _)| y == year)
    }
}

/// A start date drawn from `seed`, a weekday of 2026-2030 late enough in the span that a run
/// of `days` business days and its settlement drain stays inside it: so the swarm's seeds
/// between them meet month, quarter and year ends, bank holidays, 29 February 2028 and both
/// clock changes.
pub fn drawn_start(seed: u64, days: u32) -> Date {
    let first = day_number(2026, 1, 1);
    // Business days run five in seven, less the holidays: 1.6 calendar days each is ample.
    let span = (days + crate::world::DRAIN_BUSINESS_DAYS_MAX) as u64 * 8 / 5 + 14;
    let last = day_number(2030, 12, 31).0 as u64 - span;
    let mut rng = crate::rng::SimRng::new(seed, crate::rng::Stream::Calendar);
    Date(rng.between(first.0 as u64, last.max(first.0 as u64)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> Date {
        day_number(y, m, dd)
    }

    #[test]
    fn drawn_starts_spread_over_the_years() {
        let starts: Vec<Date> = (1..=400).map(|s| drawn_start(s, 3)).collect();
        let years: BTreeSet<i32> = starts.iter().map(|&d| year_of(d)).collect();
        assert_eq!(
            years.into_iter().collect::<Vec<_>>(),
            vec![2026, 2027, 2028, 2029, 2030]
        );
        let cal = WorldCalendar::england_and_wales(2026, 2030);
        assert!(starts.iter().all(|&s| {
            let end = cal.add_business_days(cal.on_or_after(s), 3 + 15);
            year_of(end) <= 2030
        }));
        assert_eq!(drawn_start(7, 3), drawn_start(7, 3));
    }

    #[test]
    fn day_numbers_and_years() {
        assert_eq!(d(1970, 1, 1), Date(0));
        assert_eq!(weekday(d(2026, 1, 5)), 0, "a Monday");
        assert_eq!(d(2028, 3, 1).0 - d(2028, 2, 28).0, 2, "29 February 2028");
        assert_eq!(year_of(d(2028, 12, 31)), 2028);
        assert_eq!(year_of(d(2029, 1, 1)), 2029);
    }

    #[test]
    fn holidays_by_rule() {
        let cal = WorldCalendar::england_and_wales(2026, 2030);
        for (y, m, dd) in [
            (2026, 4, 3),
            (2026, 12, 28),
            (2027, 3, 29),
            (2027, 12, 27),
            (2027, 12, 28),
            (2028, 1, 3),
            (2029, 5, 7),
            (2030, 4, 22),
            (2030, 8, 26),
        ] {
            assert!(cal.is_holiday(d(y, m, dd)), "{y}-{m}-{dd}");
        }
        assert!(!cal.is_holiday(d(2026, 12, 26)), "a Saturday, moved");
        assert_eq!(cal.holidays.len(), 40);
        assert_eq!(cal.add_business_days(d(2026, 12, 23), 2), d(2026, 12, 29));
        assert_eq!(cal.add_business_days(d(2027, 12, 24), 1), d(2027, 12, 29));
        assert_eq!(cal.on_or_after(d(2028, 1, 1)), d(2028, 1, 4));
    }

    #[test]
    fn london_clock_changes() {
        let cal = WorldCalendar::england_and_wales(2026, 2026);
        let hour = 60 * NS_PER_MIN;
        let utc = |date: Date, h: u64| date.0 as u64 * NS_PER_DAY + h * hour;
        assert_eq!(cal.london(d(2026, 3, 27), 16 * 60), utc(d(2026, 3, 27), 16));
        assert_eq!(cal.london(d(2026, 3, 30), 16 * 60), utc(d(2026, 3, 30), 15));
        assert_eq!(
            cal.london(d(2026, 10, 23), 16 * 60),
            utc(d(2026, 10, 23), 15)
        );
        assert_eq!(
            cal.london(d(2026, 10, 26), 16 * 60),
            utc(d(2026, 10, 26), 16)
        );
        assert_eq!(cal.london_date(utc(d(2026, 7, 1), 23)), d(2026, 7, 2));
        assert_eq!(
            cal.dealing_date(utc(d(2026, 7, 3), 15), 16 * 60),
            d(2026, 7, 6)
        );
        assert_eq!(
            cal.dealing_date(utc(d(2026, 7, 3), 14), 16 * 60),
            d(2026, 7, 3)
        );
    }
}
