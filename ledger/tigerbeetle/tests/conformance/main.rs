//! Differential conformance test: `MemLedger` against a real TigerBeetle 0.16.78.
//!
//! Seeded random operation streams (see `gen.rs` for what they cover) are applied to a fresh
//! `MemLedger` and, in a fresh id namespace, to the cluster named by `TB_ADDRESS`; after every
//! batch the per-event results, the accounts and the transfers must be identical (timestamps
//! aside), and after the last one the query operations too (see `harness.rs`). A difference
//! fails the test with the seed and the shortest stream found that still shows one (steps and
//! then events dropped while it still differs, each candidate replayed on a fresh MemLedger and
//! fresh ids on the cluster).
//!
//! The default run: [`DEFAULT_SEEDS`] seeds of at least [`DEFAULT_OPS`] events each (over
//! 100,000 events), on [`DEFAULT_THREADS`] connections at once. Knobs (environment):
//! `CONFORMANCE_SEEDS=N` (seeds 1..=N), `CONFORMANCE_SEED=S` (only seed S),
//! `CONFORMANCE_OPS=N` (events per seed), `CONFORMANCE_THREADS=N`.
//!
//! Needs `TB_ADDRESS` (and optionally `TB_CLUSTER_ID`, default 0): without it the cluster test
//! fails on purpose unless `ACME_SKIP_TIGERBEETLE=1`. The other two tests (the generator's
//! coverage, and the shrinker against a MemLedger with a planted bug) need no cluster.
//!
//! An adapter's test: it reads the environment and the wall clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod gen;
mod harness;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acme_ledger::{
    Account, AccountFilter, Clock, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    MemLedger, QueryFilter, Transfer,
};
use acme_ledger_tigerbeetle::TigerBeetleLedger;

use gen::Step;
use harness::{replay, shrink, Mismatch, Replayed, Side};

const DEFAULT_SEEDS: u64 = 32;
const DEFAULT_OPS: usize = 6_000;
const DEFAULT_THREADS: usize = 4;
/// Replays the shrinker may spend on one difference.
const SHRINK_BUDGET: usize = 3_000;

// ---------------------------------------------------------------------------------------------
// The sides.

/// The clock of a MemLedger side: set to the wall clock when a replay starts (so that its
/// timestamps look like the cluster's), moved on by the stream's sleeps only.
#[derive(Default)]
struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

type MakeLedger = fn(Arc<ManualClock>) -> Box<dyn Ledger + Send>;

struct MemSide {
    name: &'static str,
    clock: Arc<ManualClock>,
    make: MakeLedger,
    ledger: Box<dyn Ledger + Send>,
}

impl MemSide {
    fn new(name: &'static str, make: MakeLedger) -> MemSide {
        let clock = Arc::new(ManualClock::default());
        MemSide {
            name,
            ledger: make(clock.clone()),
            clock,
            make,
        }
    }

    fn mem() -> MemSide {
        MemSide::new("MemLedger", |clock| Box::new(MemLedger::new(clock)))
    }
}

impl Side for MemSide {
    fn name(&self) -> &'static str {
        self.name
    }
    fn begin(&mut self) {
        self.clock.0.store(wall_ns(), Ordering::SeqCst);
        self.ledger = (self.make)(self.clock.clone());
    }
    fn ledger(&mut self) -> &mut dyn Ledger {
        &mut *self.ledger
    }
    fn elapse(&mut self, ms: u32) {
        self.clock
            .0
            .fetch_add(u64::from(ms) * 1_000_000, Ordering::SeqCst);
    }
}

struct TbSide(TigerBeetleLedger);

impl Side for TbSide {
    fn name(&self) -> &'static str {
        "TigerBeetle"
    }
    fn begin(&mut self) {}
    fn ledger(&mut self) -> &mut dyn Ledger {
        &mut self.0
    }
    fn elapse(&mut self, ms: u32) {
        std::thread::sleep(Duration::from_millis(u64::from(ms)));
    }
}

/// MemLedger with a planted bug: a duplicate transfer with a different amount is `exists`.
struct Planted(MemLedger);

impl Ledger for Planted {
    fn create_accounts(&mut self, b: &[Account]) -> Result<Vec<CreateAccountResult>, LedgerError> {
        self.0.create_accounts(b)
    }
    fn create_transfers(
        &mut self,
        b: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        let mut results = self.0.create_transfers(b)?;
        for r in &mut results {
            if *r == CreateTransferResult::ExistsWithDifferentAmount {
                *r = CreateTransferResult::Exists;
            }
        }
        Ok(results)
    }
    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        self.0.lookup_accounts(ids)
    }
    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        self.0.lookup_transfers(ids)
    }
    fn get_account_transfers(&mut self, f: &AccountFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.0.get_account_transfers(f)
    }
    fn query_transfers(&mut self, f: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.0.query_transfers(f)
    }
    fn query_accounts(&mut self, f: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        self.0.query_accounts(f)
    }
}

// ---------------------------------------------------------------------------------------------
// Namespaces and settings.

/// Fresh id namespaces: the high 64 bits from a TigerBeetle time-based id (unique to this
/// process), then a counter; logical ids take the low 32 bits.
struct Namespaces {
    high: u128,
    next: AtomicU64,
}

impl Namespaces {
    fn new() -> Namespaces {
        Namespaces {
            high: (tigerbeetle_unofficial::id() >> 64) << 64,
            next: AtomicU64::new(1),
        }
    }
    fn fresh(&self) -> u128 {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        assert!(n < 1 << 32);
        self.high + (u128::from(n) << 32)
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?}: {e}"))
    })
}

struct Settings {
    seeds: Vec<u64>,
    ops: usize,
    threads: usize,
    /// The default run (no knob set): the minimum figures apply.
    default: bool,
}

fn settings() -> Settings {
    let single = env_number("CONFORMANCE_SEED");
    let count = env_number("CONFORMANCE_SEEDS");
    let ops = env_number("CONFORMANCE_OPS");
    let threads = env_number("CONFORMANCE_THREADS");
    Settings {
        seeds: match single {
            Some(s) => vec![s],
            None => (1..=count.unwrap_or(DEFAULT_SEEDS)).collect(),
        },
        ops: ops.map_or(DEFAULT_OPS, |o| o as usize),
        threads: threads.map_or(DEFAULT_THREADS, |t| t.max(1) as usize),
        default: single.is_none() && count.is_none() && ops.is_none(),
    }
}

/// The adapter for the cluster named by the environment, or `None` when told to skip.
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
            "TB_ADDRESS is not set. The conformance test needs a TigerBeetle cluster: run \
             `tools/tigerbeetle.sh install && tools/tigerbeetle.sh up` and set TB_ADDRESS to the \
             address list it prints (or set ACME_SKIP_TIGERBEETLE=1 to skip it knowingly)."
        );
    };
    let cluster_id: u128 = std::env::var("TB_CLUSTER_ID")
        .ok()
        .map(|s| s.parse().expect("TB_CLUSTER_ID must be an integer"))
        .unwrap_or(0);
    let mut ledger = TigerBeetleLedger::connect(cluster_id, &address)
        .unwrap_or_else(|e| panic!("connect to {address}: {e}"));
    ledger
        .ping()
        .unwrap_or_else(|e| panic!("TigerBeetle at {address} does not answer: {e}"));
    Some(ledger)
}

// ---------------------------------------------------------------------------------------------
// Running seeds.

struct SeedReport {
    seed: u64,
    replayed: Replayed,
    millis: u128,
    /// The shrunk difference, printed.
    failure: Option<String>,
    /// The shrunk stream of a difference (when it could be shrunk).
    shrunk: Option<Vec<Step>>,
}

/// Runs one seed on two sides; on a difference, shrinks it and describes the result.
fn run_seed(
    seed: u64,
    ops: usize,
    left: &mut dyn Side,
    right: &mut dyn Side,
    namespaces: &Namespaces,
) -> SeedReport {
    let started = Instant::now();
    let steps = gen::generate(seed, ops);
    let first = replay(&steps, namespaces.fresh(), left, right, true);
    let mut report = SeedReport {
        seed,
        replayed: Replayed::default(),
        millis: 0,
        failure: None,
        shrunk: None,
    };
    match first {
        Ok(replayed) => report.replayed = replayed,
        Err(mismatch) => {
            let (text, shrunk) =
                shrink_and_describe(seed, &steps, *mismatch, left, right, namespaces);
            report.failure = Some(text);
            report.shrunk = shrunk;
        }
    }
    report.millis = started.elapsed().as_millis();
    report
}

fn shrink_and_describe(
    seed: u64,
    steps: &[Step],
    mismatch: Mismatch,
    left: &mut dyn Side,
    right: &mut dyn Side,
    namespaces: &Namespaces,
) -> (String, Option<Vec<Step>>) {
    let (left_name, right_name) = (left.name(), right.name());
    let original = format!(
        "step {} of {} ({} events up to there): {}",
        mismatch.step,
        steps.len(),
        harness::total_events(&steps[..(mismatch.step + 1).min(steps.len())]),
        mismatch.what
    );
    if mismatch.error {
        // A side did not answer (the cluster may have crashed on this very batch): shrinking
        // would only replay into the same wall. Show the step.
        let step = mismatch.step.min(steps.len().saturating_sub(1));
        let shown = Mismatch {
            step: 0,
            results: mismatch.results.get(step).cloned().into_iter().collect(),
            ..mismatch.clone()
        };
        let text = format!(
            "seed {seed}: a ledger did not answer at {original}\n  the step (not shrunk):\n{}  \
             reproduce: CONFORMANCE_SEED={seed} TB_ADDRESS=... cargo test --release \
             -p acme-ledger-tigerbeetle --test conformance\n",
            harness::describe(&steps[step..=step], &shown, left_name, right_name)
        );
        return (text, None);
    }
    let started = Instant::now();
    let shrunk = shrink(steps.to_vec(), mismatch, SHRINK_BUDGET, &mut |candidate| {
        replay(candidate, namespaces.fresh(), left, right, true)
            .err()
            .map(|m| *m)
    });
    let text = format!(
        "seed {seed}: {left_name} and {right_name} differ\n  \
         first seen at {original}\n  \
         shrunk to {} step(s), {} event(s) in {} replays ({:.1} s{}):\n{}  \
         reproduce: CONFORMANCE_SEED={seed} TB_ADDRESS=... cargo test --release \
         -p acme-ledger-tigerbeetle --test conformance\n",
        shrunk.steps.len(),
        harness::total_events(&shrunk.steps),
        shrunk.replays,
        started.elapsed().as_secs_f64(),
        if shrunk.complete {
            ""
        } else {
            "; budget exhausted, maybe not minimal"
        },
        harness::describe(&shrunk.steps, &shrunk.mismatch, left_name, right_name)
    );
    (text, Some(shrunk.steps))
}

/// Result codes the default run must produce (so that the generator cannot quietly stop
/// covering a path). Every one of them is asserted on the MemLedger-only run as well. All codes
/// of both operations but four: `imported_event_timestamp_must_postdate_debit_account` /
/// `_credit_account` and `imported_event_timeout_must_be_zero` come after the regression check,
/// which every imported event of the streams fails (see `gen.rs`), and `overflows_timeout` needs
/// a clock near 2^63 ns.
const REQUIRED_TRANSFER_RESULTS: &[CreateTransferResult] = {
    use CreateTransferResult as R;
    &[
        R::Ok,
        R::LinkedEventFailed,
        R::LinkedEventChainOpen,
        R::ImportedEventExpected,
        R::ImportedEventNotExpected,
        R::TimestampMustBeZero,
        R::ImportedEventTimestampOutOfRange,
        R::ImportedEventTimestampMustNotAdvance,
        R::ReservedFlag,
        R::IdMustNotBeZero,
        R::IdMustNotBeIntMax,
        R::ExistsWithDifferentFlags,
        R::ExistsWithDifferentPendingId,
        R::ExistsWithDifferentTimeout,
        R::ExistsWithDifferentDebitAccountId,
        R::ExistsWithDifferentCreditAccountId,
        R::ExistsWithDifferentAmount,
        R::ExistsWithDifferentUserData128,
        R::ExistsWithDifferentUserData64,
        R::ExistsWithDifferentUserData32,
        R::ExistsWithDifferentLedger,
        R::ExistsWithDifferentCode,
        R::Exists,
        R::IdAlreadyFailed,
        R::FlagsAreMutuallyExclusive,
        R::DebitAccountIdMustNotBeZero,
        R::DebitAccountIdMustNotBeIntMax,
        R::CreditAccountIdMustNotBeZero,
        R::CreditAccountIdMustNotBeIntMax,
        R::AccountsMustBeDifferent,
        R::PendingIdMustBeZero,
        R::PendingIdMustNotBeZero,
        R::PendingIdMustNotBeIntMax,
        R::PendingIdMustBeDifferent,
        R::TimeoutReservedForPendingTransfer,
        R::ClosingTransferMustBePending,
        R::LedgerMustNotBeZero,
        R::CodeMustNotBeZero,
        R::DebitAccountNotFound,
        R::CreditAccountNotFound,
        R::AccountsMustHaveTheSameLedger,
        R::TransferMustHaveTheSameLedgerAsAccounts,
        R::PendingTransferNotFound,
        R::PendingTransferNotPending,
        R::PendingTransferHasDifferentDebitAccountId,
        R::PendingTransferHasDifferentCreditAccountId,
        R::PendingTransferHasDifferentLedger,
        R::PendingTransferHasDifferentCode,
        R::ExceedsPendingTransferAmount,
        R::PendingTransferHasDifferentAmount,
        R::PendingTransferAlreadyPosted,
        R::PendingTransferAlreadyVoided,
        R::PendingTransferExpired,
        R::ImportedEventTimestampMustNotRegress,
        R::DebitAccountAlreadyClosed,
        R::CreditAccountAlreadyClosed,
        R::OverflowsDebitsPending,
        R::OverflowsCreditsPending,
        R::OverflowsDebitsPosted,
        R::OverflowsCreditsPosted,
        R::OverflowsDebits,
        R::OverflowsCredits,
        R::ExceedsCredits,
        R::ExceedsDebits,
    ]
};

const REQUIRED_ACCOUNT_RESULTS: &[CreateAccountResult] = {
    use CreateAccountResult as R;
    &[
        R::Ok,
        R::LinkedEventFailed,
        R::LinkedEventChainOpen,
        R::ImportedEventExpected,
        R::ImportedEventNotExpected,
        R::TimestampMustBeZero,
        R::ImportedEventTimestampOutOfRange,
        R::ImportedEventTimestampMustNotAdvance,
        R::ReservedField,
        R::ReservedFlag,
        R::IdMustNotBeZero,
        R::IdMustNotBeIntMax,
        R::ExistsWithDifferentFlags,
        R::ExistsWithDifferentUserData128,
        R::ExistsWithDifferentUserData64,
        R::ExistsWithDifferentUserData32,
        R::ExistsWithDifferentLedger,
        R::ExistsWithDifferentCode,
        R::Exists,
        R::FlagsAreMutuallyExclusive,
        R::DebitsPendingMustBeZero,
        R::DebitsPostedMustBeZero,
        R::CreditsPendingMustBeZero,
        R::CreditsPostedMustBeZero,
        R::LedgerMustNotBeZero,
        R::CodeMustNotBeZero,
        R::ImportedEventTimestampMustNotRegress,
    ]
};

/// The required codes that never showed.
fn missing_results(seen: &BTreeMap<String, u64>) -> Vec<String> {
    REQUIRED_TRANSFER_RESULTS
        .iter()
        .map(|r| format!("create_transfers {r:?}"))
        .chain(
            REQUIRED_ACCOUNT_RESULTS
                .iter()
                .map(|r| format!("create_accounts {r:?}")),
        )
        .filter(|name| !seen.contains_key(name))
        .collect()
}

fn summarize(reports: &[SeedReport]) -> (usize, BTreeMap<String, u64>) {
    let mut events = 0;
    let mut seen = BTreeMap::new();
    for r in reports {
        events += r.replayed.events;
        for (k, v) in &r.replayed.results {
            *seen.entry(k.clone()).or_default() += v;
        }
    }
    (events, seen)
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn memledger_agrees_with_tigerbeetle() {
    let Some(first) = cluster() else { return };
    let settings = settings();
    let namespaces = Namespaces::new();
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::new());
    let threads = settings.threads.min(settings.seeds.len());
    let first = Mutex::new(Some(first));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let tb = first
                    .lock()
                    .expect("lock")
                    .take()
                    .or_else(cluster)
                    .expect("cluster");
                let mut tb = TbSide(tb);
                let mut mem = MemSide::mem();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&seed) = settings.seeds.get(i) else {
                        break;
                    };
                    let report = run_seed(seed, settings.ops, &mut mem, &mut tb, &namespaces);
                    eprintln!(
                        "conformance: seed {seed}: {} events in {} steps, {} ms{}",
                        report.replayed.events,
                        report.replayed.steps,
                        report.millis,
                        if report.failure.is_some() {
                            ", DIFFERENT"
                        } else {
                            ""
                        }
                    );
                    reports.lock().expect("lock").push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().expect("lock");
    reports.sort_by_key(|r| r.seed);
    let (events, seen) = summarize(&reports);
    let failures: Vec<&String> = reports.iter().filter_map(|r| r.failure.as_ref()).collect();
    eprintln!(
        "conformance: {} seeds, {events} events agreed, {} distinct results, {} difference(s), \
         {:.1} s",
        reports.len(),
        seen.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        let text: Vec<&str> = failures.iter().map(|s| s.as_str()).collect();
        panic!(
            "MemLedger and TigerBeetle differ on {} seed(s):\n\n{}",
            failures.len(),
            text.join("\n")
        );
    }
    if settings.default {
        assert!(
            events >= 100_000,
            "the default run must apply at least 100,000 events, it applied {events}"
        );
        let missing = missing_results(&seen);
        assert!(
            missing.is_empty(),
            "the streams never produced: {missing:?}"
        );
    }
}

#[test]
fn the_streams_cover_every_path_on_memledger() {
    // Same seeds as the cluster test, MemLedger on both sides: no difference is possible, but
    // the coverage floor and the event count are checked without a cluster.
    let settings = settings();
    let namespaces = Namespaces {
        high: 1 << 64,
        next: AtomicU64::new(1),
    };
    let mut left = MemSide::mem();
    let mut right = MemSide::mem();
    let mut reports = Vec::new();
    for &seed in &settings.seeds {
        let a = gen::generate(seed, settings.ops);
        assert_eq!(
            a,
            gen::generate(seed, settings.ops),
            "the stream of seed {seed} is deterministic"
        );
        reports.push(run_seed(
            seed,
            settings.ops,
            &mut left,
            &mut right,
            &namespaces,
        ));
    }
    let (events, seen) = summarize(&reports);
    for r in &reports {
        assert!(
            r.failure.is_none(),
            "{}",
            r.failure.as_deref().unwrap_or("")
        );
    }
    eprintln!("results seen over {events} events: {seen:#?}");
    if settings.default {
        assert!(events >= 100_000, "only {events} events");
        let missing = missing_results(&seen);
        assert!(
            missing.is_empty(),
            "the streams never produced: {missing:?}"
        );
    }
}

#[test]
fn a_planted_difference_shrinks_to_a_minimal_sequence() {
    // MemLedger against MemLedger with a planted bug (`exists` for a duplicate with a different
    // amount): the harness must find it and shrink it to: create the accounts, create a
    // transfer, resubmit it with another amount.
    let namespaces = Namespaces {
        high: 1 << 64,
        next: AtomicU64::new(1),
    };
    let mut left = MemSide::mem();
    let mut right = MemSide::new("PlantedMemLedger", |clock| {
        Box::new(Planted(MemLedger::new(clock)))
    });
    let report = run_seed(1, DEFAULT_OPS, &mut left, &mut right, &namespaces);
    let failure = report.failure.expect("the planted difference is found");
    eprintln!("{failure}");
    assert!(failure.contains("MemLedger ExistsWithDifferentAmount, PlantedMemLedger Exists"));
    assert!(!failure.contains("budget exhausted"), "{failure}");
    let shrunk = report.shrunk.expect("a shrunk stream");
    let events = harness::total_events(&shrunk);
    assert!(
        events <= 8,
        "the planted difference needs a handful of events, the shrunk stream has {events}"
    );
    // Minimal: without any one of its events, the difference is gone.
    for (i, step) in shrunk.iter().enumerate() {
        for j in 0..step.events().max(1) {
            let mut candidate = shrunk.clone();
            match &mut candidate[i] {
                Step::Accounts(b) => drop(b.remove(j)),
                Step::Transfers(b) => drop(b.remove(j)),
                Step::Sleep(_) => drop(candidate.remove(i)),
            }
            let replayed = replay(&candidate, namespaces.fresh(), &mut left, &mut right, true);
            assert!(
                replayed.is_ok(),
                "dropping event {j} of step {i} still shows a difference: the shrunk stream is \
                 not minimal\n{failure}"
            );
        }
    }
}
