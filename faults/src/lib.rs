//! The fault catalogue: what can go wrong in the simulated world, and at what rate, for one seed.
//!
//! A [`FaultPlan`] is data, drawn from the seed (or chosen on the command line), and consulted by
//! the simulator's bus, hosts and custodian. Rates are integers in parts per million so that no
//! float ever decides an outcome. This first version carries message delay, loss and duplication;
//! crashes, partitions and custodian faults join the catalogue as the simulator grows.

use serde::{Deserialize, Serialize};

/// Parts per million.
pub type Ppm = u32;
pub const PPM: Ppm = 1_000_000;

/// The faults of one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Shortest delivery delay of a message, milliseconds.
    pub delay_min_ms: u64,
    /// Longest delivery delay of a message, milliseconds.
    pub delay_max_ms: u64,
    /// Chance that a message is lost on the way.
    pub loss_ppm: Ppm,
    /// Chance that a message is delivered twice.
    pub duplicate_ppm: Ppm,
    /// Chance that a platform process crashes at an effect boundary (before each effect it
    /// carries out), losing everything it held in memory.
    pub crash_ppm: Ppm,
    /// How long a crashed process stays down, milliseconds.
    pub restart_delay_ms: u64,
}

impl FaultPlan {
    /// Reliable delivery with small seeded delays: the baseline of the foundation simulation.
    pub fn none() -> FaultPlan {
        FaultPlan {
            delay_min_ms: 1,
            delay_max_ms: 2_000,
            loss_ppm: 0,
            duplicate_ppm: 0,
            crash_ppm: 0,
            restart_delay_ms: 1_000,
        }
    }

    /// Duplicated messages and process crashes at effect boundaries, at the given rates; no
    /// loss (lost messages need the chasing that a later fault plan brings).
    pub fn crashes_and_duplicates(crash_ppm: Ppm, duplicate_ppm: Ppm) -> FaultPlan {
        FaultPlan {
            crash_ppm,
            duplicate_ppm,
            ..FaultPlan::none()
        }
    }

    /// Checks the plan's own limits; an error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.delay_min_ms > self.delay_max_ms {
            return Err("delay_min_ms: greater than delay_max_ms".into());
        }
        if self.delay_max_ms > 60 * 60 * 1000 {
            return Err("delay_max_ms: more than one hour".into());
        }
        if self.restart_delay_ms > 60 * 60 * 1000 {
            return Err("restart_delay_ms: more than one hour".into());
        }
        for (name, rate) in [
            ("loss_ppm", self.loss_ppm),
            ("duplicate_ppm", self.duplicate_ppm),
            ("crash_ppm", self.crash_ppm),
        ] {
            if rate > PPM {
                return Err(format!("{name}: {rate} is more than {PPM}"));
            }
        }
        Ok(())
    }
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_validated() {
        assert!(FaultPlan::none().validate().is_ok());
        let bad = FaultPlan {
            loss_ppm: PPM + 1,
            ..FaultPlan::none()
        };
        assert!(bad.validate().unwrap_err().starts_with("loss_ppm"));
        let bad = FaultPlan {
            delay_min_ms: 5,
            delay_max_ms: 1,
            ..FaultPlan::none()
        };
        assert!(bad.validate().unwrap_err().starts_with("delay_min_ms"));
    }
}
