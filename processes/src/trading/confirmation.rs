//! What a custodian's price confirmation must say before pricing acts on it.
//!
//! The confirmation is the custodian's word, from outside the platform: allocation shares its
//! figures over members' pots and asserts what money requires (no fill above the order, no
//! proceeds without a fill). So pricing checks it where it enters, and a confirmation that
//! fails is refused as poison: the host dead-letters it and raises an alert, the trade waits for
//! a good one (a chase asks again), and nothing of it reaches the ledger.
//!
//! The rules, each a [`Refusal`]: the price is above zero; a leg with nothing filled brings
//! nothing; the units the buy cash bought and the cash the sold units fetched are what the
//! price gives, within rounding (the exact quotient rounded down or up: one minor unit).

use crate::messages::{Confirmation, ExternalTrade};
use crate::money::{PENCE_PER_POUND, PRICE_SCALE, UNITS_SCALE};

/// Why a confirmation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    ZeroPrice,
    /// Units bought with no buy cash filled.
    UnitsWithoutBuyFill,
    /// Sale proceeds with no sell units filled.
    ProceedsWithoutSellFill,
    /// Units bought are not the filled buy cash at the price: (stated, floor, ceiling).
    UnitsNotAtPrice(u64, u128, u128),
    /// Proceeds are not the filled sell units at the price: (stated, floor, ceiling).
    ProceedsNotAtPrice(u64, u128, u128),
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::ZeroPrice => write!(f, "price: must be above zero"),
            Refusal::UnitsWithoutBuyFill => {
                write!(f, "units_bought: units bought with no buy cash filled")
            }
            Refusal::ProceedsWithoutSellFill => {
                write!(f, "cash_for_sold: proceeds with no sell units filled")
            }
            Refusal::UnitsNotAtPrice(s, lo, hi) => write!(
                f,
                "units_bought: {s} is not the filled buy cash at the price ({lo} to {hi})"
            ),
            Refusal::ProceedsNotAtPrice(s, lo, hi) => write!(
                f,
                "cash_for_sold: {s} is not the filled sell units at the price ({lo} to {hi})"
            ),
        }
    }
}

/// `n / d` rounded down and up.
fn bounds(n: u128, d: u128) -> (u128, u128) {
    (n / d, n.div_ceil(d))
}

/// Checks a confirmation by itself (the fills against the trade's orders are checked when both
/// are at hand).
pub fn check(c: &Confirmation) -> Result<(), Refusal> {
    if c.price.0 == 0 {
        return Err(Refusal::ZeroPrice);
    }
    if c.buy_cash_filled == 0 && c.units_bought != 0 {
        return Err(Refusal::UnitsWithoutBuyFill);
    }
    if c.sell_units_filled == 0 && c.cash_for_sold != 0 {
        return Err(Refusal::ProceedsWithoutSellFill);
    }
    let price = u128::from(c.price.0);
    // Micro-units for pence: pence * 10^4 micro-pounds * 10^6 micro-units per unit, / price.
    let per_pence = u128::from(PRICE_SCALE / PENCE_PER_POUND) * u128::from(UNITS_SCALE);
    let (lo, hi) = bounds(u128::from(c.buy_cash_filled) * per_pence, price);
    if !(lo..=hi).contains(&u128::from(c.units_bought)) {
        return Err(Refusal::UnitsNotAtPrice(c.units_bought, lo, hi));
    }
    let (lo, hi) = bounds(u128::from(c.sell_units_filled) * price, per_pence);
    if !(lo..=hi).contains(&u128::from(c.cash_for_sold)) {
        return Err(Refusal::ProceedsNotAtPrice(c.cash_for_sold, lo, hi));
    }
    Ok(())
}

/// Checks the fills against the trade: neither leg filled above what was ordered.
pub fn check_fills(trade: &ExternalTrade, c: &Confirmation) -> Result<(), String> {
    if c.buy_cash_filled > trade.buy_cash_pence {
        return Err(format!(
            "buy_cash_filled: {} above the {} ordered",
            c.buy_cash_filled, trade.buy_cash_pence
        ));
    }
    if c.sell_units_filled > trade.sell_units_micro {
        return Err(format!(
            "sell_units_filled: {} above the {} ordered",
            c.sell_units_filled, trade.sell_units_micro
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Delivery, Host};
    use crate::messages::{Message, MsgKind};
    use crate::money::Price;
    use crate::process::{Envelope, LedgerRequest, Service};
    use crate::trading::pricing::Pricing;
    use crate::trading::testkit::{drive_ok, handle, message, monday, sample_trade, sent};

    fn good() -> Confirmation {
        sample_trade(monday(), 1).2
    }

    #[test]
    fn a_confirmation_the_custodian_computed_is_accepted_rounded_either_way() {
        let c = good();
        assert_eq!(check(&c), Ok(()));
        // £150 at £3 buys exactly 50 units; £1 at £3 buys 0.333333..., either way accepted.
        let at = |cash, units| Confirmation {
            price: Price(3_000_000),
            buy_cash_filled: cash,
            units_bought: units,
            sell_units_filled: 0,
            cash_for_sold: 0,
            ..c
        };
        assert_eq!(check(&at(15_000, 50_000_000)), Ok(()));
        assert_eq!(check(&at(100, 333_333)), Ok(()));
        assert_eq!(check(&at(100, 333_334)), Ok(()));
        assert_eq!(
            check(&at(100, 333_335)),
            Err(Refusal::UnitsNotAtPrice(333_335, 333_333, 333_334))
        );
    }

    #[test]
    fn each_bad_figure_is_refused_by_name() {
        let c = good();
        let refused = |c: Confirmation| check(&c).unwrap_err();
        assert_eq!(
            refused(Confirmation {
                price: Price(0),
                ..c
            }),
            Refusal::ZeroPrice
        );
        assert_eq!(
            refused(Confirmation {
                buy_cash_filled: 0,
                ..c
            }),
            Refusal::UnitsWithoutBuyFill
        );
        assert_eq!(
            refused(Confirmation {
                sell_units_filled: 0,
                ..c
            }),
            Refusal::ProceedsWithoutSellFill
        );
        assert!(matches!(
            refused(Confirmation {
                units_bought: c.units_bought * 2,
                ..c
            }),
            Refusal::UnitsNotAtPrice(..)
        ));
        assert!(matches!(
            refused(Confirmation {
                cash_for_sold: c.cash_for_sold + 2,
                ..c
            }),
            Refusal::ProceedsNotAtPrice(..)
        ));
        // The largest figures do not overflow the check.
        assert!(matches!(
            refused(Confirmation {
                price: Price(1),
                buy_cash_filled: u64::MAX,
                units_bought: u64::MAX,
                ..c
            }),
            Refusal::UnitsNotAtPrice(..)
        ));
    }

    #[test]
    fn pricing_refuses_proceeds_without_a_fill_as_poison_and_books_the_good_one() {
        let date = monday();
        let (trade, orders, c) = sample_trade(date, 1);
        let mut p = Pricing::new(Default::default());
        let booked = Message::TradeBooked { trade, orders };
        let now = date.at_minute(17 * 60);
        let id = |k| crate::messages::msg_id(k, trade.id, 0);
        let from_agg = message(
            id(MsgKind::TradeBooked),
            Service::Aggregation,
            Service::Pricing,
            booked,
        );
        assert_eq!(handle(&mut p, now, &from_agg).1, None);
        // The known case: the custodian states proceeds for a sell leg it did not fill. Before
        // this check it reached allocation's `assert!` and crashed pricing.
        let bad = Confirmation {
            sell_units_filled: 0,
            ..c
        };
        let priced = |c| {
            message(
                id(MsgKind::TradePriced),
                Service::Custodian,
                Service::Pricing,
                Message::TradePriced(c),
            )
        };
        let (fx, poison) = handle(&mut p, now, &priced(bad));
        let reason = poison.expect("refused as poison");
        assert!(reason.contains("cash_for_sold"), "{reason}");
        assert!(fx.is_empty(), "{fx:?}");
        // A fill above the order is refused too, now that the trade is known.
        let over = Confirmation {
            buy_cash_filled: trade.buy_cash_pence + 100,
            units_bought: crate::money::units_for_cash(trade.buy_cash_pence + 100, c.price),
            ..c
        };
        let reason = handle(&mut p, now, &priced(over)).1.expect("refused");
        assert!(reason.contains("buy_cash_filled"), "{reason}");
        // The refused answers left no trace: the good one is booked as if it came first.
        let fx = drive_ok(&mut p, now, &priced(c));
        assert!(sent(&fx)
            .iter()
            .any(|e| matches!(e.body, Message::TradeAllocated { .. })));
    }

    /// Operations' side of the host: only the alerts matter here.
    #[derive(Default)]
    struct Alerts(Vec<crate::process::Alert>);

    impl crate::host::Io for Alerts {
        fn submit_ledger(&mut self, _: Service, _: crate::host::Ticket, _: &LedgerRequest) {}
        fn send(&mut self, _: u64, _: Envelope) {}
        fn set_timer(&mut self, _: Service, _: u64, _: u64, _: u64) {}
        fn alert(&mut self, _: u64, alert: crate::process::Alert) {
            self.0.push(alert);
        }
    }

    #[test]
    fn under_the_host_a_bad_confirmation_is_one_dead_letter_and_an_alert() {
        let (trade, _, c) = sample_trade(monday(), 1);
        let mut host = Host::new(Service::Pricing, || Pricing::new(Default::default()));
        let mut io = Alerts::default();
        host.recover(0, &mut io).expect("a fresh store");
        let bad = Envelope {
            id: crate::messages::msg_id(MsgKind::TradePriced, trade.id, 0),
            from: Service::Custodian,
            to: Service::Pricing,
            seq: 0,
            body: Message::TradePriced(Confirmation {
                buy_cash_filled: 0,
                ..c
            }),
        };
        assert_eq!(host.deliver(1_000, bad, &mut io), Delivery::DeadLettered);
        assert_eq!(host.stats().dead_letters, 1);
        assert!(
            io.0.iter()
                .any(|a| a.process == "pricing" && a.what.contains("units_bought")),
            "{:?}",
            io.0
        );
        assert_eq!(host.state().dead_letters().len(), 1);
    }
}
