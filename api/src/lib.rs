//! The platform's HTTP front end, `acme serve`: how members' instructions enter the platform.
//! It runs the five platform processes on `acme-runtime` (their journals and the durable
//! ledger in the data directory) and serves a JSON API on axum: members are registered,
//! instructions are taken under an `Idempotency-Key` and answered `202 Accepted` only once they
//! are durable (in the API's own journal and acknowledged by intake, which acknowledges only
//! after its journal record is synced), pots are read from the ledger, and the outcomes intake
//! reports are kept and shown. Clients never wait for processing: the instruction is stored and
//! the platform works on it afterwards.
//!
//! - [`journal`]: the API's durable log (group commit, fatal on a failed sync).
//! - [`store`]: members, keys and instructions, rebuilt from the journal.
//! - [`http`] and [`idempotency`]: the routes; [`requests`] and [`views`]: bodies in and out.
//! - [`jobs`]: the day's jobs (cut-off, valuation, settlement) and the simulated custodian.
//! - [`filedrop`]: the custodian as files, orders to an outbox and answers from an inbox.
//! - [`scheduler`]: those jobs on a timer (`--day-jobs`).
//! - [`auth`]: bearer tokens (hashed) and roles; [`problem`]: `application/problem+json`.
//! - [`platform`]: the hand-over to intake and the reads of the ledger.
//! - [`openapi`]: the OpenAPI 3 description (`/openapi.json`), snapshot-tested.
//!
//! This is an adapter crate (sockets, files, threads, the wall clock), so it opts out of the
//! determinism rules `clippy.toml` holds the pure crates to.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // an adapter: sockets, files, clocks

pub mod auth;
pub mod config;
pub mod decimal;
pub mod filedrop;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod journal;
pub mod openapi;
pub mod platform;
pub mod problem;
pub mod requests;
pub mod scheduler;
pub mod store;
pub mod sweep;
pub mod views;

use acme_ledger::chart;
use acme_ledger::CreateAccountResult;
use acme_processes::trading::rebalancing::ModelSet;
use acme_runtime::{Clock, Config as RuntimeConfig, Runtime, SystemClock};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// The hosts' snapshot policy under `acme serve`: the default's byte floor (256 KiB, chosen so
/// a small state recovers fast) made intake, whose state stays small under load, snapshot 25
/// times a second at 10,000 instructions a second, each a write and syncs on its path (the
/// p99). Here a snapshot is due after 8 MiB of journal or its own size: a restart replays at
/// most that (tens of milliseconds).
const SERVE_SNAPSHOTS: acme_processes::host::SnapshotPolicy =
    acme_processes::host::SnapshotPolicy {
        every_records: 1 << 16,
        every_bytes_min: 8 << 20,
    };

/// What `acme serve` is started with.
#[derive(Clone)]
pub struct Options {
    /// `HOST:PORT`; port 0 picks a free one (the address is printed).
    pub listen: String,
    pub data: PathBuf,
    pub config: Option<PathBuf>,
    pub tokens: Option<PathBuf>,
    /// Run the day's jobs on their timer ([`scheduler`]); otherwise operations run them.
    pub day_jobs: bool,
    /// The ledger: `None` for the durable embedded ledger in `DATA/ledger`, or a way to connect
    /// to another (a TigerBeetle cluster: `acme serve --tigerbeetle`).
    pub ledger: Option<acme_runtime::Connect>,
}

/// How long in-flight requests get to finish after a stop signal.
const DRAIN_PATIENCE: Duration = Duration::from_secs(10);

/// Runs the service until SIGTERM or ctrl-c, then stops cleanly: requests in flight finish,
/// every host snapshots, the durable ledger checkpoints.
pub fn serve(options: Options) -> Result<(), String> {
    std::fs::create_dir_all(&options.data)
        .map_err(|e| format!("data directory {}: {e}", options.data.display()))?;
    let settings = config::load(
        options.config.as_deref(),
        options.tokens.as_deref(),
        &options.data,
    )?;
    let (journal, records) = journal::open(&options.data.join("api").join("journal"))?;
    let store = Arc::new(Mutex::new(store::Store::replay(records)));
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut runtime_config = RuntimeConfig::new(&options.data, clock.clone(), out_tx);
    runtime_config.snapshot = SERVE_SNAPSHOTS;
    if let Some(connect) = options.ledger.clone() {
        runtime_config.ledger = acme_runtime::LedgerConfig::External(connect);
    }
    let rt =
        Runtime::start(runtime_config).map_err(|e| format!("the platform did not start: {e}"))?;
    if let Err(e) = house_accounts(&rt) {
        stop(rt);
        return Err(e);
    }
    let desk = match &settings.custodian {
        config::CustodianMode::Simulated => jobs::Desk::default(),
        config::CustodianMode::FileDrop { outbox, inbox } => {
            match filedrop::FileDrop::open(outbox, inbox, &options.data, &settings.funds) {
                Ok(fd) => jobs::Desk::with_file_drop(fd),
                Err(e) => {
                    stop(rt);
                    return Err(e);
                }
            }
        }
    };
    let permits = Semaphore::new(settings.in_flight_max);
    let app = Arc::new(http::App {
        settings,
        store,
        journal,
        desk,
        ready: Default::default(),
        platform: platform::Platform::new(rt.gateway(), clock, rt.ledger()),
        permits,
    });
    let web = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("acme-api")
        .enable_all()
        .build()
        .map_err(|e| format!("the HTTP runtime: {e}"))?;
    let served = web.block_on(async {
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .map_err(|e| format!("listen on {}: {e}", options.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        tokio::spawn(platform::dispatch(out_rx, app.clone()));
        tokio::spawn(sweep::run(app.clone()));
        if let Some(fd) = app.desk.file_drop.clone() {
            tokio::spawn(filedrop::watch(app.clone(), fd));
        }
        if options.day_jobs {
            tokio::spawn(scheduler::run(app.clone()));
        }
        println!("acme serve: listening on http://{addr}");
        let _ = std::io::stdout().flush();
        axum::serve(listener, http::router(app.clone()))
            .with_graceful_shutdown(stop_signal())
            .await
            .map_err(|e| format!("serving: {e}"))
    });
    app.platform.close_ledger();
    web.shutdown_timeout(DRAIN_PATIENCE);
    drop(app);
    stop(rt);
    served
}

fn stop(rt: Runtime) {
    let report = rt.shutdown();
    let snapshots = report.snapshots.values().filter(|ok| **ok).count();
    eprintln!(
        "acme serve: stopped; {snapshots} of {} hosts snapshotted, ledger checkpoint {:?}{}",
        report.snapshots.len(),
        report.ledger_checkpoint,
        if report.problems.is_empty() {
            String::new()
        } else {
            format!("; problems: {:?}", report.problems)
        }
    );
}

/// The house accounts the processes post to, created once (an existing one is fine).
fn house_accounts(rt: &Runtime) -> Result<(), String> {
    let mut ledger = rt.ledger();
    let results = ledger
        .create_accounts(&chart::house_accounts(&ModelSet::V1.funds))
        .map_err(|e| format!("creating the house accounts: {e:?}"))?;
    match results
        .iter()
        .find(|r| !matches!(r, CreateAccountResult::Ok | CreateAccountResult::Exists))
    {
        Some(r) => Err(format!("creating the house accounts: {r:?}")),
        None => Ok(()),
    }
}

async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    eprintln!("acme serve: stopping");
}
