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

    // The custodian's prices: £1.25 (exact units) and £3 (units rounded down).
    let (price_a, price_b) = (1_250_000, 3_000_000);
    let good_a = buy_row("priced", &ref_a, price_a, cash_a);
    let good_b = buy_row("priced", &ref_b, price_b, cash_b);
    let before = (pot(&a, "M-1"), pot(&a, "M-2"));
    let bad_decimal = good_b.replace("3.000000", "3.0000001");
    let r = drop_bad(
        &inbox,
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
    let r = drop_bad(&inbox, "unknown-column.csv", &unknown);
    assert!(r.contains("line: 2\nfield: fee\n"), "{r}");
    let proceeds = format!("priced,{ref_b},0,3.000000,10.00,3.333333,0.000000,1.00\n");
    let r = drop_bad(
        &inbox,
        "proceeds.csv",
        &format!("{HEADER}{good_a}{proceeds}"),
    );
    assert!(
        r.contains("line: 4\nfield: cash_for_sold\nreason: proceeds with no sell"),
        "{r}"
    );
    assert!(r.contains("nothing of it was applied"), "{r}");
    // Give a wrongly applied first row time to show.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!((pot(&a, "M-1"), pot(&a, "M-2")), before, "nothing applied");
    for l in &day.invests {
        assert_eq!(state(&a, l), "received");
    }
    assert!(names(&inbox.join("done")).is_empty());

    let confirmations = format!("{HEADER}{good_a}{good_b}");
    drop_good(&inbox, "confirmations.csv", &confirmations);
    // The allocation shares the fill by cash: £40 and £25 of £65 at £1.25.
    let expect_a1 = fixed(units_for(4_000, price_a), 6);
    let expect_a2 = fixed(units_for(2_500, price_a), 6);
    let expect_b1 = fixed(units_for(1_000, price_b), 6);
    wait_for("units pending", || {
        units_of(&pot(&a, "M-1"), FUND_A, "units_pending") == expect_a1
    });
    let priced = (pot(&a, "M-1"), pot(&a, "M-2"));
    assert_eq!(units_of(&priced.0, FUND_B, "units_pending"), expect_b1);
    assert_eq!(units_of(&priced.1, FUND_A, "units_pending"), expect_a2);
    drop_good(&inbox, "confirmations.csv", &confirmations);
    let other = buy_row("priced", &ref_a, 1_300_000, cash_a);
    let r = drop_bad(&inbox, "other-price.csv", &format!("{HEADER}{other}"));
    assert!(r.contains("line: 3\nfield: revision\n"), "{r}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        (pot(&a, "M-1"), pot(&a, "M-2")),
        priced,
        "a copy changes nothing"
    );

    let settled = format!(
        "{HEADER}{}{}",
        buy_row("settled", &ref_a, price_a, cash_a),
        buy_row("settled", &ref_b, price_b, cash_b)
    );
    drop_good(&inbox, "settled.csv", &settled);
    for l in &day.invests {
        wait_for("settled", || state(&a, l) == "settled");
    }
    let (m1, m2) = (pot(&a, "M-1"), pot(&a, "M-2"));
    assert_eq!(m1["cash"]["available"], "50.00", "{m1}");
    assert_eq!(m2["cash"]["available"], "75.00", "{m2}");
    assert_eq!(units_of(&m1, FUND_A, "units_settled"), expect_a1, "{m1}");
    assert_eq!(units_of(&m1, FUND_B, "units_settled"), expect_b1, "{m1}");
    assert_eq!(units_of(&m2, FUND_A, "units_settled"), expect_a2, "{m2}");

    // After a crash the file drop knows what it took: a copy is a no-op, an amendment of a
    // settled trade is refused.
    server.kill9();
    let server = start(&day);
    let a = server.addr.clone();
    wait_for("ready", || {
        send(&a, "GET", "/readyz", &[], b"").status == 200
    });
    drop_good(&inbox, "settled-again.csv", &settled);
    let amended = buy_row("priced", &ref_a, price_a, cash_a).replacen(",0,", ",1,", 1);
    let r = drop_bad(&inbox, "late-amendment.csv", &format!("{HEADER}{amended}"));
    assert!(r.contains("line: 3\nfield: revision\n"), "{r}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((pot(&a, "M-1"), pot(&a, "M-2")), (m1, m2), "unchanged");
}
