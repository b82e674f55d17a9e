//! Throughput and memory checks for `MemLedger`, ignored by default (they need a release build):
//!
//! ```text
//! cargo test --release -p acme-ledger --test perf -- --ignored --nocapture
//! ```
//!
//! Targets: at least 5 million transfers per second single-threaded on 1 million accounts in
//! batches of 8189, and at most 200 bytes of memory per account.
//!
//! A measurement needs the wall clock, which the ledger itself never reads.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_ledger::{
    Account, AccountFlags, Clock, CreateAccountResult, CreateTransferResult, Ledger, MemLedger,
    Transfer, TransferFlags, BATCH_EVENTS_MAX,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

const ACCOUNTS: usize = 1_000_000;

/// splitmix64: deterministic, well-mixed ids and account choices.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn account_id(i: u64) -> u128 {
    (u128::from(mix(i)) << 64) | u128::from(i + 1)
}

fn ledger_with_accounts(ledger: &mut MemLedger) {
    let accounts: Vec<Account> = (0..ACCOUNTS as u64)
        .map(|i| Account {
            id: account_id(i),
            ledger: 1,
            code: 1,
            flags: AccountFlags::NONE,
            ..Account::default()
        })
        .collect();
    for batch in accounts.chunks(BATCH_EVENTS_MAX) {
        let results = ledger.create_accounts(batch).unwrap();
        assert!(results.iter().all(|r| *r == CreateAccountResult::Ok));
    }
}

#[test]
#[ignore = "performance: run with --release -- --ignored --nocapture"]
fn memory_per_account() {
    let clock = Arc::new(TestClock(AtomicU64::new(1_000_000_000)));
    let mut ledger = MemLedger::new(clock);
    ledger_with_accounts(&mut ledger);
    let per_account = ledger.heap_bytes() / ACCOUNTS;
    println!(
        "memory: {} bytes for {ACCOUNTS} accounts = {per_account} bytes/account",
        ledger.heap_bytes()
    );
    assert!(per_account <= 200, "{per_account} bytes per account");
}

/// Random single-phase transfers between the 1M accounts, in batches of 8189; returns transfers
/// per second.
fn run_transfers(mut ledger: MemLedger, clock: &TestClock, batches: usize) -> u64 {
    ledger_with_accounts(&mut ledger);
    let mut transfers = Vec::with_capacity(batches * BATCH_EVENTS_MAX);
    for i in 0..(batches * BATCH_EVENTS_MAX) as u64 {
        let r = mix(i ^ 0x5555);
        let dr = r % ACCOUNTS as u64;
        let mut cr = (r >> 32) % ACCOUNTS as u64;
        if cr == dr {
            cr = (cr + 1) % ACCOUNTS as u64;
        }
        transfers.push(Transfer {
            id: (u128::from(mix(i)) << 64) | u128::from(i + 1),
            debit_account_id: account_id(dr),
            credit_account_id: account_id(cr),
            amount: u128::from(r % 1000),
            ledger: 1,
            code: 1,
            flags: TransferFlags::NONE,
            ..Transfer::default()
        });
    }
    let start = Instant::now();
    for batch in transfers.chunks(BATCH_EVENTS_MAX) {
        clock.0.fetch_add(1_000_000, Ordering::Relaxed);
        let results = ledger.create_transfers(batch).unwrap();
        assert!(results.iter().all(|r| *r == CreateTransferResult::Ok));
    }
    let elapsed = start.elapsed();
    assert_eq!(ledger.transfers().len(), transfers.len());
    let per_second = transfers.len() as u128 * 1_000_000_000 / elapsed.as_nanos().max(1);
    println!(
        "{} transfers on {ACCOUNTS} accounts in {elapsed:?}: {per_second} transfers/s",
        transfers.len()
    );
    per_second as u64
}

#[test]
#[ignore = "performance: run with --release -- --ignored --nocapture"]
fn transfers_per_second_growing() {
    let clock = Arc::new(TestClock(AtomicU64::new(1_000_000_000)));
    run_transfers(MemLedger::new(clock.clone()), &clock, 1000);
}

#[test]
#[ignore = "performance: run with --release -- --ignored --nocapture"]
fn transfers_per_second_presized() {
    let clock = Arc::new(TestClock(AtomicU64::new(1_000_000_000)));
    let ledger = MemLedger::with_capacity(clock.clone(), ACCOUNTS, 1000 * BATCH_EVENTS_MAX);
    run_transfers(ledger, &clock, 1000);
}
