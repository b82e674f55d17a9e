//! Settlement: makes a trade's units final in the pots when the custodian settles it.
//!
//! It waits for both pricing's `TradeAllocated` (the allocation is complete in the ledger) and
//! the custodian's `TradeSettled`. It then reads the trade's pending unit transfers back from
//! the ledger, the system of record (a query by the trade id in `user_data_128`, page by page),
//! posts each of them, and moves the custodian mirror from unsettled to settled. Nothing it
//! needs lives only in its memory: a restarted settlement finds the same pending transfers and
//! its posts answer `exists`.

use super::{tag, untag};
use crate::messages::{msg_id, ExternalTrade, InstructionId, InstructionState, Message, MsgKind, TradeId};
use crate::process::{Ctx, Effects, Input, LedgerReply, LedgerRequest, Process, Service};
use acme_ledger::chart::{self, AccountKind, LEDGER_CASH_GBP};
use acme_ledger::ids::{transfer_id, with_step, Domain, Step};
use acme_ledger::{QueryFilter, Transfer, TransferFlags, QUERY_RESULTS_MAX};
use std::collections::{BTreeMap, BTreeSet};

const PHASE_QUERY: u64 = 1;
const PHASE_POSTS: u64 = 2;
const PHASE_MIRROR: u64 = 3;

#[derive(Clone, Copy, Debug)]
struct Allocated {
    trade: ExternalTrade,
    units_micro: u64,
    pending_lines: u64,
}

#[derive(Default)]
struct Run {
    pages: u64,
    found: u64,
    posts_outstanding: u64,
    scan_done: bool,
    instructions: Vec<InstructionId>,
}

pub struct Settlement {
    allocated: BTreeMap<TradeId, Allocated>,
    settled: BTreeMap<TradeId, (u64, u64)>,
    running: BTreeMap<TradeId, Run>,
    done: BTreeSet<TradeId>,
}

impl Default for Settlement {
    fn default() -> Self {
        Settlement::new()
    }
}

impl Settlement {
    pub fn new() -> Settlement {
        Settlement {
            allocated: BTreeMap::new(),
            settled: BTreeMap::new(),
            running: BTreeMap::new(),
            done: BTreeSet::new(),
        }
    }

    pub fn settled_trades(&self) -> usize {
        self.done.len()
    }

    fn try_start(&mut self, trade_id: TradeId, fx: &mut Effects) {
        if self.done.contains(&trade_id) || self.running.contains_key(&trade_id) {
            return;
        }
        let (Some(allocated), Some(&(units, cash))) =
            (self.allocated.get(&trade_id), self.settled.get(&trade_id))
        else {
            return;
        };
        if units != allocated.units_micro || cash != allocated.trade.cash_pence {
            fx.alert(
                "settlement",
                format!(
                    "trade {trade_id:#x}: custodian settles {units} units / {cash} pence, \
                     priced {} units / {} pence",
                    allocated.units_micro, allocated.trade.cash_pence
                ),
            );
            return;
        }
        self.running.insert(trade_id, Run::default());
        self.query(trade_id, 0, 0, fx);
    }

    fn query(&mut self, trade_id: TradeId, page: u64, timestamp_min: u64, fx: &mut Effects) {
        let allocated = &self.allocated[&trade_id];
        fx.ledger(
            tag(trade_id, PHASE_QUERY, page),
            LedgerRequest::QueryTransfers(QueryFilter {
                user_data_128: trade_id as u128,
                ledger: chart::fund_ledger(allocated.trade.fund),
                timestamp_min,
                limit: QUERY_RESULTS_MAX,
                ..QueryFilter::default()
            }),
        );
    }

    fn on_page(&mut self, trade_id: TradeId, page: u64, transfers: &[Transfer], fx: &mut Effects) {
        let run = self.running.get_mut(&trade_id).expect("running");
        let mut posts = Vec::new();
        for t in transfers.iter().filter(|t| t.flags.contains(TransferFlags::PENDING)) {
            let is_line = t.code == Step::BuyUnitsAllocate.code() || t.code == Step::BuyUnitsRounding.code();
            if !is_line {
                continue;
            }
            run.found += 1;
            if t.code == Step::BuyUnitsAllocate.code() {
                run.instructions.push(t.user_data_64);
            }
            posts.push(Transfer {
                id: with_step(t.id, Step::SettleUnitsPost),
                debit_account_id: t.debit_account_id,
                credit_account_id: t.credit_account_id,
                amount: t.amount,
                pending_id: t.id,
                user_data_128: t.user_data_128,
                user_data_64: t.user_data_64,
                user_data_32: t.user_data_32,
                ledger: t.ledger,
                code: t.code,
                flags: TransferFlags::POST_PENDING_TRANSFER,
                ..Transfer::default()
            });
        }
        if !posts.is_empty() {
            run.posts_outstanding += 1;
            fx.ledger(tag(trade_id, PHASE_POSTS, page), LedgerRequest::CreateTransfers(posts));
        }
        run.pages += 1;
        if transfers.len() as u64 == QUERY_RESULTS_MAX as u64 {
            let next = transfers.last().expect("full page").timestamp + 1;
            self.query(trade_id, page + 1, next, fx);
        } else {
            run.scan_done = true;
            self.maybe_mirror(trade_id, fx);
        }
    }

    fn maybe_mirror(&mut self, trade_id: TradeId, fx: &mut Effects) {
        let run = &self.running[&trade_id];
        if !run.scan_done || run.posts_outstanding > 0 {
            return;
        }
        let allocated = self.allocated[&trade_id];
        if run.found != allocated.pending_lines {
            fx.alert(
                "settlement",
                format!(
                    "trade {trade_id:#x}: found {} pending lines in the ledger, pricing made {}",
                    run.found, allocated.pending_lines
                ),
            );
        }
        let fund_ledger = chart::fund_ledger(allocated.trade.fund);
        let date = allocated.trade.trade_date.0;
        let mirror = vec![
            Transfer {
                id: transfer_id(Step::SettleCustodianUnits, Domain::Trade, trade_id, 0),
                debit_account_id: chart::house(AccountKind::CustodianSettled, fund_ledger),
                credit_account_id: chart::house(AccountKind::CustodianUnsettled, fund_ledger),
                amount: allocated.units_micro as u128,
                user_data_128: trade_id as u128,
                user_data_32: date,
                ledger: fund_ledger,
                code: Step::SettleCustodianUnits.code(),
                flags: TransferFlags::LINKED,
                ..Transfer::default()
            },
            Transfer {
                id: transfer_id(Step::SettleCustodianCash, Domain::Trade, trade_id, 0),
                debit_account_id: chart::house(AccountKind::CustodianUnsettled, LEDGER_CASH_GBP),
                credit_account_id: chart::house(AccountKind::CustodianSettled, LEDGER_CASH_GBP),
                amount: allocated.trade.cash_pence as u128,
                user_data_128: trade_id as u128,
                user_data_32: date,
                ledger: LEDGER_CASH_GBP,
                code: Step::SettleCustodianCash.code(),
                ..Transfer::default()
            },
        ];
        fx.ledger(tag(trade_id, PHASE_MIRROR, 0), LedgerRequest::CreateTransfers(mirror));
    }

    fn finish(&mut self, trade_id: TradeId, fx: &mut Effects) {
        let mut run = self.running.remove(&trade_id).expect("running");
        self.done.insert(trade_id);
        self.allocated.remove(&trade_id);
        self.settled.remove(&trade_id);
        run.instructions.sort_unstable();
        fx.send(
            msg_id(MsgKind::InstructionsAdvanced, trade_id, InstructionState::Settled as u64),
            Service::Settlement,
            Service::Intake,
            Message::InstructionsAdvanced {
                ids: run.instructions,
                state: InstructionState::Settled,
            },
        );
    }

    fn on_reply(&mut self, tag: u64, reply: &LedgerReply, fx: &mut Effects) {
        let (trade_id, phase, page) = untag(tag);
        if !self.running.contains_key(&trade_id) {
            fx.alert("settlement", format!("reply for trade {trade_id:#x} not running"));
            return;
        }
        match (phase, reply) {
            (PHASE_QUERY, LedgerReply::Transfers(transfers)) => self.on_page(trade_id, page, transfers, fx),
            (PHASE_POSTS | PHASE_MIRROR, LedgerReply::CreateTransfers(results)) => {
                let failed: Vec<String> = results
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| !r.is_applied())
                    .map(|(i, r)| format!("#{i}: {r:?}"))
                    .collect();
                if !failed.is_empty() {
                    fx.alert(
                        "settlement",
                        format!("trade {trade_id:#x} phase {phase}: {}", failed.join(", ")),
                    );
                    return;
                }
                if phase == PHASE_POSTS {
                    self.running.get_mut(&trade_id).expect("running").posts_outstanding -= 1;
                    self.maybe_mirror(trade_id, fx);
                } else {
                    self.finish(trade_id, fx);
                }
            }
            _ => fx.alert("settlement", format!("unexpected reply for tag {tag:#x}")),
        }
    }
}

impl Process for Settlement {
    fn name(&self) -> &'static str {
        "settlement"
    }

    fn handle(&mut self, _ctx: &Ctx, input: &Input, fx: &mut Effects) {
        match input {
            Input::Message(env) => match &env.body {
                Message::TradeAllocated {
                    trade,
                    units_micro,
                    pending_lines,
                } => {
                    if !self.done.contains(&trade.id) {
                        self.allocated.entry(trade.id).or_insert(Allocated {
                            trade: *trade,
                            units_micro: *units_micro,
                            pending_lines: *pending_lines,
                        });
                        self.try_start(trade.id, fx);
                    }
                }
                Message::TradeSettled {
                    trade_id,
                    units_micro,
                    cash_pence,
                } => {
                    if !self.done.contains(trade_id) {
                        self.settled.entry(*trade_id).or_insert((*units_micro, *cash_pence));
                        self.try_start(*trade_id, fx);
                    }
                }
                other => fx.alert("settlement", format!("unexpected message {other:?}")),
            },
            Input::Ledger { tag, reply } => self.on_reply(*tag, reply, fx),
            Input::Timer { .. } => fx.alert("settlement", "unexpected timer".to_string()),
        }
    }
}
