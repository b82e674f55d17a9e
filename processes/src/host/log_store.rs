//! [`LogStore`]: a [`ProcessStore`] on the durable store's log (`acme-store`).
//!
//! Each record the host appends is one log record of kind [`KIND_RECORD`] (one write, one
//! fdatasync, then the superblock), and a group of them one of kind [`KIND_GROUP`]; a snapshot is a checkpoint of the store, which covers every
//! record before it, keeps the checkpoint before it as a fallback and removes the log segments
//! no kept checkpoint needs. Opening recovers the store: the newest checkpoint that verifies
//! (or the previous one, if the newest does not), then every record after it, a torn tail that
//! a crash left cut off, and anything that is corruption refused with its file, offset and
//! record number.
//!
//! `load` returns, the first time, what opening recovered (nothing is read twice). Any later
//! `load`, or the first one after an `append` or a `snapshot`, opens the store again from its
//! storage: what it returns is then exactly what is durable, even after a failed append left
//! the store stopped (an `acme-store` store that saw an error is unusable until it is opened
//! again). Loading is rare (a start, or a rebuild after a dead letter) and reads no more than
//! the records since the last snapshot, which the host's snapshot policy bounds; nothing is
//! kept in memory between loads. If that re-open fails the storage is gone with it (opening
//! consumes it): every later call fails, and the caller opens the storage again.
//!
//! Operators' tools open a process's store with [`LogStore::open_read_only`] on read-only
//! storage to read its records (dead letters, say) without a running host and without changing
//! a byte, a torn tail included. A tool that must add a record (a redrive) while the process is
//! stopped opens it with [`LogStore::open`] and calls [`ProcessStore::append`]: that is all an
//! operator record is.

use super::store::{Loaded, ProcessStore, StoreError};
use acme_store::record::BODY_MAX;
use acme_store::{Config, Recovery, Replay, Storage, Store};

/// The log record kind of a process record (`"PR"`): distinct from the durable ledger's kinds,
/// so a ledger's store opened as a process's is refused rather than misread.
pub const KIND_RECORD: u16 = u16::from_le_bytes(*b"PR");

/// An empty record written only so that a snapshot has a record of its own to cover (`"PM"`):
/// the store installs no checkpoint at record 0, nor a second one at the record the current
/// checkpoint covers. Recovery skips it.
pub const KIND_MARK: u16 = u16::from_le_bytes(*b"PM");

/// Several host records committed by one append (`"PG"`): a group commit (`log_group`).
pub const KIND_GROUP: u16 = u16::from_le_bytes(*b"PG");

/// A [`ProcessStore`] on an `acme-store` log in `S` (files, the simulator's disk, memory).
pub struct LogStore<S: Storage> {
    /// `None` only after a re-open failed and took the storage with it.
    store: Option<Store<S>>,
    config: Config,
    read_only: bool,
    /// What the last open found and did (`None` for a store just created).
    recovery: Option<Recovery>,
    /// What the last open recovered, until the first `load` takes it or a change outdates it.
    pending: Option<Loaded>,
    /// Why the store is gone, when a re-open failed.
    lost: Option<String>,
}

/// Segments of a process log are smaller than the ledger's: recovery reads the segment that
/// holds the snapshot's record from its start, so its size bounds what a start reads again.
/// At 8 MiB that re-read was most of a start on files (4 of 5 ms at 100,000 inputs); at 1 MiB
/// a segment still holds about 1,600 records, so starting one (a create and a directory sync)
/// stays rare beside the records' own syncs.
pub const JOURNAL_SEGMENT_BYTES_MAX: u64 = 1 << 20;

/// The store's limits for a process log.
pub fn journal_config() -> Config {
    Config {
        segment_bytes_max: JOURNAL_SEGMENT_BYTES_MAX,
    }
}

impl<S: Storage> LogStore<S> {
    /// A new, empty process log in storage that holds no store yet.
    pub fn create(storage: S, store_id: u128) -> Result<Self, StoreError> {
        LogStore::create_with(storage, store_id, journal_config())
    }

    /// [`LogStore::create`] with the store's limits (segment size) given.
    pub fn create_with(storage: S, store_id: u128, config: Config) -> Result<Self, StoreError> {
        let store = Store::create(storage, store_id, config).map_err(|e| fail("create", e))?;
        Ok(LogStore {
            store: Some(store),
            config,
            read_only: false,
            recovery: None,
            pending: Some(Loaded::default()),
            lost: None,
        })
    }

    /// Opens and recovers the process log in `storage` for appending: a torn tail is cut, and
    /// the first [`ProcessStore::load`] returns what was recovered without reading again.
    pub fn open(storage: S) -> Result<Self, StoreError> {
        LogStore::open_with(storage, journal_config())
    }

    /// [`LogStore::open`] with the store's limits (segment size) given.
    pub fn open_with(storage: S, config: Config) -> Result<Self, StoreError> {
        if storage.read_only() {
            return Err(StoreError::new(
                "process log: open: the storage is read-only; \
                 use LogStore::open_read_only to read it without appending",
            ));
        }
        LogStore::opened(storage, config, false)
    }

    /// Opens the process log in read-only `storage` (a tool's view: `FileStorage` opened with
    /// `Mode::ReadOnly`, or a `MemStorage` with `read_only` set) and recovers it without
    /// changing anything: a torn tail is reported in [`LogStore::recovery`] but left in place.
    /// `load` works; `append` and `snapshot` are refused.
    pub fn open_read_only(storage: S) -> Result<Self, StoreError> {
        if !storage.read_only() {
            return Err(StoreError::new(
                "process log: open read-only: the storage is writable and recovery would change \
                 it (cut a torn tail); open the storage read-only",
            ));
        }
        LogStore::opened(storage, journal_config(), true)
    }

    fn opened(storage: S, config: Config, read_only: bool) -> Result<Self, StoreError> {
        let (store, recovery, loaded) = open_store(storage, config).map_err(|e| fail("open", e))?;
        Ok(LogStore {
            store: Some(store),
            config,
            read_only,
            recovery: Some(recovery),
            pending: Some(loaded),
            lost: None,
        })
    }

    /// What the last open found and did: the checkpoint used (and a fallback, if the newest did
    /// not verify), the records replayed, a torn tail cut (or, read-only, found). `None` for a
    /// store this value created.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// Whether the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The storage, unless a failed re-open consumed it.
    pub fn storage(&self) -> Option<&S> {
        self.store.as_ref().map(Store::storage)
    }

    /// The storage back (a simulated crash keeps the disk and drops everything else), unless a
    /// failed re-open consumed it.
    pub fn into_storage(self) -> Option<S> {
        self.store.map(Store::into_storage)
    }

    fn lost_error(&self, what: &str) -> StoreError {
        StoreError::new(format!(
            "process log: {what}: the store is gone ({}); open its storage again",
            self.lost.as_deref().unwrap_or("a re-open failed")
        ))
    }

    fn writable(&mut self, what: &str) -> Result<&mut Store<S>, StoreError> {
        if self.read_only {
            return Err(StoreError::new(format!(
                "process log: {what}: opened read-only (an operator's view); \
                 open it with LogStore::open to change it"
            )));
        }
        match self.store.as_mut() {
            Some(store) => Ok(store),
            None => Err(StoreError::new(format!(
                "process log: {what}: the store is gone ({}); open its storage again",
                self.lost.as_deref().unwrap_or("a re-open failed")
            ))),
        }
    }
}

impl<S: Storage + Send> ProcessStore for LogStore<S> {
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        if record.len() > BODY_MAX as usize {
            return Err(StoreError::new(format!(
                "process log: append: a record of {} bytes exceeds the log's limit of {} bytes \
                 ({} MiB)",
                record.len(),
                BODY_MAX,
                BODY_MAX >> 20
            )));
        }
        // Whatever happens now, what open recovered is no longer the whole story.
        self.pending = None;
        let store = self.writable("append")?;
        store
            .append(KIND_RECORD, record)
            .map_err(|e| fail("append", e))?;
        Ok(())
    }

    fn append_group(&mut self, records: &[Vec<u8>]) -> Result<(), StoreError> {
        if let [record] = records {
            return self.append(record);
        }
        if let Some(record) = records.iter().find(|r| r.len() + 4 > BODY_MAX as usize) {
            return Err(StoreError::new(format!(
                "process log: append: a record of {} bytes in a group exceeds the log's limit \
                 of {} bytes with its frame",
                record.len(),
                BODY_MAX
            )));
        }
        self.pending = None;
        let store = self.writable("append")?;
        // Each body is atomic; a crash between two bodies leaves a prefix of the group, which
        // is a prefix of the host's steps: consistent, and nothing of it was acknowledged.
        for body in super::log_group::pack(records) {
            store
                .append(KIND_GROUP, &body)
                .map_err(|e| fail("append a group", e))?;
        }
        Ok(())
    }

    fn snapshot(&mut self, snapshot: &[u8]) -> Result<(), StoreError> {
        self.pending = None;
        let store = self.writable("snapshot")?;
        let report = store
            .checkpoint(snapshot)
            .map_err(|e| fail("snapshot", e))?;
        if report.seq == 0 {
            // No record since the current checkpoint (or none at all): the store kept the one
            // it has and ignored these bytes. Give the new snapshot a record of its own. A
            // crash between the two leaves a marker that recovery skips: no snapshot taken.
            store
                .append(KIND_MARK, &[])
                .map_err(|e| fail("snapshot marker", e))?;
            let report = store
                .checkpoint(snapshot)
                .map_err(|e| fail("snapshot", e))?;
            if report.seq == 0 {
                return Err(StoreError::new(
                    "process log: snapshot: the store installed no checkpoint",
                ));
            }
        }
        Ok(())
    }

    fn load(&mut self) -> Result<Loaded, StoreError> {
        if let Some(loaded) = self.pending.take() {
            return Ok(loaded);
        }
        let Some(store) = self.store.take() else {
            return Err(self.lost_error("load"));
        };
        match open_store(store.into_storage(), self.config) {
            Ok((store, recovery, loaded)) => {
                self.store = Some(store);
                self.recovery = Some(recovery);
                Ok(loaded)
            }
            Err(e) => {
                let e = fail("reopen", e);
                self.lost = Some(e.reason.clone());
                Err(e)
            }
        }
    }
}

/// Opens (recovers) the store and collects the checkpoint's state and the records after it.
fn open_store<S: Storage>(
    storage: S,
    config: Config,
) -> Result<(Store<S>, Recovery, Loaded), acme_store::StoreError> {
    let mut collect = Collect::default();
    let (store, recovery) = Store::open(storage, config, &mut collect)?;
    Ok((store, recovery, collect.loaded))
}

/// The host's error for a store's, saying what was being done. A corruption's message names
/// the file, the byte offset and the record (acme-store's `Display`).
fn fail(what: &str, e: acme_store::StoreError) -> StoreError {
    StoreError::new(format!("process log: {what}: {e}"))
}

/// Recovery's [`Replay`]: the checkpoint's state as the snapshot, then every record body.
#[derive(Default)]
struct Collect {
    loaded: Loaded,
}

impl Replay for Collect {
    fn restore(&mut self, _seq: u64, state: Option<&[u8]>) -> Result<(), String> {
        self.loaded = Loaded {
            snapshot: state.map(<[u8]>::to_vec),
            records: Vec::new(),
        };
        Ok(())
    }

    fn apply(&mut self, _seq: u64, kind: u16, body: &[u8]) -> Result<(), String> {
        match kind {
            KIND_RECORD => self.loaded.records.push(body.to_vec()),
            KIND_GROUP => self.loaded.records.extend(super::log_group::unpack(body)?),
            KIND_MARK if body.is_empty() => {}
            KIND_MARK => {
                return Err(format!(
                    "a snapshot marker with a {}-byte body (markers are empty)",
                    body.len()
                ))
            }
            other => {
                return Err(format!(
                    "record kind {other:#06x} is not a process record ({KIND_RECORD:#06x}): \
                     not a process's store"
                ))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acme_store::{MemStorage, StorageError, StorageErrorKind};

    fn small() -> Config {
        Config {
            segment_bytes_max: 1024,
        }
    }

    /// Record `i`: 40 bytes, different for every `i`.
    fn rec(i: u64) -> Vec<u8> {
        (0..40u64).map(|k| (i * 31 + k * 7) as u8).collect()
    }

    fn open(storage: MemStorage) -> Result<(LogStore<MemStorage>, Loaded), StoreError> {
        let mut log = LogStore::open_with(storage, small())?;
        let loaded = log.load()?;
        Ok((log, loaded))
    }

    fn segments(storage: &MemStorage) -> Vec<String> {
        let names = storage.files.keys();
        names.filter(|n| n.starts_with("log-")).cloned().collect()
    }

    #[test]
    fn round_trip_snapshot_then_records() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        assert_eq!(log.load().unwrap(), Loaded::default());
        for i in 1..=30 {
            log.append(&rec(i)).unwrap();
        }
        log.snapshot(b"state after 30").unwrap();
        for i in 31..=45 {
            log.append(&rec(i)).unwrap();
        }
        let storage = log.into_storage().unwrap();
        assert!(
            !segments(&storage).contains(&"log-00000000000000000001".to_string()),
            "the snapshot compacted covered segments: {:?}",
            segments(&storage)
        );
        let (mut log, loaded) = open(storage).unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"state after 30"[..]));
        assert_eq!(loaded.records, (31..=45).map(rec).collect::<Vec<_>>());
        assert_eq!(log.recovery().unwrap().checkpoint_seq, 30);
        // A later load reads the store again, and sees what was appended since.
        log.append(b"more").unwrap();
        let again = log.load().unwrap();
        assert_eq!(again.records.len(), 16);
        assert_eq!(again.records[15], b"more");
        // A snapshot leaves an empty tail.
        log.snapshot(b"state after 46").unwrap();
        let (_, loaded) = open(log.into_storage().unwrap()).unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"state after 46"[..]));
        assert!(loaded.records.is_empty());
    }

    #[test]
    fn a_snapshot_with_no_record_since_the_last_one_is_kept() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        log.snapshot(b"before any record").unwrap();
        let (mut log, loaded) = open(log.into_storage().unwrap()).unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"before any record"[..]));
        assert!(loaded.records.is_empty());
        log.append(&rec(1)).unwrap();
        log.snapshot(b"one").unwrap();
        log.snapshot(b"one, again").unwrap();
        let (_, loaded) = open(log.into_storage().unwrap()).unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"one, again"[..]));
        assert!(loaded.records.is_empty());
    }

    /// Tears the last record of the newest segment by `cut` bytes, as a crash during its write
    /// would: the record reached the segment but the superblock never named it.
    fn with_torn_append(before: &MemStorage, record: &[u8], cut: usize) -> MemStorage {
        let (mut log, _) = open(before.clone()).unwrap();
        log.append(record).unwrap();
        let after = log.into_storage().unwrap();
        let seg = segments(&after).pop().unwrap();
        let mut data = after.files[&seg].clone();
        data.truncate(data.len() - cut);
        let mut torn = before.clone();
        torn.files.insert(seg, data);
        torn
    }

    #[test]
    fn a_torn_last_record_is_cut_and_the_earlier_ones_kept() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        for i in 1..=10 {
            log.append(&rec(i)).unwrap();
        }
        log.snapshot(b"ten").unwrap();
        for i in 11..=14 {
            log.append(&rec(i)).unwrap();
        }
        let before = log.into_storage().unwrap();
        let torn = with_torn_append(&before, &rec(15), 5);

        // An operator's read-only view: the same records, the torn tail found and left alone.
        let mut ro = torn.clone();
        ro.read_only = true;
        let mut view = LogStore::open_read_only(ro).unwrap();
        assert_eq!(view.recovery().unwrap().torn.as_ref().unwrap().seq, 15);
        assert_eq!(
            view.load().unwrap().records,
            (11..=14).map(rec).collect::<Vec<_>>()
        );
        assert_eq!(view.into_storage().unwrap().files, torn.files);

        let (mut log, loaded) = open(torn).unwrap();
        let t = log
            .recovery()
            .unwrap()
            .torn
            .clone()
            .expect("torn tail reported");
        assert_eq!(t.seq, 15);
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"ten"[..]));
        assert_eq!(loaded.records, (11..=14).map(rec).collect::<Vec<_>>());
        // Cut for good: the log carries on from record 14.
        log.append(b"after the crash").unwrap();
        let (_, loaded) = open(log.into_storage().unwrap()).unwrap();
        let mut expected: Vec<Vec<u8>> = (11..=14).map(rec).collect();
        expected.push(b"after the crash".to_vec());
        assert_eq!(loaded.records, expected);
    }

    #[test]
    fn a_corrupt_middle_record_is_refused_with_file_and_offset() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        for i in 1..=8 {
            log.append(&rec(i)).unwrap();
        }
        let mut storage = log.into_storage().unwrap();
        let seg = "log-00000000000000000001".to_string();
        assert_eq!(segments(&storage), vec![seg.clone()]);
        // Each record is a 72-byte header and a 40-byte body: flip a body byte of record 4.
        let record_len = 72 + 40;
        let offset = 3 * record_len;
        storage.files.get_mut(&seg).unwrap()[offset + 72 + 9] ^= 0x10;
        let err = open(storage.clone()).err().expect("corruption refused");
        let expected = format!("{seg} at offset {offset} (record 4)");
        assert!(err.reason.contains(&expected), "{err}");
        assert!(err.reason.contains("checksum"), "{err}");
        // Read-only, the same refusal.
        storage.read_only = true;
        let err = LogStore::open_read_only(storage).err().expect("refused");
        assert!(err.reason.contains(&expected), "{err}");
    }

    #[test]
    fn a_corrupt_snapshot_falls_back_to_the_previous_one() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        for i in 1..=5 {
            log.append(&rec(i)).unwrap();
        }
        log.snapshot(b"five").unwrap();
        for i in 6..=9 {
            log.append(&rec(i)).unwrap();
        }
        log.snapshot(b"nine").unwrap();
        log.append(&rec(10)).unwrap();
        let mut storage = log.into_storage().unwrap();
        let current = "checkpoint-00000000000000000009";
        let cp = storage
            .files
            .get_mut(current)
            .expect("checkpoint file name");
        let n = cp.len();
        cp[n - 1] ^= 1;
        let (log, loaded) = open(storage).unwrap();
        assert!(log.recovery().unwrap().checkpoint_fallback.is_some());
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"five"[..]));
        assert_eq!(loaded.records, (6..=10).map(rec).collect::<Vec<_>>());
    }

    #[test]
    fn a_fallback_replays_past_a_snapshot_marker() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        for i in 1..=5 {
            log.append(&rec(i)).unwrap();
        }
        log.snapshot(b"five").unwrap();
        // No record since: this snapshot covers a marker record (6) of its own.
        log.snapshot(b"five, again").unwrap();
        log.append(&rec(7)).unwrap();
        let mut storage = log.into_storage().unwrap();
        let current = "checkpoint-00000000000000000006";
        let cp = storage
            .files
            .get_mut(current)
            .expect("checkpoint file name");
        let n = cp.len();
        cp[n - 1] ^= 1;
        // The previous snapshot, then the marker (skipped) and record 7.
        let (_, loaded) = open(storage).unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"five"[..]));
        assert_eq!(loaded.records, vec![rec(7)]);
    }

    #[test]
    fn a_load_after_a_change_reads_the_store_again() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        log.append(&rec(1)).unwrap();
        assert_eq!(log.load().unwrap().records, vec![rec(1)]);
        // Opened, then appended to before the first load: that load reads again.
        let mut log = LogStore::open_with(log.into_storage().unwrap(), small()).unwrap();
        log.append(&rec(2)).unwrap();
        assert_eq!(log.load().unwrap().records, vec![rec(1), rec(2)]);
        log.snapshot(b"two").unwrap();
        let loaded = log.load().unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"two"[..]));
        assert!(loaded.records.is_empty());
        assert_eq!(log.recovery().unwrap().checkpoint_seq, 2);
        // Twice in a row: the same.
        assert_eq!(log.load().unwrap(), loaded);
    }

    #[test]
    fn a_record_over_16_mib_is_refused() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        let big = vec![0u8; BODY_MAX as usize + 1];
        let err = log.append(&big).unwrap_err();
        assert!(err.reason.contains("16777217 bytes"), "{err}");
        assert!(err.reason.contains("16777216 bytes"), "{err}");
        // Nothing happened, and the store carries on.
        log.append(b"small").unwrap();
        let (_, loaded) = open(log.into_storage().unwrap()).unwrap();
        assert_eq!(loaded.records, vec![b"small".to_vec()]);
    }

    #[test]
    fn read_only_reads_refuses_changes_and_an_operator_appends_while_stopped() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        log.append(b"dead letter 1").unwrap();
        log.append(b"dead letter 2").unwrap();
        let mut storage = log.into_storage().unwrap();
        // The process is stopped; a tool lists what its log holds.
        let err = LogStore::open_read_only(storage.clone()).err().unwrap();
        assert!(err.reason.contains("writable"), "{err}");
        storage.read_only = true;
        let err = LogStore::open_with(storage.clone(), small()).err().unwrap();
        assert!(err.reason.contains("read-only"), "{err}");
        let mut view = LogStore::open_read_only(storage.clone()).unwrap();
        assert_eq!(view.load().unwrap().records.len(), 2);
        assert!(view.append(b"x").unwrap_err().reason.contains("read-only"));
        assert!(view
            .snapshot(b"x")
            .unwrap_err()
            .reason
            .contains("read-only"));
        assert_eq!(view.load().unwrap().records.len(), 2);
        // The tool opens it for writing and appends a redrive record: just an append.
        storage.read_only = false;
        let (mut tool, _) = open(storage).unwrap();
        tool.append(b"redrive 1").unwrap();
        // The host starts again and finds it last.
        let (_, loaded) = open(tool.into_storage().unwrap()).unwrap();
        assert_eq!(loaded.records[2], b"redrive 1");
    }

    #[test]
    fn another_kind_of_store_is_refused() {
        let mut store = Store::create(MemStorage::new(), 7, small()).unwrap();
        store.append(1, b"a ledger batch").unwrap();
        let err = open(store.into_storage()).err().unwrap();
        assert!(err.reason.contains("not a process record"), "{err}");
        let err = open(MemStorage::new()).err().unwrap();
        assert!(err.reason.contains("not a store"), "{err}");
    }

    /// Memory storage that crashes after `budget` changes (writes, syncs, renames, removes): the
    /// write the crash interrupts keeps only its first half, and nothing after it happens.
    struct Crashing {
        inner: MemStorage,
        budget: usize,
    }

    impl Crashing {
        fn spend(&mut self, op: &'static str, file: &str) -> Result<bool, StorageError> {
            if self.budget == 0 {
                return Err(StorageError::new(
                    StorageErrorKind::Crashed,
                    op,
                    file,
                    0,
                    "crashed",
                ));
            }
            self.budget -= 1;
            Ok(self.budget == 0)
        }
    }

    impl Storage for Crashing {
        fn read_at(&mut self, f: &str, o: u64, b: &mut [u8]) -> Result<usize, StorageError> {
            self.inner.read_at(f, o, b)
        }
        fn write_at(&mut self, f: &str, o: u64, d: &[u8]) -> Result<(), StorageError> {
            if self.spend("write", f)? {
                // The last change before the crash: torn.
                self.inner.write_at(f, o, &d[..d.len() / 2])?;
                return Err(StorageError::new(
                    StorageErrorKind::Crashed,
                    "write",
                    f,
                    o,
                    "torn",
                ));
            }
            self.inner.write_at(f, o, d)
        }
        fn sync(&mut self, f: &str) -> Result<(), StorageError> {
            self.spend("sync", f)?;
            self.inner.sync(f)
        }
        fn truncate(&mut self, f: &str, len: u64) -> Result<(), StorageError> {
            self.spend("truncate", f)?;
            self.inner.truncate(f, len)
        }
        fn size(&mut self, f: &str) -> Result<u64, StorageError> {
            self.inner.size(f)
        }
        fn list(&mut self) -> Result<Vec<String>, StorageError> {
            self.inner.list()
        }
        fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
            self.spend("rename", from)?;
            self.inner.rename(from, to)
        }
        fn remove(&mut self, f: &str) -> Result<(), StorageError> {
            self.spend("remove", f)?;
            self.inner.remove(f)
        }
        fn sync_dir(&mut self) -> Result<(), StorageError> {
            self.spend("sync_dir", ".")?;
            self.inner.sync_dir()
        }
        fn read_only(&self) -> bool {
            false
        }
    }

    enum Op {
        Append(Vec<u8>),
        Snapshot(Vec<u8>),
    }

    /// What a load returns after `ops` all happened, from `start`.
    fn after(start: &Loaded, ops: &[Op]) -> Loaded {
        let mut l = start.clone();
        for op in ops {
            match op {
                Op::Append(r) => l.records.push(r.clone()),
                Op::Snapshot(s) => {
                    l.snapshot = Some(s.clone());
                    l.records.clear();
                }
            }
        }
        l
    }

    #[test]
    fn a_crash_at_any_point_leaves_each_call_done_entirely_or_not_at_all() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        for i in 1..=6 {
            log.append(&rec(i)).unwrap();
        }
        log.snapshot(b"six").unwrap();
        log.append(&rec(7)).unwrap();
        let base = log.into_storage().unwrap();
        let (_, start) = open(base.clone()).unwrap();
        let mut ops = Vec::new();
        for i in 8..=45 {
            ops.push(Op::Append(rec(i)));
            if i % 9 == 0 {
                ops.push(Op::Snapshot(format!("state after {i}").into_bytes()));
            }
        }
        ops.push(Op::Snapshot(b"again, no record between".to_vec()));
        let (mut budget, mut happened, mut not_happened) = (0, 0, 0);
        loop {
            let storage = Crashing {
                inner: base.clone(),
                budget: usize::MAX,
            };
            let mut log = LogStore::open_with(storage, small()).unwrap();
            log.store.as_mut().unwrap().storage_mut().budget = budget;
            let mut done = 0;
            for op in &ops {
                let r = match op {
                    Op::Append(r) => log.append(r),
                    Op::Snapshot(s) => log.snapshot(s),
                };
                if r.is_err() {
                    break;
                }
                done += 1;
            }
            // The power comes back: the host loads again, which opens the store again in place.
            log.store.as_mut().unwrap().storage_mut().budget = usize::MAX;
            let loaded = log
                .load()
                .unwrap_or_else(|e| panic!("crash after {budget} changes: recovery failed: {e}"));
            let disk = log.into_storage().unwrap().inner;
            let (mut reopened, fresh) = open(disk).unwrap();
            assert_eq!(fresh, loaded, "a fresh open recovers the same");
            let without = after(&start, &ops[..done]);
            if done == ops.len() {
                assert_eq!(loaded, without);
                break;
            }
            let with = after(&start, &ops[..done + 1]);
            if loaded == with {
                happened += 1;
            } else {
                assert!(
                    loaded == without,
                    "crash after {budget} changes, during call {done}: neither before nor after it"
                );
                not_happened += 1;
            }
            // The recovered log carries on.
            reopened.append(b"next").unwrap();
            let again = reopened.load().unwrap();
            assert_eq!(again.records.last().map(Vec::as_slice), Some(&b"next"[..]));
            budget += 1;
        }
        assert!(budget > 100, "{budget} crash points");
        // A call cut short by a crash can turn out done: an append whose record reached the
        // segment before the superblock was updated, a snapshot whose superblock was updated
        // before the covered segments were removed.
        assert!(
            happened > 0 && not_happened > 0,
            "{happened} / {not_happened}"
        );
    }

    #[test]
    fn a_failed_reopen_leaves_a_store_that_says_so() {
        let mut log = LogStore::create_with(MemStorage::new(), 7, small()).unwrap();
        log.append(&rec(1)).unwrap();
        let storage = Crashing {
            inner: log.into_storage().unwrap(),
            budget: usize::MAX,
        };
        let mut log = LogStore::open_with(storage, small()).unwrap();
        log.store.as_mut().unwrap().storage_mut().budget = 0;
        let err = log.append(&rec(2)).unwrap_err();
        assert!(
            err.reason.starts_with("process log: append: storage error"),
            "{err}"
        );
        // The power stays off: opening again fails, and the storage went with it.
        let err = log.load().unwrap_err();
        assert!(err.reason.starts_with("process log: reopen: "), "{err}");
        let err = log.append(&rec(2)).unwrap_err();
        assert!(err.reason.contains("the store is gone"), "{err}");
        assert!(log.load().unwrap_err().reason.contains("the store is gone"));
        assert!(log.into_storage().is_none());
    }
}
