//! Aggregation: turns the day's reserved orders into one net external trade per fund.
//!
//! An order trades on the dealing date intake stamped on it from its receipt (see `intake`),
//! never on a date decided by when it reaches aggregation.
//!
//! **Late orders: aggregation waits.** The scheduler's `CutOff { date }` does not trade at
//! once: aggregation asks intake (`CloseDealing`) and trades the date when intake's
//! `DealingClosed { date, orders }` has come and that many orders of the date or earlier are
//! here. Intake answers once the cut-off has passed and every order received before it is
//! reserved (or refused), so an order whose reservation or message is held up still joins its
//! date's one trade; the trade is then placed late and the custodian prices it at that date's
//! valuation point (the dealing point is the receipt, not the placement). The alternative, a
//! supplementary trade per late order, would give a fund and date two trades, which the trade
//! ids, the custodian's books and the reconciliation all assume never happens.
//!
//! When the date trades, every open order of that date or earlier is
//! aggregated, per fund, into one trade with the id `trade_id(date, fund)`: a buy leg (the sum of
//! the buy orders' cash) and a sell leg (the sum of the sell orders' units), netted by the
//! custodian at the close (see `allocation`). A cut-off that fires twice finds the date closed
//! and does nothing; an order seen twice is kept once.
//!
//! **Retention.** An order arriving after its date closed is filed under the next open date, so
//! a copy of an order already traded would trade again: hence `taken`. But once a cut-off has
//! run, every order filed under that date or earlier is gone (a cut-off takes all open orders up
//! to its date), and intake sends each order once, when its reservation is applied; a copy can
//! only be the transport's, minutes late, not days. So the orders filed under a date
//! [`RETAIN_DAYS`] business days before the newest closed date, and those closed dates, are
//! retired; every date up to the newest retired one counts as closed from then on (a cut-off
//! for it finds it closed). Should a copy come later still, pricing would find the reservation
//! already posted and alert: an escaped duplicate is loud, never silent.

use crate::calendar::{Date, Schedule, Ts};
use crate::messages::{
    msg_id, trade_id, Advance, ExternalTrade, InstructionId, InstructionState, Leg, Message,
    MsgKind, Order, Side,
};
use crate::process::{Ctx, Effects, Input, Process, Service};
use acme_ledger::chart::FundId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Business days a closed date, and the record of the orders filed under it, are kept after
/// the newest closed date (see the module documentation).
pub const RETAIN_DAYS: u32 = 5;

#[derive(Serialize, Deserialize)]
pub struct Aggregation {
    schedule: Schedule,
    /// Open orders by (trade date, fund), each list in arrival order.
    #[serde(with = "crate::serde_pairs")]
    open: BTreeMap<(Date, FundId), Vec<Order>>,
    /// The orders taken, by the date they were filed under, so a duplicate is never aggregated
    /// twice; retired [`RETAIN_DAYS`] after the newest closed date.
    taken: BTreeMap<Date, BTreeSet<(InstructionId, Leg)>>,
    /// Dates whose cut-off has run (the recent ones; see `closed_through`).
    closed: BTreeSet<Date>,
    /// Every date up to this one counts as closed: the newest retired date (`Date(0)` before
    /// any).
    closed_through: Date,
    /// Dates whose cut-off came and which wait for intake: with intake's count once it
    /// answered.
    #[serde(default)]
    awaiting: BTreeMap<Date, Option<u64>>,
    /// Orders here and not yet traded, per dealing date (orders intake stamped only).
    #[serde(default)]
    arrived: BTreeMap<Date, u64>,
}

impl Aggregation {
    pub fn new(schedule: Schedule) -> Aggregation {
        Aggregation {
            schedule,
            open: BTreeMap::new(),
            taken: BTreeMap::new(),
            closed: BTreeSet::new(),
            closed_through: Date(0),
            awaiting: BTreeMap::new(),
            arrived: BTreeMap::new(),
        }
    }

    /// Trades the awaited dates whose orders are all here, oldest first.
    fn cut_off_ready(&mut self, fx: &mut Effects) {
        while let Some((&date, &Some(expected))) = self.awaiting.first_key_value() {
            let here: u64 = self.arrived.range(..=date).map(|(_, n)| n).sum();
            if here < expected {
                return;
            }
            self.awaiting.pop_first();
            let later = self.arrived.split_off(&date.next_day());
            self.arrived = later;
            self.cut_off(date, fx);
        }
    }

    fn on_order(&mut self, now: Ts, order: &Order, fx: &mut Effects) {
        let planted = crate::plant::active(crate::plant::Bug::DuplicateAppliedTwice);
        let key = (order.instruction, order.leg);
        if self.is_taken(&key) && !planted {
            return;
        }
        let stamped = order.dealing_date != Date(0);
        let late = stamped
            && crate::plant::active(crate::plant::Bug::LateOrderDatedOnArrival)
            && now >= self.schedule.cutoff(order.dealing_date);
        let date = if late {
            // Planted: an order arriving after its cut-off deals on its arrival.
            self.trade_date_for(now)
        } else if stamped && !self.is_closed(order.dealing_date) {
            order.dealing_date
        } else {
            if stamped {
                // Intake said the date was complete: a breach of the protocol, kept loud.
                fx.alert(
                    "aggregation",
                    format!(
                        "order {:#x} leg {} for {} came after that date traded",
                        order.instruction, order.leg, order.dealing_date
                    ),
                );
            }
            self.trade_date_for(now)
        };
        let new = self.taken.entry(date).or_default().insert(key);
        if new && stamped && date == order.dealing_date {
            *self.arrived.entry(order.dealing_date).or_default() += 1;
        }
        self.open
            .entry((date, order.fund))
            .or_default()
            .push(*order);
        self.cut_off_ready(fx);
    }

    fn is_closed(&self, date: Date) -> bool {
        date <= self.closed_through || self.closed.contains(&date)
    }

    fn is_taken(&self, key: &(InstructionId, Leg)) -> bool {
        self.taken.values().any(|orders| orders.contains(key))
    }

    /// Orders remembered (for duplicates), and closed dates remembered one by one.
    pub fn retained(&self) -> (usize, usize) {
        (
            self.taken.values().map(BTreeSet::len).sum(),
            self.closed.len(),
        )
    }

    /// Retires the dates [`RETAIN_DAYS`] or more before the newest closed date.
    fn retire(&mut self) {
        let Some(&newest) = self.closed.last() else {
            return;
        };
        let old = |d: &Date| super::aged(*d, newest, RETAIN_DAYS);
        // Everything filed under a date up to `newest` was taken by its cut-off.
        while let Some(entry) = self.taken.first_entry() {
            if !old(entry.key()) {
                break;
            }
            entry.remove();
        }
        while let Some(&first) = self.closed.first() {
            if !old(&first) {
                break;
            }
            self.closed.pop_first();
            self.closed_through = self.closed_through.max(first);
        }
    }

    /// The trade date of an order without a dealing date (written by intake's version 1)
    /// arriving at `now`.
    pub fn trade_date_for(&self, now: Ts) -> Date {
        let mut date = self.schedule.dealing_date(now);
        while self.is_closed(date) {
            date = date.add_business_days(1);
        }
        date
    }

    fn cut_off(&mut self, date: Date, fx: &mut Effects) {
        if self.is_closed(date) {
            return; // this cut-off ran already
        }
        self.closed.insert(date);
        let due: Vec<(Date, FundId)> = self
            .open
            .range(..=(date, FundId::MAX))
            .map(|(k, _)| *k)
            .collect();
        // One trade per fund: orders of earlier dates whose cut-off never came join this one.
        let mut per_fund: BTreeMap<FundId, Vec<Order>> = BTreeMap::new();
        for key in due {
            let orders = if crate::plant::active(crate::plant::Bug::CutOffTwiceTradesTwice) {
                // Planted: the orders stay open and trade again at the next cut-off.
                self.open[&key].clone()
            } else {
                self.open.remove(&key).expect("key just listed")
            };
            per_fund.entry(key.1).or_default().extend(orders);
        }
        for (fund, mut orders) in per_fund {
            orders.sort_by_key(|o| (o.instruction, o.leg));
            if crate::plant::active(crate::plant::Bug::BatchBoundaryDropped) {
                // Planted: one ledger batch of orders a trade; the rest are left behind.
                orders.truncate(acme_ledger::BATCH_EVENTS_MAX);
            }
            let leg_total = |side| {
                orders
                    .iter()
                    .filter(|o| o.side == side)
                    .map(|o| o.amount)
                    .sum()
            };
            let trade = ExternalTrade {
                id: trade_id(date, fund),
                fund,
                trade_date: date,
                buy_cash_pence: leg_total(Side::Buy),
                sell_units_micro: leg_total(Side::Sell),
            };
            let advances: Vec<Advance> = orders
                .iter()
                .map(|o| Advance {
                    instruction: o.instruction,
                    leg: o.leg,
                    partial: false,
                    proceeds_pence: 0,
                })
                .collect();
            fx.send(
                msg_id(MsgKind::TradeBooked, trade.id, 0),
                Service::Aggregation,
                Service::Pricing,
                Message::TradeBooked { trade, orders },
            );
            fx.send(
                msg_id(MsgKind::PlaceTrade, trade.id, 0),
                Service::Aggregation,
                Service::Custodian,
                Message::PlaceTrade(trade),
            );
            fx.send(
                msg_id(
                    MsgKind::InstructionsAdvanced,
                    trade.id,
                    InstructionState::Placed as u64,
                ),
                Service::Aggregation,
                Service::Intake,
                Message::InstructionsAdvanced {
                    orders: advances,
                    state: InstructionState::Placed,
                },
            );
        }
        self.retire();
    }
}

impl Process for Aggregation {
    fn name(&self) -> &'static str {
        "aggregation"
    }

    /// Version 2 trades on intake's dealing dates and waits for `DealingClosed`.
    fn version(&self) -> u32 {
        2
    }

    fn migrate(&self, from: u32, state: serde_json::Value) -> Result<serde_json::Value, String> {
        // Version 1's state lacks only fields with defaults: nothing awaited, nothing counted.
        match from {
            1 => Ok(state),
            _ => Err(format!("aggregation has no migration from version {from}")),
        }
    }

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        let Input::Message(env) = input else {
            // Aggregation sets no timer and asks the ledger nothing.
            fx.poison(format!("aggregation: unexpected input {input:?}"));
            return;
        };
        match &env.body {
            Message::OrderAccepted(order) => self.on_order(ctx.now, order, fx),
            Message::CutOff { date } => {
                if self.is_closed(*date) || self.awaiting.contains_key(date) {
                    return; // this cut-off ran already, or waits for intake
                }
                self.awaiting.insert(*date, None);
                fx.send(
                    msg_id(MsgKind::CloseDealing, date.0 as u64, 0),
                    Service::Aggregation,
                    Service::Intake,
                    Message::CloseDealing { date: *date },
                );
            }
            Message::DealingClosed { date, orders } => {
                if let Some(slot) = self.awaiting.get_mut(date) {
                    *slot = Some(*orders);
                    self.cut_off_ready(fx);
                }
            }
            other => fx.poison(format!("aggregation: unexpected message {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::NS_PER_MIN;
    use crate::trading::testkit::{alerts, handle, message, monday, round_trip, same_next, sent};

    fn accepted(instruction: u64, fund: FundId, side: Side, amount: u64, dealing: Date) -> Input {
        message(
            msg_id(MsgKind::OrderAccepted, instruction, 0),
            Service::Intake,
            Service::Aggregation,
            Message::OrderAccepted(Order {
                instruction,
                leg: 0,
                member: instruction >> 24,
                fund,
                side,
                amount,
                dealing_date: dealing,
            }),
        )
    }

    fn cut_off(date: Date) -> Input {
        message(
            msg_id(MsgKind::CutOff, date.0 as u64, 0),
            Service::Scheduler,
            Service::Aggregation,
            Message::CutOff { date },
        )
    }

    fn closed(date: Date, orders: u64) -> Input {
        message(
            msg_id(MsgKind::DealingClosed, date.0 as u64, 0),
            Service::Intake,
            Service::Aggregation,
            Message::DealingClosed { date, orders },
        )
    }

    fn morning(date: Date) -> Ts {
        date.at_minute(9 * 60)
    }

    fn trades(fx: &[crate::process::Effect]) -> Vec<ExternalTrade> {
        sent(fx)
            .into_iter()
            .filter_map(|e| match &e.body {
                Message::PlaceTrade(t) => Some(*t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn aggregation_round_trips() {
        let s = Schedule::default();
        let mut agg = Aggregation::new(s);
        let d = monday();
        let next = d.add_business_days(1);
        handle(
            &mut agg,
            morning(d),
            &accepted(1 << 24, 1, Side::Buy, 500, d),
        );
        handle(
            &mut agg,
            morning(d),
            &accepted(2 << 24, 1, Side::Sell, 70, d),
        );
        handle(&mut agg, morning(d), &accepted(3 << 24, 2, Side::Buy, 9, d));
        let (fx, _) = handle(&mut agg, s.cutoff(d), &cut_off(d));
        let asked: Vec<_> = sent(&fx).into_iter().map(|e| (e.to, &e.body)).collect();
        assert_eq!(
            asked,
            vec![(Service::Intake, &Message::CloseDealing { date: d })]
        );
        let (fx, _) = handle(&mut agg, s.cutoff(d) + 1, &closed(d, 3));
        assert_eq!(trades(&fx).len(), 2, "funds 1 and 2 trade on {d}");
        // Received after the cut-off: intake dated them the next day.
        let later = s.cutoff(d) + NS_PER_MIN;
        handle(&mut agg, later, &accepted(4 << 24, 1, Side::Buy, 1, next));
        handle(&mut agg, later, &accepted(5 << 24, 3, Side::Sell, 2, next));
        let mut restored = round_trip(&agg);
        let dup = same_next(
            &mut agg,
            &mut restored,
            morning(next),
            &accepted(2 << 24, 1, Side::Sell, 70, d),
        );
        assert!(dup.is_empty(), "a duplicate of a traded order is dropped");
        let mut restored = round_trip(&agg);
        same_next(
            &mut agg,
            &mut restored,
            morning(next),
            &accepted(6 << 24, 1, Side::Buy, 3, next),
        );
        let mut restored = round_trip(&agg);
        same_next(&mut agg, &mut restored, s.cutoff(next), &cut_off(next));
        let mut restored = round_trip(&agg);
        let fx = same_next(&mut agg, &mut restored, s.cutoff(next), &closed(next, 3));
        // Funds 1 and 3: a booking, a placement and a notice each.
        assert_eq!(sent(&fx).len(), 6);
        assert!(trades(&fx).iter().all(|t| t.trade_date == next));
    }

    #[test]
    fn a_late_order_still_deals_on_its_date() {
        let s = Schedule::default();
        let mut agg = Aggregation::new(s);
        let d = monday();
        handle(
            &mut agg,
            morning(d),
            &accepted(1 << 24, 1, Side::Buy, 500, d),
        );
        handle(&mut agg, s.cutoff(d), &cut_off(d));
        // Intake sent two orders for the date; one is still on its way.
        let (fx, _) = handle(&mut agg, s.cutoff(d) + 1, &closed(d, 2));
        assert!(trades(&fx).is_empty(), "waits for the second order");
        let evening = d.at_minute(21 * 60);
        let (fx, _) = handle(&mut agg, evening, &accepted(2 << 24, 1, Side::Buy, 20, d));
        let t = trades(&fx);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].trade_date, t[0].buy_cash_pence), (d, 520));
        // A second cut-off and a copy of intake's answer change nothing.
        assert!(handle(&mut agg, evening, &cut_off(d)).0.is_empty());
        assert!(handle(&mut agg, evening, &closed(d, 2)).0.is_empty());
        // An order for a date already traded breaks the protocol: it trades later, loudly.
        let (fx, _) = handle(&mut agg, evening, &accepted(3 << 24, 1, Side::Buy, 1, d));
        assert_eq!(alerts(&fx).len(), 1);
    }

    #[test]
    fn retention_bounds_aggregation_state() {
        let s = Schedule::default();
        let mut agg = Aggregation::new(s);
        let mut d = monday();
        let first = d;
        let mut id = 0;
        for _ in 0..60 {
            for _ in 0..20 {
                id += 1;
                let order = accepted(id << 24, 1 + id as u32 % 3, Side::Buy, 10, d);
                handle(&mut agg, morning(d), &order);
            }
            handle(&mut agg, s.cutoff(d), &cut_off(d));
            let (fx, _) = handle(&mut agg, s.cutoff(d), &closed(d, 20));
            assert_eq!(trades(&fx).len(), 3);
            let (orders, dates) = agg.retained();
            assert!(dates <= RETAIN_DAYS as usize, "{dates} closed dates held");
            assert!(orders <= 20 * RETAIN_DAYS as usize, "{orders} orders held");
            d = d.add_business_days(1);
        }
        // A recent order's copy is still known; a cut-off of a retired date does nothing.
        let copy = accepted(id << 24, 1 + id as u32 % 3, Side::Buy, 10, d);
        assert!(handle(&mut agg, morning(d), &copy).0.is_empty());
        assert_eq!(
            agg.retained(),
            (20 * RETAIN_DAYS as usize, RETAIN_DAYS as usize)
        );
        assert_eq!(
            handle(&mut agg, morning(d), &cut_off(first)),
            (vec![], None)
        );
        assert!(agg.trade_date_for(morning(first)) > first);
    }

    #[test]
    fn a_version_1_snapshot_migrates() {
        let mut agg = Aggregation::new(Schedule::default());
        let d = monday();
        handle(&mut agg, morning(d), &accepted(1 << 24, 1, Side::Buy, 5, d));
        let mut v1 = serde_json::to_value(&agg).unwrap();
        let m = v1.as_object_mut().unwrap();
        m.remove("awaiting");
        m.remove("arrived");
        let migrated = agg.migrate(1, v1).expect("a migration from version 1");
        let mut back: Aggregation = serde_json::from_value(migrated).expect("today's shape");
        // Nothing counted: the open order trades when intake's answer says none is missing.
        handle(&mut back, agg.schedule.cutoff(d), &cut_off(d));
        let (fx, _) = handle(&mut back, agg.schedule.cutoff(d), &closed(d, 0));
        assert_eq!(trades(&fx).len(), 1);
        assert!(agg.migrate(2, serde_json::json!({})).is_err());
    }

    #[test]
    fn nonsense_inputs_are_poison() {
        let mut agg = Aggregation::new(Schedule::default());
        let (fx, poison) = handle(&mut agg, 0, &Input::Timer { timer_id: 1 });
        assert!(fx.is_empty() && poison.is_some());
        let body = Message::TradeRejected { trade_id: 1 };
        let (fx, poison) = handle(
            &mut agg,
            0,
            &message(1, Service::Custodian, Service::Aggregation, body),
        );
        assert!(fx.is_empty() && poison.is_some());
    }
}
