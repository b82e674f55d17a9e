//! The custodian's desk in the simulated world: at the valuation point it strikes the day's
//! trades at the close and the reference model books what it expects of them; and it checks
//! that our side chases a settlement only once it is due.
//!
//! A trade may reach the custodian after its date's valuation point: aggregation waits for
//! every order received before the cut-off (see `acme_processes::trading::aggregation`), and a
//! partition or a crash can hold the trade up. ACME's dealing agreement with the custodian is
//! that the dealing point is ACME's receipt of the order, so the custodian prices such a trade
//! at once, at its trade date's close, as it would have at the valuation point. The model waits
//! for the custodian's answer in the same way; orders it still holds for a date long past are a
//! trade that never came.

use crate::custodian::Outcome;
use crate::world::{Event, World};
use acme_ledger::chart::FundId;
use acme_processes::calendar::{Date, Ts};
use acme_processes::messages::{ExternalTrade, Message, TradeId};
use std::collections::BTreeMap;

/// Business days after its date by which a trade must have reached the custodian.
pub const PLACEMENT_LATE_DAYS_MAX: u32 = 2;

impl World {
    /// The valuation point of `date`.
    pub(crate) fn valuation(&mut self, date: Date) {
        self.answer_trades(date);
        for (stale, fund) in self.oracle.unanswered_before(date) {
            if self
                .calendar
                .add_business_days(stale, PLACEMENT_LATE_DAYS_MAX)
                <= date
            {
                self.violation(
                    "custodian_trades_complete",
                    format!("fund {fund}: orders on {stale} never reached the custodian"),
                    &format!("valuation {date}"),
                );
            }
        }
    }

    /// The custodian takes a trade; one placed after its valuation point is priced at once.
    pub(crate) fn place_trade(&mut self, now: Ts, trade: ExternalTrade) {
        let valuation = self
            .calendar
            .london(trade.trade_date, self.cfg.schedule.valuation_min);
        let late = now >= valuation;
        let date = trade.trade_date;
        if !self.custodian.place(trade, late) {
            self.stats.duplicates_dropped += 1;
            return;
        }
        self.dealt.entry(date).or_insert(now);
        if late {
            *self.trade_counts.entry("placed_late").or_default() += 1;
            if self.market.has_close(trade.fund, trade.trade_date) {
                self.answer_trades(trade.trade_date);
            } else {
                self.violation(
                    "custodian_trades_complete",
                    format!(
                        "trade {:#x} dated {}, not a business day",
                        trade.id, trade.trade_date
                    ),
                    &format!("place trade {:#x}", trade.id),
                );
            }
        }
    }

    /// A chase for a settlement before the trade's contractual settlement date (T+N business
    /// days, by the custodian's own calendar) means the platform has the date wrong: it would
    /// tell members, the cash forecast and reconciliation the wrong day.
    pub(crate) fn check_settlement_chase(&mut self, now: Ts, trade_id: TradeId) {
        let Some(trade) = self.custodian.trade(trade_id) else {
            return; // never placed: the chase finds nothing, as at a real custodian
        };
        let lag = self.cfg.schedule.settlement_lag_days;
        let due = self.calendar.add_business_days(trade.trade_date, lag);
        let today = self.calendar.london_date(now);
        if today < due {
            self.violation(
                "settlement_chased_when_due",
                format!(
                    "trade {trade_id:#x} (traded {}) chased on {today}, due {due}",
                    trade.trade_date
                ),
                &format!("chase settlement {trade_id:#x}"),
            );
        }
    }

    /// Prices the trades of `date` the custodian holds, tells the model and sends the answers.
    fn answer_trades(&mut self, date: Date) {
        let market = &self.market;
        let answers = self.custodian.value(date, |f| market.close(f, date));
        let outcomes: BTreeMap<FundId, Outcome> =
            answers.iter().map(|(t, o)| (t.fund, *o)).collect();
        self.oracle.valuation(date, &outcomes);
        let amend_at = self
            .calendar
            .london(self.calendar.add_business_days(date, 1), 9 * 60)
            .max(self.now + 60 * 60 * 1_000_000_000);
        for (trade, outcome) in answers {
            self.stats.external_trades += 1;
            let body = match outcome {
                Outcome::Rejected => {
                    *self.trade_counts.entry("rejected").or_default() += 1;
                    Message::TradeRejected { trade_id: trade.id }
                }
                Outcome::Filled { fill_ppm, .. } => {
                    let p = *self
                        .custodian
                        .priced_trades()
                        .find(|p| p.trade.id == trade.id)
                        .expect("priced");
                    if fill_ppm < 1_000_000 {
                        *self.trade_counts.entry("partial").or_default() += 1;
                    }
                    if p.confirmation.units_bought > 0 && p.confirmation.sell_units_filled > 0 {
                        *self.trade_counts.entry("crossed").or_default() += 1;
                    }
                    if p.amend_to.is_some() {
                        self.queue.push(amend_at, Event::Amend(trade.id));
                    }
                    Message::TradePriced(p.confirmation)
                }
            };
            match body {
                Message::TradePriced(c) => self.send_confirmation(c, true),
                _ => self.send_rejection(trade.id, true),
            }
        }
    }
}
