//! `acme swarm`: many seeds, each under its own swarm fault plan, over all cores.
//!
//! Each seed runs in-process on a worker thread (the simulator is single-threaded and
//! deterministic, so seeds are independent); a progress bar counts them; at the end a table lists
//! every failure with its kind, first violated invariant and the command that reproduces it.
//! `--check-determinism` runs every seed twice and compares the trace hashes. Each seed draws
//! its start date across 2026-2030 (`--start DATE` gives every seed the same one), so the
//! seeds between them cross month, quarter and year ends, holidays and clock changes.
//!
//! The swarm prints the coverage summed over its seeds (`acme_sim::coverage`: each instruction
//! kind and outcome, crossing, partial fills, amendments, rejections, each fault kind) and fails
//! when any of it never happened: a path no seed met is a path the swarm did not test.
//!
//! Exit status: 0 all seeds passed and everything was covered; 2 a seed broke a safety
//! invariant, panicked or was not deterministic; 3 seeds failed only on liveness (a run past
//! its budget of events or days among them); 4 every seed passed but something never happened
//! (`--allow-missing` lets named coverage stay at zero).

use acme_sim::coverage::Coverage;
use acme_sim::{SimConfig, Summary};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(clap::Args)]
pub struct SwarmArgs {
    /// Seeds to run, as FIRST..LAST (inclusive), e.g. 1..1000.
    #[arg(long, default_value = "1..100")]
    seeds: String,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Business days of member activity per seed.
    #[arg(long, default_value_t = 3)]
    days: u32,
    /// Members per seed.
    #[arg(long, default_value_t = 2_000)]
    members: u64,
    /// Fault plan for every seed (swarm draws one per seed).
    #[arg(long, default_value = "swarm")]
    faults: String,
    /// Run every seed twice and fail on any difference of trace hash.
    #[arg(long)]
    check_determinism: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Switch on a planted bug by name in every seed (needs `--features planted-bugs`).
    #[arg(long, value_name = "NAME")]
    plant: Option<String>,
    /// The first day of every seed, YYYY-MM-DD, or `drawn`: each seed draws its own in
    /// 2026-2030.
    #[arg(long, default_value = "drawn", value_name = "DATE|drawn")]
    start: String,
    /// Every seed's budget of events (default: derived from the run's size).
    #[arg(long, value_name = "N")]
    budget_events: Option<u64>,
    /// Every seed's budget of business days in all (default: the days of activity and 15).
    #[arg(long, value_name = "D")]
    budget_days: Option<u32>,
    /// Coverage keys (or prefixes: `fault`, `outcome.switch`; `all`) allowed to stay at zero.
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    allow_missing: Vec<String>,
}

/// The start date of `seed`'s run.
fn start_of(seed: u64, args: &SwarmArgs) -> Result<acme_processes::calendar::Date, String> {
    if args.start == "drawn" {
        Ok(acme_sim::calendar::drawn_start(seed, args.days))
    } else {
        args.start.parse().map_err(|e| format!("start: {e}"))
    }
}

/// `FIRST..LAST` (inclusive) or a single seed.
pub fn parse_seeds(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("seeds: `{s}` is not FIRST..LAST (for example 1..1000)");
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a, b.trim_start_matches('=')),
        None => (s, s),
    };
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if first > last {
        return Err(format!(
            "seeds: first seed {first} is after last seed {last}"
        ));
    }
    Ok((first, last))
}

#[derive(Clone, Debug, serde::Serialize)]
struct Failure {
    seed: u64,
    kind: String,
    invariant: String,
    detail: String,
    reproduce: String,
}

fn run_seed(seed: u64, args: &SwarmArgs) -> Result<Summary, String> {
    let mut cfg = SimConfig::new(seed, args.days, args.members).with_faults(&args.faults)?;
    cfg.start = start_of(seed, args)?;
    cfg.budget = crate::shrink::budget(
        args.days,
        args.members,
        args.budget_events,
        args.budget_days,
    );
    cfg.validate()?;
    // A panic (a failed assertion inside the platform or the simulator) is a failure of this
    // seed, not of the whole swarm.
    std::panic::catch_unwind(|| acme_sim::run(cfg)).map_err(|e| {
        let what = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("panicked: {what}")
    })
}

pub fn swarm(args: SwarmArgs) -> ExitCode {
    let (first, last) = match parse_seeds(&args.seeds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("acme swarm: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = crate::plant(args.plant.as_deref()) {
        eprintln!("acme swarm: {e}");
        return ExitCode::from(1);
    }
    if let Err(e) = run_seed(
        first,
        &SwarmArgs {
            days: 1,
            members: 1,
            ..args_clone(&args)
        },
    ) {
        eprintln!("acme swarm: {e}");
        return ExitCode::from(1);
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let total = last - first + 1;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta} {msg}")
            .expect("valid template"),
    );
    let next = Arc::new(AtomicU64::new(first));
    let failures: Arc<Mutex<Vec<Failure>>> = Arc::default();
    let coverage: Arc<Mutex<Coverage>> = Arc::default();
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (next, failures, bar, args) = (next.clone(), failures.clone(), bar.clone(), &args);
            let coverage = coverage.clone();
            scope.spawn(move || {
                // The planted bug is per thread: every worker plants it.
                crate::plant(args.plant.as_deref()).expect("checked above");
                loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed > last {
                    return;
                }
                let mut found = Vec::new();
                match run_seed(seed, args) {
                    Ok(s) => {
                        coverage.lock().expect("not poisoned").merge(&s.coverage);
                        if !s.ok() {
                            let v = s.violations.first();
                            found.push(Failure {
                                seed,
                                kind: if s.exit_status() == 3 { "liveness" } else { "safety" }.to_string(),
                                invariant: v.map(|v| v.invariant.clone()).unwrap_or_default(),
                                detail: v.map(|v| v.detail.clone()).unwrap_or_default(),
                                reproduce: s.reproduce(),
                            });
                        }
                        if args.check_determinism {
                            let again = run_seed(seed, args).expect("ran once");
                            if again.trace_hash != s.trace_hash {
                                found.push(Failure {
                                    seed,
                                    kind: "determinism".to_string(),
                                    invariant: "trace_hash".to_string(),
                                    detail: format!("{} then {}", s.trace_hash, again.trace_hash),
                                    reproduce: s.reproduce(),
                                });
                            }
                        }
                    }
                    Err(e) => found.push(Failure {
                        seed,
                        kind: "panic".to_string(),
                        invariant: "assertion".to_string(),
                        detail: e,
                        reproduce: format!(
                            "cargo run --release -- sim --seed {seed} --days {} --members {} --faults {} --start {}",
                            args.days, args.members, args.faults,
                            start_of(seed, args).map(|d| d.to_string()).unwrap_or_default()
                        ),
                    }),
                }
                if !found.is_empty() {
                    let mut all = failures.lock().expect("not poisoned");
                    all.extend(found);
                    bar.set_message(format!("{} failed", all.len()));
                }
                bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut failures = Arc::try_unwrap(failures)
        .expect("workers done")
        .into_inner()
        .expect("not poisoned");
    failures.sort_by_key(|f| f.seed);
    if let Some(bug) = &args.plant {
        for f in &mut failures {
            f.reproduce = format!(
                "{} --plant {bug} (build with --features planted-bugs)",
                f.reproduce
            );
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let coverage = Arc::try_unwrap(coverage)
        .expect("workers done")
        .into_inner()
        .expect("not poisoned");
    let missing = coverage.missing(&args.allow_missing);
    if args.json {
        let out = serde_json::json!({
            "seeds": total,
            "first": first,
            "last": last,
            "jobs": jobs,
            "faults": args.faults,
            "check_determinism": args.check_determinism,
            "wall_s": wall_s,
            "failures": failures,
            "coverage": coverage,
            "never_happened": missing,
        });
        println!("{out}");
    } else {
        println!(
            "{total} seeds ({first}..{last}), {} days x {} members, faults {}, {jobs} jobs: {} failed in {wall_s:.1} s",
            args.days,
            args.members,
            args.faults,
            failures.len()
        );
        if !failures.is_empty() {
            println!(
                "{:>8}  {:<11}  {:<36}  reproduce",
                "seed", "kind", "first violated invariant"
            );
            for f in &failures {
                println!(
                    "{:>8}  {:<11}  {:<36}  {}",
                    f.seed, f.kind, f.invariant, f.reproduce
                );
            }
        }
    }
    if !args.json {
        print!("coverage over {total} seeds\n{}", coverage.human());
        if !missing.is_empty() {
            println!("never happened: {}", missing.join(", "));
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "acme swarm: over seeds {first}..{last} these never happened: {}",
            missing.join(", ")
        );
    }
    ExitCode::from(status(&failures, &missing))
}

/// The exit status of a swarm: the worst kind of failure among its seeds first, then coverage.
fn status(failures: &[Failure], missing: &[String]) -> u8 {
    if failures.iter().any(|f| f.kind != "liveness") {
        2
    } else if !failures.is_empty() {
        3
    } else if !missing.is_empty() {
        4
    } else {
        0
    }
}

fn args_clone(a: &SwarmArgs) -> SwarmArgs {
    SwarmArgs {
        seeds: a.seeds.clone(),
        jobs: a.jobs,
        days: a.days,
        members: a.members,
        faults: a.faults.clone(),
        check_determinism: a.check_determinism,
        json: a.json,
        plant: a.plant.clone(),
        start: a.start.clone(),
        budget_events: a.budget_events,
        budget_days: a.budget_days,
        allow_missing: a.allow_missing.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse() {
        assert_eq!(parse_seeds("1..1000"), Ok((1, 1000)));
        assert_eq!(parse_seeds("7"), Ok((7, 7)));
        assert_eq!(parse_seeds("1..=3"), Ok((1, 3)));
        assert!(parse_seeds("5..1").is_err());
        assert!(parse_seeds("a..b").unwrap_err().contains("FIRST..LAST"));
    }

    #[test]
    fn safety_outranks_liveness_outranks_coverage() {
        let failure = |kind: &str| Failure {
            seed: 1,
            kind: kind.to_string(),
            invariant: String::new(),
            detail: String::new(),
            reproduce: String::new(),
        };
        let gap = vec!["fault.loss".to_string()];
        assert_eq!(status(&[], &[]), 0);
        assert_eq!(status(&[], &gap), 4);
        assert_eq!(status(&[failure("liveness")], &gap), 3);
        assert_eq!(status(&[failure("liveness"), failure("panic")], &[]), 2);
        assert_eq!(status(&[failure("safety")], &[]), 2);
    }
}
