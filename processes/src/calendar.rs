//! Business time: dates, dealing days, the daily schedule in London time, and bank holidays.
//!
//! Time is nanoseconds since the Unix epoch in UTC ([`Ts`]), as in TigerBeetle. A [`Date`] is a
//! day number since 1970-01-01. A business (dealing and settlement) day is a weekday that is not
//! an England and Wales bank holiday ([`HOLIDAYS`], versioned config). The daily schedule is
//! published in Europe/London wall-clock time ([`Schedule`]); [`london`] turns it into an instant
//! through the IANA time zone database compiled into the binary (`jiff`'s bundled copy, never
//! the system's), so a run gives the same instants on every machine. The schedule's times lie
//! between 07:00 and 23:30, never in the hour a clock change skips or repeats.

use serde::{Deserialize, Serialize};

/// Nanoseconds since the Unix epoch (UTC).
pub type Ts = u64;

pub const NS_PER_SEC: u64 = 1_000_000_000;
pub const NS_PER_MIN: u64 = 60 * NS_PER_SEC;
pub const NS_PER_HOUR: u64 = 60 * NS_PER_MIN;
pub const NS_PER_DAY: u64 = 24 * NS_PER_HOUR;

/// A calendar day, counted from 1970-01-01 (day 0, a Thursday).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Date(pub u32);

impl Date {
    pub fn of(ts: Ts) -> Date {
        Date((ts / NS_PER_DAY) as u32)
    }

    /// The instant `minute_of_day` minutes after midnight of this date.
    pub fn at_minute(self, minute_of_day: u32) -> Ts {
        assert!(minute_of_day < 24 * 60);
        self.0 as u64 * NS_PER_DAY + minute_of_day as u64 * NS_PER_MIN
    }

    /// 0 = Monday ... 6 = Sunday.
    pub fn weekday(self) -> u32 {
        (self.0 + 3) % 7
    }

    pub fn is_business_day(self) -> bool {
        self.weekday() < 5 && !is_bank_holiday(self)
    }

    pub fn next_day(self) -> Date {
        Date(self.0 + 1)
    }

    /// The first business day on or after this date.
    pub fn business_on_or_after(self) -> Date {
        let mut d = self;
        while !d.is_business_day() {
            d = d.next_day();
        }
        d
    }

    /// `n` business days after this date (which need not be one itself).
    pub fn add_business_days(self, n: u32) -> Date {
        let mut d = self;
        for _ in 0..n {
            d = d.next_day().business_on_or_after();
        }
        d
    }

    /// Civil date (year, month, day), proleptic Gregorian.
    pub fn ymd(self) -> (i32, u32, u32) {
        // Howard Hinnant's days-to-civil algorithm.
        let z = self.0 as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = (yoe + era * 400 + if m <= 2 { 1 } else { 0 }) as i32;
        (y, m, d)
    }

    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        if !(1..=12).contains(&m) || d == 0 || d > 31 || y < 1970 {
            return None;
        }
        let date = Date(u32::try_from(days_from_civil(y, m, d)).ok()?);
        (date.ymd() == (y, m, d)).then_some(date)
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days-from-civil), for valid dates
/// from 1970 on; `const` so that the holiday table is built at compile time.
const fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y2 = if m <= 2 { y - 1 } else { y } as i64;
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Version of [`HOLIDAYS`]: bumped whenever a date is added, moved or removed (a new year, a
/// one-off holiday proclaimed), so a change of the dealing calendar is visible in a release.
pub const HOLIDAYS_VERSION: &str = "ew-2026-2030.1";

/// First and last year [`HOLIDAYS`] covers. Outside them only weekends are closed: a run or a
/// deployment past 2030 needs the table extended first.
pub const HOLIDAYS_YEARS: (i32, i32) = (2026, 2030);

/// England and Wales bank holidays 2026-2030 (Banking and Financial Dealings Act 1971 and the
/// royal proclamations), substitute days included: when Christmas, Boxing Day or New Year's Day
/// falls on a weekend the holiday is the next weekday not already one (so 28 December 2026,
/// 27 and 28 December 2027, 3 January 2028). 2026 and 2027 as the UK government publishes them;
/// 2028-2030 by the same statutory rules, the usual Easter and May dates (no one-off holiday is
/// known for them): check each year against its proclamation and bump [`HOLIDAYS_VERSION`].
const HOLIDAY_YMD: [(i32, u32, u32); 40] = [
    (2026, 1, 1),   // New Year's Day
    (2026, 4, 3),   // Good Friday
    (2026, 4, 6),   // Easter Monday
    (2026, 5, 4),   // Early May bank holiday
    (2026, 5, 25),  // Spring bank holiday
    (2026, 8, 31),  // Summer bank holiday
    (2026, 12, 25), // Christmas Day
    (2026, 12, 28), // Boxing Day (substitute: 26th is a Saturday)
    (2027, 1, 1),   // New Year's Day
    (2027, 3, 26),  // Good Friday
    (2027, 3, 29),  // Easter Monday
    (2027, 5, 3),   // Early May bank holiday
    (2027, 5, 31),  // Spring bank holiday
    (2027, 8, 30),  // Summer bank holiday
    (2027, 12, 27), // Christmas Day (substitute: 25th is a Saturday)
    (2027, 12, 28), // Boxing Day (substitute: 26th is a Sunday)
    (2028, 1, 3),   // New Year's Day (substitute: 1st is a Saturday)
    (2028, 4, 14),  // Good Friday
    (2028, 4, 17),  // Easter Monday
    (2028, 5, 1),   // Early May bank holiday
    (2028, 5, 29),  // Spring bank holiday
    (2028, 8, 28),  // Summer bank holiday
    (2028, 12, 25), // Christmas Day
    (2028, 12, 26), // Boxing Day
    (2029, 1, 1),   // New Year's Day
    (2029, 3, 30),  // Good Friday
    (2029, 4, 2),   // Easter Monday
    (2029, 5, 7),   // Early May bank holiday
    (2029, 5, 28),  // Spring bank holiday
    (2029, 8, 27),  // Summer bank holiday
    (2029, 12, 25), // Christmas Day
    (2029, 12, 26), // Boxing Day
    (2030, 1, 1),   // New Year's Day
    (2030, 4, 19),  // Good Friday
    (2030, 4, 22),  // Easter Monday
    (2030, 5, 6),   // Early May bank holiday
    (2030, 5, 27),  // Spring bank holiday
    (2030, 8, 26),  // Summer bank holiday
    (2030, 12, 25), // Christmas Day
    (2030, 12, 26), // Boxing Day
];

/// [`HOLIDAY_YMD`] as dates, ascending (checked by a test), for a binary search.
pub const HOLIDAYS: [Date; HOLIDAY_YMD.len()] = {
    let mut out = [Date(0); HOLIDAY_YMD.len()];
    let mut i = 0;
    while i < HOLIDAY_YMD.len() {
        let (y, m, d) = HOLIDAY_YMD[i];
        out[i] = Date(days_from_civil(y, m, d) as u32);
        i += 1;
    }
    out
};

pub fn is_bank_holiday(date: Date) -> bool {
    HOLIDAYS.binary_search(&date).is_ok()
}

/// Europe/London from the database compiled into the binary, loaded once.
fn london_zone() -> &'static jiff::tz::TimeZone {
    static ZONE: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();
    ZONE.get_or_init(|| {
        jiff::tz::TimeZoneDatabase::bundled()
            .get("Europe/London")
            .expect("the bundled time zone database has Europe/London")
    })
}

/// The instant at which London's clocks show `minute_of_day` on `date`. (In the hour skipped in
/// March the later reading is taken; the schedule never names one.)
pub fn london(date: Date, minute_of_day: u32) -> Ts {
    assert!(minute_of_day < 24 * 60);
    let (y, m, d) = date.ymd();
    let civil = jiff::civil::date(y as i16, m as i8, d as i8).at(
        (minute_of_day / 60) as i8,
        (minute_of_day % 60) as i8,
        0,
        0,
    );
    let ts = london_zone()
        .to_ambiguous_timestamp(civil)
        .later()
        .expect("a date of this calendar is in jiff's range");
    u64::try_from(ts.as_nanosecond()).expect("after 1970")
}

/// London's date at instant `ts`.
pub fn london_date(ts: Ts) -> Date {
    let utc = Date::of(ts);
    // London is UTC or one hour ahead: its date is UTC's, or the next one after 23:00 UTC.
    let next = utc.next_day();
    if ts >= london(next, 0) {
        next
    } else {
        utc
    }
}

impl core::fmt::Display for Date {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl core::str::FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Date, String> {
        let parts: Vec<&str> = s.split('-').collect();
        let bad = || format!("`{s}` is not a date of the form YYYY-MM-DD");
        if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
            return Err(bad());
        }
        let y = parts[0].parse().map_err(|_| bad())?;
        let m = parts[1].parse().map_err(|_| bad())?;
        let d = parts[2].parse().map_err(|_| bad())?;
        Date::from_ymd(y, m, d).ok_or_else(bad)
    }
}

/// The daily schedule of the platform (minutes after midnight, London time) and the settlement
/// lag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Members' instructions are taken from here...
    pub window_open_min: u32,
    /// ...to here; later ones trade the next business day.
    pub window_close_min: u32,
    /// Orders accepted before the cut-off trade that day; aggregation runs at the cut-off.
    pub cutoff_min: u32,
    /// The valuation point: closing prices are struck here.
    pub valuation_min: u32,
    /// Trades settle this many business days after the trade date (T+N).
    pub settlement_lag_days: u32,
    /// The custodian settles in the morning, before members trade, from here.
    pub settlement_min: u32,
    /// How long after an expected answer of the custodian we chase it, and then how often.
    pub chase_after_min: u32,
}

impl Schedule {
    /// The instant of `minute_of_day` (London time) on `date`.
    pub fn at(&self, date: Date, minute_of_day: u32) -> Ts {
        london(date, minute_of_day)
    }

    /// The cut-off of `date`.
    pub fn cutoff(&self, date: Date) -> Ts {
        london(date, self.cutoff_min)
    }

    /// The dealing date of an order received at `received`: the day of receipt if it is a
    /// business day and the order came before its cut-off; otherwise the next business day.
    /// Only the receipt decides, never when the order's later messages arrive.
    pub fn dealing_date(&self, received: Ts) -> Date {
        let today = london_date(received);
        if today.is_business_day() && received < self.cutoff(today) {
            today
        } else {
            today.add_business_days(1)
        }
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            window_open_min: 8 * 60,
            window_close_min: 15 * 60 + 30,
            cutoff_min: 16 * 60,
            valuation_min: 17 * 60,
            settlement_lag_days: 2,
            settlement_min: 7 * 60,
            chase_after_min: 30,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(Date(0).to_string(), "1970-01-01");
        assert_eq!(Date(0).weekday(), 3); // Thursday
        let d: Date = "2026-11-25".parse().unwrap();
        assert_eq!(d.to_string(), "2026-11-25");
        assert_eq!(d.weekday(), 2); // Wednesday
        assert!("2026-02-30".parse::<Date>().is_err());
        assert!("2026-1-05".parse::<Date>().is_err());
        for n in 0..40_000 {
            let (y, m, dd) = Date(n).ymd();
            assert_eq!(Date::from_ymd(y, m, dd), Some(Date(n)));
        }
    }

    #[test]
    fn business_days_skip_weekends() {
        let fri: Date = "2026-11-27".parse().unwrap();
        assert!(fri.is_business_day());
        assert_eq!(fri.add_business_days(1).to_string(), "2026-11-30");
        assert_eq!(fri.add_business_days(2).to_string(), "2026-12-01");
        let sat = fri.next_day();
        assert!(!sat.is_business_day());
        assert_eq!(sat.business_on_or_after().to_string(), "2026-11-30");
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    /// Easter Sunday by the anonymous Gregorian computus: a second derivation of the Easter
    /// holidays, so a mistyped table entry fails here.
    fn easter(y: i32) -> Date {
        let (a, b, c) = (y % 19, y / 100, y % 100);
        let (d, e) = (b / 4, b % 4);
        let f = (b + 8) / 25;
        let g = (b - f + 1) / 3;
        let h = (19 * a + b - d - g + 15) % 30;
        let (i, k) = (c / 4, c % 4);
        let l = (32 + 2 * e + 2 * i - h - k) % 7;
        let m = (a + 11 * h + 22 * l) / 451;
        let month = (h + l - 7 * m + 114) / 31;
        let day = (h + l - 7 * m + 114) % 31 + 1;
        Date::from_ymd(y, month as u32, day as u32).unwrap()
    }

    #[test]
    fn holiday_table_follows_the_rules() {
        assert!(
            HOLIDAYS.windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeats"
        );
        let mut derived = Vec::new();
        for y in HOLIDAYS_YEARS.0..=HOLIDAYS_YEARS.1 {
            let weekday_on_or_after = |m, d, wd| {
                let mut x = Date::from_ymd(y, m, d).unwrap();
                while x.weekday() != wd {
                    x = x.next_day();
                }
                x
            };
            let last_monday = |m, last| {
                let mut x = Date::from_ymd(y, m, last).unwrap();
                while x.weekday() != 0 {
                    x = Date(x.0 - 1);
                }
                x
            };
            let mut fixed = Vec::new();
            for (m, d) in [(1, 1), (12, 25), (12, 26)] {
                let mut x = Date::from_ymd(y, m, d).unwrap();
                while x.weekday() >= 5 || fixed.contains(&x) {
                    x = x.next_day();
                }
                fixed.push(x);
            }
            let e = easter(y);
            derived.extend([fixed[0], Date(e.0 - 2), Date(e.0 + 1)]);
            derived.push(weekday_on_or_after(5, 1, 0));
            derived.push(last_monday(5, 31));
            derived.push(last_monday(8, 31));
            derived.extend([fixed[1], fixed[2]]);
        }
        derived.sort();
        assert_eq!(derived, HOLIDAYS.to_vec());
        assert_eq!(easter(2027), date("2027-03-28"));
        assert!(is_bank_holiday(date("2027-12-28")) && is_bank_holiday(date("2030-04-19")));
        assert!(!date("2028-01-03").is_business_day());
    }

    #[test]
    fn settlement_skips_holidays() {
        // Christmas 2026: the 25th and the 28th (Boxing Day's substitute) are closed.
        assert_eq!(date("2026-12-23").add_business_days(2), date("2026-12-29"));
        assert_eq!(date("2026-12-24").add_business_days(2), date("2026-12-30"));
        assert_eq!(date("2026-12-31").add_business_days(1), date("2027-01-04"));
        // 2027: both Christmas substitutes, then New Year's substitute in 2028.
        assert_eq!(date("2027-12-24").add_business_days(2), date("2027-12-30"));
        assert_eq!(date("2027-12-31").add_business_days(1), date("2028-01-04"));
        // Easter 2026 and the leap day.
        assert_eq!(date("2026-04-02").add_business_days(1), date("2026-04-07"));
        assert_eq!(date("2028-02-28").add_business_days(2), date("2028-03-01"));
        assert!(date("2028-02-29").is_business_day());
    }

    #[test]
    fn schedule_is_in_london_time() {
        let s = Schedule::default();
        // GMT until 01:00 UTC on 29 March 2026, BST (UTC+1) until 01:00 UTC on 25 October.
        assert_eq!(
            s.cutoff(date("2026-03-27")),
            date("2026-03-27").at_minute(16 * 60)
        );
        assert_eq!(
            s.cutoff(date("2026-03-30")),
            date("2026-03-30").at_minute(15 * 60)
        );
        assert_eq!(
            s.cutoff(date("2026-10-23")),
            date("2026-10-23").at_minute(15 * 60)
        );
        assert_eq!(
            s.cutoff(date("2026-10-26")),
            date("2026-10-26").at_minute(16 * 60)
        );
        let sunday = date("2026-03-29");
        assert_eq!(london(sunday, 0), sunday.at_minute(0));
        assert_eq!(london(sunday, 3 * 60), sunday.at_minute(2 * 60));
        // 23:30 UTC in summer is already the next day in London.
        assert_eq!(
            london_date(date("2026-06-30").at_minute(23 * 60 + 30)),
            date("2026-07-01")
        );
        assert_eq!(
            london_date(date("2026-12-31").at_minute(23 * 60 + 30)),
            date("2026-12-31")
        );
    }

    #[test]
    fn dealing_date_follows_receipt_and_cutoff() {
        let s = Schedule::default();
        let thu = date("2026-04-02"); // before Good Friday, in BST
        assert_eq!(s.dealing_date(s.cutoff(thu) - 1), thu);
        assert_eq!(s.dealing_date(s.cutoff(thu)), date("2026-04-07"));
        // 15:30 UTC is 16:30 in London in summer: past the cut-off.
        assert_eq!(
            s.dealing_date(thu.at_minute(15 * 60 + 30)),
            date("2026-04-07")
        );
        assert_eq!(
            s.dealing_date(date("2026-04-04").at_minute(9 * 60)),
            date("2026-04-07")
        );
        let fri = date("2026-02-27");
        assert_eq!(s.dealing_date(fri.at_minute(15 * 60 + 59)), fri);
        assert_eq!(s.dealing_date(fri.at_minute(16 * 60)), date("2026-03-02"));
    }
}
