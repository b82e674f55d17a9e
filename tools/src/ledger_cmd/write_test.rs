//! `acme ledger write-test DIR --batches N --batch-size K`: a testing aid for crash tests.
//!
//! Creates the durable ledger in DIR (or opens and recovers the one there), creates its
//! [`ACCOUNTS`] accounts if they are missing, and writes batches `B+1 .. N-1` of `K` transfers,
//! where `B` is the highest batch already in the ledger (none: start at 0). Each batch is one
//! `create_transfers` call, so one record and one fdatasync; once it returns, the line
//! `acked SEQ BATCH` (the chain head's sequence number and the batch index) is written to stdout
//! and flushed. Whatever was printed is durable: a crash test kills the writer at any moment,
//! then checks that every acknowledged batch is there, whole.
//!
//! The contents are a pure function of (batch, index), so a checker can rebuild them:
//!
//! ```text
//! accounts   ids 1..=16, ledger 1, code 1, no flags (one create_accounts call)
//! transfer   n      = batch * K + index
//!            id     = (batch + 1) << 32 | index
//!            debit  = 1 + n % 16
//!            credit = 1 + (n % 16 + 1 + batch % 15) % 16
//!            amount = 1 + (n * 7919) % 100000
//!            ledger 1, code 1, user_data_64 = batch, user_data_32 = index, no flags
//! ```

use super::{failure, holds_store, recovery_lines, Failure, WallClock};
use acme_ledger::{Account, CreateAccountResult, CreateTransferResult, Ledger, MemLedger};
use acme_ledger::{Transfer, BATCH_EVENTS_MAX};
use acme_ledger_durable::{Config, DurableLedger};
use acme_store::Storage;
use acme_store_fs::{FileStorage, Mode};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub const ACCOUNTS: u64 = 16;
pub const LEDGER: u32 = 1;
pub const CODE: u16 = 1;
/// The store id of a write-test ledger.
pub const STORE_ID: u128 = u128::from_be_bytes(*b"acme write-test\0");

#[derive(clap::Args)]
pub struct WriteTestArgs {
    /// The store's directory (created if missing; a store there is recovered and continued).
    dir: PathBuf,
    /// Batches the ledger should hold when done (a restart continues after the last present).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=u32::MAX as u64))]
    batches: u64,
    /// Transfers per batch (one create_transfers call and one durable commit each).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=BATCH_EVENTS_MAX as i64))]
    batch_size: u32,
    /// A log segment is closed once it would grow past this many bytes.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    segment_bytes: u64,
    /// A checkpoint is taken once this many bytes of log were written since the last one.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    checkpoint_bytes: u64,
}

/// Transfer `index` of batch `batch` (see the module documentation).
pub fn transfer(batch: u64, index: u32, batch_size: u32) -> Transfer {
    let n = batch
        .wrapping_mul(u64::from(batch_size))
        .wrapping_add(u64::from(index));
    let debit = n % ACCOUNTS;
    let credit = (debit + 1 + batch % (ACCOUNTS - 1)) % ACCOUNTS;
    Transfer {
        id: (u128::from(batch) + 1) << 32 | u128::from(index),
        debit_account_id: u128::from(debit) + 1,
        credit_account_id: u128::from(credit) + 1,
        amount: 1 + u128::from(n.wrapping_mul(7919) % 100_000),
        ledger: LEDGER,
        code: CODE,
        user_data_64: batch,
        user_data_32: index,
        ..Transfer::default()
    }
}

pub fn accounts() -> Vec<Account> {
    (1..=ACCOUNTS)
        .map(|id| Account {
            id: u128::from(id),
            ledger: LEDGER,
            code: CODE,
            ..Account::default()
        })
        .collect()
}

pub fn main(args: WriteTestArgs) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.exit("write-test", false),
    }
}

fn run(args: &WriteTestArgs) -> Result<(), Failure> {
    let config = Config {
        store: acme_store::Config {
            segment_bytes_max: args.segment_bytes,
        },
        checkpoint_log_bytes: args.checkpoint_bytes,
        ..Config::default()
    };
    let mut ledger = open_or_create(&args.dir, config)?;
    ensure_accounts(&mut ledger)?;
    let next = next_batch(ledger.mem(), args.batch_size).map_err(Failure::Usage)?;
    eprintln!(
        "acme ledger write-test: {} batches present, writing batches {next} to {}",
        next,
        args.batches.saturating_sub(1)
    );
    let mut out = std::io::stdout().lock();
    for batch in next..args.batches {
        let transfers: Vec<Transfer> = (0..args.batch_size)
            .map(|i| transfer(batch, i, args.batch_size))
            .collect();
        let results = ledger
            .create_transfers(&transfers)
            .map_err(|e| Failure::Usage(format!("batch {batch}: {e}")))?;
        if let Some((i, r)) = results
            .iter()
            .enumerate()
            .find(|(_, r)| **r != CreateTransferResult::Ok)
        {
            return Err(Failure::Usage(format!(
                "batch {batch}: transfer {i} failed with {r:?}"
            )));
        }
        writeln!(out, "acked {} {batch}", ledger.head().seq)
            .and_then(|()| out.flush())
            .map_err(|e| Failure::Usage(format!("stdout: {e}")))?;
    }
    Ok(())
}

/// The ledger in `dir`, recovered (what recovery did goes to stderr), or a new one.
fn open_or_create(dir: &Path, config: Config) -> Result<DurableLedger<FileStorage>, Failure> {
    let mut storage =
        FileStorage::open(dir, Mode::ReadWrite).map_err(|e| Failure::Usage(e.reason))?;
    let names = storage
        .list()
        .map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))?;
    let clock = Arc::new(WallClock);
    if !holds_store(&names) {
        return DurableLedger::create(storage, STORE_ID, clock, config)
            .map_err(|e| failure(dir, e));
    }
    let (ledger, recovery) =
        DurableLedger::open(storage, clock, config).map_err(|e| failure(dir, e))?;
    for line in recovery_lines(&recovery) {
        eprintln!("acme ledger write-test: {line}");
    }
    Ok(ledger)
}

fn ensure_accounts(ledger: &mut DurableLedger<FileStorage>) -> Result<(), Failure> {
    let present = ledger.mem().accounts().len() as u64;
    if present == ACCOUNTS {
        return Ok(());
    }
    if present != 0 {
        return Err(Failure::Usage(format!(
            "the ledger holds {present} accounts, not the {ACCOUNTS} of a write-test ledger"
        )));
    }
    let results = ledger
        .create_accounts(&accounts())
        .map_err(|e| Failure::Usage(format!("accounts: {e}")))?;
    match results.iter().find(|r| **r != CreateAccountResult::Ok) {
        None => Ok(()),
        Some(r) => Err(Failure::Usage(format!("accounts: {r:?}"))),
    }
}

/// The batch after the highest one in the ledger, checking that the ledger holds exactly
/// batches `0..=highest` of this batch size (the last transfer is the last of its batch).
fn next_batch(mem: &MemLedger, batch_size: u32) -> Result<u64, String> {
    let transfers = mem.transfers();
    let Some(last) = transfers.last() else {
        return Ok(0);
    };
    let batch = last.user_data_64;
    let expected = transfer(batch, batch_size - 1, batch_size);
    let whole = (batch + 1).checked_mul(u64::from(batch_size));
    let same = Transfer {
        timestamp: last.timestamp,
        ..expected
    };
    if *last != same || whole != Some(transfers.len() as u64) {
        return Err(format!(
            "the ledger holds {} transfers, the last {:#x}: not whole write-test batches of {batch_size}",
            transfers.len(),
            last.id
        ));
    }
    Ok(batch + 1)
}
