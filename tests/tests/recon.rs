//! Reconciliation, engine level: clean simulated days reconcile clean (no false positives, at
//! the end of every day of 100 seeds and after every event of a run), each kind of planted break
//! is reported exactly once where it belongs, bad files are refused with file, line and field,
//! and a semt.002 statement reconciles exactly like its CSV twin.
//!
//! The files are the simulator's export (`World::export_day`), read here from memory through the
//! same parsers and ledger reader `acme recon` uses on disk.

use acme_ledger::chart::{self, AccountKind};
use acme_ledger::export::{read_accounts, read_transfers, write_accounts};
use acme_ledger::Account;
use acme_processes::calendar::Date;
use acme_processes::recon::cash::parse_cash;
use acme_processes::recon::holdings::{parse_holdings, Expect};
use acme_processes::recon::ledger::{LedgerScan, Manifest};
use acme_processes::recon::trades::parse_trades;
use acme_processes::recon::{
    asset_isin, reconcile, Break, Classification, InputError, Kind, Level, ReconConfig, Report,
    Statements, CASH_ASSET, DEFAULT_CUSTODIAN_ACCOUNT,
};
use acme_sim::export::reconcile_world;
use acme_sim::{SimConfig, World};
use std::collections::BTreeMap;

/// An export in memory: path -> contents.
#[derive(Clone)]
struct Export {
    date: Date,
    files: BTreeMap<String, Vec<u8>>,
}

impl Export {
    fn of(seed: u64, days: u32, members: u64) -> Export {
        Export::of_config(SimConfig::new(seed, days, members))
    }

    fn of_config(cfg: SimConfig) -> Export {
        let seed = cfg.seed;
        let mut world = World::new(cfg);
        let summary = world.run_to_end();
        // The run's own end-of-day reconciliations found no true break. (Other invariants are
        // the simulation tests' business; here the ledger and the statements are compared.)
        let recon: Vec<_> = summary
            .violations
            .iter()
            .filter(|v| v.invariant.starts_with("reconciliation_"))
            .collect();
        assert!(recon.is_empty(), "seed {seed}: {recon:#?}");
        let date = world.last_day();
        let files = world
            .export_day("test")
            .into_iter()
            .map(|f| (f.path, f.bytes))
            .collect();
        Export { date, files }
    }

    fn name(&self, what: &str) -> String {
        match what {
            "holdings" => format!("custodian/holdings-{}.csv", self.date),
            "semt" => format!("custodian/holdings-{}.xml", self.date),
            "trades" => format!("custodian/trades-{}.csv", self.date),
            "custodian-cash" => format!("custodian/cash-{}.csv", self.date),
            "bank" => format!("bank/cash-{}.csv", self.date),
            other => format!("ledger/{other}"),
        }
    }

    fn text(&self, what: &str) -> String {
        String::from_utf8(self.files[&self.name(what)].clone()).expect("utf-8")
    }

    fn set_text(&mut self, what: &str, text: String) {
        let name = self.name(what);
        self.files.insert(name, text.into_bytes());
    }

    fn edit(&mut self, what: &str, f: impl FnOnce(String) -> String) {
        let t = f(self.text(what));
        self.set_text(what, t);
    }

    fn accounts(&self) -> Vec<Account> {
        let mut out = Vec::new();
        read_accounts(&self.files["ledger/accounts.bin"][..], |a| out.push(a)).expect("accounts");
        out
    }

    fn set_accounts(&mut self, accounts: &[Account]) {
        let mut bytes = Vec::new();
        write_accounts(&mut bytes, accounts).expect("memory");
        self.files.insert("ledger/accounts.bin".into(), bytes);
    }

    /// What `acme recon` does with all the statements (holdings as CSV or semt.002).
    fn reconcile_with(&self, holdings: &str) -> Result<Report, InputError> {
        let manifest = Manifest::parse("manifest.txt", &self.text("manifest.txt"))?;
        let mut scan = LedgerScan::new(manifest.journal_complete);
        read_accounts(&self.files["ledger/accounts.bin"][..], |a| scan.account(&a))
            .expect("accounts");
        read_transfers(&self.files["ledger/transfers.bin"][..], |t| {
            scan.transfer(&t)
        })
        .expect("transfers");
        let facts = scan.finish().expect("an in-memory replay");
        let expect = Expect {
            date: Some(manifest.as_of),
            custodian_account: Some(DEFAULT_CUSTODIAN_ACCOUNT.to_string()),
        };
        let statements = Statements {
            holdings: Some(parse_holdings(
                &self.name(holdings),
                &self.text(holdings),
                &expect,
            )?),
            trades: Some(parse_trades(
                &self.name("trades"),
                &self.text("trades"),
                Some(manifest.as_of),
            )?),
            cash: vec![
                parse_cash(
                    &self.name("custodian-cash"),
                    &self.text("custodian-cash"),
                    Some(manifest.as_of),
                )?,
                parse_cash(&self.name("bank"), &self.text("bank"), Some(manifest.as_of))?,
            ],
        };
        let cfg = ReconConfig {
            as_of: manifest.as_of,
            settlement_lag_days: manifest.settlement_lag_days,
            cash_tolerance_pence: 0,
        };
        reconcile(&cfg, &facts, &statements)
    }

    fn reconcile(&self) -> Report {
        self.reconcile_with("holdings").expect("valid files")
    }
}

/// One export shared by the planted-break tests (built once per test; a few milliseconds).
fn clean() -> Export {
    Export::of(7, 5, 400)
}

fn show(r: &Report) -> String {
    r.breaks
        .iter()
        .map(|b| {
            format!(
                "{} {} {} {} ({:?}): {}",
                b.level.name(),
                b.kind.name(),
                b.asset,
                b.account,
                b.classification,
                b.detail
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Exactly one break, true, at this level, of this kind, on this asset.
fn only_break(r: &Report, level: Level, kind: Kind, asset: &str) -> Break {
    assert_eq!(r.breaks.len(), 1, "expected one break, got:\n{}", show(r));
    let b = r.breaks[0].clone();
    assert_eq!(
        (b.level, b.kind, b.asset.as_str()),
        (level, kind, asset),
        "{}",
        show(r)
    );
    assert_eq!(b.classification, Classification::True);
    assert!(!r.is_clean());
    b
}

/// Replaces the `n`-th data line (1-based, after the header) of a CSV text with `f(fields)`.
fn with_line(text: &str, n: usize, f: impl FnOnce(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[n].split(',').map(str::to_string).collect();
    f(&mut fields);
    lines[n] = fields.join(",");
    lines.join("\n") + "\n"
}

fn without_line(text: &str, n: usize) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(n);
    lines.join("\n") + "\n"
}

// ---------------------------------------------------------------------------------------------
// Clean days

#[test]
fn an_exported_clean_day_reconciles_clean_at_every_level() {
    let e = clean();
    let r = e.reconcile();
    assert!(r.breaks.is_empty(), "{}", show(&r));
    assert!(r.is_clean());
    assert_eq!(r.status(), "clean");
    for l in &r.levels {
        assert!(l.skipped.is_none(), "{:?} skipped", l.level);
        assert!(l.compared > 0, "{:?} compared nothing", l.level);
    }
    // The journal was replayed and the positions are real.
    assert!(r.levels[0]
        .notes
        .iter()
        .any(|n| n.contains("journal replayed")));
    assert!(r.positions.iter().any(|p| p.ledger_settled > 0));
}

/// The bar: across 100 seeds a clean day never shows a true break. Each run's own
/// end-of-day check reconciles every day of it through the engine (a true break would be a
/// violation), and the exported last day reconciles clean from its files.
#[test]
fn a_hundred_seeds_never_show_a_true_break_on_a_clean_day() {
    let mut trades = 0;
    for seed in 1..=100 {
        let e = Export::of_config(SimConfig::new(seed, 4, 300));
        let r = e.reconcile();
        assert!(
            r.is_clean() && r.breaks.is_empty(),
            "seed {seed}:\n{}",
            show(&r)
        );
        assert!(
            e.reconcile_with("semt").expect("valid") == r,
            "seed {seed}: semt.002 differs from CSV"
        );
        trades += r
            .levels
            .iter()
            .find(|l| l.level == Level::Trades)
            .expect("trades")
            .compared;
    }
    assert!(trades > 100, "only {trades} trades compared");
}

/// Trades in flight: after every single event of a run (custodian answers on the bus,
/// settlement notices not yet applied), the world reconciles with timing breaks only; and such
/// moments do occur, so the classification is exercised. Amendments are switched off: an
/// amended price on the bus would be a true difference of units for the few milliseconds it
/// travels (see the report).
#[test]
fn trades_in_flight_are_timing_breaks_never_true_ones() {
    let mut cfg = SimConfig::new(11, 3, 60);
    cfg.custodian.amend_ppm = 0;
    let mut world = World::new(cfg);
    let mut timing_kinds: BTreeMap<(Level, Kind), u64> = BTreeMap::new();
    let mut steps = 0;
    while world.step() {
        steps += 1;
        let today = world.today();
        let r = reconcile_world(&mut world, today);
        assert!(r.is_clean(), "after step {steps}:\n{}", show(&r));
        for b in &r.breaks {
            assert!(
                !b.trades.is_empty(),
                "a timing break names its trades: {b:?}"
            );
            *timing_kinds.entry((b.level, b.kind)).or_default() += 1;
        }
    }
    for want in [
        (Level::Trades, Kind::MissingInLedger),
        (Level::Trades, Kind::Status),
        (Level::Positions, Kind::PendingUnits),
        (Level::Positions, Kind::SettledUnits),
    ] {
        assert!(
            timing_kinds.contains_key(&want),
            "never saw a timing {want:?}: {timing_kinds:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Planted breaks: each exactly once, nothing else

#[test]
fn a_changed_holding_is_one_settled_units_break() {
    let mut e = clean();
    e.edit("holdings", |t| {
        with_line(&t, 2, |f| {
            let units = acme_processes::recon::parse_scaled(&f[3], 6, false).expect("units");
            f[3] = acme_processes::recon::fmt_units(units + 1);
        })
    });
    let b = only_break(
        &e.reconcile(),
        Level::Positions,
        Kind::SettledUnits,
        &asset_isin(2),
    );
    assert!(b.difference().is_some());
}

#[test]
fn a_missing_holding_line_is_one_missing_holding_break() {
    let mut e = clean();
    e.edit("holdings", |t| without_line(&t, 3));
    only_break(
        &e.reconcile(),
        Level::Positions,
        Kind::MissingHolding,
        &asset_isin(3),
    );
}

#[test]
fn an_extra_asset_is_one_unexpected_holding_break() {
    let mut e = clean();
    e.edit("holdings", |t| {
        format!(
            "{t}{},{DEFAULT_CUSTODIAN_ACCOUNT},{},100.000000,0\n",
            e_date(&t),
            asset_isin(6)
        )
    });
    let b = only_break(
        &e.reconcile(),
        Level::Positions,
        Kind::UnexpectedHolding,
        &asset_isin(6),
    );
    assert_eq!(b.statement.render().as_deref(), Some("100.000000"));
}

fn e_date(csv: &str) -> String {
    csv.lines()
        .nth(1)
        .expect("a line")
        .split(',')
        .next()
        .expect("date")
        .to_string()
}

#[test]
fn a_missing_confirmation_is_one_missing_confirmation_break() {
    let mut e = clean();
    let row = e
        .text("trades")
        .lines()
        .nth(1)
        .expect("a confirmation")
        .to_string();
    let asset = row.split(',').nth(3).expect("asset").to_string();
    e.edit("trades", |t| without_line(&t, 1));
    only_break(
        &e.reconcile(),
        Level::Trades,
        Kind::MissingConfirmation,
        &asset,
    );
}

#[test]
fn a_confirmation_at_another_price_is_one_price_break() {
    let mut e = clean();
    let mut asset = String::new();
    e.edit("trades", |t| {
        with_line(&t, 1, |f| {
            asset = f[3].clone();
            let p: u64 = f[6].replace('.', "").parse().expect("price");
            f[6] = acme_processes::recon::fmt_price(p as i128 + 10_000);
        })
    });
    let b = only_break(&e.reconcile(), Level::Trades, Kind::Price, &asset);
    assert!(b.ledger.render().is_some() && b.statement.render().is_some());
}

#[test]
fn a_cash_difference_is_one_cash_break_and_a_tolerance_absorbs_it() {
    let mut e = clean();
    e.edit("bank", |t| {
        with_line(&t, 1, |f| {
            let pence: i128 = f[3].replace('.', "").parse().expect("balance");
            f[3] = acme_processes::recon::fmt_pence(pence + 1);
        })
    });
    let b = only_break(&e.reconcile(), Level::Cash, Kind::CashBalance, CASH_ASSET);
    assert_eq!(b.difference().as_deref(), Some("0.01"));
    assert_eq!(b.account, "ACME-CLIENT-MONEY");
}

fn edit_a_member_pot(e: &mut Export) -> u32 {
    let mut accounts = e.accounts();
    let a = accounts
        .iter_mut()
        .find(|a| a.code == AccountKind::MemberUnits.code() && a.credits_posted > 0)
        .expect("a member with units");
    a.credits_posted += 1_000_000;
    let fund = chart::ledger_fund(a.ledger).expect("a fund");
    e.set_accounts(&accounts);
    fund
}

#[test]
fn a_member_pot_edited_in_the_ledger_is_one_internal_break_on_its_account() {
    let mut e = clean();
    let fund = edit_a_member_pot(&mut e);
    let b = only_break(
        &e.reconcile(),
        Level::Internal,
        Kind::BalanceNotMatchingJournal,
        &asset_isin(fund),
    );
    assert!(b.account.starts_with("member "), "{}", b.account);
    assert_eq!(b.difference().as_deref(), Some("-1.000000"));
}

#[test]
fn without_the_journal_an_edited_pot_is_one_unbalanced_ledger() {
    let mut e = clean();
    let fund = edit_a_member_pot(&mut e);
    e.edit("manifest.txt", |t| {
        t.replace("journal=complete", "journal=trades")
    });
    only_break(
        &e.reconcile(),
        Level::Internal,
        Kind::LedgerUnbalanced,
        &asset_isin(fund),
    );
}

#[test]
fn a_negative_member_balance_is_reported() {
    let mut e = clean();
    let mut accounts = e.accounts();
    let i = accounts
        .iter()
        .position(|a| a.code == AccountKind::MemberCash.code())
        .expect("a member");
    // A member whose debits exceed credits, with the journal not replayed (so only the rule fires
    // besides the imbalance it causes).
    accounts[i].debits_posted = accounts[i].credits_posted + 5;
    e.set_accounts(&accounts);
    let r = e.reconcile();
    assert!(
        r.breaks
            .iter()
            .any(|b| b.kind == Kind::NegativeBalance && b.level == Level::Internal),
        "{}",
        show(&r)
    );
}

// ---------------------------------------------------------------------------------------------
// semt.002 and its CSV twin

#[test]
fn the_semt002_statement_gives_the_same_result_as_its_csv_twin() {
    let e = clean();
    assert_eq!(e.reconcile_with("semt").expect("valid"), e.reconcile());
    // And the same break when both are changed the same way.
    let mut changed = e.clone();
    let line = changed
        .text("holdings")
        .lines()
        .nth(2)
        .expect("fund 2")
        .to_string();
    let settled = line.split(',').nth(3).expect("settled").to_string();
    // Change the last digit (whatever it is) so the figure really differs.
    let last = if settled.ends_with('9') { '8' } else { '9' };
    let bumped = format!("{}{last}", &settled[..settled.len() - 1]);
    changed.edit("holdings", |t| {
        t.replace(&line, &line.replace(&settled, &bumped))
    });
    let total_before = {
        let f: Vec<&str> = line.split(',').collect();
        acme_processes::recon::fmt_units(
            acme_processes::recon::parse_scaled(f[3], 6, false).unwrap()
                + acme_processes::recon::parse_scaled(f[4], 6, true).unwrap(),
        )
    };
    let total_after = {
        let f: Vec<&str> = line.split(',').collect();
        acme_processes::recon::fmt_units(
            acme_processes::recon::parse_scaled(&bumped, 6, false).unwrap()
                + acme_processes::recon::parse_scaled(f[4], 6, true).unwrap(),
        )
    };
    changed.edit("semt", |t| {
        t.replacen(
            &format!("<Unit>{total_before}</Unit>"),
            &format!("<Unit>{total_after}</Unit>"),
            1,
        )
        .replacen(
            &format!("<Cd>AWAS</Cd></SubBalTp><Qty><Qty><Unit>{settled}</Unit>"),
            &format!("<Cd>AWAS</Cd></SubBalTp><Qty><Qty><Unit>{bumped}</Unit>"),
            1,
        )
    });
    let from_csv = changed.reconcile();
    let from_xml = changed.reconcile_with("semt").expect("valid");
    only_break(
        &from_csv,
        Level::Positions,
        Kind::SettledUnits,
        &asset_isin(2),
    );
    assert_eq!(from_xml, from_csv);
}

// ---------------------------------------------------------------------------------------------
// Bad files: refused, naming file, line and field

fn error_of(e: &Export) -> InputError {
    match e.reconcile_with("holdings") {
        Err(err) => err,
        Ok(r) => panic!("accepted a bad file:\n{}", show(&r)),
    }
}

fn error_of_semt(e: &Export) -> InputError {
    match e.reconcile_with("semt") {
        Err(err) => err,
        Ok(r) => panic!("accepted a bad file:\n{}", show(&r)),
    }
}

fn assert_error(
    err: InputError,
    file_ends: &str,
    line: Option<u64>,
    field: &str,
    reason_has: &str,
) {
    assert!(
        err.file.ends_with(file_ends),
        "file {} (want ..{file_ends}): {err}",
        err.file
    );
    assert_eq!(err.line, line, "{err}");
    assert_eq!(err.field, field, "{err}");
    assert!(
        err.reason.contains(reason_has),
        "reason `{}` lacks `{reason_has}`",
        err.reason
    );
    // What a person reads names all three.
    let shown = err.to_string();
    assert!(
        shown.contains(&err.file) && shown.contains(field),
        "{shown}"
    );
    if let Some(l) = line {
        assert!(shown.contains(&format!("line {l}")), "{shown}");
    }
}

#[test]
fn holdings_with_a_missing_column_are_refused() {
    let mut e = clean();
    e.edit("holdings", |t| t.replacen("pending_units", "pending", 1));
    assert_error(
        error_of(&e),
        ".csv",
        Some(1),
        "pending_units",
        "missing column",
    );
}

#[test]
fn holdings_with_a_malformed_number_are_refused() {
    let mut e = clean();
    e.edit("holdings", |t| {
        with_line(&t, 2, |f| f[3] = "12,5x".replace(',', ";"))
    });
    assert_error(
        error_of(&e),
        ".csv",
        Some(3),
        "settled_units",
        "not a decimal",
    );
    let mut e = clean();
    e.edit("holdings", |t| {
        with_line(&t, 1, |f| f[4] = "1.0000001".into())
    });
    assert_error(
        error_of(&e),
        ".csv",
        Some(2),
        "pending_units",
        "more than 6 decimal places",
    );
}

#[test]
fn holdings_with_a_duplicate_row_are_refused() {
    let mut e = clean();
    e.edit("holdings", |t| {
        let first = t.lines().nth(1).expect("line").to_string();
        format!("{t}{first}\n")
    });
    let lines = e.text("holdings").lines().count() as u64;
    assert_error(error_of(&e), ".csv", Some(lines), "asset", "duplicate row");
}

#[test]
fn holdings_with_an_unknown_asset_are_refused() {
    let mut e = clean();
    e.edit("holdings", |t| {
        with_line(&t, 1, |f| f[2] = "US0378331005".into())
    });
    assert_error(error_of(&e), ".csv", Some(2), "asset", "unknown asset");
    // A near miss of an ACME ISIN (wrong check digit) too.
    let mut e = clean();
    e.edit("holdings", |t| {
        with_line(&t, 1, |f| {
            let last = f[2].pop().expect("digit");
            f[2].push(if last == '0' { '1' } else { '0' });
        })
    });
    assert_error(error_of(&e), ".csv", Some(2), "asset", "unknown asset");
}

#[test]
fn holdings_of_another_date_or_account_are_refused() {
    let mut e = clean();
    e.edit("holdings", |t| {
        with_line(&t, 4, |f| f[0] = "2026-01-02".into())
    });
    assert_error(
        error_of(&e),
        ".csv",
        Some(5),
        "statement_date",
        "does not match",
    );
    let mut e = clean();
    e.edit("holdings", |t| {
        with_line(&t, 1, |f| f[1] = "SOMEONE-ELSE".into())
    });
    assert_error(
        error_of(&e),
        ".csv",
        Some(2),
        "custodian_account",
        "not the custodian account",
    );
}

#[test]
fn semt002_files_with_bad_content_are_refused_at_the_element() {
    let mut e = clean();
    e.edit("semt", |t| t.replacen("<Unit>", "<Unit>x", 1));
    let err = error_of_semt(&e);
    assert_error(
        err,
        ".xml",
        Some(17),
        "SctiesBalCtdyRpt/BalForAcct[1]/AggtBal/Qty/Qty/Qty/Unit",
        "not a decimal",
    );
    let mut e = clean();
    e.edit("semt", |t| t.replacen(&asset_isin(1), "GB0002634946", 1));
    assert_error(
        error_of_semt(&e),
        ".xml",
        Some(16),
        "SctiesBalCtdyRpt/BalForAcct[1]/FinInstrmId/ISIN",
        "unknown asset",
    );
    let mut e = clean();
    e.edit("semt", |t| {
        t.replacen("<StmtDtTm><Dt>2026", "<StmtDtTm><Dt>2025", 1)
    });
    assert_error(
        error_of_semt(&e),
        ".xml",
        Some(7),
        "SctiesBalCtdyRpt/StmtGnlDtls/StmtDtTm/Dt",
        "does not match",
    );
    let mut e = clean();
    e.edit("semt", |t| {
        t.replacen("semt.002.001.09", "semt.003.001.09", 1)
    });
    assert_error(
        error_of_semt(&e),
        ".xml",
        Some(2),
        "Document/@xmlns",
        "not a semt.002",
    );
    let mut e = clean();
    e.edit("semt", |t| t.replacen("</BalForAcct>", "", 1));
    let err = error_of_semt(&e);
    assert_eq!(err.field, "(xml)", "{err}");
    assert!(err.line.is_some());
    let mut e = clean();
    e.edit("semt", |t| {
        t.replacen("<AggtBal>", "<AggtBalX>", 1)
            .replacen("</AggtBal>", "</AggtBalX>", 1)
    });
    assert_error(
        error_of_semt(&e),
        ".xml",
        Some(15),
        "SctiesBalCtdyRpt/BalForAcct[1]/AggtBal",
        "missing element",
    );
}

#[test]
fn bad_confirmations_are_refused() {
    let cases: [(usize, usize, &str, &str, &str); 6] = [
        (1, 6, "1.2.3", "price", "not a decimal"),
        (1, 8, "done", "status", "not priced, settled"),
        (
            1,
            0,
            "ACME-2026-1",
            "trade_ref",
            "not an ACME trade reference",
        ),
        (1, 4, "hold", "side", "neither buy nor sell"),
        (1, 7, "12.345", "cash_amount", "more than 2 decimal places"),
        (1, 1, "2027-01-01", "trade_date", "after the statement date"),
    ];
    for (line, field, value, name, reason) in cases {
        let mut e = clean();
        e.edit("trades", |t| {
            with_line(&t, line, |f| f[field] = value.into())
        });
        assert_error(error_of(&e), ".csv", Some(line as u64 + 1), name, reason);
    }
    let mut e = clean();
    e.edit("trades", |t| {
        let first = t.lines().nth(1).expect("line").to_string();
        format!("{t}{first}\n")
    });
    let lines = e.text("trades").lines().count() as u64;
    assert_error(
        error_of(&e),
        ".csv",
        Some(lines),
        "trade_ref",
        "duplicate row",
    );
    let mut e = clean();
    e.edit("trades", |t| t.replacen(",status", "", 1));
    assert_error(error_of(&e), ".csv", Some(1), "status", "missing column");
}

#[test]
fn bad_cash_statements_are_refused() {
    let cases: [(&str, usize, &str, &str, &str); 4] = [
        ("bank", 1, "ACME-OTHER", "account", "unknown account"),
        ("bank", 2, "USD", "currency", "not GBP"),
        ("bank", 3, "1.234", "balance", "more than 2 decimal places"),
        (
            "custodian-cash",
            0,
            "2026-02-30",
            "statement_date",
            "not a date",
        ),
    ];
    for (what, field, value, name, reason) in cases {
        let mut e = clean();
        e.edit(what, |t| with_line(&t, 1, |f| f[field] = value.into()));
        assert_error(error_of(&e), ".csv", Some(2), name, reason);
    }
    let mut e = clean();
    e.edit("bank", |t| with_line(&t, 1, |f| f.truncate(3)));
    assert_error(error_of(&e), ".csv", Some(2), "balance", "missing");
}

#[test]
fn a_duplicated_confirmation_is_a_break_not_an_error() {
    let mut e = clean();
    let mut asset = String::new();
    e.edit("trades", |t| {
        let mut row: Vec<String> = t
            .lines()
            .nth(1)
            .expect("row")
            .split(',')
            .map(str::to_string)
            .collect();
        asset = row[3].clone();
        let units: i128 = acme_processes::recon::parse_scaled(&row[5], 6, false).unwrap();
        row[5] = acme_processes::recon::fmt_units(units + 1);
        format!("{t}{}\n", row.join(","))
    });
    only_break(
        &e.reconcile(),
        Level::Trades,
        Kind::DuplicateConfirmation,
        &asset,
    );
}
