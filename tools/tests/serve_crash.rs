//! `acme serve` killed (`kill -9`) in the middle of a load of instructions whose clients retry
//! with their keys until they get a 202, then started again on the same data directory: every
//! key ends with exactly one instruction, every instruction completes once (each member's pot
//! holds exactly what its keys paid in), and the durable ledger verifies.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod serve_common;

use serve_common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 4;
const PER_CLIENT: usize = 60;

/// Posts one contribution of £1.00 under `key` until it is answered 202, following the server
/// to its new address; the instruction id it got.
fn until_accepted(addr: &Mutex<String>, member: &str, key: &str) -> String {
    let body = format!(r#"{{"member_id": "{member}", "kind": "contribute", "amount": "1.00"}}"#);
    let auth = format!("Bearer {CHANNEL}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let at = addr.lock().expect("addr").clone();
        let headers = [("Authorization", auth.as_str()), ("Idempotency-Key", key)];
        match try_send(&at, "POST", "/v1/instructions", &headers, body.as_bytes()) {
            Ok(r) if r.status == 202 => return r.json()["id"].as_str().expect("id").to_string(),
            Ok(r) => assert!(
                r.status == 409 || r.status == 503 || r.status == 429,
                "only a retryable refusal is expected: {r:?}"
            ),
            Err(_) => {} // the server is down or restarting
        }
        assert!(Instant::now() < deadline, "{key} never accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_kill_9_under_load_loses_no_accepted_instruction_and_duplicates_none() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-crash");
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::start(&dir);
    for c in 0..CLIENTS {
        let body = format!(r#"{{"member_id": "C-{c}", "risk_profile": "cautious"}}"#);
        assert_eq!(
            post(&server.addr, "/v1/members", CHANNEL, None, &body).status,
            201
        );
    }
    let addr = Arc::new(Mutex::new(server.addr.clone()));
    let accepted = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, accepted) = (addr.clone(), accepted.clone());
            std::thread::spawn(move || {
                (0..PER_CLIENT)
                    .map(|i| {
                        let id = until_accepted(&addr, &format!("C-{c}"), &format!("load-{c}-{i}"));
                        accepted.fetch_add(1, Ordering::SeqCst);
                        id
                    })
                    .collect::<Vec<String>>()
            })
        })
        .collect();
    // Let the load get going, then pull the plug in the middle of it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.load(Ordering::SeqCst) < CLIENTS * PER_CLIENT / 4 {
        assert!(Instant::now() < deadline, "the load never got going");
        std::thread::sleep(Duration::from_millis(1));
    }
    server.kill9();
    let before = accepted.load(Ordering::SeqCst);
    assert!(
        before < CLIENTS * PER_CLIENT,
        "the kill came after the load: {before}"
    );
    let server = Server::start(&dir);
    *addr.lock().expect("addr") = server.addr.clone();
    let mut ids = BTreeSet::new();
    for c in clients {
        for id in c.join().expect("a client") {
            assert!(
                ids.insert(id.clone()),
                "instruction {id} given for two keys"
            );
        }
    }
    assert_eq!(ids.len(), CLIENTS * PER_CLIENT);
    let a = server.addr.clone();
    let ready = send(&a, "GET", "/readyz", &[], b"");
    assert_eq!(
        ready.status, 200,
        "ready once the unanswered keys are finished: {ready:?}"
    );
    for c in 0..CLIENTS {
        let list = get(&a, &format!("/v1/members/C-{c}/instructions"), AUDITOR).json();
        let listed = list["instructions"].as_array().map_or(0, Vec::len);
        assert_eq!(listed, PER_CLIENT, "one instruction a key: {list}");
    }
    for id in &ids {
        wait_for_state(&a, &format!("/v1/instructions/{id}"), "completed");
    }
    for c in 0..CLIENTS {
        let pot = get(&a, &format!("/v1/members/C-{c}"), AUDITOR).json();
        let want = format!("{PER_CLIENT}.00");
        assert_eq!(
            pot["cash"]["available"],
            want.as_str(),
            "each key paid in once: {pot}"
        );
    }
    assert!(server.terminate().success());
    let verify = Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(["ledger", "verify"])
        .arg(dir.join("ledger"))
        .output()
        .expect("acme ledger verify runs");
    assert!(verify.status.success(), "{verify:?}");
}
