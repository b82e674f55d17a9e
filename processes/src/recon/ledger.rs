//! The ledger side of a reconciliation: what the engine needs, folded from a stream of accounts
//! and transfers.
//!
//! [`LedgerScan`] takes accounts and transfers one at a time, in any order and from any source
//! (the embedded ledger's slices, an export file read in chunks, pages of `query_accounts` from
//! a TigerBeetle cluster through the `Ledger` port), and keeps only sums per (ledger, account
//! kind), the accounts that break a rule, and the external trades. Memory is independent of the
//! number of accounts unless the journal is replayed ([`LedgerScan::new`] with `journal`), which
//! keeps one balance per account touched: meant for exports that carry every transfer.
//!
//! The export directory (`acme sim --export`, read by `acme recon --ledger`) holds
//! `manifest.txt` ([`Manifest`]) and the two record files of `acme_ledger::export`.

use super::replay::{MemSpill, Replay};
use super::InputError;
use crate::calendar::Date;
use crate::messages::TradeId;
use acme_ledger::chart::{self, AccountKind, FundId};
use acme_ledger::ids::{self, Domain, Step};
use acme_ledger::{Account, Transfer, TransferFlags};
use std::collections::BTreeMap;

/// Debits and credits, pending and posted, of an account or a class of accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    pub debits_pending: i128,
    pub debits_posted: i128,
    pub credits_pending: i128,
    pub credits_posted: i128,
}

impl Sums {
    pub fn of(a: &Account) -> Sums {
        Sums {
            debits_pending: a.debits_pending as i128,
            debits_posted: a.debits_posted as i128,
            credits_pending: a.credits_pending as i128,
            credits_posted: a.credits_posted as i128,
        }
    }

    pub fn add(&mut self, o: &Sums) {
        self.debits_pending += o.debits_pending;
        self.debits_posted += o.debits_posted;
        self.credits_pending += o.credits_pending;
        self.credits_posted += o.credits_posted;
    }

    pub fn sub(&mut self, o: &Sums) {
        self.debits_pending -= o.debits_pending;
        self.debits_posted -= o.debits_posted;
        self.credits_pending -= o.credits_pending;
        self.credits_posted -= o.credits_posted;
    }

    /// Debits less credits, pending included.
    pub fn debit_balance(&self) -> i128 {
        self.debits_pending + self.debits_posted - self.credits_pending - self.credits_posted
    }

    /// Credits less debits, pending included.
    pub fn credit_balance(&self) -> i128 {
        -self.debit_balance()
    }

    pub fn is_zero(&self) -> bool {
        *self == Sums::default()
    }
}

/// One external (net) trade as the ledger has it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerTrade {
    pub id: TradeId,
    /// Units the custodian delivers to ACME, net (negative: ACME delivers), all revisions.
    pub net_units: i128,
    /// Cash ACME pays the custodian, net (negative: the custodian pays), all revisions.
    pub net_cash: i128,
    /// The buy leg's filled cash: the buyers' reservations posted for the trade (pence).
    pub buy_cash: u64,
    /// The sell leg's filled units: the sellers' reservations posted for the trade (micro).
    pub sell_units: u64,
    /// The highest revision booked (amendments).
    pub revision: u32,
    /// The day the ledger moved the custodian mirror to settled, if it did.
    pub settled_on: Option<Date>,
}

impl LedgerTrade {
    /// Units the buy leg bought (gross): the net plus what the sellers gave up.
    pub fn units_bought(&self) -> i128 {
        self.net_units + self.sell_units as i128
    }

    /// Cash the sell leg fetched (gross): the buyers' cash less the net paid.
    pub fn cash_for_sold(&self) -> i128 {
        self.buy_cash as i128 - self.net_cash
    }
}

/// An account that breaks a rule by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountFinding {
    pub id: u128,
    pub ledger: u32,
    pub sums: Sums,
    /// For journal mismatches: the balances the transfers give.
    pub journal: Option<Sums>,
}

/// What the engine knows of the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerFacts {
    /// Sums per (ledger, account code).
    pub sums: BTreeMap<(u32, u16), Sums>,
    pub accounts: u64,
    pub transfers: u64,
    /// Member and rounding accounts whose debits exceed their credits.
    pub negative: Vec<AccountFinding>,
    /// Accounts whose id or code is not ACME's chart, holding value.
    pub unknown: Vec<AccountFinding>,
    /// Accounts whose balances differ from the replay of the journal (only with a complete
    /// journal).
    pub journal_mismatches: Vec<AccountFinding>,
    /// Whether the journal was replayed.
    pub journal_checked: bool,
    pub trades: BTreeMap<TradeId, LedgerTrade>,
}

impl LedgerFacts {
    pub fn class(&self, ledger: u32, kind: AccountKind) -> Sums {
        self.sums
            .get(&(ledger, kind.code()))
            .copied()
            .unwrap_or_default()
    }

    /// Every ledger seen.
    pub fn ledgers(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.sums.keys().map(|k| k.0).collect();
        v.dedup();
        v
    }

    /// Funds with accounts in the ledger.
    pub fn funds(&self) -> Vec<FundId> {
        self.ledgers()
            .into_iter()
            .filter_map(chart::ledger_fund)
            .collect()
    }

    /// The custodian mirror of a fund: (settled, pending) units, debit balances.
    pub fn mirror_units(&self, fund: FundId) -> (i128, i128) {
        let l = chart::fund_ledger(fund);
        (
            self.class(l, AccountKind::CustodianSettled).debit_balance(),
            self.class(l, AccountKind::CustodianUnsettled)
                .debit_balance(),
        )
    }
}

/// Folds accounts and transfers into [`LedgerFacts`].
pub struct LedgerScan {
    facts: LedgerFacts,
    /// The journal replay, when the transfers fed are the complete journal.
    replay: Option<Replay>,
    /// The first error of the replay's spill (reported by [`LedgerScan::finish`]).
    spill_error: Option<String>,
    /// The first figure beyond what the platform books (reported by [`LedgerScan::finish`]).
    range_error: Option<String>,
    trades: BTreeMap<TradeId, LedgerTrade>,
    /// Earliest settlement post of each trade's lines (for trades with nothing net to settle).
    posts_settled: BTreeMap<TradeId, Date>,
    last_class: Option<((u32, u16), Sums)>,
    /// The business date of a ledger timestamp.
    calendar: Calendar,
}

impl LedgerScan {
    /// `journal`: the transfers fed are the complete journal, so replay it and compare every
    /// account's balances with it (in memory: for small ledgers; see [`LedgerScan::with_replay`]).
    pub fn new(journal: bool) -> LedgerScan {
        let replay = journal.then(|| Replay::new(Box::new(MemSpill::default()), 1));
        LedgerScan::with_replay(replay, Calendar::default())
    }

    /// A scan whose journal replay (if any) spills where `replay` says, dating transfers by
    /// `calendar`.
    pub fn with_replay(replay: Option<Replay>, calendar: Calendar) -> LedgerScan {
        LedgerScan {
            facts: LedgerFacts {
                journal_checked: replay.is_some(),
                ..LedgerFacts::default()
            },
            replay,
            spill_error: None,
            range_error: None,
            trades: BTreeMap::new(),
            posts_settled: BTreeMap::new(),
            last_class: None,
            calendar,
        }
    }

    fn spilled(&mut self, r: Result<(), String>) {
        if let Err(e) = r {
            self.spill_error.get_or_insert(e);
        }
    }

    fn flush_class(&mut self) {
        if let Some((key, s)) = self.last_class.take() {
            self.facts.sums.entry(key).or_default().add(&s);
        }
    }

    /// Notes the first figure beyond `u64`: the platform books cash and units as `u64` (see
    /// `acme_ledger::chart`), so a larger one is a damaged or foreign ledger, and refusing it
    /// keeps every sum below far from the ends of `i128`.
    fn in_range(&mut self, what: impl FnOnce() -> String, values: &[u128]) -> bool {
        if values.iter().all(|&v| v <= u128::from(u64::MAX)) {
            return true;
        }
        self.range_error
            .get_or_insert_with(|| format!("{} beyond the platform's range (u64)", what()));
        false
    }

    pub fn account(&mut self, a: &Account) {
        self.facts.accounts += 1;
        let balances = [
            a.debits_pending,
            a.debits_posted,
            a.credits_pending,
            a.credits_posted,
        ];
        if !self.in_range(|| format!("account {:#x}: a balance", a.id), &balances) {
            return;
        }
        let sums = Sums::of(a);
        let key = (a.ledger, a.code);
        // Accounts come in runs of one class; add to a local sum and fold it in on change.
        match &mut self.last_class {
            Some((k, s)) if *k == key => s.add(&sums),
            _ => {
                self.flush_class();
                self.last_class = Some((key, sums));
            }
        }
        let finding = AccountFinding {
            id: a.id,
            ledger: a.ledger,
            sums,
            journal: None,
        };
        match chart::decode_account_id(a.id) {
            Some((kind, ledger, _)) if kind.code() == a.code && ledger == a.ledger => {
                let limited = kind.is_member() || kind == AccountKind::AcmeRounding;
                if limited && sums.debits_posted + sums.debits_pending > sums.credits_posted {
                    self.facts.negative.push(finding);
                }
            }
            _ => {
                if !sums.is_zero() {
                    self.facts.unknown.push(finding);
                }
            }
        }
        if let Some(replay) = &mut self.replay {
            let r = replay.account(a);
            self.spilled(r);
        }
    }

    fn trade(&mut self, id: TradeId) -> &mut LedgerTrade {
        self.trades.entry(id).or_insert(LedgerTrade {
            id,
            ..LedgerTrade::default()
        })
    }

    pub fn transfer(&mut self, t: &Transfer) {
        self.facts.transfers += 1;
        if !self.in_range(|| format!("transfer {:#x}: the amount", t.id), &[t.amount]) {
            return;
        }
        let (step, domain, cause, sub) = ids::decode(t.id);
        let amount = t.amount as i128;
        let by_trade = domain == Domain::Trade as u8 && t.code == step;
        let posted = t.flags.contains(TransferFlags::POST_PENDING_TRANSFER);
        let trade_of_line = t.user_data_128 as u64;
        match step {
            s if by_trade && s == Step::TradeCashToCustodian.code() => {
                self.trade(cause).net_cash += amount
            }
            s if by_trade && s == Step::TradeCashFromCustodian.code() => {
                self.trade(cause).net_cash -= amount
            }
            s if by_trade && s == Step::TradeUnitsFromCustodian.code() => {
                self.trade(cause).net_units += amount
            }
            s if by_trade && s == Step::TradeUnitsToCustodian.code() => {
                self.trade(cause).net_units -= amount
            }
            s if by_trade
                && (s == Step::SettleCustodianUnits.code()
                    || s == Step::SettleCustodianCash.code()) =>
            {
                let d = self.calendar.date_of(t.timestamp);
                let tr = self.trade(cause);
                tr.settled_on = Some(tr.settled_on.map_or(d, |x| x.min(d)));
            }
            s if posted && trade_of_line != 0 && s == Step::BuyReservePost.code() => {
                let tr = self.trade(trade_of_line);
                let sum = tr.buy_cash.checked_add(t.amount as u64);
                self.trade_sum(trade_of_line, sum, |tr| &mut tr.buy_cash, "buy cash");
            }
            s if posted && trade_of_line != 0 && s == Step::SellReservePost.code() => {
                let tr = self.trade(trade_of_line);
                let sum = tr.sell_units.checked_add(t.amount as u64);
                self.trade_sum(trade_of_line, sum, |tr| &mut tr.sell_units, "sell units");
            }
            s if posted && trade_of_line != 0 && s == Step::SettlePost.code() => {
                let d = self.calendar.date_of(t.timestamp);
                let e = self.posts_settled.entry(trade_of_line).or_insert(d);
                *e = (*e).min(d);
            }
            _ => {}
        }
        if by_trade
            && [
                Step::TradeCashToCustodian,
                Step::TradeCashFromCustodian,
                Step::TradeUnitsFromCustodian,
                Step::TradeUnitsToCustodian,
            ]
            .iter()
            .any(|s| s.code() == step)
        {
            let revision = (sub & 0xFF_FFFF) as u32;
            let tr = self.trade(cause);
            tr.revision = tr.revision.max(revision);
        }
        if let Some(replay) = &mut self.replay {
            let r = replay.transfer(t);
            self.spilled(r);
        }
    }

    /// Stores a trade's new leg total, or notes that it went beyond `u64`.
    fn trade_sum(
        &mut self,
        id: TradeId,
        sum: Option<u64>,
        field: fn(&mut LedgerTrade) -> &mut u64,
        what: &str,
    ) {
        match sum {
            Some(v) => *field(self.trade(id)) = v,
            None => {
                self.range_error.get_or_insert_with(|| {
                    format!(
                        "trade {id:#x}: the {what} posted sum beyond the platform's range (u64)"
                    )
                });
            }
        }
    }

    /// The facts; an error when the journal replay's spill failed (a disk full, say) or a figure
    /// was beyond the platform's range.
    pub fn finish(mut self) -> Result<LedgerFacts, String> {
        if let Some(e) = self.range_error {
            return Err(e);
        }
        self.flush_class();
        for (id, mut t) in std::mem::take(&mut self.trades) {
            if t.settled_on.is_none() && t.net_units == 0 && t.net_cash == 0 {
                // Fully crossed: nothing moves at the custodian; settled when its lines were.
                t.settled_on = self.posts_settled.get(&id).copied();
            }
            self.facts.trades.insert(id, t);
        }
        if let Some(e) = self.spill_error {
            return Err(format!("journal replay: {e}"));
        }
        if let Some(replay) = self.replay {
            self.facts.journal_mismatches = replay
                .finish()
                .map_err(|e| format!("journal replay: {e}"))?;
        }
        Ok(self.facts)
    }
}

/// Facts from slices (the embedded ledger, a test).
pub fn scan(accounts: &[Account], transfers: &[Transfer], journal: bool) -> LedgerFacts {
    let mut s = LedgerScan::new(journal);
    for a in accounts {
        s.account(a);
    }
    for t in transfers {
        s.transfer(t);
    }
    s.finish()
        .expect("an in-memory replay of the platform's own ledger does not fail")
}

/// The business date of a ledger timestamp. By default the timestamp's UTC date (a ledger
/// stamped with real or simulated time); a ledger stamped by a clock of its own (a TigerBeetle
/// cluster under the simulator, whose days are virtual) is given the first timestamp of each
/// business day instead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calendar {
    /// (first timestamp of the day, the day), ascending.
    day_starts: Vec<(u64, Date)>,
}

impl Calendar {
    /// A calendar from the first timestamp of each business day; they must ascend with the
    /// days.
    pub fn from_day_starts(mut starts: Vec<(u64, Date)>) -> Result<Calendar, String> {
        starts.sort();
        if let Some(w) = starts.windows(2).find(|w| w[0].1 >= w[1].1) {
            return Err(format!(
                "day {} begins at timestamp {}, not before day {} at {}",
                w[0].1, w[0].0, w[1].1, w[1].0
            ));
        }
        Ok(Calendar { day_starts: starts })
    }

    /// The first day's first timestamp (0 for the default calendar: from the beginning).
    pub fn first_timestamp(&self) -> u64 {
        self.day_starts.first().map_or(0, |d| d.0)
    }

    pub fn is_default(&self) -> bool {
        self.day_starts.is_empty()
    }

    pub fn date_of(&self, timestamp: u64) -> Date {
        if self.day_starts.is_empty() {
            return Date::of(timestamp);
        }
        let i = self
            .day_starts
            .partition_point(|&(start, _)| start <= timestamp);
        // Before the first day's start: that day (the ledger's set-up).
        self.day_starts[i.saturating_sub(1)].1
    }

    /// `DATE TIMESTAMP` lines, one day each (the file `acme recon --calendar` reads).
    pub fn render(&self) -> String {
        let mut out = String::from("# business day, first ledger timestamp of the day\n");
        for (ts, d) in &self.day_starts {
            out += &format!("{d} {ts}\n");
        }
        out
    }

    pub fn parse(file: &str, text: &str) -> Result<Calendar, InputError> {
        let mut starts = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = Some(i as u64 + 1);
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let mut parts = l.split_whitespace();
            let (Some(d), Some(ts), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(InputError::new(
                    file,
                    line,
                    "(line)",
                    format!("`{l}` is not `DATE TIMESTAMP`"),
                ));
            };
            let d: Date = d
                .parse()
                .map_err(|e: String| InputError::new(file, line, "date", e))?;
            let ts: u64 = ts.parse().map_err(|_| {
                InputError::new(
                    file,
                    line,
                    "timestamp",
                    format!("`{ts}` is not a whole number"),
                )
            })?;
            starts.push((ts, d));
        }
        Calendar::from_day_starts(starts).map_err(|e| InputError::new(file, None, "date", e))
    }
}

/// Describes an account id for people: `member 42 units of fund 3`, `custodian settled (fund 3)`.
pub fn describe_account(id: u128) -> String {
    let Some((kind, ledger, owner)) = chart::decode_account_id(id) else {
        return format!("account {id:#x} (not in the chart of accounts)");
    };
    let asset = match chart::ledger_fund(ledger) {
        Some(f) => format!("fund {f}"),
        None if ledger == chart::LEDGER_CASH_GBP => "cash".to_string(),
        None => format!("ledger {ledger}"),
    };
    let what = match kind {
        AccountKind::MemberCash => return format!("member {owner} cash ({id:#x})"),
        AccountKind::MemberUnits => return format!("member {owner} units of {asset} ({id:#x})"),
        AccountKind::AcmeTrading => "ACME trading",
        AccountKind::AcmeRounding => "ACME rounding",
        AccountKind::AcmeSuspense => "ACME suspense",
        AccountKind::CustodianSettled => "custodian settled",
        AccountKind::CustodianUnsettled => "custodian unsettled",
        AccountKind::Bank => "bank",
    };
    format!("{what} ({asset})")
}

// ---------------------------------------------------------------------------------------------
// The export directory's manifest

/// File names inside an export's ledger directory.
pub const MANIFEST_FILE: &str = "manifest.txt";
pub const ACCOUNTS_FILE: &str = "accounts.bin";
pub const TRANSFERS_FILE: &str = "transfers.bin";
/// The ledger's business days ([`Calendar`]), when its clock is not the calendar's.
pub const CALENDAR_FILE: &str = "calendar.txt";

/// `manifest.txt`: `key=value` lines (`#` starts a comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The business date the ledger is as of (end of that day).
    pub as_of: Date,
    pub accounts: u64,
    pub transfers: u64,
    /// Whether `transfers.bin` holds every transfer (so the journal can be replayed) or only the
    /// external trades' transfers.
    pub journal_complete: bool,
    /// Trades settle this many business days after their trade date.
    pub settlement_lag_days: u32,
    /// What produced the export.
    pub source: String,
}

impl Manifest {
    pub fn render(&self) -> String {
        format!(
            "# ACME ledger export: {ACCOUNTS_FILE} and {TRANSFERS_FILE} are TigerBeetle 128-byte records\n\
             format=acme-ledger-export\n\
             version=1\n\
             as_of={}\n\
             accounts={}\n\
             transfers={}\n\
             journal={}\n\
             settlement_lag_days={}\n\
             source={}\n",
            self.as_of,
            self.accounts,
            self.transfers,
            if self.journal_complete { "complete" } else { "trades" },
            self.settlement_lag_days,
            self.source.replace('\n', " "),
        )
    }

    pub fn parse(file: &str, text: &str) -> Result<Manifest, InputError> {
        let mut kv: BTreeMap<String, (u64, String)> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = (i + 1) as u64;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let Some((k, v)) = l.split_once('=') else {
                return Err(InputError::new(
                    file,
                    Some(line),
                    "(line)",
                    format!("`{l}` is not key=value"),
                ));
            };
            let k = k.trim().to_string();
            if let Some((first, _)) = kv.get(&k) {
                return Err(InputError::new(
                    file,
                    Some(line),
                    &k,
                    format!("given twice (first on line {first})"),
                ));
            }
            kv.insert(k, (line, v.trim().to_string()));
        }
        let get = |k: &str| -> Result<(u64, String), InputError> {
            kv.get(k)
                .cloned()
                .ok_or_else(|| InputError::new(file, None, k, "missing"))
        };
        let (line, format) = get("format")?;
        if format != "acme-ledger-export" {
            return Err(InputError::new(
                file,
                Some(line),
                "format",
                format!("`{format}` is not acme-ledger-export"),
            ));
        }
        let (line, version) = get("version")?;
        if version != "1" {
            return Err(InputError::new(
                file,
                Some(line),
                "version",
                format!("`{version}` is not a version this build reads (1)"),
            ));
        }
        let num = |k: &str| -> Result<u64, InputError> {
            let (line, v) = get(k)?;
            v.parse().map_err(|_| {
                InputError::new(file, Some(line), k, format!("`{v}` is not a whole number"))
            })
        };
        let (line, as_of) = get("as_of")?;
        let as_of: Date = as_of
            .parse()
            .map_err(|e: String| InputError::new(file, Some(line), "as_of", e))?;
        let (line, journal) = get("journal")?;
        let journal_complete = match journal.as_str() {
            "complete" => true,
            "trades" => false,
            other => {
                return Err(InputError::new(
                    file,
                    Some(line),
                    "journal",
                    format!("`{other}` is neither complete nor trades"),
                ))
            }
        };
        let lag = num("settlement_lag_days")?;
        if lag > 30 {
            return Err(InputError::new(
                file,
                None,
                "settlement_lag_days",
                format!("{lag} is more than 30"),
            ));
        }
        Ok(Manifest {
            as_of,
            accounts: num("accounts")?,
            transfers: num("transfers")?,
            journal_complete,
            settlement_lag_days: lag as u32,
            source: kv.get("source").map(|v| v.1.clone()).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_names_bad_fields() {
        let m = Manifest {
            as_of: Date::from_ymd(2026, 1, 13).unwrap(),
            accounts: 10,
            transfers: 20,
            journal_complete: true,
            settlement_lag_days: 2,
            source: "test".into(),
        };
        assert_eq!(Manifest::parse("m", &m.render()), Ok(m.clone()));
        let bad = m.render().replace("accounts=10", "accounts=ten");
        let e = Manifest::parse("m", &bad).unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("accounts", Some(5)));
        let e = Manifest::parse("m", &m.render().replace("as_of=2026-01-13\n", "")).unwrap_err();
        assert_eq!(e.field, "as_of");
    }

    #[test]
    fn the_journal_replay_finds_an_edited_balance() {
        let bank = chart::account(AccountKind::Bank, 1, 0);
        let member = chart::account(AccountKind::MemberCash, 1, 7);
        let t = Transfer {
            id: 1,
            debit_account_id: bank.id,
            credit_account_id: member.id,
            amount: 500,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        let mut b = bank;
        b.debits_posted = 500;
        let mut m = member;
        m.credits_posted = 500;
        let facts = scan(&[b, m], &[t], true);
        assert!(facts.journal_mismatches.is_empty());
        assert_eq!(facts.class(1, AccountKind::Bank).debit_balance(), 500);
        m.credits_posted = 600;
        let facts = scan(&[b, m], &[t], true);
        assert_eq!(facts.journal_mismatches.len(), 1);
        assert_eq!(facts.journal_mismatches[0].id, member.id);
    }

    #[test]
    fn figures_beyond_the_platforms_range_are_refused_not_summed() {
        // Before: summed into i128 and, with overflow checks, a panic on a damaged export.
        let bank = chart::account(AccountKind::Bank, 1, 0);
        let mut huge = bank;
        huge.debits_posted = u128::from(u64::MAX) + 1;
        let mut s = LedgerScan::new(false);
        s.account(&huge);
        s.account(&huge);
        let e = s.finish().unwrap_err();
        assert!(
            e.contains(&format!("account {:#x}", bank.id)) && e.contains("range"),
            "{e}"
        );
        let t = Transfer {
            id: 9,
            amount: u128::MAX,
            ..Transfer::default()
        };
        let mut s = LedgerScan::new(true);
        s.transfer(&t);
        let e = s.finish().unwrap_err();
        assert!(e.contains("transfer 0x9") && e.contains("range"), "{e}");
        // The largest figures in range still add up exactly.
        let mut big = bank;
        big.debits_posted = u128::from(u64::MAX);
        let facts = scan(&[big, big], &[], false);
        assert_eq!(
            facts.class(1, AccountKind::Bank).debit_balance(),
            2 * i128::from(u64::MAX)
        );
    }
}
