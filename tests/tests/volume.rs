//! A fund's day larger than one ledger batch, end to end.
//!
//! With a few hundred orders per fund per day, everything the platform does for one trade fits
//! one ledger batch and one query page, and the code that carries on to the next batch or page
//! would never run outside the benchmarks. Here enough members trade that one fund gets more
//! orders on one day than a batch holds (`BATCH_EVENTS_MAX`), and the run's own figures, taken
//! from the ledger requests it saw, must show that pricing booked that trade in several batches,
//! settlement read it back over several pages, and re-balancing read the pots over several
//! pages, with every invariant held and every member's pot equal to the reference model's.

use acme_ledger::{BATCH_EVENTS_MAX, QUERY_RESULTS_MAX};
use acme_sim::{run, SimConfig};

/// Members enough for one fund's day past a batch (and pots past a query page).
const MEMBERS: u64 = 120_000;
/// Days of member activity: investments grow as contributions arrive, and the pots re-balanced
/// after the first settlements add their switches.
const DAYS: u32 = 5;

#[test]
fn a_fund_day_past_one_batch_is_booked_settled_and_rebalanced_in_pages() {
    assert!(MEMBERS > QUERY_RESULTS_MAX as u64);
    let s = run(SimConfig::new(1, DAYS, MEMBERS));
    let p = s.paging;
    eprintln!("{p:?}");
    assert!(
        s.ok(),
        "{} violations, first: {:#?}\nreproduce: {}",
        s.violation_count,
        s.violations.first(),
        s.reproduce()
    );
    for (state, n) in &s.instructions_by_state {
        let terminal = matches!(state.as_str(), "settled" | "completed" | "rejected");
        assert!(terminal || *n == 0, "{n} instructions ended {state}");
    }
    assert!(
        p.orders_per_trade_max > BATCH_EVENTS_MAX as u64,
        "the largest trade had {} orders: {p:?}",
        p.orders_per_trade_max
    );
    assert!(p.booking_batches_max >= 2, "{p:?}");
    assert!(p.settlement_pages_max >= 2, "{p:?}");
    assert!(p.rebalancing_pages_max >= 2, "{p:?}");
}
