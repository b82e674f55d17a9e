//! The simulator's own reconciliation of trades: each trade the custodian priced, rebuilt from
//! the custodian's books with arithmetic of its own, against what the ledger holds for it.
//!
//! `crate::export` runs the platform's reconciliation engine (it tests `acme recon`); this one
//! shares none of the platform's code: not its money helpers (units and cash are computed here
//! again), not its id decoding (the ledger's transfers of a trade are found by `user_data_128`
//! through the `Ledger` port and read by their `code`, with [`crate::layout`]). Per trade it
//! compares: the buyers' cash and the sellers' units taken (the reservations posted), the units
//! and cash allocated (the live pending lines and residuals, those an amendment voided left
//! out), the net with the custodian, and once settled the mirror moved and every line posted.
//! It runs with the end-of-day business oracles, on a settled state; a trade is done once its
//! settlement is reconciled. A trade the custodian amended whose new allocation is not yet
//! booked, or settled whose settlement is not yet booked (a notice to chase), waits.

use crate::layout::{self, *};
use crate::world::World;
use acme_ledger::{QueryFilter, QueryFilterFlags, Transfer, QUERY_RESULTS_MAX};
use acme_processes::calendar::Date;
use acme_processes::messages::TradeId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub struct TradeRecon {
    /// Trades reconciled through their settlement: not looked at again.
    done: BTreeSet<TradeId>,
    /// The ledger's latest timestamp at the end of each day reconciled: a trade's transfers
    /// come after the watermark of a day before its trade date.
    watermarks: BTreeMap<Date, u64>,
    /// Comparisons made (a trade on a day).
    pub compared: u64,
}

/// Units bought by `pence` at `price` (micro-pounds a unit), in micro-units, rounded down.
fn units_for(pence: u64, price: u64) -> u128 {
    let micro_pounds = pence as u128 * 10_000;
    micro_pounds * 1_000_000 / price as u128
}

/// Pence fetched by `micro_units` at `price`, rounded down.
fn cash_for(micro_units: u64, price: u64) -> u128 {
    let micro_pounds = micro_units as u128 * price as u128 / 1_000_000;
    micro_pounds / 10_000
}

/// What the ledger holds for one trade, by what it is for.
#[derive(Default, Debug)]
struct Booked {
    buy_cash_taken: i128,
    sell_units_taken: i128,
    units_allocated: i128,
    cash_allocated: i128,
    net_units_in: i128,
    net_cash_out: i128,
    mirror_units: i128,
    mirror_cash: i128,
    lines_posted: i128,
    settled: bool,
}

fn booked(transfers: &[Transfer], fund_ledger: u32) -> Booked {
    let is_line = |t: &Transfer| {
        matches!(
            t.code,
            BUY_UNITS_ALLOCATE | BUY_UNITS_ROUNDING | SELL_CASH_ALLOCATE | SELL_CASH_ROUNDING
        )
    };
    // An amendment voids the lines it replaces (a void keeps the line's code).
    let voided: BTreeSet<u128> = transfers
        .iter()
        .filter(|t| is_line(t) && layout::is_void(t))
        .map(|t| t.pending_id)
        .collect();
    let lines: BTreeMap<u128, i128> = transfers
        .iter()
        .filter(|t| is_line(t) && layout::is_pending(t) && !voided.contains(&t.id))
        .map(|t| (t.id, t.amount as i128))
        .collect();
    let settled_units = house_account(ACCOUNT_CUSTODIAN_SETTLED, fund_ledger);
    let unsettled_cash = house_account(ACCOUNT_CUSTODIAN_UNSETTLED, CASH_LEDGER);
    let mut b = Booked::default();
    for t in transfers {
        let a = t.amount as i128;
        let (post, live) = (layout::is_post(t), lines.contains_key(&t.id));
        match t.code {
            BUY_RESERVE if post => b.buy_cash_taken += a,
            SELL_RESERVE if post => b.sell_units_taken += a,
            BUY_UNITS_ALLOCATE | BUY_UNITS_ROUNDING if live => b.units_allocated += a,
            SELL_CASH_ALLOCATE | SELL_CASH_ROUNDING if live => b.cash_allocated += a,
            _ if is_line(t) && post => {
                b.settled = true;
                b.lines_posted += lines.get(&t.pending_id).map_or(0, |_| a);
            }
            TRADE_UNITS_FROM_CUSTODIAN => b.net_units_in += a,
            TRADE_UNITS_TO_CUSTODIAN => b.net_units_in -= a,
            TRADE_CASH_TO_CUSTODIAN => b.net_cash_out += a,
            TRADE_CASH_FROM_CUSTODIAN => b.net_cash_out -= a,
            SETTLE_CUSTODIAN_UNITS => {
                b.settled = true;
                b.mirror_units += if t.debit_account_id == settled_units {
                    a
                } else {
                    -a
                };
            }
            SETTLE_CUSTODIAN_CASH => {
                b.settled = true;
                b.mirror_cash += if t.debit_account_id == unsettled_cash {
                    a
                } else {
                    -a
                };
            }
            _ => {}
        }
    }
    b
}

impl World {
    /// Every trade of the ledger `user_data_128 = trade`, from `timestamp_min` on.
    fn trade_transfers(&mut self, trade: TradeId, timestamp_min: u64) -> Vec<Transfer> {
        let mut out: Vec<Transfer> = Vec::new();
        let mut from = timestamp_min;
        loop {
            let filter = QueryFilter {
                user_data_128: trade as u128,
                timestamp_min: from,
                limit: QUERY_RESULTS_MAX,
                ..QueryFilter::default()
            };
            let page = self
                .ledger
                .inner
                .query_transfers(&filter)
                .unwrap_or_default();
            let full = page.len() as u32 == QUERY_RESULTS_MAX;
            from = page.last().map_or(from, |t| t.timestamp + 1);
            out.extend(page);
            if !full {
                return out;
            }
        }
    }

    fn latest_timestamp(&mut self) -> u64 {
        let filter = QueryFilter {
            limit: 1,
            flags: QueryFilterFlags::REVERSED,
            ..QueryFilter::default()
        };
        let last = self
            .ledger
            .inner
            .query_transfers(&filter)
            .unwrap_or_default();
        last.first().map_or(0, |t| t.timestamp)
    }

    /// Reconciles every open trade the custodian priced; returns the differences found.
    pub(crate) fn reconcile_trades(&mut self, event: &str) {
        let today = self.calendar.london_date(self.now);
        let trades: Vec<crate::custodian::PricedTrade> = self
            .custodian
            .priced_trades()
            .filter(|p| !self.trade_recon.done.contains(&p.trade.id))
            .filter(|p| !self.amending.contains_key(&p.trade.id))
            .copied()
            .collect();
        for p in trades {
            let (t, c) = (p.trade, p.confirmation);
            let before = self.trade_recon.watermarks.range(..t.trade_date);
            let since = before.last().map_or(0, |(_, &ts)| ts);
            let transfers = self.trade_transfers(t.id, since);
            let b = booked(&transfers, layout::fund_ledger(t.fund));
            let units_bought = units_for(c.buy_cash_filled, c.price.0) as i128;
            let cash_for_sold = cash_for(c.sell_units_filled, c.price.0) as i128;
            let (buy, sell) = (c.buy_cash_filled as i128, c.sell_units_filled as i128);
            let mut fields = vec![
                ("buy cash taken", buy, b.buy_cash_taken),
                ("sell units taken", sell, b.sell_units_taken),
                ("units allocated", units_bought, b.units_allocated),
                ("cash allocated", cash_for_sold, b.cash_allocated),
                (
                    "net units from custodian",
                    units_bought - sell,
                    b.net_units_in,
                ),
                ("net cash to custodian", buy - cash_for_sold, b.net_cash_out),
            ];
            let settled = self.custodian.is_settled(t.id);
            if settled && b.settled {
                fields.push(("units settled", units_bought - sell, b.mirror_units));
                fields.push(("cash settled", buy - cash_for_sold, b.mirror_cash));
                let lines = units_bought + cash_for_sold;
                fields.push(("lines posted", lines, b.lines_posted));
                self.trade_recon.done.insert(t.id);
            } else if b.settled {
                fields.push(("settled at the custodian", 0, 1));
            }
            self.trade_recon.compared += 1;
            for (field, expected, found) in fields.into_iter().filter(|f| f.1 != f.2) {
                self.violation(
                    "trade_matches_custodian",
                    format!(
                        "trade {:#x} (fund {}, {}) {field}: custodian's books {expected}, \
                         ledger {found}",
                        t.id, t.fund, t.trade_date
                    ),
                    event,
                );
            }
        }
        let latest = self.latest_timestamp();
        self.trade_recon.watermarks.insert(today, latest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn its_arithmetic_rounds_down_like_the_custodian_says() {
        // £1.00 at £3.00 a unit: a third of a unit, to the micro-unit below.
        assert_eq!(units_for(100, 3_000_000), 333_333);
        // 333,333 micro-units at £3.00: 99.9999p, so 99p.
        assert_eq!(cash_for(333_333, 3_000_000), 99);
        assert_eq!(cash_for(1_000_000, 10_000), 1);
        assert_eq!(units_for(u64::MAX, 1), u64::MAX as u128 * 10_000_000_000);
    }
}
