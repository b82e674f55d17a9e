//! Serde for maps whose keys JSON cannot hold (tuples): the map is written as a sequence of
//! `[key, value]` pairs in key order, and read back only if no key repeats.
//!
//! Use it on a field: `#[serde(with = "crate::serde_pairs")]`. JSON object keys must be strings
//! or integers; a `BTreeMap<(Date, FundId), _>` is neither, so without this a snapshot of the
//! process would fail to serialize.

use serde::de::{Deserialize, Deserializer, Error as _, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeSeq, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

pub fn serialize<K, V, S>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
where
    K: Serialize,
    V: Serialize,
    S: Serializer,
{
    let mut seq = serializer.serialize_seq(Some(map.len()))?;
    for pair in map {
        seq.serialize_element(&pair)?;
    }
    seq.end()
}

pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    K: Deserialize<'de> + Ord + fmt::Debug,
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    struct Pairs<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for Pairs<K, V>
    where
        K: Deserialize<'de> + Ord + fmt::Debug,
        V: Deserialize<'de>,
    {
        type Value = BTreeMap<K, V>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sequence of [key, value] pairs")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some((k, v)) = seq.next_element::<(K, V)>()? {
                if map.contains_key(&k) {
                    return Err(A::Error::custom(format!("key {k:?} appears twice")));
                }
                map.insert(k, v);
            }
            Ok(map)
        }
    }

    deserializer.deserialize_seq(Pairs(PhantomData))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct S {
        #[serde(with = "super")]
        m: BTreeMap<(u32, u64), Vec<u8>>,
    }

    #[test]
    fn tuple_keyed_maps_round_trip_and_repeated_keys_are_refused() {
        let s = S {
            m: [((1, 2), vec![3]), ((0, u64::MAX), vec![])]
                .into_iter()
                .collect(),
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"m":[[[0,18446744073709551615],[]],[[1,2],[3]]]}"#);
        assert_eq!(serde_json::from_str::<S>(&json).unwrap(), s);
        let err = serde_json::from_str::<S>(r#"{"m":[[[1,2],[]],[[1,2],[3]]]}"#).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
    }

    #[test]
    fn serde_json_holds_128_bit_integers_exactly() {
        // Settlement keeps i128 nets and the ledger u128 ids; serde_json (without
        // `arbitrary_precision`) writes and reads them as exact integers.
        let v: (i128, i128, u128) = (i128::MIN, i128::MAX, u128::MAX);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            serde_json::from_str::<(i128, i128, u128)>(&json).unwrap(),
            v
        );
        let m: BTreeMap<u64, (i128, i128)> = [(u64::MAX, (-1, 1 << 100))].into_iter().collect();
        let json = serde_json::to_vec(&m).unwrap();
        assert_eq!(
            serde_json::from_slice::<BTreeMap<u64, (i128, i128)>>(&json).unwrap(),
            m
        );
    }
}
