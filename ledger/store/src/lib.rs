//! The durable store's engine, written against the [`Storage`] port only.
//!
//! A store is a directory holding a superblock (the durable boundary, in two checksummed copies),
//! log segments (records of committed batches, each with a header checksum, a body checksum and
//! the checksum of the record before it, so the log is a hash chain from its first record to its
//! last), and checkpoints (a whole state, checksummed in chunks, naming the record it covers).
//! Opening a store recovers it: the newest checkpoint that verifies, then every record after it,
//! cutting a torn tail that a crash left and refusing, with file, offset, sequence number and
//! reason, anything that is corruption. The engine knows nothing of what the records mean: the
//! durable ledger (`acme-ledger-durable`) puts ledger batches in them, and process journals can
//! use the same log.
//!
//! This crate is pure: no file, clock, thread or randomness of its own.

pub mod chain;
pub mod checkpoint;
pub mod checksum;
mod codec;
pub mod error;
pub mod mem_storage;
pub mod record;
pub mod scan;
pub mod storage;
pub mod store;
pub mod stream;
pub mod superblock;
pub mod verify;

pub use error::{Corruption, StoreError};
pub use mem_storage::MemStorage;
pub use storage::{read_exact_at, Storage, StorageError, StorageErrorKind};
pub use store::{ChainHead, CheckpointReport, Config, Recovery, Replay, Store};
pub use verify::{verify, VerifyReport};
