//! Seeded randomness: one ChaCha stream per part of the world, all from the run's seed.
//!
//! Separate streams keep the parts independent: the market's prices do not change when the
//! member population or the bus draws one number more, which keeps shrinking and debugging sane.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The streams of a run.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Stream {
    Market = 1,
    Members = 2,
    Bus = 3,
    Custodian = 4,
    Faults = 5,
    /// The simulated disk's faults, drawn per storage call (`disk`).
    Disk = 6,
    /// What the simulated disk keeps, drops or tears of its unsynced changes at a power loss.
    DiskPowerLoss = 7,
    /// Ledger call latencies and `Unavailable` answers.
    Ledger = 8,
    /// How long a restarted machine runs before faults may stop it again.
    Uptime = 9,
    /// The start date a swarm seed draws.
    Calendar = 10,
    /// The members' opening pots (`holdings`).
    Holdings = 11,
}

pub struct SimRng(ChaCha8Rng);

impl SimRng {
    pub fn new(seed: u64, stream: Stream) -> SimRng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream as u64);
        SimRng(rng)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.0.random_range(0..n)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi);
        self.0.random_range(lo..=hi)
    }

    /// Uniform in `lo..=hi` (signed).
    pub fn between_i64(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi);
        self.0.random_range(lo..=hi)
    }

    /// True with probability `ppm / 1_000_000`.
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.below(1_000_000) < ppm as u64
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill_bytes(buf);
    }

    /// An index drawn with the given integer weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w as u64 {
                return i;
            }
            x -= w as u64;
        }
        unreachable!("weights sum to {total}")
    }
}
