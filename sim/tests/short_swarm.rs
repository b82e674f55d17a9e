//! A few short seeds of the swarm, faults drawn per seed: the simulation CI's debug-build job
//! runs (`tools/test-all.sh`), so that every `debug_assert!` and overflow check of the ledger and
//! the processes meets crashes, duplicates and whole business days, not only unit tests. In the
//! release suite it is one more cheap run.

use acme_sim::{run, SimConfig};

/// Seeds, days and members: a few seconds in the debug build (the test profile is opt-level 2).
const SEEDS: u64 = 40;
const DAYS: u32 = 3;
const MEMBERS: u64 = 1_000;

#[test]
fn short_swarm_seeds_hold_every_invariant() {
    let mut trades = 0;
    for seed in 1..=SEEDS {
        let cfg = SimConfig::new(seed, DAYS, MEMBERS)
            .with_faults("swarm")
            .expect("the swarm plan");
        let summary = run(cfg);
        assert!(
            summary.ok(),
            "seed {seed}: {} violations, first: {:#?}\nreproduce: {}",
            summary.violation_count,
            summary.violations.first(),
            summary.reproduce()
        );
        trades += summary.external_trades;
    }
    // The runs traded: the checks met the whole buy cycle, not an idle world.
    assert!(trades > 0, "no external trade in {SEEDS} seeds");
}
