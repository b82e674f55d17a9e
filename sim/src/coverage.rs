//! What a run exercised, counted so that it can be checked: each instruction kind taken and the
//! path it ended on, what the custodian did to the trades (crossing, partial fills, amendments,
//! rejections, late settlements) and each kind of fault injected.
//!
//! One seed cannot be expected to meet everything; a swarm can. `acme swarm` sums the coverage
//! of its seeds and fails, naming them, when any of [`required`] stayed at zero: a path the
//! faults never meet is a path the swarm does not test, however many seeds pass.

use crate::World;
use acme_processes::messages::{InstructionKind, InstructionState, Origin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Counts by key: `instruction.KIND`, `outcome.KIND.STATE`, `trade.WHAT`, `fault.KIND` (the
/// fault kinds of `acme_faults::KINDS`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Coverage(pub BTreeMap<String, u64>);

/// Instruction kinds, as the summary names them (`rebalance`: a switch re-balancing made).
pub const INSTRUCTION_KINDS: [&str; 6] = [
    "onboard",
    "contribute",
    "invest",
    "sell",
    "switch",
    "rebalance",
];

/// The paths an instruction of each kind must sometimes end on: a trade settled or rejected
/// (members overreach on purpose; the custodian rejects trades, and fills some so little that an
/// order gets nothing), the rest completed.
pub const OUTCOMES: [(&str, &str); 9] = [
    ("onboard", "completed"),
    ("contribute", "completed"),
    ("invest", "settled"),
    ("invest", "rejected"),
    ("sell", "settled"),
    ("sell", "rejected"),
    ("switch", "settled"),
    ("switch", "rejected"),
    ("rebalance", "settled"),
];

/// What the custodian must sometimes do to a trade (or the members to an order).
pub const TRADE_PATHS: [&str; 6] = [
    "crossed",
    "partial",
    "amended",
    "rejected",
    "late_settlement",
    "partially_filled_orders",
];

/// Every key that should sometimes be non-zero over a swarm.
pub fn required() -> Vec<String> {
    let mut out: Vec<String> = INSTRUCTION_KINDS
        .iter()
        .map(|k| format!("instruction.{k}"))
        .collect();
    out.extend(OUTCOMES.iter().map(|(k, s)| format!("outcome.{k}.{s}")));
    out.extend(TRADE_PATHS.iter().map(|p| format!("trade.{p}")));
    out.extend(acme_faults::KINDS.iter().map(|k| format!("fault.{k}")));
    out
}

/// The summary's name of an instruction's kind.
pub fn kind_name(kind: &InstructionKind, origin: Origin) -> &'static str {
    match (kind, origin) {
        (_, Origin::Rebalancing) => "rebalance",
        (InstructionKind::Onboard { .. }, _) => "onboard",
        (InstructionKind::Contribute { .. }, _) => "contribute",
        (InstructionKind::Invest { .. }, _) => "invest",
        (InstructionKind::Sell { .. }, _) => "sell",
        (InstructionKind::Switch { .. }, _) => "switch",
    }
}

impl Coverage {
    pub fn add(&mut self, key: &str, n: u64) {
        *self.0.entry(key.to_string()).or_default() += n;
    }

    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }

    /// Adds another run's counts (a swarm's sum).
    pub fn merge(&mut self, other: &Coverage) {
        for (k, n) in &other.0 {
            self.add(k, *n);
        }
    }

    /// The required keys still at zero, less those `allowed` (keys, or prefixes ending at a
    /// dot boundary such as `fault` or `outcome.switch`; `all` allows everything).
    pub fn missing(&self, allowed: &[String]) -> Vec<String> {
        let allows = |key: &str| {
            allowed.iter().any(|a| {
                a == "all"
                    || key == a
                    || key
                        .strip_prefix(a.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            })
        };
        required()
            .into_iter()
            .filter(|k| self.get(k) == 0 && !allows(k))
            .collect()
    }

    /// One line per group (instructions, outcomes, trades, faults), `key n` each.
    pub fn human(&self) -> String {
        let mut s = String::new();
        for (group, title) in [
            ("instruction", "instructions"),
            ("outcome", "outcomes"),
            ("trade", "trades"),
            ("fault", "faults"),
        ] {
            let items: Vec<String> = self
                .0
                .iter()
                .filter_map(|(k, n)| {
                    let rest = k.strip_prefix(group)?.strip_prefix('.')?;
                    Some(format!("{rest} {n}"))
                })
                .collect();
            let _ = writeln!(s, "  {title:<13}{}", items.join(", "));
        }
        s
    }
}

/// The count of a fault kind of `acme_faults::KINDS` that a run injected (`None`: a kind this
/// function does not know, which the tests catch).
fn injected(world: &World, kind: &str) -> Option<u64> {
    let st = &world.stats;
    let storage = world.ledger.inner.storage_summary();
    let disk = storage.map(|s| s.disk).unwrap_or_default();
    Some(match kind {
        "loss" => st.messages_lost,
        "duplicate" => st.messages_duplicated,
        "delay-spike" => st.delay_spikes,
        "crash" => st.crashes,
        "custodian-silent" => st.custodian_silenced,
        "custodian-late" => st.custodian_late,
        "custodian-outage" => st.custodian_outages,
        "job-late" => st.jobs_late,
        "job-twice" => st.jobs_twice,
        "partition" => st.partitions,
        "storage" => disk.crashes + disk.write_errors + disk.sync_errors + disk.read_errors,
        "storage-corruption" => disk.bitflips + disk.misdirects,
        "ledger-unavailable" => st.ledger_unavailable_injected,
        "upgrade" => st.upgrades + st.upgrades_refused,
        _ => return None,
    })
}

/// The coverage of a run so far.
pub(crate) fn of(world: &World) -> Coverage {
    let mut c = Coverage::default();
    for k in required() {
        c.add(&k, 0);
    }
    let none = BTreeMap::new();
    let live = world
        .intake
        .process()
        .map_or(&none, |p| p.inner.instructions());
    for (id, (kind, origin)) in &world.taken {
        let kind = kind_name(kind, *origin);
        c.add(&format!("instruction.{kind}"), 1);
        let state = match (world.statuses.get(id), live.get(id)) {
            (Some(state), _) => Some(*state),
            (None, Some(r)) => Some(r.state),
            (None, None) => None,
        };
        if let Some(state) = state.filter(|s| s.is_terminal()) {
            c.add(&format!("outcome.{kind}.{}", state_name(state)), 1);
        }
        if live.get(id).is_some_and(|r| r.partial) || world.partial.contains(id) {
            c.add("trade.partially_filled_orders", 1);
        }
    }
    for (k, n) in &world.trade_counts {
        c.add(&format!("trade.{k}"), *n);
    }
    for kind in acme_faults::KINDS {
        let n = injected(world, kind).unwrap_or_else(|| panic!("fault kind {kind} not counted"));
        c.add(&format!("fault.{kind}"), n);
    }
    c
}

fn state_name(state: InstructionState) -> String {
    format!("{state:?}").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_names_what_never_happened_less_what_is_allowed() {
        let mut c = Coverage::default();
        for k in required() {
            c.add(&k, 1);
        }
        assert!(c.missing(&[]).is_empty());
        let mut gaps = c.clone();
        gaps.0.insert("fault.loss".into(), 0);
        gaps.0.insert("outcome.switch.rejected".into(), 0);
        assert_eq!(
            gaps.missing(&[]),
            vec![
                "outcome.switch.rejected".to_string(),
                "fault.loss".to_string()
            ]
        );
        assert_eq!(
            gaps.missing(&["fault".into()]),
            vec!["outcome.switch.rejected"]
        );
        assert_eq!(gaps.missing(&["outcome.switch".into()]), vec!["fault.loss"]);
        // A prefix allows whole segments only: `fault.lo` is not `fault.loss`.
        assert_eq!(gaps.missing(&["fault.lo".into()]).len(), 2);
        assert!(gaps.missing(&["all".into()]).is_empty());
        // A sum covers what either part covered.
        let mut sum = Coverage::default();
        sum.merge(&gaps);
        sum.merge(&c);
        assert!(sum.missing(&[]).is_empty());
        assert_eq!(sum.get("fault.loss"), 1);
        assert_eq!(sum.get("instruction.sell"), 2);
    }

    #[test]
    fn every_fault_kind_is_counted() {
        let world = World::new(crate::SimConfig::new(1, 1, 1));
        for kind in acme_faults::KINDS {
            assert_eq!(injected(&world, kind), Some(0), "{kind}");
        }
        let c = of(&world);
        assert_eq!(c.missing(&[]).len(), required().len(), "nothing ran yet");
    }
}
