//! `acme recon --tigerbeetle` against a real cluster (needs `--features tigerbeetle` and the
//! server binary `.tools/bin/tigerbeetle`, or `TB_BIN`; without it the test fails with a clear
//! message unless `ACME_SKIP_TIGERBEETLE=1`).
//!
//! A simulated day runs on a 1-replica cluster of the test's own (`acme sim --ledger
//! tigerbeetle://...`, no copy of the ledger in memory), which exports the day's statements and
//! the calendar of its simulated days. `acme recon --tigerbeetle` then reads the cluster through
//! the port, journal replayed: clean with the day's statements; with one planted break in the
//! holdings statement, exactly that break. The same day read from the export gives the same
//! report.
//!
//! An adapter's test: it reads the environment and starts processes.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::cluster::{server_binary_or_skip, Cluster};

fn acme(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(args)
        .output()
        .expect("acme runs")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The export of the day, and the date it is of.
fn simulate_day(addresses: &str, dir: &Path) -> String {
    let out = acme(&strings(&[
        "sim",
        "--seed",
        "5",
        "--days",
        "1",
        "--members",
        "300",
        "--json",
        "--ledger",
        &format!("tigerbeetle://{addresses}"),
        "--export",
        &dir.to_string_lossy(),
    ]));
    assert!(
        out.status.success(),
        "sim on TigerBeetle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = json_of(&out);
    assert_eq!(summary["violation_count"], 0, "{}", summary["violations"]);
    let manifest = std::fs::read_to_string(dir.join("ledger/manifest.txt")).expect("manifest");
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("as_of="))
        .expect("as_of in the manifest")
        .to_string()
}

/// `acme recon` on `source` (`--tigerbeetle ADDR ...` or `--ledger DIR`) with the day's
/// statements, as JSON.
fn recon(source: &[String], dir: &Path, date: &str) -> (Option<i32>, serde_json::Value) {
    let p = |rel: &str| {
        dir.join(rel.replace("DATE", date))
            .to_string_lossy()
            .into_owned()
    };
    let mut args = strings(&["recon", "--format", "json"]);
    args.extend(source.iter().cloned());
    args.extend([
        "--holdings".into(),
        p("custodian/holdings-DATE.csv"),
        "--trades".into(),
        p("custodian/trades-DATE.csv"),
        "--cash".into(),
        p("custodian/cash-DATE.csv"),
        "--cash".into(),
        p("bank/cash-DATE.csv"),
    ]);
    let out = acme(&args);
    (out.status.code(), json_of(&out))
}

#[test]
fn a_simulated_day_on_tigerbeetle_reconciles_clean_and_a_planted_break_is_found_alone() {
    let Some(bin) = server_binary_or_skip() else {
        return;
    };
    let cluster = Cluster::start(&bin, 1);
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("recon-tigerbeetle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let date = simulate_day(&cluster.addresses, &dir);
    let calendar = dir.join("ledger/calendar.txt");
    assert!(calendar.exists(), "the export carries the simulated days");
    let tb = vec![
        "--tigerbeetle".to_string(),
        cluster.addresses.clone(),
        "--as-of".into(),
        date.clone(),
        "--calendar".into(),
        calendar.to_string_lossy().into_owned(),
    ];

    let (code, v) = recon(&tb, &dir, &date);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["status"], "clean", "{v:#}");
    assert_eq!(v["breaks"].as_array().map(Vec::len), Some(0), "{v:#}");
    let notes = v["levels"][0]["notes"].to_string();
    assert!(notes.contains("journal replayed"), "{notes}");
    assert!(notes.contains("read through the port"), "{notes}");
    // The cluster and its export say the same.
    let (code, from_export) = recon(
        &["--ledger".into(), dir.to_string_lossy().into()],
        &dir,
        &date,
    );
    assert_eq!(code, Some(0), "{from_export:#}");
    assert_eq!(from_export["positions"], v["positions"]);

    // One planted break: a fund's settled units on the custodian's statement, one unit more.
    let holdings = dir.join(format!("custodian/holdings-{date}.csv"));
    let text = std::fs::read_to_string(&holdings).expect("holdings");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // A fund the ledger holds settled units of (columns: date, account, ISIN, settled, pending).
    let row = (1..lines.len())
        .find(|&i| lines[i].split(',').nth(3).is_some_and(|u| u != "0.000000"))
        .expect("a fund with settled units");
    let mut fields: Vec<String> = lines[row].split(',').map(str::to_string).collect();
    let isin = fields[2].clone();
    let (units, micro) = fields[3].split_once('.').expect("units.micro");
    fields[3] = format!("{}.{micro}", units.parse::<u64>().expect("units") + 1);
    lines[row] = fields.join(",");
    std::fs::write(&holdings, lines.join("\n") + "\n").expect("writable");

    let (code, v) = recon(&tb, &dir, &date);
    assert_eq!(code, Some(2), "{v:#}");
    let breaks = v["breaks"].as_array().expect("breaks");
    assert_eq!(breaks.len(), 1, "exactly the planted break: {breaks:#?}");
    let b = &breaks[0];
    assert_eq!(
        (&b["level"], &b["kind"], &b["classification"], &b["asset"]),
        (
            &"positions".into(),
            &"settled_units".into(),
            &"true".into(),
            &serde_json::Value::from(isin.as_str())
        ),
        "{b:#}"
    );
    assert_eq!(b["difference"], "1.000000", "{b:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
