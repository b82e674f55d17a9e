//! Where and when the day's network partition falls (if the fault plan draws one).
//!
//! At any hour: intake stamps an order's dealing date at receipt and aggregation waits for
//! intake, so a partition over the cut-off may hold an order or a trade up without changing the
//! date it deals on. Because that is what such a partition tests, and two random parties at a
//! random hour seldom meet it (a few hundred seeds would hold none), a third of partitions fall
//! between 90 minutes before and 30 minutes after the cut-off (London time) on the dealing path:
//! intake and aggregation, or aggregation and the custodian.

use crate::world::{Partition, World};
use acme_processes::calendar::{Date, NS_PER_MIN};
use acme_processes::process::Service;

const PARTIES: [Service; 6] = [
    Service::Intake,
    Service::Aggregation,
    Service::Pricing,
    Service::Settlement,
    Service::Rebalancing,
    Service::Custodian,
];

/// The pairs an order and its trade pass between on their way to the custodian.
const DEALING_PATH: [(Service, Service); 2] = [
    (Service::Intake, Service::Aggregation),
    (Service::Aggregation, Service::Custodian),
];

impl World {
    pub(crate) fn draw_partition(&mut self, date: Date) -> Partition {
        let rng = &mut self.fault_rng;
        let minutes = rng.between(5, self.cfg.faults.partition_max_min.max(5));
        if rng.below(3) == 0 {
            let (a, b) = DEALING_PATH[rng.below(DEALING_PATH.len() as u64) as usize];
            let cutoff = self.cfg.schedule.cutoff_min as u64;
            let start_min = rng.between(cutoff - 90, cutoff + 30) as u32;
            let from = self.calendar.london(date, start_min);
            let until = from + minutes * NS_PER_MIN;
            return Partition { a, b, from, until };
        }
        let a = PARTIES[rng.below(PARTIES.len() as u64) as usize];
        let b = loop {
            let b = PARTIES[rng.below(PARTIES.len() as u64) as usize];
            if b != a {
                break b;
            }
        };
        let start_min = rng.between(0, 24 * 60 - minutes.min(24 * 60 - 1)) as u32;
        let from = date.at_minute(start_min);
        Partition {
            a,
            b,
            from,
            until: from + minutes * NS_PER_MIN,
        }
    }
}
