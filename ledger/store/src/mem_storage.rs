//! [`MemStorage`]: the storage port in memory, every write durable at once and nothing ever lost.
//!
//! For the store's own unit tests and for tools that check a store held in memory. It never
//! fails and never lies; the disk that crashes, tears and flips bits is the simulator's.

use crate::storage::{Storage, StorageError, StorageErrorKind};
use std::collections::BTreeMap;

/// Files as byte vectors, by name.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    pub files: BTreeMap<String, Vec<u8>>,
    pub read_only: bool,
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    fn file(&self, op: &'static str, file: &str) -> Result<&Vec<u8>, StorageError> {
        self.files.get(file).ok_or_else(|| {
            StorageError::new(StorageErrorKind::NotFound, op, file, 0, "no such file")
        })
    }

    fn writable(&self, op: &'static str, file: &str) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::new(
                StorageErrorKind::ReadOnly,
                op,
                file,
                0,
                "storage opened read-only",
            ));
        }
        Ok(())
    }
}

impl Storage for MemStorage {
    fn read_at(&mut self, file: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        let data = self.file("read", file)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_at(&mut self, file: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.writable("write", file)?;
        let contents = self.files.entry(file.to_string()).or_default();
        let start = usize::try_from(offset).expect("offset fits in memory");
        let end = start + data.len();
        if contents.len() < end {
            contents.resize(end, 0);
        }
        contents[start..end].copy_from_slice(data);
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), StorageError> {
        self.file("sync", file).map(|_| ())
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError> {
        self.writable("truncate", file)?;
        self.file("truncate", file)?;
        let len = usize::try_from(len).expect("length fits in memory");
        self.files.get_mut(file).expect("checked").resize(len, 0);
        Ok(())
    }

    fn size(&mut self, file: &str) -> Result<u64, StorageError> {
        Ok(self.file("size", file)?.len() as u64)
    }

    fn list(&mut self) -> Result<Vec<String>, StorageError> {
        Ok(self.files.keys().cloned().collect())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        self.writable("rename", from)?;
        let data = self.files.remove(from).ok_or_else(|| {
            StorageError::new(
                StorageErrorKind::NotFound,
                "rename",
                from,
                0,
                "no such file",
            )
        })?;
        self.files.insert(to.to_string(), data);
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        self.writable("remove", file)?;
        self.files.remove(file).map(|_| ()).ok_or_else(|| {
            StorageError::new(
                StorageErrorKind::NotFound,
                "remove",
                file,
                0,
                "no such file",
            )
        })
    }

    fn sync_dir(&mut self) -> Result<(), StorageError> {
        self.writable("sync_dir", ".")
    }

    fn read_only(&self) -> bool {
        self.read_only
    }
}
