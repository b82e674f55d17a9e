//! The raw speed of TigerBeetle on this machine: the bare client (no adapter, no conversions),
//! two accounts, sequential transfer ids, full batches of 8189, `--in-flight` requests queued at
//! once (default 1). Prints one JSON object with `transfers_per_s`.
//!
//! ```sh
//! tools/tigerbeetle.sh up
//! cargo run --release -p acme-ledger-tigerbeetle --bin tb_raw_bench -- \
//!     --address 127.0.0.1:3000 --transfers 2000000
//! ```
//!
//! Options: `--address A` (default `$TB_ADDRESS`, else 127.0.0.1:3000), `--cluster-id N` (0),
//! `--transfers N` (1000000), `--batch N` (8189), `--in-flight N` (1). Each run uses fresh ids,
//! so it can be repeated on the same cluster.
//!
//! An adapter binary: it reads the wall clock and the environment.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::process::ExitCode;
use std::time::Instant;

use acme_ledger_tigerbeetle::drive;

use tigerbeetle_unofficial as tb;

struct Options {
    address: String,
    cluster_id: u128,
    transfers: u64,
    batch: u64,
    in_flight: usize,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        address: std::env::var("TB_ADDRESS").unwrap_or_else(|_| "127.0.0.1:3000".to_owned()),
        cluster_id: 0,
        transfers: 1_000_000,
        batch: 8189,
        in_flight: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--address" => o.address = value()?,
            "--cluster-id" => o.cluster_id = u128::from(number(value()?)?),
            "--transfers" => o.transfers = number(value()?)?,
            "--batch" => o.batch = number(value()?)?.clamp(1, 8189),
            "--in-flight" => o.in_flight = number(value()?)?.max(1) as usize,
            "-h" | "--help" => {
                return Err(
                    "usage: tb_raw_bench [--address A] [--cluster-id N] [--transfers N] \
                            [--batch N] [--in-flight N]"
                        .to_owned(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(1);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tb_raw_bench: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(o: &Options) -> Result<(), String> {
    let client = tb::Client::new(o.cluster_id, o.address.as_str())
        .map_err(|e| format!("client for {}: {e}", o.address))?;
    // Fresh ids for this run: a time-based id with its low 64 bits cleared, then counting.
    let base = (tb::id() >> 64) << 64;
    let (debit, credit) = (base + 1, base + 2);
    let accounts = vec![
        tb::Account::new(debit, 1, 1),
        tb::Account::new(credit, 1, 1),
    ];
    drive(std::iter::once(client.create_accounts(accounts)), 1, None)
        .map_err(|e| format!("create_accounts: {e:?}"))?
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .map_err(|e| format!("create_accounts: {e}"))?;

    let first_transfer = base + 1_000;
    let batches = o.transfers.div_ceil(o.batch);
    let make_batch = |b: u64| {
        let start = b * o.batch;
        let end = (start + o.batch).min(o.transfers);
        let batch: Vec<tb::Transfer> = (start..end)
            .map(|i| {
                tb::Transfer::new(first_transfer + u128::from(i))
                    .with_debit_account_id(debit)
                    .with_credit_account_id(credit)
                    .with_amount(1)
                    .with_ledger(1)
                    .with_code(1)
            })
            .collect();
        batch
    };
    // Batches are built before the clock starts: this measures the cluster and the client.
    let prepared: Vec<Vec<tb::Transfer>> = (0..batches).map(make_batch).collect();

    let started = Instant::now();
    let replies = drive(
        prepared
            .into_iter()
            .map(|batch| client.create_transfers(batch)),
        o.in_flight,
        None,
    )
    .map_err(|e| format!("{e:?}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let failed = replies.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = replies.into_iter().find(|r| r.is_err()) {
        return Err(format!("{failed} of {batches} batches failed, first: {e}"));
    }
    let per_s = o.transfers as f64 / seconds;
    println!(
        "{}",
        serde_json::json!({
            "bench": "tb_raw",
            "address": o.address,
            "transfers": o.transfers,
            "batch": o.batch,
            "in_flight": o.in_flight,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "transfers_per_s": per_s.round(),
        })
    );
    Ok(())
}
