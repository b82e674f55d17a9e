//! The dealing point under faults: an order received before the cut-off deals that day however
//! late its messages arrive, and the custodian prices a trade placed late at its date's close.

use super::*;

/// Runs seed `seed` with one partition between `a` and `b` on the first day, from `from_min`
/// to `until_min` London time (faults otherwise off).
fn partitioned(seed: u64, a: Service, b: Service, from_min: u32, until_min: u32) -> Summary {
    let cfg = SimConfig {
        start: "2026-06-01".parse().unwrap(), // summer time: London is UTC+1
        ..SimConfig::new(seed, 2, 300)
    };
    let mut world = World::new(cfg);
    // The second day: members trade from what they held at its start (the first day funds
    // the pots). Its start clears the day before's partition; this one is set just after.
    let day = second_day(&mut world);
    world.partition = Some(Partition {
        a,
        b,
        from: world.calendar.london(day, from_min),
        until: world.calendar.london(day, until_min),
    });
    world.run_to_end()
}

/// Steps `world` to the start of its second business day; that day.
fn second_day(world: &mut World) -> Date {
    let first = world.calendar.on_or_after(world.cfg.start);
    let second = world.calendar.add_business_days(first, 1);
    while world.last_day != second {
        assert!(world.step());
    }
    second
}

#[test]
fn orders_held_up_past_the_cut_off_deal_on_their_date() {
    // Intake's reservations go through; its orders, and its answer to the cut-off, wait at
    // the partition until 18:30, long after the cut-off (16:00) and the valuation point (17:00).
    let s = partitioned(
        5,
        Service::Intake,
        Service::Aggregation,
        14 * 60,
        18 * 60 + 30,
    );
    assert!(s.ok(), "{:?}", s.violations);
    assert!(
        s.trades.get("placed_late").copied().unwrap_or(0) > 0,
        "{:?}",
        s.trades
    );
}

#[test]
fn a_trade_held_up_past_the_valuation_point_is_priced_at_its_close() {
    let s = partitioned(
        6,
        Service::Aggregation,
        Service::Custodian,
        15 * 60 + 50,
        19 * 60,
    );
    assert!(s.ok(), "{:?}", s.violations);
    assert!(
        s.trades.get("placed_late").copied().unwrap_or(0) > 0,
        "{:?}",
        s.trades
    );
}

#[test]
fn intake_down_over_the_cut_off_holds_the_date_open() {
    // Intake crashes at 15:00 and is back at 20:00: the cut-off waits for it.
    let cfg = SimConfig {
        start: "2026-10-22".parse().unwrap(), // to the Friday before the clocks go back
        ..SimConfig::new(8, 2, 300)
    };
    let mut world = World::new(cfg);
    let first = second_day(&mut world);
    let crash_at = world.calendar.london(first, 15 * 60);
    while world.now < crash_at && world.step() {}
    on_host!(world, Service::Intake, |host, _io| host.crash());
    let back = world.calendar.london(first, 20 * 60);
    world.queue.push(back, Event::Restart(Service::Intake));
    let s = world.run_to_end();
    assert!(s.ok(), "{:?}", s.violations);
}
