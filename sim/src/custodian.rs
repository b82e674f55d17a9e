//! The simulated asset custodian: an outside actor with books of its own.
//!
//! It takes net trades (a buy leg in cash, a sell leg in units) until the valuation point of
//! their trade date and answers each, as the seed draws: it prices it at the closing price
//! (filling it whole or, sometimes, in part), or rejects it; it may amend a price the next
//! morning; it settles T+N business days later, sometimes late. Its books (units held for ACME
//! per fund, settled and pending, and cash settled and pending) are kept with its own
//! arithmetic, apart from the platform's code, and serve as an oracle: once messages are
//! delivered, the ledger's custodian mirror must equal them.

use crate::calendar::WorldCalendar;
use crate::rng::{SimRng, Stream};
use acme_ledger::chart::FundId;
use acme_processes::calendar::Date;
use acme_processes::messages::{Confirmation, ExternalTrade, TradeId};
use acme_processes::money::Price;
use std::collections::{BTreeMap, BTreeSet};

/// How often the custodian does something other than a plain fill, parts per million.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Behaviour {
    pub reject_ppm: u32,
    pub partial_ppm: u32,
    pub amend_ppm: u32,
    pub late_settlement_ppm: u32,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            reject_ppm: 20_000,
            partial_ppm: 50_000,
            amend_ppm: 50_000,
            late_settlement_ppm: 50_000,
        }
    }
}

/// Signed, because a net sell takes units (and pays cash) the other way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Holding {
    pub settled_units: i128,
    pub pending_units: i128,
    pub settled_cash_pence: i128,
    pub pending_cash_pence: i128,
}

/// What the custodian did with a trade, as the outside world knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Rejected,
    Filled {
        /// Fill of both legs, parts per million (1,000,000 = whole).
        fill_ppm: u32,
        price: Price,
        settle_date: Date,
    },
}

#[derive(Clone, Copy, Debug)]
pub struct PricedTrade {
    pub trade: ExternalTrade,
    pub confirmation: Confirmation,
    pub settle_date: Date,
    /// The price it will amend to the next business morning, if any.
    pub amend_to: Option<Price>,
}

impl PricedTrade {
    pub fn net_units(&self) -> i128 {
        self.confirmation.units_bought as i128 - self.confirmation.sell_units_filled as i128
    }

    pub fn net_cash(&self) -> i128 {
        self.confirmation.buy_cash_filled as i128 - self.confirmation.cash_for_sold as i128
    }
}

pub struct Custodian {
    seed: u64,
    behaviour: Behaviour,
    settlement_lag_days: u32,
    /// The custodian's own business days (the world's, not the platform's).
    calendar: WorldCalendar,
    /// Trades taken, waiting for their valuation point, by trade date.
    placed: BTreeMap<Date, Vec<ExternalTrade>>,
    seen: BTreeSet<TradeId>,
    priced: BTreeMap<TradeId, PricedTrade>,
    rejected: BTreeSet<TradeId>,
    settled: BTreeSet<TradeId>,
    holdings: BTreeMap<FundId, Holding>,
    /// Trades that arrived after their valuation point, priced at once at their date's close.
    pub late_trades: u64,
    pub counts: Counts,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub priced: u64,
    pub rejected: u64,
    pub partial: u64,
    pub amended: u64,
    pub late_settlements: u64,
}

/// Units bought by `cash_pence` at `price` micro-pounds per unit, in micro-units, rounded down.
/// Written here independently of the platform's `money` module on purpose.
pub fn custodian_units(cash_pence: u64, price: Price) -> u64 {
    // pence * 10^4 = micro-pounds; * 10^6 micro-units per unit.
    ((cash_pence as u128 * 10_000 * 1_000_000) / price.0 as u128) as u64
}

/// Pence fetched by `units_micro` at `price`, rounded down.
pub fn custodian_cash(units_micro: u64, price: Price) -> u64 {
    ((units_micro as u128 * price.0 as u128) / 10_000_000_000) as u64
}

/// `amount * ppm / 10^6`, rounded down.
pub fn fill(amount: u64, fill_ppm: u32) -> u64 {
    (amount as u128 * fill_ppm as u128 / 1_000_000) as u64
}

impl Custodian {
    pub fn new(
        seed: u64,
        behaviour: Behaviour,
        settlement_lag_days: u32,
        calendar: WorldCalendar,
    ) -> Custodian {
        Custodian {
            seed,
            behaviour,
            settlement_lag_days,
            calendar,
            placed: BTreeMap::new(),
            seen: BTreeSet::new(),
            priced: BTreeMap::new(),
            rejected: BTreeSet::new(),
            settled: BTreeSet::new(),
            holdings: BTreeMap::new(),
            late_trades: 0,
            counts: Counts::default(),
        }
    }

    /// Takes a trade. Returns false for a duplicate (same trade id), which the custodian ignores.
    pub fn place(&mut self, trade: ExternalTrade, valuation_passed: bool) -> bool {
        if !self.seen.insert(trade.id) {
            return false;
        }
        if valuation_passed {
            self.late_trades += 1;
        }
        self.placed.entry(trade.trade_date).or_default().push(trade);
        true
    }

    fn confirm(trade: &ExternalTrade, revision: u32, fill_ppm: u32, price: Price) -> Confirmation {
        let buy_cash_filled = fill(trade.buy_cash_pence, fill_ppm);
        let sell_units_filled = fill(trade.sell_units_micro, fill_ppm);
        Confirmation {
            trade_id: trade.id,
            revision,
            price,
            buy_cash_filled,
            sell_units_filled,
            units_bought: custodian_units(buy_cash_filled, price),
            cash_for_sold: custodian_cash(sell_units_filled, price),
        }
    }

    /// The valuation point of `date`: answers every trade of that date.
    pub fn value(
        &mut self,
        date: Date,
        close: impl Fn(FundId) -> Price,
    ) -> Vec<(ExternalTrade, Outcome)> {
        let trades = self.placed.remove(&date).unwrap_or_default();
        let mut out = Vec::new();
        for trade in trades {
            let b = self.behaviour;
            // Each trade's fate is drawn from the seed and the trade alone, so it does not depend
            // on the order in which trades happened to reach the custodian.
            let mut rng = SimRng::new(
                self.seed ^ trade.id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                Stream::Custodian,
            );
            if rng.chance_ppm(b.reject_ppm) {
                self.rejected.insert(trade.id);
                self.counts.rejected += 1;
                out.push((trade, Outcome::Rejected));
                continue;
            }
            let fill_ppm = if rng.chance_ppm(b.partial_ppm) {
                self.counts.partial += 1;
                rng.between(500_000, 999_999) as u32
            } else {
                1_000_000
            };
            let cal = &self.calendar;
            let mut settle_date = cal.add_business_days(date, self.settlement_lag_days);
            if rng.chance_ppm(b.late_settlement_ppm) {
                self.counts.late_settlements += 1;
                settle_date = cal.add_business_days(settle_date, rng.between(1, 2) as u32);
            }
            let price = close(trade.fund);
            let amend_to = rng.chance_ppm(b.amend_ppm).then(|| {
                self.counts.amended += 1;
                let bp = rng.between_i64(-50, 50);
                Price(((price.0 as i128 * (10_000 + bp as i128)) / 10_000).max(1) as u64)
            });
            let confirmation = Custodian::confirm(&trade, 0, fill_ppm, price);
            let priced = PricedTrade {
                trade,
                confirmation,
                settle_date,
                amend_to,
            };
            let holding = self.holdings.entry(trade.fund).or_default();
            holding.pending_units += priced.net_units();
            holding.pending_cash_pence += priced.net_cash();
            self.priced.insert(trade.id, priced);
            self.counts.priced += 1;
            out.push((
                trade,
                Outcome::Filled {
                    fill_ppm,
                    price,
                    settle_date,
                },
            ));
        }
        out
    }

    /// Amends a priced, unsettled trade to its drawn second price; returns the new confirmation.
    pub fn amend(&mut self, trade_id: TradeId) -> Option<Confirmation> {
        let p = self.priced.get_mut(&trade_id)?;
        let new_price = p.amend_to.take()?;
        assert!(
            !self.settled.contains(&trade_id),
            "amendment after settlement"
        );
        let before = (p.net_units(), p.net_cash());
        let c = p.confirmation;
        p.confirmation = Confirmation {
            revision: c.revision + 1,
            price: new_price,
            units_bought: custodian_units(c.buy_cash_filled, new_price),
            cash_for_sold: custodian_cash(c.sell_units_filled, new_price),
            ..c
        };
        let after = (p.net_units(), p.net_cash());
        let holding = self.holdings.entry(p.trade.fund).or_default();
        holding.pending_units += after.0 - before.0;
        holding.pending_cash_pence += after.1 - before.1;
        Some(p.confirmation)
    }

    /// Settles the priced trades due on `date`.
    pub fn settle_due(&mut self, date: Date) -> Vec<PricedTrade> {
        let due: Vec<TradeId> = self
            .priced
            .iter()
            .filter(|(id, p)| p.settle_date == date && !self.settled.contains(id))
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in due {
            self.settled.insert(id);
            let p = self.priced[&id];
            let holding = self.holdings.entry(p.trade.fund).or_default();
            holding.pending_units -= p.net_units();
            holding.settled_units += p.net_units();
            holding.pending_cash_pence -= p.net_cash();
            holding.settled_cash_pence += p.net_cash();
            out.push(p);
        }
        out
    }

    /// Units it holds settled for ACME from before the run (members' opening pots).
    pub fn open(&mut self, fund: FundId, units: u64) {
        self.holdings.entry(fund).or_default().settled_units += units as i128;
    }

    pub fn holding(&self, fund: FundId) -> Holding {
        self.holdings.get(&fund).copied().unwrap_or_default()
    }

    /// A trade the custodian priced.
    pub fn trade(&self, trade_id: TradeId) -> Option<ExternalTrade> {
        self.priced.get(&trade_id).map(|p| p.trade)
    }

    pub fn priced_trades(&self) -> impl Iterator<Item = &PricedTrade> {
        self.priced.values()
    }

    /// The custodian's current answer for a trade, if it has one: a rejection (`None` inside) or
    /// the latest confirmation.
    pub fn answer(&self, trade_id: TradeId) -> Option<Option<Confirmation>> {
        if self.rejected.contains(&trade_id) {
            return Some(None);
        }
        self.priced.get(&trade_id).map(|p| Some(p.confirmation))
    }

    /// The settled trade, if it settled.
    pub fn settled_trade(&self, trade_id: TradeId) -> Option<PricedTrade> {
        self.settled
            .contains(&trade_id)
            .then(|| self.priced[&trade_id])
    }

    pub fn is_settled(&self, trade_id: TradeId) -> bool {
        self.settled.contains(&trade_id)
    }

    pub fn unpriced(&self) -> usize {
        self.placed.values().map(Vec::len).sum()
    }

    pub fn unsettled(&self) -> usize {
        self.priced.len() - self.settled.len()
    }
}
