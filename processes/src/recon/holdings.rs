//! The custodian's holdings statement, as CSV or as an ISO 20022 `semt.002` securities balance
//! custody report; both read into one [`HoldingsStatement`].
//!
//! **CSV**: header `statement_date,custodian_account,asset,settled_units,pending_units` (columns
//! in any order; extra columns are ignored), one line per asset, units as decimals of at most 6
//! places; pending units are negative for a pending delivery (a net sell not yet settled).
//!
//! **semt.002** (`urn:iso:std:iso:20022:tech:xsd:semt.002.001.NN`, `Document/SctiesBalCtdyRpt`),
//! the subset that carries these figures:
//! - `Pgntn/LastPgInd`: must be `true` (one page: a paginated statement is sent as one file);
//! - `StmtGnlDtls/StmtDtTm/Dt` (or `DtTm`): the statement date;
//! - `StmtGnlDtls/StmtBsis/Cd`: `CONT` or `TRAD` (the aggregate balance includes pending
//!   receipts) or `SETT` (it does not);
//! - `SfkpgAcct/Id`: the custodian account;
//! - per `BalForAcct`: `FinInstrmId/ISIN`; `AggtBal/ShrtLngInd` (`LONG`; a short position is
//!   refused); `AggtBal/Qty/Qty/Qty/Unit`: the aggregate units; `BalBrkdwn` with
//!   `SubBalTp/Cd` = `PENR` (pending receipt, a net buy) or `PEND` (pending delivery, a net
//!   sell) and `Qty/Qty/Unit`: the pending units (receipts less deliveries). Settled units are
//!   the aggregate less pending on a contractual basis, the aggregate on a settled basis. `AWAS`
//!   (available) is read past; any other sub-balance code, or a breakdown without one, is
//!   refused.
//!
//! Either way: one line per asset, only ACME's ISINs, the statement date and custodian account
//! the reconciliation expects; anything else is an [`InputError`] naming the line and field.

use super::{asset_isin, fmt_units, isin_fund, parse_scaled, InputError};
use crate::calendar::Date;
use acme_ledger::chart::FundId;
use std::collections::BTreeMap;

/// What a statement must agree with: the reconciliation date and the custodian account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    pub date: Option<Date>,
    pub custodian_account: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldingLine {
    /// Where it was read (1-based line).
    pub line: u64,
    pub fund: FundId,
    /// Settled units (micro), never negative.
    pub settled_units: i128,
    /// Priced, unsettled units (micro): positive for a pending receipt (a net buy), negative for
    /// a pending delivery (a net sell).
    pub pending_units: i128,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldingsStatement {
    pub file: String,
    pub date: Date,
    pub custodian_account: String,
    pub lines: Vec<HoldingLine>,
}

impl HoldingsStatement {
    pub fn by_fund(&self) -> BTreeMap<FundId, &HoldingLine> {
        self.lines.iter().map(|l| (l.fund, l)).collect()
    }
}

pub const CSV_HEADER: [&str; 5] = [
    "statement_date",
    "custodian_account",
    "asset",
    "settled_units",
    "pending_units",
];

/// Reads a holdings statement, CSV or semt.002 XML, told apart by its first character.
pub fn parse_holdings(
    file: &str,
    text: &str,
    expect: &Expect,
) -> Result<HoldingsStatement, InputError> {
    let body = text.trim_start_matches('\u{feff}').trim_start();
    if body.starts_with('<') {
        parse_semt002(file, body, expect)
    } else {
        parse_holdings_csv(file, text, expect)
    }
}

/// One CSV row, its fields in the order of the columns asked for.
pub(crate) struct Row {
    pub line: u64,
    pub fields: Vec<String>,
}

/// Reads a CSV file with (at least) `columns`; rows come back in their order.
pub(crate) fn read_csv(file: &str, text: &str, columns: &[&str]) -> Result<Vec<Row>, InputError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = rdr.records();
    let csv_err = |e: csv::Error| {
        let line = e.position().map(|p| p.line());
        InputError::new(file, line, "(row)", format!("not readable as CSV: {e}"))
    };
    let header = match records.next() {
        None => {
            return Err(InputError::new(
                file,
                Some(1),
                "(header)",
                format!("empty file: expected the header {}", columns.join(",")),
            ))
        }
        Some(r) => r.map_err(csv_err)?,
    };
    let header_line = header.position().map(|p| p.line()).unwrap_or(1);
    let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) && !n.is_empty() {
            return Err(InputError::new(
                file,
                Some(header_line),
                n,
                "column appears twice in the header",
            ));
        }
    }
    let mut index = Vec::with_capacity(columns.len());
    for &c in columns {
        match names.iter().position(|n| n == c) {
            Some(i) => index.push(i),
            None => {
                return Err(InputError::new(
                    file,
                    Some(header_line),
                    c,
                    format!(
                        "missing column (the header is `{}`; expected {})",
                        header.iter().collect::<Vec<_>>().join(","),
                        columns.join(",")
                    ),
                ))
            }
        }
    }
    let mut rows = Vec::new();
    for r in records {
        let r = r.map_err(csv_err)?;
        let line = r.position().map(|p| p.line()).unwrap_or(0);
        if r.len() == 1 && r.get(0) == Some("") {
            continue;
        }
        if r.len() > names.len() {
            return Err(InputError::new(
                file,
                Some(line),
                "(row)",
                format!("{} fields, the header has {}", r.len(), names.len()),
            ));
        }
        let mut fields = Vec::with_capacity(columns.len());
        for (&i, &c) in index.iter().zip(columns) {
            match r.get(i) {
                Some(v) => fields.push(v.to_string()),
                None => {
                    return Err(InputError::new(
                        file,
                        Some(line),
                        c,
                        format!(
                            "missing: the row has {} fields, the header {}",
                            r.len(),
                            names.len()
                        ),
                    ))
                }
            }
        }
        rows.push(Row { line, fields });
    }
    Ok(rows)
}

pub(crate) fn check_date(
    file: &str,
    line: u64,
    field: &str,
    v: &str,
    expect: &mut Option<Date>,
    what: &str,
) -> Result<Date, InputError> {
    let d: Date = v
        .parse()
        .map_err(|e: String| InputError::new(file, Some(line), field, e))?;
    match expect {
        Some(want) if *want != d => Err(InputError::new(
            file,
            Some(line),
            field,
            format!("{d} does not match {what} {want}"),
        )),
        Some(_) => Ok(d),
        None => {
            *expect = Some(d);
            Ok(d)
        }
    }
}

fn units(
    file: &str,
    line: u64,
    field: &str,
    v: &str,
    negative_ok: bool,
) -> Result<i128, InputError> {
    let x =
        parse_scaled(v, 6, negative_ok).map_err(|e| InputError::new(file, Some(line), field, e))?;
    if x.unsigned_abs() > u64::MAX as u128 {
        return Err(InputError::new(
            file,
            Some(line),
            field,
            format!("`{v}` is out of range"),
        ));
    }
    Ok(x)
}

fn asset(file: &str, line: u64, field: &str, v: &str) -> Result<FundId, InputError> {
    isin_fund(v).ok_or_else(|| {
        InputError::new(
            file,
            Some(line),
            field,
            format!("unknown asset `{v}`: not the ISIN of an ACME fund (GBACMnnnnnnC)"),
        )
    })
}

fn account(
    file: &str,
    line: u64,
    field: &str,
    v: &str,
    expect: &mut Option<String>,
) -> Result<String, InputError> {
    if v.is_empty() {
        return Err(InputError::new(file, Some(line), field, "is empty"));
    }
    match expect {
        Some(want) if want != v => Err(InputError::new(
            file,
            Some(line),
            field,
            format!("`{v}` is not the custodian account being reconciled (`{want}`)"),
        )),
        Some(_) => Ok(v.to_string()),
        None => {
            *expect = Some(v.to_string());
            Ok(v.to_string())
        }
    }
}

fn push_line(
    file: &str,
    lines: &mut Vec<HoldingLine>,
    seen: &mut BTreeMap<FundId, u64>,
    l: HoldingLine,
    field: &str,
) -> Result<(), InputError> {
    if let Some(first) = seen.insert(l.fund, l.line) {
        return Err(InputError::new(
            file,
            Some(l.line),
            field,
            format!(
                "duplicate row: asset {} is already on line {first}",
                asset_isin(l.fund)
            ),
        ));
    }
    lines.push(l);
    Ok(())
}

pub fn parse_holdings_csv(
    file: &str,
    text: &str,
    expect: &Expect,
) -> Result<HoldingsStatement, InputError> {
    let rows = read_csv(file, text, &CSV_HEADER)?;
    let mut date = expect.date;
    let mut acct = expect.custodian_account.clone();
    let mut lines = Vec::new();
    let mut seen = BTreeMap::new();
    for row in rows {
        let l = row.line;
        let f = &row.fields;
        check_date(
            file,
            l,
            "statement_date",
            &f[0],
            &mut date,
            "the statement date",
        )?;
        account(file, l, "custodian_account", &f[1], &mut acct)?;
        let fund = asset(file, l, "asset", &f[2])?;
        let settled_units = units(file, l, "settled_units", &f[3], false)?;
        let pending_units = units(file, l, "pending_units", &f[4], true)?;
        push_line(
            file,
            &mut lines,
            &mut seen,
            HoldingLine {
                line: l,
                fund,
                settled_units,
                pending_units,
            },
            "asset",
        )?;
    }
    let Some(date) = date else {
        return Err(InputError::new(
            file,
            Some(2),
            "statement_date",
            "no rows and no statement date to reconcile against",
        ));
    };
    Ok(HoldingsStatement {
        file: file.to_string(),
        date,
        custodian_account: acct.unwrap_or_default(),
        lines,
    })
}

pub fn holdings_csv(st: &HoldingsStatement) -> String {
    let mut out = CSV_HEADER.join(",");
    out.push('\n');
    for l in &st.lines {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            st.date,
            st.custodian_account,
            asset_isin(l.fund),
            fmt_units(l.settled_units),
            fmt_units(l.pending_units)
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// semt.002

const SEMT002_NS_PREFIX: &str = "urn:iso:std:iso:20022:tech:xsd:semt.002.001.";
/// The version written.
pub const SEMT002_NS: &str = "urn:iso:std:iso:20022:tech:xsd:semt.002.001.09";

struct Xml<'a, 'i> {
    file: &'a str,
    doc: &'a roxmltree::Document<'i>,
}

impl<'a, 'i> Xml<'a, 'i> {
    fn line(&self, n: roxmltree::Node) -> u64 {
        self.doc.text_pos_at(n.range().start).row as u64
    }

    fn err(&self, n: roxmltree::Node, path: &str, reason: impl Into<String>) -> InputError {
        InputError::new(self.file, Some(self.line(n)), path, reason)
    }

    fn child<'n>(&self, n: roxmltree::Node<'n, 'i>, name: &str) -> Option<roxmltree::Node<'n, 'i>> {
        n.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
    }

    /// The element at `path` (slash-separated) under `n`, or an error naming the path.
    fn need<'n>(
        &self,
        n: roxmltree::Node<'n, 'i>,
        base: &str,
        path: &str,
    ) -> Result<roxmltree::Node<'n, 'i>, InputError> {
        let mut cur = n;
        let mut walked = base.to_string();
        for part in path.split('/') {
            walked = if walked.is_empty() {
                part.to_string()
            } else {
                format!("{walked}/{part}")
            };
            cur = self
                .child(cur, part)
                .ok_or_else(|| self.err(cur, &walked, "missing element"))?;
        }
        Ok(cur)
    }

    fn text(&self, n: roxmltree::Node) -> String {
        n.text().unwrap_or("").trim().to_string()
    }
}

fn parse_semt002(file: &str, text: &str, expect: &Expect) -> Result<HoldingsStatement, InputError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| {
        InputError::new(
            file,
            Some(e.pos().row as u64),
            "(xml)",
            format!("not well-formed XML: {e}"),
        )
    })?;
    let x = Xml { file, doc: &doc };
    let root = doc.root_element();
    let document = if root.tag_name().name() == "Document" {
        root
    } else {
        root.descendants()
            .find(|n| n.is_element() && n.tag_name().name() == "Document")
            .ok_or_else(|| x.err(root, "Document", "no ISO 20022 Document element"))?
    };
    let ns = document.tag_name().namespace().unwrap_or("");
    if !ns.starts_with(SEMT002_NS_PREFIX) {
        return Err(x.err(
            document,
            "Document/@xmlns",
            format!("`{ns}` is not a semt.002 (securities balance custody report) namespace"),
        ));
    }
    let rpt = x.need(document, "Document", "SctiesBalCtdyRpt")?;
    let base = "SctiesBalCtdyRpt";
    if let Some(p) = x.child(rpt, "Pgntn") {
        if let Some(last) = x.child(p, "LastPgInd") {
            if x.text(last) != "true" {
                return Err(x.err(
                    last,
                    "SctiesBalCtdyRpt/Pgntn/LastPgInd",
                    "only single-page statements are read: send every page in one file",
                ));
            }
        }
    }
    let gnl = x.need(rpt, base, "StmtGnlDtls")?;
    let dt_tm = x.need(gnl, "SctiesBalCtdyRpt/StmtGnlDtls", "StmtDtTm")?;
    let (date_node, date_field) = match (x.child(dt_tm, "Dt"), x.child(dt_tm, "DtTm")) {
        (Some(d), _) => (d, "SctiesBalCtdyRpt/StmtGnlDtls/StmtDtTm/Dt"),
        (None, Some(d)) => (d, "SctiesBalCtdyRpt/StmtGnlDtls/StmtDtTm/DtTm"),
        _ => {
            return Err(x.err(
                dt_tm,
                "SctiesBalCtdyRpt/StmtGnlDtls/StmtDtTm/Dt",
                "missing element",
            ))
        }
    };
    let date_text = x.text(date_node);
    let mut date = expect.date;
    check_date(
        file,
        x.line(date_node),
        date_field,
        date_text.get(..10).unwrap_or(&date_text),
        &mut date,
        "the statement date",
    )?;
    let basis_node = x.need(gnl, "SctiesBalCtdyRpt/StmtGnlDtls", "StmtBsis/Cd")?;
    let basis = x.text(basis_node);
    let contractual = match basis.as_str() {
        "CONT" | "TRAD" => true,
        "SETT" => false,
        other => {
            return Err(x.err(
                basis_node,
                "SctiesBalCtdyRpt/StmtGnlDtls/StmtBsis/Cd",
                format!("`{other}` is not CONT, TRAD or SETT"),
            ))
        }
    };
    let acct_node = x.need(rpt, base, "SfkpgAcct/Id")?;
    let mut acct = expect.custodian_account.clone();
    let custodian_account = account(
        file,
        x.line(acct_node),
        "SctiesBalCtdyRpt/SfkpgAcct/Id",
        &x.text(acct_node),
        &mut acct,
    )?;
    let mut lines = Vec::new();
    let mut seen = BTreeMap::new();
    let balances = rpt
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "BalForAcct");
    for (i, bal) in balances.enumerate() {
        let here = format!("SctiesBalCtdyRpt/BalForAcct[{}]", i + 1);
        let isin_node = x.need(bal, &here, "FinInstrmId/ISIN")?;
        let isin_field = format!("{here}/FinInstrmId/ISIN");
        let fund = asset(file, x.line(isin_node), &isin_field, &x.text(isin_node))?;
        let aggt = x.need(bal, &here, "AggtBal")?;
        if let Some(sl) = x.child(aggt, "ShrtLngInd") {
            let v = x.text(sl);
            if v != "LONG" {
                return Err(x.err(
                    sl,
                    &format!("{here}/AggtBal/ShrtLngInd"),
                    format!("`{v}`: only long positions are held for ACME"),
                ));
            }
        }
        let qty_field = format!("{here}/AggtBal/Qty/Qty/Qty/Unit");
        let qty = x.need(aggt, &format!("{here}/AggtBal"), "Qty/Qty/Qty")?;
        let unit = x.child(qty, "Unit").ok_or_else(|| {
            x.err(
                qty,
                &qty_field,
                "missing element: the quantity must be in units (not FaceAmt or AmtsdVal)",
            )
        })?;
        let aggregate = units(file, x.line(unit), &qty_field, &x.text(unit), false)?;
        let pending = pending_units(&x, bal, &here)?;
        let settled = if contractual {
            aggregate.checked_sub(pending)
        } else {
            Some(aggregate)
        };
        let Some(settled) = settled.filter(|s| *s >= 0) else {
            return Err(x.err(
                unit,
                &qty_field,
                format!(
                    "aggregate {} less pending {} leaves a negative settled balance",
                    fmt_units(aggregate),
                    fmt_units(pending)
                ),
            ));
        };
        push_line(
            file,
            &mut lines,
            &mut seen,
            HoldingLine {
                line: x.line(isin_node),
                fund,
                settled_units: settled,
                pending_units: pending,
            },
            &isin_field,
        )?;
    }
    let Some(date) = date else {
        return Err(x.err(date_node, date_field, "no statement date"));
    };
    Ok(HoldingsStatement {
        file: file.to_string(),
        date,
        custodian_account,
        lines,
    })
}

/// The sub-balance codes of a `BalBrkdwn`, and what each does to the pending units: receipts
/// add, deliveries subtract, and `AWAS` (available: the settled part, which the aggregate already
/// says) is read past. Any other code is refused: a sub-balance nobody here understands (blocked,
/// on loan, in transit) may mean the figures do not say what the reconciliation assumes.
const SUB_BALANCES: [(&str, i128); 3] = [("PENR", 1), ("PEND", -1), ("AWAS", 0)];

/// Pending units of one `BalForAcct`: receipts less deliveries over its sub-balances.
fn pending_units(x: &Xml, bal: roxmltree::Node, here: &str) -> Result<i128, InputError> {
    let mut pending: i128 = 0;
    let subs = bal
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "BalBrkdwn");
    for (j, sub) in subs.enumerate() {
        let sub_here = format!("{here}/BalBrkdwn[{}]", j + 1);
        let code = x.need(sub, &sub_here, "SubBalTp/Cd")?;
        let code_field = format!("{sub_here}/SubBalTp/Cd");
        let text = x.text(code);
        let Some(&(_, sign)) = SUB_BALANCES.iter().find(|(c, _)| *c == text) else {
            let known: Vec<&str> = SUB_BALANCES.iter().map(|(c, _)| *c).collect();
            return Err(x.err(
                code,
                &code_field,
                format!(
                    "unknown sub-balance code `{text}` (known: {})",
                    known.join(", ")
                ),
            ));
        };
        let field = format!("{sub_here}/Qty/Qty/Unit");
        let u = x.need(sub, &sub_here, "Qty/Qty/Unit")?;
        let v = units(x.file, x.line(u), &field, &x.text(u), false)?;
        pending = sign
            .checked_mul(v)
            .and_then(|d| pending.checked_add(d))
            .ok_or_else(|| x.err(u, &field, "pending units out of range"))?;
    }
    Ok(pending)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The statement as a semt.002.001.09 securities balance custody report (contractual basis,
/// pending units as a `PENR` (receipt) or `PEND` (delivery) sub-balance, settled as `AWAS`).
pub fn holdings_semt002(st: &HoldingsStatement, statement_id: &str) -> String {
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!("<Document xmlns=\"{SEMT002_NS}\">\n"));
    out.push_str("  <SctiesBalCtdyRpt>\n");
    out.push_str("    <Pgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></Pgntn>\n");
    out.push_str("    <StmtGnlDtls>\n");
    out.push_str(&format!(
        "      <StmtId>{}</StmtId>\n",
        xml_escape(statement_id)
    ));
    out.push_str(&format!(
        "      <StmtDtTm><Dt>{}</Dt></StmtDtTm>\n",
        st.date
    ));
    out.push_str("      <Frqcy><Cd>DAIL</Cd></Frqcy>\n");
    out.push_str("      <UpdTp><Cd>COMP</Cd></UpdTp>\n");
    out.push_str("      <StmtBsis><Cd>CONT</Cd></StmtBsis>\n");
    out.push_str(&format!(
        "      <ActvtyInd>{}</ActvtyInd>\n",
        !st.lines.is_empty()
    ));
    out.push_str("      <SubAcctInd>false</SubAcctInd>\n");
    out.push_str("    </StmtGnlDtls>\n");
    out.push_str(&format!(
        "    <SfkpgAcct><Id>{}</Id></SfkpgAcct>\n",
        xml_escape(&st.custodian_account)
    ));
    for l in &st.lines {
        let q = fmt_units;
        out.push_str("    <BalForAcct>\n");
        out.push_str(&format!(
            "      <FinInstrmId><ISIN>{}</ISIN></FinInstrmId>\n",
            asset_isin(l.fund)
        ));
        out.push_str(&format!(
            "      <AggtBal><ShrtLngInd>LONG</ShrtLngInd><Qty><Qty><Qty><Unit>{}</Unit></Qty></Qty></Qty></AggtBal>\n",
            q(l.settled_units + l.pending_units)
        ));
        out.push_str(&format!(
            "      <BalBrkdwn><SubBalTp><Cd>AWAS</Cd></SubBalTp><Qty><Qty><Unit>{}</Unit></Qty></Qty></BalBrkdwn>\n",
            q(l.settled_units)
        ));
        let (code, pending) = if l.pending_units >= 0 {
            ("PENR", l.pending_units)
        } else {
            ("PEND", -l.pending_units)
        };
        out.push_str(&format!(
            "      <BalBrkdwn><SubBalTp><Cd>{code}</Cd></SubBalTp><Qty><Qty><Unit>{}</Unit></Qty></Qty></BalBrkdwn>\n",
            q(pending)
        ));
        out.push_str("    </BalForAcct>\n");
    }
    out.push_str("  </SctiesBalCtdyRpt>\n");
    out.push_str("</Document>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> HoldingsStatement {
        HoldingsStatement {
            file: "h".into(),
            date: Date::from_ymd(2026, 1, 13).unwrap(),
            custodian_account: "ACME-MT-0001".into(),
            lines: vec![
                HoldingLine {
                    line: 2,
                    fund: 1,
                    settled_units: 1_234_567_891,
                    pending_units: 5,
                },
                HoldingLine {
                    line: 3,
                    fund: 2,
                    settled_units: 0,
                    pending_units: 7_000_000,
                },
                HoldingLine {
                    line: 4,
                    fund: 3,
                    settled_units: 9_000_000,
                    pending_units: -2_500_000,
                },
            ],
        }
    }

    #[test]
    fn csv_and_semt002_read_back_the_same_statement() {
        let st = statement();
        let csv = parse_holdings("h", &holdings_csv(&st), &Expect::default()).unwrap();
        let xml = parse_holdings("h", &holdings_semt002(&st, "S1"), &Expect::default()).unwrap();
        let strip = |mut s: HoldingsStatement| {
            for l in &mut s.lines {
                l.line = 0;
            }
            s
        };
        assert_eq!(strip(csv), strip(st.clone()));
        assert_eq!(strip(xml), strip(st));
    }

    #[test]
    fn a_settled_basis_report_reads_the_aggregate_as_settled() {
        let xml = holdings_semt002(&statement(), "S1")
            .replace("<Cd>CONT</Cd>", "<Cd>SETT</Cd>")
            .replace("<Unit>1234.567896</Unit>", "<Unit>1234.567891</Unit>");
        let st = parse_holdings("h", &xml, &Expect::default()).unwrap();
        assert_eq!(st.lines[0].settled_units, 1_234_567_891);
        assert_eq!(st.lines[0].pending_units, 5);
    }
}
