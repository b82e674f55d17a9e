//! What the host writes to its store, and how: journal records and snapshots, in JSON with
//! stable names (serde's variant and field names), so that a record written today still decodes
//! after a field is added (`#[serde(default)]` on the new field) and an operator can read one.
//!
//! Every record and snapshot carries the code version of the process that wrote it. Recovery
//! never replays a record through code of another version, and restores an older snapshot only
//! through the process's declared migration.

use super::state::HostState;
use crate::calendar::Ts;
use crate::process::{Effect, Input};
use serde::{Deserialize, Serialize};

/// The version an operator's record (a re-drive request) carries: any code may apply it.
pub const OPERATOR_VERSION: u32 = 0;

/// One journal record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The code version of the process that wrote it.
    pub version: u32,
    /// When the input was handled.
    pub at: Ts,
    pub entry: Entry,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// An input, the effects it produced, and the pending effects completed since the last
    /// record (the ledger request this input answers, messages acknowledged, alerts raised).
    Step {
        input: Input,
        effects: Vec<Effect>,
        done: Vec<u64>,
        /// The dead letter this input came from, when an operator re-drove it.
        #[serde(default)]
        redrive: Option<u64>,
    },
    /// An input the process panicked on or declared poison: kept, acknowledged, not applied.
    DeadLetter {
        input: Input,
        reason: String,
        done: Vec<u64>,
        /// The dead letter this was a re-drive of (it failed again).
        #[serde(default)]
        redrive: Option<u64>,
    },
    /// Pending effects completed with no input to carry them (before a snapshot or a stop).
    Progress { done: Vec<u64> },
    /// An operator's request to handle dead letter `dead_letter` again.
    Redrive { dead_letter: u64 },
}

pub fn encode_record(record: &Record) -> Vec<u8> {
    serde_json::to_vec(record).expect("a journal record always encodes")
}

pub fn decode_record(bytes: &[u8]) -> Result<Record, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("undecodable journal record: {e}"))
}

/// What a snapshot says of itself, before the process's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    pub process: String,
    pub version: u32,
    pub at: Ts,
    pub host: HostState,
}

/// A snapshot: its header as one line of JSON, a newline, then the process's state as JSON.
pub fn encode_snapshot(header: &SnapshotHeader, state: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(header).expect("a snapshot header always encodes");
    out.push(b'\n');
    out.extend_from_slice(state);
    out
}

/// Splits a snapshot into its header and the process's state.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(SnapshotHeader, &[u8]), String> {
    let split = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("snapshot without a header line")?;
    let mut header: SnapshotHeader = serde_json::from_slice(&bytes[..split])
        .map_err(|e| format!("undecodable snapshot header: {e}"))?;
    header.host.reindex();
    Ok((header, &bytes[split + 1..]))
}
