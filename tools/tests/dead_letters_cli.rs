//! `acme dead-letters list | redrive` as an operator runs them, on a real data directory.
//!
//! The journal is written by the library: a real `Host<Intake, LogStore<FileStorage>>` in
//! `DATA/processes/intake/` (the runtime's layout) is given a message intake does not take, and
//! dead-letters it. The test then lists it, re-drives it, starts the host again (which handles
//! it again: poison again, so it stays) and damages the journal. A simulation's data directory
//! (`acme sim --data`) holds all five journals, and no dead letter.

// The test plays an operator: it writes and damages files on disk.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_processes::calendar::{Date, Ts};
use acme_processes::host::{Delivery, Host, Io, LogStore, Ticket};
use acme_processes::messages::Message;
use acme_processes::process::{Alert, Envelope, LedgerRequest, Service};
use acme_processes::trading::intake::Intake;
use acme_processes::trading::rebalancing::ModelSet;
use acme_store_fs::{FileStorage, Mode};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The host's ports, recording only the alerts (intake sends, submits and arms nothing for
/// the input given here).
#[derive(Default)]
struct Ports {
    alerts: Vec<Alert>,
}

impl Io for Ports {
    fn submit_ledger(&mut self, _: Service, _: Ticket, _: &LedgerRequest) {}
    fn send(&mut self, _: Ts, _: Envelope) {}
    fn set_timer(&mut self, _: Service, _: u64, _: Ts, _: u64) {}
    fn alert(&mut self, _: Ts, alert: Alert) {
        self.alerts.push(alert);
    }
}

type IntakeHost = Host<Intake, LogStore<FileStorage>>;

fn intake() -> Intake {
    Intake::new(ModelSet::V1.funds.to_vec(), ModelSet::V1.models.len())
}

/// Intake's host on its journal in `data`, created if the directory holds none, started.
fn start(data: &Path, now: Ts, ports: &mut Ports) -> IntakeHost {
    let dir = acme_runtime::process_dir(data, Service::Intake);
    let existed = dir.join("superblock").exists();
    let storage = FileStorage::open(&dir, Mode::ReadWrite).expect("journal directory");
    let store = if existed {
        LogStore::open(storage).expect("journal opens")
    } else {
        LogStore::create(storage, acme_runtime::process_store_id(Service::Intake)).expect("new")
    };
    let mut host = Host::with_store(Service::Intake, intake, store);
    host.recover(now, ports).expect("intake starts");
    host
}

fn acme(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(args)
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

fn expect_exit(out: &Output, code: i32) -> String {
    let all = text(out);
    assert_eq!(out.status.code(), Some(code), "{all}");
    all
}

/// A new, empty directory for one test (nothing created in it yet).
fn fresh(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dead_letters_cli")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.parent().expect("a parent")).expect("parent");
    dir
}

fn list_json(data: &str) -> serde_json::Value {
    let out = acme(&["dead-letters", "list", "--data", data, "--json"]);
    expect_exit(&out, 0);
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn a_dead_letter_is_listed_re_driven_and_handled_again_at_the_next_start() {
    let data = fresh("intake");
    let d = data.to_str().expect("utf-8");
    let now = Date::from_ymd(2024, 1, 2)
        .expect("a date")
        .at_minute(9 * 60);
    let mut ports = Ports::default();
    let mut host = start(&data, now, &mut ports);
    // The scheduler's cut-off goes to aggregation; intake takes no such message: poison.
    let cutoff = Envelope {
        id: 0x5EED,
        from: Service::Scheduler,
        to: Service::Intake,
        seq: 0,
        body: Message::CutOff {
            date: Date::of(now),
        },
    };
    assert_eq!(
        host.deliver(now, cutoff, &mut ports),
        Delivery::DeadLettered
    );
    assert_eq!(host.state().dead_letters().len(), 1);
    assert!(ports
        .alerts
        .iter()
        .any(|a| a.what.contains("dead letter 1")));

    // While intake runs it holds its journal's lock: a redrive is refused, nothing written.
    let out = acme(&[
        "dead-letters",
        "redrive",
        "--data",
        d,
        "--process",
        "intake",
        "--id",
        "1",
    ]);
    let said = expect_exit(&out, 1);
    assert!(said.contains("intake is running"), "{said}");
    // Listing reads without the lock.
    let view = list_json(d);
    assert_eq!(view["dead_letters"].as_array().expect("a list").len(), 1);
    drop(host); // intake stops

    let view = list_json(d);
    let letters = view["dead_letters"].as_array().expect("a list");
    assert_eq!(letters.len(), 1, "{view}");
    let letter = &letters[0];
    assert_eq!(letter["process"], "intake");
    assert_eq!(letter["id"], 1);
    assert_eq!(letter["at"], now);
    assert_eq!(letter["time"], "2024-01-02 09:00:00.000000000 UTC");
    assert_eq!(letter["redrive_requested"], false);
    let summary = letter["summary"].as_str().expect("a summary");
    assert!(
        summary.contains("message CutOff 0x5eed from scheduler"),
        "{summary}"
    );
    let reason = letter["reason"].as_str().expect("a reason");
    assert!(reason.contains("unexpected message"), "{reason}");
    assert_eq!(view["journals"].as_array().expect("journals").len(), 5);
    // The other processes have no journal here; that is no error.
    let human = expect_exit(&acme(&["dead-letters", "list", "--data", d]), 0);
    assert!(
        human.contains("dead letter 1 at 2024-01-02 09:00:00"),
        "{human}"
    );
    assert!(human.contains("aggregation: no journal"), "{human}");
    // Asked for one process, only that one.
    let out = acme(&[
        "dead-letters",
        "list",
        "--data",
        d,
        "--process",
        "intake",
        "--json",
    ]);
    expect_exit(&out, 0);
    let one: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(one["journals"].as_array().expect("journals").len(), 1);
    // A process without a journal, asked for by name: exit 1; an unknown name too.
    let out = acme(&["dead-letters", "list", "--data", d, "--process", "pricing"]);
    assert!(expect_exit(&out, 1).contains("no journal"));
    let out = acme(&["dead-letters", "list", "--data", d, "--process", "nobody"]);
    assert!(expect_exit(&out, 1).contains("not a platform process"));

    // An unknown id: refused, naming it.
    let redrive = |id: &str| {
        acme(&[
            "dead-letters",
            "redrive",
            "--data",
            d,
            "--process",
            "intake",
            "--id",
            id,
        ])
    };
    let said = expect_exit(&redrive("7"), 1);
    assert!(said.contains("no dead letter 7"), "{said}");
    assert!(said.contains("it has 1"), "{said}");
    // The redrive: appended; the list says so.
    let said = expect_exit(&redrive("1"), 0);
    assert!(said.contains("appended a redrive request"), "{said}");
    assert!(said.contains("when intake starts"), "{said}");
    let view = list_json(d);
    assert_eq!(view["dead_letters"][0]["redrive_requested"], true, "{view}");
    // Asked again: nothing more to do.
    let said = expect_exit(&redrive("1"), 0);
    assert!(said.contains("requested already"), "{said}");

    // Intake starts again and handles the input again: still poison, so it stays, with the
    // request cleared (a fixed intake would have taken it and the dead letter would be gone).
    let later = now + 60_000_000_000;
    let mut ports = Ports::default();
    let host = start(&data, later, &mut ports);
    let dead = host.state().dead_letters();
    assert_eq!(dead.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert!(!dead[&1].redrive, "the request is cleared");
    assert_eq!(dead[&1].at, later, "handled again at the start");
    assert!(
        ports
            .alerts
            .iter()
            .any(|a| a.what.contains("dead letter 1")),
        "{:?}",
        ports.alerts
    );
    drop(host);
    let view = list_json(d);
    let letters = view["dead_letters"].as_array().expect("a list");
    assert_eq!(letters.len(), 1, "{view}");
    assert_eq!(letters[0]["redrive_requested"], false);
    assert_eq!(letters[0]["at"], later);

    // A damaged journal: the store's refusal, with its file and offset, and exit 1. The first
    // record's body (after its 72-byte header) is well before the log's end: corruption, not
    // a torn tail.
    let segment =
        acme_runtime::process_dir(&data, Service::Intake).join("log-00000000000000000001");
    let mut bytes = fs::read(&segment).expect("the segment");
    bytes[72 + 9] ^= 0x10;
    fs::write(&segment, bytes).expect("damaged");
    let out = acme(&["dead-letters", "list", "--data", d]);
    let said = expect_exit(&out, 1);
    assert!(
        said.contains("log-00000000000000000001 at offset 0 (record 1)"),
        "{said}"
    );
    let said = expect_exit(&redrive("1"), 1);
    assert!(said.contains("at offset 0"), "{said}");
}

#[test]
fn a_simulation_keeps_its_journals_in_the_data_directory_and_has_no_dead_letters() {
    let data = fresh("sim");
    let d = data.to_str().expect("utf-8");
    let out = acme(&[
        "sim",
        "--seed",
        "1",
        "--days",
        "2",
        "--members",
        "200",
        "--data",
        d,
    ]);
    expect_exit(&out, 0);
    for service in Service::PLATFORM {
        let dir = acme_runtime::process_dir(&data, service);
        assert!(dir.join("superblock").is_file(), "{}", dir.display());
    }
    let said = expect_exit(&acme(&["dead-letters", "list", "--data", d]), 0);
    assert!(said.contains("no dead letters (5 journals read)"), "{said}");
    let view = list_json(d);
    assert_eq!(view["dead_letters"], serde_json::json!([]));
    // The ledger is where it was: `acme ledger verify DIR` reads it, past the journals.
    expect_exit(&acme(&["ledger", "verify", d]), 0);
}
