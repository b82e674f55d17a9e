//! `acme ledger inspect`: what a durable ledger holds, read by the verification pass (so every
//! figure shown was checked and replayed): superblock, segments, checkpoints, accounts, the last
//! transfers, per-ledger totals. Ids are hex (`0x...`); amounts are decimal, and strings in
//! JSON, since they are 128-bit.

use super::view::VerifyView;
use super::{exit_of, verify_dir};
use acme_ledger::{Account, MemLedger, Transfer};
use acme_store::superblock::{CheckpointRef, Superblock};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The store's directory.
    dir: PathBuf,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// List at most this many accounts (in creation order; the count is always given).
    #[arg(long, default_value_t = 50, value_name = "N")]
    accounts: usize,
    /// List the last N transfers.
    #[arg(long, default_value_t = 10, value_name = "N")]
    transfers: usize,
}

#[derive(Serialize)]
struct CheckpointRefView {
    seq: u64,
    checksum: String,
}

#[derive(Serialize)]
struct SuperblockView {
    update: u64,
    store_id: String,
    log_seq: u64,
    log_head: String,
    log_segment: u64,
    log_end: u64,
    checkpoint: Option<CheckpointRefView>,
    previous: Option<CheckpointRefView>,
}

#[derive(Serialize)]
struct AccountRow {
    id: String,
    ledger: u32,
    code: u16,
    flags: u16,
    debits_posted: String,
    debits_pending: String,
    credits_posted: String,
    credits_pending: String,
}

#[derive(Serialize)]
struct TransferRow {
    id: String,
    debit_account_id: String,
    credit_account_id: String,
    amount: String,
    pending_id: String,
    ledger: u32,
    code: u16,
    flags: u16,
    timestamp: u64,
}

#[derive(Serialize, Default)]
struct LedgerTotals {
    ledger: u32,
    accounts: u64,
    debits_posted: String,
    debits_pending: String,
    credits_posted: String,
    credits_pending: String,
}

#[derive(Serialize)]
struct InspectView {
    #[serde(flatten)]
    verify: VerifyView,
    superblock: Option<SuperblockView>,
    /// The first accounts in creation order (`accounts` is the count of all).
    account_list: Vec<AccountRow>,
    /// The last transfers, oldest first (`transfers` is the count of all).
    last_transfers: Vec<TransferRow>,
    ledger_totals: Vec<LedgerTotals>,
}

pub fn main(args: InspectArgs) -> ExitCode {
    let report = match verify_dir(&args.dir, None) {
        Ok(report) => report,
        Err(f) => return f.exit("inspect", args.json),
    };
    let mem = report.ledger.as_ref();
    let view = InspectView {
        verify: VerifyView::new(&args.dir, &report),
        superblock: report.store.superblock.as_ref().map(superblock_view),
        account_list: mem.map_or_else(Vec::new, |m| account_rows(m, args.accounts)),
        last_transfers: mem.map_or_else(Vec::new, |m| transfer_rows(m, args.transfers)),
        ledger_totals: mem.map_or_else(Vec::new, ledger_totals),
    };
    super::print_view(args.json, &view, view.human());
    exit_of(&report)
}

fn hex(v: u128) -> String {
    format!("{v:#x}")
}

fn checksum_hex(v: u128) -> String {
    format!("{v:032x}")
}

fn checkpoint_ref(c: &CheckpointRef) -> CheckpointRefView {
    CheckpointRefView {
        seq: c.seq,
        checksum: checksum_hex(c.checksum),
    }
}

fn superblock_view(sb: &Superblock) -> SuperblockView {
    SuperblockView {
        update: sb.update,
        store_id: hex(sb.store_id),
        log_seq: sb.log_seq,
        log_head: checksum_hex(sb.log_head),
        log_segment: sb.log_segment,
        log_end: sb.log_end,
        checkpoint: sb.checkpoint.as_ref().map(checkpoint_ref),
        previous: sb.previous.as_ref().map(checkpoint_ref),
    }
}

fn account_row(a: &Account) -> AccountRow {
    AccountRow {
        id: hex(a.id),
        ledger: a.ledger,
        code: a.code,
        flags: a.flags.0,
        debits_posted: a.debits_posted.to_string(),
        debits_pending: a.debits_pending.to_string(),
        credits_posted: a.credits_posted.to_string(),
        credits_pending: a.credits_pending.to_string(),
    }
}

fn account_rows(mem: &MemLedger, limit: usize) -> Vec<AccountRow> {
    mem.accounts().iter().take(limit).map(account_row).collect()
}

fn transfer_rows(mem: &MemLedger, last: usize) -> Vec<TransferRow> {
    let all = mem.transfers();
    let from = all.len().saturating_sub(last);
    all[from..].iter().map(transfer_row).collect()
}

fn transfer_row(t: &Transfer) -> TransferRow {
    TransferRow {
        id: hex(t.id),
        debit_account_id: hex(t.debit_account_id),
        credit_account_id: hex(t.credit_account_id),
        amount: t.amount.to_string(),
        pending_id: hex(t.pending_id),
        ledger: t.ledger,
        code: t.code,
        flags: t.flags.0,
        timestamp: t.timestamp,
    }
}

/// Per ledger: accounts, and the sums of their balances (wrapping is impossible for books that
/// verified, whose sums are those of transfer amounts; saturating keeps a display honest anyway).
fn ledger_totals(mem: &MemLedger) -> Vec<LedgerTotals> {
    let mut sums: BTreeMap<u32, (u64, [u128; 4])> = BTreeMap::new();
    for a in mem.accounts() {
        let (count, s) = sums.entry(a.ledger).or_default();
        *count += 1;
        let balances = [
            a.debits_posted,
            a.debits_pending,
            a.credits_posted,
            a.credits_pending,
        ];
        for (sum, x) in s.iter_mut().zip(balances) {
            *sum = sum.saturating_add(x);
        }
    }
    sums.into_iter()
        .map(|(ledger, (accounts, s))| LedgerTotals {
            ledger,
            accounts,
            debits_posted: s[0].to_string(),
            debits_pending: s[1].to_string(),
            credits_posted: s[2].to_string(),
            credits_pending: s[3].to_string(),
        })
        .collect()
}

impl InspectView {
    fn human(&self) -> String {
        let mut out = String::new();
        if let Some(sb) = &self.superblock {
            out += &superblock_text(sb);
        }
        let _ = writeln!(out, "segments ({}):", self.verify.segments.len());
        for s in &self.verify.segments {
            let _ = writeln!(
                out,
                "  {}  first record {:>10}  {:>12} bytes",
                s.name, s.first_seq, s.bytes
            );
        }
        let _ = writeln!(out, "checkpoints ({}):", self.verify.checkpoints.len());
        for c in &self.verify.checkpoints {
            let named = if c.named_by_superblock {
                ""
            } else {
                "  (not named by the superblock)"
            };
            let ok = if c.ok { "ok" } else { "CORRUPT" };
            let _ = writeln!(
                out,
                "  {}  record {:>10}  {:>12} bytes  {ok}{named}",
                c.name, c.seq, c.bytes
            );
        }
        out += &self.accounts_text();
        out += &self.transfers_text();
        out += &self.totals_text();
        out += &self.verify.human();
        out
    }

    fn accounts_text(&self) -> String {
        let mut out = format!(
            "accounts ({}, showing {}):\n",
            self.verify.accounts,
            self.account_list.len()
        );
        if self.account_list.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "  {:>34} {:>6} {:>5} {:>20} {:>20} {:>20} {:>20}",
            "id",
            "ledger",
            "code",
            "debits posted",
            "debits pending",
            "credits posted",
            "credits pending"
        );
        for a in &self.account_list {
            let _ = writeln!(
                out,
                "  {:>34} {:>6} {:>5} {:>20} {:>20} {:>20} {:>20}",
                a.id,
                a.ledger,
                a.code,
                a.debits_posted,
                a.debits_pending,
                a.credits_posted,
                a.credits_pending
            );
        }
        out
    }

    fn transfers_text(&self) -> String {
        let mut out = format!(
            "last {} transfers (of {}):\n",
            self.last_transfers.len(),
            self.verify.transfers
        );
        if self.last_transfers.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "  {:>34} {:>34} {:>34} {:>20} {:>6} {:>5} {:>6} {:>20}",
            "id",
            "debit account",
            "credit account",
            "amount",
            "ledger",
            "code",
            "flags",
            "timestamp"
        );
        for t in &self.last_transfers {
            let _ = writeln!(
                out,
                "  {:>34} {:>34} {:>34} {:>20} {:>6} {:>5} {:>#6x} {:>20}",
                t.id,
                t.debit_account_id,
                t.credit_account_id,
                t.amount,
                t.ledger,
                t.code,
                t.flags,
                t.timestamp
            );
        }
        out
    }

    fn totals_text(&self) -> String {
        let mut out = format!("ledgers ({}):\n", self.ledger_totals.len());
        if self.ledger_totals.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "  {:>10} {:>9} {:>22} {:>22} {:>22} {:>22}",
            "ledger",
            "accounts",
            "debits posted",
            "credits posted",
            "debits pending",
            "credits pending"
        );
        for l in &self.ledger_totals {
            let _ = writeln!(
                out,
                "  {:>10} {:>9} {:>22} {:>22} {:>22} {:>22}",
                l.ledger,
                l.accounts,
                l.debits_posted,
                l.credits_posted,
                l.debits_pending,
                l.credits_pending
            );
        }
        out
    }
}

fn superblock_text(sb: &SuperblockView) -> String {
    let cp = |c: &Option<CheckpointRefView>| {
        c.as_ref().map_or_else(
            || "none".to_string(),
            |c| format!("record {} (checksum {})", c.seq, c.checksum),
        )
    };
    format!(
        "superblock: update {}, store {}\n  log: record {} (checksum {}), segment {} ends at \
         offset {}\n  checkpoint: {}\n  previous checkpoint: {}\n",
        sb.update,
        sb.store_id,
        sb.log_seq,
        sb.log_head,
        sb.log_segment,
        sb.log_end,
        cp(&sb.checkpoint),
        cp(&sb.previous)
    )
}
