//! The platform's own ledger traffic on TigerBeetle, against TigerBeetle's raw throughput in the
//! same run, on the same machine and cluster.
//!
//! ```sh
//! tools/tigerbeetle.sh up
//! cargo run --release -p acme-bench --features tigerbeetle --bin tb_platform_bench -- \
//!     --address 127.0.0.1:3000
//! ```
//!
//! 1. **Raw**: the bare client, two accounts, plain transfers with sequential ids, full batches
//!    of 8189 (as `tb_raw_bench`), with 1 and with `--in-flight` (default 4) requests queued;
//!    the better of the two is the raw figure.
//! 2. **Simulated days, as submitted**: a seeded simulation (`--members`, `--days`, `--seed`;
//!    default 100,000 members, 5 days) runs on MemLedger behind a recorder that keeps every
//!    `create_accounts` / `create_transfers` call the platform makes, in order, with its
//!    results. Its accounts are then created on the cluster, and its transfer batches replayed
//!    *in the same batches* (mostly one or two transfers: a batch per instruction and step),
//!    in order, through the adapter: the first `--single-calls` (default 5,000, first round only) one request
//!    each, waiting for each reply (as one host does), the rest with
//!    `TigerBeetleLedger::create_transfers_batches`, which packs consecutive batches into full
//!    requests, each batch keeping its own results and chains (what TigerBeetle's client does
//!    with concurrent requests, but in order). Every result must equal the one MemLedger gave,
//!    so the replay is the same work.
//! 3. **Platform shapes in full batches**: for `--members` members, the buy cycle's ledger
//!    shapes in batches of 8189: reservations (pending transfers from member cash), linked pairs
//!    (post of the reservation + pending allocation of units), and posts of the allocations.
//!
//! The three are measured in `--rounds` (default 3) interleaved rounds, and the medians
//! compared. Ids are XOR-ed with a salt drawn per replay, so the replays (and the benchmark) can
//! run again on the same cluster (TigerBeetle gives ids no meaning but 0 and `u128::MAX`).
//! Prints one JSON object.
//!
//! An adapter binary: it reads the wall clock and the environment.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use acme_ledger::chart::{self, AccountKind};
use acme_ledger::{
    Account, AccountFilter, AccountFlags, CreateAccountResult, CreateTransferResult, Ledger,
    LedgerError, MemLedger, QueryFilter, Transfer, TransferFlags, BATCH_EVENTS_MAX,
};
use acme_ledger_tigerbeetle::{drive, TigerBeetleLedger};
use acme_sim::world::{SimBackend, SimClock};
use acme_sim::{SimConfig, World};
use tigerbeetle_unofficial as tb;

struct Options {
    address: String,
    members: u64,
    days: u32,
    seed: u64,
    in_flight: usize,
    raw_transfers: u64,
    single_calls: usize,
    rounds: usize,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        address: std::env::var("TB_ADDRESS").unwrap_or_else(|_| "127.0.0.1:3000".to_owned()),
        members: 100_000,
        days: 5,
        seed: 1,
        in_flight: 4,
        raw_transfers: 2_000_000,
        single_calls: 5_000,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--address" => o.address = value()?,
            "--members" => o.members = number(value()?)?,
            "--days" => o.days = number(value()?)? as u32,
            "--seed" => o.seed = number(value()?)?,
            "--in-flight" => o.in_flight = number(value()?)?.max(1) as usize,
            "--raw-transfers" => o.raw_transfers = number(value()?)?.max(1),
            "--single-calls" => o.single_calls = number(value()?)? as usize,
            "--rounds" => o.rounds = number(value()?)?.max(1) as usize,
            "-h" | "--help" => {
                return Err(
                    "usage: tb_platform_bench [--address A] [--members N] [--days D] \
                            [--seed S] [--in-flight N] [--raw-transfers N] [--single-calls N] [--rounds N]"
                        .to_owned(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(1);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tb_platform_bench: {message}");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recording the platform's calls.

enum Call {
    Accounts(Vec<Account>, Vec<CreateAccountResult>),
    Transfers(Vec<Transfer>, Vec<CreateTransferResult>),
}

/// MemLedger that keeps every create call and its results.
struct Recorder {
    inner: MemLedger,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Ledger for Recorder {
    fn create_accounts(&mut self, b: &[Account]) -> Result<Vec<CreateAccountResult>, LedgerError> {
        let r = self.inner.create_accounts(b)?;
        let call = Call::Accounts(b.to_vec(), r.clone());
        self.calls.lock().expect("lock").push(call);
        Ok(r)
    }
    fn create_transfers(
        &mut self,
        b: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        let r = self.inner.create_transfers(b)?;
        let call = Call::Transfers(b.to_vec(), r.clone());
        self.calls.lock().expect("lock").push(call);
        Ok(r)
    }
    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        self.inner.lookup_accounts(ids)
    }
    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        self.inner.lookup_transfers(ids)
    }
    fn get_account_transfers(&mut self, f: &AccountFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.inner.get_account_transfers(f)
    }
    fn query_transfers(&mut self, f: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.inner.query_transfers(f)
    }
    fn query_accounts(&mut self, f: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        self.inner.query_accounts(f)
    }
}

impl SimBackend for Recorder {
    fn all_accounts(&mut self) -> Vec<Account> {
        self.inner.accounts().to_vec()
    }
    fn as_mem(&self) -> Option<&MemLedger> {
        Some(&self.inner)
    }
}

// ---------------------------------------------------------------------------------------------
// Salted ids.

fn salted(salt: u128, id: u128) -> u128 {
    if id == 0 {
        return 0;
    }
    let s = id ^ salt;
    assert!(s != 0 && s != u128::MAX, "an unlucky salt");
    s
}

fn salt_account(salt: u128, a: &Account) -> Account {
    Account {
        id: salted(salt, a.id),
        ..*a
    }
}

fn salt_transfer(salt: u128, t: &Transfer) -> Transfer {
    Transfer {
        id: salted(salt, t.id),
        debit_account_id: salted(salt, t.debit_account_id),
        credit_account_id: salted(salt, t.credit_account_id),
        pending_id: salted(salt, t.pending_id),
        ..*t
    }
}

fn per_s(count: u64, seconds: f64) -> f64 {
    (count as f64 / seconds).round()
}

// ---------------------------------------------------------------------------------------------

fn run(o: &Options) -> Result<(), String> {
    let mut ledger = TigerBeetleLedger::connect(0, &o.address).map_err(|e| e.to_string())?;
    ledger.ping().map_err(|e| e.to_string())?;
    let client = tb::Client::new(0, o.address.as_str()).map_err(|e| e.to_string())?;

    // The platform's calls, recorded once.
    let calls = Arc::new(Mutex::new(Vec::new()));
    let clock = Arc::new(SimClock::default());
    let recorder = Recorder {
        inner: MemLedger::new(clock.clone()),
        calls: calls.clone(),
    };
    let sim_started = Instant::now();
    let cfg = SimConfig::new(o.seed, o.days, o.members);
    let summary = World::with_ledger(cfg, clock, Box::new(recorder)).run();
    if !summary.ok() {
        return Err(format!("the simulation failed: {:?}", summary.violations));
    }
    let sim_seconds = sim_started.elapsed().as_secs_f64();
    let calls = std::mem::take(&mut *calls.lock().expect("lock"));
    let account_calls = calls
        .iter()
        .filter(|c| matches!(c, Call::Accounts(..)))
        .count();
    let transfer_calls = calls.len() - account_calls;
    let (accounts, transfers, one_or_two) = calls.iter().fold((0, 0, 0), |(a, t, s), c| match c {
        Call::Accounts(b, _) => (a + b.len() as u64, t, s),
        Call::Transfers(b, _) => (a, t + b.len() as u64, s + usize::from(b.len() <= 2)),
    });
    eprintln!(
        "simulation: {} members, {} days: {accounts} accounts in {account_calls} calls, \
         {transfers} transfers in {transfer_calls} calls ({one_or_two} of one or two), recorded \
         in {sim_seconds:.1} s",
        o.members, o.days
    );

    // Rounds of raw, replay and shapes, interleaved so that the cluster's state (its LSM
    // compactions, the machine's other load) weighs on all three alike.
    let mut rounds = Vec::new();
    for round in 0..o.rounds {
        let raw_1 = raw(&client, o.raw_transfers, 1)?;
        let raw_n = raw(&client, o.raw_transfers, o.in_flight)?;
        let single_calls = if round == 0 { o.single_calls } else { 0 };
        let replay = replay(&mut ledger, &calls, single_calls)?;
        let shapes = shapes(&mut ledger, o.members)?;
        let shapes_total = shapes.iter().map(|s| s.1).sum::<u64>();
        let shapes_seconds = shapes.iter().map(|s| s.2).sum::<f64>();
        let r = serde_json::json!({
            "raw_per_s_in_flight_1": raw_1,
            "raw_per_s_in_flight_n": raw_n,
            "raw_per_s": raw_1.max(raw_n),
            "replay": replay,
            "shapes": shapes.iter().map(|(name, n, s)| serde_json::json!({
                "shape": name, "transfers": n, "seconds": (s * 1000.0).round() / 1000.0,
                "transfers_per_s": per_s(*n, *s),
            })).collect::<Vec<_>>(),
            "shapes_per_s": per_s(shapes_total, shapes_seconds),
        });
        eprintln!("round {round}: {r}");
        rounds.push(r);
    }
    let median = |key: &dyn Fn(&serde_json::Value) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(key).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let raw_median = median(&|r| r["raw_per_s"].as_f64().unwrap_or(0.0));
    let replay_median = median(&|r| r["replay"]["packed_per_s"].as_f64().unwrap_or(0.0));
    let shapes_median = median(&|r| r["shapes_per_s"].as_f64().unwrap_or(0.0));
    let share = |x: f64| (x / raw_median * 1000.0).round() / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "bench": "tb_platform",
            "address": o.address,
            "in_flight_raw": o.in_flight,
            "raw_transfers": o.raw_transfers,
            "sim": {
                "members": o.members, "days": o.days, "seed": o.seed,
                "accounts": accounts, "account_calls": account_calls,
                "transfers": transfers, "transfer_calls": transfer_calls,
                "calls_of_one_or_two": one_or_two,
            },
            "rounds": rounds,
            "median": {
                "raw_per_s": raw_median,
                "replay_packed_per_s": replay_median,
                "replay_share_of_raw": share(replay_median),
                "shapes_per_s": shapes_median,
                "shapes_share_of_raw": share(shapes_median),
            },
        })
    );
    Ok(())
}

/// Replays the recorded calls with fresh (salted) ids: the accounts, then the transfers, the
/// first `single_calls` one request each and the rest packed; every result must be MemLedger's.
fn replay(
    ledger: &mut TigerBeetleLedger,
    calls: &[Call],
    single_calls: usize,
) -> Result<serde_json::Value, String> {
    let salt = tb::id() ^ (tb::id() << 64);
    let mut account_batches = Vec::new();
    let mut account_results = Vec::new();
    let mut transfer_batches = Vec::new();
    let mut transfer_results = Vec::new();
    for call in calls {
        match call {
            Call::Accounts(b, r) => {
                account_batches.push(b.iter().map(|a| salt_account(salt, a)).collect::<Vec<_>>());
                account_results.push(r.clone());
            }
            Call::Transfers(b, r) if !b.is_empty() => {
                transfer_batches.push(b.iter().map(|t| salt_transfer(salt, t)).collect::<Vec<_>>());
                transfer_results.push(r.clone());
            }
            Call::Transfers(..) => {}
        }
    }
    // Accounts first (each is created before the transfers that use it, in the recording
    // too), then the transfers.
    let accounts: u64 = account_batches.iter().map(|b| b.len() as u64).sum();
    let started = Instant::now();
    let got = ledger
        .create_accounts_batches(&account_batches)
        .map_err(|e| e.to_string())?;
    let accounts_seconds = started.elapsed().as_secs_f64();
    if let Some(i) = (0..got.len()).find(|&i| got[i] != account_results[i]) {
        return Err(format!(
            "create_accounts batch {i} of {}: TigerBeetle {:?}, MemLedger {:?}",
            got.len(),
            got[i],
            account_results[i]
        ));
    }
    // The first calls one request each, in order, waiting for each reply (as one host does);
    // the rest packed in order into full requests.
    let single = single_calls.min(transfer_batches.len());
    let started = Instant::now();
    let mut got = Vec::with_capacity(transfer_batches.len());
    for batch in &transfer_batches[..single] {
        got.push(ledger.create_transfers(batch).map_err(|e| e.to_string())?);
    }
    let single_seconds = started.elapsed().as_secs_f64();
    let single_transfers: u64 = transfer_batches[..single]
        .iter()
        .map(|b| b.len() as u64)
        .sum();
    let started = Instant::now();
    got.extend(
        ledger
            .create_transfers_batches(&transfer_batches[single..])
            .map_err(|e| e.to_string())?,
    );
    let packed_seconds = started.elapsed().as_secs_f64();
    let packed_transfers: u64 = transfer_batches[single..]
        .iter()
        .map(|b| b.len() as u64)
        .sum();
    if let Some(i) = (0..got.len()).find(|&i| got[i] != transfer_results[i]) {
        return Err(format!(
            "create_transfers batch {i}: TigerBeetle {:?}, MemLedger {:?}",
            got[i], transfer_results[i]
        ));
    }
    Ok(serde_json::json!({
        "accounts_per_s": per_s(accounts, accounts_seconds),
        "single_calls": single,
        "single_transfers": single_transfers,
        "single_per_s": if single > 0 { per_s(single_transfers, single_seconds) } else { 0.0 },
        "packed_transfers": packed_transfers,
        "packed_seconds": (packed_seconds * 1000.0).round() / 1000.0,
        "packed_per_s": per_s(packed_transfers, packed_seconds),
    }))
}

/// The raw figure: two accounts, plain transfers, full batches, `in_flight` queued.
fn raw(client: &tb::Client, transfers: u64, in_flight: usize) -> Result<f64, String> {
    let base = (tb::id() >> 64) << 64;
    let (debit, credit) = (base + 1, base + 2);
    let accounts = vec![
        tb::Account::new(debit, 1, 1),
        tb::Account::new(credit, 1, 1),
    ];
    drive(std::iter::once(client.create_accounts(accounts)), 1, None)
        .map_err(|e| format!("create_accounts: {e:?}"))?
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .map_err(|e| format!("create_accounts: {e}"))?;
    let batch = BATCH_EVENTS_MAX as u64;
    let prepared: Vec<Vec<tb::Transfer>> = (0..transfers.div_ceil(batch))
        .map(|b| {
            (b * batch..((b + 1) * batch).min(transfers))
                .map(|i| {
                    tb::Transfer::new(base + 1_000 + u128::from(i))
                        .with_debit_account_id(debit)
                        .with_credit_account_id(credit)
                        .with_amount(1)
                        .with_ledger(1)
                        .with_code(1)
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let replies = drive(
        prepared.into_iter().map(|b| client.create_transfers(b)),
        in_flight,
        None,
    )
    .map_err(|e| format!("{e:?}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(Err(e)) = replies.into_iter().find(|r| r.is_err()) {
        return Err(format!("raw batch failed: {e}"));
    }
    Ok(per_s(transfers, seconds))
}

/// The buy cycle's shapes for `members` members, in full batches: (shape, transfers, seconds).
fn shapes(ledger: &mut TigerBeetleLedger, members: u64) -> Result<Vec<(String, u64, f64)>, String> {
    let salt = tb::id() ^ (tb::id() << 64);
    let fund_ledger = chart::fund_ledger(1);
    let cash = chart::LEDGER_CASH_GBP;
    let house = |kind, ledger| salted(salt, chart::house(kind, ledger));
    let bank = house(AccountKind::Bank, cash);
    let trading_cash = house(AccountKind::AcmeTrading, cash);
    let trading_units = house(AccountKind::AcmeTrading, fund_ledger);
    let custodian_units = house(AccountKind::CustodianSettled, fund_ledger);
    let mut accounts = vec![
        Account {
            id: bank,
            ledger: cash,
            code: AccountKind::Bank.code(),
            ..Account::default()
        },
        Account {
            id: trading_cash,
            ledger: cash,
            code: AccountKind::AcmeTrading.code(),
            ..Account::default()
        },
        Account {
            id: trading_units,
            ledger: fund_ledger,
            code: AccountKind::AcmeTrading.code(),
            ..Account::default()
        },
        Account {
            id: custodian_units,
            ledger: fund_ledger,
            code: AccountKind::CustodianSettled.code(),
            ..Account::default()
        },
    ];
    let member_cash = |m: u64| salted(salt, chart::member_cash(m));
    let member_units = |m: u64| salted(salt, chart::member_units(m, 1));
    for m in 1..=members {
        for (id, ledger, kind) in [
            (member_cash(m), cash, AccountKind::MemberCash),
            (member_units(m), fund_ledger, AccountKind::MemberUnits),
        ] {
            accounts.push(Account {
                id,
                ledger,
                code: kind.code(),
                flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
                ..Account::default()
            });
        }
    }
    let batches: Vec<Vec<Account>> = accounts
        .chunks(BATCH_EVENTS_MAX)
        .map(<[Account]>::to_vec)
        .collect();
    let results = ledger
        .create_accounts_batches(&batches)
        .map_err(|e| e.to_string())?;
    if results
        .iter()
        .flatten()
        .any(|r| *r != CreateAccountResult::Ok)
    {
        return Err("shape accounts were not all created".into());
    }

    let id = |shape: u128, m: u64| salted(salt, (shape << 96) | u128::from(m));
    let plain = |id, debit, credit, ledger, amount| Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger,
        code: 1,
        ..Transfer::default()
    };
    // Funding (contributions) and the custodian's units to allocate: not timed.
    let mut setup: Vec<Transfer> = (1..=members)
        .map(|m| plain(id(1, m), bank, member_cash(m), cash, 10_000))
        .collect();
    setup.push(plain(
        id(1, 0),
        custodian_units,
        trading_units,
        fund_ledger,
        u128::from(members) * 1_000_000,
    ));
    let mut out = Vec::new();
    let reservations: Vec<Transfer> = (1..=members)
        .map(|m| Transfer {
            flags: TransferFlags::PENDING,
            ..plain(id(2, m), member_cash(m), trading_cash, cash, 5_000)
        })
        .collect();
    let pairs: Vec<Transfer> = (1..=members)
        .flat_map(|m| {
            [
                Transfer {
                    id: id(3, m),
                    pending_id: id(2, m),
                    amount: u128::MAX,
                    flags: TransferFlags::POST_PENDING_TRANSFER | TransferFlags::LINKED,
                    ..Transfer::default()
                },
                Transfer {
                    flags: TransferFlags::PENDING,
                    ..plain(
                        id(4, m),
                        trading_units,
                        member_units(m),
                        fund_ledger,
                        1_000_000,
                    )
                },
            ]
        })
        .collect();
    let posts: Vec<Transfer> = (1..=members)
        .map(|m| Transfer {
            id: id(5, m),
            pending_id: id(4, m),
            amount: u128::MAX,
            flags: TransferFlags::POST_PENDING_TRANSFER,
            ..Transfer::default()
        })
        .collect();
    for (name, transfers, timed) in [
        ("setup", setup, false),
        ("reservations (pending)", reservations, true),
        ("linked post + pending pairs", pairs, true),
        ("posts of the pending allocations", posts, true),
    ] {
        // Full batches; a pair is never split (8188 events when pairs are batched).
        let per_batch = if name.starts_with("linked") {
            BATCH_EVENTS_MAX - 1
        } else {
            BATCH_EVENTS_MAX
        };
        let batches: Vec<Vec<Transfer>> = transfers
            .chunks(per_batch)
            .map(<[Transfer]>::to_vec)
            .collect();
        let started = Instant::now();
        let results = ledger
            .create_transfers_batches(&batches)
            .map_err(|e| e.to_string())?;
        let seconds = started.elapsed().as_secs_f64();
        if let Some(r) = results
            .iter()
            .flatten()
            .find(|r| **r != CreateTransferResult::Ok)
        {
            return Err(format!("{name}: a transfer failed with {r:?}"));
        }
        if timed {
            out.push((name.to_string(), transfers.len() as u64, seconds));
        }
    }
    Ok(out)
}
