//! Recovery time of a process host after 1,000, 100,000 and 1,000,000 handled inputs, with the
//! default snapshot policy, on `MemStore` and on `LogStore` over real files (`FileStorage`).
//!
//! `cargo run --release -p acme-bench --bin host_recovery [-- OPTIONS]`
//!
//! - `--sizes 1000,100000,1000000`: inputs handled before each recovery (one host driven
//!   through them in turn; the store is copied at each size). After the largest it goes on to
//!   one record short of the next snapshot, the longest tail the policy lets grow, and measures
//!   that too.
//! - `--dir DIR`: where the file stores go (default: a fresh directory under the system temp
//!   dir); it must be on the disk to measure. Everything under DIR/host-recovery is removed.
//! - `--file-driven-max N` (default 100000): sizes up to N are also driven on real files, one
//!   record, one write and three fdatasyncs per input, as a host on files does.
//! - `--cycle-gap-s S` (default 86400): virtual seconds between the starts of two cycles.
//! - `--members N` (default 1000): the population cycling. With 1,000 every size is past the
//!   onboarding, so the three hosts hold the same live state and differ only in history, which
//!   is what the figure is about; with 10,000 the 1,000-input host has met a tenth of them and
//!   restores a tenth of the state.
//! - `--reps R` (default 5): recoveries per figure; the median is reported.
//! - `--segment-mib M` (default: a process log's, 8): the size at which the log starts a new
//!   segment file.
//!
//! Three stores for each size, all recovered the way a host starts: `MemStore`; the files a
//! host on `LogStore` leaves, byte for byte (a second host is driven on `LogStore` over
//! `MemStorage`, the same store engine with no disk under it, and its files are written to a
//! directory and synced: 1,000,000 inputs without 1,000,000 rounds of fsyncs; for the sizes up
//! to `--file-driven-max` a third host is driven on the real files and its directory is checked
//! to be identical); and, for comparison, a log holding only the snapshot and its tail.
//!
//! The process is Intake, fed by `--members` members cycling: in each cycle every member sends one
//! instruction, 1 ms apart (an onboarding in the first cycle, a contribution in every later
//! one); intake batches them (about 50 per 50 ms flush), the ledger answers every request with
//! `ok` at once, and the members acknowledge every status, so intake retires every instruction
//! and its state is bounded by the members. The host's own state is bounded by time: it
//! remembers the ids of external messages for `EXTERNAL_DEDUPE_NS` (24 hours), so with one cycle
//! a day it holds about one cycle's ids.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_bench::timed;
use acme_ledger::chart::FundId;
use acme_ledger::{CreateAccountResult, CreateTransferResult};
use acme_processes::calendar::{Date, Ts, NS_PER_SEC};
use acme_processes::host::record::{decode_record, decode_snapshot};
use acme_processes::host::{
    ack_id, Delivery, Host, Io, Loaded, LogStore, MemStore, ProcessStore, SnapshotPolicy, Ticket,
    RETRANSMIT_TIMER,
};
use acme_processes::messages::{
    instruction_id, msg_id, Instruction, InstructionKind, Message, MsgKind, Origin,
};
use acme_processes::process::{Alert, Envelope, LedgerReply, LedgerRequest, Service};
use acme_processes::trading::intake::Intake;
use acme_store::{Config, MemStorage, Storage};
use acme_store_fs::{FileStorage, Mode};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

const FUNDS: [FundId; 5] = [1, 2, 3, 4, 5];
const PROFILES: usize = 3;
const INSTRUCTION_GAP_NS: Ts = NS_PER_SEC / 1_000;

fn intake() -> Intake {
    Intake::new(FUNDS.to_vec(), PROFILES)
}

/// The world as the host sees it: the ledger answers at once, members acknowledge at once.
#[derive(Default)]
struct BenchIo {
    ledger: VecDeque<(Ticket, LedgerRequest)>,
    /// Messages to members, to acknowledge.
    to_ack: Vec<u128>,
    /// Armed timers by (when, id): the incarnation that armed them.
    timers: BTreeMap<(Ts, u64), u64>,
}

impl Io for BenchIo {
    fn submit_ledger(&mut self, _service: Service, ticket: Ticket, request: &LedgerRequest) {
        self.ledger.push_back((ticket, request.clone()));
    }
    fn send(&mut self, _now: Ts, envelope: Envelope) {
        // The host's acknowledgements of the instructions need nothing back.
        if !matches!(envelope.body, Message::Ack { .. }) {
            assert_eq!(envelope.to, Service::Members, "{envelope:?}");
            self.to_ack.push(envelope.id);
        }
    }
    fn set_timer(&mut self, _service: Service, timer_id: u64, at: Ts, incarnation: u64) {
        // Every message is acknowledged at once: nothing is ever due for retransmission.
        if timer_id != RETRANSMIT_TIMER {
            self.timers.insert((at, timer_id), incarnation);
        }
    }
    fn alert(&mut self, _now: Ts, alert: Alert) {
        panic!("alert: {alert:?}");
    }
}

/// An `Io` for the timed recoveries: it takes what recovery does (re-armed timers, re-sent
/// messages, re-submitted requests) and drops it.
struct NullIo;

impl Io for NullIo {
    fn submit_ledger(&mut self, _: Service, _: Ticket, _: &LedgerRequest) {}
    fn send(&mut self, _: Ts, _: Envelope) {}
    fn set_timer(&mut self, _: Service, _: u64, _: Ts, _: u64) {}
    fn alert(&mut self, _: Ts, alert: Alert) {
        panic!("alert at recovery: {alert:?}");
    }
}

fn ok_reply(request: &LedgerRequest) -> LedgerReply {
    match request {
        LedgerRequest::CreateAccounts(a) => {
            LedgerReply::CreateAccounts(vec![CreateAccountResult::Ok; a.len()])
        }
        LedgerRequest::CreateTransfers(t) => {
            LedgerReply::CreateTransfers(vec![CreateTransferResult::Ok; t.len()])
        }
        other => panic!("intake asked the ledger {other:?}"),
    }
}

/// Drives one host: the members' instructions, the ledger's answers, the timers.
struct Driver {
    io: BenchIo,
    now: Ts,
    start: Ts,
    cycle_gap: Ts,
    members: u64,
    /// The next instruction: (cycle, member index).
    cycle: u64,
    member: u64,
}

impl Driver {
    fn new(cycle_gap: Ts, members: u64) -> Driver {
        let start = "2026-11-23".parse::<Date>().unwrap().at_minute(9 * 60);
        Driver {
            io: BenchIo::default(),
            now: start,
            start,
            cycle_gap,
            members,
            cycle: 0,
            member: 0,
        }
    }

    fn next_instruction_at(&self) -> Ts {
        self.start + self.cycle * self.cycle_gap + self.member * INSTRUCTION_GAP_NS
    }

    fn next_instruction(&mut self) -> Envelope {
        let member = self.member + 1;
        let id = instruction_id(member, self.cycle);
        let kind = if self.cycle == 0 {
            InstructionKind::Onboard {
                profile: (member % PROFILES as u64) as u8,
            }
        } else {
            InstructionKind::Contribute {
                cash_pence: 100 + (member * 7 + self.cycle) % 900,
            }
        };
        self.member += 1;
        if self.member == self.members {
            self.member = 0;
            self.cycle += 1;
        }
        Envelope {
            id: msg_id(MsgKind::Instruction, id, 0),
            from: Service::Members,
            to: Service::Intake,
            seq: 0,
            body: Message::Instruction(Instruction {
                id,
                member,
                kind,
                origin: Origin::Member,
            }),
        }
    }

    /// Runs the host until it has handled `inputs` inputs in all.
    fn run_to<S: ProcessStore>(&mut self, host: &mut Host<Intake, S>, inputs: u64) {
        while host.state().inputs < inputs {
            assert!(host.is_up(), "host stopped: {:?}", host.stopped());
            let now = self.now;
            for id in std::mem::take(&mut self.io.to_ack) {
                let ack = Envelope {
                    id: ack_id(id, Service::Members),
                    from: Service::Members,
                    to: Service::Intake,
                    seq: 0,
                    body: Message::Ack { id },
                };
                host.deliver(now, ack, &mut self.io);
            }
            let delivery = if let Some((ticket, request)) = self.io.ledger.pop_front() {
                host.on_ledger(now, ticket, Ok(ok_reply(&request)), &mut self.io)
            } else {
                let next_at = self.next_instruction_at();
                match self.io.timers.first_key_value() {
                    Some((&(at, timer_id), &incarnation)) if at <= next_at => {
                        self.io.timers.remove(&(at, timer_id));
                        self.now = self.now.max(at);
                        host.fire_timer(self.now, timer_id, incarnation, &mut self.io)
                    }
                    _ => {
                        self.now = next_at;
                        let envelope = self.next_instruction();
                        host.deliver(self.now, envelope, &mut self.io)
                    }
                }
            };
            assert!(
                matches!(delivery, Delivery::Handled | Delivery::Stale),
                "{delivery:?}"
            );
        }
    }
}

/// A new `MemStore` holding what `loaded` holds.
fn mem_store(loaded: &Loaded, with_tail: bool) -> MemStore {
    let mut store = MemStore::default();
    if let Some(snapshot) = &loaded.snapshot {
        store.snapshot(snapshot).unwrap();
    }
    if with_tail {
        for record in &loaded.records {
            store.append(record).unwrap();
        }
    }
    store
}

/// Writes `loaded` (a snapshot, then its tail) to a new log in `dir`.
fn seed_files(dir: &Path, loaded: &Loaded) {
    let _ = std::fs::remove_dir_all(dir);
    let storage = FileStorage::open(dir, Mode::ReadWrite).expect("open dir");
    let mut store = LogStore::create(storage, 1).expect("create log");
    if let Some(snapshot) = &loaded.snapshot {
        store.snapshot(snapshot).unwrap();
    }
    for record in &loaded.records {
        store.append(record).unwrap();
    }
}

/// Writes the files of `storage` to a new directory `dir`, each synced, then the directory.
fn write_files(dir: &Path, storage: &MemStorage) {
    let _ = std::fs::remove_dir_all(dir);
    let mut files = FileStorage::open(dir, Mode::ReadWrite).expect("open dir");
    for (name, bytes) in &storage.files {
        files.write_at(name, 0, bytes).unwrap();
        files.sync(name).unwrap();
    }
    files.sync_dir().unwrap();
}

/// The store's files in `dir`, by name (the writer's lock file left out).
fn read_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            let name = e.file_name().into_string().unwrap();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What a recovery must rebuild: the host's state and the process's, as JSON.
fn fingerprint<S: ProcessStore>(host: &Host<Intake, S>) -> (Vec<u8>, Vec<u8>) {
    (
        serde_json::to_vec(host.state()).unwrap(),
        serde_json::to_vec(host.process().expect("up")).unwrap(),
    )
}

/// Recovers a fresh host on the store `open` makes (opening included in the time), `reps`
/// times: the median seconds and the tail replayed. Checks each recovered host against `want`.
fn time_recovery<S: ProcessStore>(
    reps: usize,
    now: Ts,
    want: &(Vec<u8>, Vec<u8>),
    mut open: impl FnMut() -> S,
    timed_open: bool,
) -> (f64, u64) {
    let mut secs = Vec::new();
    let mut tail = 0;
    for _ in 0..reps {
        let early = (!timed_open).then(&mut open);
        let (mut host, s) = timed(|| {
            let store = early.unwrap_or_else(&mut open);
            let mut host = Host::with_store(Service::Intake, intake, store);
            let report = host.recover(now, &mut NullIo).expect("recovers");
            tail = report.tail;
            host
        });
        secs.push(s);
        assert!(fingerprint(&host) == *want, "recovered another state");
        host.crash();
    }
    (median(secs), tail)
}

/// Recovers from the files in `dir`: opening the directory and the log included.
fn time_file_recovery(reps: usize, now: Ts, want: &(Vec<u8>, Vec<u8>), dir: &Path) -> (f64, u64) {
    let open = || {
        let storage = FileStorage::open(dir, Mode::ReadWrite).expect("open dir");
        LogStore::open(storage).expect("open log")
    };
    time_recovery(reps, now, want, open, true)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

struct Args {
    sizes: Vec<u64>,
    dir: PathBuf,
    file_driven_max: u64,
    cycle_gap: Ts,
    members: u64,
    reps: usize,
    /// The log's segment size (the store's default unless `--segment-mib`).
    config: Config,
}

fn args() -> Args {
    let mut a = Args {
        sizes: vec![1_000, 100_000, 1_000_000],
        dir: std::env::temp_dir().join(format!("acme-host-recovery-{}", std::process::id())),
        file_driven_max: 100_000,
        cycle_gap: 86_400 * NS_PER_SEC,
        members: 1_000,
        reps: 5,
        config: acme_processes::host::log_store::journal_config(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--sizes" => a.sizes = value.split(',').map(|s| s.parse().unwrap()).collect(),
            "--dir" => a.dir = PathBuf::from(value),
            "--file-driven-max" => a.file_driven_max = value.parse().unwrap(),
            "--cycle-gap-s" => a.cycle_gap = value.parse::<u64>().unwrap() * NS_PER_SEC,
            "--members" => a.members = value.parse().unwrap(),
            "--reps" => a.reps = value.parse().unwrap(),
            "--segment-mib" => a.config.segment_bytes_max = value.parse::<u64>().unwrap() << 20,
            other => panic!("unknown option {other}"),
        }
    }
    a.sizes.sort_unstable();
    a
}

struct Row {
    label: String,
    inputs: u64,
    tail: u64,
    tail_bytes: u64,
    snapshot_bytes: u64,
    snapshot_inputs: u64,
    snapshots: u64,
    mem_s: f64,
    mem_snapshot_only_s: f64,
    decode_once_s: f64,
    files_s: f64,
    files_bytes: u64,
    files_no_chain_s: Option<f64>,
    files_seeded_s: f64,
    files_driven_s: Option<f64>,
}

/// The two hosts driven through the sizes: on `MemStore`, and on `LogStore` in memory.
struct Run {
    mem: Host<Intake, MemStore>,
    mem_driver: Driver,
    log: Host<Intake, LogStore<MemStorage>>,
    log_driver: Driver,
    drive_s: f64,
}

impl Run {
    fn new(cycle_gap: Ts, members: u64, config: Config) -> Run {
        let mut mem_driver = Driver::new(cycle_gap, members);
        let mut mem = Host::new(Service::Intake, intake);
        mem.recover(mem_driver.now, &mut mem_driver.io).unwrap();
        let mut log_driver = Driver::new(cycle_gap, members);
        let store = LogStore::create_with(MemStorage::new(), 1, config).unwrap();
        let mut log = Host::with_store(Service::Intake, intake, store);
        log.recover(log_driver.now, &mut log_driver.io).unwrap();
        Run {
            mem,
            mem_driver,
            log,
            log_driver,
            drive_s: 0.0,
        }
    }

    fn run_to(&mut self, inputs: u64) {
        let ((), s) = timed(|| self.mem_driver.run_to(&mut self.mem, inputs));
        self.drive_s += s;
        self.log_driver.run_to(&mut self.log, inputs);
    }
}

/// Measures recovery from what the hosts of `run` have in their stores now.
fn measure(args: &Args, root: &Path, label: String, run: &mut Run) -> Row {
    let host = &mut run.mem;
    let n = host.state().inputs;
    let loaded = host.store_mut().load().unwrap();
    let want = fingerprint(host);
    let now = run.mem_driver.now + 1;
    let tail_bytes = loaded.records.iter().map(|r| r.len() as u64).sum();
    let snapshot_bytes = loaded.snapshot.as_ref().map_or(0, |s| s.len() as u64);
    // The snapshot's two parts: the host's state (its header) and the process's.
    let (host_bytes, process_bytes) = loaded.snapshot.as_ref().map_or((0, 0), |s| {
        let (_, body) = decode_snapshot(s).unwrap();
        (s.len() - body.len(), body.len())
    });
    println!(
        "{label}: {n} inputs driven in {:.1} s ({:.0} inputs/s), {} snapshots, snapshot \
         {snapshot_bytes} B (host state {host_bytes} B, intake {process_bytes} B), tail {} \
         records ({tail_bytes} B)",
        run.drive_s,
        n as f64 / run.drive_s,
        host.stats().snapshots,
        loaded.records.len(),
    );

    let mem = || mem_store(&loaded, true);
    let (mem_s, tail) = time_recovery(args.reps, now, &want, mem, false);
    // The snapshot alone: what restoring it costs, without the tail.
    let mem_snapshot_only_s = if loaded.snapshot.is_some() {
        let mut secs = Vec::new();
        for _ in 0..args.reps {
            let mut h = Host::with_store(Service::Intake, intake, mem_store(&loaded, false));
            let ((), s) = timed(|| {
                h.recover(now, &mut NullIo).unwrap();
            });
            secs.push(s);
        }
        median(secs)
    } else {
        0.0
    };
    // Decoding the tail's records once (recovery decodes each twice: the version check, then
    // the replay).
    let decode_once_s = median(
        (0..args.reps)
            .map(|_| {
                let (records, s) = timed(|| {
                    let decoded = loaded.records.iter().map(|r| decode_record(r).unwrap());
                    decoded.count()
                });
                assert_eq!(records, loaded.records.len());
                s
            })
            .collect(),
    );
    println!(
        "  MemStore: recovery {:.2} ms (the snapshot alone {:.2} ms; decoding the tail once \
         {:.2} ms)",
        mem_s * 1e3,
        mem_snapshot_only_s * 1e3,
        decode_once_s * 1e3,
    );

    // The files a host on LogStore leaves, byte for byte.
    assert_eq!(run.log.state().inputs, n);
    assert!(fingerprint(&run.log) == want, "the two hosts differ");
    let written = root.join(format!("written-{n}"));
    let storage = run.log.store().storage().expect("the log's storage");
    write_files(&written, storage);
    let files_bytes = dir_bytes(&written);
    let (files_s, t) = time_file_recovery(args.reps, now, &want, &written);
    assert_eq!(t, tail);
    let listing: Vec<String> = storage
        .files
        .iter()
        .map(|(name, bytes)| format!("{name} {} B", bytes.len()))
        .collect();
    println!(
        "  files as the host left them ({files_bytes} B: {}): recovery {:.2} ms",
        listing.join(", "),
        files_s * 1e3
    );

    // The same files without the chain archive (the headers of every record compaction
    // removed, which opening for writing reads and checks in full): what the archive costs.
    let chain = written.join("chain");
    let files_no_chain_s = if chain.exists() {
        std::fs::remove_file(&chain).unwrap();
        let (s, t) = time_file_recovery(args.reps, now, &want, &written);
        assert_eq!(t, tail);
        println!(
            "  the same without the chain archive: recovery {:.2} ms",
            s * 1e3
        );
        write_files(&written, storage);
        Some(s)
    } else {
        None
    };

    // A log holding only the snapshot and its tail.
    let seeded = root.join(format!("seeded-{n}"));
    seed_files(&seeded, &loaded);
    let (files_seeded_s, t) = time_file_recovery(args.reps, now, &want, &seeded);
    assert_eq!(t, tail);
    println!(
        "  files with only the snapshot and the tail ({} B): recovery {:.2} ms",
        dir_bytes(&seeded),
        files_seeded_s * 1e3
    );
    let _ = std::fs::remove_dir_all(&seeded);

    // The host driven on the real files: the same files, and the fsyncs' cost.
    let files_driven_s = (n <= args.file_driven_max).then(|| {
        let dir = root.join(format!("driven-{n}"));
        let storage = FileStorage::open(&dir, Mode::ReadWrite).expect("open dir");
        let store = LogStore::create_with(storage, 1, args.config).expect("create log");
        let mut d = Driver::new(args.cycle_gap, args.members);
        let mut h = Host::with_store(Service::Intake, intake, store);
        h.recover(d.now, &mut d.io).unwrap();
        let ((), s) = timed(|| d.run_to(&mut h, n));
        assert!(fingerprint(&h) == want);
        drop(h);
        assert!(
            read_files(&dir) == read_files(&written),
            "the host on files left other files than the host on MemStorage"
        );
        let (r, t) = time_file_recovery(args.reps, now, &want, &dir);
        assert_eq!(t, tail);
        println!(
            "  driven on the files: {n} inputs in {s:.1} s ({:.0} inputs/s), the same files; \
             recovery {:.2} ms",
            n as f64 / s,
            r * 1e3
        );
        let _ = std::fs::remove_dir_all(&dir);
        r
    });
    let _ = std::fs::remove_dir_all(&written);

    Row {
        label,
        inputs: n,
        tail,
        tail_bytes,
        snapshot_bytes,
        snapshot_inputs: n - tail,
        snapshots: run.mem.stats().snapshots,
        mem_s,
        mem_snapshot_only_s,
        decode_once_s,
        files_s,
        files_bytes,
        files_no_chain_s,
        files_seeded_s,
        files_driven_s,
    }
}

fn main() {
    let args = args();
    let root = args.dir.join("host-recovery");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    println!(
        "intake, {} members cycling, one cycle every {} s of virtual time; default \
         snapshot policy; log segments of {} MiB; files under {}",
        args.members,
        args.cycle_gap / NS_PER_SEC,
        args.config.segment_bytes_max >> 20,
        root.display()
    );

    let mut run = Run::new(args.cycle_gap, args.members, args.config);
    let mut rows = Vec::new();
    for &n in &args.sizes {
        run.run_to(n);
        rows.push(measure(&args, &root, format!("{n}"), &mut run));
    }
    // The worst case after the largest size: the longest tail the policy lets grow, one
    // record short of the next snapshot (by records, or by bytes: two records' worth short).
    let every_records = SnapshotPolicy::default().every_records;
    loop {
        let (records, bytes, bytes_due) = run.mem.since_snapshot();
        let record_bytes = bytes / records.max(1);
        if records + 1 >= every_records || bytes + 2 * record_bytes >= bytes_due {
            break;
        }
        let next = run.mem.state().inputs + 1;
        run.run_to(next);
    }
    let largest = args.sizes.last().copied().unwrap_or(0);
    let label = format!("{largest}+, longest tail");
    rows.push(measure(&args, &root, label, &mut run));
    let _ = std::fs::remove_dir_all(&root);

    println!();
    println!(
        "| point | inputs handled | snapshots taken | snapshot covers | snapshot size | tail at \
         recovery | MemStore | of which: snapshot alone, tail decoded once | files as the host \
         left them | files, driven with fsyncs | the same without the chain archive | files, \
         snapshot + tail only |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let ms = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{:.2} ms", s * 1e3));
    for r in &rows {
        println!(
            "| {} | {} | {} | {} inputs | {:.2} MiB | {} records ({:.2} MiB) | {:.2} ms | {:.2} \
             ms, {:.2} ms | {:.2} ms ({:.2} MiB) | {} | {} | {:.2} ms |",
            r.label,
            r.inputs,
            r.snapshots,
            r.snapshot_inputs,
            mib(r.snapshot_bytes),
            r.tail,
            mib(r.tail_bytes),
            r.mem_s * 1e3,
            r.mem_snapshot_only_s * 1e3,
            r.decode_once_s * 1e3,
            r.files_s * 1e3,
            mib(r.files_bytes),
            ms(r.files_driven_s),
            ms(r.files_no_chain_s),
            r.files_seeded_s * 1e3,
        );
    }
    let spread = |v: &[f64]| {
        let max = v.iter().copied().fold(f64::MIN, f64::max);
        let min = v.iter().copied().fold(f64::MAX, f64::min);
        max / min
    };
    let sizes = &rows[..rows.len() - 1];
    let mem: Vec<f64> = sizes.iter().map(|r| r.mem_s).collect();
    let files: Vec<f64> = sizes.iter().map(|r| r.files_s).collect();
    println!();
    println!(
        "slowest / fastest recovery over the sizes {:?}: MemStore {:.2}, files {:.2} (target: at \
         most 2)",
        args.sizes,
        spread(&mem),
        spread(&files)
    );
    let mem: Vec<f64> = rows.iter().map(|r| r.mem_s).collect();
    let files: Vec<f64> = rows.iter().map(|r| r.files_s).collect();
    println!(
        "the same with the longest tail too: MemStore {:.2}, files {:.2}",
        spread(&mem),
        spread(&files)
    );
}
