//! The durable ledger run for real: a [`DurableLedger`] on files, owned by one writer thread.
//!
//! Clients on any thread send requests through a [`LedgerClient`]; the writer takes the first
//! request waiting, then every other request already queued (up to a bound of events), applies
//! them in arrival order, writes them as one log record with one fdatasync (group commit), and
//! only then answers each of them. A read first commits anything applied before it, so no
//! client ever sees a state that is not durable. A store error stops the writer: every request
//! then gets `Unavailable`, and the ledger must be opened again (recovery) to carry on.
//!
//! This is an adapter crate: it owns threads and files; the pure crates below it own none.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // an adapter: threads are its job

use acme_ledger::{
    Account, AccountFilter, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    QueryFilter, Transfer,
};
use acme_ledger_durable::DurableLedger;
use acme_store::Storage;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// At most this many events are group-committed in one record (eight full batches): bounds the
/// record (acme_store's body limit is 16 MiB) and the latency of the group's first request.
pub const GROUP_EVENTS_MAX: usize = 8 * acme_ledger::BATCH_EVENTS_MAX;

type Reply<T> = mpsc::Sender<Result<T, LedgerError>>;
type ReadFn = Box<dyn FnOnce(&mut dyn Ledger) + Send>;

enum Request {
    Accounts(Vec<Account>, Reply<Vec<CreateAccountResult>>),
    Transfers(Vec<Transfer>, Reply<Vec<CreateTransferResult>>),
    Read(ReadFn),
    Checkpoint(mpsc::Sender<Result<(), String>>),
}

impl Request {
    fn events(&self) -> usize {
        match self {
            Request::Accounts(a, _) => a.len(),
            Request::Transfers(t, _) => t.len(),
            Request::Read(_) | Request::Checkpoint(_) => 0,
        }
    }
}

/// Counters of the writer, read when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub groups: u64,
    pub requests: u64,
    pub events: u64,
    /// The most requests one group carried.
    pub group_requests_max: u64,
}

/// The writer thread and the way to reach it.
pub struct LedgerServer<S: Storage + Send + 'static> {
    client: LedgerClient,
    writer: JoinHandle<(DurableLedger<S>, WriterStats)>,
}

/// A handle for sending requests; clone one per client thread.
#[derive(Clone)]
pub struct LedgerClient {
    tx: mpsc::Sender<Request>,
}

impl<S: Storage + Send + 'static> LedgerServer<S> {
    pub fn spawn(ledger: DurableLedger<S>) -> LedgerServer<S> {
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer_loop(ledger, rx))
            .expect("spawn the ledger writer thread");
        LedgerServer {
            client: LedgerClient { tx },
            writer,
        }
    }

    pub fn client(&self) -> LedgerClient {
        self.client.clone()
    }

    /// Stops the writer once every client handle is dropped and the queue is drained; returns
    /// the ledger and the writer's counters.
    pub fn join(self) -> (DurableLedger<S>, WriterStats) {
        drop(self.client);
        self.writer
            .join()
            .expect("the ledger writer thread panicked")
    }
}

fn writer_loop<S: Storage>(
    mut ledger: DurableLedger<S>,
    rx: mpsc::Receiver<Request>,
) -> (DurableLedger<S>, WriterStats) {
    let mut stats = WriterStats::default();
    let mut carried: Option<Request> = None;
    loop {
        let first = match carried.take() {
            Some(r) => r,
            None => match rx.recv() {
                Ok(r) => r,
                Err(_) => return (ledger, stats),
            },
        };
        let mut group = vec![first];
        let mut events = group[0].events();
        // Take what is already queued, up to the bound; a read ends the group (it must see the
        // group committed) and a request that would overflow waits for the next group.
        while !matches!(
            group.last(),
            Some(Request::Read(_) | Request::Checkpoint(_))
        ) {
            match rx.try_recv() {
                Ok(r) if events + r.events() > GROUP_EVENTS_MAX => {
                    carried = Some(r);
                    break;
                }
                Ok(r) => {
                    events += r.events();
                    group.push(r);
                }
                Err(_) => break,
            }
        }
        stats.groups += 1;
        stats.requests += group.len() as u64;
        stats.events += events as u64;
        stats.group_requests_max = stats.group_requests_max.max(group.len() as u64);
        run_group(&mut ledger, group);
    }
}

/// Applies and stages every create of the group, commits once, then answers; a read or a
/// checkpoint (always last) runs after the commit.
fn run_group<S: Storage>(ledger: &mut DurableLedger<S>, group: Vec<Request>) {
    enum Answer {
        Accounts(
            Reply<Vec<CreateAccountResult>>,
            Result<Vec<CreateAccountResult>, LedgerError>,
        ),
        Transfers(
            Reply<Vec<CreateTransferResult>>,
            Result<Vec<CreateTransferResult>, LedgerError>,
        ),
    }
    let mut answers = Vec::with_capacity(group.len());
    let mut last = None;
    for request in group {
        match request {
            Request::Accounts(batch, reply) => {
                let r = ledger.stage_accounts(&batch);
                answers.push(Answer::Accounts(reply, r));
            }
            Request::Transfers(batch, reply) => {
                let r = ledger.stage_transfers(&batch);
                answers.push(Answer::Transfers(reply, r));
            }
            other => last = Some(other),
        }
    }
    let committed = ledger.commit();
    for answer in answers {
        // A client that went away no longer wants its answer; that is not the writer's error.
        match answer {
            Answer::Accounts(reply, r) => {
                let _ = reply.send(committed.clone().and(r));
            }
            Answer::Transfers(reply, r) => {
                let _ = reply.send(committed.clone().and(r));
            }
        }
    }
    // The answers are out; a checkpoint due now delays only the next group.
    ledger.maybe_checkpoint();
    match last {
        Some(Request::Read(read)) => read(ledger),
        Some(Request::Checkpoint(reply)) => {
            let r = ledger
                .checkpoint_now()
                .map(|_| ())
                .map_err(|e| e.to_string());
            let _ = reply.send(r);
        }
        _ => {}
    }
}

fn gone() -> LedgerError {
    LedgerError::Unavailable {
        reason: "the ledger writer has stopped".into(),
    }
}

impl LedgerClient {
    fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, LedgerError> {
        let (tx, rx) = mpsc::channel();
        self.tx.send(make(tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }

    /// Runs `read` on the writer thread against the committed ledger.
    pub fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut dyn Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        self.ask(|reply| {
            Request::Read(Box::new(move |ledger| {
                let _ = reply.send(read(ledger));
            }))
        })
    }

    /// Commits anything pending and checkpoints the whole ledger now.
    pub fn checkpoint(&self) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Request::Checkpoint(tx))
            .map_err(|_| "the ledger writer has stopped".to_string())?;
        rx.recv()
            .map_err(|_| "the ledger writer has stopped".to_string())?
    }
}

/// A client is a `Ledger` too, so any code written against the port can run on the server.
impl Ledger for LedgerClient {
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        let batch = batch.to_vec();
        self.ask(|reply| Request::Accounts(batch, reply))
    }

    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        let batch = batch.to_vec();
        self.ask(|reply| Request::Transfers(batch, reply))
    }

    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        let ids = ids.to_vec();
        self.read(move |l| l.lookup_accounts(&ids))
    }

    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        let ids = ids.to_vec();
        self.read(move |l| l.lookup_transfers(&ids))
    }

    fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, LedgerError> {
        let f = *filter;
        self.read(move |l| l.get_account_transfers(&f))
    }

    fn query_transfers(&mut self, filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        let f = *filter;
        self.read(move |l| l.query_transfers(&f))
    }

    fn query_accounts(&mut self, filter: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        let f = *filter;
        self.read(move |l| l.query_accounts(&f))
    }
}
