//! Business time: dates, trading days and the daily schedule.
//!
//! Time is nanoseconds since the Unix epoch in UTC ([`Ts`]), as in TigerBeetle. A [`Date`] is a
//! day number since 1970-01-01. Trading days are Monday to Friday; bank holidays would be a list
//! here and nothing else would change.

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
        self.weekday() < 5
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
        let y2 = if m <= 2 { y - 1 } else { y } as i64;
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
        let doy = (153 * mp + 2) / 5 + d as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let date = Date(u32::try_from(days).ok()?);
        (date.ymd() == (y, m, d)).then_some(date)
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

/// The daily schedule of the platform (minutes after midnight UTC) and the settlement lag.
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
}
