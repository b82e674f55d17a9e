//! Where `acme recon` reads the ledger: an export directory, a durable store (read-only), or a
//! TigerBeetle cluster; and the journal replay's spill on disk.
//!
//! All three feed one `LedgerScan`. The cluster is read through the `Ledger` port by
//! `acme_processes::recon::source::scan_ledger` (paged by timestamp, at the point the scan
//! starts); the export is read from its record files in chunks; the store is streamed from its
//! checkpoint and log files (`acme_ledger_durable::stream`). The journal replay spills
//! its partitions to files in a temporary directory ([`FileSpill`]), so memory does not grow
//! with the ledger.

use acme_ledger::export::{read_accounts, read_transfers, ExportError};
use acme_processes::calendar::Date;
use acme_processes::recon::ledger::{
    Calendar, LedgerFacts, LedgerScan, Manifest, ACCOUNTS_FILE, CALENDAR_FILE, MANIFEST_FILE,
    TRANSFERS_FILE,
};
use acme_processes::recon::replay::{partitions_for, Replay, Set, Spill};
use acme_processes::recon::source::{latest_timestamp, scan_ledger, ScanStats};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// What the ledger is as of and how to read its dates, wherever it came from.
pub struct LedgerRead {
    pub as_of: Date,
    pub settlement_lag_days: u32,
    pub facts: LedgerFacts,
    /// Where it was read from, for the report.
    pub source: String,
    /// For the store and the cluster: what the paged scan read.
    pub stats: Option<ScanStats>,
}

/// How the ledger's dates are read when it has no manifest (a store, a cluster).
pub struct Dating {
    pub as_of: Option<Date>,
    pub settlement_lag_days: u32,
    pub calendar: Calendar,
    pub spill_dir: Option<PathBuf>,
}

pub fn shown(p: &Path) -> String {
    p.display().to_string()
}

// ---------------------------------------------------------------------------------------------
// The spill

/// The journal replay's partitions as files (one per set and partition, records prefixed with
/// their length) in a directory of their own, removed when dropped.
pub struct FileSpill {
    dir: PathBuf,
    writers: BTreeMap<(Set, u32), BufWriter<File>>,
}

impl FileSpill {
    /// A new spill directory under `parent` (the system's temporary directory if `None`).
    pub fn new(parent: Option<&Path>) -> Result<FileSpill, String> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let dir = parent.join(format!("acme-recon-spill-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("{}: cannot create the spill directory: {e}", shown(&dir)))?;
        Ok(FileSpill {
            dir,
            writers: BTreeMap::new(),
        })
    }

    fn path(&self, set: Set, part: u32) -> PathBuf {
        self.dir.join(format!("{set:?}-{part}").to_lowercase())
    }
}

impl Drop for FileSpill {
    fn drop(&mut self) {
        self.writers.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Spill for FileSpill {
    fn append(&mut self, set: Set, part: u32, record: &[u8]) -> Result<(), String> {
        let w = match self.writers.entry((set, part)) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let path = self.dir.join(format!("{set:?}-{part}").to_lowercase());
                let f = File::create(&path)
                    .map_err(|e| format!("{}: cannot create: {e}", shown(&path)))?;
                v.insert(BufWriter::with_capacity(1 << 18, f))
            }
        };
        let len = u8::try_from(record.len()).map_err(|_| "a spill record over 255 bytes")?;
        let mut framed = [0u8; 256];
        framed[0] = len;
        framed[1..=record.len()].copy_from_slice(record);
        w.write_all(&framed[..=record.len()])
            .map_err(|e| format!("spill {set:?} {part}: cannot write: {e}"))
    }

    fn read(
        &mut self,
        set: Set,
        part: u32,
        f: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        if let Some(mut w) = self.writers.remove(&(set, part)) {
            w.flush()
                .map_err(|e| format!("spill {set:?} {part}: cannot write: {e}"))?;
        } else {
            return Ok(()); // nothing was appended
        }
        let path = self.path(set, part);
        let file = File::open(&path).map_err(|e| format!("{}: cannot read: {e}", shown(&path)))?;
        let cannot = |e: std::io::Error| format!("{}: cannot read: {e}", shown(&path));
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut straddling = [0u8; 256];
        loop {
            // The records wholly in the buffer are handed out from it; the one that straddles
            // its end (if any) is read on its own.
            let buf = r.fill_buf().map_err(cannot)?;
            if buf.is_empty() {
                break;
            }
            let mut used = 0;
            while let Some(&len) = buf.get(used) {
                let end = used + 1 + usize::from(len);
                let Some(body) = buf.get(used + 1..end) else {
                    break;
                };
                f(body)?;
                used = end;
            }
            r.consume(used);
            if used == 0 {
                let mut len = [0u8; 1];
                r.read_exact(&mut len).map_err(cannot)?;
                let body = &mut straddling[..usize::from(len[0])];
                r.read_exact(body).map_err(cannot)?;
                f(body)?;
            }
        }
        drop(r);
        let _ = std::fs::remove_file(&path);
        Ok(())
    }
}

/// A scan whose journal replay spills to disk, sized for about `accounts` accounts.
fn spilling_scan(
    journal: bool,
    accounts: u64,
    calendar: Calendar,
    dir: Option<&Path>,
) -> Result<LedgerScan, String> {
    let replay = if journal {
        let spill = FileSpill::new(dir)?;
        Some(Replay::new(Box::new(spill), partitions_for(accounts)))
    } else {
        None
    };
    Ok(LedgerScan::with_replay(replay, calendar))
}

// ---------------------------------------------------------------------------------------------
// An export directory

fn read_text(p: &Path) -> Result<String, String> {
    super::read_text(p)
}

fn export_error(p: &Path, e: ExportError) -> String {
    match e.record {
        Some(r) => format!(
            "{}: record {}: field `{}`: {}",
            shown(p),
            r + 1,
            e.field,
            e.reason
        ),
        None => format!("{}: field `{}`: {}", shown(p), e.field, e.reason),
    }
}

/// Ledgers with at least this many accounts show a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 1_000_000;

fn progress(accounts: u64) -> Option<indicatif::ProgressBar> {
    (accounts >= PROGRESS_FROM).then(|| {
        let bar = indicatif::ProgressBar::new(accounts);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} accounts ({per_sec}, {eta})",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar.set_message("acme recon: reading the ledger");
        bar
    })
}

/// The export directory of `dir` (DIR or DIR/ledger), if it holds a manifest.
pub fn export_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("ledger")]
        .into_iter()
        .find(|d| d.join(MANIFEST_FILE).exists())
}

/// Reads an export's ledger directory into facts.
pub fn read_export(dir: &Path, spill_dir: Option<&Path>) -> Result<LedgerRead, String> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = Manifest::parse(&shown(&manifest_path), &read_text(&manifest_path)?)
        .map_err(|e| e.to_string())?;
    // An export of a ledger with a clock of its own carries its business days.
    let calendar_path = dir.join(CALENDAR_FILE);
    let calendar = if calendar_path.exists() {
        Calendar::parse(&shown(&calendar_path), &read_text(&calendar_path)?)
            .map_err(|e| e.to_string())?
    } else {
        Calendar::default()
    };
    let mut scan = spilling_scan(
        manifest.journal_complete,
        manifest.accounts,
        calendar,
        spill_dir,
    )?;
    let accounts_path = dir.join(ACCOUNTS_FILE);
    let file = File::open(&accounts_path)
        .map_err(|e| format!("{}: cannot read: {e}", shown(&accounts_path)))?;
    let bar = progress(manifest.accounts);
    let mut n: u64 = 0;
    let count = pipelined(
        |give| read_accounts(BufReader::with_capacity(1 << 20, file), give),
        |a| {
            scan.account(&a);
            n += 1;
            if n.is_multiple_of(65_536) {
                if let Some(b) = &bar {
                    b.set_position(n);
                }
            }
        },
    )
    .map_err(|e| export_error(&accounts_path, e))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    check_count(&manifest_path, "accounts", manifest.accounts, count)?;
    let transfers_path = dir.join(TRANSFERS_FILE);
    let file = File::open(&transfers_path)
        .map_err(|e| format!("{}: cannot read: {e}", shown(&transfers_path)))?;
    let count = pipelined(
        |give| read_transfers(BufReader::with_capacity(1 << 20, file), give),
        |t| scan.transfer(&t),
    )
    .map_err(|e| export_error(&transfers_path, e))?;
    check_count(&manifest_path, "transfers", manifest.transfers, count)?;
    Ok(LedgerRead {
        as_of: manifest.as_of,
        settlement_lag_days: manifest.settlement_lag_days,
        facts: scan.finish()?,
        source: shown(dir),
        stats: None,
    })
}

/// Runs `read` (reading and decoding a file, checksums included) on a thread of its own while
/// `take` (the scan and its replay) has each record on this one: the two halves of the work on
/// the two cores. Records go over in batches through a bounded channel, so memory stays a few
/// batches, and in the order read. `read`'s result is returned once `take` has had everything
/// it gave; a record given before an error is found (the file's checksum is checked at its end)
/// has been taken, as it would be on one thread, and the error still fails the whole run.
fn pipelined<T: Send, R: Send>(
    read: impl FnOnce(&mut dyn FnMut(T)) -> R + Send,
    mut take: impl FnMut(T),
) -> R {
    const BATCH: usize = 4_096;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<T>>(8);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let result = read(&mut |t| {
                batch.push(t);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    // A closed channel means this side's taker is gone (it panicked); the
                    // reader then only finishes, and the panic is what is reported.
                    let _ = tx.send(full);
                }
            });
            let _ = tx.send(batch);
            result
        });
        for batch in rx {
            batch.into_iter().for_each(&mut take);
        }
        match reader.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn check_count(manifest: &Path, field: &str, stated: u64, found: u64) -> Result<(), String> {
    if stated == found {
        return Ok(());
    }
    let file = if field == "accounts" {
        ACCOUNTS_FILE
    } else {
        TRANSFERS_FILE
    };
    Err(format!(
        "{}: field `{field}`: {stated} but {file} holds {found}",
        shown(manifest)
    ))
}

// ---------------------------------------------------------------------------------------------
// Through the port: a durable store, a TigerBeetle cluster

/// Reads a ledger through the port at one point, with the journal replayed.
#[cfg_attr(not(feature = "tigerbeetle"), allow(dead_code))]
pub fn read_port(
    ledger: &mut dyn acme_ledger::Ledger,
    source: String,
    dating: &Dating,
) -> Result<LedgerRead, String> {
    let latest = latest_timestamp(ledger).map_err(|e| format!("{source}: {e}"))?;
    let as_of = match dating.as_of {
        Some(d) => d,
        None if latest == 0 => {
            return Err(format!(
                "{source}: the ledger is empty; give the statement date with --as-of"
            ))
        }
        None => dating.calendar.date_of(latest),
    };
    let mut scan = spilling_scan(
        true,
        // Unknown before the scan: size the partitions for a large ledger (their files are
        // created only as records come).
        32 << 20,
        dating.calendar.clone(),
        dating.spill_dir.as_deref(),
    )?;
    let stats = scan_ledger(ledger, &mut scan).map_err(|e| format!("{source}: {e}"))?;
    Ok(LedgerRead {
        as_of,
        settlement_lag_days: dating.settlement_lag_days,
        facts: scan.finish()?,
        source,
        stats: Some(stats),
    })
}

/// Reads a durable store read-only, streaming: its last durable checkpoint's records and the
/// log after it, checked as the store's recovery checks them, with nothing in the directory
/// changed and the ledger never held in memory (see `acme_ledger_durable::stream`).
pub fn read_store(dir: &Path, dating: &Dating) -> Result<LedgerRead, String> {
    use acme_store_fs::{FileStorage, Mode};
    let mut storage = FileStorage::open(dir, Mode::ReadOnly)
        .map_err(|e| format!("{}: {}", shown(dir), e.reason))?;
    let located = acme_store::stream::locate(&mut storage)
        .map_err(|e| format!("{}: cannot recover the store: {e}", shown(dir)))?;
    let candidates: Vec<Option<_>> = if located.candidates.is_empty() {
        vec![None]
    } else {
        located.candidates.iter().copied().map(Some).collect()
    };
    let cannot =
        |e: &dyn std::fmt::Display| format!("{}: cannot recover the store: {e}", shown(dir));
    // The current checkpoint's corruption, when the previous one is tried.
    let mut fallback: Option<acme_store::Corruption> = None;
    for candidate in &candidates {
        let mut scan = StoreScan {
            scan: spilling_scan(
                true,
                // Unknown before the read: size the partitions for a large ledger (their files
                // are created only as records come).
                32 << 20,
                dating.calendar.clone(),
                dating.spill_dir.as_deref(),
            )?,
        };
        let read = acme_ledger_durable::stream::stream_store(
            &mut storage,
            &located,
            *candidate,
            &mut scan,
        );
        match read {
            Ok(report) => return store_read(dir, dating, scan.scan, &report, fallback),
            // Recovery falls back to the previous checkpoint when the current one does not
            // verify: so does this read, from the start (part of the bad one was already used).
            // When none verifies, recovery names the first.
            Err(acme_store::StoreError::Corrupt(c))
                if candidate
                    .is_some_and(|k| c.file == acme_store::checkpoint::file_name(k.seq)) =>
            {
                fallback.get_or_insert(c);
            }
            Err(e) => return Err(cannot(&e)),
        }
    }
    // Only a corrupt checkpoint leaves the loop, and every one did not verify.
    Err(match fallback {
        Some(c) => cannot(&acme_store::StoreError::Corrupt(c)),
        None => format!("{}: no checkpoint to read", shown(dir)),
    })
}

struct StoreScan {
    scan: LedgerScan,
}

impl acme_ledger_durable::stream::Sink for StoreScan {
    fn account(&mut self, a: &acme_ledger::Account) {
        self.scan.account(a);
    }
    fn transfer(&mut self, t: &acme_ledger::Transfer) {
        self.scan.transfer(t);
    }
}

fn store_read(
    dir: &Path,
    dating: &Dating,
    scan: LedgerScan,
    r: &acme_ledger_durable::stream::StreamReport,
    fallback: Option<acme_store::Corruption>,
) -> Result<LedgerRead, String> {
    let as_of = match dating.as_of {
        Some(d) => d,
        None if r.latest_timestamp == 0 => {
            return Err(format!(
                "{}: the ledger is empty; give the statement date with --as-of",
                shown(dir)
            ))
        }
        None => dating.calendar.date_of(r.latest_timestamp),
    };
    let mut source = format!(
        "{} (durable store, checkpoint at record {}, {} records replayed, head {})",
        shown(dir),
        r.checkpoint_seq,
        r.replayed,
        r.head
    );
    if let Some(f) = fallback {
        source.push_str(&format!(
            "; the current checkpoint did not verify ({f}), the previous one was used"
        ));
    }
    if let Some(t) = &r.torn {
        source.push_str(&format!(
            "; a torn tail in {} at offset {} left out",
            t.file, t.offset
        ));
    }
    let mut facts = scan.finish()?;
    // The log's accounts come after the checkpoint's: findings in id order, whatever the order
    // read.
    for v in [
        &mut facts.negative,
        &mut facts.unknown,
        &mut facts.journal_mismatches,
    ] {
        v.sort_by_key(|f| f.id);
    }
    Ok(LedgerRead {
        as_of,
        settlement_lag_days: dating.settlement_lag_days,
        facts,
        source,
        stats: None,
    })
}

/// Reads a TigerBeetle cluster (cluster `cluster_id` at `addresses`).
#[cfg(feature = "tigerbeetle")]
pub fn read_tigerbeetle(
    cluster_id: u128,
    addresses: &str,
    dating: &Dating,
) -> Result<LedgerRead, String> {
    let mut tb = acme_ledger_tigerbeetle::TigerBeetleLedger::connect(cluster_id, addresses)
        .map_err(|e| format!("--tigerbeetle {addresses}: {e}"))?;
    tb.ping()
        .map_err(|e| format!("--tigerbeetle {addresses}: does not answer: {e}"))?;
    let source = format!("TigerBeetle cluster {cluster_id} at {addresses}");
    read_port(&mut tb, source, dating)
}

#[cfg(not(feature = "tigerbeetle"))]
pub fn read_tigerbeetle(_: u128, addresses: &str, _: &Dating) -> Result<LedgerRead, String> {
    Err(format!(
        "--tigerbeetle {addresses}: this acme was built without TigerBeetle (cargo build \
         --features tigerbeetle)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of every length, many times a read buffer, come back as appended: those that
    /// straddle the buffer's end included.
    #[test]
    fn the_file_spill_gives_back_every_record_as_appended() {
        let parent = std::env::temp_dir().join(format!("acme-spill-test-{}", std::process::id()));
        let mut spill = FileSpill::new(Some(&parent)).unwrap();
        let record = |i: usize| -> Vec<u8> { (0..i % 256).map(|j| (i + j) as u8).collect() };
        let n = 40_000; // ~5 MiB: several 1 MiB buffers
        for i in 0..n {
            spill.append(Set::Effects, 3, &record(i)).unwrap();
            spill.append(Set::Accounts, 0, &record(n - i)).unwrap();
        }
        for (set, part, at) in [(Set::Effects, 3, 0), (Set::Accounts, 0, n)] {
            let mut i = 0;
            spill
                .read(set, part, &mut |r| {
                    let want = if at == 0 { record(i) } else { record(at - i) };
                    assert_eq!(r, &want[..], "{set:?} record {i}");
                    i += 1;
                    Ok(())
                })
                .unwrap();
            assert_eq!(i, n);
        }
        drop(spill);
        let _ = std::fs::remove_dir_all(&parent);
    }
}
