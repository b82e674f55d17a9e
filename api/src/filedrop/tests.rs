use super::books::Books;
use super::format::{amount, parse_notices, parse_placed, render_order, Bad, Notice, Order};
use super::*;
use acme_processes::calendar::Date;
use acme_processes::messages::{trade_id, ExternalTrade};
use acme_processes::recon::trade_ref;

const HEADER: &str = "acme-custodian-notices,1\n\
                      kind,trade_ref,revision,price,buy_cash,units_bought,sell_units,cash_for_sold\n";

fn trade() -> ExternalTrade {
    let date: Date = "2026-01-05".parse().expect("date");
    ExternalTrade {
        id: trade_id(date, 1),
        fund: 1,
        trade_date: date,
        buy_cash_pence: 4_000,
        sell_units_micro: 2_000_000,
    }
}

fn refused(text: &str) -> Bad {
    parse_notices(text).expect_err(text)
}

#[test]
fn figures_are_read_digit_by_digit_and_refused_with_a_reason() {
    assert_eq!(amount("40.00", 2), Ok(4_000));
    assert_eq!(amount("7", 6), Ok(7_000_000));
    assert_eq!(amount("0", 2), Ok(0));
    assert_eq!(amount("1.5", 6), Ok(1_500_000));
    for bad in [
        "", "1.", ".5", "-1", "+1", "1e3", "1,0", " 1", "1.001", "NaN",
    ] {
        assert!(amount(bad, 2).is_err(), "{bad}");
    }
    assert!(amount(&"9".repeat(30), 2).is_err(), "too large, no panic");
}

#[test]
fn an_order_file_reads_back_as_the_trade_it_was_written_for() {
    let t = trade();
    let text = render_order(&Order::Place(&t), "GB00ACME0019");
    assert!(text.starts_with("acme-custodian-orders,1\n"), "{text}");
    assert!(
        text.ends_with("\nplace,ACME-20260105-1,2026-01-05,GB00ACME0019,40.00,2.000000\n"),
        "{text}"
    );
    assert_eq!(parse_placed(&text), Ok(t));
    let chase = render_order(&Order::ChaseSettlement(t.id), "");
    assert!(chase.ends_with("\nchase-settlement,ACME-20260105-1,2026-01-05,,,\n"));
    assert!(
        parse_placed(&chase).is_err(),
        "a chase is not a placed trade"
    );
}

#[test]
fn a_good_file_becomes_notices_in_any_column_order() {
    let text = "acme-custodian-notices,1\r\n\
        revision,kind,trade_ref,price,buy_cash,units_bought,sell_units,cash_for_sold\r\n\
        0,priced,ACME-20260105-1,1.250000,40.00,32.000000,2.000000,2.50\r\n\
        \r\n\
        0,rejected,ACME-20260105-2,,,,,\r\n";
    let notices = parse_notices(text).expect("parses");
    assert_eq!(notices.len(), 2);
    let Notice::Priced { line, terms } = notices[0] else {
        panic!("{notices:?}")
    };
    assert_eq!(line, 3);
    assert_eq!(terms.price.0, 1_250_000);
    assert_eq!(
        (terms.buy_cash_filled, terms.units_bought),
        (4_000, 32_000_000)
    );
    assert_eq!(
        (terms.sell_units_filled, terms.cash_for_sold),
        (2_000_000, 250)
    );
    assert!(matches!(notices[1], Notice::Rejected { line: 5, .. }));
    let e = envelope(&notices[0]);
    assert_eq!(e.to, Service::Pricing);
    assert_eq!(e.id, msg_id(MsgKind::TradePriced, trade().id, 0));
}

#[test]
fn each_bad_field_is_named_with_its_line() {
    let row = "priced,ACME-20260105-1,0,1.250000,40.00,32.000000,0.000000,0.00";
    let with = |r: &str| format!("{HEADER}{row}\n{r}\n");
    let cases: [(String, Option<u64>, &str); 12] = [
        ("acme-custodian-notices,2\n".into(), Some(1), "version"),
        ("kind,trade_ref\n".into(), Some(1), "version"),
        (HEADER.replace("cash_for_sold", "cash"), Some(2), "cash"),
        (HEADER.replace(",price", ""), Some(2), "price"),
        (with(&row.replace("priced", "filled")), Some(4), "kind"),
        (
            with(&row.replace("ACME-20260105-1", "X-1")),
            Some(4),
            "trade_ref",
        ),
        (with(&row.replace(",0,", ",8,")), Some(4), "revision"),
        (with(&row.replace("1.250000", "1,25")), Some(4), "kind"),
        (with(&row.replace("40.00", "40.001")), Some(4), "buy_cash"),
        (
            with(&row.replace("32.000000", "33.000000")),
            Some(4),
            "units_bought",
        ),
        (
            with(&row.replace(",0.000000,0.00", ",0.000000,1.00")),
            Some(4),
            "cash_for_sold",
        ),
        (HEADER.to_string(), None, "kind"),
    ];
    for (text, line, field) in cases {
        let b = refused(&text);
        assert_eq!((b.line, b.field.as_str()), (line, field), "{text}: {b:?}");
    }
    let b = refused(&with("rejected,ACME-20260105-1,0,1.000000,,,,"));
    assert_eq!((b.line, b.field.as_str()), (Some(4), "price"), "{b:?}");
}

#[test]
fn the_books_refuse_what_contradicts_the_orders_or_earlier_answers() {
    let mut books = Books::default();
    let t = trade();
    let r = trade_ref(t.id);
    let read = |rows: &str| parse_notices(&format!("{HEADER}{rows}")).expect(rows);
    let priced = read(&format!(
        "priced,{r},0,2.000000,40.00,20.000000,1.000000,2.00\n"
    ));
    let b = books.check(&priced).expect_err("not placed");
    assert_eq!((b.line, b.field.as_str()), (Some(3), "trade_ref"));
    books.place(t);
    assert_eq!(books.check(&priced), Ok(()));
    let over = read(&format!(
        "priced,{r},0,2.000000,40.01,20.005000,1.000000,2.00\n"
    ));
    assert_eq!(
        books.check(&over).map_err(|b| b.field),
        Err("buy_cash".into())
    );
    let settled_first = read(&format!(
        "settled,{r},0,2.000000,40.00,20.000000,1.000000,2.00\n"
    ));
    assert_eq!(
        books.check(&settled_first).map_err(|b| b.field),
        Err("kind".into()),
        "never priced"
    );
    books.record(&priced);
    assert_eq!(books.check(&priced), Ok(()), "a copy is fine");
    assert_eq!(books.check(&settled_first), Ok(()));
    let other = read(&format!(
        "priced,{r},0,2.000000,40.00,20.000000,0.000000,0.00\n"
    ));
    assert_eq!(
        books.check(&other).map_err(|b| b.field),
        Err("revision".into())
    );
    let rejected = read(&format!("rejected,{r},0,,,,,\n"));
    assert_eq!(
        books.check(&rejected).map_err(|b| b.field),
        Err("kind".into())
    );
    // An amendment and its settlement in one file: the settlement must be of the amendment.
    let amended = format!("priced,{r},1,4.000000,40.00,10.000000,1.000000,4.00\n");
    let old_terms = format!("settled,{r},0,2.000000,40.00,20.000000,1.000000,2.00\n");
    let b = books
        .check(&read(&format!("{amended}{old_terms}")))
        .expect_err("stale");
    assert_eq!((b.line, b.field.as_str()), (Some(4), "revision"));
    let new_terms = amended.replacen("priced", "settled", 1);
    assert_eq!(books.check(&read(&format!("{amended}{new_terms}"))), Ok(()));
}

#[test]
fn the_outbox_file_is_named_by_the_message_and_a_resend_rewrites_it_identically() {
    let dir = std::env::temp_dir().join(format!("acme-filedrop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let funds = crate::config::default_funds();
    let (outbox, inbox) = (dir.join("out"), dir.join("in"));
    let fd = FileDrop::open(&outbox, &inbox, &dir, &funds).expect("opens");
    let t = trade();
    let place = Envelope {
        id: msg_id(MsgKind::PlaceTrade, t.id, 0),
        from: Service::Aggregation,
        to: Service::Custodian,
        seq: 0,
        body: Message::PlaceTrade(t),
    };
    fd.send(&place).expect("written");
    let name = format!("order-{:032x}.csv", place.id);
    let first = std::fs::read(outbox.join(&name)).expect("in the outbox");
    fd.send(&place).expect("again");
    assert_eq!(files::listing(&outbox), Ok(vec![name.clone()]));
    assert_eq!(std::fs::read(outbox.join(&name)).expect("still"), first);
    // The custodian takes the order away; after a restart the file drop still knows it.
    std::fs::remove_file(outbox.join(&name)).expect("taken");
    let fd = FileDrop::open(&outbox, &inbox, &dir, &funds).expect("reopens");
    let r = trade_ref(t.id);
    let good = format!("{HEADER}priced,{r},0,2.000000,40.00,20.000000,1.000000,2.00\n");
    std::fs::write(inbox.join("a.csv"), &good).expect("drop");
    let notices = fd.take("a.csv").expect("read").expect("good");
    fd.done("a.csv", &notices).expect("done");
    std::fs::write(inbox.join("b.txt"), &good).expect("drop");
    let bad = fd.take("b.txt").expect("read").expect_err("not csv");
    fd.reject("b.txt", &bad).expect("rejected");
    let report = std::fs::read_to_string(inbox.join("rejected/b.txt.report.txt")).expect("report");
    assert!(
        report.contains("file: b.txt\nline: -\nfield: file\n"),
        "{report}"
    );
    assert_eq!(files::listing(&inbox), Ok(vec![]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_mutation_of_a_good_file_makes_the_reader_panic() {
    let mut books = Books::default();
    books.place(trade());
    let r = trade_ref(trade().id);
    let good = format!(
        "{HEADER}priced,{r},0,2.000000,40.00,20.000000,1.000000,2.00\n\
         settled,{r},0,2.000000,40.00,20.000000,1.000000,2.00\n"
    );
    assert_eq!(parse_notices(&good).map(|n| books.check(&n)), Ok(Ok(())));
    let alphabet = b",.-0123456789\n\r\xff\xc3 aeAZ";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut bytes = good.clone().into_bytes();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            let c = alphabet[(next() % alphabet.len() as u64) as usize];
            match next() % 3 {
                0 => bytes[at] = c,
                1 => bytes.insert(at, c),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let Ok(notices) = parse_notices(&text) else {
            continue;
        };
        if books.check(&notices).is_err() {
            continue;
        }
        accepted += 1;
        // Whatever passes is what pricing takes: never a confirmation it would dead-letter.
        for n in &notices {
            if let Notice::Priced { terms, .. } | Notice::Settled { terms, .. } = n {
                let t = trade();
                assert_eq!(acme_processes::trading::confirmation::check(terms), Ok(()));
                assert_eq!(
                    acme_processes::trading::confirmation::check_fills(&t, terms),
                    Ok(()),
                    "{text}"
                );
            }
        }
    }
    // Both outcomes occur: a mutation in a figure's trailing zeros or a blank line passes.
    assert!(0 < accepted && accepted < 20_000, "{accepted}");
}

#[test]
fn a_file_read_again_after_a_crash_before_its_move_gives_the_same_messages() {
    let dir = std::env::temp_dir().join(format!("acme-filedrop-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let funds = crate::config::default_funds();
    let (outbox, inbox) = (dir.join("out"), dir.join("in"));
    let fd = FileDrop::open(&outbox, &inbox, &dir, &funds).expect("opens");
    let t = trade();
    let place = Envelope {
        id: msg_id(MsgKind::PlaceTrade, t.id, 0),
        from: Service::Aggregation,
        to: Service::Custodian,
        seq: 0,
        body: Message::PlaceTrade(t),
    };
    fd.send(&place).expect("placed");
    let r = trade_ref(t.id);
    let text = format!(
        "{HEADER}priced,{r},0,2.000000,40.00,20.000000,1.000000,2.00\n\
         settled,{r},0,2.000000,40.00,20.000000,1.000000,2.00\n"
    );
    std::fs::write(inbox.join("n.csv"), &text).expect("drop");
    let first: Vec<Envelope> = fd
        .take("n.csv")
        .expect("read")
        .expect("good")
        .iter()
        .map(envelope)
        .collect();
    // The process dies after delivering, before the move: the next one reads the file again.
    drop(fd);
    let fd = FileDrop::open(&outbox, &inbox, &dir, &funds).expect("reopens");
    let notices = fd.take("n.csv").expect("read").expect("still good");
    let again: Vec<Envelope> = notices.iter().map(envelope).collect();
    assert_eq!(
        first, again,
        "the same ids and bodies: duplicates to the hosts"
    );
    assert_eq!(again[1].to, Service::Settlement);
    assert_eq!(
        again[1].body,
        Message::TradeSettled {
            trade_id: t.id,
            net_units: 19_000_000,
            net_cash: 3_800,
        }
    );
    fd.done("n.csv", &notices).expect("done");
    // And once done, a copy still passes (its messages are duplicates), a contradiction not.
    let fd = FileDrop::open(&outbox, &inbox, &dir, &funds).expect("reopens");
    std::fs::write(inbox.join("copy.csv"), &text).expect("drop");
    assert!(fd.take("copy.csv").expect("read").is_ok());
    let other = format!("{HEADER}priced,{r},0,4.000000,40.00,10.000000,1.000000,4.00\n");
    std::fs::write(inbox.join("other.csv"), other).expect("drop");
    let bad = fd
        .take("other.csv")
        .expect("read")
        .expect_err("other figures");
    assert_eq!(bad.field, "revision", "{bad:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
