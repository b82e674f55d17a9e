//! MemLedger throughput: transfers per second on 1,000,000 accounts, in batches of 8189, single
//! threaded; and memory per account.
//!
//! `cargo run --release -p acme-bench --bin ledger_throughput [-- ACCOUNTS TRANSFERS]`
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_bench::{rss_bytes, timed, WallClock};
use acme_ledger::{Account, AccountFlags, Ledger, MemLedger, Transfer, BATCH_EVENTS_MAX};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Instant;

fn make_accounts(n: u64) -> Vec<Account> {
    (0..n)
        .map(|i| Account {
            id: i as u128 + 1,
            ledger: 1,
            code: 1,
            // Half the accounts carry a balance limit, as member pots do.
            flags: if i % 2 == 0 {
                AccountFlags::NONE
            } else {
                AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
            },
            ..Account::default()
        })
        .collect()
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let accounts_n = args.first().copied().unwrap_or(1_000_000);
    let transfers_n = args.get(1).copied().unwrap_or(20_000_000);

    // Memory per account: a ledger grown to `accounts_n` accounts the ordinary way.
    let rss_before = rss_bytes().unwrap_or(0);
    let (per_account_rss, per_account_heap) = {
        let mut ledger = MemLedger::new(Arc::new(WallClock(Instant::now())));
        for chunk in make_accounts(accounts_n).chunks(BATCH_EVENTS_MAX) {
            assert!(ledger
                .create_accounts(chunk)
                .unwrap()
                .iter()
                .all(|r| r.is_applied()));
        }
        let rss = rss_bytes().unwrap_or(0).saturating_sub(rss_before) as f64 / accounts_n as f64;
        (rss, ledger.heap_bytes() as f64 / accounts_n as f64)
    };

    // Sized up front, as TigerBeetle sizes its grid at start: growing vectors and indexes page
    // by page would measure the kernel's page faults more than the ledger.
    let mut ledger = MemLedger::with_capacity(
        Arc::new(WallClock(Instant::now())),
        accounts_n as usize,
        transfers_n as usize,
    );
    let accounts = make_accounts(accounts_n);
    let (_, create_s) = timed(|| {
        for batch in accounts.chunks(BATCH_EVENTS_MAX) {
            let r = ledger.create_accounts(batch).unwrap();
            assert!(r.iter().all(|r| r.is_applied()));
        }
    });
    drop(accounts);

    // Pre-generate the batches so that generation is not measured. Debits come from unlimited
    // accounts (even index), credits go anywhere, so every transfer succeeds.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let batches: Vec<Vec<Transfer>> = (0..transfers_n.div_ceil(BATCH_EVENTS_MAX as u64))
        .map(|b| {
            let n = BATCH_EVENTS_MAX.min((transfers_n - b * BATCH_EVENTS_MAX as u64) as usize);
            (0..n)
                .map(|i| {
                    let debit = rng.random_range(0..accounts_n / 2) * 2 + 1;
                    let mut credit = rng.random_range(0..accounts_n) + 1;
                    if credit == debit {
                        credit = debit % accounts_n + 1;
                    }
                    Transfer {
                        id: (b * BATCH_EVENTS_MAX as u64 + i as u64) as u128 + 1,
                        debit_account_id: debit as u128,
                        credit_account_id: credit as u128,
                        amount: rng.random_range(1..1_000_000),
                        ledger: 1,
                        code: 1,
                        ..Transfer::default()
                    }
                })
                .collect()
        })
        .collect();
    let rss_loaded = rss_bytes().unwrap_or(0);
    let (failed, secs) = timed(|| {
        let mut failed = 0u64;
        for batch in &batches {
            let r = ledger.create_transfers(batch).unwrap();
            failed += r.iter().filter(|r| !r.is_applied()).count() as u64;
        }
        failed
    });
    let rss_after = rss_bytes().unwrap_or(0);
    let tps = transfers_n as f64 / secs;
    let per_transfer = (rss_after.saturating_sub(rss_loaded)) as f64 / transfers_n as f64;
    let result = serde_json::json!({
        "accounts": accounts_n,
        "transfers": transfers_n,
        "batch_events": BATCH_EVENTS_MAX,
        "create_accounts_s": create_s,
        "transfers_s": secs,
        "transfers_per_s": tps.round(),
        "failed": failed,
        "bytes_per_account_rss": per_account_rss.round(),
        "bytes_per_account_heap": per_account_heap.round(),
        "bytes_per_transfer": per_transfer.round(),
    });
    println!("{result}");
    assert_eq!(failed, 0, "every benchmark transfer should apply");
}
