//! `acme sim --data DIR`: the simulation on the durable ledger, on real files.
//!
//! The ledger is `DurableLedger<FileStorage>` on the simulation's clock: every request is in the
//! log, fdatasynced, before its answer reaches the processes (one record, one fdatasync and one
//! superblock update per `create_*` call, and per read that expires pending transfers). Its
//! answers and timestamps are `MemLedger`'s, so the run is the in-memory run of the same seed,
//! digest and trace hash included; it is only slower. The simulator's `SimBackend` for
//! `DurableLedger` serves scans and the embedded view from its in-memory ledger, which holds
//! exactly what was acknowledged, since every port call commits before it returns. A
//! checkpoint is taken every [`CHECKPOINT_LOG_BYTES`] of log, a few per run of the default
//! size. Afterwards `acme ledger verify DIR` checks the files and replays them.
//!
//! The platform processes keep their journals next to it, each a `LogStore` on files in
//! `DIR/processes/<service>/`, the directory and store id the tokio runtime gives them
//! (`acme_runtime::process_dir`), so `acme dead-letters list --data DIR` reads them afterwards.
//! The ledger's own files stay at the top of DIR, where `acme ledger verify DIR` reads them.

use acme_ledger_durable::{Config, DurableLedger};
use acme_processes::host::{LogStore, ProcessStore};
use acme_processes::process::Service;
use acme_sim::world::SimClock;
use acme_sim::{SimConfig, World};
use acme_store::Storage;
use acme_store_fs::{FileStorage, Mode};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Log bytes between checkpoints: the default run (seed 1, 5 days, 2,000 members) writes about
/// 2.2 MB of log, so this gives it four checkpoints.
pub const CHECKPOINT_LOG_BYTES: u64 = 512 << 10;

/// The store id of a simulation's ledger: "acme sim" and the seed.
pub fn store_id(seed: u64) -> u128 {
    u128::from(u64::from_be_bytes(*b"acme sim")) << 64 | u128::from(seed)
}

/// A world of `cfg` on a new durable ledger in `dir`, which must be empty or missing, and its
/// processes on new journals in `dir/processes/<service>/`.
pub fn world(cfg: SimConfig, dir: &Path) -> Result<World, String> {
    let mut storage = FileStorage::open(dir, Mode::ReadWrite).map_err(|e| e.reason)?;
    empty(&mut storage, dir, "ledger")?;
    // Every journal's directory checked before any is written: a refusal leaves no store.
    let mut journals = Vec::new();
    for service in Service::PLATFORM {
        let journal = acme_runtime::process_dir(dir, service);
        let mut storage = FileStorage::open(&journal, Mode::ReadWrite).map_err(|e| e.reason)?;
        empty(&mut storage, &journal, "process journal")?;
        journals.push((service, journal, storage));
    }
    let mut stores: BTreeMap<Service, Box<dyn ProcessStore>> = BTreeMap::new();
    for (service, journal, storage) in journals {
        let store = LogStore::create(storage, acme_runtime::process_store_id(service))
            .map_err(|e| format!("{}: {e}", journal.display()))?;
        stores.insert(service, Box::new(store));
    }
    let clock = Arc::new(SimClock::default());
    let config = Config {
        checkpoint_log_bytes: CHECKPOINT_LOG_BYTES,
        ..Config::default()
    };
    let ledger = DurableLedger::create(storage, store_id(cfg.seed), clock.clone(), config)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(World::with_process_stores(
        cfg,
        clock,
        Box::new(ledger),
        stores,
    ))
}

/// Refuses a directory that holds files already: a simulation starts from nothing.
fn empty(storage: &mut FileStorage, dir: &Path, what: &str) -> Result<(), String> {
    let names = storage.list().map_err(|e| e.to_string())?;
    if names.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = names.iter().take(4).map(String::as_str).collect();
    let more = if names.len() > 4 { ", ..." } else { "" };
    Err(format!(
        "{} is not empty (it holds {}{more}): a simulation runs on a fresh {what}; give a new or \
         empty directory",
        dir.display(),
        shown.join(", ")
    ))
}
