//! [`Store`]: appending records durably, installing checkpoints, and opening (recovering) a store.
//!
//! An append is one record, one write, one fdatasync of its segment, then the superblock's two
//! copies (write, sync, write, sync); only then does `append` return. Group commit is the
//! caller's: it puts every batch that arrived while the previous append was on its way into the
//! next record's body, so they share one write and one fdatasync. Any storage error stops the
//! store for good: the caller opens it again, which recovers it (never retry an fsync).

use crate::chain;
use crate::checkpoint::{self, CheckpointHeader};
use crate::error::{Corruption, StoreError};
use crate::record::{self, RecordHeader, BODY_MAX};
use crate::scan::{self, ScanFrom, Segment, TornTail};
use crate::storage::{read_exact_at, Storage, StorageError, StorageErrorKind};
use crate::superblock::{self, CheckpointRef, Copies, CopyState, Superblock};

/// Limits of one store.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// A segment is closed and a new one started once it would grow past this.
    pub segment_bytes_max: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            segment_bytes_max: 64 << 20,
        }
    }
}

/// The head of the hash chain: the last record and its checksum. An auditor who writes it down
/// can later prove that nothing up to it changed (`verify` with `since`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub checksum: u128,
}

impl core::fmt::Display for ChainHead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{:032x}", self.seq, self.checksum)
    }
}

impl core::str::FromStr for ChainHead {
    type Err = String;
    fn from_str(s: &str) -> Result<ChainHead, String> {
        let (seq, sum) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not SEQ:CHECKSUM"))?;
        let seq = seq
            .parse::<u64>()
            .map_err(|e| format!("sequence `{seq}`: {e}"))?;
        if sum.len() != 32 {
            return Err(format!("checksum `{sum}`: expected 32 hex digits"));
        }
        let checksum =
            u128::from_str_radix(sum, 16).map_err(|e| format!("checksum `{sum}`: {e}"))?;
        Ok(ChainHead { seq, checksum })
    }
}

/// What the store's user does with what recovery reads back.
pub trait Replay {
    /// Start from this checkpoint's state (`None`: the empty state before record 1).
    fn restore(&mut self, seq: u64, state: Option<&[u8]>) -> Result<(), String>;
    /// Apply one record, in order.
    fn apply(&mut self, seq: u64, kind: u16, body: &[u8]) -> Result<(), String>;
}

/// What recovery found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    pub superblock: Superblock,
    /// A superblock copy that did not verify or lagged, and why (recovery used the other).
    pub superblock_note: Option<String>,
    pub checkpoint_seq: u64,
    /// The current checkpoint did not verify, so the previous one was used.
    pub checkpoint_fallback: Option<Corruption>,
    /// Records applied after the checkpoint.
    pub replayed: u64,
    pub head: ChainHead,
    /// Valid records past the superblock's boundary (written, never acknowledged), kept.
    pub unacknowledged: u64,
    /// The torn tail a crash left: cut off (or, read-only, what opening for writing would cut).
    pub torn: Option<TornTail>,
    pub segments: Vec<Segment>,
}

/// A store open for appending (or read-only, refusing appends).
pub struct Store<S: Storage> {
    storage: S,
    config: Config,
    sb: Superblock,
    /// The segment the next record goes to, whether it exists yet, and the offset.
    segment_first: u64,
    segment_exists: bool,
    end_offset: u64,
    head: ChainHead,
    stopped: bool,
    /// The checkpoint recovery fell back to when the current one did not verify: the next
    /// checkpoint keeps it (not the bad one) as its fallback.
    fallback_used: Option<CheckpointRef>,
}

impl<S: Storage> Store<S> {
    /// A new, empty store in storage that holds no store yet.
    pub fn create(mut storage: S, store_id: u128, config: Config) -> Result<Store<S>, StoreError> {
        let existing: Vec<String> = storage
            .list()?
            .into_iter()
            .filter(|n| {
                n == superblock::FILE
                    || record::parse_segment_name(n).is_some()
                    || n.starts_with("checkpoint-")
            })
            .collect();
        if !existing.is_empty() {
            return Err(StoreError::NotAStore {
                reason: format!("a store already exists here ({})", existing.join(", ")),
            });
        }
        let sb = Superblock {
            update: 0,
            store_id,
            log_seq: 0,
            log_head: 0,
            log_segment: 1,
            log_end: 0,
            checkpoint: None,
            previous: None,
        };
        let mut store = Store {
            storage,
            config,
            sb,
            segment_first: 1,
            segment_exists: false,
            end_offset: 0,
            head: ChainHead::default(),
            stopped: false,
            fallback_used: None,
        };
        // Both copies go to a temporary file that is renamed into place: a `superblock` file
        // always holds two whole copies, so a create cut short leaves no half-made store.
        let tmp = format!("{}.tmp", superblock::FILE);
        let mut first = sb;
        first.update = 1;
        let mut bytes = Vec::with_capacity(superblock::COPY_SIZE * superblock::COPIES);
        for copy in 0..superblock::COPIES {
            bytes.extend_from_slice(&first.encode(copy as u16));
        }
        let r = store
            .storage
            .write_at(&tmp, 0, &bytes)
            .and_then(|_| store.storage.sync(&tmp))
            .and_then(|_| store.storage.rename(&tmp, superblock::FILE))
            .and_then(|_| store.storage.sync_dir());
        store.guard(r)?;
        store.sb = first;
        Ok(store)
    }

    /// Opens and recovers a store: see [`Recovery`]. Read-only storage is never changed.
    pub fn open(
        mut storage: S,
        config: Config,
        replay: &mut dyn Replay,
    ) -> Result<(Store<S>, Recovery), StoreError> {
        // The same first step as the read-only stream takes (`stream::locate`).
        let crate::stream::Located {
            superblock: sb,
            superblock_note,
            segments: segs,
            ..
        } = crate::stream::locate(&mut storage)?;
        let (cp, checkpoint_fallback) = restore_checkpoint(&mut storage, &sb, replay)?;
        let from = scan_from(&segs, &sb, cp)?;
        let mut replayed = 0;
        let end = scan::scan(&mut storage, &segs, from, &mut |seq, kind, body| {
            replayed += 1;
            replay.apply(seq, kind, body)
        })?;
        let (last_seq, head) = if end.records > 0 {
            (end.last_seq, end.head)
        } else {
            (cp.map_or(0, |c| c.seq), cp.map_or(0, |c| c.head))
        };
        let recovery = Recovery {
            superblock: sb,
            superblock_note,
            checkpoint_seq: cp.map_or(0, |c| c.seq),
            checkpoint_fallback,
            replayed,
            head: ChainHead {
                seq: last_seq,
                checksum: head,
            },
            unacknowledged: last_seq.saturating_sub(sb.log_seq),
            torn: end.torn.clone(),
            segments: segs.clone(),
        };
        let (segment_first, segment_exists, end_offset) = if end.records > 0 {
            (segs[end.segment].first_seq, true, end.end_offset)
        } else {
            (last_seq + 1, false, 0)
        };
        let mut store = Store {
            storage,
            config,
            sb,
            segment_first,
            segment_exists,
            end_offset,
            head: recovery.head,
            stopped: false,
            fallback_used: None,
        };
        if recovery.checkpoint_fallback.is_some() {
            store.fallback_used = sb.previous;
        }
        if !store.storage.read_only() {
            store.settle_after_recovery(&recovery)?;
        }
        Ok((store, recovery))
    }

    /// After recovery, for writing: cut the torn tail, remove leftovers, make everything that
    /// will be relied on durable (we do not know whether it was synced before the crash), and
    /// rewrite the superblock if it lagged or a copy was bad.
    fn settle_after_recovery(&mut self, recovery: &Recovery) -> Result<(), StoreError> {
        if let Some(torn) = &recovery.torn {
            let r = if torn.offset == 0 {
                self.storage.remove(&torn.file)
            } else {
                self.storage
                    .truncate(&torn.file, torn.offset)
                    .and_then(|_| self.storage.sync(&torn.file))
            };
            self.guard(r)?;
            for later in &torn.later_segments {
                let r = self.storage.remove(later);
                self.guard(r)?;
            }
        }
        // A compaction a crash interrupted leaves a partial last header, or an unsynced append
        // torn anywhere: both name records still in the log, and both are cut.
        let first_live = scan::segments(&mut self.storage)?
            .first()
            .map(|s| s.first_seq);
        // A damaged archive is not needed to recover the ledger: opening carries on, and
        // `verify` reports it.
        let archive = match chain::read_tail(&mut self.storage, first_live) {
            Err(StoreError::Corrupt(_)) => chain::Archive::default(),
            other => other?,
        };
        if archive.torn_bytes > 0 || archive.torn_from.is_some() {
            let r = self
                .storage
                .truncate(chain::FILE, archive.intact_len())
                .and_then(|_| self.storage.sync(chain::FILE));
            self.guard(r)?;
        }
        for name in self.storage.list()? {
            if name.starts_with("checkpoint-") && name.ends_with(".tmp") {
                let r = self.storage.remove(&name);
                self.guard(r)?;
            }
        }
        if self.segment_exists {
            let r = self.storage.sync(&record::segment_name(self.segment_first));
            self.guard(r)?;
        }
        let r = self
            .storage
            .sync(superblock::FILE)
            .and_then(|_| self.storage.sync_dir());
        self.guard(r)?;
        if recovery.unacknowledged > 0 || recovery.superblock_note.is_some() {
            let mut sb = self.sb;
            sb.log_seq = self.head.seq;
            sb.log_head = self.head.checksum;
            sb.log_segment = self.segment_first;
            sb.log_end = self.end_offset;
            self.write_superblock(sb)?;
        }
        Ok(())
    }

    /// Appends one record and returns once it is durable. The body is opaque to the store.
    pub fn append(&mut self, kind: u16, body: &[u8]) -> Result<ChainHead, StoreError> {
        if self.stopped {
            return Err(StoreError::Stopped);
        }
        if body.len() > BODY_MAX as usize {
            return Err(StoreError::TooLarge {
                len: body.len(),
                max: BODY_MAX,
            });
        }
        let seq = self.head.seq + 1;
        let header = RecordHeader::new(seq, self.head.checksum, kind, body);
        if self.segment_exists
            && self.end_offset > 0
            && self.end_offset + header.record_len() > self.config.segment_bytes_max
        {
            self.segment_first = seq;
            self.segment_exists = false;
            self.end_offset = 0;
        }
        let name = record::segment_name(self.segment_first);
        let r = self
            .storage
            .write_at(&name, self.end_offset, &header.frame(body));
        self.guard(r)?;
        let r = self.storage.sync(&name);
        self.guard(r)?;
        if !self.segment_exists {
            let r = self.storage.sync_dir();
            self.guard(r)?;
            self.segment_exists = true;
        }
        self.end_offset += header.record_len();
        self.head = ChainHead {
            seq,
            checksum: header.checksum,
        };
        let mut sb = self.sb;
        sb.log_seq = seq;
        sb.log_head = header.checksum;
        sb.log_segment = self.segment_first;
        sb.log_end = self.end_offset;
        self.write_superblock(sb)?;
        Ok(self.head)
    }

    /// Installs a checkpoint of `state`, which must be the state after the last record: written
    /// to a temporary file, synced, renamed, the directory synced, read back and verified, then
    /// named by the superblock. The checkpoint before it is kept as a fallback; older
    /// checkpoints and the segments no kept checkpoint needs are removed.
    pub fn checkpoint(&mut self, state: &[u8]) -> Result<CheckpointReport, StoreError> {
        if self.stopped {
            return Err(StoreError::Stopped);
        }
        let seq = self.head.seq;
        if seq == 0 || self.sb.checkpoint.is_some_and(|c| c.seq == seq) {
            return Ok(CheckpointReport::default());
        }
        let name = checkpoint::file_name(seq);
        let tmp = format!("{name}.tmp");
        if self.storage.list()?.contains(&tmp) {
            let r = self.storage.remove(&tmp);
            self.guard(r)?;
        }
        let (store_id, head) = (self.sb.store_id, self.head.checksum);
        let r = checkpoint::write(&mut self.storage, &tmp, store_id, seq, head, state);
        let header = self.guard(r)?;
        let r = self.storage.sync(&tmp);
        self.guard(r)?;
        let r = self
            .storage
            .rename(&tmp, &name)
            .and_then(|_| self.storage.sync_dir());
        self.guard(r)?;
        // Read back before the superblock names it: a disk that misplaced or mangled the write
        // is caught now, while the previous checkpoint still stands.
        let read_back = checkpoint::verify_file(&mut self.storage, &name);
        if read_back.is_err() {
            self.stopped = true;
        }
        assert_eq!(
            read_back?, header,
            "checkpoint {name} read back differs from what was written"
        );
        let mut sb = self.sb;
        sb.previous = self.fallback_used.take().or(sb.checkpoint);
        sb.checkpoint = Some(CheckpointRef {
            seq,
            checksum: header.checksum,
        });
        self.write_superblock(sb)?;
        let mut report = self.remove_uncovered()?;
        report.seq = seq;
        report.bytes = header.file_len();
        Ok(report)
    }

    /// Removes checkpoints other than the two the superblock names, and segments that hold only
    /// records before the oldest kept checkpoint's.
    fn remove_uncovered(&mut self) -> Result<CheckpointReport, StoreError> {
        let keep: Vec<u64> = [self.sb.checkpoint, self.sb.previous]
            .into_iter()
            .flatten()
            .map(|c| c.seq)
            .collect();
        let oldest = keep.iter().copied().min().unwrap_or(0);
        let mut report = CheckpointReport::default();
        for name in self.storage.list()? {
            if let Some(seq) = checkpoint::parse_file_name(&name) {
                if !keep.contains(&seq) && name == checkpoint::file_name(seq) {
                    let r = self.storage.remove(&name);
                    self.guard(r)?;
                    report.removed_checkpoints.push(name);
                }
            }
        }
        let segs = scan::segments(&mut self.storage)?;
        // The segment holding the oldest kept checkpoint's record stays: recovery starts there.
        let doomed: Vec<&Segment> = segs
            .windows(2)
            .filter(|pair| pair[1].first_seq <= oldest)
            .map(|pair| &pair[0])
            .collect();
        if !doomed.is_empty() {
            // Their headers go to the chain archive, durably, before the segments go.
            // Only the archive's end is read: compaction costs what it removes, not all history.
            let first_doomed = doomed.first().map(|seg| seg.first_seq);
            let mut archive = chain::read_tail(&mut self.storage, first_doomed)?;
            let created = archive.last_seq == 0;
            for seg in &doomed {
                let r = chain::append_segment(&mut self.storage, &mut archive, seg);
                if r.is_err() {
                    self.stopped = true;
                }
                report.archived_headers += r?;
            }
            let r = self.storage.sync(chain::FILE);
            self.guard(r)?;
            if created {
                let r = self.storage.sync_dir();
                self.guard(r)?;
            }
        }
        for seg in doomed {
            let r = self.storage.remove(&seg.name);
            self.guard(r)?;
            report.removed_segments.push(seg.name.clone());
        }
        let r = self.storage.sync_dir();
        self.guard(r)?;
        Ok(report)
    }

    fn write_superblock(&mut self, mut sb: Superblock) -> Result<(), StoreError> {
        sb.update = self.sb.update + 1;
        for copy in 0..superblock::COPIES {
            let bytes = sb.encode(copy as u16);
            let offset = (copy * superblock::COPY_SIZE) as u64;
            let r = self
                .storage
                .write_at(superblock::FILE, offset, &bytes)
                .and_then(|_| self.storage.sync(superblock::FILE));
            self.guard(r)?;
        }
        self.sb = sb;
        Ok(())
    }

    /// Any storage error stops the store: what the device holds is unknown until recovery.
    fn guard<T>(&mut self, r: Result<T, StorageError>) -> Result<T, StoreError> {
        if r.is_err() {
            self.stopped = true;
        }
        r.map_err(StoreError::Storage)
    }

    pub fn head(&self) -> ChainHead {
        self.head
    }

    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Bytes of log written since the current checkpoint (a checkpoint policy reads this).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    pub fn into_storage(self) -> S {
        self.storage
    }
}

/// What a checkpoint installed and removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    pub seq: u64,
    pub bytes: u64,
    pub removed_checkpoints: Vec<String>,
    pub removed_segments: Vec<String>,
    /// Headers of removed records added to the chain archive.
    pub archived_headers: u64,
}

/// The checkpoint recovery starts from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UsedCheckpoint {
    pub seq: u64,
    pub head: u128,
}

pub(crate) fn read_superblock(storage: &mut dyn Storage) -> Result<Copies, StoreError> {
    let mut bytes = vec![0u8; superblock::COPY_SIZE * superblock::COPIES];
    let n = match read_exact_at(storage, superblock::FILE, 0, &mut bytes) {
        Ok(n) => n,
        Err(e) if e.kind == StorageErrorKind::NotFound => {
            let names = storage.list()?;
            if names
                .iter()
                .any(|n| record::parse_segment_name(n).is_some())
            {
                return Err(StoreError::Corrupt(Corruption {
                    file: superblock::FILE.into(),
                    offset: 0,
                    seq: None,
                    reason: "the superblock is missing but log segments are present".into(),
                }));
            }
            return Err(StoreError::NotAStore {
                reason: "no superblock file".into(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    bytes.truncate(n);
    Ok(Copies::decode(&bytes))
}

pub(crate) fn superblock_note(copies: &Copies, sb: &Superblock) -> Option<String> {
    let mut notes = Vec::new();
    for (i, slot) in copies.slots.iter().enumerate() {
        match slot {
            CopyState::Invalid { reason } => notes.push(format!("copy {i}: {reason}")),
            CopyState::Valid(c) if c.update != sb.update => notes.push(format!(
                "copy {i}: update {} behind {}",
                c.update, sb.update
            )),
            CopyState::Valid(_) => {}
        }
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// The newest named checkpoint that verifies, handed to `replay`.
pub(crate) fn restore_checkpoint(
    storage: &mut dyn Storage,
    sb: &Superblock,
    replay: &mut dyn Replay,
) -> Result<(Option<UsedCheckpoint>, Option<Corruption>), StoreError> {
    let candidates: Vec<CheckpointRef> =
        [sb.checkpoint, sb.previous].into_iter().flatten().collect();
    if candidates.is_empty() {
        replay
            .restore(0, None)
            .map_err(|reason| StoreError::Replay { seq: 0, reason })?;
        return Ok((None, None));
    }
    let mut first_failure: Option<Corruption> = None;
    for c in candidates {
        match read_named_checkpoint(storage, sb, c) {
            Ok((header, state)) => {
                replay
                    .restore(header.seq, Some(&state))
                    .map_err(|reason| StoreError::Replay {
                        seq: header.seq,
                        reason,
                    })?;
                let used = UsedCheckpoint {
                    seq: header.seq,
                    head: header.head,
                };
                return Ok((Some(used), first_failure));
            }
            Err(StoreError::Corrupt(c)) => {
                first_failure.get_or_insert(c);
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Corrupt(
        first_failure.expect("a candidate failed"),
    ))
}

pub(crate) fn read_named_checkpoint(
    storage: &mut dyn Storage,
    sb: &Superblock,
    c: CheckpointRef,
) -> Result<(CheckpointHeader, Vec<u8>), StoreError> {
    let name = checkpoint::file_name(c.seq);
    let corrupt = |reason: String| {
        StoreError::Corrupt(Corruption {
            file: name.clone(),
            offset: 0,
            seq: Some(c.seq),
            reason,
        })
    };
    let (header, state) = match checkpoint::read(storage, &name) {
        Err(StoreError::Storage(e)) if e.kind == StorageErrorKind::NotFound => {
            return Err(corrupt(
                "the checkpoint the superblock names is missing".into(),
            ))
        }
        other => other?,
    };
    if header.checksum != c.checksum || header.seq != c.seq || header.store_id != sb.store_id {
        return Err(corrupt("not the checkpoint the superblock names".into()));
    }
    Ok((header, state))
}

/// Where the scan starts: the segment holding the checkpoint's record (or the first).
pub(crate) fn scan_from(
    segs: &[Segment],
    sb: &Superblock,
    cp: Option<UsedCheckpoint>,
) -> Result<ScanFrom, StoreError> {
    let anchor = cp.map_or(0, |c| c.seq);
    let segment = if anchor == 0 {
        0
    } else {
        segs.iter()
            .rposition(|s| s.first_seq <= anchor)
            .ok_or_else(|| {
                StoreError::Corrupt(Corruption {
                    file: record::segment_name(anchor),
                    offset: 0,
                    seq: Some(anchor),
                    reason: format!(
                        "no log segment holds record {anchor}, which the checkpoint covers"
                    ),
                })
            })?
    };
    if anchor == 0 && segs.first().is_some_and(|s| s.first_seq != 1) {
        return Err(StoreError::Corrupt(Corruption {
            file: segs[0].name.clone(),
            offset: 0,
            seq: Some(1),
            reason:
                "the log must start at record 1 when no checkpoint covers the records before it"
                    .into(),
        }));
    }
    Ok(ScanFrom {
        segment,
        apply_from: anchor + 1,
        anchor: cp.filter(|c| c.seq > 0).map(|c| (c.seq, c.head)),
        durable: (sb.log_seq > 0).then_some((sb.log_seq, sb.log_head)),
        watch: None,
    })
}
