//! Planted bugs: realistic mistakes that can be switched on by name, to prove that the
//! simulator's checkers catch them.
//!
//! Only with the cargo feature `planted-bugs`, which release builds never enable (the `acme`
//! binary gets it only when built with `--features planted-bugs`). Without the feature
//! [`active`] is a constant `false` and every planted branch compiles away. The switch is
//! thread-local so that parallel simulations (the swarm's workers) do not see each other's bug.
//! Each bug is a one-line deviation at the place where a real developer could make it.

/// The catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// The host applies a duplicated message again (no dedupe), and aggregation trusts it.
    DuplicateAppliedTwice,
    /// A reservation's id comes from the clock instead of its instruction.
    IdFromClock,
    /// Allocation rounds each member's units up instead of down.
    AllocationRoundedUp,
    /// A rejected trade's reservations are never released.
    ReservationNotReleased,
    /// Settlement posts the members' cash lines but never their units.
    UnitsNeverSettled,
    /// Settlement posts pending lines of every revision, superseded ones included.
    SettlesSupersededLines,
    /// A crash loses the effect the process was about to carry out.
    CrashLosesEffect,
    /// A cut-off that fires twice aggregates the same orders into a second trade.
    CutOffTwiceTradesTwice,
    /// Internal crossing pays sellers at a price 1% above the close.
    CrossingAtWrongPrice,
    /// An amended price is booked on top of the first allocation instead of replacing it.
    AmendmentAsEdit,
    /// A partial fill goes to the first orders until it runs out.
    PartialFillToFirstMembers,
    /// Re-balancing also switches members with trades pending.
    RebalancesBusyMembers,
    /// Settlement never moves the custodian mirror from unsettled to settled.
    MirrorNeverSettled,
    /// The host takes a ledger answer in two records: the request leaves the outbox, then the
    /// answer comes in (a crash between them loses both).
    NonAtomicReply,
    /// The host acknowledges a message on receipt, before committing it.
    AckBeforeCommit,
    /// Recovery replays a journal through whatever code runs, whatever version wrote it.
    UnversionedReplay,
    /// Settlement counts T+N in calendar days, not business days, when it expects the
    /// custodian's settlement (so it chases over weekends and holidays, before the trade is due).
    SettlementLagCalendarDays,
    /// Pricing keeps chasing a trade after the custodian has answered it: the chase re-arms
    /// for ever, and the run would never end.
    EndlessChase,
    /// A contribution above GBP 100,000 goes through the large-payment path, which carries
    /// whole pounds: its pence are dropped. Fires only for contributions above GBP 100,000.
    LargeContributionInPounds,
    /// At a price above GBP 1,000 a micro-unit is worth a visible sum, so each buyer's units
    /// are rounded to the nearest micro-unit rather than down. Fires only for funds priced above
    /// GBP 1,000 (and only when some share's remainder is at least a half).
    HighPriceUnitsRoundedUp,
    /// At a price below 10p the buy leg's units residual (under one micro-unit per order) is
    /// taken for dust and not booked to the rounding account. Fires only for funds priced
    /// below GBP 0.10.
    PennyPriceResidualLost,
    /// On the last business day of a month intake stamps orders with the next business day
    /// (month-end processing taken to close dealing early). Fires only at month end.
    MonthEndDealsNextDay,
    /// Settlement's T+N skips weekends and only the bank holidays that do not fall on a Monday
    /// (a Monday was taken for a working day). Fires only when T+N spans a Monday holiday.
    MondayHolidayIsBusinessDay,
    /// Intake converts the cut-off from London time with a fixed offset of one hour (British
    /// Summer Time's), so in winter the cut-off falls at 15:00. Fires only in GMT (from the
    /// October clock change to the March one), for orders received between 15:00 and 16:00.
    CutOffFixedBstOffset,
    /// Aggregation trades only the first 8,189 orders (one ledger batch) of a fund's day; the
    /// rest are left behind. Fires only past 8,189 orders of one fund on one day.
    BatchBoundaryDropped,
    /// Settlement reads a trade's pending lines back one page only (8,189 transfers) and takes
    /// that for all of them. Fires only for a trade with more than 8,189 pending lines.
    SettlementFirstPageOnly,
    /// Re-balancing's scan of the members' cash accounts stops after its first page. Fires only
    /// with more than 8,189 pots.
    RebalancingFirstPageOnly,
    /// Re-balancing rounds a fund's weight in a pot up to the next basis point before comparing
    /// it with the band. Fires only for a fund whose weight in a pot lies within one basis point
    /// of the band's edge (just inside the upper edge looks outside, just outside the lower edge
    /// looks inside).
    RebalancingWeightRoundedUp,
    /// An order that reaches aggregation after its dealing date's cut-off is dealt on the date
    /// of its arrival, not of its receipt. Fires only when an order's message (or its
    /// reservation) is delayed past the cut-off.
    LateOrderDatedOnArrival,
}

impl Bug {
    pub const ALL: [Bug; 29] = [
        Bug::DuplicateAppliedTwice,
        Bug::IdFromClock,
        Bug::AllocationRoundedUp,
        Bug::ReservationNotReleased,
        Bug::UnitsNeverSettled,
        Bug::SettlesSupersededLines,
        Bug::CrashLosesEffect,
        Bug::CutOffTwiceTradesTwice,
        Bug::CrossingAtWrongPrice,
        Bug::AmendmentAsEdit,
        Bug::PartialFillToFirstMembers,
        Bug::RebalancesBusyMembers,
        Bug::MirrorNeverSettled,
        Bug::NonAtomicReply,
        Bug::AckBeforeCommit,
        Bug::UnversionedReplay,
        Bug::SettlementLagCalendarDays,
        Bug::EndlessChase,
        Bug::LargeContributionInPounds,
        Bug::HighPriceUnitsRoundedUp,
        Bug::PennyPriceResidualLost,
        Bug::MonthEndDealsNextDay,
        Bug::MondayHolidayIsBusinessDay,
        Bug::CutOffFixedBstOffset,
        Bug::BatchBoundaryDropped,
        Bug::SettlementFirstPageOnly,
        Bug::RebalancingFirstPageOnly,
        Bug::RebalancingWeightRoundedUp,
        Bug::LateOrderDatedOnArrival,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::DuplicateAppliedTwice => "duplicate-applied-twice",
            Bug::IdFromClock => "id-from-clock",
            Bug::AllocationRoundedUp => "allocation-rounded-up",
            Bug::ReservationNotReleased => "reservation-not-released",
            Bug::UnitsNeverSettled => "units-never-settled",
            Bug::SettlesSupersededLines => "settles-superseded-lines",
            Bug::CrashLosesEffect => "crash-loses-effect",
            Bug::CutOffTwiceTradesTwice => "cutoff-twice-trades-twice",
            Bug::CrossingAtWrongPrice => "crossing-at-wrong-price",
            Bug::AmendmentAsEdit => "amendment-as-edit",
            Bug::PartialFillToFirstMembers => "partial-fill-to-first-members",
            Bug::RebalancesBusyMembers => "rebalances-busy-members",
            Bug::MirrorNeverSettled => "mirror-never-settled",
            Bug::NonAtomicReply => "non-atomic-reply",
            Bug::AckBeforeCommit => "ack-before-commit",
            Bug::UnversionedReplay => "unversioned-replay",
            Bug::SettlementLagCalendarDays => "settlement-lag-calendar-days",
            Bug::EndlessChase => "endless-chase",
            Bug::LargeContributionInPounds => "large-contribution-in-pounds",
            Bug::HighPriceUnitsRoundedUp => "high-price-units-rounded-up",
            Bug::PennyPriceResidualLost => "penny-price-residual-lost",
            Bug::MonthEndDealsNextDay => "month-end-deals-next-day",
            Bug::MondayHolidayIsBusinessDay => "monday-holiday-is-business-day",
            Bug::CutOffFixedBstOffset => "cutoff-fixed-bst-offset",
            Bug::BatchBoundaryDropped => "batch-boundary-dropped",
            Bug::SettlementFirstPageOnly => "settlement-first-page-only",
            Bug::RebalancingFirstPageOnly => "rebalancing-first-page-only",
            Bug::RebalancingWeightRoundedUp => "rebalancing-weight-rounded-up",
            Bug::LateOrderDatedOnArrival => "late-order-dated-on-arrival",
        }
    }

    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.iter().copied().find(|b| b.name() == name)
    }
}

#[cfg(feature = "planted-bugs")]
mod switch {
    use super::Bug;
    use std::cell::Cell;

    thread_local! {
        static ACTIVE: Cell<Option<Bug>> = const { Cell::new(None) };
    }

    /// Plants `bug` (or none) for the simulations run on this thread.
    pub fn plant(bug: Option<Bug>) {
        ACTIVE.with(|a| a.set(bug));
    }

    #[inline]
    pub fn active(bug: Bug) -> bool {
        ACTIVE.with(|a| a.get() == Some(bug))
    }

    pub const AVAILABLE: bool = true;
}

#[cfg(not(feature = "planted-bugs"))]
mod switch {
    use super::Bug;

    /// Without the `planted-bugs` feature nothing can be planted.
    pub fn plant(bug: Option<Bug>) {
        assert!(bug.is_none(), "built without the planted-bugs feature");
    }

    #[inline(always)]
    pub fn active(_bug: Bug) -> bool {
        false
    }

    pub const AVAILABLE: bool = false;
}

pub use switch::{active, plant, AVAILABLE};
