//! `acme recon --ledger STORE` on a durable store on disk: the store streamed (checkpoint plus
//! log after it), and a damaged checkpoint or log record refused with exit 1 (the documented
//! exit for input that cannot be read), naming the file and the offset.

// The test plays an operator: it writes, copies and damages files on disk.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_ledger::{Account, Clock, Ledger, Transfer, TransferFlags};
use acme_ledger_durable::{Config, DurableLedger};
use acme_store_fs::{FileStorage, Mode};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn recon(store: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(["recon", "--ledger"])
        .arg(store)
        .output()
        .expect("acme runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn fresh(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("recon_store")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    dir
}

fn copy_store(from: &Path, name: &str) -> PathBuf {
    let to = fresh(name);
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    to
}

fn names(dir: &Path, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.starts_with(prefix) && !n.ends_with(".tmp"))
        .collect();
    out.sort();
    out
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).expect("read");
    bytes[offset as usize] ^= 0x20;
    fs::write(path, bytes).expect("write");
}

fn checkpoint_file(seq: u64) -> String {
    format!("checkpoint-{seq:020}")
}

#[derive(Default)]
struct StepClock(AtomicU64);
impl Clock for StepClock {
    fn now_ns(&self) -> u64 {
        self.0.fetch_add(1_000, Ordering::SeqCst) + 1_700_000_000_000_000_000
    }
}

/// A store of six accounts and 40 transfers (pending ones posted across the checkpoints, which
/// are taken after the 10th and the 20th), 4 KiB segments. Returns the checkpoints' records.
fn write_store(dir: &Path) -> (u64, u64) {
    let config = Config {
        store: acme_store::Config {
            segment_bytes_max: 4096,
        },
        ..Config::default()
    };
    let storage = FileStorage::open(dir, Mode::ReadWrite).expect("open");
    let mut l =
        DurableLedger::create(storage, 7, Arc::new(StepClock::default()), config).expect("create");
    let accounts: Vec<Account> = (1..=6)
        .map(|id| Account {
            id,
            ledger: 1 + (id % 2) as u32,
            code: 9,
            ..Account::default()
        })
        .collect();
    l.create_accounts(&accounts).expect("accounts");
    let mut checkpoints = (0, 0);
    for round in 0..40u128 {
        let dr = 1 + round % 6;
        let cr = 1 + (round + 2) % 6; // same parity, so the same ledger
        let (flags, pending_id) = match round % 10 {
            3 => (TransferFlags::PENDING, 0),
            // Posts the pending transfer of 15 rounds before (round 28: across the checkpoint).
            8 if round > 15 => (TransferFlags::POST_PENDING_TRANSFER, 100 + round - 15),
            _ => (TransferFlags::NONE, 0),
        };
        let t = Transfer {
            id: 100 + round,
            debit_account_id: dr,
            credit_account_id: cr,
            amount: 10 + round,
            ledger: 1 + (dr % 2) as u32,
            code: 3,
            flags,
            pending_id,
            ..Transfer::default()
        };
        let t = if pending_id != 0 {
            // A post names the pending transfer; its accounts and amount come from it.
            Transfer {
                debit_account_id: 0,
                credit_account_id: 0,
                amount: u128::MAX,
                ledger: 0,
                code: 0,
                ..t
            }
        } else {
            t
        };
        let r = l.create_transfers(&[t]).expect("transfer");
        assert!(r.iter().all(|r| r.code() == 0), "round {round}: {r:?}");
        if round == 9 || round == 19 {
            l.checkpoint_now().expect("checkpoint");
            checkpoints = (checkpoints.1, l.head().seq);
        }
    }
    checkpoints
}

/// The report without its first line (the source).
fn body(all: &str) -> String {
    all.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_store_is_read_at_its_checkpoint_plus_log_and_damage_is_named() {
    let good = fresh("good");
    let (previous, checkpoint) = write_store(&good);
    let out = recon(&good);
    let good_report = text(&out);
    // The accounts are not ACME's chart (a true break, exit 2), but the store was read whole.
    assert_eq!(out.status.code(), Some(2), "{good_report}");
    let expected = format!("checkpoint at record {checkpoint}, 20 records replayed");
    assert!(
        good_report.contains(&expected),
        "{expected} in:\n{good_report}"
    );

    // The current checkpoint damaged: the previous one and the log after it, as recovery
    // does, to the same figures.
    let dir = copy_store(&good, "bad_checkpoint");
    let name = checkpoint_file(checkpoint);
    // Header (128 bytes), then the first chunk: its checksum (16), then its data.
    flip(&dir.join(&name), 128 + 16 + 300);
    let out = recon(&dir);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    let expected = format!(
        "checkpoint at record {previous}, {} records replayed",
        41 - previous
    );
    assert!(all.contains(&expected), "{expected} in:\n{all}");
    let expected = format!("the current checkpoint did not verify ({name} at offset 128");
    assert!(all.contains(&expected), "{expected} in:\n{all}");
    assert_eq!(body(&all), body(&good_report));

    // Both damaged: refused, naming the current one.
    flip(&dir.join(checkpoint_file(previous)), 128 + 16 + 300);
    let out = recon(&dir);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let expected = format!("{name} at offset 128");
    assert!(all.contains(&expected), "{expected} in:\n{all}");

    // A record of the log after the checkpoint, with valid records after it: corruption, not
    // a torn tail.
    let dir = copy_store(&good, "bad_log");
    let segment = names(&dir, "log-")
        .into_iter()
        .filter(|s| s["log-".len()..].parse::<u64>().expect("seq") > checkpoint)
        .find(|s| fs::metadata(dir.join(s)).expect("size").len() > 600)
        .expect("a segment after the checkpoint with two records");
    let bytes = fs::read(dir.join(&segment)).expect("read");
    let body_len = u32::from_le_bytes(bytes[60..64].try_into().expect("4 bytes"));
    let second = 72 + u64::from(body_len);
    flip(&dir.join(&segment), second + 72 + 40);
    let out = recon(&dir);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let expected = format!("{segment} at offset {second}");
    assert!(all.contains(&expected), "{expected} in:\n{all}");
}
