//! `acme dead-letters`: the operator's view of the platform processes' dead letters, and the
//! way to have one handled again once the code is fixed.
//!
//! Each process keeps its journal in `DATA/processes/<service>/` (the layout of the tokio
//! runtime, `acme_runtime::process_dir`, which `acme sim --data DATA` uses too): a `LogStore`
//! on files, holding a snapshot and the records after it. The host's state, dead letters
//! included, is the snapshot's header with every later record applied to it
//! ([`HostState::apply`]), so these commands need no process code.
//!
//! - `list --data DATA [--process NAME] [--json]`, read-only: every dead letter, with its
//!   process, id, time, reason, whether a redrive was requested, and what the input was. Exit 0;
//!   1 when a journal could not be read (a corrupt store: its file and offset), or on bad usage.
//! - `redrive --data DATA --process NAME --id N`: appends an operator's record asking the
//!   process to handle dead letter N again. Only while the process is stopped: its journal's
//!   directory lock is held by a running host, and then nothing is written. The host handles
//!   the input again at its next start (`Host::recover`): handled, the dead letter is gone;
//!   poison again, it stays, with the new reason and the request cleared. Exit 0 appended (or
//!   requested already), 1 refused (running, unknown process or id, unreadable journal).

use acme_processes::calendar::{Date, Ts, NS_PER_DAY, NS_PER_SEC};
use acme_processes::host::record::{self, Entry, Record, OPERATOR_VERSION};
use acme_processes::host::{DeadLetter, HostState, LogStore, ProcessStore};
use acme_processes::process::{Input, Service};
use acme_store::Storage;
use acme_store_fs::{FileStorage, Mode};
use clap::Subcommand;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DeadLettersArgs {
    #[command(subcommand)]
    command: DeadLettersCommand,
}

#[derive(Subcommand)]
enum DeadLettersCommand {
    /// List the processes' dead letters (read-only). Exit 0; 1 if a journal cannot be read.
    List(ListArgs),
    /// Ask a stopped process to handle a dead letter again at its next start. Exit 0 appended,
    /// 1 refused (the process is running, an unknown id, an unreadable journal).
    Redrive(RedriveArgs),
}

#[derive(clap::Args)]
struct ListArgs {
    /// The data directory (journals in DIR/processes/<service>/).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Only this process (intake, aggregation, pricing, settlement, rebalancing).
    #[arg(long, value_name = "NAME")]
    process: Option<String>,
    /// Print one JSON object instead of the list.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RedriveArgs {
    /// The data directory (journals in DIR/processes/<service>/).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The process that holds the dead letter.
    #[arg(long, value_name = "NAME")]
    process: String,
    /// The dead letter's id, as `list` shows it.
    #[arg(long, value_name = "N")]
    id: u64,
}

pub fn main(args: DeadLettersArgs) -> ExitCode {
    match args.command {
        DeadLettersCommand::List(args) => list(args),
        DeadLettersCommand::Redrive(args) => redrive(args),
    }
}

/// The platform process called `name` (its journal directory's name).
fn service_named(name: &str) -> Result<Service, String> {
    let found = Service::PLATFORM
        .into_iter()
        .find(|&s| acme_runtime::dir_name(s) == name);
    found.ok_or_else(|| {
        let names: Vec<String> = Service::PLATFORM
            .into_iter()
            .map(acme_runtime::dir_name)
            .collect();
        format!(
            "`{name}` is not a platform process (one of {})",
            names.join(", ")
        )
    })
}

/// What a journal holds, as far as the host's state goes.
struct Journal {
    state: HostState,
    /// Records after the snapshot.
    records: usize,
    /// The time of the last record (of the snapshot, when no record follows it; 0 for none).
    last_at: Ts,
    /// What opening found that an operator should know (a torn tail, a snapshot fallback).
    notes: Vec<String>,
}

/// Rebuilds the host's state from what `store` holds: the snapshot's header, then each record.
fn rebuild<S: Storage + Send>(
    service: Service,
    dir: &Path,
    store: &mut LogStore<S>,
) -> Result<Journal, String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", dir.display());
    let loaded = store.load().map_err(|e| at(&e))?;
    let (mut state, mut last_at) = match &loaded.snapshot {
        None => (HostState::default(), 0),
        Some(bytes) => {
            let (header, _) = record::decode_snapshot(bytes).map_err(|e| at(&e))?;
            (header.host, header.at)
        }
    };
    for (index, bytes) in loaded.records.iter().enumerate() {
        let record = record::decode_record(bytes)
            .map_err(|e| at(&format!("record {index} after the snapshot: {e}")))?;
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            state.apply(service, &record)
        }));
        if applied.is_err() {
            return Err(at(&format!(
                "record {index} after the snapshot does not apply to the host's state"
            )));
        }
        last_at = record.at;
    }
    let mut notes = Vec::new();
    if let Some(recovery) = store.recovery() {
        if let Some(t) = &recovery.torn {
            notes.push(format!(
                "a torn tail in {} at offset {} (record {}, {} bytes: {}), which the process \
                 cuts when it starts",
                t.file, t.offset, t.seq, t.bytes, t.reason
            ));
        }
        if let Some(c) = &recovery.checkpoint_fallback {
            notes.push(format!(
                "the newest snapshot did not verify ({c}); read from the one before"
            ));
        }
    }
    Ok(Journal {
        state,
        records: loaded.records.len(),
        last_at,
        notes,
    })
}

/// Reads a process's journal without changing anything; `None` if there is none.
fn read_journal(service: Service, dir: &Path) -> Result<Option<Journal>, String> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut storage = FileStorage::open(dir, Mode::ReadOnly).map_err(|e| e.reason)?;
    let names = storage.list().map_err(|e| e.to_string())?;
    if names.is_empty() {
        return Ok(None);
    }
    let mut store =
        LogStore::open_read_only(storage).map_err(|e| format!("{}: {e}", dir.display()))?;
    rebuild(service, dir, &mut store).map(Some)
}

/// One dead letter as `list` shows it.
#[derive(Serialize)]
struct Shown {
    process: String,
    id: u64,
    /// Nanoseconds since the Unix epoch.
    at: Ts,
    time: String,
    reason: String,
    redrive_requested: bool,
    /// The input in one line.
    summary: String,
    /// The input itself, as the journal holds it.
    input: serde_json::Value,
}

#[derive(Serialize)]
struct ShownJournal {
    process: String,
    dir: String,
    /// Whether the directory holds a journal.
    found: bool,
    records_after_snapshot: usize,
    dead_letters: usize,
    notes: Vec<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct ListView {
    data: String,
    journals: Vec<ShownJournal>,
    dead_letters: Vec<Shown>,
}

fn list(args: ListArgs) -> ExitCode {
    let services = match &args.process {
        None => Service::PLATFORM.to_vec(),
        Some(name) => match service_named(name) {
            Ok(s) => vec![s],
            Err(e) => {
                eprintln!("acme dead-letters list: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let mut view = ListView {
        data: args.data.display().to_string(),
        journals: Vec::new(),
        dead_letters: Vec::new(),
    };
    let mut failed = false;
    for service in services {
        let name = acme_runtime::dir_name(service);
        let dir = acme_runtime::process_dir(&args.data, service);
        let mut shown = ShownJournal {
            process: name.clone(),
            dir: dir.display().to_string(),
            found: false,
            records_after_snapshot: 0,
            dead_letters: 0,
            notes: Vec::new(),
            error: None,
        };
        match read_journal(service, &dir) {
            Ok(None) => {
                if args.process.is_some() {
                    failed = true;
                    shown.error = Some(format!("no journal in {}", dir.display()));
                }
            }
            Ok(Some(journal)) => {
                shown.found = true;
                shown.records_after_snapshot = journal.records;
                shown.dead_letters = journal.state.dead_letters().len();
                shown.notes = journal.notes;
                for (&id, d) in journal.state.dead_letters() {
                    view.dead_letters.push(show(&name, id, d));
                }
            }
            Err(e) => {
                failed = true;
                shown.error = Some(e);
            }
        }
        view.journals.push(shown);
    }
    for j in &view.journals {
        if let Some(e) = &j.error {
            eprintln!("acme dead-letters list: {}: {e}", j.process);
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&view).expect("the view serialises")
        );
    } else {
        print!("{}", human(&view));
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn show(process: &str, id: u64, d: &DeadLetter) -> Shown {
    Shown {
        process: process.to_string(),
        id,
        at: d.at,
        time: time(d.at),
        reason: d.reason.clone(),
        redrive_requested: d.redrive,
        summary: summary(&d.input),
        input: serde_json::to_value(&d.input).unwrap_or(serde_json::Value::Null),
    }
}

fn human(view: &ListView) -> String {
    let mut out = String::new();
    for j in &view.journals {
        let what = if j.error.is_some() {
            "could not be read".to_string()
        } else if !j.found {
            "no journal".to_string()
        } else {
            plural(j.dead_letters, "dead letter")
        };
        out.push_str(&format!("{}: {what} ({})\n", j.process, j.dir));
        for note in &j.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
        for d in view.dead_letters.iter().filter(|d| d.process == j.process) {
            let redrive = if d.redrive_requested {
                "redrive requested (at the next start)"
            } else {
                "no redrive requested"
            };
            out.push_str(&format!(
                "  dead letter {} at {} ({} ns): {redrive}\n    input:  {}\n    reason: {}\n",
                d.id, d.time, d.at, d.summary, d.reason
            ));
        }
    }
    let found = view.journals.iter().filter(|j| j.found).count();
    let read = plural(found, "journal");
    let failed = view.journals.iter().filter(|j| j.error.is_some()).count();
    let unread = match failed {
        0 => String::new(),
        n => format!("; {} could not be read (see above)", plural(n, "journal")),
    };
    if view.dead_letters.is_empty() {
        out.push_str(&format!("no dead letters ({read} read{unread})\n"));
    } else {
        out.push_str(&format!(
            "{} in {read} read{unread}; re-drive one, once its process's code is fixed and the \
             process stopped, with: acme dead-letters redrive --data {} --process NAME --id N\n",
            plural(view.dead_letters.len(), "dead letter"),
            view.data
        ));
    }
    out
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// A time as a person reads it: `2024-01-02 09:00:00.000000000 UTC`.
fn time(ts: Ts) -> String {
    let day = Date::of(ts);
    let ns = ts % NS_PER_DAY;
    let secs = ns / NS_PER_SEC;
    format!(
        "{day} {:02}:{:02}:{:02}.{:09} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ns % NS_PER_SEC
    )
}

/// The name of a value's enum variant, as serde writes it (`{"CutOff": ...}` or `"Variant"`).
fn variant(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(m)) if m.len() == 1 => {
            m.keys().next().cloned().unwrap_or_default()
        }
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".to_string(),
    }
}

/// An input in one line: the message's kind and id, the timer's id, or the ledger answer's tag.
fn summary(input: &Input) -> String {
    match input {
        Input::Message(env) => {
            let from = acme_runtime::dir_name(env.from);
            let seq = match env.seq {
                0 => String::new(),
                seq => format!(" (channel seq {seq})"),
            };
            format!(
                "message {} {:#x} from {from}{seq}",
                variant(&env.body),
                env.id
            )
        }
        Input::Timer { timer_id } => format!("timer {timer_id}"),
        Input::Ledger { tag, reply } => {
            format!(
                "ledger answer {} to the request tagged {tag:#x}",
                variant(reply)
            )
        }
    }
}

fn redrive(args: RedriveArgs) -> ExitCode {
    match redrive_inner(&args) {
        Ok(said) => {
            print!("{said}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("acme dead-letters redrive: {e}");
            ExitCode::from(1)
        }
    }
}

fn redrive_inner(args: &RedriveArgs) -> Result<String, String> {
    let service = service_named(&args.process)?;
    let name = acme_runtime::dir_name(service);
    let dir = acme_runtime::process_dir(&args.data, service);
    if !dir.is_dir() {
        return Err(format!("{name} has no journal in {}", dir.display()));
    }
    // The writer's lock: a running host holds it, and then nothing may be written here.
    let mut storage = FileStorage::open(&dir, Mode::ReadWrite).map_err(|e| {
        if e.reason.contains("is locked") {
            format!(
                "{name} is running, or another tool has its journal open: {}. Nothing was \
                 written. Stop {name}, then run this again; it handles the dead letter again \
                 when it starts",
                e.reason
            )
        } else {
            format!("{name}: {}", e.reason)
        }
    })?;
    let names = storage.list().map_err(|e| e.to_string())?;
    if names.is_empty() {
        return Err(format!("{name} has no journal in {}", dir.display()));
    }
    let mut store = LogStore::open(storage).map_err(|e| format!("{}: {e}", dir.display()))?;
    let journal = rebuild(service, &dir, &mut store)?;
    let Some(dead) = journal.state.dead_letters().get(&args.id) else {
        let known: Vec<String> = journal
            .state
            .dead_letters()
            .keys()
            .map(u64::to_string)
            .collect();
        let known = if known.is_empty() {
            "it has none".to_string()
        } else {
            format!("it has {}", known.join(", "))
        };
        return Err(format!(
            "{name} has no dead letter {} ({known}); nothing was written",
            args.id
        ));
    };
    let what = format!(
        "{name} dead letter {} ({}, at {})",
        args.id,
        summary(&dead.input),
        time(dead.at)
    );
    if dead.redrive {
        return Ok(format!(
            "a redrive of {what} is requested already; nothing was written. {name} handles it \
             again when it next starts\n"
        ));
    }
    let record = Record {
        version: OPERATOR_VERSION,
        at: journal.last_at,
        entry: Entry::Redrive {
            dead_letter: args.id,
        },
    };
    store
        .append(&record::encode_record(&record))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut said = String::new();
    for note in &journal.notes {
        said.push_str(&format!("note: {note} (cut now)\n"));
    }
    said.push_str(&format!(
        "appended a redrive request for {what} to the journal in {}.\nNext: when {name} \
         starts, it handles the input again. Handled, the dead letter is gone; poison again, it \
         stays, with the new reason and no redrive requested. `acme dead-letters list` shows \
         which.\n",
        dir.display()
    ));
    Ok(said)
}
