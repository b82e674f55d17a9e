//! The host: the framework around a [`Process`] that makes it durable, idempotent and
//! restartable.
//!
//! A process author writes only `handle`. The host gives every process, the same way:
//! - **One atomic step per input.** An input becomes one record in the process's
//!   [`ProcessStore`]: the input, the effects it produced, and the pending effects it completes
//!   (the ledger request it answers). Only after that record is durable does the host
//!   acknowledge the input or carry out an effect; a failed append stops the host.
//! - **Effects until complete.** A message stays pending until its receiver acknowledges it
//!   and is sent again every [`RETRANSMIT_NS`]; a ledger request until its answer is committed;
//!   an alert until it was raised. A crash repeats an effect rather than losing it, and the
//!   repeat is a no-op because every id derives from its cause.
//! - **The ledger as an asynchronous effect.** Requests go to the ledger port in order, several
//!   in flight; each answer comes back later as an input ([`Host::on_ledger`]). An unreachable
//!   ledger is retried after [`LEDGER_RETRY_NS`].
//! - **Duplicate suppression in bounded memory** (`state`): per-channel sequence numbers for
//!   platform messages, a window of ids for messages from outside.
//! - **Snapshots and bounded recovery.** By policy the host snapshots the process's state with
//!   its own; recovery restores the newest snapshot and replays only the records after it,
//!   checking that each replayed input produces the effects it recorded.
//! - **Versions.** Records and snapshots carry the process's code version; recovery refuses to
//!   replay another version's records, and restores an older snapshot only by migration.
//! - **Poison inputs.** A panic in `handle`, or an input the process declares poison, becomes a
//!   dead letter: committed with its reason, acknowledged, alerted; the process is rebuilt from
//!   its store and carries on. An operator re-drives a dead letter once the code is fixed.
//!
//! The host touches the world only through [`Io`] and its [`ProcessStore`].

mod group;
mod io;
mod log_group;
pub mod log_store;
pub mod record;
pub mod state;
pub mod store;

pub use group::GROUP_MESSAGES_MAX;
pub use io::{execute, Io, Ticket};
pub use log_store::LogStore;
pub use state::{DeadLetter, HostState, Pending};
pub use store::{Loaded, MemStore, ProcessStore, StoreError};

use crate::calendar::{Ts, NS_PER_SEC};
use crate::process::Service;
use crate::process::{Ctx, Effects, Envelope, Input, LedgerReply, MessageId, Process};
use acme_ledger::LedgerError;
use record::{Entry, Record};
use std::collections::BTreeMap;

/// How long a sent message waits for its acknowledgement before it is sent again.
pub const RETRANSMIT_NS: Ts = 30 * NS_PER_SEC;
/// How long the host waits before submitting again to a ledger that was unavailable.
pub const LEDGER_RETRY_NS: Ts = 100 * 1_000_000;
/// Ledger requests one host keeps in flight.
pub const LEDGER_IN_FLIGHT_MAX: usize = 8;
/// The timer ids the host keeps for itself; processes never use them.
pub const RETRANSMIT_TIMER: u64 = u64::MAX;
pub const LEDGER_RETRY_TIMER: u64 = u64::MAX - 1;

mod recover;
mod retry;
mod snapshot;

pub use recover::{RecoveryError, RecoveryReport};
pub use snapshot::SnapshotPolicy;

/// The id of the acknowledgement of message `id` by `service`.
pub fn ack_id(id: MessageId, service: Service) -> MessageId {
    // Acknowledgements are not deduplicated (acknowledging twice is harmless); the id only has
    // to be stable for the trace.
    id ^ (0xA0 << 120) ^ ((service as u128) << 112)
}

/// What happened to an input offered to a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Committed and handled.
    Handled,
    /// Committed as a dead letter.
    DeadLettered,
    /// A message committed already: dropped (and acknowledged again).
    Duplicate,
    /// The host is down (crashed or stopped): the input was not taken.
    Down,
    /// The host crashed while taking the input, before committing it: not acknowledged
    /// (unless a planted bug did), so the sender sends it again.
    Crashed,
    /// A timer or ledger answer of an earlier incarnation or attempt: ignored.
    Stale,
}

/// Figures for the run's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    pub handled: u64,
    pub duplicates: u64,
    pub retransmissions: u64,
    pub snapshots: u64,
    pub recoveries: u64,
    /// The longest journal tail replayed at a recovery.
    pub journal_tail_max: u64,
    pub dead_letters: u64,
    pub ledger_unavailable: u64,
    /// Group commits ([`Host::deliver_group`]) that appended something, the inputs they took,
    /// and the most one took.
    pub group_commits: u64,
    pub grouped_inputs: u64,
    pub group_max: u64,
}

/// Runs one process.
pub struct Host<P: Process, S: ProcessStore = MemStore> {
    service: Service,
    make: Box<dyn Fn() -> P + Send>,
    process: Option<P>,
    state: HostState,
    store: S,
    incarnation: u64,
    /// Why the host stopped for good (a store error, a refused recovery), if it did.
    stopped: Option<String>,
    /// Pending effects completed in memory and not yet named by a record.
    done_unrecorded: Vec<u64>,
    /// Ledger requests in flight: outbox seq -> attempt.
    in_flight: BTreeMap<u64, u64>,
    attempts: u64,
    /// Submitting waits for the retry timer after an `Unavailable`.
    ledger_blocked: bool,
    /// When each pending message is due to be sent again.
    retry_at: retry::RetryQueue,
    /// Timers of the input being committed, armed once it is.
    timers_to_arm: Vec<(u64, Ts)>,
    /// Every pending effect up to this outbox seq has been carried out by this incarnation
    /// (sent, raised or submitted in turn): `carry_out` looks only past it.
    carried_to: u64,
    /// During a group commit ([`Host::deliver_group`]): the records taken and not yet
    /// appended.
    group: Option<Vec<Vec<u8>>>,
    policy: SnapshotPolicy,
    since_snapshot: snapshot::Since,
    stats: HostStats,
}

impl<P: Process> Host<P, MemStore> {
    pub fn new(service: Service, make: impl Fn() -> P + Send + 'static) -> Self {
        Host::with_store(service, make, MemStore::default())
    }
}

impl<P: Process, S: ProcessStore> Host<P, S> {
    /// A host on `store`. It starts down: call [`Host::recover`] (on an empty store that starts
    /// the process fresh).
    pub fn with_store(service: Service, make: impl Fn() -> P + Send + 'static, store: S) -> Self {
        Host {
            service,
            make: Box::new(make),
            process: None,
            state: HostState::default(),
            store,
            incarnation: 0,
            stopped: None,
            done_unrecorded: Vec::new(),
            in_flight: BTreeMap::new(),
            attempts: 0,
            ledger_blocked: false,
            retry_at: retry::RetryQueue::default(),
            timers_to_arm: Vec::new(),
            group: None,
            carried_to: 0,
            policy: SnapshotPolicy::default(),
            since_snapshot: Default::default(),
            stats: HostStats::default(),
        }
    }

    /// Deploys other code for the process (a new version, or the old one back): the next
    /// [`Host::recover`] runs it. Only while the host is down.
    pub fn deploy(&mut self, make: impl Fn() -> P + Send + 'static) {
        assert!(self.process.is_none(), "deploy onto a running host");
        self.make = Box::new(make);
    }

    pub fn with_policy(mut self, policy: SnapshotPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn service(&self) -> Service {
        self.service
    }

    pub fn is_up(&self) -> bool {
        self.process.is_some()
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The live process, for read-only inspection by tests and the simulator's checkers.
    pub fn process(&self) -> Option<&P> {
        self.process.as_ref()
    }

    pub fn state(&self) -> &HostState {
        &self.state
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub fn stats(&self) -> HostStats {
        self.stats
    }

    /// Why the host stopped for good, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Nothing pending: every message acknowledged, every ledger request answered.
    pub fn outbox_is_empty(&self) -> bool {
        self.state.pending().is_empty()
    }

    /// Ledger requests committed and not yet answered.
    pub fn ledger_pending(&self) -> usize {
        self.state.ledger_seqs().len()
    }

    /// Delivers a message.
    pub fn deliver(&mut self, now: Ts, envelope: Envelope, io: &mut dyn Io) -> Delivery {
        assert_eq!(envelope.to, self.service, "message for {:?}", envelope.to);
        if self.process.is_none() {
            return Delivery::Down;
        }
        let (id, sender) = (envelope.id, envelope.from);
        match self.screen(&envelope) {
            Some(Delivery::Duplicate) => {
                self.acknowledge(now, id, sender, io);
                return Delivery::Duplicate;
            }
            Some(delivery) => return delivery,
            None => {}
        }
        if crate::plant::active(crate::plant::Bug::AckBeforeCommit) {
            // Planted: acknowledged on receipt, before the commit that makes it durable.
            self.acknowledge(now, id, sender, io);
        }
        if self.crash_here(io) {
            return Delivery::Crashed;
        }
        let delivery = self.step(now, Input::Message(envelope), None, Vec::new(), io);
        if delivery == Delivery::Crashed {
            return delivery;
        }
        // Acknowledged once committed: a crash before this point makes the sender send again,
        // and the copy is then a duplicate, acknowledged above. The input was taken either way.
        if self.crash_here(io) {
            return delivery;
        }
        self.acknowledge(now, id, sender, io);
        self.carry_out(now, io);
        delivery
    }

    /// What needs no step: an acknowledgement (taken in memory; the next record names what it
    /// completed) and a copy of a message taken already (to acknowledge again).
    fn screen(&mut self, envelope: &Envelope) -> Option<Delivery> {
        if let crate::messages::Message::Ack { id } = envelope.body {
            for seq in self.state.sends_of(id) {
                self.state.complete(seq);
                self.retry_at.remove(seq);
                self.done_unrecorded.push(seq);
            }
            return Some(Delivery::Handled);
        }
        let planted_dup = crate::plant::active(crate::plant::Bug::DuplicateAppliedTwice);
        if self.state.is_duplicate(envelope) && !planted_dup {
            self.stats.duplicates += 1;
            return Some(Delivery::Duplicate);
        }
        None
    }

    fn acknowledge(&mut self, now: Ts, id: MessageId, sender: Service, io: &mut dyn Io) {
        io.send(
            now,
            Envelope {
                id: ack_id(id, self.service),
                from: self.service,
                to: sender,
                seq: 0,
                body: crate::messages::Message::Ack { id },
            },
        );
    }

    /// Fires a timer armed by incarnation `incarnation`.
    pub fn fire_timer(
        &mut self,
        now: Ts,
        timer_id: u64,
        incarnation: u64,
        io: &mut dyn Io,
    ) -> Delivery {
        if self.process.is_none() {
            return Delivery::Down;
        }
        if incarnation != self.incarnation {
            return Delivery::Stale;
        }
        match timer_id {
            RETRANSMIT_TIMER => {
                self.retransmit(now, io);
                return Delivery::Handled;
            }
            LEDGER_RETRY_TIMER => {
                self.ledger_blocked = false;
                self.submit_ledger(io);
                return Delivery::Handled;
            }
            _ => {}
        }
        if !self.state.timers().contains_key(&timer_id) {
            // Fired already (a timer re-armed at recovery and its original both arrived).
            return Delivery::Stale;
        }
        if self.crash_here(io) {
            return Delivery::Down;
        }
        let delivery = self.step(now, Input::Timer { timer_id }, None, Vec::new(), io);
        self.carry_out(now, io);
        delivery
    }

    /// The ledger's answer to a submitted request.
    pub fn on_ledger(
        &mut self,
        now: Ts,
        ticket: Ticket,
        answer: Result<LedgerReply, LedgerError>,
        io: &mut dyn Io,
    ) -> Delivery {
        let current = self.in_flight.get(&ticket.seq) == Some(&ticket.attempt);
        if self.process.is_none() || ticket.incarnation != self.incarnation || !current {
            return if self.process.is_none() {
                Delivery::Down
            } else {
                Delivery::Stale
            };
        }
        self.in_flight.remove(&ticket.seq);
        let reply = match answer {
            Ok(reply) => reply,
            Err(LedgerError::Unavailable { .. }) => {
                self.ledger_unavailable(now, io);
                return Delivery::Handled;
            }
            Err(e) => panic!(
                "{:?}: the ledger refused request {}: {e}",
                self.service, ticket.seq
            ),
        };
        let Some(Pending::Ledger { tag, .. }) = self.state.pending().get(&ticket.seq) else {
            panic!(
                "{:?}: an answer to request {} that is not pending",
                self.service, ticket.seq
            );
        };
        let input = Input::Ledger { tag: *tag, reply };
        if crate::plant::active(crate::plant::Bug::NonAtomicReply) {
            // Planted: the request leaves the outbox in one record, its answer comes in another.
            if self.record_progress(now, vec![ticket.seq]).is_err() || self.crash_here(io) {
                return Delivery::Down;
            }
        }
        if self.crash_here(io) {
            return Delivery::Down;
        }
        let delivery = self.step(now, input, None, vec![ticket.seq], io);
        self.carry_out(now, io);
        delivery
    }

    /// Everything in flight is void: submit it all again, in order, after a pause.
    fn ledger_unavailable(&mut self, now: Ts, io: &mut dyn Io) {
        self.stats.ledger_unavailable += 1;
        self.in_flight.clear();
        if !self.ledger_blocked {
            self.ledger_blocked = true;
            let at = now + LEDGER_RETRY_NS;
            io.set_timer(self.service, LEDGER_RETRY_TIMER, at, self.incarnation);
        }
    }

    /// Handles one input and commits it as one record; a dead letter if `handle` panics or
    /// declares the input poison. `done` names the pending effects this input completes.
    fn step(
        &mut self,
        now: Ts,
        input: Input,
        redrive: Option<u64>,
        done: Vec<u64>,
        io: &mut dyn Io,
    ) -> Delivery {
        let version = self.version();
        let process = self.process.as_mut().expect("process is up");
        let mut fx = Effects::new();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            process.handle(&Ctx { now }, &input, &mut fx)
        }));
        let mut done_all = std::mem::take(&mut self.done_unrecorded);
        done_all.extend(done);
        let poison = match outcome {
            Err(panic) => Some(format!("handle panicked: {}", panic_message(&panic))),
            Ok(()) => fx.poisoned().map(|r| format!("poison input: {r}")),
        };
        let (entry, delivery) = match poison {
            Some(reason) => {
                let entry = Entry::DeadLetter {
                    input,
                    reason,
                    done: done_all,
                    redrive,
                };
                (entry, Delivery::DeadLettered)
            }
            None => {
                let effects = fx.into_vec();
                for effect in &effects {
                    if let crate::process::Effect::SetTimer { timer_id, at } = effect {
                        self.timers_to_arm.push((*timer_id, *at));
                    }
                }
                let entry = Entry::Step {
                    input,
                    effects,
                    done: done_all,
                    redrive,
                };
                (entry, Delivery::Handled)
            }
        };
        let record = Record {
            version,
            at: now,
            entry,
        };
        if self.commit(record).is_err() {
            self.timers_to_arm.clear();
            return Delivery::Crashed;
        }
        self.stats.handled += 1;
        // Timers are armed once committed (and re-armed by every recovery).
        for (timer_id, at) in std::mem::take(&mut self.timers_to_arm) {
            io.set_timer(self.service, timer_id, at, self.incarnation);
        }
        if delivery == Delivery::DeadLettered {
            self.stats.dead_letters += 1;
            // The rebuild reads the store: what the group took so far must be in it.
            if self.flush_group().is_err() {
                return Delivery::Crashed;
            }
            // The process may have half-applied the input before it panicked: rebuild it from
            // the store, where the dead letter is not an input.
            if let Err(e) = self.rebuild() {
                self.stop(format!("rebuilding after a dead letter: {e}"));
                return Delivery::Crashed;
            }
        }
        if self.group.is_none() {
            // In a group the snapshot waits for the group's append: it covers what is stored.
            self.maybe_snapshot(now, io);
        }
        delivery
    }

    /// Appends a record and applies it to the host's state. A store error stops the host: the
    /// record may or may not be durable, and recovery will tell.
    fn commit(&mut self, record: Record) -> Result<(), ()> {
        let bytes = record::encode_record(&record);
        self.since_snapshot.add(bytes.len());
        if let Some(group) = self.group.as_mut() {
            group.push(bytes);
            self.state.apply(self.service, &record);
            return Ok(());
        }
        if let Err(e) = self.store.append(&bytes) {
            self.stop(format!("append failed: {e}"));
            return Err(());
        }
        self.state.apply(self.service, &record);
        Ok(())
    }

    fn record_progress(&mut self, now: Ts, mut done: Vec<u64>) -> Result<(), ()> {
        done.extend(std::mem::take(&mut self.done_unrecorded));
        let record = Record {
            version: self.version(),
            at: now,
            entry: Entry::Progress { done },
        };
        self.commit(record)
    }

    fn version(&self) -> u32 {
        self.process
            .as_ref()
            .map_or_else(|| (self.make)().version(), |p| p.version())
    }

    fn stop(&mut self, reason: String) {
        self.stopped = Some(reason);
        self.process = None;
    }

    /// Carries out what is pending and not yet under way: alerts, first sends, ledger requests.
    fn carry_out(&mut self, now: Ts, io: &mut dyn Io) {
        // Outbox seqs only grow, so what was not carried out lies past `carried_to`; a new
        // incarnation starts again from 0. (Scanning the whole outbox at every step cost a
        // busy intake most of its time once members' acknowledgements lagged.)
        let fresh: Vec<(u64, Pending)> = self
            .state
            .pending()
            .range(self.carried_to + 1..)
            .filter(|(seq, p)| match p {
                Pending::Send(_) => !self.retry_at.contains(**seq),
                Pending::Alert(_) => true,
                Pending::Ledger { .. } => false,
            })
            .map(|(&seq, p)| (seq, p.clone()))
            .collect();
        for (seq, pending) in fresh {
            if self.crash_here(io) {
                return;
            }
            self.carried_to = seq;
            match pending {
                Pending::Send(envelope) => {
                    io.send(now, envelope);
                    self.arm_retransmit(seq, now + RETRANSMIT_NS, io);
                }
                Pending::Alert(alert) => {
                    io.alert(now, alert);
                    self.state.complete(seq);
                    self.done_unrecorded.push(seq);
                }
                Pending::Ledger { .. } => unreachable!(),
            }
        }
        self.submit_ledger(io);
    }

    fn arm_retransmit(&mut self, seq: u64, at: Ts, io: &mut dyn Io) {
        let earliest = self.retry_at.earliest();
        self.retry_at.insert(seq, at);
        if earliest.is_none_or(|e| e > at) {
            io.set_timer(self.service, RETRANSMIT_TIMER, at, self.incarnation);
        }
    }

    /// Submits pending ledger requests in order, up to the in-flight limit.
    fn submit_ledger(&mut self, io: &mut dyn Io) {
        if self.ledger_blocked || self.process.is_none() {
            return;
        }
        let last_in_flight = self.in_flight.keys().next_back().copied().unwrap_or(0);
        let next: Vec<u64> = self
            .state
            .ledger_seqs()
            .range(last_in_flight + 1..)
            .copied()
            .take(LEDGER_IN_FLIGHT_MAX.saturating_sub(self.in_flight.len()))
            .collect();
        for seq in next {
            if self.crash_here(io) {
                return;
            }
            self.attempts += 1;
            self.in_flight.insert(seq, self.attempts);
            let ticket = Ticket {
                incarnation: self.incarnation,
                seq,
                attempt: self.attempts,
            };
            let Some(Pending::Ledger { request, .. }) = self.state.pending().get(&seq) else {
                unreachable!("filtered above");
            };
            io.submit_ledger(self.service, ticket, request);
        }
    }

    /// Sends again what was not acknowledged in time, and arms the retransmission timer.
    fn retransmit(&mut self, now: Ts, io: &mut dyn Io) {
        let due = self.retry_at.due(now);
        for seq in due {
            match self.state.pending().get(&seq) {
                Some(Pending::Send(envelope)) => {
                    self.stats.retransmissions += 1;
                    io.send(now, envelope.clone());
                    self.retry_at.insert(seq, now + RETRANSMIT_NS);
                }
                _ => {
                    self.retry_at.remove(seq);
                }
            }
        }
        if let Some(at) = self.retry_at.earliest() {
            io.set_timer(
                self.service,
                RETRANSMIT_TIMER,
                at.max(now + 1),
                self.incarnation,
            );
        }
    }

    /// Asks the world whether to crash here; crashes if so.
    fn crash_here(&mut self, io: &mut dyn Io) -> bool {
        if self.process.is_some() && io.crash_point(self.service) {
            self.crash();
            return true;
        }
        false
    }

    /// Handles again a dead letter an operator re-drove, now (the process must be up).
    pub fn redrive(&mut self, now: Ts, dead_letter: u64, io: &mut dyn Io) -> Option<Delivery> {
        let input = self.state.dead_letters().get(&dead_letter)?.input.clone();
        let delivery = self.step(now, input, Some(dead_letter), Vec::new(), io);
        self.carry_out(now, io);
        Some(delivery)
    }
}

/// The text of a caught panic, for a dead letter's reason or an alert.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests;
