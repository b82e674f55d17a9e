//! Every planted bug is caught by the swarm, within 500 seeds.
//!
//! For each bug of the catalogue (`acme_processes::plant`), swarm seeds run from 1 until one
//! reports a violation (or panics on an assertion); the number of seeds it took is printed as a
//! table (copied into `bench/RESULTS.md`). A bug the swarm does not catch is a gap in the
//! checkers.

use acme_processes::plant::{self, Bug};
use acme_sim::{run, SimConfig};

const SEEDS_MAX: u64 = 500;

fn caught(seed: u64) -> Option<String> {
    let mut cfg = SimConfig::new(seed, 3, 800)
        .with_faults("swarm")
        .expect("swarm plan");
    // As `acme swarm` does: each seed draws its start date in 2026-2030.
    cfg.start = acme_sim::calendar::drawn_start(seed, 3);
    match std::panic::catch_unwind(|| run(cfg)) {
        Ok(s) if s.ok() => None,
        Ok(s) => Some(
            s.violations
                .first()
                .map(|v| v.invariant.clone())
                .unwrap_or_default(),
        ),
        Err(_) => Some("assertion".to_string()),
    }
}

#[test]
fn the_swarm_catches_every_planted_bug() {
    // Panics of planted runs are expected; keep their messages out of the test output.
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut table = Vec::new();
    for bug in Bug::ALL {
        plant::plant(Some(bug));
        let found = (1..=SEEDS_MAX).find_map(|seed| caught(seed).map(|inv| (seed, inv)));
        plant::plant(None);
        table.push((bug, found));
    }
    std::panic::set_hook(quiet);
    println!("| planted bug | seeds to catch | first violated invariant |");
    println!("|---|---|---|");
    for (bug, found) in &table {
        match found {
            Some((seed, inv)) => println!("| `{}` | {seed} | {inv} |", bug.name()),
            None => println!("| `{}` | not caught in {SEEDS_MAX} | |", bug.name()),
        }
    }
    let missed: Vec<&str> = table
        .iter()
        .filter(|(_, f)| f.is_none())
        .map(|(b, _)| b.name())
        .collect();
    assert!(
        missed.is_empty(),
        "not caught within {SEEDS_MAX} seeds: {missed:?}"
    );
    // And with nothing planted, the same seeds are clean (the checkers do not cry wolf).
    for seed in 1..=20 {
        assert_eq!(caught(seed), None, "seed {seed} fails with no bug planted");
    }
}

/// A process that chases for ever (the planted `endless-chase`: pricing keeps chasing trades
/// the custodian has answered) ends as a liveness failure within the run's budget, naming its
/// seed: exit 3, not a hang. The budget of days stops it by default; a budget of events between
/// what the clean run spends and what the chase spends stops it there, and the clean run passes.
#[test]
fn an_endless_chase_ends_in_a_liveness_failure_within_the_budget() {
    let config = || SimConfig::new(4, 2, 300);
    let clean = run(config());
    assert!(clean.ok(), "{:?}", clean.violations.first());
    plant::plant(Some(Bug::EndlessChase));
    let chased = run(config());
    plant::plant(None);
    let budget = config().budget();
    assert_eq!(chased.exit_status(), 3, "{:#?}", chased.violations.first());
    let liveness = chased
        .violations
        .iter()
        .find(|v| v.invariant == "liveness")
        .expect("a liveness failure");
    assert!(liveness.detail.contains("seed 4"), "{liveness:?}");
    assert!(chased.events <= budget.events);
    assert!(chased.events > clean.events, "the chase went on");

    let between = acme_sim::budget::Budget {
        events: (clean.events + chased.events) / 2,
        ..budget
    };
    let bounded = || SimConfig {
        budget: Some(between),
        ..config()
    };
    assert!(run(bounded()).ok(), "the clean run fits the budget");
    plant::plant(Some(Bug::EndlessChase));
    let stopped = run(bounded());
    plant::plant(None);
    assert_eq!(
        stopped.exit_status(),
        3,
        "{:#?}",
        stopped.violations.first()
    );
    assert_eq!(
        stopped.events, between.events,
        "stopped at the budget, not after"
    );
    let detail = &stopped.violations[0].detail;
    assert!(
        detail.contains(&format!("seed 4: the budget of {} events", between.events)),
        "{detail}"
    );
}
