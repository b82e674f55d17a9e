//! One simulated business day (plus its settlement) at scale: wall time and peak memory.
//!
//! `cargo run --release -p acme-bench --bin sim_day [-- MEMBERS DAYS SEED]`
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_bench::{peak_rss_bytes, timed};
use acme_sim::{run, SimConfig};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let members = args.first().copied().unwrap_or(100_000);
    let days = args.get(1).copied().unwrap_or(1) as u32;
    let seed = args.get(2).copied().unwrap_or(1);
    let (summary, secs) = timed(|| run(SimConfig::new(seed, days, members)));
    let result = serde_json::json!({
        "members": members,
        "days": days,
        "seed": seed,
        "wall_s": secs,
        "peak_rss_mib": peak_rss_bytes().map(|b| b / (1024 * 1024)),
        "events": summary.events,
        "transfers": summary.transfers,
        "accounts": summary.accounts,
        "violations": summary.violation_count,
        "trace_hash": summary.trace_hash,
    });
    println!("{result}");
    assert!(summary.ok(), "violations: {:?}", summary.violations);
}
