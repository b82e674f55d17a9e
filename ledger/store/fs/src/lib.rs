//! [`FileStorage`]: the [`Storage`] port on a real directory, and the only place the durable
//! store touches the file system. The engine (`acme-store`) is pure and written against the port
//! alone; this adapter maps each call to one positional system call on a file of one flat
//! directory (`pread`, `pwrite`, `fdatasync`, `ftruncate`, `fstat`, `rename`, `unlink`, and
//! `fsync` of the directory), turns every `io::Error` into a [`StorageError`] naming the call,
//! the file and the offset, and never retries: a failed write or sync is reported once and the
//! caller treats it as fatal (fsyncgate). It adds no durability of its own: data is durable only
//! after `sync` of its file, a created, renamed or removed name only after `sync_dir`, exactly as
//! the port's contract says. A directory is opened by one writer at a time, enforced with an
//! exclusive `flock` on a file named `LOCK` inside it; readers (verification and inspection
//! tools) open it read-only and change nothing, not even that lock file.
//!
//! This is an adapter crate: it touches files, which the pure crates may not. Hence it opts out
//! of the determinism rules of `clippy.toml`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_store::{Storage, StorageError, StorageErrorKind};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The lock file's name: held (exclusive) by the one writer, never listed, never a storage name.
const LOCK: &str = "LOCK";

/// The longest file name the port allows, in bytes.
const MAX_NAME: usize = 64;

/// How a directory is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One writer: creates the directory if missing and holds an exclusive lock on it.
    ReadWrite,
    /// Reading only: the directory must exist; nothing in it is created or changed.
    ReadOnly,
}

/// The storage port on one directory of real files.
#[derive(Debug)]
pub struct FileStorage {
    /// Absolute (not canonicalised) path of the directory.
    dir: PathBuf,
    mode: Mode,
    /// Open handles by file name, so that a sync reaches the descriptor that wrote and an error
    /// the kernel reports on it is not lost by closing it.
    files: BTreeMap<String, File>,
    /// The locked `LOCK` file, held open for as long as the storage lives (closing it releases
    /// the lock). `None` for a read-only open that could not take the shared lock.
    _lock: Option<File>,
}

impl FileStorage {
    /// Opens the directory `dir`.
    ///
    /// `ReadWrite`: creates the directory (and any missing ancestors) if missing, fsyncing the
    /// parent of each one created, and fsyncs the parent of an existing one too, since an
    /// earlier run may have crashed before doing so; takes an exclusive lock on the file `LOCK`
    /// in it (creating it), failing with an error naming the directory if anyone else holds it;
    /// then fsyncs the directory.
    ///
    /// `ReadOnly`: the directory must exist; takes a shared lock on `LOCK` if it can (the file
    /// exists and no writer holds it), which keeps a writer out while this storage lives, and
    /// otherwise goes on without one (a missing `LOCK` is not created). Never creates or
    /// changes anything.
    pub fn open(dir: &Path, mode: Mode) -> Result<FileStorage, StorageError> {
        let dir = std::path::absolute(dir)
            .map_err(|e| dir_error(dir, "cannot resolve the directory path", &e))?;
        let lock = match mode {
            Mode::ReadWrite => {
                let created = create_dir_durably(&dir)
                    .map_err(|e| dir_error(&dir, "cannot create the directory", &e))?;
                if !created {
                    if let Some(parent) = parent_of(&dir) {
                        sync_dir_path(parent).map_err(|e| {
                            dir_error(&dir, "cannot fsync the parent of the directory", &e)
                        })?;
                    }
                }
                let lock = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(dir.join(LOCK))
                    .map_err(|e| {
                        dir_error(&dir, "cannot open the lock file of the directory", &e)
                    })?;
                match lock.try_lock() {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => {
                        return Err(StorageError::new(
                            StorageErrorKind::Io,
                            "open",
                            &dir.display().to_string(),
                            0,
                            format!(
                                "directory {} is locked: another process has this store open \
                                 (a writer, or a reader holding the shared lock)",
                                dir.display()
                            ),
                        ))
                    }
                    Err(TryLockError::Error(e)) => {
                        return Err(dir_error(&dir, "cannot lock the directory", &e))
                    }
                }
                sync_dir_path(&dir)
                    .map_err(|e| dir_error(&dir, "cannot fsync the directory", &e))?;
                Some(lock)
            }
            Mode::ReadOnly => {
                match fs::metadata(&dir) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(StorageError::new(
                            StorageErrorKind::Io,
                            "open",
                            &dir.display().to_string(),
                            0,
                            format!("{} is not a directory", dir.display()),
                        ))
                    }
                    Err(e) => return Err(dir_error(&dir, "cannot open the directory", &e)),
                }
                // Best effort: a missing or unreadable LOCK, or a writer holding it, leaves the
                // storage unlocked rather than refusing to read.
                File::open(dir.join(LOCK))
                    .ok()
                    .filter(|f| f.try_lock_shared().is_ok())
            }
        };
        Ok(FileStorage {
            dir,
            mode,
            files: BTreeMap::new(),
            _lock: lock,
        })
    }

    /// The directory, as an absolute path.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn writable(&self, op: &'static str, file: &str) -> Result<(), StorageError> {
        match self.mode {
            Mode::ReadWrite => Ok(()),
            Mode::ReadOnly => Err(StorageError::new(
                StorageErrorKind::ReadOnly,
                op,
                file,
                0,
                "storage opened read-only",
            )),
        }
    }

    /// The cached handle of `name`, opening it on first use (creating it only if `create`).
    fn handle(
        &mut self,
        op: &'static str,
        name: &str,
        create: bool,
    ) -> Result<&File, StorageError> {
        match self.files.entry(name.to_string()) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(v) => {
                let mut options = OpenOptions::new();
                options.read(true);
                if self.mode == Mode::ReadWrite {
                    options.write(true);
                    if create {
                        options.create(true).truncate(false);
                    }
                }
                let file = options
                    .open(self.dir.join(name))
                    .map_err(|e| io_error(op, name, 0, &e))?;
                let meta = file.metadata().map_err(|e| io_error(op, name, 0, &e))?;
                if !meta.is_file() {
                    return Err(StorageError::new(
                        StorageErrorKind::Io,
                        op,
                        name,
                        0,
                        "not a regular file",
                    ));
                }
                Ok(v.insert(file))
            }
        }
    }
}

impl Storage for FileStorage {
    fn read_at(&mut self, file: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        check_name("read", file)?;
        let handle = self.handle("read", file, false)?;
        // The kernel refuses (EINVAL) a read whose end passes i64::MAX, though nothing lies
        // there: clamp the request so that such a read is just a read past the end.
        const LIMIT: u64 = i64::MAX as u64;
        let mut done = 0;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            let room = usize::try_from(LIMIT.saturating_sub(at)).unwrap_or(usize::MAX);
            let want = (buf.len() - done).min(room);
            if want == 0 {
                break;
            }
            match handle.read_at(&mut buf[done..done + want], at) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error("read", file, at, &e)),
            }
        }
        Ok(done)
    }

    fn write_at(&mut self, file: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.writable("write", file)?;
        check_name("write", file)?;
        let in_range = offset
            .checked_add(data.len() as u64)
            .is_some_and(|end| end <= i64::MAX as u64);
        if !in_range {
            return Err(StorageError::new(
                StorageErrorKind::Io,
                "write",
                file,
                offset,
                "offset out of range",
            ));
        }
        let handle = self.handle("write", file, true)?;
        if data.is_empty() {
            // Like any write, an empty one past the end extends the file with zeros.
            let len = handle
                .metadata()
                .map_err(|e| io_error("write", file, offset, &e))?
                .len();
            if offset > len {
                handle
                    .set_len(offset)
                    .map_err(|e| io_error("write", file, offset, &e))?;
            }
            return Ok(());
        }
        handle
            .write_all_at(data, offset)
            .map_err(|e| io_error("write", file, offset, &e))
    }

    fn sync(&mut self, file: &str) -> Result<(), StorageError> {
        self.writable("sync", file)?;
        check_name("sync", file)?;
        self.handle("sync", file, false)?
            .sync_data()
            .map_err(|e| io_error("sync", file, 0, &e))
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError> {
        self.writable("truncate", file)?;
        check_name("truncate", file)?;
        self.handle("truncate", file, false)?
            .set_len(len)
            .map_err(|e| io_error("truncate", file, len, &e))
    }

    fn size(&mut self, file: &str) -> Result<u64, StorageError> {
        check_name("size", file)?;
        Ok(self
            .handle("size", file, false)?
            .metadata()
            .map_err(|e| io_error("size", file, 0, &e))?
            .len())
    }

    /// Regular files whose names are valid storage names, sorted; `LOCK`, subdirectories,
    /// symlinks and names the port could not address (not UTF-8, too long) are left out.
    fn list(&mut self) -> Result<Vec<String>, StorageError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error("list", ".", 0, &e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", ".", 0, &e))?;
            let kind = entry
                .file_type()
                .map_err(|e| io_error("list", ".", 0, &e))?;
            if !kind.is_file() {
                continue;
            }
            if let Ok(name) = entry.file_name().into_string() {
                if check_name("list", &name).is_ok() {
                    names.push(name);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        self.writable("rename", from)?;
        check_name("rename", from)?;
        check_name("rename", to)?;
        let source = self.dir.join(from);
        let meta = fs::symlink_metadata(&source).map_err(|e| io_error("rename", from, 0, &e))?;
        if !meta.is_file() {
            return Err(StorageError::new(
                StorageErrorKind::Io,
                "rename",
                from,
                0,
                "not a regular file",
            ));
        }
        fs::rename(&source, self.dir.join(to)).map_err(|e| {
            let mut err = io_error("rename", from, 0, &e);
            err.reason = format!("to {to}: {}", err.reason);
            err
        })?;
        // `to`'s old handle names the replaced file; `from`'s handle now names `to`.
        let moved = self.files.remove(from);
        self.files.remove(to);
        if let Some(handle) = moved {
            self.files.insert(to.to_string(), handle);
        }
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        self.writable("remove", file)?;
        check_name("remove", file)?;
        let result = fs::remove_file(self.dir.join(file));
        match &result {
            Ok(()) => {
                self.files.remove(file);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.files.remove(file);
            }
            Err(_) => {}
        }
        result.map_err(|e| io_error("remove", file, 0, &e))
    }

    fn sync_dir(&mut self) -> Result<(), StorageError> {
        self.writable("sync_dir", ".")?;
        sync_dir_path(&self.dir).map_err(|e| io_error("sync_dir", ".", 0, &e))
    }

    fn read_only(&self) -> bool {
        self.mode == Mode::ReadOnly
    }
}

/// A plain name in the directory: non-empty, at most 64 bytes, no `/` or NUL, not `.`, `..` or
/// the lock file.
fn check_name(op: &'static str, name: &str) -> Result<(), StorageError> {
    let bad = |reason: &str| Err(StorageError::new(StorageErrorKind::Io, op, name, 0, reason));
    if name.is_empty()
        || name.len() > MAX_NAME
        || name.contains(['/', '\0'])
        || name == "."
        || name == ".."
    {
        return bad("bad file name");
    }
    if name == LOCK {
        return bad("bad file name (LOCK is reserved for the directory lock)");
    }
    Ok(())
}

fn io_error(op: &'static str, file: &str, offset: u64, e: &io::Error) -> StorageError {
    let kind = if e.kind() == io::ErrorKind::NotFound {
        StorageErrorKind::NotFound
    } else {
        StorageErrorKind::Io
    };
    StorageError::new(kind, op, file, offset, e.to_string())
}

/// An error of `open`, on the directory itself.
fn dir_error(dir: &Path, what: &str, e: &io::Error) -> StorageError {
    let mut err = io_error("open", &dir.display().to_string(), 0, e);
    err.reason = format!("{what} {}: {e}", dir.display());
    err
}

fn parent_of(dir: &Path) -> Option<&Path> {
    dir.parent().filter(|p| !p.as_os_str().is_empty())
}

fn sync_dir_path(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing ancestors, fsyncing the parent of each one created so that the
/// new entry is durable. Returns whether `dir` itself was created.
fn create_dir_durably(dir: &Path) -> io::Result<bool> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(false),
        Ok(_) => return Err(io::Error::other("not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let parent = parent_of(dir);
    if let Some(parent) = parent {
        create_dir_durably(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Someone else created it meanwhile: theirs to make durable, but sync anyway below.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = parent {
        sync_dir_path(parent)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
