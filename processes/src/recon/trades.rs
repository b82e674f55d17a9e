//! The custodian's trade confirmations.
//!
//! CSV, header `trade_ref,trade_date,settle_date,asset,side,units,price,cash_amount,status`:
//! - `trade_ref`: ACME's reference of the net trade ([`super::trade_ref`]); a trade has a row
//!   per leg it has, `buy` (cash in, units bought) and `sell` (units in, cash fetched), both
//!   gross, at the one price;
//! - `trade_date`, `settle_date`: YYYY-MM-DD; for a trade not yet settled, the expected
//!   settlement date; never before the trade date, and the trade date never after the statement
//!   date;
//! - `asset`: the fund's ISIN; `side`: `buy` or `sell`;
//! - `units` (at most 6 places), `price` (pounds per unit, at most 6 places, positive; 0 for a
//!   rejected trade), `cash_amount` (pounds, at most 2 places): the filled part of the leg;
//! - `status`: `priced` (confirmed at a price, settlement pending), `settled`, `rejected` (the
//!   custodian refused the trade: nothing moved), `amended` (the custodian changed the terms of a
//!   priced trade; the row carries the new terms and replaces earlier rows of the trade).
//!
//! The confirmations of a day are the trades priced or settled that day and every trade still
//! open; older settled trades may be listed too. Rows of one leg are its history in order
//! (priced, then amended or settled); a row identical to an earlier one is a broken file; two
//! rows of one leg that are not one history (say, priced twice at different figures) are a
//! duplicated confirmation, which the engine reports as a break.

use super::holdings::{check_date, read_csv};
use super::{
    asset_isin, fmt_pence, fmt_price, fmt_units, isin_fund, parse_scaled, parse_trade_ref,
    trade_ref, InputError,
};
use crate::calendar::Date;
use crate::messages::{Side, TradeId};
use crate::money::Price;
use acme_ledger::chart::FundId;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfStatus {
    Priced,
    Settled,
    Rejected,
    Amended,
}

impl ConfStatus {
    pub fn name(self) -> &'static str {
        match self {
            ConfStatus::Priced => "priced",
            ConfStatus::Settled => "settled",
            ConfStatus::Rejected => "rejected",
            ConfStatus::Amended => "amended",
        }
    }

    fn parse(s: &str) -> Option<ConfStatus> {
        match s.to_ascii_lowercase().as_str() {
            "priced" => Some(ConfStatus::Priced),
            "settled" => Some(ConfStatus::Settled),
            "rejected" => Some(ConfStatus::Rejected),
            "amended" => Some(ConfStatus::Amended),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    pub line: u64,
    pub trade: TradeId,
    pub trade_date: Date,
    pub settle_date: Date,
    pub fund: FundId,
    pub side: Side,
    pub units_micro: u64,
    pub price: Price,
    pub cash_pence: u64,
    pub status: ConfStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmations {
    pub file: String,
    pub lines: Vec<Confirmation>,
}

pub const CSV_HEADER: [&str; 9] = [
    "trade_ref",
    "trade_date",
    "settle_date",
    "asset",
    "side",
    "units",
    "price",
    "cash_amount",
    "status",
];

impl Confirmations {
    /// The rows of each leg, in file order.
    pub fn legs(&self) -> BTreeMap<(TradeId, Side), Vec<&Confirmation>> {
        let mut out: BTreeMap<(TradeId, Side), Vec<&Confirmation>> = BTreeMap::new();
        for c in &self.lines {
            out.entry((c.trade, c.side)).or_default().push(c);
        }
        out
    }
}

/// Reads confirmations; `as_of` is the statement date (no trade may be dated after it).
pub fn parse_trades(
    file: &str,
    text: &str,
    as_of: Option<Date>,
) -> Result<Confirmations, InputError> {
    let rows = read_csv(file, text, &CSV_HEADER)?;
    let mut lines = Vec::with_capacity(rows.len());
    let mut seen: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for row in rows {
        let l = row.line;
        let f = &row.fields;
        let e = |field: &str, reason: String| InputError::new(file, Some(l), field, reason);
        let trade = parse_trade_ref(&f[0]).ok_or_else(|| {
            e(
                "trade_ref",
                format!(
                    "`{}` is not an ACME trade reference (ACME-YYYYMMDD-<fund>)",
                    f[0]
                ),
            )
        })?;
        let mut any = None;
        let trade_date = check_date(file, l, "trade_date", &f[1], &mut any, "")?;
        let mut any = None;
        let settle_date = check_date(file, l, "settle_date", &f[2], &mut any, "")?;
        if let Some(d) = as_of {
            if trade_date > d {
                return Err(e(
                    "trade_date",
                    format!("{trade_date} is after the statement date {d}"),
                ));
            }
        }
        if settle_date < trade_date {
            return Err(e(
                "settle_date",
                format!("{settle_date} is before the trade date {trade_date}"),
            ));
        }
        let fund = isin_fund(&f[3]).ok_or_else(|| {
            e(
                "asset",
                format!("unknown asset `{}`: not the ISIN of an ACME fund", f[3]),
            )
        })?;
        let side = match f[4].to_ascii_lowercase().as_str() {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            other => return Err(e("side", format!("`{other}` is neither buy nor sell"))),
        };
        let units = parse_scaled(&f[5], 6, false).map_err(|r| e("units", r))?;
        let units_micro = u64::try_from(units).map_err(|_| e("units", "out of range".into()))?;
        let status = ConfStatus::parse(&f[8]).ok_or_else(|| {
            e(
                "status",
                format!("`{}` is not priced, settled, rejected or amended", f[8]),
            )
        })?;
        let price = parse_scaled(&f[6], 6, false).map_err(|r| e("price", r))?;
        if price == 0 && status != ConfStatus::Rejected {
            return Err(e(
                "price",
                "must be positive (0 only on a rejected trade)".into(),
            ));
        }
        let price = Price(u64::try_from(price).map_err(|_| e("price", "out of range".into()))?);
        let cash = parse_scaled(&f[7], 2, false).map_err(|r| e("cash_amount", r))?;
        let cash_pence =
            u64::try_from(cash).map_err(|_| e("cash_amount", "out of range".into()))?;
        let key: Vec<String> = f.iter().map(|s| s.to_ascii_lowercase()).collect();
        if let Some(first) = seen.insert(key, l) {
            return Err(e(
                "trade_ref",
                format!("duplicate row: the same as line {first}"),
            ));
        }
        lines.push(Confirmation {
            line: l,
            trade,
            trade_date,
            settle_date,
            fund,
            side,
            units_micro,
            price,
            cash_pence,
            status,
        });
    }
    Ok(Confirmations {
        file: file.to_string(),
        lines,
    })
}

pub fn trades_csv(c: &Confirmations) -> String {
    let mut out = CSV_HEADER.join(",");
    out.push('\n');
    for t in &c.lines {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            trade_ref(t.trade),
            t.trade_date,
            t.settle_date,
            asset_isin(t.fund),
            if t.side == Side::Buy { "buy" } else { "sell" },
            fmt_units(t.units_micro as i128),
            fmt_price(t.price.0 as i128),
            fmt_pence(t.cash_pence as i128),
            t.status.name()
        ));
    }
    out
}
