//! Whole simulated days on real TigerBeetle clusters (needs `--features tigerbeetle`).
//!
//! 1. `acme sim --ledger tigerbeetle://$TB_ADDRESS` (a 1-replica cluster, as `tools/test-all.sh`
//!    starts it) ends with the same `ledger_digest` as the same seed on MemLedger, with every
//!    invariant holding; a second run on the same cluster is refused (the accounts exist).
//! 2. A 3-replica cluster of the test's own (formatted in a temporary directory, on free
//!    loopback ports, stopped by a guard even when the test fails): the simulation runs step by
//!    step; on three business days one replica after the other is killed with SIGKILL in the
//!    morning and restarted from its data file in the afternoon (so the primary is lost at
//!    least once); the run completes, every invariant holds and the digest equals MemLedger's.
//!
//! Without `TB_ADDRESS` (test 1) or the server binary `.tools/bin/tigerbeetle` (test 2, or
//! `TB_BIN`), the tests fail with a clear message unless `ACME_SKIP_TIGERBEETLE=1`.
//!
//! Test 2 manages its replicas itself (`support/cluster.rs`). Neither run keeps a copy of the
//! ledger in memory: the simulator's checks read the cluster through the port.
//!
//! An adapter's test: it reads the environment and the wall clock and starts processes.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "../src/tigerbeetle_backend.rs"]
#[allow(dead_code)] // `world` serves the binary only.
mod tigerbeetle_backend;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acme_ledger::Clock;
use acme_processes::calendar::Date;
use acme_sim::world::SimClock;
use acme_sim::{SimConfig, World};
use tigerbeetle_backend::{BackendStats, TigerBeetleBackend};

/// The seed, days and members of both tests: `acme sim`'s defaults.
const SEED: u64 = 1;
const DAYS: u32 = 5;
const MEMBERS: u64 = 2_000;

/// The two tests load the machine; one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn skip_or_fail(what: &str) -> bool {
    if std::env::var("ACME_SKIP_TIGERBEETLE").as_deref() == Ok("1") {
        eprintln!("SKIPPED: {what}, and ACME_SKIP_TIGERBEETLE=1");
        return true;
    }
    panic!(
        "{what}. These tests need TigerBeetle: run `tools/tigerbeetle.sh install && \
         tools/tigerbeetle.sh up` and set TB_ADDRESS to the address list it prints (or set \
         ACME_SKIP_TIGERBEETLE=1 to skip them knowingly)."
    );
}

fn acme(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(args)
        .output()
        .expect("acme runs")
}

fn sim_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "sim",
        "--seed",
        &SEED.to_string(),
        "--days",
        &DAYS.to_string(),
        "--members",
        &MEMBERS.to_string(),
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn json(args: &[String]) -> serde_json::Value {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = acme(&args);
    assert!(
        out.status.success(),
        "acme {args:?} exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn a_simulation_on_a_one_replica_cluster_ends_with_memledgers_balances() {
    let address = std::env::var("TB_ADDRESS")
        .ok()
        .filter(|a| !a.trim().is_empty());
    let Some(address) = address else {
        if skip_or_fail("TB_ADDRESS is not set") {
            return;
        }
        unreachable!()
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mem = json(&sim_args(&[]));
    let ledger = format!("tigerbeetle://{address}");
    let started = Instant::now();
    let tb = json(&sim_args(&["--ledger", &ledger]));
    eprintln!(
        "seed {SEED}, {DAYS} days, {MEMBERS} members: MemLedger digest {} ({} transfers, {} \
         events), TigerBeetle digest {} ({} transfers, {} events) in {:.1} s",
        mem["ledger_digest"],
        mem["transfers"],
        mem["events"],
        tb["ledger_digest"],
        tb["transfers"],
        tb["events"],
        started.elapsed().as_secs_f64()
    );
    assert_eq!(tb["violation_count"], 0, "violations: {}", tb["violations"]);
    assert_eq!(
        mem["violation_count"], 0,
        "violations: {}",
        mem["violations"]
    );
    assert_eq!(
        tb["ledger_digest"], mem["ledger_digest"],
        "the same seed must end with the same balances on TigerBeetle as on MemLedger"
    );
    assert_eq!(tb["accounts"], mem["accounts"]);
    assert_eq!(tb["transfers"], mem["transfers"]);

    // The accounts exist now: a second run on this cluster is refused, clearly.
    let args = sim_args(&["--ledger", &ledger]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = acme(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("needs a fresh cluster"), "stderr: {stderr}");
}

mod support;
use support::cluster::{server_binary, Cluster};

#[test]
fn a_three_replica_cluster_that_loses_replicas_mid_day_ends_with_memledgers_balances() {
    let Some(bin) = server_binary() else {
        if skip_or_fail("the TigerBeetle server is not at .tools/bin/tigerbeetle (nor TB_BIN)") {
            return;
        }
        unreachable!()
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = SimConfig::new(SEED, DAYS, MEMBERS);
    let first_day = cfg.start.business_on_or_after();
    let reference = World::new(cfg.clone()).run();
    assert!(reference.ok(), "MemLedger run: {:?}", reference.violations);

    let mut cluster = Cluster::start(&bin, 3);
    let clock = Arc::new(SimClock::default());
    let mut backend = TigerBeetleBackend::connect(0, &cluster.addresses, clock.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    // Short enough that requests caught by the view change time out, and the hosts retry.
    backend.set_request_timeout(Duration::from_secs(2));
    let stats = backend.stats();
    let mut world = World::with_ledger(cfg, clock.clone(), Box::new(backend));

    // On business days 2, 3 and 4, replica 0, 1 and 2 in turn: killed at 11:00 (members'
    // instructions arriving), restarted at 15:30 (after the cut-off and the valuation point,
    // before the end of the day). Whichever replica is the primary when its turn comes is lost
    // with the requests in flight to it, and the cluster changes view; the primary moves only
    // when it is killed, so one of the three kills is the primary's.
    let faults: Vec<(usize, u64, u64)> = (0..3)
        .map(|r| {
            let day = first_day.add_business_days(1 + r as u32);
            (r, day.at_minute(11 * 60), day.at_minute(15 * 60 + 30))
        })
        .collect();
    let started = Instant::now();
    let mut events = 0u64;
    let mut down: Option<usize> = None;
    let mut done = 0;
    let mut events_while_down = Vec::new();
    let mut killed_at_event = 0;
    while world.step() {
        events += 1;
        let now = clock.now_ns();
        let Some(&(replica, kill_at, restart_at)) = faults.get(done) else {
            continue;
        };
        if down.is_none() && now >= kill_at {
            cluster.kill_replica(replica);
            down = Some(replica);
            killed_at_event = events;
            eprintln!(
                "replica {replica} killed (SIGKILL) after {events} events, at {} ({:.1} s)",
                clock_time(now),
                started.elapsed().as_secs_f64()
            );
        }
        if down == Some(replica) && now >= restart_at {
            cluster.start_replica(replica);
            down = None;
            done += 1;
            events_while_down.push(events - killed_at_event);
            eprintln!(
                "replica {replica} restarted after {events} events, at {} ({:.1} s)",
                clock_time(now),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let summary = world.finish();
    let get = |c: &std::sync::atomic::AtomicU64| BackendStats::get(c);
    eprintln!(
        "seed {SEED}: {events} events in {:.1} s on 3 replicas; {} write request(s) unanswered, \
         {} read(s) retried, {} account scan(s) through the port; digest {} (MemLedger {})",
        started.elapsed().as_secs_f64(),
        get(&stats.unanswered_writes),
        get(&stats.read_retries),
        get(&stats.scans),
        summary.ledger_digest,
        reference.ledger_digest
    );
    assert_eq!(
        done,
        faults.len(),
        "the run ended before the faults were over"
    );
    assert!(
        events_while_down.iter().all(|&n| n > 100),
        "events ran while each replica was down: {events_while_down:?}"
    );
    assert!(
        summary.ok(),
        "{} violation(s): {:#?}",
        summary.violation_count,
        summary.violations
    );
    assert_eq!(
        summary.ledger_digest, reference.ledger_digest,
        "the same seed must end with the same balances on the cluster as on MemLedger"
    );
    assert_eq!(summary.accounts, reference.accounts);
    // Transfers the cluster had applied before a retry count as `exists`, not `ok`.
    assert!(summary.transfers <= reference.transfers);
    assert!(get(&stats.scans) > 0, "the checks scanned the cluster");
}

fn clock_time(ts: u64) -> String {
    let minutes = (ts / 60_000_000_000) % (24 * 60);
    format!("{} {:02}:{:02}", Date::of(ts), minutes / 60, minutes % 60)
}
