//! `acme`: the command-line face of the platform.
//!
//! - `acme sim`: runs a seeded simulation of whole business days and checks every invariant.
//!   Exit 0 when all hold, 2 on a safety violation, 3 on a liveness failure, 1 on bad usage or
//!   errors. `--faults`, `--shrink`, `--export`, `--plant`; `--data DIR` runs it on the durable
//!   ledger in a new store in DIR (real files, an fdatasync per ledger call; same digest), the
//!   processes' journals on files in DIR/processes/<service>/.
//! - `acme swarm`: many seeds, each with its own fault plan, over all cores.
//! - `acme recon`: reconciles a ledger against the custodian's and the bank's statements.
//! - `acme ledger verify DIR [--since SEQ:CHECKSUM] [--json]`: verifies a durable ledger's
//!   directory, read-only: every checksum, the hash chain, a replay, the books; prints the chain
//!   head an auditor can check later with `--since`.
//! - `acme ledger inspect DIR [--json] [--accounts N] [--transfers N]`: the same pass, showing
//!   superblock, segments, checkpoints, accounts, the last transfers and per-ledger totals.
//! - `acme ledger compact DIR`: verifies the store (refusing one that does not verify), recovers
//!   it, checkpoints it and drops the segments the checkpoints cover.
//! - `acme ledger write-test DIR --batches N --batch-size K`: a testing aid that writes numbered
//!   batches and prints `acked SEQ BATCH` after each durable commit (the kill -9 test uses it).
//!
//!   The ledger commands exit 0 when the store is good (a torn tail is not corruption), 2 on
//!   corruption or a failed `--since`, 1 on bad usage or when DIR holds no readable store.
//! - `acme dead-letters list --data DIR [--process NAME] [--json]`: the processes' dead letters,
//!   read from their journals in DIR/processes/<service>/ (read-only).
//! - `acme dead-letters redrive --data DIR --process NAME --id N`: asks a stopped process to
//!   handle a dead letter again when it next starts.
//! - `acme serve --listen ADDR --data DIR [--config FILE] [--tokens FILE]`: the HTTP API
//!   (`acme-api`) on the platform's processes, until SIGTERM or ctrl-c (a clean stop).
//!
//! This is an adapter crate: it may read the wall clock (to report `wall_ms`) and touch files;
//! the crates it drives may not. Hence it opts out of the determinism rules of `clippy.toml`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_sim::{SimConfig, Summary};
use clap::{Parser, Subcommand};

mod canary;
mod dead_letters;
mod durable_sim;
mod ledger_cmd;
mod recon;
#[cfg(feature = "tigerbeetle")]
mod serve_tigerbeetle;
mod shrink;
mod swarm;
#[cfg(feature = "tigerbeetle")]
mod tigerbeetle_backend;

use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "acme",
    version,
    about = "ACME Master Trust ledger and process platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a deterministic simulation of business days, checking every invariant.
    Sim(SimArgs),
    /// Run many seeds, each under its own fault plan, over all cores; list the failures.
    Swarm(swarm::SwarmArgs),
    /// Reconcile the ledger against the custodian's and the bank's statements.
    Recon(recon::ReconArgs),
    /// Verify, inspect and compact a durable ledger's directory.
    Ledger(ledger_cmd::LedgerArgs),
    /// List the processes' dead letters, and re-drive one once its code is fixed.
    DeadLetters(dead_letters::DeadLettersArgs),
    /// Serve the HTTP API on the platform's processes, with the durable ledger in DIR.
    Serve(ServeArgs),
    /// Drive synthetic members through a running service's API and check them end to end.
    Canary(canary::CanaryArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Data directory: the processes' journals, the durable ledger, the API's journal (and
    /// development tokens in DIR/tokens when no tokens are configured).
    #[arg(long, value_name = "DIR")]
    data: std::path::PathBuf,
    /// Configuration file (JSON: funds, tokens as SHA-256 hashes, in_flight_max, custodian:
    /// "simulated" or "file-drop"); defaults without one.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Tokens file: lines `ROLE TOKEN` (channel, operations, auditor).
    #[arg(long, value_name = "FILE")]
    tokens: Option<std::path::PathBuf>,
    /// Run the day's jobs (settlement, cut-off, valuation) on their timer on business days;
    /// without it, operations run them through POST /v1/jobs/{job}.
    #[arg(long)]
    day_jobs: bool,
    /// Run on a TigerBeetle cluster (`HOST:PORT[,HOST:PORT...]`, one per replica) instead of
    /// the durable embedded ledger; needs a build with `--features tigerbeetle`.
    #[arg(long, value_name = "ADDRESSES")]
    tigerbeetle: Option<String>,
    /// The TigerBeetle cluster's id.
    #[arg(long, default_value_t = 0)]
    cluster_id: u128,
}

#[derive(clap::Args)]
struct SimArgs {
    /// The seed: it decides prices, members' instructions and message delays.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Business days on which members instruct (the run goes on until the last trade settles).
    #[arg(long, default_value_t = 5)]
    days: u32,
    /// Number of members.
    #[arg(long, default_value_t = 2_000)]
    members: u64,
    /// The first day, YYYY-MM-DD (the first business day on or after it; default 2026-01-05).
    /// A run must stay within 2026-2030, the years of the bank holiday table.
    #[arg(long, value_name = "DATE")]
    start: Option<acme_processes::calendar::Date>,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Fault plan: none, default (every fault, moderate rates), or swarm (drawn from the seed).
    #[arg(long, default_value = "none")]
    faults: String,
    /// Switch on a planted bug by name (needs a build with `--features planted-bugs`).
    #[arg(long, value_name = "NAME")]
    plant: Option<String>,
    /// Switch these fault kinds off (comma separated: loss, duplicate, delay-spike, crash,
    /// custodian-silent, custodian-late, custodian-outage, job-late, job-twice).
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    without: Vec<String>,
    /// The run's budget of events: past it, the run stops as a liveness failure (exit 3).
    /// Default: derived from its size (see `acme_sim::budget`).
    #[arg(long, value_name = "N")]
    budget_events: Option<u64>,
    /// The run's budget of business days in all, from the first (default: the days of activity
    /// and 15 more); past it, a liveness failure (exit 3).
    #[arg(long, value_name = "D")]
    budget_days: Option<u32>,
    /// If the run fails, shrink it (fewer members, days, fault kinds) while it still fails, and
    /// print the smallest reproduction.
    #[arg(long)]
    shrink: bool,
    /// The ledger: `mem` (embedded; the durable ledger on a simulated disk when the plan has
    /// storage faults), `sim-disk` (that durable ledger even without storage faults: the
    /// baseline of a faulty run's speed) or `tigerbeetle://HOST:PORT[,HOST:PORT...]` (a fresh
    /// TigerBeetle cluster; needs a build with `--features tigerbeetle`).
    #[arg(long, default_value = "mem")]
    ledger: String,
    /// Write the last simulated day's ledger and the custodian's and bank's statements under DIR
    /// (for `acme recon`).
    #[arg(long, value_name = "DIR")]
    export: Option<std::path::PathBuf>,
    /// Run on the durable ledger, in a new store in DIR (which must be empty or missing): real
    /// files, every ledger call durable before it is answered. Check it afterwards with
    /// `acme ledger verify DIR`. The processes' journals go to DIR/processes/<service>/ (read
    /// them with `acme dead-letters list --data DIR`).
    #[arg(long, value_name = "DIR")]
    data: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    // Exit 2 means "invariant violated", so usage errors exit 1, not clap's default 2.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Sim(args) => sim(args),
        Command::Swarm(args) => swarm::swarm(args),
        Command::Recon(args) => recon::main(args),
        Command::Ledger(args) => ledger_cmd::main(args),
        Command::DeadLetters(args) => dead_letters::main(args),
        Command::Serve(args) => serve(args),
        Command::Canary(args) => canary::main(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let ledger = match args
        .tigerbeetle
        .as_deref()
        .map(|a| serve_ledger(args.cluster_id, a))
    {
        None => None,
        Some(Ok(connect)) => Some(connect),
        Some(Err(e)) => {
            eprintln!("acme serve: {e}");
            return ExitCode::from(2);
        }
    };
    let options = acme_api::Options {
        listen: args.listen,
        data: args.data,
        config: args.config,
        tokens: args.tokens,
        day_jobs: args.day_jobs,
        ledger,
    };
    match acme_api::serve(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("acme serve: {e}");
            ExitCode::from(1)
        }
    }
}

/// How `acme serve --tigerbeetle` connects: the cluster checked once now, then a client per
/// connection the runtime opens.
fn serve_ledger(cluster_id: u128, addresses: &str) -> Result<acme_runtime::Connect, String> {
    #[cfg(feature = "tigerbeetle")]
    return serve_tigerbeetle::serve_connect(cluster_id, addresses);
    #[cfg(not(feature = "tigerbeetle"))]
    {
        let _ = (cluster_id, addresses);
        Err("this acme was built without TigerBeetle (cargo build --features tigerbeetle)".into())
    }
}

fn sim(args: SimArgs) -> ExitCode {
    let knobs = shrink::Knobs {
        seed: args.seed,
        days: args.days,
        members: args.members,
        faults: args.faults.clone(),
        without: args.without.clone(),
        start: args.start,
        budget_events: args.budget_events,
        budget_days: args.budget_days,
    };
    let plant_arg = args
        .plant
        .as_ref()
        .map(|p| format!(" --plant {p}"))
        .unwrap_or_default();
    let reproduce = format!("{}{plant_arg}", knobs.command());
    let cfg = match knobs.config() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("acme sim: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = plant(args.plant.as_deref()) {
        eprintln!("acme sim: {e}");
        return ExitCode::from(1);
    }
    if args.shrink && args.data.is_some() {
        eprintln!(
            "acme sim: --shrink reruns the seed in memory; it cannot be combined with --data"
        );
        return ExitCode::from(1);
    }
    if args.shrink {
        return match shrink::shrink(knobs) {
            None => {
                println!("seed {} passes: nothing to shrink", args.seed);
                ExitCode::SUCCESS
            }
            Some((smallest, runs)) => {
                let plant = args
                    .plant
                    .as_ref()
                    .map(|p| format!(" --plant {p}"))
                    .unwrap_or_default();
                println!(
                    "smallest failing run ({runs} runs to find it):\n  {}{plant}",
                    smallest.command()
                );
                ExitCode::from(2)
            }
        };
    }
    if !args.json {
        // The plan first, so a reader knows what the seed exercised before anything else.
        println!(
            "faults {} (seed {}): {}",
            args.faults,
            args.seed,
            cfg.faults.describe().join("; ")
        );
        if let Some(dir) = &args.data {
            println!(
                "ledger: durable, in {} (a checkpoint every {} bytes of log); process journals \
                 in {}",
                dir.display(),
                durable_sim::CHECKPOINT_LOG_BYTES,
                dir.join("processes").display()
            );
        }
    }
    let started = Instant::now();
    let mut world = match world_for(&args, cfg) {
        Ok(world) => world,
        Err(e) => {
            eprintln!("acme sim: {e}");
            return ExitCode::from(1);
        }
    };
    let mut summary: Summary = world.run_to_end();
    if let Some(dir) = &args.export {
        let source = format!(
            "acme sim --seed {} --days {} --members {}",
            args.seed, args.days, args.members
        );
        if let Err(e) = recon::write_export(dir, &world.export_day(&source)) {
            eprintln!("acme sim: export: {e}");
            return ExitCode::from(1);
        }
        eprintln!(
            "acme sim: exported {} under {}",
            world.last_day(),
            dir.display()
        );
    }
    summary.wall_ms = started.elapsed().as_millis() as u64;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).expect("summary serialises")
        );
    } else {
        print!("{}", summary.human());
    }
    let status = summary.exit_status();
    if status != 0 {
        let kind = if status == 3 {
            "liveness failure(s)"
        } else {
            "invariant violation(s)"
        };
        eprintln!(
            "acme sim: {} {kind} with seed {}; reproduce with: {}",
            summary.violation_count, summary.seed, reproduce
        );
    }
    ExitCode::from(status)
}

/// Plants the named bug for this thread's simulations (`None`: nothing planted).
pub fn plant(name: Option<&str>) -> Result<(), String> {
    use acme_processes::plant::{self, Bug};
    let Some(name) = name else { return Ok(()) };
    if !plant::AVAILABLE {
        return Err(
            "plant: this build has no planted bugs; build with --features planted-bugs".into(),
        );
    }
    let bug = Bug::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
        format!("plant: `{name}` is not one of {}", names.join(", "))
    })?;
    plant::plant(Some(bug));
    Ok(())
}

/// The world of `cfg` on the ledger `--ledger` and `--data` name.
fn world_for(args: &SimArgs, cfg: SimConfig) -> Result<acme_sim::World, String> {
    match &args.data {
        Some(dir) => data_world(&args.ledger, cfg, dir),
        None => {
            ledger_world(&args.ledger, cfg).map_err(|e| format!("--ledger {}: {e}", args.ledger))
        }
    }
}

/// `--data DIR`: the world of `cfg` on a new durable ledger in DIR (the embedded ledger's
/// semantics, so only with `--ledger mem`).
fn data_world(
    ledger: &str,
    cfg: SimConfig,
    dir: &std::path::Path,
) -> Result<acme_sim::World, String> {
    if ledger != "mem" {
        return Err(format!(
            "--data runs the durable embedded ledger; it cannot be combined with --ledger {ledger}"
        ));
    }
    durable_sim::world(cfg, dir).map_err(|e| format!("--data: {e}"))
}

/// The world of `cfg` on the ledger `--ledger` names.
fn ledger_world(ledger: &str, cfg: SimConfig) -> Result<acme_sim::World, String> {
    if ledger == "mem" {
        return Ok(acme_sim::World::new(cfg));
    }
    if ledger == "sim-disk" {
        return Ok(acme_sim::World::on_sim_disk(cfg));
    }
    let Some(addresses) = ledger.strip_prefix("tigerbeetle://") else {
        return Err(
            "expected `mem`, `sim-disk` or `tigerbeetle://HOST:PORT[,HOST:PORT...]`".into(),
        );
    };
    #[cfg(feature = "tigerbeetle")]
    return tigerbeetle_backend::world(cfg, addresses);
    #[cfg(not(feature = "tigerbeetle"))]
    {
        let _ = (addresses, cfg);
        Err("this acme was built without TigerBeetle (cargo build --features tigerbeetle)".into())
    }
}
