//! Pricing: allocates a priced external buy trade to the members' pots.
//!
//! It needs two things, in either order: the trade's composition (`TradeBooked`, from
//! aggregation) and the custodian's price confirmation (`TradePriced`). Then, in the ledger:
//! 1. the member unit accounts are created (`exists` is fine: the member held the fund before);
//! 2. one linked pair moves the trade's cash to the custodian and its units from the custodian
//!    into ACME's trading account;
//! 3. per order, a linked pair posts the member's cash reservation and gives the member their
//!    units as a *pending* transfer (final only at settlement);
//! 4. the allocation residual goes, pending too, to ACME's rounding account.
//!
//! **Allocation rule**: orders are taken in instruction-id order; member `i` gets
//! `floor(units * cash_i / cash_total)` micro-units; the residual (less than one micro-unit per
//! order) goes to the rounding account. No member ever gets more than their exact share.

use super::{tag, untag};
use crate::messages::{
    msg_id, ExternalTrade, InstructionId, InstructionState, Message, MsgKind, Order, TradeId,
};
use crate::money::{pro_rata, Price};
use crate::process::{Ctx, Effects, Input, LedgerReply, LedgerRequest, Process, Service};
use acme_ledger::chart::{self, AccountKind, LEDGER_CASH_GBP};
use acme_ledger::ids::{transfer_id, with_step, Domain, Step};
use acme_ledger::{Account, Transfer, TransferFlags, BATCH_EVENTS_MAX};
use std::collections::{BTreeMap, BTreeSet};

const PHASE_ACCOUNTS: u64 = 1;
const PHASE_TRANSFERS: u64 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Confirmation {
    price: Price,
    units_micro: u64,
    cash_pence: u64,
}

struct Allocation {
    phase: u64,
    outstanding: u64,
    pending_lines: u64,
}

pub struct Pricing {
    booked: BTreeMap<TradeId, (ExternalTrade, Vec<Order>)>,
    priced: BTreeMap<TradeId, Confirmation>,
    running: BTreeMap<TradeId, Allocation>,
    done: BTreeSet<TradeId>,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing::new()
    }
}

impl Pricing {
    pub fn new() -> Pricing {
        Pricing {
            booked: BTreeMap::new(),
            priced: BTreeMap::new(),
            running: BTreeMap::new(),
            done: BTreeSet::new(),
        }
    }

    pub fn allocated_trades(&self) -> usize {
        self.done.len()
    }

    fn try_start(&mut self, trade_id: TradeId, fx: &mut Effects) {
        if self.done.contains(&trade_id) || self.running.contains_key(&trade_id) {
            return;
        }
        let (Some((trade, orders)), Some(confirmation)) =
            (self.booked.get(&trade_id), self.priced.get(&trade_id))
        else {
            return;
        };
        if confirmation.cash_pence != trade.cash_pence {
            fx.alert(
                "pricing",
                format!(
                    "trade {trade_id:#x}: custodian confirms cash {} but we placed {}",
                    confirmation.cash_pence, trade.cash_pence
                ),
            );
            return;
        }
        let ledger = chart::fund_ledger(trade.fund);
        let accounts: Vec<Account> = orders
            .iter()
            .map(|o| chart::account(AccountKind::MemberUnits, ledger, o.member))
            .collect();
        let mut chunks = 0;
        for (i, batch) in accounts.chunks(BATCH_EVENTS_MAX).enumerate() {
            fx.ledger(
                tag(trade_id, PHASE_ACCOUNTS, i as u64),
                LedgerRequest::CreateAccounts(batch.to_vec()),
            );
            chunks += 1;
        }
        self.running.insert(
            trade_id,
            Allocation {
                phase: PHASE_ACCOUNTS,
                outstanding: chunks,
                pending_lines: 0,
            },
        );
        if chunks == 0 {
            self.transfers(trade_id, fx);
        }
    }

    fn transfers(&mut self, trade_id: TradeId, fx: &mut Effects) {
        let (trade, orders) = &self.booked[&trade_id];
        let confirmation = self.priced[&trade_id];
        let transfers = allocation_transfers(trade, orders, confirmation.units_micro);
        let pending_lines = transfers
            .iter()
            .filter(|t| t.flags.contains(TransferFlags::PENDING))
            .count() as u64;
        let chunks = fx.create_transfers_chunked(transfers, |i| tag(trade_id, PHASE_TRANSFERS, i));
        let allocation = self.running.get_mut(&trade_id).expect("running");
        allocation.phase = PHASE_TRANSFERS;
        allocation.outstanding = chunks;
        allocation.pending_lines = pending_lines;
    }

    fn on_reply(&mut self, tag: u64, reply: &LedgerReply, fx: &mut Effects) {
        let (trade_id, phase, _) = untag(tag);
        let failures: Vec<String> = match reply {
            LedgerReply::CreateAccounts(r) => r
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.is_applied())
                .map(|(i, r)| format!("account #{i}: {r:?}"))
                .collect(),
            LedgerReply::CreateTransfers(r) => r
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.is_applied())
                .map(|(i, r)| format!("transfer #{i}: {r:?}"))
                .collect(),
            _ => vec!["unexpected reply kind".to_string()],
        };
        if !failures.is_empty() {
            // The ledger refused part of an allocation that should be impossible to refuse:
            // stop here and call a person; the trade stays unallocated, nothing half-done is
            // hidden.
            fx.alert(
                "pricing",
                format!("trade {trade_id:#x} phase {phase}: {}", failures.join(", ")),
            );
            return;
        }
        let Some(allocation) = self.running.get_mut(&trade_id) else {
            fx.alert("pricing", format!("reply for trade {trade_id:#x} not running"));
            return;
        };
        assert_eq!(allocation.phase, phase, "reply of another phase");
        allocation.outstanding -= 1;
        if allocation.outstanding > 0 {
            return;
        }
        if phase == PHASE_ACCOUNTS {
            self.transfers(trade_id, fx);
            return;
        }
        let allocation = self.running.remove(&trade_id).expect("running");
        self.done.insert(trade_id);
        let (trade, orders) = self.booked.remove(&trade_id).expect("booked");
        let confirmation = self.priced.remove(&trade_id).expect("priced");
        let ids: Vec<InstructionId> = orders.iter().map(|o| o.instruction).collect();
        fx.send(
            msg_id(MsgKind::TradeAllocated, trade_id, 0),
            Service::Pricing,
            Service::Settlement,
            Message::TradeAllocated {
                trade,
                units_micro: confirmation.units_micro,
                pending_lines: allocation.pending_lines,
            },
        );
        fx.send(
            msg_id(MsgKind::InstructionsAdvanced, trade_id, InstructionState::Priced as u64),
            Service::Pricing,
            Service::Intake,
            Message::InstructionsAdvanced {
                ids,
                state: InstructionState::Priced,
            },
        );
    }
}

/// The ledger transfers that allocate a priced buy trade (see the module doc).
pub fn allocation_transfers(trade: &ExternalTrade, orders: &[Order], units_micro: u64) -> Vec<Transfer> {
    let fund_ledger = chart::fund_ledger(trade.fund);
    let trading_cash = chart::house(AccountKind::AcmeTrading, LEDGER_CASH_GBP);
    let trading_units = chart::house(AccountKind::AcmeTrading, fund_ledger);
    let date = trade.trade_date.0;
    let mut out = Vec::with_capacity(2 + 2 * orders.len() + 1);
    out.push(Transfer {
        id: transfer_id(Step::TradeCashToCustodian, Domain::Trade, trade.id, 0),
        debit_account_id: trading_cash,
        credit_account_id: chart::house(AccountKind::CustodianUnsettled, LEDGER_CASH_GBP),
        amount: trade.cash_pence as u128,
        user_data_128: trade.id as u128,
        user_data_32: date,
        ledger: LEDGER_CASH_GBP,
        code: Step::TradeCashToCustodian.code(),
        flags: TransferFlags::LINKED,
        ..Transfer::default()
    });
    out.push(Transfer {
        id: transfer_id(Step::TradeUnitsFromCustodian, Domain::Trade, trade.id, 0),
        debit_account_id: chart::house(AccountKind::CustodianUnsettled, fund_ledger),
        credit_account_id: trading_units,
        amount: units_micro as u128,
        user_data_128: trade.id as u128,
        user_data_32: date,
        ledger: fund_ledger,
        code: Step::TradeUnitsFromCustodian.code(),
        ..Transfer::default()
    });
    let weights: Vec<u64> = orders.iter().map(|o| o.cash_pence).collect();
    let (shares, residual) = pro_rata(units_micro, &weights);
    for (order, &units) in orders.iter().zip(&shares) {
        let reserve_id = transfer_id(Step::BuyReserve, Domain::Instruction, order.instruction, 0);
        let units_line = units > 0;
        out.push(Transfer {
            id: with_step(reserve_id, Step::BuyReservePost),
            debit_account_id: chart::member_cash(order.member),
            credit_account_id: trading_cash,
            amount: order.cash_pence as u128,
            pending_id: reserve_id,
            user_data_128: trade.id as u128,
            user_data_64: order.instruction,
            user_data_32: date,
            ledger: LEDGER_CASH_GBP,
            // A post carries its pending transfer's code, as TigerBeetle requires.
            code: Step::BuyReserve.code(),
            flags: if units_line {
                TransferFlags::POST_PENDING_TRANSFER | TransferFlags::LINKED
            } else {
                TransferFlags::POST_PENDING_TRANSFER
            },
            ..Transfer::default()
        });
        if units_line {
            out.push(Transfer {
                id: transfer_id(Step::BuyUnitsAllocate, Domain::Instruction, order.instruction, 0),
                debit_account_id: trading_units,
                credit_account_id: chart::member_units(order.member, trade.fund),
                amount: units as u128,
                user_data_128: trade.id as u128,
                user_data_64: order.instruction,
                user_data_32: date,
                ledger: fund_ledger,
                code: Step::BuyUnitsAllocate.code(),
                flags: TransferFlags::PENDING,
                ..Transfer::default()
            });
        }
    }
    if residual > 0 {
        out.push(Transfer {
            id: transfer_id(Step::BuyUnitsRounding, Domain::Trade, trade.id, 0),
            debit_account_id: trading_units,
            credit_account_id: chart::house(AccountKind::AcmeRounding, fund_ledger),
            amount: residual as u128,
            user_data_128: trade.id as u128,
            user_data_32: date,
            ledger: fund_ledger,
            code: Step::BuyUnitsRounding.code(),
            flags: TransferFlags::PENDING,
            ..Transfer::default()
        });
    }
    out
}

impl Process for Pricing {
    fn name(&self) -> &'static str {
        "pricing"
    }

    fn handle(&mut self, _ctx: &Ctx, input: &Input, fx: &mut Effects) {
        match input {
            Input::Message(env) => match &env.body {
                Message::TradeBooked { trade, orders } => {
                    if !self.done.contains(&trade.id) {
                        self.booked.entry(trade.id).or_insert_with(|| (*trade, orders.clone()));
                        self.try_start(trade.id, fx);
                    }
                }
                Message::TradePriced {
                    trade_id,
                    price,
                    units_micro,
                    cash_pence,
                } => {
                    if !self.done.contains(trade_id) {
                        self.priced.entry(*trade_id).or_insert(Confirmation {
                            price: *price,
                            units_micro: *units_micro,
                            cash_pence: *cash_pence,
                        });
                        self.try_start(*trade_id, fx);
                    }
                }
                other => fx.alert("pricing", format!("unexpected message {other:?}")),
            },
            Input::Ledger { tag, reply } => self.on_reply(*tag, reply, fx),
            Input::Timer { .. } => fx.alert("pricing", "unexpected timer".to_string()),
        }
    }
}
