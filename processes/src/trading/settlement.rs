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
//!
//! **Retention.** A settled trade leaves `allocated`, `settled` and `running` when it finishes,
//! and its chase count with them (chases are only for trades not done). What stays is the set of
//! trades done, so that a late settlement notice (the answer to a chase sent just before the
//! notice came) is ignored and a revision after settlement is alerted. Such a notice comes
//! within the chase interval, and the custodian never amends a settled trade; so a done trade
//! is kept until its trade date is [`RETAIN_DAYS`] business days before the newest trade date
//! allocated, and then retired. A message for a trade old enough with no record is treated as
//! for a done trade.

use super::{tag, untag};
use crate::calendar::{Date, Schedule, Ts, NS_PER_MIN};
use crate::messages::{
    msg_id, trade_date, Advance, ExternalTrade, InstructionId, InstructionState, Message, MsgKind,
    TradeId,
};
use crate::process::{Ctx, Effects, Input, LedgerReply, LedgerRequest, Process, Service};
use acme_ledger::chart::{self, AccountKind, LEDGER_CASH_GBP};
use acme_ledger::ids::{decode, transfer_id, with_step, Domain, Step};
use acme_ledger::{QueryFilter, Transfer, TransferFlags, QUERY_RESULTS_MAX};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

const PHASE_QUERY: u64 = 1;
const PHASE_POSTS: u64 = 2;
const PHASE_MIRROR: u64 = 3;
/// Business days a done trade is remembered after its trade date, counted back from the newest
/// trade date allocated (see the module documentation).
pub const RETAIN_DAYS: u32 = 10;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Allocated {
    trade: ExternalTrade,
    revision: u32,
    pending_lines: u64,
    net_units: i128,
    net_cash: i128,
    filled: Vec<Advance>,
}

#[derive(Default, Serialize, Deserialize)]
struct Run {
    found: u64,
    posts_outstanding: u64,
    scan_done: bool,
    /// Sale proceeds found in the ledger, by (instruction, leg).
    #[serde(with = "crate::serde_pairs")]
    proceeds: BTreeMap<(InstructionId, u8), u64>,
}

#[derive(Serialize, Deserialize)]
pub struct Settlement {
    schedule: Schedule,
    allocated: BTreeMap<TradeId, Allocated>,
    settled: BTreeMap<TradeId, (i128, i128)>,
    running: BTreeMap<TradeId, Run>,
    /// Trades settled here, until retired.
    done: BTreeSet<TradeId>,
    /// Chases sent per trade not done.
    chases: BTreeMap<TradeId, u64>,
    /// The newest trade date allocated: what retirement counts from.
    newest: Date,
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
            newest: Date(0),
        }
    }

    /// Trades held: (waiting or running, done and not yet retired).
    pub fn trades_held(&self) -> (usize, usize) {
        let live: BTreeSet<&TradeId> = self
            .allocated
            .keys()
            .chain(self.settled.keys())
            .chain(self.running.keys())
            .collect();
        (live.len(), self.done.len())
    }

    /// Settled here: done, or retired (a trade old enough with no record).
    fn is_done(&self, trade_id: TradeId) -> bool {
        self.done.contains(&trade_id)
            || (!self.allocated.contains_key(&trade_id)
                && !self.settled.contains_key(&trade_id)
                && !self.running.contains_key(&trade_id)
                && super::aged(trade_date(trade_id), self.newest, RETAIN_DAYS))
    }

    /// Counts retirement from `date` on, if it is the newest trade date yet.
    fn advance_to(&mut self, date: Date) {
        if date <= self.newest {
            return;
        }
        self.newest = date;
        self.done
            .retain(|&id| !super::aged(trade_date(id), date, RETAIN_DAYS));
    }

    fn on_chase_timer(&mut self, trade_id: TradeId, now: Ts, fx: &mut Effects) {
        if self.is_done(trade_id) || self.running.contains_key(&trade_id) {
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
        if self.is_done(trade_id) || self.running.contains_key(&trade_id) {
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
        let full = transfers.len() as u64 == QUERY_RESULTS_MAX as u64;
        // Planted: the first page taken for all of the trade's lines.
        if full && !crate::plant::active(crate::plant::Bug::SettlementFirstPageOnly) {
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
        self.chases.remove(&trade_id);
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
        let known = matches!(
            (phase, reply),
            (PHASE_QUERY, LedgerReply::Transfers(_))
                | (PHASE_POSTS | PHASE_MIRROR, LedgerReply::CreateTransfers(_))
        );
        if !known {
            // A phase settlement never uses, or a reply of another kind than its request.
            fx.poison(format!(
                "settlement: unexpected ledger reply for tag {tag:#x}: {reply:?}"
            ));
            return;
        }
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
            _ => unreachable!("checked above"),
        }
    }
}

/// The planted `monday-holiday-is-business-day`: T+N skipping weekends and the bank holidays
/// that do not fall on a Monday.
fn lag_with_monday_holidays(trade_date: Date, lag: u32) -> Date {
    let mut d = trade_date;
    for _ in 0..lag {
        d = d.next_day();
        while d.weekday() >= 5 || (crate::calendar::is_bank_holiday(d) && d.weekday() != 0) {
            d = d.next_day();
        }
    }
    d
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
                    if self.is_done(trade.id) {
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
                    self.advance_to(trade.trade_date);
                    if *revision == 0 {
                        let s = self.schedule;
                        let mut due_date =
                            trade.trade_date.add_business_days(s.settlement_lag_days);
                        if crate::plant::active(crate::plant::Bug::SettlementLagCalendarDays) {
                            // Planted: T+N counted in calendar days.
                            due_date = Date(trade.trade_date.0 + s.settlement_lag_days);
                        }
                        if crate::plant::active(crate::plant::Bug::MondayHolidayIsBusinessDay) {
                            due_date =
                                lag_with_monday_holidays(trade.trade_date, s.settlement_lag_days);
                        }
                        let due = due_date.at_minute(s.settlement_min + s.chase_after_min);
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
                    // A late notice (the answer to a chase) for a trade done is ignored.
                    if !self.is_done(*trade_id) {
                        self.settled
                            .entry(*trade_id)
                            .or_insert((*net_units, *net_cash));
                        self.try_start(*trade_id, fx);
                    }
                }
                // Settlement is sent nothing else: no state makes sense of it.
                other => fx.poison(format!("settlement: unexpected message {other:?}")),
            },
            Input::Ledger { tag, reply } => self.on_reply(*tag, reply, fx),
            Input::Timer { timer_id } => self.on_chase_timer(*timer_id, ctx.now, fx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Effect;
    use crate::trading::allocation;
    use crate::trading::testkit::{
        alerts, handle, message, monday, round_trip, same_next, sample_trade, sent,
    };

    /// A priced trade of `fund` on `date`: its allocation message, its settlement notice, and
    /// the pending lines the ledger holds for it.
    fn priced(date: Date, fund: u32) -> (Input, Input, Vec<Transfer>) {
        let (trade, orders, c) = sample_trade(date, fund);
        let a = allocation::allocate(&trade, &orders, &c);
        let mut lines = allocation::pending_lines(&trade, &a);
        for (i, l) in lines.iter_mut().enumerate() {
            l.timestamp = 1 + i as u64;
        }
        let filled = a
            .lines
            .iter()
            .map(|l| Advance {
                instruction: l.order.instruction,
                leg: l.order.leg,
                partial: false,
                proceeds_pence: 0,
            })
            .collect();
        let allocated = message(
            msg_id(MsgKind::TradeAllocated, trade.id, 0),
            Service::Pricing,
            Service::Settlement,
            Message::TradeAllocated {
                trade,
                revision: 0,
                pending_lines: lines.len() as u64,
                net_units: a.net_units,
                net_cash: a.net_cash,
                filled,
            },
        );
        let settled = message(
            msg_id(MsgKind::TradeSettled, trade.id, 0),
            Service::Custodian,
            Service::Settlement,
            Message::TradeSettled {
                trade_id: trade.id,
                net_units: a.net_units,
                net_cash: a.net_cash,
            },
        );
        (allocated, settled, lines)
    }

    /// The ledger's answers to `effects`: the trade's lines for a query, success for transfers.
    fn answers(effects: &[Effect], lines: &[Transfer]) -> Vec<Input> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Ledger {
                    tag,
                    request: LedgerRequest::QueryTransfers(_),
                } => Some(Input::Ledger {
                    tag: *tag,
                    reply: LedgerReply::Transfers(lines.to_vec()),
                }),
                Effect::Ledger {
                    tag,
                    request: LedgerRequest::CreateTransfers(t),
                } => Some(Input::Ledger {
                    tag: *tag,
                    reply: LedgerReply::CreateTransfers(vec![
                        acme_ledger::CreateTransferResult::Ok;
                        t.len()
                    ]),
                }),
                _ => None,
            })
            .collect()
    }

    fn drive(s: &mut Settlement, now: Ts, input: &Input, lines: &[Transfer]) -> Vec<Effect> {
        let mut all = Vec::new();
        let mut queue = vec![input.clone()];
        while let Some(i) = queue.pop() {
            let (fx, poison) = handle(s, now, &i);
            assert_eq!(poison, None);
            queue.extend(answers(&fx, lines));
            all.extend(fx);
        }
        all
    }

    fn settled_notice(effects: &[Effect]) -> bool {
        sent(effects).iter().any(|e| {
            matches!(
                e.body,
                Message::InstructionsAdvanced {
                    state: InstructionState::Settled,
                    ..
                }
            )
        })
    }

    #[test]
    fn settlement_round_trips() {
        let s = Schedule::default();
        let mut st = Settlement::new(s);
        let d = monday();
        let t2 = d.add_business_days(2).at_minute(s.settlement_min);
        let (alloc1, settle1, lines1) = priced(d, 1);
        let (alloc2, settle2, lines2) = priced(d, 2);
        handle(&mut st, d.at_minute(s.valuation_min), &alloc1);
        handle(&mut st, d.at_minute(s.valuation_min), &alloc2);
        // Trade 1 settles and is half way: its lines are being posted.
        let query = handle(&mut st, t2, &settle1).0;
        let page = answers(&query, &lines1);
        let posts = handle(&mut st, t2, &page[0]).0;
        assert!(!st.running.is_empty() && !st.running[&trade_id_of(&alloc1)].proceeds.is_empty());

        let mut restored = round_trip(&st);
        let mirror = same_next(&mut st, &mut restored, t2, &answers(&posts, &lines1)[0]);
        let mut restored = round_trip(&st);
        let done = same_next(&mut st, &mut restored, t2, &answers(&mirror, &lines1)[0]);
        assert!(settled_notice(&done));
        // Trade 2's notice is late: chased, on both.
        let mut restored = round_trip(&st);
        let late = t2 + 31 * NS_PER_MIN;
        let chase = same_next(
            &mut st,
            &mut restored,
            late,
            &Input::Timer {
                timer_id: trade_id_of(&alloc2),
            },
        );
        assert_eq!(sent(&chase).len(), 1);
        let mut restored = round_trip(&st);
        let query = same_next(&mut st, &mut restored, late, &settle2);
        let page = answers(&query, &lines2);
        let a: Vec<Effect> = page
            .iter()
            .flat_map(|i| drive(&mut st, late, i, &lines2))
            .collect();
        let b: Vec<Effect> = page
            .iter()
            .flat_map(|i| drive(&mut restored, late, i, &lines2))
            .collect();
        assert_eq!(a, b);
        assert!(settled_notice(&a));
        assert_eq!(st.trades_held(), (0, 2));
    }

    fn trade_id_of(allocated: &Input) -> TradeId {
        match allocated {
            Input::Message(Envelope {
                body: Message::TradeAllocated { trade, .. },
                ..
            }) => trade.id,
            _ => panic!("not an allocation"),
        }
    }

    use crate::process::Envelope;

    #[test]
    fn retention_bounds_settlement_state() {
        let s = Schedule::default();
        let mut st = Settlement::new(s);
        let first = monday();
        // Allocated, never settled: kept and chased however old.
        let (stuck, _, _) = priced(first, 9);
        handle(&mut st, first.at_minute(s.valuation_min), &stuck);
        let mut d = first;
        let mut first_inputs = None;
        for _ in 0..40 {
            let (alloc, settle, lines) = priced(d, 1);
            handle(&mut st, d.at_minute(s.valuation_min), &alloc);
            let fx = drive(
                &mut st,
                d.add_business_days(2).at_minute(s.settlement_min),
                &settle,
                &lines,
            );
            assert!(settled_notice(&fx));
            assert_eq!(alerts(&fx), Vec::<&str>::new());
            let (live, done) = st.trades_held();
            assert_eq!(live, 1);
            assert!(done <= RETAIN_DAYS as usize);
            assert!(st.chases.len() <= 1);
            first_inputs.get_or_insert((alloc, settle));
            d = d.add_business_days(1);
        }
        assert_eq!(st.trades_held(), (1, RETAIN_DAYS as usize));
        let (alloc, settle) = first_inputs.unwrap();
        let now = d.at_minute(9 * 60);
        // A late notice for a retired trade is ignored, as for a done one; a revision after
        // settlement is alerted, as for a done one.
        assert_eq!(handle(&mut st, now, &settle), (vec![], None));
        let timer = Input::Timer {
            timer_id: trade_id_of(&alloc),
        };
        assert_eq!(handle(&mut st, now, &timer), (vec![], None));
        let (fx, poison) = handle(&mut st, now, &alloc);
        assert_eq!((alerts(&fx).len(), poison), (1, None));
        // The one never settled is still chased.
        let fx = handle(
            &mut st,
            now,
            &Input::Timer {
                timer_id: trade_id_of(&stuck),
            },
        )
        .0;
        assert!(matches!(sent(&fx)[..], [e] if matches!(e.body, Message::ChaseSettlement { .. })));
        round_trip(&st);
    }

    #[test]
    fn nonsense_inputs_are_poison() {
        let mut st = Settlement::new(Schedule::default());
        let body = Message::CutOff { date: Date(1) };
        let (fx, poison) = handle(
            &mut st,
            0,
            &message(1, Service::Scheduler, Service::Settlement, body),
        );
        assert!(fx.is_empty() && poison.is_some());
        for (phase, reply) in [
            (7, LedgerReply::CreateTransfers(vec![])),
            (PHASE_QUERY, LedgerReply::CreateTransfers(vec![])),
            (PHASE_POSTS, LedgerReply::Transfers(vec![])),
        ] {
            let input = Input::Ledger {
                tag: tag(1 << 20, phase, 0),
                reply,
            };
            let (fx, poison) = handle(&mut st, 0, &input);
            assert!(fx.is_empty() && poison.is_some(), "phase {phase}");
        }
        // A well-formed reply for a trade not running is an alert, not poison.
        let input = Input::Ledger {
            tag: tag(1 << 20, PHASE_QUERY, 0),
            reply: LedgerReply::Transfers(vec![]),
        };
        let (fx, poison) = handle(&mut st, 0, &input);
        assert_eq!((alerts(&fx).len(), poison), (1, None));
    }
}
