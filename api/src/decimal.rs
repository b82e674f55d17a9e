//! Decimal strings at the edge, integers inside: "100.00" pounds is 10,000 pence, "1.5" units
//! is 1,500,000 micro-units. Parsed digit by digit, never through a float, and refused with a
//! reason rather than rounded.

use crate::problem::Problem;

/// Parses a positive decimal with at most `places` decimal places into an integer count of
/// `10^-places`, at most `max`; errors name `field`.
pub fn parse_positive(field: &str, text: &str, places: u32, max: u64) -> Result<u64, Problem> {
    let bad = |why: &str| Problem::invalid(field, format!("`{}` {why}", shorten(text)));
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "is not a decimal number like \"100.00\" (digits, one optional point)",
        ));
    }
    if text.contains('.') && fraction.is_empty() {
        return Err(bad("has a point but no digits after it"));
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a decimal number like \"100.00\""));
    }
    if fraction.len() > places as usize {
        return Err(bad(&format!("has more than {places} decimal places")));
    }
    let scale = 10u128.pow(places);
    let mut value: u128 = 0;
    for b in whole.bytes() {
        value = value * 10 + u128::from(b - b'0');
        if value > u128::from(max) {
            return Err(bad(&format!(
                "is more than the largest taken, {}",
                format(max, places)
            )));
        }
    }
    let mut frac: u128 = 0;
    for b in fraction.bytes() {
        frac = frac * 10 + u128::from(b - b'0');
    }
    frac *= 10u128.pow(places - fraction.len() as u32);
    let total = value * scale + frac;
    if total == 0 {
        return Err(bad("must be more than zero"));
    }
    if total > u128::from(max) {
        return Err(bad(&format!(
            "is more than the largest taken, {}",
            format(max, places)
        )));
    }
    Ok(total as u64)
}

/// An integer count of `10^-places` as a decimal string with exactly `places` places.
pub fn format(value: u64, places: u32) -> String {
    format_signed(i128::from(value), places)
}

pub fn format_signed(value: i128, places: u32) -> String {
    let scale = 10i128.pow(places);
    let sign = if value < 0 { "-" } else { "" };
    let v = value.unsigned_abs();
    let (whole, frac) = (v / scale as u128, v % scale as u128);
    if places == 0 {
        return format!("{sign}{whole}");
    }
    format!("{sign}{whole}.{frac:0width$}", width = places as usize)
}

/// Echoed input is cut short, so a huge value does not make a huge error.
fn shorten(text: &str) -> String {
    if text.chars().count() <= 40 {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(40).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_to_minor_units_or_are_refused_with_the_field() {
        assert_eq!(parse_positive("amount", "100.00", 2, u64::MAX), Ok(10_000));
        assert_eq!(parse_positive("amount", "0.01", 2, u64::MAX), Ok(1));
        assert_eq!(parse_positive("amount", "7", 2, u64::MAX), Ok(700));
        assert_eq!(parse_positive("units", "1.5", 6, u64::MAX), Ok(1_500_000));
        for bad in [
            "", "0", "0.00", "-1", "+1", "1.", ".5", "1.001", "1e3", "1,00", " 1", "NaN",
        ] {
            let e = parse_positive("amount", bad, 2, u64::MAX).expect_err(bad);
            assert_eq!(e.field.as_deref(), Some("amount"), "{bad}");
            assert_eq!(e.status.as_u16(), 422, "{bad}");
        }
        assert!(parse_positive("amount", "10.01", 2, 1_000).is_err());
        assert_eq!(parse_positive("amount", "10.00", 2, 1_000), Ok(1_000));
        let huge = "9".repeat(400);
        let e = parse_positive("amount", &huge, 2, u64::MAX).expect_err("huge");
        assert!(e.detail.len() < 200, "{}", e.detail);
    }

    #[test]
    fn minor_units_format_back() {
        assert_eq!(format(10_000, 2), "100.00");
        assert_eq!(format(5, 2), "0.05");
        assert_eq!(format(1_500_000, 6), "1.500000");
        assert_eq!(format_signed(-5, 2), "-0.05");
        assert_eq!(format(7, 0), "7");
    }
}
