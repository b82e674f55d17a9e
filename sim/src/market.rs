//! The market: a few funds whose closing prices follow a seeded random walk.
//!
//! Prices are integers (micro-pounds per unit, `acme_processes::money::Price`); each business
//! day's close moves the previous one by a whole number of basis points, so the walk never
//! touches a float.

use crate::calendar::WorldCalendar;
use crate::rng::{SimRng, Stream};
use acme_ledger::chart::FundId;
use acme_processes::calendar::Date;
use acme_processes::money::Price;
use std::collections::BTreeMap;

/// Largest daily move, basis points.
pub const DAILY_MOVE_MAX_BP: i64 = 150;
/// Prices never fall below one penny per unit.
pub const PRICE_FLOOR: u64 = 10_000;

pub struct Market {
    funds: Vec<FundId>,
    closes: BTreeMap<(FundId, Date), Price>,
}

impl Market {
    /// Closing prices of `funds` for every business day (of the world's calendar) in
    /// `first..=last`.
    pub fn new(
        seed: u64,
        funds: &[FundId],
        calendar: &WorldCalendar,
        first: Date,
        last: Date,
    ) -> Market {
        let mut rng = SimRng::new(seed, Stream::Market);
        let mut closes = BTreeMap::new();
        for &fund in funds {
            // £1.000000 to £5.000000.
            let mut price = rng.between(1_000_000, 5_000_000);
            let mut date = calendar.on_or_after(first);
            while date <= last {
                let bp = rng.between_i64(-DAILY_MOVE_MAX_BP, DAILY_MOVE_MAX_BP);
                let moved = (price as i128 * (10_000 + bp as i128) / 10_000) as u64;
                price = moved.max(PRICE_FLOOR);
                closes.insert((fund, date), Price(price));
                date = calendar.add_business_days(date, 1);
            }
        }
        Market {
            funds: funds.to_vec(),
            closes,
        }
    }

    pub fn funds(&self) -> &[FundId] {
        &self.funds
    }

    /// Whether the market closed on `date` (a business day of the run).
    pub fn has_close(&self, fund: FundId, date: Date) -> bool {
        self.closes.contains_key(&(fund, date))
    }

    /// The closing price of `fund` on business day `date`.
    pub fn close(&self, fund: FundId, date: Date) -> Price {
        *self
            .closes
            .get(&(fund, date))
            .unwrap_or_else(|| panic!("no close for fund {fund} on {date}"))
    }
}
