//! Time on a real runtime: the [`Clock`] port, the system clock, and an accelerated clock for
//! tests that run business days in seconds.
//!
//! A reading is a [`Ts`], nanoseconds since the Unix epoch (UTC), as everywhere in the
//! platform. Hosts take `now` from the clock for every input they handle, and a timer due at
//! `at` sleeps the real time the clock needs to read `at` ([`sleep_until`]). A clock may jump
//! forward ([`AcceleratedClock::skip_to`]); it tells its sleepers so, and they measure again.

use acme_processes::calendar::Ts;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Where a runtime takes its time from.
pub trait Clock: Send + Sync + 'static {
    /// The current reading.
    fn now(&self) -> Ts;

    /// How long, in real time, until the clock reads `at` if nothing makes it jump (zero if it
    /// reads `at` already).
    fn real_until(&self, at: Ts) -> Duration;

    /// A receiver that changes whenever the clock jumps forward, so that a sleeper wakes and
    /// measures again; `None` for a clock that never jumps.
    fn jumps(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}

/// The wall clock: what production runs on.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Ts {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    fn real_until(&self, at: Ts) -> Duration {
        Duration::from_nanos(at.saturating_sub(self.now()))
    }
}

/// A clock that starts at a chosen instant and runs `speed` times faster than real time, and
/// that a driver can make jump forward over time in which nothing is due
/// ([`AcceleratedClock::skip_to`]). With a speed of 100, a virtual minute passes in 0.6 real
/// seconds; with skips over the quiet hours, a business day of a few hundred members passes in
/// a couple of seconds.
///
/// Timers sleep the real equivalent of their virtual due time and wake early on a jump, so a
/// timer never fires before it is due and, after a skip to its due time, fires at once.
pub struct AcceleratedClock {
    /// The reading when `origin` was taken.
    start: Ts,
    speed: u64,
    origin: Instant,
    /// Virtual nanoseconds added by jumps.
    skipped: Mutex<u64>,
    jumps: watch::Sender<u64>,
}

impl AcceleratedClock {
    /// A clock that reads `start` now and then runs `speed` (at least 1) times faster than
    /// real time.
    pub fn new(start: Ts, speed: u64) -> Arc<AcceleratedClock> {
        assert!(speed >= 1, "a clock that runs at speed {speed}");
        let (jumps, _) = watch::channel(0);
        Arc::new(AcceleratedClock {
            start,
            speed,
            origin: Instant::now(),
            skipped: Mutex::new(0),
            jumps,
        })
    }

    pub fn speed(&self) -> u64 {
        self.speed
    }

    fn read(&self, skipped: u64) -> Ts {
        let real = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.start
            .saturating_add(skipped)
            .saturating_add(real.saturating_mul(self.speed))
    }

    /// Jumps forward to `at` (nothing if the clock reads `at` already); returns the virtual
    /// time skipped. Sleepers wake and measure again.
    pub fn skip_to(&self, at: Ts) -> u64 {
        let mut skipped = self.skipped.lock().expect("clock lock");
        let now = self.read(*skipped);
        if at <= now {
            return 0;
        }
        *skipped += at - now;
        drop(skipped);
        self.jumps.send_modify(|n| *n += 1);
        at - now
    }
}

impl Clock for AcceleratedClock {
    fn now(&self) -> Ts {
        self.read(*self.skipped.lock().expect("clock lock"))
    }

    fn real_until(&self, at: Ts) -> Duration {
        let ahead = at.saturating_sub(self.now());
        Duration::from_nanos(ahead.div_ceil(self.speed))
    }

    fn jumps(&self) -> Option<watch::Receiver<u64>> {
        Some(self.jumps.subscribe())
    }
}

/// Sleeps until `clock` reads `at`, waking early to measure again whenever the clock jumps.
pub async fn sleep_until(clock: &dyn Clock, at: Ts) {
    let mut jumps = clock.jumps();
    loop {
        if let Some(rx) = jumps.as_mut() {
            rx.borrow_and_update();
        }
        let wait = clock.real_until(at);
        if wait.is_zero() {
            return;
        }
        match jumps.as_mut() {
            None => tokio::time::sleep(wait).await,
            Some(rx) => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    changed = rx.changed() => {
                        if changed.is_err() {
                            // The clock is gone: it jumps no more.
                            jumps = None;
                        }
                    }
                }
            }
        }
    }
}

/// The runtime's clock as the ledger's [`acme_ledger::Clock`] port (the durable ledger takes
/// its timestamps from it, so the ledger and the processes share one time line).
pub struct LedgerClock(pub Arc<dyn Clock>);

impl acme_ledger::Clock for LedgerClock {
    fn now_ns(&self) -> u64 {
        self.0.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accelerated_clock_runs_fast_and_jumps_forward_only() {
        let clock = AcceleratedClock::new(1_000_000_000_000, 1_000);
        let a = clock.now();
        assert!(a >= 1_000_000_000_000);
        std::thread::sleep(Duration::from_millis(2));
        let b = clock.now();
        assert!(
            b - a >= 2_000_000_000,
            "2 ms real is 2 s virtual: {}",
            b - a
        );
        assert_eq!(clock.skip_to(a), 0, "never backwards");
        let target = b + 3_600_000_000_000;
        assert!(clock.skip_to(target) > 0);
        assert!(clock.now() >= target);
        // An hour ahead at speed 1000 is 3.6 s real.
        let wait = clock.real_until(clock.now() + 3_600_000_000_000);
        assert!(wait <= Duration::from_millis(3_600) && wait > Duration::from_millis(3_500));
    }

    #[tokio::test]
    async fn a_sleeper_wakes_on_a_jump() {
        let clock = AcceleratedClock::new(0, 1);
        let due = 3_600_000_000_000; // an hour of real time away
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { sleep_until(&*clock, due).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        clock.skip_to(due);
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woke on the jump")
            .unwrap();
    }
}
