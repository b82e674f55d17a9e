//! Transfer ids derived from their cause.
//!
//! Every transfer the platform submits has an id that is a pure function of *why* it exists:
//! the step of the process, the kind of cause (an instruction, an external trade), the cause's id
//! and a sub-index (a member's line within a trade, a correction's revision). A retried step, a
//! replayed journal or a duplicated message therefore submits the very same id with the very
//! same fields, and the ledger answers `exists`: the step is a no-op. Ids are built by bit
//! packing rather than hashing, so two different causes can never collide:
//!
//! ```text
//!  127      112 111   104 103                          40 39            0
//! +----------+----------+------------------------------+---------------+
//! |   step   |  domain  |           cause (64)          |   sub (40)    |
//! +----------+----------+------------------------------+---------------+
//! ```
//!
//! TigerBeetle prefers roughly increasing ids for LSM locality; cause ids here are increasing
//! within a day (instruction and trade ids embed their date), which is close enough, and
//! uniqueness by construction matters more to an auditor than the last percent of speed.

/// What caused a transfer: the top-level entity whose id fills the `cause` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Domain {
    /// A member instruction (contribution, invest, ...); `cause` is the instruction id.
    Instruction = 1,
    /// An external trade with the custodian; `cause` is the trade id.
    Trade = 2,
    /// A member's pot as a whole (its opening balances); `cause` is the member id.
    Member = 3,
}

/// The step of a process that made the transfer. Also used as the transfer's `code`, so the
/// ledger itself says what every transfer was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u16)]
pub enum Step {
    /// Cash in from the bank to a member's pot.
    Contribution = 1,
    /// Pending reservation of a member's cash for a buy.
    BuyReserve = 2,
    /// Posting (full or partial) of that reservation when the trade is priced.
    BuyReservePost = 3,
    /// Voiding of a reservation (buy cash or sell units) when the order cannot trade.
    ReserveVoid = 4,
    /// Pending units from the trading account to a buyer's pot at pricing.
    BuyUnitsAllocate = 5,
    /// Pending residual units of a buy allocation to ACME's rounding account.
    BuyUnitsRounding = 6,
    /// Net cash of a trade from the trading account to the custodian (net buy).
    TradeCashToCustodian = 7,
    /// Net units of a trade from the custodian to the trading account (net buy).
    TradeUnitsFromCustodian = 8,
    /// Posting of a pending allocation line (units to a buyer, cash to a seller, a residual)
    /// at settlement.
    SettlePost = 9,
    /// Custodian mirror, fund ledger: unsettled to settled (or back, for a net sell).
    SettleCustodianUnits = 10,
    /// Custodian mirror, cash ledger: unsettled to settled (or back, for a net sell).
    SettleCustodianCash = 11,
    /// Net cash of a trade from the custodian to the trading account (net sell).
    TradeCashFromCustodian = 12,
    /// Net units of a trade from the trading account to the custodian (net sell).
    TradeUnitsToCustodian = 13,
    /// Pending reservation of a member's units for a sell.
    SellReserve = 14,
    /// Posting (full or partial) of that reservation when the trade is priced.
    SellReservePost = 15,
    /// Pending sale proceeds from the trading account to a seller's pot at pricing.
    SellCashAllocate = 16,
    /// Pending residual cash of a sell allocation to ACME's rounding account.
    SellCashRounding = 17,
    /// Voiding of an allocation line superseded by an amended price.
    AmendVoid = 18,
    /// An opening balance of a member's pot, booked by operations when the pot is transferred
    /// in (`sub` is the fund, 0 for cash): from the bank, or from the custodian's settled
    /// holding.
    OpeningBalance = 19,
}

impl Step {
    pub fn code(self) -> u16 {
        self as u16
    }
}

const SUB_BITS: u32 = 40;
/// Largest sub-index.
pub const SUB_MAX: u64 = (1 << SUB_BITS) - 1;

/// The id of the transfer made by `step` for `cause` (its `sub`-th line).
pub fn transfer_id(step: Step, domain: Domain, cause: u64, sub: u64) -> u128 {
    assert!(sub <= SUB_MAX, "sub-index {sub} exceeds {SUB_MAX}");
    (step.code() as u128) << 112
        | (domain as u128) << 104
        | (cause as u128) << SUB_BITS
        | sub as u128
}

/// Bits of `sub` that callers may use; the top byte is kept for [`with_step`].
pub const SUB_CALLER_BITS: u32 = 32;

/// The id of a step that follows another transfer (the post or void of a pending transfer): the
/// same cause and sub-index, the new step, and the original step kept in the top byte of `sub`,
/// so the follow-ups of two different transfers of one cause (say, the posts of a trade's unit
/// and cash residuals) never share an id. Either id can be computed from the other.
pub fn with_step(id: u128, step: Step) -> u128 {
    let (original, _, _, sub) = decode(id);
    assert!(
        original <= 0xFF,
        "step {original} does not fit the derivation byte"
    );
    assert_eq!(sub >> SUB_CALLER_BITS, 0, "id {id:#x} is already derived");
    (id & !(0xFFFF_u128 << 112))
        | (step.code() as u128) << 112
        | (original as u128) << SUB_CALLER_BITS
}

/// (step code, domain, cause, sub) of an id made by [`transfer_id`].
pub fn decode(id: u128) -> (u16, u8, u64, u64) {
    (
        (id >> 112) as u16,
        (id >> 104) as u8,
        (id >> SUB_BITS) as u64,
        (id as u64) & SUB_MAX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_injective_over_their_parts() {
        let a = transfer_id(Step::BuyReserve, Domain::Instruction, 7, 0);
        let b = transfer_id(Step::BuyReserve, Domain::Instruction, 8, 0);
        let c = transfer_id(Step::BuyReservePost, Domain::Instruction, 7, 0);
        let d = transfer_id(Step::BuyReserve, Domain::Trade, 7, 0);
        let e = transfer_id(Step::BuyReserve, Domain::Instruction, 7, 1);
        let all = [a, b, c, d, e];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(decode(e), (Step::BuyReserve.code(), 1, 7, 1));
        assert_ne!(with_step(a, Step::BuyReservePost), c);
        assert_eq!(
            decode(with_step(a, Step::BuyReservePost)).0,
            Step::BuyReservePost.code()
        );
        // Follow-ups of two transfers of one cause stay distinct.
        let units = transfer_id(Step::BuyUnitsRounding, Domain::Trade, 9, 0);
        let cash = transfer_id(Step::SellCashRounding, Domain::Trade, 9, 0);
        assert_ne!(
            with_step(units, Step::SettlePost),
            with_step(cash, Step::SettlePost)
        );
        let max = transfer_id(Step::SettleCustodianCash, Domain::Trade, u64::MAX, SUB_MAX);
        assert_ne!(max, u128::MAX);
        assert_eq!(decode(max), (11, 2, u64::MAX, SUB_MAX));
    }
}
