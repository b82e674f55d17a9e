//! Runs that start where the calendar has edges: ten business days of member activity from
//! each of these dates, under every fault at moderate rates, hold every invariant and finish
//! every instruction.
//!
//! - 2028-02-24: across 29 February 2028 and a month end;
//! - 2026-03-26: the clocks go forward (29 March), quarter end, Good Friday and Easter Monday;
//! - 2026-10-22: the clocks go back (25 October), a month end;
//! - 2026-12-21: Christmas, Boxing Day's substitute (28 December), New Year, year end.
//!
//! The platform's dates come from its holiday table and the IANA zone database; the world's
//! (custodian, market, scheduler, model) from its own rules, so a difference between them shows.

use acme_processes::calendar::Date;
use acme_sim::{run, SimConfig};

fn date(s: &str) -> Date {
    s.parse().expect("a date")
}

/// Runs 10 business days from `start` with the `default` fault plan, less storage corruption
/// (a corrupted acknowledged record halts the ledger safely and so ends the run early: tested
/// in `storage_faults`, not here); the summary.
fn ten_days_from(start: &str, seed: u64) -> acme_sim::Summary {
    let mut cfg = SimConfig::new(seed, 10, 400)
        .with_faults("default")
        .expect("default plan");
    cfg.faults = cfg.faults.without("storage-corruption").expect("a kind");
    cfg.chaos_faults = cfg.faults.clone();
    cfg.start = date(start);
    let s = run(cfg);
    assert!(
        s.ok(),
        "start {start}, seed {seed}: {} violations, first: {:#?}\nreproduce: {}",
        s.violation_count,
        s.violations.first(),
        s.reproduce()
    );
    for (state, n) in &s.instructions_by_state {
        let terminal = matches!(state.as_str(), "settled" | "completed" | "rejected");
        assert!(
            terminal || *n == 0,
            "start {start}, seed {seed}: {n} ended {state}"
        );
    }
    s
}

fn spans(s: &acme_sim::Summary, edges: &[&str]) {
    for edge in edges {
        let (first, last) = (date(&s.first_day), date(&s.last_day));
        assert!(
            first <= date(edge) && date(edge) <= last,
            "{edge} not within {first}..{last}"
        );
    }
}

#[test]
fn leap_day_2028() {
    for seed in 1..=2 {
        let s = ten_days_from("2028-02-24", seed);
        spans(&s, &["2028-02-29", "2028-03-01"]);
    }
}

#[test]
fn clocks_go_forward_and_easter_2026() {
    for seed in 1..=2 {
        let s = ten_days_from("2026-03-26", seed);
        spans(
            &s,
            &["2026-03-29", "2026-03-31", "2026-04-03", "2026-04-06"],
        );
    }
}

#[test]
fn clocks_go_back_2026() {
    for seed in 1..=2 {
        let s = ten_days_from("2026-10-22", seed);
        spans(&s, &["2026-10-25", "2026-10-31"]);
    }
}

#[test]
fn christmas_and_year_end_2026() {
    for seed in 1..=2 {
        let s = ten_days_from("2026-12-21", seed);
        spans(&s, &["2026-12-25", "2026-12-28", "2027-01-01"]);
        // Ten business days from Monday 21 December: the 25th, 28th and 1st are closed.
        assert_eq!(s.first_day, "2026-12-21");
    }
}
