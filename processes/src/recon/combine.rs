//! Effects on balances summed before they are spilled: a small direct-mapped table that keeps
//! the running sum of the most recent (account, field) pairs.
//!
//! A journal's transfers nearly all touch a house account (the bank, a trading or custodian
//! account) on one side, so half of all effects land on a few dozen accounts, and a member's
//! transfers come close together in time. Summing them in a bounded table before the spill writes
//! them cuts the records written and read back by about half or more; the replay's result is the
//! same, as its comparison only adds effects up (in any order). Memory is fixed: a slot that
//! another pair wants is evicted to the spill, never grown.

/// The table's size: 2^16 slots of 48 bytes, 3 MiB, which stays in the cache.
const SLOTS_LOG2: u32 = 16;
/// A slot's `field` when it holds nothing (the replay's fields are 0 to 4).
const EMPTY: u8 = u8::MAX;

#[derive(Clone, Copy)]
struct Slot {
    id: u128,
    sum: i128,
    field: u8,
}

const FREE: Slot = Slot {
    id: 0,
    sum: 0,
    field: EMPTY,
};

/// See the module documentation.
pub(super) struct Combiner {
    slots: Vec<Slot>,
}

/// An effect: the account, the field it changes, the amount.
pub(super) type Effect = (u128, u8, i128);

impl Combiner {
    pub(super) fn new() -> Combiner {
        Combiner {
            slots: vec![FREE; 1 << SLOTS_LOG2],
        }
    }

    fn slot_of(id: u128, field: u8) -> usize {
        let x = (id as u64) ^ ((id >> 64) as u64).rotate_left(23) ^ u64::from(field);
        (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS_LOG2)) as usize
    }

    /// Adds an effect; returns the effect that has to go to the spill now, if any: the slot's
    /// previous pair, or this one when its sum would overflow (two effects whose sum does not fit
    /// are spilled apart, for the comparison to report).
    pub(super) fn add(&mut self, id: u128, field: u8, amount: i128) -> Option<Effect> {
        assert!(field != EMPTY, "field {field} is the empty marker");
        let slot = &mut self.slots[Self::slot_of(id, field)];
        if slot.field == field && slot.id == id {
            match slot.sum.checked_add(amount) {
                Some(sum) => {
                    slot.sum = sum;
                    return None;
                }
                None => return Some((id, field, amount)),
            }
        }
        let evicted = (slot.field != EMPTY).then_some((slot.id, slot.field, slot.sum));
        *slot = Slot {
            id,
            sum: amount,
            field,
        };
        evicted
    }

    /// Empties the table: every effect it still holds, in slot order.
    pub(super) fn drain(&mut self) -> Vec<Effect> {
        let held = self
            .slots
            .iter()
            .filter(|s| s.field != EMPTY)
            .map(|s| (s.id, s.field, s.sum))
            .collect();
        self.slots.fill(FREE);
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Whatever is added comes out, summed per pair, through evictions and the drain.
    #[test]
    fn what_goes_in_comes_out_summed() {
        let mut c = Combiner::new();
        let mut out: BTreeMap<(u128, u8), i128> = BTreeMap::new();
        let mut expected: BTreeMap<(u128, u8), i128> = BTreeMap::new();
        let mut x: u64 = 7;
        for _ in 0..500_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            // Few ids often (house accounts), many ids rarely (members).
            let id = if x.is_multiple_of(2) {
                u128::from(x >> 60)
            } else {
                u128::from(x >> 40) << 70
            };
            let field = ((x >> 8) % 5) as u8;
            let amount = i128::from((x >> 16) % 1_000_000) - 1_000;
            *expected.entry((id, field)).or_default() += amount;
            if let Some((i, f, a)) = c.add(id, field, amount) {
                *out.entry((i, f)).or_default() += a;
            }
        }
        for (i, f, a) in c.drain() {
            *out.entry((i, f)).or_default() += a;
        }
        assert_eq!(out, expected);
        assert!(c.drain().is_empty());
    }

    #[test]
    fn a_sum_that_would_overflow_is_handed_back_apart() {
        let mut c = Combiner::new();
        assert_eq!(c.add(5, 1, i128::MAX), None);
        assert_eq!(c.add(5, 1, 1), Some((5, 1, 1)));
        assert_eq!(c.drain(), vec![(5, 1, i128::MAX)]);
    }
}
