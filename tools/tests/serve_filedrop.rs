//! `acme serve` with the file-drop custodian, end to end: investments over HTTP, the cut-off,
//! the order files in the outbox; confirmations and settlement notices that this test works out
//! from those orders with its own arithmetic, dropped in the inbox; the members' pots. Bad files
//! (a bad decimal, an unknown column, proceeds without a fill, a second price for a revision)
//! are moved aside with a report naming line and field and change nothing; a good file dropped
//! again, before or after a restart, changes nothing.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod serve_common;

use serde_json::Value;
use serve_common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FUND_A: &str = "GB00ACME0019";
const FUND_B: &str = "GB00ACME0027";
const HEADER: &str = "acme-custodian-notices,1\n\
                      kind,trade_ref,revision,price,buy_cash,units_bought,sell_units,cash_for_sold\n";

/// Pounds with at most 2 places as pence, by this test's own reading.
fn pence(text: &str) -> u128 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    assert!(frac.len() <= 2, "{text}");
    let frac = format!("{frac:0<2}");
    whole.parse::<u128>().expect("pounds") * 100 + frac.parse::<u128>().expect("pence")
}

fn fixed(v: u128, places: u32) -> String {
    let scale = 10u128.pow(places);
    format!("{}.{:0w$}", v / scale, v % scale, w = places as usize)
}

/// Units (micro) that `pence` buy at `price` micro-pounds a unit, rounded down: pence are
/// 10^4 micro-pounds and a unit 10^6 micro-units.
fn units_for(pence: u128, price_micro: u128) -> u128 {
    pence * 10_000 * 1_000_000 / price_micro
}

/// A priced (or settled) row of a buy filled whole.
fn buy_row(kind: &str, trade_ref: &str, price_micro: u128, pence: u128) -> String {
    format!(
        "{kind},{trade_ref},0,{},{},{},0.000000,0.00\n",
        fixed(price_micro, 6),
        fixed(pence, 2),
        fixed(units_for(pence, price_micro), 6)
    )
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Drops a file in the inbox as a custodian should: a hidden name, then a rename.
fn drop_in(inbox: &Path, name: &str, text: &str) {
    let tmp = inbox.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, inbox.join(name)).expect("rename");
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Drops a good file and waits until it is done (the hosts acknowledged every row).
fn drop_good(inbox: &Path, name: &str, text: &str) {
    drop_in(inbox, name, text);
    let done = inbox.join("done").join(name);
    wait_for(&format!("{name} done"), || {
        done.exists() && !inbox.join(name).exists()
    });
}

/// Drops a bad file and returns its report, once it is moved aside.
fn drop_bad(inbox: &Path, name: &str, text: &str) -> String {
    drop_in(inbox, name, text);
    let report = inbox.join("rejected").join(format!("{name}.report.txt"));
    let moved = inbox.join("rejected").join(name);
    wait_for(&format!("{name} rejected"), || {
        moved.exists() && report.exists()
    });
    assert!(!inbox.join("done").join(name).exists(), "{name}");
    std::fs::read_to_string(report).expect("report")
}

/// The outbox's order files: per ISIN, the trade's reference and buy cash (pence).
fn orders(outbox: &Path) -> BTreeMap<String, (String, u128)> {
    let mut out = BTreeMap::new();
    for name in names(outbox).iter().filter(|n| n.starts_with("order-")) {
        let text = std::fs::read_to_string(outbox.join(name)).expect("order file");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "acme-custodian-orders,1", "{text}");
        assert_eq!(
            lines[1], "kind,trade_ref,trade_date,isin,buy_cash,sell_units",
            "{text}"
        );
        let f: Vec<&str> = lines[2].split(',').collect();
        assert_eq!((f[0], f[5]), ("place", "0.000000"), "a buy only: {text}");
        out.insert(f[3].to_string(), (f[1].to_string(), pence(f[4])));
    }
    out
}

fn pot(addr: &str, member: &str) -> Value {
    get(addr, &format!("/v1/members/{member}"), AUDITOR).json()
}

fn units_of(pot: &Value, isin: &str, which: &str) -> String {
    let funds = pot["funds"].as_array().expect("funds");
    let f = funds.iter().find(|f| f["isin"] == isin);
    f.map_or("none".into(), |f| {
        f[which].as_str().unwrap_or("?").to_string()
    })
}

fn state(addr: &str, location: &str) -> String {
    get(addr, location, AUDITOR).json()["state"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

struct Day {
    dir: PathBuf,
    config: PathBuf,
    outbox: PathBuf,
    inbox: PathBuf,
    /// The three investments' locations.
    invests: Vec<String>,
}

fn start(day: &Day) -> Server {
    Server::start_with(&day.dir, &["--config".as_ref(), day.config.as_os_str()])
}

/// Two members, a pay-in each, three investments in two funds; the cut-off.
fn trade_day(addr: &str, day: &mut Day) -> String {
    for (m, key) in [("M-1", "c1"), ("M-2", "c2")] {
        let reg = format!(r#"{{"member_id": "{m}", "risk_profile": "balanced"}}"#);
        assert_eq!(post(addr, "/v1/members", CHANNEL, None, &reg).status, 201);
        let pay = format!(r#"{{"member_id": "{m}", "kind": "contribute", "amount": "100.00"}}"#);
        let r = post(addr, "/v1/instructions", CHANNEL, Some(key), &pay);
        wait_for_state(addr, r.header("location").expect("Location"), "completed");
    }
    let mut dealing = String::new();
    for (m, fund, amount, key) in [
        ("M-1", FUND_A, "40.00", "i1"),
        ("M-2", FUND_A, "25.00", "i2"),
        ("M-1", FUND_B, "10.00", "i3"),
    ] {
        let body = format!(
            r#"{{"member_id": "{m}", "kind": "invest", "fund": "{fund}", "amount": "{amount}"}}"#
        );
        let r = post(addr, "/v1/instructions", CHANNEL, Some(key), &body);
        assert_eq!(r.status, 202, "{r:?}");
        dealing = r.json()["dealing_date"].as_str().expect("date").to_string();
        day.invests
            .push(r.header("location").expect("Location").to_string());
    }
    wait_for("the orders reserved", || {
        pot(addr, "M-1")["cash"]["reserved"] == "50.00"
            && pot(addr, "M-2")["cash"]["reserved"] == "25.00"
    });
    std::thread::sleep(Duration::from_millis(300));
    let job = |name: &str| {
        post(
            addr,
            &format!("/v1/jobs/{name}"),
            OPERATIONS,
            None,
            &format!(r#"{{"date": "{dealing}"}}"#),
        )
    };
    // The custodian's answers come from the inbox: the simulated custodian's jobs are refused.
    assert_problem(&job("valuation"), 409, None);
    assert_problem(&job("settlement"), 409, None);
    assert_eq!(job("cut-off").status, 200);
    dealing
}

#[test]
fn a_file_drop_custodian_takes_orders_in_its_outbox_and_answers_from_its_inbox() {
    let dir = data_dir("serve-filedrop");
    std::fs::create_dir_all(&dir).expect("data dir");
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"custodian": "file-drop"}"#).expect("config");
    let mut day = Day {
        outbox: dir.join("custodian/outbox"),
        inbox: dir.join("custodian/inbox"),
        dir,
        config,
        invests: Vec::new(),
    };
    let server = start(&day);
    let a = server.addr.clone();
    trade_day(&a, &mut day);
    let (inbox, outbox) = (day.inbox.clone(), day.outbox.clone());
    wait_for("two order files", || orders(&outbox).len() == 2);
    let placed = orders(&outbox);
    let (ref_a, cash_a) = placed[FUND_A].clone();
    let (ref_b, cash_b) = placed[FUND_B].clone();
    assert_eq!((cash_a, cash_b), (6_500, 1_000), "net buys: {placed:?}");
    // Members hear only of outcomes: until then each investment shows as received.
    let states: Vec<String> = day.invests.iter().map(|l| state(&a, l)).collect();
    assert_eq!(states, ["received"; 3]);

    let t = Trades {
        ref_a,
        cash_a,
        ref_b,
        cash_b,
    };
    bad_files_change_nothing(&a, &inbox, &t, &day.invests);
    priced_copied_and_amended(&a, &inbox, &t);
    let settled = settle(&a, &inbox, &t, &day.invests);
    let pots = (pot(&a, "M-1"), pot(&a, "M-2"));

    // After a crash the file drop knows what it took: a copy is a no-op, an amendment of a
    // settled trade is refused.
    server.kill9();
    let server = start(&day);
    let a = server.addr.clone();
    wait_for("ready", || {
        send(&a, "GET", "/readyz", &[], b"").status == 200
    });
    drop_good(&inbox, "settled-again.csv", &settled);
    let late = revision(&buy_row("priced", &t.ref_a, 1_000_000, t.cash_a), 2);
    let r = drop_bad(&inbox, "late-amendment.csv", &format!("{HEADER}{late}"));
    assert!(r.contains("line: 3\nfield: revision\n"), "{r}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((pot(&a, "M-1"), pot(&a, "M-2")), pots, "unchanged");
}

/// The two trades placed: fund A's (both members) and fund B's (M-1's).
struct Trades {
    ref_a: String,
    cash_a: u128,
    ref_b: String,
    cash_b: u128,
}

/// The custodian's terms: A at £1.25 (units exact), then amended to £1 (revision 1); B filled
/// in part, £7 of £10 at £3 (units rounded down).
const PRICE_A: u128 = 1_250_000;
const AMENDED_A: u128 = 1_000_000;
const PRICE_B: u128 = 3_000_000;
const FILLED_B: u128 = 700;

/// `row` as of revision `rev` (its third field).
fn revision(row: &str, rev: u32) -> String {
    let mut f: Vec<&str> = row.split(',').collect();
    let rev = rev.to_string();
    f[2] = &rev;
    f.join(",")
}

/// Files with a bad decimal, an unknown column, proceeds without a fill, a fill above the
/// order, a trade never placed: each moved aside with a report, and nothing of them applied
/// (a good first row included).
fn bad_files_change_nothing(a: &str, inbox: &Path, t: &Trades, invests: &[String]) {
    let good_a = buy_row("priced", &t.ref_a, PRICE_A, t.cash_a);
    let good_b = buy_row("priced", &t.ref_b, PRICE_B, FILLED_B);
    let before = (pot(a, "M-1"), pot(a, "M-2"));
    let bad_decimal = good_b.replace("3.000000", "3.0000001");
    let r = drop_bad(
        inbox,
        "bad-decimal.csv",
        &format!("{HEADER}{good_a}{bad_decimal}"),
    );
    assert!(r.contains("line: 4\nfield: price\n"), "{r}");
    assert!(r.contains("more than 6 decimal places"), "{r}");
    let unknown = format!(
        "{},fee\n{}",
        HEADER.trim_end(),
        good_a.replace('\n', ",0.00\n")
    );
    let r = drop_bad(inbox, "unknown-column.csv", &unknown);
    assert!(r.contains("line: 2\nfield: fee\n"), "{r}");
    let ref_b = &t.ref_b;
    let proceeds = format!("priced,{ref_b},0,3.000000,7.00,2.333333,0.000000,1.00\n");
    let r = drop_bad(
        inbox,
        "proceeds.csv",
        &format!("{HEADER}{good_a}{proceeds}"),
    );
    let why = "line: 4\nfield: cash_for_sold\nreason: proceeds with no sell";
    assert!(r.contains(why), "{r}");
    assert!(r.contains("nothing of it was applied"), "{r}");
    let over = buy_row("priced", &t.ref_b, PRICE_B, t.cash_b + 1);
    let r = drop_bad(inbox, "overfilled.csv", &format!("{HEADER}{over}"));
    assert!(r.contains("line: 3\nfield: buy_cash\n"), "{r}");
    let (date_part, _) = t.ref_b.rsplit_once('-').expect("ACME-DATE-FUND");
    let never = buy_row("priced", &format!("{date_part}-5"), PRICE_B, FILLED_B);
    let r = drop_bad(inbox, "never-placed.csv", &format!("{HEADER}{never}"));
    assert!(r.contains("line: 3\nfield: trade_ref\n"), "{r}");
    // Give a wrongly applied first row time to show.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!((pot(a, "M-1"), pot(a, "M-2")), before, "nothing applied");
    for l in invests {
        assert_eq!(state(a, l), "received");
    }
    assert!(names(&inbox.join("done")).is_empty());
}

fn pending(a: &str, member: &str, isin: &str) -> String {
    units_of(&pot(a, member), isin, "units_pending")
}

/// The confirmations, the same file again, a second price for revision 0 (refused), then an
/// amendment: each member's pending units follow, shared by cash (£40 and £25 of £65).
fn priced_copied_and_amended(a: &str, inbox: &Path, t: &Trades) {
    let good_a = buy_row("priced", &t.ref_a, PRICE_A, t.cash_a);
    let good_b = buy_row("priced", &t.ref_b, PRICE_B, FILLED_B);
    let confirmations = format!("{HEADER}{good_a}{good_b}");
    drop_good(inbox, "confirmations.csv", &confirmations);
    let a1 = fixed(units_for(4_000, PRICE_A), 6);
    wait_for("units pending", || pending(a, "M-1", FUND_A) == a1);
    let b1 = fixed(units_for(FILLED_B, PRICE_B), 6);
    assert_eq!(pending(a, "M-1", FUND_B), b1, "the part filled");
    assert_eq!(
        pending(a, "M-2", FUND_A),
        fixed(units_for(2_500, PRICE_A), 6)
    );
    let priced = (pot(a, "M-1"), pot(a, "M-2"));
    drop_good(inbox, "confirmations.csv", &confirmations);
    let other = buy_row("priced", &t.ref_a, 1_300_000, t.cash_a);
    let r = drop_bad(inbox, "other-price.csv", &format!("{HEADER}{other}"));
    assert!(r.contains("line: 3\nfield: revision\n"), "{r}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        (pot(a, "M-1"), pot(a, "M-2")),
        priced,
        "a copy changes nothing"
    );

    let amended = revision(&buy_row("priced", &t.ref_a, AMENDED_A, t.cash_a), 1);
    drop_good(inbox, "amendment.csv", &format!("{HEADER}{amended}"));
    let a1 = fixed(units_for(4_000, AMENDED_A), 6);
    wait_for("amended units", || pending(a, "M-1", FUND_A) == a1);
    assert_eq!(
        pending(a, "M-2", FUND_A),
        fixed(units_for(2_500, AMENDED_A), 6)
    );
}

/// The settlement notices (A on its amended terms); the pots at the end. Returns the file.
fn settle(a: &str, inbox: &Path, t: &Trades, invests: &[String]) -> String {
    let settled = format!(
        "{HEADER}{}{}",
        revision(&buy_row("settled", &t.ref_a, AMENDED_A, t.cash_a), 1),
        buy_row("settled", &t.ref_b, PRICE_B, FILLED_B)
    );
    drop_good(inbox, "settled.csv", &settled);
    for l in invests {
        wait_for("settled", || state(a, l) == "settled");
    }
    let (m1, m2) = (pot(a, "M-1"), pot(a, "M-2"));
    // M-1 paid £40 and the £7 filled of £10; M-2 £25.
    let cash = |paid: u128| fixed(10_000 - paid, 2);
    assert_eq!(m1["cash"]["available"], cash(4_000 + FILLED_B), "{m1}");
    assert_eq!(m2["cash"]["available"], cash(2_500), "{m2}");
    let units = |pence| fixed(units_for(pence, AMENDED_A), 6);
    assert_eq!(units_of(&m1, FUND_A, "units_settled"), units(4_000), "{m1}");
    assert_eq!(units_of(&m2, FUND_A, "units_settled"), units(2_500), "{m2}");
    let b = fixed(units_for(FILLED_B, PRICE_B), 6);
    assert_eq!(units_of(&m1, FUND_B, "units_settled"), b, "{m1}");
    settled
}
