//! ACME's chart of accounts, laid out on TigerBeetle's data model.
//!
//! # Ledgers: one per asset
//! TigerBeetle only moves value between accounts of the same `ledger`, so each asset has its own:
//! - [`LEDGER_CASH_GBP`] (1): pounds sterling in **pence**.
//! - [`fund_ledger`]`(fund)` = 1000 + fund: units of one fund in **micro-units** (6 decimal places,
//!   [`UNITS_SCALE`]). Six places is the precision fund administrators commonly quote units to; it
//!   keeps a 5-million-member allocation exact in `u64` while its residual stays below one
//!   micro-unit per member.
//!
//! # Accounts (the `code` field says which kind)
//! | code | kind | ledgers | flags | normal balance |
//! |---|---|---|---|---|
//! | 1 `MEMBER_CASH` | a member pot's cash | cash | debits_must_not_exceed_credits | credit |
//! | 2 `MEMBER_UNITS` | a member pot's units of one fund | fund | debits_must_not_exceed_credits | credit |
//! | 10 `ACME_TRADING` | ACME's order book: the exchange account for cash-for-units | all | none | zero when idle |
//! | 11 `ACME_ROUNDING` | residuals of pro-rata allocation | all | debits_must_not_exceed_credits | credit |
//! | 12 `ACME_SUSPENSE` | value that cannot be placed yet (operations must clear it) | all | none | zero |
//! | 20 `CUSTODIAN_SETTLED` | mirror of the custodian: settled holding / cash | all | none | fund: debit, cash: credit |
//! | 21 `CUSTODIAN_UNSETTLED` | mirror of the custodian: priced, not yet settled | all | none | fund: debit, cash: credit |
//! | 30 `BANK` | ACME's client-money bank account: where contributions come in | cash | none | debit |
//!
//! Member-facing accounts (and rounding) carry `debits_must_not_exceed_credits`, so TigerBeetle
//! itself refuses any transfer that would take them below zero, pending amounts included: a bug
//! in a process cannot make a member negative, it can only make a transfer fail.
//!
//! # Account ids
//! `code << 112 | ledger << 80 | owner`, where `owner` is the member id for member accounts and
//! 0 for ACME's, the custodian's and the bank's. Every id is derivable from what it is, so no
//! process needs a lookup table, and an id names its account in a log. Ids are never 0 or
//! `u128::MAX` because codes are small and non-zero.
//!
//! # How value moves (a buy)
//! Cash for units is TigerBeetle's currency-exchange recipe, with `ACME_TRADING` as the liquidity
//! provider on both ledgers:
//! 1. contribution: `BANK -> MEMBER_CASH` (cash).
//! 2. buy order: pending `MEMBER_CASH -> ACME_TRADING` (cash): the reservation.
//! 3. priced: `ACME_TRADING -> CUSTODIAN_UNSETTLED` (cash, the trade's total) and
//!    `CUSTODIAN_UNSETTLED -> ACME_TRADING` (fund, the trade's units), then per member a linked
//!    pair: post the reservation, and pending `ACME_TRADING -> MEMBER_UNITS` (fund); the residual
//!    goes pending to `ACME_ROUNDING`. Trading accounts are back to zero.
//! 4. settled (T+N): post every pending units transfer; `CUSTODIAN_SETTLED -> CUSTODIAN_UNSETTLED`
//!    (fund) and `CUSTODIAN_UNSETTLED -> CUSTODIAN_SETTLED` (cash) move the mirror to settled.
//!
//! So in a fund ledger, units in pots (posted = settled, pending = priced but unsettled) equal
//! the custodian mirror's debit balance (settled + unsettled), and in the cash ledger the bank's
//! debit balance equals member cash + cash in flight + cash at the custodian.

use crate::types::{Account, AccountFlags};

/// Pence.
pub const LEDGER_CASH_GBP: u32 = 1;
/// Fund ledgers are `FUND_LEDGER_BASE + fund`.
pub const FUND_LEDGER_BASE: u32 = 1000;
/// Micro-units per unit: fund units are held to 6 decimal places.
pub const UNITS_SCALE: u64 = 1_000_000;
/// Largest fund number (keeps fund ledgers distinct from the cash ledger and below 2^16).
pub const FUND_MAX: u32 = 60_000;

/// Identifies a fund (an asset other than cash).
pub type FundId = u32;
/// Identifies a member; also the `owner` part of their account ids.
pub type MemberId = u64;

pub fn fund_ledger(fund: FundId) -> u32 {
    assert!(fund <= FUND_MAX, "fund {fund} exceeds FUND_MAX");
    FUND_LEDGER_BASE + fund
}

/// The fund of a fund ledger, or `None` for the cash ledger (or an unknown one).
pub fn ledger_fund(ledger: u32) -> Option<FundId> {
    (FUND_LEDGER_BASE..=FUND_LEDGER_BASE + FUND_MAX)
        .contains(&ledger)
        .then(|| ledger - FUND_LEDGER_BASE)
}

/// The kind of an account, stored in its `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u16)]
pub enum AccountKind {
    MemberCash = 1,
    MemberUnits = 2,
    AcmeTrading = 10,
    AcmeRounding = 11,
    AcmeSuspense = 12,
    CustodianSettled = 20,
    CustodianUnsettled = 21,
    Bank = 30,
}

impl AccountKind {
    pub const ALL: [AccountKind; 8] = [
        AccountKind::MemberCash,
        AccountKind::MemberUnits,
        AccountKind::AcmeTrading,
        AccountKind::AcmeRounding,
        AccountKind::AcmeSuspense,
        AccountKind::CustodianSettled,
        AccountKind::CustodianUnsettled,
        AccountKind::Bank,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<AccountKind> {
        AccountKind::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// Accounts that hold value on someone's behalf and so must never go below zero.
    pub fn flags(self) -> AccountFlags {
        match self {
            AccountKind::MemberCash | AccountKind::MemberUnits | AccountKind::AcmeRounding => {
                AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
            }
            _ => AccountFlags::NONE,
        }
    }

    pub fn is_member(self) -> bool {
        matches!(self, AccountKind::MemberCash | AccountKind::MemberUnits)
    }
}

/// The id of an account: `code << 112 | ledger << 80 | owner`.
pub fn account_id(kind: AccountKind, ledger: u32, owner: u64) -> u128 {
    (kind.code() as u128) << 112 | (ledger as u128) << 80 | owner as u128
}

/// Decodes an id made by [`account_id`]: (kind, ledger, owner).
pub fn decode_account_id(id: u128) -> Option<(AccountKind, u32, u64)> {
    let kind = AccountKind::from_code((id >> 112) as u16)?;
    let ledger = ((id >> 80) & 0xFFFF_FFFF) as u32;
    let owner = id as u64;
    ((id >> 64) & 0xFFFF == 0).then_some((kind, ledger, owner))
}

pub fn member_cash(member: MemberId) -> u128 {
    account_id(AccountKind::MemberCash, LEDGER_CASH_GBP, member)
}

pub fn member_units(member: MemberId, fund: FundId) -> u128 {
    account_id(AccountKind::MemberUnits, fund_ledger(fund), member)
}

/// An ACME, custodian or bank account of a ledger (owner 0).
pub fn house(kind: AccountKind, ledger: u32) -> u128 {
    assert!(!kind.is_member(), "{kind:?} is a member account");
    account_id(kind, ledger, 0)
}

/// The account record to create for an id made by [`account_id`]. `user_data_64` carries the
/// owner and `user_data_32` the fund, so `query_accounts` can find a member's pot.
pub fn account(kind: AccountKind, ledger: u32, owner: u64) -> Account {
    Account {
        id: account_id(kind, ledger, owner),
        ledger,
        code: kind.code(),
        flags: kind.flags(),
        user_data_64: owner,
        user_data_32: ledger_fund(ledger).unwrap_or(0),
        ..Account::default()
    }
}

/// The house accounts (ACME, custodian, bank) of the cash ledger and of each fund.
pub fn house_accounts(funds: &[FundId]) -> Vec<Account> {
    let mut out = Vec::new();
    let cash_kinds = [
        AccountKind::Bank,
        AccountKind::AcmeTrading,
        AccountKind::AcmeRounding,
        AccountKind::AcmeSuspense,
        AccountKind::CustodianSettled,
        AccountKind::CustodianUnsettled,
    ];
    for kind in cash_kinds {
        out.push(account(kind, LEDGER_CASH_GBP, 0));
    }
    for &fund in funds {
        for kind in &cash_kinds[1..] {
            out.push(account(*kind, fund_ledger(fund), 0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_distinct() {
        let a = member_cash(42);
        assert_eq!(decode_account_id(a), Some((AccountKind::MemberCash, 1, 42)));
        let u = member_units(5_000_000, 3);
        assert_eq!(
            decode_account_id(u),
            Some((AccountKind::MemberUnits, 1003, 5_000_000))
        );
        assert_ne!(member_units(1, 1), member_units(1, 2));
        assert_ne!(member_units(1, 1), member_units(2, 1));
        let houses = house_accounts(&[1, 2]);
        let mut ids: Vec<u128> = houses.iter().map(|a| a.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), houses.len());
        assert!(houses.iter().all(|a| a.id != 0 && a.id != u128::MAX));
    }

    #[test]
    fn member_accounts_cannot_go_negative() {
        let a = account(AccountKind::MemberUnits, fund_ledger(7), 9);
        assert!(a
            .flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS));
        assert_eq!(a.user_data_32, 7);
        assert_eq!(a.user_data_64, 9);
    }
}
