//! The simulator on a real TigerBeetle cluster: [`TigerBeetleBackend`] implements the
//! simulator's `SimBackend` over [`TigerBeetleLedger`] (only with the cargo feature
//! `tigerbeetle`; the simulator itself never depends on the TigerBeetle crate).
//!
//! - Writes (`create_*`) go to the cluster, and their results are what the processes see. A
//!   request the cluster does not answer in time is `LedgerError::Unavailable`; the hosts keep
//!   their outboxes and retry with the same ids (a request that timed out may have been applied:
//!   the retry then returns `exists`, and for a linked chain `exists` for its first event and
//!   `linked_event_failed` for the rest).
//! - Reads (lookups, queries, the account scan) go to the cluster too; a read that times out is
//!   simply asked again (reads change nothing), up to [`READ_ATTEMPTS`] times.
//! - There is no copy of the ledger in memory: the end-of-day reconciliation, the invariants,
//!   the reference-model comparison and the digest all read the cluster through the port. The
//!   cluster stamps with its own clock, while the simulation's days are virtual, so the backend
//!   keeps a [`Calendar`]: the first cluster timestamp of each simulated day (the cluster's
//!   latest timestamp, plus one, when the first write of a new day is sent). The reconciliation
//!   dates transfers by it, as `acme recon --calendar` does with the file the export writes.
//!   The differential check against MemLedger, event by event, is the conformance tests' job
//!   (ledger/tigerbeetle/tests/conformance); the simulator checks the outcome.
//!
//! The simulation's accounts are those of ACME's chart of accounts: a cluster shared with
//! other users (the tests share one) may hold others, which the scan leaves out. Account ids are
//! deterministic, so a simulation needs a cluster that does not hold its accounts yet:
//! [`TigerBeetleBackend::connect`] refuses a cluster where any house account of the chart
//! already exists.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acme_ledger::chart;
use acme_ledger::{
    Account, AccountFilter, Clock, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    QueryFilter, Transfer,
};
use acme_ledger_tigerbeetle::TigerBeetleLedger;
use acme_processes::calendar::Date;
use acme_processes::recon::ledger::Calendar;
use acme_processes::recon::source::latest_timestamp;
use acme_sim::world::{scan_accounts, SimBackend, SimClock, FUNDS};
use acme_sim::{SimConfig, World};

/// How many times a read is asked before its `Unavailable` is passed on.
pub const READ_ATTEMPTS: u32 = 20;

/// What happened between the backend and the cluster (shared, so that a caller can read it
/// after handing the backend to a `World`).
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Write requests that got no answer (the retry of one may find it applied).
    pub unanswered_writes: AtomicU64,
    /// Reads asked again after a timeout.
    pub read_retries: AtomicU64,
    /// Account scans through the port.
    pub scans: AtomicU64,
}

#[allow(dead_code)] // Read by the cluster tests (tools/tests/tigerbeetle.rs).
impl BackendStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// `SimBackend` over a TigerBeetle cluster. See the module documentation.
pub struct TigerBeetleBackend {
    cluster: TigerBeetleLedger,
    clock: Arc<SimClock>,
    stats: Arc<BackendStats>,
    /// (first cluster timestamp, simulated day) of every day a write was sent on.
    day_starts: Vec<(u64, Date)>,
}

impl TigerBeetleBackend {
    /// A client of cluster `cluster_id` at `addresses` (TigerBeetle's list syntax) for a
    /// simulation on `clock`; fails if the cluster does not answer or already holds the
    /// simulation's accounts.
    pub fn connect(
        cluster_id: u128,
        addresses: &str,
        clock: Arc<SimClock>,
    ) -> Result<TigerBeetleBackend, String> {
        let mut cluster =
            TigerBeetleLedger::connect(cluster_id, addresses).map_err(|e| e.to_string())?;
        cluster
            .ping()
            .map_err(|e| format!("TigerBeetle at {addresses} does not answer: {e}"))?;
        let house: Vec<u128> = chart::house_accounts(&FUNDS).iter().map(|a| a.id).collect();
        let found = cluster.lookup_accounts(&house).map_err(|e| e.to_string())?;
        if let Some(a) = found.first() {
            return Err(format!(
                "the TigerBeetle cluster at {addresses} already holds this simulation's accounts \
                 ({} of its {} house accounts exist, e.g. {:#x}); account ids are deterministic, \
                 so a simulation needs a fresh cluster: tools/tigerbeetle.sh down && \
                 tools/tigerbeetle.sh up",
                found.len(),
                house.len(),
                a.id
            ));
        }
        Ok(TigerBeetleBackend {
            cluster,
            clock,
            stats: Arc::default(),
            day_starts: Vec::new(),
        })
    }

    /// The counters of this backend.
    #[allow(dead_code)] // Used by the cluster tests (tools/tests/tigerbeetle.rs).
    pub fn stats(&self) -> Arc<BackendStats> {
        self.stats.clone()
    }

    /// How long a request waits for the cluster before it is `Unavailable` (see
    /// `TigerBeetleLedger::set_request_timeout`).
    #[allow(dead_code)] // Used by the cluster tests (tools/tests/tigerbeetle.rs).
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.cluster.set_request_timeout(Some(timeout));
    }

    fn read<T>(
        &mut self,
        mut call: impl FnMut(&mut TigerBeetleLedger) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut attempt = 1;
        loop {
            match call(&mut self.cluster) {
                Err(LedgerError::Unavailable { .. }) if attempt < READ_ATTEMPTS => {
                    attempt += 1;
                    self.stats.read_retries.fetch_add(1, Ordering::SeqCst);
                }
                other => return other,
            }
        }
    }

    /// Before a write: on the first of a new simulated day, notes where the day begins on the
    /// cluster's clock (everything it stamps from now on is later than its latest timestamp).
    fn note_day(&mut self) -> Result<(), LedgerError> {
        let today = Date::of(self.clock.now_ns());
        if self.day_starts.last().is_some_and(|&(_, d)| d >= today) {
            return Ok(());
        }
        let latest = self
            .read(|c| latest_timestamp(c).map_err(|reason| LedgerError::Unavailable { reason }))?;
        self.day_starts.push((latest + 1, today));
        Ok(())
    }

    fn written<R>(&mut self, result: Result<R, LedgerError>) -> Result<R, LedgerError> {
        if matches!(result, Err(LedgerError::Unavailable { .. })) {
            self.stats.unanswered_writes.fetch_add(1, Ordering::SeqCst);
        }
        result
    }
}

/// Whether `a` is an account of ACME's chart (id, ledger and code consistent): the
/// simulation's, as opposed to other users' of a shared cluster (the tests share one).
fn of_the_chart(a: &Account) -> bool {
    chart::decode_account_id(a.id)
        .is_some_and(|(kind, ledger, _)| kind.code() == a.code && ledger == a.ledger)
}

impl Ledger for TigerBeetleBackend {
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        self.note_day()?;
        let result = self.cluster.create_accounts(batch);
        self.written(result)
    }

    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        self.note_day()?;
        let result = self.cluster.create_transfers(batch);
        self.written(result)
    }

    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        self.read(|c| c.lookup_accounts(ids))
    }

    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        self.read(|c| c.lookup_transfers(ids))
    }

    fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, LedgerError> {
        self.read(|c| c.get_account_transfers(filter))
    }

    fn query_transfers(&mut self, filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.read(|c| c.query_transfers(filter))
    }

    fn query_accounts(&mut self, filter: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        self.read(|c| c.query_accounts(filter))
    }
}

impl SimBackend for TigerBeetleBackend {
    /// The simulation's accounts on the cluster, through the port.
    fn all_accounts(&mut self) -> Vec<Account> {
        self.stats.scans.fetch_add(1, Ordering::SeqCst);
        let mut accounts = self
            .read(|c| scan_accounts(c))
            .unwrap_or_else(|e| panic!("TigerBeetle account scan: {e}"));
        accounts.retain(of_the_chart);
        accounts
    }

    fn calendar(&self) -> Calendar {
        Calendar::from_day_starts(self.day_starts.clone())
            .expect("days are noted in order, each once")
    }
}

/// `--ledger tigerbeetle://ADDRESSES`: a world of `cfg` on the cluster 0 at `addresses`.
pub fn world(cfg: SimConfig, addresses: &str) -> Result<World, String> {
    let clock = Arc::new(SimClock::default());
    let backend = TigerBeetleBackend::connect(0, addresses, clock.clone())?;
    Ok(World::with_ledger(cfg, clock, Box::new(backend)))
}
