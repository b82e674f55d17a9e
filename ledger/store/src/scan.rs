//! Reading the log back: every record checked, the chain followed across segments, and the one
//! judgement that matters at the end, torn tail or corruption.
//!
//! A bad record (short, zeros, a checksum that fails, a sequence or parent that does not follow)
//! is a **torn tail** only when it lies past the durable boundary the superblock names and no
//! valid record follows it anywhere in the log: that is what a crash during the last,
//! unacknowledged write leaves, and recovery cuts it off. Anything else is **corruption**: a
//! record the store acknowledged is gone or changed, and the store refuses to start.

use crate::error::{Corruption, StoreError};
use crate::record::{self, RecordHeader, HEADER_SIZE, MAGIC, MAGIC_OFFSET};
use crate::storage::{read_exact_at, Storage};

/// A log segment on storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub first_seq: u64,
    pub name: String,
    pub size: u64,
}

/// Every segment, in sequence order.
pub fn segments(storage: &mut dyn Storage) -> Result<Vec<Segment>, StoreError> {
    let mut out = Vec::new();
    for name in storage.list()? {
        if let Some(first_seq) = record::parse_segment_name(&name) {
            let size = storage.size(&name)?;
            out.push(Segment {
                first_seq,
                name,
                size,
            });
        }
    }
    out.sort_by_key(|s| s.first_seq);
    Ok(out)
}

/// Where a scan starts and what it must find on the way.
#[derive(Clone, Copy, Debug)]
pub struct ScanFrom {
    /// Index into the segment list of the first segment to read.
    pub segment: usize,
    /// Records below this are checked and chained but not handed to the caller.
    pub apply_from: u64,
    /// The record the checkpoint covers and its checksum, which the chain must pass through.
    pub anchor: Option<(u64, u128)>,
    /// The durable boundary: the last acknowledged record and its checksum.
    pub durable: Option<(u64, u128)>,
    /// A record whose checksum the caller wants to know (an auditor's earlier chain head).
    pub watch: Option<u64>,
}

/// A torn tail found at the end of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: String,
    pub offset: u64,
    pub seq: u64,
    /// Bytes from `offset` to the end of the log (this segment and any later ones).
    pub bytes: u64,
    pub reason: String,
    /// Later segment files that hold nothing valid (a torn rollover), to be removed.
    pub later_segments: Vec<String>,
}

/// How a scan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanEnd {
    /// The last valid record, and its checksum (0, 0 if none was read).
    pub last_seq: u64,
    pub head: u128,
    /// The segment holding the last valid record (or the first scanned) and the offset after it.
    pub segment: usize,
    pub end_offset: u64,
    pub torn: Option<TornTail>,
    pub records: u64,
    pub bytes: u64,
    /// The first record read, and the checksum of the watched record if it was read.
    pub first_seq: u64,
    pub first_parent: u128,
    pub watched: Option<u128>,
}

/// What a scan hands each record to: `(seq, kind, body)`; an `Err` stops the scan.
pub type ApplyFn<'a> = dyn FnMut(u64, u16, &[u8]) -> Result<(), String> + 'a;

/// Reads the log from `from.segment` to its end, calling `apply(seq, kind, body)` for every
/// record at or after `from.apply_from`.
pub fn scan(
    storage: &mut dyn Storage,
    segs: &[Segment],
    from: ScanFrom,
    apply: &mut ApplyFn<'_>,
) -> Result<ScanEnd, StoreError> {
    let mut end = ScanEnd {
        last_seq: 0,
        head: 0,
        segment: from.segment,
        end_offset: 0,
        torn: None,
        records: 0,
        bytes: 0,
        first_seq: 0,
        first_parent: 0,
        watched: None,
    };
    let Some(first) = segs.get(from.segment) else {
        return finish(segs, from, end);
    };
    let mut expected_seq = first.first_seq;
    // The parent of the first record read is unknown unless it is the very first record.
    let mut parent: Option<u128> = (first.first_seq == 1).then_some(0);
    let mut body = Vec::new();
    for (index, seg) in segs.iter().enumerate().skip(from.segment) {
        if seg.first_seq != expected_seq {
            let bad = Bad {
                seg: index,
                offset: 0,
                seq: expected_seq,
                reason: format!(
                    "segment {} starts at record {} where record {expected_seq} was expected",
                    seg.name, seg.first_seq
                ),
            };
            return judge(storage, segs, from, end, bad);
        }
        let mut offset = 0u64;
        loop {
            if offset == seg.size {
                break; // this segment ends cleanly; the next must carry on the sequence
            }
            match read_record(storage, seg, offset, expected_seq, parent, &mut body)? {
                Ok(header) => {
                    if let Some((seq, sum)) = from.anchor {
                        if header.sequence == seq && header.checksum != sum {
                            return Err(corrupt(
                                seg,
                                offset,
                                seq,
                                "the checkpoint's record differs from the log's",
                            ));
                        }
                    }
                    if let Some((seq, sum)) = from.durable {
                        if header.sequence == seq && header.checksum != sum {
                            return Err(corrupt(
                                seg,
                                offset,
                                seq,
                                "the last acknowledged record differs from the superblock's",
                            ));
                        }
                    }
                    if header.sequence >= from.apply_from {
                        apply(header.sequence, header.kind, &body).map_err(|reason| {
                            StoreError::Replay {
                                seq: header.sequence,
                                reason,
                            }
                        })?;
                    }
                    if from.watch == Some(header.sequence) {
                        end.watched = Some(header.checksum);
                    }
                    if end.records == 0 {
                        end.first_seq = header.sequence;
                        end.first_parent = header.parent;
                    }
                    end.last_seq = header.sequence;
                    end.head = header.checksum;
                    end.segment = index;
                    offset += header.record_len();
                    end.end_offset = offset;
                    end.records += 1;
                    end.bytes += header.record_len();
                    parent = Some(header.checksum);
                    expected_seq += 1;
                }
                Err(reason) => {
                    let bad = Bad {
                        seg: index,
                        offset,
                        seq: expected_seq,
                        reason,
                    };
                    return judge(storage, segs, from, end, bad);
                }
            }
        }
        // A segment that ended cleanly with no record in it is a torn rollover (judged below).
        if offset == 0 {
            let bad = Bad {
                seg: index,
                offset: 0,
                seq: expected_seq,
                reason: "empty log segment".into(),
            };
            return judge(storage, segs, from, end, bad);
        }
    }
    finish(segs, from, end)
}

struct Bad {
    seg: usize,
    offset: u64,
    seq: u64,
    reason: String,
}

fn corrupt(seg: &Segment, offset: u64, seq: u64, reason: &str) -> StoreError {
    StoreError::Corrupt(Corruption {
        file: seg.name.clone(),
        offset,
        seq: Some(seq),
        reason: reason.to_string(),
    })
}

/// The checks that hold however the log ended.
fn finish(segs: &[Segment], from: ScanFrom, end: ScanEnd) -> Result<ScanEnd, StoreError> {
    let last_file = segs
        .get(end.segment)
        .map_or_else(|| "log".to_string(), |s| s.name.clone());
    let short = |seq: u64, what: String| {
        StoreError::Corrupt(Corruption {
            file: last_file.clone(),
            offset: end.end_offset,
            seq: Some(seq),
            reason: what,
        })
    };
    if let Some((seq, _)) = from.durable {
        if end.last_seq < seq {
            return Err(short(
                end.last_seq + 1,
                format!(
                    "the superblock says record {seq} is durable but the log ends at record {}",
                    end.last_seq
                ),
            ));
        }
    }
    if let Some((seq, _)) = from.anchor {
        if end.last_seq < seq {
            return Err(short(
                seq,
                "the log ends before the checkpoint's record".into(),
            ));
        }
    }
    Ok(end)
}

/// Torn tail or corruption (see the module documentation).
fn judge(
    storage: &mut dyn Storage,
    segs: &[Segment],
    from: ScanFrom,
    end: ScanEnd,
    bad: Bad,
) -> Result<ScanEnd, StoreError> {
    let seg = &segs[bad.seg];
    let durable_seq = from.durable.map_or(0, |(s, _)| s);
    if bad.seq <= durable_seq {
        return Err(corrupt(
            seg,
            bad.offset,
            bad.seq,
            &format!("{} (an acknowledged record)", bad.reason),
        ));
    }
    if let Some((at, seq)) = valid_record_after(storage, seg, bad.offset + 1, bad.seq)? {
        return Err(corrupt(
            seg,
            bad.offset,
            bad.seq,
            &format!(
                "{}, yet a valid record {seq} follows at offset {at}",
                bad.reason
            ),
        ));
    }
    let mut later_segments = Vec::new();
    let mut bytes = seg.size - bad.offset;
    for later in &segs[bad.seg + 1..] {
        if let Some((at, seq)) = valid_record_after(storage, later, 0, bad.seq)? {
            return Err(corrupt(
                seg,
                bad.offset,
                bad.seq,
                &format!(
                    "{}, yet a valid record {seq} follows in {} at offset {at}",
                    bad.reason, later.name
                ),
            ));
        }
        later_segments.push(later.name.clone());
        bytes += later.size;
    }
    let mut end = finish(segs, from, end)?;
    end.torn = Some(TornTail {
        file: seg.name.clone(),
        offset: bad.offset,
        seq: bad.seq,
        bytes,
        reason: bad.reason,
        later_segments,
    });
    Ok(end)
}

/// The record at `offset`, checked: `Err(reason)` if it is not the valid record `expected_seq`
/// chained to `parent`. Storage errors pass through as the outer error.
fn read_record(
    storage: &mut dyn Storage,
    seg: &Segment,
    offset: u64,
    expected_seq: u64,
    parent: Option<u128>,
    body: &mut Vec<u8>,
) -> Result<Result<RecordHeader, String>, StoreError> {
    let mut hb = [0u8; HEADER_SIZE];
    let n = read_exact_at(storage, &seg.name, offset, &mut hb)?;
    if n < HEADER_SIZE {
        return Ok(Err(format!(
            "record header cut short ({n} of {HEADER_SIZE} bytes)"
        )));
    }
    let header = match RecordHeader::decode(&hb) {
        Ok(h) => h,
        Err(reason) => return Ok(Err(reason.to_string())),
    };
    if header.sequence != expected_seq {
        return Ok(Err(format!(
            "record {} where record {expected_seq} was expected",
            header.sequence
        )));
    }
    if parent.is_some_and(|p| p != header.parent) {
        return Ok(Err("the record does not chain to the one before it".into()));
    }
    if offset + header.record_len() > seg.size {
        return Ok(Err(format!(
            "record body cut short: {} bytes claimed, file ends first",
            header.body_len
        )));
    }
    body.resize(header.body_len as usize, 0);
    let n = read_exact_at(storage, &seg.name, offset + HEADER_SIZE as u64, body)?;
    if n < body.len() || crate::checksum::checksum(body) != header.checksum_body {
        return Ok(Err("record body checksum mismatch".into()));
    }
    Ok(Ok(header))
}

/// The first position at or after `from` holding a valid record header with a sequence number
/// of at least `min_seq` (which means a write that came later survived).
fn valid_record_after(
    storage: &mut dyn Storage,
    seg: &Segment,
    from: u64,
    min_seq: u64,
) -> Result<Option<(u64, u64)>, StoreError> {
    const WINDOW: usize = 1 << 20;
    let mut buf = vec![0u8; WINDOW + HEADER_SIZE];
    let mut start = from;
    while start < seg.size {
        let n = read_exact_at(storage, &seg.name, start, &mut buf)?;
        if n < HEADER_SIZE {
            break;
        }
        let magic = MAGIC.to_le_bytes();
        for i in 0..=(n - HEADER_SIZE) {
            if buf[i + MAGIC_OFFSET..i + MAGIC_OFFSET + 4] != magic {
                continue;
            }
            let hb: &[u8; HEADER_SIZE] = buf[i..i + HEADER_SIZE].try_into().expect("sized");
            if let Ok(h) = RecordHeader::decode(hb) {
                if h.sequence >= min_seq {
                    return Ok(Some((start + i as u64, h.sequence)));
                }
            }
        }
        if n < buf.len() {
            break;
        }
        start += WINDOW as u64;
    }
    Ok(None)
}
