//! The ledger read through the `Ledger` port for a reconciliation, at a consistent point.
//!
//! [`scan_ledger`] pages through `query_transfers` and `query_accounts` by timestamp
//! ([`PAGE`] a page) and feeds a [`LedgerScan`]. The ledger may be live: the point is the
//! ledger's latest timestamp when the scan starts (`T0`). Transfers are immutable, so those up
//! to `T0` are simply read. Accounts are not: a page read later shows the balances of that
//! moment, transfers committed since `T0` included. So every page is bracketed by the ledger's
//! latest timestamp before and after it; the transfers committed after `T0` are read as they
//! come (the "late" ones), and each account's balances are taken back to `T0` by undoing the
//! late transfers up to the bracket's start. A late transfer inside a bracket that touches an
//! account of that page could be on either side of the read, so the page is read again. Memory
//! for this is bounded by the transfers committed during the scan, not by the ledger.
//!
//! Pending transfers with a timeout expire without a transfer to undo; ACME books none (every
//! reservation is posted or voided by a process), and the journal replay leaves the accounts of
//! any still open out of its comparison.

use super::ledger::LedgerScan;
use acme_ledger::{Account, Ledger, QueryFilter, QueryFilterFlags, Transfer, TransferFlags};
use std::collections::BTreeMap;

/// Results per query: TigerBeetle's most (8189 128-byte records in a 1 MiB message).
pub const PAGE: u32 = acme_ledger::QUERY_RESULTS_MAX;

/// A page read again this many times in a row without a quiet bracket gives up: the ledger is
/// too busy in the accounts of that page to read them at one point.
pub const REREADS_MAX: u32 = 50;

/// What a scan read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// The consistent point: the ledger's latest timestamp when the scan started.
    pub timestamp: u64,
    pub accounts: u64,
    pub transfers: u64,
    /// Query pages read (accounts and transfers).
    pub pages: u64,
    /// Transfers committed during the scan, undone from the accounts read after them.
    pub late_transfers: u64,
    /// Account pages read again because a late transfer touched them during their read.
    pub rereads: u64,
}

fn err(what: &str, e: acme_ledger::LedgerError) -> String {
    format!("{what}: {e}")
}

/// The ledger's latest timestamp (accounts and transfers share one clock); 0 when it is empty.
pub fn latest_timestamp(ledger: &mut dyn Ledger) -> Result<u64, String> {
    let last = QueryFilter {
        limit: 1,
        flags: QueryFilterFlags::REVERSED,
        ..QueryFilter::default()
    };
    let t = ledger
        .query_transfers(&last)
        .map_err(|e| err("query_transfers (latest)", e))?;
    let a = ledger
        .query_accounts(&last)
        .map_err(|e| err("query_accounts (latest)", e))?;
    Ok(t.first()
        .map_or(0, |t| t.timestamp)
        .max(a.first().map_or(0, |a| a.timestamp)))
}

/// Every transfer with a timestamp in `[min, max]`, page by page, to `f`; the number of pages.
pub fn transfers_between(
    ledger: &mut dyn Ledger,
    min: u64,
    max: u64,
    f: &mut dyn FnMut(&Transfer),
) -> Result<u64, String> {
    let mut cursor = min;
    let mut pages = 0;
    while cursor <= max && max != 0 {
        let page = ledger
            .query_transfers(&QueryFilter {
                timestamp_min: cursor,
                timestamp_max: max,
                limit: PAGE,
                ..QueryFilter::default()
            })
            .map_err(|e| err("query_transfers", e))?;
        pages += 1;
        page.iter().for_each(&mut *f);
        match page.last() {
            Some(last) if page.len() == PAGE as usize => cursor = last.timestamp + 1,
            _ => break,
        }
    }
    Ok(pages)
}

/// Reads the whole ledger into `scan` at the point the scan starts. See the module
/// documentation.
pub fn scan_ledger(ledger: &mut dyn Ledger, scan: &mut LedgerScan) -> Result<ScanStats, String> {
    scan_ledger_from(ledger, scan, 0)
}

/// [`scan_ledger`] for the accounts and transfers stamped `from` on: what one user of a shared
/// cluster wrote since it began (the simulator on a test cluster).
pub fn scan_ledger_from(
    ledger: &mut dyn Ledger,
    scan: &mut LedgerScan,
    from: u64,
) -> Result<ScanStats, String> {
    let t0 = latest_timestamp(ledger)?;
    let mut stats = ScanStats {
        timestamp: t0,
        ..ScanStats::default()
    };
    let mut late = Late::new(t0);
    if t0 != 0 {
        accounts_at(ledger, scan, from, &mut late, &mut stats)?;
    }
    let mut transfers = 0;
    stats.pages += transfers_between(ledger, from, t0, &mut |t| {
        transfers += 1;
        scan.transfer(t);
    })?;
    stats.transfers = transfers;
    stats.late_transfers = late.count;
    Ok(stats)
}

/// The accounts stamped from `from` to the scan's point, each as it stood at that point (see
/// the module documentation).
fn accounts_at(
    ledger: &mut dyn Ledger,
    scan: &mut LedgerScan,
    from: u64,
    late: &mut Late,
    stats: &mut ScanStats,
) -> Result<(), String> {
    let t0 = stats.timestamp;
    let mut before = t0;
    let mut cursor = from;
    let mut rereads_in_row = 0;
    loop {
        let page = ledger
            .query_accounts(&QueryFilter {
                timestamp_min: cursor,
                timestamp_max: t0,
                limit: PAGE,
                ..QueryFilter::default()
            })
            .map_err(|e| err("query_accounts", e))?;
        stats.pages += 1;
        let after = latest_timestamp(ledger)?;
        late.read_until(ledger, after)?;
        if after > before && page.iter().any(|a| late.touched(a.id, before, after)) {
            rereads_in_row += 1;
            stats.rereads += 1;
            if rereads_in_row > REREADS_MAX {
                return Err(format!(
                    "the accounts from timestamp {cursor} changed during each of {REREADS_MAX} \
                     reads: the ledger is too busy there to be read at one point"
                ));
            }
            before = after;
            continue;
        }
        rereads_in_row = 0;
        for a in &page {
            scan.account(&late.at_start(a, before)?);
        }
        stats.accounts += page.len() as u64;
        before = after;
        match page.last() {
            Some(last) if page.len() == PAGE as usize => cursor = last.timestamp + 1,
            _ => return Ok(()),
        }
    }
}

/// The transfers committed after the scan's point, as effects on accounts.
struct Late {
    /// Read up to and including this timestamp.
    read_to: u64,
    count: u64,
    /// Per account: (timestamp, the change to its balances), in timestamp order.
    effects: BTreeMap<u128, Vec<(u64, [i128; 4])>>,
}

const DEBITS_PENDING: usize = 0;
const DEBITS_POSTED: usize = 1;
const CREDITS_PENDING: usize = 2;
const CREDITS_POSTED: usize = 3;

impl Late {
    fn new(t0: u64) -> Late {
        Late {
            read_to: t0,
            count: 0,
            effects: BTreeMap::new(),
        }
    }

    fn add(&mut self, id: u128, ts: u64, field: usize, amount: i128) {
        let list = self.effects.entry(id).or_default();
        match list.last_mut() {
            Some((t, d)) if *t == ts => d[field] += amount,
            _ => {
                let mut d = [0; 4];
                d[field] = amount;
                list.push((ts, d));
            }
        }
    }

    /// Reads the transfers committed after what was read, up to `to`.
    fn read_until(&mut self, ledger: &mut dyn Ledger, to: u64) -> Result<(), String> {
        if to <= self.read_to {
            return Ok(());
        }
        let mut batch = Vec::new();
        transfers_between(ledger, self.read_to + 1, to, &mut |t| batch.push(*t))?;
        self.read_to = to;
        // A post or void undoes its pending transfer, whose amount and accounts it names by id.
        let mut pending: BTreeMap<u128, Transfer> = BTreeMap::new();
        let ids: Vec<u128> = batch
            .iter()
            .filter(|t| t.pending_id != 0)
            .map(|t| t.pending_id)
            .collect();
        for chunk in ids.chunks(acme_ledger::BATCH_EVENTS_MAX) {
            for p in ledger
                .lookup_transfers(chunk)
                .map_err(|e| err("lookup_transfers", e))?
            {
                pending.insert(p.id, p);
            }
        }
        for t in &batch {
            self.count += 1;
            let (ts, amount) = (t.timestamp, t.amount as i128);
            let f = t.flags;
            let post = f.contains(TransferFlags::POST_PENDING_TRANSFER);
            if post || f.contains(TransferFlags::VOID_PENDING_TRANSFER) {
                let p = pending.get(&t.pending_id).ok_or_else(|| {
                    format!(
                        "transfer {:#x} (timestamp {ts}) resolves pending transfer {:#x}, which \
                         the ledger does not hold",
                        t.id, t.pending_id
                    )
                })?;
                let (d, c, pa) = (p.debit_account_id, p.credit_account_id, p.amount as i128);
                self.add(d, ts, DEBITS_PENDING, -pa);
                self.add(c, ts, CREDITS_PENDING, -pa);
                if post {
                    self.add(d, ts, DEBITS_POSTED, amount);
                    self.add(c, ts, CREDITS_POSTED, amount);
                }
            } else if f.contains(TransferFlags::PENDING) {
                self.add(t.debit_account_id, ts, DEBITS_PENDING, amount);
                self.add(t.credit_account_id, ts, CREDITS_PENDING, amount);
            } else {
                self.add(t.debit_account_id, ts, DEBITS_POSTED, amount);
                self.add(t.credit_account_id, ts, CREDITS_POSTED, amount);
            }
        }
        Ok(())
    }

    /// Whether a late transfer in `(from, to]` touched account `id`.
    fn touched(&self, id: u128, from: u64, to: u64) -> bool {
        self.effects
            .get(&id)
            .is_some_and(|l| l.iter().any(|&(ts, _)| ts > from && ts <= to))
    }

    /// The account as it stood at the scan's point, read at a moment after every late transfer
    /// up to `read_after` and before any later one.
    fn at_start(&self, a: &Account, read_after: u64) -> Result<Account, String> {
        let Some(list) = self.effects.get(&a.id) else {
            return Ok(*a);
        };
        let mut total = [0i128; 4];
        for (_, d) in list.iter().filter(|(ts, _)| *ts <= read_after) {
            for (t, x) in total.iter_mut().zip(d) {
                *t += x;
            }
        }
        let undo = |v: u128, d: i128| {
            u128::try_from(v as i128 - d).map_err(|_| {
                format!(
                    "account {:#x}: undoing the transfers committed during the scan gives a \
                     negative balance",
                    a.id
                )
            })
        };
        Ok(Account {
            debits_pending: undo(a.debits_pending, total[DEBITS_PENDING])?,
            debits_posted: undo(a.debits_posted, total[DEBITS_POSTED])?,
            credits_pending: undo(a.credits_pending, total[CREDITS_PENDING])?,
            credits_posted: undo(a.credits_posted, total[CREDITS_POSTED])?,
            ..*a
        })
    }
}
