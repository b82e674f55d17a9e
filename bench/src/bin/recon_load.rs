//! Loads a ledger export (as `recon_scale --journal` writes one) into the two other sources
//! `acme recon` reads, for the reconciliation benchmarks of bench/RESULTS.md:
//!
//! - `recon_load store EXPORT_DIR STORE_DIR`: a new durable store (every batch durable, a
//!   checkpoint at the end);
//! - `recon_load tigerbeetle EXPORT_DIR ADDRESSES` (with `--features tigerbeetle`): a running
//!   TigerBeetle cluster (cluster 0), which must not hold the accounts yet.
//!
//! Records are sent in batches of 8189 in the export's order, timestamps cleared (the ledger
//! stamps them); every event must be created (`ok`), or the load stops and says which.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_ledger::export::{read_accounts, read_transfers};
use acme_ledger::{Account, Ledger, Transfer, BATCH_EVENTS_MAX};
use std::io::BufReader;
use std::path::Path;

fn load(ledger: &mut dyn Ledger, export: &Path) -> Result<(u64, u64), String> {
    let open = |name: &str| {
        std::fs::File::open(export.join("ledger").join(name))
            .map(|f| BufReader::with_capacity(1 << 20, f))
            .map_err(|e| format!("{name}: {e}"))
    };
    let mut batch: Vec<Account> = Vec::with_capacity(BATCH_EVENTS_MAX);
    let mut failed: Option<String> = None;
    let mut send_accounts = |ledger: &mut dyn Ledger, batch: &mut Vec<Account>| {
        let r = ledger.create_accounts(batch).map_err(|e| e.to_string());
        match r {
            Ok(results) => {
                if let Some((i, r)) = results.iter().enumerate().find(|(_, r)| r.code() != 0) {
                    failed.get_or_insert(format!("account {:#x}: {r:?}", batch[i].id));
                }
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
        batch.clear();
    };
    let accounts = read_accounts(open("accounts.bin")?, |a| {
        // Balances come from the transfers: an account is created empty.
        batch.push(Account {
            timestamp: 0,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            ..a
        });
        if batch.len() == BATCH_EVENTS_MAX {
            send_accounts(ledger, &mut batch);
        }
    })
    .map_err(|e| format!("accounts.bin: {e:?}"))?;
    send_accounts(ledger, &mut batch);
    let mut tbatch: Vec<Transfer> = Vec::with_capacity(BATCH_EVENTS_MAX);
    let mut send = |ledger: &mut dyn Ledger, batch: &mut Vec<Transfer>| {
        match ledger.create_transfers(batch) {
            Ok(results) => {
                if let Some((i, r)) = results.iter().enumerate().find(|(_, r)| r.code() != 0) {
                    failed.get_or_insert(format!("transfer {:#x}: {r:?}", batch[i].id));
                }
            }
            Err(e) => {
                failed.get_or_insert(e.to_string());
            }
        }
        batch.clear();
    };
    let transfers = read_transfers(open("transfers.bin")?, |t| {
        tbatch.push(Transfer { timestamp: 0, ..t });
        if tbatch.len() == BATCH_EVENTS_MAX {
            send(ledger, &mut tbatch);
        }
    })
    .map_err(|e| format!("transfers.bin: {e:?}"))?;
    send(ledger, &mut tbatch);
    match failed {
        Some(f) => Err(f),
        None => Ok((accounts, transfers)),
    }
}

struct Wall;
impl acme_ledger::Clock for Wall {
    fn now_ns(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: recon_load store EXPORT_DIR STORE_DIR | tigerbeetle EXPORT_DIR ADDRESSES";
    let (Some(kind), Some(export), Some(target)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(1);
    };
    let started = std::time::Instant::now();
    let loaded = match kind.as_str() {
        "store" => {
            use acme_store_fs::{FileStorage, Mode};
            let storage = FileStorage::open(Path::new(target), Mode::ReadWrite)
                .unwrap_or_else(|e| panic!("{target}: {}", e.reason));
            let mut ledger = acme_ledger_durable::DurableLedger::create(
                storage,
                1,
                std::sync::Arc::new(Wall),
                acme_ledger_durable::Config::default(),
            )
            .unwrap_or_else(|e| panic!("{target}: {e}"));
            let r = load(&mut ledger, Path::new(export));
            ledger.checkpoint_now().expect("checkpoint");
            r
        }
        #[cfg(feature = "tigerbeetle")]
        "tigerbeetle" => {
            let mut tb = acme_ledger_tigerbeetle::TigerBeetleLedger::connect(0, target)
                .unwrap_or_else(|e| panic!("{target}: {e}"));
            load(&mut tb, Path::new(export))
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(1);
        }
    };
    match loaded {
        Ok((a, t)) => println!(
            "{{\"kind\":\"{kind}\",\"accounts\":{a},\"transfers\":{t},\"load_s\":{:.1}}}",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            eprintln!("recon_load: {e}");
            std::process::exit(2);
        }
    }
}
