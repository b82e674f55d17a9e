//! Every planted bug is caught by the swarm, within 500 seeds.
//!
//! For each bug of the catalogue (`acme_processes::plant`), swarm seeds run from 1 until one
//! reports a violation (or panics on an assertion); the number of seeds it took is printed as a
//! table (copied into `bench/RESULTS.md`). A bug the swarm does not catch is a gap in the
//! checkers. The bugs that fire only past one ledger batch or query page (8,189 orders, lines
//! or pots) cannot fire in the swarm's 800 members: runs of the volume test's size catch them.

use acme_processes::plant::{self, Bug};
use acme_sim::{run, SimConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const SEEDS_MAX: u64 = 500;

/// Bugs that fire only past 8,189 of something, with the members a run needs for that.
const AT_VOLUME: [(Bug, u64, u32); 3] = [
    // More pots than one page of the re-balancing scan, and days enough for pots to drift out
    // of band beyond it.
    (Bug::RebalancingFirstPageOnly, 10_000, 4),
    // A fund's day past one batch of orders, a trade past one page of lines: as in
    // `tests/volume.rs` (about 35 s each, so only under SOAK=1).
    (Bug::BatchBoundaryDropped, 120_000, 5),
    (Bug::SettlementFirstPageOnly, 120_000, 5),
];

fn swarm_config(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::new(seed, 3, 800)
        .with_faults("swarm")
        .expect("swarm plan");
    // As `acme swarm` does: each seed draws its start date in 2026-2030.
    cfg.start = acme_sim::calendar::drawn_start(seed, 3);
    cfg
}

fn caught(seed: u64) -> Option<String> {
    caught_in(swarm_config(seed))
}

/// The first violated invariant of a run, or `assertion` if it panicked.
fn caught_in(cfg: SimConfig) -> Option<String> {
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

/// The first seed in `1..=SEEDS_MAX` whose swarm run catches `bug`, with its first violated
/// invariant. `threads` threads take seeds in order (the switch is per thread, so each plants
/// the bug itself), and stop once every seed below the earliest catch is done.
fn first_catch(
    bug: Bug,
    threads: usize,
    config: impl Fn(u64) -> SimConfig + Sync,
) -> Option<(u64, String)> {
    let next = AtomicU64::new(1);
    let best: Mutex<Option<(u64, String)>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                plant::plant(Some(bug));
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    let beaten = best.lock().unwrap().as_ref().is_some_and(|b| b.0 < seed);
                    if seed > SEEDS_MAX || beaten {
                        break;
                    }
                    if let Some(inv) = caught_in(config(seed)) {
                        let mut b = best.lock().unwrap();
                        if b.as_ref().is_none_or(|b| seed < b.0) {
                            *b = Some((seed, inv));
                        }
                    }
                }
                plant::plant(None);
            });
        }
    });
    best.into_inner().unwrap()
}

fn quietly<T>(f: impl FnOnce() -> T) -> T {
    // Panics of planted runs are expected; keep their messages out of the test output.
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = f();
    std::panic::set_hook(quiet);
    out
}

fn print_and_assert(table: &[(Bug, Option<(u64, String)>)]) {
    println!("| planted bug | seeds to catch | first violated invariant |");
    println!("|---|---|---|");
    for (bug, found) in table {
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
}

fn at_volume(bug: Bug) -> Option<(u64, u32)> {
    AT_VOLUME
        .iter()
        .find(|(b, _, _)| *b == bug)
        .map(|&(_, members, days)| (members, days))
}

#[test]
fn the_swarm_catches_every_planted_bug() {
    let table: Vec<_> = quietly(|| {
        Bug::ALL
            .into_iter()
            .filter(|&b| at_volume(b).is_none())
            .map(|bug| (bug, first_catch(bug, 2, swarm_config)))
            .collect()
    });
    print_and_assert(&table);
    // And with nothing planted, the same seeds are clean (the checkers do not cry wolf).
    for seed in 1..=20 {
        assert_eq!(caught(seed), None, "seed {seed} fails with no bug planted");
    }
}

/// A bug that fires only past one page or batch, caught by runs big enough for it (no faults,
/// as in `tests/volume.rs`; the start date drawn per seed as the swarm does).
fn volume_catch(bug: Bug) -> (Bug, Option<(u64, String)>) {
    let (members, days) = at_volume(bug).expect("a volume bug");
    let config = |seed| {
        let mut cfg = SimConfig::new(seed, days, members);
        cfg.start = acme_sim::calendar::drawn_start(seed, days);
        cfg
    };
    let clean = caught_in(config(1));
    assert_eq!(
        clean, None,
        "seed 1 at {members} members fails with no bug planted"
    );
    // One thread: a run of 120,000 members is large enough alone.
    let threads = if members > 20_000 { 1 } else { 2 };
    (bug, quietly(|| first_catch(bug, threads, config)))
}

#[test]
fn more_pots_than_a_page_catch_a_rebalancing_scan_of_one_page() {
    print_and_assert(&[volume_catch(Bug::RebalancingFirstPageOnly)]);
}

/// Past 8,189 orders of a fund's day and 8,189 lines of a trade: runs of the volume test's size
/// (SOAK=1).
#[test]
#[ignore]
fn volume_runs_catch_the_bugs_past_a_batch_or_a_page() {
    let table: Vec<_> = [Bug::BatchBoundaryDropped, Bug::SettlementFirstPageOnly]
        .into_iter()
        .map(volume_catch)
        .collect();
    print_and_assert(&table);
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
