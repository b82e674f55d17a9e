//! The durable ledger read from its store as a stream: every account and transfer recovery
//! would rebuild, handed out one at a time, without the ledger in memory.
//!
//! The checkpoint's records stream (one verified chunk at a time). The log after it holds
//! requests with their logged outcomes, but what a request committed (a post's amount and
//! accounts, a balancing amount, the timestamps) needs ledger state, so the log's effect is
//! rebuilt in a small ledger that holds only what the log touches: the accounts and transfers
//! its requests name (and, for expiry, every pending transfer still open with a timeout), taken
//! from the checkpoint. Each request is applied with [`apply_entry`], which checks it gets the
//! logged results and timestamp: a missing piece of state could not go unnoticed. Memory is
//! that of the log after the checkpoint (which the ledger's checkpoint policy bounds) and two
//! chunks, not that of the ledger.
//!
//! Read order: the log (the ids it names), the checkpoint's transfers and statuses (stashing
//! those the log needs, with their accounts), its failed ids, its accounts (stashing the ones
//! touched, handing out the others), then the log again, applied to the small ledger, whose
//! accounts and new transfers are handed out last.

use crate::codec::{self, Events, StateLayout, KIND_GROUP, STATE_HEADER};
use crate::ledger::{apply_entry, PinnedClock};
use acme_ledger::export::{decode_account, decode_transfer, RECORD_LEN};
use acme_ledger::{Account, MemLedger, MemState, Transfer, TransferFlags};
use acme_store::checkpoint::CheckpointHeader;
use acme_store::scan::TornTail;
use acme_store::stream::{scan_log, Located, StateReader};
use acme_store::superblock::CheckpointRef;
use acme_store::{ChainHead, Storage, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Where the records go.
pub trait Sink {
    fn account(&mut self, a: &Account);
    fn transfer(&mut self, t: &Transfer);
}

/// What the read found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// The record the checkpoint covers (0: none, the whole log was read).
    pub checkpoint_seq: u64,
    pub checkpoint_accounts: u64,
    pub checkpoint_transfers: u64,
    /// Records and requests after the checkpoint.
    pub replayed: u64,
    pub entries: u64,
    pub head: ChainHead,
    pub torn: Option<TornTail>,
    /// Accounts and transfers the small ledger held (from the checkpoint and the log).
    pub tail_accounts: u64,
    pub tail_transfers: u64,
    /// The latest timestamp of any record handed out.
    pub latest_timestamp: u64,
}

/// Status code of a pending transfer still open (`acme_ledger::mem_state`'s coding).
const STATUS_PENDING: u8 = 1;
const STATUS_NONE: u8 = 0;
const STATUS_MAX: u8 = 4;
/// Statuses read at a time (alongside the transfers they belong to).
const STATUS_BLOCK: u64 = 1 << 16;

/// The ids the log's requests name.
#[derive(Default)]
struct Named {
    accounts: BTreeSet<u128>,
    transfers: BTreeSet<u128>,
}

/// Reads the store at checkpoint `candidate` (`None`: no checkpoint, the whole log) plus the log
/// after it, handing every account and transfer to `sink`. An error leaves `sink` with part of
/// the ledger: the caller drops it (and, for a checkpoint that did not verify, may start again
/// with the previous one, as recovery would).
pub fn stream_store(
    storage: &mut dyn Storage,
    located: &Located,
    candidate: Option<CheckpointRef>,
    sink: &mut dyn Sink,
) -> Result<StreamReport, StoreError> {
    let mut reader = candidate
        .map(|c| StateReader::open(storage, &located.superblock, c))
        .transpose()?;
    let layout = reader
        .as_mut()
        .map(|r| state_layout(storage, r))
        .transpose()?;
    let header = reader.as_ref().map(|r| *r.header());
    let mut report = StreamReport {
        checkpoint_seq: header.map_or(0, |h| h.seq),
        ..StreamReport::default()
    };
    let mut named = Named::default();
    scan_log(storage, located, header.as_ref(), &mut |_, kind, body| {
        name_ids(kind, body, &mut named)
    })?;
    let mut state = MemState::default();
    if let (Some(r), Some(l)) = (reader.as_mut(), layout) {
        state.prepare_timestamp = l.prepare_timestamp;
        stream_transfers(storage, r, &l, &mut named, &mut state, sink, &mut report)?;
        read_failed(storage, r, &l, &named, &mut state)?;
        stream_accounts(storage, r, &l, &named, &mut state, sink, &mut report)?;
    }
    apply_tail(storage, located, header.as_ref(), state, sink, &mut report)?;
    Ok(report)
}

/// Rebuilds the log's effect on the small ledger and hands out its accounts and the transfers
/// the log added.
fn apply_tail(
    storage: &mut dyn Storage,
    located: &Located,
    header: Option<&CheckpointHeader>,
    state: MemState,
    sink: &mut dyn Sink,
    report: &mut StreamReport,
) -> Result<(), StoreError> {
    let checkpoint_seq = report.checkpoint_seq;
    let refused = |reason: String| StoreError::Replay {
        seq: checkpoint_seq,
        reason,
    };
    let stashed: BTreeSet<u128> = state.transfers.iter().map(|t| t.id).collect();
    let pinned = Arc::new(PinnedClock::default());
    let mut mem = MemLedger::from_state(pinned.clone(), state).map_err(refused)?;
    let end = scan_log(storage, located, header, &mut |_, kind, body| {
        if kind != KIND_GROUP {
            return Err(format!("unknown record kind {kind}"));
        }
        for entry in codec::decode_group(body)? {
            apply_entry(&mut mem, &pinned, &entry)?;
            report.entries += 1;
        }
        // Counted here: the scan also reads (and checks) the records the checkpoint covers.
        report.replayed += 1;
        Ok(())
    })?;
    // A read through the port at the last logged clock reading expires what is due first; the
    // small ledger holds every pending transfer still open with a timeout, so it can.
    mem.expire_due();
    report.torn = end.torn;
    report.head = if end.records > 0 {
        ChainHead {
            seq: end.last_seq,
            checksum: end.head,
        }
    } else {
        ChainHead {
            seq: header.map_or(0, |h| h.seq),
            checksum: header.map_or(0, |h| h.head),
        }
    };
    report.tail_accounts = mem.accounts().len() as u64;
    report.tail_transfers = mem.transfers().len() as u64;
    for a in mem.accounts() {
        report.latest_timestamp = report.latest_timestamp.max(a.timestamp);
        sink.account(a);
    }
    for t in mem.transfers().iter().filter(|t| !stashed.contains(&t.id)) {
        report.latest_timestamp = report.latest_timestamp.max(t.timestamp);
        sink.transfer(t);
    }
    Ok(())
}

fn state_layout(storage: &mut dyn Storage, r: &mut StateReader) -> Result<StateLayout, StoreError> {
    let len = r.header().state_len;
    let mut b = [0u8; STATE_HEADER];
    let n = (len as usize).min(STATE_HEADER);
    r.read(storage, 0, &mut b[..n])?;
    StateLayout::decode(&b[..n], len).map_err(|reason| StoreError::Replay {
        seq: r.header().seq,
        reason,
    })
}

fn name_ids(kind: u16, body: &[u8], named: &mut Named) -> Result<(), String> {
    if kind != KIND_GROUP {
        return Err(format!("unknown record kind {kind}"));
    }
    for entry in codec::decode_group(body)? {
        match &entry.events {
            Events::Accounts(a) => named.accounts.extend(a.iter().map(|a| a.id)),
            Events::Transfers(ts) => {
                for t in ts {
                    named.transfers.insert(t.id);
                    if t.pending_id != 0 {
                        named.transfers.insert(t.pending_id);
                    }
                    named.accounts.insert(t.debit_account_id);
                    named.accounts.insert(t.credit_account_id);
                }
            }
            Events::None => {}
        }
    }
    Ok(())
}

/// Timestamps must rise through each kind of record and stay within the prepare timestamp, as
/// restoring the state checks.
fn check_timestamp(last: &mut u64, ts: u64, prepare: u64, what: &str) -> Result<(), String> {
    if ts <= *last || ts > prepare {
        return Err(format!(
            "{what} timestamp {ts} after {} (prepare timestamp {prepare})",
            *last
        ));
    }
    *last = ts;
    Ok(())
}

fn stream_transfers(
    storage: &mut dyn Storage,
    r: &mut StateReader,
    l: &StateLayout,
    named: &mut Named,
    state: &mut MemState,
    sink: &mut dyn Sink,
    report: &mut StreamReport,
) -> Result<(), StoreError> {
    let seq = r.header().seq;
    let refused = |reason: String| StoreError::Replay { seq, reason };
    let mut statuses_reader = r.clone();
    let mut statuses = Vec::new();
    let mut record = [0u8; RECORD_LEN];
    let mut last = 0;
    for block in (0..l.transfers).step_by(STATUS_BLOCK as usize) {
        let n = STATUS_BLOCK.min(l.transfers - block);
        statuses.resize(n as usize, 0);
        statuses_reader.read(storage, l.statuses_at() + block, &mut statuses)?;
        for (i, &status) in statuses.iter().enumerate() {
            let at = l.transfers_at() + (block + i as u64) * RECORD_LEN as u64;
            r.read(storage, at, &mut record)?;
            let t = decode_transfer(&record);
            check_timestamp(&mut last, t.timestamp, l.prepare_timestamp, "transfer")
                .map_err(refused)?;
            let pending = t.flags.contains(TransferFlags::PENDING);
            if status > STATUS_MAX || pending == (status == STATUS_NONE) {
                return Err(refused(format!(
                    "transfer {} has status {status} but flags {:?}",
                    t.id, t.flags
                )));
            }
            report.latest_timestamp = report.latest_timestamp.max(t.timestamp);
            sink.transfer(&t);
            let expires = status == STATUS_PENDING && t.timeout > 0;
            if expires || named.transfers.contains(&t.id) {
                named.accounts.insert(t.debit_account_id);
                named.accounts.insert(t.credit_account_id);
                state.transfers.push(t);
                state.pending_status.push(status);
            }
        }
    }
    report.checkpoint_transfers = l.transfers;
    Ok(())
}

fn read_failed(
    storage: &mut dyn Storage,
    r: &mut StateReader,
    l: &StateLayout,
    named: &Named,
    state: &mut MemState,
) -> Result<(), StoreError> {
    let mut id = [0u8; 16];
    for i in 0..l.failed {
        r.read(storage, l.failed_at() + i * 16, &mut id)?;
        let id = u128::from_le_bytes(id);
        if named.transfers.contains(&id) {
            state.failed_ids.push(id);
        }
    }
    Ok(())
}

fn stream_accounts(
    storage: &mut dyn Storage,
    r: &mut StateReader,
    l: &StateLayout,
    named: &Named,
    state: &mut MemState,
    sink: &mut dyn Sink,
    report: &mut StreamReport,
) -> Result<(), StoreError> {
    let seq = r.header().seq;
    let mut record = [0u8; RECORD_LEN];
    let mut last = 0;
    for i in 0..l.accounts {
        r.read(
            storage,
            l.accounts_at() + i * RECORD_LEN as u64,
            &mut record,
        )?;
        let a = decode_account(&record);
        check_timestamp(&mut last, a.timestamp, l.prepare_timestamp, "account")
            .map_err(|reason| StoreError::Replay { seq, reason })?;
        if named.accounts.contains(&a.id) {
            state.accounts.push(a);
        } else {
            report.latest_timestamp = report.latest_timestamp.max(a.timestamp);
            sink.account(&a);
        }
    }
    report.checkpoint_accounts = l.accounts;
    Ok(())
}
