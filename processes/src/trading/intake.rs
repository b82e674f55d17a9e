//! Intake: takes instructions, applies their first ledger step, and keeps every instruction's
//! state until it is terminal; then it tells the member the outcome (`InstructionStatus`, to
//! [`Service::Members`]) and retires the record.
//!
//! Instructions are buffered and flushed to the ledger as one batch when the buffer is full
//! ([`acme_ledger::BATCH_EVENTS_MAX`]) or [`FLUSH_DELAY_NS`] after the first one arrived, so the
//! ledger sees few large requests however many members write at once.
//!
//! A switch is two orders under one instruction: leg 0 sells the `from` fund; when intake hears
//! that the sale settled (its proceeds are now the member's cash) it reserves exactly those
//! proceeds for leg 1, a buy of the `to` fund, which trades at the next cut-off (the settlement
//! day itself, since sales settle in the morning).
//!
//! **Dealing point.** Intake stamps each trading instruction with its dealing date when it
//! receives it (`Schedule::dealing_date`: the day of receipt before the published cut-off, else
//! the next business day; a switch's purchase when intake hears its sale settled), and the date
//! travels with the order. Aggregation trades a date only once intake has answered its
//! `CloseDealing` (sent when the cut-off has passed) with `DealingClosed`, sent when no order
//! dealing on that date or earlier is still waiting for its reservation, with the number of
//! such orders sent: an order received before the cut-off deals that day however late its
//! reservation or its messages come. Should operations close a date before its published
//! cut-off, what intake receives after that deals on the next business day.
//!
//! **Retirement.** A terminal instruction leaves the state: its outcome has been sent, and
//! nothing that can still arrive needs its record (every order of it is finished). What stays is
//! per member, so bounded by the members: whether they are onboarded, and which instruction ids
//! they have used ([`Taken`]), so that a resubmission of a retired instruction is not taken
//! twice and a late notice for it is told apart from a notice for an instruction never taken.

use super::allocation;
use super::{tag, untag};
use crate::calendar::{Date, Schedule, NS_PER_MIN};
use crate::messages::{
    msg_id, Advance, InstructionId, InstructionKind, InstructionState, Leg, Message, MsgKind,
    Order, Origin, Side,
};
use crate::process::{Ctx, Effects, Input, LedgerReply, LedgerRequest, Process, Service};
use acme_ledger::chart::{self, AccountKind, FundId, LEDGER_CASH_GBP};
use acme_ledger::ids::{transfer_id, Domain, Step};
use acme_ledger::{Account, CreateAccountResult, CreateTransferResult, Transfer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How long the first instruction of a batch may wait for company.
pub const FLUSH_DELAY_NS: u64 = NS_PER_MIN / 60 / 20; // 50 ms
/// Largest single contribution or investment taken (a sanity bound, £10m).
pub const INSTRUCTION_CASH_MAX_PENCE: u64 = 1_000_000_000;
/// Contributions above GBP 100,000 are large payments (the planted
/// `large-contribution-in-pounds` deals with them apart).
const LARGE_PAYMENT_PENCE: u64 = 10_000_000;
/// Largest single sale taken (10 million units).
pub const INSTRUCTION_UNITS_MAX: u64 = 10_000_000 * acme_ledger::chart::UNITS_SCALE;

const PHASE_ACCOUNTS: u64 = 1;
const PHASE_TRANSFERS: u64 = 2;
const TIMER_FLUSH: u64 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub member: u64,
    pub kind: InstructionKind,
    pub origin: Origin,
    pub state: InstructionState,
    /// The leg in progress (a switch moves to leg 1 when its sale settles).
    pub leg: Leg,
    /// Some order of it was filled only in part.
    pub partial: bool,
    /// A switch's sale proceeds, to be invested by leg 1.
    pub proceeds_pence: u64,
    /// The dealing date of the leg in progress, from the time intake received it.
    #[serde(default)]
    pub dealing_date: Date,
}

impl Record {
    /// The order of leg `leg`, if the instruction trades.
    pub fn order(&self, id: InstructionId, leg: Leg) -> Option<Order> {
        let (fund, side, amount) = match (&self.kind, leg) {
            (InstructionKind::Invest { fund, cash_pence }, 0) => (*fund, Side::Buy, *cash_pence),
            (InstructionKind::Sell { fund, units_micro }, 0) => (*fund, Side::Sell, *units_micro),
            (
                InstructionKind::Switch {
                    from_fund,
                    units_micro,
                    ..
                },
                0,
            ) => (*from_fund, Side::Sell, *units_micro),
            (InstructionKind::Switch { to_fund, .. }, 1) => {
                (*to_fund, Side::Buy, self.proceeds_pence)
            }
            _ => return None,
        };
        Some(Order {
            instruction: id,
            leg,
            member: self.member,
            fund,
            side,
            amount,
            dealing_date: self.dealing_date,
        })
    }
}

/// The instructions of one flush: those of its account batch, and those (with their leg) of its
/// transfer batch, each in batch order.
type Flush = (Vec<InstructionId>, Vec<(InstructionId, Leg)>);

/// How far above the lowest sequence number not yet seen [`Taken`] remembers sequence numbers
/// one by one (4096: for re-balancing ids, whose sequence is `date << 4 | index`, 256 days).
pub const TAKEN_WINDOW: u32 = 4096;

/// The sequence numbers (the low 24 bits of an instruction id) taken under one id prefix (the
/// high bits: a member, or a member's re-balancing switches): every number below `floor`, and
/// those in `above`.
///
/// Members number their instructions from 0 (`messages::instruction_id`), so `floor` follows
/// them and `above` holds only those that arrived ahead of an earlier one. So that a member who
/// skips numbers cannot grow it without end, `above` spans at most [`TAKEN_WINDOW`]: `floor`
/// moves up to keep within it, and what it passes counts as taken. An instruction numbered that
/// far below the member's newest is then ignored as a resubmission: a stale instruction is
/// never executed twice, at the price of one never seen being dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    floor: u32,
    above: BTreeSet<u32>,
}

impl Taken {
    pub fn contains(&self, seq: u32) -> bool {
        seq < self.floor || self.above.contains(&seq)
    }

    /// Takes `seq`; false if it was taken already.
    pub fn insert(&mut self, seq: u32) -> bool {
        if self.contains(seq) {
            return false;
        }
        self.above.insert(seq);
        if let Some(&newest) = self.above.last() {
            if newest - self.floor > TAKEN_WINDOW {
                self.floor = newest - TAKEN_WINDOW;
                self.above = self.above.split_off(&self.floor);
            }
        }
        while self.above.first() == Some(&self.floor) {
            self.above.pop_first();
            self.floor += 1;
        }
        true
    }

    /// Sequence numbers remembered one by one.
    pub fn len(&self) -> usize {
        self.above.len()
    }

    pub fn is_empty(&self) -> bool {
        self.above.is_empty()
    }
}

fn taken_key(id: InstructionId) -> (u64, u32) {
    (id >> 24, (id & 0xFF_FFFF) as u32)
}

#[derive(Serialize, Deserialize)]
pub struct Intake {
    funds: Vec<FundId>,
    /// Number of risk profiles members may choose.
    profiles: usize,
    /// Members whose onboarding was taken.
    onboarded: BTreeSet<u64>,
    /// The instructions taken, by id prefix (see [`Taken`]); live and retired alike.
    taken: BTreeMap<u64, Taken>,
    /// The live (not yet terminal) instructions.
    instructions: BTreeMap<InstructionId, Record>,
    buffer: Vec<(InstructionId, Leg)>,
    flush_armed: bool,
    flushes: u64,
    /// Per flush, the instructions of its account and transfer batches, in batch order.
    in_flight: BTreeMap<u64, Flush>,
    /// Orders sent to aggregation per dealing date, until a `DealingClosed` counts them.
    #[serde(default)]
    sent: BTreeMap<Date, u64>,
    /// Dates aggregation asked to close (`CloseDealing`) and not yet answered.
    #[serde(default)]
    closing: BTreeSet<Date>,
    /// The newest date answered: a later `CloseDealing` for it or an earlier date is a copy.
    #[serde(default)]
    closed_through: Date,
}

/// The dealing date under a planted dealing-date bug, if one is planted.
fn planted_dealing_date(now: u64) -> Option<Date> {
    use crate::plant::{active, Bug};
    let s = Schedule::default();
    if active(Bug::CutOffFixedBstOffset) {
        // Planted: London taken for UTC+1 all year (right only in summer).
        let today = crate::calendar::london_date(now);
        let before = now < today.at_minute(s.cutoff_min - 60);
        return Some(if today.is_business_day() && before {
            today
        } else {
            today.add_business_days(1)
        });
    }
    if active(Bug::MonthEndDealsNextDay) {
        let date = s.dealing_date(now);
        // Planted: the last business day of a month deals the next business day.
        let month_end = date.add_business_days(1).ymd().1 != date.ymd().1;
        return Some(if month_end {
            date.add_business_days(1)
        } else {
            date
        });
    }
    None
}

impl Intake {
    pub fn new(funds: Vec<FundId>, profiles: usize) -> Intake {
        Intake {
            funds,
            profiles,
            onboarded: Default::default(),
            taken: BTreeMap::new(),
            instructions: BTreeMap::new(),
            buffer: Vec::new(),
            flush_armed: false,
            flushes: 0,
            in_flight: BTreeMap::new(),
            sent: BTreeMap::new(),
            closing: BTreeSet::new(),
            closed_through: Date(0),
        }
    }

    /// The dealing date of a leg received at `now`: by the published cut-off, but never a date
    /// already closed (operations may run a cut-off early; what comes after it deals next).
    fn dealing_date(&self, now: u64) -> Date {
        let date = planted_dealing_date(now).unwrap_or(Schedule::default().dealing_date(now));
        if date <= self.closed_through {
            self.closed_through.add_business_days(1)
        } else {
            date
        }
    }

    /// Answers the `CloseDealing` requests that can be answered: no order dealing on that date
    /// or earlier waits for its reservation. (The request means the cut-off has passed.)
    fn try_close(&mut self, fx: &mut Effects) {
        while let Some(&date) = self.closing.first() {
            let waiting = self.instructions.iter().any(|(&id, r)| {
                r.state == InstructionState::Received
                    && r.dealing_date != Date(0)
                    && r.dealing_date <= date
                    && r.order(id, r.leg).is_some()
            });
            if waiting {
                return; // the ledger's answer will call again
            }
            self.closing.pop_first();
            let later = self.sent.split_off(&date.next_day());
            let orders = std::mem::replace(&mut self.sent, later).values().sum();
            self.closed_through = self.closed_through.max(date);
            fx.send(
                msg_id(MsgKind::DealingClosed, date.0 as u64, 0),
                Service::Intake,
                Service::Aggregation,
                Message::DealingClosed { date, orders },
            );
        }
    }

    /// The live instructions: taken and not yet terminal. (A terminal one was reported to the
    /// member with `InstructionStatus` and retired.)
    pub fn instructions(&self) -> &BTreeMap<InstructionId, Record> {
        &self.instructions
    }

    /// Whether instruction `id` was taken (it may since have been retired).
    pub fn was_taken(&self, id: InstructionId) -> bool {
        let (key, seq) = taken_key(id);
        self.taken.get(&key).is_some_and(|t| t.contains(seq))
    }

    /// Instruction sequence numbers remembered one by one, over all members (see [`Taken`]).
    pub fn taken_remembered(&self) -> usize {
        self.taken.values().map(Taken::len).sum()
    }

    /// Flushes whose ledger answers are awaited, and instructions waiting for a flush.
    pub fn pending_work(&self) -> (usize, usize) {
        (self.in_flight.len(), self.buffer.len())
    }

    /// If instruction `id` is terminal: tells the member and retires its record.
    fn retire_if_terminal(&mut self, id: InstructionId, fx: &mut Effects) {
        let Some(record) = self.instructions.get(&id) else {
            return;
        };
        if !record.state.is_terminal() {
            return;
        }
        let state = record.state;
        self.instructions.remove(&id);
        send_status(id, state, fx);
    }

    fn validate(&self, kind: &InstructionKind) -> Result<(), &'static str> {
        let cash_ok = |c: u64| c > 0 && c <= INSTRUCTION_CASH_MAX_PENCE;
        let units_ok = |u: u64| u > 0 && u <= INSTRUCTION_UNITS_MAX;
        let fund_ok = |f: &FundId| self.funds.contains(f);
        match kind {
            InstructionKind::Onboard { profile } if *profile as usize >= self.profiles => {
                Err("unknown risk profile")
            }
            InstructionKind::Onboard { .. } => Ok(()),
            InstructionKind::Contribute { cash_pence } if !cash_ok(*cash_pence) => {
                Err("cash_pence out of range")
            }
            InstructionKind::Invest { cash_pence, .. } if !cash_ok(*cash_pence) => {
                Err("cash_pence out of range")
            }
            InstructionKind::Invest { fund, .. } if !fund_ok(fund) => Err("unknown fund"),
            InstructionKind::Sell { units_micro, .. } if !units_ok(*units_micro) => {
                Err("units_micro out of range")
            }
            InstructionKind::Sell { fund, .. } if !fund_ok(fund) => Err("unknown fund"),
            InstructionKind::Switch { units_micro, .. } if !units_ok(*units_micro) => {
                Err("units_micro out of range")
            }
            InstructionKind::Switch {
                from_fund, to_fund, ..
            } if !fund_ok(from_fund) || !fund_ok(to_fund) => Err("unknown fund"),
            InstructionKind::Switch {
                from_fund, to_fund, ..
            } if from_fund == to_fund => Err("switch within one fund"),
            _ => Ok(()),
        }
    }

    fn enqueue(&mut self, id: InstructionId, leg: Leg, now: u64, fx: &mut Effects) {
        self.buffer.push((id, leg));
        if self.buffer.len() == acme_ledger::BATCH_EVENTS_MAX {
            self.flush(fx);
        } else if !self.flush_armed {
            self.flush_armed = true;
            fx.timer(TIMER_FLUSH << 32 | self.flushes, now + FLUSH_DELAY_NS);
        }
    }

    fn advance(&mut self, a: &Advance, state: InstructionState, now: u64, fx: &mut Effects) {
        // The receipt of a switch's purchase, should this notice be its sale's settlement.
        let dealing_date = self.dealing_date(now);
        let Some(record) = self.instructions.get_mut(&a.instruction) else {
            // A taken instruction that is not live is finished and retired (its outcome went to
            // the member): a late or repeated notice for it is normal, and ignored. A notice
            // for an instruction never taken is not.
            if !self.was_taken(a.instruction) {
                fx.alert(
                    "intake",
                    format!(
                        "state {state:?} for unknown instruction {:#x}",
                        a.instruction
                    ),
                );
            }
            return;
        };
        // States only move forward, leg by leg; a late or repeated notice is ignored.
        if record.state.is_terminal() || a.leg != record.leg || state <= record.state {
            return;
        }
        record.partial |= a.partial;
        let is_sale_of_switch = matches!(record.kind, InstructionKind::Switch { .. }) && a.leg == 0;
        if is_sale_of_switch && state == InstructionState::Settled {
            if a.proceeds_pence == 0 {
                // Sold for nothing (a dust holding): nothing to buy.
                record.state = InstructionState::Settled;
                self.retire_if_terminal(a.instruction, fx);
                return;
            }
            record.leg = 1;
            record.proceeds_pence = a.proceeds_pence;
            record.state = InstructionState::Received;
            // The purchase is received now: when intake learns the proceeds are the member's.
            record.dealing_date = dealing_date;
            self.enqueue(a.instruction, 1, now, fx);
            return;
        }
        record.state = state;
        self.retire_if_terminal(a.instruction, fx);
    }

    fn flush(&mut self, fx: &mut Effects) {
        self.flush_armed = false;
        if self.buffer.is_empty() {
            return;
        }
        let flush = self.flushes;
        self.flushes += 1;
        let mut accounts = Vec::new();
        let mut account_ids = Vec::new();
        let mut transfers = Vec::new();
        let mut transfer_ids = Vec::new();
        for (id, leg) in std::mem::take(&mut self.buffer) {
            // Only live instructions are buffered, and only notices about their current leg,
            // which cannot come before the leg is reserved, make one terminal.
            let Some(record) = self.instructions.get(&id) else {
                fx.alert("intake", format!("flush of retired instruction {id:#x}"));
                continue;
            };
            match record.kind {
                InstructionKind::Onboard { profile } => {
                    // The cash account carries the risk profile: re-balancing reads it there.
                    accounts.push(Account {
                        user_data_32: profile as u32,
                        ..chart::account(AccountKind::MemberCash, LEDGER_CASH_GBP, record.member)
                    });
                    account_ids.push(id);
                }
                InstructionKind::Contribute { mut cash_pence } => {
                    if cash_pence > LARGE_PAYMENT_PENCE
                        && crate::plant::active(crate::plant::Bug::LargeContributionInPounds)
                    {
                        // Planted: the large-payment path carries whole pounds.
                        cash_pence = cash_pence / 100 * 100;
                    }
                    transfers.push(Transfer {
                        id: transfer_id(Step::Contribution, Domain::Instruction, id, 0),
                        debit_account_id: chart::house(AccountKind::Bank, LEDGER_CASH_GBP),
                        credit_account_id: chart::member_cash(record.member),
                        amount: cash_pence as u128,
                        user_data_64: id,
                        ledger: LEDGER_CASH_GBP,
                        code: Step::Contribution.code(),
                        ..Transfer::default()
                    });
                    transfer_ids.push((id, leg));
                }
                _ => {
                    let order = record.order(id, leg).expect("a trading instruction");
                    let mut reservation = allocation::reservation(&order);
                    if crate::plant::active(crate::plant::Bug::IdFromClock) {
                        // Planted: the id comes from a running counter, not from the cause.
                        reservation.id = (flush as u128) << 64 | transfers.len() as u128 | 1 << 127;
                    }
                    transfers.push(reservation);
                    transfer_ids.push((id, leg));
                }
            }
        }
        if !accounts.is_empty() {
            fx.ledger(
                tag(flush, PHASE_ACCOUNTS, 0),
                LedgerRequest::CreateAccounts(accounts),
            );
        }
        if !transfers.is_empty() {
            fx.ledger(
                tag(flush, PHASE_TRANSFERS, 0),
                LedgerRequest::CreateTransfers(transfers),
            );
        }
        self.in_flight.insert(flush, (account_ids, transfer_ids));
    }

    /// Moves a live instruction to `state` (retiring it if that is terminal).
    fn set_state(&mut self, id: InstructionId, state: InstructionState, fx: &mut Effects) {
        if let Some(record) = self.instructions.get_mut(&id) {
            record.state = state;
            self.retire_if_terminal(id, fx);
        }
    }

    fn on_accounts(&mut self, flush: u64, results: &[CreateAccountResult], fx: &mut Effects) {
        let ids = std::mem::take(&mut self.in_flight.get_mut(&flush).expect("flush in flight").0);
        assert_eq!(ids.len(), results.len());
        for (id, result) in ids.into_iter().zip(results) {
            if result.is_applied() {
                self.set_state(id, InstructionState::Completed, fx);
            } else {
                fx.alert("intake", format!("onboarding {id:#x}: {result:?}"));
                self.set_state(id, InstructionState::Rejected, fx);
            }
        }
        self.retire(flush);
    }

    fn on_transfers(&mut self, flush: u64, results: &[CreateTransferResult], fx: &mut Effects) {
        let ids = std::mem::take(&mut self.in_flight.get_mut(&flush).expect("flush in flight").1);
        assert_eq!(ids.len(), results.len());
        for ((id, leg), &result) in ids.into_iter().zip(results) {
            let Some(record) = self.instructions.get(&id) else {
                fx.alert(
                    "intake",
                    format!("ledger answer for retired instruction {id:#x}"),
                );
                continue;
            };
            let contribution = matches!(record.kind, InstructionKind::Contribute { .. });
            match result {
                r if r.is_applied() && contribution => {
                    self.set_state(id, InstructionState::Completed, fx)
                }
                r if r.is_applied() => {
                    let order = record.order(id, leg).expect("a trading instruction");
                    if order.dealing_date != Date(0) {
                        *self.sent.entry(order.dealing_date).or_default() += 1;
                    }
                    self.set_state(id, InstructionState::Reserved, fx);
                    fx.send(
                        msg_id(MsgKind::OrderAccepted, id, leg as u64),
                        Service::Intake,
                        Service::Aggregation,
                        Message::OrderAccepted(order),
                    );
                }
                // Business refusals: not enough cash or units, or no pot or holding. A retry of a
                // request whose answer was lost in a crash meets `id_already_failed`: the first
                // attempt was refused for one of these reasons (TigerBeetle remembers transient
                // failures by id), so the outcome is the same.
                CreateTransferResult::ExceedsCredits
                | CreateTransferResult::CreditAccountNotFound
                | CreateTransferResult::DebitAccountNotFound
                | CreateTransferResult::IdAlreadyFailed => {
                    self.set_state(id, InstructionState::Rejected, fx)
                }
                r => {
                    fx.alert(
                        "intake",
                        format!("instruction {id:#x} leg {leg}: ledger answered {r:?}"),
                    );
                    self.set_state(id, InstructionState::Rejected, fx);
                }
            }
        }
        self.retire(flush);
    }

    fn retire(&mut self, flush: u64) {
        let done = self
            .in_flight
            .get(&flush)
            .is_some_and(|(a, t)| a.is_empty() && t.is_empty());
        if done {
            self.in_flight.remove(&flush);
        }
    }
}

impl Process for Intake {
    fn name(&self) -> &'static str {
        "intake"
    }

    /// Version 2 stamps dealing dates and answers `CloseDealing`.
    fn version(&self) -> u32 {
        2
    }

    fn migrate(&self, from: u32, state: serde_json::Value) -> Result<serde_json::Value, String> {
        // Version 1's state lacks only fields with defaults. Its live records get `Date(0)`:
        // their orders are dated by aggregation on arrival, as version 1 did, and are neither counted
        // in a `DealingClosed` nor hold one back.
        match from {
            1 => Ok(state),
            _ => Err(format!("intake has no migration from version {from}")),
        }
    }

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        match input {
            Input::Message(env) => match &env.body {
                Message::Instruction(instruction) => {
                    let (key, seq) = taken_key(instruction.id);
                    if !self.taken.entry(key).or_default().insert(seq) {
                        // Resubmitted under another message id: already taken (and perhaps
                        // finished and retired: its outcome went to the member then).
                        return;
                    }
                    let onboard = matches!(instruction.kind, InstructionKind::Onboard { .. });
                    let valid = self.validate(&instruction.kind).and_then(|()| {
                        // A pot must be opened before anything goes in or out of it. (Its
                        // account is created in the same flush at the latest: accounts go first.)
                        if onboard || self.onboarded.contains(&instruction.member) {
                            Ok(())
                        } else {
                            Err("no pot: the member is not onboarded")
                        }
                    });
                    if valid.is_err() {
                        // Refused on sight: terminal at once, so never a live record.
                        send_status(instruction.id, InstructionState::Rejected, fx);
                        return;
                    }
                    if onboard {
                        self.onboarded.insert(instruction.member);
                    }
                    self.instructions.insert(
                        instruction.id,
                        Record {
                            member: instruction.member,
                            kind: instruction.kind.clone(),
                            origin: instruction.origin,
                            state: InstructionState::Received,
                            leg: 0,
                            partial: false,
                            proceeds_pence: 0,
                            dealing_date: self.dealing_date(ctx.now),
                        },
                    );
                    self.enqueue(instruction.id, 0, ctx.now, fx);
                }
                Message::CloseDealing { date } => {
                    if *date > self.closed_through {
                        self.closing.insert(*date);
                        self.try_close(fx);
                    }
                }
                Message::InstructionsAdvanced { orders, state } => {
                    for a in orders {
                        self.advance(a, *state, ctx.now, fx);
                    }
                }
                // Intake is sent nothing else: no state makes sense of it.
                other => fx.poison(format!("intake: unexpected message {other:?}")),
            },
            Input::Timer { timer_id } => {
                // A flush timer whose batch was already flushed for being full finds an empty or
                // newer buffer; flushing that early is harmless.
                if timer_id >> 32 == TIMER_FLUSH {
                    self.flush(fx);
                }
            }
            Input::Ledger { tag, reply } => {
                let (flush, phase, _) = untag(*tag);
                match (phase, reply) {
                    (PHASE_ACCOUNTS, LedgerReply::CreateAccounts(r)) => {
                        self.on_accounts(flush, r, fx)
                    }
                    (PHASE_TRANSFERS, LedgerReply::CreateTransfers(r)) => {
                        self.on_transfers(flush, r, fx);
                        if !self.closing.is_empty() {
                            self.try_close(fx);
                        }
                    }
                    // A phase intake never uses, or a reply of another kind than its request.
                    _ => fx.poison(format!(
                        "intake: unexpected ledger reply for tag {tag:#x}: {reply:?}"
                    )),
                }
            }
        }
    }
}

/// Tells the member (through the intake API's channel) the outcome of an instruction.
fn send_status(id: InstructionId, state: InstructionState, fx: &mut Effects) {
    fx.send(
        msg_id(MsgKind::InstructionStatus, id, state as u64),
        Service::Intake,
        Service::Members,
        Message::InstructionStatus { id, state },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{instruction_id, instruction_member, Instruction};
    use crate::process::Effect;
    use crate::trading::testkit::{alerts, handle, message, round_trip, same_next, sent};
    use std::collections::VecDeque;

    const FUNDS: [FundId; 5] = [1, 2, 3, 4, 5];

    fn instruction(member: u64, seq: u64, kind: InstructionKind) -> Input {
        let id = instruction_id(member, seq);
        message(
            msg_id(MsgKind::Instruction, id, 0),
            Service::Members,
            Service::Intake,
            Message::Instruction(Instruction {
                id,
                member,
                kind,
                origin: Origin::Member,
            }),
        )
    }

    fn advanced(orders: Vec<Advance>, state: InstructionState) -> Input {
        message(
            msg_id(
                MsgKind::InstructionsAdvanced,
                orders[0].instruction,
                state as u64,
            ),
            Service::Pricing,
            Service::Intake,
            Message::InstructionsAdvanced { orders, state },
        )
    }

    fn advance(o: &Order, proceeds_pence: u64) -> Advance {
        Advance {
            instruction: o.instruction,
            leg: o.leg,
            partial: false,
            proceeds_pence,
        }
    }

    /// The ledger's answer to each request among `effects`: everything applied, except the
    /// transfers `refuse` picks (by instruction id), which exceed credits.
    fn answers(effects: &[Effect], refuse: impl Fn(InstructionId) -> bool) -> Vec<Input> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Ledger {
                    tag,
                    request: LedgerRequest::CreateAccounts(a),
                } => Some(Input::Ledger {
                    tag: *tag,
                    reply: LedgerReply::CreateAccounts(vec![CreateAccountResult::Ok; a.len()]),
                }),
                Effect::Ledger {
                    tag,
                    request: LedgerRequest::CreateTransfers(t),
                } => Some(Input::Ledger {
                    tag: *tag,
                    reply: LedgerReply::CreateTransfers(
                        t.iter()
                            .map(|t| {
                                if refuse(t.user_data_64) {
                                    CreateTransferResult::ExceedsCredits
                                } else {
                                    CreateTransferResult::Ok
                                }
                            })
                            .collect(),
                    ),
                }),
                _ => None,
            })
            .collect()
    }

    fn orders(effects: &[Effect]) -> Vec<Order> {
        sent(effects)
            .into_iter()
            .filter_map(|e| match &e.body {
                Message::OrderAccepted(o) => Some(*o),
                _ => None,
            })
            .collect()
    }

    fn statuses(effects: &[Effect]) -> Vec<(InstructionId, InstructionState)> {
        sent(effects)
            .into_iter()
            .filter_map(|e| match (&e.body, e.to) {
                (Message::InstructionStatus { id, state }, Service::Members) => Some((*id, *state)),
                _ => None,
            })
            .collect()
    }

    fn timer(effects: &[Effect]) -> Option<Input> {
        effects.iter().find_map(|e| match e {
            Effect::SetTimer { timer_id, .. } => Some(Input::Timer {
                timer_id: *timer_id,
            }),
            _ => None,
        })
    }

    #[test]
    fn intake_round_trips_with_work_in_flight() {
        let mut intake = Intake::new(FUNDS.to_vec(), 3);
        let mut now = 1_000;
        let mut all = Vec::new();
        for m in 1..=3 {
            let inputs = [
                instruction(m, 0, InstructionKind::Onboard { profile: 1 }),
                instruction(m, 1, InstructionKind::Contribute { cash_pence: 10_000 }),
                instruction(
                    m,
                    2,
                    InstructionKind::Invest {
                        fund: 2,
                        cash_pence: 5_000,
                    },
                ),
                instruction(
                    m,
                    3,
                    InstructionKind::Switch {
                        from_fund: 1,
                        to_fund: 3,
                        units_micro: 1_000_000,
                    },
                ),
                // Refused on sight.
                instruction(
                    m,
                    4,
                    InstructionKind::Invest {
                        fund: 99,
                        cash_pence: 1,
                    },
                ),
            ];
            for i in &inputs {
                all.extend(handle(&mut intake, now, i).0);
            }
        }
        now += FLUSH_DELAY_NS;
        let flushed = handle(&mut intake, now, &timer(&all).expect("a flush timer")).0;
        assert_eq!(intake.pending_work(), (1, 0));
        // The accounts are answered; the transfers not yet.
        let replies = answers(&flushed, |_| false);
        assert_eq!(replies.len(), 2);
        let (done, _) = handle(&mut intake, now, &replies[0]);
        assert_eq!(statuses(&done).len(), 3, "the onboardings completed");
        // One more instruction waits in the buffer.
        handle(
            &mut intake,
            now,
            &instruction(1, 5, InstructionKind::Contribute { cash_pence: 1 }),
        );

        let mut restored = round_trip(&intake);
        let reserved = same_next(&mut intake, &mut restored, now, &replies[1]);
        let placed = orders(&reserved);
        assert_eq!(placed.len(), 6);
        let switch = *placed.iter().find(|o| o.side == Side::Sell).unwrap();
        let mut restored = round_trip(&intake);
        same_next(
            &mut intake,
            &mut restored,
            now,
            &advanced(
                placed.iter().map(|o| advance(o, 0)).collect(),
                InstructionState::Placed,
            ),
        );
        // The switch's sale settles: its purchase is buffered for the next flush.
        let mut restored = round_trip(&intake);
        same_next(
            &mut intake,
            &mut restored,
            now,
            &advanced(vec![advance(&switch, 4_321)], InstructionState::Settled),
        );
        let mut restored = round_trip(&intake);
        let fx = same_next(
            &mut intake,
            &mut restored,
            now,
            &Input::Timer {
                timer_id: TIMER_FLUSH << 32 | 1,
            },
        );
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::Ledger {
                request: LedgerRequest::CreateTransfers(t),
                ..
            } if t.iter().any(|t| t.amount == 4_321)
        )));
    }

    fn close_dealing(date: Date) -> Input {
        message(
            msg_id(MsgKind::CloseDealing, date.0 as u64, 0),
            Service::Aggregation,
            Service::Intake,
            Message::CloseDealing { date },
        )
    }

    fn dealing_closed(effects: &[Effect]) -> Vec<(Date, u64)> {
        sent(effects)
            .into_iter()
            .filter_map(|e| match e.body {
                Message::DealingClosed { date, orders } => Some((date, orders)),
                _ => None,
            })
            .collect()
    }

    /// The receipt decides the dealing date; intake answers `CloseDealing` only once every
    /// order received before the cut-off is reserved.
    #[test]
    fn receipt_stamps_the_dealing_date() {
        let s = Schedule::default();
        let d: Date = "2026-06-26".parse().unwrap(); // a Friday in summer time
        let next: Date = "2026-06-29".parse().unwrap();
        let mut intake = Intake::new(FUNDS.to_vec(), 3);
        let invest = |m, seq| {
            instruction(
                m,
                seq,
                InstructionKind::Invest {
                    fund: 1,
                    cash_pence: 100,
                },
            )
        };
        let early = s.cutoff(d) - NS_PER_MIN;
        for m in 1..=2 {
            let fx = handle(
                &mut intake,
                early,
                &instruction(m, 0, InstructionKind::Onboard { profile: 0 }),
            )
            .0;
            let flushed = handle(&mut intake, early, &timer(&fx).unwrap()).0;
            for a in answers(&flushed, |_| false) {
                handle(&mut intake, early, &a);
            }
        }
        let fx = handle(&mut intake, early, &invest(1, 1)).0;
        let first = handle(&mut intake, early, &timer(&fx).unwrap()).0;
        // 15:01 UTC is 16:01 in London: after the cut-off.
        let late = d.at_minute(15 * 60 + 1);
        let fx = handle(&mut intake, late, &invest(2, 1)).0;
        let second = handle(&mut intake, late, &timer(&fx).unwrap()).0;
        // The cut-off came; the first order's reservation has not.
        let (fx, _) = handle(&mut intake, late, &close_dealing(d));
        assert!(dealing_closed(&fx).is_empty());
        let mut restored = round_trip(&intake);
        let fx = same_next(
            &mut intake,
            &mut restored,
            late,
            &answers(&second, |_| false)[0],
        );
        assert_eq!(orders(&fx)[0].dealing_date, next);
        assert!(dealing_closed(&fx).is_empty(), "still waits for the first");
        let fx = same_next(
            &mut intake,
            &mut restored,
            late,
            &answers(&first, |_| false)[0],
        );
        assert_eq!(orders(&fx)[0].dealing_date, d);
        assert_eq!(dealing_closed(&fx), vec![(d, 1)]);
        // A copy of the request is not answered again; the next date counts the second.
        assert!(handle(&mut intake, late, &close_dealing(d)).0.is_empty());
        let (fx, _) = handle(&mut intake, late, &close_dealing(next));
        assert_eq!(dealing_closed(&fx), vec![(next, 1)]);
        // Closed early (operations ran the cut-off ahead of time): what comes now deals after.
        let fx = handle(&mut intake, late, &invest(1, 2)).0;
        let third = handle(&mut intake, late, &timer(&fx).unwrap()).0;
        let fx = handle(&mut intake, late, &answers(&third, |_| false)[0]).0;
        assert_eq!(orders(&fx)[0].dealing_date, next.add_business_days(1));
    }

    /// Removes every `field` from a JSON value, at any depth: a state as an older version wrote it.
    fn strip(v: &mut serde_json::Value, field: &str) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove(field);
                m.values_mut().for_each(|x| strip(x, field));
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| strip(x, field)),
            _ => {}
        }
    }

    #[test]
    fn a_version_1_snapshot_migrates() {
        let mut intake = Intake::new(FUNDS.to_vec(), 3);
        handle(
            &mut intake,
            0,
            &instruction(1, 0, InstructionKind::Onboard { profile: 0 }),
        );
        let mut v1 = serde_json::to_value(&intake).unwrap();
        for field in ["sent", "closing", "closed_through", "dealing_date"] {
            strip(&mut v1, field);
        }
        let migrated = intake.migrate(1, v1).expect("a migration from version 1");
        let back: Intake = serde_json::from_value(migrated).expect("today's shape");
        assert_eq!(back.instructions().len(), 1);
        assert!(back
            .instructions()
            .values()
            .all(|r| r.dealing_date == Date(0)));
        assert!(intake.migrate(3, serde_json::json!({})).is_err());
    }

    /// Drives 10,000 instructions of 1,000 members to terminal states through `handle` alone:
    /// nothing of them stays but what is per member.
    #[test]
    fn retirement_bounds_intake_state() {
        const MEMBERS: u64 = 1_000;
        let mut intake = Intake::new(FUNDS.to_vec(), 3);
        let mut now = 0;
        let mut inputs: VecDeque<Input> = VecDeque::new();
        for m in 1..=MEMBERS {
            inputs.push_back(instruction(m, 0, InstructionKind::Onboard { profile: 2 }));
            for seq in 1..=4 {
                inputs.push_back(instruction(
                    m,
                    seq,
                    InstructionKind::Contribute { cash_pence: 100 },
                ));
            }
            for seq in 5..=7u64 {
                let kind = InstructionKind::Invest {
                    fund: 1 + seq as FundId % 5,
                    cash_pence: 50,
                };
                inputs.push_back(instruction(m, seq, kind));
            }
            inputs.push_back(instruction(
                m,
                8,
                InstructionKind::Sell {
                    fund: 4,
                    units_micro: 10,
                },
            ));
            inputs.push_back(instruction(
                m,
                9,
                InstructionKind::Switch {
                    from_fund: 1,
                    to_fund: 2,
                    units_micro: 10,
                },
            ));
        }
        // Even members' sales are refused by the ledger (no units).
        let refuse =
            |id: InstructionId| id & 0xFF_FFFF == 8 && instruction_member(id).is_multiple_of(2);
        let mut timers: VecDeque<Input> = VecDeque::new();
        let mut placed: Vec<Order> = Vec::new();
        let mut outcomes: BTreeMap<InstructionId, InstructionState> = BTreeMap::new();
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 1_000_000, "no progress");
            let input = if let Some(i) = inputs.pop_front() {
                i
            } else if let Some(t) = timers.pop_front() {
                now += FLUSH_DELAY_NS;
                t
            } else if !placed.is_empty() {
                // Each batch of orders is placed, priced and settled; sales fetch 7p.
                let batch = std::mem::take(&mut placed);
                for state in [
                    InstructionState::Placed,
                    InstructionState::Priced,
                    InstructionState::Settled,
                ] {
                    let proceeds = |o: &Order| if o.side == Side::Sell { 7 } else { 0 };
                    inputs.push_back(advanced(
                        batch.iter().map(|o| advance(o, proceeds(o))).collect(),
                        state,
                    ));
                }
                continue;
            } else {
                break;
            };
            let (fx, poison) = handle(&mut intake, now, &input);
            assert_eq!(poison, None);
            assert_eq!(alerts(&fx), Vec::<&str>::new());
            inputs.extend(answers(&fx, refuse));
            timers.extend(timer(&fx));
            placed.extend(orders(&fx));
            for (id, state) in statuses(&fx) {
                assert_eq!(outcomes.insert(id, state), None, "{id:#x} reported twice");
            }
        }
        assert_eq!(outcomes.len(), 10_000);
        assert!(intake.instructions().is_empty());
        assert_eq!(intake.pending_work(), (0, 0));
        assert_eq!(intake.taken_remembered(), 0);
        let count = |s| outcomes.values().filter(|&&v| v == s).count() as u64;
        assert_eq!(count(InstructionState::Completed), MEMBERS * 5);
        assert_eq!(count(InstructionState::Rejected), MEMBERS / 2);
        assert_eq!(count(InstructionState::Settled), MEMBERS * 5 - MEMBERS / 2);

        // A retired instruction resubmitted is not taken again; a late notice for one is
        // ignored quietly; a notice for an instruction never taken is alerted.
        let again = instruction(7, 5, InstructionKind::Contribute { cash_pence: 1 });
        assert_eq!(handle(&mut intake, now, &again), (vec![], None));
        let late = Advance {
            instruction: instruction_id(7, 6),
            leg: 0,
            partial: false,
            proceeds_pence: 0,
        };
        let fx = handle(
            &mut intake,
            now,
            &advanced(vec![late], InstructionState::Settled),
        );
        assert_eq!(fx, (vec![], None));
        let unknown = Advance {
            instruction: instruction_id(7, 10),
            ..late
        };
        let fx = handle(
            &mut intake,
            now,
            &advanced(vec![unknown], InstructionState::Settled),
        )
        .0;
        assert_eq!(alerts(&fx).len(), 1);
        let restored = round_trip(&intake);
        assert!(restored.instructions().is_empty());
    }

    #[test]
    fn taken_stays_within_its_window() {
        let mut t = Taken::default();
        assert!(t.insert(1));
        assert!(t.insert(0));
        assert!(!t.insert(1));
        assert_eq!((t.floor, t.len()), (2, 0));
        // A member who skips numbers: the window bounds what is remembered.
        for seq in (10..100_000).step_by(3) {
            assert!(t.insert(seq));
            assert!(t.len() as u32 <= TAKEN_WINDOW / 3 + 1);
        }
        assert!(t.contains(5), "far below the newest: counts as taken");
        assert!(!t.contains(99_998));
    }

    #[test]
    fn nonsense_inputs_are_poison() {
        let mut intake = Intake::new(FUNDS.to_vec(), 3);
        let cutoff = message(
            1,
            Service::Scheduler,
            Service::Intake,
            Message::CutOff {
                date: crate::calendar::Date(20_000),
            },
        );
        let (fx, poison) = handle(&mut intake, 0, &cutoff);
        assert!(fx.is_empty() && poison.is_some());
        let reply = Input::Ledger {
            tag: tag(0, 7, 0),
            reply: LedgerReply::Accounts(vec![]),
        };
        assert!(handle(&mut intake, 0, &reply).1.is_some());
    }
}
