//! The reference model: what every member should hold, from the instructions and the closing
//! prices alone.
//!
//! It is written apart from the process code and shares none of it (its own arithmetic, its
//! own allocation), so a bug in the platform's allocation, rounding, netting or settlement shows
//! up as a difference between a pot in the ledger and the model. Its rules are the business
//! rules, stated once more:
//! - an invest is accepted when the member's available cash (contributions less accepted
//!   invests) covers it, else rejected with nothing moved;
//! - it trades on the business day it was given (members instruct inside the window);
//! - per fund and trade date, the custodian buys `floor(total_pence * 10^10 / price)`
//!   micro-units and each member gets `floor(units * own_pence / total_pence)`; the residual is
//!   ACME's rounding;
//! - units are pending from the valuation point and settled T+N business days later.

use acme_ledger::chart::{FundId, MemberId};
use acme_processes::calendar::Date;
use acme_processes::messages::{InstructionId, InstructionState};
use acme_processes::money::Price;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Units {
    pub settled: u64,
    pub pending: u64,
}

struct ModelTrade {
    fund: FundId,
    settle_date: Date,
    lines: Vec<(MemberId, u64)>,
    residual: u64,
}

#[derive(Default)]
pub struct Oracle {
    cash_available: BTreeMap<MemberId, u64>,
    contributed: u64,
    /// Accepted invests by (trade date, fund): (instruction, member, pence).
    orders: BTreeMap<(Date, FundId), Vec<(InstructionId, MemberId, u64)>>,
    expected: BTreeMap<InstructionId, InstructionState>,
    units: BTreeMap<(MemberId, FundId), Units>,
    rounding: BTreeMap<FundId, Units>,
    trades: Vec<ModelTrade>,
}

impl Oracle {
    pub fn onboard(&mut self, id: InstructionId, member: MemberId) {
        self.cash_available.entry(member).or_insert(0);
        self.expected.insert(id, InstructionState::Completed);
    }

    pub fn contribute(&mut self, id: InstructionId, member: MemberId, pence: u64) {
        *self.cash_available.get_mut(&member).expect("onboarded") += pence;
        self.contributed += pence;
        self.expected.insert(id, InstructionState::Completed);
    }

    /// Records an invest given on `trade_date`; returns whether the model accepts it.
    pub fn invest(&mut self, id: InstructionId, member: MemberId, fund: FundId, pence: u64, trade_date: Date) -> bool {
        let available = self.cash_available.get_mut(&member).expect("onboarded");
        if pence > *available {
            self.expected.insert(id, InstructionState::Rejected);
            return false;
        }
        *available -= pence;
        self.orders.entry((trade_date, fund)).or_default().push((id, member, pence));
        self.expected.insert(id, InstructionState::Settled);
        true
    }

    pub fn available_cash(&self, member: MemberId) -> u64 {
        self.cash_available.get(&member).copied().unwrap_or(0)
    }

    pub fn total_contributed(&self) -> u64 {
        self.contributed
    }

    /// The valuation point of `date`: every fund's orders of that date are bought.
    pub fn valuation(&mut self, date: Date, settle_date: Date, close: impl Fn(FundId) -> Price) {
        let keys: Vec<(Date, FundId)> = self.orders.range((date, 0)..=(date, FundId::MAX)).map(|(k, _)| *k).collect();
        for key in keys {
            let orders = self.orders.remove(&key).expect("listed");
            let fund = key.1;
            let total: u128 = orders.iter().map(|o| o.2 as u128).sum();
            let units = total * 10_000_000_000 / close(fund).0 as u128;
            let mut lines = Vec::with_capacity(orders.len());
            let mut given: u128 = 0;
            for &(_, member, pence) in &orders {
                let share = units * pence as u128 / total;
                given += share;
                lines.push((member, share as u64));
                self.units.entry((member, fund)).or_default().pending += share as u64;
            }
            let residual = (units - given) as u64;
            self.rounding.entry(fund).or_default().pending += residual;
            self.trades.push(ModelTrade {
                fund,
                settle_date,
                lines,
                residual,
            });
        }
    }

    /// Settlement day `date`: trades due settle.
    pub fn settlement(&mut self, date: Date) {
        for trade in self.trades.iter().filter(|t| t.settle_date == date) {
            for &(member, share) in &trade.lines {
                let u = self.units.get_mut(&(member, trade.fund)).expect("allocated");
                u.pending -= share;
                u.settled += share;
            }
            let r = self.rounding.get_mut(&trade.fund).expect("allocated");
            r.pending -= trade.residual;
            r.settled += trade.residual;
        }
    }

    pub fn units(&self, member: MemberId, fund: FundId) -> Units {
        self.units.get(&(member, fund)).copied().unwrap_or_default()
    }

    pub fn rounding(&self, fund: FundId) -> Units {
        self.rounding.get(&fund).copied().unwrap_or_default()
    }

    /// Every (member, fund) the model holds units for, in order.
    pub fn holdings(&self) -> impl Iterator<Item = (&(MemberId, FundId), &Units)> {
        self.units.iter()
    }

    pub fn members(&self) -> impl Iterator<Item = (&MemberId, &u64)> {
        self.cash_available.iter()
    }

    pub fn expected_states(&self) -> &BTreeMap<InstructionId, InstructionState> {
        &self.expected
    }
}
