//! Export of a simulated day for operations (`acme sim --export DIR`) and the simulator's
//! end-of-day reconciliation. (Being written.)

use crate::checker::Violation;
use crate::World;
use acme_processes::calendar::Date;

/// The end-of-day reconciliation of the simulated world against the simulated custodian's and
/// bank's statements, through the same engine `acme recon` uses.
pub(crate) fn end_of_day_recon(_world: &World, _date: Date) -> Vec<Violation> {
    Vec::new()
}
