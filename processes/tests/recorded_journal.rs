//! Journals written by earlier code must stay readable: the host replays them at every start.
//!
//! `data/journal-v1.jsonl` is a journal of real records, written by the code of version 1 of
//! the four trading processes (intake, aggregation, pricing, settlement) over eight business days
//! of seven members: every kind of instruction, a rejected and a partly filled trade, an
//! amendment, a chased confirmation and a chased settlement, a switch, a dead letter and its
//! re-drive. Each line is `{"process":NAME,"record":RECORD}` where RECORD is exactly the bytes
//! `host::record::encode_record` wrote (the host keeps one journal per process; the name says
//! whose journal a record belongs to). The records are what a host would have written: each
//! input with its effects, the outbox entries it completed (`done`, with the sequence numbers
//! the host gives), platform messages with their channel sequence numbers.
//!
//! The tests check that today's code decodes every record, encodes it back to the same bytes
//! (the names of every variant and field are stable), and that replaying each process's inputs
//! through a fresh process gives exactly the effects recorded; and that adding a field with
//! `#[serde(default)]` keeps older records readable (such a field is then listed in
//! [`ADDED_SINCE_V1`], so that the byte comparison allows for it and no more).
//!
//! `data/journal-v2.jsonl` is the same eight days recorded after intake and aggregation moved
//! to version 2 (intake stamps dealing dates and answers `CloseDealing`; aggregation waits for
//! its `DealingClosed`): its intake and aggregation records are version 2, pricing's and
//! settlement's still version 1. Each record is replayed when its version is the running
//! code's, so the version-1 journal now replays pricing and settlement only.
//!
//! The version-2 file was made by the ignored test at the bottom:
//! `RECORD_JOURNAL=1 cargo test --release -p acme-processes --test recorded_journal -- --ignored`.
//! Do not regenerate it to make a test pass: a record that no longer decodes, or re-encodes
//! differently, is a journal a deployed host could not replay. Make the change compatible (a new
//! field with `#[serde(default)]`, listed in `ADDED_SINCE_V1`; a new variant), or give the
//! process a new version and keep this file as the version-1 journal it is: its records must
//! still decode (the host reads them to refuse them by version, operators' tools to show dead
//! letters), but they are no longer replayed, and a `journal-v2.jsonl` recorded beside it takes
//! over the replay.

use acme_ledger::chart::{self, FundId};
use acme_ledger::{Clock, CreateAccountResult, Ledger, MemLedger};
use acme_processes::calendar::{Date, Schedule, Ts, NS_PER_MIN};
use acme_processes::host::record::{decode_record, encode_record, Entry, Record, OPERATOR_VERSION};
use acme_processes::host::{execute, HostState, Pending};
use acme_processes::messages::{
    instruction_id, msg_id, trade_fund, Confirmation, ExternalTrade, Instruction, InstructionKind,
    InstructionState, Message, MsgKind, Origin, Side, TradeId,
};
use acme_processes::money::{cash_for_units, units_for_cash, Price};
use acme_processes::process::{Ctx, Effect, Effects, Envelope, Input, Process, Service};
use acme_processes::trading::aggregation::Aggregation;
use acme_processes::trading::intake::Intake;
use acme_processes::trading::pricing::Pricing;
use acme_processes::trading::settlement::Settlement;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The recorded journals, oldest first: (name, text, the newest code version in it).
const JOURNALS: [(&str, &str, u32); 2] = [
    ("journal-v1", include_str!("data/journal-v1.jsonl"), 1),
    ("journal-v2", include_str!("data/journal-v2.jsonl"), 2),
];
const FUNDS: [FundId; 3] = [1, 2, 3];
const PROFILES: usize = 3;
const SERVICES: [Service; 4] = [
    Service::Intake,
    Service::Aggregation,
    Service::Pricing,
    Service::Settlement,
];

/// A process behind a common face, so that four kinds can be driven alike.
trait Handler {
    fn version(&self) -> u32;
    fn handle_at(&mut self, now: Ts, input: &Input) -> Effects;
    /// A copy through the process's own serialization (what a snapshot restores).
    fn copy(&self) -> Box<dyn Handler>;
}

impl<P: Process> Handler for P {
    fn version(&self) -> u32 {
        Process::version(self)
    }
    fn handle_at(&mut self, now: Ts, input: &Input) -> Effects {
        let mut fx = Effects::new();
        self.handle(&Ctx { now }, input, &mut fx);
        fx
    }
    fn copy(&self) -> Box<dyn Handler> {
        let json = serde_json::to_vec(self).expect("state serializes");
        Box::new(serde_json::from_slice::<P>(&json).expect("state deserializes"))
    }
}

/// Each process as version 1 was deployed.
fn fresh(service: Service) -> Box<dyn Handler> {
    let schedule = Schedule::default();
    match service {
        Service::Intake => Box::new(Intake::new(FUNDS.to_vec(), PROFILES)),
        Service::Aggregation => Box::new(Aggregation::new(schedule)),
        Service::Pricing => Box::new(Pricing::new(schedule)),
        Service::Settlement => Box::new(Settlement::new(schedule)),
        other => panic!("no process for {other:?}"),
    }
}

fn name_of(service: Service) -> String {
    format!("{service:?}").to_lowercase()
}

fn service_named(name: &str) -> Service {
    SERVICES
        .into_iter()
        .find(|s| name_of(*s) == name)
        .unwrap_or_else(|| panic!("no process named {name:?}"))
}

fn line(service: Service, record: &Record) -> String {
    let bytes = encode_record(record);
    let json = std::str::from_utf8(&bytes).expect("records are UTF-8");
    format!("{{\"process\":\"{}\",\"record\":{json}}}", name_of(service))
}

/// A line's process, and its record's bytes exactly as they were written.
fn split(line: &str) -> (Service, &str) {
    let rest = line
        .strip_prefix("{\"process\":\"")
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a journal line: {line}"));
    let (name, record) = rest
        .split_once("\",\"record\":")
        .unwrap_or_else(|| panic!("not a journal line: {line}"));
    (service_named(name), record)
}

/// A journal, decoded: (line number, process, record).
fn journal(text: &str) -> Vec<(usize, Service, Record)> {
    text.lines()
        .enumerate()
        .map(|(n, l)| {
            let (service, bytes) = split(l);
            let record = decode_record(bytes.as_bytes())
                .unwrap_or_else(|e| panic!("line {}: {e}\n{l}", n + 1));
            (n + 1, service, record)
        })
        .collect()
}

/// Fields added since version 1 with `#[serde(default)]`, each as today's encoding writes it in
/// a record that predates it, comma included (`,"limit_price":null`): taken out of the
/// re-encoding before it is compared with the recorded bytes. Adding such a field is compatible,
/// and the entry here is where a reviewer sees it; a renamed, removed or retyped field still
/// fails, since the recorded bytes hold the old one.
const ADDED_SINCE_V1: &[&str] = &[",\"dealing_date\":0"];

fn without_added(encoded: &[u8]) -> String {
    let mut json = String::from_utf8(encoded.to_vec()).expect("records are UTF-8");
    for field in ADDED_SINCE_V1 {
        json = json.replace(field, "");
    }
    json
}

#[test]
fn every_recorded_record_decodes_and_encodes_to_the_same_bytes() {
    for (name, text, newest) in JOURNALS {
        let seen = decodes_and_encodes(text, newest);
        // The journal still covers what it was made to cover.
        let missing: Vec<&str> = COVERS
            .iter()
            .chain(if newest >= 2 { COVERS_V2 } else { &[] })
            .copied()
            .filter(|k| !seen.contains(*k))
            .collect();
        assert!(missing.is_empty(), "not in {name}: {missing:?}");
    }
}

/// Checks every line of a journal whose processes run at most version `newest`; the kinds of
/// record it holds.
fn decodes_and_encodes(text: &str, newest: u32) -> BTreeSet<String> {
    let mut lines = 0;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (n, l) in text.lines().enumerate() {
        let n = n + 1;
        let (service, bytes) = split(l);
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("line {n} is not JSON: {e}"));
        let record = decode_record(bytes.as_bytes())
            .unwrap_or_else(|e| panic!("line {n} ({service:?}) does not decode: {e}\n{l}"));
        let again = without_added(&encode_record(&record));
        assert!(
            again == bytes,
            "line {n} ({service:?}) encodes differently today:\nrecorded {bytes}\ntoday    \
             {again}"
        );
        assert!(
            (1..=newest).contains(&record.version) || record.version == OPERATOR_VERSION,
            "line {n}: version {}",
            record.version
        );
        seen.extend(kinds(service, &record));
        lines += 1;
    }
    assert!(lines > 100, "{lines} lines");
    seen
}

/// What version 2's journal holds besides: the dealing point's exchange.
const COVERS_V2: &[&str] = &[
    "intake message CloseDealing",
    "aggregation message DealingClosed",
    "send DealingClosed",
    "send CloseDealing",
];

/// What the journal must hold: every entry, every input each process takes, every kind of
/// instruction and ledger reply.
const COVERS: &[&str] = &[
    "entry Step",
    "entry DeadLetter",
    "entry DeadLetter redrive",
    "entry Progress",
    "entry Redrive",
    "intake message Instruction",
    "intake message InstructionsAdvanced",
    "intake timer",
    "intake ledger CreateAccounts",
    "intake ledger CreateTransfers",
    "aggregation message OrderAccepted",
    "aggregation message CutOff",
    "pricing message TradeBooked",
    "pricing message TradePriced",
    "pricing message TradeRejected",
    "pricing timer",
    "pricing ledger CreateAccounts",
    "pricing ledger CreateTransfers",
    "settlement message TradeAllocated",
    "settlement message TradeSettled",
    "settlement timer",
    "settlement ledger Transfers",
    "settlement ledger CreateTransfers",
    "instruction Onboard",
    "instruction Contribute",
    "instruction Invest",
    "instruction Sell",
    "instruction Switch",
    "state Placed",
    "state Priced",
    "state Settled",
    "state Rejected",
    "effect Send",
    "effect Ledger",
    "effect SetTimer",
    "send ChaseConfirmation",
    "send ChaseSettlement",
    "send PlaceTrade",
    "send InstructionStatus",
    "amendment",
    "partial fill",
];

fn kinds(service: Service, record: &Record) -> Vec<String> {
    let name = name_of(service);
    let mut out = Vec::new();
    let input = match &record.entry {
        Entry::Step { input, effects, .. } => {
            out.push("entry Step".to_string());
            for e in effects {
                out.push(format!("effect {}", variant(e)));
                if let Effect::Send(env) = e {
                    out.push(format!("send {}", variant(&env.body)));
                }
            }
            input
        }
        Entry::DeadLetter { input, redrive, .. } => {
            out.push("entry DeadLetter".to_string());
            if redrive.is_some() {
                out.push("entry DeadLetter redrive".to_string());
            }
            input
        }
        Entry::Progress { .. } => return vec!["entry Progress".to_string()],
        Entry::Redrive { .. } => return vec!["entry Redrive".to_string()],
    };
    match input {
        Input::Message(env) => {
            out.push(format!("{name} message {}", variant(&env.body)));
            match &env.body {
                Message::Instruction(i) => out.push(format!("instruction {}", variant(&i.kind))),
                Message::InstructionsAdvanced { state, orders } => {
                    out.push(format!("state {state:?}"));
                    if orders.iter().any(|a| a.partial) {
                        out.push("partial fill".to_string());
                    }
                }
                Message::TradePriced(c) if c.revision > 0 => out.push("amendment".to_string()),
                _ => {}
            }
        }
        Input::Timer { .. } => out.push(format!("{name} timer")),
        Input::Ledger { reply, .. } => out.push(format!("{name} ledger {}", variant(reply))),
    }
    out
}

/// The name of an enum value's variant, as serde writes it (`"Name"` or `{"Name":...}`).
fn variant<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).expect("serializes");
    let name = json.trim_start_matches('{').trim_start_matches('"');
    name[..name.find('"').expect("an enum")].to_string()
}

#[test]
fn replaying_each_journal_gives_the_recorded_effects() {
    for (name, text, _) in JOURNALS {
        eprintln!("replaying {name}");
        replay(text);
    }
}

fn replay(text: &str) {
    let mut processes: BTreeMap<Service, Box<dyn Handler>> =
        SERVICES.into_iter().map(|s| (s, fresh(s))).collect();
    let mut states: BTreeMap<Service, HostState> = BTreeMap::new();
    let mut replayed: BTreeMap<Service, u64> = BTreeMap::new();
    // The host replays only records of the running code's version: a process that moved on
    // to a later version has its own recorded journal, and its records here are only decoded.
    let records = journal(text);
    let today = |s: &Service| fresh(*s).version();
    let same_code = |s: &Service| {
        records
            .iter()
            .any(|(_, r_s, r)| r_s == s && r.version == today(s))
    };
    for (n, service, record) in journal(text) {
        let process = processes.get_mut(&service).expect("a process");
        match &record.entry {
            _ if !same_code(&service) => {}
            // As recovery does: every step is handled again (a re-driven one too) and must
            // give what it gave.
            Entry::Step { input, effects, .. } => {
                let fx = process.handle_at(record.at, input);
                assert_eq!(fx.poisoned(), None, "line {n}: poison now");
                assert!(
                    fx.items() == &effects[..],
                    "line {n} ({service:?}): other effects today\nrecorded {effects:?}\ntoday    \
                     {:?}",
                    fx.items()
                );
                *replayed.entry(service).or_default() += 1;
            }
            // Not applied; still poison to today's code (tried on a copy, as the host rebuilds
            // the process after one).
            Entry::DeadLetter { input, .. } => {
                let fx = process.copy().handle_at(record.at, input);
                assert!(fx.poisoned().is_some(), "line {n}: no longer poison");
            }
            Entry::Progress { .. } | Entry::Redrive { .. } => {}
        }
        states.entry(service).or_default().apply(service, &record);
    }
    for service in SERVICES {
        assert!(
            !same_code(&service) || replayed.get(&service).copied().unwrap_or(0) > 10,
            "{service:?}"
        );
        let state = &states[&service];
        assert!(
            state.pending().is_empty(),
            "{service:?}: the journal leaves {:?} pending",
            state.pending()
        );
    }
    assert_eq!(states[&Service::Intake].dead_letters().len(), 1);
}

/// `Order` as a later version might have it: a field added, with a default, and a side.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct OrderV2 {
    instruction: u64,
    leg: u8,
    member: u64,
    fund: FundId,
    side: SideV2,
    amount: u64,
    #[serde(default)]
    dealing_date: u32,
    /// New: a limit price (none on every order written before it existed).
    #[serde(default)]
    limit_price: Option<Price>,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
enum SideV2 {
    Buy,
    Sell,
    /// New variant: older records never hold it.
    ShortSell,
}

#[test]
fn a_message_written_today_still_decodes_after_a_field_is_added() {
    let mut orders = Vec::new();
    for (_, _, record) in journal(JOURNALS[0].1) {
        if let Entry::Step {
            input: Input::Message(env),
            ..
        } = &record.entry
        {
            if let Message::OrderAccepted(order) = &env.body {
                orders.push(*order);
            }
        }
    }
    assert!(orders.len() >= 5, "{} orders", orders.len());
    for order in orders {
        let json = serde_json::to_string(&order).unwrap();
        let later: OrderV2 = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let side = match order.side {
            Side::Buy => SideV2::Buy,
            Side::Sell => SideV2::Sell,
        };
        assert_eq!(
            later,
            OrderV2 {
                instruction: order.instruction,
                leg: order.leg,
                member: order.member,
                fund: order.fund,
                side,
                amount: order.amount,
                dealing_date: order.dealing_date.0,
                limit_price: None,
            }
        );
        // Written again by the later code, it differs only by the new field: what an entry in
        // `ADDED_SINCE_V1` takes out.
        let written = serde_json::to_string(&later).unwrap();
        assert_eq!(written.replace(",\"limit_price\":null", ""), json);
    }

    // The older shapes of today's own types: a step or a dead letter written before `redrive`
    // existed, with envelopes written before `seq` did (both `#[serde(default)]`).
    let mut older = 0;
    for l in JOURNALS.iter().flat_map(|j| j.1.lines()) {
        let (_, bytes) = split(l);
        let Some(head) = bytes.strip_suffix(",\"redrive\":null}}}") else {
            continue;
        };
        let old = format!("{head}}}}}}}").replace("\"seq\":0,", "");
        let decoded = decode_record(old.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{old}"));
        let today = decode_record(bytes.as_bytes()).unwrap();
        assert_eq!(decoded, today, "{old}");
        if let Entry::Step { redrive, .. } | Entry::DeadLetter { redrive, .. } = decoded.entry {
            assert_eq!(redrive, None);
        }
        older += 1;
    }
    assert!(older > 100, "{older} records tried without `redrive`");
}

// ---------------------------------------------------------------------------------------------
// The recording. It drives the four processes through `handle` (no host), keeping per process
// the host's state (`HostState`, applied record by record as a host does), so that the records
// carry what a host would put in them: the outbox sequence numbers each input completes, and
// the channel sequence numbers of platform messages. The ledger is a `MemLedger`; the members,
// the scheduler and the custodian are scripted below.

#[test]
#[ignore = "writes tests/data/journal-v2.jsonl when RECORD_JOURNAL=1"]
#[allow(clippy::disallowed_methods)] // the recording switch and its output file: a tool, not platform code
fn record_journal() {
    if std::env::var("RECORD_JOURNAL").as_deref() != Ok("1") {
        eprintln!("set RECORD_JOURNAL=1 to write tests/data/journal-v2.jsonl");
        return;
    }
    let lines = Recorder::run();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/journal-v2.jsonl");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write the journal");
    eprintln!("wrote {} records to {path}", lines.len());
}

struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One process and what its host would hold.
struct Journal {
    process: Box<dyn Handler>,
    state: HostState,
    /// The highest outbox sequence number carried out.
    carried: u64,
    /// Outbox entries completed since the last record (acknowledged, raised).
    done: Vec<u64>,
}

enum Event {
    Deliver {
        to: Service,
        input: Input,
        done: Vec<u64>,
    },
    Fire {
        service: Service,
        timer_id: u64,
        at: Ts,
    },
    Price(Confirmation),
    Reject(TradeId),
    Settle(TradeId),
}

/// What the scripted custodian does with a trade.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Prices it in full at the valuation point, settles it at T+2.
    Normal,
    Reject,
    /// Fills three quarters of the buy leg.
    Partial,
    /// Prices it, and amends the price the next morning.
    Amend,
    /// Says nothing until chased.
    Silent,
    /// Settles only when chased.
    SettleWhenChased,
}

struct Recorder {
    now: Ts,
    clock: Arc<TestClock>,
    ledger: MemLedger,
    journals: BTreeMap<Service, Journal>,
    events: BTreeMap<(Ts, u64), Event>,
    next_event: u64,
    lines: Vec<String>,
    /// The custodian's books: each trade placed, and the net of its latest allocation.
    placed: BTreeMap<TradeId, ExternalTrade>,
    nets: BTreeMap<TradeId, (i128, i128)>,
    plans: BTreeMap<(Date, FundId), Plan>,
    statuses: BTreeMap<u64, InstructionState>,
    alerts: Vec<String>,
    /// Each member's next instruction sequence number.
    member_seq: BTreeMap<u64, u64>,
}

fn price_of(fund: FundId) -> Price {
    Price(2_500_000 + fund as u64 * 250_000)
}

impl Recorder {
    fn run() -> Vec<String> {
        let schedule = Schedule::default();
        let clock = Arc::new(TestClock(AtomicU64::new(0)));
        let mut ledger = MemLedger::new(clock.clone());
        let monday: Date = "2026-11-23".parse().unwrap();
        clock.0.store(monday.at_minute(6 * 60), Ordering::SeqCst);
        let house = ledger
            .create_accounts(&chart::house_accounts(&FUNDS))
            .unwrap();
        assert!(house.iter().all(|r| *r == CreateAccountResult::Ok));
        let days: Vec<Date> = (0..8).map(|i| monday.add_business_days(i)).collect();
        let mut r = Recorder {
            now: 0,
            clock,
            ledger,
            journals: SERVICES
                .into_iter()
                .map(|s| {
                    let j = Journal {
                        process: fresh(s),
                        state: HostState::default(),
                        carried: 0,
                        done: Vec::new(),
                    };
                    (s, j)
                })
                .collect(),
            events: BTreeMap::new(),
            next_event: 0,
            lines: Vec::new(),
            placed: BTreeMap::new(),
            nets: BTreeMap::new(),
            plans: [
                ((days[0], 2), Plan::Partial),
                ((days[0], 3), Plan::Reject),
                ((days[0], 1), Plan::Amend),
                ((days[2], 2), Plan::Silent),
                ((days[2], 1), Plan::SettleWhenChased),
            ]
            .into(),
            statuses: BTreeMap::new(),
            alerts: Vec::new(),
            member_seq: BTreeMap::new(),
        };
        for &d in &days {
            r.at(
                d.at_minute(schedule.cutoff_min),
                Event::Deliver {
                    to: Service::Aggregation,
                    input: external(
                        msg_id(MsgKind::CutOff, d.0 as u64, 0),
                        Service::Scheduler,
                        Service::Aggregation,
                        Message::CutOff { date: d },
                    ),
                    done: Vec::new(),
                },
            );
        }
        use InstructionKind::*;
        // Monday: six members open their pots and pay in; then they invest.
        let mon = days[0].at_minute(9 * 60);
        for m in 1..=6 {
            r.instruct(
                mon,
                m,
                Onboard {
                    profile: (m % 3) as u8,
                },
            );
            r.instruct(
                mon,
                m,
                Contribute {
                    cash_pence: 100_000,
                },
            );
        }
        let invest = |fund, cash_pence| Invest { fund, cash_pence };
        let later = mon + 30 * NS_PER_MIN;
        r.instruct(later, 1, invest(1, 30_000));
        r.instruct(later, 2, invest(2, 40_000));
        r.instruct(later, 3, invest(3, 20_000));
        r.instruct(later, 4, invest(1, 50_000));
        r.instruct(later, 5, invest(2, 9_000_000)); // more than the pot holds: refused
        r.instruct(later, 6, invest(99, 1_000)); // no such fund: refused on sight
        r.instruct(later, 7, Contribute { cash_pence: 500 }); // no pot: refused on sight
        r.instruct(later, 5, invest(2, 10_000));
        // The same instruction again, under another message id: taken once.
        let again = instruction_id(5, r.member_seq[&5] - 1);
        r.deliver_instruction(later + NS_PER_MIN, 5, again, invest(2, 10_000), 1);
        // A message intake is never sent: a dead letter; an operator re-drives it, and it fails
        // again.
        r.at(
            later + 2 * NS_PER_MIN,
            Event::Deliver {
                to: Service::Intake,
                input: external(
                    msg_id(MsgKind::CutOff, days[0].0 as u64, 1),
                    Service::Scheduler,
                    Service::Intake,
                    Message::CutOff { date: days[0] },
                ),
                done: Vec::new(),
            },
        );
        // Wednesday, once Monday's trades settled: sales, a switch, a purchase that crosses.
        let wed = days[2].at_minute(9 * 60);
        r.instruct(
            wed,
            1,
            Sell {
                fund: 1,
                units_micro: 50_000_000,
            },
        );
        r.instruct(
            wed,
            4,
            Switch {
                from_fund: 1,
                to_fund: 3,
                units_micro: 100_000_000,
            },
        );
        r.instruct(
            wed,
            2,
            Sell {
                fund: 2,
                units_micro: 900_000_000,
            },
        ); // more units than held: refused
        r.instruct(wed, 6, invest(1, 10_000));
        r.instruct(wed, 5, invest(2, 5_000));
        r.instruct(wed, 3, Contribute { cash_pence: 2_500 });

        r.drain(days[7].at_minute(23 * 60));
        r.redrive();
        for s in SERVICES {
            r.progress(s);
        }
        // The dead letter's, twice (taken, then re-driven); nothing else.
        assert_eq!(r.alerts.len(), 2, "{:?}", r.alerts);
        for a in &r.alerts {
            assert!(
                a.starts_with("dead letter 1: poison input: intake: unexpected message CutOff"),
                "{a}"
            );
        }
        r.check_outcomes();
        r.lines
    }

    fn at(&mut self, at: Ts, event: Event) {
        self.next_event += 1;
        self.events.insert((at, self.next_event), event);
    }

    fn instruct(&mut self, at: Ts, member: u64, kind: InstructionKind) {
        let seq = self.member_seq.entry(member).or_default();
        let id = instruction_id(member, *seq);
        *seq += 1;
        self.deliver_instruction(at, member, id, kind, 0);
    }

    fn deliver_instruction(
        &mut self,
        at: Ts,
        member: u64,
        id: u64,
        kind: InstructionKind,
        sub: u64,
    ) {
        let input = external(
            msg_id(MsgKind::Instruction, id, sub),
            Service::Members,
            Service::Intake,
            Message::Instruction(Instruction {
                id,
                member,
                kind,
                origin: Origin::Member,
            }),
        );
        self.at(
            at,
            Event::Deliver {
                to: Service::Intake,
                input,
                done: Vec::new(),
            },
        );
    }

    /// Runs every event up to `until`.
    fn drain(&mut self, until: Ts) {
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > until {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            self.now = self.now.max(at);
            self.clock.0.store(self.now, Ordering::SeqCst);
            match event {
                Event::Deliver { to, input, done } => self.step(to, input, done),
                Event::Fire {
                    service,
                    timer_id,
                    at,
                } => {
                    let armed = self.journals[&service].state.timers().get(&timer_id) == Some(&at);
                    if armed {
                        self.step(service, Input::Timer { timer_id }, Vec::new());
                    }
                }
                Event::Price(c) => self.custodian_says(Message::TradePriced(c)),
                Event::Reject(trade_id) => self.custodian_says(Message::TradeRejected { trade_id }),
                Event::Settle(trade_id) => {
                    let (net_units, net_cash) = self.nets[&trade_id];
                    self.custodian_says(Message::TradeSettled {
                        trade_id,
                        net_units,
                        net_cash,
                    })
                }
            }
        }
    }

    /// Handles one input as a host would: one record, then its effects carried out.
    fn step(&mut self, service: Service, input: Input, done: Vec<u64>) {
        self.commit(service, input, done, None);
    }

    fn commit(&mut self, service: Service, input: Input, done: Vec<u64>, redrive: Option<u64>) {
        let now = self.now;
        let j = self.journals.get_mut(&service).expect("a journal");
        let fx = j.process.handle_at(now, &input);
        let mut all_done = std::mem::take(&mut j.done);
        all_done.extend(done);
        let entry = match fx.poisoned() {
            Some(reason) => Entry::DeadLetter {
                input,
                reason: format!("poison input: {reason}"),
                done: all_done,
                redrive,
            },
            None => Entry::Step {
                input,
                effects: fx.into_vec(),
                done: all_done,
                redrive,
            },
        };
        let record = Record {
            version: j.process.version(),
            at: now,
            entry,
        };
        self.write(service, &record);
    }

    /// Appends `record` to `service`'s journal, applies it, and carries out what it added.
    fn write(&mut self, service: Service, record: &Record) {
        self.lines.push(line(service, record));
        let j = self.journals.get_mut(&service).expect("a journal");
        j.state.apply(service, record);
        let fresh: Vec<(u64, Pending)> = j
            .state
            .pending()
            .range(j.carried + 1..)
            .map(|(&seq, p)| (seq, p.clone()))
            .collect();
        if let Some((last, _)) = fresh.last() {
            j.carried = *last;
        }
        if let Entry::Step { effects, .. } = &record.entry {
            for e in effects {
                if let Effect::SetTimer { timer_id, at } = e {
                    let (timer_id, at) = (*timer_id, *at);
                    self.at(
                        at,
                        Event::Fire {
                            service,
                            timer_id,
                            at,
                        },
                    );
                }
            }
        }
        for (seq, pending) in fresh {
            match pending {
                Pending::Send(env) => {
                    // Delivered, and acknowledged by the receiver's host once committed.
                    self.journals.get_mut(&service).unwrap().done.push(seq);
                    self.route(env);
                }
                Pending::Ledger { tag, request } => {
                    let reply = execute(&mut self.ledger, &request).expect("embedded ledger");
                    let input = Input::Ledger { tag, reply };
                    self.at(
                        self.now,
                        Event::Deliver {
                            to: service,
                            input,
                            done: vec![seq],
                        },
                    );
                }
                Pending::Alert(alert) => {
                    self.journals.get_mut(&service).unwrap().done.push(seq);
                    self.alerts.push(alert.what);
                }
            }
        }
    }

    fn route(&mut self, env: Envelope) {
        match env.to {
            Service::Intake | Service::Aggregation | Service::Pricing | Service::Settlement => {
                if let Message::TradeAllocated {
                    trade,
                    net_units,
                    net_cash,
                    ..
                } = &env.body
                {
                    // The custodian settles what it priced; the scripted one reads it here.
                    self.nets.insert(trade.id, (*net_units, *net_cash));
                }
                let to = env.to;
                self.at(
                    self.now,
                    Event::Deliver {
                        to,
                        input: Input::Message(env),
                        done: Vec::new(),
                    },
                );
            }
            Service::Members => {
                if let Message::InstructionStatus { id, state } = env.body {
                    assert_eq!(self.statuses.insert(id, state), None, "{id:#x} twice");
                }
            }
            Service::Custodian => self.custodian_hears(env.body),
            other => panic!("a message for {other:?}"),
        }
    }

    fn custodian_hears(&mut self, body: Message) {
        let s = Schedule::default();
        match body {
            Message::PlaceTrade(trade) => {
                self.placed.insert(trade.id, trade);
                let d = trade.trade_date;
                let plan = self.plan(trade.id);
                let priced_at = d.at_minute(s.valuation_min + 5);
                match plan {
                    Plan::Reject => self.at(priced_at, Event::Reject(trade.id)),
                    Plan::Silent => {}
                    _ => self.at(priced_at, Event::Price(self.confirm(&trade, 0, plan))),
                }
                if plan == Plan::Amend {
                    let next_morning = d.add_business_days(1).at_minute(8 * 60);
                    self.at(next_morning, Event::Price(self.confirm(&trade, 1, plan)));
                }
                if !matches!(plan, Plan::Reject | Plan::SettleWhenChased) {
                    let settles = d
                        .add_business_days(s.settlement_lag_days)
                        .at_minute(s.settlement_min + 5);
                    self.at(settles, Event::Settle(trade.id));
                }
            }
            Message::ChaseConfirmation { trade_id } => {
                let trade = self.placed[&trade_id];
                let c = self.confirm(&trade, 0, Plan::Normal);
                self.at(self.now + NS_PER_MIN, Event::Price(c));
                let settles = trade
                    .trade_date
                    .add_business_days(s.settlement_lag_days)
                    .at_minute(s.settlement_min + 5);
                self.at(settles, Event::Settle(trade_id));
            }
            Message::ChaseSettlement { trade_id } => {
                self.at(self.now + NS_PER_MIN, Event::Settle(trade_id));
            }
            other => panic!("the custodian was sent {other:?}"),
        }
    }

    fn plan(&self, trade_id: TradeId) -> Plan {
        let trade = self.placed[&trade_id];
        self.plans
            .get(&(trade.trade_date, trade_fund(trade_id)))
            .copied()
            .unwrap_or(Plan::Normal)
    }

    fn confirm(&self, trade: &ExternalTrade, revision: u32, plan: Plan) -> Confirmation {
        let price = Price(price_of(trade.fund).0 + revision as u64 * 100_000);
        let buy_cash_filled = if plan == Plan::Partial {
            trade.buy_cash_pence * 3 / 4
        } else {
            trade.buy_cash_pence
        };
        Confirmation {
            trade_id: trade.id,
            revision,
            price,
            buy_cash_filled,
            sell_units_filled: trade.sell_units_micro,
            units_bought: units_for_cash(buy_cash_filled, price),
            cash_for_sold: cash_for_units(trade.sell_units_micro, price),
        }
    }

    fn custodian_says(&mut self, body: Message) {
        let (kind, trade_id, sub, to) = match &body {
            Message::TradePriced(c) => (
                MsgKind::TradePriced,
                c.trade_id,
                c.revision as u64,
                Service::Pricing,
            ),
            Message::TradeRejected { trade_id } => {
                (MsgKind::TradeRejected, *trade_id, 0, Service::Pricing)
            }
            Message::TradeSettled { trade_id, .. } => {
                (MsgKind::TradeSettled, *trade_id, 0, Service::Settlement)
            }
            other => panic!("the custodian does not say {other:?}"),
        };
        let input = external(msg_id(kind, trade_id, sub), Service::Custodian, to, body);
        self.step(to, input, Vec::new());
    }

    /// An operator re-drives intake's dead letter; the host handles it again at once.
    fn redrive(&mut self) {
        let (&id, letter) = self.journals[&Service::Intake]
            .state
            .dead_letters()
            .iter()
            .next()
            .expect("a dead letter");
        let input = letter.input.clone();
        let record = Record {
            version: OPERATOR_VERSION,
            at: self.now,
            entry: Entry::Redrive { dead_letter: id },
        };
        self.write(Service::Intake, &record);
        self.now += NS_PER_MIN;
        self.commit(Service::Intake, input, Vec::new(), Some(id));
        self.drain(Ts::MAX);
    }

    /// What the host writes when it completed outbox entries with no input to carry them.
    fn progress(&mut self, service: Service) {
        let done = std::mem::take(&mut self.journals.get_mut(&service).unwrap().done);
        if done.is_empty() {
            return;
        }
        let record = Record {
            version: self.journals[&service].process.version(),
            at: self.now,
            entry: Entry::Progress { done },
        };
        self.write(service, &record);
    }

    fn check_outcomes(&self) {
        for j in self.journals.values() {
            assert!(j.state.pending().is_empty(), "{:?}", j.state.pending());
        }
        let count = |s: InstructionState| self.statuses.values().filter(|&&v| v == s).count();
        assert!(
            count(InstructionState::Completed) >= 13,
            "{:?}",
            self.statuses
        );
        assert!(count(InstructionState::Settled) >= 5, "{:?}", self.statuses);
        assert!(
            count(InstructionState::Rejected) >= 5,
            "{:?}",
            self.statuses
        );
        assert!(
            self.statuses.len() == self.member_seq.values().sum::<u64>() as usize,
            "every instruction ended: {:?}",
            self.statuses
        );
    }
}

fn external(id: u128, from: Service, to: Service, body: Message) -> Input {
    Input::Message(Envelope {
        id,
        from,
        to,
        seq: 0,
        body,
    })
}
