//! The simulated asset custodian: an outside actor with books of its own.
//!
//! It takes external trades until the valuation point of their trade date, prices them at the
//! closing price, and settles them T+N business days later, telling the platform each time by
//! message. Its books (units held for ACME per fund, settled and pending, and the cash it was
//! paid) are kept with its own arithmetic, apart from the platform's code, and serve as the
//! first oracle: once messages are delivered, the ledger's custodian mirror must equal them.

use acme_ledger::chart::FundId;
use acme_processes::calendar::Date;
use acme_processes::messages::{ExternalTrade, TradeId};
use acme_processes::money::Price;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Holding {
    pub settled_units: u64,
    pub pending_units: u64,
    pub settled_cash_pence: u64,
    pub pending_cash_pence: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct PricedTrade {
    pub trade: ExternalTrade,
    pub price: Price,
    pub units_micro: u64,
    pub settle_date: Date,
}

#[derive(Default)]
pub struct Custodian {
    /// Trades taken, waiting for their valuation point, by trade date.
    placed: BTreeMap<Date, Vec<ExternalTrade>>,
    seen: BTreeSet<TradeId>,
    priced: BTreeMap<TradeId, PricedTrade>,
    settled: BTreeSet<TradeId>,
    holdings: BTreeMap<FundId, Holding>,
    /// Trades that arrived after their valuation point (a platform bug).
    pub late_trades: u64,
}

/// Units bought by `cash_pence` at `price` micro-pounds per unit, in micro-units, rounded down.
/// Written here independently of the platform's `money` module on purpose.
pub fn custodian_units(cash_pence: u64, price: Price) -> u64 {
    // pence * 10^4 = micro-pounds; * 10^6 micro-units per unit.
    ((cash_pence as u128 * 10_000 * 1_000_000) / price.0 as u128) as u64
}

impl Custodian {
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

    /// Prices every trade of `date` at `close`; returns them.
    pub fn value(
        &mut self,
        date: Date,
        settle_date: Date,
        close: impl Fn(FundId) -> Price,
    ) -> Vec<PricedTrade> {
        let trades = self.placed.remove(&date).unwrap_or_default();
        let mut out = Vec::new();
        for trade in trades {
            let price = close(trade.fund);
            let units_micro = custodian_units(trade.cash_pence, price);
            let holding = self.holdings.entry(trade.fund).or_default();
            holding.pending_units += units_micro;
            holding.pending_cash_pence += trade.cash_pence;
            let priced = PricedTrade {
                trade,
                price,
                units_micro,
                settle_date,
            };
            self.priced.insert(trade.id, priced);
            out.push(priced);
        }
        out
    }

    /// Settles a priced trade; returns it unless it was settled already.
    pub fn settle(&mut self, trade_id: TradeId) -> Option<PricedTrade> {
        let priced = *self.priced.get(&trade_id)?;
        if !self.settled.insert(trade_id) {
            return None;
        }
        let holding = self.holdings.entry(priced.trade.fund).or_default();
        holding.pending_units -= priced.units_micro;
        holding.settled_units += priced.units_micro;
        holding.pending_cash_pence -= priced.trade.cash_pence;
        holding.settled_cash_pence += priced.trade.cash_pence;
        Some(priced)
    }

    pub fn holding(&self, fund: FundId) -> Holding {
        self.holdings.get(&fund).copied().unwrap_or_default()
    }

    pub fn priced_trades(&self) -> impl Iterator<Item = &PricedTrade> {
        self.priced.values()
    }

    pub fn unpriced(&self) -> usize {
        self.placed.values().map(Vec::len).sum()
    }

    pub fn unsettled(&self) -> usize {
        self.priced.len() - self.settled.len()
    }
}
