//! Money, units and prices as integers, and the arithmetic of trading them.
//!
//! Inside the platform cash is `u64` pence and units are `u64` micro-units (see
//! `acme_ledger::chart`); a price is a [`Price`], an integer number of micro-pounds per unit.
//! Decimals (`rust_decimal`) appear only at the edges, to parse and print. Every division
//! rounds down, explicitly, and the remainder is accounted for by the caller (the rounding
//! account), so no penny or micro-unit is ever created or lost by arithmetic.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Micro-units per unit.
pub const UNITS_SCALE: u64 = acme_ledger::chart::UNITS_SCALE;
/// Price scale: micro-pounds per unit.
pub const PRICE_SCALE: u64 = 1_000_000;
/// Pence per pound.
pub const PENCE_PER_POUND: u64 = 100;

/// The price of one unit in micro-pounds (6 decimal places of GBP). Never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Price(pub u64);

impl Price {
    /// From pounds per unit; more than 6 decimal places or a non-positive price is an error.
    pub fn from_decimal(pounds: Decimal) -> Result<Price, String> {
        if pounds <= Decimal::ZERO {
            return Err(format!("price {pounds} must be positive"));
        }
        let scaled = pounds * Decimal::from(PRICE_SCALE);
        if scaled.fract() != Decimal::ZERO {
            return Err(format!("price {pounds} has more than 6 decimal places"));
        }
        let micro: u64 = scaled
            .try_into()
            .map_err(|_| format!("price {pounds} is out of range"))?;
        Ok(Price(micro))
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::from(self.0) / Decimal::from(PRICE_SCALE)
    }
}

/// Units (in micro-units) that `cash_pence` buys at `price`, rounded down.
///
/// units = cash / price = (pence / 100) / (micro_pounds / 10^6) units, times 10^6 micro-units.
pub fn units_for_cash(cash_pence: u64, price: Price) -> u64 {
    assert!(price.0 > 0, "price must be positive");
    let numerator =
        cash_pence as u128 * (PRICE_SCALE / PENCE_PER_POUND) as u128 * UNITS_SCALE as u128;
    let units = numerator / price.0 as u128;
    u64::try_from(units).expect("units overflow u64")
}

/// Cash (in pence) that `units_micro` are worth at `price`, rounded down.
pub fn cash_for_units(units_micro: u64, price: Price) -> u64 {
    let numerator = units_micro as u128 * price.0 as u128;
    let pence = numerator / ((PRICE_SCALE / PENCE_PER_POUND) as u128 * UNITS_SCALE as u128);
    u64::try_from(pence).expect("cash overflow u64")
}

/// [`units_for_cash`] for figures from outside (a statement, a custodian's message): `None` for a
/// zero price or units beyond `u64`, where the platform's own figures would be a bug.
pub fn checked_units_for_cash(cash_pence: u64, price: Price) -> Option<u64> {
    let numerator =
        cash_pence as u128 * (PRICE_SCALE / PENCE_PER_POUND) as u128 * UNITS_SCALE as u128;
    u64::try_from(numerator.checked_div(price.0 as u128)?).ok()
}

/// [`cash_for_units`] for figures from outside: `None` for cash beyond `u64`.
pub fn checked_cash_for_units(units_micro: u64, price: Price) -> Option<u64> {
    let numerator = units_micro as u128 * price.0 as u128;
    let pence = numerator / ((PRICE_SCALE / PENCE_PER_POUND) as u128 * UNITS_SCALE as u128);
    u64::try_from(pence).ok()
}

/// Splits `total` pro rata over `weights`: each share is `floor(total * w / sum(w))`.
/// Returns the shares and the residual (`total - sum(shares)`), which is less than the number of
/// weights. Deterministic: it depends only on the inputs and their order.
pub fn pro_rata(total: u64, weights: &[u64]) -> (Vec<u64>, u64) {
    let weight_sum: u128 = weights.iter().map(|&w| w as u128).sum();
    assert!(
        weight_sum > 0 || total == 0,
        "cannot split {total} over zero weight"
    );
    let mut shares = Vec::with_capacity(weights.len());
    let mut allocated: u64 = 0;
    for &w in weights {
        let share = (total as u128 * w as u128)
            .checked_div(weight_sum)
            .unwrap_or(0) as u64;
        allocated += share;
        shares.push(share);
    }
    assert!(allocated <= total);
    let residual = total - allocated;
    assert!((residual as usize) < weights.len().max(1));
    (shares, residual)
}

/// Pence as pounds, for people.
pub fn pence_to_decimal(pence: u64) -> Decimal {
    Decimal::from(pence) / Decimal::from(PENCE_PER_POUND)
}

/// Micro-units as units, for people.
pub fn units_to_decimal(units_micro: u64) -> Decimal {
    Decimal::from(units_micro) / Decimal::from(UNITS_SCALE)
}

/// Parses a decimal string of units (at most 6 places) into micro-units.
pub fn units_from_str(s: &str) -> Result<u64, String> {
    let d: Decimal = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a decimal number"))?;
    if d < Decimal::ZERO {
        return Err(format!("`{s}` is negative"));
    }
    let scaled = d * Decimal::from(UNITS_SCALE);
    if scaled.fract() != Decimal::ZERO {
        return Err(format!("`{s}` has more than 6 decimal places"));
    }
    scaled
        .try_into()
        .map_err(|_| format!("`{s}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// CI runs the suite in release and in debug: either way an overflow traps (the release
    /// profile sets `overflow-checks`), so a sum of money that would wrap stops instead.
    #[test]
    fn this_build_traps_overflow() {
        let max = std::hint::black_box(u64::MAX);
        let wrapped = std::panic::catch_unwind(|| max + std::hint::black_box(1));
        assert!(wrapped.is_err(), "u64::MAX + 1 did not trap");
    }

    #[test]
    fn buying_at_a_round_price() {
        let p = Price::from_decimal("2.50".parse().unwrap()).unwrap();
        assert_eq!(p, Price(2_500_000));
        // £10.00 at £2.50 is exactly 4 units.
        assert_eq!(units_for_cash(1_000, p), 4 * UNITS_SCALE);
        assert_eq!(cash_for_units(4 * UNITS_SCALE, p), 1_000);
        // £1.00 at £3.00 is 0.333333 units, rounded down.
        let p3 = Price(3_000_000);
        assert_eq!(units_for_cash(100, p3), 333_333);
        assert!(Price::from_decimal("1.0000001".parse().unwrap()).is_err());
        assert!(Price::from_decimal("0".parse().unwrap()).is_err());
        assert_eq!(units_from_str("1.5").unwrap(), 1_500_000);
        assert!(units_from_str("1.0000005").is_err());
    }

    #[test]
    fn pro_rata_rounds_down_and_keeps_the_residual() {
        let (shares, residual) = pro_rata(10, &[1, 1, 1]);
        assert_eq!(shares, vec![3, 3, 3]);
        assert_eq!(residual, 1);
    }

    proptest! {
        #[test]
        fn pro_rata_conserves(total in 0u64..u64::MAX / 2, weights in proptest::collection::vec(1u64..1_000_000_000, 1..50)) {
            let (shares, residual) = pro_rata(total, &weights);
            prop_assert_eq!(shares.iter().sum::<u64>() + residual, total);
            let sum: u128 = weights.iter().map(|&w| w as u128).sum();
            for (s, w) in shares.iter().zip(&weights) {
                // Never more than the exact share.
                prop_assert!((*s as u128) * sum <= total as u128 * *w as u128);
            }
        }

        #[test]
        fn units_never_cost_more_than_paid(cash in 1u64..10_000_000_000, price in 1u64..1_000_000_000) {
            let units = units_for_cash(cash, Price(price));
            prop_assert!(cash_for_units(units, Price(price)) <= cash);
        }
    }
}
