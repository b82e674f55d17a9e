//! When and how the host snapshots: the process's state and its own, covering every record
//! before it, so that recovery replays a bounded tail however long the process has run.

use super::record::{self, SnapshotHeader};
use super::{Host, Io, ProcessStore};
use crate::calendar::Ts;
use crate::process::Process;

/// When to snapshot. Records are counted from the last snapshot; bytes too, against the size
/// of that snapshot, so a process with a large state (a re-balancing pass holding every pot)
/// snapshots no more often than it writes its state's size again in records: the cost of
/// snapshots stays proportional to the journal, and a burst of bulk reads ends in a snapshot.
///
/// The same rule bounds recovery: it reads a snapshot and a tail of at most the snapshot's
/// size (or `every_bytes_min`, or `every_records`), so it costs about one to two restores of
/// the live state, however long the process has run. The byte floor is low (256 KiB) because
/// a small state otherwise recovers from a tail many times its own size: with 8 MiB, a host
/// whose snapshot restores in 4 ms replayed up to 4,095 records (20 ms) after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    pub every_records: u64,
    pub every_bytes_min: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> SnapshotPolicy {
        SnapshotPolicy {
            every_records: 4096,
            every_bytes_min: 256 << 10,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Since {
    records: u64,
    bytes: u64,
    last_snapshot_bytes: u64,
}

impl Since {
    pub(super) fn add(&mut self, bytes: usize) {
        self.records += 1;
        self.bytes += bytes as u64;
    }

    /// After a recovery: the tail it replayed and the snapshot under it, so that a large state
    /// is not snapshotted again after a small tail only because the host restarted.
    pub(super) fn restart(&mut self, records: u64, bytes: u64, last_snapshot_bytes: u64) {
        self.records = records;
        self.bytes = bytes;
        self.last_snapshot_bytes = last_snapshot_bytes;
    }
}

impl<P: Process, S: ProcessStore> Host<P, S> {
    /// The journal since the last snapshot, as the policy sees it: (records, bytes, the bytes
    /// at which the next snapshot is due).
    pub fn since_snapshot(&self) -> (u64, u64, u64) {
        let since = self.since_snapshot;
        let bytes_due = self.policy.every_bytes_min.max(since.last_snapshot_bytes);
        (since.records, since.bytes, bytes_due)
    }

    pub(super) fn maybe_snapshot(&mut self, now: Ts, io: &mut dyn Io) {
        let since = self.since_snapshot;
        let bytes_due = self.policy.every_bytes_min.max(since.last_snapshot_bytes);
        if since.records >= self.policy.every_records || since.bytes >= bytes_due {
            self.snapshot_now(now, io);
        }
    }

    /// Snapshots now. False if the host crashed or stopped on the way.
    pub fn snapshot_now(&mut self, now: Ts, io: &mut dyn Io) -> bool {
        if self.crash_here(io) {
            return false;
        }
        let Some(process) = self.process.as_ref() else {
            return false;
        };
        let header = SnapshotHeader {
            process: process.name().to_string(),
            version: process.version(),
            at: now,
            host: self.state.clone(),
        };
        let state = serde_json::to_vec(process).expect("a process's state always encodes");
        let bytes = record::encode_snapshot(&header, &state);
        if let Err(e) = self.store.snapshot(&bytes) {
            self.stop(format!("snapshot failed: {e}"));
            return false;
        }
        // The snapshot holds the in-memory state, effects completed since the last record
        // included.
        self.done_unrecorded.clear();
        self.since_snapshot = Since {
            records: 0,
            bytes: 0,
            last_snapshot_bytes: bytes.len() as u64,
        };
        self.stats.snapshots += 1;
        !self.crash_here(io)
    }

    /// Stops cleanly: a snapshot, so that the next start (perhaps of a newer version, which
    /// migrates it) replays nothing. Wait for [`Host::ledger_pending`] to reach 0 first when
    /// the next version reads ledger answers differently.
    pub fn shutdown(&mut self, now: Ts, io: &mut dyn Io) -> bool {
        let ok = self.snapshot_now(now, io);
        self.process = None;
        ok
    }

    /// Drops the process and everything the host held in memory. The store survives.
    pub fn crash(&mut self) {
        let first = self.state.pending().keys().next().copied();
        if let (true, Some(seq)) = (
            crate::plant::active(crate::plant::Bug::CrashLosesEffect),
            first,
        ) {
            // Planted: the effect about to be carried out is marked done without being done.
            let _ = self.record_progress(0, vec![seq]);
        }
        self.process = None;
    }
}
