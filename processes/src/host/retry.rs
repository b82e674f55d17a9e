//! When each pending message is due to be sent again, by outbox seq and by time: the host
//! asks for the earliest at every send and for the due ones at every retransmission timer,
//! and a busy host has thousands waiting for acknowledgements (a scan of them at every send
//! was a seventh of a loaded intake's time).

use crate::calendar::Ts;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub(super) struct RetryQueue {
    by_seq: BTreeMap<u64, Ts>,
    by_time: BTreeSet<(Ts, u64)>,
}

impl RetryQueue {
    pub(super) fn contains(&self, seq: u64) -> bool {
        self.by_seq.contains_key(&seq)
    }

    pub(super) fn insert(&mut self, seq: u64, at: Ts) {
        if let Some(old) = self.by_seq.insert(seq, at) {
            self.by_time.remove(&(old, seq));
        }
        self.by_time.insert((at, seq));
    }

    pub(super) fn remove(&mut self, seq: u64) {
        if let Some(at) = self.by_seq.remove(&seq) {
            self.by_time.remove(&(at, seq));
        }
    }

    pub(super) fn clear(&mut self) {
        self.by_seq.clear();
        self.by_time.clear();
    }

    pub(super) fn earliest(&self) -> Option<Ts> {
        self.by_time.first().map(|&(at, _)| at)
    }

    /// The seqs due at `now`, in seq order (the order they were first sent).
    pub(super) fn due(&self, now: Ts) -> Vec<u64> {
        let mut due: Vec<u64> = self
            .by_time
            .range(..=(now, u64::MAX))
            .map(|&(_, seq)| seq)
            .collect();
        due.sort_unstable();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_orders_agree_through_moves_and_removals() {
        let mut q = RetryQueue::default();
        q.insert(3, 50);
        q.insert(1, 70);
        q.insert(2, 50);
        assert_eq!(q.earliest(), Some(50));
        assert_eq!(q.due(60), [2, 3]);
        q.insert(2, 90);
        q.remove(3);
        assert_eq!(q.earliest(), Some(70));
        assert_eq!(q.due(100), [1, 2]);
        assert!(q.contains(1) && !q.contains(3));
        q.clear();
        assert_eq!(q.earliest(), None);
        assert!(q.due(u64::MAX).is_empty());
    }
}
