//! A store read without recovering it into memory: the checkpoint's state read in verified
//! ranges (one chunk held at a time) and the log after it scanned as recovery scans it, so a
//! reader of a large store (`acme recon --ledger`) needs memory for a chunk, not for the state.
//!
//! The checks are recovery's own: the superblock's newest copy, the checkpoint it names (header,
//! size, chunk list checksum, then each chunk's checksum before any of its bytes is handed out),
//! the log's hash chain through the checkpoint's record up to the durable boundary, and a torn
//! tail cut where recovery would cut it. What recovery does with a checkpoint that does not
//! verify (fall back to the previous one) is the caller's: a chunk may turn out bad after
//! earlier ones were used, so the caller starts again from [`Located::candidates`]' next.

use crate::checkpoint::{self, CheckpointHeader, CHUNK_CHECKSUM_SIZE, CHUNK_SIZE, HEADER_SIZE};
use crate::checksum::checksum;
use crate::scan::{self, ScanEnd, Segment};
use crate::storage::{read_exact_at, Storage, StorageErrorKind};
use crate::store::{read_superblock, scan_from, superblock_note, UsedCheckpoint};
use crate::superblock::{self, CheckpointRef, Superblock};
use crate::{Corruption, StoreError};

/// Where a store's state is: the superblock recovery would use, the log segments, and the
/// checkpoints to try in order (the current one, then the previous).
#[derive(Clone, Debug)]
pub struct Located {
    pub superblock: Superblock,
    pub superblock_note: Option<String>,
    pub segments: Vec<Segment>,
    pub candidates: Vec<CheckpointRef>,
}

/// Reads the superblock and lists the segments, as opening the store does.
pub fn locate(storage: &mut dyn Storage) -> Result<Located, StoreError> {
    let copies = read_superblock(storage)?;
    let sb = copies.newest().map_err(|reason| {
        StoreError::Corrupt(Corruption {
            file: superblock::FILE.into(),
            offset: 0,
            seq: None,
            reason: reason.into(),
        })
    })?;
    Ok(Located {
        superblock_note: superblock_note(&copies, &sb),
        segments: scan::segments(storage)?,
        candidates: [sb.checkpoint, sb.previous].into_iter().flatten().collect(),
        superblock: sb,
    })
}

/// A checkpoint's state, read in ranges; every chunk is verified before its bytes are used.
#[derive(Clone)]
pub struct StateReader {
    name: String,
    header: CheckpointHeader,
    /// The chunk held: its index and its data (verified).
    chunk: Option<u64>,
    data: Vec<u8>,
}

impl StateReader {
    /// Opens the checkpoint `c` names: its header verified and matched with the superblock, the
    /// file's size and the chunk list checksum checked (chunks are checked as they are read).
    pub fn open(
        storage: &mut dyn Storage,
        sb: &Superblock,
        c: CheckpointRef,
    ) -> Result<StateReader, StoreError> {
        let name = checkpoint::file_name(c.seq);
        let corrupt = |offset: u64, reason: String| {
            StoreError::Corrupt(Corruption {
                file: name.clone(),
                offset,
                seq: Some(c.seq),
                reason,
            })
        };
        let size = match storage.size(&name) {
            Err(e) if e.kind == StorageErrorKind::NotFound => {
                return Err(corrupt(
                    0,
                    "the checkpoint the superblock names is missing".into(),
                ))
            }
            other => other?,
        };
        let mut hb = [0u8; HEADER_SIZE];
        if read_exact_at(storage, &name, 0, &mut hb)? < HEADER_SIZE {
            return Err(corrupt(
                0,
                format!("checkpoint of {size} bytes is shorter than its header"),
            ));
        }
        let header = CheckpointHeader::decode(&hb).map_err(|r| corrupt(0, r.to_string()))?;
        if header.checksum != c.checksum || header.seq != c.seq || header.store_id != sb.store_id {
            return Err(corrupt(0, "not the checkpoint the superblock names".into()));
        }
        if size != header.file_len() {
            return Err(corrupt(
                size.min(header.file_len()),
                format!(
                    "checkpoint is {size} bytes, its header says {}",
                    header.file_len()
                ),
            ));
        }
        let mut sums = Vec::with_capacity(header.chunk_count as usize * CHUNK_CHECKSUM_SIZE);
        let mut sum = [0u8; CHUNK_CHECKSUM_SIZE];
        for i in 0..header.chunk_count {
            read_exact_at(storage, &name, chunk_offset(i), &mut sum)?;
            sums.extend_from_slice(&sum);
        }
        if checksum(&sums) != header.chunks_checksum {
            return Err(corrupt(0, "checkpoint chunk list checksum mismatch".into()));
        }
        Ok(StateReader {
            name,
            header,
            chunk: None,
            data: Vec::new(),
        })
    }

    pub fn header(&self) -> &CheckpointHeader {
        &self.header
    }

    pub fn file(&self) -> &str {
        &self.name
    }

    /// Fills `out` with the state's bytes from `at`; an error past the state's end.
    pub fn read(
        &mut self,
        storage: &mut dyn Storage,
        at: u64,
        out: &mut [u8],
    ) -> Result<(), StoreError> {
        let end = at.checked_add(out.len() as u64);
        if end.is_none_or(|e| e > self.header.state_len) {
            return Err(StoreError::Replay {
                seq: self.header.seq,
                reason: format!(
                    "state read of {} bytes at {at} past its {} bytes",
                    out.len(),
                    self.header.state_len
                ),
            });
        }
        let mut done = 0;
        while done < out.len() {
            let pos = at + done as u64;
            let index = pos / CHUNK_SIZE as u64;
            self.load(storage, index)?;
            let within = (pos % CHUNK_SIZE as u64) as usize;
            let n = (self.data.len() - within).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.data[within..within + n]);
            done += n;
        }
        Ok(())
    }

    fn load(&mut self, storage: &mut dyn Storage, index: u64) -> Result<(), StoreError> {
        if self.chunk == Some(index) {
            return Ok(());
        }
        let h = &self.header;
        let data_len = (h.state_len - index * CHUNK_SIZE as u64).min(CHUNK_SIZE as u64) as usize;
        let offset = chunk_offset(index);
        self.chunk = None;
        self.data.resize(CHUNK_CHECKSUM_SIZE + data_len, 0);
        let corrupt = |reason: String| {
            StoreError::Corrupt(Corruption {
                file: self.name.clone(),
                offset,
                seq: Some(h.seq),
                reason,
            })
        };
        if read_exact_at(storage, &self.name, offset, &mut self.data)? < self.data.len() {
            return Err(corrupt("checkpoint chunk cut short".into()));
        }
        let sum = u128::from_le_bytes(self.data[..CHUNK_CHECKSUM_SIZE].try_into().expect("16"));
        if checksum(&self.data[CHUNK_CHECKSUM_SIZE..]) != sum {
            return Err(corrupt(format!(
                "checkpoint chunk {index} checksum mismatch"
            )));
        }
        self.data.drain(..CHUNK_CHECKSUM_SIZE);
        self.chunk = Some(index);
        Ok(())
    }
}

fn chunk_offset(index: u64) -> u64 {
    HEADER_SIZE as u64 + index * (CHUNK_CHECKSUM_SIZE + CHUNK_SIZE) as u64
}

/// Scans the log after the checkpoint `cp` covers (`None`: the whole log), as recovery does:
/// the chain checked through the checkpoint's record, every record after it given to `apply`
/// in order, corruption refused and a torn tail past the durable boundary cut (reported in the
/// end's `torn`). Read-only: nothing is truncated.
pub fn scan_log(
    storage: &mut dyn Storage,
    located: &Located,
    cp: Option<&CheckpointHeader>,
    apply: &mut scan::ApplyFn<'_>,
) -> Result<ScanEnd, StoreError> {
    let used = cp.map(|h| UsedCheckpoint {
        seq: h.seq,
        head: h.head,
    });
    let from = scan_from(&located.segments, &located.superblock, used)?;
    scan::scan(storage, &located.segments, from, apply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemStorage;

    fn superblock(seq: u64, checksum: u128) -> Superblock {
        Superblock {
            update: 1,
            store_id: 9,
            log_seq: seq,
            log_head: 0x44,
            log_segment: 1,
            log_end: 0,
            checkpoint: Some(CheckpointRef { seq, checksum }),
            previous: None,
        }
    }

    #[test]
    fn ranges_across_chunks_read_back_and_a_bad_chunk_is_named_when_reached() {
        let state: Vec<u8> = (0..(2 * CHUNK_SIZE + 777))
            .map(|i| (i % 251) as u8)
            .collect();
        let (header, bytes) = checkpoint::encode(9, 4, 0x44, &state);
        let mut storage = MemStorage::new();
        let name = checkpoint::file_name(4);
        storage.files.insert(name.clone(), bytes.clone());
        let sb = superblock(4, header.checksum);
        let c = sb.checkpoint.expect("named");
        let mut r = StateReader::open(&mut storage, &sb, c).expect("opens");
        for (at, len) in [
            (0, 40),
            (CHUNK_SIZE - 5, 128),
            (2 * CHUNK_SIZE + 700, 77),
            (3, 0),
        ] {
            let mut out = vec![0u8; len];
            r.read(&mut storage, at as u64, &mut out).expect("reads");
            assert_eq!(out, state[at..at + len]);
        }
        let mut past = [0u8; 2];
        assert!(r
            .read(&mut storage, state.len() as u64 - 1, &mut past)
            .is_err());

        // The third chunk's data damaged: opening and the first chunks are fine, reaching it is
        // corruption at its offset.
        let third = chunk_offset(2);
        let mut bad = bytes.clone();
        bad[third as usize + CHUNK_CHECKSUM_SIZE + 5] ^= 1;
        storage.files.insert(name.clone(), bad);
        let mut r = StateReader::open(&mut storage, &sb, c).expect("opens");
        let mut out = [0u8; 64];
        r.read(&mut storage, CHUNK_SIZE as u64, &mut out)
            .expect("second chunk");
        match r.read(&mut storage, 2 * CHUNK_SIZE as u64, &mut out) {
            Err(StoreError::Corrupt(e)) => assert_eq!((e.file, e.offset), (name.clone(), third)),
            other => panic!("{other:?}"),
        }

        // Not the checkpoint the superblock names; a chunk checksum changed in the list.
        let other = superblock(4, header.checksum ^ 1);
        let named = other.checkpoint.expect("named");
        assert!(StateReader::open(&mut storage, &other, named).is_err());
        let mut bad = bytes;
        bad[third as usize] ^= 1;
        storage.files.insert(name, bad);
        assert!(matches!(
            StateReader::open(&mut storage, &sb, c),
            Err(StoreError::Corrupt(e)) if e.reason.contains("chunk list")
        ));
    }
}
