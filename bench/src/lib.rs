//! Measurement helpers shared by the benchmark binaries in `src/bin/`.
//!
//! This is an adapter crate: it reads the wall clock and `/proc`, which the pure crates may not.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::time::Instant;

/// Peak resident memory of this process so far, bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|k| k * 1024)
}

/// Current resident memory of this process, bytes (Linux `VmRSS`), if known.
pub fn rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|k| k * 1024)
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `f` and returns its result and the elapsed seconds.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

/// The wall clock for the embedded ledger in a benchmark (the simulator uses virtual time).
pub struct WallClock(pub Instant);

impl acme_ledger::Clock for WallClock {
    fn now_ns(&self) -> u64 {
        // A fixed epoch offset keeps timestamps plausible; monotonic is what matters.
        1_700_000_000_000_000_000 + self.0.elapsed().as_nanos() as u64
    }
}
