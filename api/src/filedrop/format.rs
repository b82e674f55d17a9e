//! The file-drop custodian's two file formats, version 1. Both are CSV without quoting: a
//! version line, a header line naming the columns, then one row per line (`\n` or `\r\n`;
//! blank lines are skipped). Figures are decimals in pounds (cash, 2 places at most), units (6)
//! and pounds per unit (prices, 6), parsed digit by digit into integers, never through a float.
//!
//! **Orders** (written to the outbox, one message a file):
//! ```text
//! acme-custodian-orders,1
//! kind,trade_ref,trade_date,isin,buy_cash,sell_units
//! place,ACME-20260105-1,2026-01-05,GB00ACME0019,40.00,0.000000
//! ```
//! `kind` is `place` (a net trade: buy `buy_cash` pounds' worth, sell `sell_units` units), or
//! `chase-confirmation` / `chase-settlement` (the platform has no answer for the trade yet:
//! send it again; the figures are empty). `trade_ref` is ACME's reference of the trade
//! (`ACME-YYYYMMDD-<fund>`), the one the custodian's answers name.
//!
//! **Notices** (read from the inbox, any number of rows a file):
//! ```text
//! acme-custodian-notices,1
//! kind,trade_ref,revision,price,buy_cash,units_bought,sell_units,cash_for_sold
//! priced,ACME-20260105-1,0,1.250000,40.00,32.000000,0.000000,0.00
//! settled,ACME-20260105-1,0,1.250000,40.00,32.000000,0.000000,0.00
//! rejected,ACME-20260105-2,0,,,,,
//! ```
//! The columns may come in any order, but every one must be there and no other. `kind`:
//! `priced` (the trade is struck: revision 0; an amendment of its terms: revision 1 to 7),
//! `settled` (the trade settled on the terms of `revision`, which must be its latest), or
//! `rejected` (the custodian refused the trade: revision 0, no figures). `buy_cash` and
//! `sell_units` are the filled parts of the legs (at most what was ordered), `units_bought`
//! and `cash_for_sold` what they came to at `price`, gross, rounded either way by one minor unit
//! at most. Anything else (an unknown kind or column, a figure that does not add up, a trade
//! this platform never placed) refuses the whole file.

use acme_processes::messages::{trade_date, trade_fund, Confirmation, ExternalTrade, TradeId};
use acme_processes::money::Price;
use acme_processes::recon::{parse_trade_ref, trade_ref};
use acme_processes::trading::confirmation::{check, Refusal};
use acme_processes::trading::pricing::REVISIONS_MAX;

pub const ORDERS_VERSION: &str = "acme-custodian-orders,1";
pub const ORDER_COLUMNS: &str = "kind,trade_ref,trade_date,isin,buy_cash,sell_units";
pub const NOTICES_VERSION: &str = "acme-custodian-notices,1";
pub const NOTICE_COLUMNS: [&str; 8] = [
    "kind",
    "trade_ref",
    "revision",
    "price",
    "buy_cash",
    "units_bought",
    "sell_units",
    "cash_for_sold",
];
/// Most rows a notices file may hold: a day's answers are one per fund and step.
const ROWS_MAX: usize = 100_000;

/// Where a file is wrong: the 1-based line (none for the file as a whole), the field, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    pub line: Option<u64>,
    pub field: String,
    pub reason: String,
}

impl Bad {
    pub fn at(line: u64, field: &str, reason: impl Into<String>) -> Bad {
        Bad {
            line: Some(line),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// One row of a notices file, checked by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    Priced { line: u64, terms: Confirmation },
    Settled { line: u64, terms: Confirmation },
    Rejected { line: u64, trade: TradeId },
}

impl Notice {
    pub fn line(&self) -> u64 {
        match self {
            Notice::Priced { line, .. }
            | Notice::Settled { line, .. }
            | Notice::Rejected { line, .. } => *line,
        }
    }

    pub fn trade(&self) -> TradeId {
        match self {
            Notice::Priced { terms, .. } | Notice::Settled { terms, .. } => terms.trade_id,
            Notice::Rejected { trade, .. } => *trade,
        }
    }
}

/// What the platform sends the custodian, as an order file's one row.
pub enum Order<'a> {
    Place(&'a ExternalTrade),
    ChaseConfirmation(TradeId),
    ChaseSettlement(TradeId),
}

/// The order file for `order`; `isin` is the fund's (empty for a fund not configured).
pub fn render_order(order: &Order, isin: &str) -> String {
    let (kind, id, cash, units) = match order {
        Order::Place(t) => (
            "place",
            t.id,
            crate::decimal::format(t.buy_cash_pence, 2),
            crate::decimal::format(t.sell_units_micro, 6),
        ),
        Order::ChaseConfirmation(id) => ("chase-confirmation", *id, String::new(), String::new()),
        Order::ChaseSettlement(id) => ("chase-settlement", *id, String::new(), String::new()),
    };
    format!(
        "{ORDERS_VERSION}\n{ORDER_COLUMNS}\n{kind},{},{},{isin},{cash},{units}\n",
        trade_ref(id),
        trade_date(id)
    )
}

/// The trade of a `place` order file this service wrote (its own record of what it placed).
pub fn parse_placed(text: &str) -> Result<ExternalTrade, Bad> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.first() != Some(&ORDERS_VERSION) || lines.get(1) != Some(&ORDER_COLUMNS) {
        return Err(Bad::at(1, "version", "not an order file of version 1"));
    }
    let f: Vec<&str> = lines.get(2).map_or(Vec::new(), |l| l.split(',').collect());
    let [kind, reference, _, _, cash, units] = f[..] else {
        return Err(Bad::at(3, "kind", "not one row of six fields"));
    };
    if kind != "place" {
        return Err(Bad::at(
            3,
            "kind",
            format!("`{kind}` is not a placed trade"),
        ));
    }
    let id = parse_trade_ref(reference)
        .ok_or_else(|| Bad::at(3, "trade_ref", format!("`{reference}` is no trade ref")))?;
    Ok(ExternalTrade {
        id,
        fund: trade_fund(id),
        trade_date: trade_date(id),
        buy_cash_pence: amount(cash, 2).map_err(|r| Bad::at(3, "buy_cash", r))?,
        sell_units_micro: amount(units, 6).map_err(|r| Bad::at(3, "sell_units", r))?,
    })
}

/// A figure of at most `places` decimal places as an integer of `10^-places`: digits, one
/// optional point with digits after it; no sign, exponent, separator or space.
pub fn amount(text: &str, places: u32) -> Result<u64, String> {
    let shown: String = text.chars().take(40).collect();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(format!("`{shown}` is not a decimal like 12.34"));
    }
    if text.contains('.') && fraction.is_empty() {
        return Err(format!("`{shown}` has a point but no digits after it"));
    }
    if fraction.len() > places as usize {
        return Err(format!("`{shown}` has more than {places} decimal places"));
    }
    let padded = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(places as usize);
    let mut v: u64 = 0;
    for b in whole.bytes().chain(padded) {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| format!("`{shown}` is too large"))?;
    }
    Ok(v)
}

/// The column of each field of a header line, in [`NOTICE_COLUMNS`] order.
fn columns(header: &str) -> Result<[usize; 8], Bad> {
    let mut at = [usize::MAX; 8];
    for (i, name) in header.split(',').enumerate() {
        let shown: String = name.chars().take(40).collect();
        let Some(k) = NOTICE_COLUMNS.iter().position(|c| *c == name) else {
            let known = NOTICE_COLUMNS.join(", ");
            return Err(Bad::at(
                2,
                &shown,
                format!("unknown column; the columns are {known}"),
            ));
        };
        if at[k] != usize::MAX {
            return Err(Bad::at(2, name, "column given twice"));
        }
        at[k] = i;
    }
    match NOTICE_COLUMNS
        .iter()
        .zip(at)
        .find(|(_, i)| *i == usize::MAX)
    {
        Some((name, _)) => Err(Bad::at(2, name, "column missing")),
        None => Ok(at),
    }
}

/// Parses and checks a notices file row by row (each row by itself: [`super::books`] checks
/// them against the trades placed and the answers already taken).
pub fn parse_notices(text: &str) -> Result<Vec<Notice>, Bad> {
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    match lines.next() {
        Some(NOTICES_VERSION) => {}
        Some(v) if v.starts_with("acme-custodian-notices,") => {
            let v: String = v.chars().take(60).collect();
            return Err(Bad::at(
                1,
                "version",
                format!("`{v}`: only version 1 is read"),
            ));
        }
        _ => {
            return Err(Bad::at(
                1,
                "version",
                format!("the first line must be `{NOTICES_VERSION}`"),
            ))
        }
    }
    let at = columns(lines.next().unwrap_or(""))?;
    let mut out = Vec::new();
    for (i, row) in lines.enumerate() {
        let line = i as u64 + 3;
        if row.is_empty() {
            continue;
        }
        if out.len() == ROWS_MAX {
            return Err(Bad::at(line, "kind", format!("more than {ROWS_MAX} rows")));
        }
        let fields: Vec<&str> = row.split(',').collect();
        if fields.len() != NOTICE_COLUMNS.len() {
            let n = fields.len();
            return Err(Bad::at(
                line,
                "kind",
                format!("{n} fields; the header has 8"),
            ));
        }
        out.push(parse_row(line, &fields, &at)?);
    }
    if out.is_empty() {
        return Err(Bad {
            line: None,
            field: "kind".into(),
            reason: "the file has no rows".into(),
        });
    }
    Ok(out)
}

fn parse_row(line: u64, fields: &[&str], at: &[usize; 8]) -> Result<Notice, Bad> {
    let get = |name: &str| -> &str {
        let k = NOTICE_COLUMNS.iter().position(|c| *c == name).unwrap_or(0);
        fields[at[k]]
    };
    let bad = |field: &str, reason: String| Bad::at(line, field, reason);
    let shown = |field: &str| get(field).chars().take(40).collect::<String>();
    let reference = get("trade_ref");
    let trade = parse_trade_ref(reference).ok_or_else(|| {
        let why = "is not an ACME trade reference (ACME-YYYYMMDD-<fund>)";
        bad("trade_ref", format!("`{}` {why}", shown("trade_ref")))
    })?;
    let revision = get("revision");
    let revision = match revision.parse::<u32>() {
        Ok(r) if r <= REVISIONS_MAX && revision.bytes().all(|b| b.is_ascii_digit()) => r,
        _ => {
            let why = format!("is not a revision 0 to {REVISIONS_MAX}");
            return Err(bad("revision", format!("`{}` {why}", shown("revision"))));
        }
    };
    let figures = [
        "price",
        "buy_cash",
        "units_bought",
        "sell_units",
        "cash_for_sold",
    ];
    match get("kind") {
        "rejected" => {
            if revision != 0 {
                return Err(bad("revision", "a rejection is of revision 0".into()));
            }
            if let Some(f) = figures.iter().find(|f| !get(f).is_empty()) {
                return Err(bad(f, "a rejection has no figures (leave it empty)".into()));
            }
            Ok(Notice::Rejected { line, trade })
        }
        kind @ ("priced" | "settled") => {
            let figure =
                |field: &str, places| amount(get(field), places).map_err(|r| bad(field, r));
            let terms = Confirmation {
                trade_id: trade,
                revision,
                price: Price(figure("price", 6)?),
                buy_cash_filled: figure("buy_cash", 2)?,
                units_bought: figure("units_bought", 6)?,
                sell_units_filled: figure("sell_units", 6)?,
                cash_for_sold: figure("cash_for_sold", 2)?,
            };
            check(&terms).map_err(|r| {
                let field = refused_field(&r);
                let why = r.to_string();
                let prefix = format!("{field}: ");
                bad(field, why.strip_prefix(&prefix).unwrap_or(&why).to_string())
            })?;
            Ok(if kind == "priced" {
                Notice::Priced { line, terms }
            } else {
                Notice::Settled { line, terms }
            })
        }
        _ => Err(bad(
            "kind",
            format!("`{}` is not priced, settled or rejected", shown("kind")),
        )),
    }
}

/// The column a refusal of pricing's names.
fn refused_field(r: &Refusal) -> &'static str {
    match r {
        Refusal::ZeroPrice => "price",
        Refusal::UnitsWithoutBuyFill | Refusal::UnitsNotAtPrice(..) => "units_bought",
        Refusal::ProceedsWithoutSellFill | Refusal::ProceedsNotAtPrice(..) => "cash_for_sold",
    }
}
