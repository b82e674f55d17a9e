//! `acme serve --tigerbeetle` on a 1-replica cluster of the test's own: the canary's members
//! pay in, invest, are traded by the day's jobs, settle and sell, all on the cluster (needs
//! `--features tigerbeetle` and the server binary, as `recon_tigerbeetle`), and no embedded
//! ledger is made beside it. A wrong address is refused before the service listens.
//!
//! An adapter's test: it reads the environment and starts processes.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod serve_common;
mod support;

use serve_common::{data_dir, Server, CHANNEL, OPERATIONS};
use std::ffi::OsStr;
use std::process::Command;
use support::cluster::{server_binary_or_skip, Cluster};

#[test]
fn the_service_runs_its_members_end_to_end_on_a_tigerbeetle_cluster() {
    let Some(bin) = server_binary_or_skip() else {
        return;
    };
    let cluster = Cluster::start(&bin, 1);
    let dir = data_dir("serve-tigerbeetle");
    let flag = OsStr::new("--tigerbeetle");
    let server = Server::start_with(&dir, &[flag, OsStr::new(&cluster.addresses)]);
    let target = format!("http://{}", server.addr);
    let out = Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(["canary", "--target", &target, "--token", CHANNEL])
        .args([
            "--operations-token",
            OPERATIONS,
            "--members",
            "2",
            "--tag",
            "tb",
        ])
        .output()
        .expect("acme canary runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("2 of 2 members end to end"), "{said}");
    assert!(
        !dir.join("ledger").exists(),
        "an embedded ledger beside the cluster"
    );
    drop(server);

    let refused = Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data_dir("serve-tigerbeetle-refused"))
        .args(["--tigerbeetle", "127.0.0.1:1"])
        .output()
        .expect("acme serve runs");
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("TigerBeetle cluster 0 at 127.0.0.1:1"),
        "{why}"
    );
}
