//! Invariant checks over the ledger, by name.
//!
//! After every event the checker looks up the accounts that event's ledger requests touched,
//! folds their change into per-(ledger, kind) sums, and checks the invariants on those sums and
//! on the touched accounts: O(touched) per event, not O(accounts). At the end of every day it
//! recounts every account from scratch and checks that the running sums agree, so the cheap
//! path cannot drift.

use crate::world::{lookup_for_check, SimBackend};
use acme_ledger::chart::{self, AccountKind, LEDGER_CASH_GBP};
use acme_ledger::{Account, AccountFlags};
use std::collections::{BTreeMap, BTreeSet};

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub invariant: String,
    pub detail: String,
    /// Simulated time, ns.
    pub at: u64,
    /// The event after which it was found.
    pub event: String,
}

/// Sums of an account class: debits pending, debits posted, credits pending, credits posted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    pub debits_pending: i128,
    pub debits_posted: i128,
    pub credits_pending: i128,
    pub credits_posted: i128,
}

impl Sums {
    fn add(&mut self, a: &Balances, sign: i128) {
        self.debits_pending += sign * a.debits_pending as i128;
        self.debits_posted += sign * a.debits_posted as i128;
        self.credits_pending += sign * a.credits_pending as i128;
        self.credits_posted += sign * a.credits_posted as i128;
    }

    /// Credits less debits, posted and pending together.
    pub fn credit_balance_total(&self) -> i128 {
        self.credits_posted + self.credits_pending - self.debits_posted - self.debits_pending
    }

    /// Credits less debits, posted only.
    pub fn credit_balance_posted(&self) -> i128 {
        self.credits_posted - self.debits_posted
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Balances {
    debits_pending: u128,
    debits_posted: u128,
    credits_pending: u128,
    credits_posted: u128,
}

impl From<&Account> for Balances {
    fn from(a: &Account) -> Self {
        Balances {
            debits_pending: a.debits_pending,
            debits_posted: a.debits_posted,
            credits_pending: a.credits_pending,
            credits_posted: a.credits_posted,
        }
    }
}

#[derive(Default)]
pub struct Checker {
    known: BTreeMap<u128, Balances>,
    sums: BTreeMap<(u32, u16), Sums>,
    pub found: Vec<Violation>,
}

impl Checker {
    pub fn sums(&self, ledger: u32, kind: AccountKind) -> Sums {
        self.sums
            .get(&(ledger, kind.code()))
            .copied()
            .unwrap_or_default()
    }

    fn ledger_sums(&self, ledger: u32) -> Sums {
        let mut total = Sums::default();
        for (_, s) in self.sums.range((ledger, 0)..=(ledger, u16::MAX)) {
            total.debits_pending += s.debits_pending;
            total.debits_posted += s.debits_posted;
            total.credits_pending += s.credits_pending;
            total.credits_posted += s.credits_posted;
        }
        total
    }

    fn violate(&mut self, invariant: &str, detail: String) {
        self.found.push(Violation {
            invariant: invariant.to_string(),
            detail,
            at: 0,
            event: String::new(),
        });
    }

    /// Folds in the current state of `ids` and checks the invariants they bear on.
    pub fn touched(&mut self, ledger: &mut dyn SimBackend, ids: &BTreeSet<u128>) {
        if ids.is_empty() {
            return;
        }
        let ids: Vec<u128> = ids.iter().copied().collect();
        let mut ledgers = BTreeSet::new();
        for chunk in ids.chunks(acme_ledger::BATCH_EVENTS_MAX) {
            let accounts = lookup_for_check(ledger, chunk);
            for a in &accounts {
                self.fold(a);
                ledgers.insert(a.ledger);
                self.check_account(a);
            }
        }
        for l in ledgers {
            self.check_ledger(l);
        }
    }

    fn fold(&mut self, a: &Account) {
        let now = Balances::from(a);
        let sums = self.sums.entry((a.ledger, a.code)).or_default();
        if let Some(before) = self.known.insert(a.id, now) {
            sums.add(&before, -1);
        }
        sums.add(&now, 1);
    }

    fn check_account(&mut self, a: &Account) {
        if a.flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && a.debits_posted + a.debits_pending > a.credits_posted
        {
            self.violate(
                "member_not_negative",
                format!(
                    "account {:#x} has debits {} + {} over credits {}",
                    a.id, a.debits_posted, a.debits_pending, a.credits_posted
                ),
            );
        }
        if let Some((kind, _, _)) = chart::decode_account_id(a.id) {
            if kind.is_member()
                && !a
                    .flags
                    .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            {
                self.violate(
                    "member_not_negative",
                    format!("member account {:#x} lacks its limit flag", a.id),
                );
            }
        }
    }

    /// The invariants of one ledger, on the running sums.
    pub fn check_ledger(&mut self, ledger: u32) {
        let total = self.ledger_sums(ledger);
        if total.debits_posted != total.credits_posted
            || total.debits_pending != total.credits_pending
        {
            self.violate("ledger_balanced", format!("ledger {ledger}: {total:?}"));
        }
        let s = |k| self.sums(ledger, k);
        if ledger == LEDGER_CASH_GBP {
            // What came in from the bank is in pots, in flight, or at the custodian.
            let bank_in = -s(AccountKind::Bank).credit_balance_posted();
            let members = s(AccountKind::MemberCash).credit_balance_posted();
            let in_flight = s(AccountKind::AcmeTrading).credit_balance_posted();
            let custodian = s(AccountKind::CustodianSettled).credit_balance_posted()
                + s(AccountKind::CustodianUnsettled).credit_balance_posted();
            let acme = s(AccountKind::AcmeRounding).credit_balance_posted()
                + s(AccountKind::AcmeSuspense).credit_balance_posted();
            if bank_in != members + in_flight + custodian + acme {
                self.violate(
                    "cash_conserved",
                    format!("bank in {bank_in} != members {members} + in flight {in_flight} + custodian {custodian} + acme {acme}"),
                );
            }
        } else if chart::ledger_fund(ledger).is_some() {
            let pots = s(AccountKind::MemberUnits).credit_balance_total()
                + s(AccountKind::AcmeRounding).credit_balance_total()
                + s(AccountKind::AcmeTrading).credit_balance_total()
                + s(AccountKind::AcmeSuspense).credit_balance_total();
            let mirror = -(s(AccountKind::CustodianSettled).credit_balance_total()
                + s(AccountKind::CustodianUnsettled).credit_balance_total());
            if pots != mirror {
                self.violate(
                    "units_match_custodian_mirror",
                    format!("ledger {ledger}: units in pots {pots} != custodian mirror {mirror}"),
                );
            }
        }
    }

    /// Recounts every account and checks that the running sums agree.
    pub fn recount(&mut self, accounts: &[Account]) {
        let mut fresh: BTreeMap<(u32, u16), Sums> = BTreeMap::new();
        for a in accounts {
            fresh
                .entry((a.ledger, a.code))
                .or_default()
                .add(&Balances::from(a), 1);
            self.check_account(a);
        }
        let mut keys: BTreeSet<(u32, u16)> = fresh.keys().copied().collect();
        keys.extend(self.sums.keys().copied());
        for key in keys {
            let recounted = fresh.get(&key).copied().unwrap_or_default();
            let running = self.sums.get(&key).copied().unwrap_or_default();
            if recounted != running {
                self.violate(
                    "running_sums_match_recount",
                    format!(
                        "ledger {} code {}: running {running:?}, recounted {recounted:?}",
                        key.0, key.1
                    ),
                );
            }
        }
        let ledgers: BTreeSet<u32> = fresh.keys().map(|k| k.0).collect();
        for l in ledgers {
            self.check_ledger(l);
        }
    }
}

/// Whether the end-of-day business oracles (pots against the model, the custodian's books
/// against the ledger's mirror, the trading accounts flat, the roundings) ran. They compare
/// settled states, so a day that ends with a message in flight skips them; every skip is
/// counted, and a run fails if, after one, they never ran again (the state they would have
/// checked went unchecked), or if they never ran at all.
#[derive(Clone, Debug, Default)]
pub struct OracleDays {
    pub checked: u64,
    pub skipped: u64,
    /// The first day skipped since they last ran.
    pub unchecked_since: Option<acme_processes::calendar::Date>,
}

impl OracleDays {
    pub fn skip(&mut self, date: acme_processes::calendar::Date) {
        self.skipped += 1;
        self.unchecked_since.get_or_insert(date);
    }

    pub fn ran(&mut self) {
        self.checked += 1;
        self.unchecked_since = None;
    }

    /// What is wrong with the oracles' coverage at the end of a run, if anything.
    pub fn verdict(&self) -> Option<String> {
        match self.unchecked_since {
            Some(date) => Some(format!(
                "the end-of-day oracles were skipped from {date} on ({} days skipped, {} checked) \
                 and never ran again",
                self.skipped, self.checked
            )),
            None if self.checked == 0 => Some(format!(
                "the end-of-day oracles never ran ({} days skipped)",
                self.skipped
            )),
            None => None,
        }
    }
}
