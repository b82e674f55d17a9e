//! The durable ledger's bytes: log entries (one request each, grouped into a record) and the
//! checkpoint state. Decoding never trusts a count it has not bounded and never panics.
//!
//! ```text
//! record body (kind KIND_GROUP): entry_count u32 | entries
//! entry : op u8 | 3 zero | event_count u32 | now_ns u64 | prepare_timestamp_after u64
//!         | failed_count u32 | 4 zero | events (128 bytes each, TigerBeetle's layout)
//!         | failures (index u32, code u32) for every event whose result is not ok
//! state : magic "ACMS" | version u32 | prepare_timestamp u64 | accounts u64 | transfers u64
//!         | failed u64 | accounts * 128 | transfers * 128 | statuses (1 byte each) | failed * 16
//! ```
//! Each entry carries what replay needs to be exact: the clock reading the request was prepared
//! at, and the outcome (results and the timestamp after) that replay must reproduce.

use acme_ledger::export::{
    decode_account, decode_transfer, encode_account, encode_transfer, RECORD_LEN,
};
use acme_ledger::{Account, MemState, Transfer, BATCH_EVENTS_MAX};

pub const KIND_GROUP: u16 = 1;
const ENTRY_HEADER: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    CreateAccounts = 1,
    CreateTransfers = 2,
    /// A read that expired pending transfers first.
    Pulse = 3,
}

/// One logged request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Events {
    Accounts(Vec<Account>),
    Transfers(Vec<Transfer>),
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub op: Op,
    pub now_ns: u64,
    pub prepare_timestamp_after: u64,
    pub events: Events,
    /// `(index, result code)` of every event whose result is not `ok`.
    pub failures: Vec<(u32, u32)>,
}

pub fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    let count = match &e.events {
        Events::Accounts(a) => a.len(),
        Events::Transfers(t) => t.len(),
        Events::None => 0,
    };
    out.push(e.op as u8);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(&e.now_ns.to_le_bytes());
    out.extend_from_slice(&e.prepare_timestamp_after.to_le_bytes());
    out.extend_from_slice(&(e.failures.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    match &e.events {
        Events::Accounts(a) => a
            .iter()
            .for_each(|x| out.extend_from_slice(&encode_account(x))),
        Events::Transfers(t) => t
            .iter()
            .for_each(|x| out.extend_from_slice(&encode_transfer(x))),
        Events::None => {}
    }
    for (index, code) in &e.failures {
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&code.to_le_bytes());
    }
}

/// A group record's body from its entries (already encoded one after the other).
pub fn group_body(entry_count: u32, entries: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + entries.len());
    body.extend_from_slice(&entry_count.to_le_bytes());
    body.extend_from_slice(entries);
    body
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| {
            format!(
                "{what}: {n} bytes needed at {}, {} left",
                self.at,
                self.b.len() - self.at
            )
        })?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4"),
        ))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8"),
        ))
    }
    fn zeros(&mut self, n: usize, what: &str) -> Result<(), String> {
        if self.take(n, what)?.iter().any(|&x| x != 0) {
            return Err(format!("{what}: reserved bytes not zero"));
        }
        Ok(())
    }
    fn record(&mut self, what: &str) -> Result<&'a [u8; RECORD_LEN], String> {
        Ok(self.take(RECORD_LEN, what)?.try_into().expect("sized"))
    }
    fn done(&self) -> bool {
        self.at == self.b.len()
    }
}

/// Decodes a group record's body.
pub fn decode_group(body: &[u8]) -> Result<Vec<Entry>, String> {
    let mut r = Reader { b: body, at: 0 };
    let count = r.u32("entry count")?;
    // Every entry takes at least its header: bound the count by the bytes there are.
    if count as usize > body.len() / ENTRY_HEADER {
        return Err(format!(
            "{count} entries cannot fit in {} bytes",
            body.len()
        ));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        entries.push(decode_entry(&mut r)?);
    }
    if !r.done() {
        return Err("bytes after the last entry".into());
    }
    Ok(entries)
}

fn decode_entry(r: &mut Reader<'_>) -> Result<Entry, String> {
    let op = match r.u8("op")? {
        1 => Op::CreateAccounts,
        2 => Op::CreateTransfers,
        3 => Op::Pulse,
        other => return Err(format!("unknown op {other}")),
    };
    r.zeros(3, "op padding")?;
    let count = r.u32("event count")? as usize;
    if count > BATCH_EVENTS_MAX || (op == Op::Pulse && count != 0) {
        return Err(format!("{count} events for {op:?}"));
    }
    let now_ns = r.u64("now")?;
    let prepare_timestamp_after = r.u64("prepare timestamp")?;
    let failed = r.u32("failure count")? as usize;
    if failed > count {
        return Err(format!("{failed} failures for {count} events"));
    }
    r.zeros(4, "entry padding")?;
    let events = match op {
        Op::CreateAccounts => Events::Accounts(
            (0..count)
                .map(|_| r.record("account").map(decode_account))
                .collect::<Result<_, _>>()?,
        ),
        Op::CreateTransfers => Events::Transfers(
            (0..count)
                .map(|_| r.record("transfer").map(decode_transfer))
                .collect::<Result<_, _>>()?,
        ),
        Op::Pulse => Events::None,
    };
    let mut failures = Vec::with_capacity(failed);
    for _ in 0..failed {
        let index = r.u32("failure index")?;
        let code = r.u32("failure code")?;
        if index as usize >= count || failures.last().is_some_and(|&(i, _)| i >= index) || code == 0
        {
            return Err(format!("bad failure entry ({index}, {code})"));
        }
        failures.push((index, code));
    }
    Ok(Entry {
        op,
        now_ns,
        prepare_timestamp_after,
        events,
        failures,
    })
}

const STATE_MAGIC: u32 = u32::from_le_bytes(*b"ACMS");
const STATE_VERSION: u32 = 1;

/// The checkpoint state of a ledger.
pub fn encode_state(
    accounts: &[Account],
    transfers: &[Transfer],
    statuses: &[u8],
    failed: &[u128],
    prepare_timestamp: u64,
) -> Vec<u8> {
    assert_eq!(statuses.len(), transfers.len());
    let len =
        40 + (accounts.len() + transfers.len()) * RECORD_LEN + statuses.len() + failed.len() * 16;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&STATE_MAGIC.to_le_bytes());
    out.extend_from_slice(&STATE_VERSION.to_le_bytes());
    out.extend_from_slice(&prepare_timestamp.to_le_bytes());
    out.extend_from_slice(&(accounts.len() as u64).to_le_bytes());
    out.extend_from_slice(&(transfers.len() as u64).to_le_bytes());
    out.extend_from_slice(&(failed.len() as u64).to_le_bytes());
    accounts
        .iter()
        .for_each(|a| out.extend_from_slice(&encode_account(a)));
    transfers
        .iter()
        .for_each(|t| out.extend_from_slice(&encode_transfer(t)));
    out.extend_from_slice(statuses);
    failed
        .iter()
        .for_each(|id| out.extend_from_slice(&id.to_le_bytes()));
    assert_eq!(out.len(), len);
    out
}

/// The fixed part of a checkpoint state, and where its parts are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateLayout {
    pub prepare_timestamp: u64,
    pub accounts: u64,
    pub transfers: u64,
    pub failed: u64,
}

pub const STATE_HEADER: usize = 40;

impl StateLayout {
    /// The layout of a state of `len` bytes starting with `b`; an error when its counts do not
    /// add up to its length.
    pub fn decode(b: &[u8], len: u64) -> Result<StateLayout, String> {
        let mut r = Reader { b, at: 0 };
        if r.u32("state magic")? != STATE_MAGIC {
            return Err("bad state magic".into());
        }
        if r.u32("state version")? != STATE_VERSION {
            return Err("unknown state version".into());
        }
        let layout = StateLayout {
            prepare_timestamp: r.u64("prepare timestamp")?,
            accounts: r.u64("account count")?,
            transfers: r.u64("transfer count")?,
            failed: r.u64("failed count")?,
        };
        let need = layout
            .accounts
            .checked_add(layout.transfers)
            .and_then(|n| n.checked_mul(RECORD_LEN as u64))
            .and_then(|n| n.checked_add(layout.transfers))
            .and_then(|n| layout.failed.checked_mul(16).and_then(|f| n.checked_add(f)));
        if need != len.checked_sub(STATE_HEADER as u64) {
            return Err("state counts do not match its length".into());
        }
        Ok(layout)
    }

    pub fn accounts_at(&self) -> u64 {
        STATE_HEADER as u64
    }
    pub fn transfers_at(&self) -> u64 {
        self.accounts_at() + self.accounts * RECORD_LEN as u64
    }
    pub fn statuses_at(&self) -> u64 {
        self.transfers_at() + self.transfers * RECORD_LEN as u64
    }
    pub fn failed_at(&self) -> u64 {
        self.statuses_at() + self.transfers
    }
}

pub fn decode_state(b: &[u8]) -> Result<MemState, String> {
    let StateLayout {
        prepare_timestamp,
        accounts,
        transfers,
        failed,
    } = StateLayout::decode(b, b.len() as u64)?;
    let mut r = Reader {
        b,
        at: STATE_HEADER,
    };
    let accounts = (0..accounts)
        .map(|_| r.record("account").map(decode_account))
        .collect::<Result<_, _>>()?;
    let transfers: Vec<Transfer> = (0..transfers)
        .map(|_| r.record("transfer").map(decode_transfer))
        .collect::<Result<_, _>>()?;
    let pending_status = r.take(transfers.len(), "statuses")?.to_vec();
    let failed_ids = (0..failed)
        .map(|_| {
            r.take(16, "failed id")
                .map(|s| u128::from_le_bytes(s.try_into().expect("16")))
        })
        .collect::<Result<_, _>>()?;
    Ok(MemState {
        accounts,
        transfers,
        pending_status,
        failed_ids,
        prepare_timestamp,
    })
}
