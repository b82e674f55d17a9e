//! What can go wrong with a store, in terms an operator can act on.

use crate::storage::StorageError;
use core::fmt;

/// A place in the store that does not hold what it must: file, byte offset, the record's
/// sequence number when there is one, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    pub file: String,
    pub offset: u64,
    pub seq: Option<u64>,
    pub reason: String,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.file, self.offset)?;
        if let Some(seq) = self.seq {
            write!(f, " (record {seq})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The storage failed. On a write or a sync this is fatal: the store is unusable until it
    /// is opened again, which recovers it.
    Storage(StorageError),
    /// The store holds something it must not: refuse to start, and say where.
    Corrupt(Corruption),
    /// There is no store here (no superblock), or the directory is not empty where a new store
    /// was asked for.
    NotAStore { reason: String },
    /// The store's user refused a record or a checkpoint while recovering (its own check failed).
    Replay { seq: u64, reason: String },
    /// An earlier error stopped this store; open it again to recover.
    Stopped,
    /// A record body larger than the log allows.
    TooLarge { len: usize, max: u32 },
}

impl From<StorageError> for StoreError {
    fn from(e: StorageError) -> StoreError {
        StoreError::Storage(e)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Storage(e) => write!(f, "storage error: {e}"),
            StoreError::Corrupt(c) => write!(f, "corrupt store: {c}"),
            StoreError::NotAStore { reason } => write!(f, "not a store: {reason}"),
            StoreError::Replay { seq, reason } => {
                write!(f, "replay refused record {seq}: {reason}")
            }
            StoreError::Stopped => write!(f, "the store stopped after an earlier error"),
            StoreError::TooLarge { len, max } => {
                write!(f, "record body of {len} bytes exceeds the limit of {max}")
            }
        }
    }
}

impl std::error::Error for StoreError {}
