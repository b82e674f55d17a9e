//! Determinism is a tested property: same seed, same trace hash; different seeds, different.

use acme_sim::{run, SimConfig};
use std::collections::BTreeSet;

#[test]
fn same_seed_same_trace_and_different_seeds_differ() {
    let mut hashes = BTreeSet::new();
    for seed in 1..=20 {
        let a = run(SimConfig::new(seed, 2, 300));
        let b = run(SimConfig::new(seed, 2, 300));
        assert!(
            a.ok() && b.ok(),
            "seed {seed} has violations: {:?}",
            a.violations
        );
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "seed {seed} is not deterministic"
        );
        assert_eq!(
            a.ledger_digest, b.ledger_digest,
            "seed {seed}: ledgers differ"
        );
        assert_eq!(a.events, b.events);
        hashes.insert(a.trace_hash);
    }
    assert_eq!(
        hashes.len(),
        20,
        "20 seeds gave only {} distinct trace hashes",
        hashes.len()
    );
}

#[test]
fn storage_faults_cost_no_determinism() {
    for seed in 1..=3 {
        let cfg = || SimConfig::new(seed, 2, 300).with_faults("default").unwrap();
        let (a, b) = (run(cfg()), run(cfg()));
        assert!(a.ok(), "seed {seed}: {:?}", a.violations.first());
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "seed {seed} is not deterministic"
        );
        assert_eq!(
            a.ledger_digest, b.ledger_digest,
            "seed {seed}: ledgers differ"
        );
        assert_eq!(a.storage, b.storage, "seed {seed}: the disks differ");
        let storage = a.storage.expect("a durable run");
        assert!(storage.disk.crashes > 0, "seed {seed}: no power loss");
    }
}
