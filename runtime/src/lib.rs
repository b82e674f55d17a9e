//! The process host on a real runtime. The pure host is in `acme-processes`
//! ([`acme_processes::host::Host`]: journaling, dedupe, outbox, recovery, all behind the `Io`
//! port and a `ProcessStore`); the simulator drives it with virtual time and faults. This crate
//! drives the very same host for real, on tokio: it owns the tasks, the timers, the clock and
//! the files, and nothing else. Each platform process is one task owning its `Host`, fed by a
//! mailbox of events (messages, ledger answers) and its own timer queue; messages travel on an
//! in-process bus, or out to the parties outside the platform; ledger requests go to a worker
//! thread per host that applies them in order on a `Ledger` port (the durable ledger on files,
//! run here, or any other); each process's journal is an `acme-store` log on files, one
//! directory per process under the data directory.
//!
//! - [`Runtime::start`] opens (recovering) or creates every store and starts every host;
//!   [`Runtime::kill`] aborts everything at once, as `kill -9` would (what is on disk is what a
//!   restart finds); [`Runtime::shutdown`] stops cleanly (every host snapshots, the durable
//!   ledger checkpoints).
//! - [`clock`]: the [`Clock`] port, the system clock, and an accelerated clock whose business
//!   days pass in seconds, for tests.
//! - [`Gateway`]: how the outside world (an API front end, the scheduler, the custodian's
//!   gateway; in tests, a driver task) hands messages in; what the platform sends out arrives
//!   on the channel given in [`Config::outside`].
//! - [`Runtime::quiet_until`] and [`Runtime::idle_signal`]: when nothing is under way and
//!   nothing is due, a driver of an [`AcceleratedClock`] skips it to the next thing that
//!   happens, so a test's business day costs the real time of its work, not of its hours.
//!
//! This is an adapter crate: threads, clocks and files are its job, so it opts out of the
//! determinism rules `clippy.toml` holds the pure crates to.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // an adapter: threads, clocks, files

pub mod clock;
mod host_task;
pub mod ledger;

pub use clock::{sleep_until, AcceleratedClock, Clock, LedgerClock, SystemClock};
pub use host_task::RECOVERY_RETRY;
pub use ledger::{Connect, LedgerConfig, SharedLedger};

use acme_ledger::Ledger;
use acme_processes::calendar::{Schedule, Ts};
use acme_processes::host::{HostStats, LogStore, ProcessStore, SnapshotPolicy};
use acme_processes::process::{Alert, Envelope, Process, Service};
use acme_processes::trading::{
    aggregation::Aggregation, intake::Intake, pricing::Pricing, rebalancing::ModelSet,
    rebalancing::Rebalancing, settlement::Settlement,
};
use acme_store_fs::{FileStorage, Mode};
use host_task::{Bus, Event, StatusCell, TaskCtx};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long `kill` and `shutdown` wait for tasks and threads to stop.
pub const STOP_PATIENCE: Duration = Duration::from_secs(10);

/// The name of a service's directory (and of its threads): `intake`, `aggregation`, ...
pub fn dir_name(service: Service) -> String {
    format!("{service:?}").to_lowercase()
}

/// The store id of a process's journal: "acme prc" and the service.
pub fn process_store_id(service: Service) -> u128 {
    u128::from(u64::from_be_bytes(*b"acme prc")) << 64 | service as u128
}

/// Where a process's journal lives under the data directory.
pub fn process_dir(data_dir: &Path, service: Service) -> PathBuf {
    data_dir.join("processes").join(dir_name(service))
}

/// Where the durable ledger run by the runtime lives under the data directory.
pub fn ledger_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger")
}

/// One process to run: its service and how to make a fresh instance of it (the host calls
/// that for a start on an empty store, and to rebuild the process after a dead letter).
pub struct ProcessSpec {
    service: Service,
    #[allow(clippy::type_complexity)]
    launch: Box<dyn FnOnce(Launch) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>,
}

struct Launch {
    store: Box<dyn ProcessStore>,
    policy: SnapshotPolicy,
    ctx: TaskCtx,
}

impl ProcessSpec {
    pub fn new<P: Process>(service: Service, make: impl Fn() -> P + Send + 'static) -> Self {
        ProcessSpec {
            service,
            launch: Box::new(move |launch: Launch| {
                let host = acme_processes::host::Host::with_store(service, make, launch.store)
                    .with_policy(launch.policy);
                Box::pin(host_task::run(host, launch.ctx))
            }),
        }
    }

    pub fn service(&self) -> Service {
        self.service
    }
}

/// The five platform processes, made as the simulator makes them.
pub fn platform(schedule: Schedule, models: ModelSet) -> Vec<ProcessSpec> {
    vec![
        ProcessSpec::new(Service::Intake, move || {
            Intake::new(models.funds.to_vec(), models.models.len())
        }),
        ProcessSpec::new(Service::Aggregation, move || Aggregation::new(schedule)),
        ProcessSpec::new(Service::Pricing, move || Pricing::new(schedule)),
        ProcessSpec::new(Service::Settlement, move || Settlement::new(schedule)),
        ProcessSpec::new(Service::Rebalancing, move || Rebalancing::new(models)),
    ]
}

/// What a runtime runs, on what.
pub struct Config {
    /// Process journals in `processes/<service>/`, the durable ledger in `ledger/`, alerts
    /// appended to `alerts.log`.
    pub data_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub ledger: LedgerConfig,
    pub processes: Vec<ProcessSpec>,
    /// Where messages to services not run here go (members, scheduler, custodian).
    pub outside: mpsc::UnboundedSender<Envelope>,
    pub snapshot: SnapshotPolicy,
    /// Tokio worker threads; by default one per process and two more, since a host blocks its
    /// thread while its journal record is written and synced.
    pub worker_threads: Option<usize>,
}

impl Config {
    /// The five platform processes (default schedule, model set V1) on the durable ledger in
    /// `data_dir`.
    pub fn new(
        data_dir: impl Into<PathBuf>,
        clock: Arc<dyn Clock>,
        outside: mpsc::UnboundedSender<Envelope>,
    ) -> Config {
        Config {
            data_dir: data_dir.into(),
            clock,
            ledger: LedgerConfig::Durable(acme_ledger_durable::Config::default()),
            processes: platform(Schedule::default(), ModelSet::V1),
            outside,
            snapshot: SnapshotPolicy::default(),
            worker_threads: None,
        }
    }
}

/// Why a runtime did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Work under way anywhere in the runtime: events queued or being handled, ledger requests
/// submitted and not yet answered into a mailbox. A cause always begins its effects before it
/// ends, so the count touches zero only when nothing is going on; each time it does, `idle`
/// changes, for a driver waiting to skip the clock.
#[derive(Debug)]
pub(crate) struct Activity {
    count: AtomicU64,
    idle: watch::Sender<u64>,
}

impl Default for Activity {
    fn default() -> Activity {
        Activity {
            count: AtomicU64::new(0),
            idle: watch::channel(0).0,
        }
    }
}

impl Activity {
    pub(crate) fn begin(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }
    pub(crate) fn end(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
    fn busy(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

/// An alert as raised: when, and what (a process's own, a dead letter's, or the runtime's,
/// whose `process` is `runtime/<service>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaisedAlert {
    pub at: Ts,
    pub alert: Alert,
}

/// Where alerts go: standard error, `alerts.log` in the data directory, and a list to read.
pub(crate) struct Alerts {
    raised: Mutex<Vec<RaisedAlert>>,
    log: Mutex<Option<std::fs::File>>,
}

impl Alerts {
    fn new(path: &Path) -> Alerts {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok();
        Alerts {
            raised: Mutex::new(Vec::new()),
            log: Mutex::new(log),
        }
    }

    pub(crate) fn raise(&self, at: Ts, alert: Alert) {
        let line = format!("ALERT at {at}: {}: {}", alert.process, alert.what);
        eprintln!("{line}");
        if let Some(f) = self.log.lock().expect("alert log lock").as_mut() {
            let _ = writeln!(f, "{line}");
        }
        self.raised
            .lock()
            .expect("alerts lock")
            .push(RaisedAlert { at, alert });
    }
}

/// What a host last published about itself (after every event it handled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostStatus {
    pub service: Service,
    pub up: bool,
    pub incarnation: u64,
    pub stats: HostStats,
    /// Dead letters held (waiting for an operator).
    pub dead_letters: usize,
    /// Every message acknowledged, every ledger request answered.
    pub outbox_empty: bool,
    /// Effects committed and not yet complete (messages unacknowledged, ledger requests
    /// unanswered): what a slow receiver leaves in the host's snapshots.
    pub outbox: usize,
    /// Ids of messages from outside the platform remembered for deduplication: unnumbered
    /// senders cost one each for a day, numbered channels nothing.
    pub dedupe_ids: usize,
    pub ledger_pending: usize,
    pub stopped: Option<String>,
    /// Timers armed.
    pub timers: usize,
}

impl HostStatus {
    fn new(service: Service) -> HostStatus {
        HostStatus {
            service,
            up: false,
            incarnation: 0,
            stats: HostStats::default(),
            dead_letters: 0,
            outbox_empty: true,
            outbox: 0,
            dedupe_ids: 0,
            ledger_pending: 0,
            stopped: None,
            timers: 0,
        }
    }
}

/// A message the gateway could not hand over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undeliverable {
    /// No process of that service runs here.
    NotHere(Service),
    /// Its host's task has ended (the runtime was stopped).
    Stopped(Service),
}

/// How the outside world hands messages in. Cheap to clone; it routes to the hosts of the
/// runtime it came from.
#[derive(Clone)]
pub struct Gateway {
    bus: Arc<Bus>,
    statuses: Arc<Vec<(Service, Arc<StatusCell>)>>,
}

impl Gateway {
    /// What each host last published (as [`Runtime::status`]), for a front end's metrics.
    pub fn status(&self) -> BTreeMap<Service, HostStatus> {
        let read = |(service, cell): &(Service, Arc<StatusCell>)| {
            (*service, cell.status.lock().expect("status lock").clone())
        };
        self.statuses.iter().map(read).collect()
    }

    pub fn send(&self, envelope: Envelope) -> Result<(), Undeliverable> {
        let to = envelope.to;
        if !self.bus.hosts.contains_key(&to) {
            return Err(Undeliverable::NotHere(to));
        }
        if self.bus.send(envelope) {
            Ok(())
        } else {
            Err(Undeliverable::Stopped(to))
        }
    }

    /// Sends as [`Gateway::send`] and gives a receiver that completes when the host it went to
    /// acknowledges it, which a host does only once the journal record that took the message
    /// is durable (a duplicate is acknowledged again). The acknowledgement still goes out on
    /// [`Config::outside`] too. The bus does not lose messages, but a host that is down or
    /// being recovered does not take them: a caller that hears nothing sends again.
    pub fn send_acknowledged(
        &self,
        envelope: Envelope,
    ) -> Result<tokio::sync::oneshot::Receiver<()>, Undeliverable> {
        // Registered before the send: the acknowledgement can come before `send` returns.
        let ack = self.bus.acks.register(envelope.id);
        self.send(envelope)?;
        Ok(ack)
    }
}

struct HostHandle {
    service: Service,
    mailbox: mpsc::UnboundedSender<Event>,
    status: Arc<StatusCell>,
    worker: std::thread::JoinHandle<()>,
}

/// What a clean stop did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Per host: whether it snapshotted (false: it was down, or the snapshot failed).
    pub snapshots: BTreeMap<Service, bool>,
    /// The durable ledger's final checkpoint (`None` on an external ledger).
    pub ledger_checkpoint: Option<Result<(), String>>,
    /// What did not stop in time.
    pub problems: Vec<String>,
}

/// The platform's processes running on tokio. See the crate's documentation.
pub struct Runtime {
    tokio: Option<tokio::runtime::Runtime>,
    clock: Arc<dyn Clock>,
    bus: Arc<Bus>,
    hosts: Vec<HostHandle>,
    durable: Option<ledger::DurableBackend>,
    connect: Connect,
    killed: Arc<AtomicBool>,
    activity: Arc<Activity>,
    alerts: Arc<Alerts>,
}

fn open_process_store(dir: &Path, service: Service) -> Result<Box<dyn ProcessStore>, String> {
    let at = |e: &dyn std::fmt::Display| format!("{:?} journal in {}: {e}", service, dir.display());
    let mut storage = FileStorage::open(dir, Mode::ReadWrite).map_err(|e| at(&e))?;
    let names = acme_store::Storage::list(&mut storage).map_err(|e| at(&e))?;
    let store = if ledger::holds_store(&names) {
        LogStore::open(storage).map_err(|e| at(&e))?
    } else {
        LogStore::create(storage, process_store_id(service)).map_err(|e| at(&e))?
    };
    Ok(Box::new(store))
}

impl Runtime {
    /// Opens every store (recovering what is there) and starts every host. Call it outside
    /// any tokio runtime: the runtime brings its own.
    pub fn start(config: Config) -> Result<Runtime, StartError> {
        let Config {
            data_dir,
            clock,
            ledger,
            processes,
            outside,
            snapshot,
            worker_threads,
        } = config;
        let fail = |e: String| StartError(e);
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| fail(format!("data directory {}: {e}", data_dir.display())))?;
        let mut seen = std::collections::BTreeSet::new();
        for spec in &processes {
            if !seen.insert(spec.service) {
                return Err(fail(format!("{:?} is given twice", spec.service)));
            }
        }
        // Every journal first: a store that does not open stops the start before anything runs.
        let mut stores = Vec::new();
        for spec in &processes {
            stores.push(
                open_process_store(&process_dir(&data_dir, spec.service), spec.service)
                    .map_err(fail)?,
            );
        }
        let (durable, connect) = match ledger {
            LedgerConfig::Durable(cfg) => {
                let backend =
                    ledger::DurableBackend::start(&ledger_dir(&data_dir), clock.clone(), cfg)
                        .map_err(fail)?;
                let connect = backend.connect();
                (Some(backend), connect)
            }
            LedgerConfig::External(connect) => (None, connect),
        };
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.unwrap_or(processes.len() + 2).max(1))
            .thread_name("acme-host")
            .enable_time()
            .build()
            .map_err(|e| fail(format!("the tokio runtime: {e}")))?;
        let activity = Arc::new(Activity::default());
        let alerts = Arc::new(Alerts::new(&data_dir.join("alerts.log")));
        let killed = Arc::new(AtomicBool::new(false));
        let mut mailboxes = BTreeMap::new();
        let mut receivers = Vec::new();
        for spec in &processes {
            let (tx, rx) = mpsc::unbounded_channel();
            mailboxes.insert(spec.service, tx);
            receivers.push(rx);
        }
        let bus = Arc::new(Bus {
            hosts: mailboxes.clone(),
            outside,
            activity: activity.clone(),
            acks: Default::default(),
        });
        let mut hosts = Vec::new();
        for ((spec, store), mailbox) in processes.into_iter().zip(stores).zip(receivers) {
            let service = spec.service;
            let status = Arc::new(StatusCell::new(service));
            let worker = ledger::spawn_worker(
                service,
                connect(),
                mailboxes[&service].clone(),
                activity.clone(),
                killed.clone(),
            );
            let ctx = TaskCtx {
                service,
                bus: bus.clone(),
                clock: clock.clone(),
                activity: activity.clone(),
                alerts: alerts.clone(),
                mailbox,
                ledger: worker.jobs,
                status: status.clone(),
            };
            let task = (spec.launch)(Launch {
                store,
                policy: snapshot,
                ctx,
            });
            tokio.spawn(task);
            hosts.push(HostHandle {
                service,
                mailbox: mailboxes[&service].clone(),
                status,
                worker: worker.thread,
            });
        }
        Ok(Runtime {
            tokio: Some(tokio),
            clock,
            bus,
            hosts,
            durable,
            connect,
            killed,
            activity,
            alerts,
        })
    }

    /// The way in for the outside world.
    pub fn gateway(&self) -> Gateway {
        let statuses = self.hosts.iter().map(|h| (h.service, h.status.clone()));
        Gateway {
            bus: self.bus.clone(),
            statuses: Arc::new(statuses.collect()),
        }
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// A new connection to the hosts' ledger (for reading it, or for operations' setup). Drop
    /// it before [`Runtime::kill`] or [`Runtime::shutdown`]: the durable ledger's writer stops
    /// only once every connection is gone.
    pub fn ledger(&self) -> Box<dyn Ledger + Send> {
        (self.connect)()
    }

    /// Every alert raised since the start.
    pub fn alerts(&self) -> Vec<RaisedAlert> {
        self.alerts.raised.lock().expect("alerts lock").clone()
    }

    /// What each host last published.
    pub fn status(&self) -> BTreeMap<Service, HostStatus> {
        self.hosts
            .iter()
            .map(|h| {
                let s = h.status.status.lock().expect("status lock").clone();
                (h.service, s)
            })
            .collect()
    }

    /// `Some(t)` when nothing is going on (no event queued or being handled, no ledger request
    /// unanswered, every host up) and nothing is due before `t`, the earliest timer armed
    /// (`u64::MAX` for none): a driver of an [`AcceleratedClock`] may skip to `t`, and
    /// whatever it sends in next is the next thing to happen. `None` while anything is under
    /// way or due.
    pub fn quiet_until(&self) -> Option<Ts> {
        // Timers first, then the work count: a timer that fires in between is either still
        // being handled (busy) or was due before the reading below.
        let earliest = self
            .hosts
            .iter()
            .map(|h| h.status.earliest_timer.load(Ordering::SeqCst))
            .min()
            .unwrap_or(u64::MAX);
        if self.activity.busy() {
            return None;
        }
        if earliest <= self.clock.now() {
            return None;
        }
        let all_up = self
            .hosts
            .iter()
            .all(|h| h.status.status.lock().expect("status lock").up);
        all_up.then_some(earliest)
    }

    /// Changes each time the runtime's work falls to nothing (see [`Runtime::quiet_until`]):
    /// a driver waits on it instead of polling. Mark it seen (`borrow_and_update`) before
    /// asking `quiet_until`, so that a change between the two is not missed.
    pub fn idle_signal(&self) -> watch::Receiver<u64> {
        self.activity.idle.subscribe()
    }

    /// Quiet, and every outbox empty: every message sent was acknowledged, every ledger
    /// request answered.
    pub fn settled(&self) -> bool {
        self.quiet_until().is_some()
            && self
                .hosts
                .iter()
                .all(|h| h.status.status.lock().expect("status lock").outbox_empty)
    }

    /// Aborts everything at once, with no clean stop, as `kill -9` would: tasks are dropped
    /// wherever they wait, ledger workers stop before their next request (one being applied
    /// completes, its answer lost), the durable ledger's writer stops and closes its files.
    /// What is on disk is what the next start recovers. Blocks (call it outside any tokio
    /// runtime) until the files are closed, so a new runtime can open them.
    pub fn kill(mut self) {
        self.killed.store(true, Ordering::SeqCst);
        if let Some(tokio) = self.tokio.take() {
            tokio.shutdown_timeout(STOP_PATIENCE);
        }
        let problems = self.stop_threads();
        for p in problems {
            eprintln!("acme-runtime: kill: {p}");
        }
    }

    /// Stops cleanly: every host snapshots its state (so the next start replays nothing) and
    /// stops; then the ledger workers, and the durable ledger, which checkpoints.
    pub fn shutdown(mut self) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        let (tx, rx) = std_mpsc::channel();
        let mut asked = 0;
        for h in &self.hosts {
            if h.mailbox.send(Event::Shutdown(tx.clone())).is_ok() {
                asked += 1;
            }
            report.snapshots.insert(h.service, false);
        }
        drop(tx);
        let deadline = std::time::Instant::now() + STOP_PATIENCE;
        for _ in 0..asked {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok((service, ok)) => {
                    report.snapshots.insert(service, ok);
                }
                Err(_) => {
                    report.problems.push("a host did not stop in time".into());
                    break;
                }
            }
        }
        self.killed.store(true, Ordering::SeqCst);
        if let Some(tokio) = self.tokio.take() {
            tokio.shutdown_timeout(STOP_PATIENCE);
        }
        let durable = self.durable.take();
        report.problems.extend(self.stop_threads());
        if let Some(backend) = durable {
            report.ledger_checkpoint = Some(
                ledger::join_writer(backend.server, STOP_PATIENCE)
                    .and_then(|mut l| l.checkpoint_now().map(|_| ()).map_err(|e| e.to_string())),
            );
        }
        report
    }

    /// Joins the ledger workers (their job queues closed with the tasks) and, when the runtime
    /// runs the durable ledger and `kill` is stopping it, its writer.
    fn stop_threads(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for h in self.hosts.drain(..) {
            drop(h.mailbox);
            if h.worker.join().is_err() {
                problems.push(format!("the ledger worker of {:?} panicked", h.service));
            }
        }
        // Our own connection factory holds a client of the writer.
        self.connect =
            Arc::new(|| -> Box<dyn Ledger + Send> { unreachable!("the runtime has stopped") });
        if let Some(backend) = self.durable.take() {
            if let Err(e) = ledger::join_writer(backend.server, STOP_PATIENCE) {
                problems.push(e);
            }
        }
        problems
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.tokio.is_some() || !self.hosts.is_empty() {
            // Dropped without `kill` or `shutdown`: as `kill`.
            self.killed.store(true, Ordering::SeqCst);
            if let Some(tokio) = self.tokio.take() {
                tokio.shutdown_background();
            }
        }
    }
}
