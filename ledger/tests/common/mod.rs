//! Helpers shared by the integration tests: a settable clock and record builders.
#![allow(dead_code)]

use acme_ledger::{Account, AccountFlags, Clock, MemLedger, Transfer, TransferFlags};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const NS_PER_S: u64 = 1_000_000_000;

/// A clock the test sets by hand (nanoseconds).
#[derive(Default)]
pub struct TestClock(AtomicU64);

impl TestClock {
    pub fn new(ns: u64) -> Arc<TestClock> {
        Arc::new(TestClock(AtomicU64::new(ns)))
    }
    pub fn set(&self, ns: u64) {
        self.0.store(ns, Ordering::SeqCst);
    }
    pub fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now_ns(&self) -> u64 {
        self.get()
    }
}

/// A ledger on a test clock that starts at 1000 s.
pub fn ledger() -> (MemLedger, Arc<TestClock>) {
    let clock = TestClock::new(1000 * NS_PER_S);
    (MemLedger::new(clock.clone()), clock)
}

pub fn account(id: u128, ledger: u32) -> Account {
    Account {
        id,
        ledger,
        code: 10,
        ..Account::default()
    }
}

pub fn account_with(id: u128, ledger: u32, flags: AccountFlags) -> Account {
    Account {
        flags,
        ..account(id, ledger)
    }
}

/// A single-phase transfer on ledger 1 with code 1.
pub fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 1,
        code: 1,
        ..Transfer::default()
    }
}

pub fn with_flags(t: Transfer, flags: TransferFlags) -> Transfer {
    Transfer { flags, ..t }
}

pub fn pending(id: u128, debit: u128, credit: u128, amount: u128, timeout: u32) -> Transfer {
    Transfer {
        flags: TransferFlags::PENDING,
        timeout,
        ..transfer(id, debit, credit, amount)
    }
}

/// A post of `pending_id` with only the required fields (accounts, ledger and code zero).
pub fn post(id: u128, pending_id: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        pending_id,
        amount,
        flags: TransferFlags::POST_PENDING_TRANSFER,
        ..Transfer::default()
    }
}

pub fn void(id: u128, pending_id: u128) -> Transfer {
    Transfer {
        id,
        pending_id,
        flags: TransferFlags::VOID_PENDING_TRANSFER,
        ..Transfer::default()
    }
}
