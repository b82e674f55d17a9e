//! The swarm in CI: 200 seeds, each under its own drawn fault plan (message loss, duplication,
//! delay spikes, crashes, a silent, late or unreachable custodian, late and repeated jobs, and
//! storage faults, which put the run on the durable ledger on the simulated disk), must
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
    let mut coverage = acme_sim::coverage::Coverage::default();
    let mut storage = acme_sim::summary::StorageSummary::default();
    let (mut durable, mut halted) = (0, 0);
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
        coverage.merge(&s.coverage);
        for (k, n) in &s.faults_injected {
            *injected.entry(k.clone()).or_default() += n;
        }
        if let Some(st) = &s.storage {
            durable += 1;
            halted += u64::from(st.halted.is_some());
            storage.recoveries += st.recoveries;
            storage.torn_tails_cut += st.torn_tails_cut;
            storage.unacknowledged_kept += st.unacknowledged_kept;
            storage.unacknowledged_lost += st.unacknowledged_lost;
            storage.checkpoints += st.checkpoints;
        }
        if seed <= 20 {
            assert_eq!(
                run(swarm_config(seed)).trace_hash,
                s.trace_hash,
                "seed {seed} not deterministic"
            );
        }
    }
    // The swarm really exercised every kind of fault. (Messages a partition cut depend on the
    // traffic in its window, at night or in the morning: one seed in a few hundred has any.)
    for (kind, n) in &injected {
        assert!(
            *n > 0 || kind == "partition_drops",
            "no {kind} over 200 seeds: {injected:?}"
        );
    }
    // And every path: each instruction kind and outcome, crossing, partial fills, amendments,
    // rejections, each fault kind of the catalogue (opening pots open the sell side on day one).
    let missing = coverage.missing(&[]);
    assert!(
        missing.is_empty(),
        "never happened over 200 seeds: {missing:?}\n{}",
        coverage.human()
    );
    eprintln!("coverage over 200 seeds\n{}", coverage.human());
    // Storage faults put most seeds on the durable ledger: recoveries that kept and that lost
    // the record in flight, torn tails cut, checkpoints, and safe halts on corruption.
    eprintln!("{durable} seeds on the durable ledger, {halted} halted safely: {storage:?}");
    assert!(durable >= 100, "{durable} seeds on the durable ledger");
    assert!(halted > 0, "no safe halt over 200 seeds");
    assert!(
        storage.recoveries > 0 && storage.torn_tails_cut > 0,
        "{storage:?}"
    );
    assert!(
        storage.unacknowledged_kept > 0 && storage.unacknowledged_lost > 0,
        "{storage:?}"
    );
    assert!(storage.checkpoints > 0, "{storage:?}");
}
