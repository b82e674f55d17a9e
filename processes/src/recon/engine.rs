//! The reconciliation engine: [`reconcile`] compares [`LedgerFacts`] with the statements at hand
//! and classifies every difference.
//!
//! # Trades first
//! Each external trade is in one of three states in the ledger (absent, priced, settled on a
//! date) and in one of four at the custodian (absent, priced, settled, rejected; `amended` is
//! priced with new terms). The ledger only ever books what the custodian told it, so the
//! custodian may be a step ahead but never behind. A step the custodian took that the ledger has
//! not is **in flight**; it is a *timing* difference when that step was due on the statement
//! date (pricing on the trade date, settlement on the settlement date), a *true* one when it is
//! older (the message was lost) or when the ledger is ahead. Differing terms (units, price,
//! cash, dates, side, asset) are always true breaks. The price is not in the ledger; it is
//! checked by what it implies: the custodian's price must buy the ledger's units with the
//! ledger's cash (`floor(cash * 10^10 / price) == units`), as the custodian computes them.
//!
//! Which trades must be confirmed: those priced on the statement date, settled on it, or not yet
//! settled (older settled trades were confirmed on their own day; if listed, they are compared).
//!
//! # Positions and cash
//! Each trade in flight moves the custodian's figures ahead of the ledger's by a known amount
//! (priced: pending units and cash; settled: from pending to settled). A position or cash
//! difference equal to the sum of those amounts, all of them timing, is a *timing* break listed
//! with the trades; any other difference is a *true* break (with the trades in flight noted).
//!
//! # Internal
//! Per ledger, debits equal credits (posted and pending apart). With a complete journal, every
//! account's balances equal the replay of its transfers; an account that does not is reported by
//! itself, and the ledger's own balance is then judged on the replayed figures, so one edited
//! pot is one break. Per fund, the units in pots (members, rounding, trading, suspense) equal
//! the custodian mirror (settled and unsettled). Member and rounding accounts are never negative.

use super::cash::CashStatement;
use super::holdings::HoldingsStatement;
use super::ledger::{describe_account, AccountFinding, LedgerFacts, LedgerTrade, Sums};
use super::trades::{ConfStatus, Confirmation, Confirmations};

use super::{
    asset_isin, trade_ref, Break, CashAccount, Classification, InputError, Kind, Level,
    LevelOutcome, PositionRow, Report, Value, CASH_ASSET,
};
use crate::calendar::Date;
use crate::messages::{trade_date, trade_fund, Side, TradeId};
use crate::money::Price;
use acme_ledger::chart::{self, AccountKind, FundId, LEDGER_CASH_GBP};
use std::collections::{BTreeMap, BTreeSet};

/// How to reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconConfig {
    /// The statement date: the ledger is as of the end of it.
    pub as_of: Date,
    /// Trades settle this many business days after the trade date.
    pub settlement_lag_days: u32,
    /// Cash differences up to this many pence (either way) are not breaks.
    pub cash_tolerance_pence: u64,
}

/// The statements at hand; a level without its statement is skipped and says so.
#[derive(Clone, Debug, Default)]
pub struct Statements {
    pub holdings: Option<HoldingsStatement>,
    pub trades: Option<Confirmations>,
    pub cash: Vec<CashStatement>,
}

/// How far the custodian's figures are ahead of the ledger's because of trades, per fund.
#[derive(Clone, Debug, Default)]
struct InFlight {
    settled_units: i128,
    pending_units: i128,
    settled_cash: i128,
    pending_cash: i128,
    /// Trades contributing to units (ref, timing?).
    units_trades: BTreeMap<String, bool>,
    cash_trades: BTreeMap<String, bool>,
}

impl InFlight {
    fn add(
        &mut self,
        r: &str,
        timing: bool,
        settled_units: i128,
        pending_units: i128,
        settled_cash: i128,
        pending_cash: i128,
    ) {
        self.settled_units += settled_units;
        self.pending_units += pending_units;
        self.settled_cash += settled_cash;
        self.pending_cash += pending_cash;
        if settled_units != 0 || pending_units != 0 {
            self.units_trades.insert(r.to_string(), timing);
        }
        if settled_cash != 0 || pending_cash != 0 {
            self.cash_trades.insert(r.to_string(), timing);
        }
    }
}

/// Classifies a difference `diff` against what trades in flight explain (`explained`).
fn classify(
    diff: i128,
    explained: i128,
    trades: &BTreeMap<String, bool>,
    tolerance: i128,
) -> (Classification, Vec<String>, String) {
    let refs: Vec<String> = trades.keys().cloned().collect();
    let all_timing = !trades.is_empty() && trades.values().all(|&t| t);
    if explained != 0 && (diff - explained).abs() <= tolerance {
        if all_timing {
            return (
                Classification::Timing,
                refs,
                format!(
                    "explained by {} trade(s) in flight, due today",
                    trades.len()
                ),
            );
        }
        return (
            Classification::True,
            refs,
            "explained by trades whose step is overdue or wrong (see the trade breaks)".to_string(),
        );
    }
    let note = if trades.is_empty() {
        "no trade in flight explains it".to_string()
    } else {
        format!("trades in flight explain {explained} of it, not all")
    };
    (Classification::True, refs, note)
}

fn fund_asset(fund: FundId) -> String {
    asset_isin(fund)
}

fn ledger_asset(ledger: u32) -> String {
    match chart::ledger_fund(ledger) {
        Some(f) => fund_asset(f),
        None if ledger == LEDGER_CASH_GBP => CASH_ASSET.to_string(),
        None => format!("ledger {ledger}"),
    }
}

fn ledger_value(ledger: u32, v: i128) -> Value {
    if ledger == LEDGER_CASH_GBP {
        Value::Pence(v)
    } else {
        Value::Units(v)
    }
}

/// The account's balance on its normal side: debit for the custodian mirror and the bank,
/// credit for everything else.
fn normal_balance(id: u128, s: &Sums) -> i128 {
    match chart::decode_account_id(id).map(|d| d.0) {
        Some(AccountKind::CustodianSettled | AccountKind::CustodianUnsettled)
            if chart::ledger_fund(((id >> 80) & 0xFFFF_FFFF) as u32).is_some() =>
        {
            s.debit_balance()
        }
        Some(AccountKind::Bank) => s.debit_balance(),
        _ => s.credit_balance(),
    }
}

/// Runs every level that has its inputs. An error only for statements that contradict each other
/// or the reconciliation (a date, an account listed twice across files).
pub fn reconcile(
    cfg: &ReconConfig,
    facts: &LedgerFacts,
    st: &Statements,
) -> Result<Report, InputError> {
    check_dates(cfg, st)?;
    let mut breaks = Vec::new();
    let mut levels = Vec::new();
    levels.push(internal(facts, &mut breaks));
    let (trades_outcome, flight) = trades(cfg, facts, st.trades.as_ref(), &mut breaks);
    let (positions_outcome, positions) =
        positions(facts, st.holdings.as_ref(), &flight, &mut breaks);
    levels.push(positions_outcome);
    levels.push(trades_outcome);
    levels.push(cash(cfg, facts, &st.cash, &flight, &mut breaks)?);
    breaks.sort_by(|a, b| {
        (a.level, &a.asset, a.kind, &a.account).cmp(&(b.level, &b.asset, b.kind, &b.account))
    });
    Ok(Report {
        as_of: cfg.as_of,
        levels,
        breaks,
        positions,
    })
}

fn check_dates(cfg: &ReconConfig, st: &Statements) -> Result<(), InputError> {
    let first_line = |lines: Option<u64>| lines.or(Some(2));
    if let Some(h) = &st.holdings {
        if h.date != cfg.as_of {
            return Err(InputError::new(
                &h.file,
                first_line(h.lines.first().map(|l| l.line)),
                "statement_date",
                format!("{} does not match the ledger's date {}", h.date, cfg.as_of),
            ));
        }
    }
    if let Some(t) = &st.trades {
        if let Some(c) = t.lines.iter().find(|c| c.trade_date > cfg.as_of) {
            return Err(InputError::new(
                &t.file,
                Some(c.line),
                "trade_date",
                format!("{} is after the ledger's date {}", c.trade_date, cfg.as_of),
            ));
        }
    }
    let mut seen: BTreeMap<CashAccount, (String, u64)> = BTreeMap::new();
    for c in &st.cash {
        if c.date != cfg.as_of {
            return Err(InputError::new(
                &c.file,
                first_line(c.lines.first().map(|l| l.line)),
                "statement_date",
                format!("{} does not match the ledger's date {}", c.date, cfg.as_of),
            ));
        }
        for l in &c.lines {
            if let Some((file, line)) = seen.insert(l.account, (c.file.clone(), l.line)) {
                return Err(InputError::new(
                    &c.file,
                    Some(l.line),
                    "account",
                    format!(
                        "{} is already stated in {file} line {line}",
                        l.account.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Internal

fn internal(facts: &LedgerFacts, breaks: &mut Vec<Break>) -> LevelOutcome {
    let mut notes = Vec::new();
    if facts.journal_checked {
        notes.push(format!("journal replayed: {} transfers", facts.transfers));
    } else {
        notes
            .push("journal not replayed (the export holds the trades' transfers only)".to_string());
    }
    let mut by_ledger: BTreeMap<u32, Vec<&AccountFinding>> = BTreeMap::new();
    for f in &facts.journal_mismatches {
        by_ledger.entry(f.ledger).or_default().push(f);
    }
    for l in facts.ledgers() {
        let mut total = Sums::default();
        for (_, s) in facts.sums.range((l, 0)..=(l, u16::MAX)) {
            total.add(s);
        }
        let mismatches = by_ledger.get(&l).map(Vec::as_slice).unwrap_or(&[]);
        let mut corrected = total;
        let mut class_fix: BTreeMap<u16, Sums> = BTreeMap::new();
        for m in mismatches {
            let journal = m.journal.unwrap_or_default();
            corrected.sub(&m.sums);
            corrected.add(&journal);
            let code = (m.id >> 112) as u16;
            let fix = class_fix.entry(code).or_default();
            fix.sub(&m.sums);
            fix.add(&journal);
            breaks.push(Break {
                level: Level::Internal,
                kind: super::Kind::BalanceNotMatchingJournal,
                asset: ledger_asset(l),
                account: describe_account(m.id),
                ledger: ledger_value(l, normal_balance(m.id, &m.sums)),
                statement: ledger_value(l, normal_balance(m.id, &journal)),
                classification: Classification::True,
                trades: Vec::new(),
                detail: "the account's balance differs from the replay of its transfers (statement column): \
                         the record was changed outside double entry"
                    .to_string(),
            });
        }
        let posted_ok = corrected.debits_posted == corrected.credits_posted;
        let pending_ok = corrected.debits_pending == corrected.credits_pending;
        if !posted_ok || !pending_ok {
            let (d, c, which) = if !posted_ok {
                (corrected.debits_posted, corrected.credits_posted, "posted")
            } else {
                (
                    corrected.debits_pending,
                    corrected.credits_pending,
                    "pending",
                )
            };
            breaks.push(Break {
                level: Level::Internal,
                kind: Kind::LedgerUnbalanced,
                asset: ledger_asset(l),
                account: format!("ledger {l}"),
                ledger: ledger_value(l, d),
                statement: ledger_value(l, c),
                classification: Classification::True,
                trades: Vec::new(),
                detail: format!("{which} debits (ledger column) differ from {which} credits (statement column): an account was changed outside double entry"),
            });
            continue;
        }
        if let Some(fund) = chart::ledger_fund(l) {
            let class = |k: AccountKind| {
                let mut s = facts.class(l, k);
                if let Some(fix) = class_fix.get(&k.code()) {
                    s.add(fix);
                }
                s
            };
            let pots: i128 = [
                AccountKind::MemberUnits,
                AccountKind::AcmeRounding,
                AccountKind::AcmeTrading,
                AccountKind::AcmeSuspense,
            ]
            .into_iter()
            .map(|k| class(k).credit_balance())
            .sum();
            let mirror: i128 = [
                AccountKind::CustodianSettled,
                AccountKind::CustodianUnsettled,
            ]
            .into_iter()
            .map(|k| class(k).debit_balance())
            .sum();
            // Value in accounts outside the chart is reported by itself below.
            let unknown: i128 = facts
                .unknown
                .iter()
                .filter(|u| u.ledger == l)
                .map(|u| u.sums.credit_balance())
                .sum();
            if pots - mirror != -unknown {
                breaks.push(Break {
                    level: Level::Internal,
                    kind: Kind::PotsNotMatchingMirror,
                    asset: fund_asset(fund),
                    account: format!("ledger {l}"),
                    ledger: Value::Units(pots),
                    statement: Value::Units(mirror),
                    classification: Classification::True,
                    trades: Vec::new(),
                    detail: "units in member and ACME pots (ledger column) differ from the custodian mirror (statement column): value sits in an account of the wrong kind".to_string(),
                });
            }
        }
    }
    for n in &facts.negative {
        breaks.push(Break {
            level: Level::Internal,
            kind: Kind::NegativeBalance,
            asset: ledger_asset(n.ledger),
            account: describe_account(n.id),
            ledger: ledger_value(n.ledger, n.sums.credits_posted - n.sums.debits_posted - n.sums.debits_pending),
            statement: ledger_value(n.ledger, 0),
            classification: Classification::True,
            trades: Vec::new(),
            detail: "debits (posted and pending) exceed posted credits on an account that may never go below zero".to_string(),
        });
    }
    for u in &facts.unknown {
        breaks.push(Break {
            level: Level::Internal,
            kind: Kind::UnknownAccount,
            asset: ledger_asset(u.ledger),
            account: format!("account {:#x}", u.id),
            ledger: ledger_value(u.ledger, u.sums.credit_balance()),
            statement: Value::Absent,
            classification: Classification::True,
            trades: Vec::new(),
            detail: "an account outside ACME's chart of accounts (id, code or ledger) holds value"
                .to_string(),
        });
    }
    LevelOutcome {
        level: Level::Internal,
        skipped: None,
        compared: facts.accounts,
        notes,
    }
}

// ---------------------------------------------------------------------------------------------
// Trades

/// The custodian's current word on a leg, from its rows in file order; `Err` when the rows are
/// not one history (a duplicate).
fn effective<'c>(rows: &[&'c Confirmation]) -> Result<&'c Confirmation, ()> {
    use ConfStatus::*;
    for w in rows.windows(2) {
        let ok = matches!(
            (w[0].status, w[1].status),
            (Priced, Settled)
                | (Priced, Amended)
                | (Amended, Amended)
                | (Amended, Settled)
                | (Priced, Rejected)
                | (Amended, Rejected)
        );
        if !ok {
            return Err(());
        }
    }
    Ok(rows[rows.len() - 1])
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn trade_break(
    kind: Kind,
    t: TradeId,
    leg: Option<Side>,
    ledger: Value,
    statement: Value,
    classification: Classification,
    detail: String,
) -> Break {
    let r = trade_ref(t);
    Break {
        level: Level::Trades,
        kind,
        asset: fund_asset(trade_fund(t)),
        account: match leg {
            Some(side) => format!("{r} {}", side_name(side)),
            None => r.clone(),
        },
        ledger,
        statement,
        classification,
        trades: vec![r],
        detail,
    }
}

/// A leg as the ledger has it: (units, cash), gross; `None` when the leg did not trade.
fn ledger_leg(t: &LedgerTrade, side: Side) -> Option<(i128, i128)> {
    match side {
        Side::Buy => (t.buy_cash > 0).then(|| (t.units_bought(), t.buy_cash as i128)),
        Side::Sell => (t.sell_units > 0).then(|| (t.sell_units as i128, t.cash_for_sold())),
    }
}

fn trades(
    cfg: &ReconConfig,
    facts: &LedgerFacts,
    conf: Option<&Confirmations>,
    breaks: &mut Vec<Break>,
) -> (LevelOutcome, BTreeMap<FundId, InFlight>) {
    let mut flight: BTreeMap<FundId, InFlight> = BTreeMap::new();
    let Some(conf) = conf else {
        return (
            LevelOutcome {
                level: Level::Trades,
                skipped: Some("no trade confirmations given (--trades): trades not reconciled, and position or cash differences cannot be explained by trades in flight".to_string()),
                compared: 0,
                notes: Vec::new(),
            },
            flight,
        );
    };
    let legs = conf.legs();
    let mut ids: BTreeSet<TradeId> = legs.keys().map(|k| k.0).collect();
    let mut out_of_period = 0u64;
    for (id, t) in &facts.trades {
        let in_period = trade_date(*id) == cfg.as_of
            || t.settled_on.is_none()
            || t.settled_on == Some(cfg.as_of);
        if in_period {
            ids.insert(*id);
        } else if !ids.contains(id) {
            out_of_period += 1;
        }
    }
    let mut compared = 0;
    for id in ids {
        compared += 1;
        let f = flight.entry(trade_fund(id)).or_default();
        compare_trade(cfg, id, facts.trades.get(&id), &legs, f, breaks);
    }
    let mut notes = Vec::new();
    if out_of_period > 0 {
        notes.push(format!("{out_of_period} trade(s) settled before the statement date and not listed: confirmed on their own day"));
    }
    (
        LevelOutcome {
            level: Level::Trades,
            skipped: None,
            compared,
            notes,
        },
        flight,
    )
}

fn compare_trade(
    cfg: &ReconConfig,
    id: TradeId,
    ledger: Option<&LedgerTrade>,
    legs: &BTreeMap<(TradeId, Side), Vec<&Confirmation>>,
    f: &mut InFlight,
    breaks: &mut Vec<Break>,
) {
    let r = trade_ref(id);
    let mut conf: Vec<(Side, &Confirmation)> = Vec::new();
    for side in [Side::Buy, Side::Sell] {
        let Some(rows) = legs.get(&(id, side)) else {
            continue;
        };
        match effective(rows) {
            Ok(c) => conf.push((side, c)),
            Err(()) => {
                let lines: Vec<String> = rows
                    .iter()
                    .map(|c| format!("{} ({})", c.line, c.status.name()))
                    .collect();
                breaks.push(trade_break(
                    Kind::DuplicateConfirmation,
                    id,
                    Some(side),
                    Value::Text(if ledger.is_some() { "one trade".into() } else { "absent".into() }),
                    Value::Text(format!("{} confirmations", rows.len())),
                    Classification::True,
                    format!("the leg is confirmed more than once (lines {}): ask the custodian which stands", lines.join(", ")),
                ));
                return;
            }
        }
    }
    if conf.is_empty() {
        if let Some(t) = ledger {
            breaks.push(trade_break(
                Kind::MissingConfirmation,
                id,
                None,
                Value::Text(if t.settled_on.is_some() { "settled".into() } else { "priced".into() }),
                Value::Absent,
                Classification::True,
                format!(
                    "the ledger booked a net of {} units for {} cash; the custodian's confirmations do not list the trade",
                    super::fmt_units(t.net_units),
                    super::fmt_pence(t.net_cash)
                ),
            ));
        }
        return;
    }
    // The custodian's state of the trade: rejected when every leg is; settled when a leg is.
    let rejected = conf.iter().all(|(_, c)| c.status == ConfStatus::Rejected);
    let c_settled = conf.iter().any(|(_, c)| c.status == ConfStatus::Settled);
    let first = conf[0].1;
    let settle_date = conf
        .iter()
        .map(|(_, c)| c.settle_date)
        .max()
        .unwrap_or(first.settle_date);
    let (mut c_units, mut c_cash) = (0i128, 0i128);
    if !rejected {
        for (side, c) in &conf {
            let sign = if *side == Side::Buy { 1 } else { -1 };
            c_units += sign * c.units_micro as i128;
            c_cash += sign * c.cash_pence as i128;
        }
    }
    let status = |settled: bool| {
        Value::Text(if settled {
            "settled".into()
        } else {
            "priced".into()
        })
    };
    // Lifecycle: the custodian may be ahead of the ledger by the step due today.
    let mut timing = true;
    match ledger {
        None if rejected => return,
        None => {
            let due = if c_settled {
                first.trade_date == cfg.as_of && settle_date == cfg.as_of
            } else {
                first.trade_date == cfg.as_of
            };
            timing = due;
            breaks.push(trade_break(
                Kind::MissingInLedger,
                id,
                None,
                Value::Absent,
                status(c_settled),
                if due {
                    Classification::Timing
                } else {
                    Classification::True
                },
                if due {
                    format!(
                        "priced today ({}); the ledger books it when the confirmation arrives",
                        first.trade_date
                    )
                } else {
                    format!(
                        "{} at the custodian (traded {}), not in the ledger",
                        if c_settled { "settled" } else { "priced" },
                        first.trade_date
                    )
                },
            ));
        }
        Some(t) if rejected => {
            timing = false;
            breaks.push(trade_break(
                Kind::RejectedByCustodian,
                id,
                None,
                status(t.settled_on.is_some()),
                Value::Text("rejected".into()),
                Classification::True,
                "the custodian rejected a trade the ledger booked: reverse it in the ledger or have the custodian reinstate it".to_string(),
            ));
        }
        Some(t) => {
            let l_settled = t.settled_on.is_some();
            if c_settled && !l_settled {
                timing = settle_date == cfg.as_of;
                breaks.push(trade_break(
                    Kind::Status,
                    id,
                    None,
                    status(false),
                    status(true),
                    if timing { Classification::Timing } else { Classification::True },
                    if timing {
                        format!("settled today ({settle_date}) at the custodian; the ledger settles it when the notice arrives")
                    } else {
                        format!("settled at the custodian on {settle_date}; still unsettled in the ledger")
                    },
                ));
            } else if l_settled && !c_settled {
                timing = false;
                breaks.push(trade_break(
                    Kind::Status,
                    id,
                    None,
                    status(true),
                    status(false),
                    Classification::True,
                    "the ledger settled a trade the custodian has not".into(),
                ));
            }
            if first.trade_date != trade_date(id) {
                timing = false;
                breaks.push(trade_break(
                    Kind::TradeDate,
                    id,
                    None,
                    Value::Date(trade_date(id)),
                    Value::Date(first.trade_date),
                    Classification::True,
                    "confirmed with another trade date".into(),
                ));
            }
            if let Some(on) = t.settled_on.filter(|_| c_settled) {
                if on != settle_date {
                    timing = false;
                    breaks.push(trade_break(
                        Kind::SettleDate,
                        id,
                        None,
                        Value::Date(on),
                        Value::Date(settle_date),
                        Classification::True,
                        format!("settled in the ledger on {on}"),
                    ));
                }
            }
            for side in [Side::Buy, Side::Sell] {
                let c = conf.iter().find(|(s, _)| *s == side).map(|(_, c)| *c);
                if !compare_leg(id, side, ledger_leg(t, side), c, breaks) {
                    timing = false;
                }
            }
        }
    }
    // What the trade puts in the custodian's figures, less what it puts in the ledger's.
    let (mut ds_u, mut dp_u, mut ds_c, mut dp_c) = (0, 0, 0, 0);
    if c_settled {
        ds_u += c_units;
        ds_c += c_cash;
    } else {
        dp_u += c_units;
        dp_c += c_cash;
    }
    if let Some(t) = ledger {
        if t.settled_on.is_some() {
            ds_u -= t.net_units;
            ds_c -= t.net_cash;
        } else {
            dp_u -= t.net_units;
            dp_c -= t.net_cash;
        }
    }
    f.add(&r, timing, ds_u, dp_u, ds_c, dp_c);
}

/// Compares one leg; false when it differs.
fn compare_leg(
    id: TradeId,
    side: Side,
    ledger: Option<(i128, i128)>,
    c: Option<&Confirmation>,
    breaks: &mut Vec<Break>,
) -> bool {
    let c = c.filter(|c| c.status != ConfStatus::Rejected);
    let (lu, lc) = match (ledger, c) {
        (None, None) => return true,
        (None, Some(c)) if c.units_micro == 0 && c.cash_pence == 0 => return true,
        (Some((lu, lc)), None) => {
            breaks.push(trade_break(
                Kind::MissingConfirmation,
                id,
                Some(side),
                Value::Units(lu),
                Value::Absent,
                Classification::True,
                format!(
                    "the ledger's {} leg ({} units for {}) has no confirmation",
                    side_name(side),
                    super::fmt_units(lu),
                    super::fmt_pence(lc)
                ),
            ));
            return false;
        }
        (None, Some(c)) => {
            breaks.push(trade_break(
                Kind::MissingInLedger,
                id,
                Some(side),
                Value::Absent,
                Value::Units(c.units_micro as i128),
                Classification::True,
                format!(
                    "the custodian confirms a {} leg the ledger does not have (line {})",
                    side_name(side),
                    c.line
                ),
            ));
            return false;
        }
        (Some(l), Some(_)) => l,
    };
    let c = c.expect("matched");
    let mut same = true;
    if c.fund != trade_fund(id) {
        same = false;
        breaks.push(trade_break(
            Kind::Asset,
            id,
            Some(side),
            Value::Text(fund_asset(trade_fund(id))),
            Value::Text(fund_asset(c.fund)),
            Classification::True,
            format!("line {}: confirmed in another asset", c.line),
        ));
    }
    let (cu, cc) = (c.units_micro as i128, c.cash_pence as i128);
    if cu != lu {
        same = false;
        breaks.push(trade_break(
            Kind::Units,
            id,
            Some(side),
            Value::Units(lu),
            Value::Units(cu),
            Classification::True,
            format!("line {}: confirmed for other units", c.line),
        ));
    }
    if cc != lc {
        same = false;
        breaks.push(trade_break(
            Kind::Cash,
            id,
            Some(side),
            Value::Pence(lc),
            Value::Pence(cc),
            Classification::True,
            format!("line {}: confirmed for another cash amount", c.line),
        ));
    }
    if same {
        // Both sides' figures are non-negative and within u64 here: the confirmation's by its
        // parser, the ledger's because they equal the confirmation's.
        if let Some(b) = price_break(id, side, cu as u64, cc as u64, c) {
            same = false;
            breaks.push(b);
        }
    }
    same
}

/// A price break when the confirmed price does not give the leg's units for its cash.
fn price_break(id: TradeId, side: Side, lu: u64, lc: u64, c: &Confirmation) -> Option<Break> {
    let (consistent, implied, what) = match side {
        Side::Buy => {
            let at_price = crate::money::checked_units_for_cash(lc, c.price);
            (
                at_price == Some(lu),
                implied_price(lc, lu),
                match at_price {
                    Some(u) => format!(
                        "the buyers' cash buys {} units at it",
                        super::fmt_units(u as i128)
                    ),
                    None => "the buyers' cash buys more units than can be held".to_string(),
                },
            )
        }
        Side::Sell => {
            let at_price = crate::money::checked_cash_for_units(lu, c.price);
            (
                at_price == Some(lc),
                implied_sale_price(lu, lc),
                match at_price {
                    Some(p) => format!(
                        "the sellers' units fetch {} at it",
                        super::fmt_pence(p as i128)
                    ),
                    None => "the sellers' units fetch more cash than can be held".to_string(),
                },
            )
        }
    };
    if consistent {
        return None;
    }
    Some(trade_break(
        Kind::Price,
        id,
        Some(side),
        implied.map(|p| Value::Price(p as i128)).unwrap_or(Value::Absent),
        Value::Price(c.price.0 as i128),
        Classification::True,
        format!(
            "line {}: at the confirmed price {what}, not what the ledger allocated {} units for {} (ledger column: a price consistent with the ledger)",
            c.line,
            super::fmt_units(lu as i128),
            super::fmt_pence(lc as i128)
        ),
    ))
}

/// The lowest price (micro-pounds) at which `units` fetch `cash` (pence), if any.
pub fn implied_sale_price(units_micro: u64, cash_pence: u64) -> Option<u64> {
    if units_micro == 0 {
        return None;
    }
    // floor(u * p / 10^10) == c  <=>  p >= c * 10^10 / u (rounded up).
    let n = cash_pence as u128 * 10_000_000_000;
    u64::try_from(n.div_ceil(units_micro as u128)).ok()
}

/// Whether `price` buys exactly `units` (micro) for `cash` (pence), rounding down as the
/// custodian does.
pub fn price_consistent(price: Price, cash_pence: u64, units_micro: u64) -> bool {
    crate::money::checked_units_for_cash(cash_pence, price) == Some(units_micro)
}

/// The highest price (micro-pounds) at which `cash` buys `units`, if any.
pub fn implied_price(cash_pence: u64, units_micro: u64) -> Option<u64> {
    if units_micro == 0 {
        return None;
    }
    let n = cash_pence as u128 * 10_000_000_000;
    u64::try_from(n / units_micro as u128).ok()
}

// ---------------------------------------------------------------------------------------------
// Positions

fn positions(
    facts: &LedgerFacts,
    holdings: Option<&HoldingsStatement>,
    flight: &BTreeMap<FundId, InFlight>,
    breaks: &mut Vec<Break>,
) -> (LevelOutcome, Vec<PositionRow>) {
    let ledger_funds: BTreeSet<FundId> = facts.funds().into_iter().collect();
    let Some(h) = holdings else {
        let rows = ledger_funds
            .iter()
            .map(|&f| {
                let (s, p) = facts.mirror_units(f);
                PositionRow {
                    asset: fund_asset(f),
                    fund: Some(f),
                    ledger_settled: s,
                    ledger_pending: p,
                    statement_settled: None,
                    statement_pending: None,
                }
            })
            .collect();
        return (
            LevelOutcome {
                level: Level::Positions,
                skipped: Some(
                    "no holdings statement given (--holdings): positions not reconciled"
                        .to_string(),
                ),
                compared: 0,
                notes: Vec::new(),
            },
            rows,
        );
    };
    let stated = h.by_fund();
    let mut funds = ledger_funds.clone();
    funds.extend(stated.keys().copied());
    let empty = InFlight::default();
    let mut rows = Vec::new();
    for fund in funds {
        let (ls, lp) = facts.mirror_units(fund);
        let line = stated.get(&fund);
        let (ss, sp) = line
            .map(|l| (l.settled_units, l.pending_units))
            .unwrap_or((0, 0));
        rows.push(PositionRow {
            asset: fund_asset(fund),
            fund: Some(fund),
            ledger_settled: ls,
            ledger_pending: lp,
            statement_settled: line.map(|_| ss),
            statement_pending: line.map(|_| sp),
        });
        let f = flight.get(&fund).unwrap_or(&empty);
        let mk = |kind: Kind,
                  ledger: Value,
                  statement: Value,
                  diff: i128,
                  explained: i128,
                  what: &str| {
            let (classification, trades, note) = classify(diff, explained, &f.units_trades, 0);
            Break {
                level: Level::Positions,
                kind,
                asset: fund_asset(fund),
                account: h.custodian_account.clone(),
                ledger,
                statement,
                classification,
                trades,
                detail: format!("{what}; {note}"),
            }
        };
        match line {
            None if ls == 0 && lp == 0 => {}
            None => breaks.push(mk(
                Kind::MissingHolding,
                Value::Units(ls + lp),
                Value::Absent,
                -(ls + lp),
                f.settled_units + f.pending_units,
                &format!("the ledger's custodian mirror holds {} settled and {} pending units; the statement has no line for the asset", super::fmt_units(ls), super::fmt_units(lp)),
            )),
            Some(_) if ls == 0 && lp == 0 && (ss != 0 || sp != 0) => breaks.push(mk(
                Kind::UnexpectedHolding,
                if ledger_funds.contains(&fund) { Value::Units(0) } else { Value::Absent },
                Value::Units(ss + sp),
                ss + sp,
                f.settled_units + f.pending_units,
                &format!("the statement holds {} settled and {} pending units of an asset the ledger does not hold", super::fmt_units(ss), super::fmt_units(sp)),
            )),
            Some(_) => {
                if ss != ls {
                    breaks.push(mk(Kind::SettledUnits, Value::Units(ls), Value::Units(ss), ss - ls, f.settled_units, "settled units differ"));
                }
                if sp != lp {
                    breaks.push(mk(Kind::PendingUnits, Value::Units(lp), Value::Units(sp), sp - lp, f.pending_units, "pending units differ"));
                }
            }
        }
    }
    let compared = rows.len() as u64;
    (
        LevelOutcome {
            level: Level::Positions,
            skipped: None,
            compared,
            notes: Vec::new(),
        },
        rows,
    )
}

// ---------------------------------------------------------------------------------------------
// Cash

/// The institution that states a cash account: the bank states ACME's client money, the custodian
/// the cash it holds for trades.
fn institution(account: CashAccount) -> &'static str {
    match account {
        CashAccount::ClientMoney => "bank",
        CashAccount::CustodySettled | CashAccount::CustodyPending => "custodian",
    }
}

/// Breaks for the accounts a statement should have carried and did not: a statement speaks for
/// the institution of its lines (an empty one for every institution), and that institution's
/// other accounts are then expected too, since a missing line is not a zero balance. Returns the
/// accounts no statement was expected to carry (not reconciled, said in the notes).
fn missing_cash_lines(
    facts: &LedgerFacts,
    statements: &[CashStatement],
    stated: &BTreeSet<CashAccount>,
    breaks: &mut Vec<Break>,
) -> Vec<&'static str> {
    let mut expected: BTreeMap<CashAccount, &str> = BTreeMap::new();
    for st in statements {
        for a in CashAccount::ALL {
            let speaks = st.lines.is_empty()
                || st
                    .lines
                    .iter()
                    .any(|l| institution(l.account) == institution(a));
            if speaks {
                expected.entry(a).or_insert(&st.file);
            }
        }
    }
    let mut unstated = Vec::new();
    for a in CashAccount::ALL.into_iter().filter(|a| !stated.contains(a)) {
        let Some(file) = expected.get(&a) else {
            unstated.push(a.name());
            continue;
        };
        breaks.push(Break {
            level: Level::Cash,
            kind: Kind::MissingCashLine,
            asset: CASH_ASSET.to_string(),
            account: a.name().to_string(),
            ledger: Value::Pence(ledger_cash(facts, a)),
            statement: Value::Absent,
            classification: Classification::True,
            trades: Vec::new(),
            detail: format!(
                "{file}: the {}'s statement has no line for {}: ask for a complete statement",
                institution(a),
                a.name()
            ),
        });
    }
    unstated
}

/// The ledger's balance of a cash account, on its normal side.
fn ledger_cash(facts: &LedgerFacts, account: CashAccount) -> i128 {
    let class = |k| facts.class(LEDGER_CASH_GBP, k);
    match account {
        CashAccount::ClientMoney => class(AccountKind::Bank).debit_balance(),
        CashAccount::CustodySettled => class(AccountKind::CustodianSettled).credit_balance(),
        CashAccount::CustodyPending => class(AccountKind::CustodianUnsettled).credit_balance(),
    }
}

fn cash(
    cfg: &ReconConfig,
    facts: &LedgerFacts,
    statements: &[CashStatement],
    flight: &BTreeMap<FundId, InFlight>,
    breaks: &mut Vec<Break>,
) -> Result<LevelOutcome, InputError> {
    if statements.is_empty() {
        return Ok(LevelOutcome {
            level: Level::Cash,
            skipped: Some("no cash statement given (--cash): cash not reconciled".to_string()),
            compared: 0,
            notes: Vec::new(),
        });
    }
    let mut settled = 0i128;
    let mut pending = 0i128;
    let mut trades: BTreeMap<String, bool> = BTreeMap::new();
    for f in flight.values() {
        settled += f.settled_cash;
        pending += f.pending_cash;
        trades.extend(f.cash_trades.iter().map(|(k, v)| (k.clone(), *v)));
    }
    let tolerance = cfg.cash_tolerance_pence as i128;
    let mut stated: BTreeSet<CashAccount> = BTreeSet::new();
    for st in statements {
        for l in &st.lines {
            stated.insert(l.account);
            let ledger = ledger_cash(facts, l.account);
            let (explained, explaining) = match l.account {
                CashAccount::ClientMoney => (0, BTreeMap::new()),
                CashAccount::CustodySettled => (settled, trades.clone()),
                CashAccount::CustodyPending => (pending, trades.clone()),
            };
            let diff = l.balance_pence - ledger;
            if diff == 0 || (diff.abs() <= tolerance && explained == 0) {
                continue;
            }
            let (classification, refs, note) = classify(diff, explained, &explaining, tolerance);
            if diff.abs() <= tolerance && classification == Classification::True {
                continue;
            }
            breaks.push(Break {
                level: Level::Cash,
                kind: Kind::CashBalance,
                asset: CASH_ASSET.to_string(),
                account: l.account.name().to_string(),
                ledger: Value::Pence(ledger),
                statement: Value::Pence(l.balance_pence),
                classification,
                trades: refs,
                detail: format!(
                    "{} line {}: balance differs beyond the tolerance of {}; {note}",
                    st.file,
                    l.line,
                    super::fmt_pence(tolerance)
                ),
            });
        }
    }
    let mut notes = Vec::new();
    let unstated = missing_cash_lines(facts, statements, &stated, breaks);
    if !unstated.is_empty() {
        notes.push(format!(
            "not in any cash statement, not reconciled: {}",
            unstated.join(", ")
        ));
    }
    Ok(LevelOutcome {
        level: Level::Cash,
        skipped: None,
        compared: stated.len() as u64,
        notes,
    })
}
