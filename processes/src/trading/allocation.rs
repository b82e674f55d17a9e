//! Allocation of a priced net trade to the orders it aggregates, and the ledger transfers that
//! book it.
//!
//! # Netting and internal crossing
//! Per fund and trade date all buys (in cash) and sells (in units) go to the custodian as one
//! trade with two legs. The custodian strikes both legs at the close: the filled buy cash buys
//! `units_bought = floor(cash * 10^10 / price)` micro-units and the filled sell units fetch
//! `cash_for_sold = floor(units * price / 10^10)` pence, and only the difference moves between
//! the custodian and ACME (`net_units`, `net_cash`). The matched part, `min(units_bought,
//! units_sold)` units, is crossed internally: it moves from the sellers' pots to the buyers' pots
//! through ACME's trading account and never reaches the custodian.
//!
//! Because every member's share is computed from the gross legs, exactly as if each leg had been
//! traded at the custodian alone, **crossing never changes any member's outcome**.
//!
//! # Rules (deterministic, exact)
//! - Fills: a partially filled leg is shared by the largest-remainder method over the orders'
//!   requested amounts (ties to the lower order key), so the fills sum exactly to the filled
//!   amount and no order is filled above what it asked; the unfilled remainder of each order is
//!   rejected (its reservation is posted only for the filled part, and the rest released).
//! - Proceeds: buyers share `units_bought` and sellers share `cash_for_sold`, each
//!   `floor(total * own_fill / total_fill)`; the residual (less than one minor unit per order)
//!   goes to ACME's rounding account.
//! - Amendments: a new revision voids the previous revision's pending lines and books new ones,
//!   and moves only the change of the net with the custodian: corrections are new transfers,
//!   never edits.

use crate::messages::{Confirmation, ExternalTrade, Order, Side};
use crate::money::pro_rata;
use acme_ledger::chart::{self, AccountKind, LEDGER_CASH_GBP};
use acme_ledger::ids::{transfer_id, with_step, Domain, Step};
use acme_ledger::{Transfer, TransferFlags};
use serde::{Deserialize, Serialize};

/// The outcome of one order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub order: Order,
    /// Filled part of the order: pence for a buy, micro-units for a sell.
    pub filled: u64,
    /// What the fill brought: micro-units for a buy, pence for a sell.
    pub proceeds: u64,
}

/// The allocation of one revision of a trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub revision: u32,
    pub lines: Vec<Line>,
    /// Units of the buy leg not given to any buyer (to rounding).
    pub units_residual: u64,
    /// Cash of the sell leg not given to any seller (to rounding).
    pub cash_residual: u64,
    /// Units the custodian delivers to ACME (negative: ACME delivers).
    pub net_units: i128,
    /// Cash ACME pays the custodian (negative: the custodian pays).
    pub net_cash: i128,
}

/// Shares `filled` over `requested` by the largest-remainder method: each share is at most its
/// request and the shares sum to `filled` exactly. `filled` must not exceed the total requested.
pub fn largest_remainder(filled: u64, requested: &[u64]) -> Vec<u64> {
    if crate::plant::active(crate::plant::Bug::PartialFillToFirstMembers) {
        // Planted: the fill goes to the first orders until it runs out.
        let mut left = filled;
        return requested
            .iter()
            .map(|&r| {
                let f = r.min(left);
                left -= f;
                f
            })
            .collect();
    }
    let total: u128 = requested.iter().map(|&r| r as u128).sum();
    assert!(
        filled as u128 <= total,
        "filled {filled} exceeds requested {total}"
    );
    if filled as u128 == total {
        return requested.to_vec();
    }
    let mut shares = Vec::with_capacity(requested.len());
    let mut remainders = Vec::with_capacity(requested.len());
    let mut given: u64 = 0;
    for (i, &r) in requested.iter().enumerate() {
        let exact = filled as u128 * r as u128;
        let share = (exact / total) as u64;
        shares.push(share);
        given += share;
        remainders.push((exact % total, i));
    }
    let mut left = filled - given;
    assert!((left as usize) <= requested.len());
    // Largest remainder first; equal remainders go to the earlier order.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in &remainders {
        if left == 0 {
            break;
        }
        if shares[i] < requested[i] {
            shares[i] += 1;
            left -= 1;
        }
    }
    assert_eq!(left, 0, "largest remainder could not place every unit");
    shares
}

/// Allocates a confirmed trade over its orders (in the order given).
pub fn allocate(trade: &ExternalTrade, orders: &[Order], c: &Confirmation) -> Allocation {
    assert!(
        c.buy_cash_filled <= trade.buy_cash_pence,
        "buy fill above the order"
    );
    assert!(
        c.sell_units_filled <= trade.sell_units_micro,
        "sell fill above the order"
    );
    let requested = |side| -> Vec<u64> {
        orders
            .iter()
            .filter(|o| o.side == side)
            .map(|o| o.amount)
            .collect()
    };
    let buy_fills = largest_remainder(c.buy_cash_filled, &requested(Side::Buy));
    let sell_fills = largest_remainder(c.sell_units_filled, &requested(Side::Sell));
    let (buy_units, units_residual) =
        planted_buy_units(c, &buy_fills).unwrap_or_else(|| split(c.units_bought, &buy_fills));
    let cash_for_sold = if crate::plant::active(crate::plant::Bug::CrossingAtWrongPrice) {
        // Planted: sellers are paid at a price 1% above the close.
        c.cash_for_sold + c.cash_for_sold / 100
    } else {
        c.cash_for_sold
    };
    let (sell_cash, cash_residual) = split(cash_for_sold, &sell_fills);
    let mut buys = buy_fills.iter().zip(&buy_units);
    let mut sells = sell_fills.iter().zip(&sell_cash);
    let lines = orders
        .iter()
        .map(|&order| {
            let (&filled, &proceeds) = match order.side {
                Side::Buy => buys.next(),
                Side::Sell => sells.next(),
            }
            .expect("one fill per order");
            Line {
                order,
                filled,
                proceeds,
            }
        })
        .collect();
    Allocation {
        revision: c.revision,
        lines,
        units_residual,
        cash_residual,
        net_units: c.units_bought as i128 - c.sell_units_filled as i128,
        net_cash: c.buy_cash_filled as i128 - c.cash_for_sold as i128,
    }
}

/// The buyers' units under a planted price-dependent bug, when one is planted and its price
/// condition holds.
fn planted_buy_units(c: &Confirmation, fills: &[u64]) -> Option<(Vec<u64>, u64)> {
    use crate::plant::{active, Bug};
    let pound = crate::money::PRICE_SCALE;
    let bought = fills.iter().any(|&f| f > 0);
    if active(Bug::HighPriceUnitsRoundedUp) && c.price.0 > 1_000 * pound && bought {
        // Planted: at a high price each share is rounded to the nearest micro-unit.
        let sum: u128 = fills.iter().map(|&f| f as u128).sum();
        let total = c.units_bought as u128;
        let shares: Vec<u64> = fills
            .iter()
            .map(|&f| ((total * f as u128 + sum / 2) / sum) as u64)
            .collect();
        let given: u64 = shares.iter().sum();
        return Some((shares, c.units_bought.saturating_sub(given)));
    }
    if active(Bug::PennyPriceResidualLost) && c.price.0 < pound / 10 && bought {
        // Planted: at a penny price the residual is taken for dust and not booked.
        return Some((split(c.units_bought, fills).0, 0));
    }
    None
}

fn split(total: u64, weights: &[u64]) -> (Vec<u64>, u64) {
    if crate::plant::active(crate::plant::Bug::AllocationRoundedUp)
        && weights.iter().any(|&w| w > 0)
    {
        // Planted: every share rounded up.
        let sum: u128 = weights.iter().map(|&w| w as u128).sum();
        let shares: Vec<u64> = weights
            .iter()
            .map(|&w| (total as u128 * w as u128).div_ceil(sum) as u64)
            .collect();
        let given: u64 = shares.iter().sum();
        return (shares, total.saturating_sub(given));
    }
    if weights.iter().all(|&w| w == 0) {
        // Nothing filled on this leg: nothing to share (the custodian delivered nothing either).
        assert_eq!(total, 0, "proceeds {total} for a leg with no fill");
        return (vec![0; weights.len()], 0);
    }
    pro_rata(total, weights)
}

/// `sub` of a member line's transfer ids: the leg and the revision (24 bits each way is plenty:
/// revisions are bounded by `pricing::REVISIONS_MAX`).
pub fn line_sub(leg: u8, revision: u32) -> u64 {
    assert!(revision < 1 << 24);
    (leg as u64) << 24 | revision as u64
}

/// The revision part of a line's `sub`.
pub fn sub_revision(sub: u64) -> u32 {
    (sub & 0xFF_FFFF) as u32
}

/// The reservation id of an order (revision-independent).
pub fn reservation_id(order: &Order) -> u128 {
    let step = match order.side {
        Side::Buy => Step::BuyReserve,
        Side::Sell => Step::SellReserve,
    };
    transfer_id(
        step,
        Domain::Instruction,
        order.instruction,
        line_sub(order.leg, 0),
    )
}

/// The pending reservation for an order: the member's cash (buy) or units (sell) into ACME's
/// trading account.
pub fn reservation(order: &Order) -> Transfer {
    let (debit, credit, ledger, step) = match order.side {
        Side::Buy => (
            chart::member_cash(order.member),
            chart::house(AccountKind::AcmeTrading, LEDGER_CASH_GBP),
            LEDGER_CASH_GBP,
            Step::BuyReserve,
        ),
        Side::Sell => {
            let ledger = chart::fund_ledger(order.fund);
            (
                chart::member_units(order.member, order.fund),
                chart::house(AccountKind::AcmeTrading, ledger),
                ledger,
                Step::SellReserve,
            )
        }
    };
    Transfer {
        id: reservation_id(order),
        debit_account_id: debit,
        credit_account_id: credit,
        amount: order.amount as u128,
        user_data_64: order.instruction,
        user_data_32: order.leg as u32,
        ledger,
        code: step.code(),
        flags: TransferFlags::PENDING,
        ..Transfer::default()
    }
}

/// Voids an order's reservation (rejected trade, or a fill of zero).
pub fn void_reservation(order: &Order) -> Transfer {
    let r = reservation(order);
    Transfer {
        id: with_step(r.id, Step::ReserveVoid),
        pending_id: r.id,
        amount: 0,
        flags: TransferFlags::VOID_PENDING_TRANSFER,
        ..r
    }
}

/// The pending allocation lines of a revision (member proceeds and residuals), in a fixed order.
/// Settlement posts them; an amendment voids them.
pub fn pending_lines(trade: &ExternalTrade, a: &Allocation) -> Vec<Transfer> {
    let fund_ledger = chart::fund_ledger(trade.fund);
    let trading_cash = chart::house(AccountKind::AcmeTrading, LEDGER_CASH_GBP);
    let trading_units = chart::house(AccountKind::AcmeTrading, fund_ledger);
    let mut out = Vec::new();
    for line in &a.lines {
        if line.proceeds == 0 {
            continue;
        }
        let o = &line.order;
        let sub = line_sub(o.leg, a.revision);
        let t = match o.side {
            Side::Buy => Transfer {
                id: transfer_id(
                    Step::BuyUnitsAllocate,
                    Domain::Instruction,
                    o.instruction,
                    sub,
                ),
                debit_account_id: trading_units,
                credit_account_id: chart::member_units(o.member, o.fund),
                ledger: fund_ledger,
                code: Step::BuyUnitsAllocate.code(),
                ..Transfer::default()
            },
            Side::Sell => Transfer {
                id: transfer_id(
                    Step::SellCashAllocate,
                    Domain::Instruction,
                    o.instruction,
                    sub,
                ),
                debit_account_id: trading_cash,
                credit_account_id: chart::member_cash(o.member),
                ledger: LEDGER_CASH_GBP,
                code: Step::SellCashAllocate.code(),
                ..Transfer::default()
            },
        };
        out.push(Transfer {
            amount: line.proceeds as u128,
            user_data_128: trade.id as u128,
            user_data_64: o.instruction,
            user_data_32: o.leg as u32,
            flags: TransferFlags::PENDING,
            ..t
        });
    }
    let sub = line_sub(0, a.revision);
    let residuals = [
        (
            Step::BuyUnitsRounding,
            a.units_residual,
            trading_units,
            fund_ledger,
        ),
        (
            Step::SellCashRounding,
            a.cash_residual,
            trading_cash,
            LEDGER_CASH_GBP,
        ),
    ];
    for (step, amount, trading, ledger) in residuals {
        if amount > 0 {
            out.push(Transfer {
                id: transfer_id(step, Domain::Trade, trade.id, sub),
                debit_account_id: trading,
                credit_account_id: chart::house(AccountKind::AcmeRounding, ledger),
                amount: amount as u128,
                user_data_128: trade.id as u128,
                ledger,
                code: step.code(),
                flags: TransferFlags::PENDING,
                ..Transfer::default()
            });
        }
    }
    out
}

/// The transfers that move a change of the net between the custodian's unsettled mirror and the
/// trading accounts (`units`, `cash`: what the custodian delivers / ACME pays, signed).
fn net_transfers(trade: &ExternalTrade, revision: u32, units: i128, cash: i128) -> Vec<Transfer> {
    let fund_ledger = chart::fund_ledger(trade.fund);
    let sub = line_sub(0, revision);
    let mut out = Vec::new();
    let base = Transfer {
        user_data_128: trade.id as u128,
        user_data_32: trade.trade_date.0,
        ..Transfer::default()
    };
    let cust_cash = chart::house(AccountKind::CustodianUnsettled, LEDGER_CASH_GBP);
    let trading_cash = chart::house(AccountKind::AcmeTrading, LEDGER_CASH_GBP);
    let cust_units = chart::house(AccountKind::CustodianUnsettled, fund_ledger);
    let trading_units = chart::house(AccountKind::AcmeTrading, fund_ledger);
    if cash != 0 {
        let (step, debit, credit) = if cash > 0 {
            (Step::TradeCashToCustodian, trading_cash, cust_cash)
        } else {
            (Step::TradeCashFromCustodian, cust_cash, trading_cash)
        };
        out.push(Transfer {
            id: transfer_id(step, Domain::Trade, trade.id, sub),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: cash.unsigned_abs(),
            ledger: LEDGER_CASH_GBP,
            code: step.code(),
            ..base
        });
    }
    if units != 0 {
        let (step, debit, credit) = if units > 0 {
            (Step::TradeUnitsFromCustodian, cust_units, trading_units)
        } else {
            (Step::TradeUnitsToCustodian, trading_units, cust_units)
        };
        out.push(Transfer {
            id: transfer_id(step, Domain::Trade, trade.id, sub),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: units.unsigned_abs(),
            ledger: fund_ledger,
            code: step.code(),
            ..base
        });
    }
    out
}

/// Links a group of transfers into one chain (all or nothing).
fn link(mut group: Vec<Transfer>) -> Vec<Transfer> {
    let n = group.len();
    for (i, t) in group.iter_mut().enumerate() {
        if i + 1 < n {
            t.flags |= TransferFlags::LINKED;
        }
    }
    group
}

/// The transfers that book revision 0 of a trade: the net with the custodian; per order, the
/// reservation posted for the filled part (or voided for no fill) linked with the member's
/// pending proceeds; the pending residuals.
pub fn booking_transfers(trade: &ExternalTrade, a: &Allocation) -> Vec<Transfer> {
    assert_eq!(a.revision, 0);
    let mut out = link(net_transfers(trade, 0, a.net_units, a.net_cash));
    let lines = pending_lines(trade, a);
    let mut pending = lines.iter().peekable();
    for line in &a.lines {
        let o = &line.order;
        let r = reservation(o);
        let settle = if line.filled == 0 {
            void_reservation(o)
        } else {
            let step = match o.side {
                Side::Buy => Step::BuyReservePost,
                Side::Sell => Step::SellReservePost,
            };
            Transfer {
                id: with_step(r.id, step),
                pending_id: r.id,
                amount: line.filled as u128,
                user_data_128: trade.id as u128,
                flags: TransferFlags::POST_PENDING_TRANSFER,
                ..r
            }
        };
        let mut group = vec![settle];
        if line.proceeds > 0 {
            let p = pending
                .next()
                .expect("a pending line per order with proceeds");
            assert_eq!(p.user_data_64, o.instruction);
            group.push(*p);
        }
        out.extend(link(group));
    }
    out.extend(pending);
    out
}

/// The transfers that correct revision `previous` to revision `next` (an amended price): void
/// every pending line of `previous`, book the pending lines of `next`, and move the change of the
/// net with the custodian.
pub fn amendment_transfers(
    trade: &ExternalTrade,
    previous: &Allocation,
    next: &Allocation,
) -> Vec<Transfer> {
    assert!(next.revision > previous.revision);
    let mut out = Vec::new();
    let planted = crate::plant::active(crate::plant::Bug::AmendmentAsEdit);
    for p in pending_lines(trade, previous)
        .into_iter()
        .filter(|_| !planted)
    {
        out.push(Transfer {
            // Unique: each pending line belongs to one revision and is voided at most once.
            id: with_step(p.id, Step::AmendVoid),
            pending_id: p.id,
            amount: 0,
            flags: TransferFlags::VOID_PENDING_TRANSFER,
            ..p
        });
    }
    out.extend(net_transfers(
        trade,
        next.revision,
        next.net_units - previous.net_units,
        next.net_cash - previous.net_cash,
    ));
    out.extend(pending_lines(trade, next));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Date;
    use crate::messages::trade_id;
    use proptest::prelude::*;

    #[test]
    fn largest_remainder_is_exact_and_bounded() {
        assert_eq!(largest_remainder(10, &[5, 5, 5]), vec![4, 3, 3]);
        assert_eq!(largest_remainder(15, &[5, 5, 5]), vec![5, 5, 5]);
        assert_eq!(largest_remainder(0, &[5, 5]), vec![0, 0]);
        assert_eq!(largest_remainder(1, &[1, 3]), vec![0, 1]);
    }

    proptest! {
        #[test]
        fn largest_remainder_sums_exactly(req in proptest::collection::vec(0u64..1_000_000, 1..40), frac in 0u64..=1000) {
            let total: u64 = req.iter().sum();
            let filled = total * frac / 1000;
            let shares = largest_remainder(filled, &req);
            prop_assert_eq!(shares.iter().sum::<u64>(), filled);
            for (s, r) in shares.iter().zip(&req) {
                prop_assert!(s <= r);
            }
        }
    }

    #[test]
    fn a_net_buy_crosses_the_sellers_units() {
        let d = Date(20_000);
        let trade = ExternalTrade {
            id: trade_id(d, 1),
            fund: 1,
            trade_date: d,
            buy_cash_pence: 1_000,
            sell_units_micro: 1_000_000,
        };
        let orders = [
            Order {
                instruction: 1,
                leg: 0,
                member: 1,
                fund: 1,
                side: Side::Buy,
                amount: 1_000,
                dealing_date: d,
            },
            Order {
                instruction: 2,
                leg: 0,
                member: 2,
                fund: 1,
                side: Side::Sell,
                amount: 1_000_000,
                dealing_date: d,
            },
        ];
        // £2.50: £10 buys 4 units; 1 unit fetches 250p.
        let c = Confirmation {
            trade_id: trade.id,
            revision: 0,
            price: crate::money::Price(2_500_000),
            buy_cash_filled: 1_000,
            sell_units_filled: 1_000_000,
            units_bought: 4_000_000,
            cash_for_sold: 250,
        };
        let a = allocate(&trade, &orders, &c);
        assert_eq!(a.lines[0].proceeds, 4_000_000);
        assert_eq!(a.lines[1].proceeds, 250);
        assert_eq!(a.net_units, 3_000_000);
        assert_eq!(a.net_cash, 750);
        let transfers = booking_transfers(&trade, &a);
        // net cash + net units, buy post + pending units, sell post + pending cash.
        assert_eq!(transfers.len(), 6);
        assert!(!transfers
            .last()
            .unwrap()
            .flags
            .contains(TransferFlags::LINKED));
    }
}
