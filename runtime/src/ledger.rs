//! The ledger as a host's asynchronous effect: one worker thread per host applies its requests
//! in the order submitted on a `Ledger` port connection and posts each answer back to the
//! host's mailbox.
//!
//! The port is synchronous (`acme_ledger::Ledger`): the durable ledger on files behind its
//! writer thread (`acme_ledger_runtime::LedgerClient`, which this runtime can run itself), an
//! embedded `MemLedger` shared by the hosts ([`SharedLedger`]), or TigerBeetle's client. A
//! worker per host gives the `Io` contract directly: a host's requests are applied one after
//! another in submission order, while the hosts' requests meet in the ledger (where the durable
//! ledger group-commits them).
//!
//! After an `Unavailable` answer, nothing the host submitted after that request may be applied:
//! the worker answers every later request `Unavailable` without applying it, until the host
//! has taken the failure in. The host task tells it so with a resume marker, queued right after
//! it handed the `Unavailable` to the host, so every request still ahead of the marker was
//! submitted before the host knew, and is refused; the host submits them again, in order, after
//! its retry pause.

use crate::clock::{Clock, LedgerClock};
use crate::host_task::Event;
use crate::Activity;
use acme_ledger::{
    Account, AccountFilter, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    MemLedger, QueryFilter, Transfer,
};
use acme_ledger_durable::DurableLedger;
use acme_ledger_runtime::LedgerServer;
use acme_processes::host::{execute, Ticket};
use acme_processes::process::{LedgerRequest, Service};
use acme_store::Storage;
use acme_store_fs::{FileStorage, Mode};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Opens one connection to a ledger (one per host worker, one per reader).
pub type Connect = Arc<dyn Fn() -> Box<dyn Ledger + Send> + Send + Sync>;

/// Which ledger the runtime's hosts use.
#[derive(Clone)]
pub enum LedgerConfig {
    /// The durable ledger on files in `<data dir>/ledger` (created there if the directory holds
    /// no store), run by this runtime behind its writer thread and stopped with it: killed with
    /// the runtime, recovered from its files at the next start.
    Durable(acme_ledger_durable::Config),
    /// A ledger outside the runtime, which outlives it: `connect` opens a connection.
    External(Connect),
}

impl std::fmt::Debug for LedgerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerConfig::Durable(c) => f.debug_tuple("Durable").field(c).finish(),
            LedgerConfig::External(_) => f.write_str("External(..)"),
        }
    }
}

/// Any `Ledger` shared by several connections behind a lock: an embedded [`MemLedger`] that the
/// hosts (and a test's checks) use at once, and that survives the runtimes that use it.
#[derive(Clone)]
pub struct SharedLedger(Arc<Mutex<dyn Ledger + Send>>);

impl SharedLedger {
    pub fn new(ledger: impl Ledger + Send + 'static) -> SharedLedger {
        SharedLedger(Arc::new(Mutex::new(ledger)))
    }

    /// An empty embedded ledger taking its timestamps from `clock`.
    pub fn mem(clock: Arc<dyn Clock>) -> SharedLedger {
        SharedLedger::new(MemLedger::new(Arc::new(LedgerClock(clock))))
    }

    /// A [`LedgerConfig::External`] on this ledger.
    pub fn config(&self) -> LedgerConfig {
        let shared = self.clone();
        LedgerConfig::External(Arc::new(move || Box::new(shared.clone())))
    }

    fn with<T>(&self, f: impl FnOnce(&mut dyn Ledger) -> T) -> T {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut *guard)
    }
}

impl Ledger for SharedLedger {
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        self.with(|l| l.create_accounts(batch))
    }
    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        self.with(|l| l.create_transfers(batch))
    }
    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        self.with(|l| l.lookup_accounts(ids))
    }
    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        self.with(|l| l.lookup_transfers(ids))
    }
    fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, LedgerError> {
        self.with(|l| l.get_account_transfers(filter))
    }
    fn query_transfers(&mut self, filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.with(|l| l.query_transfers(filter))
    }
    fn query_accounts(&mut self, filter: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        self.with(|l| l.query_accounts(filter))
    }
}

/// The store id of the durable ledger a runtime creates: "acme ledger".
pub const LEDGER_STORE_ID: u128 = u128::from_be_bytes(*b"acme ledger\0\0\0\0\0");

/// What a store's directory holds when it holds one (or what is left of one).
pub(crate) fn holds_store(names: &[String]) -> bool {
    names.iter().any(|n| {
        n == acme_store::superblock::FILE
            || n == acme_store::chain::FILE
            || acme_store::record::parse_segment_name(n).is_some()
            || acme_store::checkpoint::parse_file_name(n).is_some()
    })
}

/// The durable ledger run by a runtime.
pub(crate) struct DurableBackend {
    pub(crate) server: LedgerServer<FileStorage>,
}

impl DurableBackend {
    /// Opens (recovering) or creates the durable ledger in `dir`.
    pub(crate) fn start(
        dir: &Path,
        clock: Arc<dyn Clock>,
        config: acme_ledger_durable::Config,
    ) -> Result<DurableBackend, String> {
        let at = |e: &dyn std::fmt::Display| format!("ledger in {}: {e}", dir.display());
        let mut storage = FileStorage::open(dir, Mode::ReadWrite).map_err(|e| at(&e))?;
        let names = storage.list().map_err(|e| at(&e))?;
        let ledger_clock: Arc<dyn acme_ledger::Clock + Send + Sync> = Arc::new(LedgerClock(clock));
        let ledger = if holds_store(&names) {
            DurableLedger::open(storage, ledger_clock, config)
                .map_err(|e| at(&e))?
                .0
        } else {
            DurableLedger::create(storage, LEDGER_STORE_ID, ledger_clock, config)
                .map_err(|e| at(&e))?
        };
        Ok(DurableBackend {
            server: LedgerServer::spawn(ledger),
        })
    }

    pub(crate) fn connect(&self) -> Connect {
        let client = self.server.client();
        Arc::new(move || Box::new(client.clone()))
    }
}

/// Stops the writer once every connection is gone (waiting at most `patience` for that), and
/// gives its ledger back.
pub(crate) fn join_writer<S: Storage + Send + 'static>(
    server: LedgerServer<S>,
    patience: std::time::Duration,
) -> Result<DurableLedger<S>, String> {
    let client = server.client();
    drop(client);
    // `join` blocks until every client is dropped; a reader that kept one would hang it.
    let (tx, rx) = std_mpsc::channel();
    let joiner = std::thread::Builder::new()
        .name("ledger-join".into())
        .spawn(move || {
            let (ledger, _) = server.join();
            let _ = tx.send(ledger);
        })
        .map_err(|e| format!("spawn a thread: {e}"))?;
    match rx.recv_timeout(patience) {
        Ok(ledger) => {
            let _ = joiner.join();
            Ok(ledger)
        }
        Err(_) => Err(format!(
            "the ledger writer did not stop within {patience:?}: a ledger connection \
             (`Runtime::ledger`) is still held"
        )),
    }
}

/// What a host task hands its ledger worker.
pub(crate) enum Job {
    Request(Ticket, LedgerRequest),
    /// The host has taken an `Unavailable` in: requests after this are applied again.
    Resume,
}

/// One host's ledger worker.
pub(crate) struct Worker {
    pub(crate) jobs: std_mpsc::Sender<Job>,
    pub(crate) thread: JoinHandle<()>,
}

pub(crate) fn spawn_worker(
    service: Service,
    mut ledger: Box<dyn Ledger + Send>,
    mailbox: mpsc::UnboundedSender<Event>,
    activity: Arc<Activity>,
    killed: Arc<AtomicBool>,
) -> Worker {
    let (jobs, rx) = std_mpsc::channel::<Job>();
    let thread = std::thread::Builder::new()
        .name(format!("ledger-{}", crate::dir_name(service)))
        .spawn(move || {
            let mut failed = false;
            while let Ok(job) = rx.recv() {
                if killed.load(Ordering::SeqCst) {
                    return;
                }
                match job {
                    Job::Resume => failed = false,
                    Job::Request(ticket, request) => {
                        let answer = if failed {
                            Err(LedgerError::Unavailable {
                                reason: "an earlier request of this host failed".into(),
                            })
                        } else {
                            execute(&mut *ledger, &request)
                        };
                        if matches!(answer, Err(LedgerError::Unavailable { .. })) {
                            failed = true;
                        }
                        if killed.load(Ordering::SeqCst) {
                            return; // killed while the request ran: its answer is lost
                        }
                        activity.begin();
                        if mailbox.send(Event::Ledger { ticket, answer }).is_err() {
                            activity.end(); // the host is gone
                        }
                        activity.end(); // the submission
                    }
                }
            }
        })
        .expect("spawn a ledger worker thread");
    Worker { jobs, thread }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acme_processes::process::LedgerReply;

    /// Counts the lookups it applies; refuses (unavailable, not applied) the ones listed.
    struct Counting {
        applied: Arc<Mutex<Vec<u128>>>,
        refuse: Vec<u128>,
    }

    impl Ledger for Counting {
        fn create_accounts(
            &mut self,
            _: &[Account],
        ) -> Result<Vec<CreateAccountResult>, LedgerError> {
            unimplemented!()
        }
        fn create_transfers(
            &mut self,
            _: &[Transfer],
        ) -> Result<Vec<CreateTransferResult>, LedgerError> {
            unimplemented!()
        }
        fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
            if self.refuse.contains(&ids[0]) {
                return Err(LedgerError::Unavailable {
                    reason: "test".into(),
                });
            }
            self.applied.lock().unwrap().push(ids[0]);
            Ok(Vec::new())
        }
        fn lookup_transfers(&mut self, _: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
            unimplemented!()
        }
        fn get_account_transfers(
            &mut self,
            _: &AccountFilter,
        ) -> Result<Vec<Transfer>, LedgerError> {
            unimplemented!()
        }
        fn query_transfers(&mut self, _: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
            unimplemented!()
        }
        fn query_accounts(&mut self, _: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
            unimplemented!()
        }
    }

    fn request(seq: u64) -> Job {
        let ticket = Ticket {
            incarnation: 1,
            seq,
            attempt: seq,
        };
        Job::Request(ticket, LedgerRequest::LookupAccounts(vec![seq as u128]))
    }

    #[test]
    fn after_an_unavailable_nothing_later_is_applied_until_the_host_resumes() {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let ledger = Counting {
            applied: applied.clone(),
            refuse: vec![2],
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let activity = Arc::new(Activity::default());
        let worker = spawn_worker(
            Service::Intake,
            Box::new(ledger),
            tx,
            activity.clone(),
            Arc::new(AtomicBool::new(false)),
        );
        // 1 applied; 2 fails; 3 and 4 were submitted before the host knew: refused. The host
        // takes the failure in (resume), then submits 2, 3, 4 again and 5 (here 12 to 15).
        let jobs = [
            request(1),
            request(2),
            request(3),
            request(4),
            Job::Resume,
            request(12),
            request(13),
            request(14),
            request(15),
        ];
        for job in jobs {
            activity.begin(); // as the host's submission does (a resume counts nothing)
            if matches!(job, Job::Resume) {
                activity.end();
            }
            worker.jobs.send(job).unwrap();
        }
        drop(worker.jobs);
        worker.thread.join().unwrap();
        let mut answers = Vec::new();
        while let Ok(Event::Ledger { ticket, answer }) = rx.try_recv() {
            answers.push((
                ticket.seq,
                answer.map(|r| r == LedgerReply::Accounts(vec![])),
            ));
        }
        let unavailable = |seq| {
            answers
                .iter()
                .any(|(s, a)| *s == seq && matches!(a, Err(LedgerError::Unavailable { .. })))
        };
        assert!(
            unavailable(2) && unavailable(3) && unavailable(4),
            "{answers:?}"
        );
        assert_eq!(*applied.lock().unwrap(), vec![1, 12, 13, 14, 15]);
        assert_eq!(answers.len(), 8);
        // Every submission was answered into the mailbox (which still counts them).
        assert_eq!(activity.count(), 8);
    }
}
