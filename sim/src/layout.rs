//! The simulator's own reading of the ledger's documented layouts, for its oracles.
//!
//! Written again from the documentation (the chart of accounts in `acme_ledger::chart`, the
//! transfer codes in `acme_ledger::ids`, the fields allocation fills in), not by calling the
//! platform's decoders: an oracle that decoded with the platform's code would share its bugs.
//! A unit test pins these numbers against the platform's, so a change of layout is noticed as
//! a change of the documented contract, not silently followed.

use acme_ledger::Transfer;

/// Account kinds, the account id's top 16 bits (`code << 112 | ledger << 80 | owner`).
pub const ACCOUNT_MEMBER_UNITS: u16 = 2;
pub const ACCOUNT_TRADING: u16 = 10;
pub const ACCOUNT_CUSTODIAN_SETTLED: u16 = 20;
pub const ACCOUNT_CUSTODIAN_UNSETTLED: u16 = 21;

/// The cash ledger; fund ledgers are 1000 + fund.
pub const CASH_LEDGER: u32 = 1;
const FUND_LEDGER_BASE: u32 = 1000;

/// Transfer codes (the step that made a transfer), as documented. A post or void of a pending
/// transfer keeps the pending one's code (its own step is only in its id): a reservation's post
/// has the reservation's code, a line's settlement post or amendment void the line's.
pub const BUY_RESERVE: u16 = 2;
pub const SELL_RESERVE: u16 = 14;
pub const BUY_UNITS_ALLOCATE: u16 = 5;
pub const BUY_UNITS_ROUNDING: u16 = 6;
pub const TRADE_CASH_TO_CUSTODIAN: u16 = 7;
pub const TRADE_UNITS_FROM_CUSTODIAN: u16 = 8;
pub const SETTLE_CUSTODIAN_UNITS: u16 = 10;
pub const SETTLE_CUSTODIAN_CASH: u16 = 11;
pub const TRADE_CASH_FROM_CUSTODIAN: u16 = 12;
pub const TRADE_UNITS_TO_CUSTODIAN: u16 = 13;
pub const SELL_CASH_ALLOCATE: u16 = 16;
pub const SELL_CASH_ROUNDING: u16 = 17;

/// Transfer flags (TigerBeetle's bits).
const FLAG_PENDING: u16 = 1 << 1;
const FLAG_POST_PENDING: u16 = 1 << 2;
const FLAG_VOID_PENDING: u16 = 1 << 3;

/// The kind of an account: its code.
pub fn account_kind(id: u128) -> u16 {
    (id >> 112) as u16
}

/// The ledger an account id names.
pub fn account_ledger(id: u128) -> u32 {
    (id >> 80) as u32
}

/// The owner of an account (the member, for a member's account).
pub fn account_owner(id: u128) -> u64 {
    id as u64
}

/// The fund of a fund ledger.
pub fn ledger_fund(ledger: u32) -> Option<u32> {
    ledger.checked_sub(FUND_LEDGER_BASE).filter(|&f| f > 0)
}

/// An account of ACME's, the custodian's or the bank's.
pub fn house_account(kind: u16, ledger: u32) -> u128 {
    (kind as u128) << 112 | (ledger as u128) << 80
}

pub fn fund_ledger(fund: u32) -> u32 {
    FUND_LEDGER_BASE + fund
}

/// The trade a transfer belongs to: allocation, net, settlement and reservation-post transfers
/// carry the trade id in `user_data_128` (0: none).
pub fn transfer_trade(t: &Transfer) -> u64 {
    t.user_data_128 as u64
}

/// Whether a transfer is a pending one, a post of one, or a void of one.
pub fn is_pending(t: &Transfer) -> bool {
    t.flags.0 & FLAG_PENDING != 0
}

pub fn is_post(t: &Transfer) -> bool {
    t.flags.0 & FLAG_POST_PENDING != 0
}

pub fn is_void(t: &Transfer) -> bool {
    t.flags.0 & FLAG_VOID_PENDING != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use acme_ledger::chart::{self, AccountKind};
    use acme_ledger::ids::Step;
    use acme_ledger::TransferFlags;

    /// The documented numbers, against the platform's: a failure here is a change of the
    /// ledger's contract, which the oracles must be told of, not follow blindly.
    #[test]
    fn the_layout_is_the_documented_one() {
        assert_eq!(
            account_kind(chart::member_units(77, 3)),
            ACCOUNT_MEMBER_UNITS
        );
        assert_eq!(account_owner(chart::member_units(77, 3)), 77);
        assert_eq!(account_ledger(chart::member_units(77, 3)), fund_ledger(3));
        assert_eq!(ledger_fund(fund_ledger(3)), Some(3));
        assert_eq!(ledger_fund(CASH_LEDGER), None);
        for (kind, code) in [
            (AccountKind::AcmeTrading, ACCOUNT_TRADING),
            (AccountKind::CustodianSettled, ACCOUNT_CUSTODIAN_SETTLED),
            (AccountKind::CustodianUnsettled, ACCOUNT_CUSTODIAN_UNSETTLED),
        ] {
            for ledger in [CASH_LEDGER, fund_ledger(2)] {
                assert_eq!(chart::house(kind, ledger), house_account(code, ledger));
            }
        }
        let steps = [
            (Step::BuyReserve, BUY_RESERVE),
            (Step::SellReserve, SELL_RESERVE),
            (Step::BuyUnitsAllocate, BUY_UNITS_ALLOCATE),
            (Step::BuyUnitsRounding, BUY_UNITS_ROUNDING),
            (Step::TradeCashToCustodian, TRADE_CASH_TO_CUSTODIAN),
            (Step::TradeUnitsFromCustodian, TRADE_UNITS_FROM_CUSTODIAN),
            (Step::SettleCustodianUnits, SETTLE_CUSTODIAN_UNITS),
            (Step::SettleCustodianCash, SETTLE_CUSTODIAN_CASH),
            (Step::TradeCashFromCustodian, TRADE_CASH_FROM_CUSTODIAN),
            (Step::TradeUnitsToCustodian, TRADE_UNITS_TO_CUSTODIAN),
            (Step::SellCashAllocate, SELL_CASH_ALLOCATE),
            (Step::SellCashRounding, SELL_CASH_ROUNDING),
        ];
        for (step, code) in steps {
            assert_eq!(step.code(), code, "{step:?}");
        }
        let t = |flags| Transfer {
            flags,
            ..Transfer::default()
        };
        assert!(is_pending(&t(TransferFlags::PENDING)));
        assert!(is_post(&t(TransferFlags::POST_PENDING_TRANSFER)));
        assert!(is_void(&t(TransferFlags::VOID_PENDING_TRANSFER)));
        assert!(!is_pending(&t(TransferFlags::LINKED)));
    }
}
