//! kill -9 in the middle of durable writes, on a real disk: `acme ledger write-test` appends
//! batches of 500 transfers, printing `acked SEQ BATCH` after each durable commit; the test
//! kills it (SIGKILL) after a seeded random delay, then requires that
//!
//! - `acme ledger verify DIR` exits 0 (a torn tail is allowed, corruption is not);
//! - the recovered ledger (opened in this process) holds exactly batches `0..=m` for some
//!   `m` at or past the last batch ever acknowledged, each whole and with exactly the transfers
//!   `write-test` documents, and nothing of a later batch;
//! - every account's balances are what those batches add up to, and the books balance;
//!
//! and the next round restarts the writer, which recovers the store and carries on. The writer
//! rolls segments every 4 MB and checkpoints every 32 MB of log, so kills land in appends,
//! segment rollovers, checkpoint installs, compaction and recovery itself: three rounds in four
//! count the delay from the writer's first acknowledgement, the fourth from its spawn.
//!
//! The store lives under `CARGO_TARGET_TMPDIR` (under `target/`, a real disk, never tmpfs, on
//! which fsync would be a no-op and the test meaningless).

// The test is an operator with a stopwatch: it sleeps, spawns threads, reads the wall clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_ledger::{Account, Clock, MemLedger, Transfer};
use acme_ledger_durable::{verify::check_books, Config, DurableLedger};
use acme_store_fs::{FileStorage, Mode};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: u32 = 20;
const SEED: u64 = 0x6b69_6c6c_2d39;
const BATCH_SIZE: u32 = 500;
const ACCOUNTS: u64 = 16;

/// Transfer `index` of batch `batch`, as `acme ledger write-test` documents it.
fn transfer(batch: u64, index: u32) -> Transfer {
    let n = batch * u64::from(BATCH_SIZE) + u64::from(index);
    let debit = n % ACCOUNTS;
    let credit = (debit + 1 + batch % (ACCOUNTS - 1)) % ACCOUNTS;
    Transfer {
        id: (u128::from(batch) + 1) << 32 | u128::from(index),
        debit_account_id: u128::from(debit) + 1,
        credit_account_id: u128::from(credit) + 1,
        amount: 1 + u128::from(n * 7919 % 100_000),
        ledger: 1,
        code: 1,
        user_data_64: batch,
        user_data_32: index,
        ..Transfer::default()
    }
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct NoClock;
impl Clock for NoClock {
    fn now_ns(&self) -> u64 {
        0
    }
}

/// When a round's delay starts.
#[derive(Clone, Copy, Debug)]
enum From {
    /// At the spawn: the kill may land in recovery, or in the checkpoint a restarted writer
    /// takes in its first commit when the log it replayed is due one.
    Spawn,
    /// At the first acknowledgement: the kill lands while batches are being written (appends,
    /// segment rollovers, the periodic checkpoints and their compaction).
    FirstAck,
}

/// Starts the writer, kills it `delay` after `from`, and returns every batch it acknowledged.
fn run_and_kill(dir: &Path, from: From, delay: Duration) -> Vec<(u64, u64)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(["ledger", "write-test"])
        .arg(dir)
        .args([
            "--batches",
            "100000",
            "--batch-size",
            &BATCH_SIZE.to_string(),
        ])
        .args([
            "--segment-bytes",
            "4000000",
            "--checkpoint-bytes",
            "32000000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("acme runs");
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let acks = std::thread::spawn(move || {
        whole_lines(stdout, |_| {
            let _ = ready_tx.send(());
        })
    });
    let diagnostics = std::thread::spawn(move || whole_lines(stderr, |_| {}).join("\n"));
    if let From::FirstAck = from {
        // A writer that dies before its first acknowledgement fails the status check below.
        let _ = ready.recv_timeout(Duration::from_secs(30));
    }
    std::thread::sleep(delay);
    child.kill().expect("kill -9");
    let status = child.wait().expect("reaped");
    let lines = acks.join().expect("stdout reader");
    let diagnostics = diagnostics.join().expect("stderr reader");
    assert_eq!(
        status.signal(),
        Some(9),
        "the writer ended before it was killed ({status}): {diagnostics}"
    );
    lines.iter().map(|l| parse_ack(l)).collect()
}

/// Every whole line until the end of the stream (a line the kill cut short is no message),
/// each also handed to `seen` as it arrives.
fn whole_lines(stream: impl std::io::Read, mut seen: impl FnMut(&str)) -> Vec<String> {
    let mut lines = Vec::new();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line.ends_with('\n') {
            let whole = line.trim_end();
            seen(whole);
            lines.push(whole.to_string());
        }
        line.clear();
    }
    lines
}

fn parse_ack(line: &str) -> (u64, u64) {
    let mut words = line.split(' ');
    let (Some("acked"), Some(seq), Some(batch), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        panic!("not an ack line: {line:?}");
    };
    (
        seq.parse().expect("sequence"),
        batch.parse().expect("batch"),
    )
}

fn verify_exits_0(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(["ledger", "verify"])
        .arg(dir)
        .output()
        .expect("acme runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify after a kill:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Opens the store read-only, checks it holds whole batches `0..=m` and nothing else, with
/// exactly the documented transfers and the balances they add up to; returns how many batches.
fn check_store(dir: &Path) -> u64 {
    let storage = FileStorage::open(dir, Mode::ReadOnly).expect("open read-only");
    let (ledger, _) = DurableLedger::open(storage, Arc::new(NoClock), Config::default())
        .expect("the store recovers");
    let mem = ledger.mem();
    let transfers = mem.transfers();
    assert_eq!(
        transfers.len() % BATCH_SIZE as usize,
        0,
        "a partial batch: {} transfers",
        transfers.len()
    );
    let batches = (transfers.len() / BATCH_SIZE as usize) as u64;
    for (position, t) in transfers.iter().enumerate() {
        let batch = position as u64 / u64::from(BATCH_SIZE);
        let index = (position as u64 % u64::from(BATCH_SIZE)) as u32;
        let expected = Transfer {
            timestamp: t.timestamp,
            ..transfer(batch, index)
        };
        assert_eq!(*t, expected, "transfer {position}");
    }
    check_balances(mem, batches);
    batches
}

/// Every account holds what batches `0..batches` add up to, computed here from the formula.
fn check_balances(mem: &MemLedger, batches: u64) {
    let accounts = mem.accounts();
    if batches > 0 || !accounts.is_empty() {
        assert_eq!(accounts.len() as u64, ACCOUNTS, "the accounts");
    }
    let mut expected: BTreeMap<u128, (u128, u128)> = BTreeMap::new();
    for batch in 0..batches {
        for index in 0..BATCH_SIZE {
            let t = transfer(batch, index);
            expected.entry(t.debit_account_id).or_default().0 += t.amount;
            expected.entry(t.credit_account_id).or_default().1 += t.amount;
        }
    }
    for a in accounts {
        let (debits, credits) = expected.get(&a.id).copied().unwrap_or_default();
        let want = Account {
            debits_posted: debits,
            credits_posted: credits,
            ..*a
        };
        assert_eq!(*a, want, "account {}", a.id);
        assert_eq!((a.debits_pending, a.credits_pending), (0, 0));
    }
    let (_, problems) = check_books(mem);
    assert!(problems.is_empty(), "books: {problems:?}");
}

#[test]
fn kill_9_loses_no_acknowledged_batch_and_leaves_no_partial_one() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = base.join("ledger_kill");
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let mut rng = Rng(SEED);
    let mut acked_max: Option<u64> = None;
    let mut acked_total = 0;
    for round in 0..ROUNDS {
        let delay = Duration::from_millis(20 + rng.below(381));
        let from = if round % 4 == 3 {
            From::Spawn
        } else {
            From::FirstAck
        };
        let acks = run_and_kill(&dir, from, delay);
        for pair in acks.windows(2) {
            assert_eq!(pair[1].1, pair[0].1 + 1, "batches acknowledged in order");
            assert_eq!(pair[1].0, pair[0].0 + 1, "one record per batch");
        }
        if let Some(&(_, last)) = acks.last() {
            assert!(
                acked_max.is_none_or(|m| last > m),
                "a restart resumes after the last"
            );
            acked_max = Some(last);
        }
        acked_total += acks.len();
        if !dir.join("superblock").exists() {
            assert!(acks.is_empty(), "acknowledged without a store");
            continue; // killed before the store was created
        }
        verify_exits_0(&dir);
        let batches = check_store(&dir);
        if let Some(m) = acked_max {
            assert!(
                batches > m,
                "round {round}: batch {m} was acknowledged, the store holds batches 0..{batches}"
            );
        }
        eprintln!(
            "round {round:2}: killed {:3} ms after {from:?}, {:4} batches acknowledged, {batches} \
             batches in the store",
            delay.as_millis(),
            acks.len()
        );
    }
    // And the store, compacted, still holds all of it.
    let out = Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(["ledger", "compact"])
        .arg(&dir)
        .output()
        .expect("acme runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    verify_exits_0(&dir);
    let batches = check_store(&dir);
    assert!(acked_max.is_some_and(|m| batches > m));
    eprintln!(
        "{ROUNDS} rounds, {acked_total} batches acknowledged ({} transfers), {:.1} s",
        acked_total * BATCH_SIZE as usize,
        started.elapsed().as_secs_f64()
    );
    assert!(acked_total > 0, "the writer never acknowledged a batch");
}
