//! The storage port: a flat directory of files, read and written at offsets, every call fallible.
//!
//! The store is written against this trait only, so the same code runs on real files (the
//! `acme-store-fs` adapter) and on the simulator's disk that lies (`acme_sim::disk`). The contract
//! is that of a POSIX file system with its power-loss semantics made explicit:
//!
//! - `write_at` reaches the file's *volatile* contents: a later `read_at` sees it, but a crash may
//!   lose it, keep it, or tear it per sector until `sync` of that file returns.
//! - Creating a file (the first `write_at` to a new name), `rename` and `remove` change the
//!   directory, which is durable only after `sync_dir`.
//! - An error from `write_at`, `sync` or `sync_dir` leaves the file in an unknown state: callers
//!   treat it as fatal and never retry a sync (fsyncgate: a retried fsync can "succeed" after the
//!   kernel dropped the dirty pages).
//! - A read past the end returns fewer bytes; the store never trusts a length it has not checked.

use core::fmt;

/// What went wrong in a storage call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The file does not exist.
    NotFound,
    /// The storage was opened read-only and the call would change it.
    ReadOnly,
    /// The device reported an error (EIO, ENOSPC, ...): on a write or a sync this is fatal.
    Io,
    /// The simulated machine lost power during or before this call (simulator only).
    Crashed,
}

/// A failed storage call: which, on which file, at which offset, and the device's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub op: &'static str,
    pub file: String,
    pub offset: u64,
    pub reason: String,
}

impl StorageError {
    pub fn new(
        kind: StorageErrorKind,
        op: &'static str,
        file: &str,
        offset: u64,
        reason: impl Into<String>,
    ) -> StorageError {
        StorageError {
            kind,
            op,
            file: file.to_string(),
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} at offset {}: {}",
            self.op, self.file, self.offset, self.reason
        )
    }
}

impl std::error::Error for StorageError {}

/// A flat directory of files. Names are plain file names (no `/`), at most 64 bytes.
pub trait Storage {
    /// Reads into `buf` from `offset`; returns how many bytes were read (fewer at the end of the
    /// file, 0 at or past it). `NotFound` if the file does not exist.
    fn read_at(&mut self, file: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError>;

    /// Writes `data` at `offset`, creating the file if it does not exist and extending it (with
    /// zeros in any gap) if `offset` lies past its end.
    fn write_at(&mut self, file: &str, offset: u64, data: &[u8]) -> Result<(), StorageError>;

    /// Makes the file's contents and size durable (fdatasync). Never retried after an error.
    fn sync(&mut self, file: &str) -> Result<(), StorageError>;

    /// Cuts the file to `len` bytes (durable after `sync`).
    fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError>;

    /// The file's current size in bytes.
    fn size(&mut self, file: &str) -> Result<u64, StorageError>;

    /// Every file name, sorted.
    fn list(&mut self) -> Result<Vec<String>, StorageError>;

    /// Renames `from` to `to`, replacing `to` if it exists (durable after `sync_dir`).
    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError>;

    /// Removes the file (durable after `sync_dir`).
    fn remove(&mut self, file: &str) -> Result<(), StorageError>;

    /// Makes the directory's entries durable: created, renamed and removed files.
    fn sync_dir(&mut self) -> Result<(), StorageError>;

    /// Whether this storage refuses every change (tools that only read open it so).
    fn read_only(&self) -> bool;
}

/// Reads exactly `buf.len()` bytes or reports how many were there.
pub fn read_exact_at(
    storage: &mut dyn Storage,
    file: &str,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, StorageError> {
    let mut done = 0;
    while done < buf.len() {
        let n = storage.read_at(file, offset + done as u64, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}
