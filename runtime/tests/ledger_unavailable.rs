//! A ledger that is now and then unavailable (the request applied or not, the answer lost), on
//! the runtime: hosts submit again, in order, after their pause, and every member ends with
//! exactly what they paid in, each instruction completed once.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use acme_ledger::chart;
use acme_ledger::{
    Account, AccountFilter, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    QueryFilter, Transfer,
};
use acme_processes::calendar::{Date, NS_PER_MIN};
use acme_processes::messages::{instruction_id, InstructionKind, InstructionState};
use acme_processes::process::Service;
use acme_runtime::{AcceleratedClock, Clock, Config, Runtime, SharedLedger};
use acme_sim::world::FUNDS;
use common::Members;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Every other write fails: alternately after applying it (the answer is lost) and before.
/// (Intake takes a mailbox of instructions as one group and asks the ledger once for them, so
/// a run makes only a handful of writes.)
#[derive(Clone)]
struct Flaky {
    inner: SharedLedger,
    writes: Arc<AtomicU64>,
}

impl Flaky {
    fn write<T>(
        &mut self,
        apply: impl FnOnce(&mut SharedLedger) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if !n.is_multiple_of(2) {
            return apply(&mut self.inner);
        }
        if n % 4 == 2 {
            apply(&mut self.inner)?;
        }
        Err(LedgerError::Unavailable {
            reason: format!("flaky write {n}"),
        })
    }
}

impl Ledger for Flaky {
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        self.write(|l| l.create_accounts(batch))
    }
    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        self.write(|l| l.create_transfers(batch))
    }
    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        self.inner.lookup_accounts(ids)
    }
    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        self.inner.lookup_transfers(ids)
    }
    fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, LedgerError> {
        self.inner.get_account_transfers(filter)
    }
    fn query_transfers(&mut self, filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.inner.query_transfers(filter)
    }
    fn query_accounts(&mut self, filter: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        self.inner.query_accounts(filter)
    }
}

#[test]
fn an_unavailable_ledger_is_retried_in_order_and_nothing_is_lost_or_doubled() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime-ledger-unavailable");
    let _ = std::fs::remove_dir_all(&dir);
    let day = Date::from_ymd(2026, 1, 6).expect("a date");
    let clock = AcceleratedClock::new(day.at_minute(8 * 60), 100);
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let ledger = SharedLedger::mem(dyn_clock.clone());
    let results = ledger
        .clone()
        .create_accounts(&chart::house_accounts(&FUNDS))
        .unwrap();
    assert!(results.iter().all(|r| *r == CreateAccountResult::Ok));
    let flaky = Flaky {
        inner: ledger.clone(),
        writes: Arc::new(AtomicU64::new(0)),
    };
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let mut config = Config::new(&dir, dyn_clock, out_tx);
    let connect = flaky.clone();
    config.ledger = acme_runtime::LedgerConfig::External(Arc::new(move || {
        Box::new(connect.clone()) as Box<dyn Ledger + Send>
    }));
    let rt = Runtime::start(config).expect("starts");
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut members = Members::new(rt.gateway());
    const N: u64 = 40;
    for member in 1..=N {
        members.instruct(member, 0, InstructionKind::Onboard { profile: 1 });
    }
    let t = clock.now() + 5 * NS_PER_MIN;
    driver.block_on(members.run_until(&rt, &clock, &mut out_rx, t));
    // Each member pays in three times, the payments one after another and all at once.
    for seq in 1..=3 {
        for member in 1..=N {
            let pence = 1_000 * seq + member;
            members.instruct(
                member,
                seq,
                InstructionKind::Contribute { cash_pence: pence },
            );
        }
        let t = clock.now() + 5 * NS_PER_MIN;
        driver.block_on(members.run_until(&rt, &clock, &mut out_rx, t));
    }
    assert!(rt.alerts().is_empty(), "{:#?}", rt.alerts());
    let intake = rt.status()[&Service::Intake].clone();
    assert!(intake.stats.ledger_unavailable >= 2, "{intake:?}");
    assert!(intake.outbox_empty, "{intake:?}");
    for member in 1..=N {
        for seq in 0..=3 {
            assert_eq!(
                members.statuses.get(&instruction_id(member, seq)),
                Some(&InstructionState::Completed),
                "member {member} instruction {seq}"
            );
        }
    }
    let mut l = rt.ledger();
    let ids: Vec<u128> = (1..=N).map(chart::member_cash).collect();
    let accounts = l.lookup_accounts(&ids).unwrap();
    assert_eq!(accounts.len(), N as usize);
    for a in accounts {
        let member = (1..=N).find(|&m| chart::member_cash(m) == a.id).unwrap();
        let paid: u64 = (1..=3).map(|seq| 1_000 * seq + member).sum();
        assert_eq!(
            (
                a.credits_posted,
                a.debits_posted,
                a.credits_pending,
                a.debits_pending
            ),
            (paid as u128, 0, 0, 0),
            "member {member}"
        );
    }
    drop(l);
    eprintln!(
        "ledger unavailable {} times, {} writes, intake {:?}",
        intake.stats.ledger_unavailable,
        flaky.writes.load(Ordering::SeqCst),
        intake.stats
    );
    rt.kill();
}
