//! Settlement: makes a trade final in the pots when the custodian settles it.
//!
//! It waits for both pricing's `TradeAllocated` (the allocation is in the ledger; the highest
//! revision wins) and the custodian's `TradeSettled`. It then reads the trade's pending lines
//! back from the ledger, the system of record (a query by the trade id in `user_data_128`, page
//! by page, keeping the lines of the final revision), posts each of them, and moves the
//! custodian mirror from unsettled to settled by the net. Nothing it needs lives only in its
//! memory: a restarted settlement finds the same pending lines and its posts answer `exists`.
//!
//! If the custodian's settlement has not come [`Schedule::chase_after_min`] after it was due
//! (T+N, in the morning), settlement chases it (`ChaseSettlement`) at that interval until it
//! comes: a lost notice is recovered by our side; a late settlement is simply chased longer.
//!
//! Sale proceeds become the member's, and investable, here: a switch's purchase is placed when
//! intake hears of its sale's settlement.

use super::{tag, untag};
use crate::calendar::{Schedule, Ts, NS_PER_MIN};
use crate::messages::{
    msg_id, Advance, ExternalTrade, InstructionId, InstructionState, Message, MsgKind, TradeId,
};
use crate::process::{Ctx, Effects, Input, LedgerReply, LedgerRequest, Process, Service};
use acme_ledger::chart::{self, AccountKind, LEDGER_CASH_GBP};
use acme_ledger::ids::{decode, transfer_id, with_step, Domain, Step};
use acme_ledger::{QueryFilter, Transfer, TransferFlags, QUERY_RESULTS_MAX};
use std::collections::{BTreeMap, BTreeSet};

const PHASE_QUERY: u64 = 1;
const PHASE_POSTS: u64 = 2;
const PHASE_MIRROR: u64 = 3;

#[derive(Clone, Debug)]
struct Allocated {
    trade: ExternalTrade,
    revision: u32,
    pending_lines: u64,
    net_units: i128,
    net_cash: i128,
    filled: Vec<Advance>,
}

#[derive(Default)]
struct Run {
    found: u64,
    posts_outstanding: u64,
    scan_done: bool,
    /// Sale proceeds found in the ledger, by (instruction, leg).
    proceeds: BTreeMap<(InstructionId, u8), u64>,
}

pub struct Settlement {
    schedule: Schedule,
    allocated: BTreeMap<TradeId, Allocated>,
    settled: BTreeMap<TradeId, (i128, i128)>,
    running: BTreeMap<TradeId, Run>,
    done: BTreeSet<TradeId>,
    /// Chases sent per trade.
    chases: BTreeMap<TradeId, u64>,
}

fn is_line(code: u16) -> bool {
    [
        Step::BuyUnitsAllocate,
        Step::BuyUnitsRounding,
        Step::SellCashAllocate,
        Step::SellCashRounding,
    ]
    .iter()
    .any(|s| s.code() == code)
}

impl Settlement {
    pub fn new(schedule: Schedule) -> Settlement {
        Settlement {
            schedule,
            allocated: BTreeMap::new(),
            settled: BTreeMap::new(),
            running: BTreeMap::new(),
            done: BTreeSet::new(),
            chases: BTreeMap::new(),
        }
    }

    fn on_chase_timer(&mut self, trade_id: TradeId, now: Ts, fx: &mut Effects) {
        if self.done.contains(&trade_id) || self.running.contains_key(&trade_id) {
            return;
        }
        let attempt = self.chases.entry(trade_id).or_default();
        *attempt += 1;
        if self.settled.contains_key(&trade_id) {
            // Settled at other figures than booked: an amendment we never heard of. Ask the
            // custodian to confirm again; its answer goes to pricing, which books it.
            fx.send(
                msg_id(MsgKind::ChaseConfirmation, trade_id, 1 << 32 | *attempt),
                Service::Settlement,
                Service::Custodian,
                Message::ChaseConfirmation { trade_id },
            );
        } else {
            fx.send(
                msg_id(MsgKind::ChaseSettlement, trade_id, *attempt),
                Service::Settlement,
                Service::Custodian,
                Message::ChaseSettlement { trade_id },
            );
        }
        fx.timer(
            trade_id,
            now + self.schedule.chase_after_min as u64 * NS_PER_MIN,
        );
    }

    fn try_start(&mut self, trade_id: TradeId, fx: &mut Effects) {
        if self.done.contains(&trade_id) || self.running.contains_key(&trade_id) {
            return;
        }
        let (Some(a), Some(&(units, cash))) =
            (self.allocated.get(&trade_id), self.settled.get(&trade_id))
        else {
            return;
        };
        if units != a.net_units || cash != a.net_cash {
            // The custodian settles other figures than we booked: it amended the price and the
            // amendment has not reached us. The chase timer asks for it again.
            return;
        }
        self.running.insert(trade_id, Run::default());
        self.query(trade_id, 0, 0, fx);
    }

    fn query(&mut self, trade_id: TradeId, page: u64, timestamp_min: u64, fx: &mut Effects) {
        fx.ledger(
            tag(trade_id, PHASE_QUERY, page),
            LedgerRequest::QueryTransfers(QueryFilter {
                user_data_128: trade_id as u128,
                timestamp_min,
                limit: QUERY_RESULTS_MAX,
                ..QueryFilter::default()
            }),
        );
    }

    fn on_page(&mut self, trade_id: TradeId, page: u64, transfers: &[Transfer], fx: &mut Effects) {
        let revision = self.allocated[&trade_id].revision as u64;
        let run = self.running.get_mut(&trade_id).expect("running");
        let mut posts = Vec::new();
        for t in transfers {
            let sub = decode(t.id).3;
            if !t.flags.contains(TransferFlags::PENDING)
                || !is_line(t.code)
                || (super::allocation::sub_revision(sub) as u64 != revision
                    && !crate::plant::active(crate::plant::Bug::SettlesSupersededLines))
            {
                continue;
            }
            if t.code == Step::BuyUnitsAllocate.code()
                && crate::plant::active(crate::plant::Bug::UnitsNeverSettled)
            {
                run.found += 1;
                continue;
            }
            run.found += 1;
            if t.code == Step::SellCashAllocate.code() {
                run.proceeds
                    .insert((t.user_data_64, t.user_data_32 as u8), t.amount as u64);
            }
            posts.push(Transfer {
                id: with_step(t.id, Step::SettlePost),
                pending_id: t.id,
                amount: t.amount,
                flags: TransferFlags::POST_PENDING_TRANSFER,
                timestamp: 0,
                ..*t
            });
        }
        if !posts.is_empty() {
            run.posts_outstanding += 1;
            fx.ledger(
                tag(trade_id, PHASE_POSTS, page),
                LedgerRequest::CreateTransfers(posts),
            );
        }
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
        if crate::plant::active(crate::plant::Bug::MirrorNeverSettled) {
            self.finish(trade_id, fx);
            return;
        }
        let a = self.allocated[&trade_id].clone();
        if run.found != a.pending_lines {
            fx.alert(
                "settlement",
                format!(
                    "trade {trade_id:#x}: found {} pending lines of revision {}, pricing made {}",
                    run.found, a.revision, a.pending_lines
                ),
            );
        }
        let fund_ledger = chart::fund_ledger(a.trade.fund);
        let base = Transfer {
            user_data_128: trade_id as u128,
            user_data_32: a.trade.trade_date.0,
            ..Transfer::default()
        };
        let mut mirror = Vec::new();
        // Units the custodian holds for ACME are debits on its mirror: a net buy moves them from
        // unsettled to settled, a net sell takes them out of settled.
        let (cs, cu) = (
            chart::house(AccountKind::CustodianSettled, fund_ledger),
            chart::house(AccountKind::CustodianUnsettled, fund_ledger),
        );
        if a.net_units != 0 {
            let (debit, credit) = if a.net_units > 0 { (cs, cu) } else { (cu, cs) };
            mirror.push(Transfer {
                id: transfer_id(Step::SettleCustodianUnits, Domain::Trade, trade_id, 0),
                debit_account_id: debit,
                credit_account_id: credit,
                amount: a.net_units.unsigned_abs(),
                ledger: fund_ledger,
                code: Step::SettleCustodianUnits.code(),
                ..base
            });
        }
        let (cs, cu) = (
            chart::house(AccountKind::CustodianSettled, LEDGER_CASH_GBP),
            chart::house(AccountKind::CustodianUnsettled, LEDGER_CASH_GBP),
        );
        if a.net_cash != 0 {
            let (debit, credit) = if a.net_cash > 0 { (cu, cs) } else { (cs, cu) };
            mirror.push(Transfer {
                id: transfer_id(Step::SettleCustodianCash, Domain::Trade, trade_id, 0),
                debit_account_id: debit,
                credit_account_id: credit,
                amount: a.net_cash.unsigned_abs(),
                ledger: LEDGER_CASH_GBP,
                code: Step::SettleCustodianCash.code(),
                ..base
            });
        }
        if mirror.is_empty() {
            self.finish(trade_id, fx);
            return;
        }
        if mirror.len() == 2 {
            mirror[0].flags = TransferFlags::LINKED;
        }
        fx.ledger(
            tag(trade_id, PHASE_MIRROR, 0),
            LedgerRequest::CreateTransfers(mirror),
        );
    }

    fn finish(&mut self, trade_id: TradeId, fx: &mut Effects) {
        let run = self.running.remove(&trade_id).expect("running");
        self.done.insert(trade_id);
        let allocated = self.allocated.remove(&trade_id).expect("allocated");
        self.settled.remove(&trade_id);
        let advances = allocated
            .filled
            .into_iter()
            .map(|a| Advance {
                proceeds_pence: run
                    .proceeds
                    .get(&(a.instruction, a.leg))
                    .copied()
                    .unwrap_or(0),
                ..a
            })
            .collect();
        fx.send(
            msg_id(
                MsgKind::InstructionsAdvanced,
                trade_id,
                InstructionState::Settled as u64,
            ),
            Service::Settlement,
            Service::Intake,
            Message::InstructionsAdvanced {
                orders: advances,
                state: InstructionState::Settled,
            },
        );
    }

    fn on_reply(&mut self, tag: u64, reply: &LedgerReply, fx: &mut Effects) {
        let (trade_id, phase, page) = untag(tag);
        if !self.running.contains_key(&trade_id) {
            fx.alert(
                "settlement",
                format!("reply for trade {trade_id:#x} not running"),
            );
            return;
        }
        match (phase, reply) {
            (PHASE_QUERY, LedgerReply::Transfers(transfers)) => {
                self.on_page(trade_id, page, transfers, fx)
            }
            (PHASE_POSTS | PHASE_MIRROR, LedgerReply::CreateTransfers(results)) => {
                // A replayed chain answers `exists` then `linked_event_failed`: still applied.
                let failed: Vec<String> = if acme_ledger::batch_applied(results) {
                    Vec::new()
                } else {
                    results
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| !r.is_applied())
                        .map(|(i, r)| format!("#{i}: {r:?}"))
                        .collect()
                };
                if !failed.is_empty() {
                    fx.alert(
                        "settlement",
                        format!("trade {trade_id:#x} phase {phase}: {}", failed.join(", ")),
                    );
                    return;
                }
                if phase == PHASE_POSTS {
                    self.running
                        .get_mut(&trade_id)
                        .expect("running")
                        .posts_outstanding -= 1;
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

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        match input {
            Input::Message(env) => match &env.body {
                Message::TradeAllocated {
                    trade,
                    revision,
                    pending_lines,
                    net_units,
                    net_cash,
                    filled,
                } => {
                    if self.done.contains(&trade.id) {
                        fx.alert(
                            "settlement",
                            format!(
                                "trade {:#x}: revision {revision} after settlement",
                                trade.id
                            ),
                        );
                        return;
                    }
                    if self.running.contains_key(&trade.id) {
                        fx.alert(
                            "settlement",
                            format!(
                                "trade {:#x}: revision {revision} during settlement",
                                trade.id
                            ),
                        );
                        return;
                    }
                    if *revision == 0 {
                        let s = self.schedule;
                        let due = trade
                            .trade_date
                            .add_business_days(s.settlement_lag_days)
                            .at_minute(s.settlement_min + s.chase_after_min);
                        fx.timer(trade.id, due.max(ctx.now));
                    }
                    let newer = self
                        .allocated
                        .get(&trade.id)
                        .is_none_or(|a| a.revision < *revision);
                    if newer {
                        self.allocated.insert(
                            trade.id,
                            Allocated {
                                trade: *trade,
                                revision: *revision,
                                pending_lines: *pending_lines,
                                net_units: *net_units,
                                net_cash: *net_cash,
                                filled: filled.clone(),
                            },
                        );
                    }
                    self.try_start(trade.id, fx);
                }
                Message::TradeSettled {
                    trade_id,
                    net_units,
                    net_cash,
                } => {
                    if !self.done.contains(trade_id) {
                        self.settled
                            .entry(*trade_id)
                            .or_insert((*net_units, *net_cash));
                        self.try_start(*trade_id, fx);
                    }
                }
                other => fx.alert("settlement", format!("unexpected message {other:?}")),
            },
            Input::Ledger { tag, reply } => self.on_reply(*tag, reply, fx),
            Input::Timer { timer_id } => self.on_chase_timer(*timer_id, ctx.now, fx),
        }
    }
}
