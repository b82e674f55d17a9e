//! `acme canary` against a real `acme serve`: synthetic members through registration, a
//! payment in, an investment the day's jobs trade and settle, and a sale; a wrong token is a
//! failed check (exit 1), an unreachable service a usage error (exit 2).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod serve_common;

use serve_common::{data_dir, Server, CHANNEL, OPERATIONS};
use std::process::{Command, Output};

fn canary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acme"))
        .arg("canary")
        .args(args)
        .output()
        .expect("acme canary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn canary_members_go_end_to_end_and_a_rerun_with_their_tag_replays() {
    let server = Server::start(&data_dir("canary"));
    let target = format!("http://{}", server.addr);
    let args = [
        "--target",
        &target,
        "--token",
        CHANNEL,
        "--operations-token",
        OPERATIONS,
        "--members",
        "2",
        "--tag",
        "t1",
    ];
    let out = canary(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("canary t1: 2 of 2 members end to end"),
        "{}",
        text(&out)
    );
    // The same tag again: every key replays its first answer, so nothing is paid in twice and
    // the canary sees the pot the first run left (60.00 in cash, the rest in units), not a
    // second 100.00.
    let out = canary(&[
        "--target",
        &target,
        "--token",
        CHANNEL,
        "--tag",
        "t1",
        "--patience-s",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("FAIL member 1: pot after the pay in"),
        "{said}"
    );
    assert!(said.contains(r#""available":"60.00""#), "{said}");
    let metrics = serve_common::send(&server.addr, "GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("acme_host_up{host=\"intake\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("acme_host_group_commits_total{host=\"intake\"}"),
        "{metrics}"
    );
}

#[test]
fn a_wrong_token_fails_a_check_and_no_service_is_a_usage_error() {
    let server = Server::start(&data_dir("canary-refused"));
    let target = format!("http://{}", server.addr);
    let out = canary(&["--target", &target, "--token", "not-a-token"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("FAIL member 1: register: HTTP 401"),
        "{}",
        text(&out)
    );
    drop(server);
    let out = canary(&["--target", &target, "--token", CHANNEL]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("cannot reach"), "{}", text(&out));
    let out = canary(&["--target", "https://example.com", "--token", CHANNEL]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
