//! A checkpoint file: a whole state, checksummed in chunks, naming the record it covers.
//!
//! ```text
//! header (128 bytes)
//!      0   16 checksum          of header bytes 16..128
//!     16    4 magic             "ACCP"
//!     20    2 version
//!     22    2 reserved          zero
//!     24    8 seq               the last record the state includes (0: the empty store)
//!     32   16 head              that record's checksum (0 for seq 0): ties the state to the chain
//!     48    8 state_len         bytes of state
//!     56    8 chunk_count       ceil(state_len / CHUNK_SIZE)
//!     64   16 chunks_checksum   checksum of the chunk checksums, in order
//!     80   16 store_id
//!     96   32 zero
//! then chunk_count chunks: checksum (16) | data (CHUNK_SIZE, the last one shorter)
//! ```
//!
//! The file's size must be exactly what the header says, so a truncated or extended file is
//! caught, and a bad chunk is reported with its offset.

use crate::checksum::checksum;
use crate::codec::*;
use crate::storage::{read_exact_at, Storage};
use crate::{Corruption, StoreError};

pub const HEADER_SIZE: usize = 128;
pub const CHUNK_SIZE: usize = 1 << 20;
pub const CHUNK_CHECKSUM_SIZE: usize = 16;
pub const MAGIC: u32 = u32::from_le_bytes(*b"ACCP");
pub const VERSION: u16 = 1;
/// A state beyond this is refused before any allocation (a corrupt header cannot make us
/// allocate the moon): 64 GiB, far above 5 million members' ledger.
pub const STATE_MAX: u64 = 64 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointHeader {
    pub checksum: u128,
    pub seq: u64,
    pub head: u128,
    pub state_len: u64,
    pub chunk_count: u64,
    pub chunks_checksum: u128,
    pub store_id: u128,
}

impl CheckpointHeader {
    pub fn file_len(&self) -> u64 {
        HEADER_SIZE as u64 + self.chunk_count * CHUNK_CHECKSUM_SIZE as u64 + self.state_len
    }

    fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        put_u32(&mut b, 16, MAGIC);
        put_u16(&mut b, 20, VERSION);
        put_u64(&mut b, 24, self.seq);
        put_u128(&mut b, 32, self.head);
        put_u64(&mut b, 48, self.state_len);
        put_u64(&mut b, 56, self.chunk_count);
        put_u128(&mut b, 64, self.chunks_checksum);
        put_u128(&mut b, 80, self.store_id);
        let sum = checksum(&b[16..]);
        put_u128(&mut b, 0, sum);
        b
    }

    pub fn decode(b: &[u8; HEADER_SIZE]) -> Result<CheckpointHeader, &'static str> {
        if get_u128(b, 0) != checksum(&b[16..]) {
            return Err("checkpoint header checksum mismatch");
        }
        if get_u32(b, 16) != MAGIC {
            return Err("bad checkpoint magic");
        }
        if get_u16(b, 20) != VERSION {
            return Err("unknown checkpoint version");
        }
        if get_u16(b, 22) != 0 || b[96..].iter().any(|&x| x != 0) {
            return Err("checkpoint reserved bytes not zero");
        }
        let state_len = get_u64(b, 48);
        let chunk_count = get_u64(b, 56);
        if state_len > STATE_MAX {
            return Err("checkpoint state length beyond the bound");
        }
        if chunk_count != state_len.div_ceil(CHUNK_SIZE as u64) {
            return Err("checkpoint chunk count does not match its length");
        }
        Ok(CheckpointHeader {
            checksum: get_u128(b, 0),
            seq: get_u64(b, 24),
            head: get_u128(b, 32),
            state_len,
            chunk_count,
            chunks_checksum: get_u128(b, 64),
            store_id: get_u128(b, 80),
        })
    }
}

/// The file name of the checkpoint covering record `seq`.
pub fn file_name(seq: u64) -> String {
    format!("checkpoint-{seq:020}")
}

pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("checkpoint-")?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header of a checkpoint of `state` (its chunk checksums computed).
fn header_for(store_id: u128, seq: u64, head: u128, state: &[u8]) -> (CheckpointHeader, Vec<u128>) {
    let sums: Vec<u128> = state.chunks(CHUNK_SIZE).map(checksum).collect();
    let sums_bytes: Vec<u8> = sums.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut header = CheckpointHeader {
        checksum: 0,
        seq,
        head,
        state_len: state.len() as u64,
        chunk_count: sums.len() as u64,
        chunks_checksum: checksum(&sums_bytes),
        store_id,
    };
    header.checksum = get_u128(&header.encode(), 0);
    (header, sums)
}

/// The bytes of a checkpoint file for `state`, whole (for tests and small states).
pub fn encode(store_id: u128, seq: u64, head: u128, state: &[u8]) -> (CheckpointHeader, Vec<u8>) {
    let (header, sums) = header_for(store_id, seq, head, state);
    let mut out = Vec::with_capacity(header.file_len() as usize);
    out.extend_from_slice(&header.encode());
    for (chunk, sum) in state.chunks(CHUNK_SIZE).zip(&sums) {
        out.extend_from_slice(&sum.to_le_bytes());
        out.extend_from_slice(chunk);
    }
    assert_eq!(out.len() as u64, header.file_len());
    (header, out)
}

/// Writes a checkpoint of `state` to `name` (not synced), a few chunks per write, without a
/// second copy of the state in memory.
pub fn write(
    storage: &mut dyn Storage,
    name: &str,
    store_id: u128,
    seq: u64,
    head: u128,
    state: &[u8],
) -> Result<CheckpointHeader, crate::StorageError> {
    const CHUNKS_PER_WRITE: usize = 8;
    let (header, sums) = header_for(store_id, seq, head, state);
    storage.write_at(name, 0, &header.encode())?;
    let mut offset = HEADER_SIZE as u64;
    let mut buf = Vec::with_capacity(CHUNKS_PER_WRITE * (CHUNK_CHECKSUM_SIZE + CHUNK_SIZE));
    let chunks: Vec<&[u8]> = state.chunks(CHUNK_SIZE).collect();
    for (group, group_sums) in chunks
        .chunks(CHUNKS_PER_WRITE)
        .zip(sums.chunks(CHUNKS_PER_WRITE))
    {
        buf.clear();
        for (chunk, sum) in group.iter().zip(group_sums) {
            buf.extend_from_slice(&sum.to_le_bytes());
            buf.extend_from_slice(chunk);
        }
        storage.write_at(name, offset, &buf)?;
        offset += buf.len() as u64;
    }
    assert_eq!(offset, header.file_len());
    Ok(header)
}

/// Reads and verifies a whole checkpoint file; returns its header and state.
pub fn read(
    storage: &mut dyn Storage,
    name: &str,
) -> Result<(CheckpointHeader, Vec<u8>), StoreError> {
    let mut state = Vec::new();
    let header = scan_file(storage, name, &mut |data| state.extend_from_slice(data))?;
    Ok((header, state))
}

/// Verifies a whole checkpoint file without keeping its state.
pub fn verify_file(storage: &mut dyn Storage, name: &str) -> Result<CheckpointHeader, StoreError> {
    scan_file(storage, name, &mut |_| {})
}

fn scan_file(
    storage: &mut dyn Storage,
    name: &str,
    data: &mut dyn FnMut(&[u8]),
) -> Result<CheckpointHeader, StoreError> {
    let corrupt = |offset: u64, reason: String| {
        StoreError::Corrupt(Corruption {
            file: name.to_string(),
            offset,
            seq: None,
            reason,
        })
    };
    let size = storage.size(name)?;
    let mut hb = [0u8; HEADER_SIZE];
    if read_exact_at(storage, name, 0, &mut hb)? < HEADER_SIZE {
        return Err(corrupt(
            0,
            format!("checkpoint of {size} bytes is shorter than its header"),
        ));
    }
    let header = CheckpointHeader::decode(&hb).map_err(|r| corrupt(0, r.to_string()))?;
    if size != header.file_len() {
        return Err(corrupt(
            size.min(header.file_len()),
            format!(
                "checkpoint is {size} bytes, its header says {}",
                header.file_len()
            ),
        ));
    }
    let mut sums_bytes = Vec::with_capacity(header.chunk_count as usize * 16);
    let mut offset = HEADER_SIZE as u64;
    let mut chunk = vec![0u8; CHUNK_CHECKSUM_SIZE + CHUNK_SIZE];
    for i in 0..header.chunk_count {
        let data_len = (header.state_len - i * CHUNK_SIZE as u64).min(CHUNK_SIZE as u64) as usize;
        let buf = &mut chunk[..CHUNK_CHECKSUM_SIZE + data_len];
        if read_exact_at(storage, name, offset, buf)? < buf.len() {
            return Err(corrupt(offset, "checkpoint chunk cut short".into()));
        }
        let sum = get_u128(buf, 0);
        if checksum(&buf[CHUNK_CHECKSUM_SIZE..]) != sum {
            return Err(corrupt(
                offset,
                format!("checkpoint chunk {i} checksum mismatch"),
            ));
        }
        sums_bytes.extend_from_slice(&buf[..CHUNK_CHECKSUM_SIZE]);
        data(&buf[CHUNK_CHECKSUM_SIZE..]);
        offset += buf.len() as u64;
    }
    if checksum(&sums_bytes) != header.chunks_checksum {
        return Err(corrupt(0, "checkpoint chunk list checksum mismatch".into()));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemStorage;

    #[test]
    fn round_trip_and_flips_anywhere_are_caught() {
        let state: Vec<u8> = (0..(CHUNK_SIZE + 1000)).map(|i| (i % 253) as u8).collect();
        let (header, bytes) = encode(9, 4, 0x44, &state);
        let mut storage = MemStorage::new();
        storage.files.insert(file_name(4), bytes.clone());
        let (h, s) = read(&mut storage, &file_name(4)).unwrap();
        assert_eq!(h, header);
        assert_eq!(s, state);
        for at in [
            0,
            20,
            127,
            128,
            140,
            128 + 16 + CHUNK_SIZE + 3,
            bytes.len() - 1,
        ] {
            let mut f = bytes.clone();
            f[at] ^= 1;
            storage.files.insert(file_name(4), f);
            assert!(matches!(
                read(&mut storage, &file_name(4)),
                Err(StoreError::Corrupt(_))
            ));
        }
        let mut cut = bytes.clone();
        cut.pop();
        storage.files.insert(file_name(4), cut);
        assert!(matches!(
            read(&mut storage, &file_name(4)),
            Err(StoreError::Corrupt(_))
        ));
    }
}
