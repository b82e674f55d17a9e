//! The one way a process persists: [`ProcessStore`], a log of records and a snapshot.
//!
//! The host writes one record per input (the input, its effects, and the outbox entries it
//! completes) and, by policy, a snapshot of the whole state (the process's and the host's) that
//! covers every record before it. What a record or a snapshot means is the host's business
//! (`host::record`); a store only keeps bytes, in order, durably. Two stores: [`MemStore`] for
//! the simulator, and `LogStore` on the durable store's log (`acme-store`), on a simulated disk
//! or on files.

use core::fmt;

/// Why a store could not do what it was asked. Any error of `append` or `snapshot` is fatal to
/// the host: it stops, and carries out nothing of the failed step (no acknowledgement, no
/// effect). The failed call itself may or may not have become durable; recovery, which opens
/// the store again, finds out, and either outcome is a consistent state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    pub reason: String,
}

impl StoreError {
    pub fn new(reason: impl Into<String>) -> StoreError {
        StoreError {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for StoreError {}

/// What recovery reads: the newest durable snapshot and every record after it, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub snapshot: Option<Vec<u8>>,
    pub records: Vec<Vec<u8>>,
}

/// A process's durable state: an append-only log of records behind a snapshot.
///
/// Every method is atomic: after a crash, a call has happened entirely or not at all. A call
/// that returns `Ok` is durable.
pub trait ProcessStore: Send {
    /// Appends one record.
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError>;
    /// Appends records in order, durable together when it returns `Ok` (a group commit: a log
    /// syncs once for all of them). After a crash any prefix of them may be durable, each
    /// record whole; the default appends them one by one, which is that.
    fn append_group(&mut self, records: &[Vec<u8>]) -> Result<(), StoreError> {
        records.iter().try_for_each(|r| self.append(r))
    }
    /// Installs a snapshot of the state after the last appended record; the records it covers
    /// may then be dropped.
    fn snapshot(&mut self, snapshot: &[u8]) -> Result<(), StoreError>;
    /// The newest snapshot and the records after it.
    fn load(&mut self) -> Result<Loaded, StoreError>;
}

/// [`ProcessStore`] in memory: what the simulator uses. It survives a simulated crash because
/// a crash drops only the process and the host's memory, never the store.
#[derive(Debug, Default)]
pub struct MemStore {
    snapshot: Option<Vec<u8>>,
    records: Vec<Vec<u8>>,
    /// Records and snapshots written, for statistics.
    pub appends: u64,
    pub snapshots: u64,
}

impl MemStore {
    /// Bytes held: the snapshot and the records after it.
    pub fn bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, Vec::len)
            + self.records.iter().map(Vec::len).sum::<usize>()
    }

    pub fn records(&self) -> usize {
        self.records.len()
    }
}

impl ProcessStore for MemStore {
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        self.records.push(record.to_vec());
        self.appends += 1;
        Ok(())
    }

    fn snapshot(&mut self, snapshot: &[u8]) -> Result<(), StoreError> {
        self.snapshot = Some(snapshot.to_vec());
        self.records.clear();
        self.snapshots += 1;
        Ok(())
    }

    fn load(&mut self) -> Result<Loaded, StoreError> {
        Ok(Loaded {
            snapshot: self.snapshot.clone(),
            records: self.records.clone(),
        })
    }
}

impl<S: ProcessStore + ?Sized> ProcessStore for Box<S> {
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        (**self).append(record)
    }
    fn append_group(&mut self, records: &[Vec<u8>]) -> Result<(), StoreError> {
        (**self).append_group(records)
    }
    fn snapshot(&mut self, snapshot: &[u8]) -> Result<(), StoreError> {
        (**self).snapshot(snapshot)
    }
    fn load(&mut self) -> Result<Loaded, StoreError> {
        (**self).load()
    }
}
