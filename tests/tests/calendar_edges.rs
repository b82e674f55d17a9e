//! Runs that start where the calendar has edges: ten business days of member activity from
//! each of these dates, under the faults the swarm draws for the seed, hold every invariant,
//! finish every instruction, and deal on exactly the right days at the right hours:
//!
//! - 2028-02-24: across 29 February 2028 (a Tuesday, dealt) and a month end;
//! - 2026-03-26: the clocks go forward (29 March: the 16:00 cut-off moves from 16:00 to 15:00
//!   UTC), quarter end, Good Friday and Easter Monday (not dealt);
//! - 2026-10-22: the clocks go back (25 October: from 15:00 to 16:00 UTC), a month end;
//! - 2026-12-21: Christmas, Boxing Day's substitute (28 December), New Year (none dealt), year end.
//!
//! The platform's dates come from its holiday table and the IANA zone database; the world's
//! (custodian, market, scheduler, model) from its own rules, so a difference between them shows.
//! What was dealt is read off the trades the platform placed (`Summary::dealt`: the platform's
//! trade dates, and when the custodian took the first trade of each).

use acme_processes::calendar::Date;
use acme_sim::{run, SimConfig};
use std::collections::BTreeMap;

const CUTOFF_MIN: u32 = 16 * 60;

fn date(s: &str) -> Date {
    s.parse().expect("a date")
}

/// Runs 10 business days from `start` with the fault plan the swarm draws for `seed`, less
/// storage corruption (a corrupted acknowledged record halts the ledger safely and so ends the
/// run early: tested in `storage_faults`, not here); the summary.
fn ten_days_from(start: &str, seed: u64) -> acme_sim::Summary {
    let mut cfg = SimConfig::new(seed, 10, 300)
        .with_faults("swarm")
        .expect("swarm plan");
    cfg.faults = cfg.faults.without("storage-corruption").expect("a kind");
    cfg.chaos_faults = cfg.faults.clone();
    cfg.start = date(start);
    let s = run(cfg.clone());
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
    dealt_on_business_days_after_the_cut_off(&s, &cfg);
    s
}

/// Every business day of activity was dealt, nothing else was (the world's own calendar
/// decides), and no date's first trade reached the custodian before London's cut-off.
fn dealt_on_business_days_after_the_cut_off(s: &acme_sim::Summary, cfg: &SimConfig) {
    let cal = cfg.calendar();
    let first = cal.on_or_after(cfg.start);
    let last_activity = cal.add_business_days(first, cfg.days - 1);
    let dealt = dealt(s);
    let mut d = first;
    while d <= last_activity {
        assert_eq!(
            dealt.contains_key(&d),
            cal.is_business_day(d),
            "{d}: dealt {:?}, business day {}",
            dealt.get(&d),
            cal.is_business_day(d)
        );
        d = d.next_day();
    }
    for (&d, &minute) in &dealt {
        assert!(cal.is_business_day(d), "{d} dealt, not a business day");
        assert!(
            d.at_minute(0) + minute as u64 * 60_000_000_000 + 59_999_999_999
                >= cal.london(d, CUTOFF_MIN),
            "{d}: first trade at UTC minute {minute}, before the cut-off"
        );
    }
}

fn dealt(s: &acme_sim::Summary) -> BTreeMap<Date, u32> {
    s.dealt.iter().map(|(d, &m)| (date(d), m)).collect()
}

/// Dealt dates within `from..=to` whose first trade was placed before 16:00 UTC (so at the
/// cut-off of a summer day, 15:00 UTC, or soon after).
fn placed_before_four_utc(s: &acme_sim::Summary, from: &str, to: &str) -> Vec<Date> {
    dealt(s)
        .into_iter()
        .filter(|&(d, m)| date(from) <= d && d <= date(to) && m < CUTOFF_MIN)
        .map(|(d, _)| d)
        .collect()
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

/// Seeds per start date (each draws its own faults): more with `SOAK=1`.
fn seeds() -> std::ops::RangeInclusive<u64> {
    if std::env::var_os("SOAK").is_some() {
        1..=60
    } else {
        1..=6
    }
}

#[test]
fn leap_day_2028() {
    for seed in seeds() {
        let s = ten_days_from("2028-02-24", seed);
        spans(&s, &["2028-02-29", "2028-03-01"]);
        assert!(dealt(&s).contains_key(&date("2028-02-29")), "{:?}", s.dealt);
    }
}

#[test]
fn clocks_go_forward_and_easter_2026() {
    for seed in seeds() {
        let s = ten_days_from("2026-03-26", seed);
        spans(
            &s,
            &["2026-03-29", "2026-03-31", "2026-04-03", "2026-04-06"],
        );
        let dealt = dealt(&s);
        for holiday in ["2026-04-03", "2026-04-06"] {
            assert!(!dealt.contains_key(&date(holiday)), "{holiday}: {dealt:?}");
        }
        // Winter: the cut-off is 16:00 UTC, nothing is placed before it; summer: 15:00 UTC
        // (a late job or a partition may hold a day's trades past 16:00, not most days').
        let winter = placed_before_four_utc(&s, "2026-03-26", "2026-03-27");
        assert_eq!(winter, vec![], "seed {seed}");
        let summer = placed_before_four_utc(&s, "2026-03-30", "2026-04-10");
        assert!(summer.len() >= 4, "seed {seed}: {:?}", s.dealt);
    }
}

#[test]
fn clocks_go_back_2026() {
    let (mut summer, mut runs) = (0, 0);
    for seed in seeds() {
        let s = ten_days_from("2026-10-22", seed);
        spans(&s, &["2026-10-25", "2026-10-31"]);
        summer += placed_before_four_utc(&s, "2026-10-22", "2026-10-23").len();
        runs += 1;
        let winter = placed_before_four_utc(&s, "2026-10-26", "2026-11-30");
        assert_eq!(winter, vec![], "seed {seed}");
    }
    // Two summer days a run, most of them dealt at 15:00 UTC.
    assert!(
        summer > runs,
        "{summer} of {} summer days before 16:00 UTC",
        2 * runs
    );
}

#[test]
fn christmas_and_year_end_2026() {
    for seed in seeds() {
        let s = ten_days_from("2026-12-21", seed);
        spans(&s, &["2026-12-25", "2026-12-28", "2027-01-01"]);
        // Ten business days from Monday 21 December: the 25th, 28th and 1st are closed.
        assert_eq!(s.first_day, "2026-12-21");
        let dealt = dealt(&s);
        for holiday in ["2026-12-25", "2026-12-28", "2027-01-01"] {
            assert!(!dealt.contains_key(&date(holiday)), "{holiday}: {dealt:?}");
        }
        for open in ["2026-12-24", "2026-12-29", "2026-12-31", "2027-01-04"] {
            assert!(dealt.contains_key(&date(open)), "{open}: {dealt:?}");
        }
    }
}
