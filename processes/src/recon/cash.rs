//! Cash statements: the bank's, and the custodian's cash.
//!
//! CSV, header `statement_date,account,currency,balance`: one line per account, `account` one
//! of the names of [`CashAccount`] (`ACME-CLIENT-MONEY` at the bank; `ACME-CUSTODY-CASH-SETTLED`
//! and `ACME-CUSTODY-CASH-PENDING` at the custodian), `currency` `GBP`, `balance` in pounds with
//! at most 2 places (a minus sign allowed), within the platform's range (`u64` pence either
//! way). Several statements may be reconciled together; an account may appear only once across
//! them. A statement speaks for the institution of its lines, and an account of that institution
//! it leaves out is a break (`missing_cash_line`), not a balance taken as reconciled.

use super::holdings::{check_date, read_csv};
use super::{fmt_pence, parse_scaled, CashAccount, InputError, CASH_ASSET};
use crate::calendar::Date;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CashLine {
    pub line: u64,
    pub account: CashAccount,
    pub balance_pence: i128,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CashStatement {
    pub file: String,
    pub date: Date,
    pub lines: Vec<CashLine>,
}

pub const CSV_HEADER: [&str; 4] = ["statement_date", "account", "currency", "balance"];

pub fn parse_cash(
    file: &str,
    text: &str,
    expect_date: Option<Date>,
) -> Result<CashStatement, InputError> {
    let rows = read_csv(file, text, &CSV_HEADER)?;
    let mut date = expect_date;
    let mut lines = Vec::new();
    let mut seen: BTreeMap<CashAccount, u64> = BTreeMap::new();
    for row in rows {
        let l = row.line;
        let f = &row.fields;
        let e = |field: &str, reason: String| InputError::new(file, Some(l), field, reason);
        check_date(
            file,
            l,
            "statement_date",
            &f[0],
            &mut date,
            "the statement date",
        )?;
        let account = CashAccount::from_name(&f[1]).ok_or_else(|| {
            let names: Vec<&str> = CashAccount::ALL.iter().map(|a| a.name()).collect();
            e(
                "account",
                format!("unknown account `{}` (known: {})", f[1], names.join(", ")),
            )
        })?;
        if !f[2].eq_ignore_ascii_case(CASH_ASSET) {
            return Err(e(
                "currency",
                format!(
                    "`{}` is not {CASH_ASSET}, the only currency of the ledger",
                    f[2]
                ),
            ));
        }
        let balance_pence = parse_scaled(&f[3], 2, true).map_err(|r| e("balance", r))?;
        // The platform's cash is u64 pence: a figure beyond it is a broken file, and bounding it
        // keeps the engine's differences far from the ends of i128.
        if balance_pence.unsigned_abs() > u128::from(u64::MAX) {
            return Err(e("balance", format!("`{}` is out of range", f[3])));
        }
        if let Some(first) = seen.insert(account, l) {
            return Err(e(
                "account",
                format!(
                    "duplicate row: {} is already on line {first}",
                    account.name()
                ),
            ));
        }
        lines.push(CashLine {
            line: l,
            account,
            balance_pence,
        });
    }
    let Some(date) = date else {
        return Err(InputError::new(
            file,
            Some(2),
            "statement_date",
            "no rows and no statement date to reconcile against",
        ));
    };
    Ok(CashStatement {
        file: file.to_string(),
        date,
        lines,
    })
}

pub fn cash_csv(st: &CashStatement) -> String {
    let mut out = CSV_HEADER.join(",");
    out.push('\n');
    for l in &st.lines {
        out.push_str(&format!(
            "{},{},{CASH_ASSET},{}\n",
            st.date,
            l.account.name(),
            fmt_pence(l.balance_pence)
        ));
    }
    out
}
