//! [`DurableLedger`]: a [`MemLedger`] whose every state change is in the store before its answer
//! leaves.
//!
//! A request is applied in memory at a pinned clock reading, its entry (the request, that reading,
//! and its outcome) is staged, and the staged entries become one record: one write and one
//! fdatasync for every request staged since the last commit (group commit). Answers are released
//! only after the commit. Replay applies the same requests at the same clock readings and checks
//! that it gets the same outcome, so the recovered ledger is the acknowledged one, exactly.
//! A read that would expire pending transfers logs that pulse first, since it changes the state.
//!
//! Any store error stops the ledger: every later call answers `Unavailable` until the ledger is
//! opened again, which recovers it from the store.

use crate::codec::{self, Entry, Events, Op, KIND_GROUP};
use acme_ledger::{
    Account, AccountFilter, Clock, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    MemLedger, QueryFilter, Transfer,
};
use acme_store::{ChainHead, CheckpointReport, Recovery, Replay, Storage, Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The clock the in-memory ledger reads: set to one reading for the whole of a request, live or
/// replayed, so replay sees exactly the time the request was prepared at.
#[derive(Debug, Default)]
pub struct PinnedClock(AtomicU64);

impl PinnedClock {
    pub fn set(&self, now_ns: u64) {
        self.0.store(now_ns, Ordering::Relaxed);
    }
}

impl Clock for PinnedClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub store: acme_store::Config,
    /// A checkpoint is taken once this many bytes of log were written since the last one...
    pub checkpoint_log_bytes: u64,
    /// ...and at least the last checkpoint's size divided by this (0: no such wait). A full
    /// checkpoint of a state that grew past the fixed interval would otherwise be written
    /// every interval, and checkpoint writes grow with the square of the ledger's size; with
    /// it they stay within this many times the log's bytes.
    pub checkpoint_amplification_max: u64,
    /// Room made in memory up front (as TigerBeetle sizes its grid at start), so that growing
    /// vectors and indexes never stall a request: 0 grows on demand.
    pub accounts_capacity: usize,
    pub transfers_capacity: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            store: acme_store::Config::default(),
            checkpoint_log_bytes: 1 << 30,
            checkpoint_amplification_max: 1,
            accounts_capacity: 0,
            transfers_capacity: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub records: u64,
    pub entries: u64,
    pub log_bytes: u64,
    pub checkpoints: u64,
}

pub struct DurableLedger<S: Storage> {
    store: Store<S>,
    mem: MemLedger,
    pinned: Arc<PinnedClock>,
    clock: Arc<dyn Clock + Send + Sync>,
    config: Config,
    staged: Vec<u8>,
    staged_entries: u32,
    log_bytes_since_checkpoint: u64,
    /// The size of the state last checkpointed (or restored), bytes.
    last_checkpoint_bytes: u64,
    failure: Option<StoreError>,
    /// The body of the record whose commit failed: applied in memory, never acknowledged, and
    /// perhaps durable after all (a crash after the write, before the answer).
    unacknowledged: Option<Vec<u8>>,
    stats: Stats,
}

impl<S: Storage> DurableLedger<S> {
    /// A new, empty durable ledger in storage that holds no store yet.
    pub fn create(
        storage: S,
        store_id: u128,
        clock: Arc<dyn Clock + Send + Sync>,
        config: Config,
    ) -> Result<DurableLedger<S>, StoreError> {
        let store = Store::create(storage, store_id, config.store)?;
        let pinned = Arc::new(PinnedClock::default());
        let mem = MemLedger::new(pinned.clone());
        Ok(DurableLedger::assemble(store, mem, pinned, clock, config))
    }

    /// Opens and recovers a durable ledger (see [`acme_store::Store::open`]).
    pub fn open(
        storage: S,
        clock: Arc<dyn Clock + Send + Sync>,
        config: Config,
    ) -> Result<(DurableLedger<S>, Recovery), StoreError> {
        let mut replayer = Replayer::new();
        let (store, recovery) = Store::open(storage, config.store, &mut replayer)?;
        let mem = replayer.mem.take().expect("restore ran");
        let mut ledger = DurableLedger::assemble(store, mem, replayer.pinned, clock, config);
        // The log replayed since the checkpoint counts towards the next one: a ledger that is
        // reopened often must still checkpoint (and so keep its recovery short).
        ledger.log_bytes_since_checkpoint = replayer.bytes;
        ledger.last_checkpoint_bytes = replayer.checkpoint_bytes;
        Ok((ledger, recovery))
    }

    fn assemble(
        store: Store<S>,
        mut mem: MemLedger,
        pinned: Arc<PinnedClock>,
        clock: Arc<dyn Clock + Send + Sync>,
        config: Config,
    ) -> DurableLedger<S> {
        mem.reserve(config.accounts_capacity, config.transfers_capacity);
        DurableLedger {
            store,
            mem,
            pinned,
            clock,
            config,
            staged: Vec::new(),
            staged_entries: 0,
            log_bytes_since_checkpoint: 0,
            last_checkpoint_bytes: 0,
            failure: None,
            unacknowledged: None,
            stats: Stats::default(),
        }
    }

    /// The in-memory ledger, as of the last request applied (committed or staged).
    pub fn mem(&self) -> &MemLedger {
        &self.mem
    }

    pub fn head(&self) -> ChainHead {
        self.store.head()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The error that stopped this ledger, if one did.
    pub fn failure(&self) -> Option<&StoreError> {
        self.failure.as_ref()
    }

    pub fn store(&self) -> &Store<S> {
        &self.store
    }

    /// The in-memory ledger and the storage, for a caller that must look at both after a crash.
    pub fn into_parts(self) -> (MemLedger, S) {
        (self.mem, self.store.into_storage())
    }

    /// The requests of the commit that failed, if one did: applied in memory, never answered,
    /// and on disk or not (a crash checker replays them onto the recovered ledger to compare).
    pub fn unacknowledged(&self) -> Vec<Entry> {
        self.unacknowledged
            .as_deref()
            .map(|body| codec::decode_group(body).expect("our own record decodes"))
            .unwrap_or_default()
    }

    /// Requests staged and not yet committed.
    pub fn staged(&self) -> u32 {
        self.staged_entries
    }

    /// Applies `batch` in memory and stages its entry; its results may be released only after
    /// [`DurableLedger::commit`] returns `Ok`.
    pub fn stage_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        self.check_running()?;
        let now = self.pin();
        let results = self.mem.create_accounts(batch)?;
        let failures = sparse(results.iter().map(|r| r.code()));
        self.stage(Entry {
            op: Op::CreateAccounts,
            now_ns: now,
            prepare_timestamp_after: self.mem.last_timestamp(),
            events: Events::Accounts(batch.to_vec()),
            failures,
        });
        Ok(results)
    }

    /// As [`DurableLedger::stage_accounts`], for transfers.
    pub fn stage_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        self.check_running()?;
        let now = self.pin();
        let results = self.mem.create_transfers(batch)?;
        let failures = sparse(results.iter().map(|r| r.code()));
        self.stage(Entry {
            op: Op::CreateTransfers,
            now_ns: now,
            prepare_timestamp_after: self.mem.last_timestamp(),
            events: Events::Transfers(batch.to_vec()),
            failures,
        });
        Ok(results)
    }

    /// Writes every staged entry as one record and returns once it is durable.
    pub fn commit(&mut self) -> Result<(), LedgerError> {
        self.check_running()?;
        if self.staged_entries == 0 {
            return Ok(());
        }
        let body = codec::group_body(self.staged_entries, &self.staged);
        let entries = self.staged_entries;
        self.staged.clear();
        self.staged_entries = 0;
        if let Err(e) = self.store.append(KIND_GROUP, &body) {
            self.unacknowledged = Some(body);
            return Err(self.stop(e));
        }
        self.stats.records += 1;
        self.stats.entries += u64::from(entries);
        self.stats.log_bytes += body.len() as u64;
        self.log_bytes_since_checkpoint += body.len() as u64;
        Ok(())
    }

    /// Takes a checkpoint if the policy says one is due. Call it after the answers of a commit
    /// have gone out: they are durable already and must not wait for a whole checkpoint. A
    /// failed checkpoint stops the ledger like any store error.
    pub fn maybe_checkpoint(&mut self) {
        let amplified = self
            .last_checkpoint_bytes
            .checked_div(self.config.checkpoint_amplification_max)
            .unwrap_or(0);
        let due_bytes = self.config.checkpoint_log_bytes.max(amplified);
        if self.failure.is_none()
            && self.staged_entries == 0
            && self.log_bytes_since_checkpoint >= due_bytes
        {
            // The error is kept in `failure`: every later call answers `Unavailable`.
            let _ = self.checkpoint_now();
        }
    }

    /// Checkpoints the whole state now (after committing anything staged) and drops the log
    /// segments no kept checkpoint needs.
    pub fn checkpoint_now(&mut self) -> Result<CheckpointReport, StoreError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        if self.staged_entries > 0 {
            self.commit()
                .map_err(|_| self.failure.clone().expect("commit failure recorded"))?;
        }
        let state = encode_state(&self.mem);
        match self.store.checkpoint(&state) {
            Ok(report) => {
                self.stats.checkpoints += 1;
                self.log_bytes_since_checkpoint = 0;
                self.last_checkpoint_bytes = state.len() as u64;
                Ok(report)
            }
            Err(e) => {
                self.stop(e.clone());
                Err(e)
            }
        }
    }

    fn pin(&self) -> u64 {
        let now = self.clock.now_ns();
        self.pinned.set(now);
        now
    }

    fn stage(&mut self, entry: Entry) {
        codec::encode_entry(&mut self.staged, &entry);
        self.staged_entries += 1;
    }

    fn stop(&mut self, e: StoreError) -> LedgerError {
        let reason = format!("durable ledger stopped: {e}");
        self.failure = Some(e);
        LedgerError::Unavailable { reason }
    }

    fn check_running(&self) -> Result<(), LedgerError> {
        match &self.failure {
            Some(e) => Err(LedgerError::Unavailable {
                reason: format!("durable ledger stopped: {e}"),
            }),
            None => Ok(()),
        }
    }

    /// Before a read: nothing staged stays unlogged, and a pulse that would change the state is
    /// logged before the read sees it.
    fn before_read(&mut self) -> Result<(), LedgerError> {
        self.commit()?;
        let now = self.pin();
        if self.mem.expiry_due() {
            self.mem.expire_due();
            self.stage(Entry {
                op: Op::Pulse,
                now_ns: now,
                prepare_timestamp_after: self.mem.last_timestamp(),
                events: Events::None,
                failures: Vec::new(),
            });
            self.commit()?;
        }
        Ok(())
    }
}

/// `(index, code)` of every result that is not ok (code 0).
fn sparse(codes: impl Iterator<Item = u32>) -> Vec<(u32, u32)> {
    codes
        .enumerate()
        .filter(|&(_, c)| c != 0)
        .map(|(i, c)| (i as u32, c))
        .collect()
}

pub(crate) fn encode_state(mem: &MemLedger) -> Vec<u8> {
    codec::encode_state(
        mem.accounts(),
        mem.transfers(),
        &mem.pending_status_codes(),
        &mem.failed_ids_sorted(),
        mem.last_timestamp(),
    )
}

impl<S: Storage> Ledger for DurableLedger<S> {
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        let results = self.stage_accounts(batch)?;
        self.commit()?;
        // In-process, the answer is returned after this; it is durable already.
        self.maybe_checkpoint();
        Ok(results)
    }

    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        let results = self.stage_transfers(batch)?;
        self.commit()?;
        // In-process, the answer is returned after this; it is durable already.
        self.maybe_checkpoint();
        Ok(results)
    }

    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        self.before_read()?;
        self.mem.lookup_accounts(ids)
    }

    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        self.before_read()?;
        self.mem.lookup_transfers(ids)
    }

    fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, LedgerError> {
        self.before_read()?;
        self.mem.get_account_transfers(filter)
    }

    fn query_transfers(&mut self, filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.before_read()?;
        self.mem.query_transfers(filter)
    }

    fn query_accounts(&mut self, filter: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        self.before_read()?;
        self.mem.query_accounts(filter)
    }
}

/// Rebuilds the ledger from a checkpoint and the log, checking every entry's outcome.
pub struct Replayer {
    pub mem: Option<MemLedger>,
    pub pinned: Arc<PinnedClock>,
    pub entries: u64,
    /// Bytes of record bodies applied since the checkpoint restored.
    pub bytes: u64,
    /// The size of the checkpoint restored (0 for none).
    pub checkpoint_bytes: u64,
}

impl Replayer {
    pub fn new() -> Replayer {
        Replayer {
            mem: None,
            pinned: Arc::new(PinnedClock::default()),
            entries: 0,
            bytes: 0,
            checkpoint_bytes: 0,
        }
    }
}

impl Default for Replayer {
    fn default() -> Replayer {
        Replayer::new()
    }
}

impl Replay for Replayer {
    fn restore(&mut self, _seq: u64, state: Option<&[u8]>) -> Result<(), String> {
        let mem = match state {
            None => MemLedger::new(self.pinned.clone()),
            Some(bytes) => MemLedger::from_state(self.pinned.clone(), codec::decode_state(bytes)?)?,
        };
        self.mem = Some(mem);
        self.bytes = 0;
        self.checkpoint_bytes = state.map_or(0, |b| b.len() as u64);
        Ok(())
    }

    fn apply(&mut self, _seq: u64, kind: u16, body: &[u8]) -> Result<(), String> {
        if kind != KIND_GROUP {
            return Err(format!("unknown record kind {kind}"));
        }
        let mem = self
            .mem
            .as_mut()
            .ok_or("a record before the state was restored")?;
        for entry in codec::decode_group(body)? {
            apply_entry(mem, &self.pinned, &entry)?;
            self.entries += 1;
        }
        self.bytes += body.len() as u64;
        Ok(())
    }
}

/// Applies one logged request at its clock reading and checks it has the logged outcome.
pub fn apply_entry(mem: &mut MemLedger, pinned: &PinnedClock, e: &Entry) -> Result<(), String> {
    pinned.set(e.now_ns);
    let err = |x: LedgerError| x.to_string();
    let failures = match &e.events {
        Events::Accounts(a) => sparse(
            mem.create_accounts(a)
                .map_err(err)?
                .iter()
                .map(|r| r.code()),
        ),
        Events::Transfers(t) => sparse(
            mem.create_transfers(t)
                .map_err(err)?
                .iter()
                .map(|r| r.code()),
        ),
        Events::None => {
            mem.expire_due();
            Vec::new()
        }
    };
    if failures != e.failures {
        return Err(format!(
            "{:?} replayed with results {:?}, logged {:?}",
            e.op,
            &failures[..failures.len().min(4)],
            &e.failures[..e.failures.len().min(4)]
        ));
    }
    if mem.last_timestamp() != e.prepare_timestamp_after {
        return Err(format!(
            "{:?} replayed to timestamp {}, logged {}",
            e.op,
            mem.last_timestamp(),
            e.prepare_timestamp_after
        ));
    }
    Ok(())
}
