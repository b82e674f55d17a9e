//! The ledger export format: accounts and transfers as TigerBeetle's 128-byte records.
//!
//! A file is a 64-byte header, `count` records of 128 bytes, and a 32-byte trailer:
//!
//! ```text
//! header  : magic "ACMELDG\x01" | kind u32 (1 accounts, 2 transfers) | record size u32 (128)
//!           | count u64 | 40 bytes of zero
//! record  : tb_account_t or tb_transfer_t, field by field, little-endian (TigerBeetle's layout)
//! trailer : magic "ACMEEND\x01" | count u64 | checksum u64 | 8 bytes of zero
//! ```
//!
//! The checksum ([`Checksum`]) covers the records, so a truncated, padded or edited file is
//! refused with the record number where it went wrong rather than read half-way. Reading streams
//! (a fixed buffer, one record at a time), so 30 million accounts cost 3.8 GB of disk but only the
//! buffer in memory. The functions here take any `Read`/`Write`: the crate opens no file itself.

use crate::types::{Account, AccountFlags, Transfer, TransferFlags};
use std::io::{Read, Write};

pub const MAGIC: [u8; 8] = *b"ACMELDG\x01";
pub const TRAILER_MAGIC: [u8; 8] = *b"ACMEEND\x01";
pub const HEADER_LEN: usize = 64;
pub const TRAILER_LEN: usize = 32;
pub const RECORD_LEN: usize = 128;

/// What a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum RecordKind {
    Accounts = 1,
    Transfers = 2,
}

impl RecordKind {
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Accounts => "accounts",
            RecordKind::Transfers => "transfers",
        }
    }
}

/// Why a file could not be read: `record` is the 0-based record number where it went wrong
/// (`None` for the header or trailer), `field` what was wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportError {
    pub record: Option<u64>,
    pub field: &'static str,
    pub reason: String,
}

impl core::fmt::Display for ExportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.record {
            Some(r) => write!(f, "record {r}, field {}: {}", self.field, self.reason),
            None => write!(f, "{}: {}", self.field, self.reason),
        }
    }
}

impl std::error::Error for ExportError {}

fn err(record: Option<u64>, field: &'static str, reason: impl Into<String>) -> ExportError {
    ExportError {
        record,
        field,
        reason: reason.into(),
    }
}

/// A fast 64-bit checksum over 8-byte words (records are multiples of 8 bytes). Not
/// cryptographic: it catches truncation, corruption and hand edits, not forgery.
#[derive(Clone, Copy, Debug)]
pub struct Checksum(u64);

impl Default for Checksum {
    fn default() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }
}

impl Checksum {
    pub fn update(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.len().is_multiple_of(8));
        let mut h = self.0;
        for word in bytes.chunks_exact(8) {
            let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
        }
        self.0 = h;
    }

    pub fn value(self) -> u64 {
        self.0
    }
}

pub fn encode_header(kind: RecordKind, count: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&(kind as u32).to_le_bytes());
    h[12..16].copy_from_slice(&(RECORD_LEN as u32).to_le_bytes());
    h[16..24].copy_from_slice(&count.to_le_bytes());
    h
}

/// The record count a header announces, after checking its magic, kind and record size.
pub fn decode_header(h: &[u8], kind: RecordKind) -> Result<u64, ExportError> {
    if h.len() < HEADER_LEN {
        return Err(err(
            None,
            "header",
            format!("file too short for a header ({} bytes)", h.len()),
        ));
    }
    if h[..8] != MAGIC {
        return Err(err(
            None,
            "header.magic",
            "not an ACME ledger export (bad magic)",
        ));
    }
    let k = u32::from_le_bytes(h[8..12].try_into().expect("4"));
    if k != kind as u32 {
        return Err(err(
            None,
            "header.kind",
            format!(
                "holds record kind {k}, expected {} ({})",
                kind as u32,
                kind.name()
            ),
        ));
    }
    let size = u32::from_le_bytes(h[12..16].try_into().expect("4"));
    if size as usize != RECORD_LEN {
        return Err(err(
            None,
            "header.record_size",
            format!("{size}, expected {RECORD_LEN}"),
        ));
    }
    Ok(u64::from_le_bytes(h[16..24].try_into().expect("8")))
}

pub fn encode_trailer(count: u64, checksum: Checksum) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..8].copy_from_slice(&TRAILER_MAGIC);
    t[8..16].copy_from_slice(&count.to_le_bytes());
    t[16..24].copy_from_slice(&checksum.value().to_le_bytes());
    t
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn u128(&mut self) -> u128 {
        let v = u128::from_le_bytes(self.b[self.at..self.at + 16].try_into().expect("16"));
        self.at += 16;
        v
    }
    fn u64(&mut self) -> u64 {
        let v = u64::from_le_bytes(self.b[self.at..self.at + 8].try_into().expect("8"));
        self.at += 8;
        v
    }
    fn u32(&mut self) -> u32 {
        let v = u32::from_le_bytes(self.b[self.at..self.at + 4].try_into().expect("4"));
        self.at += 4;
        v
    }
    fn u16(&mut self) -> u16 {
        let v = u16::from_le_bytes(self.b[self.at..self.at + 2].try_into().expect("2"));
        self.at += 2;
        v
    }
}

struct Out {
    b: [u8; RECORD_LEN],
    at: usize,
}

impl Out {
    fn new() -> Out {
        Out {
            b: [0; RECORD_LEN],
            at: 0,
        }
    }
    fn put(&mut self, bytes: &[u8]) -> &mut Out {
        self.b[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
        self
    }
}

/// `tb_account_t` as its 128 little-endian bytes.
pub fn encode_account(a: &Account) -> [u8; RECORD_LEN] {
    let mut o = Out::new();
    o.put(&a.id.to_le_bytes())
        .put(&a.debits_pending.to_le_bytes())
        .put(&a.debits_posted.to_le_bytes())
        .put(&a.credits_pending.to_le_bytes())
        .put(&a.credits_posted.to_le_bytes())
        .put(&a.user_data_128.to_le_bytes())
        .put(&a.user_data_64.to_le_bytes())
        .put(&a.user_data_32.to_le_bytes())
        .put(&a.reserved.to_le_bytes())
        .put(&a.ledger.to_le_bytes())
        .put(&a.code.to_le_bytes())
        .put(&a.flags.0.to_le_bytes())
        .put(&a.timestamp.to_le_bytes());
    debug_assert_eq!(o.at, RECORD_LEN);
    o.b
}

pub fn decode_account(b: &[u8; RECORD_LEN]) -> Account {
    let mut c = Cursor { b, at: 0 };
    Account {
        id: c.u128(),
        debits_pending: c.u128(),
        debits_posted: c.u128(),
        credits_pending: c.u128(),
        credits_posted: c.u128(),
        user_data_128: c.u128(),
        user_data_64: c.u64(),
        user_data_32: c.u32(),
        reserved: c.u32(),
        ledger: c.u32(),
        code: c.u16(),
        flags: AccountFlags(c.u16()),
        timestamp: c.u64(),
    }
}

/// `tb_transfer_t` as its 128 little-endian bytes.
pub fn encode_transfer(t: &Transfer) -> [u8; RECORD_LEN] {
    let mut o = Out::new();
    o.put(&t.id.to_le_bytes())
        .put(&t.debit_account_id.to_le_bytes())
        .put(&t.credit_account_id.to_le_bytes())
        .put(&t.amount.to_le_bytes())
        .put(&t.pending_id.to_le_bytes())
        .put(&t.user_data_128.to_le_bytes())
        .put(&t.user_data_64.to_le_bytes())
        .put(&t.user_data_32.to_le_bytes())
        .put(&t.timeout.to_le_bytes())
        .put(&t.ledger.to_le_bytes())
        .put(&t.code.to_le_bytes())
        .put(&t.flags.0.to_le_bytes())
        .put(&t.timestamp.to_le_bytes());
    debug_assert_eq!(o.at, RECORD_LEN);
    o.b
}

pub fn decode_transfer(b: &[u8; RECORD_LEN]) -> Transfer {
    let mut c = Cursor { b, at: 0 };
    Transfer {
        id: c.u128(),
        debit_account_id: c.u128(),
        credit_account_id: c.u128(),
        amount: c.u128(),
        pending_id: c.u128(),
        user_data_128: c.u128(),
        user_data_64: c.u64(),
        user_data_32: c.u32(),
        timeout: c.u32(),
        ledger: c.u32(),
        code: c.u16(),
        flags: TransferFlags(c.u16()),
        timestamp: c.u64(),
    }
}

/// Writes a file of `count` records, produced one at a time by `record(i, &mut buf)`.
/// Streaming: memory is one output buffer whatever the count.
pub fn write_records<W: Write>(
    w: &mut W,
    kind: RecordKind,
    count: u64,
    mut record: impl FnMut(u64) -> [u8; RECORD_LEN],
) -> std::io::Result<()> {
    w.write_all(&encode_header(kind, count))?;
    let mut sum = Checksum::default();
    let mut buf = Vec::with_capacity(RECORD_LEN * 8192);
    for i in 0..count {
        buf.extend_from_slice(&record(i));
        if buf.len() >= RECORD_LEN * 8192 {
            sum.update(&buf);
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    sum.update(&buf);
    w.write_all(&buf)?;
    w.write_all(&encode_trailer(count, sum))
}

pub fn write_accounts<W: Write>(w: &mut W, accounts: &[Account]) -> std::io::Result<()> {
    write_records(w, RecordKind::Accounts, accounts.len() as u64, |i| {
        encode_account(&accounts[i as usize])
    })
}

pub fn write_transfers<W: Write>(w: &mut W, transfers: &[Transfer]) -> std::io::Result<()> {
    write_records(w, RecordKind::Transfers, transfers.len() as u64, |i| {
        encode_transfer(&transfers[i as usize])
    })
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, ExportError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(None, "file", format!("read failed: {e}"))),
        }
    }
    Ok(filled)
}

/// Reads a whole file, handing each record to `on_record(index, bytes)` in order, and checks the
/// count and checksum in the trailer. Returns the number of records.
pub fn read_records<R: Read>(
    mut r: R,
    kind: RecordKind,
    mut on_record: impl FnMut(u64, &[u8; RECORD_LEN]),
) -> Result<u64, ExportError> {
    let mut header = [0u8; HEADER_LEN];
    let n = read_full(&mut r, &mut header)?;
    let count = decode_header(&header[..n], kind)?;
    const CHUNK: usize = RECORD_LEN * 16_384;
    let mut buf = vec![0u8; CHUNK];
    let mut sum = Checksum::default();
    let mut seen: u64 = 0;
    while seen < count {
        let want = (((count - seen) as usize).min(CHUNK / RECORD_LEN)) * RECORD_LEN;
        let got = read_full(&mut r, &mut buf[..want])?;
        if got < want {
            return Err(err(
                Some(seen + (got / RECORD_LEN) as u64),
                "record",
                format!(
                    "file ends after {} of {count} records (truncated)",
                    seen + (got / RECORD_LEN) as u64
                ),
            ));
        }
        sum.update(&buf[..want]);
        for rec in buf[..want].chunks_exact(RECORD_LEN) {
            on_record(seen, rec.try_into().expect("128 bytes"));
            seen += 1;
        }
    }
    let mut trailer = [0u8; TRAILER_LEN];
    let got = read_full(&mut r, &mut trailer)?;
    if got < TRAILER_LEN || trailer[..8] != TRAILER_MAGIC {
        return Err(err(None, "trailer", format!("missing or damaged after {count} records (more records than the header says, or truncated)")));
    }
    let t_count = u64::from_le_bytes(trailer[8..16].try_into().expect("8"));
    if t_count != count {
        return Err(err(
            None,
            "trailer.count",
            format!("{t_count}, but the header says {count}"),
        ));
    }
    let t_sum = u64::from_le_bytes(trailer[16..24].try_into().expect("8"));
    if t_sum != sum.value() {
        return Err(err(
            None,
            "trailer.checksum",
            format!("{t_sum:016x} does not match the records ({:016x}): the file was altered or damaged", sum.value()),
        ));
    }
    let mut extra = [0u8; 1];
    if read_full(&mut r, &mut extra)? != 0 {
        return Err(err(None, "trailer", "bytes after the trailer"));
    }
    Ok(count)
}

/// Reads an accounts file, handing each account to `on_account`.
pub fn read_accounts<R: Read>(
    r: R,
    mut on_account: impl FnMut(Account),
) -> Result<u64, ExportError> {
    read_records(r, RecordKind::Accounts, |_, b| {
        on_account(decode_account(b))
    })
}

/// Reads a transfers file, handing each transfer to `on_transfer`.
pub fn read_transfers<R: Read>(
    r: R,
    mut on_transfer: impl FnMut(Transfer),
) -> Result<u64, ExportError> {
    read_records(r, RecordKind::Transfers, |_, b| {
        on_transfer(decode_transfer(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_account(i: u128) -> Account {
        Account {
            id: i + 1,
            debits_pending: 2 * i,
            debits_posted: 3 * i + u64::MAX as u128,
            credits_pending: 5,
            credits_posted: 7 * i,
            user_data_128: 11,
            user_data_64: 13,
            user_data_32: 17,
            reserved: 0,
            ledger: 1003,
            code: 2,
            flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            timestamp: 99 + i as u64,
        }
    }

    #[test]
    fn accounts_and_transfers_round_trip() {
        let accounts: Vec<Account> = (0..20_000).map(sample_account).collect();
        let mut file = Vec::new();
        write_accounts(&mut file, &accounts).unwrap();
        assert_eq!(
            file.len(),
            HEADER_LEN + accounts.len() * RECORD_LEN + TRAILER_LEN
        );
        let mut back = Vec::new();
        assert_eq!(read_accounts(&file[..], |a| back.push(a)).unwrap(), 20_000);
        assert_eq!(back, accounts);
        let t = Transfer {
            id: 1 << 100,
            debit_account_id: 2,
            credit_account_id: 3,
            amount: 4,
            pending_id: 5,
            user_data_128: 6,
            user_data_64: 7,
            user_data_32: 8,
            timeout: 9,
            ledger: 10,
            code: 11,
            flags: TransferFlags::PENDING,
            timestamp: 12,
        };
        assert_eq!(decode_transfer(&encode_transfer(&t)), t);
        let mut file = Vec::new();
        write_transfers(&mut file, &[t, t]).unwrap();
        let mut n = 0;
        read_transfers(&file[..], |x| {
            assert_eq!(x, t);
            n += 1
        })
        .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn damaged_files_are_refused_with_a_place() {
        let accounts: Vec<Account> = (0..10).map(sample_account).collect();
        let mut file = Vec::new();
        write_accounts(&mut file, &accounts).unwrap();
        // An edited balance.
        let mut edited = file.clone();
        edited[HEADER_LEN + 3 * RECORD_LEN + 70] ^= 1;
        let e = read_accounts(&edited[..], |_| {}).unwrap_err();
        assert_eq!(e.field, "trailer.checksum");
        // Truncated.
        let e = read_accounts(&file[..HEADER_LEN + 5 * RECORD_LEN + 3], |_| {}).unwrap_err();
        assert_eq!(e.record, Some(5));
        // The wrong kind.
        let e = read_transfers(&file[..], |_| {}).unwrap_err();
        assert_eq!(e.field, "header.kind");
        // Not an export at all.
        let e = read_accounts(&b"id,balance\n1,2\n"[..], |_| {}).unwrap_err();
        assert_eq!(e.field, "header");
    }
}
