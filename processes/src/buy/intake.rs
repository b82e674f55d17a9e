//! Intake: takes members' instructions, applies their first ledger step, and keeps every
//! instruction's state until it is terminal.
//!
//! Instructions are buffered and flushed to the ledger as one batch when the buffer is full
//! ([`acme_ledger::BATCH_EVENTS_MAX`]) or [`FLUSH_DELAY_NS`] after the first one arrived, so the
//! ledger sees few large requests however many members write at once.

use super::{tag, untag};
use crate::calendar::NS_PER_MIN;
use crate::messages::{
    msg_id, InstructionId, InstructionKind, InstructionState, Message, MsgKind, Order,
};
use crate::process::{Ctx, Effects, Input, LedgerReply, LedgerRequest, Process, Service};
use acme_ledger::chart::{self, AccountKind, FundId, LEDGER_CASH_GBP};
use acme_ledger::ids::{transfer_id, Domain, Step};
use acme_ledger::{CreateAccountResult, CreateTransferResult, Transfer, TransferFlags};
use std::collections::BTreeMap;

/// How long the first instruction of a batch may wait for company.
pub const FLUSH_DELAY_NS: u64 = NS_PER_MIN / 60 / 20; // 50 ms
/// Largest single contribution or investment taken (a sanity bound, £10m).
pub const INSTRUCTION_CASH_MAX_PENCE: u64 = 1_000_000_000;

const PHASE_ACCOUNTS: u64 = 1;
const PHASE_TRANSFERS: u64 = 2;
const TIMER_FLUSH: u64 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub member: u64,
    pub kind: InstructionKind,
    pub state: InstructionState,
}

pub struct Intake {
    funds: Vec<FundId>,
    instructions: BTreeMap<InstructionId, Record>,
    buffer: Vec<InstructionId>,
    flush_armed: bool,
    flushes: u64,
    /// Per flush, the instructions of its account and transfer batches, in batch order.
    in_flight: BTreeMap<u64, (Vec<InstructionId>, Vec<InstructionId>)>,
}

impl Intake {
    pub fn new(funds: Vec<FundId>) -> Intake {
        Intake {
            funds,
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
        match kind {
            InstructionKind::Onboard => Ok(()),
            InstructionKind::Contribute { cash_pence } if !cash_ok(*cash_pence) => {
                Err("cash_pence out of range")
            }
            InstructionKind::Invest { cash_pence, .. } if !cash_ok(*cash_pence) => {
                Err("cash_pence out of range")
            }
            InstructionKind::Invest { fund, .. } if !self.funds.contains(fund) => {
                Err("unknown fund")
            }
            _ => Ok(()),
        }
    }

    fn advance(&mut self, id: InstructionId, state: InstructionState, fx: &mut Effects) {
        let Some(record) = self.instructions.get_mut(&id) else {
            fx.alert("intake", format!("state {state:?} for unknown instruction {id:#x}"));
            return;
        };
        // States only move forward; a late or repeated notice of an earlier state is ignored.
        if record.state.is_terminal() || state <= record.state {
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
        for id in std::mem::take(&mut self.buffer) {
            let record = &self.instructions[&id];
            match record.kind {
                InstructionKind::Onboard => {
                    accounts.push(chart::account(
                        AccountKind::MemberCash,
                        LEDGER_CASH_GBP,
                        record.member,
                    ));
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
                    transfer_ids.push(id);
                }
                InstructionKind::Invest { cash_pence, .. } => {
                    transfers.push(reservation(id, record.member, cash_pence));
                    transfer_ids.push(id);
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

    fn on_accounts(&mut self, flush: u64, results: &[CreateAccountResult], fx: &mut Effects) {
        let ids = std::mem::take(&mut self.in_flight.get_mut(&flush).expect("flush in flight").0);
        assert_eq!(ids.len(), results.len());
        for (id, result) in ids.into_iter().zip(results) {
            if result.is_applied() {
                self.advance(id, InstructionState::Completed, fx);
            } else {
                fx.alert("intake", format!("onboarding {id:#x}: {result:?}"));
                self.advance(id, InstructionState::Rejected, fx);
            }
        }
        self.retire(flush);
    }

    fn on_transfers(&mut self, flush: u64, results: &[CreateTransferResult], fx: &mut Effects) {
        let ids = std::mem::take(&mut self.in_flight.get_mut(&flush).expect("flush in flight").1);
        assert_eq!(ids.len(), results.len());
        for (id, &result) in ids.into_iter().zip(results) {
            let record = &self.instructions[&id];
            let member = record.member;
            match (record.kind.clone(), result) {
                (InstructionKind::Contribute { .. }, r) if r.is_applied() => {
                    self.advance(id, InstructionState::Completed, fx);
                }
                (InstructionKind::Invest { fund, cash_pence }, r) if r.is_applied() => {
                    self.advance(id, InstructionState::Reserved, fx);
                    let order = Order {
                        instruction: id,
                        member,
                        fund,
                        cash_pence,
                    };
                    fx.send(
                        msg_id(MsgKind::OrderAccepted, id, 0),
                        Service::Intake,
                        Service::Aggregation,
                        Message::OrderAccepted(order),
                    );
                }
                // Business refusals: not enough cash, or no pot.
                (
                    _,
                    CreateTransferResult::ExceedsCredits
                    | CreateTransferResult::CreditAccountNotFound
                    | CreateTransferResult::DebitAccountNotFound,
                ) => self.advance(id, InstructionState::Rejected, fx),
                (_, r) => {
                    fx.alert("intake", format!("instruction {id:#x}: ledger answered {r:?}"));
                    self.advance(id, InstructionState::Rejected, fx);
                }
            }
        }
        self.retire(flush);
    }

    fn retire(&mut self, flush: u64) {
        let done = self.in_flight.get(&flush).is_some_and(|(a, t)| a.is_empty() && t.is_empty());
        if done {
            self.in_flight.remove(&flush);
        }
    }
}

/// The pending transfer that reserves a member's cash for a buy order.
pub fn reservation(instruction: InstructionId, member: u64, cash_pence: u64) -> Transfer {
    Transfer {
        id: transfer_id(Step::BuyReserve, Domain::Instruction, instruction, 0),
        debit_account_id: chart::member_cash(member),
        credit_account_id: chart::house(AccountKind::AcmeTrading, LEDGER_CASH_GBP),
        amount: cash_pence as u128,
        user_data_64: instruction,
        ledger: LEDGER_CASH_GBP,
        code: Step::BuyReserve.code(),
        flags: TransferFlags::PENDING,
        ..Transfer::default()
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
                    let valid = self.validate(&instruction.kind);
                    let state = if valid.is_ok() {
                        InstructionState::Received
                    } else {
                        InstructionState::Rejected
                    };
                    self.instructions.insert(
                        instruction.id,
                        Record {
                            member: instruction.member,
                            kind: instruction.kind.clone(),
                            state,
                        },
                    );
                    if valid.is_err() {
                        return;
                    }
                    self.buffer.push(instruction.id);
                    if self.buffer.len() == acme_ledger::BATCH_EVENTS_MAX {
                        self.flush(fx);
                    } else if !self.flush_armed {
                        self.flush_armed = true;
                        fx.timer(TIMER_FLUSH << 32 | self.flushes, ctx.now + FLUSH_DELAY_NS);
                    }
                }
                Message::InstructionsAdvanced { ids, state } => {
                    for &id in ids {
                        self.advance(id, *state, fx);
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
                    (PHASE_ACCOUNTS, LedgerReply::CreateAccounts(r)) => self.on_accounts(flush, r, fx),
                    (PHASE_TRANSFERS, LedgerReply::CreateTransfers(r)) => {
                        self.on_transfers(flush, r, fx)
                    }
                    _ => fx.alert("intake", format!("unexpected ledger reply for tag {tag:#x}")),
                }
            }
        }
    }
}
