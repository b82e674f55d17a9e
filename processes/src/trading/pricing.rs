//! Pricing: books a priced net trade in the members' pots.
//!
//! It needs two things, in either order: the trade's composition (`TradeBooked`, from
//! aggregation) and the custodian's answer: a price confirmation (`TradePriced`, revision 0), or
//! a rejection (`TradeRejected`). Then, in the ledger:
//! 1. the unit accounts of the buyers are created (`exists` is fine);
//! 2. the net with the custodian moves between its unsettled mirror and ACME's trading accounts;
//! 3. per order, a linked chain posts the filled part of the reservation (the rest is released
//!    by TigerBeetle's partial post; a fill of zero voids it) and books the member's proceeds as
//!    a *pending* transfer, final at settlement;
//! 4. the residuals go, pending too, to ACME's rounding accounts.
//!
//! If the custodian has not answered [`Schedule::chase_after_min`] after the valuation point,
//! pricing chases it (`ChaseConfirmation`), and again at that interval until it answers: a lost
//! or withheld confirmation is recovered by our side, not waited for.
//!
//! A rejected trade voids every reservation: each order ends `Rejected` with its cash or units
//! back. An amended price (`TradePriced` with a higher revision, before settlement) voids the
//! previous revision's pending lines and books new ones (see [`super::allocation`]).
//!
//! **Retention.** A trade is finished here when it is booked or released; a booked one may
//! still be amended until it settles (T+N, a few days late at worst), and settlement's chase of
//! a settlement at other figures brings such an amendment here. Pricing does not hear of
//! settlement, so it keeps a finished trade until its trade date is [`RETAIN_DAYS`] business
//! days before the newest trade date booked (twice the worst settlement delay seen, and more),
//! then retires it with its chase count. A trade that is not finished (waiting for the
//! custodian, or stopped at an alert) is never retired. A message for a retired trade, told by
//! its id (a date old enough and no record), is a late copy of one already acted on and is
//! ignored, except an amendment (a confirmation of revision > 0): one that late cannot be
//! booked any more, and a person must look.

use super::allocation::{self, Allocation};
use super::{tag, untag};
use crate::calendar::{Date, Schedule, Ts, NS_PER_MIN};
use crate::messages::{
    msg_id, trade_date, Advance, Confirmation, ExternalTrade, InstructionState, Message, MsgKind,
    Order, Side, TradeId,
};
use crate::process::{Ctx, Effects, Input, LedgerReply, LedgerRequest, Process, Service};
use acme_ledger::chart::{self, AccountKind};
use acme_ledger::{Account, BATCH_EVENTS_MAX};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const PHASE_ACCOUNTS: u64 = 1;
const PHASE_BOOK: u64 = 2;
const PHASE_REJECT: u64 = 3;
/// Amendment phases are `PHASE_AMEND_BASE + revision` (revision < 8).
const PHASE_AMEND_BASE: u64 = 8;
/// Amendments a trade may have.
pub const REVISIONS_MAX: u32 = 7;
/// Business days a finished trade is kept after its trade date, counted back from the newest
/// trade date booked (see the module documentation).
pub const RETAIN_DAYS: u32 = 10;

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Custodian {
    Priced(Confirmation),
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Stage {
    /// Waiting for the composition or the custodian's answer.
    Waiting,
    /// Ledger requests of `phase` outstanding.
    Running { phase: u64, outstanding: u64 },
    /// Booked at this allocation; amendments may follow.
    Booked,
    /// Rejected and released.
    Released,
}

#[derive(Serialize, Deserialize)]
struct TradeState {
    booked: Option<(ExternalTrade, Vec<Order>)>,
    /// The custodian's answers by revision (0 = first pricing), and a rejection.
    answers: BTreeMap<u32, Custodian>,
    allocation: Option<Allocation>,
    stage: Stage,
}

impl TradeState {
    fn finished(&self) -> bool {
        matches!(self.stage, Stage::Booked | Stage::Released)
    }
}

#[derive(Serialize, Deserialize)]
pub struct Pricing {
    schedule: Schedule,
    trades: BTreeMap<TradeId, TradeState>,
    /// Chases sent per trade.
    chases: BTreeMap<TradeId, u64>,
    /// The newest trade date booked: what retirement counts from.
    newest: Date,
}

impl Pricing {
    pub fn new(schedule: Schedule) -> Pricing {
        Pricing {
            schedule,
            trades: BTreeMap::new(),
            chases: BTreeMap::new(),
            newest: Date(0),
        }
    }

    /// Trades held (live and finished, not yet retired).
    pub fn trades_held(&self) -> usize {
        self.trades.len()
    }

    /// A trade that was finished and retired (or, the same to pricing, so old it never came).
    fn is_retired(&self, trade_id: TradeId) -> bool {
        !self.trades.contains_key(&trade_id)
            && super::aged(trade_date(trade_id), self.newest, RETAIN_DAYS)
    }

    /// Counts retirement from `date` on, if it is the newest trade date yet.
    fn advance_to(&mut self, date: Date) {
        if date <= self.newest {
            return;
        }
        self.newest = date;
        let newest = self.newest;
        self.trades
            .retain(|&id, t| !(t.finished() && super::aged(trade_date(id), newest, RETAIN_DAYS)));
        let trades = &self.trades;
        self.chases.retain(|id, _| trades.contains_key(id));
    }

    fn on_chase_timer(&mut self, trade_id: TradeId, now: Ts, fx: &mut Effects) {
        if self.is_retired(trade_id) {
            return;
        }
        let answered = self
            .trades
            .get(&trade_id)
            .is_some_and(|t| t.answers.contains_key(&0));
        if answered && !crate::plant::active(crate::plant::Bug::EndlessChase) {
            return;
        }
        let attempt = self.chases.entry(trade_id).or_default();
        *attempt += 1;
        fx.send(
            msg_id(MsgKind::ChaseConfirmation, trade_id, *attempt),
            Service::Pricing,
            Service::Custodian,
            Message::ChaseConfirmation { trade_id },
        );
        fx.timer(
            trade_id,
            now + self.schedule.chase_after_min as u64 * NS_PER_MIN,
        );
    }

    fn state(&mut self, trade_id: TradeId) -> &mut TradeState {
        self.trades.entry(trade_id).or_insert(TradeState {
            booked: None,
            answers: BTreeMap::new(),
            allocation: None,
            stage: Stage::Waiting,
        })
    }

    /// Moves a trade forward as far as what it has allows.
    fn progress(&mut self, trade_id: TradeId, fx: &mut Effects) {
        let t = self.trades.get_mut(&trade_id).expect("known trade");
        let Some((trade, orders)) = &t.booked else {
            return;
        };
        match t.stage {
            Stage::Waiting => match t.answers.get(&0) {
                None => {}
                Some(Custodian::Rejected) => {
                    if crate::plant::active(crate::plant::Bug::ReservationNotReleased) {
                        // Planted: the orders are told they are rejected, but nothing is given
                        // back.
                        t.stage = Stage::Released;
                        send_rejected(trade_id, orders, fx);
                        return;
                    }
                    let voids = orders.iter().map(allocation::void_reservation).collect();
                    t.stage = Stage::Running {
                        phase: PHASE_REJECT,
                        outstanding: fx
                            .create_transfers_chunked(voids, |i| tag(trade_id, PHASE_REJECT, i)),
                    };
                }
                Some(Custodian::Priced(c)) => {
                    if let Err(why) = super::confirmation::check_fills(trade, c) {
                        fx.alert("pricing", format!("trade {trade_id:#x}: {why}: {c:?}"));
                        return;
                    }
                    t.allocation = Some(allocation::allocate(trade, orders, c));
                    let accounts: Vec<Account> = orders
                        .iter()
                        .filter(|o| o.side == Side::Buy)
                        .map(|o| {
                            chart::account(
                                AccountKind::MemberUnits,
                                chart::fund_ledger(o.fund),
                                o.member,
                            )
                        })
                        .collect();
                    let mut chunks = 0;
                    for batch in accounts.chunks(BATCH_EVENTS_MAX) {
                        fx.ledger(
                            tag(trade_id, PHASE_ACCOUNTS, chunks),
                            LedgerRequest::CreateAccounts(batch.to_vec()),
                        );
                        chunks += 1;
                    }
                    t.stage = Stage::Running {
                        phase: PHASE_ACCOUNTS,
                        outstanding: chunks,
                    };
                    if chunks == 0 {
                        self.book(trade_id, fx);
                    }
                }
            },
            Stage::Booked => {
                let current = t.allocation.as_ref().expect("booked").revision;
                let Some((&revision, Custodian::Priced(c))) = t.answers.range(current + 1..).next()
                else {
                    return;
                };
                if revision > REVISIONS_MAX {
                    fx.alert(
                        "pricing",
                        format!("trade {trade_id:#x}: amendment {revision} past the limit"),
                    );
                    return;
                }
                let next = allocation::allocate(trade, orders, c);
                let transfers = allocation::amendment_transfers(
                    trade,
                    t.allocation.as_ref().expect("booked"),
                    &next,
                );
                let phase = PHASE_AMEND_BASE + revision as u64;
                t.allocation = Some(next);
                t.stage = Stage::Running {
                    phase,
                    outstanding: fx
                        .create_transfers_chunked(transfers, |i| tag(trade_id, phase, i)),
                };
            }
            Stage::Running { .. } | Stage::Released => {}
        }
    }

    fn book(&mut self, trade_id: TradeId, fx: &mut Effects) {
        let t = self.trades.get_mut(&trade_id).expect("known trade");
        let (trade, _) = t.booked.as_ref().expect("booked");
        let transfers =
            allocation::booking_transfers(trade, t.allocation.as_ref().expect("allocated"));
        t.stage = Stage::Running {
            phase: PHASE_BOOK,
            outstanding: fx.create_transfers_chunked(transfers, |i| tag(trade_id, PHASE_BOOK, i)),
        };
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
            // A replayed chain answers `exists` then `linked_event_failed`: still applied.
            LedgerReply::CreateTransfers(r) if acme_ledger::batch_applied(r) => Vec::new(),
            LedgerReply::CreateTransfers(r) => r
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.is_applied())
                .map(|(i, r)| format!("transfer #{i}: {r:?}"))
                .collect(),
            _ => unreachable!("checked by the caller"),
        };
        if !failures.is_empty() {
            // A refusal of a step that was valid when it was built: stop and call a person. The
            // trade stays where it is; nothing half-done is hidden.
            fx.alert(
                "pricing",
                format!("trade {trade_id:#x} phase {phase}: {}", failures.join(", ")),
            );
            return;
        }
        let Some(t) = self.trades.get_mut(&trade_id) else {
            fx.alert("pricing", format!("reply for unknown trade {trade_id:#x}"));
            return;
        };
        let Stage::Running {
            phase: running,
            outstanding,
        } = &mut t.stage
        else {
            fx.alert(
                "pricing",
                format!("reply for trade {trade_id:#x} not running"),
            );
            return;
        };
        if *running != phase {
            fx.alert(
                "pricing",
                format!("trade {trade_id:#x}: reply of phase {phase} while in phase {running}"),
            );
            return;
        }
        *outstanding -= 1;
        if *outstanding > 0 {
            return;
        }
        match phase {
            PHASE_ACCOUNTS => self.book(trade_id, fx),
            PHASE_REJECT => {
                t.stage = Stage::Released;
                let (_, orders) = t.booked.as_ref().expect("booked");
                send_rejected(trade_id, orders, fx);
            }
            _ => {
                t.stage = Stage::Booked;
                let (trade, _) = t.booked.as_ref().expect("booked");
                let a = t.allocation.as_ref().expect("allocated");
                let pending_lines = allocation::pending_lines(trade, a).len() as u64;
                let filled: Vec<Advance> = a
                    .lines
                    .iter()
                    .filter(|l| l.filled > 0)
                    .map(|l| Advance {
                        instruction: l.order.instruction,
                        leg: l.order.leg,
                        partial: l.filled < l.order.amount,
                        proceeds_pence: 0,
                    })
                    .collect();
                fx.send(
                    msg_id(MsgKind::TradeAllocated, trade_id, a.revision as u64),
                    Service::Pricing,
                    Service::Settlement,
                    Message::TradeAllocated {
                        trade: *trade,
                        revision: a.revision,
                        pending_lines,
                        net_units: a.net_units,
                        net_cash: a.net_cash,
                        filled: filled.clone(),
                    },
                );
                if a.revision == 0 {
                    let priced = filled;
                    fx.send(
                        msg_id(
                            MsgKind::InstructionsAdvanced,
                            trade_id,
                            InstructionState::Priced as u64,
                        ),
                        Service::Pricing,
                        Service::Intake,
                        Message::InstructionsAdvanced {
                            orders: priced,
                            state: InstructionState::Priced,
                        },
                    );
                    let unfilled: Vec<Advance> = a
                        .lines
                        .iter()
                        .filter(|l| l.filled == 0)
                        .map(|l| Advance {
                            instruction: l.order.instruction,
                            leg: l.order.leg,
                            partial: false,
                            proceeds_pence: 0,
                        })
                        .collect();
                    if !unfilled.is_empty() {
                        fx.send(
                            msg_id(
                                MsgKind::InstructionsAdvanced,
                                trade_id,
                                InstructionState::Rejected as u64,
                            ),
                            Service::Pricing,
                            Service::Intake,
                            Message::InstructionsAdvanced {
                                orders: unfilled,
                                state: InstructionState::Rejected,
                            },
                        );
                    }
                }
                // An amendment that arrived while this revision was being booked.
                self.progress(trade_id, fx);
            }
        }
    }
}

impl Process for Pricing {
    fn name(&self) -> &'static str {
        "pricing"
    }

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        match input {
            Input::Message(env) => {
                let retired = match &env.body {
                    Message::TradeBooked { trade, .. } => Some((trade.id, 0)),
                    Message::TradePriced(c) => Some((c.trade_id, c.revision)),
                    Message::TradeRejected { trade_id } => Some((*trade_id, 0)),
                    _ => None,
                };
                if let Some((trade_id, revision)) = retired {
                    if self.is_retired(trade_id) {
                        if revision > 0 {
                            fx.alert(
                                "pricing",
                                format!(
                                    "trade {trade_id:#x}: amendment {revision} after the trade \
                                     was retired ({RETAIN_DAYS} business days)"
                                ),
                            );
                        }
                        return;
                    }
                }
                let trade_id = match &env.body {
                    Message::TradeBooked { trade, orders } => {
                        self.advance_to(trade.trade_date);
                        let t = self.state(trade.id);
                        if t.booked.is_none() {
                            t.booked = Some((*trade, orders.clone()));
                            let s = self.schedule;
                            let due = trade
                                .trade_date
                                .at_minute(s.valuation_min + s.chase_after_min);
                            fx.timer(trade.id, due.max(ctx.now));
                        }
                        trade.id
                    }
                    Message::TradePriced(c) => {
                        // The custodian's figures are outside input: a bad one is quarantined
                        // (dead-lettered and alerted by the host), never booked or asserted on.
                        let booked = self.trades.get(&c.trade_id).and_then(|t| t.booked.as_ref());
                        let checked = super::confirmation::check(c).map_err(|r| r.to_string());
                        let checked = checked.and_then(|()| match booked {
                            // Known now: refuse it here. A trade booked later is checked when
                            // it comes (an alert: the confirmation is already kept by then).
                            Some((trade, _)) => super::confirmation::check_fills(trade, c),
                            None => Ok(()),
                        });
                        if let Err(why) = checked {
                            fx.poison(format!(
                                "pricing: confirmation {} of trade {:#x} refused: {why}",
                                c.revision, c.trade_id
                            ));
                            return;
                        }
                        self.state(c.trade_id)
                            .answers
                            .entry(c.revision)
                            .or_insert(Custodian::Priced(*c));
                        c.trade_id
                    }
                    Message::TradeRejected { trade_id } => {
                        self.state(*trade_id)
                            .answers
                            .entry(0)
                            .or_insert(Custodian::Rejected);
                        *trade_id
                    }
                    // Pricing is sent nothing else: no state makes sense of it.
                    other => {
                        fx.poison(format!("pricing: unexpected message {other:?}"));
                        return;
                    }
                };
                self.progress(trade_id, fx);
            }
            Input::Ledger { tag, reply } => {
                let (_, phase, _) = untag(*tag);
                let known = match phase {
                    PHASE_ACCOUNTS => matches!(reply, LedgerReply::CreateAccounts(_)),
                    PHASE_BOOK | PHASE_REJECT => matches!(reply, LedgerReply::CreateTransfers(_)),
                    p if (PHASE_AMEND_BASE + 1..=PHASE_AMEND_BASE + REVISIONS_MAX as u64)
                        .contains(&p) =>
                    {
                        matches!(reply, LedgerReply::CreateTransfers(_))
                    }
                    _ => false,
                };
                if !known {
                    // A phase pricing never uses, or a reply of another kind than its request.
                    fx.poison(format!(
                        "pricing: unexpected ledger reply for tag {tag:#x}: {reply:?}"
                    ));
                    return;
                }
                self.on_reply(*tag, reply, fx)
            }
            Input::Timer { timer_id } => self.on_chase_timer(*timer_id, ctx.now, fx),
        }
    }
}

/// Tells intake that every order of a rejected trade ended `Rejected`.
fn send_rejected(trade_id: TradeId, orders: &[Order], fx: &mut Effects) {
    let advances = orders
        .iter()
        .map(|o| Advance {
            instruction: o.instruction,
            leg: o.leg,
            partial: false,
            proceeds_pence: 0,
        })
        .collect();
    fx.send(
        msg_id(
            MsgKind::InstructionsAdvanced,
            trade_id,
            InstructionState::Rejected as u64,
        ),
        Service::Pricing,
        Service::Intake,
        Message::InstructionsAdvanced {
            orders: advances,
            state: InstructionState::Rejected,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Date;
    use crate::money::{cash_for_units, units_for_cash, Price};
    use crate::process::Effect;
    use crate::trading::testkit::{
        alerts, drive_ok, handle, message, monday, ok_answers, round_trip, same_next, sample_trade,
        sent,
    };

    fn booked(trade: ExternalTrade, orders: Vec<Order>) -> Input {
        message(
            msg_id(MsgKind::TradeBooked, trade.id, 0),
            Service::Aggregation,
            Service::Pricing,
            Message::TradeBooked { trade, orders },
        )
    }

    fn priced(c: Confirmation) -> Input {
        message(
            msg_id(MsgKind::TradePriced, c.trade_id, c.revision as u64),
            Service::Custodian,
            Service::Pricing,
            Message::TradePriced(c),
        )
    }

    fn amended(c: Confirmation, revision: u32, price: Price) -> Confirmation {
        Confirmation {
            revision,
            price,
            units_bought: units_for_cash(c.buy_cash_filled, price),
            cash_for_sold: cash_for_units(c.sell_units_filled, price),
            ..c
        }
    }

    fn allocated(effects: &[Effect]) -> Vec<u32> {
        sent(effects)
            .into_iter()
            .filter_map(|e| match &e.body {
                Message::TradeAllocated { revision, .. } => Some(*revision),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn pricing_round_trips() {
        let s = Schedule::default();
        let mut pricing = Pricing::new(s);
        let d = monday();
        let now = d.at_minute(s.valuation_min);
        let (trade, orders, c) = sample_trade(d, 1);
        handle(&mut pricing, now, &booked(trade, orders));
        let (fx, _) = handle(&mut pricing, now, &priced(c));
        let accounts = ok_answers(&fx);
        assert_eq!(accounts.len(), 1);
        // Another trade waits for its price.
        let (other, other_orders, _) = sample_trade(d, 2);
        handle(&mut pricing, now, &booked(other, other_orders));

        let mut restored = round_trip(&pricing);
        let fx = same_next(&mut pricing, &mut restored, now, &accounts[0]);
        let booking = ok_answers(&fx);
        assert!(!booking.is_empty());
        let mut restored = round_trip(&pricing);
        let mut fx = Vec::new();
        for reply in &booking {
            fx.extend(same_next(&mut pricing, &mut restored, now, reply));
        }
        assert_eq!(allocated(&fx), vec![0]);
        // An amendment the next morning, on the restored copy and the original alike.
        let mut restored = round_trip(&pricing);
        let next = d.add_business_days(1).at_minute(8 * 60);
        let fx = same_next(
            &mut pricing,
            &mut restored,
            next,
            &priced(amended(c, 1, Price(2_600_000))),
        );
        let mut restored = round_trip(&pricing);
        let mut done = Vec::new();
        for reply in ok_answers(&fx) {
            done.extend(same_next(&mut pricing, &mut restored, next, &reply));
        }
        assert_eq!(allocated(&done), vec![1]);
        // The waiting trade's chase.
        let mut restored = round_trip(&pricing);
        let chase = same_next(
            &mut pricing,
            &mut restored,
            next,
            &Input::Timer { timer_id: other.id },
        );
        assert_eq!(sent(&chase).len(), 1);
    }

    #[test]
    fn retention_bounds_pricing_state() {
        let s = Schedule::default();
        let mut pricing = Pricing::new(s);
        let first = monday();
        // A trade the custodian never answers: never retired, however old.
        let (stuck, stuck_orders, _) = sample_trade(first, 9);
        handle(
            &mut pricing,
            first.at_minute(s.cutoff_min),
            &booked(stuck, stuck_orders),
        );
        let mut d = first;
        let mut first_c = None;
        for _ in 0..40 {
            let now = d.at_minute(s.valuation_min);
            let (trade, orders, c) = sample_trade(d, 1);
            first_c.get_or_insert(c);
            drive_ok(&mut pricing, now, &booked(trade, orders));
            let fx = drive_ok(&mut pricing, now, &priced(c));
            assert_eq!(allocated(&fx), vec![0]);
            assert!(pricing.trades_held() <= RETAIN_DAYS as usize + 1);
            assert!(pricing.chases.len() <= pricing.trades.len());
            d = d.add_business_days(1);
        }
        assert_eq!(pricing.trades_held(), RETAIN_DAYS as usize + 1);
        let c = first_c.unwrap();
        let now = d.at_minute(9 * 60);
        // Late copies for a retired trade are ignored; an amendment that late is alerted.
        assert_eq!(handle(&mut pricing, now, &priced(c)), (vec![], None));
        let (trade, orders, _) = sample_trade(first, 1);
        assert_eq!(
            handle(&mut pricing, now, &booked(trade, orders)),
            (vec![], None)
        );
        let timer = Input::Timer {
            timer_id: c.trade_id,
        };
        assert_eq!(handle(&mut pricing, now, &timer), (vec![], None));
        let (fx, poison) = handle(&mut pricing, now, &priced(amended(c, 1, Price(1))));
        assert_eq!((alerts(&fx).len(), fx.len(), poison), (1, 1, None));
        // The unanswered trade is still chased.
        let fx = handle(&mut pricing, now, &Input::Timer { timer_id: stuck.id }).0;
        assert!(matches!(
            sent(&fx)[..],
            [e] if e.body == Message::ChaseConfirmation { trade_id: stuck.id }
        ));
        round_trip(&pricing);
    }

    #[test]
    fn nonsense_inputs_are_poison() {
        let mut pricing = Pricing::new(Schedule::default());
        let body = Message::CutOff { date: Date(1) };
        let (fx, poison) = handle(
            &mut pricing,
            0,
            &message(1, Service::Scheduler, Service::Pricing, body),
        );
        assert!(fx.is_empty() && poison.is_some());
        for (phase, reply) in [
            (5, LedgerReply::CreateTransfers(vec![])),
            (PHASE_ACCOUNTS, LedgerReply::CreateTransfers(vec![])),
            (PHASE_BOOK, LedgerReply::Accounts(vec![])),
            (PHASE_AMEND_BASE, LedgerReply::CreateTransfers(vec![])),
        ] {
            let input = Input::Ledger {
                tag: tag(trade_id_of_test(), phase, 0),
                reply,
            };
            let (fx, poison) = handle(&mut pricing, 0, &input);
            assert!(fx.is_empty() && poison.is_some(), "phase {phase}");
        }
    }

    fn trade_id_of_test() -> TradeId {
        crate::messages::trade_id(monday(), 1)
    }
}
