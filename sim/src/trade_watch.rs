//! What the world follows of each trade in the ledger after every event, and the per-trade
//! invariant `trade_trading_flat`.
//!
//! The ledger's applied transfers are folded per trade (the trade id is in `user_data_128`,
//! read with the simulator's own [`crate::layout`]) into, per trading account, what was posted
//! in less what was posted or promised out. A trade is allocated once pricing has announced
//! its allocation at the revision the custodian last confirmed (`TradeAllocated`, which pricing
//! sends when every batch of the booking is applied); from then on, after every event that
//! touched it, each of its trading accounts must net to zero: what came in (the buyers' posted
//! cash, the sellers' posted units, the net from the custodian) is exactly what went or is
//! promised out (pending lines to pots and rounding, the net to the custodian). The end-of-day
//! `trading_accounts_flat` sums every trade of a ledger; this names the trade and the event.
//! An amendment the custodian made and pricing has not booked yet pauses its trade's check.

use crate::layout;
use crate::world::{SimLedger, World};
use acme_ledger::{CreateTransferResult, LedgerError, Transfer};
use acme_processes::messages::TradeId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub struct TradeWatch {
    /// The highest revision pricing announced allocated, per trade.
    announced: BTreeMap<TradeId, u32>,
    /// Per (trade, trading account): posted in less posted or promised out.
    net: BTreeMap<(TradeId, u128), i128>,
    /// Pending transfers of a trade on a trading account: id -> (trade, account, signed amount).
    pending: BTreeMap<u128, (TradeId, u128, i128)>,
    /// Per trade, the transfers folded in: a durable ledger may lose an applied transfer whose
    /// answer it never gave (a power loss) and apply it again on the retry. Dropped when the
    /// trade's settlement is booked (its last transfers).
    folded: BTreeMap<TradeId, BTreeSet<u128>>,
    /// Trades touched since the last check.
    touched: BTreeSet<TradeId>,
    /// Per-trade checks made (in the summary).
    pub checks: u64,
}

impl TradeWatch {
    pub fn announced(&self, trade: TradeId) -> Option<u32> {
        self.announced.get(&trade).copied()
    }

    pub fn announce(&mut self, trade: TradeId, revision: u32) {
        let r = self.announced.entry(trade).or_insert(revision);
        *r = (*r).max(revision);
        self.touched.insert(trade);
    }

    /// Folds in a transfer the ledger applied; `pending_of` finds a pending transfer this one
    /// posts when it names no accounts of its own.
    pub fn applied(&mut self, t: &Transfer, pending_of: &mut dyn FnMut(u128) -> Option<Transfer>) {
        let trade = layout::transfer_trade(t);
        if trade == 0 || !self.folded.entry(trade).or_default().insert(t.id) {
            return;
        }
        if matches!(
            t.code,
            layout::SETTLE_CUSTODIAN_UNITS | layout::SETTLE_CUSTODIAN_CASH
        ) {
            self.folded.remove(&trade);
        }
        if layout::is_post(t) || layout::is_void(t) {
            if let Some((trade, account, signed)) = self.pending.remove(&t.pending_id) {
                // Promised already: a post keeps what it moves (all of it, or less: the rest is
                // released); a void takes the promise back.
                let kept = if layout::is_void(t) {
                    0
                } else {
                    (t.amount as i128).min(signed.abs())
                };
                *self.net.entry((trade, account)).or_default() += signed.signum() * kept - signed;
                self.touched.insert(trade);
                return;
            }
            if layout::is_void(t) {
                return; // a reservation of no trade released: nothing of this trade moves
            }
            // The post of a reservation (a pending of no trade): it moves now, for this trade.
            let mut posted = *t;
            if t.debit_account_id == 0 || t.credit_account_id == 0 {
                match pending_of(t.pending_id) {
                    Some(p) => {
                        posted.debit_account_id = p.debit_account_id;
                        posted.credit_account_id = p.credit_account_id;
                    }
                    None => return,
                }
            }
            self.moved(trade, &posted, false);
            return;
        }
        self.moved(trade, t, layout::is_pending(t));
    }

    fn moved(&mut self, trade: TradeId, t: &Transfer, pending: bool) {
        let amount = t.amount as i128;
        for (account, signed) in [(t.debit_account_id, -amount), (t.credit_account_id, amount)] {
            if layout::account_kind(account) != layout::ACCOUNT_TRADING {
                continue;
            }
            *self.net.entry((trade, account)).or_default() += signed;
            if pending {
                self.pending.insert(t.id, (trade, account, signed));
            }
            self.touched.insert(trade);
        }
    }

    /// What is not flat of the trades touched since the last call, among those `allocated`.
    fn check(&mut self, allocated: impl Fn(TradeId, Option<u32>) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        for trade in std::mem::take(&mut self.touched) {
            if !allocated(trade, self.announced(trade)) {
                continue;
            }
            self.checks += 1;
            for (&(_, account), &net) in self.net.range((trade, 0)..=(trade, u128::MAX)) {
                if net != 0 {
                    out.push(format!(
                        "trade {trade:#x}, trading account {account:#x} (ledger {}): {net} posted \
                         in beyond what went or is promised out",
                        layout::account_ledger(account)
                    ));
                }
            }
        }
        out
    }
}

/// Keeps the transfers of trades a batch applied, for [`World::watch_trades`]. A batch whose
/// answer was lost may have been applied, in all or in part: its transfers are looked up after
/// the event (see [`World::resolve_uncertain`]) unless an answer says first.
pub(crate) fn note_applied(
    ledger: &mut SimLedger,
    batch: &[Transfer],
    results: Result<Vec<CreateTransferResult>, LedgerError>,
) -> Result<Vec<CreateTransferResult>, LedgerError> {
    let of_trade = |t: &&Transfer| layout::transfer_trade(t) != 0;
    match results {
        Err(e) => {
            let ids = batch.iter().filter(of_trade).map(|t| t.id);
            ledger.uncertain.extend(ids);
            Err(e)
        }
        Ok(results) => {
            for (t, r) in batch.iter().zip(&results).filter(|(t, _)| of_trade(t)) {
                if *r == CreateTransferResult::Ok {
                    ledger.uncertain.remove(&t.id);
                    ledger.applied.push(*t);
                }
            }
            Ok(results)
        }
    }
}

impl World {
    /// After an event: folds in what the ledger applied and pricing announced, checks the
    /// trades it touched, and runs the per-settlement pot check.
    pub(crate) fn watch_trades(&mut self, event: &str) {
        self.resolve_uncertain();
        let applied = std::mem::take(&mut self.ledger.applied);
        self.settle_watch.applied(&applied);
        let inner = &mut self.ledger.inner;
        let mut pending_of = |id: u128| inner.lookup_transfers(&[id]).ok()?.pop();
        for t in &applied {
            self.trade_watch.applied(t, &mut pending_of);
        }
        for (trade, revision) in std::mem::take(&mut self.allocated_notices) {
            self.trade_watch.announce(trade, revision);
            self.settle_watch.dirty = true;
        }
        let custodian = &self.custodian;
        let found = self.trade_watch.check(|trade, announced| {
            // Allocated at the custodian's latest confirmation (a rejected trade never is).
            matches!(custodian.answer(trade), Some(Some(c)) if announced >= Some(c.revision))
        });
        for detail in found {
            self.violation("trade_trading_flat", detail, event);
        }
        self.check_settlements(event);
    }

    /// Transfers of a batch whose answer was lost that the ledger holds were applied then.
    fn resolve_uncertain(&mut self) {
        if self.ledger.uncertain.is_empty() {
            return;
        }
        let ids: Vec<u128> = self.ledger.uncertain.iter().copied().collect();
        for chunk in ids.chunks(acme_ledger::BATCH_EVENTS_MAX) {
            // A ledger still down answers nothing: asked again after the next event.
            let Ok(found) = self.ledger.inner.lookup_transfers(chunk) else {
                return;
            };
            for t in found {
                self.ledger.uncertain.remove(&t.id);
                self.ledger.applied.push(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acme_ledger::TransferFlags;

    const TRADE: TradeId = 0x4fea00002;

    fn transfer(
        id: u128,
        debit: u128,
        credit: u128,
        amount: u128,
        flags: TransferFlags,
    ) -> Transfer {
        Transfer {
            id,
            debit_account_id: debit,
            credit_account_id: credit,
            amount,
            user_data_128: TRADE as u128,
            flags,
            ..Transfer::default()
        }
    }

    fn net(w: &TradeWatch, account: u128) -> i128 {
        w.net.get(&(TRADE, account)).copied().unwrap_or(0)
    }

    /// A buy: the reservation's post brings cash in, the net goes to the custodian; the units
    /// come in and go out as a pending line, which settlement posts (no change) and an
    /// amendment voids (the promise taken back).
    #[test]
    fn a_trade_nets_to_zero_through_its_life_and_not_before() {
        let cash = layout::house_account(layout::ACCOUNT_TRADING, layout::CASH_LEDGER);
        let units = layout::house_account(layout::ACCOUNT_TRADING, layout::fund_ledger(1));
        let custodian = layout::house_account(layout::ACCOUNT_CUSTODIAN_UNSETTLED, 1);
        let member = 2u128 << 112 | 7;
        let mut w = TradeWatch::default();
        let mut none = |_| None;
        let post = transfer(1, member, cash, 500, TransferFlags::POST_PENDING_TRANSFER);
        w.applied(
            &Transfer {
                pending_id: 99,
                ..post
            },
            &mut none,
        );
        assert_eq!(net(&w, cash), 500, "the buyer's cash is in");
        w.applied(
            &transfer(2, cash, custodian, 500, TransferFlags::NONE),
            &mut none,
        );
        w.applied(
            &transfer(3, custodian, units, 40, TransferFlags::NONE),
            &mut none,
        );
        assert_eq!((net(&w, cash), net(&w, units)), (0, 40));
        w.applied(
            &transfer(4, units, member, 40, TransferFlags::PENDING),
            &mut none,
        );
        assert_eq!(net(&w, units), 0, "promised out");
        // The same transfer applied again (a retry after a lost answer) counts once.
        w.applied(
            &transfer(4, units, member, 40, TransferFlags::PENDING),
            &mut none,
        );
        assert_eq!(net(&w, units), 0);
        let void = transfer(5, 0, 0, 0, TransferFlags::VOID_PENDING_TRANSFER);
        w.applied(
            &Transfer {
                pending_id: 4,
                ..void
            },
            &mut none,
        );
        assert_eq!(net(&w, units), 40, "the void took the promise back");
        w.applied(
            &transfer(6, units, member, 41, TransferFlags::PENDING),
            &mut none,
        );
        assert_eq!(net(&w, units), -1, "one unit more promised than came in");
        let settle = transfer(7, 0, 0, 41, TransferFlags::POST_PENDING_TRANSFER);
        w.applied(
            &Transfer {
                pending_id: 6,
                ..settle
            },
            &mut none,
        );
        assert_eq!(net(&w, units), -1, "a post of a promise moves nothing more");
        let found = w.check(|_, _| true);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(w.check(|_, _| true).is_empty(), "checked once per touch");
    }
}
