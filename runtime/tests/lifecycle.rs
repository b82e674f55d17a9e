//! The whole trade lifecycle on the runtime: a few hundred members over a few business days,
//! the five platform processes on tokio with their journals on files, the durable ledger on
//! files, and an accelerated clock. Midway the runtime is killed (no clean stop) and a new one
//! starts on the same data directory. At the end every member's pot in the ledger equals the
//! reference model's, and every instruction ended as the model says.
//!
//! The outside world is this test's driver task: members (their instructions, sent again until
//! acknowledged; the statuses intake reports, acknowledged), the scheduler (cut-off,
//! re-balancing jobs) and the custodian (`acme_sim::custodian::Custodian`: it takes trades,
//! prices them at the market's close, answers chases, settles), fed exactly as the simulator's
//! world feeds them, with `acme_sim::oracle::Oracle` as the independent reference model.
//!
//! Time: the clock runs at [`SPEED`] times real time while anything is under way, and the
//! driver skips it forward whenever the runtime is quiet (nothing queued, nothing in flight,
//! no timer due before the next thing the outside world does), so a business day costs the
//! real time its work takes, not 24 hours / SPEED.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_ledger::chart::{self, AccountKind, FundId, LEDGER_CASH_GBP};
use acme_ledger::{Account, CreateAccountResult, Ledger};
use acme_processes::calendar::{Date, Schedule, Ts};
use acme_processes::messages::{
    msg_id, trade_date, trade_fund, Confirmation, Instruction, InstructionKind, InstructionState,
    Message, MsgKind, TradeId,
};
use acme_processes::money::Price;
use acme_processes::process::{Envelope, Service};
use acme_runtime::{AcceleratedClock, Clock, Config, Gateway, Runtime};
use acme_sim::calendar::{year_of, WorldCalendar};
use acme_sim::custodian::{Behaviour, Custodian, Outcome, PricedTrade};
use acme_sim::market::Market;
use acme_sim::members::{Population, MODELS};
use acme_sim::oracle::Oracle;
use acme_sim::world::{DRAIN_BUSINESS_DAYS_MAX, EXTERNAL_RETRY_NS, FUNDS};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const SEED: u64 = 11;
const MEMBERS: u64 = 300;
/// Business days of member activity; the run goes on until every trade has settled.
const DAYS: u32 = 6;
/// Virtual time runs this much faster than real time while the platform is busy.
const SPEED: u64 = 100;
/// The test fails rather than run longer than this (real time).
const REAL_DEADLINE: Duration = Duration::from_secs(240);

#[derive(Clone, Debug)]
enum Ev {
    DayStart(Date),
    MemberSend(Instruction),
    CutOffJob(Date),
    Valuation(Date),
    RebalanceJob(Date),
    SettlementDay(Date),
    Amend(TradeId),
    EndOfDay(Date),
    Retry(u128),
}

#[derive(Debug, Default)]
struct Counts {
    instructions_sent: u64,
    resent: u64,
    statuses: u64,
    trades_placed: u64,
    chases: u64,
    pot_checks: u64,
    pot_checks_skipped: u64,
    skips: u64,
    rebalance_switches: u64,
    by_kind: BTreeMap<&'static str, u64>,
}

/// Why a phase of the drive ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Time to kill the runtime.
    Kill,
    /// Everything settled, or the run gave up.
    Done,
}

struct Outside {
    clock: Arc<AcceleratedClock>,
    schedule: Schedule,
    first_day: Date,
    /// The outside world's own business days (the custodian's, the market's, the model's).
    calendar: WorldCalendar,
    last_activity_day: Date,
    end_day: Date,
    population: Population,
    market: Market,
    custodian: Custodian,
    oracle: Oracle,
    events: BTreeMap<(Ts, u64), Ev>,
    seq: u64,
    /// Messages of members and the scheduler (and the custodian's corrections) not yet
    /// acknowledged.
    unacked: BTreeMap<u128, Envelope>,
    /// The last state intake reported for each instruction.
    statuses: BTreeMap<u64, InstructionState>,
    gateway: Option<Gateway>,
    counts: Counts,
    problems: Vec<String>,
    /// Kill the runtime this long (real time) after the first event of this kind at or after
    /// this time.
    kills: Vec<(Ts, &'static str, Duration)>,
    /// The longest a member's instruction waited for intake's acknowledgement (virtual ns).
    ack_latency_max: Ts,
    sent_at: BTreeMap<u128, Ts>,
    done: bool,
}

impl Outside {
    fn new(clock: Arc<AcceleratedClock>, first_day: Date) -> Outside {
        let schedule = Schedule::default();
        let year = year_of(first_day);
        let calendar = WorldCalendar::england_and_wales(year, year + 1);
        let last_activity_day = calendar.add_business_days(first_day, DAYS - 1);
        let end_day = calendar.add_business_days(last_activity_day, DRAIN_BUSINESS_DAYS_MAX);
        let mut o = Outside {
            clock,
            schedule,
            first_day,
            calendar: calendar.clone(),
            last_activity_day,
            end_day,
            population: Population::new(SEED, MEMBERS, &FUNDS),
            market: Market::new(SEED, &FUNDS, &calendar, first_day, end_day),
            custodian: Custodian::new(
                SEED,
                Behaviour::default(),
                schedule.settlement_lag_days,
                calendar,
            ),
            oracle: Oracle::default(),
            events: BTreeMap::new(),
            seq: 0,
            unacked: BTreeMap::new(),
            statuses: BTreeMap::new(),
            gateway: None,
            counts: Counts::default(),
            problems: Vec::new(),
            kills: Vec::new(),
            ack_latency_max: 0,
            sent_at: BTreeMap::new(),
            done: false,
        };
        o.push(first_day.at_minute(0), Ev::DayStart(first_day));
        o
    }

    fn now(&self) -> Ts {
        self.clock.now()
    }

    fn push(&mut self, at: Ts, ev: Ev) {
        self.events.insert((at, self.seq), ev);
        self.seq += 1;
    }

    fn problem(&mut self, what: String) {
        eprintln!("PROBLEM at {}: {what}", self.now());
        self.problems.push(what);
    }

    /// Sends as an outside party; members and the scheduler (and the custodian, for its
    /// corrections) send again until acknowledged.
    fn send(&mut self, envelope: Envelope) {
        let correction = matches!(&envelope.body, Message::TradePriced(c) if c.revision > 0);
        let retried = matches!(envelope.from, Service::Members | Service::Scheduler) || correction;
        if retried && !matches!(envelope.body, Message::Ack { .. }) {
            self.unacked.insert(envelope.id, envelope.clone());
            self.push(self.now() + EXTERNAL_RETRY_NS, Ev::Retry(envelope.id));
        }
        // A runtime that is gone takes nothing; what matters is sent again.
        let _ = self.gateway.as_ref().expect("a runtime").send(envelope);
    }

    fn ack(&mut self, envelope: &Envelope, from: Service) {
        self.send(Envelope {
            id: acme_processes::host::ack_id(envelope.id, from),
            from,
            to: envelope.from,
            seq: 0,
            body: Message::Ack { id: envelope.id },
        });
    }

    /// What the platform sent out.
    fn receive(&mut self, envelope: Envelope) {
        let now = self.now();
        match envelope.to {
            Service::Custodian => {
                if let Message::Ack { id } = envelope.body {
                    self.unacked.remove(&id);
                    return;
                }
                self.ack(&envelope, Service::Custodian);
                match envelope.body {
                    Message::PlaceTrade(trade) => {
                        let passed = now >= trade.trade_date.at_minute(self.schedule.valuation_min);
                        if self.custodian.place(trade, passed) {
                            self.counts.trades_placed += 1;
                        }
                    }
                    Message::ChaseConfirmation { trade_id } => {
                        self.counts.chases += 1;
                        match self.custodian.answer(trade_id) {
                            Some(Some(c)) => self.send_confirmation(c),
                            Some(None) => self.send_rejection(trade_id),
                            None => {}
                        }
                    }
                    Message::ChaseSettlement { trade_id } => {
                        self.counts.chases += 1;
                        if let Some(p) = self.custodian.settled_trade(trade_id) {
                            self.send_settlement(&p);
                        }
                    }
                    _ => {}
                }
            }
            Service::Members | Service::Scheduler => match envelope.body {
                Message::Ack { id } => {
                    if let Some(sent) = self.unacked.remove(&id) {
                        if let Some(at) = self.sent_at.remove(&id) {
                            self.ack_latency_max = self.ack_latency_max.max(now - at);
                        }
                        if let (Service::Members, Message::Instruction(instruction)) =
                            (sent.from, &sent.body)
                        {
                            // The model takes a member's instruction when intake does; intake
                            // acknowledges in the order it committed, and the bus keeps that
                            // order.
                            let cutoff = self.schedule.cutoff_min;
                            let dealing = self.calendar.dealing_date(now, cutoff);
                            self.oracle.submit(instruction, dealing);
                        }
                    }
                }
                Message::InstructionStatus { id, state } => {
                    self.counts.statuses += 1;
                    let before = self.statuses.insert(id, state);
                    if before.is_some_and(|b| b.is_terminal() && b != state) {
                        self.problem(format!(
                            "instruction {id:#x} reported {before:?}, then {state:?}"
                        ));
                    }
                    self.ack(&envelope, Service::Members);
                }
                _ => {}
            },
            other => self.problem(format!("a message for {other:?} came out: {envelope:?}")),
        }
    }

    fn send_confirmation(&mut self, c: Confirmation) {
        self.send(Envelope {
            id: msg_id(MsgKind::TradePriced, c.trade_id, c.revision as u64),
            from: Service::Custodian,
            to: Service::Pricing,
            seq: 0,
            body: Message::TradePriced(c),
        });
    }

    fn send_rejection(&mut self, trade_id: TradeId) {
        self.send(Envelope {
            id: msg_id(MsgKind::TradeRejected, trade_id, 0),
            from: Service::Custodian,
            to: Service::Pricing,
            seq: 0,
            body: Message::TradeRejected { trade_id },
        });
    }

    fn send_settlement(&mut self, p: &PricedTrade) {
        self.send(Envelope {
            id: msg_id(MsgKind::TradeSettled, p.trade.id, 0),
            from: Service::Custodian,
            to: Service::Settlement,
            seq: 0,
            body: Message::TradeSettled {
                trade_id: p.trade.id,
                net_units: p.net_units(),
                net_cash: p.net_cash(),
            },
        });
    }

    /// Nothing left to happen, inside or out.
    fn quiescent(&self, rt: &Runtime) -> bool {
        self.oracle.open_orders() == 0
            && self.oracle.switches_waiting() == 0
            && self.custodian.unpriced() == 0
            && self.custodian.unsettled() == 0
            && self.unacked.is_empty()
            && rt.settled()
    }

    /// Applies one event of the outside world; returns its kind.
    fn apply(&mut self, ev: Ev, rt: &Runtime) -> &'static str {
        let schedule = self.schedule;
        let kind = match &ev {
            Ev::DayStart(_) => "day start",
            Ev::MemberSend(_) => "member send",
            Ev::CutOffJob(_) => "cut-off",
            Ev::Valuation(_) => "valuation",
            Ev::RebalanceJob(_) => "rebalance",
            Ev::SettlementDay(_) => "settlement",
            Ev::Amend(_) => "amend",
            Ev::EndOfDay(_) => "end of day",
            Ev::Retry(_) => "retry",
        };
        match ev {
            Ev::DayStart(date) => {
                if date > self.last_activity_day && self.quiescent(rt) {
                    self.done = true;
                    return kind;
                }
                if date >= self.end_day {
                    self.problem(format!(
                        "trades still open {DRAIN_BUSINESS_DAYS_MAX} business days after the \
                         last day of activity"
                    ));
                    self.done = true;
                    return kind;
                }
                self.push(date.next_day().at_minute(0), Ev::DayStart(date.next_day()));
                if !self.calendar.is_business_day(date) {
                    return kind;
                }
                let mut plan = Vec::new();
                if date == self.first_day {
                    plan.extend(self.population.onboarding(date, &schedule, &self.calendar));
                }
                if date <= self.last_activity_day {
                    let cal = &self.calendar;
                    plan.extend(self.population.day(date, &schedule, cal, &self.oracle));
                }
                for (at, instruction) in plan {
                    self.push(at, Ev::MemberSend(instruction));
                }
                self.push(date.at_minute(schedule.cutoff_min), Ev::CutOffJob(date));
                self.push(date.at_minute(schedule.valuation_min), Ev::Valuation(date));
                if date <= self.last_activity_day {
                    self.push(
                        date.at_minute(schedule.valuation_min + 60),
                        Ev::RebalanceJob(date),
                    );
                }
                self.push(date.at_minute(10 * 60), Ev::SettlementDay(date));
                self.push(date.at_minute(23 * 60 + 30), Ev::EndOfDay(date));
            }
            Ev::MemberSend(instruction) => {
                self.counts.instructions_sent += 1;
                let what = match instruction.kind {
                    InstructionKind::Onboard { .. } => "onboard",
                    InstructionKind::Contribute { .. } => "contribute",
                    InstructionKind::Invest { .. } => "invest",
                    InstructionKind::Sell { .. } => "sell",
                    InstructionKind::Switch { .. } => "switch",
                };
                *self.counts.by_kind.entry(what).or_default() += 1;
                let id = msg_id(MsgKind::Instruction, instruction.id, 0);
                self.sent_at.insert(id, self.now());
                self.send(Envelope {
                    id,
                    from: Service::Members,
                    to: Service::Intake,
                    seq: 0,
                    body: Message::Instruction(instruction),
                });
            }
            Ev::CutOffJob(date) => self.send(Envelope {
                id: msg_id(MsgKind::CutOff, date.0 as u64, 0),
                from: Service::Scheduler,
                to: Service::Aggregation,
                seq: 0,
                body: Message::CutOff { date },
            }),
            Ev::Valuation(date) => {
                let market = &self.market;
                let answers = self.custodian.value(date, |f| market.close(f, date));
                let outcomes: BTreeMap<FundId, Outcome> =
                    answers.iter().map(|(t, o)| (t.fund, *o)).collect();
                self.oracle.valuation(date, &outcomes);
                // Without faults every trade reaches the custodian before its valuation point.
                for (_, fund) in self.oracle.unanswered_before(date.next_day()) {
                    self.problem(format!(
                        "fund {fund}: orders on {date} never reached the custodian"
                    ));
                }
                for (trade, outcome) in answers {
                    match outcome {
                        Outcome::Rejected => self.send_rejection(trade.id),
                        Outcome::Filled { .. } => {
                            let p = *self
                                .custodian
                                .priced_trades()
                                .find(|p| p.trade.id == trade.id)
                                .expect("priced");
                            if p.amend_to.is_some() {
                                let next = self.calendar.add_business_days(date, 1);
                                let at = next.at_minute(9 * 60);
                                self.push(at, Ev::Amend(trade.id));
                            }
                            self.send_confirmation(p.confirmation);
                        }
                    }
                }
            }
            Ev::RebalanceJob(date) => {
                let prices: Vec<(FundId, Price)> = FUNDS
                    .iter()
                    .map(|&f| (f, self.market.close(f, date)))
                    .collect();
                let by_fund: BTreeMap<FundId, Price> = prices.iter().copied().collect();
                let trade_date = self.calendar.add_business_days(date, 1);
                for instruction in self.oracle.rebalance(date, &by_fund, &MODELS) {
                    self.counts.rebalance_switches += 1;
                    self.oracle.submit(&instruction, trade_date);
                }
                self.send(Envelope {
                    id: msg_id(MsgKind::Rebalance, date.0 as u64, 0),
                    from: Service::Scheduler,
                    to: Service::Rebalancing,
                    seq: 0,
                    body: Message::Rebalance { date, prices },
                });
            }
            Ev::SettlementDay(date) => {
                self.oracle.settlement(date);
                // Without faults intake hears of a settled sale this morning: the switch's
                // purchase deals today.
                for id in self.oracle.purchases_waiting() {
                    self.oracle.purchase_received(id, date);
                }
                for p in self.custodian.settle_due(date) {
                    self.send_settlement(&p);
                }
            }
            Ev::Amend(trade_id) => {
                if let Some(c) = self.custodian.amend(trade_id) {
                    if !self
                        .oracle
                        .amend(trade_date(trade_id), trade_fund(trade_id), c.price)
                    {
                        self.problem(format!("trade {trade_id:#x}: amended, not in the model"));
                    }
                    self.send_confirmation(c);
                }
            }
            Ev::EndOfDay(date) => {
                // The model compares settled states: only when nothing is in flight.
                if rt.settled() && self.unacked.is_empty() {
                    self.counts.pot_checks += 1;
                    for p in check_pots(self, rt) {
                        self.problem(format!("end of day {date}: {p}"));
                    }
                } else {
                    self.counts.pot_checks_skipped += 1;
                }
            }
            Ev::Retry(id) => {
                if let Some(envelope) = self.unacked.get(&id).cloned() {
                    self.counts.resent += 1;
                    self.send(envelope);
                }
            }
        }
        kind
    }

    /// Drives the outside world on `rt` until it is time to kill it, or the run is over.
    async fn drive(
        &mut self,
        rt: &Runtime,
        outside: &mut mpsc::UnboundedReceiver<Envelope>,
        started: Instant,
    ) -> Ended {
        self.gateway = Some(rt.gateway());
        let mut idle = rt.idle_signal();
        loop {
            idle.borrow_and_update();
            if started.elapsed() > REAL_DEADLINE {
                self.problem(format!(
                    "gave up after {REAL_DEADLINE:?} real time, at {} (virtual); runtime: {:?}",
                    Date::of(self.now()),
                    rt.status()
                ));
                return Ended::Done;
            }
            while let Ok(envelope) = outside.try_recv() {
                self.receive(envelope);
            }
            if self.done {
                return Ended::Done;
            }
            let now = self.now();
            let (&(next, _), _) = self.events.first_key_value().expect("a next day");
            if next <= now {
                let (_, ev) = self.events.pop_first().expect("an event");
                let kind = self.apply(ev, rt);
                if let Some(&(t, k, delay)) = self.kills.first() {
                    if now >= t && kind == k {
                        self.kills.remove(0);
                        // Let what it started get under way, then pull the plug.
                        tokio::time::sleep(delay).await;
                        return Ended::Kill;
                    }
                }
                continue;
            }
            if let Some(quiet) = rt.quiet_until() {
                if outside.is_empty() {
                    self.counts.skips += 1;
                    self.clock.skip_to(next.min(quiet));
                    continue;
                }
            }
            // Until something comes out, the runtime falls quiet, or the next event is due.
            let wait = self.clock.real_until(next).min(Duration::from_millis(50));
            tokio::select! {
                envelope = outside.recv() => {
                    if let Some(envelope) = envelope {
                        self.receive(envelope);
                    }
                }
                _ = idle.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

fn lookup(ledger: &mut dyn Ledger, ids: &[u128]) -> BTreeMap<u128, Account> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(acme_ledger::BATCH_EVENTS_MAX) {
        for a in ledger.lookup_accounts(chunk).expect("the ledger answers") {
            out.insert(a.id, a);
        }
    }
    out
}

/// Every member's cash and units per fund, ACME's rounding and the custodian mirror, against
/// the reference model and the custodian's own books.
fn check_pots(o: &Outside, rt: &Runtime) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ledger = rt.ledger();
    let members: Vec<u64> = (1..=MEMBERS).collect();
    let cash_ids: Vec<u128> = members.iter().map(|&m| chart::member_cash(m)).collect();
    let cash = lookup(&mut *ledger, &cash_ids);
    let known: BTreeMap<u64, u64> = o.oracle.members().map(|(&m, &c)| (m, c)).collect();
    for &member in &members {
        let got = cash.get(&chart::member_cash(member)).map(|a| {
            (
                a.credits_posted as i128 - a.debits_posted as i128 - a.debits_pending as i128,
                a.credits_pending,
            )
        });
        let want = known
            .get(&member)
            .map(|&c| (c as i128, o.oracle.pending_cash(member) as u128));
        if got != want {
            problems.push(format!(
                "member {member} cash (available, pending): ledger {got:?}, reference {want:?}"
            ));
        }
    }
    let pots: Vec<(u64, FundId)> = members
        .iter()
        .flat_map(|&m| FUNDS.iter().map(move |&f| (m, f)))
        .collect();
    let unit_ids: Vec<u128> = pots
        .iter()
        .map(|&(m, f)| chart::member_units(m, f))
        .collect();
    let units = lookup(&mut *ledger, &unit_ids);
    for (&(member, fund), id) in pots.iter().zip(&unit_ids) {
        let got = units.get(id).map_or((0, 0, 0), |a| {
            (
                a.credits_posted - a.debits_posted,
                a.credits_pending,
                a.debits_pending,
            )
        });
        let u = o.oracle.units(member, fund);
        let want = (u.settled as u128, u.pending as u128, u.reserved as u128);
        if got != want {
            problems.push(format!(
                "member {member} fund {fund} units (settled, pending, reserved): ledger {got:?}, \
                 reference {want:?}"
            ));
        }
    }
    let mut roundings: Vec<(String, u128, acme_sim::oracle::Rounding)> = FUNDS
        .iter()
        .map(|&f| {
            (
                format!("fund {f}"),
                chart::house(AccountKind::AcmeRounding, chart::fund_ledger(f)),
                o.oracle.rounding_units(f),
            )
        })
        .collect();
    roundings.push((
        "cash".into(),
        chart::house(AccountKind::AcmeRounding, LEDGER_CASH_GBP),
        o.oracle.rounding_cash(),
    ));
    let ids: Vec<u128> = roundings.iter().map(|r| r.1).collect();
    let house = lookup(&mut *ledger, &ids);
    for (what, id, want) in roundings {
        let a = house[&id];
        if (a.credits_posted, a.credits_pending) != (want.settled as u128, want.pending as u128) {
            problems.push(format!(
                "rounding {what}: ledger {} + {} pending, reference {} + {}",
                a.credits_posted, a.credits_pending, want.settled, want.pending
            ));
        }
    }
    // The custodian's own books against the ledger's mirror of them.
    let balance = |a: &Account| {
        a.credits_posted as i128 + a.credits_pending as i128
            - a.debits_posted as i128
            - a.debits_pending as i128
    };
    let mirror_ids: Vec<u128> = std::iter::once(LEDGER_CASH_GBP)
        .chain(FUNDS.iter().map(|&f| chart::fund_ledger(f)))
        .flat_map(|l| {
            [
                chart::house(AccountKind::CustodianSettled, l),
                chart::house(AccountKind::CustodianUnsettled, l),
            ]
        })
        .collect();
    let mirror = lookup(&mut *ledger, &mirror_ids);
    let mirrored = |kind, ledger_id| balance(&mirror[&chart::house(kind, ledger_id)]);
    let (mut paid_settled, mut paid_pending) = (0i128, 0i128);
    for fund in FUNDS {
        let h = o.custodian.holding(fund);
        paid_settled += h.settled_cash_pence;
        paid_pending += h.pending_cash_pence;
        let l = chart::fund_ledger(fund);
        let settled = -mirrored(AccountKind::CustodianSettled, l);
        let unsettled = -mirrored(AccountKind::CustodianUnsettled, l);
        if (settled, unsettled) != (h.settled_units, h.pending_units) {
            problems.push(format!(
                "fund {fund}: custodian {} settled / {} pending units, ledger mirror {settled} / \
                 {unsettled}",
                h.settled_units, h.pending_units
            ));
        }
    }
    let cash_settled = mirrored(AccountKind::CustodianSettled, LEDGER_CASH_GBP);
    let cash_unsettled = mirrored(AccountKind::CustodianUnsettled, LEDGER_CASH_GBP);
    if (cash_settled, cash_unsettled) != (paid_settled, paid_pending) {
        problems.push(format!(
            "cash: custodian {paid_settled} settled / {paid_pending} pending, ledger \
             {cash_settled} / {cash_unsettled}"
        ));
    }
    problems.truncate(20);
    problems
}

/// Every instruction ended as the model says, and was reported so.
fn check_outcomes(o: &Outside) -> Vec<String> {
    let mut problems = Vec::new();
    let expected = o.oracle.expected_states();
    for (id, want) in expected {
        match o.statuses.get(id) {
            None => problems.push(format!("instruction {id:#x}: its end was never reported")),
            Some(state) if state != want => problems.push(format!(
                "instruction {id:#x} ended {state:?}, reference says {want:?}"
            )),
            Some(_) => {}
        }
    }
    let unexpected = o
        .statuses
        .keys()
        .filter(|id| !expected.contains_key(id))
        .count();
    if unexpected > 0 {
        problems.push(format!(
            "members were told of {unexpected} instructions they never gave"
        ));
    }
    if o.oracle.open_orders() > 0 || o.custodian.unpriced() > 0 || o.custodian.unsettled() > 0 {
        problems.push(format!(
            "{} orders never valued, {} trades unpriced, {} unsettled",
            o.oracle.open_orders(),
            o.custodian.unpriced(),
            o.custodian.unsettled()
        ));
    }
    if o.custodian.late_trades > 0 {
        problems.push(format!(
            "{} trades reached the custodian after their valuation point",
            o.custodian.late_trades
        ));
    }
    problems.truncate(20);
    problems
}

fn start(
    dir: &Path,
    clock: &Arc<AcceleratedClock>,
    outside: &mpsc::UnboundedSender<Envelope>,
) -> Runtime {
    let clock: Arc<dyn Clock> = clock.clone();
    let mut config = Config::new(dir, clock, outside.clone());
    // Small enough that the run snapshots, and recovers from a snapshot and a tail.
    config.snapshot.every_records = 256;
    Runtime::start(config).expect("the runtime starts")
}

fn assert_no_alerts(rt: &Runtime, when: &str) {
    let alerts = rt.alerts();
    assert!(alerts.is_empty(), "alerts {when}: {alerts:#?}");
    for (service, s) in rt.status() {
        assert_eq!(s.dead_letters, 0, "{service:?} {when}: {s:?}");
        assert!(s.up && s.stopped.is_none(), "{service:?} {when}: {s:?}");
    }
}

#[test]
fn the_trade_lifecycle_runs_on_tokio_through_a_kill_and_matches_the_reference() {
    let started = Instant::now();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime-lifecycle");
    let _ = std::fs::remove_dir_all(&dir);
    // Monday 5 January 2026, midnight.
    let first_day = Date::from_ymd(2026, 1, 5).expect("a date");
    let clock = AcceleratedClock::new(first_day.at_minute(0), SPEED);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("the driver's runtime");
    let mut world = Outside::new(clock.clone(), first_day);
    // Killed twice: on the second day in the afternoon, the moment a member's instruction was
    // handed over (lost with intake's mailbox if intake had not taken it yet: the member sends
    // it again); and on
    // the fourth, just after the custodian's prices went out at the valuation point (pricing is
    // allocating, its ledger requests in flight).
    world.kills = vec![
        (
            first_day.add_business_days(1).at_minute(13 * 60),
            "member send",
            Duration::ZERO,
        ),
        (
            first_day.add_business_days(3).at_minute(17 * 60),
            "valuation",
            Duration::from_millis(3),
        ),
    ];

    let mut rt = start(&dir, &clock, &out_tx);
    {
        // Operations set up the house accounts once, before the first day.
        let mut ledger = rt.ledger();
        let results = ledger
            .create_accounts(&chart::house_accounts(&FUNDS))
            .expect("the ledger answers");
        assert!(results.iter().all(|r| *r == CreateAccountResult::Ok));
    }
    let mut kills = Vec::new();
    loop {
        let ended = driver.block_on(world.drive(&rt, &mut out_rx, started));
        if ended == Ended::Done {
            break;
        }
        assert_no_alerts(&rt, "before a kill");
        // What the kill cuts short: work under way, and what each host has not finished.
        let busy = rt.quiet_until().is_none();
        let unfinished: Vec<(Service, usize, bool)> = rt
            .status()
            .values()
            .map(|s| (s.service, s.ledger_pending, s.outbox_empty))
            .collect();
        kills.push((Date::of(clock.now()), busy, unfinished, started.elapsed()));
        rt.kill();
        rt = start(&dir, &clock, &out_tx);
    }
    assert_eq!(kills.len(), 2, "{kills:?}; problems: {:?}", world.problems);
    let run_real = started.elapsed();
    let after = rt.status();
    assert_no_alerts(&rt, "after the restarts");
    for s in after.values() {
        assert_eq!(s.stats.recoveries, 1, "{s:?}");
    }
    world.problems.extend(check_pots(&world, &rt));
    world.problems.extend(check_outcomes(&world));

    // A clean stop: every host snapshots, the ledger checkpoints; the next start replays no
    // journal record and finds the same ledger.
    let report = rt.shutdown();
    assert!(report.problems.is_empty(), "{report:?}");
    assert!(report.snapshots.values().all(|&ok| ok), "{report:?}");
    assert_eq!(report.ledger_checkpoint, Some(Ok(())), "{report:?}");
    let rt = start(&dir, &clock, &out_tx);
    world.gateway = Some(rt.gateway());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rt.status().values().all(|s| s.up) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    for (service, s) in rt.status() {
        assert!(s.up, "{service:?}: {s:?}");
        assert_eq!(
            s.stats.journal_tail_max, 0,
            "{service:?} replayed a tail: {s:?}"
        );
    }
    world.problems.extend(check_pots(&world, &rt));
    assert_no_alerts(&rt, "after the clean restart");
    rt.kill();

    let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
    for state in world.statuses.values() {
        *by_state.entry(format!("{state:?}")).or_default() += 1;
    }
    let expected = world.oracle.expected_states().len();
    let trades: usize = world.custodian.priced_trades().count();
    eprintln!(
        "lifecycle: {MEMBERS} members, {DAYS} days of activity, {} to {} (virtual); kills (day, \
         busy, per host: ledger requests pending, outbox empty; real time) {kills:?}; done in \
         {:.1} s real ({:.1} s with the clean restart); {} instructions sent ({} resent; {:?}) \
         and {} re-balancing switches, {expected} expected outcomes, statuses {by_state:?}; {} \
         trades placed, {trades} priced, {} chases; {} end-of-day pot checks ({} skipped, busy); {} clock skips; \
         longest wait for intake's acknowledgement {:.3} s (virtual); hosts after the last \
         restart {:?}",
        first_day,
        Date::of(clock.now()),
        run_real.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        world.counts.instructions_sent,
        world.counts.resent,
        world.counts.by_kind,
        world.counts.rebalance_switches,
        world.counts.trades_placed,
        world.counts.chases,
        world.counts.pot_checks,
        world.counts.pot_checks_skipped,
        world.counts.skips,
        world.ack_latency_max as f64 / 1e9,
        after.values().map(|s| (s.service, s.stats)).collect::<Vec<_>>(),
    );
    assert!(
        world.problems.is_empty(),
        "{} problems: {:#?}",
        world.problems.len(),
        world.problems
    );
    assert!(world.counts.pot_checks >= 2, "{:?}", world.counts);
    assert!(
        by_state.get("Settled").copied().unwrap_or(0) > 100,
        "{by_state:?}"
    );
}
