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
#[path = "disk_tests.rs"]
mod tests;
