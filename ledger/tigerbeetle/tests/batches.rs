//! `create_accounts_batches` / `create_transfers_batches` against a real cluster: many batches
//! of very different sizes, whose results depend on their order (later batches repeat ids of
//! earlier ones, post pending transfers of earlier ones, leave chains open), must give exactly
//! what MemLedger gives applying them one by one, in order.
//!
//! TigerBeetle's client reorders queued requests of different sizes when more than one waits
//! behind the one in flight (see `DEFAULT_REQUESTS_IN_FLIGHT`); this is the test that would
//! show it. Needs `TB_ADDRESS` (fails without it unless `ACME_SKIP_TIGERBEETLE=1`).
//!
//! An adapter's test: it reads the environment and the wall clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use acme_ledger::{Account, AccountFlags, Clock, Ledger, MemLedger, Transfer, TransferFlags};
use acme_ledger_tigerbeetle::TigerBeetleLedger;

struct FixedClock(AtomicU64);

impl Clock for FixedClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn cluster() -> Option<TigerBeetleLedger> {
    let address = std::env::var("TB_ADDRESS")
        .ok()
        .filter(|a| !a.trim().is_empty());
    let Some(address) = address else {
        if std::env::var("ACME_SKIP_TIGERBEETLE").as_deref() == Ok("1") {
            eprintln!("SKIPPED: TB_ADDRESS is unset and ACME_SKIP_TIGERBEETLE=1");
            return None;
        }
        panic!(
            "TB_ADDRESS is not set. This test needs a TigerBeetle cluster: run \
             `tools/tigerbeetle.sh install && tools/tigerbeetle.sh up` and set TB_ADDRESS to the \
             address list it prints (or set ACME_SKIP_TIGERBEETLE=1 to skip it knowingly)."
        );
    };
    let mut ledger = TigerBeetleLedger::connect(0, &address).expect("client");
    ledger.ping().expect("the cluster answers");
    Some(ledger)
}

/// Batch sizes that vary a lot, so that a small request could overtake a large one.
const SIZES: [usize; 8] = [1, 3000, 2, 7000, 1, 40, 8189, 5];

#[test]
fn batches_are_applied_in_order_with_their_own_results() {
    let Some(mut tb) = cluster() else { return };
    tb.set_requests_in_flight(64); // Clamped to what keeps the order.
    let clock = Arc::new(FixedClock(AtomicU64::new(1_700_000_000_000_000_000)));
    let mut mem = MemLedger::new(clock);
    let base = (tigerbeetle_unofficial::id() >> 64) << 64;
    let account = |i: u64| Account {
        id: base + u128::from(i),
        ledger: 1,
        code: 1,
        ..Account::default()
    };

    // Accounts: batch k creates fresh ids, and repeats the first id of batch k + 1 (so, in
    // order, batch k creates it and batch k + 1 finds it `exists`; reordered, the other way
    // round); every fifth batch ends in an open chain.
    let mut next = 1u64;
    let mut firsts = Vec::new();
    let mut account_batches: Vec<Vec<Account>> = Vec::new();
    for k in 0..64 {
        let n = SIZES[k % SIZES.len()].min(8188);
        firsts.push(next);
        account_batches.push((0..n as u64).map(|i| account(next + i)).collect());
        next += n as u64;
    }
    for k in 0..63 {
        let repeat = account(firsts[k + 1]);
        account_batches[k].push(repeat);
        if k % 5 == 4 {
            account_batches[k].last_mut().unwrap().flags |= AccountFlags::LINKED;
        }
    }
    let got = tb.create_accounts_batches(&account_batches).unwrap();
    let want: Vec<_> = account_batches
        .iter()
        .map(|b| mem.create_accounts(b).unwrap())
        .collect();
    compare("create_accounts", &got, &want);

    // Transfers between the first accounts: pending transfers in one batch, posted in a later
    // one (reordered, `pending_transfer_not_found`), duplicates across batches, open chains.
    let (a, b) = (account(1).id, account(2).id);
    let mut id = base + 1;
    let mut transfer_batches: Vec<Vec<Transfer>> = Vec::new();
    let mut pendings: Vec<u128> = Vec::new();
    for k in 0..64 {
        let n = SIZES[(k + 3) % SIZES.len()];
        let mut batch = Vec::with_capacity(n);
        for i in 0..n {
            id += 1;
            let t = if i % 3 == 0 && !pendings.is_empty() {
                let p = pendings.swap_remove(0);
                Transfer {
                    id,
                    pending_id: p,
                    amount: u128::MAX,
                    flags: TransferFlags::POST_PENDING_TRANSFER,
                    ..Transfer::default()
                }
            } else {
                let pending = i % 3 == 1;
                if pending {
                    pendings.push(id);
                }
                Transfer {
                    id,
                    debit_account_id: a,
                    credit_account_id: b,
                    amount: 1 + i as u128,
                    ledger: 1,
                    code: 1,
                    flags: if pending {
                        TransferFlags::PENDING
                    } else {
                        TransferFlags::NONE
                    },
                    ..Transfer::default()
                }
            };
            batch.push(t);
        }
        if k > 0 && batch.len() < 8189 {
            // A duplicate of the previous batch's last transfer.
            let previous = *transfer_batches[k - 1].last().unwrap();
            batch.push(Transfer {
                flags: previous.flags.without(TransferFlags::LINKED),
                ..previous
            });
        }
        if k % 7 == 6 {
            batch.last_mut().unwrap().flags |= TransferFlags::LINKED;
        }
        transfer_batches.push(batch);
    }
    let got = tb.create_transfers_batches(&transfer_batches).unwrap();
    let want: Vec<_> = transfer_batches
        .iter()
        .map(|b| mem.create_transfers(b).unwrap())
        .collect();
    compare("create_transfers", &got, &want);
    // And the balances.
    let ids = [a, b];
    let untimed = |v: Vec<Account>| -> Vec<Account> {
        v.into_iter()
            .map(|x| Account { timestamp: 0, ..x })
            .collect()
    };
    assert_eq!(
        untimed(tb.lookup_accounts(&ids).unwrap()),
        untimed(mem.lookup_accounts(&ids).unwrap())
    );
}

/// Fails at the first event whose result differs, briefly.
fn compare<R: PartialEq + core::fmt::Debug>(what: &str, got: &[Vec<R>], want: &[Vec<R>]) {
    assert_eq!(got.len(), want.len(), "{what}: batches answered");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what} batch {k}: results");
        if let Some(j) = (0..g.len()).find(|&j| g[j] != w[j]) {
            panic!(
                "{what} batch {k} (of {} events), event {j}: TigerBeetle {:?}, MemLedger {:?} \
                 (applied out of order?)",
                g.len(),
                g[j],
                w[j]
            );
        }
    }
}
