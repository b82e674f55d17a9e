//! The `acme` binary as users run it: separate processes, exit codes, JSON fields.

use std::process::Command;

fn acme(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(args)
        .output()
        .expect("acme runs")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = acme(args);
    assert!(
        out.status.success(),
        "acme {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn the_same_seed_in_two_processes_gives_the_same_trace_hash() {
    let args = [
        "sim",
        "--seed",
        "11",
        "--days",
        "3",
        "--members",
        "500",
        "--json",
    ];
    let a = json(&args);
    let b = json(&args);
    assert_eq!(a["trace_hash"], b["trace_hash"]);
    assert_eq!(a["ledger_digest"], b["ledger_digest"]);
    let c = json(&[
        "sim",
        "--seed",
        "12",
        "--days",
        "3",
        "--members",
        "500",
        "--json",
    ]);
    assert_ne!(a["trace_hash"], c["trace_hash"]);
}

#[test]
fn the_json_summary_has_the_documented_fields() {
    let v = json(&[
        "sim",
        "--seed",
        "2",
        "--days",
        "2",
        "--members",
        "200",
        "--json",
    ]);
    for field in [
        "seed",
        "days",
        "members",
        "trace_hash",
        "violations",
        "instructions_by_state",
        "member_trades",
        "external_trades",
        "transfers",
        "wall_ms",
        "ledger_digest",
    ] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    assert_eq!(v["seed"], 2);
    assert_eq!(v["violations"].as_array().map(Vec::len), Some(0));
    assert!(v["trace_hash"].as_str().is_some_and(|h| h.len() == 16));
}

#[test]
fn defaults_run_and_bad_usage_exits_1() {
    let out = acme(&["sim", "--days", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("days"));
    let out = acme(&["sim", "--seed", "not-a-number"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seed"));
}

#[test]
fn swarm_runs_seeds_and_shrink_reports_a_passing_seed() {
    let out = acme(&[
        "swarm",
        "--seeds",
        "1..4",
        "--members",
        "300",
        "--days",
        "2",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["seeds"], 4);
    assert_eq!(v["failures"].as_array().map(Vec::len), Some(0));
    let out = acme(&["swarm", "--seeds", "9..3"]);
    assert_eq!(out.status.code(), Some(1));
    let out = acme(&[
        "sim",
        "--seed",
        "3",
        "--members",
        "100",
        "--days",
        "1",
        "--shrink",
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to shrink"));
    let out = acme(&["sim", "--faults", "chaos"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none, default, swarm"));
}
