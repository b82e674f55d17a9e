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
        // Four short seeds cannot be expected to meet every path and fault.
        "--allow-missing",
        "all",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["seeds"], 4);
    assert_eq!(v["failures"].as_array().map(Vec::len), Some(0));
    assert_eq!(v["never_happened"].as_array().map(Vec::len), Some(0));
    assert!(v["coverage"]["instruction.invest"].as_u64() > Some(0));
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

#[test]
fn a_swarm_prints_its_coverage_and_fails_naming_what_never_happened() {
    // Without faults no fault kind can happen: the swarm must say so, and fail with exit 4.
    let args = [
        "swarm",
        "--seeds",
        "1..2",
        "--members",
        "200",
        "--days",
        "2",
        "--faults",
        "none",
    ];
    let out = acme(&args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(stdout.contains("coverage over 2 seeds"), "{stdout}");
    for kind in [
        "fault.loss",
        "fault.crash",
        "fault.custodian-outage",
        "fault.upgrade",
    ] {
        assert!(stderr.contains(kind), "{kind} not named: {stderr}");
    }
    // The paths themselves happened: opening pots let members sell, switch and cross from
    // the first day.
    let out = acme(&[&args[..], &["--json"]].concat());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for key in [
        "instruction.sell",
        "instruction.switch",
        "outcome.sell.settled",
        "trade.crossed",
    ] {
        assert!(
            v["coverage"][key].as_u64() > Some(0),
            "{key}: {}",
            v["coverage"]
        );
    }
    let never: Vec<&str> = v["never_happened"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    for kind in acme_faults::KINDS {
        assert!(
            never.contains(&format!("fault.{kind}").as_str()),
            "{kind}: {never:?}"
        );
    }
    // Allowed to stay at zero, what never happened no longer fails the swarm.
    let allow = never.join(",");
    let out = acme(&[&args[..], &["--allow-missing", &allow]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_run_past_its_budget_is_a_liveness_failure_naming_the_seed() {
    let out = acme(&[
        "sim",
        "--seed",
        "5",
        "--days",
        "2",
        "--members",
        "200",
        "--budget-events",
        "2000",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("liveness failure(s) with seed 5"),
        "{stderr}"
    );
    assert!(stderr.contains("--budget-events 2000"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("seed 5: the budget of 2000 events is spent"),
        "{stdout}"
    );
    let out = acme(&["sim", "--days", "3", "--budget-days", "3"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a budget of days must outlast the activity"
    );
}
