//! The market: a few funds whose closing prices follow a seeded random walk.
//!
//! Prices are integers (micro-pounds per unit, `acme_processes::money::Price`); each business
//! day's close moves the previous one by a whole number of basis points, so the walk never
//! touches a float. Funds start anywhere from a penny to ten thousand pounds a unit, drawn
//! log-uniformly (a decade, then a price in it), so a run meets both the cheap fund whose
//! members hold hundreds of millions of units and the dear one where a pound buys a hundred
//! micro-units; and now and then a day moves a price by up to a fifth, as markets do.

use crate::calendar::WorldCalendar;
use crate::rng::{SimRng, Stream};
use acme_ledger::chart::FundId;
use acme_processes::calendar::Date;
use acme_processes::money::Price;
use std::collections::BTreeMap;

/// Largest ordinary daily move, basis points.
pub const DAILY_MOVE_MAX_BP: i64 = 150;
/// Chance a day brings a large move instead, ppm (about one day in fifty).
pub const LARGE_MOVE_PPM: u32 = 20_000;
/// Largest large move, basis points.
pub const LARGE_MOVE_MAX_BP: i64 = 2_000;
/// Prices never fall below one penny per unit.
pub const PRICE_FLOOR: u64 = 10_000;
/// Nor rise above ten thousand pounds per unit.
pub const PRICE_CEILING: u64 = 10_000_000_000;
/// Decades between the floor and the ceiling.
const DECADES: u32 = 6;

pub struct Market {
    funds: Vec<FundId>,
    closes: BTreeMap<(FundId, Date), Price>,
}

/// A starting price, log-uniform from [`PRICE_FLOOR`] to [`PRICE_CEILING`].
fn starting_price(rng: &mut SimRng) -> u64 {
    let low = PRICE_FLOOR * 10u64.pow(rng.below(DECADES as u64) as u32);
    rng.between(low, low * 10)
}

/// The next close: an ordinary move, or (rarely) a large one; within floor and ceiling.
fn next_price(rng: &mut SimRng, price: u64) -> u64 {
    let max_bp = if rng.chance_ppm(LARGE_MOVE_PPM) {
        LARGE_MOVE_MAX_BP
    } else {
        DAILY_MOVE_MAX_BP
    };
    let bp = rng.between_i64(-max_bp, max_bp);
    let moved = price as i128 * (10_000 + bp as i128) / 10_000;
    moved.clamp(PRICE_FLOOR as i128, PRICE_CEILING as i128) as u64
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
            let mut price = starting_price(&mut rng);
            let mut date = calendar.on_or_after(first);
            while date <= last {
                price = next_price(&mut rng, price);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Over many seeds every decade is met, the walk stays within its bounds, and large moves
    /// happen at about their rate.
    #[test]
    fn prices_span_the_range_and_sometimes_jump() {
        let mut decades = [0u32; DECADES as usize];
        let (mut days, mut large) = (0u64, 0u64);
        for seed in 0..2_000 {
            let mut rng = SimRng::new(seed, Stream::Market);
            let mut price = starting_price(&mut rng);
            assert!((PRICE_FLOOR..=PRICE_CEILING).contains(&price));
            let decade = (price / PRICE_FLOOR).ilog10().min(DECADES - 1);
            decades[decade as usize] += 1;
            for _ in 0..50 {
                let next = next_price(&mut rng, price);
                assert!((PRICE_FLOOR..=PRICE_CEILING).contains(&next));
                let move_bp = (next as i128 - price as i128).abs() * 10_000 / price as i128;
                days += 1;
                // A clamped move is smaller than drawn: count only moves clearly beyond the
                // ordinary range.
                large += (move_bp > DAILY_MOVE_MAX_BP as i128 + 1) as u64;
                price = next;
            }
        }
        assert!(decades.iter().all(|&n| n > 200), "decades: {decades:?}");
        // About 1 in 50 days draws a large move, and most of those exceed the ordinary range.
        let per_mille = large * 1_000 / days;
        assert!(
            (10..=25).contains(&per_mille),
            "{large} large moves in {days} days"
        );
    }
}
