//! The durable ledger on this disk: fdatasync cost, group-committed throughput in batches of
//! 8189 from several client threads (and MemLedger's on the same batches), commit latency,
//! checkpoint write, recovery of a store of TRANSFERS transfers (checkpoint plus log) with the
//! page cache warm and cold, and `verify` throughput.
//!
//! `cargo run --release -p acme-bench --bin durable_ledger -- DIR [TRANSFERS] [CLIENTS]`
//! DIR must be on the disk to measure (not tmpfs). Everything under DIR/durable-bench is removed.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_bench::{peak_rss_bytes, timed, WallClock};
use acme_ledger::{Account, Clock, Ledger, MemLedger, Transfer, BATCH_EVENTS_MAX};
use acme_ledger_durable::{verify_ledger, Config, DurableLedger};
use acme_ledger_runtime::LedgerServer;
use acme_store::Storage;
use acme_store_fs::{FileStorage, Mode};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const ACCOUNTS: u64 = 100_000;

fn accounts() -> Vec<Account> {
    (1..=ACCOUNTS)
        .map(|id| Account {
            id: id as u128,
            ledger: 1,
            code: 1,
            ..Account::default()
        })
        .collect()
}

/// Batch `b` of client `c`: ids unique per (client, batch, index), pairs spread by xorshift.
fn batch(c: u64, b: u64) -> Vec<Transfer> {
    let mut x = ((c << 40) | b).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..BATCH_EVENTS_MAX as u64)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let dr = x % ACCOUNTS + 1;
            let cr = (dr - 1 + 1 + (x >> 32) % (ACCOUNTS - 1)) % ACCOUNTS + 1;
            Transfer {
                id: ((c as u128) << 96) | ((b as u128) << 32) | (k as u128 + 1),
                debit_account_id: dr as u128,
                credit_account_id: cr as u128,
                amount: 1 + (x >> 48) as u128 % 1000,
                ledger: 1,
                code: 1,
                ..Transfer::default()
            }
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn fsync_cost(dir: &Path) {
    let mut s = FileStorage::open(dir, Mode::ReadWrite).expect("open");
    for (label, size) in [("4 KiB", 4096usize), ("1 MiB", 1 << 20)] {
        let data = vec![7u8; size];
        let mut ms = Vec::new();
        let name = format!("probe-{size}");
        for i in 0..200u64 {
            let start = Instant::now();
            s.write_at(&name, i * size as u64, &data).expect("write");
            s.sync(&name).expect("sync");
            ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
        s.remove(&name).expect("remove");
        ms.sort_by(f64::total_cmp);
        println!(
            "fsync: {label} append + fdatasync: p50 {:.2} ms, p99 {:.2} ms ({:.0} MB/s at p50)",
            percentile(&ms, 0.5),
            percentile(&ms, 0.99),
            size as f64 / percentile(&ms, 0.5) / 1e3
        );
    }
}

fn mem_baseline(batches: u64, clients: u64) -> f64 {
    let total = batches * BATCH_EVENTS_MAX as u64;
    let mut ledger = MemLedger::with_capacity(
        Arc::new(WallClock(Instant::now())),
        ACCOUNTS as usize,
        total as usize,
    );
    for chunk in accounts().chunks(BATCH_EVENTS_MAX) {
        ledger.create_accounts(chunk).expect("accounts");
    }
    let all: Vec<Vec<Transfer>> = (0..batches)
        .map(|b| batch(b % clients, b / clients))
        .collect();
    let (_, secs) = timed(|| {
        for t in &all {
            let r = ledger.create_transfers(t).expect("transfers");
            assert!(r.iter().all(|x| x.code() == 0));
        }
    });
    let rate = (batches * BATCH_EVENTS_MAX as u64) as f64 / secs;
    println!(
        "memledger: {} transfers in {secs:.2} s: {:.0} transfers/s",
        batches * BATCH_EVENTS_MAX as u64,
        rate
    );
    rate
}

/// Clients each send `per_client` batches; returns per-batch latencies (ms) and the wall time.
fn drive(
    server: &LedgerServer<FileStorage>,
    clients: u64,
    from: u64,
    per_client: u64,
) -> (Vec<f64>, f64) {
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let mut client = server.client();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                for b in from..from + per_client {
                    let t = batch(c, b);
                    let sent = Instant::now();
                    let r = client.create_transfers(&t).expect("durable");
                    lat.push(sent.elapsed().as_secs_f64() * 1e3);
                    assert!(r.iter().all(|x| x.code() == 0));
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client"))
        .collect();
    lat.sort_by(f64::total_cmp);
    (lat, start.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Path::new(
        args.first()
            .map(String::as_str)
            .unwrap_or("target/durable-bench"),
    );
    let transfers: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let clients: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let dir = root.join("durable-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    fsync_cost(&dir.join("probe"));

    let batches = transfers
        .div_ceil(BATCH_EVENTS_MAX as u64)
        .div_ceil(clients)
        * clients;
    let total = batches * BATCH_EVENTS_MAX as u64;
    let mem_rate = mem_baseline(batches, clients);

    let store = dir.join("store");
    let clock: Arc<dyn Clock + Send + Sync> = Arc::new(WallClock(Instant::now()));
    let config = Config {
        checkpoint_log_bytes: u64::MAX,
        ..Config::default()
    };
    let storage = FileStorage::open(&store, Mode::ReadWrite).expect("store dir");
    let ledger = DurableLedger::create(storage, 1, clock.clone(), config).expect("create");
    let server = LedgerServer::spawn(ledger);
    for chunk in accounts().chunks(BATCH_EVENTS_MAX) {
        server.client().create_accounts(chunk).expect("accounts");
    }
    // 80% of the batches, a checkpoint, the other 20%: recovery then reads both.
    let per_client = batches / clients;
    let first = per_client * 4 / 5;
    let (mut lat, secs_a) = drive(&server, clients, 0, first);
    let (_, secs_cp) = timed(|| server.client().checkpoint().expect("checkpoint"));
    let (lat_b, secs_b) = drive(&server, clients, first, per_client - first);
    lat.extend(lat_b);
    lat.sort_by(f64::total_cmp);
    let (ledger, stats) = server.join();
    let rate = total as f64 / (secs_a + secs_b);
    println!(
        "durable: {total} transfers from {clients} clients in {:.2} s: {rate:.0} transfers/s ({:.2}x MemLedger); \
         {} records for {} requests (at most {} a group)",
        secs_a + secs_b,
        rate / mem_rate,
        stats.groups,
        stats.requests,
        stats.group_requests_max
    );
    println!(
        "durable: commit latency per batch of 8189: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    let disk: u64 = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "checkpoint: {:.2} s for the state after {} transfers; store on disk {:.0} MiB",
        secs_cp,
        first * clients * BATCH_EVENTS_MAX as u64,
        disk as f64 / 1048576.0
    );
    let expected = ledger.mem().state();
    drop(ledger);

    for cache in ["warm", "cold"] {
        if cache == "cold" {
            let dropped = std::process::Command::new("sh")
                .args(["-c", "sync && echo 3 > /proc/sys/vm/drop_caches"])
                .status()
                .is_ok_and(|s| s.success());
            if !dropped {
                println!("recovery (cold): cannot drop the page cache here; skipped");
                continue;
            }
        }
        let storage = FileStorage::open(&store, Mode::ReadWrite).expect("reopen");
        let ((ledger, recovery), secs) =
            timed(|| DurableLedger::open(storage, clock.clone(), config).expect("recover"));
        assert_eq!(ledger.mem().state(), expected, "recovered exactly");
        println!(
            "recovery ({cache} cache): {} transfers in {secs:.2} s (checkpoint at record {}, {} records replayed)",
            ledger.mem().transfers().len(),
            recovery.checkpoint_seq,
            recovery.replayed
        );
    }
    let mut ro = FileStorage::open(&store, Mode::ReadOnly).expect("read-only");
    let (report, secs) = timed(|| verify_ledger(&mut ro, None).expect("verify"));
    assert!(report.is_clean());
    let checkpoint_bytes: u64 = report.store.checkpoints.iter().map(|c| c.bytes).sum();
    let bytes = report.store.log_bytes + checkpoint_bytes;
    println!(
        "verify: {:.0} MiB (log and checkpoints) in {secs:.2} s: {:.0} MB/s, replay and books included",
        bytes as f64 / 1048576.0,
        bytes as f64 / secs / 1e6
    );
    println!(
        "peak RSS {:.0} MiB",
        peak_rss_bytes().unwrap_or(0) as f64 / 1048576.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
