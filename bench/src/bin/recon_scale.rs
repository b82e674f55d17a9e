//! Reconciliation at scale: 5,000,000 members with 5 funds each (30 million accounts), internal
//! and positions levels, from an export on disk, as `acme recon` reads it: wall time and peak
//! memory.
//!
//! `cargo run --release -p acme-bench --bin recon_scale [-- MEMBERS DIR [--journal]]`
//!
//! With `--journal` the export also holds a complete journal that explains every balance
//! (13 transfers a member: 65 million at 5M members, pending transfers and their posts among
//! them), for `acme recon` to replay; the in-process figure still reads the accounts alone.
//!
//! It first writes a consistent ledger export (member cash and unit accounts with seeded
//! balances, the house accounts holding the totals: every ledger balances and every fund's pots
//! equal the custodian mirror) and the custodian's holdings statement to DIR (default
//! `$TMPDIR/acme-recon-scale`, 3.8 GB at 5M members), streaming, then reconciles it through the
//! same reader, scanner and engine as `acme recon --ledger DIR --holdings FILE`, and prints one
//! JSON object. The reconciliation must come out clean (with one planted change it must not: the
//! bench checks both, the second on the statement only). The files are left for a run of the
//! binary itself (the command is printed); delete DIR afterwards.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_bench::{peak_rss_bytes, timed};
use acme_ledger::chart::{self, AccountKind, FundId, LEDGER_CASH_GBP};
use acme_ledger::export::{
    encode_account, encode_transfer, read_accounts, write_records, write_transfers, RecordKind,
};
use acme_ledger::{Transfer, TransferFlags};
use acme_processes::calendar::Date;
use acme_processes::recon::holdings::{
    holdings_csv, parse_holdings, Expect, HoldingLine, HoldingsStatement,
};
use acme_processes::recon::ledger::{
    LedgerScan, Manifest, ACCOUNTS_FILE, MANIFEST_FILE, TRANSFERS_FILE,
};
use acme_processes::recon::{reconcile, ReconConfig, Statements, DEFAULT_CUSTODIAN_ACCOUNT};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const FUNDS: [FundId; 5] = [1, 2, 3, 4, 5];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Writes the export; returns the holdings statement that matches it.
fn generate(dir: &Path, members: u64, as_of: Date, journal: bool) -> HoldingsStatement {
    std::fs::create_dir_all(dir.join("ledger")).expect("create dir");
    let per_member = 1 + FUNDS.len() as u64;
    let house: Vec<acme_ledger::Account> = chart::house_accounts(&FUNDS);
    let count = members * per_member + house.len() as u64;
    let mut contributed: u128 = 0;
    let mut spent: u128 = 0;
    let mut units = [0u128; FUNDS.len()];
    let file =
        std::fs::File::create(dir.join("ledger").join(ACCOUNTS_FILE)).expect("create accounts");
    let mut w = BufWriter::with_capacity(8 << 20, file);
    let mut timestamp = 1u64;
    write_records(&mut w, RecordKind::Accounts, count, |i| {
        timestamp += 1;
        if i < members * per_member {
            let member = i / per_member + 1;
            let slot = i % per_member;
            let r = splitmix(i);
            if slot == 0 {
                // Contributions and what was spent on buys.
                let c = 10_000 + r % 5_000_000;
                let s = c / 2 + (r >> 32) % (c / 2);
                contributed += c as u128;
                spent += s as u128;
                let mut a = chart::account(AccountKind::MemberCash, LEDGER_CASH_GBP, member);
                a.credits_posted = c as u128;
                a.debits_posted = s as u128;
                a.timestamp = timestamp;
                encode_account(&a)
            } else {
                let fund = FUNDS[slot as usize - 1];
                let u = r % 2_000_000_000;
                units[slot as usize - 1] += u as u128;
                let mut a =
                    chart::account(AccountKind::MemberUnits, chart::fund_ledger(fund), member);
                a.credits_posted = u as u128;
                a.timestamp = timestamp;
                encode_account(&a)
            }
        } else {
            let mut a = house[(i - members * per_member) as usize];
            a.timestamp = timestamp;
            match (
                chart::decode_account_id(a.id).expect("house").0,
                chart::ledger_fund(a.ledger),
            ) {
                (AccountKind::Bank, None) => a.debits_posted = contributed,
                (AccountKind::CustodianSettled, None) => a.credits_posted = spent,
                (AccountKind::CustodianSettled, Some(f)) => a.debits_posted = units[f as usize - 1],
                _ => {}
            }
            encode_account(&a)
        }
    })
    .expect("write accounts");
    w.flush().expect("flush");
    let transfers = write_journal(dir, members, journal, timestamp);
    let manifest = Manifest {
        as_of,
        accounts: count,
        transfers,
        journal_complete: journal,
        settlement_lag_days: 2,
        source: format!("recon_scale {members} members"),
    };
    std::fs::write(dir.join("ledger").join(MANIFEST_FILE), manifest.render()).expect("manifest");
    let st = HoldingsStatement {
        file: String::new(),
        date: as_of,
        custodian_account: DEFAULT_CUSTODIAN_ACCOUNT.to_string(),
        lines: FUNDS
            .iter()
            .enumerate()
            .map(|(i, &fund)| HoldingLine {
                line: i as u64 + 2,
                fund,
                settled_units: units[i] as i128,
                pending_units: 0,
            })
            .collect(),
    };
    std::fs::write(dir.join("holdings.csv"), holdings_csv(&st)).expect("holdings");
    st
}

/// Transfers per member in the journal: a contribution, a buy reserved (pending) and posted,
/// and each fund's units delivered in two lots.
const TRANSFERS_PER_MEMBER: u64 = 3 + 2 * FUNDS.len() as u64;

/// The journal that explains the accounts' balances (with `journal`; otherwise an empty file):
/// per member, the contribution from the bank, the spending reserved then posted to the
/// custodian's settled cash, and each fund's units delivered from the custodian in two lots.
/// Recomputes each member's figures from the same seeds as the accounts. Returns the count.
fn write_journal(dir: &Path, members: u64, journal: bool, mut timestamp: u64) -> u64 {
    let file =
        std::fs::File::create(dir.join("ledger").join(TRANSFERS_FILE)).expect("create transfers");
    let mut w = BufWriter::with_capacity(8 << 20, file);
    if !journal {
        write_transfers(&mut w, &[]).expect("write transfers");
        return 0;
    }
    let per_member = 1 + FUNDS.len() as u64;
    let count = members * TRANSFERS_PER_MEMBER;
    let bank = chart::house(AccountKind::Bank, LEDGER_CASH_GBP);
    let custody_cash = chart::house(AccountKind::CustodianSettled, LEDGER_CASH_GBP);
    let mut current: Vec<Transfer> = Vec::new();
    write_records(&mut w, RecordKind::Transfers, count, |i| {
        let (member, k) = (i / TRANSFERS_PER_MEMBER + 1, i % TRANSFERS_PER_MEMBER);
        if k == 0 {
            current = member_journal(member, per_member, bank, custody_cash);
        }
        timestamp += 1;
        let mut t = current[k as usize];
        t.id = 0xB0_0000_0000 + i as u128 + 1;
        if t.flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
            t.pending_id = t.id - 1;
        }
        t.timestamp = timestamp;
        encode_transfer(&t)
    })
    .expect("write transfers");
    w.flush().expect("flush");
    count
}

/// One member's transfers (ids and timestamps left to the caller).
fn member_journal(member: u64, per_member: u64, bank: u128, custody_cash: u128) -> Vec<Transfer> {
    let base = (member - 1) * per_member;
    let r = splitmix(base);
    let c = 10_000 + r % 5_000_000;
    let spent = c / 2 + (r >> 32) % (c / 2);
    let cash = chart::member_cash(member);
    let t = |dr: u128, cr: u128, ledger: u32, amount: u64, flags: TransferFlags| Transfer {
        debit_account_id: dr,
        credit_account_id: cr,
        amount: amount as u128,
        ledger,
        code: 1,
        flags,
        ..Transfer::default()
    };
    let mut v = vec![
        t(bank, cash, LEDGER_CASH_GBP, c, TransferFlags::NONE),
        t(
            cash,
            custody_cash,
            LEDGER_CASH_GBP,
            spent,
            TransferFlags::PENDING,
        ),
        t(
            cash,
            custody_cash,
            LEDGER_CASH_GBP,
            spent,
            TransferFlags::POST_PENDING_TRANSFER,
        ),
    ];
    for (slot, &fund) in FUNDS.iter().enumerate() {
        let u = splitmix(base + slot as u64 + 1) % 2_000_000_000;
        let ledger = chart::fund_ledger(fund);
        let custodian = chart::house(AccountKind::CustodianSettled, ledger);
        let units = chart::member_units(member, fund);
        v.push(t(custodian, units, ledger, u / 2, TransferFlags::NONE));
        v.push(t(custodian, units, ledger, u - u / 2, TransferFlags::NONE));
    }
    v
}

/// What `acme recon --ledger DIR --holdings DIR/holdings.csv` does, minus printing.
fn recon(dir: &Path, holdings_text: &str) -> (acme_processes::recon::Report, u64) {
    let ledger = dir.join("ledger");
    let manifest = Manifest::parse(
        "manifest",
        &std::fs::read_to_string(ledger.join(MANIFEST_FILE)).expect("manifest"),
    )
    .expect("valid manifest");
    // The accounts alone (the journal replay is measured on the `acme recon` binary).
    let mut scan = LedgerScan::new(false);
    let file = std::fs::File::open(ledger.join(ACCOUNTS_FILE)).expect("accounts");
    let n = read_accounts(std::io::BufReader::with_capacity(1 << 20, file), |a| {
        scan.account(&a)
    })
    .expect("readable");
    let facts = scan.finish().expect("no journal replay");
    let expect = Expect {
        date: Some(manifest.as_of),
        custodian_account: Some(DEFAULT_CUSTODIAN_ACCOUNT.into()),
    };
    let statements = Statements {
        holdings: Some(
            parse_holdings("holdings.csv", holdings_text, &expect).expect("valid holdings"),
        ),
        ..Statements::default()
    };
    let cfg = ReconConfig {
        as_of: manifest.as_of,
        settlement_lag_days: manifest.settlement_lag_days,
        cash_tolerance_pence: 0,
    };
    (reconcile(&cfg, &facts, &statements).expect("consistent"), n)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let members: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let dir: PathBuf = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("acme-recon-scale"));
    let journal = args.iter().any(|a| a == "--journal");
    let as_of = Date::from_ymd(2026, 1, 15).expect("date");
    let (st, gen_s) = timed(|| generate(&dir, members, as_of, journal));
    let rss_after_generate = peak_rss_bytes();
    let holdings_text = holdings_csv(&st);
    let ((report, accounts), recon_s) = timed(|| recon(&dir, &holdings_text));
    assert!(
        report.is_clean() && report.breaks.is_empty(),
        "not clean: {:?}",
        report.breaks
    );
    // One unit less on one line must be found (so the clean result means something).
    let mut planted = st.clone();
    planted.lines[2].settled_units -= 1;
    let ((bad, _), _) = timed(|| recon(&dir, &holdings_csv(&planted)));
    assert_eq!(bad.breaks.len(), 1, "planted change: {:?}", bad.breaks);
    let file_bytes = std::fs::metadata(dir.join("ledger").join(ACCOUNTS_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let result = serde_json::json!({
        "members": members,
        "funds_per_member": FUNDS.len(),
        "accounts": accounts,
        "accounts_file_gib": file_bytes as f64 / (1u64 << 30) as f64,
        "generate_s": gen_s,
        "recon_s": recon_s,
        "accounts_per_s": accounts as f64 / recon_s,
        "peak_rss_mib": peak_rss_bytes().map(|b| b / (1024 * 1024)),
        "peak_rss_after_generate_mib": rss_after_generate.map(|b| b / (1024 * 1024)),
        "levels": ["internal", "positions"],
        "clean": report.is_clean(),
    });
    println!("{result}");
    eprintln!(
        "files kept under {d}; the binary: /usr/bin/time -v target/release/acme recon --ledger {d} --holdings {d}/holdings.csv; then rm -r {d}",
        d = dir.display()
    );
}
