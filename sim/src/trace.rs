//! The trace hash: a rolling FNV-1a hash over every event the simulator processes.
//!
//! Everything hashed derives `std::hash::Hash`, fed to a hasher with no random keys, so the
//! same seed gives the same hash in any process, bit for bit, and a single differing event,
//! ledger answer or timestamp changes it.

use std::hash::{Hash, Hasher};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits: small, keyless, stable.
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(FNV_OFFSET)
    }
}

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
}

/// The rolling trace hash of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Trace {
    hasher: Fnv64,
    events: u64,
}

impl Trace {
    pub fn record(&mut self, item: &impl Hash) {
        item.hash(&mut self.hasher);
        self.events += 1;
    }

    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    pub fn events(&self) -> u64 {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_content_matter() {
        let mut a = Trace::default();
        a.record(&(1u64, "x"));
        a.record(&(2u64, "y"));
        let mut b = Trace::default();
        b.record(&(2u64, "y"));
        b.record(&(1u64, "x"));
        assert_ne!(a.hash(), b.hash());
        let mut c = Trace::default();
        c.record(&(1u64, "x"));
        c.record(&(2u64, "y"));
        assert_eq!(a.hash(), c.hash());
    }
}
