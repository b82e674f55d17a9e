//! The messages of the platform and how their ids are derived.
//!
//! One enum for the whole platform keeps routing, tracing and (later) the wire format in one
//! place. Every message id is derived from the message's cause with [`msg_id`], never from a
//! counter or a clock, so a re-sent message is recognised as a duplicate by its receiver.

use crate::calendar::Date;
use crate::money::Price;
use acme_ledger::chart::{FundId, MemberId};
use serde::{Deserialize, Serialize};

/// A member's instruction id: `member << 24 | member's sequence number`. The member (or the
/// intake API, from its idempotency key) chooses it, so a resubmitted instruction has the same id.
pub type InstructionId = u64;
/// An external trade id: see [`trade_id`].
pub type TradeId = u64;

/// Most instructions one member can make (the sequence number has 24 bits).
pub const INSTRUCTION_SEQ_MAX: u64 = (1 << 24) - 1;

pub fn instruction_id(member: MemberId, seq: u64) -> InstructionId {
    assert!(
        seq <= INSTRUCTION_SEQ_MAX,
        "instruction sequence {seq} too large"
    );
    assert!(member < (1 << 40), "member id {member} too large");
    member << 24 | seq
}

pub fn instruction_member(id: InstructionId) -> MemberId {
    id >> 24
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

/// `date << 20 | fund << 1`: one (net) external trade per fund and trade date.
pub fn trade_id(date: Date, fund: FundId) -> TradeId {
    assert!(fund < (1 << 19));
    (date.0 as u64) << 20 | (fund as u64) << 1
}

/// Fund of a trade id.
pub fn trade_fund(id: TradeId) -> FundId {
    ((id >> 1) & ((1 << 19) - 1)) as FundId
}

/// Trade date of a trade id.
pub fn trade_date(id: TradeId) -> Date {
    Date((id >> 20) as u32)
}

/// What a member asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InstructionKind {
    /// Open the member's pot (their cash account), with their risk profile (an index into the
    /// re-balancing model set).
    Onboard { profile: u8 },
    /// Cash paid in from the bank.
    Contribute { cash_pence: u64 },
    /// Invest cash from the pot in a fund.
    Invest { fund: FundId, cash_pence: u64 },
    /// Sell units of a fund; the proceeds come into the pot's cash at settlement.
    Sell { fund: FundId, units_micro: u64 },
    /// Sell units of one fund and buy another with the proceeds, placed on the day the sale
    /// settles (see `trading` for the timing).
    Switch {
        from_fund: FundId,
        to_fund: FundId,
        units_micro: u64,
    },
}

/// Who gave an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Origin {
    Member,
    /// The automated re-balancing process.
    Rebalancing,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instruction {
    pub id: InstructionId,
    pub member: MemberId,
    pub kind: InstructionKind,
    pub origin: Origin,
}

/// Where an instruction is. `Completed`, `Settled` and `Rejected` are terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InstructionState {
    /// Taken, not yet applied.
    Received,
    /// Cash reserved; waiting for the cut-off.
    Reserved,
    /// In an external trade placed with the custodian.
    Placed,
    /// Priced: units allocated (pending), cash gone to the custodian.
    Priced,
    /// Settled: units final in the pot. Terminal.
    Settled,
    /// Done (onboarding, contribution). Terminal.
    Completed,
    /// Refused; nothing of the member's moved (or all of it came back). Terminal.
    Rejected,
}

impl InstructionState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            InstructionState::Settled | InstructionState::Completed | InstructionState::Rejected
        )
    }

    pub const ALL: [InstructionState; 7] = [
        InstructionState::Received,
        InstructionState::Reserved,
        InstructionState::Placed,
        InstructionState::Priced,
        InstructionState::Settled,
        InstructionState::Completed,
        InstructionState::Rejected,
    ];
}

/// Which leg of an instruction an order is: 0 for invests and sells and a switch's sale, 1 for a
/// switch's purchase.
pub type Leg = u8;

/// A member's order, once its cash (buy) or units (sell) are reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Order {
    pub instruction: InstructionId,
    pub leg: Leg,
    pub member: MemberId,
    pub fund: FundId,
    pub side: Side,
    /// Cash to invest (buy) or units to sell (sell): pence or micro-units.
    pub amount: u64,
    /// The dealing date intake gave the order from the time it received it (see
    /// `Schedule::dealing_date`): the date it trades on, however late it reaches aggregation.
    /// `Date(0)` on orders written before dealing dates were stamped (aggregation then dates
    /// them by arrival, as that code did).
    #[serde(default)]
    pub dealing_date: Date,
}

/// One net trade with the custodian per fund and trade date, with a buy leg in cash and a sell
/// leg in units; the custodian strikes both at the close and settles only the difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExternalTrade {
    pub id: TradeId,
    pub fund: FundId,
    pub trade_date: Date,
    pub buy_cash_pence: u64,
    pub sell_units_micro: u64,
}

/// The custodian's pricing of a trade (revision 0) or an amendment of it (revision > 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Confirmation {
    pub trade_id: TradeId,
    pub revision: u32,
    pub price: Price,
    /// Cash of the buy leg that was filled (all of it unless partially filled).
    pub buy_cash_filled: u64,
    /// Units of the sell leg that were filled.
    pub sell_units_filled: u64,
    /// Units the filled buy cash bought at the price (gross, before netting).
    pub units_bought: u64,
    /// Cash the filled sell units fetched at the price (gross, before netting).
    pub cash_for_sold: u64,
}

/// A step an order made, as reported back to intake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Advance {
    pub instruction: InstructionId,
    pub leg: Leg,
    /// Filled less than asked.
    pub partial: bool,
    /// For a settled sell leg: the proceeds now in the pot, pence.
    pub proceeds_pence: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Message {
    /// Members -> Intake.
    Instruction(Instruction),
    /// Any -> the sender of message `id`: it was committed (handled by the framework, never seen
    /// by processes).
    Ack { id: u128 },
    /// Intake -> Members: the state an instruction reached.
    InstructionStatus {
        id: InstructionId,
        state: InstructionState,
    },
    /// Scheduler -> Aggregation: the cut-off of `date` has passed.
    CutOff { date: Date },
    /// Scheduler -> Rebalancing: the valuation point of `date` has passed; its closing prices.
    Rebalance {
        date: Date,
        prices: Vec<(FundId, Price)>,
    },
    /// Intake -> Aggregation: an order whose cash is reserved.
    OrderAccepted(Order),
    /// Aggregation -> Intake: the cut-off of `date` came; say when every order dealing on it
    /// or earlier has been sent.
    CloseDealing { date: Date },
    /// Intake -> Aggregation: every order dealing on `date` or earlier and not counted in an
    /// earlier answer has been sent: `orders` of them.
    DealingClosed { date: Date, orders: u64 },
    /// Aggregation -> Custodian: place the trade.
    PlaceTrade(ExternalTrade),
    /// Aggregation -> Pricing: the trade and the orders it aggregates (in order-key order).
    TradeBooked {
        trade: ExternalTrade,
        orders: Vec<Order>,
    },
    /// Custodian -> Pricing: the trade is priced at the closing price (or amended).
    TradePriced(Confirmation),
    /// Custodian -> Pricing: the custodian refused the trade; nothing of it happened.
    TradeRejected { trade_id: TradeId },
    /// Pricing -> Custodian: no answer for this trade yet; send it (again).
    ChaseConfirmation { trade_id: TradeId },
    /// Settlement -> Custodian: no settlement heard for this trade yet; send it (again) if done.
    ChaseSettlement { trade_id: TradeId },
    /// Pricing -> Settlement: revision `revision` of the trade's allocation is in the ledger with
    /// `pending_lines` pending transfers; net units/cash are what the custodian delivers (+) or
    /// takes (-).
    TradeAllocated {
        trade: ExternalTrade,
        revision: u32,
        pending_lines: u64,
        net_units: i128,
        net_cash: i128,
        /// The orders that were filled (some with proceeds too small to make a pending line).
        filled: Vec<Advance>,
    },
    /// Custodian -> Settlement: the trade settled; net units/cash as in `TradeAllocated`.
    TradeSettled {
        trade_id: TradeId,
        net_units: i128,
        net_cash: i128,
    },
    /// Pricing / Settlement / Aggregation -> Intake: these orders reached `state`.
    InstructionsAdvanced {
        orders: Vec<Advance>,
        state: InstructionState,
    },
}

/// Kinds of message, the top byte of a message id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgKind {
    Instruction = 1,
    InstructionStatus = 2,
    CutOff = 3,
    OrderAccepted = 4,
    PlaceTrade = 5,
    TradeBooked = 6,
    TradePriced = 7,
    TradeAllocated = 8,
    TradeSettled = 9,
    InstructionsAdvanced = 10,
    TradeRejected = 11,
    Rebalance = 12,
    ChaseConfirmation = 13,
    ChaseSettlement = 14,
    CloseDealing = 15,
    DealingClosed = 16,
}

/// `kind << 120 | cause << 56 | sub`: the id of a message of `kind` caused by `cause`
/// (an instruction, a trade, a date) with a sub-index (a state, a chunk).
pub fn msg_id(kind: MsgKind, cause: u64, sub: u64) -> u128 {
    assert!(sub < (1 << 56));
    (kind as u128) << 120 | (cause as u128) << 56 | sub as u128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pack_and_unpack() {
        let d = Date(20_000);
        let t = trade_id(d, 4);
        assert_eq!(trade_fund(t), 4);
        assert_eq!(trade_date(t), d);
        assert_ne!(t, trade_id(d, 5));
        let i = instruction_id(5_000_000, 17);
        assert_eq!(instruction_member(i), 5_000_000);
        assert_ne!(
            msg_id(MsgKind::CutOff, 1, 0),
            msg_id(MsgKind::PlaceTrade, 1, 0)
        );
    }
}
