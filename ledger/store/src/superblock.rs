//! The superblock: the store's root and its durable boundary, in two checksummed copies.
//!
//! The file `superblock` holds two copies of [`COPY_SIZE`] bytes, one per 512-byte sector. Every
//! update writes copy 0, syncs, writes copy 1, syncs, so at rest both copies hold the same update
//! and a crash leaves at most one copy torn or one update behind. Recovery takes the newest valid
//! copy. Each copy names its slot, so a write that landed in the wrong slot is caught.
//!
//! ```text
//! offset size field
//!      0   16 checksum            of bytes 16..512 (every byte of the copy, padding included)
//!     16    4 magic               "ACSB"
//!     20    2 version
//!     22    2 copy                0 or 1: the slot this copy belongs in
//!     24    8 update              how many superblock updates came before this one
//!     32   16 store_id            fixed at creation
//!     48    8 log_seq             the last durable record (0: none yet)
//!     56   16 log_head            its checksum (0: none)
//!     72    8 log_segment         first sequence of the segment that holds it
//!     80    8 log_end             offset just past it in that segment
//!     88    8 checkpoint_seq      the record the current checkpoint covers (0: none)
//!     96   16 checkpoint_checksum its header checksum
//!    112    8 previous_seq        the checkpoint before it, kept as a fallback (0: none)
//!    120   16 previous_checksum
//!    136  376 zero
//! ```

use crate::checksum::checksum;
use crate::codec::*;

pub const FILE: &str = "superblock";
pub const COPY_SIZE: usize = 512;
pub const COPIES: usize = 2;
pub const MAGIC: u32 = u32::from_le_bytes(*b"ACSB");
pub const VERSION: u16 = 1;

/// A checkpoint as the superblock names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointRef {
    pub seq: u64,
    pub checksum: u128,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Superblock {
    pub update: u64,
    pub store_id: u128,
    pub log_seq: u64,
    pub log_head: u128,
    pub log_segment: u64,
    pub log_end: u64,
    pub checkpoint: Option<CheckpointRef>,
    pub previous: Option<CheckpointRef>,
}

impl Superblock {
    pub fn encode(&self, copy: u16) -> [u8; COPY_SIZE] {
        assert!((copy as usize) < COPIES);
        let mut b = [0u8; COPY_SIZE];
        put_u32(&mut b, 16, MAGIC);
        put_u16(&mut b, 20, VERSION);
        put_u16(&mut b, 22, copy);
        put_u64(&mut b, 24, self.update);
        put_u128(&mut b, 32, self.store_id);
        put_u64(&mut b, 48, self.log_seq);
        put_u128(&mut b, 56, self.log_head);
        put_u64(&mut b, 72, self.log_segment);
        put_u64(&mut b, 80, self.log_end);
        let c = self.checkpoint.unwrap_or_default();
        put_u64(&mut b, 88, c.seq);
        put_u128(&mut b, 96, c.checksum);
        let p = self.previous.unwrap_or_default();
        put_u64(&mut b, 112, p.seq);
        put_u128(&mut b, 120, p.checksum);
        let sum = checksum(&b[16..]);
        put_u128(&mut b, 0, sum);
        b
    }

    /// Decodes the copy found in slot `copy`, checking its checksum before any field.
    pub fn decode(b: &[u8], copy: u16) -> Result<Superblock, &'static str> {
        if b.len() < COPY_SIZE {
            return Err("superblock copy cut short");
        }
        let b = &b[..COPY_SIZE];
        if b.iter().all(|&x| x == 0) {
            return Err("zeros where a superblock copy should be");
        }
        if get_u128(b, 0) != checksum(&b[16..]) {
            return Err("superblock checksum mismatch");
        }
        if get_u32(b, 16) != MAGIC {
            return Err("bad superblock magic");
        }
        if get_u16(b, 20) != VERSION {
            return Err("unknown superblock version");
        }
        if get_u16(b, 22) != copy {
            return Err("superblock copy in the wrong slot (misdirected write)");
        }
        if b[136..].iter().any(|&x| x != 0) {
            return Err("superblock padding not zero");
        }
        let checkpoint = |at: usize| {
            let seq = get_u64(b, at);
            (seq != 0).then(|| CheckpointRef {
                seq,
                checksum: get_u128(b, at + 8),
            })
        };
        let sb = Superblock {
            update: get_u64(b, 24),
            store_id: get_u128(b, 32),
            log_seq: get_u64(b, 48),
            log_head: get_u128(b, 56),
            log_segment: get_u64(b, 72),
            log_end: get_u64(b, 80),
            checkpoint: checkpoint(88),
            previous: checkpoint(112),
        };
        if sb.log_segment == 0 || sb.log_segment > sb.log_seq.saturating_add(1) {
            return Err("superblock names an impossible log segment");
        }
        if (sb.log_seq == 0) != (sb.log_head == 0) {
            return Err("superblock log head inconsistent with its sequence");
        }
        if sb.checkpoint.is_some_and(|c| c.seq > sb.log_seq)
            || sb
                .previous
                .is_some_and(|p| sb.checkpoint.is_none_or(|c| p.seq >= c.seq))
        {
            return Err("superblock checkpoints out of order");
        }
        Ok(sb)
    }
}

/// What one slot of the superblock file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyState {
    Valid(Superblock),
    Invalid { reason: &'static str },
}

/// Both slots, decoded, and the copy recovery should trust (the newest valid one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copies {
    pub slots: [CopyState; COPIES],
    /// The raw bytes of each slot (short if the file is).
    pub raw: [Vec<u8>; COPIES],
}

impl Copies {
    pub fn decode(file: &[u8]) -> Copies {
        let raw: [Vec<u8>; COPIES] = core::array::from_fn(|i| {
            let start = (i * COPY_SIZE).min(file.len());
            let end = ((i + 1) * COPY_SIZE).min(file.len());
            file[start..end].to_vec()
        });
        let slots = core::array::from_fn(|i| match Superblock::decode(&raw[i], i as u16) {
            Ok(sb) => CopyState::Valid(sb),
            Err(reason) => CopyState::Invalid { reason },
        });
        Copies { slots, raw }
    }

    /// The newest valid copy, if any; copies of different stores make none trustworthy.
    pub fn newest(&self) -> Result<Superblock, &'static str> {
        let valid: Vec<Superblock> = self
            .slots
            .iter()
            .filter_map(|s| match s {
                CopyState::Valid(sb) => Some(*sb),
                CopyState::Invalid { .. } => None,
            })
            .collect();
        if valid.windows(2).any(|w| w[0].store_id != w[1].store_id) {
            return Err("the superblock copies belong to different stores");
        }
        if valid.windows(2).any(|w| w[0].update < w[1].update) {
            // Copy 0 is always written first: it can be ahead of copy 1, never behind.
            return Err("superblock copy 1 is newer than copy 0 (written out of order)");
        }
        valid
            .into_iter()
            .max_by_key(|sb| sb.update)
            .ok_or("no valid superblock copy")
    }

    /// Whether slot `i`, which does not verify, looks like a valid copy with a few bytes changed
    /// (bit rot, a flipped byte) rather than like a write that a crash tore (garbage, zeros, or
    /// part old part new). At rest both copies hold the same update, so the slot should equal
    /// the other copy re-encoded for it; a torn sector differs from that in many bytes.
    pub fn looks_flipped(&self, i: usize) -> bool {
        let other = 1 - i;
        let CopyState::Valid(sb) = self.slots[other] else {
            return false;
        };
        let expected = sb.encode(i as u16);
        let raw = &self.raw[i];
        if raw.len() != COPY_SIZE {
            return false;
        }
        let differing = raw
            .iter()
            .zip(expected.iter())
            .filter(|(a, b)| a != b)
            .count();
        differing <= 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        Superblock {
            update: 9,
            store_id: 77,
            log_seq: 12,
            log_head: 0xfeed,
            log_segment: 10,
            log_end: 4096,
            checkpoint: Some(CheckpointRef {
                seq: 11,
                checksum: 5,
            }),
            previous: Some(CheckpointRef {
                seq: 3,
                checksum: 6,
            }),
        }
    }

    #[test]
    fn round_trip_and_every_flip_detected_and_looks_flipped() {
        let sb = sample();
        let mut file = Vec::new();
        file.extend_from_slice(&sb.encode(0));
        file.extend_from_slice(&sb.encode(1));
        let copies = Copies::decode(&file);
        assert_eq!(copies.newest(), Ok(sb));
        for i in 0..COPY_SIZE * 2 {
            let mut f = file.clone();
            f[i] ^= 0x10;
            let c = Copies::decode(&f);
            let slot = i / COPY_SIZE;
            assert!(
                matches!(c.slots[slot], CopyState::Invalid { .. }),
                "byte {i}"
            );
            assert_eq!(c.newest(), Ok(sb));
            assert!(c.looks_flipped(slot), "byte {i}");
        }
    }

    #[test]
    fn garbage_and_wrong_slot_do_not_look_flipped() {
        let sb = sample();
        let mut file = Vec::new();
        file.extend_from_slice(&sb.encode(0));
        file.extend_from_slice(&sb.encode(0)); // copy 0 written into slot 1
        let c = Copies::decode(&file);
        assert!(matches!(c.slots[1], CopyState::Invalid { .. }));
        assert!(!c.looks_flipped(1));
        let mut torn = file.clone();
        for (k, b) in torn[COPY_SIZE..].iter_mut().enumerate() {
            *b = (k * 31 % 251) as u8;
        }
        assert!(!Copies::decode(&torn).looks_flipped(1));
    }

    #[test]
    fn copy_one_ahead_of_copy_zero_is_refused() {
        let mut newer = sample();
        newer.update += 1;
        let mut file = Vec::new();
        file.extend_from_slice(&sample().encode(0));
        file.extend_from_slice(&newer.encode(1));
        assert!(Copies::decode(&file).newest().is_err());
    }
}
