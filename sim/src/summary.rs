//! What a run reports: the JSON summary of `acme sim --json` and its human form.

use crate::checker::Violation;
use crate::coverage::Coverage;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub seed: u64,
    /// Business days on which members instructed.
    pub days: u32,
    pub members: u64,
    pub first_day: String,
    /// The last simulated day (the last trade settles on it).
    pub last_day: String,
    /// Rolling hash over every event, hex.
    pub trace_hash: String,
    /// Hash of every account's balances (timestamps aside), hex: equal across ledger backends.
    pub ledger_digest: String,
    /// Broken invariants (the first ones, in full); empty when all hold.
    pub violations: Vec<Violation>,
    pub violation_count: u64,
    pub instructions_by_state: BTreeMap<String, u64>,
    pub instructions_by_kind: BTreeMap<String, u64>,
    /// Instructions some order of which was filled only in part.
    pub instructions_partially_filled: u64,
    /// Member orders that were accepted (reserved) and so went to a trade.
    pub member_trades: u64,
    /// Trades by kind: member orders (buy, sell, switch, rebalance) and external trades
    /// (external, crossed: with internal crossing, rejected, partial, amended, late_settlement).
    pub trades: BTreeMap<String, u64>,
    /// Aggregated trades placed with and priced by the custodian.
    pub external_trades: u64,
    /// The trade dates the platform dealt (its own dates, on the trades it placed), each with
    /// the minute of the UTC day at which the custodian took the first trade of that date: the
    /// cut-off's hour in UTC moves with London's clocks.
    pub dealt: BTreeMap<String, u32>,
    /// Transfers in the ledger.
    pub transfers: u64,
    /// Transfers submitted (retries and duplicates included).
    pub transfers_submitted: u64,
    pub accounts: u64,
    pub events: u64,
    pub messages_sent: u64,
    pub messages_lost: u64,
    pub messages_duplicated: u64,
    pub duplicates_dropped: u64,
    /// Process crashes injected (each followed by a restart from durable state).
    pub crashes: u64,
    /// Messages the bus offered again, never acknowledged, once their consumer was back.
    pub redeliveries: u64,
    /// Messages sent again for want of an acknowledgement (hosts, members, scheduler).
    pub retransmissions: u64,
    /// Chases of the custodian answered.
    pub chases: u64,
    /// What went wrong on purpose: counts per fault kind.
    pub faults_injected: BTreeMap<String, u64>,
    /// The fault plan's name (`none`, `default`, `swarm`, or `custom`).
    pub faults: String,
    /// The fault plan, one line per fault that is on.
    pub fault_plan: Vec<String>,
    /// Violations that are liveness failures (something never finished), not safety.
    pub liveness_failures: u64,
    /// Days whose end-of-day business oracles ran, and days that skipped them (a message was
    /// in flight); a skip is made up by a later day's, or the run's end, or the run fails.
    pub oracle_days_checked: u64,
    pub oracle_days_skipped: u64,
    /// The per-settlement pot check: pots compared when their trade's settlement was booked,
    /// and pots left to the end-of-day oracle.
    pub settled_pots: crate::settle_watch::SettleCoverage,
    /// Checks of an allocated trade's trading accounts (`trade_trading_flat`), and trades the
    /// simulator's own reconciliation compared with the custodian's books.
    pub trade_checks: u64,
    pub trades_reconciled: u64,
    pub contributed_pence: u64,
    /// Wall time of the run, filled in by the command that ran it (the simulator has no clock).
    pub wall_ms: u64,
    /// Snapshots the hosts took, recoveries they made, and the longest journal tail any
    /// recovery replayed (bounded by the snapshot policy, whatever the run's length).
    pub snapshots: u64,
    pub recoveries: u64,
    pub journal_tail_max: u64,
    /// Inputs the hosts committed to their dead letters (a panic, or an input declared poison).
    pub dead_letters: u64,
    /// Ledger calls answered `Unavailable`.
    pub ledger_unavailable: u64,
    /// New code versions deployed, and abrupt deployments the new code refused (as it must).
    pub upgrades: u64,
    pub upgrades_refused: u64,
    /// The durable ledger on the simulated disk: what the disk did, every recovery (only in
    /// runs with storage faults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSummary>,
    /// How the largest pieces of work were split over ledger batches and pages.
    pub paging: crate::paging::PagingSummary,
    /// What the run exercised: instruction kinds and outcomes, trade paths, faults injected.
    pub coverage: Coverage,
    /// The run's budget: events and business days it might spend (see `crate::budget`).
    pub budget_events: u64,
    pub budget_days: u32,
}

/// What the durable ledger and its disk went through in a run (see `acme_sim::durable`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StorageSummary {
    /// Storage failures, each handled as a machine restart followed by a recovery that passed
    /// every check.
    pub recoveries: u64,
    /// Opening attempts that failed on the storage itself (a crash or a read error while
    /// recovering) and were retried after another restart.
    pub recovery_retries: u64,
    /// Recoveries whose first attempts all met read errors, let through with read errors
    /// paused (see `acme_sim::durable::RECOVERY_ATTEMPTS_WITH_READ_ERRORS`).
    pub read_errors_paused: u64,
    /// Recoveries that cut a torn tail.
    pub torn_tails_cut: u64,
    /// Recoveries that fell back to the previous checkpoint.
    pub checkpoint_fallbacks: u64,
    /// Records written but never acknowledged that recovery found durable and kept.
    pub unacknowledged_kept: u64,
    /// Requests of failed commits that recovery found lost (never acknowledged, so none owed).
    pub unacknowledged_lost: u64,
    /// Records committed and checkpoints installed, over every incarnation of the ledger.
    pub records: u64,
    pub checkpoints: u64,
    pub log_bytes: u64,
    /// Corruptions the disk injected (bit flips, misdirected writes), and the first of them
    /// (kind, file, byte range), to judge a halt by.
    pub corruptions_injected: u64,
    pub corruptions: Vec<String>,
    /// The ledger refused to open on corruption the disk injected, and stopped there: the place
    /// and the reason. A safe halt, not a violation.
    pub halted: Option<String>,
    pub disk: crate::disk::DiskStats,
}

/// `dealt` of the summary: dates as text, instants as the minute of their UTC day.
pub(crate) fn dealt(
    first_placed: &BTreeMap<acme_processes::calendar::Date, acme_processes::calendar::Ts>,
) -> BTreeMap<String, u32> {
    use acme_processes::calendar::NS_PER_MIN;
    first_placed
        .iter()
        .map(|(date, &at)| {
            let minute = at.saturating_sub(date.at_minute(0)) / NS_PER_MIN;
            (date.to_string(), minute.min(u32::MAX as u64) as u32)
        })
        .collect()
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.violation_count == 0
    }

    /// The process exit status of `acme sim`: 0 clean, 2 a safety violation, 3 only liveness
    /// failures.
    pub fn exit_status(&self) -> u8 {
        if self.ok() {
            0
        } else if self.liveness_failures == self.violation_count {
            3
        } else {
            2
        }
    }

    /// The command that reproduces this run.
    pub fn reproduce(&self) -> String {
        let mut c = format!(
            "cargo run --release -- sim --seed {} --days {} --members {} --faults {} --start {}",
            self.seed, self.days, self.members, self.faults, self.first_day
        );
        let default = crate::budget::Budget::for_run(self.days, self.members);
        if self.budget_events != default.events {
            let _ = write!(c, " --budget-events {}", self.budget_events);
        }
        if self.budget_days != default.days {
            let _ = write!(c, " --budget-days {}", self.budget_days);
        }
        c
    }

    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "seed {} | {} members | {} business days ({} .. {})",
            self.seed, self.members, self.days, self.first_day, self.last_day
        );
        let _ = writeln!(
            s,
            "faults         {}: {}",
            self.faults,
            self.fault_plan.join("; ")
        );
        let _ = writeln!(s, "trace hash     {}", self.trace_hash);
        let _ = writeln!(s, "ledger digest  {}", self.ledger_digest);
        let states: Vec<String> = self
            .instructions_by_state
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let kinds: Vec<String> = self
            .instructions_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "instructions   {} ({})",
            kinds.join(", "),
            states.join(", ")
        );
        let trades: Vec<String> = self
            .trades
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "trades         {} member orders in {} external trades ({})",
            self.member_trades,
            self.external_trades,
            trades.join(", ")
        );
        let _ = writeln!(
            s,
            "ledger         {} accounts, {} transfers ({} submitted)",
            self.accounts, self.transfers, self.transfers_submitted
        );
        let _ = writeln!(
            s,
            "events         {} ({} messages, {} duplicates dropped, {} crashes, {} redeliveries)",
            self.events,
            self.messages_sent,
            self.duplicates_dropped,
            self.crashes,
            self.redeliveries
        );
        let p = &self.paging;
        let _ = writeln!(
            s,
            "paging         up to {} orders a trade; up to {} events an intake batch, {} booking \
             batches a trade, {} settlement pages a trade, {} re-balancing pages a pass",
            p.orders_per_trade_max,
            p.intake_batch_events_max,
            p.booking_batches_max,
            p.settlement_pages_max,
            p.rebalancing_pages_max
        );
        let injected: Vec<String> = self
            .faults_injected
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if !injected.is_empty() {
            let _ = writeln!(
                s,
                "faults hit     {} ({} retransmissions, {} chases)",
                injected.join(", "),
                self.retransmissions,
                self.chases
            );
        }
        if let Some(st) = &self.storage {
            let d = &st.disk;
            let _ = writeln!(
                s,
                "storage        {} recoveries ({} retried, {} torn tails cut, {} checkpoint fallbacks, \
                 {} unacknowledged kept, {} lost), {} records, {} checkpoints; disk {} writes, \
                 {} syncs, {} power losses, {} write / {} sync / {} read errors, {} bit flips, \
                 {} misdirected",
                st.recoveries,
                st.recovery_retries,
                st.torn_tails_cut,
                st.checkpoint_fallbacks,
                st.unacknowledged_kept,
                st.unacknowledged_lost,
                st.records,
                st.checkpoints,
                d.writes,
                d.syncs,
                d.crashes,
                d.write_errors,
                d.sync_errors,
                d.read_errors,
                d.bitflips,
                d.misdirects
            );
            if let Some(h) = &st.halted {
                let _ = writeln!(s, "storage halted {h}");
            }
        }
        let _ = writeln!(
            s,
            "oracle days    {} checked, {} skipped (a message in flight at the end of day)",
            self.oracle_days_checked, self.oracle_days_skipped
        );
        let p = self.settled_pots;
        let _ = writeln!(
            s,
            "settled pots   {} checked at settlement, {} left to the end of day, {} waits; \
             {} per-trade flat checks, {} trades reconciled",
            p.pots_checked, p.pots_deferred, p.waits, self.trade_checks, self.trades_reconciled
        );
        let _ = write!(s, "coverage\n{}", self.coverage.human());
        let _ = writeln!(s, "wall time      {} ms", self.wall_ms);
        if self.ok() {
            let _ = writeln!(s, "invariants     all held");
        } else {
            let _ = writeln!(s, "VIOLATIONS     {}", self.violation_count);
            for v in self.violations.iter().take(20) {
                let _ = writeln!(
                    s,
                    "  [{}] {} (after {}, t={})",
                    v.invariant, v.detail, v.event, v.at
                );
            }
            let _ = writeln!(s, "reproduce with: {}", self.reproduce());
        }
        s
    }
}
