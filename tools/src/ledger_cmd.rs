//! `acme ledger`: the operator's tools for the directory of a durable ledger (a store of
//! `acme-store` on real files, holding the requests of `acme-ledger-durable`).
//!
//! - `verify DIR [--since SEQ:CHECKSUM] [--json]`, read-only: every checksum of every file, the
//!   hash chain from the first retained record to the last, a full replay in which every request
//!   must reproduce its logged outcome, and the replayed books (debits equal credits in every
//!   ledger, every account's balances equal to what its transfers add up to).
//! - `inspect DIR [--json] [--accounts N] [--transfers N]`, read-only: the same pass, and what it
//!   read: superblock, segments, checkpoints, accounts, the last transfers, per-ledger totals.
//! - `compact DIR`, read-write: verifies the store (and refuses one that does not verify: it
//!   would remove evidence), recovers it (cutting a torn tail), checkpoints it and drops the log
//!   segments and checkpoints no kept checkpoint needs (their records' headers stay in the chain
//!   archive, so `verify --since` still proves any earlier head).
//! - `write-test DIR --batches N --batch-size K`: a testing aid for crash tests ([`write_test`]).
//!
//! Exit codes: 0 good (a torn tail is what a crash during an unacknowledged write leaves, and
//! recovery cuts it: not corruption); 2 corruption (anything verification or recovery refuses,
//! or a `--since` head the log does not prove); 1 bad usage, no store in DIR, or a store that
//! could not be read (a storage error, a writer holding the lock). No input makes them panic:
//! nothing read from the files is unwrapped here, and the library reports what it finds.
//!
//! Verify and inspect read a store that a writer may be appending to (they take no lock a writer
//! waits for): what they report is then a snapshot at best; verify a store at rest.

mod inspect;
mod view;
pub mod write_test;

use acme_ledger::Clock;
use acme_ledger_durable::{verify_ledger, Config, DurableLedger, LedgerReport};
use acme_store::{chain, checkpoint, record, superblock, ChainHead, CheckpointReport, Recovery};
use acme_store::{Storage, StoreError};
use acme_store_fs::{FileStorage, Mode};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Verify a durable ledger (read-only): checksums, hash chain, replay, books. Exit 0 good,
    /// 2 corrupt, 1 no store or bad usage.
    Verify(VerifyArgs),
    /// Show a durable ledger (read-only): superblock, segments, checkpoints, accounts, the last
    /// transfers, totals; verified by the same pass as `verify`, with its exit codes.
    Inspect(inspect::InspectArgs),
    /// Verify, recover and checkpoint a durable ledger, and drop the log segments the checkpoints
    /// cover. Exit 0 done, 2 corrupt (nothing changed), 1 no store or locked.
    Compact(CompactArgs),
    /// Testing aid: write numbered batches of transfers, printing `acked SEQ BATCH` after each
    /// durable commit; a restart recovers the store and continues after the last batch present.
    WriteTest(write_test::WriteTestArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The store's directory.
    dir: PathBuf,
    /// A chain head written down earlier (`SEQ:CHECKSUM`, as `verify` prints it): prove that
    /// nothing up to that record changed.
    #[arg(long, value_name = "SEQ:CHECKSUM", value_parser = parse_head)]
    since: Option<ChainHead>,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct CompactArgs {
    /// The store's directory.
    dir: PathBuf,
}

fn parse_head(s: &str) -> Result<ChainHead, String> {
    s.parse()
}

pub fn main(args: LedgerArgs) -> ExitCode {
    match args.command {
        LedgerCommand::Verify(args) => verify(args),
        LedgerCommand::Inspect(args) => inspect::main(args),
        LedgerCommand::Compact(args) => compact(args),
        LedgerCommand::WriteTest(args) => write_test::main(args),
    }
}

/// Why a ledger command stopped short.
pub(crate) enum Failure {
    /// Bad usage, no store, or a store that could not be read: exit 1.
    Usage(String),
    /// The store holds what it must not: exit 2.
    Corrupt(String),
}

impl Failure {
    /// Says why on stderr (and, for `--json`, as a JSON object on stdout) and exits.
    pub(crate) fn exit(self, command: &str, json: bool) -> ExitCode {
        let (code, message) = match self {
            Failure::Usage(m) => (1u8, m),
            Failure::Corrupt(m) => (2u8, m),
        };
        eprintln!("acme ledger {command}: {message}");
        if json {
            let v = serde_json::json!({ "ok": false, "exit": code, "error": message });
            println!("{v}");
        }
        ExitCode::from(code)
    }
}

/// A store error as an operator reads it, and the exit it calls for.
pub(crate) fn failure(dir: &Path, e: StoreError) -> Failure {
    match e {
        StoreError::Corrupt(c) => Failure::Corrupt(format!("corrupt: {c}")),
        StoreError::Replay { seq, reason } => Failure::Corrupt(format!(
            "corrupt: record {seq} does not replay to its logged outcome: {reason}"
        )),
        StoreError::NotAStore { reason } => {
            Failure::Usage(format!("{} is not a store: {reason}", dir.display()))
        }
        other => Failure::Usage(format!("{}: {other}", dir.display())),
    }
}

/// Opens `dir` (which must exist) without changing anything in it.
pub(crate) fn open_read_only(dir: &Path) -> Result<FileStorage, Failure> {
    FileStorage::open(dir, Mode::ReadOnly).map_err(|e| Failure::Usage(e.reason))
}

/// The whole verification pass on `dir`, read-only.
pub(crate) fn verify_dir(dir: &Path, since: Option<ChainHead>) -> Result<LedgerReport, Failure> {
    let mut storage = open_read_only(dir)?;
    verify_ledger(&mut storage, since).map_err(|e| failure(dir, e))
}

/// 0 for a clean report, 2 for any corruption or a `--since` that failed.
pub(crate) fn exit_of(report: &LedgerReport) -> ExitCode {
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn verify(args: VerifyArgs) -> ExitCode {
    let report = match verify_dir(&args.dir, args.since) {
        Ok(report) => report,
        Err(f) => return f.exit("verify", args.json),
    };
    let view = view::VerifyView::new(&args.dir, &report);
    print_view(args.json, &view, view.human());
    exit_of(&report)
}

/// A view as one JSON object, or as its text for people.
pub(crate) fn print_view(json: bool, view: &impl serde::Serialize, human: String) {
    if json {
        println!(
            "{}",
            serde_json::to_string(view).expect("the view serialises")
        );
    } else {
        print!("{human}");
    }
}

/// Whether the file names are those of a store (or of what is left of one): a superblock, a log
/// segment, a checkpoint or the chain archive.
pub(crate) fn holds_store(names: &[String]) -> bool {
    names.iter().any(|n| {
        n == superblock::FILE
            || n == chain::FILE
            || record::parse_segment_name(n).is_some()
            || checkpoint::parse_file_name(n).is_some()
    })
}

/// The wall clock, for the ledgers the tools write outside the simulator (the durable ledger
/// logs each request's reading, so replay never reads it).
pub(crate) struct WallClock;

impl Clock for WallClock {
    fn now_ns(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Opens the store in `dir` for writing, recovering it; `dir` must hold one (compact never
/// creates a directory or a store).
pub(crate) fn open_for_writing(
    dir: &Path,
    config: Config,
) -> Result<(DurableLedger<FileStorage>, Recovery), Failure> {
    let names = open_read_only(dir)?
        .list()
        .map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))?;
    if !holds_store(&names) {
        return Err(Failure::Usage(format!(
            "{} is not a store: no superblock file",
            dir.display()
        )));
    }
    let storage = FileStorage::open(dir, Mode::ReadWrite).map_err(|e| Failure::Usage(e.reason))?;
    DurableLedger::open(storage, Arc::new(WallClock), config).map_err(|e| failure(dir, e))
}

/// What recovery found and did, one line each.
pub(crate) fn recovery_lines(r: &Recovery) -> Vec<String> {
    let from = if r.checkpoint_seq == 0 {
        "no checkpoint, replayed from the start".to_string()
    } else {
        format!("checkpoint at record {}", r.checkpoint_seq)
    };
    let mut lines = vec![format!(
        "recovered: {from}, {} records replayed, chain head {}",
        r.replayed, r.head
    )];
    if let Some(c) = &r.checkpoint_fallback {
        lines.push(format!(
            "warning: the current checkpoint does not verify ({c}); recovered from the previous one"
        ));
    }
    if let Some(note) = &r.superblock_note {
        lines.push(format!("superblock: {note} (rewritten)"));
    }
    if r.unacknowledged > 0 {
        lines.push(format!(
            "kept {} records written after the superblock's boundary (never acknowledged)",
            r.unacknowledged
        ));
    }
    if let Some(t) = &r.torn {
        lines.push(format!(
            "cut a torn tail: {} bytes at {} offset {} (record {}: {})",
            t.bytes, t.file, t.offset, t.seq, t.reason
        ));
    }
    lines
}

fn compact(args: CompactArgs) -> ExitCode {
    if let Err(f) = verified(&args.dir) {
        return f.exit("compact", false);
    }
    let (mut ledger, recovery) = match open_for_writing(&args.dir, Config::default()) {
        Ok(opened) => opened,
        Err(f) => return f.exit("compact", false),
    };
    for line in recovery_lines(&recovery) {
        println!("{line}");
    }
    match ledger.checkpoint_now() {
        Ok(report) => {
            print!("{}", compaction_text(&report, &recovery));
            ExitCode::SUCCESS
        }
        Err(e) => failure(&args.dir, e).exit("compact", false),
    }
}

/// Compaction removes segments and checkpoints, and recovery reads only what it needs (and
/// falls back on a redundant copy), so it could drop the evidence of corruption it never read:
/// the whole store is verified first, and a store that does not verify is left as it is.
fn verified(dir: &Path) -> Result<(), Failure> {
    let report = verify_dir(dir, None)?;
    if report.is_clean() {
        return Ok(());
    }
    let found: Vec<String> = report
        .store
        .corruptions
        .iter()
        .map(|c| format!("corrupt: {c}"))
        .collect();
    Err(Failure::Corrupt(format!(
        "refusing to compact a store that does not verify (acme ledger verify {} tells all):\n{}",
        dir.display(),
        found.join("\n")
    )))
}

fn compaction_text(report: &CheckpointReport, recovery: &Recovery) -> String {
    if report.seq == 0 {
        return format!(
            "nothing to compact: the checkpoint at record {} already covers the chain head\n",
            recovery.checkpoint_seq
        );
    }
    let mut out = format!(
        "wrote {} covering record {} ({} bytes)\n",
        checkpoint::file_name(report.seq),
        report.seq,
        report.bytes
    );
    for name in &report.removed_segments {
        out += &format!("removed segment {name}\n");
    }
    for name in &report.removed_checkpoints {
        out += &format!("removed checkpoint {name}\n");
    }
    if report.archived_headers > 0 {
        out += &format!(
            "kept the headers of {} removed records in the chain archive\n",
            report.archived_headers
        );
    }
    let segments_before = recovery.segments.len();
    out += &format!(
        "segments: {segments_before} before, {} after; {} checkpoints removed\n",
        segments_before.saturating_sub(report.removed_segments.len()),
        report.removed_checkpoints.len()
    );
    out
}
