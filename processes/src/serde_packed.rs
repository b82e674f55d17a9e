//! Serde for a large set of `(time, message id)` pairs: one hex string of fixed-width records
//! (16 hex digits of time, 32 of id, big-endian, in set order) instead of a JSON array of
//! pairs. The dedupe window of a busy process holds hundreds of thousands of such pairs, and
//! decoding them one JSON number at a time was most of its recovery time.
//!
//! Use it on a field: `#[serde(with = "crate::serde_packed")]`. Reading checks every digit and
//! that the pairs are strictly ascending (so none repeats and the order is the set's own).

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::Serializer;
use std::collections::BTreeSet;

/// Hex digits per pair: 8 bytes of time, 16 of id.
const PAIR_HEX: usize = 48;

pub fn serialize<S: Serializer>(set: &BTreeSet<(u64, u128)>, s: S) -> Result<S::Ok, S::Error> {
    let mut text = String::with_capacity(set.len() * PAIR_HEX);
    for &(at, id) in set {
        use std::fmt::Write as _;
        write!(text, "{at:016x}{id:032x}").expect("writing to a String cannot fail");
    }
    s.serialize_str(&text)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<(u64, u128)>, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    decode(&text).map_err(D::Error::custom)
}

fn decode(text: &str) -> Result<BTreeSet<(u64, u128)>, String> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(PAIR_HEX) {
        return Err(format!(
            "packed pairs: {} hex digits is not a multiple of {PAIR_HEX}",
            bytes.len()
        ));
    }
    let mut pairs = Vec::with_capacity(bytes.len() / PAIR_HEX);
    for (index, chunk) in bytes.chunks_exact(PAIR_HEX).enumerate() {
        let at = hex(&chunk[..16]).ok_or_else(|| bad_digit(index))? as u64;
        let id = hex(&chunk[16..]).ok_or_else(|| bad_digit(index))?;
        if pairs.last().is_some_and(|&last| last >= (at, id)) {
            return Err(format!(
                "packed pairs: pair {index} is not above the one before"
            ));
        }
        pairs.push((at, id));
    }
    // Ascending input builds the set in one pass.
    Ok(pairs.into_iter().collect())
}

fn bad_digit(index: usize) -> String {
    format!("packed pairs: pair {index} has a character that is not a lower-case hex digit")
}

fn hex(digits: &[u8]) -> Option<u128> {
    let mut value: u128 = 0;
    for &c in digits {
        let nibble = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(nibble);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(with = "super")]
        set: BTreeSet<(u64, u128)>,
    }

    #[test]
    fn round_trips_the_extremes() {
        let set: BTreeSet<(u64, u128)> = [(0, 0), (0, u128::MAX), (u64::MAX, 1), (7, 1 << 100)]
            .into_iter()
            .collect();
        let holder = Holder { set };
        let json = serde_json::to_string(&holder).unwrap();
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), holder);
    }

    #[test]
    fn refuses_bad_text() {
        let one = format!("{:016x}{:032x}", 5, 9);
        let cases = [
            (format!("{one}0"), "multiple of 48"),
            (one.replace('9', "G"), "hex digit"),
            (format!("{one}{one}"), "not above"),
        ];
        for (text, why) in cases {
            let json = format!("{{\"set\":\"{text}\"}}");
            let err = serde_json::from_str::<Holder>(&json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
