//! The host: the framework around a [`Process`] that makes it durable, idempotent and restartable.
//!
//! A process author writes only `handle`. The host gives every process, the same way:
//! - **Persistence** by journaling: each input is committed to the process's [`ProcessStore`]
//!   together with the effects it produced (an outbox) before any effect is carried out.
//! - **Exactly-once effect on at-least-once delivery**: a message whose id is already in the
//!   journal is dropped; effects are carried out from the outbox and removed only after they
//!   took place, so a crash repeats an effect rather than losing it, and the repeat is a no-op
//!   because every id is derived from its cause (the ledger answers `exists`, the receiving
//!   host drops the duplicate message).
//! - **Recovery**: after a crash, a new instance replays the journal through `handle`
//!   (discarding the effects, which were committed already), re-arms the outstanding timers and
//!   drains what is left in the outbox.
//! - **Retries** of a ledger that cannot be reached: the outbox keeps the request; the driver
//!   calls [`Host::drain`] again later.
//! - **At-least-once delivery over a lossy bus**: a sent message stays in the store until the
//!   receiving host acknowledges it (`Message::Ack`, sent once the message is committed, and
//!   again for every duplicate), and is sent again every [`RETRANSMIT_NS`] until then.
//!
//! The host touches the world only through [`Io`] (ledger, bus, timers, alerts) and
//! [`ProcessStore`] (durable state); the simulator implements both in memory, production with
//! a TigerBeetle client, a message broker and a write-ahead log.

use crate::calendar::Ts;
use crate::process::{Alert, Ctx, Effect, Effects, Envelope, Input, MessageId, Process, Service};
use crate::process::{LedgerReply, LedgerRequest};
use acme_ledger::{Ledger, LedgerError};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The durable state of one process, as the host needs it. Every method is atomic: after a
/// crash, each call has happened entirely or not at all.
pub trait ProcessStore {
    /// Whether a message with this id was committed already.
    fn seen(&self, id: MessageId) -> bool;
    /// Commits an input, the time it was handled at, and its effects (appended to the outbox).
    /// A timer input also removes its timer from the outstanding timers.
    fn commit(&mut self, now: Ts, input: Input, effects: Vec<Effect>);
    /// The oldest effect not yet carried out.
    fn outbox_front(&self) -> Option<&Effect>;
    /// Removes the oldest effect: it was carried out. A `SetTimer` moves to the outstanding timers.
    fn outbox_pop(&mut self);
    /// Every committed input, oldest first, with its time.
    fn journal(&self) -> Box<dyn Iterator<Item = (Ts, &Input)> + '_>;
    /// Timers set and not yet fired: (timer id, due time).
    fn timers(&self) -> Vec<(u64, Ts)>;
    /// Number of committed inputs.
    fn journal_len(&self) -> usize;
    /// Removes the oldest effect, a `Send` that was handed to the bus, and keeps its message
    /// until it is acknowledged, to be sent again at `retry_at`.
    fn outbox_pop_sent(&mut self, retry_at: Ts);
    /// The receiver acknowledged a message.
    fn acknowledge(&mut self, id: MessageId);
    /// Drops the oldest effect without carrying it out (only a planted bug does this).
    fn outbox_discard(&mut self);
    /// Messages sent and not acknowledged whose retry time has come; their next retry moves to
    /// `next_retry_at`.
    fn due_for_retry(&mut self, now: Ts, next_retry_at: Ts) -> Vec<Envelope>;
    /// The earliest retry time of an unacknowledged message.
    fn next_retry(&self) -> Option<Ts>;
}

/// [`ProcessStore`] in memory: what the simulator uses. It survives a simulated crash because
/// the crash drops only the process, never the store.
#[derive(Debug, Default)]
pub struct MemStore {
    journal: Vec<(Ts, Input)>,
    seen: BTreeSet<MessageId>,
    outbox: VecDeque<Effect>,
    timers: BTreeMap<u64, Ts>,
    unacked: BTreeMap<MessageId, (Envelope, Ts)>,
}

impl ProcessStore for MemStore {
    fn seen(&self, id: MessageId) -> bool {
        self.seen.contains(&id)
    }

    fn commit(&mut self, now: Ts, input: Input, effects: Vec<Effect>) {
        match &input {
            Input::Message(env) => {
                let fresh = self.seen.insert(env.id);
                let planted = crate::plant::active(crate::plant::Bug::DuplicateAppliedTwice);
                assert!(fresh || planted, "message {:#x} committed twice", env.id);
            }
            Input::Timer { timer_id } => {
                self.timers.remove(timer_id);
            }
            Input::Ledger { .. } => {}
        }
        self.journal.push((now, input));
        self.outbox.extend(effects);
    }

    fn outbox_front(&self) -> Option<&Effect> {
        self.outbox.front()
    }

    fn outbox_pop(&mut self) {
        if let Some(Effect::SetTimer { timer_id, at }) = self.outbox.pop_front() {
            self.timers.insert(timer_id, at);
        }
    }

    fn journal(&self) -> Box<dyn Iterator<Item = (Ts, &Input)> + '_> {
        Box::new(self.journal.iter().map(|(t, i)| (*t, i)))
    }

    fn timers(&self) -> Vec<(u64, Ts)> {
        self.timers.iter().map(|(&id, &at)| (id, at)).collect()
    }

    fn journal_len(&self) -> usize {
        self.journal.len()
    }

    fn outbox_pop_sent(&mut self, retry_at: Ts) {
        match self.outbox.pop_front() {
            Some(Effect::Send(envelope)) => {
                self.unacked.insert(envelope.id, (envelope, retry_at));
            }
            other => panic!("outbox_pop_sent on {other:?}"),
        }
    }

    fn acknowledge(&mut self, id: MessageId) {
        self.unacked.remove(&id);
    }

    fn outbox_discard(&mut self) {
        self.outbox.pop_front();
    }

    fn due_for_retry(&mut self, now: Ts, next_retry_at: Ts) -> Vec<Envelope> {
        let mut due = Vec::new();
        for (envelope, retry_at) in self.unacked.values_mut() {
            if *retry_at <= now {
                *retry_at = next_retry_at;
                due.push(envelope.clone());
            }
        }
        due
    }

    fn next_retry(&self) -> Option<Ts> {
        self.unacked.values().map(|(_, at)| *at).min()
    }
}

/// How long a sent message waits for its acknowledgement before it is sent again.
pub const RETRANSMIT_NS: Ts = 30 * crate::calendar::NS_PER_SEC;
/// The timer id the host keeps for itself (retransmission); processes never use it.
pub const RETRANSMIT_TIMER: u64 = u64::MAX;

/// The id of the acknowledgement of message `id` by `service`.
pub fn ack_id(id: MessageId, service: Service) -> MessageId {
    // Acknowledgements are not deduplicated (acknowledging twice is harmless); the id only has
    // to be stable for the trace.
    id ^ (0xA0 << 120) ^ ((service as u128) << 112)
}

/// The world as a host sees it.
pub trait Io {
    /// The ledger port.
    fn ledger(&mut self) -> &mut dyn Ledger;
    /// Hands a message to the bus.
    fn send(&mut self, now: Ts, envelope: Envelope);
    /// Arms a timer; it comes back as [`Input::Timer`] tagged with `incarnation`, and the host
    /// ignores timers of earlier incarnations.
    fn set_timer(&mut self, service: Service, timer_id: u64, at: Ts, incarnation: u64);
    /// Raises an alert to operations.
    fn alert(&mut self, now: Ts, alert: Alert);
    /// Observes a ledger request and its answer (for tracing and invariant checks).
    fn observe_ledger(
        &mut self,
        _service: Service,
        _request: &LedgerRequest,
        _reply: &LedgerReply,
    ) {
    }
    /// Asked before each effect: `true` crashes the process right here (fault injection).
    fn crash_point(&mut self, _service: Service) -> bool {
        false
    }
}

/// What happened to a delivered input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Committed and handled.
    Handled,
    /// A message already committed once: dropped.
    Duplicate,
    /// The process is down: the input was not taken (the bus keeps or loses it).
    Down,
    /// A timer of an earlier incarnation: ignored.
    StaleTimer,
}

/// What draining the outbox ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drained {
    /// Every effect carried out.
    Empty,
    /// The ledger could not be reached; call `drain` again later.
    LedgerUnavailable,
    /// The process crashed at a crash point.
    Crashed,
}

/// Runs one process: journal, outbox, dedupe, recovery.
pub struct Host<P: Process, S: ProcessStore = MemStore> {
    service: Service,
    make: Box<dyn Fn() -> P>,
    process: Option<P>,
    store: S,
    incarnation: u64,
    /// Inputs handled by this host (all incarnations), for statistics.
    handled: u64,
    duplicates: u64,
    retransmissions: u64,
}

impl<P: Process> Host<P, MemStore> {
    pub fn new(service: Service, make: impl Fn() -> P + 'static) -> Self {
        Host::with_store(service, make, MemStore::default())
    }
}

impl<P: Process, S: ProcessStore> Host<P, S> {
    pub fn with_store(service: Service, make: impl Fn() -> P + 'static, store: S) -> Self {
        let process = Some(make());
        Host {
            service,
            make: Box::new(make),
            process,
            store,
            incarnation: 0,
            handled: 0,
            duplicates: 0,
            retransmissions: 0,
        }
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

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn handled(&self) -> u64 {
        self.handled
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Nothing left to carry out and nothing sent waits for its acknowledgement.
    pub fn outbox_is_empty(&self) -> bool {
        self.store.outbox_front().is_none() && self.store.next_retry().is_none()
    }

    /// Delivers a message, then drains the outbox.
    pub fn deliver(&mut self, now: Ts, envelope: Envelope, io: &mut dyn Io) -> (Delivery, Drained) {
        assert_eq!(envelope.to, self.service, "message for {:?}", envelope.to);
        if self.process.is_none() {
            return (Delivery::Down, Drained::Crashed);
        }
        if let crate::messages::Message::Ack { id } = envelope.body {
            self.store.acknowledge(id);
            return (Delivery::Handled, Drained::Empty);
        }
        let (id, sender) = (envelope.id, envelope.from);
        if self.store.seen(id) && !crate::plant::active(crate::plant::Bug::DuplicateAppliedTwice) {
            self.duplicates += 1;
            self.acknowledge(now, id, sender, io);
            return (Delivery::Duplicate, Drained::Empty);
        }
        self.commit_and_handle(now, Input::Message(envelope));
        // Acknowledged once committed: a crash before this point makes the sender send again,
        // and the copy is then a duplicate that is acknowledged above.
        self.acknowledge(now, id, sender, io);
        (Delivery::Handled, self.drain(now, io))
    }

    fn acknowledge(&mut self, now: Ts, id: MessageId, sender: Service, io: &mut dyn Io) {
        io.send(
            now,
            Envelope {
                id: ack_id(id, self.service),
                from: self.service,
                to: sender,
                body: crate::messages::Message::Ack { id },
            },
        );
    }

    /// Sends again what was not acknowledged in time, and arms the retransmission timer.
    fn retransmit(&mut self, now: Ts, io: &mut dyn Io) {
        for envelope in self.store.due_for_retry(now, now + RETRANSMIT_NS) {
            self.retransmissions += 1;
            io.send(now, envelope);
        }
        if let Some(at) = self.store.next_retry() {
            io.set_timer(
                self.service,
                RETRANSMIT_TIMER,
                at.max(now + 1),
                self.incarnation,
            );
        }
    }

    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }

    /// Fires a timer set by incarnation `incarnation`, then drains the outbox.
    pub fn fire_timer(
        &mut self,
        now: Ts,
        timer_id: u64,
        incarnation: u64,
        io: &mut dyn Io,
    ) -> (Delivery, Drained) {
        if self.process.is_none() {
            return (Delivery::Down, Drained::Crashed);
        }
        if incarnation != self.incarnation {
            return (Delivery::StaleTimer, Drained::Empty);
        }
        if timer_id == RETRANSMIT_TIMER {
            self.retransmit(now, io);
            return (Delivery::Handled, Drained::Empty);
        }
        if !self.store.timers().iter().any(|&(id, _)| id == timer_id) {
            // Fired already (a timer re-armed at recovery and its original both arrived).
            return (Delivery::StaleTimer, Drained::Empty);
        }
        self.commit_and_handle(now, Input::Timer { timer_id });
        (Delivery::Handled, self.drain(now, io))
    }

    fn commit_and_handle(&mut self, now: Ts, input: Input) {
        let process = self.process.as_mut().expect("process is up");
        let mut fx = Effects::new();
        process.handle(&Ctx { now }, &input, &mut fx);
        self.store.commit(now, input, fx.into_vec());
        self.handled += 1;
    }

    /// Carries out the outbox, oldest effect first. Ledger answers are committed as inputs as
    /// they arrive, in the same step as the removal of their request from the outbox.
    pub fn drain(&mut self, now: Ts, io: &mut dyn Io) -> Drained {
        loop {
            if self.process.is_none() {
                return Drained::Crashed;
            }
            let Some(effect) = self.store.outbox_front() else {
                return Drained::Empty;
            };
            if io.crash_point(self.service) {
                self.crash();
                return Drained::Crashed;
            }
            match effect.clone() {
                Effect::Send(envelope) => {
                    io.send(now, envelope);
                    let retry_at = now + RETRANSMIT_NS;
                    let arm = self.store.next_retry().is_none_or(|at| at > retry_at);
                    self.store.outbox_pop_sent(retry_at);
                    if arm {
                        io.set_timer(self.service, RETRANSMIT_TIMER, retry_at, self.incarnation);
                    }
                }
                Effect::SetTimer { timer_id, at } => {
                    io.set_timer(self.service, timer_id, at, self.incarnation);
                    self.store.outbox_pop();
                }
                Effect::Alert(alert) => {
                    io.alert(now, alert);
                    self.store.outbox_pop();
                }
                Effect::Ledger { tag, request } => {
                    let reply = match execute(io.ledger(), &request) {
                        Ok(reply) => reply,
                        Err(LedgerError::Unavailable { .. }) => return Drained::LedgerUnavailable,
                        Err(e) => panic!("{:?}: ledger refused request {tag}: {e}", self.service),
                    };
                    io.observe_ledger(self.service, &request, &reply);
                    // The ledger applied the request but the answer may never reach the journal:
                    // the request stays in the outbox and is sent again after recovery.
                    if io.crash_point(self.service) {
                        self.crash();
                        return Drained::Crashed;
                    }
                    self.store.outbox_pop();
                    self.commit_and_handle(now, Input::Ledger { tag, reply });
                }
            }
        }
    }

    /// Drops the process and everything it held in memory. The store survives.
    pub fn crash(&mut self) {
        if crate::plant::active(crate::plant::Bug::CrashLosesEffect)
            && self.store.outbox_front().is_some()
        {
            // Planted: the effect about to be carried out was never made durable.
            self.store.outbox_discard();
        }
        self.process = None;
    }

    /// Starts a new incarnation from the store: replays the journal, re-arms outstanding timers,
    /// and drains the outbox.
    pub fn recover(&mut self, now: Ts, io: &mut dyn Io) -> Drained {
        assert!(self.process.is_none(), "recover a process that is up");
        let mut process = (self.make)();
        let mut scratch = Effects::new();
        for (at, input) in self.store.journal() {
            process.handle(&Ctx { now: at }, input, &mut scratch);
            scratch.clear();
        }
        self.process = Some(process);
        self.incarnation += 1;
        for (timer_id, at) in self.store.timers() {
            io.set_timer(self.service, timer_id, at, self.incarnation);
        }
        if let Some(at) = self.store.next_retry() {
            io.set_timer(self.service, RETRANSMIT_TIMER, at, self.incarnation);
        }
        self.drain(now, io)
    }
}

/// Runs one request against the ledger port.
pub fn execute(
    ledger: &mut dyn Ledger,
    request: &LedgerRequest,
) -> Result<LedgerReply, LedgerError> {
    Ok(match request {
        LedgerRequest::CreateAccounts(batch) => {
            LedgerReply::CreateAccounts(ledger.create_accounts(batch)?)
        }
        LedgerRequest::CreateTransfers(batch) => {
            LedgerReply::CreateTransfers(ledger.create_transfers(batch)?)
        }
        LedgerRequest::LookupAccounts(ids) => LedgerReply::Accounts(ledger.lookup_accounts(ids)?),
        LedgerRequest::LookupTransfers(ids) => {
            LedgerReply::Transfers(ledger.lookup_transfers(ids)?)
        }
        LedgerRequest::GetAccountTransfers(filter) => {
            LedgerReply::Transfers(ledger.get_account_transfers(filter)?)
        }
        LedgerRequest::QueryTransfers(filter) => {
            LedgerReply::Transfers(ledger.query_transfers(filter)?)
        }
        LedgerRequest::QueryAccounts(filter) => {
            LedgerReply::Accounts(ledger.query_accounts(filter)?)
        }
    })
}
