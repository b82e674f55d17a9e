//! The durable ledger in the simulator, on the disk that lies, with every recovery checked.
//!
//! - `impl SimBackend for DurableLedger<S>`: any durable ledger (on real files, in memory) can
//!   back a [`World`](crate::World) through [`World::with_ledger`](crate::World::with_ledger).
//! - [`SimDurable`]: a durable ledger on a [`SimDisk`], the simulator's backend when the run's
//!   fault plan has storage faults. Every storage failure (a power loss, a write, sync or read
//!   error, fsync errors included) is handled at once, inside the call that met it, as a machine
//!   restart: power off, the unsynced writes resolved by the disk, and the ledger opened again
//!   from what is durable (after fsyncgate only the durable image can be trusted). Then the
//!   recovery is judged against what the ledger had acknowledged before the failure:
//!   - nothing acknowledged may be lost (`ledger_lost_acknowledged`);
//!   - the recovered state is exactly the state before the failure when the failed commit's
//!     record turned out durable, and exactly that state less the failed commit's requests
//!     otherwise (they are replayed onto a copy of the recovered ledger to compare); a crash
//!     inside a checkpoint recovers exactly the state before it (`ledger_recovered_different`);
//!   - a refusal to open is a *safe halt* when the disk injected corruption (the ledger must
//!     refuse rather than serve it), and a violation otherwise (`ledger_refused_without_corruption`):
//!     a crash alone never justifies refusing; a refusal by the replay's own checks is always a
//!     violation (`ledger_replay_refused`).
//!
//!   - the ledger stopping on corruption the disk never injected (a checkpoint read back, the
//!     chain archive, a segment being compacted) is a violation too.
//!
//!   The call that failed answers `Unavailable` (the hosts retry with the same ids, which is
//!   safe), and so does every call until the restart delay of the plan has passed; a call
//!   whose answer was out before the failure (a checkpoint after its commit) keeps its answer.
//!   After a storage error the first attempts at opening run with the plan's read errors, the
//!   later ones without ([`RECOVERY_ATTEMPTS_WITH_READ_ERRORS`]).
//!
//! At the end of a run ([`SimBackend::end_of_run`]) the disk is verified read-only and the
//! ledger opened once more after a power loss: it must come back with exactly the final state.

use crate::disk::{DiskFaults, SimDisk};
use crate::summary::StorageSummary;
use crate::world::{SimBackend, SimClock};
use acme_faults::FaultPlan;
use acme_ledger::{
    Account, AccountFilter, Clock, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    MemLedger, MemState, QueryFilter, Transfer,
};
use acme_ledger_durable::codec::Entry;
use acme_ledger_durable::ledger::apply_entry;
use acme_ledger_durable::{verify_ledger, Config, DurableLedger, PinnedClock, Stats};
use acme_store::{ChainHead, Recovery, Storage, StoreError};
use std::sync::Arc;

impl<S: Storage> SimBackend for DurableLedger<S> {
    fn all_accounts(&mut self) -> Vec<Account> {
        self.mem().accounts().to_vec()
    }
    fn as_mem(&self) -> Option<&MemLedger> {
        Some(self.mem())
    }
}

/// Attempts at opening the ledger after one failure before the recovery is judged stuck.
pub const RECOVERY_ATTEMPTS_MAX: u32 = 20;

/// Attempts at opening with the plan's read errors before they are paused for the rest of that
/// recovery. Recovery reads every record after the checkpoint (two reads each) and the store
/// treats a failed read as fatal to the attempt, so at the plan's rates an attempt rarely gets
/// through a long log: the first attempts show that a read error is never mistaken for a torn
/// tail or corruption, the later ones let the run go on (a real disk's transient read errors
/// pass in the same way).
pub const RECOVERY_ATTEMPTS_WITH_READ_ERRORS: u32 = 3;

/// The store id of the simulator's ledger.
pub const SIM_STORE_ID: u128 = u128::from_le_bytes(*b"acme-sim-ledger!");

/// The durable ledger's configuration in simulation: small, so that a run of a few days (some
/// 4,000 records, 700 KB of log with 2,000 members) installs checkpoints, rolls segments over
/// and removes old ones, all under faults.
pub fn sim_config() -> Config {
    Config {
        store: acme_store::Config {
            segment_bytes_max: 128 << 10,
        },
        checkpoint_log_bytes: 64 << 10,
        // Often enough that runs of a few thousand members checkpoint many times a day; the
        // bound keeps a run of tens of thousands from rewriting its state every 64 KiB.
        checkpoint_amplification_max: 4,
        ..Config::default()
    }
}

/// What the ledger held when a storage failure stopped it.
struct Crash {
    /// The last record acknowledged (the head only moves on success).
    acked: ChainHead,
    /// The requests of the commit that failed (empty when a checkpoint failed).
    unacknowledged: Vec<Entry>,
    /// The whole in-memory state, the failed requests applied.
    before: MemState,
    failure: String,
}

/// A durable ledger on a simulated disk that lies; see the module documentation.
pub struct SimDurable {
    disk: SimDisk,
    ledger: DurableLedger<SimDisk>,
    clock: Arc<SimClock>,
    config: Config,
    /// The plan's storage faults (the disk runs with them while they are switched on).
    faults: DiskFaults,
    faults_on: bool,
    restart_delay_ns: u64,
    /// After a recovery, calls answer `Unavailable` until the clock reaches this.
    down_until: u64,
    /// After a recovery, the disk runs without the faults that stop it (power loss, I/O errors)
    /// until the clock reaches this (the plan's `crash_uptime_mean_ms`), and `resting` says
    /// whether it does now.
    fault_free_until: u64,
    resting: bool,
    uptime_mean_ns: u64,
    uptime_rng: crate::rng::SimRng,
    halted: Option<String>,
    violations: Vec<(String, String)>,
    /// Statistics of the ledgers before the current one (each recovery opens a new one).
    earlier: Stats,
    summary: StorageSummary,
}

impl SimDurable {
    /// A new, empty durable ledger on a fresh disk seeded from `seed` (the disk draws from its
    /// own streams of the seed), with the storage faults of `plan` (off until
    /// [`SimBackend::set_storage_faults`] switches them on: the world does once the house
    /// accounts exist) and its restart delay.
    pub fn new(seed: u64, plan: &FaultPlan, clock: Arc<SimClock>) -> SimDurable {
        SimDurable::with_config(seed, plan, clock, sim_config())
    }

    pub fn with_config(
        seed: u64,
        plan: &FaultPlan,
        clock: Arc<SimClock>,
        config: Config,
    ) -> SimDurable {
        let disk = SimDisk::new(seed, DiskFaults::default());
        let ledger = DurableLedger::create(disk.clone(), SIM_STORE_ID, clock.clone(), config)
            .expect("a new store on a disk without faults");
        SimDurable {
            disk,
            ledger,
            clock,
            config,
            faults: DiskFaults::from(plan),
            faults_on: false,
            restart_delay_ns: plan.restart_delay_ms * 1_000_000,
            down_until: 0,
            fault_free_until: 0,
            resting: false,
            uptime_mean_ns: plan.crash_uptime_mean_ms * 1_000_000,
            uptime_rng: crate::rng::SimRng::new(seed, crate::rng::Stream::Uptime),
            halted: None,
            violations: Vec::new(),
            earlier: Stats::default(),
            summary: StorageSummary::default(),
        }
    }

    /// The disk (a handle: clones share it), for tests that corrupt it or cut its power.
    pub fn disk(&self) -> &SimDisk {
        &self.disk
    }

    /// The current durable ledger.
    pub fn ledger(&self) -> &DurableLedger<SimDisk> {
        &self.ledger
    }

    fn violation(&mut self, invariant: &str, detail: String) {
        self.violations.push((invariant.to_string(), detail));
    }

    fn halt(&mut self, reason: String) {
        self.summary.halted = Some(reason.clone());
        self.halted = Some(reason);
    }

    /// Runs one call of the port; a storage failure in it is recovered from at once.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&mut DurableLedger<SimDisk>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        if let Some(reason) = &self.halted {
            return Err(LedgerError::Unavailable {
                reason: format!("the durable ledger halted: {reason}"),
            });
        }
        let now = self.clock.now_ns();
        if now < self.down_until {
            return Err(LedgerError::Unavailable {
                reason: format!(
                    "the ledger's machine is restarting after a storage failure ({} ms left)",
                    (self.down_until - now) / 1_000_000
                ),
            });
        }
        let resting = now < self.fault_free_until;
        if resting != self.resting {
            self.resting = resting;
            self.apply_faults(false);
        }
        let head_before = self.ledger.head();
        let result = f(&mut self.ledger);
        let Some(failure) = self.ledger.failure().map(|e| e.to_string()) else {
            return result;
        };
        // A call that answered `Ok` and left the ledger stopped failed in the checkpoint that
        // follows a commit: its answer is out and its record durable. One that answered `Err`
        // acknowledged nothing (the head only moves on success).
        let acked = if result.is_ok() {
            self.ledger.head()
        } else {
            head_before
        };
        if matches!(self.ledger.failure(), Some(StoreError::Corrupt(_)))
            && self.disk.corruptions().is_empty()
        {
            // A store that sees corruption where the disk injected none (a checkpoint read back,
            // the chain archive) misjudged what a crash or an I/O error left.
            self.violation(
                "ledger_refused_without_corruption",
                format!("the ledger stopped on corruption the disk never injected: {failure}"),
            );
        }
        let crash = Crash {
            acked,
            unacknowledged: self.ledger.unacknowledged(),
            before: self.ledger.mem().state(),
            failure,
        };
        let reason = format!("storage failure, recovered: {}", crash.failure);
        self.recover(crash);
        self.down_until = now + self.restart_delay_ns.max(1);
        if self.uptime_mean_ns > 0 {
            let gap_ns = self.uptime_rng.between(0, 2 * self.uptime_mean_ns);
            self.fault_free_until = self.down_until + gap_ns;
            self.resting = true;
            self.apply_faults(false);
        }
        // An answer already given stands; the machine restarts after it.
        result.map_err(|_| LedgerError::Unavailable { reason })
    }

    /// The disk's fault rates: the plan's while storage faults are on, with read errors paused
    /// if `reads_paused`.
    fn apply_faults(&self, reads_paused: bool) {
        let mut faults = if self.faults_on {
            self.faults.clone()
        } else {
            DiskFaults::default()
        };
        if self.resting {
            // The failures that stop the machine rest; silent corruption does not wait.
            faults.crash_ppm = 0;
            faults.write_error_ppm = 0;
            faults.sync_error_ppm = 0;
            faults.read_error_ppm = 0;
        }
        if reads_paused {
            faults.read_error_ppm = 0;
        }
        self.disk.set_faults(faults);
    }

    /// Power loss, restart, open; judged against what was acknowledged (module documentation).
    fn recover(&mut self, crash: Crash) {
        let context = format!("after `{}`", crash.failure);
        if let Some((ledger, recovery)) = self.reopen(&context) {
            self.summary.recoveries += 1;
            self.note_recovery(&recovery);
            self.check_recovered(&ledger, &recovery, &crash);
            self.replace(ledger);
        }
    }

    /// Cuts the power, restarts and opens the ledger, again while the storage fails (a crash or
    /// a read error while recovering), at most [`RECOVERY_ATTEMPTS_MAX`] times. `None` when it
    /// halted (judged by [`SimDurable::refused`]).
    fn reopen(&mut self, context: &str) -> Option<(DurableLedger<SimDisk>, Recovery)> {
        let mut attempts = 0;
        let opened = loop {
            self.disk.power_loss();
            self.disk.restart();
            attempts += 1;
            if attempts == RECOVERY_ATTEMPTS_WITH_READ_ERRORS + 1 && self.faults_on {
                self.summary.read_errors_paused += 1;
                self.apply_faults(true);
            }
            match DurableLedger::open(self.disk.clone(), self.clock.clone(), self.config) {
                Err(StoreError::Storage(_)) if attempts < RECOVERY_ATTEMPTS_MAX => {
                    self.summary.recovery_retries += 1;
                }
                other => break other,
            }
        };
        if attempts > RECOVERY_ATTEMPTS_WITH_READ_ERRORS {
            self.apply_faults(false);
        }
        match opened {
            Ok(opened) => Some(opened),
            Err(e) => {
                self.refused(e, context);
                None
            }
        }
    }

    /// Judges a refusal to open (or a recovery that never got through the storage).
    fn refused(&mut self, e: StoreError, context: &str) {
        match e {
            StoreError::Corrupt(c) => {
                if self.disk.corruptions().is_empty() {
                    self.violation(
                        "ledger_refused_without_corruption",
                        format!(
                            "the ledger refused to open ({context}) though the disk injected no \
                             corruption: {c}"
                        ),
                    );
                }
                self.halt(c.to_string());
            }
            StoreError::Storage(e) => {
                self.violation(
                    "ledger_recovery_stuck",
                    format!(
                        "{RECOVERY_ATTEMPTS_MAX} attempts at opening the ledger ({context}) \
                         failed on the storage, the last: {e}"
                    ),
                );
                self.halt(format!("recovery failed on the storage: {e}"));
            }
            other => {
                self.violation(
                    "ledger_replay_refused",
                    format!("the ledger refused to open ({context}): {other}"),
                );
                self.halt(other.to_string());
            }
        }
    }

    fn note_recovery(&mut self, recovery: &Recovery) {
        if recovery.torn.is_some() {
            self.summary.torn_tails_cut += 1;
        }
        if recovery.checkpoint_fallback.is_some() {
            self.summary.checkpoint_fallbacks += 1;
        }
        self.summary.unacknowledged_kept += recovery.unacknowledged;
    }

    fn check_recovered(
        &mut self,
        ledger: &DurableLedger<SimDisk>,
        recovery: &Recovery,
        crash: &Crash,
    ) {
        let head = recovery.head;
        let acked = crash.acked;
        let recovered = ledger.mem().state();
        if head.seq < acked.seq {
            self.violation(
                "ledger_lost_acknowledged",
                format!(
                    "records up to {} were acknowledged, recovery found only {} (after `{}`)",
                    acked.seq, head.seq, crash.failure
                ),
            );
        } else if head.seq == acked.seq + 1 {
            // The failed commit's record is durable after all (or the failure came after it,
            // in a checkpoint): exactly the state it was applied to.
            if recovered != crash.before {
                self.violation(
                    "ledger_recovered_different",
                    format!(
                        "record {} is durable, but the recovered state differs from the state \
                         before the failure: {} (after `{}`)",
                        head.seq,
                        difference(&recovered, &crash.before),
                        crash.failure
                    ),
                );
            }
        } else if head.seq == acked.seq {
            if head != acked {
                self.violation(
                    "ledger_recovered_different",
                    format!(
                        "recovered to record {} with chain head {head}, acknowledged {acked}",
                        head.seq
                    ),
                );
                return;
            }
            // The failed commit is lost: none of it was acknowledged. Its requests applied to
            // the recovered ledger must give exactly the state before the failure.
            self.summary.unacknowledged_lost += crash.unacknowledged.len() as u64;
            let pinned = Arc::new(PinnedClock::default());
            let replayed = MemLedger::from_state(pinned.clone(), recovered).and_then(|mut mem| {
                for e in &crash.unacknowledged {
                    apply_entry(&mut mem, &pinned, e)?;
                }
                Ok(mem.state())
            });
            match replayed {
                Ok(state) if state == crash.before => {}
                Ok(state) => self.violation(
                    "ledger_recovered_different",
                    format!(
                        "the recovered state with the {} unacknowledged requests replayed \
                         differs from the state before the failure: {} (after `{}`)",
                        crash.unacknowledged.len(),
                        difference(&state, &crash.before),
                        crash.failure
                    ),
                ),
                Err(e) => self.violation(
                    "ledger_recovered_different",
                    format!(
                        "the unacknowledged requests do not replay onto the recovered ledger: {e} \
                         (after `{}`)",
                        crash.failure
                    ),
                ),
            }
        } else {
            self.violation(
                "ledger_recovered_different",
                format!(
                    "recovered to record {}, past the acknowledged {} and the one in flight",
                    head.seq, acked.seq
                ),
            );
        }
    }

    /// The recovered ledger takes over (its statistics start from zero).
    fn replace(&mut self, ledger: DurableLedger<SimDisk>) {
        let old = std::mem::replace(&mut self.ledger, ledger).stats();
        self.earlier.records += old.records;
        self.earlier.entries += old.entries;
        self.earlier.log_bytes += old.log_bytes;
        self.earlier.checkpoints += old.checkpoints;
    }
}

/// Where two states differ, briefly.
fn difference(a: &MemState, b: &MemState) -> String {
    let mut out = Vec::new();
    if a.accounts.len() != b.accounts.len() {
        out.push(format!(
            "{} accounts vs {}",
            a.accounts.len(),
            b.accounts.len()
        ));
    } else if let Some(x) = a.accounts.iter().zip(&b.accounts).find(|(x, y)| x != y) {
        out.push(format!("account {:#x} differs", x.0.id));
    }
    if a.transfers.len() != b.transfers.len() {
        out.push(format!(
            "{} transfers vs {}",
            a.transfers.len(),
            b.transfers.len()
        ));
    } else if let Some(x) = a.transfers.iter().zip(&b.transfers).find(|(x, y)| x != y) {
        out.push(format!("transfer {:#x} differs", x.0.id));
    }
    if a.pending_status != b.pending_status {
        out.push("pending statuses differ".into());
    }
    if a.failed_ids != b.failed_ids {
        out.push(format!(
            "{} failed ids vs {}",
            a.failed_ids.len(),
            b.failed_ids.len()
        ));
    }
    if a.prepare_timestamp != b.prepare_timestamp {
        out.push(format!(
            "prepare timestamp {} vs {}",
            a.prepare_timestamp, b.prepare_timestamp
        ));
    }
    if out.is_empty() {
        out.push("no difference".into());
    }
    out.join(", ")
}

impl Ledger for SimDurable {
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        self.call(|l| l.create_accounts(batch))
    }
    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        self.call(|l| l.create_transfers(batch))
    }
    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        self.call(|l| l.lookup_accounts(ids))
    }
    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        self.call(|l| l.lookup_transfers(ids))
    }
    fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, LedgerError> {
        self.call(|l| l.get_account_transfers(filter))
    }
    fn query_transfers(&mut self, filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.call(|l| l.query_transfers(filter))
    }
    fn query_accounts(&mut self, filter: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        self.call(|l| l.query_accounts(filter))
    }
}

impl SimBackend for SimDurable {
    fn all_accounts(&mut self) -> Vec<Account> {
        self.ledger.mem().accounts().to_vec()
    }

    /// The recovered ledger (after a halt: the ledger as it was when it stopped).
    fn as_mem(&self) -> Option<&MemLedger> {
        Some(self.ledger.mem())
    }

    fn take_violations(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.violations)
    }

    fn halted(&self) -> Option<String> {
        self.halted.clone()
    }

    fn set_storage_faults(&mut self, on: bool) {
        self.faults_on = on;
        self.apply_faults(false);
    }

    /// Verifies the disk read-only, then opens the ledger after a power loss: exactly the final
    /// state must come back (or, on injected corruption, a safe halt).
    fn end_of_run(&mut self) {
        if self.halted.is_some() {
            return;
        }
        // The run is over: the ledger at rest, checked without faults.
        self.set_storage_faults(false);
        let corrupted = !self.disk.corruptions().is_empty();
        match verify_ledger(&mut self.disk.read_only(), None) {
            Ok(report) if report.is_clean() || corrupted => {}
            Ok(report) => {
                let first = report.store.corruptions.first().map(|c| c.to_string());
                self.violation(
                    "ledger_verify_failed",
                    format!(
                        "verify found {} corruption(s) though the disk injected none, the first: {}",
                        report.store.corruptions.len(),
                        first.unwrap_or_else(|| "an auditor's chain head".into())
                    ),
                );
            }
            Err(_) if corrupted => {}
            Err(e) => self.violation("ledger_verify_failed", format!("verify failed: {e}")),
        }
        let (acked, state) = (self.ledger.head(), self.ledger.mem().state());
        if let Some((ledger, recovery)) = self.reopen("at the end of the run") {
            let reopened = ledger.mem().state();
            if recovery.head != acked || reopened != state {
                self.violation(
                    "ledger_recovered_different",
                    format!(
                        "at the end of the run, the ledger opened at record {} (last \
                         acknowledged {}) with a different state: {}",
                        recovery.head.seq,
                        acked.seq,
                        difference(&reopened, &state)
                    ),
                );
            }
            self.replace(ledger);
        }
    }

    fn storage_summary(&self) -> Option<StorageSummary> {
        let now = self.ledger.stats();
        let corruptions = self.disk.corruptions();
        Some(StorageSummary {
            records: self.earlier.records + now.records,
            checkpoints: self.earlier.checkpoints + now.checkpoints,
            log_bytes: self.earlier.log_bytes + now.log_bytes,
            corruptions_injected: corruptions.len() as u64,
            corruptions: corruptions
                .iter()
                .take(10)
                .map(|c| format!("{} {} {}..{}", c.kind, c.file, c.offset, c.offset + c.len))
                .collect(),
            disk: self.disk.stats(),
            ..self.summary.clone()
        })
    }
}
