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
//! - A *shadow* `MemLedger` on the simulation's clock receives every write the cluster answered,
//!   and its results must agree with the cluster's, event by event (the only tolerated
//!   difference: a retried request the cluster had already applied, see [`agree`]); at every
//!   account scan (each end of day, and the summary) its accounts must equal the cluster's,
//!   timestamps aside. A disagreement stops the run with a panic that says where. The shadow is
//!   what `SimBackend::as_mem` lends to the readers that need the whole ledger in memory with
//!   *simulated* timestamps (the end-of-day reconciliation dates settlements by transfer
//!   timestamps; the cluster stamps with its own wall clock): a copy checked against the
//!   cluster, not a substitute for it. The digest (`ledger_digest`) is computed from the
//!   cluster's own accounts.
//!
//! The simulation's accounts are those of ACME's chart of accounts: a cluster shared with
//! other users (the tests share one) may hold others, which the scan leaves out. Account ids are
//! deterministic, so a simulation needs a cluster that does not hold its accounts yet: [`TigerBeetleBackend::connect`] refuses a cluster where any house account of
//! the chart already exists.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acme_ledger::chart;
use acme_ledger::{
    Account, AccountFilter, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    MemLedger, QueryFilter, Transfer, TransferFlags,
};
use acme_ledger_tigerbeetle::TigerBeetleLedger;
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
    /// Events the cluster had already applied when their request was retried.
    pub applied_before_retry: AtomicU64,
    /// Reads asked again after a timeout.
    pub read_retries: AtomicU64,
    /// Account scans compared with the shadow, and those skipped because a write was in doubt.
    pub scans_compared: AtomicU64,
    pub scans_skipped: AtomicU64,
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
    shadow: MemLedger,
    stats: Arc<BackendStats>,
    /// Ids of the events of write requests that got no answer and have not been answered since
    /// (accounts and transfers): until they are, the shadow may lag the cluster.
    in_doubt: BTreeSet<(bool, u128)>,
}

impl TigerBeetleBackend {
    /// A client of cluster `cluster_id` at `addresses` (TigerBeetle's list syntax), with a shadow
    /// ledger on `clock`; fails if the cluster does not answer or already holds the
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
            shadow: MemLedger::new(clock),
            stats: Arc::default(),
            in_doubt: BTreeSet::new(),
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

    /// Checks the cluster's results against the shadow's, then returns the cluster's.
    fn write<R: Copy + PartialEq + core::fmt::Debug>(
        &mut self,
        what: &str,
        ids: impl Iterator<Item = (bool, u128)>,
        linked: &[bool],
        cluster: Result<Vec<R>, LedgerError>,
        shadow: impl FnOnce(&mut MemLedger) -> Vec<R>,
        names: (R, R, R),
    ) -> Result<Vec<R>, LedgerError> {
        let results = match cluster {
            Ok(results) => {
                for id in ids {
                    self.in_doubt.remove(&id);
                }
                results
            }
            Err(e) => {
                if matches!(e, LedgerError::Unavailable { .. }) {
                    self.stats.unanswered_writes.fetch_add(1, Ordering::SeqCst);
                    self.in_doubt.extend(ids);
                }
                return Err(e);
            }
        };
        let expected = shadow(&mut self.shadow);
        match agree(linked, &results, &expected, names) {
            Ok(applied_before) => {
                self.stats
                    .applied_before_retry
                    .fetch_add(applied_before as u64, Ordering::SeqCst);
            }
            Err(index) => panic!(
                "TigerBeetle and the shadow MemLedger disagree on {what} event {index} of {}: \
                 cluster {:?}, MemLedger {:?} (cluster results {results:?}, MemLedger results \
                 {expected:?})",
                results.len(),
                results.get(index),
                expected.get(index)
            ),
        }
        Ok(results)
    }

    /// The simulation's accounts on the cluster, checked against the shadow's (timestamps
    /// aside) unless a write is in doubt.
    fn scan(&mut self) -> Vec<Account> {
        let mut accounts = self
            .read(|c| scan_accounts(c))
            .unwrap_or_else(|e| panic!("TigerBeetle account scan: {e}"));
        accounts.retain(of_the_chart);
        accounts.sort_by_key(|a| a.id);
        if !self.in_doubt.is_empty() {
            self.stats.scans_skipped.fetch_add(1, Ordering::SeqCst);
            return accounts;
        }
        self.stats.scans_compared.fetch_add(1, Ordering::SeqCst);
        let mut shadow: Vec<Account> = self.shadow.accounts().to_vec();
        shadow.sort_by_key(|a| a.id);
        let untimed = |a: &Account| Account { timestamp: 0, ..*a };
        if accounts.len() != shadow.len() {
            panic!(
                "TigerBeetle holds {} accounts, the shadow MemLedger {}",
                accounts.len(),
                shadow.len()
            );
        }
        if let Some((c, s)) = accounts
            .iter()
            .zip(&shadow)
            .find(|(c, s)| untimed(c) != untimed(s))
        {
            panic!("TigerBeetle and the shadow MemLedger disagree on an account: cluster {c:?}, MemLedger {s:?}");
        }
        accounts
    }
}

/// Whether `a` is an account of ACME's chart (id, ledger and code consistent): the
/// simulation's, as opposed to other users' of a shared cluster (the tests share one).
fn of_the_chart(a: &Account) -> bool {
    chart::decode_account_id(a.id)
        .is_some_and(|(kind, ledger, _)| kind.code() == a.code && ledger == a.ledger)
}

/// Whether the cluster's results agree with the shadow's. They must be equal, except where the
/// cluster had applied a request whose reply never came (the shadow has not seen it): then a
/// lone event is `exists` on the cluster and `ok` on the shadow, and a linked chain is `exists`
/// for its first event and `linked_event_failed` for the rest on the cluster and `ok`
/// throughout on the shadow. `Ok(n)`: agreed, `n` events applied before their retry;
/// `Err(index)`: the first event that disagrees. `names`: (ok, exists, linked_event_failed).
pub fn agree<R: Copy + PartialEq>(
    linked: &[bool],
    cluster: &[R],
    shadow: &[R],
    (ok, exists, linked_failed): (R, R, R),
) -> Result<usize, usize> {
    if cluster.len() != shadow.len() || cluster.len() != linked.len() {
        return Err(cluster.len().min(shadow.len()));
    }
    let mut applied_before = 0;
    let mut start = 0;
    while start < cluster.len() {
        // The chain (or lone event) starting at `start`.
        let mut end = start;
        while end + 1 < cluster.len() && linked[end] {
            end += 1;
        }
        let chain = start..end + 1;
        let equal = cluster[chain.clone()] == shadow[chain.clone()];
        let retried = shadow[chain.clone()].iter().all(|r| *r == ok)
            && cluster[start] == exists
            && cluster[start + 1..end + 1]
                .iter()
                .all(|r| *r == linked_failed);
        if retried && !equal {
            applied_before += chain.len();
        } else if !equal {
            return Err(chain
                .clone()
                .find(|&i| cluster[i] != shadow[i])
                .expect("a difference"));
        }
        start = end + 1;
    }
    Ok(applied_before)
}

impl Ledger for TigerBeetleBackend {
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        let linked: Vec<bool> = batch
            .iter()
            .map(|a| a.flags.contains(acme_ledger::AccountFlags::LINKED))
            .collect();
        let cluster = self.cluster.create_accounts(batch);
        self.write(
            "create_accounts",
            batch.iter().map(|a| (false, a.id)),
            &linked,
            cluster,
            |shadow| {
                shadow
                    .create_accounts(batch)
                    .expect("a batch within limits")
            },
            (
                CreateAccountResult::Ok,
                CreateAccountResult::Exists,
                CreateAccountResult::LinkedEventFailed,
            ),
        )
    }

    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        let linked: Vec<bool> = batch
            .iter()
            .map(|t| t.flags.contains(TransferFlags::LINKED))
            .collect();
        let cluster = self.cluster.create_transfers(batch);
        self.write(
            "create_transfers",
            batch.iter().map(|t| (true, t.id)),
            &linked,
            cluster,
            |shadow| {
                shadow
                    .create_transfers(batch)
                    .expect("a batch within limits")
            },
            (
                CreateTransferResult::Ok,
                CreateTransferResult::Exists,
                CreateTransferResult::LinkedEventFailed,
            ),
        )
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
    fn all_accounts(&mut self) -> Vec<Account> {
        self.scan()
    }

    fn as_mem(&self) -> Option<&MemLedger> {
        Some(&self.shadow)
    }
}

/// `--ledger tigerbeetle://ADDRESSES`: a world of `cfg` on the cluster 0 at `addresses`.
pub fn world(cfg: SimConfig, addresses: &str) -> Result<World, String> {
    let clock = Arc::new(SimClock::default());
    let backend = TigerBeetleBackend::connect(0, addresses, clock.clone())?;
    Ok(World::with_ledger(cfg, clock, Box::new(backend)))
}

#[cfg(test)]
mod tests {
    use super::agree;

    const OK: u8 = 0;
    const EXISTS: u8 = 1;
    const FAILED: u8 = 2;
    const OTHER: u8 = 3;
    const NAMES: (u8, u8, u8) = (OK, EXISTS, FAILED);

    #[test]
    fn equal_results_agree() {
        assert_eq!(
            agree(
                &[false, true, false],
                &[OK, OTHER, FAILED],
                &[OK, OTHER, FAILED],
                NAMES
            ),
            Ok(0)
        );
    }

    #[test]
    fn a_request_applied_before_its_retry_agrees() {
        // A lone event, then a chain of three: applied by an attempt whose reply was lost.
        let linked = [false, true, true, false];
        let cluster = [EXISTS, EXISTS, FAILED, FAILED];
        let shadow = [OK, OK, OK, OK];
        assert_eq!(agree(&linked, &cluster, &shadow, NAMES), Ok(4));
    }

    #[test]
    fn anything_else_disagrees_at_the_first_difference() {
        assert_eq!(
            agree(&[false, false], &[OK, OTHER], &[OK, OK], NAMES),
            Err(1)
        );
        // `exists` on the shadow's failure is not a lost reply.
        assert_eq!(agree(&[false], &[EXISTS], &[OTHER], NAMES), Err(0));
        // A chain half applied cannot be.
        assert_eq!(
            agree(&[true, false], &[EXISTS, OK], &[OK, OK], NAMES),
            Err(0)
        );
        assert_eq!(agree(&[false], &[OK, OK], &[OK], NAMES), Err(1));
    }
}
