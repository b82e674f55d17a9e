//! The host's own tests, on a small process whose every input has a visible effect.

use super::*;
use crate::calendar::Date;
use crate::messages::{msg_id, Message, MsgKind};
use crate::process::{Alert, Effects, LedgerRequest};
use serde::{Deserialize, Serialize};

/// Counts cut-offs; each asks the ledger something, sends a message, and every third sets a
/// timer. Date 13 panics, date 14 is poison. `salt` changes what it asks (changed code).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Tally {
    count: u64,
    answers: u64,
    timers: u64,
    #[serde(skip)]
    salt: u64,
    #[serde(skip)]
    version: u32,
}

impl Process for Tally {
    fn name(&self) -> &'static str {
        "tally"
    }

    fn version(&self) -> u32 {
        self.version.max(1)
    }

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        match input {
            Input::Message(env) => {
                let Message::CutOff { date } = env.body else {
                    return fx.poison("not a cut-off".into());
                };
                match date.0 {
                    13 => panic!("unlucky date"),
                    14 => return fx.poison("date 14 means nothing".into()),
                    _ => {}
                }
                self.count += 1;
                let asked = date.0 as u128 + 1 + self.salt as u128;
                fx.ledger(self.count, LedgerRequest::LookupAccounts(vec![asked]));
                let id = msg_id(MsgKind::CutOff, self.count, 0);
                fx.send(id, Service::Aggregation, Service::Pricing, env.body.clone());
                if self.count.is_multiple_of(3) {
                    fx.timer(self.count, ctx.now + 1_000);
                }
            }
            Input::Ledger { tag, .. } => self.answers += tag,
            Input::Timer { timer_id } => self.timers += timer_id,
        }
    }

    fn migrate(&self, from: u32, state: serde_json::Value) -> Result<serde_json::Value, String> {
        if self.salt == 0 && from + 1 == self.version() {
            Ok(state)
        } else {
            Err(format!("no migration from {from}"))
        }
    }
}

#[derive(Default)]
struct TestIo {
    ledger: Vec<(Ticket, LedgerRequest)>,
    sent: Vec<Envelope>,
    timers: Vec<(u64, Ts, u64)>,
    alerts: Vec<Alert>,
    points: u64,
    crash_at: BTreeSet<u64>,
}

use std::collections::BTreeSet;

impl Io for TestIo {
    fn submit_ledger(&mut self, _service: Service, ticket: Ticket, request: &LedgerRequest) {
        self.ledger.push((ticket, request.clone()));
    }
    fn send(&mut self, _now: Ts, envelope: Envelope) {
        self.sent.push(envelope);
    }
    fn set_timer(&mut self, _service: Service, timer_id: u64, at: Ts, incarnation: u64) {
        self.timers.push((timer_id, at, incarnation));
    }
    fn alert(&mut self, _now: Ts, alert: Alert) {
        self.alerts.push(alert);
    }
    fn crash_point(&mut self, _service: Service) -> bool {
        self.points += 1;
        self.crash_at.contains(&self.points)
    }
}

fn cutoff(day: u32) -> Envelope {
    Envelope {
        id: msg_id(MsgKind::CutOff, day as u64, 0),
        from: Service::Scheduler,
        to: Service::Aggregation,
        seq: 0,
        body: Message::CutOff { date: Date(day) },
    }
}

fn host(every_records: u64) -> Host<Tally> {
    Host::new(Service::Aggregation, Tally::default).with_policy(SnapshotPolicy {
        every_records,
        every_bytes_min: u64::MAX,
    })
}

/// Delivers each day's cut-off until it is taken, answering the ledger and firing timers as
/// they come, restarting the host whenever it crashed. Returns the ids of every message sent.
fn drive(host: &mut Host<Tally>, io: &mut TestIo, days: &[u32]) -> BTreeSet<MessageId> {
    let mut now = 1_000;
    let mut sent = BTreeSet::new();
    for &day in days {
        loop {
            now += 10;
            if !host.is_up() {
                host.recover(now, io).expect("recovers");
            }
            let d = host.deliver(now, cutoff(day), io);
            settle(host, io, &mut now);
            if !matches!(d, Delivery::Down | Delivery::Crashed) {
                break;
            }
        }
    }
    while !host.is_up() || host.ledger_pending() > 0 {
        now += 10;
        if !host.is_up() {
            host.recover(now, io).expect("recovers");
        }
        settle(host, io, &mut now);
    }
    for env in io.sent.drain(..) {
        if !matches!(env.body, Message::Ack { .. }) {
            sent.insert(env.id);
        }
    }
    sent
}

fn settle(host: &mut Host<Tally>, io: &mut TestIo, now: &mut Ts) {
    while host.is_up() {
        if let Some((ticket, _)) = io.ledger.pop() {
            *now += 1;
            host.on_ledger(*now, ticket, Ok(LedgerReply::Accounts(vec![])), io);
            continue;
        }
        if let Some((id, at, inc)) = io.timers.pop() {
            if id == RETRANSMIT_TIMER {
                continue; // nobody acknowledges here: resending is the host's business
            }
            *now = (*now).max(at);
            host.fire_timer(*now, id, inc, io);
            continue;
        }
        break;
    }
}

fn state_of<S: ProcessStore>(host: &Host<Tally, S>) -> Tally {
    host.process().expect("up").clone()
}

#[test]
fn snapshot_plus_tail_equals_full_replay() {
    let days: Vec<u32> = (20..120).collect();
    let mut full = host(u64::MAX);
    let mut snap = host(7);
    let (mut io_a, mut io_b) = (TestIo::default(), TestIo::default());
    full.recover(0, &mut io_a).unwrap();
    snap.recover(0, &mut io_b).unwrap();
    let sent_a = drive(&mut full, &mut io_a, &days);
    let sent_b = drive(&mut snap, &mut io_b, &days);
    assert_eq!(sent_a, sent_b);
    assert!(snap.stats().snapshots > 10);
    full.crash();
    snap.crash();
    let ra = full.recover(10_000_000, &mut io_a).unwrap();
    let rb = snap.recover(10_000_000, &mut io_b).unwrap();
    assert_eq!(ra.snapshot_inputs, 0);
    assert!(rb.tail < 7, "tail {}", rb.tail);
    assert_eq!(state_of(&full), state_of(&snap));
    assert_eq!(full.state(), snap.state());
    assert_eq!(state_of(&full).count, 100);
}

#[test]
fn crashes_at_every_point_change_nothing() {
    let days: Vec<u32> = (20..60).collect();
    let mut reference = host(u64::MAX);
    let mut io = TestIo::default();
    reference.recover(0, &mut io).unwrap();
    let want_sent = drive(&mut reference, &mut io, &days);
    let want = state_of(&reference);
    let points = io.points;
    for every in [u64::MAX, 5] {
        for point in (1..points).step_by(7) {
            let mut h = host(every);
            let mut io = TestIo {
                crash_at: [point, point + 31, point + 97].into(),
                ..TestIo::default()
            };
            h.recover(0, &mut io).unwrap();
            let sent = drive(&mut h, &mut io, &days);
            assert_eq!(
                state_of(&h),
                want,
                "crash at point {point}, snapshots every {every}"
            );
            assert_eq!(sent, want_sent, "crash at point {point}");
            assert!(
                h.outbox_is_empty()
                    || h.state()
                        .pending()
                        .values()
                        .all(|p| matches!(p, Pending::Send(_)))
            );
        }
    }
}

#[test]
fn a_panic_is_one_dead_letter_and_an_alert_not_a_loop() {
    let mut h = host(u64::MAX);
    let mut io = TestIo::default();
    h.recover(0, &mut io).unwrap();
    drive(&mut h, &mut io, &[20, 13, 21, 14, 22]);
    assert_eq!(state_of(&h).count, 3, "the others were handled");
    assert_eq!(h.stats().dead_letters, 2);
    assert_eq!(h.state().dead_letters().len(), 2);
    assert_eq!(io.alerts.len(), 2, "{:?}", io.alerts);
    assert!(
        io.alerts[0].what.contains("unlucky date"),
        "{:?}",
        io.alerts[0]
    );
    // Delivered again (a sender that missed the acknowledgement): a duplicate, not a new panic.
    assert_eq!(
        h.deliver(5_000_000, cutoff(13), &mut io),
        Delivery::Duplicate
    );
    assert_eq!(h.stats().dead_letters, 2);
    // After a restart the dead letters are still there, and are not replayed.
    h.crash();
    h.recover(6_000_000, &mut io).unwrap();
    assert_eq!(state_of(&h).count, 3);
    assert_eq!(h.state().dead_letters().len(), 2);
}

#[test]
fn a_redriven_dead_letter_is_handled_once_the_input_makes_sense() {
    let mut h = host(u64::MAX);
    let mut io = TestIo::default();
    h.recover(0, &mut io).unwrap();
    drive(&mut h, &mut io, &[20, 14]);
    let (&id, _) = h.state().dead_letters().iter().next().unwrap();
    // An operator asks for it again while the process is stopped; it is still poison.
    h.shutdown(1_000_000, &mut io);
    let redrive = record::Record {
        version: record::OPERATOR_VERSION,
        at: 1_000_001,
        entry: record::Entry::Redrive { dead_letter: id },
    };
    h.store_mut()
        .append(&record::encode_record(&redrive))
        .unwrap();
    h.recover(1_000_002, &mut io).unwrap();
    assert_eq!(h.state().dead_letters().len(), 1, "failed again, kept");
    assert!(!h.state().dead_letters()[&id].redrive);
    assert_eq!(state_of(&h).count, 1);
}

#[test]
fn a_journal_of_another_version_is_refused_by_name() {
    let mut h = host(u64::MAX);
    let mut io = TestIo::default();
    h.recover(0, &mut io).unwrap();
    drive(&mut h, &mut io, &[20, 21]);
    h.crash();
    let store = std::mem::take(h.store_mut());
    let v2 = || Tally {
        version: 2,
        ..Tally::default()
    };
    let mut upgraded = Host::with_store(Service::Aggregation, v2, store);
    let err = upgraded.recover(1, &mut io).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("tally") && text.contains("version 1") && text.contains("version 2"));
    assert!(text.contains("stop it cleanly"), "{text}");
    assert!(upgraded.stopped().is_some());
}

#[test]
fn a_clean_stop_lets_the_next_version_migrate() {
    let mut h = host(u64::MAX);
    let mut io = TestIo::default();
    h.recover(0, &mut io).unwrap();
    drive(&mut h, &mut io, &[20, 21, 22]);
    assert!(h.shutdown(100_000, &mut io));
    let store = std::mem::take(h.store_mut());
    let v2 = || Tally {
        version: 2,
        ..Tally::default()
    };
    let mut upgraded = Host::with_store(Service::Aggregation, v2, store);
    let report = upgraded.recover(100_001, &mut io).unwrap();
    assert_eq!(report.migrated_from, Some(1));
    assert_eq!(upgraded.process().unwrap().count, 3);
    // Without a declared migration (v3 from v1), a clear refusal.
    upgraded.crash();
    let mut store = std::mem::take(upgraded.store_mut());
    let loaded = store.load().unwrap();
    assert!(loaded.records.is_empty());
    let v3 = || Tally {
        version: 3,
        ..Tally::default()
    };
    let mut h3 = Host::with_store(Service::Aggregation, v3, MemStore::default());
    h3.store_mut().snapshot(&h_snapshot_v1()).unwrap();
    let err = h3.recover(1, &mut io).unwrap_err();
    assert!(
        matches!(err, RecoveryError::Migration { from: 1, to: 3, .. }),
        "{err}"
    );
}

fn h_snapshot_v1() -> Vec<u8> {
    let mut h = host(u64::MAX);
    let mut io = TestIo::default();
    h.recover(0, &mut io).unwrap();
    drive(&mut h, &mut io, &[20]);
    h.shutdown(1, &mut io);
    h.store_mut().load().unwrap().snapshot.unwrap()
}

#[test]
fn changed_code_under_the_same_version_is_caught_at_replay() {
    let mut h = host(u64::MAX);
    let mut io = TestIo::default();
    h.recover(0, &mut io).unwrap();
    drive(&mut h, &mut io, &[20, 21]);
    h.crash();
    let store = std::mem::take(h.store_mut());
    let changed = || Tally {
        salt: 1,
        ..Tally::default()
    };
    let mut h2 = Host::with_store(Service::Aggregation, changed, store);
    let err = h2.recover(1, &mut io).unwrap_err();
    assert!(
        matches!(err, RecoveryError::Diverged { record: 0, .. }),
        "{err}"
    );
}

#[test]
fn an_unavailable_ledger_is_retried_in_order() {
    let mut h = host(u64::MAX);
    let mut io = TestIo::default();
    h.recover(0, &mut io).unwrap();
    for day in 20..25 {
        h.deliver(10, cutoff(day), &mut io);
    }
    assert_eq!(io.ledger.len(), 5);
    let first = io.ledger.remove(0).0;
    let unavailable = LedgerError::Unavailable {
        reason: "test".into(),
    };
    h.on_ledger(20, first, Err(unavailable), &mut io);
    // The later ones are void: their answers are ignored.
    let later = io.ledger.remove(0).0;
    let ignored = h.on_ledger(21, later, Ok(LedgerReply::Accounts(vec![])), &mut io);
    assert_eq!(ignored, Delivery::Stale);
    io.ledger.clear();
    let (id, at, inc) = *io
        .timers
        .iter()
        .find(|t| t.0 == LEDGER_RETRY_TIMER)
        .unwrap();
    h.fire_timer(at, id, inc, &mut io);
    let seqs: Vec<u64> = io.ledger.iter().map(|(t, _)| t.seq).collect();
    assert_eq!(seqs.len(), 5);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
}

/// A `MemStore` that counts group appends and can be told to fail them.
#[derive(Default)]
struct GroupStore {
    inner: MemStore,
    groups: Vec<usize>,
    fail: bool,
}

impl ProcessStore for GroupStore {
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        self.inner.append(record)
    }
    fn append_group(&mut self, records: &[Vec<u8>]) -> Result<(), StoreError> {
        if self.fail {
            return Err(StoreError::new("disk full"));
        }
        self.groups.push(records.len());
        records.iter().try_for_each(|r| self.inner.append(r))
    }
    fn snapshot(&mut self, snapshot: &[u8]) -> Result<(), StoreError> {
        self.inner.snapshot(snapshot)
    }
    fn load(&mut self) -> Result<Loaded, StoreError> {
        self.inner.load()
    }
}

fn group_host() -> Host<Tally, GroupStore> {
    Host::with_store(Service::Aggregation, Tally::default, GroupStore::default())
}

fn acks(io: &TestIo) -> Vec<MessageId> {
    let acks = io.sent.iter().filter_map(|e| match e.body {
        Message::Ack { id } => Some(id),
        _ => None,
    });
    acks.collect()
}

#[test]
fn a_group_is_one_append_and_each_message_its_own_step() {
    let mut h = group_host();
    let mut io = TestIo::default();
    h.recover(0, &mut io).unwrap();
    let group = vec![cutoff(20), cutoff(21), cutoff(20), cutoff(13), cutoff(22)];
    let got = h.deliver_group(10, group, &mut io);
    use Delivery::*;
    assert_eq!(got, [Handled, Handled, Duplicate, DeadLettered, Handled]);
    // The dead letter's rebuild reads the store, so the group went in two appends: the steps
    // up to the dead letter, then the rest.
    assert_eq!(h.store().groups, [3, 1]);
    assert_eq!(state_of(&h).count, 3);
    assert_eq!(
        acks(&io).len(),
        5,
        "every message, the copy too, once all is durable"
    );
    assert_eq!(io.ledger.len(), 3);
    // The records are the steps: a restart rebuilds the same state.
    let want = h.state().clone();
    h.crash();
    h.recover(20, &mut io).unwrap();
    assert_eq!(state_of(&h).count, 3);
    assert_eq!(h.state().dead_letters(), want.dead_letters());
}

#[test]
fn a_group_whose_append_fails_acknowledges_and_carries_out_nothing() {
    let mut h = group_host();
    let mut io = TestIo::default();
    h.recover(0, &mut io).unwrap();
    h.store_mut().fail = true;
    let got = h.deliver_group(10, vec![cutoff(20), cutoff(21)], &mut io);
    assert_eq!(got, [Delivery::Crashed, Delivery::Crashed]);
    assert!(h.stopped().unwrap().contains("disk full"));
    assert!(io.sent.is_empty() && io.ledger.is_empty(), "{:?}", io.sent);
    h.store_mut().fail = false;
    h.recover(20, &mut io).unwrap();
    assert_eq!(state_of(&h).count, 0, "nothing of the group was stored");
}

#[test]
fn a_crash_anywhere_in_a_group_loses_only_what_was_not_acknowledged() {
    let days: Vec<u32> = (20..40).collect();
    let mut reference = group_host();
    let mut io = TestIo::default();
    reference.recover(0, &mut io).unwrap();
    reference.deliver_group(10, days.iter().map(|&d| cutoff(d)).collect(), &mut io);
    let points = io.points;
    assert!(points > days.len() as u64);
    for point in 1..=points {
        let mut h = group_host();
        let mut io = TestIo {
            crash_at: [point].into(),
            ..TestIo::default()
        };
        h.recover(0, &mut io).unwrap();
        let mut now = 10;
        let mut unacked: Vec<u32> = days.clone();
        while !unacked.is_empty() {
            now += 10;
            if !h.is_up() {
                h.recover(now, &mut io).unwrap();
            }
            let group = unacked.iter().map(|&d| cutoff(d)).collect();
            h.deliver_group(now, group, &mut io);
            let acked = acks(&io);
            unacked.retain(|&d| !acked.contains(&cutoff(d).id));
        }
        if !h.is_up() {
            // Crashed after the acknowledgements, carrying out the effects.
            h.recover(now + 10, &mut io).unwrap();
        }
        assert_eq!(
            state_of(&h).count,
            days.len() as u64,
            "crash at point {point}"
        );
        assert_eq!(
            h.state().inputs,
            days.len() as u64,
            "each taken once: point {point}"
        );
    }
}
