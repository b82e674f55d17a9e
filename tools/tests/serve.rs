//! `acme serve` end to end over loopback: the real binary on an ephemeral port and a temporary
//! data directory, driven by a tiny HTTP/1.1 client over raw TCP (one request a connection).
//! Every status path of the API; a `kill -9` right after a 202, then a restart on the same
//! directory: the instruction is there, completes, and its key replays the same answer; and
//! malformed requests of every kind, none of which may get a 5xx or bring the server down.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod serve_common;

use serve_common::*;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn every_status_path_of_the_api() {
    let server = Server::start(&data_dir("serve-statuses"));
    let a = server.addr.as_str();
    assert_eq!(send(a, "GET", "/healthz", &[], b"").status, 200);
    let description = send(a, "GET", "/openapi.json", &[], b"");
    assert_eq!(description.status, 200, "{description:?}");
    assert_eq!(description.json()["openapi"], "3.0.3");
    // 401: no token, another scheme, an unknown token.
    assert_problem(&send(a, "GET", "/v1/funds", &[], b""), 401, None);
    assert_problem(
        &send(
            a,
            "GET",
            "/v1/funds",
            &[("Authorization", "Basic eDp5")],
            b"",
        ),
        401,
        None,
    );
    assert_problem(&get(a, "/v1/funds", "not-a-token-of-ours"), 401, None);
    let funds = get(a, "/v1/funds", AUDITOR);
    assert_eq!(funds.status, 200, "{funds:?}");
    let isin = funds.json()["funds"][0]["isin"]
        .as_str()
        .expect("isin")
        .to_string();
    // Members: 201, 200 for the same again, 409 for another profile, 403 for an auditor.
    let r = post(a, "/v1/members", OPERATIONS, None, MEMBER);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("location"), Some("/v1/members/M-1"));
    assert_eq!(post(a, "/v1/members", CHANNEL, None, MEMBER).status, 200);
    let other = r#"{"member_id": "M-1", "risk_profile": "cautious"}"#;
    assert_problem(
        &post(a, "/v1/members", CHANNEL, None, other),
        409,
        Some("risk_profile"),
    );
    assert_problem(&post(a, "/v1/members", AUDITOR, None, MEMBER), 403, None);
    let bad_profile = r#"{"member_id": "M-2", "risk_profile": "reckless"}"#;
    assert_problem(
        &post(a, "/v1/members", CHANNEL, None, bad_profile),
        422,
        Some("risk_profile"),
    );
    // 404s.
    assert_problem(&get(a, "/v1/members/nobody", AUDITOR), 404, None);
    assert_problem(&get(a, "/v1/instructions/12345", AUDITOR), 404, None);
    assert_problem(&get(a, "/v1/no-such-route", AUDITOR), 404, None);
    // Instructions: 403, 400 without a key, 400 for a body that is not JSON, 422s naming the
    // field, 413.
    assert_problem(
        &post(a, "/v1/instructions", AUDITOR, Some("k0"), CONTRIBUTE),
        403,
        None,
    );
    assert_problem(
        &post(a, "/v1/instructions", CHANNEL, None, CONTRIBUTE),
        400,
        None,
    );
    assert_problem(
        &post(a, "/v1/instructions", CHANNEL, Some("k0"), "{nope"),
        400,
        None,
    );
    let cases = [
        (
            r#"{"member_id": "M-1", "kind": "contribute", "amount": "1.001"}"#,
            "amount",
        ),
        (
            r#"{"member_id": "M-1", "kind": "contribute", "amount": "-5"}"#,
            "amount",
        ),
        (
            r#"{"member_id": "M-1", "kind": "contribute", "amount": 5}"#,
            "amount",
        ),
        (
            r#"{"member_id": "M-1", "kind": "invest", "fund": "XX", "amount": "5"}"#,
            "fund",
        ),
        (
            r#"{"member_id": "M-9", "kind": "contribute", "amount": "5"}"#,
            "member_id",
        ),
        (
            r#"{"member_id": "M-1", "kind": "gamble", "amount": "5"}"#,
            "kind",
        ),
    ];
    for (i, (body, field)) in cases.iter().enumerate() {
        let key = format!("bad-{i}");
        assert_problem(
            &post(a, "/v1/instructions", CHANNEL, Some(&key), body),
            422,
            Some(field),
        );
    }
    let big = format!(r#"{{"member_id": "M-1", "pad": "{}"}}"#, "x".repeat(20_000));
    assert_problem(
        &post(a, "/v1/instructions", CHANNEL, Some("big"), &big),
        413,
        None,
    );
    // 202 after durability, with Location, id, state; the replay; the key reused.
    let r = post(
        a,
        "/v1/instructions",
        CHANNEL,
        Some("\"first\""),
        CONTRIBUTE,
    );
    assert_eq!(r.status, 202, "{r:?}");
    let location = r.header("location").expect("Location").to_string();
    let v = r.json();
    assert_eq!(
        location,
        format!("/v1/instructions/{}", v["id"].as_str().expect("id"))
    );
    assert_eq!(v["state"], "received");
    assert!(v.get("dealing_date").is_some(), "{v}");
    let again = post(
        a,
        "/v1/instructions",
        CHANNEL,
        Some("\"first\""),
        CONTRIBUTE,
    );
    assert_eq!((again.status, again.body.as_str()), (202, r.body.as_str()));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(r.header("idempotent-replayed"), None);
    let different = r#"{"member_id": "M-1", "kind": "contribute", "amount": "7.00"}"#;
    assert_problem(
        &post(a, "/v1/instructions", CHANNEL, Some("\"first\""), different),
        422,
        None,
    );
    // The same key under another caller is another key.
    let done = wait_for_state(a, &location, "completed");
    assert_eq!(done["amount"], "100.00");
    // More than the pot holds: 422 on the amount; within it: 202 with a dealing date.
    let invest = |amount: &str| {
        format!(
            r#"{{"member_id": "M-1", "kind": "invest", "fund": "{isin}", "amount": "{amount}"}}"#
        )
    };
    assert_problem(
        &post(
            a,
            "/v1/instructions",
            CHANNEL,
            Some("inv-1"),
            &invest("100.01"),
        ),
        422,
        Some("amount"),
    );
    let r = post(
        a,
        "/v1/instructions",
        CHANNEL,
        Some("inv-2"),
        &invest("40.00"),
    );
    assert_eq!(r.status, 202, "{r:?}");
    assert!(r.json()["dealing_date"].is_string(), "{r:?}");
    let pot = get(a, "/v1/members/M-1", AUDITOR);
    assert_eq!(pot.status, 200, "{pot:?}");
    assert_eq!(pot.json()["risk_profile"], "balanced");
    let list = get(a, "/v1/members/M-1/instructions", AUDITOR).json();
    assert_eq!(
        list["instructions"].as_array().map(Vec::len),
        Some(2),
        "{list}"
    );
    let status = server.terminate();
    assert!(status.success(), "a clean stop: {status:?}");
}

#[test]
fn an_instruction_answered_202_survives_kill_9_and_its_key_replays_after_the_restart() {
    let dir = data_dir("serve-kill9");
    let server = Server::start(&dir);
    let a = server.addr.clone();
    assert_eq!(post(&a, "/v1/members", CHANNEL, None, MEMBER).status, 201);
    let r = post(
        &a,
        "/v1/instructions",
        CHANNEL,
        Some("pay-in-1"),
        CONTRIBUTE,
    );
    assert_eq!(r.status, 202, "{r:?}");
    // No clean stop: whatever the 202 promised must be on disk already.
    server.kill9();
    let server = Server::start(&dir);
    let a = server.addr.clone();
    let location = r.header("location").expect("Location");
    let done = wait_for_state(&a, location, "completed");
    assert_eq!(done["id"], r.json()["id"]);
    let replay = post(
        &a,
        "/v1/instructions",
        CHANNEL,
        Some("pay-in-1"),
        CONTRIBUTE,
    );
    assert_eq!(
        (replay.status, replay.body.as_str()),
        (202, r.body.as_str())
    );
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let pot = get(&a, "/v1/members/M-1", AUDITOR).json();
    assert_eq!(pot["cash"]["available"], "100.00", "taken once: {pot}");
    // A new instruction after the restart gets a new id, not the old one again.
    let second = post(
        &a,
        "/v1/instructions",
        CHANNEL,
        Some("pay-in-2"),
        CONTRIBUTE,
    );
    assert_eq!(second.status, 202, "{second:?}");
    assert_ne!(second.json()["id"], r.json()["id"]);
    wait_for_state(
        &a,
        second.header("location").expect("Location"),
        "completed",
    );
    let pot = get(&a, "/v1/members/M-1", AUDITOR).json();
    assert_eq!(pot["cash"]["available"], "200.00", "{pot}");
    server.kill9();
}

/// A small deterministic generator, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

#[test]
fn malformed_bodies_headers_and_tokens_never_get_a_5xx() {
    let server = Server::start(&data_dir("serve-malformed"));
    let a = server.addr.as_str();
    assert_eq!(post(a, "/v1/members", CHANNEL, None, MEMBER).status, 201);
    let routes = [
        ("POST", "/v1/instructions"),
        ("POST", "/v1/members"),
        ("GET", "/v1/members/M-1"),
        ("GET", "/v1/members/%FF%FE"),
        ("GET", "/v1/instructions/99999999999999999999999"),
        ("GET", "/v1/funds"),
        ("DELETE", "/v1/funds"),
    ];
    let bodies = [
        "",
        "null",
        "[]",
        "{}",
        "\"x\"",
        "{\"member_id\": 5}",
        "{\"kind\": []}",
        r#"{"member_id": "M-1", "kind": "contribute", "amount": "1e9"}"#,
        r#"{"member_id": "M-1", "kind": "contribute", "amount": "99999999999999999999999.99"}"#,
        r#"{"member_id": "M-1", "kind": "switch", "from_fund": "GB00ACME0019", "to_fund": "GB00ACME0019", "units": "1"}"#,
        r#"{"member_id": "M-1", "kind": "sell", "fund": "GB00ACME0019", "units": "0.0000001"}"#,
        r#"{"member_id": "", "risk_profile": "balanced"}"#,
        "\u{0}\u{1}\u{2}",
        "{\"a\":",
        "{\"member_id\": \"M-1\", \"kind\": \"contribute\", \"amount\": \"\u{e9}\"}",
    ];
    let tokens = [
        "",
        "Bearer",
        "Bearer x",
        CHANNEL,
        AUDITOR,
        "bearer channel-token-for-tests-0001",
    ];
    let keys = [
        "",
        "\"\"",
        "k",
        "\"unterminated",
        &"k".repeat(300),
        "\u{7f}",
    ];
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    for i in 0..300u32 {
        let (method, path) = routes[(rng.next() % routes.len() as u64) as usize];
        let mut body = rng.pick(&bodies).as_bytes().to_vec();
        if rng.next().is_multiple_of(5) {
            // Bytes that are not UTF-8.
            body.extend((0..(rng.next() % 64)).map(|_| (rng.next() & 0xff) as u8));
        }
        let token = rng.pick(&tokens);
        let auth = if token.starts_with("Bearer") || token.starts_with("bearer") || token.is_empty()
        {
            token.to_string()
        } else {
            bearer(token)
        };
        let key = rng.pick(&keys);
        let mut headers = vec![("Authorization", auth.as_str())];
        if !key.is_empty() || i.is_multiple_of(2) {
            headers.push(("Idempotency-Key", key));
        }
        let r = send(a, method, path, &headers, &body);
        assert!(
            r.status < 500,
            "request {i}: {method} {path} {headers:?} {body:?}: {r:?}"
        );
        if key.contains('\u{7f}') && headers.len() > 1 {
            // Not a valid HTTP field value: hyper refuses it before the API sees it, with a
            // bare 400.
            assert_eq!(r.status, 400, "{r:?}");
        } else if r.status >= 400 {
            assert_eq!(
                r.header("content-type"),
                Some("application/problem+json"),
                "request {i}: {method} {path} {headers:?} {body:?}: {r:?}"
            );
        }
    }
    // Still up, and still right.
    let r = post(a, "/v1/instructions", CHANNEL, Some("after"), CONTRIBUTE);
    assert_eq!(r.status, 202, "{r:?}");
}

#[test]
fn copies_of_one_request_sent_at_once_make_one_instruction() {
    let server = Server::start(&data_dir("serve-concurrent"));
    let a = server.addr.clone();
    assert_eq!(post(&a, "/v1/members", CHANNEL, None, MEMBER).status, 201);
    // Eight copies at once under one key: the first is taken, the others wait for it (409
    // while it is in flight) or replay its answer; never a second instruction.
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| post(&a, "/v1/instructions", CHANNEL, Some("same"), CONTRIBUTE)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a reply"))
            .collect()
    });
    let accepted: Vec<&Reply> = replies.iter().filter(|r| r.status == 202).collect();
    assert!(!accepted.is_empty(), "{replies:?}");
    for r in &replies {
        assert!(r.status == 202 || r.status == 409, "{r:?}");
        if r.status == 409 {
            assert_problem(r, 409, None);
        }
    }
    assert!(
        accepted.iter().all(|r| r.body == accepted[0].body),
        "{accepted:?}"
    );
    let fresh = accepted
        .iter()
        .filter(|r| r.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "one first answer, the rest replays: {accepted:?}");
    let list = get(&a, "/v1/members/M-1/instructions", AUDITOR).json();
    assert_eq!(
        list["instructions"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    wait_for_state(
        &a,
        accepted[0].header("location").expect("Location"),
        "completed",
    );
    let pot = get(&a, "/v1/members/M-1", AUDITOR).json();
    assert_eq!(pot["cash"]["available"], "100.00", "{pot}");
}

/// The value of `family{host="HOST"}` in `/metrics`.
fn host_metric(addr: &str, family: &str, host: &str) -> u64 {
    let metrics = send(addr, "GET", "/metrics", &[], b"").body;
    let prefix = format!("{family}{{host=\"{host}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn every_status_of_a_burst_is_journaled_and_acknowledged_so_intakes_outbox_drains() {
    let dir = data_dir("serve-burst");
    let server = Server::start(&dir);
    let a = server.addr.clone();
    assert_eq!(post(&a, "/v1/members", CHANNEL, None, MEMBER).status, 201);
    // Eight clients at once, 25 contributions each: intake reports 200 outcomes in bursts,
    // which the API journals together and acknowledges; until acknowledged each stays in
    // intake's outbox (and so in its snapshots).
    let locations: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|client| {
                let a = &a;
                s.spawn(move || {
                    (0..25)
                        .map(|i| {
                            let key = format!("burst-{client}-{i}");
                            let r = post(a, "/v1/instructions", CHANNEL, Some(&key), CONTRIBUTE);
                            assert_eq!(r.status, 202, "{r:?}");
                            r.header("location").expect("Location").to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a client"))
            .collect()
    });
    assert_eq!(locations.len(), 200);
    for location in &locations {
        wait_for_state(&a, location, "completed");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let outbox = host_metric(&a, "acme_host_outbox", "intake");
        if outbox == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "intake still holds {outbox} effects unacknowledged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pot = get(&a, "/v1/members/M-1", AUDITOR).json();
    assert_eq!(pot["cash"]["available"], "20000.00", "{pot}");
    // The API's messages to intake are numbered on one channel, so intake's host keeps a
    // watermark for them, not each message's id for a day (which was most of its snapshot).
    let remembered = host_metric(&a, "acme_host_dedupe_ids", "intake");
    assert!(
        remembered < 20,
        "intake remembers {remembered} message ids for 201 messages from the API"
    );
    // The numbers go on after a restart: a new instruction is new to intake, not a copy.
    assert!(server.terminate().success());
    let server = Server::start(&dir);
    let a = server.addr.clone();
    let r = post(
        &a,
        "/v1/instructions",
        CHANNEL,
        Some("after-restart"),
        CONTRIBUTE,
    );
    assert_eq!(r.status, 202, "{r:?}");
    wait_for_state(&a, r.header("location").expect("Location"), "completed");
    let again = post(
        &a,
        "/v1/instructions",
        CHANNEL,
        Some("burst-0-0"),
        CONTRIBUTE,
    );
    assert_eq!(
        again.header("idempotent-replayed"),
        Some("true"),
        "{again:?}"
    );
    let pot = get(&a, "/v1/members/M-1", AUDITOR).json();
    assert_eq!(pot["cash"]["available"], "20100.00", "{pot}");
}

#[test]
fn a_config_file_gives_hashed_tokens_and_the_in_flight_bound_past_which_it_is_429() {
    let dir = data_dir("serve-config");
    std::fs::create_dir_all(&dir).expect("data dir");
    let token = "config-token-for-tests-000001";
    let out = Command::new("sh")
        .args(["-c", &format!("printf %s '{token}' | sha256sum")])
        .output()
        .expect("sha256sum");
    let hash = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_string();
    let config = dir.join("config.json");
    let text =
        format!(r#"{{"tokens": [{{"role": "channel", "sha256": "{hash}"}}], "in_flight_max": 0}}"#);
    std::fs::write(&config, text).expect("config");
    let server = Server::start_with(&dir, &["--config".as_ref(), config.as_os_str()]);
    let a = server.addr.as_str();
    assert_eq!(
        get(a, "/v1/funds", token).status,
        200,
        "the hashed token is known"
    );
    // Nothing may wait for intake: every registration and instruction is told to come back.
    for r in [
        post(a, "/v1/members", token, None, MEMBER),
        post(a, "/v1/instructions", token, Some("k"), CONTRIBUTE),
    ] {
        assert_problem(&r, 429, None);
        assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    }
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"in_flight_max": 1, "tokenz": []}"#).expect("config");
    let refused = Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.join("other"))
        .arg("--config")
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("tokenz"),
        "{refused:?}"
    );
}

/// Runs a day's job as operations; the answer's trade count.
fn job(addr: &str, name: &str, date: &str) -> Option<u64> {
    let r = post(
        addr,
        &format!("/v1/jobs/{name}"),
        OPERATIONS,
        None,
        &format!(r#"{{"date": "{date}"}}"#),
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["trades"].as_u64()
}

#[test]
fn an_investment_is_placed_priced_and_settled_by_the_day_jobs_with_the_simulated_custodian() {
    let server = Server::start(&data_dir("serve-day-jobs"));
    let a = server.addr.clone();
    assert_eq!(post(&a, "/v1/members", CHANNEL, None, MEMBER).status, 201);
    let pay_in = post(&a, "/v1/instructions", CHANNEL, Some("c"), CONTRIBUTE);
    wait_for_state(
        &a,
        pay_in.header("location").expect("Location"),
        "completed",
    );
    let isin = "GB00ACME0019";
    let body =
        format!(r#"{{"member_id": "M-1", "kind": "invest", "fund": "{isin}", "amount": "40.00"}}"#);
    let invest = post(&a, "/v1/instructions", CHANNEL, Some("i"), &body);
    assert_eq!(invest.status, 202, "{invest:?}");
    let dealing = invest.json()["dealing_date"]
        .as_str()
        .expect("a dealing date")
        .to_string();
    // Only operations run jobs; a job needs a real date.
    let r = post(
        &a,
        "/v1/jobs/cut-off",
        CHANNEL,
        None,
        &format!(r#"{{"date": "{dealing}"}}"#),
    );
    assert_problem(&r, 403, None);
    let r = post(
        &a,
        "/v1/jobs/cut-off",
        OPERATIONS,
        None,
        r#"{"date": "2026-02-30"}"#,
    );
    assert_problem(&r, 422, Some("date"));
    let r = post(
        &a,
        "/v1/jobs/lunch",
        OPERATIONS,
        None,
        r#"{"date": "2026-02-03"}"#,
    );
    assert_problem(&r, 404, None);
    // The order reaches aggregation once intake has reserved its cash (the ledger shows it),
    // and must be there before the cut-off, or it trades the next dealing day.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&a, "/v1/members/M-1", AUDITOR).json()["cash"]["reserved"] != "40.00" {
        assert!(Instant::now() < deadline, "the order was never reserved");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    // Twice: one cut-off (its message id is the date's).
    assert_eq!(job(&a, "cut-off", &dealing), None);
    assert_eq!(job(&a, "cut-off", &dealing), None);
    // The trade reaches the custodian just after the cut-off is committed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while job(&a, "valuation", &dealing) == Some(0) {
        assert!(Instant::now() < deadline, "no trade reached the custodian");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(job(&a, "valuation", &dealing), Some(0), "priced once");
    let date: acme_processes::calendar::Date = dealing.parse().expect("a date");
    let settle = date.add_business_days(2).to_string();
    assert_eq!(job(&a, "settlement", &settle), Some(1));
    let done = wait_for_state(&a, invest.header("location").expect("Location"), "settled");
    assert_eq!(done["dealing_date"], dealing.as_str());
    let pot = get(&a, "/v1/members/M-1", AUDITOR).json();
    assert_eq!(pot["cash"]["available"], "60.00", "{pot}");
    assert_eq!(pot["funds"][0]["isin"], isin, "{pot}");
    assert_eq!(
        pot["funds"][0]["units_settled"], "40.000000",
        "at £1 a unit: {pot}"
    );
    assert_eq!(pot["value"], "100.00", "{pot}");
    let metrics = send(&a, "GET", "/metrics", &[], b"").body;
    for j in ["cut-off", "valuation", "settlement"] {
        let line = format!("acme_day_job_last_success_seconds{{job=\"{j}\"}}");
        assert!(metrics.contains(&line), "{metrics}");
    }
}
