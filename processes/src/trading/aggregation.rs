//! Aggregation: turns the day's reserved orders into one net external trade per fund.
//!
//! An order belongs to the trade date whose cut-off has not passed when the order arrives
//! (a business day, before [`Schedule::cutoff_min`]); otherwise to the next business day. When
//! the scheduler's `CutOff { date }` arrives, every open order of that date or earlier is
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
}

impl Aggregation {
    pub fn new(schedule: Schedule) -> Aggregation {
        Aggregation {
            schedule,
            open: BTreeMap::new(),
            taken: BTreeMap::new(),
            closed: BTreeSet::new(),
            closed_through: Date(0),
        }
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

    /// The trade date of an order arriving at `now`.
    pub fn trade_date_for(&self, now: Ts) -> Date {
        let today = Date::of(now);
        let mut date = if today.is_business_day() && now < today.at_minute(self.schedule.cutoff_min)
        {
            today
        } else {
            today.add_business_days(1)
        };
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

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        let Input::Message(env) = input else {
            // Aggregation sets no timer and asks the ledger nothing.
            fx.poison(format!("aggregation: unexpected input {input:?}"));
            return;
        };
        match &env.body {
            Message::OrderAccepted(order) => {
                let planted = crate::plant::active(crate::plant::Bug::DuplicateAppliedTwice);
                let key = (order.instruction, order.leg);
                if self.is_taken(&key) && !planted {
                    return;
                }
                let date = self.trade_date_for(ctx.now);
                self.taken.entry(date).or_default().insert(key);
                self.open
                    .entry((date, order.fund))
                    .or_default()
                    .push(*order);
            }
            Message::CutOff { date } => self.cut_off(*date, fx),
            other => fx.poison(format!("aggregation: unexpected message {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trading::testkit::{handle, message, monday, round_trip, same_next, sent};

    fn accepted(instruction: u64, fund: FundId, side: Side, amount: u64) -> Input {
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

    fn morning(date: Date) -> Ts {
        date.at_minute(9 * 60)
    }

    #[test]
    fn aggregation_round_trips() {
        let s = Schedule::default();
        let mut agg = Aggregation::new(s);
        let d = monday();
        handle(&mut agg, morning(d), &accepted(1 << 24, 1, Side::Buy, 500));
        handle(&mut agg, morning(d), &accepted(2 << 24, 1, Side::Sell, 70));
        handle(&mut agg, morning(d), &accepted(3 << 24, 2, Side::Buy, 9));
        handle(&mut agg, d.at_minute(s.cutoff_min), &cut_off(d));
        // After the cut-off: filed under the next day.
        handle(
            &mut agg,
            d.at_minute(s.cutoff_min + 1),
            &accepted(4 << 24, 1, Side::Buy, 1),
        );
        handle(
            &mut agg,
            d.at_minute(s.cutoff_min + 1),
            &accepted(5 << 24, 3, Side::Sell, 2),
        );
        let mut restored = round_trip(&agg);
        let next = d.add_business_days(1);
        let dup = same_next(
            &mut agg,
            &mut restored,
            morning(next),
            &accepted(2 << 24, 1, Side::Sell, 70),
        );
        assert!(dup.is_empty(), "a duplicate of a traded order is dropped");
        let mut restored = round_trip(&agg);
        same_next(
            &mut agg,
            &mut restored,
            morning(next),
            &accepted(6 << 24, 1, Side::Buy, 3),
        );
        let mut restored = round_trip(&agg);
        let fx = same_next(
            &mut agg,
            &mut restored,
            next.at_minute(s.cutoff_min),
            &cut_off(next),
        );
        // Funds 1 and 3: a booking, a placement and a notice each.
        assert_eq!(sent(&fx).len(), 6);
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
                handle(
                    &mut agg,
                    morning(d),
                    &accepted(id << 24, 1 + id as u32 % 3, Side::Buy, 10),
                );
            }
            handle(&mut agg, d.at_minute(s.cutoff_min), &cut_off(d));
            let (orders, dates) = agg.retained();
            assert!(dates <= RETAIN_DAYS as usize, "{dates} closed dates held");
            assert!(orders <= 20 * RETAIN_DAYS as usize, "{orders} orders held");
            d = d.add_business_days(1);
        }
        // A recent order's copy is still known; a cut-off of a retired date does nothing.
        let recent = handle(
            &mut agg,
            morning(d),
            &accepted(id << 24, 1 + id as u32 % 3, Side::Buy, 10),
        );
        assert!(recent.0.is_empty());
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
