//! One platform process on the runtime: a tokio task that owns its [`Host`], takes events from
//! its mailbox one at a time, keeps the host's timers, and gives the host its [`Io`].
//!
//! The task is the only place the host is touched, so the host needs no lock; everything it
//! does reaches the world through [`TaskIo`]: sends go on the bus, ledger requests to the
//! host's worker, timers into the task's own timer queue, alerts to the runtime's alert sink.
//! Every call into the host is guarded: a panic of the host itself (not of `handle`, which the
//! host turns into a dead letter) is alerted, and the host is rebuilt from its store as after a
//! crash. A host that stopped (a store error, a refused recovery) is alerted once per reason
//! and recovered again after [`RECOVERY_RETRY`].

use crate::clock::{sleep_until, Clock};
use crate::ledger::Job;
use crate::{Activity, Alerts, HostStatus};
use acme_ledger::LedgerError;
use acme_processes::calendar::Ts;
use acme_processes::host::{Delivery, Host, Io, ProcessStore, Ticket, GROUP_MESSAGES_MAX};
use acme_processes::messages::Message;
use acme_processes::process::{Alert, Envelope, LedgerReply, LedgerRequest, Process, Service};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a stopped host waits (real time) before it is recovered again.
pub const RECOVERY_RETRY: Duration = Duration::from_secs(1);

/// What reaches a host's mailbox.
pub(crate) enum Event {
    /// A message from another host or from outside.
    Deliver(Envelope),
    /// The answer to a ledger request the host submitted.
    Ledger {
        ticket: Ticket,
        answer: Result<LedgerReply, LedgerError>,
    },
    /// Stop cleanly: snapshot, answer, end the task.
    Shutdown(std_mpsc::Sender<(Service, bool)>),
}

/// The in-process bus: each platform host's mailbox, and the way out for the parties outside
/// the platform (members, scheduler, custodian) and for any service not run here. It does not
/// lose, duplicate or reorder, but hosts do not rely on that: they send again until
/// acknowledged, and drop copies.
pub(crate) struct Bus {
    pub(crate) hosts: BTreeMap<Service, mpsc::UnboundedSender<Event>>,
    pub(crate) outside: mpsc::UnboundedSender<Envelope>,
    pub(crate) activity: Arc<Activity>,
    pub(crate) acks: AckWaiters,
}

/// Who waits for the acknowledgement of which message handed in from outside: a host
/// acknowledges a message only once the record that took it is durable, so an API front end
/// that waits here answers its caller only after the commit.
#[derive(Default)]
pub(crate) struct AckWaiters {
    waiting: Mutex<std::collections::HashMap<u128, Vec<oneshot::Sender<()>>>>,
    /// The map's size at the last sweep of abandoned waiters.
    swept_at: AtomicU64,
}

/// Waiters given up on (their receiver dropped) are swept once the map has grown this much
/// past its size at the last sweep, so a message never acknowledged does not leak a waiter.
const ACK_SWEEP_GROWTH: usize = 4096;

impl AckWaiters {
    pub(crate) fn register(&self, id: u128) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock().expect("ack waiters lock");
        waiting.entry(id).or_default().push(tx);
        let swept_at = self.swept_at.load(Ordering::Relaxed) as usize;
        if waiting.len() > swept_at + ACK_SWEEP_GROWTH {
            waiting.retain(|_, senders| {
                senders.retain(|s| !s.is_closed());
                !senders.is_empty()
            });
            self.swept_at.store(waiting.len() as u64, Ordering::Relaxed);
        }
        rx
    }

    fn acknowledged(&self, id: u128) {
        let senders = self.waiting.lock().expect("ack waiters lock").remove(&id);
        for s in senders.into_iter().flatten() {
            let _ = s.send(());
        }
    }
}

impl Bus {
    /// Routes a message; `false` if its host is gone (its task ended).
    pub(crate) fn send(&self, envelope: Envelope) -> bool {
        match self.hosts.get(&envelope.to) {
            Some(mailbox) => {
                self.activity.begin();
                let sent = mailbox.send(Event::Deliver(envelope)).is_ok();
                if !sent {
                    self.activity.end();
                }
                sent
            }
            None => {
                if let Message::Ack { id } = envelope.body {
                    self.acks.acknowledged(id);
                }
                self.outside.send(envelope).is_ok()
            }
        }
    }
}

/// What a host publishes for the runtime to read.
pub(crate) struct StatusCell {
    pub(crate) status: Mutex<HostStatus>,
    /// The earliest timer armed, `u64::MAX` for none.
    pub(crate) earliest_timer: AtomicU64,
}

impl StatusCell {
    pub(crate) fn new(service: Service) -> StatusCell {
        StatusCell {
            status: Mutex::new(HostStatus::new(service)),
            earliest_timer: AtomicU64::new(u64::MAX),
        }
    }
}

/// Everything a host task needs besides its host.
pub(crate) struct TaskCtx {
    pub(crate) service: Service,
    pub(crate) bus: Arc<Bus>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) activity: Arc<Activity>,
    pub(crate) alerts: Arc<Alerts>,
    pub(crate) mailbox: mpsc::UnboundedReceiver<Event>,
    pub(crate) ledger: std_mpsc::Sender<Job>,
    pub(crate) status: Arc<StatusCell>,
}

/// A host's timers: due time and arming order, to (timer id, incarnation). Each arming fires
/// once; the host ignores the ones it no longer wants.
type Timers = BTreeMap<(Ts, u64), (u64, u64)>;

/// The host's ports on the runtime, lent to it for one call.
struct TaskIo<'a> {
    bus: &'a Bus,
    ledger: &'a std_mpsc::Sender<Job>,
    timers: &'a mut Timers,
    timer_seq: &'a mut u64,
    activity: &'a Activity,
    alerts: &'a Alerts,
}

impl Io for TaskIo<'_> {
    fn submit_ledger(&mut self, _service: Service, ticket: Ticket, request: &LedgerRequest) {
        self.activity.begin();
        if self
            .ledger
            .send(Job::Request(ticket, request.clone()))
            .is_err()
        {
            // The worker is gone (the runtime is being killed): no answer will come.
            self.activity.end();
        }
    }

    fn send(&mut self, _now: Ts, envelope: Envelope) {
        // A host that is gone takes nothing; the sender sends again until acknowledged.
        self.bus.send(envelope);
    }

    fn set_timer(&mut self, _service: Service, timer_id: u64, at: Ts, incarnation: u64) {
        *self.timer_seq += 1;
        self.timers
            .insert((at, *self.timer_seq), (timer_id, incarnation));
    }

    fn alert(&mut self, now: Ts, alert: Alert) {
        self.alerts.raise(now, alert);
    }
}

struct Task {
    service: Service,
    bus: Arc<Bus>,
    clock: Arc<dyn Clock>,
    activity: Arc<Activity>,
    alerts: Arc<Alerts>,
    ledger: std_mpsc::Sender<Job>,
    status: Arc<StatusCell>,
    timers: Timers,
    timer_seq: u64,
    /// When to try recovering a host that is down (real time).
    recover_at: Option<tokio::time::Instant>,
    /// The last stop reason alerted, so that a host that keeps failing alerts once.
    alerted: Option<String>,
}

impl Task {
    /// Runs `f` on the host with the task's ports; a panic is alerted and leaves the host
    /// crashed (to be recovered).
    fn call<P: Process, T>(
        &mut self,
        host: &mut Host<P, Box<dyn ProcessStore>>,
        what: &str,
        f: impl FnOnce(&mut Host<P, Box<dyn ProcessStore>>, &mut dyn Io) -> T,
    ) -> Option<T> {
        let mut io = TaskIo {
            bus: &self.bus,
            ledger: &self.ledger,
            timers: &mut self.timers,
            timer_seq: &mut self.timer_seq,
            activity: &self.activity,
            alerts: &self.alerts,
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| f(host, &mut io)));
        match outcome {
            Ok(t) => Some(t),
            Err(panic) => {
                let reason = format!(
                    "the host panicked in {what}: {}",
                    acme_processes::host::panic_message(&panic)
                );
                self.raise(reason);
                if host.is_up() {
                    host.crash();
                }
                None
            }
        }
    }

    fn raise(&mut self, what: String) {
        let alert = Alert {
            process: format!("runtime/{}", crate::dir_name(self.service)),
            what,
        };
        self.alerts.raise(self.clock.now(), alert);
    }

    /// Starts a new incarnation from the store.
    fn recover<P: Process>(&mut self, host: &mut Host<P, Box<dyn ProcessStore>>) {
        self.recover_at = None;
        // The new incarnation voids whatever the last one had in flight; the worker applies
        // what comes after this marker even if it refused the last one's.
        let _ = self.ledger.send(Job::Resume);
        let now = self.clock.now();
        if let Some(Err(e)) = self.call(host, "recover", |h, io| h.recover(now, io)) {
            let reason = format!("recovery refused: {e}");
            if self.alerted.as_deref() != Some(reason.as_str()) {
                self.raise(reason.clone());
                self.alerted = Some(reason);
            }
        }
        if host.is_up() {
            self.alerted = None;
        }
        self.after(host);
    }

    /// After any call: a host that went down is recovered later.
    fn after<P: Process>(&mut self, host: &mut Host<P, Box<dyn ProcessStore>>) {
        if host.is_up() || self.recover_at.is_some() {
            return;
        }
        if let Some(reason) = host.stopped() {
            let reason = format!("stopped: {reason}");
            if self.alerted.as_deref() != Some(reason.as_str()) {
                self.raise(reason.clone());
                self.alerted = Some(reason);
            }
        }
        self.recover_at = Some(tokio::time::Instant::now() + RECOVERY_RETRY);
    }

    /// Messages taken from the mailbox together: one group commit (one sync) for all of them.
    fn on_group<P: Process>(
        &mut self,
        host: &mut Host<P, Box<dyn ProcessStore>>,
        mut envelopes: Vec<Envelope>,
    ) {
        let now = self.clock.now();
        envelopes.retain(|e| e.to == self.service);
        match envelopes.len() {
            0 => {}
            1 => {
                let envelope = envelopes.pop().expect("one");
                self.call(host, "deliver", |h, io| h.deliver(now, envelope, io));
            }
            _ => {
                self.call(host, "deliver_group", |h, io| {
                    h.deliver_group(now, envelopes, io)
                });
            }
        }
        self.after(host);
    }

    fn on_event<P: Process>(&mut self, host: &mut Host<P, Box<dyn ProcessStore>>, event: Event) {
        let now = self.clock.now();
        match event {
            Event::Deliver(envelope) => self.on_group(host, vec![envelope]),
            Event::Ledger { ticket, answer } => {
                let unavailable = matches!(answer, Err(LedgerError::Unavailable { .. }));
                let delivery = self.call(host, "on_ledger", |h, io| {
                    h.on_ledger(now, ticket, answer, io)
                });
                if unavailable && delivery == Some(Delivery::Handled) {
                    // The host took the failure in: everything it submits from now on comes
                    // after it, in order.
                    let _ = self.ledger.send(Job::Resume);
                }
            }
            Event::Shutdown(_) => unreachable!("handled by the loop"),
        }
        self.after(host);
    }

    fn fire_due<P: Process>(&mut self, host: &mut Host<P, Box<dyn ProcessStore>>) {
        let now = self.clock.now();
        let due: Vec<(Ts, u64)> = self.timers.range(..(now + 1, 0)).map(|(k, _)| *k).collect();
        for key in due {
            let Some((timer_id, incarnation)) = self.timers.remove(&key) else {
                continue;
            };
            self.call(host, "fire_timer", |h, io| {
                h.fire_timer(now, timer_id, incarnation, io)
            });
        }
        self.after(host);
    }

    fn publish<P: Process>(&self, host: &Host<P, Box<dyn ProcessStore>>) {
        let earliest = self.timers.keys().next().map_or(u64::MAX, |k| k.0);
        self.status.earliest_timer.store(earliest, Ordering::SeqCst);
        let mut s = self.status.status.lock().expect("status lock");
        s.up = host.is_up();
        s.incarnation = host.incarnation();
        s.stats = host.stats();
        s.dead_letters = host.state().dead_letters().len();
        s.outbox_empty = host.outbox_is_empty();
        s.outbox = host.state().pending().len();
        s.dedupe_ids = host.state().external_remembered();
        s.ledger_pending = host.ledger_pending();
        s.stopped = host.stopped().map(str::to_string);
        s.timers = self.timers.len();
    }
}

/// `first` and the messages waiting behind it in the mailbox, up to a group's limit; the first
/// event that is not a message comes back, to be handled after the group.
fn take_group(
    first: Envelope,
    mailbox: &mut mpsc::UnboundedReceiver<Event>,
) -> (Vec<Envelope>, Option<Event>) {
    let mut group = vec![first];
    while group.len() < GROUP_MESSAGES_MAX {
        match mailbox.try_recv() {
            Ok(Event::Deliver(envelope)) => group.push(envelope),
            Ok(other) => return (group, Some(other)),
            Err(_) => break,
        }
    }
    (group, None)
}

/// The task of one host: recover, then handle events and timers until shut down (or aborted).
pub(crate) async fn run<P: Process>(mut host: Host<P, Box<dyn ProcessStore>>, ctx: TaskCtx) {
    let TaskCtx {
        service,
        bus,
        clock,
        activity,
        alerts,
        mut mailbox,
        ledger,
        status,
    } = ctx;
    let mut task = Task {
        service,
        bus,
        clock: clock.clone(),
        activity: activity.clone(),
        alerts,
        ledger,
        status,
        timers: Timers::new(),
        timer_seq: 0,
        recover_at: None,
        alerted: None,
    };
    activity.begin();
    task.recover(&mut host);
    task.publish(&host);
    activity.end();
    loop {
        let next_timer = task.timers.keys().next().map(|k| k.0);
        let recover_at = task.recover_at;
        tokio::select! {
            event = mailbox.recv() => {
                let Some(event) = event else { return };
                let mut next = Some(event);
                while let Some(event) = next.take() {
                    match event {
                        Event::Shutdown(reply) => {
                            let now = clock.now();
                            let ok = host.is_up()
                                && task.call(&mut host, "shutdown", |h, io| h.shutdown(now, io))
                                    == Some(true);
                            task.publish(&host);
                            let _ = reply.send((service, ok));
                            return;
                        }
                        Event::Deliver(envelope) => {
                            // What waited while the last commit synced goes in one group.
                            let (group, after) = take_group(envelope, &mut mailbox);
                            next = after;
                            let taken = group.len();
                            task.on_group(&mut host, group);
                            task.publish(&host);
                            (0..taken).for_each(|_| activity.end());
                        }
                        other => {
                            task.on_event(&mut host, other);
                            task.publish(&host);
                            activity.end();
                        }
                    }
                }
            }
            _ = sleep_until(&*clock, next_timer.unwrap_or(u64::MAX)), if next_timer.is_some() => {
                activity.begin();
                task.fire_due(&mut host);
                task.publish(&host);
                activity.end();
            }
            _ = tokio::time::sleep_until(recover_at.unwrap_or_else(tokio::time::Instant::now)),
                if recover_at.is_some() => {
                activity.begin();
                if !host.is_up() {
                    task.recover(&mut host);
                }
                task.publish(&host);
                activity.end();
            }
        }
    }
}
