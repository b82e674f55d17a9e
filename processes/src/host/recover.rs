//! Recovery: the newest snapshot, then the records after it, each checked against the code
//! that is about to run them.

use super::record::{self, Entry, Record, OPERATOR_VERSION};
use super::{Host, HostState, ProcessStore, StoreError};
use crate::calendar::Ts;
use crate::process::{Ctx, Effects, Process};
use core::fmt;

/// What a recovery did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Inputs the snapshot covered (0 without one).
    pub snapshot_inputs: u64,
    /// Records replayed after it.
    pub tail: u64,
    /// The snapshot was written by this older version and migrated.
    pub migrated_from: Option<u32>,
}

/// Why a host refused to start. Each says what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryError {
    Store(StoreError),
    /// A record or snapshot that does not decode.
    Undecodable {
        process: String,
        what: String,
    },
    /// Records after the snapshot were written by other code.
    Version {
        process: String,
        code_version: u32,
        journal_version: u32,
        records: u64,
    },
    /// The snapshot was written by a newer version than this code.
    SnapshotNewer {
        process: String,
        code_version: u32,
        snapshot_version: u32,
    },
    /// The snapshot is older and the code declares no migration from its version.
    Migration {
        process: String,
        from: u32,
        to: u32,
        reason: String,
    },
    /// Replaying an input gave other effects than the journal recorded.
    Diverged {
        process: String,
        version: u32,
        record: u64,
        at: Ts,
    },
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryError::Store(e) => write!(f, "the process store could not be read: {e}"),
            RecoveryError::Undecodable { process, what } => write!(f, "{process}: {what}"),
            RecoveryError::Version {
                process,
                code_version,
                journal_version,
                records,
            } => write!(
                f,
                "{process}: the journal after the last snapshot holds {records} records written \
                 by code version {journal_version}; this is version {code_version} and will not \
                 replay them. Start version {journal_version} again and stop it cleanly (it takes \
                 a snapshot when it stops), then start version {code_version}, which migrates \
                 the snapshot"
            ),
            RecoveryError::SnapshotNewer {
                process,
                code_version,
                snapshot_version,
            } => write!(
                f,
                "{process}: the snapshot was written by code version {snapshot_version}, newer \
                 than this version {code_version}; run version {snapshot_version} or later"
            ),
            RecoveryError::Migration {
                process,
                from,
                to,
                reason,
            } => write!(
                f,
                "{process}: cannot migrate the snapshot from version {from} to {to}: {reason}; \
                 declare the migration in `Process::migrate`, or run version {from}"
            ),
            RecoveryError::Diverged {
                process,
                version,
                record,
                at,
            } => write!(
                f,
                "{process} version {version}: replaying record {record} after the snapshot \
                 (handled at {at} ns) gave other effects than it recorded: the code changed \
                 without a new version, or `handle` is not deterministic. Run the code that \
                 wrote the journal, or give the change a new version"
            ),
        }
    }
}

impl std::error::Error for RecoveryError {}

impl<P: Process, S: ProcessStore> Host<P, S> {
    /// Starts a new incarnation from the store: restores the snapshot, replays the records
    /// after it, re-arms the timers, handles the dead letters an operator re-drove, and carries
    /// out what is pending. A refusal leaves the host stopped, with the reason.
    pub fn recover(
        &mut self,
        now: Ts,
        io: &mut dyn super::Io,
    ) -> Result<RecoveryReport, RecoveryError> {
        assert!(self.process.is_none(), "recover a process that is up");
        let (process, state, report, (tail_bytes, snapshot_bytes)) = match self.load() {
            Ok(loaded) => loaded,
            Err(e) => {
                self.stopped = Some(e.to_string());
                return Err(e);
            }
        };
        self.stopped = None;
        self.process = Some(process);
        self.state = state;
        self.incarnation += 1;
        self.in_flight.clear();
        self.retry_at.clear();
        self.carried_to = 0;
        self.done_unrecorded.clear();
        self.ledger_blocked = false;
        self.since_snapshot
            .restart(report.tail, tail_bytes, snapshot_bytes);
        self.stats.recoveries += 1;
        self.stats.journal_tail_max = self.stats.journal_tail_max.max(report.tail);
        let timers: Vec<(u64, Ts)> = self.state.timers().iter().map(|(&i, &a)| (i, a)).collect();
        for (timer_id, at) in timers {
            io.set_timer(self.service, timer_id, at, self.incarnation);
        }
        if report.migrated_from.is_some() && !self.snapshot_now(now, io) {
            // Migrated, then crashed writing the new version's snapshot: the next recovery
            // migrates again.
            return Ok(report);
        }
        let redrives: Vec<u64> = self
            .state
            .dead_letters()
            .iter()
            .filter(|(_, d)| d.redrive)
            .map(|(&id, _)| id)
            .collect();
        for id in redrives {
            if self.process.is_none() {
                break;
            }
            self.redrive(now, id, io);
        }
        if self.process.is_some() {
            self.carry_out(now, io);
        }
        Ok(report)
    }

    /// Rebuilds the process (after a dead letter) from the store; the host's state must come
    /// out as it is.
    pub(super) fn rebuild(&mut self) -> Result<(), RecoveryError> {
        let (process, state, _, _) = self.load()?;
        assert!(
            state == self.state,
            "{:?}: the host's state differs from its journal",
            self.service
        );
        self.process = Some(process);
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn load(&mut self) -> Result<(P, HostState, RecoveryReport, (u64, u64)), RecoveryError> {
        let loaded = self.store.load().map_err(RecoveryError::Store)?;
        let mut report = RecoveryReport::default();
        let (mut process, mut state) = match &loaded.snapshot {
            None => ((self.make)(), HostState::default()),
            Some(bytes) => self.restore(bytes, &mut report)?,
        };
        report.snapshot_inputs = state.inputs;
        let tail_bytes = loaded.records.iter().map(|b| b.len() as u64).sum();
        let snapshot_bytes = loaded.snapshot.as_ref().map_or(0, |b| b.len() as u64);
        let mut records = Vec::with_capacity(loaded.records.len());
        for (index, bytes) in loaded.records.iter().enumerate() {
            let record =
                record::decode_record(bytes).map_err(|what| RecoveryError::Undecodable {
                    process: process.name().to_string(),
                    what: format!("record {index} after the snapshot: {what}"),
                })?;
            records.push(record);
        }
        // Decoded once: the version check and the replay both read the decoded records.
        self.check_versions(&records, process.version())?;
        for (index, record) in records.iter().enumerate() {
            if let Entry::Step { input, effects, .. } = &record.entry {
                let mut fx = Effects::new();
                let replayed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    process.handle(&Ctx { now: record.at }, input, &mut fx)
                }));
                let same = replayed.is_ok() && fx.poisoned().is_none() && fx.items() == effects;
                let planted = crate::plant::active(crate::plant::Bug::UnversionedReplay);
                if !same && !planted {
                    return Err(RecoveryError::Diverged {
                        process: process.name().to_string(),
                        version: process.version(),
                        record: index as u64,
                        at: record.at,
                    });
                }
            }
            state.apply(self.service, record);
            report.tail += 1;
        }
        Ok((process, state, report, (tail_bytes, snapshot_bytes)))
    }

    /// Refuses records written by another code version (an operator's record fits any).
    fn check_versions(&self, records: &[Record], code_version: u32) -> Result<(), RecoveryError> {
        if crate::plant::active(crate::plant::Bug::UnversionedReplay) {
            // Planted: the journal is replayed through whatever code is running.
            return Ok(());
        }
        let mut other: Option<(u32, u64)> = None;
        for record in records {
            if record.version != code_version && record.version != OPERATOR_VERSION {
                let (_, n) = other.get_or_insert((record.version, 0));
                *n += 1;
            }
        }
        match other {
            None => Ok(()),
            Some((journal_version, records)) => Err(RecoveryError::Version {
                process: (self.make)().name().to_string(),
                code_version,
                journal_version,
                records,
            }),
        }
    }

    fn restore(
        &self,
        bytes: &[u8],
        report: &mut RecoveryReport,
    ) -> Result<(P, HostState), RecoveryError> {
        let fresh = (self.make)();
        let name = fresh.name().to_string();
        let undecodable = |what: String| RecoveryError::Undecodable {
            process: name.clone(),
            what,
        };
        let (header, body) = record::decode_snapshot(bytes).map_err(undecodable)?;
        if header.process != fresh.name() {
            return Err(undecodable(format!(
                "the snapshot is of `{}`",
                header.process
            )));
        }
        let code_version = fresh.version();
        let process: P = if header.version == code_version {
            serde_json::from_slice(body).map_err(|e| undecodable(format!("snapshot state: {e}")))?
        } else if header.version > code_version {
            return Err(RecoveryError::SnapshotNewer {
                process: name,
                code_version,
                snapshot_version: header.version,
            });
        } else {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| undecodable(format!("snapshot state: {e}")))?;
            let migration = |reason: String| RecoveryError::Migration {
                process: name.clone(),
                from: header.version,
                to: code_version,
                reason,
            };
            let migrated = fresh.migrate(header.version, value).map_err(migration)?;
            report.migrated_from = Some(header.version);
            serde_json::from_value(migrated).map_err(|e| migration(e.to_string()))?
        };
        Ok((process, header.host))
    }
}
