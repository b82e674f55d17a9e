//! A power loss at every storage operation of a seeded run's ledger recovers exactly what was
//! acknowledged (or that and the request in flight), and leaves a store that verifies clean.
//!
//! One small seeded simulation runs on the durable ledger in memory (`DurableLedger` over
//! `MemStorage`); its log is the run's request stream, each request with the clock reading it
//! was prepared at. The stream is replayed onto a durable ledger on the simulated disk (no
//! random faults) once to count the disk's operations, N; then, for every k in 0..N and two
//! disk seeds (which decide what the power loss keeps, drops or tears of the unsynced writes),
//! a fresh disk loses power at operation k, restarts, and the ledger is opened and verified.
//! The configuration is small so that the stream installs checkpoints, rolls segments over and
//! compacts old ones into the chain archive: every step of each is crashed.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // the sweep's wall time, printed

use acme_ledger::{Ledger, MemLedger, MemState};
use acme_ledger_durable::codec::{decode_group, Entry, Events, KIND_GROUP};
use acme_ledger_durable::ledger::apply_entry;
use acme_ledger_durable::{verify_ledger, Config, DurableLedger, PinnedClock};
use acme_sim::disk::{DiskFaults, SimDisk};
use acme_sim::world::SimClock;
use acme_sim::{SimConfig, World};
use acme_store::{MemStorage, Replay, Storage, StorageError, Store, StoreError};
use std::sync::{Arc, Mutex};

const SEED: u64 = 11;
const MEMBERS: u64 = 300;
const DAYS: u32 = 3;
const STORE_ID: u128 = 0x5eed;
/// What a power loss keeps of the unsynced writes is drawn from these.
const DISK_SEEDS: [u64; 3] = [1, 2, 3];

/// The sweep's store: a few checkpoints, rollovers and compactions over the stream.
fn sweep_config() -> Config {
    Config {
        store: acme_store::Config {
            segment_bytes_max: 12 << 10,
        },
        checkpoint_log_bytes: 10 << 10,
        ..Config::default()
    }
}

/// `MemStorage` shared between the world's ledger and the test (which reads the log after).
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<MemStorage>>);

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut MemStorage) -> T) -> T {
        f(&mut self.0.lock().expect("not poisoned"))
    }
}

impl Storage for Shared {
    fn read_at(&mut self, file: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        self.with(|s| s.read_at(file, offset, buf))
    }
    fn write_at(&mut self, file: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.with(|s| s.write_at(file, offset, data))
    }
    fn sync(&mut self, file: &str) -> Result<(), StorageError> {
        self.with(|s| s.sync(file))
    }
    fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError> {
        self.with(|s| s.truncate(file, len))
    }
    fn size(&mut self, file: &str) -> Result<u64, StorageError> {
        self.with(|s| s.size(file))
    }
    fn list(&mut self) -> Result<Vec<String>, StorageError> {
        self.with(|s| s.list())
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        self.with(|s| s.rename(from, to))
    }
    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        self.with(|s| s.remove(file))
    }
    fn sync_dir(&mut self) -> Result<(), StorageError> {
        self.with(|s| s.sync_dir())
    }
    fn read_only(&self) -> bool {
        self.with(|s| s.read_only)
    }
}

/// Collects every record's entries, in order.
#[derive(Default)]
struct Entries(Vec<Entry>);

impl Replay for Entries {
    fn restore(&mut self, seq: u64, state: Option<&[u8]>) -> Result<(), String> {
        match state {
            None => Ok(()),
            Some(_) => Err(format!("the recording took a checkpoint (at record {seq})")),
        }
    }
    fn apply(&mut self, _seq: u64, kind: u16, body: &[u8]) -> Result<(), String> {
        assert_eq!(kind, KIND_GROUP);
        self.0.extend(decode_group(body)?);
        Ok(())
    }
}

/// The run's request stream: the seeded simulation on the durable ledger in memory (no
/// checkpoint, so the log keeps every record), read back from its log.
fn record_stream() -> Vec<Entry> {
    let storage = Shared::default();
    let clock = Arc::new(SimClock::default());
    let config = Config {
        store: acme_store::Config {
            segment_bytes_max: 4 << 10,
        },
        checkpoint_log_bytes: u64::MAX,
        ..Config::default()
    };
    let ledger = DurableLedger::create(storage.clone(), STORE_ID, clock.clone(), config).unwrap();
    let cfg = SimConfig::new(SEED, DAYS, MEMBERS);
    let durable = World::with_ledger(cfg.clone(), clock, Box::new(ledger)).run();
    assert!(durable.ok(), "{:?}", durable.violations.first());
    // The durable ledger answers exactly as the embedded one: the same run, bit for bit.
    let embedded = acme_sim::run(cfg);
    assert_eq!(durable.trace_hash, embedded.trace_hash);
    assert_eq!(durable.ledger_digest, embedded.ledger_digest);
    storage.with(|s| s.read_only = true);
    let mut entries = Entries::default();
    let (_, recovery) = Store::open(storage, config.store, &mut entries).unwrap();
    assert!(
        recovery.segments.len() >= 2,
        "the recording rolled no segment"
    );
    entries.0
}

/// What replaying the stream onto a durable ledger on `disk` came to.
struct Replayed {
    /// The state after the last request answered `Ok`, and the ledger's state when it stopped
    /// (that, with the request that failed applied).
    acked: MemState,
    in_flight: MemState,
    crashed: bool,
    /// The power went during `create`: there may be no store at all.
    in_create: bool,
    checkpoints: u64,
    rollovers: u64,
    removed_segments: u64,
}

fn replay(stream: &[Entry], disk: &SimDisk) -> Replayed {
    let clock = Arc::new(SimClock::default());
    let pinned = Arc::new(PinnedClock::default());
    let mut reference = MemLedger::new(pinned.clone());
    let mut out = Replayed {
        acked: reference.state(),
        in_flight: reference.state(),
        crashed: false,
        in_create: false,
        checkpoints: 0,
        rollovers: 0,
        removed_segments: 0,
    };
    let mut ledger =
        match DurableLedger::create(disk.clone(), STORE_ID, clock.clone(), sweep_config()) {
            Ok(ledger) => ledger,
            Err(_) => {
                out.crashed = true;
                out.in_create = true;
                return out;
            }
        };
    let mut segment = ledger.store().superblock().log_segment;
    let mut segments = 1;
    for e in stream {
        clock.set(e.now_ns);
        let answered = match &e.events {
            Events::Accounts(a) => ledger.create_accounts(a).map(drop),
            Events::Transfers(t) => ledger.create_transfers(t).map(drop),
            // A read that expired pending transfers logged them first.
            Events::None => ledger.lookup_transfers(&[1]).map(drop),
        };
        if answered.is_ok() {
            // Answered: acknowledged (a checkpoint after it may still have failed).
            apply_entry(&mut reference, &pinned, e).expect("the stream replays");
        }
        if answered.is_err() || ledger.failure().is_some() {
            out.crashed = true;
            out.acked = reference.state();
            out.in_flight = ledger.mem().state();
            return out;
        }
        let now = ledger.store().superblock().log_segment;
        if now != segment {
            segment = now;
            segments += 1;
        }
    }
    out.checkpoints = ledger.stats().checkpoints;
    out.rollovers = segments - 1;
    let mut storage = disk.clone();
    let live = storage
        .list()
        .unwrap()
        .iter()
        .filter(|n| n.starts_with("log-"))
        .count() as u64;
    out.removed_segments = segments - live;
    out.acked = reference.state();
    out.in_flight = out.acked.clone();
    assert_eq!(ledger.mem().state(), out.acked);
    out
}

#[test]
fn a_power_loss_at_every_storage_operation_recovers_what_was_acknowledged() {
    let started = std::time::Instant::now();
    let stream = record_stream();
    let requests = stream.len();
    let bytes: usize = stream
        .iter()
        .map(|e| match &e.events {
            Events::Accounts(a) => a.len() * 128,
            Events::Transfers(t) => t.len() * 128,
            Events::None => 0,
        })
        .sum();
    let counting = SimDisk::new(0, DiskFaults::default());
    let full = replay(&stream, &counting);
    assert!(!full.crashed);
    let n = counting.ops();
    eprintln!(
        "stream: {requests} requests ({bytes} bytes of events); {n} disk operations, {} \
         checkpoints, {} rollovers, {} segments compacted",
        full.checkpoints, full.rollovers, full.removed_segments
    );
    assert!(full.checkpoints >= 2, "{} checkpoints", full.checkpoints);
    assert!(full.rollovers >= 2, "{} rollovers", full.rollovers);
    assert!(
        full.removed_segments >= 1,
        "no segment compacted ({} rollovers, {} checkpoints)",
        full.rollovers,
        full.checkpoints
    );
    let (mut with_failed, mut without_failed) = (0u64, 0u64);
    let mut failures: Vec<String> = Vec::new();
    for k in 0..n {
        for seed in DISK_SEEDS {
            let disk = SimDisk::new(seed, DiskFaults::default());
            disk.crash_at_op(k);
            let r = replay(&stream, &disk);
            assert!(r.crashed, "op {k}: the armed crash never fired");
            assert!(disk.is_crashed());
            disk.restart();
            let at = format!("power lost at op {k} of {n} (disk seed {seed})");
            // What an auditor sees on the crashed disk, before anything opens it: a torn tail
            // is not corruption.
            if !r.in_create {
                let report = verify_ledger(&mut disk.read_only(), None)
                    .unwrap_or_else(|e| panic!("{at}: verify failed: {e}"));
                if !report.is_clean() {
                    failures.push(format!(
                        "{at}: verify before recovery found {:?}",
                        report.store.corruptions
                    ));
                }
            }
            let clock = Arc::new(SimClock::default());
            match DurableLedger::open(disk.clone(), clock, sweep_config()) {
                Ok((ledger, _)) => {
                    let state = ledger.mem().state();
                    if state == r.acked {
                        without_failed += 1;
                    } else if state == r.in_flight {
                        with_failed += 1;
                    } else {
                        failures.push(format!(
                            "{at}: recovered {} accounts and {} transfers, acknowledged {} and \
                             {}, in flight {} and {}",
                            state.accounts.len(),
                            state.transfers.len(),
                            r.acked.accounts.len(),
                            r.acked.transfers.len(),
                            r.in_flight.accounts.len(),
                            r.in_flight.transfers.len()
                        ));
                    }
                }
                Err(StoreError::NotAStore { .. }) if r.in_create => continue,
                Err(e) => {
                    failures.push(format!("{at}: the ledger refused to open: {e}"));
                    continue;
                }
            }
            let report = verify_ledger(&mut disk.read_only(), None)
                .unwrap_or_else(|e| panic!("{at}: verify failed: {e}"));
            if !report.is_clean() {
                failures.push(format!(
                    "{at}: verify after recovery found {:?}",
                    report.store.corruptions
                ));
            }
        }
    }
    eprintln!(
        "{n} crash points x {} disk seeds: {without_failed} recovered the acknowledged state, \
         {with_failed} that and the request in flight, {} failures; {:.1} s",
        DISK_SEEDS.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} crash points failed, the first:\n{}",
        failures.len(),
        n as usize * DISK_SEEDS.len(),
        failures[..failures.len().min(12)].join("\n")
    );
    assert!(with_failed > 0 && without_failed > 0);
}
