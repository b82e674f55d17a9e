//! The world's own guards: a run that would never end is stopped and reported.

use super::*;

fn liveness_details(summary: &crate::Summary) -> Vec<String> {
    summary
        .violations
        .iter()
        .filter(|v| v.invariant == "liveness")
        .map(|v| v.detail.clone())
        .collect()
}

#[test]
fn events_after_the_last_day_a_run_may_last_stop_it_as_a_liveness_failure() {
    let mut world = World::new(SimConfig::new(1, 2, 50));
    // Something that keeps coming back after every trade should have settled (a message sent
    // again for ever, say): here one event the day after the last day a run may last.
    let after = world.end_day.next_day().at_minute(60);
    world.queue.push(after, Event::Restart(Service::Intake));
    let summary = world.run_to_end();
    let details = liveness_details(&summary);
    assert!(
        details.iter().any(|d| d.contains("events go on after")),
        "{details:?}"
    );
    assert!(world.now < after);
    // Stopped for good: nothing more happens on a later step.
    assert!(!world.step());
}

#[test]
fn time_standing_still_stops_the_run() {
    // A budget of events that does not stop it first (a small run's default would).
    let cfg = SimConfig::new(1, 2, 50);
    let budget = Budget {
        events: u64::MAX,
        ..cfg.budget()
    };
    let mut world = World::new(SimConfig {
        budget: Some(budget),
        ..cfg
    });
    let at = world.cfg.start.at_minute(60);
    for _ in 0..=EVENTS_AT_ONE_INSTANT_MAX + 1 {
        world.queue.push(at, Event::Restart(Service::Intake));
    }
    let summary = world.run_to_end();
    let details = liveness_details(&summary);
    assert!(
        details.iter().any(|d| d.contains("time stands still")),
        "{details:?}"
    );
    assert_eq!(world.now, at);
}

#[test]
fn a_run_past_its_budget_of_events_stops_there_naming_its_seed() {
    let cfg = SimConfig::new(6, 2, 100);
    let clean = World::new(cfg.clone()).run();
    assert!(clean.ok() && clean.events > 1_000, "{:?}", clean.violations);
    let budget = Budget {
        events: clean.events / 3,
        ..cfg.budget()
    };
    let mut world = World::new(SimConfig {
        budget: Some(budget),
        ..cfg
    });
    let summary = world.run_to_end();
    assert_eq!(
        summary.events, budget.events,
        "not one event past the budget"
    );
    assert_eq!(summary.exit_status(), 3, "{:?}", summary.violations);
    let details = liveness_details(&summary);
    assert!(
        details[0].starts_with(&format!("seed 6: the budget of {} events", budget.events)),
        "{details:?}"
    );
    assert!(!world.step());
}

#[test]
fn a_stopped_consumer_gets_what_the_broker_kept_once_it_is_back() {
    let cfg = SimConfig::new(4, 1, 100).with_faults("none").unwrap();
    let mut world = World::new(cfg);
    let mut parked_seen = 0;
    let mut crashed = false;
    while world.step() {
        if !crashed && world.stats.messages_sent > 50 {
            on_host!(world, Service::Intake, |host, _io| host.crash());
            let restart_at = world.now + 600 * 1_000_000_000;
            world
                .queue
                .push(restart_at, Event::Restart(Service::Intake));
            crashed = true;
        }
        let parked = world.bus.unacknowledged(Service::Intake);
        parked_seen = parked_seen.max(parked);
    }
    let summary = world.finish();
    assert!(crashed);
    assert!(parked_seen > 0, "nothing reached the stopped consumer");
    assert!(world.bus.is_empty());
    assert!(world.bus.acked() > 0);
    assert!(summary.ok(), "{:?}", summary.violations);
}

/// A host that crashes between a message's receipt and its commit has not acknowledged it: the
/// bus still holds its copy while the host is down and offers it again once it is back, and the
/// host's acknowledgement after the commit drops it (the run ends with nothing kept). A bus that
/// kept only what reached a host already down would hold nothing at the crash.
#[test]
fn a_message_taken_when_its_host_crashed_is_offered_again_after_the_restart() {
    let start = World::new(SimConfig::new(4, 1, 50))
        .boundaries
        .get(&Service::Intake)
        .copied();
    let first = start.unwrap_or(0);
    // Intake's first crash point inside a delivery (between receipt and commit) is the first
    // planned crash that leaves the message that crashed it kept.
    let found = (first..first + 64).find_map(|n| {
        let mut cfg = SimConfig::new(4, 1, 50).with_faults("none").unwrap();
        cfg.crash_at = Some((Service::Intake, n));
        let mut world = World::new(cfg);
        // Read in the very event that crashed it, before any later message finds it down.
        let mut kept_at_crash = None;
        while world.step() {
            if kept_at_crash.is_none() && world.stats.crashes > 0 {
                kept_at_crash = Some(world.bus.unacknowledged(Service::Intake));
            }
        }
        (kept_at_crash == Some(1)).then(|| (world.finish(), world.bus.is_empty()))
    });
    let (summary, emptied) = found.expect("no crash point between receipt and commit");
    assert!(
        summary.redeliveries >= 1,
        "the kept copy was not offered again"
    );
    assert!(emptied, "a copy outlived its acknowledgement");
    assert!(summary.ok(), "{:?}", summary.violations);
}

#[test]
fn a_day_that_ends_with_a_message_in_flight_skips_its_oracles_and_a_later_day_makes_them_up() {
    use acme_processes::messages::{instruction_id, Instruction, InstructionKind, Origin};
    let cfg = SimConfig::new(3, 2, 50).with_faults("none").unwrap();
    let mut world = World::new(cfg);
    let first = world.calendar.on_or_after(world.cfg.start);
    let down_at = world.calendar.london(first, 23 * 60);
    // A member's payment at 23:00, and intake down from then over the end of day (23:30).
    let payment = Instruction {
        id: instruction_id(1, 4_000),
        member: 1,
        kind: InstructionKind::Contribute { cash_pence: 12_345 },
        origin: Origin::Member,
    };
    world.queue.push(down_at, Event::MemberSend(payment));
    let mut crashed = false;
    while world.step() {
        if !crashed && world.now >= down_at {
            on_host!(world, Service::Intake, |host, _io| host.crash());
            let hour = 3600 * 1_000_000_000;
            world
                .queue
                .push(world.now + 2 * hour, Event::Restart(Service::Intake));
            crashed = true;
        }
    }
    let summary = world.finish();
    assert!(crashed);
    assert!(summary.oracle_days_skipped >= 1, "{summary:?}");
    assert!(summary.oracle_days_checked >= 1, "{summary:?}");
    assert!(summary.ok(), "{:?}", summary.violations);
}

#[test]
fn oracles_skipped_and_never_made_up_or_never_run_fail_the_run() {
    let mut days = crate::checker::OracleDays::default();
    assert!(days.verdict().is_some(), "never ran at all");
    days.ran();
    assert_eq!(days.verdict(), None);
    let d = Date::from_ymd(2026, 3, 27).expect("a date");
    days.skip(d);
    days.skip(d.next_day());
    let why = days.verdict().expect("skipped and not made up");
    assert!(
        why.contains("from 2026-03-27 on (2 days skipped, 1 checked)"),
        "{why}"
    );
    days.ran();
    assert_eq!(days.verdict(), None);
}
