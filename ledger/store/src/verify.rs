//! Verification: every checksum of every file, the chain from the first retained record to the
//! last, and a replay from the checkpoint, on storage opened read-only. Unlike recovery, which
//! carries on when a redundant copy lets it, verification reports every bad byte it can find.

use crate::chain;
use crate::checkpoint;
use crate::error::{Corruption, StoreError};
use crate::scan::{self, Segment, TornTail};
use crate::storage::Storage;
use crate::store::{self, ChainHead, Replay};
use crate::superblock::{self, CopyState, Superblock};

/// One checkpoint file and whether it verifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointFile {
    pub name: String,
    pub seq: u64,
    pub bytes: u64,
    pub named_by_superblock: bool,
    pub ok: bool,
}

/// Everything verification found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub superblock: Option<Superblock>,
    pub checkpoints: Vec<CheckpointFile>,
    pub segments: Vec<Segment>,
    /// The checkpoint the replay started from (0: none).
    pub checkpoint_seq: u64,
    /// The last record whose header is in the chain archive (its segment was compacted away).
    pub archived: u64,
    /// The first retained record, and how many records (and bytes) the log holds.
    pub first_seq: u64,
    pub records: u64,
    pub log_bytes: u64,
    pub replayed: u64,
    pub head: ChainHead,
    /// What recovery would cut (not corruption).
    pub torn: Option<TornTail>,
    /// Findings that are not corruption (a superblock write a crash tore, leftovers).
    pub notes: Vec<String>,
    pub corruptions: Vec<Corruption>,
    /// The outcome of checking an auditor's earlier chain head.
    pub since: Option<Result<String, String>>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.corruptions.is_empty() && !matches!(self.since, Some(Err(_)))
    }
}

/// Verifies the store in `storage` (which should be read-only), replaying it into `replay`.
/// `Err` only when there is no store at all or the storage itself fails.
pub fn verify(
    storage: &mut dyn Storage,
    replay: &mut dyn Replay,
    since: Option<ChainHead>,
) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let copies = store::read_superblock(storage)?;
    for (i, slot) in copies.slots.iter().enumerate() {
        if let CopyState::Invalid { reason } = slot {
            // A crash never shrinks the file (it is made whole by a rename), so a short copy
            // is damage; a whole copy that a crash tore looks like garbage, not like a flip.
            let short = copies.raw[i].len() != superblock::COPY_SIZE;
            if short
                || copies.looks_flipped(i)
                || matches!(copies.slots[1 - i], CopyState::Invalid { .. })
            {
                report.corruptions.push(Corruption {
                    file: superblock::FILE.into(),
                    offset: (i * superblock::COPY_SIZE) as u64,
                    seq: None,
                    reason: format!("superblock copy {i}: {reason}"),
                });
            } else {
                report.notes.push(format!(
                    "superblock copy {i} was torn by a crash during a superblock write ({reason}); \
                     the other copy is intact and opening the store rewrites this one"
                ));
            }
        }
    }
    let sb = match copies.newest() {
        Ok(sb) => sb,
        Err(reason) => {
            push_once(&mut report, superblock::FILE, 0, None, reason.to_string());
            return Ok(report);
        }
    };
    report.superblock = Some(sb);
    check_checkpoint_files(storage, &sb, &mut report)?;
    let segs = scan::segments(storage)?;
    report.segments = segs.clone();
    let cp = match store::restore_checkpoint(storage, &sb, replay) {
        Ok((cp, _fallback)) => cp,
        Err(StoreError::Corrupt(c)) => {
            push_corruption(&mut report, c);
            return Ok(report);
        }
        Err(StoreError::Replay { seq, reason }) => {
            push_once(
                &mut report,
                &checkpoint::file_name(seq),
                0,
                Some(seq),
                reason,
            );
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    report.checkpoint_seq = cp.map_or(0, |c| c.seq);
    let mut from = match store::scan_from(&segs, &sb, cp) {
        Ok(from) => from,
        Err(StoreError::Corrupt(c)) => {
            push_corruption(&mut report, c);
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    // Verification reads every retained segment, not only those recovery needs.
    from.segment = 0;
    from.watch = since.map(|s| s.seq);
    let mut replayed = 0;
    let scanned = scan::scan(storage, &segs, from, &mut |seq, kind, body| {
        replayed += 1;
        replay.apply(seq, kind, body)
    });
    report.replayed = replayed;
    match scanned {
        Ok(end) => {
            report.first_seq = end.first_seq;
            report.records = end.records;
            report.log_bytes = end.bytes;
            report.head = if end.records > 0 {
                ChainHead {
                    seq: end.last_seq,
                    checksum: end.head,
                }
            } else {
                ChainHead {
                    seq: report.checkpoint_seq,
                    checksum: sb.checkpoint.map_or(0, |_| sb.log_head),
                }
            };
            report.torn = end.torn.clone();
            let archived = check_archive(storage, &end, since, &mut report)?;
            if let Some(s) = since {
                report.since = Some(check_since(s, &end, archived, &report));
            }
        }
        Err(StoreError::Corrupt(c)) => push_corruption(&mut report, c),
        Err(StoreError::Replay { seq, reason }) => push_once(
            &mut report,
            "log",
            0,
            Some(seq),
            format!("replay: {reason}"),
        ),
        Err(e) => return Err(e),
    }
    Ok(report)
}

/// The chain archive, checked, and tied to the first retained record; returns the archived
/// checksum of the auditor's record, if that record is archived rather than in the log.
fn check_archive(
    storage: &mut dyn Storage,
    end: &scan::ScanEnd,
    since: Option<ChainHead>,
    report: &mut VerifyReport,
) -> Result<Option<u128>, StoreError> {
    let link = end.first_seq.saturating_sub(1);
    let watch: Vec<u64> = [Some(link), since.map(|s| s.seq)]
        .into_iter()
        .flatten()
        .collect();
    let first_live = (end.records > 0).then_some(end.first_seq);
    let archive = match chain::read(storage, &watch, first_live) {
        Ok(a) => a,
        Err(StoreError::Corrupt(c)) => {
            push_corruption(report, c);
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    report.archived = archive.last_seq;
    if let Some(seq) = archive.torn_from {
        report.notes.push(format!(
            "{}: an unsynced append torn by a crash from record {seq} (still in the log); \
             opening the store cuts it",
            chain::FILE
        ));
    }
    if archive.torn_bytes > 0 {
        report.notes.push(format!(
            "{}: a partial header of {} bytes at the end (a crash during compaction); opening the store cuts it",
            chain::FILE,
            archive.torn_bytes
        ));
    }
    if end.records == 0 || link == 0 {
        return Ok(None);
    }
    let archived_link = archive.watched.iter().find(|w| w.0 == link).map(|w| w.1);
    match archived_link {
        Some(sum) if sum == end.first_parent => {}
        Some(_) => push_once(
            report,
            chain::FILE,
            (link - 1) * 72,
            Some(link),
            format!(
                "the archived record {link} is not the parent of the log's first record {}",
                end.first_seq
            ),
        ),
        None => push_once(
            report,
            chain::FILE,
            archive.last_seq * 72,
            Some(archive.last_seq + 1),
            format!(
                "records {}..{} are neither in the chain archive nor in the log",
                archive.last_seq + 1,
                end.first_seq
            ),
        ),
    }
    Ok(since.and_then(|s| archive.watched.iter().find(|w| w.0 == s.seq).map(|w| w.1)))
}

fn check_since(
    s: ChainHead,
    end: &scan::ScanEnd,
    archived: Option<u128>,
    report: &VerifyReport,
) -> Result<String, String> {
    match end.watched.or(archived) {
        Some(sum) if sum == s.checksum => Ok(format!(
            "record {} has checksum {:032x} and the chain runs unbroken from it to record {}: \
             nothing up to it changed",
            s.seq, s.checksum, report.head.seq
        )),
        Some(sum) => Err(format!(
            "record {} has checksum {sum:032x}, not {:032x}: the history up to it changed",
            s.seq, s.checksum
        )),
        None if s.seq > report.head.seq => Err(format!(
            "record {} is beyond the chain head {}",
            s.seq, report.head.seq
        )),
        None => Err(format!(
            "record {} is neither in the log (from record {}) nor in the chain archive (to record {})",
            s.seq, report.first_seq, report.archived
        )),
    }
}

fn check_checkpoint_files(
    storage: &mut dyn Storage,
    sb: &Superblock,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let named: Vec<u64> = [sb.checkpoint, sb.previous]
        .into_iter()
        .flatten()
        .map(|c| c.seq)
        .collect();
    let names = storage.list()?;
    for seq in &named {
        if !names.contains(&checkpoint::file_name(*seq)) {
            push_once(
                report,
                &checkpoint::file_name(*seq),
                0,
                Some(*seq),
                "the checkpoint the superblock names is missing".into(),
            );
        }
    }
    for name in names {
        if name.starts_with("checkpoint-") && name.ends_with(".tmp") {
            report.notes.push(format!(
                "{name}: an interrupted checkpoint; opening the store removes it"
            ));
            continue;
        }
        let Some(seq) = checkpoint::parse_file_name(&name) else {
            continue;
        };
        let bytes = storage.size(&name)?;
        let named_by_superblock = named.contains(&seq);
        let ok = match checkpoint::verify_file(storage, &name) {
            Ok(header) => {
                let reference = [sb.checkpoint, sb.previous]
                    .into_iter()
                    .flatten()
                    .find(|c| c.seq == seq);
                if reference.is_some_and(|c| c.checksum != header.checksum)
                    || header.store_id != sb.store_id
                {
                    push_once(
                        report,
                        &name,
                        0,
                        Some(seq),
                        "not the checkpoint the superblock names".into(),
                    );
                    false
                } else {
                    true
                }
            }
            Err(StoreError::Corrupt(c)) => {
                push_corruption(report, c);
                false
            }
            Err(e) => return Err(e),
        };
        if ok && !named_by_superblock {
            report.notes.push(format!("{name}: not named by the superblock (a checkpoint install a crash interrupted); compaction removes it"));
        }
        report.checkpoints.push(CheckpointFile {
            name,
            seq,
            bytes,
            named_by_superblock,
            ok,
        });
    }
    Ok(())
}

fn push_corruption(report: &mut VerifyReport, c: Corruption) {
    if !report.corruptions.contains(&c) {
        report.corruptions.push(c);
    }
}

fn push_once(report: &mut VerifyReport, file: &str, offset: u64, seq: Option<u64>, reason: String) {
    push_corruption(
        report,
        Corruption {
            file: file.to_string(),
            offset,
            seq,
            reason,
        },
    );
}
