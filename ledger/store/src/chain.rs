//! The chain archive: the headers of every record whose segment compaction removed, so the hash
//! chain still runs from record 1 to the head after the bodies are gone.
//!
//! The file `chain` is the 72-byte headers of records 1..=M, back to back (record `s` at offset
//! `(s - 1) * 72`). Each header carries its own checksum, its body's checksum and its parent's,
//! so the archive proves every removed record's content as firmly as the record itself did, and
//! an auditor's earlier chain head can be checked however old it is. Compaction appends the
//! headers of a segment and syncs them before it removes the segment; a crash between leaves a
//! partial last header (cut at the next open) or headers that overlap a live segment (which must
//! then match it).

use crate::error::{Corruption, StoreError};
use crate::record::{RecordHeader, HEADER_SIZE};
use crate::scan::Segment;
use crate::storage::{read_exact_at, Storage, StorageErrorKind};

pub const FILE: &str = "chain";

/// What the archive holds, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Archive {
    /// The last archived record and its checksum (0, 0 when empty).
    pub last_seq: u64,
    pub last_checksum: u128,
    /// Bytes of a partial header at the end (a crash during an append).
    pub torn_bytes: u64,
    /// The first header that does not verify, when its record is still in the log: an append
    /// a crash tore before it was synced (segments go only after the sync), so not corruption.
    /// The archive ends just before it.
    pub torn_from: Option<u64>,
    /// The checksums of the watched records that are archived.
    pub watched: Vec<(u64, u128)>,
}

fn corrupt(offset: u64, seq: u64, reason: String) -> StoreError {
    StoreError::Corrupt(Corruption {
        file: FILE.into(),
        offset,
        seq: Some(seq),
        reason,
    })
}

impl Archive {
    /// The length the file keeps once the torn part of an unsynced append is cut.
    pub fn intact_len(&self) -> u64 {
        self.last_seq * HEADER_SIZE as u64
    }
}

/// Reads and checks the whole archive: every header valid, numbered in order, each the parent
/// of the next. A bad header of a record at or after `first_live` (the first record still in
/// the log) is an unsynced append a crash tore: the archive ends there ([`Archive::torn_from`]).
pub fn read(
    storage: &mut dyn Storage,
    watch: &[u64],
    first_live: Option<u64>,
) -> Result<Archive, StoreError> {
    let Some(size) = archive_size(storage)? else {
        return Ok(Archive::default());
    };
    let archive = Archive {
        torn_bytes: size % HEADER_SIZE as u64,
        ..Archive::default()
    };
    read_headers(
        storage,
        watch,
        first_live,
        archive,
        size / HEADER_SIZE as u64,
    )
}

/// What opening the store needs of the archive, in time bounded by the last compaction rather
/// than by all history: where an unsynced append ends (a partial header, or headers of records
/// still in the log that do not verify). Only the headers from the parent of `first_live` on
/// are read; those before were synced before their segments went, and `verify` checks them.
pub fn read_tail(
    storage: &mut dyn Storage,
    first_live: Option<u64>,
) -> Result<Archive, StoreError> {
    let Some(size) = archive_size(storage)? else {
        return Ok(Archive::default());
    };
    let full = size / HEADER_SIZE as u64;
    let torn_bytes = size % HEADER_SIZE as u64;
    let Some(live) = first_live else {
        // No record in the log: nothing archived can be an append of one still there.
        return Ok(Archive {
            last_seq: full,
            torn_bytes,
            ..Archive::default()
        });
    };
    let start = live.saturating_sub(2).min(full);
    let mut archive = Archive {
        last_seq: start,
        torn_bytes,
        ..Archive::default()
    };
    if start > 0 {
        // The chain is taken on trust up to the first header read: its parent is the link.
        let mut hb = [0u8; HEADER_SIZE];
        let offset = start * HEADER_SIZE as u64;
        if full > start && read_exact_at(storage, FILE, offset, &mut hb)? == HEADER_SIZE {
            let h =
                RecordHeader::decode(&hb).map_err(|r| corrupt(offset, start + 1, r.to_string()))?;
            archive.last_checksum = h.parent;
        }
    }
    read_headers(storage, &[], first_live, archive, full)
}

fn archive_size(storage: &mut dyn Storage) -> Result<Option<u64>, StoreError> {
    match storage.size(FILE) {
        Ok(size) => Ok(Some(size)),
        Err(e) if e.kind == StorageErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Checks headers `archive.last_seq + 1 ..= full` in order, chained from
/// `archive.last_checksum`.
fn read_headers(
    storage: &mut dyn Storage,
    watch: &[u64],
    first_live: Option<u64>,
    mut archive: Archive,
    full: u64,
) -> Result<Archive, StoreError> {
    const HEADERS_PER_READ: u64 = 16_384;
    let mut buf = vec![0u8; HEADERS_PER_READ as usize * HEADER_SIZE];
    let mut index = archive.last_seq;
    while index < full {
        let n = (full - index).min(HEADERS_PER_READ);
        let bytes = &mut buf[..n as usize * HEADER_SIZE];
        let offset = index * HEADER_SIZE as u64;
        if read_exact_at(storage, FILE, offset, bytes)? < bytes.len() {
            return Err(corrupt(
                offset,
                index + 1,
                "chain archive shorter than its size".into(),
            ));
        }
        for (k, hb) in bytes.chunks_exact(HEADER_SIZE).enumerate() {
            let seq = index + k as u64 + 1;
            let at = offset + (k * HEADER_SIZE) as u64;
            let hb: &[u8; HEADER_SIZE] = hb.try_into().expect("sized");
            let h = match check_header(hb, at, seq, archive.last_checksum) {
                Ok(h) => h,
                Err(StoreError::Corrupt(_)) if first_live.is_some_and(|live| seq >= live) => {
                    archive.torn_from = Some(seq);
                    return Ok(archive);
                }
                Err(e) => return Err(e),
            };
            if watch.contains(&seq) {
                archive.watched.push((seq, h.checksum));
            }
            archive.last_seq = seq;
            archive.last_checksum = h.checksum;
        }
        index += n;
    }
    Ok(archive)
}

/// One archived header, checked: valid, numbered `seq`, chained to `parent`.
fn check_header(
    hb: &[u8; HEADER_SIZE],
    at: u64,
    seq: u64,
    parent: u128,
) -> Result<RecordHeader, StoreError> {
    let h = RecordHeader::decode(hb).map_err(|r| corrupt(at, seq, r.to_string()))?;
    if h.sequence != seq {
        let reason = format!(
            "archived header of record {} at the place of {seq}",
            h.sequence
        );
        return Err(corrupt(at, seq, reason));
    }
    if h.parent != parent {
        return Err(corrupt(
            at,
            seq,
            "archived header does not chain to the one before it".into(),
        ));
    }
    Ok(h)
}

/// The headers of every record in `seg`, each record checked whole (header, length, body):
/// a segment is removed only if every record in it is intact, so compaction never deletes the
/// evidence of a corruption that recovery, which starts at the checkpoint, never read.
pub fn segment_headers(
    storage: &mut dyn Storage,
    seg: &Segment,
) -> Result<Vec<[u8; HEADER_SIZE]>, StoreError> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    let mut seq = seg.first_seq;
    let mut body = Vec::new();
    while offset < seg.size {
        let mut hb = [0u8; HEADER_SIZE];
        let bad = |reason: String| {
            StoreError::Corrupt(Corruption {
                file: seg.name.clone(),
                offset,
                seq: Some(seq),
                reason,
            })
        };
        if read_exact_at(storage, &seg.name, offset, &mut hb)? < HEADER_SIZE {
            return Err(bad("record header cut short".into()));
        }
        let h = RecordHeader::decode(&hb).map_err(|r| bad(r.to_string()))?;
        if h.sequence != seq || offset + h.record_len() > seg.size {
            return Err(bad("record out of place in a segment being archived".into()));
        }
        body.resize(h.body_len as usize, 0);
        let n = read_exact_at(storage, &seg.name, offset + HEADER_SIZE as u64, &mut body)?;
        if n < body.len() || crate::checksum::checksum(&body) != h.checksum_body {
            return Err(bad(
                "record body checksum mismatch (found when archiving)".into()
            ));
        }
        out.push(hb);
        offset += h.record_len();
        seq += 1;
    }
    Ok(out)
}

/// Appends the headers of `seg`'s records not archived yet; the caller syncs.
pub fn append_segment(
    storage: &mut dyn Storage,
    archive: &mut Archive,
    seg: &Segment,
) -> Result<u64, StoreError> {
    let headers = segment_headers(storage, seg)?;
    let mut bytes = Vec::new();
    for (k, hb) in headers.iter().enumerate() {
        let seq = seg.first_seq + k as u64;
        if seq <= archive.last_seq {
            continue;
        }
        let h = RecordHeader::decode(hb).expect("checked above");
        if seq != archive.last_seq + 1 || h.parent != archive.last_checksum {
            return Err(StoreError::Corrupt(Corruption {
                file: seg.name.clone(),
                offset: 0,
                seq: Some(seq),
                reason: format!(
                    "record {seq} does not follow the chain archive's last record {}",
                    archive.last_seq
                ),
            }));
        }
        bytes.extend_from_slice(hb);
        archive.last_seq = seq;
        archive.last_checksum = h.checksum;
    }
    if !bytes.is_empty() {
        let offset = (archive.last_seq - (bytes.len() / HEADER_SIZE) as u64) * HEADER_SIZE as u64;
        storage.write_at(FILE, offset, &bytes)?;
    }
    Ok((bytes.len() / HEADER_SIZE) as u64)
}
