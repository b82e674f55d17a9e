//! Intake: takes instructions, applies their first ledger step, and keeps every instruction's
//! state until it is terminal.
//!
//! Instructions are buffered and flushed to the ledger as one batch when the buffer is full
//! ([`acme_ledger::BATCH_EVENTS_MAX`]) or [`FLUSH_DELAY_NS`] after the first one arrived, so the
//! ledger sees few large requests however many members write at once.
//!
//! A switch is two orders under one instruction: leg 0 sells the `from` fund; when intake hears
//! that the sale settled (its proceeds are now the member's cash) it reserves exactly those
//! proceeds for leg 1, a buy of the `to` fund, which trades at the next cut-off (the settlement
//! day itself, since sales settle in the morning).

use super::allocation;
use super::{tag, untag};
use crate::calendar::NS_PER_MIN;
use crate::messages::{
    msg_id, Advance, InstructionId, InstructionKind, InstructionState, Leg, Message, MsgKind,
    Order, Origin, Side,
};
use crate::process::{Ctx, Effects, Input, LedgerReply, LedgerRequest, Process, Service};
use acme_ledger::chart::{self, AccountKind, FundId, LEDGER_CASH_GBP};
use acme_ledger::ids::{transfer_id, Domain, Step};
use acme_ledger::{Account, CreateAccountResult, CreateTransferResult, Transfer};
use std::collections::BTreeMap;

/// How long the first instruction of a batch may wait for company.
pub const FLUSH_DELAY_NS: u64 = NS_PER_MIN / 60 / 20; // 50 ms
/// Largest single contribution or investment taken (a sanity bound, £10m).
pub const INSTRUCTION_CASH_MAX_PENCE: u64 = 1_000_000_000;
/// Largest single sale taken (10 million units).
pub const INSTRUCTION_UNITS_MAX: u64 = 10_000_000 * acme_ledger::chart::UNITS_SCALE;

const PHASE_ACCOUNTS: u64 = 1;
const PHASE_TRANSFERS: u64 = 2;
const TIMER_FLUSH: u64 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
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
        })
    }
}

/// The instructions of one flush: those of its account batch, and those (with their leg) of its
/// transfer batch, each in batch order.
type Flush = (Vec<InstructionId>, Vec<(InstructionId, Leg)>);

pub struct Intake {
    funds: Vec<FundId>,
    /// Number of risk profiles members may choose.
    profiles: usize,
    /// Members whose onboarding was taken.
    onboarded: std::collections::BTreeSet<u64>,
    instructions: BTreeMap<InstructionId, Record>,
    buffer: Vec<(InstructionId, Leg)>,
    flush_armed: bool,
    flushes: u64,
    /// Per flush, the instructions of its account and transfer batches, in batch order.
    in_flight: BTreeMap<u64, Flush>,
}

impl Intake {
    pub fn new(funds: Vec<FundId>, profiles: usize) -> Intake {
        Intake {
            funds,
            profiles,
            onboarded: Default::default(),
            instructions: BTreeMap::new(),
            buffer: Vec::new(),
            flush_armed: false,
            flushes: 0,
            in_flight: BTreeMap::new(),
        }
    }

    pub fn instructions(&self) -> &BTreeMap<InstructionId, Record> {
        &self.instructions
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
        let Some(record) = self.instructions.get_mut(&a.instruction) else {
            fx.alert(
                "intake",
                format!(
                    "state {state:?} for unknown instruction {:#x}",
                    a.instruction
                ),
            );
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
                return;
            }
            record.leg = 1;
            record.proceeds_pence = a.proceeds_pence;
            record.state = InstructionState::Received;
            self.enqueue(a.instruction, 1, now, fx);
            return;
        }
        record.state = state;
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
            let record = &self.instructions[&id];
            match record.kind {
                InstructionKind::Onboard { profile } => {
                    // The cash account carries the risk profile: re-balancing reads it there.
                    accounts.push(Account {
                        user_data_32: profile as u32,
                        ..chart::account(AccountKind::MemberCash, LEDGER_CASH_GBP, record.member)
                    });
                    account_ids.push(id);
                }
                InstructionKind::Contribute { cash_pence } => {
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

    fn set_state(&mut self, id: InstructionId, state: InstructionState) {
        let record = self.instructions.get_mut(&id).expect("known instruction");
        if !record.state.is_terminal() {
            record.state = state;
        }
    }

    fn on_accounts(&mut self, flush: u64, results: &[CreateAccountResult], fx: &mut Effects) {
        let ids = std::mem::take(&mut self.in_flight.get_mut(&flush).expect("flush in flight").0);
        assert_eq!(ids.len(), results.len());
        for (id, result) in ids.into_iter().zip(results) {
            if result.is_applied() {
                self.set_state(id, InstructionState::Completed);
            } else {
                fx.alert("intake", format!("onboarding {id:#x}: {result:?}"));
                self.set_state(id, InstructionState::Rejected);
            }
        }
        self.retire(flush);
    }

    fn on_transfers(&mut self, flush: u64, results: &[CreateTransferResult], fx: &mut Effects) {
        let ids = std::mem::take(&mut self.in_flight.get_mut(&flush).expect("flush in flight").1);
        assert_eq!(ids.len(), results.len());
        for ((id, leg), &result) in ids.into_iter().zip(results) {
            let record = &self.instructions[&id];
            let contribution = matches!(record.kind, InstructionKind::Contribute { .. });
            match result {
                r if r.is_applied() && contribution => {
                    self.set_state(id, InstructionState::Completed)
                }
                r if r.is_applied() => {
                    let order = record.order(id, leg).expect("a trading instruction");
                    self.set_state(id, InstructionState::Reserved);
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
                    self.set_state(id, InstructionState::Rejected)
                }
                r => {
                    fx.alert(
                        "intake",
                        format!("instruction {id:#x} leg {leg}: ledger answered {r:?}"),
                    );
                    self.set_state(id, InstructionState::Rejected);
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

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        match input {
            Input::Message(env) => match &env.body {
                Message::Instruction(instruction) => {
                    if self.instructions.contains_key(&instruction.id) {
                        return; // resubmitted under another message id: already taken
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
                    if onboard && valid.is_ok() {
                        self.onboarded.insert(instruction.member);
                    }
                    self.instructions.insert(
                        instruction.id,
                        Record {
                            member: instruction.member,
                            kind: instruction.kind.clone(),
                            origin: instruction.origin,
                            state: if valid.is_ok() {
                                InstructionState::Received
                            } else {
                                InstructionState::Rejected
                            },
                            leg: 0,
                            partial: false,
                            proceeds_pence: 0,
                        },
                    );
                    if valid.is_ok() {
                        self.enqueue(instruction.id, 0, ctx.now, fx);
                    }
                }
                Message::InstructionsAdvanced { orders, state } => {
                    for a in orders {
                        self.advance(a, *state, ctx.now, fx);
                    }
                }
                other => fx.alert("intake", format!("unexpected message {other:?}")),
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
                        self.on_transfers(flush, r, fx)
                    }
                    _ => fx.alert(
                        "intake",
                        format!("unexpected ledger reply for tag {tag:#x}"),
                    ),
                }
            }
        }
    }
}
