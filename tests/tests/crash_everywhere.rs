//! A crash of any process at any point loses no accepted instruction and applies none twice.
//!
//! One seeded day (with its settlement): for every platform process and every effect boundary it
//! passes (before each effect, and after each ledger request whose answer is then lost), a run
//! that crashes that process exactly there, restarts it from its journal and outbox, and must
//! hold every invariant: the reference model's pots, every instruction terminal, the custodian's
//! books, the reconciliation.

use acme_processes::process::Service;
use acme_sim::{SimConfig, World};

const SEED: u64 = 5;
const MEMBERS: u64 = 200;

fn config() -> SimConfig {
    SimConfig::new(SEED, 2, MEMBERS)
}

#[test]
fn every_process_crashed_at_every_effect_boundary_of_a_day() {
    let mut world = World::new(config());
    let clean = world.run_to_end();
    assert!(
        clean.ok(),
        "the seed must be clean without crashes: {:?}",
        clean.violations.first()
    );
    let boundaries = world.boundaries().clone();
    let mut runs = 0;
    for service in Service::PLATFORM {
        let n = boundaries.get(&service).copied().unwrap_or(0);
        assert!(n > 0, "{service:?} passed no effect boundary");
        for k in 0..n {
            let mut cfg = config();
            cfg.crash_at = Some((service, k));
            let s = acme_sim::run(cfg);
            assert_eq!(s.crashes, 1, "{service:?} boundary {k}: crash not injected");
            assert!(
                s.ok(),
                "{service:?} crashed at boundary {k}: {} violations, first {:#?}",
                s.violation_count,
                s.violations.first()
            );
            // Nothing applied twice, nothing lost: the ledger ends exactly as without the crash.
            assert_eq!(
                s.ledger_digest, clean.ledger_digest,
                "{service:?} boundary {k}"
            );
            runs += 1;
        }
    }
    eprintln!("crashed {runs} times: {boundaries:?}");
    assert!(runs > 100, "only {runs} boundaries");
}
