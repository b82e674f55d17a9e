//! The simulated world and its event loop.
//!
//! One seed decides everything: the market's prices, the members' instructions, the bus's
//! delays (and, with a fault plan, its losses and duplicates). Events are ordered by
//! (virtual time, sequence number); the world owns the clock, so the ledger's timestamps, the
//! processes' inputs and the trace hash are the same on every run of the seed.

use crate::budget::Budget;
use crate::calendar::WorldCalendar;
use crate::checker::{Checker, Violation};
use crate::custodian::{Behaviour, Custodian};
use crate::market::Market;
use crate::members::{Population, MODELS};
use crate::oracle::Oracle;
use crate::release::Release;
use crate::rng::{SimRng, Stream};
use crate::summary::{StorageSummary, Summary};
use crate::trace::{Fnv64, Trace};
use acme_faults::FaultPlan;
use acme_ledger::chart::{self, AccountKind, FundId, LEDGER_CASH_GBP};
use acme_ledger::{
    Account, AccountFilter, Clock, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    MemLedger, QueryFilter, Transfer,
};
use acme_processes::calendar::{Date, Schedule, Ts, NS_PER_MIN};
use acme_processes::host::{Delivery, Host, Io, MemStore, ProcessStore, Ticket};
use acme_processes::messages::{
    msg_id, Instruction, InstructionKind, InstructionState, Message, MsgKind, Origin, TradeId,
};
use acme_processes::process::Process;
use acme_processes::process::{Alert, Envelope, LedgerReply, LedgerRequest, Service};
use acme_processes::recon::ledger::Calendar;
use acme_processes::trading::{
    aggregation::Aggregation, intake::Intake, pricing::Pricing, rebalancing::Rebalancing,
    settlement::Settlement,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a run simulates.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// Business days on which members instruct; the run continues until the last trade settles.
    pub days: u32,
    pub members: u64,
    pub start: Date,
    pub schedule: Schedule,
    pub faults: FaultPlan,
    /// How often the custodian rejects, fills in part, amends, settles late.
    pub custodian: Behaviour,
    /// The name of the fault plan, for the reproduce command.
    pub fault_name: String,
    /// The plan of the chaos phase (`faults` becomes calm in the liveness phase).
    pub chaos_faults: FaultPlan,
    /// Crash this service at exactly this effect boundary (counted from 0), whatever the plan.
    pub crash_at: Option<(Service, u64)>,
    /// Share of members who start with a pot (cash and units), ppm; see `crate::holdings`.
    pub opening_ppm: u32,
    /// Events and business days the run may spend (`None`: derived from its size).
    pub budget: Option<Budget>,
}

impl SimConfig {
    pub fn new(seed: u64, days: u32, members: u64) -> SimConfig {
        SimConfig {
            seed,
            days,
            members,
            // Monday 5 January 2026.
            start: Date::from_ymd(2026, 1, 5).expect("valid date"),
            schedule: Schedule::default(),
            faults: FaultPlan::none(),
            custodian: Behaviour::default(),
            fault_name: "none".to_string(),
            chaos_faults: FaultPlan::none(),
            crash_at: None,
            opening_ppm: crate::holdings::OPENING_PPM,
            budget: None,
        }
    }

    /// The run's budget: the one given, or the default for its size.
    pub fn budget(&self) -> Budget {
        self.budget
            .unwrap_or_else(|| Budget::for_run(self.days, self.members))
    }

    /// With the fault plan of that name (`none`, `default`, `swarm`: drawn from the seed).
    pub fn with_faults(mut self, name: &str) -> Result<SimConfig, String> {
        self.faults = FaultPlan::named(name, self.seed)?;
        self.chaos_faults = self.faults.clone();
        self.fault_name = name.to_string();
        Ok(self)
    }

    /// With an explicit fault plan (tests).
    pub fn with_plan(mut self, plan: FaultPlan) -> SimConfig {
        self.faults = plan.clone();
        self.chaos_faults = plan;
        self.fault_name = "custom".to_string();
        self
    }

    /// The world's calendar for the years a run can span from its start.
    pub fn calendar(&self) -> WorldCalendar {
        let year = crate::calendar::year_of(self.start);
        WorldCalendar::england_and_wales(year, year + 2)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.days == 0 || self.days > 260 {
            return Err(format!("days: {} is not in 1..=260", self.days));
        }
        // The platform's bank holidays are a table of these years; a run must not leave it.
        let (first, last) = acme_processes::calendar::HOLIDAYS_YEARS;
        self.budget().validate(self.days)?;
        let cal = self.calendar();
        let start = cal.on_or_after(self.start);
        let end = cal.add_business_days(start, self.budget().days - 1);
        let years = (
            crate::calendar::year_of(start),
            crate::calendar::year_of(end),
        );
        if years.0 < first || years.1 > last {
            return Err(format!(
                "start {}: a run of {} days would span {}-{}, outside the bank holiday table's \
                 {first}-{last}",
                self.start, self.days, years.0, years.1
            ));
        }
        if self.members == 0 || self.members > 10_000_000 {
            return Err(format!("members: {} is not in 1..=10000000", self.members));
        }
        self.faults.validate()
    }
}

/// The funds of the simulated market.
pub const FUNDS: [FundId; 5] = [1, 2, 3, 4, 5];

/// The virtual clock, shared with the ledger.
#[derive(Default)]
pub struct SimClock(AtomicU64);

impl SimClock {
    pub fn set(&self, now: Ts) {
        let before = self.0.swap(now, Ordering::Relaxed);
        assert!(before <= now, "time went backwards: {before} -> {now}");
    }
}

impl Clock for SimClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Event {
    DayStart(Date),
    MemberSend(Instruction),
    Deliver(Envelope),
    Timer {
        service: Service,
        timer_id: u64,
        incarnation: u64,
    },
    CutOffJob(Date),
    Valuation(Date),
    SettlementDay(Date),
    Amend(TradeId),
    RebalanceJob(Date),
    ExternalRetry(u128),
    /// A message an outside actor sends later (a late custodian, a late or repeated job).
    SendLater(Envelope),
    EndOfDay(Date),
    Restart(Service),
    /// The ledger takes the next request of a host's pipeline.
    LedgerApply(Service),
    /// A new release of a process's code is deployed (`clean`: only by a clean stop).
    Upgrade {
        service: Service,
        clean: bool,
    },
    /// A ledger answer reaches its host (`None`: unavailable).
    LedgerAnswer {
        service: Service,
        ticket: Ticket,
        reply: Option<LedgerReply>,
    },
}

/// A ledger backend the simulator can run on: the port, plus a full scan for the end-of-day
/// recount and the digest. `MemLedger` is the default; a real TigerBeetle cluster plugs in here
/// (the adapter lives outside the pure crates).
pub trait SimBackend: Ledger {
    /// Every account, in any order.
    fn all_accounts(&mut self) -> Vec<Account>;
    /// The business date of the ledger's timestamps: the timestamp's own date by default (a
    /// ledger on the simulation's clock); a backend with a clock of its own says when each
    /// simulated day began on it.
    fn calendar(&self) -> Calendar {
        Calendar::default()
    }
    /// The embedded ledger, when that is what this is.
    fn as_mem(&self) -> Option<&MemLedger> {
        None
    }
    /// Broken invariants the backend found in itself since last asked, as (invariant, detail):
    /// a durable backend judges each of its recoveries.
    fn take_violations(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Why the backend stopped for good, if it did (a durable ledger refusing to open on
    /// corruption: a safe halt, which ends the run early).
    fn halted(&self) -> Option<String> {
        None
    }
    /// Called once when a run ends normally (a durable backend verifies its storage).
    fn end_of_run(&mut self) {}
    /// Switches storage faults on or off (off in the liveness phase).
    fn set_storage_faults(&mut self, _on: bool) {}
    /// What the storage went through, for a durable backend.
    fn storage_summary(&self) -> Option<StorageSummary> {
        None
    }
}

impl SimBackend for MemLedger {
    fn all_accounts(&mut self) -> Vec<Account> {
        self.accounts().to_vec()
    }
    fn as_mem(&self) -> Option<&MemLedger> {
        Some(self)
    }
}

/// The accounts of `ids` for the simulator's own checks: through the port, or, while a durable
/// backend is down after a storage failure, from the ledger it holds in memory.
pub fn lookup_for_check(ledger: &mut dyn SimBackend, ids: &[u128]) -> Vec<Account> {
    match ledger.lookup_accounts(ids) {
        Ok(accounts) => accounts,
        Err(e @ LedgerError::Unavailable { .. }) => {
            let mem = ledger
                .as_mem()
                .unwrap_or_else(|| panic!("the checks cannot reach the ledger: {e}"));
            ids.iter()
                .filter_map(|&id| mem.account(id).copied())
                .collect()
        }
        Err(e) => panic!("the ledger refused the checks' lookup: {e}"),
    }
}

/// Every account of a ledger through the port alone, page by page.
pub fn scan_accounts(ledger: &mut dyn Ledger) -> Result<Vec<Account>, LedgerError> {
    let mut out = Vec::new();
    let mut timestamp_min = 0;
    loop {
        let page = ledger.query_accounts(&QueryFilter {
            timestamp_min,
            limit: acme_ledger::QUERY_RESULTS_MAX,
            ..QueryFilter::default()
        })?;
        let full = page.len() == acme_ledger::QUERY_RESULTS_MAX as usize;
        if let Some(last) = page.last() {
            timestamp_min = last.timestamp + 1;
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// The ledger as the simulator uses it: the port, plus a record of which accounts each event's
/// requests touched (for the checker) and counts.
pub struct SimLedger {
    pub(crate) inner: Box<dyn SimBackend>,
    touched: BTreeSet<u128>,
    /// Transfers of trades the ledger applied during this event (for `crate::trade_watch`).
    pub(crate) applied: Vec<Transfer>,
    /// Transfers of trades in a batch whose answer was lost: applied, perhaps.
    pub(crate) uncertain: BTreeSet<u128>,
    pub transfers_submitted: u64,
    pub transfers_applied: u64,
}

impl SimLedger {
    fn note(&mut self, batch: &[Transfer]) {
        for t in batch {
            if t.debit_account_id != 0 {
                self.touched.insert(t.debit_account_id);
            }
            if t.credit_account_id != 0 {
                self.touched.insert(t.credit_account_id);
            }
        }
        let implicit: Vec<u128> = batch
            .iter()
            .filter(|t| t.pending_id != 0 && (t.debit_account_id == 0 || t.credit_account_id == 0))
            .map(|t| t.pending_id)
            .collect();
        if !implicit.is_empty() {
            match self.inner.lookup_transfers(&implicit) {
                Ok(pending) => {
                    for p in pending {
                        self.touched.insert(p.debit_account_id);
                        self.touched.insert(p.credit_account_id);
                    }
                }
                // A durable backend that is down: the create that follows fails the same way.
                Err(LedgerError::Unavailable { .. }) => {}
                Err(e) => panic!("the ledger refused a lookup: {e}"),
            }
        }
    }

    /// The embedded ledger (export and the end-of-day reconciliation read it directly).
    pub fn mem(&self) -> &MemLedger {
        self.inner
            .as_mem()
            .expect("this run is on the embedded ledger")
    }

    /// Every account.
    pub fn all_accounts(&mut self) -> Vec<Account> {
        self.inner.all_accounts()
    }
}

impl Ledger for SimLedger {
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        self.inner.create_accounts(batch)
    }
    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        self.note(batch);
        self.transfers_submitted += batch.len() as u64;
        let results = self.inner.create_transfers(batch);
        let results = crate::trade_watch::note_applied(self, batch, results)?;
        self.transfers_applied += results
            .iter()
            .filter(|r| **r == CreateTransferResult::Ok)
            .count() as u64;
        Ok(results)
    }
    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        self.inner.lookup_accounts(ids)
    }
    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        self.inner.lookup_transfers(ids)
    }
    fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, LedgerError> {
        self.inner.get_account_transfers(filter)
    }
    fn query_transfers(&mut self, filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.inner.query_transfers(filter)
    }
    fn query_accounts(&mut self, filter: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        self.inner.query_accounts(filter)
    }
}

/// Counters for the summary.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_lost: u64,
    pub messages_duplicated: u64,
    pub duplicates_dropped: u64,
    pub external_trades: u64,
    pub crashes: u64,
    pub redeliveries: u64,
    pub external_retries: u64,
    pub chases: u64,
    pub delay_spikes: u64,
    pub custodian_silenced: u64,
    pub custodian_late: u64,
    pub custodian_outages: u64,
    pub custodian_unreachable: u64,
    pub jobs_late: u64,
    pub jobs_twice: u64,
    pub partitions: u64,
    pub partition_drops: u64,
    pub upgrades: u64,
    pub upgrades_refused: u64,
    /// `Unavailable` answers the plan injected (the backend's own outages aside).
    pub ledger_unavailable_injected: u64,
}

pub(crate) struct Queue {
    events: BTreeMap<(Ts, u64), Event>,
    seq: u64,
    in_flight_messages: u64,
}

impl Queue {
    pub(crate) fn push(&mut self, at: Ts, event: Event) {
        if matches!(event, Event::Deliver(_)) {
            self.in_flight_messages += 1;
        }
        self.events.insert((at, self.seq), event);
        self.seq += 1;
    }
}

/// The world's side of the ports, lent to a host for one step.
struct WorldIo<'a> {
    queue: &'a mut Queue,
    bus_rng: &'a mut SimRng,
    faults: &'a FaultPlan,
    trace: &'a mut Trace,
    alerts: &'a mut Vec<(Ts, Alert)>,
    stats: &'a mut Stats,
    allocated_notices: &'a mut Vec<(TradeId, u32)>,
    fault_rng: &'a mut SimRng,
    now: Ts,
    boundaries: &'a mut BTreeMap<Service, u64>,
    crash_at: Option<(Service, u64)>,
    recovering: Option<Recovering>,
    crash_free_until: &'a mut BTreeMap<Service, Ts>,
    partition: Option<Partition>,
    pipes: &'a mut BTreeMap<Service, LedgerPipe>,
    ledger_rng: &'a mut SimRng,
    bus: &'a mut crate::bus::Bus,
}

/// A host on its way up: its crash points draw no crash of their own (a recovery that resends
/// twenty thousand pending messages would otherwise almost never finish); one draw per recovery
/// decides whether, and at which of its first points, it crashes.
#[derive(Clone, Copy)]
struct Recovering {
    service: Service,
    crash_at: Option<u64>,
}

/// Of every this many recoveries, about one crashes on the way up (when crashes are on).
const RECOVERY_CRASH_ONE_IN: u64 = 8;

/// A recovery that crashes does so at one of its first this many crash points.
const RECOVERY_CRASH_POINTS_MAX: u64 = 64;

/// A host's ledger requests on their way: applied one after another in the order submitted
/// (the port's contract), each after a seeded latency.
#[derive(Default)]
pub(crate) struct LedgerPipe {
    queue: VecDeque<(Ticket, LedgerRequest, Ts)>,
    /// When the request at the head was last scheduled to be applied.
    scheduled: bool,
}

/// A network partition: nothing passes between the two parties from `from` until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Partition {
    pub a: Service,
    pub b: Service,
    pub from: Ts,
    pub until: Ts,
}

impl Partition {
    fn cuts(&self, envelope: &Envelope, now: Ts) -> bool {
        let pair = (envelope.from, envelope.to);
        (self.from..self.until).contains(&now)
            && (pair == (self.a, self.b) || pair == (self.b, self.a))
    }
}

fn bus_send(
    now: Ts,
    envelope: Envelope,
    queue: &mut Queue,
    rng: &mut SimRng,
    faults: &FaultPlan,
    stats: &mut Stats,
    partition: Option<Partition>,
) {
    stats.messages_sent += 1;
    if partition.is_some_and(|p| p.cuts(&envelope, now)) {
        stats.partition_drops += 1;
        return;
    }
    if rng.chance_ppm(faults.loss_ppm) {
        stats.messages_lost += 1;
        return;
    }
    let copies = if rng.chance_ppm(faults.duplicate_ppm) {
        2
    } else {
        1
    };
    if copies == 2 {
        stats.messages_duplicated += 1;
    }
    for _ in 0..copies {
        let mut delay_ms = rng.between(faults.delay_min_ms, faults.delay_max_ms);
        if rng.chance_ppm(faults.delay_spike_ppm) {
            stats.delay_spikes += 1;
            delay_ms += rng.between(0, faults.delay_spike_max_ms);
        }
        queue.push(now + delay_ms * 1_000_000, Event::Deliver(envelope.clone()));
    }
}

impl Io for WorldIo<'_> {
    fn submit_ledger(&mut self, service: Service, ticket: Ticket, request: &LedgerRequest) {
        let latency_us = self.ledger_rng.between(
            self.faults.ledger_latency_min_us,
            self.faults.ledger_latency_max_us,
        );
        let ready = self.now + latency_us * 1_000;
        let pipe = self.pipes.entry(service).or_default();
        let ready = pipe
            .queue
            .back()
            .map_or(ready, |&(_, _, last)| ready.max(last));
        pipe.queue.push_back((ticket, request.clone(), ready));
        if !pipe.scheduled {
            pipe.scheduled = true;
            self.queue.push(ready, Event::LedgerApply(service));
        }
    }

    fn send(&mut self, now: Ts, envelope: Envelope) {
        if let Message::Ack { id } = envelope.body {
            // The host's acknowledgement reaches its broker, whatever becomes of its copy on
            // the way to the sender.
            self.bus.acknowledged(envelope.from, id);
        }
        if let Message::TradeAllocated {
            trade, revision, ..
        } = &envelope.body
        {
            // Pricing announces an allocation once every batch of it is booked.
            self.allocated_notices.push((trade.id, *revision));
        }
        bus_send(
            now,
            envelope,
            self.queue,
            self.bus_rng,
            self.faults,
            self.stats,
            self.partition,
        );
    }

    fn set_timer(&mut self, service: Service, timer_id: u64, at: Ts, incarnation: u64) {
        // A timer re-armed after a restart may be overdue: it fires at once.
        let at = at.max(self.now);
        self.queue.push(
            at,
            Event::Timer {
                service,
                timer_id,
                incarnation,
            },
        );
    }

    fn alert(&mut self, now: Ts, alert: Alert) {
        self.alerts.push((now, alert));
    }

    fn crash_point(&mut self, service: Service) -> bool {
        let boundary = self.boundaries.entry(service).or_default();
        let index = *boundary;
        *boundary += 1;
        let planned = self.crash_at == Some((service, index));
        let resting = self
            .crash_free_until
            .get(&service)
            .is_some_and(|&until| self.now < until);
        let drawn = match self.recovering.filter(|r| r.service == service) {
            Some(recovering) => recovering.crash_at == Some(index),
            None => !resting && self.fault_rng.chance_ppm(self.faults.crash_ppm),
        };
        if !planned && !drawn {
            return false;
        }
        self.stats.crashes += 1;
        self.trace.record(&("crash", service));
        let at = self.now + self.faults.restart_delay_ms * 1_000_000;
        self.queue.push(at, Event::Restart(service));
        let uptime_ms = self.faults.crash_uptime_mean_ms;
        if uptime_ms > 0 {
            let gap_ns = self.fault_rng.between(0, 2 * uptime_ms) * 1_000_000;
            self.crash_free_until.insert(service, at + gap_ns);
        }
        true
    }
}

/// Runs `$body` with the host of a platform `$service` and the world's side of the ports (the
/// hosts are of different types, so each arm is its own instantiation).
macro_rules! on_host {
    ($world:expr, $service:expr, |$host:ident, $io:ident| $body:expr) => {{
        let (mut io, intake, aggregation, pricing, settlement, rebalancing) = $world.io();
        let $io: &mut dyn Io = &mut io;
        match $service {
            Service::Intake => {
                let $host = intake;
                $body
            }
            Service::Aggregation => {
                let $host = aggregation;
                $body
            }
            Service::Pricing => {
                let $host = pricing;
                $body
            }
            Service::Settlement => {
                let $host = settlement;
                $body
            }
            Service::Rebalancing => {
                let $host = rebalancing;
                $body
            }
            other => panic!("{other:?} is not a platform process"),
        }
    }};
}

/// A platform process's host in the simulator: its code as a [`Release`], its store in memory
/// (or on the simulated disk).
pub type SimHost<P> = Host<Release<P>, Box<dyn ProcessStore>>;

fn sim_host<P: Process>(
    service: Service,
    make: impl Fn() -> Release<P> + Send + 'static,
) -> SimHost<P> {
    Host::with_store(service, make, Box::new(MemStore::default()))
}

/// The code of each platform process, by release.
mod code {
    use super::*;

    pub fn intake(release: u32) -> impl Fn() -> Release<Intake> + Send + 'static {
        move || Release::new(Intake::new(FUNDS.to_vec(), MODELS.models.len()), release)
    }
    pub fn rebalancing(release: u32) -> impl Fn() -> Release<Rebalancing> + Send + 'static {
        move || Release::new(Rebalancing::new(MODELS), release)
    }
    pub fn aggregation(s: Schedule, release: u32) -> impl Fn() -> Release<Aggregation> + Send {
        move || Release::new(Aggregation::new(s), release)
    }
    pub fn pricing(s: Schedule, release: u32) -> impl Fn() -> Release<Pricing> + Send {
        move || Release::new(Pricing::new(s), release)
    }
    pub fn settlement(s: Schedule, release: u32) -> impl Fn() -> Release<Settlement> + Send {
        move || Release::new(Settlement::new(s), release)
    }
}

/// A whole simulated run.
pub struct World {
    pub(crate) cfg: SimConfig,
    pub(crate) now: Ts,
    pub(crate) clock: Arc<SimClock>,
    pub(crate) queue: Queue,
    pub(crate) ledger: SimLedger,
    pub(crate) intake: SimHost<Intake>,
    pub(crate) aggregation: SimHost<Aggregation>,
    pub(crate) pricing: SimHost<Pricing>,
    pub(crate) settlement: SimHost<Settlement>,
    pub(crate) rebalancing: SimHost<Rebalancing>,
    /// The release of each platform process's code now deployed.
    pub(crate) releases: BTreeMap<Service, u32>,
    pub(crate) custodian: Custodian,
    pub(crate) market: Market,
    pub(crate) population: Population,
    pub(crate) oracle: Oracle,
    pub(crate) bus_rng: SimRng,
    pub(crate) fault_rng: SimRng,
    pub(crate) trace: Trace,
    pub(crate) checker: Checker,
    pub(crate) alerts: Vec<(Ts, Alert)>,
    pub(crate) alerts_seen: usize,
    pub(crate) allocated_notices: Vec<(TradeId, u32)>,
    pub(crate) trade_watch: crate::trade_watch::TradeWatch,
    pub(crate) settle_watch: crate::settle_watch::SettleWatch,
    pub(crate) trade_recon: crate::trade_recon::TradeRecon,
    pub(crate) stats: Stats,
    pub(crate) violations: Vec<Violation>,
    pub(crate) violation_count: u64,
    pub(crate) liveness_failures: u64,
    pub(crate) oracle_days: crate::checker::OracleDays,
    pub(crate) last_activity_day: Date,
    pub(crate) end_day: Date,
    /// The last day simulated so far.
    pub(crate) last_day: Date,
    pub(crate) trade_counts: BTreeMap<&'static str, u64>,
    /// Per trade date the platform dealt, when the custodian took its first trade of it.
    pub(crate) dealt: BTreeMap<Date, Ts>,
    /// How large work was split (orders per trade, batches, pages).
    pub(crate) paging: crate::paging::Paging,
    /// Messages of members and the scheduler not yet acknowledged.
    pub(crate) external_unacked: BTreeMap<u128, Envelope>,
    /// Today's custodian outage, if any: (from, until).
    pub(crate) custodian_outage: Option<(Ts, Ts)>,
    /// Effect boundaries passed so far, per service (for `SimConfig::crash_at`).
    pub(crate) boundaries: BTreeMap<Service, u64>,
    /// The host recovering now, if any.
    recovering: Option<Recovering>,
    /// Per service, until when it runs free of random crashes after its last one.
    crash_free_until: BTreeMap<Service, Ts>,
    /// Events processed so far at the current instant.
    events_at_now: u64,
    /// The run was stopped by `run_overrun`.
    overran: bool,
    /// What the broker delivered to a host and the host has not acknowledged (`bus`).
    pub(crate) bus: crate::bus::Bus,
    /// Today's network partition, if any.
    pub(crate) partition: Option<Partition>,
    pub(crate) pipes: BTreeMap<Service, LedgerPipe>,
    pub(crate) ledger_rng: SimRng,
    /// The last state intake reported to the member for each instruction (the member's view).
    pub(crate) statuses: BTreeMap<u64, InstructionState>,
    /// Instructions intake took, with their kind and origin (for the summary).
    pub(crate) taken: BTreeMap<u64, (InstructionKind, Origin)>,
    pub(crate) ledger_unavailable: u64,
    /// Instructions reported partially filled.
    pub(crate) partial: BTreeSet<u64>,
    /// The world's own business days and London clock (not the platform's).
    pub(crate) calendar: WorldCalendar,
    /// Trades the custodian amended whose new allocation pricing has not yet announced
    /// (`TradeAllocated` of that revision): the model holds the new price already.
    pub(crate) amending: BTreeMap<TradeId, u32>,
}

/// How long a member's client or the scheduler waits for an acknowledgement before sending again.
pub const EXTERNAL_RETRY_NS: Ts = 60 * 1_000_000_000;

/// Business days after the last day of activity within which every trade must have settled.
pub const DRAIN_BUSINESS_DAYS_MAX: u32 = 15;

/// Events at one simulated instant beyond which a run is stopped as a livelock (a busy day
/// has about a million events in all, spread over its hours).
pub const EVENTS_AT_ONE_INSTANT_MAX: u64 = 2_000_000;

/// How long after a stopped consumer is back the bus offers it what it kept (see `World::bus`).
pub const REDELIVERY_NS: Ts = 500 * 1_000_000;

/// How long a host waits before retrying an unreachable ledger.
pub const LEDGER_RETRY_NS: Ts = 100 * 1_000_000;

/// Invariants whose breach means something never finished (liveness), not that something wrong
/// happened (safety).
pub const LIVENESS_INVARIANTS: [&str; 4] = [
    "liveness",
    "instruction_terminal",
    "custodian_trades_complete",
    // The oracles are skipped only while something is in flight: never made up means it never
    // settled (a run stopped by its budget, say), not that a state was found wrong.
    "oracles_ran",
];

/// At most this many violations are kept in full; all are counted.
pub const VIOLATIONS_KEPT: usize = 100;

impl World {
    /// A world on the embedded ledger; when the plan has storage faults, on the durable ledger
    /// on the simulated disk ([`crate::durable::SimDurable`]).
    pub fn new(cfg: SimConfig) -> World {
        let clock = Arc::new(SimClock::default());
        if crate::disk::DiskFaults::from(&cfg.faults) != crate::disk::DiskFaults::default() {
            return World::on_sim_disk(cfg);
        }
        let ledger = MemLedger::new(clock.clone());
        World::with_ledger(cfg, clock, Box::new(ledger))
    }

    /// A world on the durable ledger on the simulated disk, with the plan's storage faults (if
    /// any), on once the house accounts exist. Without faults, the baseline that a run with
    /// storage faults is measured against.
    pub fn on_sim_disk(cfg: SimConfig) -> World {
        let clock = Arc::new(SimClock::default());
        let durable = crate::durable::SimDurable::new(cfg.seed, &cfg.faults, clock.clone());
        let mut world = World::with_ledger(cfg, clock, Box::new(durable));
        world.ledger.inner.set_storage_faults(true);
        world
    }

    /// A world on any backend. `clock` is the simulation's clock (the embedded ledger takes its
    /// timestamps from it; a real cluster keeps its own, which only the trace hash sees).
    pub fn with_ledger(cfg: SimConfig, clock: Arc<SimClock>, ledger: Box<dyn SimBackend>) -> World {
        World::with_process_stores(cfg, clock, ledger, BTreeMap::new())
    }

    /// [`World::with_ledger`] with platform processes' journals in `stores` (new, empty stores:
    /// the run starts from nothing), on files for instance; the others keep theirs in memory.
    pub fn with_process_stores(
        cfg: SimConfig,
        clock: Arc<SimClock>,
        ledger: Box<dyn SimBackend>,
        stores: BTreeMap<Service, Box<dyn ProcessStore>>,
    ) -> World {
        cfg.validate().expect("valid configuration");
        let calendar = cfg.calendar();
        let start = calendar.on_or_after(cfg.start);
        let last_activity_day = calendar.add_business_days(start, cfg.days - 1);
        // The run goes on after the last day of activity until every trade has settled (late
        // settlements and switch purchases included), at most to the end of its budget.
        let end_day = calendar.add_business_days(start, cfg.budget().days - 1);
        let market = Market::new(cfg.seed, &FUNDS, &calendar, start, end_day);
        let population = Population::new(cfg.seed, cfg.members, &FUNDS);
        let schedule = cfg.schedule;
        let mut world = World {
            now: start.at_minute(0),
            clock: clock.clone(),
            queue: Queue {
                events: BTreeMap::new(),
                seq: 0,
                in_flight_messages: 0,
            },
            ledger: SimLedger {
                inner: ledger,
                touched: BTreeSet::new(),
                applied: Vec::new(),
                uncertain: BTreeSet::new(),
                transfers_submitted: 0,
                transfers_applied: 0,
            },
            intake: sim_host(Service::Intake, code::intake(0)),
            rebalancing: sim_host(Service::Rebalancing, code::rebalancing(0)),
            aggregation: sim_host(Service::Aggregation, code::aggregation(schedule, 0)),
            pricing: sim_host(Service::Pricing, code::pricing(schedule, 0)),
            settlement: sim_host(Service::Settlement, code::settlement(schedule, 0)),
            releases: BTreeMap::new(),
            custodian: Custodian::new(
                cfg.seed,
                cfg.custodian,
                schedule.settlement_lag_days,
                calendar.clone(),
            ),
            market,
            population,
            oracle: Oracle::default(),
            bus_rng: SimRng::new(cfg.seed, Stream::Bus),
            fault_rng: SimRng::new(cfg.seed, Stream::Faults),
            trace: Trace::default(),
            checker: Checker::default(),
            alerts: Vec::new(),
            alerts_seen: 0,
            allocated_notices: Vec::new(),
            trade_watch: Default::default(),
            settle_watch: Default::default(),
            trade_recon: Default::default(),
            stats: Stats::default(),
            violations: Vec::new(),
            violation_count: 0,
            liveness_failures: 0,
            oracle_days: Default::default(),
            last_activity_day,
            end_day,
            last_day: start,
            trade_counts: BTreeMap::new(),
            dealt: BTreeMap::new(),
            paging: Default::default(),
            external_unacked: BTreeMap::new(),
            custodian_outage: None,
            boundaries: BTreeMap::new(),
            recovering: None,
            crash_free_until: BTreeMap::new(),
            events_at_now: 0,
            overran: false,
            bus: crate::bus::Bus::default(),
            partition: None,
            pipes: BTreeMap::new(),
            ledger_rng: SimRng::new(cfg.seed, Stream::Ledger),
            statuses: BTreeMap::new(),
            taken: BTreeMap::new(),
            ledger_unavailable: 0,
            partial: BTreeSet::new(),
            calendar,
            amending: BTreeMap::new(),
            cfg,
        };
        world.clock.set(world.now);
        // The house accounts exist before the first day: operations set them up once.
        let house = chart::house_accounts(&FUNDS);
        let results = world
            .ledger
            .create_accounts(&house)
            .expect("embedded ledger");
        assert!(
            results.iter().all(|r| *r == CreateAccountResult::Ok),
            "house accounts: {results:?}"
        );
        crate::holdings::open(&mut world);
        for (service, store) in stores {
            on_host!(world, service, |host, _io| *host.store_mut() = store);
        }
        for service in Service::PLATFORM {
            let now = world.now;
            let started = on_host!(world, service, |host, io| host.recover(now, io));
            started.expect("a new host starts on an empty store");
        }
        world.queue.push(start.at_minute(0), Event::DayStart(start));
        world
    }

    /// Runs to the end and returns the summary.
    pub fn run(mut self) -> Summary {
        self.run_to_end()
    }

    /// Runs to the end and returns the summary, keeping the world for inspection or export.
    pub fn run_to_end(&mut self) -> Summary {
        while self.step() {}
        self.final_checks();
        self.summary()
    }

    /// Ends a run driven with [`World::step`] until it returned false: the final checks and the
    /// summary (what `run_to_end` does after its loop).
    pub fn finish(&mut self) -> Summary {
        self.final_checks();
        self.summary()
    }

    /// The embedded ledger of the run (panics on another backend).
    pub fn ledger(&self) -> &MemLedger {
        self.ledger.mem()
    }

    /// Effect boundaries each service passed in this run.
    pub fn boundaries(&self) -> &BTreeMap<Service, u64> {
        &self.boundaries
    }

    /// The last simulated day.
    pub fn last_day(&self) -> Date {
        self.last_day
    }

    /// No message on the bus, none waiting for an acknowledgement, no effect waiting, and
    /// today's re-balancing pass (which the model makes at the job's time) has run.
    fn messages_settled(&self) -> bool {
        let today = Date::of(self.now);
        let rebalanced = today > self.last_activity_day
            || !self.calendar.is_business_day(today)
            || self
                .rebalancing
                .process()
                .is_some_and(|r| r.inner.passes_done().contains(&today));
        rebalanced
            && self.queue.in_flight_messages == 0
            && self.bus.is_empty()
            && self.external_unacked.is_empty()
            && self.intake.outbox_is_empty()
            && self.aggregation.outbox_is_empty()
            && self.pricing.outbox_is_empty()
            && self.settlement.outbox_is_empty()
            && self.rebalancing.outbox_is_empty()
    }

    /// Nothing left to happen: no order waiting, no trade unsettled, no message in flight, no
    /// effect waiting in an outbox.
    fn quiescent(&self) -> bool {
        self.oracle.open_orders() == 0
            && self.oracle.switches_waiting() == 0
            && self.custodian.unpriced() == 0
            && self.custodian.unsettled() == 0
            && self.queue.in_flight_messages == 0
            && self.bus.is_empty()
            && self.external_unacked.is_empty()
            && self.intake.outbox_is_empty()
            && self.aggregation.outbox_is_empty()
            && self.pricing.outbox_is_empty()
            && self.settlement.outbox_is_empty()
            && self.rebalancing.outbox_is_empty()
    }

    /// Why the run must stop before an event at `at`, if it must: the event falls after the
    /// last day a run may have (every trade must have settled by then), or simulated time has
    /// stood still for more than [`EVENTS_AT_ONE_INSTANT_MAX`] events.
    fn run_overrun(&mut self, at: Ts) -> Option<String> {
        if let Some(why) = self.over_event_budget() {
            return Some(why);
        }
        if at >= self.end_day.next_day().at_minute(0) {
            return Some(format!(
                "seed {}: events go on after {}, the last day of its budget",
                self.cfg.seed, self.end_day
            ));
        }
        if at == self.now {
            self.events_at_now += 1;
        } else {
            self.events_at_now = 0;
        }
        (self.events_at_now > EVENTS_AT_ONE_INSTANT_MAX).then(|| {
            format!(
                "seed {}: more than {EVENTS_AT_ONE_INSTANT_MAX} events at one instant: time \
                 stands still",
                self.cfg.seed
            )
        })
    }

    /// Processes one event; false when there are none left.
    pub fn step(&mut self) -> bool {
        if self.overran {
            return false;
        }
        if self.ledger.inner.halted().is_some() {
            // The ledger stopped for good (a safe halt on corrupted storage): the run ends here.
            return false;
        }
        let Some(((at, seq), event)) = self.queue.events.pop_first() else {
            return false;
        };
        assert!(at >= self.now, "event in the past");
        if let Some(why) = self.run_overrun(at) {
            // A run that would never end is a failure to report, not a hang: CI runs seeds by
            // the thousand.
            let event = describe(&event);
            self.violation("liveness", why, &event);
            self.overran = true;
            return false;
        }
        self.now = at;
        self.clock.set(at);
        self.stats.events += 1;
        self.trace.record(&(at, seq, &event));
        let description = describe(&event);
        self.apply(event);
        self.after_event(&description);
        true
    }

    #[allow(clippy::type_complexity)]
    fn io(
        &mut self,
    ) -> (
        WorldIo<'_>,
        &mut SimHost<Intake>,
        &mut SimHost<Aggregation>,
        &mut SimHost<Pricing>,
        &mut SimHost<Settlement>,
        &mut SimHost<Rebalancing>,
    ) {
        (
            WorldIo {
                queue: &mut self.queue,
                bus_rng: &mut self.bus_rng,
                faults: &self.cfg.faults,
                trace: &mut self.trace,
                alerts: &mut self.alerts,
                stats: &mut self.stats,
                allocated_notices: &mut self.allocated_notices,
                fault_rng: &mut self.fault_rng,
                now: self.now,
                boundaries: &mut self.boundaries,
                crash_at: self.cfg.crash_at,
                recovering: self.recovering,
                crash_free_until: &mut self.crash_free_until,
                partition: self.partition,
                pipes: &mut self.pipes,
                ledger_rng: &mut self.ledger_rng,
                bus: &mut self.bus,
            },
            &mut self.intake,
            &mut self.aggregation,
            &mut self.pricing,
            &mut self.settlement,
            &mut self.rebalancing,
        )
    }

    /// The custodian's confirmation (or amendment) of a trade: the same message id for the same
    /// revision, whether first sent or sent again on a chase.
    pub(crate) fn send_confirmation(
        &mut self,
        c: acme_processes::messages::Confirmation,
        spontaneous: bool,
    ) {
        self.custodian_or_scheduler_send(
            Envelope {
                id: msg_id(MsgKind::TradePriced, c.trade_id, c.revision as u64),
                from: Service::Custodian,
                to: Service::Pricing,
                seq: 0,
                body: Message::TradePriced(c),
            },
            spontaneous,
        );
    }

    pub(crate) fn send_rejection(&mut self, trade_id: TradeId, spontaneous: bool) {
        self.custodian_or_scheduler_send(
            Envelope {
                id: msg_id(MsgKind::TradeRejected, trade_id, 0),
                from: Service::Custodian,
                to: Service::Pricing,
                seq: 0,
                body: Message::TradeRejected { trade_id },
            },
            spontaneous,
        );
    }

    pub(crate) fn send_settlement(&mut self, p: &crate::custodian::PricedTrade, spontaneous: bool) {
        self.custodian_or_scheduler_send(
            Envelope {
                id: msg_id(MsgKind::TradeSettled, p.trade.id, 0),
                from: Service::Custodian,
                to: Service::Settlement,
                seq: 0,
                body: Message::TradeSettled {
                    trade_id: p.trade.id,
                    net_units: p.net_units(),
                    net_cash: p.net_cash(),
                },
            },
            spontaneous,
        );
    }

    /// Whether the custodian is unreachable now.
    fn custodian_down(&self) -> bool {
        self.custodian_outage
            .is_some_and(|(from, until)| (from..until).contains(&self.now))
    }

    /// A message of the custodian or the scheduler, through their faults: the custodian may keep
    /// a notice to itself (`spontaneous` ones only: an answer to a chase always goes), send it
    /// late, or hold it until an outage ends; a job may fire late, or twice.
    fn custodian_or_scheduler_send(&mut self, envelope: Envelope, spontaneous: bool) {
        let faults = self.cfg.faults.clone();
        let now = self.now;
        if envelope.from == Service::Custodian {
            if let Some((_, until)) = self.custodian_outage.filter(|_| self.custodian_down()) {
                self.queue.push(until, Event::SendLater(envelope));
                return;
            }
            let amendment = matches!(&envelope.body, Message::TradePriced(c) if c.revision > 0);
            if spontaneous && !amendment && self.fault_rng.chance_ppm(faults.custodian_silent_ppm) {
                self.stats.custodian_silenced += 1;
                return;
            }
            if spontaneous && self.fault_rng.chance_ppm(faults.custodian_late_ppm) {
                self.stats.custodian_late += 1;
                let late = self
                    .fault_rng
                    .between(1, faults.custodian_late_max_min.max(1))
                    * NS_PER_MIN;
                self.queue.push(now + late, Event::SendLater(envelope));
                return;
            }
        } else if spontaneous {
            if self.fault_rng.chance_ppm(faults.job_late_ppm) {
                self.stats.jobs_late += 1;
                let late = self.fault_rng.between(1, faults.job_late_max_min.max(1)) * NS_PER_MIN;
                self.queue.push(now + late, Event::SendLater(envelope));
                return;
            }
            if self.fault_rng.chance_ppm(faults.job_twice_ppm) {
                self.stats.jobs_twice += 1;
                // The job fires again a few minutes later, as a new message.
                let again = Envelope {
                    id: envelope.id ^ 1,
                    ..envelope.clone()
                };
                self.queue
                    .push(now + 5 * NS_PER_MIN, Event::SendLater(again));
            }
        }
        self.send(envelope);
    }

    /// Sends as an outside actor. Members and the scheduler send again until acknowledged.
    fn send(&mut self, envelope: Envelope) {
        let correction = matches!(&envelope.body, Message::TradePriced(c) if c.revision > 0);
        let retried = matches!(envelope.from, Service::Members | Service::Scheduler) || correction;
        if retried && !matches!(envelope.body, Message::Ack { .. }) {
            self.external_unacked.insert(envelope.id, envelope.clone());
            self.queue.push(
                self.now + EXTERNAL_RETRY_NS,
                Event::ExternalRetry(envelope.id),
            );
        }
        bus_send(
            self.now,
            envelope,
            &mut self.queue,
            &mut self.bus_rng,
            &self.cfg.faults,
            &mut self.stats,
            self.partition,
        );
    }

    fn apply(&mut self, event: Event) {
        let now = self.now;
        let schedule = self.cfg.schedule;
        match event {
            Event::DayStart(date) => {
                if date > self.last_activity_day && self.cfg.faults != self.cfg.faults.calm() {
                    // The liveness phase: faults stop; what was accepted must now finish.
                    self.cfg.faults = self.cfg.faults.calm();
                    self.ledger.inner.set_storage_faults(false);
                    self.trace.record(&("liveness phase", date));
                }
                let drained = date > self.last_activity_day && self.quiescent();
                if drained {
                    return;
                }
                self.custodian_outage = None;
                self.partition = None;
                let business_day = self.calendar.is_business_day(date);
                if business_day && self.cfg.faults.upgrade_ppm > 0 {
                    for service in Service::PLATFORM {
                        if self.fault_rng.chance_ppm(self.cfg.faults.upgrade_ppm) {
                            let minute = self.fault_rng.between(0, 23 * 60) as u32;
                            let event = Event::Upgrade {
                                service,
                                clean: false,
                            };
                            self.queue.push(date.at_minute(minute), event);
                        }
                    }
                }
                if business_day && self.fault_rng.chance_ppm(self.cfg.faults.partition_ppm) {
                    self.stats.partitions += 1;
                    self.partition = Some(self.draw_partition(date));
                }
                if business_day
                    && self
                        .fault_rng
                        .chance_ppm(self.cfg.faults.custodian_outage_ppm)
                {
                    self.stats.custodian_outages += 1;
                    let from = date.at_minute(6 * 60 + 30);
                    let minutes = self
                        .fault_rng
                        .between(10, self.cfg.faults.custodian_outage_max_min.max(10));
                    self.custodian_outage = Some((from, from + minutes * NS_PER_MIN));
                }
                if date >= self.end_day {
                    let event = format!("day start {date}");
                    let detail = format!(
                        "seed {}: trades still open at the end of the budget of {} business days",
                        self.cfg.seed,
                        self.cfg.budget().days
                    );
                    self.violation("liveness", detail, &event);
                    return;
                }
                self.last_day = date;
                self.queue.push(
                    date.next_day().at_minute(0),
                    Event::DayStart(date.next_day()),
                );
                if !business_day {
                    return;
                }
                let first = self.calendar.on_or_after(self.cfg.start);
                let cal = &self.calendar;
                let mut plan = Vec::new();
                if date == first {
                    plan.extend(self.population.onboarding(date, &schedule, cal));
                }
                if date <= self.last_activity_day {
                    plan.extend(self.population.day(date, &schedule, cal, &self.oracle));
                }
                for (at, instruction) in plan {
                    self.queue.push(at, Event::MemberSend(instruction));
                }
                let at = |minute| self.calendar.london(date, minute);
                let (cutoff, valuation) = (at(schedule.cutoff_min), at(schedule.valuation_min));
                let (rebalance, settlement) = (at(schedule.valuation_min + 60), at(10 * 60));
                let end_of_day = at(23 * 60 + 30);
                self.queue.push(cutoff, Event::CutOffJob(date));
                self.queue.push(valuation, Event::Valuation(date));
                if date <= self.last_activity_day {
                    // Re-balancing runs after each valuation point of the active days; in the
                    // days after, the run only settles what is open.
                    self.queue.push(rebalance, Event::RebalanceJob(date));
                }
                self.queue.push(settlement, Event::SettlementDay(date));
                self.queue.push(end_of_day, Event::EndOfDay(date));
            }
            Event::MemberSend(instruction) => {
                let envelope = Envelope {
                    id: msg_id(MsgKind::Instruction, instruction.id, 0),
                    from: Service::Members,
                    to: Service::Intake,
                    seq: 0,
                    body: Message::Instruction(instruction),
                };
                self.send(envelope);
            }
            Event::CutOffJob(date) => {
                let envelope = Envelope {
                    id: msg_id(MsgKind::CutOff, date.0 as u64, 0),
                    from: Service::Scheduler,
                    to: Service::Aggregation,
                    seq: 0,
                    body: Message::CutOff { date },
                };
                self.custodian_or_scheduler_send(envelope, true);
            }
            Event::Valuation(date) => self.valuation(date),
            Event::RebalanceJob(date) => {
                let prices: Vec<(FundId, acme_processes::money::Price)> = FUNDS
                    .iter()
                    .map(|&f| (f, self.market.close(f, date)))
                    .collect();
                let by_fund: BTreeMap<FundId, acme_processes::money::Price> =
                    prices.iter().copied().collect();
                let trade_date = self.calendar.add_business_days(date, 1);
                for instruction in self.oracle.rebalance(date, &by_fund, &MODELS) {
                    self.oracle.submit(&instruction, trade_date);
                }
                self.custodian_or_scheduler_send(
                    Envelope {
                        id: msg_id(MsgKind::Rebalance, date.0 as u64, 0),
                        from: Service::Scheduler,
                        to: Service::Rebalancing,
                        seq: 0,
                        body: Message::Rebalance { date, prices },
                    },
                    true,
                );
            }
            Event::SendLater(envelope) => self.custodian_or_scheduler_send(envelope, false),
            Event::ExternalRetry(id) => {
                let stopped = |w: &mut World, to: Service| {
                    Service::PLATFORM.contains(&to)
                        && on_host!(w, to, |h, _io| h.stopped().is_some())
                };
                let target = self.external_unacked.get(&id).map(|e| e.to);
                if target.is_some_and(|to| stopped(self, to)) {
                    // Its receiver stopped for good (a violation already): give up.
                    self.external_unacked.remove(&id);
                } else if let Some(envelope) = self.external_unacked.get(&id).cloned() {
                    self.stats.external_retries += 1;
                    self.send(envelope);
                }
            }
            Event::Amend(trade_id) => {
                if let Some(c) = self.custodian.amend(trade_id) {
                    *self.trade_counts.entry("amended").or_default() += 1;
                    let trade = self.custodian.trade(trade_id).expect("amended: priced");
                    if !self.oracle.amend(trade.trade_date, trade.fund, c.price) {
                        self.violation(
                            "member_pots_match_reference",
                            format!("trade {trade_id:#x}: the model expected no such trade"),
                            &format!("amend {trade_id:#x}"),
                        );
                    }
                    self.amending.insert(trade_id, c.revision);
                    self.send_confirmation(c, true);
                }
            }
            Event::SettlementDay(date) => self.settlement_day(date),
            Event::EndOfDay(date) => self.end_of_day(date),
            Event::Deliver(envelope) => {
                self.queue.in_flight_messages -= 1;
                self.stats.messages_delivered += 1;
                self.deliver(now, envelope);
            }
            Event::Timer {
                service,
                timer_id,
                incarnation,
            } => {
                on_host!(self, service, |host, io| host.fire_timer(
                    now,
                    timer_id,
                    incarnation,
                    io
                ));
            }
            Event::Restart(service) => self.restart(service),
            Event::Upgrade { service, clean } => self.upgrade(service, clean),
            Event::LedgerApply(service) => self.ledger_apply(service),
            Event::LedgerAnswer {
                service,
                ticket,
                reply,
            } => {
                let answer = reply.ok_or(LedgerError::Unavailable {
                    reason: "simulated: no answer from the ledger".to_string(),
                });
                on_host!(self, service, |host, io| host
                    .on_ledger(now, ticket, answer, io));
            }
        }
    }

    /// Starts a crashed host again. A refusal to recover is a violation: nothing in a run
    /// should make a host's own journal unreadable to it.
    fn restart(&mut self, service: Service) {
        if on_host!(self, service, |host, _io| host.is_up()) {
            return; // restarted already (two crashes, two restarts)
        }
        if let Err(e) = self.recover(service) {
            let event = format!("restart {service:?}");
            self.violation("recovery", e.to_string(), &event);
        }
    }

    /// Brings a host up from its store (see `Recovering`); once up, the broker offers it what it
    /// delivered and the host never acknowledged, in the order it came.
    fn recover(
        &mut self,
        service: Service,
    ) -> Result<acme_processes::host::RecoveryReport, acme_processes::host::RecoveryError> {
        let now = self.now;
        let crashes = self.cfg.faults.crash_ppm > 0;
        let crash_at = (crashes && self.fault_rng.below(RECOVERY_CRASH_ONE_IN) == 0).then(|| {
            let first = self.boundaries.get(&service).copied().unwrap_or(0);
            first + self.fault_rng.below(RECOVERY_CRASH_POINTS_MAX)
        });
        self.recovering = Some(Recovering { service, crash_at });
        let result = on_host!(self, service, |host, io| host.recover(now, io));
        self.recovering = None;
        if on_host!(self, service, |host, _io| host.is_up()) {
            let unacked = self.bus.take_unacknowledged(service);
            self.stats.redeliveries += unacked.len() as u64;
            for (i, envelope) in unacked.into_iter().enumerate() {
                let at = now + REDELIVERY_NS + i as Ts;
                self.queue.push(at, Event::Deliver(envelope));
            }
        } else if on_host!(self, service, |host, _io| host.stopped().is_some()) {
            self.bus.forget(service);
        }
        result
    }

    /// Puts release `release` of a process's code on its host (which must be down).
    fn deploy(&mut self, service: Service, release: u32) {
        let s = self.cfg.schedule;
        match service {
            Service::Intake => self.intake.deploy(code::intake(release)),
            Service::Aggregation => self.aggregation.deploy(code::aggregation(s, release)),
            Service::Pricing => self.pricing.deploy(code::pricing(s, release)),
            Service::Settlement => self.settlement.deploy(code::settlement(s, release)),
            Service::Rebalancing => self.rebalancing.deploy(code::rebalancing(release)),
            other => panic!("{other:?} is not a platform process"),
        }
    }

    /// Deploys the next release of a process's code. Cleanly: once no ledger request is
    /// outstanding, a stop with a snapshot, then the new code, which migrates it. Abruptly: a
    /// crash, then the new code, which must refuse the old release's journal (it reads ledger
    /// answers differently); operations then start the old code again and deploy cleanly.
    fn upgrade(&mut self, service: Service, clean: bool) {
        let now = self.now;
        let later = |world: &mut World, after: Ts| {
            let event = Event::Upgrade {
                service,
                clean: true,
            };
            world.queue.push(now + after, event);
        };
        if !on_host!(self, service, |host, _io| host.is_up()) {
            return later(
                self,
                self.cfg.faults.restart_delay_ms * 1_000_000 + 1_000_000_000,
            );
        }
        let release = self.releases.get(&service).copied().unwrap_or(0);
        let event = format!("upgrade {service:?} to release {}", release + 1);
        self.trace.record(&("upgrade", service, release + 1, clean));
        if clean || self.fault_rng.below(2) == 0 {
            if on_host!(self, service, |host, _io| host.ledger_pending()) > 0 {
                return later(self, 10_000_000);
            }
            if !on_host!(self, service, |host, io| host.shutdown(now, io)) {
                return later(self, 1_000_000_000); // crashed on the way down: try again
            }
            self.deploy(service, release + 1);
            match self.recover(service) {
                Ok(_) => {
                    self.releases.insert(service, release + 1);
                    self.stats.upgrades += 1;
                }
                Err(e) => self.violation("recovery", format!("a clean upgrade: {e}"), &event),
            }
            return;
        }
        on_host!(self, service, |host, _io| host.crash());
        self.deploy(service, release + 1);
        match self.recover(service) {
            Ok(_) => {
                // Nothing after the last snapshot (or a planted unversioned replay).
                self.releases.insert(service, release + 1);
                self.stats.upgrades += 1;
            }
            Err(acme_processes::host::RecoveryError::Version { .. }) => {
                self.stats.upgrades_refused += 1;
                self.deploy(service, release);
                if let Err(e) = self.recover(service) {
                    self.violation("recovery", format!("the old release again: {e}"), &event);
                }
                later(self, 1_000_000_000);
            }
            Err(e) => self.violation("recovery", format!("an abrupt upgrade: {e}"), &event),
        }
    }

    /// The ledger takes the request at the head of a host's pipeline and answers it after a
    /// seeded latency; an injected `Unavailable` (the request applied or not) voids every
    /// request behind it, which are answered `Unavailable` unapplied.
    fn ledger_apply(&mut self, service: Service) {
        let pipe = self
            .pipes
            .get_mut(&service)
            .expect("a pipeline for a scheduled call");
        let (ticket, request, _) = pipe.queue.pop_front().expect("a request at the head");
        let faults = &self.cfg.faults;
        let unavailable = self.ledger_rng.chance_ppm(faults.ledger_unavailable_ppm);
        self.stats.ledger_unavailable_injected += u64::from(unavailable);
        let apply = !unavailable || self.ledger_rng.below(2) == 0;
        let mut answers = Vec::new();
        if apply {
            let reply = match acme_processes::host::execute(&mut self.ledger, &request) {
                Ok(reply) => Some(reply),
                Err(LedgerError::Unavailable { .. }) => None,
                Err(e) => panic!("{service:?}: the ledger refused a request: {e}"),
            };
            self.trace.record(&(service, &request, &reply));
            self.paging.on_request(service, &request);
            answers.push((ticket, if unavailable { None } else { reply }));
        } else {
            answers.push((ticket, None));
        }
        if answers[0].1.is_none() {
            self.ledger_unavailable += 1;
            let pipe = self.pipes.get_mut(&service).expect("pipe");
            answers.extend(pipe.queue.drain(..).map(|(t, _, _)| (t, None)));
        }
        let (min_us, max_us) = (faults.ledger_latency_min_us, faults.ledger_latency_max_us);
        for (ticket, reply) in answers {
            let at = self.now + self.ledger_rng.between(min_us, max_us) * 1_000;
            self.queue.push(
                at,
                Event::LedgerAnswer {
                    service,
                    ticket,
                    reply,
                },
            );
        }
        let pipe = self.pipes.get_mut(&service).expect("pipe");
        pipe.scheduled = false;
        if let Some(&(_, _, ready)) = pipe.queue.front() {
            pipe.scheduled = true;
            self.queue
                .push(ready.max(self.now), Event::LedgerApply(service));
        }
    }

    fn deliver(&mut self, now: Ts, envelope: Envelope) {
        match envelope.to {
            Service::Custodian => {
                if let Message::Ack { id } = envelope.body {
                    // The custodian sends only its corrections until acknowledged; for the rest
                    // our side chases it.
                    self.external_unacked.remove(&id);
                    return;
                }
                if self.custodian_down() {
                    self.stats.custodian_unreachable += 1;
                    return; // no acknowledgement: the sender sends again
                }
                self.send(Envelope {
                    id: acme_processes::host::ack_id(envelope.id, Service::Custodian),
                    from: Service::Custodian,
                    to: envelope.from,
                    seq: 0,
                    body: Message::Ack { id: envelope.id },
                });
                match envelope.body {
                    Message::PlaceTrade(trade) => self.place_trade(now, trade),
                    Message::ChaseConfirmation { trade_id } => {
                        self.stats.chases += 1;
                        match self.custodian.answer(trade_id) {
                            Some(Some(c)) => self.send_confirmation(c, false),
                            Some(None) => self.send_rejection(trade_id, false),
                            None => {} // not valued yet: the chase comes again
                        }
                    }
                    Message::ChaseSettlement { trade_id } => {
                        self.stats.chases += 1;
                        self.check_settlement_chase(now, trade_id);
                        if let Some(p) = self.custodian.settled_trade(trade_id) {
                            self.send_settlement(&p, false);
                        }
                    }
                    _ => {}
                }
            }
            Service::Members | Service::Scheduler => {
                // Members (through the API client) and the scheduler send until acknowledged.
                match envelope.body {
                    Message::Ack { id } => {
                        self.external_unacked.remove(&id);
                    }
                    Message::InstructionStatus { id, state } => {
                        // The member's channel learns the outcome, and acknowledges it.
                        let before = self.statuses.insert(id, state);
                        if before.is_some_and(|b| b.is_terminal() && b != state) {
                            let event = describe(&Event::Deliver(envelope.clone()));
                            self.violation(
                                "status_final",
                                format!("instruction {id:#x} reported {before:?}, then {state:?}"),
                                &event,
                            );
                        }
                        self.send(Envelope {
                            id: acme_processes::host::ack_id(envelope.id, Service::Members),
                            from: Service::Members,
                            to: envelope.from,
                            seq: 0,
                            body: Message::Ack { id: envelope.id },
                        });
                    }
                    _ => {}
                }
            }
            service => {
                self.bus.delivering(&envelope);
                let envelope_copy = envelope.clone();
                let delivery = on_host!(self, service, |host, io| host.deliver(now, envelope, io));
                if let Delivery::Handled = delivery {
                    self.paging.on_message(&envelope_copy.body);
                }
                if let (Delivery::Handled, Message::Instruction(instruction)) =
                    (delivery, &envelope_copy.body)
                {
                    self.taken
                        .entry(instruction.id)
                        .or_insert((instruction.kind.clone(), instruction.origin));
                    // The model takes a member's instruction when intake does: the order in
                    // which intake sees instructions decides what each is measured against.
                    if envelope_copy.from == Service::Members {
                        let cutoff = self.cfg.schedule.cutoff_min;
                        let dealing = self.calendar.dealing_date(now, cutoff);
                        self.oracle.submit(instruction, dealing);
                    }
                }
                if let (
                    Delivery::Handled,
                    Message::TradeAllocated {
                        trade, revision, ..
                    },
                ) = (delivery, &envelope_copy.body)
                {
                    if self.amending.get(&trade.id).is_some_and(|r| r <= revision) {
                        self.amending.remove(&trade.id);
                    }
                }
                if let (Delivery::Handled, Message::InstructionsAdvanced { orders, state }) =
                    (delivery, &envelope_copy.body)
                {
                    let partial = orders.iter().filter(|a| a.partial);
                    self.partial.extend(partial.map(|a| a.instruction));
                    // A switch's purchase is received when intake hears its sale settled.
                    let dealing = self
                        .calendar
                        .dealing_date(now, self.cfg.schedule.cutoff_min);
                    let settled = *state == InstructionState::Settled;
                    for a in orders.iter().filter(|a| settled && a.leg == 0) {
                        self.oracle.purchase_received(a.instruction, dealing);
                    }
                }
                match delivery {
                    Delivery::Duplicate => self.stats.duplicates_dropped += 1,
                    // The broker offers what the consumer did not acknowledge again once it is
                    // back; a host stopped for good (it refused to recover: a violation already)
                    // is offered nothing more, or the run would never end.
                    Delivery::Down if on_host!(self, service, |h, _io| h.stopped().is_some()) => {
                        self.bus.forget(service);
                    }
                    _ => {}
                }
            }
        }
    }

    fn record(&mut self, mut v: Violation, event: &str) {
        v.at = self.now;
        v.event = event.to_string();
        self.violation_count += 1;
        if LIVENESS_INVARIANTS.contains(&v.invariant.as_str()) {
            self.liveness_failures += 1;
        }
        if self.violations.len() < VIOLATIONS_KEPT {
            self.violations.push(v);
        }
    }

    pub(crate) fn violation(&mut self, invariant: &str, detail: String, event: &str) {
        self.record(
            Violation {
                invariant: invariant.to_string(),
                detail,
                at: 0,
                event: String::new(),
            },
            event,
        );
    }

    fn after_event(&mut self, event: &str) {
        while self.alerts_seen < self.alerts.len() {
            let (_, alert) = self.alerts[self.alerts_seen].clone();
            self.alerts_seen += 1;
            self.violation(
                "no_alerts",
                format!("{}: {}", alert.process, alert.what),
                event,
            );
        }
        for (invariant, detail) in self.ledger.inner.take_violations() {
            self.violation(&invariant, detail, event);
        }
        if self.ledger.inner.halted().is_some() {
            // The run ends with this event; the ledger it would check is gone.
            return;
        }
        let touched = std::mem::take(&mut self.ledger.touched);
        self.checker.touched(&mut *self.ledger.inner, &touched);
        for v in std::mem::take(&mut self.checker.found) {
            self.record(v, event);
        }
        self.watch_trades(event);
    }

    /// The accounts of `ids` (at most one batch) that exist, by id.
    fn accounts_by_id(&mut self, ids: &[u128]) -> BTreeMap<u128, Account> {
        lookup_for_check(&mut *self.ledger.inner, ids)
            .into_iter()
            .map(|a| (a.id, a))
            .collect()
    }

    pub(crate) fn compare_units(
        &mut self,
        pots: &[(u64, FundId)],
        with_reserved: bool,
        event: &str,
    ) {
        for chunk in pots.chunks(acme_ledger::BATCH_EVENTS_MAX) {
            let ids: Vec<u128> = chunk
                .iter()
                .map(|&(m, f)| chart::member_units(m, f))
                .collect();
            let found = self.accounts_by_id(&ids);
            for (&(member, fund), id) in chunk.iter().zip(&ids) {
                let expected = self.oracle.units(member, fund);
                let (settled, pending, reserved) = found
                    .get(id)
                    .map(|a| {
                        (
                            a.credits_posted - a.debits_posted,
                            a.credits_pending,
                            a.debits_pending,
                        )
                    })
                    .unwrap_or((0, 0, 0));
                let want = (
                    expected.settled as u128,
                    expected.pending as u128,
                    if with_reserved {
                        expected.reserved as u128
                    } else {
                        reserved
                    },
                );
                if (settled, pending, reserved) != want {
                    self.violation(
                        "member_pots_match_reference",
                        format!(
                            "member {member} fund {fund}: ledger {settled} settled + {pending} pending \
                             ({reserved} reserved), reference {} + {} ({} reserved)",
                            want.0, want.1, want.2
                        ),
                        event,
                    );
                }
            }
        }
    }

    fn end_of_day(&mut self, date: Date) {
        let event = format!("end of day {date}");
        for v in crate::export::end_of_day_recon(self, date) {
            self.record(v, &event);
        }
        // Recount every account and compare with the running sums.
        let accounts: Vec<Account> = self.ledger.all_accounts();
        self.checker.recount(&accounts);
        for v in std::mem::take(&mut self.checker.found) {
            self.record(v, &event);
        }
        if !self.messages_settled() {
            // Oracles compare settled states; with messages in flight, or held up for want of an
            // acknowledgement, the platform lags them. Counted, and made up for later.
            self.oracle_days.skip(date);
            return;
        }
        self.oracle_days.ran();
        self.business_oracles(&event);
    }

    /// The oracles that compare settled states: the trading accounts flat, the custodian's books
    /// against the ledger's mirror, every pot and the roundings against the reference model.
    fn business_oracles(&mut self, event: &str) {
        let event = event.to_string();
        // Nothing in flight: what was posted into the trading accounts is exactly what they have
        // promised out as pending allocation lines (reservations taken for tomorrow's trades are
        // pending credits and do not count).
        for ledger in
            std::iter::once(LEDGER_CASH_GBP).chain(FUNDS.iter().map(|&f| chart::fund_ledger(f)))
        {
            let trading = self.checker.sums(ledger, AccountKind::AcmeTrading);
            if trading.credit_balance_posted() != trading.debits_pending {
                self.violation(
                    "trading_accounts_flat",
                    format!("ledger {ledger}: {trading:?}"),
                    &event,
                );
            }
        }
        // Oracle (a): the custodian's own books equal the ledger's mirror of them.
        for fund in FUNDS {
            let ledger = chart::fund_ledger(fund);
            let holding = self.custodian.holding(fund);
            let settled = -self
                .checker
                .sums(ledger, AccountKind::CustodianSettled)
                .credit_balance_total();
            let unsettled = -self
                .checker
                .sums(ledger, AccountKind::CustodianUnsettled)
                .credit_balance_total();
            if settled != holding.settled_units || unsettled != holding.pending_units {
                self.violation(
                    "custodian_books_match_mirror",
                    format!(
                        "fund {fund}: custodian {} settled / {} pending units, ledger mirror {settled} / {unsettled}",
                        holding.settled_units, holding.pending_units
                    ),
                    &event,
                );
            }
        }
        let cash_settled = self
            .checker
            .sums(LEDGER_CASH_GBP, AccountKind::CustodianSettled)
            .credit_balance_total();
        let cash_unsettled = self
            .checker
            .sums(LEDGER_CASH_GBP, AccountKind::CustodianUnsettled)
            .credit_balance_total();
        let (paid_settled, paid_pending) = FUNDS.iter().fold((0i128, 0i128), |(s, p), &f| {
            let h = self.custodian.holding(f);
            (s + h.settled_cash_pence, p + h.pending_cash_pence)
        });
        if cash_settled != paid_settled || cash_unsettled != paid_pending {
            self.violation(
                "custodian_books_match_mirror",
                format!("cash: custodian {paid_settled} settled / {paid_pending} pending, ledger {cash_settled} / {cash_unsettled}"),
                &event,
            );
        }
        // Oracle (c): each trade, from the custodian's books with the simulator's own arithmetic.
        self.reconcile_trades(&event);
        // Oracle (b): every pot equals the reference model.
        let members: Vec<(u64, u64)> = self.oracle.members().map(|(&m, &c)| (m, c)).collect();
        for chunk in members.chunks(acme_ledger::BATCH_EVENTS_MAX) {
            let ids: Vec<u128> = chunk.iter().map(|&(m, _)| chart::member_cash(m)).collect();
            let found = self.accounts_by_id(&ids);
            for (&(member, expected), id) in chunk.iter().zip(&ids) {
                let figures = found.get(id).map(|a| {
                    (
                        a.credits_posted as i128
                            - a.debits_posted as i128
                            - a.debits_pending as i128,
                        a.credits_pending,
                    )
                });
                let want = (expected as i128, self.oracle.pending_cash(member) as u128);
                if figures != Some(want) {
                    self.violation(
                        "member_pots_match_reference",
                        format!("member {member} cash (available, pending): ledger {figures:?}, reference {want:?}"),
                        &event,
                    );
                }
            }
        }
        let pots: Vec<(u64, FundId)> = self.oracle.holdings().map(|(&k, _)| k).collect();
        self.compare_units(&pots, true, &event);
        let mut roundings: Vec<(String, u128, crate::oracle::Rounding)> = FUNDS
            .iter()
            .map(|&f| {
                (
                    format!("fund {f}"),
                    chart::house(AccountKind::AcmeRounding, chart::fund_ledger(f)),
                    self.oracle.rounding_units(f),
                )
            })
            .collect();
        roundings.push((
            "cash".to_string(),
            chart::house(AccountKind::AcmeRounding, LEDGER_CASH_GBP),
            self.oracle.rounding_cash(),
        ));
        for (what, id, expected) in roundings {
            let a = lookup_for_check(&mut *self.ledger.inner, &[id])[0];
            if a.credits_posted != expected.settled as u128
                || a.credits_pending != expected.pending as u128
            {
                self.violation(
                    "rounding_matches_reference",
                    format!(
                        "{what}: ledger {} + {} pending, reference {} + {}",
                        a.credits_posted, a.credits_pending, expected.settled, expected.pending
                    ),
                    &event,
                );
            }
        }
    }

    fn final_checks(&mut self) {
        let event = "end of run";
        if self.ledger.inner.halted().is_some() {
            // A safe halt ended the run early: nothing was meant to finish.
            return;
        }
        self.ledger.inner.end_of_run();
        for (invariant, detail) in self.ledger.inner.take_violations() {
            self.violation(&invariant, detail, event);
        }
        // A run whose last end-of-day oracles were skipped makes them up now, once quiet.
        if self.oracle_days.unchecked_since.is_some() && self.messages_settled() {
            self.oracle_days.ran();
            self.business_oracles(event);
        }
        self.settle_watch.finish();
        if let Some(why) = self.oracle_days.verdict() {
            self.violation("oracles_ran", why, event);
        }
        // Judged by what the members were told (intake retires an instruction once it has
        // reported its terminal state), not by intake's memory.
        let live = self
            .intake
            .process()
            .expect("intake up")
            .inner
            .instructions();
        let expected = self.oracle.expected_states();
        let mut problems = Vec::new();
        for (id, want) in expected {
            match (self.statuses.get(id), live.get(id)) {
                (None, None) => problems.push((
                    "instruction_terminal",
                    format!("instruction {id:#x} never reached intake, or its end was never reported"),
                )),
                (None, Some(r)) => problems.push((
                    "instruction_terminal",
                    format!("instruction {id:#x} ended {:?}", r.state),
                )),
                (Some(state), Some(r)) if state.is_terminal() => problems.push((
                    "instruction_retired",
                    format!(
                        "intake still holds instruction {id:#x} as {:?}, after telling the member it ended {state:?}",
                        r.state
                    ),
                )),
                // A run stopped for liveness left instructions half way: unfinished, not wrong.
                (Some(state), _) if !state.is_terminal() && self.overran => problems.push((
                    "instruction_terminal",
                    format!("instruction {id:#x} was {state:?} when the run was stopped"),
                )),
                (Some(state), _) if state != want => problems.push((
                    "instruction_outcome_matches_reference",
                    format!("instruction {id:#x} ended {state:?}, reference says {want:?}"),
                )),
                (Some(_), _) => {}
            }
        }
        let told: BTreeSet<&u64> = self.statuses.keys().collect();
        let unexpected = told.iter().filter(|id| !expected.contains_key(id)).count();
        if unexpected > 0 {
            problems.push((
                "instruction_terminal",
                format!("members were told of {unexpected} instructions they never gave"),
            ));
        }
        if self.oracle.open_orders() > 0 {
            problems.push((
                "custodian_trades_complete",
                format!("{} orders never valued", self.oracle.open_orders()),
            ));
        }
        // A trade placed after its valuation point is no fault: it was priced at its close.
        if self.custodian.unpriced() > 0 || self.custodian.unsettled() > 0 {
            problems.push((
                "custodian_trades_complete",
                format!(
                    "{} unpriced, {} unsettled",
                    self.custodian.unpriced(),
                    self.custodian.unsettled(),
                ),
            ));
        }
        for (invariant, detail) in problems {
            self.violation(invariant, detail, event);
        }
    }

    fn summary(&mut self) -> Summary {
        let accounts = self.ledger.all_accounts();
        // Intake may be down when a safe halt ended the run early.
        let none = BTreeMap::new();
        let live = self
            .intake
            .process()
            .map_or(&none, |p| p.inner.instructions());
        let mut by_state: BTreeMap<String, u64> = InstructionState::ALL
            .iter()
            .map(|s| (format!("{s:?}").to_lowercase(), 0))
            .collect();
        let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
        let mut trades: BTreeMap<String, u64> = [
            "buy",
            "sell",
            "switch",
            "rebalance",
            "crossed",
            "external",
            "rejected",
            "partial",
            "amended",
            "late_settlement",
        ]
        .iter()
        .map(|k| (k.to_string(), 0))
        .collect();
        let mut member_orders = 0;
        let mut partially_filled = 0;
        for (id, (instruction_kind, origin)) in &self.taken {
            let state = match (self.statuses.get(id), live.get(id)) {
                (Some(state), _) => *state,
                (None, Some(r)) => r.state,
                (None, None) => continue,
            };
            *by_state
                .entry(format!("{state:?}").to_lowercase())
                .or_default() += 1;
            let kind = match (instruction_kind, *origin) {
                (_, Origin::Rebalancing) => "rebalance",
                (InstructionKind::Onboard { .. }, _) => "onboard",
                (InstructionKind::Contribute { .. }, _) => "contribute",
                (InstructionKind::Invest { .. }, _) => "invest",
                (InstructionKind::Sell { .. }, _) => "sell",
                (InstructionKind::Switch { .. }, _) => "switch",
            };
            *by_kind.entry(kind.to_string()).or_default() += 1;
            let trades_kind = match kind {
                "invest" => Some("buy"),
                "sell" | "switch" | "rebalance" => Some(kind),
                _ => None,
            };
            if let Some(k) = trades_kind {
                if state != InstructionState::Rejected {
                    member_orders += 1;
                    *trades.get_mut(k).expect("listed") += 1;
                }
            }
            if live.get(id).is_some_and(|r| r.partial) || self.partial.contains(id) {
                partially_filled += 1;
            }
        }
        for (k, n) in &self.trade_counts {
            *trades.entry(k.to_string()).or_default() += n;
        }
        trades.insert("external".to_string(), self.stats.external_trades);
        let hosts = [
            self.intake.stats(),
            self.aggregation.stats(),
            self.pricing.stats(),
            self.settlement.stats(),
            self.rebalancing.stats(),
        ];
        Summary {
            seed: self.cfg.seed,
            days: self.cfg.days,
            members: self.cfg.members,
            first_day: self.calendar.on_or_after(self.cfg.start).to_string(),
            last_day: self.last_day.to_string(),
            trace_hash: format!("{:016x}", self.trace.hash()),
            ledger_digest: format!("{:016x}", ledger_digest(&accounts)),
            violations: self.violations.clone(),
            violation_count: self.violation_count,
            instructions_by_state: by_state,
            instructions_by_kind: by_kind,
            member_trades: member_orders,
            instructions_partially_filled: partially_filled,
            trades,
            external_trades: self.stats.external_trades,
            dealt: crate::summary::dealt(&self.dealt),
            transfers: self.ledger.transfers_applied,
            transfers_submitted: self.ledger.transfers_submitted,
            accounts: accounts.len() as u64,
            events: self.stats.events,
            messages_sent: self.stats.messages_sent,
            messages_lost: self.stats.messages_lost,
            messages_duplicated: self.stats.messages_duplicated,
            duplicates_dropped: self.stats.duplicates_dropped,
            crashes: self.stats.crashes,
            redeliveries: self.stats.redeliveries,
            retransmissions: hosts.iter().map(|h| h.retransmissions).sum::<u64>()
                + self.stats.external_retries,
            snapshots: hosts.iter().map(|h| h.snapshots).sum(),
            recoveries: hosts.iter().map(|h| h.recoveries).sum(),
            journal_tail_max: hosts.iter().map(|h| h.journal_tail_max).max().unwrap_or(0),
            dead_letters: hosts.iter().map(|h| h.dead_letters).sum(),
            ledger_unavailable: self.ledger_unavailable,
            upgrades: self.stats.upgrades,
            upgrades_refused: self.stats.upgrades_refused,
            chases: self.stats.chases,
            faults_injected: [
                ("lost", self.stats.messages_lost),
                ("duplicated", self.stats.messages_duplicated),
                ("delay_spikes", self.stats.delay_spikes),
                ("crashes", self.stats.crashes),
                ("custodian_silent", self.stats.custodian_silenced),
                ("custodian_late", self.stats.custodian_late),
                ("custodian_outages", self.stats.custodian_outages),
                ("custodian_unreachable", self.stats.custodian_unreachable),
                ("jobs_late", self.stats.jobs_late),
                ("jobs_twice", self.stats.jobs_twice),
                ("partitions", self.stats.partitions),
                ("partition_drops", self.stats.partition_drops),
            ]
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect(),
            faults: self.cfg.fault_name.clone(),
            fault_plan: self.cfg.chaos_faults.describe(),
            liveness_failures: self.liveness_failures,
            oracle_days_checked: self.oracle_days.checked,
            oracle_days_skipped: self.oracle_days.skipped,
            settled_pots: self.settle_watch.coverage,
            trade_checks: self.trade_watch.checks,
            trades_reconciled: self.trade_recon.compared,
            contributed_pence: self.oracle.total_contributed(),
            wall_ms: 0,
            storage: self.ledger.inner.storage_summary(),
            paging: self.paging.summary(),
            coverage: crate::coverage::of(self),
            budget_events: self.cfg.budget().events,
            budget_days: self.cfg.budget().days,
        }
    }
}

/// A digest of every account's balances, in id order, timestamps left out: the same for any
/// backend that applied the same transfers.
pub fn ledger_digest(accounts: &[Account]) -> u64 {
    let mut sorted: Vec<&Account> = accounts.iter().collect();
    sorted.sort_by_key(|a| a.id);
    let mut h = Fnv64::default();
    for a in sorted {
        (
            a.id,
            a.ledger,
            a.code,
            a.flags.0,
            a.debits_pending,
            a.debits_posted,
            a.credits_pending,
            a.credits_posted,
        )
            .hash(&mut h);
    }
    h.finish()
}

fn describe(event: &Event) -> String {
    match event {
        Event::Deliver(env) => format!("deliver {:?} -> {:?} #{:x}", env.from, env.to, env.id),
        Event::MemberSend(i) => format!("member {} sends instruction {:#x}", i.member, i.id),
        Event::Timer {
            service, timer_id, ..
        } => format!("timer {timer_id:#x} of {service:?}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
#[cfg(test)]
#[path = "dealing_tests.rs"]
mod dealing_tests;

#[cfg(test)]
#[path = "world_tests.rs"]
mod tests;
