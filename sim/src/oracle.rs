//! The reference model: what every member should hold, from the instructions, the closing prices
//! and the custodian's answers alone.
//!
//! It is written apart from the process code and shares none of it (its own arithmetic, its own
//! fills and allocation, no netting at all), so a bug in the platform's allocation, rounding,
//! netting, crossing or settlement shows up as a difference between a pot in the ledger and the
//! model. Its rules are the business rules, stated once more:
//! - an invest (sell, switch) is accepted when the member's available cash (settled units not
//!   already being sold) covers it, else rejected with nothing moved;
//! - it trades on its dealing date: the day intake received it if that was a business day
//!   before the cut-off, else the next business day (by the world's own calendar); a switch's
//!   purchase is received when intake hears its sale settled, for exactly the sale's proceeds;
//! - per fund and trade date, every order is traded *gross*, as if alone at the custodian: the
//!   custodian fills each leg by `fill_ppm`; the fills are shared by largest remainder (ties to
//!   the lower instruction id); the
//!   buy leg buys `floor(cash * 10^10 / price)` micro-units and the sell leg fetches
//!   `floor(units * price / 10^10)` pence, shared `floor(total * own / total_fill)`; residuals are
//!   ACME's rounding;
//! - bought units and sale cash are pending from the valuation point and settled on the
//!   custodian's settlement date; sold units leave at the valuation point; an amended price
//!   replaces the pending amounts.

use crate::custodian::Outcome;
use acme_ledger::chart::{FundId, MemberId};
use acme_processes::calendar::Date;
use acme_processes::messages::{
    Instruction, InstructionId, InstructionKind, InstructionState, Origin,
};
use acme_processes::money::Price;
use acme_processes::trading::rebalancing::{rebalance_instruction_id, ModelSet};
use std::collections::BTreeMap;

/// The most cash one instruction may move: £10,000,000.
pub const CASH_PER_INSTRUCTION_MAX: u64 = 10_000_000 * 100;
/// The most units one instruction may move: 10,000,000 units, in micro-units.
pub const UNITS_PER_INSTRUCTION_MAX: u64 = 10_000_000 * 1_000_000;

/// Whether an instruction's amount is one intake takes at all.
fn in_range(kind: &InstructionKind) -> bool {
    match *kind {
        InstructionKind::Onboard { .. } => true,
        InstructionKind::Contribute { cash_pence } | InstructionKind::Invest { cash_pence, .. } => {
            (1..=CASH_PER_INSTRUCTION_MAX).contains(&cash_pence)
        }
        InstructionKind::Sell { units_micro, .. } | InstructionKind::Switch { units_micro, .. } => {
            (1..=UNITS_PER_INSTRUCTION_MAX).contains(&units_micro)
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Units {
    pub settled: u64,
    pub pending: u64,
    /// Accepted sells not yet traded.
    pub reserved: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rounding {
    pub settled: u64,
    pub pending: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Buy,
    Sell,
}

#[derive(Clone, Copy, Debug)]
struct ModelOrder {
    instruction: InstructionId,
    leg: u8,
    member: MemberId,
    kind: Kind,
    amount: u64,
}

#[derive(Clone, Debug)]
struct ModelTrade {
    fund: FundId,
    settle_date: Date,
    orders: Vec<ModelOrder>,
    fills: Vec<u64>,
    proceeds: Vec<u64>,
    units_residual: u64,
    cash_residual: u64,
    buy_fill: u64,
    sell_fill: u64,
}

#[derive(Default)]
pub struct Oracle {
    cash_available: BTreeMap<MemberId, u64>,
    contributed: u64,
    /// Cash of the opening pots (paid into the bank before the run).
    opening_cash: u64,
    orders: BTreeMap<(Date, FundId), Vec<ModelOrder>>,
    trades: BTreeMap<(Date, FundId), ModelTrade>,
    expected: BTreeMap<InstructionId, InstructionState>,
    units: BTreeMap<(MemberId, FundId), Units>,
    rounding_units: BTreeMap<FundId, Rounding>,
    rounding_cash: Rounding,
    /// Sale proceeds booked but not yet settled, per member.
    cash_pending: BTreeMap<MemberId, u64>,
    /// Switches waiting for their sale to settle: instruction -> (member, fund to buy).
    switches: BTreeMap<InstructionId, (MemberId, FundId)>,
    /// Switches' purchases whose sale settled, waiting for intake to receive them (their
    /// receipt decides their dealing date): instruction -> (fund to buy, order).
    purchases: BTreeMap<InstructionId, (FundId, ModelOrder)>,
    /// Members' risk profiles.
    profiles: BTreeMap<MemberId, u8>,
    /// Per settlement day, how many trades of each (member, fund) settle on it.
    settling: BTreeMap<(Date, MemberId, FundId), u32>,
}

/// Largest-remainder split of `filled` over `requested`, ties to the earlier request.
fn shares_by_largest_remainder(filled: u64, requested: &[u64]) -> Vec<u64> {
    let total: u128 = requested.iter().map(|&r| r as u128).sum();
    if total == 0 {
        return vec![0; requested.len()];
    }
    let mut out: Vec<u64> = requested
        .iter()
        .map(|&r| (filled as u128 * r as u128 / total) as u64)
        .collect();
    let mut rest = filled - out.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..requested.len()).collect();
    order.sort_by_key(|&i| {
        (
            std::cmp::Reverse(filled as u128 * requested[i] as u128 % total),
            i,
        )
    });
    for i in order {
        if rest == 0 {
            break;
        }
        if out[i] < requested[i] {
            out[i] += 1;
            rest -= 1;
        }
    }
    out
}

fn floor_shares(total: u64, weights: &[u64]) -> (Vec<u64>, u64) {
    let sum: u128 = weights.iter().map(|&w| w as u128).sum();
    if sum == 0 {
        return (vec![0; weights.len()], total);
    }
    let shares: Vec<u64> = weights
        .iter()
        .map(|&w| (total as u128 * w as u128 / sum) as u64)
        .collect();
    let given: u64 = shares.iter().sum();
    (shares, total - given)
}

impl Oracle {
    /// Takes an instruction as it is sent, on `date`: the model decides here whether it is
    /// accepted, with what the member holds at this moment.
    pub fn submit(&mut self, instruction: &Instruction, date: Date) {
        let (id, member) = (instruction.id, instruction.member);
        if self.expected.contains_key(&id) {
            return; // taken already (a resubmission after a lost acknowledgement)
        }
        let onboard = matches!(instruction.kind, InstructionKind::Onboard { .. });
        if !in_range(&instruction.kind) {
            self.expected.insert(id, InstructionState::Rejected);
            return;
        }
        if !onboard && !self.cash_available.contains_key(&member) {
            // No pot yet: refused, nothing moves.
            self.expected.insert(id, InstructionState::Rejected);
            return;
        }
        match instruction.kind {
            InstructionKind::Onboard { profile } => {
                self.onboard(id, member);
                self.profiles.insert(member, profile);
            }
            InstructionKind::Contribute { cash_pence } => self.contribute(id, member, cash_pence),
            InstructionKind::Invest { fund, cash_pence } => {
                self.invest(id, member, fund, cash_pence, date);
            }
            InstructionKind::Sell { fund, units_micro } => {
                self.sell(id, member, fund, units_micro, date);
            }
            InstructionKind::Switch {
                from_fund,
                to_fund,
                units_micro,
            } => {
                self.switch(id, member, from_fund, to_fund, units_micro, date);
            }
        }
    }

    /// A pot the member brings (see `crate::holdings`): cash available and settled units, there
    /// before the first instruction, with the member's risk profile (re-balancing looks after
    /// the pot from the first day, onboarded or not). Onboarding the member later keeps them.
    pub fn open_pot(
        &mut self,
        member: MemberId,
        profile: u8,
        cash_pence: u64,
        units: &[(FundId, u64)],
    ) {
        self.profiles.insert(member, profile);
        *self.cash_available.entry(member).or_insert(0) += cash_pence;
        self.opening_cash += cash_pence;
        for &(fund, u) in units {
            self.units.entry((member, fund)).or_default().settled += u;
        }
    }

    pub fn onboard(&mut self, id: InstructionId, member: MemberId) {
        self.cash_available.entry(member).or_insert(0);
        self.expected.insert(id, InstructionState::Completed);
    }

    pub fn contribute(&mut self, id: InstructionId, member: MemberId, pence: u64) {
        *self.cash_available.get_mut(&member).expect("onboarded") += pence;
        self.contributed += pence;
        self.expected.insert(id, InstructionState::Completed);
    }

    fn order(&mut self, date: Date, fund: FundId, o: ModelOrder) {
        self.orders.entry((date, fund)).or_default().push(o);
    }

    /// Records an invest given on `trade_date`; returns whether the model accepts it.
    pub fn invest(
        &mut self,
        id: InstructionId,
        member: MemberId,
        fund: FundId,
        pence: u64,
        trade_date: Date,
    ) -> bool {
        let available = self.cash_available.get_mut(&member).expect("onboarded");
        if pence > *available {
            self.expected.insert(id, InstructionState::Rejected);
            return false;
        }
        *available -= pence;
        self.order(
            trade_date,
            fund,
            ModelOrder {
                instruction: id,
                leg: 0,
                member,
                kind: Kind::Buy,
                amount: pence,
            },
        );
        self.expected.insert(id, InstructionState::Settled);
        true
    }

    fn reserve_units(
        &mut self,
        id: InstructionId,
        member: MemberId,
        fund: FundId,
        units: u64,
    ) -> bool {
        let u = self.units.entry((member, fund)).or_default();
        if units > u.settled - u.reserved {
            self.expected.insert(id, InstructionState::Rejected);
            return false;
        }
        u.reserved += units;
        true
    }

    /// Records a sell given on `trade_date`; returns whether the model accepts it.
    pub fn sell(
        &mut self,
        id: InstructionId,
        member: MemberId,
        fund: FundId,
        units: u64,
        trade_date: Date,
    ) -> bool {
        if !self.reserve_units(id, member, fund, units) {
            return false;
        }
        self.order(
            trade_date,
            fund,
            ModelOrder {
                instruction: id,
                leg: 0,
                member,
                kind: Kind::Sell,
                amount: units,
            },
        );
        self.expected.insert(id, InstructionState::Settled);
        true
    }

    /// Records a switch given on `trade_date`; returns whether the model accepts it.
    pub fn switch(
        &mut self,
        id: InstructionId,
        member: MemberId,
        from: FundId,
        to: FundId,
        units: u64,
        trade_date: Date,
    ) -> bool {
        if !self.sell(id, member, from, units, trade_date) {
            return false;
        }
        self.switches.insert(id, (member, to));
        true
    }

    pub fn available_cash(&self, member: MemberId) -> u64 {
        self.cash_available.get(&member).copied().unwrap_or(0)
    }

    /// Settled units of a fund not already being sold.
    pub fn available_units(&self, member: MemberId, fund: FundId) -> u64 {
        self.units
            .get(&(member, fund))
            .map_or(0, |u| u.settled - u.reserved)
    }

    pub fn total_contributed(&self) -> u64 {
        self.contributed
    }

    /// Everything paid into the bank: the opening pots' cash and every contribution.
    pub fn total_paid_in(&self) -> u64 {
        self.opening_cash + self.contributed
    }

    /// The custodian's answers for trades of `date`, per fund (at the valuation point, or when
    /// a trade placed after it is priced). Orders of a fund without an answer wait for it.
    pub fn valuation(&mut self, date: Date, outcomes: &BTreeMap<FundId, Outcome>) {
        let keys: Vec<(Date, FundId)> = self
            .orders
            .range((date, 0)..=(date, FundId::MAX))
            .map(|(k, _)| *k)
            .filter(|k| outcomes.contains_key(&k.1))
            .collect();
        for key in keys {
            let orders = self.orders.remove(&key).expect("listed");
            let fund = key.1;
            match outcomes.get(&fund).copied() {
                None | Some(Outcome::Rejected) => {
                    for o in &orders {
                        self.release(o, fund, o.amount);
                        self.expected
                            .insert(o.instruction, InstructionState::Rejected);
                        self.switches.remove(&o.instruction);
                    }
                }
                Some(Outcome::Filled {
                    fill_ppm,
                    price,
                    settle_date,
                }) => {
                    self.trade(date, fund, orders, fill_ppm, price, settle_date);
                }
            }
        }
    }

    /// Switches whose sale settled and whose purchase intake has not yet received.
    pub fn purchases_waiting(&self) -> Vec<InstructionId> {
        self.purchases.keys().copied().collect()
    }

    /// (date, fund) of the orders of dates before `date` still waiting for the custodian.
    pub fn unanswered_before(&self, date: Date) -> Vec<(Date, FundId)> {
        self.orders.range(..(date, 0)).map(|(k, _)| *k).collect()
    }

    /// Intake received the purchase of switch `instruction` (it heard the sale settled), so
    /// the purchase deals on `dealing_date`. A later copy of the notice finds nothing.
    pub fn purchase_received(&mut self, instruction: InstructionId, dealing_date: Date) {
        if let Some((fund, order)) = self.purchases.remove(&instruction) {
            self.order(dealing_date, fund, order);
        }
    }

    /// Gives back the unfilled part of an order's reservation.
    fn release(&mut self, o: &ModelOrder, fund: FundId, unfilled: u64) {
        match o.kind {
            Kind::Buy => *self.cash_available.get_mut(&o.member).expect("member") += unfilled,
            Kind::Sell => {
                self.units
                    .get_mut(&(o.member, fund))
                    .expect("holding")
                    .reserved -= unfilled
            }
        }
    }

    fn trade(
        &mut self,
        date: Date,
        fund: FundId,
        mut orders: Vec<ModelOrder>,
        fill_ppm: u32,
        price: Price,
        settle_date: Date,
    ) {
        // The rule breaks ties in a partial fill in favour of the lower instruction id.
        orders.sort_by_key(|o| (o.instruction, o.leg));
        let requested = |kind| -> Vec<u64> {
            orders
                .iter()
                .filter(|o| o.kind == kind)
                .map(|o| o.amount)
                .collect()
        };
        let (buys, sells) = (requested(Kind::Buy), requested(Kind::Sell));
        let buy_fill = (buys.iter().sum::<u64>() as u128 * fill_ppm as u128 / 1_000_000) as u64;
        let sell_fill = (sells.iter().sum::<u64>() as u128 * fill_ppm as u128 / 1_000_000) as u64;
        let (buy_fills, sell_fills) = (
            shares_by_largest_remainder(buy_fill, &buys),
            shares_by_largest_remainder(sell_fill, &sells),
        );
        let (mut bi, mut si) = (0, 0);
        let mut fills = Vec::with_capacity(orders.len());
        for o in &orders {
            let f = match o.kind {
                Kind::Buy => {
                    bi += 1;
                    buy_fills[bi - 1]
                }
                Kind::Sell => {
                    si += 1;
                    sell_fills[si - 1]
                }
            };
            fills.push(f);
        }
        for (o, &f) in orders.iter().zip(&fills) {
            self.release(o, fund, o.amount - f);
            if o.kind == Kind::Sell {
                // Sold units leave the pot at the valuation point.
                let u = self.units.get_mut(&(o.member, fund)).expect("holding");
                u.settled -= f;
                u.reserved -= f;
            }
            if f == 0 {
                self.expected
                    .insert(o.instruction, InstructionState::Rejected);
                self.switches.remove(&o.instruction);
            }
            *self
                .settling
                .entry((settle_date, o.member, fund))
                .or_default() += 1;
        }
        let mut t = ModelTrade {
            fund,
            settle_date,
            orders,
            fills,
            proceeds: Vec::new(),
            units_residual: 0,
            cash_residual: 0,
            buy_fill,
            sell_fill,
        };
        self.book(&mut t, price, 1);
        self.trades.insert((date, fund), t);
    }

    /// Computes a trade's proceeds at `price` and adds (`sign` 1) or removes (`sign` -1) them as
    /// pending amounts.
    fn book(&mut self, t: &mut ModelTrade, price: Price, sign: i8) {
        if sign > 0 {
            let units_bought = (t.buy_fill as u128 * 10_000_000_000 / price.0 as u128) as u64;
            let cash_for_sold = (t.sell_fill as u128 * price.0 as u128 / 10_000_000_000) as u64;
            let weights = |kind| -> Vec<u64> {
                t.orders
                    .iter()
                    .zip(&t.fills)
                    .filter(|(o, _)| o.kind == kind)
                    .map(|(_, &f)| f)
                    .collect()
            };
            let (buy_shares, units_residual) = floor_shares(units_bought, &weights(Kind::Buy));
            let (sell_shares, cash_residual) = floor_shares(cash_for_sold, &weights(Kind::Sell));
            let (mut bi, mut si) = (buy_shares.into_iter(), sell_shares.into_iter());
            t.proceeds = t
                .orders
                .iter()
                .map(|o| match o.kind {
                    Kind::Buy => bi.next(),
                    Kind::Sell => si.next(),
                })
                .map(|p| p.expect("share per order"))
                .collect();
            t.units_residual = units_residual;
            t.cash_residual = cash_residual;
        }
        let apply = |v: &mut u64, x: u64| if sign > 0 { *v += x } else { *v -= x };
        for (o, &p) in t.orders.iter().zip(&t.proceeds) {
            match o.kind {
                Kind::Buy => apply(
                    &mut self.units.entry((o.member, t.fund)).or_default().pending,
                    p,
                ),
                Kind::Sell => apply(self.cash_pending.entry(o.member).or_default(), p),
            }
        }
        apply(
            &mut self.rounding_units.entry(t.fund).or_default().pending,
            t.units_residual,
        );
        apply(&mut self.rounding_cash.pending, t.cash_residual);
    }

    /// Sale proceeds booked for a member and not yet settled.
    pub fn pending_cash(&self, member: MemberId) -> u64 {
        self.cash_pending.get(&member).copied().unwrap_or(0)
    }

    /// The custodian amended the price of the trade of `fund` on `date`.
    /// False if the model has no such trade open (the platform traded what it should not
    /// have): the caller reports it.
    pub fn amend(&mut self, date: Date, fund: FundId, price: Price) -> bool {
        let Some(mut t) = self.trades.remove(&(date, fund)) else {
            return false;
        };
        self.book(&mut t, price, -1);
        self.book(&mut t, price, 1);
        self.trades.insert((date, fund), t);
        true
    }

    /// Settlement day `date`: trades due settle; a settled switch sale buys its target fund today.
    pub fn settlement(&mut self, date: Date) {
        let due: Vec<(Date, FundId)> = self
            .trades
            .iter()
            .filter(|(_, t)| t.settle_date == date)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let t = self.trades.remove(&key).expect("listed");
            for (o, &p) in t.orders.iter().zip(&t.proceeds) {
                match o.kind {
                    Kind::Buy => {
                        let u = self.units.get_mut(&(o.member, t.fund)).expect("allocated");
                        u.pending -= p;
                        u.settled += p;
                    }
                    Kind::Sell => {
                        *self.cash_pending.get_mut(&o.member).expect("booked") -= p;
                        let switch = self.switches.remove(&o.instruction);
                        match switch {
                            Some((member, to)) if p > 0 && o.leg == 0 => {
                                let purchase = ModelOrder {
                                    instruction: o.instruction,
                                    leg: 1,
                                    member,
                                    kind: Kind::Buy,
                                    amount: p,
                                };
                                self.purchases.insert(o.instruction, (to, purchase));
                            }
                            _ => *self.cash_available.get_mut(&o.member).expect("member") += p,
                        }
                    }
                }
            }
            let r = self.rounding_units.get_mut(&t.fund).expect("booked");
            r.pending -= t.units_residual;
            r.settled += t.units_residual;
            self.rounding_cash.pending -= t.cash_residual;
            self.rounding_cash.settled += t.cash_residual;
        }
    }

    pub fn units(&self, member: MemberId, fund: FundId) -> Units {
        self.units.get(&(member, fund)).copied().unwrap_or_default()
    }

    pub fn rounding_units(&self, fund: FundId) -> Rounding {
        self.rounding_units.get(&fund).copied().unwrap_or_default()
    }

    pub fn rounding_cash(&self) -> Rounding {
        self.rounding_cash
    }

    /// How many trades of (member, fund) settle on `date`.
    pub fn settling(&self, date: Date, member: MemberId, fund: FundId) -> u32 {
        self.settling
            .get(&(date, member, fund))
            .copied()
            .unwrap_or(0)
    }

    /// Per fund, the members with an order in a trade settling on `date` (before it settles).
    pub fn members_settling(
        &self,
        date: Date,
    ) -> BTreeMap<FundId, std::collections::BTreeSet<MemberId>> {
        let mut out: BTreeMap<FundId, std::collections::BTreeSet<MemberId>> = BTreeMap::new();
        for t in self.trades.values().filter(|t| t.settle_date == date) {
            out.entry(t.fund)
                .or_default()
                .extend(t.orders.iter().map(|o| o.member));
        }
        out
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

    /// The re-balancing pass after the valuation point of `date`, decided from the model's own
    /// holdings by the business rule (see `acme_processes::trading::rebalancing` for its
    /// statement; this is a separate implementation of it). Returns the switches as
    /// instructions; the caller submits them for `trade_date`.
    pub fn rebalance(
        &mut self,
        date: Date,
        prices: &BTreeMap<FundId, Price>,
        set: &ModelSet,
    ) -> Vec<Instruction> {
        let mut out = Vec::new();
        let busy_cash: std::collections::BTreeSet<MemberId> = self
            .cash_pending
            .iter()
            .filter(|(_, &p)| p > 0)
            .map(|(&m, _)| m)
            .collect();
        for (&member, &profile) in &self.profiles {
            let Some(model) = set.models.get(profile as usize) else {
                continue;
            };
            let holdings: Vec<Units> = set.funds.iter().map(|&f| self.units(member, f)).collect();
            if busy_cash.contains(&member)
                || holdings.iter().any(|u| u.pending > 0 || u.reserved > 0)
            {
                continue;
            }
            let values: Vec<i128> = set
                .funds
                .iter()
                .zip(&holdings)
                .map(|(f, u)| (u.settled as i128 * prices[f].0 as i128) / 10_000_000_000)
                .collect();
            let total: i128 = values.iter().sum();
            if total < set.min_value_pence as i128 {
                continue;
            }
            let targets: Vec<i128> = model
                .target_bp
                .iter()
                .map(|&t| total * t as i128 / 10_000)
                .collect();
            let drifted = values
                .iter()
                .zip(&model.target_bp)
                .any(|(v, &t)| ((v * 10_000 / total) - t as i128).abs() > set.band_bp as i128);
            if !drifted {
                continue;
            }
            let mut gap: Vec<i128> = values.iter().zip(&targets).map(|(v, t)| v - t).collect();
            let mut index = 0;
            loop {
                // Largest surplus and largest shortfall; on ties the earlier fund.
                let pick = |sign: i128| {
                    let mut best: Option<usize> = None;
                    for (i, g) in gap.iter().enumerate() {
                        if g * sign > 0 && best.is_none_or(|b| g * sign > gap[b] * sign) {
                            best = Some(i);
                        }
                    }
                    best
                };
                let (Some(from), Some(to)) = (pick(1), pick(-1)) else {
                    break;
                };
                let amount = gap[from].min(-gap[to]);
                gap[from] -= amount;
                gap[to] += amount;
                let fund = set.funds[from];
                // A switch is one instruction: what is beyond its limit waits for the next pass.
                let units = ((amount * 10_000_000_000) / prices[&fund].0 as i128)
                    .min(holdings[from].settled as i128)
                    .min(UNITS_PER_INSTRUCTION_MAX as i128) as u64;
                if units == 0 {
                    continue;
                }
                out.push(Instruction {
                    id: rebalance_instruction_id(member, date, index),
                    member,
                    kind: InstructionKind::Switch {
                        from_fund: fund,
                        to_fund: set.funds[to],
                        units_micro: units,
                    },
                    origin: Origin::Rebalancing,
                });
                index += 1;
            }
        }
        out
    }

    /// Switches whose sale has not settled yet, or whose purchase intake has not received.
    pub fn switches_waiting(&self) -> usize {
        self.switches.len() + self.purchases.len()
    }

    /// Orders waiting for a valuation point (there must be none at the end of a run).
    pub fn open_orders(&self) -> usize {
        self.orders.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acme_processes::trading::intake::{INSTRUCTION_CASH_MAX_PENCE, INSTRUCTION_UNITS_MAX};

    /// The model states intake's limits on its own; when intake's change, the rule changed and
    /// the model must be told.
    #[test]
    fn the_instruction_limits_are_intakes() {
        assert_eq!(CASH_PER_INSTRUCTION_MAX, INSTRUCTION_CASH_MAX_PENCE);
        assert_eq!(UNITS_PER_INSTRUCTION_MAX, INSTRUCTION_UNITS_MAX);
    }

    #[test]
    fn an_instruction_beyond_the_limits_is_refused_on_sight() {
        let mut o = Oracle::default();
        let d = Date(20_000);
        let i = |id, kind| Instruction {
            id,
            member: 1,
            kind,
            origin: Origin::Member,
        };
        o.submit(&i(1, InstructionKind::Onboard { profile: 0 }), d);
        let max = CASH_PER_INSTRUCTION_MAX;
        o.submit(&i(2, InstructionKind::Contribute { cash_pence: max }), d);
        o.submit(
            &i(
                3,
                InstructionKind::Contribute {
                    cash_pence: max + 1,
                },
            ),
            d,
        );
        let units = UNITS_PER_INSTRUCTION_MAX + 1;
        o.submit(
            &i(
                4,
                InstructionKind::Sell {
                    fund: 1,
                    units_micro: units,
                },
            ),
            d,
        );
        let expected = o.expected_states();
        assert_eq!(expected[&2], InstructionState::Completed);
        assert_eq!(expected[&3], InstructionState::Rejected);
        assert_eq!(expected[&4], InstructionState::Rejected);
        assert_eq!(o.available_cash(1), max);
    }
}
