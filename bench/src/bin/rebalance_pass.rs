//! One re-balancing pass over N members (default 5,000,000): time and peak memory.
//!
//! The pass is the pure planner the re-balancing process runs once it has read the pots: value
//! every pot at the closing prices, find those outside the drift band, propose switches.
//! Portfolios are synthetic and seeded: about a third on target, the rest drifted by varying
//! amounts, some busy.
//!
//! `cargo run --release -p acme-bench --bin rebalance_pass [-- MEMBERS]`
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_bench::{peak_rss_bytes, timed};
use acme_processes::money::Price;
use acme_processes::trading::rebalancing::{plan, ModelSet, Portfolio, MODEL_FUNDS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let members: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let set = ModelSet::V1;
    let prices = [
        Price(1_250_000),
        Price(2_500_000),
        Price(980_000),
        Price(3_100_000),
        Price(1_750_000),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let portfolios: Vec<Portfolio> = (0..members)
        .map(|m| {
            let profile = rng.random_range(0..3u8);
            let pot_pence: u64 = rng.random_range(1_000..10_000_000);
            let mut units = [0u64; MODEL_FUNDS];
            for (i, u) in units.iter_mut().enumerate() {
                // Target weight, moved by up to +-15 points, in units at the fund's price.
                let target = set.models[profile as usize].target_bp[i] as i64;
                let weight = (target + rng.random_range(-1_500..=1_500)).max(0) as u64;
                *u = (pot_pence as u128 * weight as u128 * 1_000_000 / prices[i].0 as u128) as u64;
            }
            Portfolio {
                member: m + 1,
                profile,
                units,
                busy: rng.random_range(0..10) == 0,
            }
        })
        .collect();
    let (proposals, secs) = timed(|| plan(&portfolios, &prices, &set));
    let drifted = proposals
        .iter()
        .map(|p| p.member)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let result = serde_json::json!({
        "members": members,
        "pass_s": secs,
        "members_per_s": (members as f64 / secs).round(),
        "members_rebalanced": drifted,
        "switches": proposals.len(),
        "peak_rss_mib": peak_rss_bytes().map(|b| b / (1024 * 1024)),
    });
    println!("{result}");
}
