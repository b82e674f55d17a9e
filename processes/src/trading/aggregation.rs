//! Aggregation: turns the day's reserved orders into one net external trade per fund.
//!
//! An order belongs to the trade date whose cut-off has not passed when the order arrives
//! (a business day, before [`Schedule::cutoff_min`]); otherwise to the next business day. When
//! the scheduler's `CutOff { date }` arrives, every open order of that date or earlier is
//! aggregated, per fund, into one trade with the id `trade_id(date, fund)`: a buy leg (the sum of
//! the buy orders' cash) and a sell leg (the sum of the sell orders' units), netted by the
//! custodian at the close (see `allocation`). A cut-off that fires twice finds the date closed
//! and does nothing; an order seen twice is kept once.

use crate::calendar::{Date, Schedule, Ts};
use crate::messages::{
    msg_id, trade_id, Advance, ExternalTrade, InstructionId, InstructionState, Leg, Message,
    MsgKind, Order, Side,
};
use crate::process::{Ctx, Effects, Input, Process, Service};
use acme_ledger::chart::FundId;
use std::collections::{BTreeMap, BTreeSet};

pub struct Aggregation {
    schedule: Schedule,
    /// Open orders by (trade date, fund), each list in arrival order.
    open: BTreeMap<(Date, FundId), Vec<Order>>,
    /// Every order ever taken, so a duplicate is never aggregated twice.
    taken: BTreeSet<(InstructionId, Leg)>,
    /// Dates whose cut-off has run.
    closed: BTreeSet<Date>,
}

impl Aggregation {
    pub fn new(schedule: Schedule) -> Aggregation {
        Aggregation {
            schedule,
            open: BTreeMap::new(),
            taken: BTreeSet::new(),
            closed: BTreeSet::new(),
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
        while self.closed.contains(&date) {
            date = date.add_business_days(1);
        }
        date
    }

    fn cut_off(&mut self, date: Date, fx: &mut Effects) {
        if !self.closed.insert(date) {
            return; // this cut-off ran already
        }
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
    }
}

impl Process for Aggregation {
    fn name(&self) -> &'static str {
        "aggregation"
    }

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        let Input::Message(env) = input else {
            fx.alert("aggregation", format!("unexpected input {input:?}"));
            return;
        };
        match &env.body {
            Message::OrderAccepted(order) => {
                let planted = crate::plant::active(crate::plant::Bug::DuplicateAppliedTwice);
                if !self.taken.insert((order.instruction, order.leg)) && !planted {
                    return;
                }
                let date = self.trade_date_for(ctx.now);
                self.open
                    .entry((date, order.fund))
                    .or_default()
                    .push(*order);
            }
            Message::CutOff { date } => self.cut_off(*date, fx),
            other => fx.alert("aggregation", format!("unexpected message {other:?}")),
        }
    }
}
