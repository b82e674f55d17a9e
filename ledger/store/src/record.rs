//! A log record: a fixed header and a body of at most [`BODY_MAX`] bytes.
//!
//! ```text
//! offset size field
//!      0   16 checksum       of header bytes 16..72 (so of everything below, body checksum included)
//!     16   16 checksum_body  of the body
//!     32   16 parent         checksum of the previous record (0 before the first): the hash chain
//!     48    8 sequence       1, 2, 3, ... with no gap, across segments
//!     56    4 magic          "ACLG"
//!     60    4 body_len       bytes of body that follow the header, at most BODY_MAX
//!     64    2 version        FORMAT_VERSION
//!     66    2 kind           what the body is, for the store's user (opaque here)
//!     68    4 reserved       zero
//! ```
//!
//! The header checksum is verified before any other field is trusted, the length included.

use crate::checksum::checksum;
use crate::codec::*;

pub const HEADER_SIZE: usize = 72;
pub const MAGIC: u32 = u32::from_le_bytes(*b"ACLG");
pub const FORMAT_VERSION: u16 = 1;
/// The largest body: a group of eight full ledger batches (8189 events of 128 bytes each) with
/// room to spare. A header claiming more is corrupt, whatever its checksum says.
pub const BODY_MAX: u32 = 16 << 20;
/// Where the magic sits in a header (a scan for later valid records looks for it).
pub const MAGIC_OFFSET: usize = 56;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub checksum: u128,
    pub checksum_body: u128,
    pub parent: u128,
    pub sequence: u64,
    pub body_len: u32,
    pub kind: u16,
}

impl RecordHeader {
    /// The header of a record holding `body`, chained to `parent`.
    pub fn new(sequence: u64, parent: u128, kind: u16, body: &[u8]) -> RecordHeader {
        assert!(sequence >= 1, "sequence numbers start at 1");
        let body_len = u32::try_from(body.len()).expect("body length fits in u32");
        assert!(
            body_len <= BODY_MAX,
            "record body of {body_len} bytes exceeds {BODY_MAX}"
        );
        let mut header = RecordHeader {
            checksum: 0,
            checksum_body: checksum(body),
            parent,
            sequence,
            body_len,
            kind,
        };
        header.checksum = checksum(&header.encode()[16..]);
        header
    }

    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        put_u128(&mut b, 0, self.checksum);
        put_u128(&mut b, 16, self.checksum_body);
        put_u128(&mut b, 32, self.parent);
        put_u64(&mut b, 48, self.sequence);
        put_u32(&mut b, 56, MAGIC);
        put_u32(&mut b, 60, self.body_len);
        put_u16(&mut b, 64, FORMAT_VERSION);
        put_u16(&mut b, 66, self.kind);
        b
    }

    /// Decodes and checks a header: its checksum first, then magic, version, reserved bytes and
    /// the length bound. The error says which check failed.
    pub fn decode(b: &[u8; HEADER_SIZE]) -> Result<RecordHeader, &'static str> {
        if b.iter().all(|&x| x == 0) {
            return Err("zeros where a record header should be (never written)");
        }
        if get_u128(b, 0) != checksum(&b[16..]) {
            return Err("header checksum mismatch");
        }
        if get_u32(b, 56) != MAGIC {
            return Err("bad magic");
        }
        if get_u16(b, 64) != FORMAT_VERSION {
            return Err("unknown format version");
        }
        if get_u32(b, 68) != 0 {
            return Err("reserved bytes not zero");
        }
        let body_len = get_u32(b, 60);
        if body_len > BODY_MAX {
            return Err("body length beyond the bound");
        }
        let sequence = get_u64(b, 48);
        if sequence == 0 {
            return Err("sequence number zero");
        }
        Ok(RecordHeader {
            checksum: get_u128(b, 0),
            checksum_body: get_u128(b, 16),
            parent: get_u128(b, 32),
            sequence,
            body_len,
            kind: get_u16(b, 66),
        })
    }

    /// The whole record as one buffer, ready for one write.
    pub fn frame(&self, body: &[u8]) -> Vec<u8> {
        assert_eq!(body.len(), self.body_len as usize);
        let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
        out.extend_from_slice(&self.encode());
        out.extend_from_slice(body);
        out
    }

    pub fn record_len(&self) -> u64 {
        HEADER_SIZE as u64 + u64::from(self.body_len)
    }
}

/// The file name of the log segment whose first record has sequence `first`.
pub fn segment_name(first: u64) -> String {
    format!("log-{first:020}")
}

/// The first sequence number of a segment, from its name; `None` if the name is not a segment's.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("log-")?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&s| s >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_detected() {
        let h = RecordHeader::new(7, 0xabc, 3, b"hello");
        let b = h.encode();
        assert_eq!(RecordHeader::decode(&b), Ok(h));
        for i in 0..HEADER_SIZE {
            for bit in 0..8 {
                let mut c = b;
                c[i] ^= 1 << bit;
                assert!(
                    RecordHeader::decode(&c).is_err(),
                    "flip at {i}:{bit} undetected"
                );
            }
        }
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_name(1), "log-00000000000000000001");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("log-1"), None);
        assert_eq!(parse_segment_name("log-00000000000000000000"), None);
        assert_eq!(parse_segment_name("checkpoint-00000000000000000001"), None);
    }
}
