//! The swarm in CI: 200 seeds, each under its own drawn fault plan (message loss, duplication,
//! delay spikes, crashes, a silent, late or unreachable custodian, late and repeated jobs), must
//! hold every safety invariant and finish everything in the liveness phase. The first 20 seeds
//! are run twice to check that faults do not cost determinism. `acme swarm --seeds 1..1000`
//! runs the long version over all cores.

use acme_sim::{run, SimConfig};

fn swarm_config(seed: u64) -> SimConfig {
    SimConfig::new(seed, 3, 1_500)
        .with_faults("swarm")
        .expect("swarm plan")
}

#[test]
fn two_hundred_swarm_seeds_hold_every_invariant() {
    let mut injected: std::collections::BTreeMap<String, u64> = Default::default();
    for seed in 1..=200 {
        let s = run(swarm_config(seed));
        assert!(
            s.ok(),
            "seed {seed} ({}): {} violations, first {:#?}\nreproduce: {}",
            s.fault_plan.join("; "),
            s.violation_count,
            s.violations.first(),
            s.reproduce()
        );
        for (k, n) in &s.faults_injected {
            *injected.entry(k.clone()).or_default() += n;
        }
        if seed <= 20 {
            assert_eq!(
                run(swarm_config(seed)).trace_hash,
                s.trace_hash,
                "seed {seed} not deterministic"
            );
        }
    }
    // The swarm really exercised every kind of fault.
    for (kind, n) in &injected {
        assert!(*n > 0, "no {kind} over 200 seeds: {injected:?}");
    }
}
