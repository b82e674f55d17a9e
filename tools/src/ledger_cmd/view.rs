//! What `acme ledger verify` reports, as one serialisable view (`--json`) and as text.
//!
//! In JSON, checksums are 32 hex digits and a chain head is `SEQ:CHECKSUM`, exactly as
//! `--since` takes it back.

use acme_ledger_durable::LedgerReport;
use acme_store::scan::TornTail;
use acme_store::verify::CheckpointFile;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Serialize)]
pub struct SegmentView {
    pub name: String,
    pub first_seq: u64,
    pub bytes: u64,
}

#[derive(Serialize)]
pub struct CheckpointView {
    pub name: String,
    pub seq: u64,
    pub bytes: u64,
    pub named_by_superblock: bool,
    pub ok: bool,
}

#[derive(Serialize)]
pub struct TornView {
    pub file: String,
    pub offset: u64,
    pub seq: u64,
    pub bytes: u64,
    pub reason: String,
    pub later_segments: Vec<String>,
}

#[derive(Serialize)]
pub struct CorruptionView {
    pub file: String,
    pub offset: u64,
    pub seq: Option<u64>,
    pub reason: String,
}

#[derive(Serialize)]
pub struct SinceView {
    pub ok: bool,
    pub message: String,
}

/// Everything the verification pass found.
#[derive(Serialize)]
pub struct VerifyView {
    pub dir: String,
    pub ok: bool,
    pub chain_head: String,
    pub first_seq: u64,
    pub records: u64,
    pub log_bytes: u64,
    /// The last record whose header is kept in the chain archive (0: none archived).
    pub archived_seq: u64,
    pub segments: Vec<SegmentView>,
    pub checkpoint_seq: u64,
    pub replayed: u64,
    pub checkpoints: Vec<CheckpointView>,
    pub accounts: u64,
    pub transfers: u64,
    pub ledgers: u64,
    /// Whether the ledger was replayed and its books checked (not when the store is corrupt).
    pub books_checked: bool,
    /// The books that do not balance (also among the corruptions).
    pub unbalanced: Vec<String>,
    pub torn: Option<TornView>,
    pub notes: Vec<String>,
    pub corruptions: Vec<CorruptionView>,
    pub since: Option<SinceView>,
}

impl VerifyView {
    pub fn new(dir: &Path, report: &LedgerReport) -> VerifyView {
        let store = &report.store;
        VerifyView {
            dir: dir.display().to_string(),
            ok: report.is_clean(),
            chain_head: store.head.to_string(),
            first_seq: store.first_seq,
            records: store.records,
            log_bytes: store.log_bytes,
            archived_seq: store.archived,
            segments: store
                .segments
                .iter()
                .map(|s| SegmentView {
                    name: s.name.clone(),
                    first_seq: s.first_seq,
                    bytes: s.size,
                })
                .collect(),
            checkpoint_seq: store.checkpoint_seq,
            replayed: store.replayed,
            checkpoints: store.checkpoints.iter().map(checkpoint_view).collect(),
            accounts: report.accounts,
            transfers: report.transfers,
            ledgers: report.ledgers,
            books_checked: report.ledger.is_some(),
            unbalanced: report.unbalanced.clone(),
            torn: store.torn.as_ref().map(torn_view),
            notes: store.notes.clone(),
            corruptions: store
                .corruptions
                .iter()
                .map(|c| CorruptionView {
                    file: c.file.clone(),
                    offset: c.offset,
                    seq: c.seq,
                    reason: c.reason.clone(),
                })
                .collect(),
            since: store.since.as_ref().map(|s| match s {
                Ok(message) => SinceView {
                    ok: true,
                    message: message.clone(),
                },
                Err(message) => SinceView {
                    ok: false,
                    message: message.clone(),
                },
            }),
        }
    }

    /// The report as an operator reads it, one finding a line.
    pub fn human(&self) -> String {
        let mut out = format!("store {}\nchain head {}\n", self.dir, self.chain_head);
        let _ = writeln!(out, "{}", self.log_line());
        let _ = writeln!(out, "{}", self.checkpoint_line());
        let _ = writeln!(out, "{}", self.ledger_line());
        if let Some(t) = &self.torn {
            let _ = write!(
                out,
                "torn tail: recovery will cut {} bytes at {} offset {} (record {}: {})",
                t.bytes, t.file, t.offset, t.seq, t.reason
            );
            if !t.later_segments.is_empty() {
                let _ = write!(out, " and remove {}", t.later_segments.join(", "));
            }
            out.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        for c in &self.corruptions {
            let _ = write!(out, "corrupt: {} at offset {}", c.file, c.offset);
            if let Some(seq) = c.seq {
                let _ = write!(out, " (record {seq})");
            }
            let _ = writeln!(out, ": {}", c.reason);
        }
        if let Some(s) = &self.since {
            let verdict = if s.ok { "proved" } else { "FAILED" };
            let _ = writeln!(out, "since: {verdict}: {}", s.message);
        }
        out += &self.verdict();
        out
    }

    fn log_line(&self) -> String {
        let segments = self.segments.len();
        let mut line = if self.records == 0 {
            format!("log: no records in {segments} segments")
        } else {
            format!(
                "log: {} records (records {} to {}), {} bytes in {segments} segments",
                self.records,
                self.first_seq,
                self.first_seq.saturating_add(self.records - 1),
                self.log_bytes
            )
        };
        if self.archived_seq > 0 {
            let _ = write!(
                line,
                "; headers of records 1 to {} in the chain archive",
                self.archived_seq
            );
        }
        line
    }

    fn checkpoint_line(&self) -> String {
        if self.checkpoint_seq == 0 {
            return format!(
                "checkpoint: none, {} records replayed from the start",
                self.replayed
            );
        }
        let file = self
            .checkpoints
            .iter()
            .find(|c| c.seq == self.checkpoint_seq)
            .map_or_else(String::new, |c| format!(" ({}, {} bytes)", c.name, c.bytes));
        format!(
            "checkpoint: record {}{file}, {} records replayed after it",
            self.checkpoint_seq, self.replayed
        )
    }

    fn ledger_line(&self) -> String {
        if !self.books_checked {
            return "ledger: not checked (the store does not verify)".into();
        }
        let books = if !self.unbalanced.is_empty() {
            "the books do not balance"
        } else {
            "debits equal credits in every ledger, every balance equals its transfers"
        };
        format!(
            "ledger: {} accounts, {} transfers, {} ledgers; {books}",
            self.accounts, self.transfers, self.ledgers
        )
    }

    fn verdict(&self) -> String {
        if self.ok {
            return "ok\n".into();
        }
        let since_failed = self.since.as_ref().is_some_and(|s| !s.ok);
        let mut problems = self.corruptions.len();
        if since_failed {
            problems += 1;
        }
        format!("CORRUPT: {problems} problems\n")
    }
}

fn checkpoint_view(c: &CheckpointFile) -> CheckpointView {
    CheckpointView {
        name: c.name.clone(),
        seq: c.seq,
        bytes: c.bytes,
        named_by_superblock: c.named_by_superblock,
        ok: c.ok,
    }
}

fn torn_view(t: &TornTail) -> TornView {
    TornView {
        file: t.file.clone(),
        offset: t.offset,
        seq: t.seq,
        bytes: t.bytes,
        reason: t.reason.clone(),
        later_segments: t.later_segments.clone(),
    }
}
