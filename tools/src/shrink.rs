//! `acme sim --shrink`: make a failing run as small as it can be while it still fails.
//!
//! Greedy, deterministic delta debugging over the run's knobs: fewer members (halving), fewer
//! days, and each kind of fault switched off, one at a time, keeping every step that still
//! fails, until no step does. The seed stays: it is what makes the failure reproducible.

use acme_faults::KINDS;
use acme_processes::calendar::Date;
use acme_sim::SimConfig;

/// A run's knobs.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub seed: u64,
    pub days: u32,
    pub members: u64,
    pub faults: String,
    pub without: Vec<String>,
    /// The first day (`None`: the simulator's default, Monday 5 January 2026).
    pub start: Option<Date>,
    /// The run's budget of events and of business days (`None`: the default for its size).
    pub budget_events: Option<u64>,
    pub budget_days: Option<u32>,
}

impl Knobs {
    pub fn config(&self) -> Result<SimConfig, String> {
        let mut cfg =
            SimConfig::new(self.seed, self.days, self.members).with_faults(&self.faults)?;
        if let Some(start) = self.start {
            cfg.start = start;
        }
        for kind in &self.without {
            cfg.faults = cfg.faults.without(kind)?;
            cfg.chaos_faults = cfg.faults.clone();
        }
        cfg.budget = budget(
            self.days,
            self.members,
            self.budget_events,
            self.budget_days,
        );
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn command(&self) -> String {
        let mut c = format!(
            "cargo run --release -- sim --seed {} --days {} --members {} --faults {}",
            self.seed, self.days, self.members, self.faults
        );
        if let Some(start) = self.start {
            c.push_str(&format!(" --start {start}"));
        }
        if !self.without.is_empty() {
            c.push_str(&format!(" --without {}", self.without.join(",")));
        }
        if let Some(events) = self.budget_events {
            c.push_str(&format!(" --budget-events {events}"));
        }
        if let Some(days) = self.budget_days {
            c.push_str(&format!(" --budget-days {days}"));
        }
        c
    }

    fn fails(&self) -> bool {
        let Ok(cfg) = self.config() else { return false };
        !std::panic::catch_unwind(|| acme_sim::run(cfg)).is_ok_and(|s| s.ok())
    }
}

/// The budget `--budget-events` and `--budget-days` give, the default for the run's size filling
/// in the one not given; `None` when neither is.
pub fn budget(
    days: u32,
    members: u64,
    events: Option<u64>,
    budget_days: Option<u32>,
) -> Option<acme_sim::budget::Budget> {
    if events.is_none() && budget_days.is_none() {
        return None;
    }
    let default = acme_sim::budget::Budget::for_run(days, members);
    Some(acme_sim::budget::Budget {
        events: events.unwrap_or(default.events),
        days: budget_days.unwrap_or(default.days),
    })
}

/// The smallest knobs that still fail, and the number of runs it took; `None` if `start` passes.
pub fn shrink(start: Knobs) -> Option<(Knobs, u32)> {
    let mut runs = 1;
    if !start.fails() {
        return None;
    }
    let mut best = start;
    loop {
        let mut candidates = Vec::new();
        if best.members > 1 {
            candidates.push(Knobs {
                members: best.members / 2,
                ..best.clone()
            });
        }
        if best.days > 1 {
            candidates.push(Knobs {
                days: best.days - 1,
                ..best.clone()
            });
        }
        if let Ok(cfg) = best.config() {
            for kind in KINDS {
                if cfg.faults.rate(kind).unwrap_or(0) > 0 {
                    let mut without = best.without.clone();
                    without.push(kind.to_string());
                    candidates.push(Knobs {
                        without,
                        ..best.clone()
                    });
                }
            }
        }
        let mut progressed = false;
        for c in candidates {
            runs += 1;
            if c.fails() {
                best = c;
                progressed = true;
                break;
            }
        }
        if !progressed {
            return Some((best, runs));
        }
    }
}
