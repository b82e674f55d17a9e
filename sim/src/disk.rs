//! [`SimDisk`]: the storage port on a simulated disk that lies, deterministically from a seed.
//!
//! Modelled on TigerBeetle's `testing/storage.zig`, SQLite's crash VFS (`test6.c`) and
//! FoundationDB's `AsyncFileNonDurable`. The disk keeps, per file (an inode), the *durable* bytes
//! (what survives a power loss) and the *volatile* bytes (what reads see), and the ordered list of
//! the changes made since the file's last successful `sync`. The directory likewise has a durable
//! name-to-inode map, a live one, and the ordered list of the directory changes (a create by the
//! first write to a new name, a rename, a remove) since the last `sync_dir`.
//!
//! At a power loss ([`SimDisk::power_loss`], an armed [`SimDisk::crash_at_op`], or a crash
//! fault) every call fails with `Crashed` until [`SimDisk::restart`], which resolves what was not
//! synced: each pending write of each file, in order, is kept whole, dropped whole, or torn (each
//! of its 512-byte sectors, aligned in the file, kept, dropped or filled with garbage); each
//! pending truncate is kept or dropped; then a random *prefix* of the pending directory changes
//! takes effect (ordered journaling). So a file whose data was synced but whose name was not
//! (`sync_dir`) can vanish, and a rename not followed by `sync_dir` can be undone.
//!
//! Faults ([`DiskFaults`], in parts per million per call) are drawn from the seed's
//! [`Stream::Disk`]; what a power loss keeps is drawn from [`Stream::DiskPowerLoss`], so changing
//! a rate does not change how a given crash resolves as long as the same calls were made. Two
//! disks in one run should be given different seeds (for example `seed ^ k`).
//!
//! No call panics on any argument: a file may not grow past [`MAX_FILE_BYTES`] (the call fails
//! with a simulated ENOSPC), and a name that is empty, `.`, `..`, holds `/` or NUL, or is longer
//! than [`MAX_NAME_BYTES`] cannot be created (simulated EINVAL).

use crate::rng::{SimRng, Stream};
use acme_faults::FaultPlan;
use acme_store::{Storage, StorageError, StorageErrorKind};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// The disk's sector: the unit a torn write tears in, and the step of a misdirected write.
pub const SECTOR: u64 = 512;
/// The largest file the disk holds; growing a file past it fails with a simulated ENOSPC.
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// The longest file name (the storage port's limit).
pub const MAX_NAME_BYTES: usize = 64;

/// A pending write at a power loss: kept whole, dropped whole, torn (weights in percent).
const WRITE_FATE: [u32; 3] = [50, 30, 20];
/// A sector of a torn write: kept, dropped, garbage.
const SECTOR_FATE: [u32; 3] = [40, 40, 20];

/// Rates in parts per million (acme_faults::Ppm = u32).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskFaults {
    /// Per write_at/sync/sync_dir/truncate/rename/remove call: the machine loses power *at*
    /// this call (the call does not happen, returns Err(Crashed)).
    pub crash_ppm: u32,
    /// Per write_at: returns Err(Io); a random subset of its sectors reached the volatile
    /// contents anyway.
    pub write_error_ppm: u32,
    /// Per sync: returns Err(Io); each pending write of that file is then either kept or dropped
    /// at random *in the durable image* (fsyncgate: the kernel marked the pages clean), the
    /// volatile view unchanged.
    pub sync_error_ppm: u32,
    /// Per read_at: returns Err(Io) (transient: the next read of the same range may succeed).
    pub read_error_ppm: u32,
    /// Per sync call: after the sync, flip one bit at a random offset of the *durable* contents
    /// of a random non-empty file (it stays flipped, in both durable and volatile views).
    pub bitflip_ppm: u32,
    /// Per write_at: the write lands at offset +/- k*512 (k in 1..=8, staying >= 0) in the same
    /// file instead of where asked.
    pub misdirect_ppm: u32,
}

impl From<&FaultPlan> for DiskFaults {
    fn from(plan: &FaultPlan) -> DiskFaults {
        DiskFaults {
            crash_ppm: plan.storage_crash_ppm,
            write_error_ppm: plan.storage_write_error_ppm,
            sync_error_ppm: plan.storage_sync_error_ppm,
            read_error_ppm: plan.storage_read_error_ppm,
            bitflip_ppm: plan.storage_bitflip_ppm,
            misdirect_ppm: plan.storage_misdirect_ppm,
        }
    }
}

/// One injected corruption, for the simulator's judgement of a recovery refusal.
///
/// A bit flip names the byte (`len` 1). A misdirected write names the span from the lower to
/// the upper end of the range it was aimed at and the range it landed on: both hold wrong data
/// (the first stale, the second overwritten). `file` is the file's name when it was corrupted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// `"bitflip"` or `"misdirect"`.
    pub kind: &'static str,
    pub file: String,
    pub offset: u64,
    pub len: u64,
}

/// What the disk did and what it injected.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiskStats {
    /// `write_at` calls that reached the disk (not refused, not crashed).
    pub writes: u64,
    /// `sync` calls that reached the disk.
    pub syncs: u64,
    /// Power losses: crash faults, armed crashes and `power_loss()` calls.
    pub crashes: u64,
    pub write_errors: u64,
    pub sync_errors: u64,
    pub read_errors: u64,
    pub bitflips: u64,
    pub misdirects: u64,
    /// Pending writes torn by a power loss.
    pub torn_writes: u64,
    /// Pending writes lost whole, by a power loss or a failed sync.
    pub dropped_writes: u64,
    /// Bytes that reached the volatile contents.
    pub bytes_written: u64,
}

/// A change to a file since its last sync.
#[derive(Clone, Debug)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

#[derive(Clone, Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    volatile: Vec<u8>,
    pending: Vec<Change>,
}

/// A change to the directory since its last sync.
#[derive(Clone, Debug)]
enum DirChange {
    Create { name: String, ino: u64 },
    Rename { from: String, to: String, ino: u64 },
    Remove { name: String },
}

impl DirChange {
    fn apply(&self, dir: &mut BTreeMap<String, u64>) {
        match self {
            DirChange::Create { name, ino } => {
                dir.insert(name.clone(), *ino);
            }
            DirChange::Rename { from, to, ino } => {
                dir.remove(from);
                dir.insert(to.clone(), *ino);
            }
            DirChange::Remove { name } => {
                dir.remove(name);
            }
        }
    }

    fn ino(&self) -> Option<u64> {
        match self {
            DirChange::Create { ino, .. } | DirChange::Rename { ino, .. } => Some(*ino),
            DirChange::Remove { .. } => None,
        }
    }
}

/// The disk itself, behind the handles' lock.
struct Disk {
    faults: DiskFaults,
    fault_rng: SimRng,
    power_rng: SimRng,
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    durable_dir: BTreeMap<String, u64>,
    live_dir: BTreeMap<String, u64>,
    dir_pending: Vec<DirChange>,
    crashed: bool,
    ops: u64,
    crash_at: BTreeSet<u64>,
    corruptions: Vec<Corruption>,
    stats: DiskStats,
}

fn err(
    kind: StorageErrorKind,
    op: &'static str,
    file: &str,
    offset: u64,
    reason: impl Into<String>,
) -> StorageError {
    StorageError::new(kind, op, file, offset, reason)
}

fn crashed_error(op: &'static str, file: &str, offset: u64) -> StorageError {
    err(
        StorageErrorKind::Crashed,
        op,
        file,
        offset,
        "simulated power loss: the disk is off until restart",
    )
}

fn not_found(op: &'static str, file: &str, offset: u64) -> StorageError {
    err(StorageErrorKind::NotFound, op, file, offset, "no such file")
}

fn enospc(op: &'static str, file: &str, offset: u64) -> StorageError {
    err(
        StorageErrorKind::Io,
        op,
        file,
        offset,
        format!("simulated ENOSPC: a file may not grow past {MAX_FILE_BYTES} bytes"),
    )
}

fn check_name(op: &'static str, name: &str) -> Result<(), StorageError> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > MAX_NAME_BYTES
        || name.contains('/')
        || name.contains('\0')
    {
        return Err(err(
            StorageErrorKind::Io,
            op,
            name,
            0,
            format!(
                "simulated EINVAL: a file name is 1 to {MAX_NAME_BYTES} bytes, not `.` or `..`, \
                 without `/` or NUL"
            ),
        ));
    }
    Ok(())
}

/// The end of `len` bytes at `offset`, if the file may grow that far.
fn end_within_cap(offset: u64, len: usize) -> Option<u64> {
    offset
        .checked_add(len as u64)
        .filter(|&end| end <= MAX_FILE_BYTES)
}

/// Writes `data` at `offset` into `bytes`, zero-filling any gap. The caller has checked that the
/// end is within [`MAX_FILE_BYTES`].
fn put(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let start = offset as usize;
    let end = start + data.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[start..end].copy_from_slice(data);
}

/// The pieces of a write of `len` bytes at `offset`, cut at the file's sector boundaries: each
/// `(offset in the file, range in the data)`.
fn sectors(offset: u64, len: usize) -> Vec<(u64, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut done = 0usize;
    while done < len {
        let at = offset + done as u64;
        let room = (SECTOR - at % SECTOR) as usize;
        let n = room.min(len - done);
        out.push((at, done..done + n));
        done += n;
    }
    out
}

impl Change {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            Change::Write { offset, data } => put(bytes, *offset, data),
            Change::Truncate { len } => bytes.resize(*len as usize, 0),
        }
    }
}

impl Disk {
    fn new(seed: u64, faults: DiskFaults) -> Disk {
        Disk {
            faults,
            fault_rng: SimRng::new(seed, Stream::Disk),
            power_rng: SimRng::new(seed, Stream::DiskPowerLoss),
            inodes: BTreeMap::new(),
            next_ino: 1,
            durable_dir: BTreeMap::new(),
            live_dir: BTreeMap::new(),
            dir_pending: Vec::new(),
            crashed: false,
            ops: 0,
            crash_at: BTreeSet::new(),
            corruptions: Vec::new(),
            stats: DiskStats::default(),
        }
    }

    fn power_loss(&mut self) {
        if !self.crashed {
            self.crashed = true;
            self.stats.crashes += 1;
        }
    }

    /// Counts a mutating call and decides whether the power goes at it.
    fn begin(&mut self, op: &'static str, file: &str, offset: u64) -> Result<(), StorageError> {
        let n = self.ops;
        self.ops += 1;
        let armed = self.crash_at.remove(&n);
        if armed || self.fault_rng.chance_ppm(self.faults.crash_ppm) {
            self.power_loss();
            return Err(err(
                StorageErrorKind::Crashed,
                op,
                file,
                offset,
                format!("simulated power loss at storage op {n}"),
            ));
        }
        Ok(())
    }

    fn ino(&self, op: &'static str, file: &str, offset: u64) -> Result<u64, StorageError> {
        self.live_dir
            .get(file)
            .copied()
            .ok_or_else(|| not_found(op, file, offset))
    }

    fn inode(&mut self, ino: u64) -> &mut Inode {
        self.inodes.entry(ino).or_default()
    }

    /// Writes a change to a file's volatile contents and its pending list.
    fn change(&mut self, ino: u64, change: Change) {
        if let Change::Write { data, .. } = &change {
            self.stats.bytes_written += data.len() as u64;
        }
        let inode = self.inode(ino);
        change.apply(&mut inode.volatile);
        inode.pending.push(change);
    }

    /// Drops the inodes no name reaches, live, durable or pending.
    fn collect_garbage(&mut self) {
        let reached: BTreeSet<u64> = self
            .live_dir
            .values()
            .chain(self.durable_dir.values())
            .copied()
            .chain(self.dir_pending.iter().filter_map(DirChange::ino))
            .collect();
        self.inodes.retain(|ino, _| reached.contains(ino));
    }

    fn write_at(&mut self, file: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.begin("write", file, offset)?;
        let existing = self.live_dir.get(file).copied();
        if existing.is_none() {
            check_name("write", file)?;
        }
        if end_within_cap(offset, data.len()).is_none() {
            return Err(enospc("write", file, offset));
        }
        self.stats.writes += 1;
        let mut at = offset;
        if !data.is_empty() && self.fault_rng.chance_ppm(self.faults.misdirect_ppm) {
            let delta = self.fault_rng.between(1, 8) * SECTOR;
            let up =
                end_within_cap(offset.saturating_add(delta), data.len()).map(|_| offset + delta);
            let down = offset.checked_sub(delta);
            let landed = match (up, down) {
                (Some(u), Some(d)) => Some(if self.fault_rng.below(2) == 0 { u } else { d }),
                (u, d) => u.or(d),
            };
            if let Some(landed) = landed {
                at = landed;
                let lo = offset.min(landed);
                let hi = offset.max(landed) + data.len() as u64;
                self.stats.misdirects += 1;
                self.corruptions.push(Corruption {
                    kind: "misdirect",
                    file: file.to_string(),
                    offset: lo,
                    len: hi - lo,
                });
            }
        }
        let failed = self.fault_rng.chance_ppm(self.faults.write_error_ppm);
        let ino = match existing {
            Some(ino) => ino,
            None => {
                let ino = self.next_ino;
                self.next_ino += 1;
                self.inodes.insert(ino, Inode::default());
                self.live_dir.insert(file.to_string(), ino);
                self.dir_pending.push(DirChange::Create {
                    name: file.to_string(),
                    ino,
                });
                ino
            }
        };
        if failed {
            self.stats.write_errors += 1;
            for (pos, range) in sectors(at, data.len()) {
                if self.fault_rng.below(2) == 0 {
                    self.change(
                        ino,
                        Change::Write {
                            offset: pos,
                            data: data[range].to_vec(),
                        },
                    );
                }
            }
            return Err(err(
                StorageErrorKind::Io,
                "write",
                file,
                offset,
                "simulated EIO: some sectors of the write may have reached the file",
            ));
        }
        if !data.is_empty() {
            self.change(
                ino,
                Change::Write {
                    offset: at,
                    data: data.to_vec(),
                },
            );
        }
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), StorageError> {
        self.begin("sync", file, 0)?;
        let ino = self.ino("sync", file, 0)?;
        self.stats.syncs += 1;
        let failed = self.fault_rng.chance_ppm(self.faults.sync_error_ppm);
        if failed {
            self.stats.sync_errors += 1;
            let pending = std::mem::take(&mut self.inode(ino).pending);
            for change in pending {
                if self.fault_rng.below(2) == 0 {
                    change.apply(&mut self.inode(ino).durable);
                } else if matches!(change, Change::Write { .. }) {
                    self.stats.dropped_writes += 1;
                }
            }
        } else {
            let inode = self.inode(ino);
            inode.durable.clone_from(&inode.volatile);
            inode.pending.clear();
        }
        if self.fault_rng.chance_ppm(self.faults.bitflip_ppm) {
            self.random_bitflip();
        }
        if failed {
            return Err(err(
                StorageErrorKind::Io,
                "sync",
                file,
                0,
                "simulated EIO on fsync: the dirty pages were dropped or written, unknown which",
            ));
        }
        Ok(())
    }

    /// Flips one bit of the durable contents of a random named, non-empty file.
    fn random_bitflip(&mut self) {
        let candidates: Vec<(String, u64)> = self
            .live_dir
            .iter()
            .filter(|(_, ino)| self.inodes.get(ino).is_some_and(|i| !i.durable.is_empty()))
            .map(|(name, ino)| (name.clone(), *ino))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let (name, ino) =
            candidates[self.fault_rng.below(candidates.len() as u64) as usize].clone();
        let len = self.inodes[&ino].durable.len() as u64;
        let offset = self.fault_rng.below(len);
        let bit = self.fault_rng.below(8) as u8;
        self.flip(&name, ino, offset, bit);
    }

    fn flip(&mut self, name: &str, ino: u64, offset: u64, bit: u8) {
        let mask = 1u8 << (bit % 8);
        let inode = self.inode(ino);
        let mut flipped = false;
        for bytes in [&mut inode.durable, &mut inode.volatile] {
            if let Some(b) = usize::try_from(offset).ok().and_then(|o| bytes.get_mut(o)) {
                *b ^= mask;
                flipped = true;
            }
        }
        if flipped {
            self.stats.bitflips += 1;
            self.corruptions.push(Corruption {
                kind: "bitflip",
                file: name.to_string(),
                offset,
                len: 1,
            });
        }
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError> {
        self.begin("truncate", file, len)?;
        let ino = self.ino("truncate", file, len)?;
        if len > MAX_FILE_BYTES {
            return Err(enospc("truncate", file, len));
        }
        self.change(ino, Change::Truncate { len });
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        self.begin("rename", from, 0)?;
        let ino = self.ino("rename", from, 0)?;
        check_name("rename", to)?;
        if from == to {
            return Ok(());
        }
        self.live_dir.remove(from);
        self.live_dir.insert(to.to_string(), ino);
        self.dir_pending.push(DirChange::Rename {
            from: from.to_string(),
            to: to.to_string(),
            ino,
        });
        self.collect_garbage();
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        self.begin("remove", file, 0)?;
        self.ino("remove", file, 0)?;
        self.live_dir.remove(file);
        self.dir_pending.push(DirChange::Remove {
            name: file.to_string(),
        });
        self.collect_garbage();
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), StorageError> {
        self.begin("sync_dir", ".", 0)?;
        self.durable_dir.clone_from(&self.live_dir);
        self.dir_pending.clear();
        self.collect_garbage();
        Ok(())
    }

    fn read_at(
        &mut self,
        file: &str,
        offset: u64,
        buf: &mut [u8],
        faults: bool,
    ) -> Result<usize, StorageError> {
        let ino = self.ino("read", file, offset)?;
        if faults && self.fault_rng.chance_ppm(self.faults.read_error_ppm) {
            self.stats.read_errors += 1;
            return Err(err(
                StorageErrorKind::Io,
                "read",
                file,
                offset,
                "simulated EIO on read",
            ));
        }
        let data = &self.inodes[&ino].volatile;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    /// Power back: what was not synced is kept, dropped or torn; a prefix of the directory's
    /// pending changes takes effect.
    fn restart(&mut self) {
        if !self.crashed {
            return;
        }
        let inos: Vec<u64> = self.inodes.keys().copied().collect();
        for ino in inos {
            let pending = std::mem::take(&mut self.inode(ino).pending);
            for change in pending {
                match change {
                    Change::Truncate { .. } => {
                        if self.power_rng.below(2) == 0 {
                            change.apply(&mut self.inode(ino).durable);
                        }
                    }
                    Change::Write { offset, ref data } => {
                        match self.power_rng.weighted(&WRITE_FATE) {
                            0 => change.apply(&mut self.inode(ino).durable),
                            1 => self.stats.dropped_writes += 1,
                            _ => {
                                self.stats.torn_writes += 1;
                                for (pos, range) in sectors(offset, data.len()) {
                                    match self.power_rng.weighted(&SECTOR_FATE) {
                                        0 => put(&mut self.inode(ino).durable, pos, &data[range]),
                                        1 => {}
                                        _ => {
                                            let mut garbage = vec![0u8; range.len()];
                                            self.power_rng.fill(&mut garbage);
                                            put(&mut self.inode(ino).durable, pos, &garbage);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let inode = self.inode(ino);
            inode.volatile.clone_from(&inode.durable);
        }
        let pending = std::mem::take(&mut self.dir_pending);
        let kept = self.power_rng.below(pending.len() as u64 + 1) as usize;
        for change in &pending[..kept] {
            change.apply(&mut self.durable_dir);
        }
        self.live_dir.clone_from(&self.durable_dir);
        self.collect_garbage();
        self.crashed = false;
    }
}

/// A handle; clones share the same disk (Arc<Mutex<..>> inside so it is Send).
#[derive(Clone)]
pub struct SimDisk {
    disk: Arc<Mutex<Disk>>,
    read_only: bool,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.lock();
        f.debug_struct("SimDisk")
            .field("read_only", &self.read_only)
            .field("crashed", &d.crashed)
            .field("ops", &d.ops)
            .field("files", &d.live_dir.len())
            .finish()
    }
}

impl SimDisk {
    /// An empty disk whose faults and power-loss outcomes are drawn from `seed`.
    pub fn new(seed: u64, faults: DiskFaults) -> SimDisk {
        SimDisk {
            disk: Arc::new(Mutex::new(Disk::new(seed, faults))),
            read_only: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        // A panic elsewhere while holding the lock leaves the disk as consistent as any call
        // leaves it: go on rather than poison every later call.
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disk, for a mutating call: off, or refusing on a read-only handle.
    fn writable(
        &self,
        op: &'static str,
        file: &str,
        offset: u64,
    ) -> Result<MutexGuard<'_, Disk>, StorageError> {
        let d = self.powered(op, file, offset)?;
        if self.read_only {
            return Err(err(
                StorageErrorKind::ReadOnly,
                op,
                file,
                offset,
                "storage opened read-only",
            ));
        }
        Ok(d)
    }

    /// The disk, unless the power is off.
    fn powered(
        &self,
        op: &'static str,
        file: &str,
        offset: u64,
    ) -> Result<MutexGuard<'_, Disk>, StorageError> {
        let d = self.lock();
        if d.crashed {
            return Err(crashed_error(op, file, offset));
        }
        Ok(d)
    }

    /// Replaces the fault rates (e.g. all zero in the liveness phase).
    pub fn set_faults(&self, faults: DiskFaults) {
        self.lock().faults = faults;
    }

    pub fn faults(&self) -> DiskFaults {
        self.lock().faults.clone()
    }

    /// A handle on the same disk that refuses changes with `ReadOnly` and never injects faults.
    pub fn read_only(&self) -> SimDisk {
        SimDisk {
            disk: Arc::clone(&self.disk),
            read_only: true,
        }
    }

    /// Power lost (by a crash fault or by `power_loss()`) and not yet restarted.
    pub fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Loses power now; every call fails with `Crashed` until `restart()`.
    pub fn power_loss(&self) {
        self.lock().power_loss();
    }

    /// Power back: resolves every unsynced change and clears the crashed state. Does nothing
    /// if the power was not lost (a process restart keeps the page cache).
    pub fn restart(&self) {
        self.lock().restart();
    }

    pub fn crash_and_restart(&self) {
        self.power_loss();
        self.restart();
    }

    /// The number of mutating calls so far (write_at, sync, sync_dir, truncate, rename, remove
    /// that found the power on, on a writable handle), including one that crashed.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Arms a deterministic crash: the mutating call with `ops() == n` (0-based) loses power
    /// instead of happening. Several may be armed; one already past never fires.
    pub fn crash_at_op(&self, n: u64) {
        self.lock().crash_at.insert(n);
    }

    /// Every injected bit flip and misdirected write so far, in order.
    pub fn corruptions(&self) -> Vec<Corruption> {
        self.lock().corruptions.clone()
    }

    pub fn stats(&self) -> DiskStats {
        self.lock().stats.clone()
    }

    /// For tests: the durable directory's files and their durable contents (what a power loss
    /// now would surely keep, before its pending changes are resolved).
    pub fn durable_image(&self) -> BTreeMap<String, Vec<u8>> {
        let d = self.lock();
        d.durable_dir
            .iter()
            .map(|(name, ino)| {
                let bytes = d.inodes.get(ino).map(|i| i.durable.clone());
                (name.clone(), bytes.unwrap_or_default())
            })
            .collect()
    }

    /// For tests: flips one bit (`bit % 8`) of `file` at rest, in its durable and volatile
    /// contents wherever `offset` lies within them, recorded as a [`Corruption`]. The file is
    /// looked up by its live name, then its durable one; nothing happens if neither has it or
    /// the offset lies past both contents.
    pub fn flip_bit(&self, file: &str, offset: u64, bit: u8) {
        let mut d = self.lock();
        let ino = d
            .live_dir
            .get(file)
            .or_else(|| d.durable_dir.get(file))
            .copied();
        if let Some(ino) = ino {
            d.flip(file, ino, offset, bit);
        }
    }
}

impl Storage for SimDisk {
    fn read_at(&mut self, file: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        let faults = !self.read_only;
        self.powered("read", file, offset)?
            .read_at(file, offset, buf, faults)
    }

    fn write_at(&mut self, file: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.writable("write", file, offset)?
            .write_at(file, offset, data)
    }

    fn sync(&mut self, file: &str) -> Result<(), StorageError> {
        self.writable("sync", file, 0)?.sync(file)
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError> {
        self.writable("truncate", file, len)?.truncate(file, len)
    }

    fn size(&mut self, file: &str) -> Result<u64, StorageError> {
        let d = self.powered("size", file, 0)?;
        let ino = d.ino("size", file, 0)?;
        Ok(d.inodes.get(&ino).map_or(0, |i| i.volatile.len() as u64))
    }

    fn list(&mut self) -> Result<Vec<String>, StorageError> {
        Ok(self
            .powered("list", ".", 0)?
            .live_dir
            .keys()
            .cloned()
            .collect())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        self.writable("rename", from, 0)?.rename(from, to)
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        self.writable("remove", file, 0)?.remove(file)
    }

    fn sync_dir(&mut self) -> Result<(), StorageError> {
        self.writable("sync_dir", ".", 0)?.sync_dir()
    }

    fn read_only(&self) -> bool {
        self.read_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acme_store::MemStorage;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const PPM: u32 = 1_000_000;
    const S: usize = SECTOR as usize;

    fn calm(seed: u64) -> SimDisk {
        SimDisk::new(seed, DiskFaults::default())
    }

    fn read_all(d: &mut SimDisk, file: &str) -> Option<Vec<u8>> {
        let len = d.size(file).ok()?;
        let mut buf = vec![0u8; len as usize];
        let n = d.read_at(file, 0, &mut buf).unwrap();
        assert_eq!(n as u64, len);
        Some(buf)
    }

    /// A file of `sectors` sectors of `byte`, synced, its name synced.
    fn durable_file(d: &mut SimDisk, file: &str, sectors: usize, byte: u8) -> Vec<u8> {
        let data = vec![byte; sectors * S];
        d.write_at(file, 0, &data).unwrap();
        d.sync(file).unwrap();
        d.sync_dir().unwrap();
        data
    }

    #[test]
    fn basic_semantics_match_a_file_system() {
        let mut d = calm(1);
        assert!(!Storage::read_only(&d));
        d.write_at("b", 10, b"xyz").unwrap();
        assert_eq!(d.size("b").unwrap(), 13);
        let mut buf = [9u8; 20];
        assert_eq!(d.read_at("b", 0, &mut buf).unwrap(), 13);
        assert_eq!(&buf[..13], b"\0\0\0\0\0\0\0\0\0\0xyz");
        assert_eq!(d.read_at("b", 11, &mut buf).unwrap(), 2);
        assert_eq!(d.read_at("b", 13, &mut buf).unwrap(), 0);
        assert_eq!(d.read_at("b", u64::MAX, &mut buf).unwrap(), 0);
        d.write_at("a", 0, b"").unwrap();
        assert_eq!(d.size("a").unwrap(), 0);
        assert_eq!(d.list().unwrap(), vec!["a".to_string(), "b".to_string()]);
        d.truncate("b", 11).unwrap();
        assert_eq!(read_all(&mut d, "b").unwrap(), b"\0\0\0\0\0\0\0\0\0\0x");
        d.truncate("b", 12).unwrap();
        assert_eq!(read_all(&mut d, "b").unwrap(), b"\0\0\0\0\0\0\0\0\0\0x\0");
        for e in [
            d.read_at("zz", 0, &mut buf).unwrap_err(),
            d.size("zz").unwrap_err(),
            d.sync("zz").unwrap_err(),
            d.truncate("zz", 0).unwrap_err(),
            d.rename("zz", "y").unwrap_err(),
            d.remove("zz").unwrap_err(),
        ] {
            assert_eq!(e.kind, StorageErrorKind::NotFound, "{e}");
            assert_eq!(e.file, "zz");
        }
        d.remove("a").unwrap();
        assert_eq!(d.list().unwrap(), vec!["b".to_string()]);
        for bad in ["", ".", "..", "a/b", "a\0", &"n".repeat(65)] {
            let e = d.write_at(bad, 0, b"x").unwrap_err();
            assert_eq!(e.kind, StorageErrorKind::Io);
            assert!(e.reason.contains("EINVAL"), "{e}");
            assert!(d.rename("b", bad).is_err());
        }
        d.write_at(&"n".repeat(64), 0, b"x").unwrap();
        assert_eq!(d.list().unwrap().len(), 2);
    }

    #[test]
    fn matches_mem_storage_without_faults() {
        // With no fault and no power loss the disk is a file system: the same calls give the
        // same answers and contents as the in-memory storage.
        let names = ["a", "b", "c"];
        for seed in 0..20 {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            let mut d = calm(seed);
            let mut m = MemStorage::new();
            for _ in 0..300 {
                let f = names[r.random_range(0..3)];
                let g = names[r.random_range(0..3)];
                let off = r.random_range(0..3_000u64);
                match r.random_range(0..7) {
                    0 | 1 => {
                        let data = vec![r.random::<u8>(); r.random_range(1..1_500)];
                        assert_eq!(d.write_at(f, off, &data), m.write_at(f, off, &data));
                    }
                    2 => {
                        let (a, b) = (d.truncate(f, off), m.truncate(f, off));
                        assert_eq!(a.is_ok(), b.is_ok());
                    }
                    3 => {
                        let (a, b) = (d.rename(f, g), m.rename(f, g));
                        assert_eq!(a.is_ok(), b.is_ok(), "rename {f} {g}");
                    }
                    4 => assert_eq!(d.remove(f).is_ok(), m.remove(f).is_ok()),
                    5 => {
                        assert_eq!(d.sync(f).is_ok(), m.sync(f).is_ok());
                        d.sync_dir().unwrap();
                    }
                    _ => {
                        let mut x = vec![0u8; r.random_range(0..2_000)];
                        let mut y = x.clone();
                        let (a, b) = (d.read_at(f, off, &mut x), m.read_at(f, off, &mut y));
                        assert_eq!(a.is_ok(), b.is_ok());
                        assert_eq!(x, y);
                    }
                }
                assert_eq!(d.list().unwrap(), m.list().unwrap());
            }
            for name in m.list().unwrap() {
                assert_eq!(read_all(&mut d, &name).unwrap(), m.files[&name]);
            }
        }
    }

    #[test]
    fn synced_data_survives_power_loss_exactly() {
        for seed in 0..50 {
            let mut d = calm(seed);
            let a = durable_file(&mut d, "a", 3, 0xA1);
            let mut b = vec![0u8; 1_000];
            for (i, x) in b.iter_mut().enumerate() {
                *x = i as u8;
            }
            d.write_at("b", 7, &b).unwrap();
            d.truncate("b", 900).unwrap();
            d.sync("b").unwrap();
            d.sync_dir().unwrap();
            let mut expect_b = vec![0u8; 7];
            expect_b.extend_from_slice(&b[..893]);
            let image = d.durable_image();
            d.crash_and_restart();
            assert!(!d.is_crashed());
            assert_eq!(read_all(&mut d, "a").unwrap(), a);
            assert_eq!(read_all(&mut d, "b").unwrap(), expect_b);
            assert_eq!(d.durable_image(), image);
            assert_eq!(d.list().unwrap(), vec!["a".to_string(), "b".to_string()]);
        }
    }

    #[test]
    fn an_unsynced_write_is_kept_dropped_or_torn_by_whole_sectors() {
        let (mut kept, mut dropped, mut torn, mut garbage) = (0, 0, 0, 0);
        for seed in 0..300 {
            let mut d = calm(seed);
            let old = durable_file(&mut d, "f", 6, 0xAA);
            // An unsynced write of sectors 1..5, and an unsynced append of sector 6.
            let new = vec![0xBB; 4 * S];
            d.write_at("f", S as u64, &new).unwrap();
            d.write_at("f", 6 * S as u64, &[0xCC; S]).unwrap();
            assert_eq!(
                d.durable_image()["f"],
                old,
                "durable unchanged before a sync"
            );
            d.power_loss();
            assert!(d.is_crashed());
            d.restart();
            let got = read_all(&mut d, "f").unwrap();
            assert!(got.len() == 6 * S || got.len() == 7 * S, "{}", got.len());
            if got.len() == 7 * S {
                let last = &got[6 * S..];
                assert!(last == [0xCC; S] || last.iter().filter(|&&b| b == 0xCC).count() < 64);
            }
            assert_eq!(&got[..S], &old[..S], "sector 0 was not written");
            assert_eq!(
                &got[5 * S..6 * S],
                &old[5 * S..6 * S],
                "sector 5 was not written"
            );
            let mut fates = Vec::new();
            for s in 1..5 {
                let sector = &got[s * S..(s + 1) * S];
                fates.push(if sector == &old[s * S..(s + 1) * S] {
                    'o'
                } else if sector == &new[(s - 1) * S..s * S] {
                    'n'
                } else {
                    // Garbage fills the whole sector: next to nothing of it is old or new.
                    let alike = sector.iter().filter(|&&b| b == 0xAA || b == 0xBB).count();
                    assert!(alike < 64, "seed {seed}: sector {s} partly written");
                    'g'
                });
            }
            match (
                fates.iter().all(|&f| f == 'n'),
                fates.iter().all(|&f| f == 'o'),
            ) {
                (true, _) => kept += 1,
                (_, true) => dropped += 1,
                _ => torn += 1,
            }
            garbage += fates.contains(&'g') as u32;
            assert_eq!(
                d.durable_image()["f"],
                got,
                "after restart, volatile = durable"
            );
        }
        assert!(
            kept > 60 && dropped > 30 && torn > 20,
            "{kept} {dropped} {torn}"
        );
        assert!(garbage > 5, "{garbage}");
    }

    #[test]
    fn an_unsynced_truncate_is_kept_or_dropped() {
        let (mut kept, mut dropped) = (0, 0);
        for seed in 0..100 {
            let mut d = calm(seed);
            let old = durable_file(&mut d, "f", 2, 7);
            d.truncate("f", 100).unwrap();
            d.crash_and_restart();
            let got = read_all(&mut d, "f").unwrap();
            if got == old {
                dropped += 1;
            } else {
                assert_eq!(got, old[..100]);
                kept += 1;
            }
        }
        assert!(kept > 20 && dropped > 20, "{kept} {dropped}");
    }

    #[test]
    fn a_file_named_but_not_dir_synced_may_vanish_and_names_keep_their_order() {
        let (mut neither, mut a_only, mut both) = (0, 0, 0);
        for seed in 0..200 {
            let mut d = calm(seed);
            durable_file(&mut d, "base", 1, 1);
            // Data synced, names not: `a` is created before `b`.
            d.write_at("a", 0, b"alpha").unwrap();
            d.sync("a").unwrap();
            d.write_at("b", 0, b"beta").unwrap();
            d.sync("b").unwrap();
            d.crash_and_restart();
            let names = d.list().unwrap();
            assert!(names.contains(&"base".to_string()));
            match (names.contains(&"a".into()), names.contains(&"b".into())) {
                (false, false) => neither += 1,
                (true, false) => a_only += 1,
                (true, true) => both += 1,
                (false, true) => panic!("seed {seed}: `b` without `a`: not a prefix"),
            }
            if names.contains(&"a".into()) {
                assert_eq!(read_all(&mut d, "a").unwrap(), b"alpha");
            }
            if names.contains(&"b".into()) {
                assert_eq!(read_all(&mut d, "b").unwrap(), b"beta");
            }
        }
        assert!(
            neither > 20 && a_only > 20 && both > 20,
            "{neither} {a_only} {both}"
        );
    }

    #[test]
    fn rename_replaces_and_is_durable_only_after_sync_dir() {
        let (mut undone, mut done) = (0, 0);
        for seed in 0..100 {
            let mut d = calm(seed);
            let old = durable_file(&mut d, "current", 1, 0x01);
            let new = durable_file(&mut d, "next", 2, 0x02);
            d.rename("next", "current").unwrap();
            assert_eq!(d.list().unwrap(), vec!["current".to_string()]);
            assert_eq!(read_all(&mut d, "current").unwrap(), new);
            assert_eq!(
                d.read_at("next", 0, &mut [0; 4]).unwrap_err().kind,
                StorageErrorKind::NotFound
            );
            d.rename("current", "current").unwrap();
            d.crash_and_restart();
            let names = d.list().unwrap();
            let current = read_all(&mut d, "current").unwrap();
            if names.len() == 2 {
                // Undone: both files as they were.
                assert_eq!(current, old);
                assert_eq!(read_all(&mut d, "next").unwrap(), new);
                undone += 1;
            } else {
                assert_eq!(names, vec!["current".to_string()]);
                assert_eq!(current, new);
                done += 1;
            }
            // After sync_dir the rename always holds.
            let mut d = calm(seed);
            durable_file(&mut d, "current", 1, 0x01);
            let new = durable_file(&mut d, "next", 2, 0x02);
            d.rename("next", "current").unwrap();
            d.sync_dir().unwrap();
            d.crash_and_restart();
            assert_eq!(d.list().unwrap(), vec!["current".to_string()]);
            assert_eq!(read_all(&mut d, "current").unwrap(), new);
        }
        assert!(undone > 20 && done > 20, "{undone} {done}");
    }

    #[test]
    fn a_remove_not_dir_synced_may_be_undone() {
        let (mut back, mut gone) = (0, 0);
        for seed in 0..100 {
            let mut d = calm(seed);
            let data = durable_file(&mut d, "f", 1, 5);
            d.remove("f").unwrap();
            assert!(d.list().unwrap().is_empty());
            d.crash_and_restart();
            match read_all(&mut d, "f") {
                Some(got) => {
                    assert_eq!(got, data);
                    back += 1;
                }
                None => gone += 1,
            }
        }
        assert!(back > 20 && gone > 20, "{back} {gone}");
    }

    #[test]
    fn crash_at_op_fails_exactly_that_op_and_everything_until_restart() {
        for seed in 0..30 {
            let mut d = calm(seed);
            durable_file(&mut d, "a", 1, 9);
            assert_eq!(d.ops(), 3);
            d.crash_at_op(5);
            d.write_at("a", 0, b"x").unwrap(); // op 3
            let mut buf = [0u8; 8];
            d.read_at("a", 0, &mut buf).unwrap(); // reads are not ops
            d.sync("a").unwrap(); // op 4
            let e = d.rename("a", "b").unwrap_err(); // op 5
            assert_eq!(e.kind, StorageErrorKind::Crashed);
            assert_eq!((e.op, e.file.as_str()), ("rename", "a"));
            assert!(d.is_crashed());
            assert_eq!(d.ops(), 6);
            for e in [
                d.write_at("a", 0, b"y").unwrap_err(),
                d.sync("a").unwrap_err(),
                d.sync_dir().unwrap_err(),
                d.read_at("a", 0, &mut buf).unwrap_err(),
                d.size("a").unwrap_err(),
                d.list().unwrap_err(),
                d.read_only().read_at("a", 0, &mut buf).unwrap_err(),
            ] {
                assert_eq!(e.kind, StorageErrorKind::Crashed, "{e}");
            }
            assert_eq!(d.ops(), 6, "no op counted while the power is off");
            d.restart();
            // The rename never happened, so no prefix can hold it.
            assert_eq!(d.list().unwrap(), vec!["a".to_string()]);
            assert_eq!(read_all(&mut d, "a").unwrap()[0], b'x');
            d.write_at("a", 0, b"z").unwrap();
            assert_eq!(d.ops(), 7);
            assert_eq!(d.stats().crashes, 1);
        }
    }

    #[test]
    fn a_crash_fault_loses_power_at_the_call() {
        let mut d = SimDisk::new(
            3,
            DiskFaults {
                crash_ppm: PPM,
                ..DiskFaults::default()
            },
        );
        let e = d.write_at("a", 0, b"x").unwrap_err();
        assert_eq!(e.kind, StorageErrorKind::Crashed);
        assert!(d.is_crashed());
        d.restart();
        assert!(d.list().unwrap().is_empty(), "the write did not happen");
        d.set_faults(DiskFaults::default());
        d.write_at("a", 0, b"x").unwrap();
        assert_eq!(d.stats().crashes, 1);
    }

    #[test]
    fn a_failed_sync_keeps_or_drops_each_pending_write_in_the_durable_image() {
        let mut outcomes = BTreeSet::new();
        for seed in 0..100 {
            let mut d = calm(seed);
            let old = durable_file(&mut d, "f", 2, 0xAA);
            d.write_at("f", 0, &[0x11; S]).unwrap();
            d.write_at("f", S as u64, &[0x22; S]).unwrap();
            d.set_faults(DiskFaults {
                sync_error_ppm: PPM,
                ..DiskFaults::default()
            });
            let e = d.sync("f").unwrap_err();
            assert_eq!((&e.kind, e.op), (&StorageErrorKind::Io, "sync"));
            assert!(e.reason.contains("simulated EIO"), "{e}");
            // Reads still see both writes.
            let seen = read_all(&mut d, "f").unwrap();
            assert_eq!(&seen[..S], &[0x11; S]);
            assert_eq!(&seen[S..], &[0x22; S]);
            let durable = d.durable_image()["f"].clone();
            let first = durable[..S] == [0x11; S];
            let second = durable[S..] == [0x22; S];
            assert!(first || durable[..S] == old[..S]);
            assert!(second || durable[S..] == old[S..]);
            outcomes.insert((first, second));
            // The pages were marked clean: a power loss now keeps the durable image, not the view.
            d.set_faults(DiskFaults::default());
            d.crash_and_restart();
            assert_eq!(read_all(&mut d, "f").unwrap(), durable);
            assert_eq!(d.stats().sync_errors, 1);
        }
        assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    }

    #[test]
    fn a_bitflip_changes_exactly_one_bit_of_durable_data_and_is_recorded() {
        for seed in 0..50 {
            let mut d = calm(seed);
            durable_file(&mut d, "empty", 0, 0);
            durable_file(&mut d, "f", 4, 0x5A);
            let before = d.durable_image();
            d.set_faults(DiskFaults {
                bitflip_ppm: PPM,
                ..DiskFaults::default()
            });
            d.sync("f").unwrap();
            let after = d.durable_image();
            assert_eq!(after["empty"], Vec::<u8>::new());
            let diff: Vec<(usize, u8)> = before["f"]
                .iter()
                .zip(&after["f"])
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, (a, b))| (i, a ^ b))
                .collect();
            assert_eq!(diff.len(), 1);
            assert_eq!(diff[0].1.count_ones(), 1);
            assert_eq!(
                d.corruptions(),
                vec![Corruption {
                    kind: "bitflip",
                    file: "f".into(),
                    offset: diff[0].0 as u64,
                    len: 1
                }]
            );
            // It stays flipped: reads see it, and a power loss keeps it.
            assert_eq!(read_all(&mut d, "f").unwrap(), after["f"]);
            d.set_faults(DiskFaults::default());
            d.crash_and_restart();
            assert_eq!(read_all(&mut d, "f").unwrap(), after["f"]);
            assert_eq!(d.stats().bitflips, 1);
        }
    }

    #[test]
    fn flip_bit_flips_at_rest_and_records_it() {
        let mut d = calm(1);
        durable_file(&mut d, "f", 1, 0);
        d.flip_bit("f", 3, 2);
        assert_eq!(d.durable_image()["f"][3], 4);
        assert_eq!(read_all(&mut d, "f").unwrap()[3], 4);
        d.flip_bit("f", 10_000, 0);
        d.flip_bit("nope", 0, 0);
        assert_eq!(d.corruptions().len(), 1);
        assert_eq!(d.corruptions()[0].offset, 3);
    }

    #[test]
    fn a_misdirected_write_lands_whole_sectors_away_and_is_recorded() {
        let mut deltas = BTreeSet::new();
        for seed in 0..100 {
            let mut d = calm(seed);
            let zeros = durable_file(&mut d, "f", 32, 0);
            d.set_faults(DiskFaults {
                misdirect_ppm: PPM,
                ..DiskFaults::default()
            });
            let aimed = 12 * S as u64;
            d.write_at("f", aimed, &[0xCC; 100]).unwrap();
            let got = read_all(&mut d, "f").unwrap();
            let landed = got.iter().position(|&b| b == 0xCC).unwrap() as u64;
            assert_eq!(got.iter().filter(|&&b| b == 0xCC).count(), 100);
            assert_eq!(got[aimed as usize..aimed as usize + 100], zeros[..100]);
            let delta = landed as i64 - aimed as i64;
            assert!(
                delta != 0 && delta % 512 == 0 && delta.abs() <= 8 * 512,
                "{delta}"
            );
            deltas.insert(delta);
            let c = &d.corruptions()[0];
            assert_eq!((c.kind, c.file.as_str()), ("misdirect", "f"));
            assert_eq!(c.offset, aimed.min(landed));
            assert_eq!(c.offset + c.len, aimed.max(landed) + 100);
            // Near the start of the file it can only go forwards.
            d.write_at("f", 0, &[0xDD; 10]).unwrap();
            let got = read_all(&mut d, "f").unwrap();
            assert_eq!(got[..10], [0; 10]);
            assert_eq!(d.stats().misdirects, 2);
        }
        assert!(deltas.len() > 10, "{deltas:?}");
    }

    #[test]
    fn a_failed_write_may_have_reached_some_sectors() {
        let mut partial = 0;
        for seed in 0..50 {
            let mut d = calm(seed);
            let old = durable_file(&mut d, "f", 8, 0xAA);
            d.set_faults(DiskFaults {
                write_error_ppm: PPM,
                ..DiskFaults::default()
            });
            let e = d.write_at("f", 0, &[0xBB; 8 * S]).unwrap_err();
            assert_eq!((&e.kind, e.op), (&StorageErrorKind::Io, "write"));
            let got = read_all(&mut d, "f").unwrap();
            let mut reached = 0;
            for s in 0..8 {
                let sector = &got[s * S..(s + 1) * S];
                assert!(sector == &old[s * S..(s + 1) * S] || sector == [0xBB; S]);
                reached += (sector == [0xBB; S]) as u32;
            }
            partial += (reached > 0 && reached < 8) as u32;
            assert_eq!(d.stats().write_errors, 1);
        }
        assert!(partial > 40, "{partial}");
    }

    #[test]
    fn read_errors_are_transient() {
        let mut d = calm(1);
        durable_file(&mut d, "f", 1, 1);
        d.set_faults(DiskFaults {
            read_error_ppm: PPM,
            ..DiskFaults::default()
        });
        let mut buf = [0u8; 16];
        let e = d.read_at("f", 0, &mut buf).unwrap_err();
        assert_eq!((&e.kind, e.op), (&StorageErrorKind::Io, "read"));
        // A read-only handle never injects faults.
        assert_eq!(d.read_only().read_at("f", 0, &mut buf).unwrap(), 16);
        d.set_faults(DiskFaults {
            read_error_ppm: PPM / 2,
            ..DiskFaults::default()
        });
        let oks = (0..100)
            .filter(|_| d.read_at("f", 0, &mut buf).is_ok())
            .count();
        assert!(oks > 20 && oks < 80, "{oks}");
        assert_eq!(d.stats().read_errors, 101 - oks as u64);
    }

    #[test]
    fn a_read_only_handle_refuses_changes_and_draws_no_faults() {
        let mut d = SimDisk::new(
            1,
            DiskFaults {
                read_error_ppm: PPM,
                ..DiskFaults::default()
            },
        );
        durable_file(&mut d, "f", 1, 3);
        let mut ro = d.read_only();
        assert!(Storage::read_only(&ro));
        let ops = d.ops();
        ro.crash_at_op(ops);
        for e in [
            ro.write_at("f", 0, b"x").unwrap_err(),
            ro.write_at("new", 0, b"x").unwrap_err(),
            ro.sync("f").unwrap_err(),
            ro.truncate("f", 0).unwrap_err(),
            ro.rename("f", "g").unwrap_err(),
            ro.remove("f").unwrap_err(),
            ro.sync_dir().unwrap_err(),
        ] {
            assert_eq!(e.kind, StorageErrorKind::ReadOnly, "{e}");
        }
        assert_eq!(d.ops(), ops, "refused calls are not ops");
        assert!(!d.is_crashed(), "nor do they reach an armed crash");
        assert_eq!(read_all(&mut ro, "f").unwrap(), vec![3; S]);
        assert_eq!(ro.list().unwrap(), vec!["f".to_string()]);
        assert_eq!(ro.size("f").unwrap(), S as u64);
        // The handles share one disk.
        d.set_faults(DiskFaults::default());
        // The crash armed through the read-only handle fires at the next writable call.
        let e = d.write_at("f", 0, b"shared").unwrap_err();
        assert_eq!(e.kind, StorageErrorKind::Crashed);
        d.restart();
        d.write_at("f", 0, b"shared").unwrap();
        let mut buf = [0u8; 6];
        ro.read_at("f", 0, &mut buf).unwrap();
        assert_eq!(&buf, b"shared");
    }

    /// A seeded workload of every kind of call under heavy faults, with power losses.
    fn workload(
        disk_seed: u64,
        ops_seed: u64,
    ) -> (BTreeMap<String, Vec<u8>>, String, Vec<Corruption>) {
        let faults = DiskFaults {
            crash_ppm: 10_000,
            write_error_ppm: 20_000,
            sync_error_ppm: 20_000,
            read_error_ppm: 50_000,
            bitflip_ppm: 20_000,
            misdirect_ppm: 20_000,
        };
        let mut d = SimDisk::new(disk_seed, faults);
        let mut r = ChaCha8Rng::seed_from_u64(ops_seed);
        let names = ["a", "b", "c", "d"];
        for i in 0..2_000 {
            if d.is_crashed() || i % 500 == 499 {
                d.crash_and_restart();
            }
            let f = names[r.random_range(0..4)];
            let off = r.random_range(0..8_000u64);
            let _ = match r.random_range(0..8) {
                0..=2 => d.write_at(f, off, &vec![r.random::<u8>(); r.random_range(1..2_000)]),
                3 => d.sync(f),
                4 => d.sync_dir(),
                5 => d.truncate(f, off),
                6 => d.rename(f, names[r.random_range(0..4)]),
                _ => d.read_at(f, off, &mut [0u8; 100]).map(|_| ()),
            };
        }
        d.crash_and_restart();
        (
            d.durable_image(),
            format!("{:?}", d.stats()),
            d.corruptions(),
        )
    }

    #[test]
    fn the_same_seed_gives_the_same_disk() {
        let first = workload(42, 7);
        assert_eq!(first, workload(42, 7));
        assert!(!first.0.is_empty());
        assert!(!first.2.is_empty(), "the workload injected corruption");
        let stats = &first.1;
        for field in [
            "torn_writes: 0",
            "dropped_writes: 0",
            "crashes: 0",
            "sync_errors: 0",
        ] {
            assert!(!stats.contains(&format!("{field},")), "{stats}");
        }
        assert!((43..48).any(|seed| workload(seed, 7) != first));
    }

    #[test]
    fn huge_offsets_and_lengths_fail_without_allocating() {
        let mut d = calm(1);
        for (off, len) in [
            (u64::MAX, 1),
            (u64::MAX - 3, 8),
            (MAX_FILE_BYTES, 1),
            (1 << 40, 0),
        ] {
            let e = d.write_at("f", off, &vec![1; len]).unwrap_err();
            assert_eq!(e.kind, StorageErrorKind::Io);
            assert!(e.reason.contains("ENOSPC"), "{e}");
            assert_eq!(e.offset, off);
        }
        assert!(
            d.list().unwrap().is_empty(),
            "a refused write creates nothing"
        );
        d.write_at("f", 0, b"x").unwrap();
        assert!(d
            .truncate("f", u64::MAX)
            .unwrap_err()
            .reason
            .contains("ENOSPC"));
        assert_eq!(d.read_at("f", u64::MAX, &mut [0; 8]).unwrap(), 0);
        assert_eq!(d.read_at("f", 1 << 40, &mut []).unwrap(), 0);
        // Misdirection never carries a write past the cap.
        d.set_faults(DiskFaults {
            misdirect_ppm: PPM,
            ..DiskFaults::default()
        });
        d.write_at("f", 0, b"y").unwrap();
        assert_eq!(d.size("f").unwrap() % 512, 1);
        d.flip_bit("f", u64::MAX, 200);
        d.crash_and_restart();
        d.restart();
    }

    #[test]
    fn handles_can_cross_threads() {
        fn send_sync<T: Send + Sync + Clone>() {}
        send_sync::<SimDisk>();
    }

    #[test]
    fn disk_faults_come_from_the_fault_plan() {
        let plan = FaultPlan::default_faults();
        let f = DiskFaults::from(&plan);
        assert_eq!(
            f,
            DiskFaults {
                crash_ppm: plan.storage_crash_ppm,
                write_error_ppm: plan.storage_write_error_ppm,
                sync_error_ppm: plan.storage_sync_error_ppm,
                read_error_ppm: plan.storage_read_error_ppm,
                bitflip_ppm: plan.storage_bitflip_ppm,
                misdirect_ppm: plan.storage_misdirect_ppm,
            }
        );
        assert_ne!(f, DiskFaults::default());
        assert_eq!(DiskFaults::from(&FaultPlan::none()), DiskFaults::default());
    }
}
