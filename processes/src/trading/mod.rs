//! The buy cycle of the brief's flowchart, as four processes:
//!
//! ```text
//! Members --Instruction--> Intake --OrderAccepted--> Aggregation --PlaceTrade--> Custodian
//!                            ^                          | TradeBooked                |
//!                            |                          v                            |
//!                            +--InstructionsAdvanced-- Pricing <----TradePriced------+
//!                            |                          | TradeAllocated             |
//!                            |                          v                            |
//!                            +--InstructionsAdvanced-- Settlement <--TradeSettled----+
//! ```
//!
//! - [`intake`]: onboarding, contributions (bank -> pot) and invest instructions (a pending
//!   reservation of the member's cash), in batches.
//! - [`aggregation`]: per fund and trade date, all reserved orders become one external trade at
//!   the cut-off.
//! - [`pricing`]: at the closing price, units are allocated pro rata (rounded down, the residual
//!   to ACME's rounding account) as pending transfers, reservations are posted and the cash goes
//!   to the custodian.
//! - [`settlement`]: at T+N the pending units are posted (final) and the custodian mirror moves
//!   from unsettled to settled.

pub mod aggregation;
pub mod allocation;
pub mod intake;
pub mod pricing;
pub mod rebalancing;
pub mod settlement;

/// Ledger request tags: `cause << 24 | phase << 20 | chunk`, so a reply names what it answers.
pub(crate) fn tag(cause: u64, phase: u64, chunk: u64) -> u64 {
    assert!(phase < 16 && chunk < (1 << 20) && cause < (1 << 40));
    cause << 24 | phase << 20 | chunk
}

pub(crate) fn untag(tag: u64) -> (u64, u64, u64) {
    (tag >> 24, (tag >> 20) & 0xF, tag & 0xF_FFFF)
}
