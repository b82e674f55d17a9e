//! Each run's budget: the events it may process and the business days it may simulate. A run
//! past either is stopped as a liveness failure that names its seed, never left to run: the
//! swarm runs seeds by the thousand, and one that chases for ever would hold up all of them.
//!
//! The defaults are derived from the run's size, generously: a clean or faulty run of any seed
//! stays well inside them, so only a run that would not end meets them.

use crate::World;

/// Business days a run may go on after its last day of activity (the liveness phase), by
/// default: every trade accepted must have settled by then.
pub const DRAIN_DAYS_DEFAULT: u32 = crate::world::DRAIN_BUSINESS_DAYS_MAX;

/// Events allowed per member per simulated business day of the default budget. A faulty day
/// of activity costs some 10 to 15 per member (messages, acknowledgements, retransmissions,
/// ledger calls, timers, restarts) and the days after it little: a faulty run spends 2 to 3 per
/// member per budgeted day. This is some twenty times that.
pub const EVENTS_PER_MEMBER_DAY: u64 = 50;

/// Events every run may have whatever its size (the fixed work of each day: jobs, the
/// custodian, chases, the processes' timers).
pub const EVENTS_FLOOR: u64 = 200_000;

/// What one run may spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Budget {
    /// Events in all (each message delivery, timer, ledger call and answer, job is one).
    pub events: u64,
    /// Business days simulated in all, from the first (the days of activity included).
    pub days: u32,
}

impl Budget {
    /// The default budget of a run of `days` days of activity with `members` members.
    pub fn for_run(days: u32, members: u64) -> Budget {
        let days = days.saturating_add(DRAIN_DAYS_DEFAULT);
        let events = EVENTS_PER_MEMBER_DAY
            .saturating_mul(members)
            .saturating_mul(days as u64)
            .saturating_add(EVENTS_FLOOR);
        Budget { events, days }
    }

    /// Whether a run of `days` days of activity fits: it needs its active days and at least
    /// one more, for the last day's trades to be valued and chased.
    pub fn validate(&self, days: u32) -> Result<(), String> {
        if self.days <= days {
            return Err(format!(
                "budget: {} days do not cover {days} days of activity and the days after",
                self.days
            ));
        }
        if self.events == 0 {
            return Err("budget: 0 events".to_string());
        }
        Ok(())
    }
}

impl World {
    /// Why the run must stop before its next event because it spent its budget of events, if
    /// it did (the budget of days is the last day of the run, `end_day`).
    pub(crate) fn over_event_budget(&self) -> Option<String> {
        let budget = self.cfg.budget();
        (self.stats.events >= budget.events).then(|| {
            format!(
                "seed {}: the budget of {} events is spent on {}, before the end of its {} \
                 business days ({}): the run would not end",
                self.cfg.seed,
                budget.events,
                self.today(),
                budget.days,
                self.end_day
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_grows_with_the_run_and_covers_the_drain() {
        let small = Budget::for_run(1, 1);
        assert_eq!(small.days, 1 + DRAIN_DAYS_DEFAULT);
        assert!(small.events >= EVENTS_FLOOR);
        let big = Budget::for_run(5, 2_000);
        assert!(big.events > small.events && big.days > small.days);
        assert_eq!(Budget::for_run(u32::MAX, u64::MAX).events, u64::MAX);
        assert!(big.validate(5).is_ok());
        assert!(Budget { days: 5, ..big }.validate(5).is_err());
        assert!(Budget { events: 0, ..big }.validate(5).is_err());
    }
}
