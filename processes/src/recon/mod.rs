//! Reconciliation: the ledger against what the custodian and the bank say.
//!
//! One engine for operations (`acme recon`, every day, against the custodian's and the bank's
//! statements) and for the simulator (its end-of-day oracle, against the simulated custodian's
//! and bank's own books). Everything here is pure: parsers take `&str`, the ledger comes in as a
//! stream of accounts and transfers ([`ledger::LedgerScan`]), and the result is a [`Report`].
//!
//! Four levels ([`Level`]):
//! - **internal**: per ledger debits equal credits; per fund the units in member and ACME pots
//!   equal the custodian mirror; no member balance negative; with a complete journal, every
//!   account's balances equal the replay of its transfers;
//! - **positions**: the custodian mirror (settled and pending apart) against the holdings
//!   statement, per asset, to the micro-unit;
//! - **trades**: every external trade in the ledger against the custodian's confirmations;
//! - **cash**: the bank and custodian cash accounts against the cash statements, within a
//!   tolerance (default zero).
//!
//! A difference that trades in flight explain (the custodian is a step ahead of the ledger, and
//! the step was due on the statement date) is a **timing** break, listed with those trades;
//! anything else is a **true** break. See [`engine`] for the rules.
//!
//! Identifiers at the edges: a fund is an asset with an ISIN ([`asset_isin`]), an external trade
//! has a reference ([`trade_ref`]), the cash accounts have names ([`CashAccount`]).

pub mod cash;
mod combine;
pub mod engine;
pub mod files;
pub mod holdings;
pub mod ledger;
pub mod replay;
pub mod source;
pub mod trades;

use crate::calendar::Date;
use crate::messages::{trade_date, trade_fund, trade_id, TradeId};
use crate::money::{PENCE_PER_POUND, PRICE_SCALE, UNITS_SCALE};
use acme_ledger::chart::{FundId, FUND_MAX};
use serde::Serialize;

pub use engine::{reconcile, ReconConfig, Statements};

/// The asset code of cash.
pub const CASH_ASSET: &str = "GBP";

/// The safekeeping account ACME's funds are held in at the custodian, unless configured.
pub const DEFAULT_CUSTODIAN_ACCOUNT: &str = "ACME-MT-0001";

/// Where a file-level problem is: the file, the 1-based line (or record), the field, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputError {
    pub file: String,
    pub line: Option<u64>,
    pub field: String,
    pub reason: String,
}

impl InputError {
    pub fn new(
        file: &str,
        line: Option<u64>,
        field: &str,
        reason: impl Into<String>,
    ) -> InputError {
        InputError {
            file: file.to_string(),
            line,
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

impl core::fmt::Display for InputError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.line {
            Some(l) => write!(
                f,
                "{}: line {l}: field `{}`: {}",
                self.file, self.field, self.reason
            ),
            None => write!(f, "{}: field `{}`: {}", self.file, self.field, self.reason),
        }
    }
}

impl std::error::Error for InputError {}

// ---------------------------------------------------------------------------------------------
// Identifiers

/// The ISIN of a fund: `GB` + `ACM` + the fund number on 6 digits + the ISIN check digit
/// (ISO 6166: letters to numbers, then Luhn). ACME's funds are simulated, so their ISINs are too,
/// but they are well-formed, and an ISIN with a wrong check digit is refused like any other.
pub fn asset_isin(fund: FundId) -> String {
    let body = format!("GBACM{fund:06}");
    format!("{body}{}", isin_check_digit(&body))
}

/// The fund an ISIN names, if it is one of ACME's (prefix, digits and check digit right, fund in
/// range).
pub fn isin_fund(isin: &str) -> Option<FundId> {
    let s = isin.trim();
    if s.len() != 12 || !s.is_ascii() || !s.starts_with("GBACM") {
        return None;
    }
    let digits = &s[5..11];
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let check = s.as_bytes()[11];
    if check != isin_check_digit(&s[..11]) as u8 + b'0' {
        return None;
    }
    let fund: FundId = digits.parse().ok()?;
    (1..=FUND_MAX).contains(&fund).then_some(fund)
}

fn isin_check_digit(body: &str) -> u32 {
    // Letters become two digits (A=10 .. Z=35); then Luhn from the rightmost digit, doubling it.
    let mut digits = Vec::new();
    for c in body.chars() {
        match c.to_digit(36) {
            Some(v) if v >= 10 => {
                digits.push(v / 10);
                digits.push(v % 10);
            }
            Some(v) => digits.push(v),
            None => return 0,
        }
    }
    let mut sum = 0;
    for (i, d) in digits.iter().rev().enumerate() {
        let v = if i % 2 == 0 { d * 2 } else { *d };
        sum += v / 10 + v % 10;
    }
    (10 - sum % 10) % 10
}

/// The reference of an external trade, as ACME gives it to the custodian and the custodian
/// quotes it back: `ACME-<trade date YYYYMMDD>-<fund>` (one net trade per fund and date; its buy
/// and sell legs are told apart by the confirmations' `side`).
pub fn trade_ref(id: TradeId) -> String {
    let (y, m, d) = trade_date(id).ymd();
    format!("ACME-{y:04}{m:02}{d:02}-{}", trade_fund(id))
}

/// The trade id of a reference made by [`trade_ref`].
pub fn parse_trade_ref(s: &str) -> Option<TradeId> {
    let mut parts = s.trim().split('-');
    let (Some("ACME"), Some(date), Some(fund), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = Date::from_ymd(
        date[..4].parse().ok()?,
        date[4..6].parse().ok()?,
        date[6..].parse().ok()?,
    )?;
    if fund.is_empty() || !fund.bytes().all(|b| b.is_ascii_digit()) || fund.len() > 6 {
        return None;
    }
    let fund: FundId = fund.parse().ok()?;
    if fund == 0 || fund > FUND_MAX {
        return None;
    }
    Some(trade_id(date, fund))
}

/// The cash accounts reconciled, by the name statements use for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum CashAccount {
    /// ACME's client-money bank account (the ledger's `BANK`, cash ledger, debit balance).
    ClientMoney,
    /// Cash the custodian holds for settled trades (`CUSTODIAN_SETTLED`, cash ledger).
    CustodySettled,
    /// Cash the custodian holds for priced, unsettled trades (`CUSTODIAN_UNSETTLED`, cash ledger).
    CustodyPending,
}

impl CashAccount {
    pub const ALL: [CashAccount; 3] = [
        CashAccount::ClientMoney,
        CashAccount::CustodySettled,
        CashAccount::CustodyPending,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CashAccount::ClientMoney => "ACME-CLIENT-MONEY",
            CashAccount::CustodySettled => "ACME-CUSTODY-CASH-SETTLED",
            CashAccount::CustodyPending => "ACME-CUSTODY-CASH-PENDING",
        }
    }

    pub fn from_name(s: &str) -> Option<CashAccount> {
        CashAccount::ALL.into_iter().find(|a| a.name() == s.trim())
    }
}

// ---------------------------------------------------------------------------------------------
// Decimal edges

/// Parses a decimal with at most `places` decimal places into an integer of `10^places` minor
/// units. `negative_ok` allows a leading minus. Integer arithmetic, checked at every step: a
/// figure too large for an `i128` of minor units is an error, never a panic (a statement is
/// external input; `rust_decimal` would panic multiplying a 24-digit figure by the scale).
pub fn parse_scaled(s: &str, places: u32, negative_ok: bool) -> Result<i128, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("is empty".into());
    }
    // A statement figure is plain digits: no exponent, no separators, no `+`.
    let (negative, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t),
    };
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || frac.is_some_and(|f| !digits(f)) {
        return Err(format!("`{t}` is not a decimal number"));
    }
    let frac = frac.unwrap_or("");
    let significant = frac.trim_end_matches('0');
    if significant.len() > places as usize {
        return Err(format!("`{t}` has more than {places} decimal places"));
    }
    let out_of_range = || format!("`{t}` is out of range");
    let mut v: i128 = 0;
    let padded = significant
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(places as usize);
    for b in whole.bytes().chain(padded) {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(b - b'0')))
            .ok_or_else(out_of_range)?;
    }
    if negative && v != 0 {
        if !negative_ok {
            return Err(format!("`{t}` is negative"));
        }
        v = -v;
    }
    Ok(v)
}

/// Formats an integer of `10^places` minor units as a decimal with exactly `places` places.
pub fn format_scaled(v: i128, places: u32) -> String {
    let scale = 10i128.pow(places);
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let scale_u = scale as u128;
    if places == 0 {
        return format!("{sign}{a}");
    }
    format!(
        "{sign}{}.{:0width$}",
        a / scale_u,
        a % scale_u,
        width = places as usize
    )
}

/// Units (micro-units) for people.
pub fn fmt_units(micro: i128) -> String {
    format_scaled(micro, UNITS_SCALE.ilog10())
}

/// Pence for people, in pounds.
pub fn fmt_pence(pence: i128) -> String {
    format_scaled(pence, PENCE_PER_POUND.ilog10())
}

/// A price (micro-pounds) for people.
pub fn fmt_price(micro: i128) -> String {
    format_scaled(micro, PRICE_SCALE.ilog10())
}

// ---------------------------------------------------------------------------------------------
// The report

/// The level a break was found at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Internal,
    Positions,
    Trades,
    Cash,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::Internal,
        Level::Positions,
        Level::Trades,
        Level::Cash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Internal => "internal",
            Level::Positions => "positions",
            Level::Trades => "trades",
            Level::Cash => "cash",
        }
    }
}

/// Whether trades in flight explain a break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// Explained by trades in flight whose step is due on the statement date: it clears itself.
    Timing,
    /// Anything else: a person must look.
    True,
}

impl Classification {
    pub fn name(self) -> &'static str {
        match self {
            Classification::Timing => "timing",
            Classification::True => "true",
        }
    }
}

/// What kind of difference a break is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    // internal
    /// A ledger's debits do not equal its credits.
    LedgerUnbalanced,
    /// A fund's units in pots differ from its custodian mirror.
    PotsNotMatchingMirror,
    /// A member (or rounding) account's debits exceed its credits.
    NegativeBalance,
    /// An account's balances differ from the replay of its transfers.
    BalanceNotMatchingJournal,
    /// An account whose id or code is not in the chart of accounts holds value.
    UnknownAccount,
    // positions
    /// Settled units differ.
    SettledUnits,
    /// Pending (priced, unsettled) units differ.
    PendingUnits,
    /// The ledger holds an asset the statement does not list.
    MissingHolding,
    /// The statement lists an asset the ledger does not hold.
    UnexpectedHolding,
    // trades
    /// A trade in the ledger has no confirmation.
    MissingConfirmation,
    /// A confirmed trade is not in the ledger.
    MissingInLedger,
    /// More than one confirmation for a trade (none of them an amendment).
    DuplicateConfirmation,
    /// The custodian rejected a trade the ledger booked.
    RejectedByCustodian,
    /// Settled at one side, not at the other.
    Status,
    Units,
    Price,
    Cash,
    TradeDate,
    SettleDate,
    Asset,
    // cash
    /// A cash balance differs by more than the tolerance.
    CashBalance,
    /// A statement of the institution that holds a cash account has no line for it.
    MissingCashLine,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::LedgerUnbalanced => "ledger_unbalanced",
            Kind::PotsNotMatchingMirror => "pots_not_matching_mirror",
            Kind::NegativeBalance => "negative_balance",
            Kind::BalanceNotMatchingJournal => "balance_not_matching_journal",
            Kind::UnknownAccount => "unknown_account",
            Kind::SettledUnits => "settled_units",
            Kind::PendingUnits => "pending_units",
            Kind::MissingHolding => "missing_holding",
            Kind::UnexpectedHolding => "unexpected_holding",
            Kind::MissingConfirmation => "missing_confirmation",
            Kind::MissingInLedger => "missing_in_ledger",
            Kind::DuplicateConfirmation => "duplicate_confirmation",
            Kind::RejectedByCustodian => "rejected_by_custodian",
            Kind::Status => "status",
            Kind::Units => "units",
            Kind::Price => "price",
            Kind::Cash => "cash",
            Kind::TradeDate => "trade_date",
            Kind::SettleDate => "settle_date",
            Kind::Asset => "asset",
            Kind::CashBalance => "cash_balance",
            Kind::MissingCashLine => "missing_cash_line",
        }
    }
}

/// A figure on one side of a break, with its unit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// Micro-units.
    Units(i128),
    /// Pence.
    Pence(i128),
    /// Micro-pounds per unit.
    Price(i128),
    Date(Date),
    Text(String),
    /// Not there (a missing line, a missing trade).
    Absent,
}

impl Value {
    /// For people and files: decimals with their full places, dates as YYYY-MM-DD.
    pub fn render(&self) -> Option<String> {
        match self {
            Value::Units(v) => Some(fmt_units(*v)),
            Value::Pence(v) => Some(fmt_pence(*v)),
            Value::Price(v) => Some(fmt_price(*v)),
            Value::Date(d) => Some(d.to_string()),
            Value::Text(t) => Some(t.clone()),
            Value::Absent => None,
        }
    }

    /// Statement less ledger, where that means something (same numeric unit, or days between
    /// dates); a missing side counts as zero for numbers.
    pub fn difference(ledger: &Value, statement: &Value) -> Option<String> {
        use Value::*;
        let num = |v: &Value| match v {
            Units(x) | Pence(x) | Price(x) => Some(*x),
            Absent => Some(0),
            _ => None,
        };
        let unit = match (ledger, statement) {
            (Units(_), _) | (_, Units(_)) => 0,
            (Pence(_), _) | (_, Pence(_)) => 1,
            (Price(_), _) | (_, Price(_)) => 2,
            (Date(a), Date(b)) => return Some(format!("{:+} days", b.0 as i64 - a.0 as i64)),
            _ => return None,
        };
        let d = num(statement)? - num(ledger)?;
        Some(match unit {
            0 => fmt_units(d),
            1 => fmt_pence(d),
            _ => fmt_price(d),
        })
    }
}

/// One difference between the ledger and a statement (or within the ledger).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Break {
    pub level: Level,
    pub kind: Kind,
    /// ISIN of the fund, or `GBP` for cash.
    pub asset: String,
    /// The account: a ledger account (id and what it is), a custodian or cash account name, or
    /// the trade reference for trade breaks.
    pub account: String,
    pub ledger: Value,
    pub statement: Value,
    pub classification: Classification,
    /// The trades that explain a timing break (and, for a true break, the trades in flight that
    /// were considered and could not explain it).
    pub trades: Vec<String>,
    /// A sentence for the person who has to act.
    pub detail: String,
}

impl Break {
    pub fn difference(&self) -> Option<String> {
        Value::difference(&self.ledger, &self.statement)
    }
}

/// The ledger's and the statement's figures for one asset, for the chart and the summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PositionRow {
    pub asset: String,
    pub fund: Option<FundId>,
    pub ledger_settled: i128,
    pub ledger_pending: i128,
    pub statement_settled: Option<i128>,
    pub statement_pending: Option<i128>,
}

/// What a level did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LevelOutcome {
    pub level: Level,
    /// `None` when it ran; otherwise why it was skipped.
    pub skipped: Option<String>,
    /// How many items it compared (accounts, assets, trades, cash accounts).
    pub compared: u64,
    /// What a person should know about how it ran (what was not covered, and why).
    pub notes: Vec<String>,
}

/// The outcome of a reconciliation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub as_of: Date,
    pub levels: Vec<LevelOutcome>,
    pub breaks: Vec<Break>,
    pub positions: Vec<PositionRow>,
}

impl Report {
    pub fn true_breaks(&self) -> usize {
        self.breaks
            .iter()
            .filter(|b| b.classification == Classification::True)
            .count()
    }

    pub fn timing_breaks(&self) -> usize {
        self.breaks.len() - self.true_breaks()
    }

    /// Clean when no true break: timing breaks clear themselves.
    pub fn is_clean(&self) -> bool {
        self.true_breaks() == 0
    }

    pub fn status(&self) -> &'static str {
        if self.is_clean() {
            "clean"
        } else {
            "breaks"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isins_are_well_formed_and_round_trip() {
        // A real ISIN checks out with the same algorithm (Apple).
        assert_eq!(isin_check_digit("US037833100"), 5);
        for fund in [1, 2, 5, 999, FUND_MAX] {
            let isin = asset_isin(fund);
            assert_eq!(isin.len(), 12);
            assert_eq!(isin_fund(&isin), Some(fund), "{isin}");
        }
        let good = asset_isin(3);
        let mut bad = good.clone();
        bad.replace_range(11..12, if good.ends_with('0') { "1" } else { "0" });
        assert_eq!(isin_fund(&bad), None);
        assert_eq!(isin_fund("US0378331005"), None);
        assert_eq!(isin_fund(&format!("GBACM{:06}", 0)), None);
    }

    #[test]
    fn trade_refs_round_trip() {
        let d = Date::from_ymd(2026, 1, 5).unwrap();
        let id = trade_id(d, 3);
        assert_eq!(trade_ref(id), "ACME-20260105-3");
        assert_eq!(parse_trade_ref("ACME-20260105-3"), Some(id));
        assert_eq!(
            parse_trade_ref(&trade_ref(trade_id(d, 60_000))),
            Some(trade_id(d, 60_000))
        );
        for bad in [
            "ACME-20260132-3",
            "ACME-20260105-0",
            "ACME-20260105-x",
            "X-20260105-3",
            "ACME-20260105-3-B",
        ] {
            assert_eq!(parse_trade_ref(bad), None, "{bad}");
        }
    }

    #[test]
    fn decimals_parse_exactly_and_print_back() {
        assert_eq!(parse_scaled("12.5", 6, false), Ok(12_500_000));
        assert_eq!(parse_scaled("0.000001", 6, false), Ok(1));
        assert!(parse_scaled("0.0000001", 6, false).is_err());
        assert!(parse_scaled("-1", 2, false).is_err());
        assert_eq!(parse_scaled("-1.25", 2, true), Ok(-125));
        for bad in [
            "", "1e3", "1,000", "abc", "1.", ".5", "--1", "1.2.3", "+1", "1_000",
        ] {
            assert!(parse_scaled(bad, 2, true).is_err(), "{bad}");
        }
        // Checked to the last digit: the ends of i128 are figures, one past them an error
        // (before, `rust_decimal` panicked scaling a figure of 24 digits or more).
        let max = i128::MAX.to_string();
        assert_eq!(parse_scaled(&max, 0, false), Ok(i128::MAX));
        assert_eq!(parse_scaled(&format!("-{max}"), 0, true), Ok(-i128::MAX));
        let past = "170141183460469231731687303715884105728";
        assert!(parse_scaled(past, 0, false)
            .unwrap_err()
            .contains("out of range"));
        let wide = "9".repeat(40);
        assert!(parse_scaled(&wide, 6, false)
            .unwrap_err()
            .contains("out of range"));
        // Zeros past the places say nothing; a negative zero is zero.
        assert_eq!(parse_scaled("1.50000000", 2, false), Ok(150));
        assert_eq!(parse_scaled("-0.00", 2, false), Ok(0));
        assert_eq!(fmt_units(12_500_000), "12.500000");
        assert_eq!(fmt_pence(-5), "-0.05");
        assert_eq!(
            Value::difference(&Value::Units(3), &Value::Absent),
            Some("-0.000003".into())
        );
    }
}
