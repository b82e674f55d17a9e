//! The fault catalogue: what can go wrong in the simulated world, and at what rate, for one seed.
//!
//! A [`FaultPlan`] is data, drawn from the seed ([`FaultPlan::swarm`]) or chosen by name
//! ([`FaultPlan::named`]), and consulted by the simulator's bus, hosts, custodian and scheduler.
//! Rates are integers in parts per million so that no float ever decides an outcome. Swarm testing
//! (as in TigerBeetle's VOPR): each seed switches each fault on or off and draws its rate, so the
//! runs of many seeds explore combinations no hand-written plan would.
//!
//! The simulator applies a plan only in the chaos phase (the days of member activity); in the
//! liveness phase that follows, faults stop, crashed processes are restarted, and everything
//! accepted must reach a terminal state within a bounded number of days.

use serde::{Deserialize, Serialize};

/// Parts per million.
pub type Ppm = u32;
pub const PPM: Ppm = 1_000_000;

/// The faults of one run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Shortest delivery delay of a message, milliseconds.
    pub delay_min_ms: u64,
    /// Longest ordinary delivery delay of a message, milliseconds (messages overtake each other).
    pub delay_max_ms: u64,
    /// Chance that a message is lost on the way (its sender sends it again when no
    /// acknowledgement comes; the custodian does not, and is chased).
    pub loss_ppm: Ppm,
    /// Chance that a message is delivered twice.
    pub duplicate_ppm: Ppm,
    /// Chance that a message is held up far longer than usual (reordering across minutes).
    pub delay_spike_ppm: Ppm,
    /// Longest held-up delay, milliseconds.
    pub delay_spike_max_ms: u64,
    /// Chance that a platform process crashes at an effect boundary (before an effect, or after
    /// the ledger applied a request whose answer is then lost), losing everything in memory.
    pub crash_ppm: Ppm,
    /// How long a crashed process stays down, milliseconds.
    pub restart_delay_ms: u64,
    /// Chance that the custodian never sends a confirmation or settlement notice by itself
    /// (only when chased).
    pub custodian_silent_ppm: Ppm,
    /// Chance that the custodian sends a confirmation or settlement notice late.
    pub custodian_late_ppm: Ppm,
    /// Longest such lateness, minutes.
    pub custodian_late_max_min: u64,
    /// Chance, per business morning, that the custodian is unreachable for a while.
    pub custodian_outage_ppm: Ppm,
    /// Longest outage, minutes (outages start at 06:30, around its settlement run).
    pub custodian_outage_max_min: u64,
    /// Chance that a scheduled job (cut-off, re-balancing) fires late.
    pub job_late_ppm: Ppm,
    /// Longest lateness of a job, minutes.
    pub job_late_max_min: u64,
    /// Chance that a scheduled job fires twice.
    pub job_twice_ppm: Ppm,
    /// Chance, per business day, of a network partition between two parties (platform services
    /// or the custodian): nothing passes between them for a while, at any hour (a third of them
    /// near the cut-off; see the simulator's `partition`).
    pub partition_ppm: Ppm,
    /// Longest partition, minutes.
    pub partition_max_min: u64,
    /// Chance, per mutating storage call (write, sync, directory sync, truncate, rename,
    /// remove), that the machine loses power at that call: the call does not happen, and every
    /// change not yet synced is kept, lost or torn per sector (see `acme_sim::disk`).
    #[serde(default)]
    pub storage_crash_ppm: Ppm,
    /// Chance that a storage write fails with EIO, some of its sectors written anyway.
    #[serde(default)]
    pub storage_write_error_ppm: Ppm,
    /// Chance that a storage sync fails with EIO, the file's unsynced writes each kept or lost
    /// on the disk while reads still see them (fsyncgate).
    #[serde(default)]
    pub storage_sync_error_ppm: Ppm,
    /// Chance that a storage read fails with EIO (transient: a retry may succeed).
    #[serde(default)]
    pub storage_read_error_ppm: Ppm,
    /// Chance, per storage sync, that one bit of a file at rest flips (silent corruption: the
    /// store must detect it and refuse, never serve it).
    #[serde(default)]
    pub storage_bitflip_ppm: Ppm,
    /// Chance that a storage write lands a few sectors away from where it was aimed, in the same
    /// file (silent corruption, as above).
    #[serde(default)]
    pub storage_misdirect_ppm: Ppm,
    /// Shortest and longest time a ledger call takes each way (request, answer), microseconds.
    /// Not a fault: the ledger is always this far away.
    #[serde(default = "ledger_latency_min_us")]
    pub ledger_latency_min_us: u64,
    #[serde(default = "ledger_latency_max_us")]
    pub ledger_latency_max_us: u64,
    /// Chance that a ledger call is answered `Unavailable`, the request applied or not (a coin),
    /// and the host's later calls in flight not applied.
    #[serde(default)]
    pub ledger_unavailable_ppm: Ppm,
    /// Chance, per platform process and business day, that a new version of its code is
    /// deployed at a random hour: cleanly (stop with a snapshot, start the new code, which
    /// migrates it) or, half the time, abruptly (a crash, then the new code, which must refuse
    /// the old journal; operations then run the old code to a clean stop and deploy again).
    #[serde(default)]
    pub upgrade_ppm: Ppm,
    /// After a crash, how long a process (or the ledger's machine, after a storage failure)
    /// runs before the per-call chances above can stop it again: drawn at each restart between
    /// zero and twice this, milliseconds; 0 for no such pause. Machines fail per hour, not per
    /// call: without it a process making a million calls a day would crash thousands of times
    /// at any per-call rate, and recover its whole state each time. A recovery itself crashes
    /// by a separate draw (see the simulator).
    #[serde(default)]
    pub crash_uptime_mean_ms: u64,
}

fn ledger_latency_min_us() -> u64 {
    200
}

fn ledger_latency_max_us() -> u64 {
    3_000
}

/// The fault kinds, by the names `--without` takes.
pub const KINDS: [&str; 14] = [
    "loss",
    "duplicate",
    "delay-spike",
    "crash",
    "custodian-silent",
    "custodian-late",
    "custodian-outage",
    "job-late",
    "job-twice",
    "partition",
    "storage",
    "storage-corruption",
    "ledger-unavailable",
    "upgrade",
];

/// The plan names `--faults` takes.
pub const PLAN_NAMES: [&str; 3] = ["none", "default", "swarm"];

impl FaultPlan {
    /// Reliable delivery with small seeded delays (messages still overtake each other).
    pub fn none() -> FaultPlan {
        FaultPlan {
            delay_min_ms: 1,
            delay_max_ms: 2_000,
            loss_ppm: 0,
            duplicate_ppm: 0,
            delay_spike_ppm: 0,
            delay_spike_max_ms: 0,
            crash_ppm: 0,
            restart_delay_ms: 1_000,
            custodian_silent_ppm: 0,
            custodian_late_ppm: 0,
            custodian_late_max_min: 0,
            custodian_outage_ppm: 0,
            custodian_outage_max_min: 0,
            job_late_ppm: 0,
            job_late_max_min: 0,
            job_twice_ppm: 0,
            partition_ppm: 0,
            partition_max_min: 0,
            storage_crash_ppm: 0,
            storage_write_error_ppm: 0,
            storage_sync_error_ppm: 0,
            storage_read_error_ppm: 0,
            storage_bitflip_ppm: 0,
            storage_misdirect_ppm: 0,
            ledger_latency_min_us: ledger_latency_min_us(),
            ledger_latency_max_us: ledger_latency_max_us(),
            ledger_unavailable_ppm: 0,
            upgrade_ppm: 0,
            crash_uptime_mean_ms: 0,
        }
    }

    /// Every fault on, at moderate rates.
    pub fn default_faults() -> FaultPlan {
        FaultPlan {
            loss_ppm: 20_000,
            duplicate_ppm: 20_000,
            delay_spike_ppm: 10_000,
            delay_spike_max_ms: 120_000,
            crash_ppm: 5_000,
            restart_delay_ms: 2_000,
            custodian_silent_ppm: 50_000,
            custodian_late_ppm: 100_000,
            custodian_late_max_min: 120,
            custodian_outage_ppm: 100_000,
            custodian_outage_max_min: 120,
            job_late_ppm: 100_000,
            job_late_max_min: 20,
            job_twice_ppm: 100_000,
            partition_ppm: 300_000,
            partition_max_min: 90,
            storage_crash_ppm: 2_000,
            storage_write_error_ppm: 500,
            storage_sync_error_ppm: 500,
            storage_read_error_ppm: 1_000,
            storage_bitflip_ppm: 200,
            storage_misdirect_ppm: 100,
            ledger_unavailable_ppm: 2_000,
            upgrade_ppm: 100_000,
            crash_uptime_mean_ms: 30 * 60 * 1000,
            ..FaultPlan::none()
        }
    }

    /// Duplicated messages and process crashes at effect boundaries, at the given rates.
    pub fn crashes_and_duplicates(crash_ppm: Ppm, duplicate_ppm: Ppm) -> FaultPlan {
        FaultPlan {
            crash_ppm,
            duplicate_ppm,
            ..FaultPlan::none()
        }
    }

    /// The swarm plan of a seed: each fault on or off by a coin, its rate drawn in its range.
    /// Deterministic in the seed; independent of everything else the seed draws. Silent storage
    /// corruption (bit flips, misdirected writes) is on in about one seed in eight each: a
    /// corrupted committed record halts the ledger (safely) and so ends the run early.
    pub fn swarm(seed: u64) -> FaultPlan {
        let mut r = SplitMix(seed ^ 0x5357_4152_4D21);
        let mut maybe = |max: Ppm| -> Ppm {
            if r.next().is_multiple_of(2) {
                0
            } else {
                1 + (r.next() % max as u64) as Ppm
            }
        };
        let loss_ppm = maybe(50_000);
        let duplicate_ppm = maybe(50_000);
        let delay_spike_ppm = maybe(30_000);
        let crash_ppm = maybe(10_000);
        let custodian_silent_ppm = maybe(200_000);
        let custodian_late_ppm = maybe(300_000);
        let custodian_outage_ppm = maybe(300_000);
        let job_late_ppm = maybe(300_000);
        let job_twice_ppm = maybe(300_000);
        let partition_ppm = maybe(600_000);
        // Drawn after the others, so that adding them changed no earlier kind's draw.
        let storage_crash_ppm = maybe(5_000);
        let storage_write_error_ppm = maybe(2_000);
        let storage_sync_error_ppm = maybe(2_000);
        let storage_read_error_ppm = maybe(5_000);
        let mut rare = |max: Ppm| -> Ppm {
            if !r.next().is_multiple_of(8) {
                0
            } else {
                1 + (r.next() % max as u64) as Ppm
            }
        };
        let storage_bitflip_ppm = rare(1_000);
        let storage_misdirect_ppm = rare(500);
        let mut maybe = |max: Ppm| -> Ppm {
            if r.next().is_multiple_of(2) {
                0
            } else {
                1 + (r.next() % max as u64) as Ppm
            }
        };
        let ledger_unavailable_ppm = maybe(20_000);
        let upgrade_ppm = maybe(300_000);
        let mut r = SplitMix(seed ^ 0x4C49_4D49_5453);
        FaultPlan {
            delay_min_ms: 1,
            delay_max_ms: 500 + r.next() % 4_500,
            loss_ppm,
            duplicate_ppm,
            delay_spike_ppm,
            delay_spike_max_ms: 10_000 + r.next() % 290_000,
            crash_ppm,
            restart_delay_ms: 100 + r.next() % 10_000,
            custodian_silent_ppm,
            custodian_late_ppm,
            custodian_late_max_min: 10 + r.next() % 170,
            custodian_outage_ppm,
            custodian_outage_max_min: 10 + r.next() % 170,
            job_late_ppm,
            job_late_max_min: 1 + r.next() % 25,
            job_twice_ppm,
            partition_ppm,
            partition_max_min: 5 + r.next() % 115,
            storage_crash_ppm,
            storage_write_error_ppm,
            storage_sync_error_ppm,
            storage_read_error_ppm,
            storage_bitflip_ppm,
            storage_misdirect_ppm,
            ledger_latency_min_us: 50 + r.next() % 500,
            ledger_latency_max_us: 1_000 + r.next() % 20_000,
            ledger_unavailable_ppm,
            upgrade_ppm,
            // Drawn last from this generator, so that it changed no earlier limit.
            crash_uptime_mean_ms: [0, 5, 30, 120][(r.next() % 4) as usize] * 60 * 1000,
        }
    }

    /// A plan by its name (`none`, `default`, `swarm`, the latter drawn from `seed`).
    pub fn named(name: &str, seed: u64) -> Result<FaultPlan, String> {
        match name {
            "none" => Ok(FaultPlan::none()),
            "default" => Ok(FaultPlan::default_faults()),
            "swarm" => Ok(FaultPlan::swarm(seed)),
            other => Err(format!(
                "faults: `{other}` is not one of {}",
                PLAN_NAMES.join(", ")
            )),
        }
    }

    /// The rate of a fault kind (see [`KINDS`]); for a kind that groups several rates
    /// (`storage`, `storage-corruption`), the highest of them.
    pub fn rate(&self, kind: &str) -> Option<Ppm> {
        Some(match kind {
            "loss" => self.loss_ppm,
            "duplicate" => self.duplicate_ppm,
            "delay-spike" => self.delay_spike_ppm,
            "crash" => self.crash_ppm,
            "custodian-silent" => self.custodian_silent_ppm,
            "custodian-late" => self.custodian_late_ppm,
            "custodian-outage" => self.custodian_outage_ppm,
            "job-late" => self.job_late_ppm,
            "job-twice" => self.job_twice_ppm,
            "partition" => self.partition_ppm,
            "storage" => self
                .storage_crash_ppm
                .max(self.storage_write_error_ppm)
                .max(self.storage_sync_error_ppm)
                .max(self.storage_read_error_ppm),
            "storage-corruption" => self.storage_bitflip_ppm.max(self.storage_misdirect_ppm),
            "ledger-unavailable" => self.ledger_unavailable_ppm,
            "upgrade" => self.upgrade_ppm,
            _ => return None,
        })
    }

    /// The plan with one kind of fault switched off (`storage` switches off storage crashes and
    /// write, sync and read errors; `storage-corruption` bit flips and misdirected writes).
    pub fn without(&self, kind: &str) -> Result<FaultPlan, String> {
        let mut p = self.clone();
        let rates: Vec<&mut Ppm> = match kind {
            "loss" => vec![&mut p.loss_ppm],
            "duplicate" => vec![&mut p.duplicate_ppm],
            "delay-spike" => vec![&mut p.delay_spike_ppm],
            "crash" => vec![&mut p.crash_ppm],
            "custodian-silent" => vec![&mut p.custodian_silent_ppm],
            "custodian-late" => vec![&mut p.custodian_late_ppm],
            "custodian-outage" => vec![&mut p.custodian_outage_ppm],
            "job-late" => vec![&mut p.job_late_ppm],
            "job-twice" => vec![&mut p.job_twice_ppm],
            "partition" => vec![&mut p.partition_ppm],
            "storage" => vec![
                &mut p.storage_crash_ppm,
                &mut p.storage_write_error_ppm,
                &mut p.storage_sync_error_ppm,
                &mut p.storage_read_error_ppm,
            ],
            "storage-corruption" => vec![&mut p.storage_bitflip_ppm, &mut p.storage_misdirect_ppm],
            "ledger-unavailable" => vec![&mut p.ledger_unavailable_ppm],
            "upgrade" => vec![&mut p.upgrade_ppm],
            other => {
                return Err(format!(
                    "without: `{other}` is not one of {}",
                    KINDS.join(", ")
                ))
            }
        };
        for rate in rates {
            *rate = 0;
        }
        Ok(p)
    }

    /// The plan without faults, keeping the ordinary delays: the liveness phase.
    pub fn calm(&self) -> FaultPlan {
        FaultPlan {
            delay_min_ms: self.delay_min_ms,
            delay_max_ms: self.delay_max_ms,
            ledger_latency_min_us: self.ledger_latency_min_us,
            ledger_latency_max_us: self.ledger_latency_max_us,
            ..FaultPlan::none()
        }
    }

    /// Which faults are on, and at what rate, one line each (for the start of a run).
    pub fn describe(&self) -> Vec<String> {
        let pct = |p: Ppm| format!("{}.{:02}%", p / 10_000, (p % 10_000) / 100);
        let mut out = vec![format!(
            "delays {}..{} ms",
            self.delay_min_ms, self.delay_max_ms
        )];
        let mut on = |name: &str, p: Ppm, detail: String| {
            if p > 0 {
                out.push(format!("{name} {}{detail}", pct(p)));
            }
        };
        on("message loss", self.loss_ppm, String::new());
        on("message duplication", self.duplicate_ppm, String::new());
        on(
            "message delay spikes",
            self.delay_spike_ppm,
            format!(" up to {} ms", self.delay_spike_max_ms),
        );
        on(
            "process crashes per effect",
            self.crash_ppm,
            format!(", down {} ms", self.restart_delay_ms),
        );
        on("custodian silent", self.custodian_silent_ppm, String::new());
        on(
            "custodian late",
            self.custodian_late_ppm,
            format!(" up to {} min", self.custodian_late_max_min),
        );
        on(
            "custodian outage per morning",
            self.custodian_outage_ppm,
            format!(" up to {} min", self.custodian_outage_max_min),
        );
        on(
            "scheduled job late",
            self.job_late_ppm,
            format!(" up to {} min", self.job_late_max_min),
        );
        on("scheduled job twice", self.job_twice_ppm, String::new());
        on(
            "partition per day",
            self.partition_ppm,
            format!(" up to {} min", self.partition_max_min),
        );
        on(
            "storage power loss per call",
            self.storage_crash_ppm,
            format!(" ({} ppm)", self.storage_crash_ppm),
        );
        on(
            "storage write errors",
            self.storage_write_error_ppm,
            format!(" ({} ppm)", self.storage_write_error_ppm),
        );
        on(
            "storage sync errors",
            self.storage_sync_error_ppm,
            format!(" ({} ppm)", self.storage_sync_error_ppm),
        );
        on(
            "storage read errors",
            self.storage_read_error_ppm,
            format!(" ({} ppm)", self.storage_read_error_ppm),
        );
        on(
            "storage bit flips per sync",
            self.storage_bitflip_ppm,
            format!(" ({} ppm)", self.storage_bitflip_ppm),
        );
        on(
            "storage misdirected writes",
            self.storage_misdirect_ppm,
            format!(" ({} ppm)", self.storage_misdirect_ppm),
        );
        on(
            "ledger unavailable per call",
            self.ledger_unavailable_ppm,
            String::new(),
        );
        on(
            "code upgrades per process-day",
            self.upgrade_ppm,
            String::new(),
        );
        if self.crash_uptime_mean_ms > 0 && (self.crash_ppm > 0 || self.rate("storage") > Some(0)) {
            out.push(format!(
                "after a crash, up about {} min before the next can come",
                self.crash_uptime_mean_ms / 60_000
            ));
        }
        if out.len() == 1 {
            out.push("no faults".to_string());
        }
        out
    }

    /// Checks the plan's own limits; an error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.ledger_latency_min_us > self.ledger_latency_max_us {
            return Err("ledger_latency_min_us: greater than ledger_latency_max_us".into());
        }
        if self.ledger_latency_max_us > 10_000_000 {
            return Err(format!(
                "ledger_latency_max_us: {} is more than ten seconds",
                self.ledger_latency_max_us
            ));
        }
        if self.delay_min_ms > self.delay_max_ms {
            return Err("delay_min_ms: greater than delay_max_ms".into());
        }
        let hour_ms = 60 * 60 * 1000;
        for (name, ms) in [
            ("delay_max_ms", self.delay_max_ms),
            ("delay_spike_max_ms", self.delay_spike_max_ms),
            ("restart_delay_ms", self.restart_delay_ms),
        ] {
            if ms > hour_ms {
                return Err(format!("{name}: {ms} is more than one hour"));
            }
        }
        // Bounded so that a member's noon trade never meets the morning's settlement unfinished.
        for (name, min) in [
            ("custodian_late_max_min", self.custodian_late_max_min),
            ("custodian_outage_max_min", self.custodian_outage_max_min),
        ] {
            if min > 180 {
                return Err(format!("{name}: {min} is more than 180 minutes"));
            }
        }
        if self.partition_max_min > 120 {
            return Err(format!(
                "partition_max_min: {} is more than 120 minutes",
                self.partition_max_min
            ));
        }
        if self.crash_uptime_mean_ms > 24 * hour_ms {
            return Err(format!(
                "crash_uptime_mean_ms: {} is more than one day",
                self.crash_uptime_mean_ms
            ));
        }
        if self.job_late_max_min > 25 {
            return Err(format!(
                "job_late_max_min: {} is more than 25 minutes",
                self.job_late_max_min
            ));
        }
        for (name, rate) in [
            ("loss_ppm", self.loss_ppm),
            ("duplicate_ppm", self.duplicate_ppm),
            ("delay_spike_ppm", self.delay_spike_ppm),
            ("crash_ppm", self.crash_ppm),
            ("custodian_silent_ppm", self.custodian_silent_ppm),
            ("custodian_late_ppm", self.custodian_late_ppm),
            ("custodian_outage_ppm", self.custodian_outage_ppm),
            ("job_late_ppm", self.job_late_ppm),
            ("job_twice_ppm", self.job_twice_ppm),
            ("partition_ppm", self.partition_ppm),
            ("storage_crash_ppm", self.storage_crash_ppm),
            ("storage_write_error_ppm", self.storage_write_error_ppm),
            ("storage_sync_error_ppm", self.storage_sync_error_ppm),
            ("storage_read_error_ppm", self.storage_read_error_ppm),
            ("storage_bitflip_ppm", self.storage_bitflip_ppm),
            ("storage_misdirect_ppm", self.storage_misdirect_ppm),
        ] {
            if rate > PPM {
                return Err(format!("{name}: {rate} is more than {PPM}"));
            }
        }
        Ok(())
    }
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan::none()
    }
}

/// SplitMix64: a tiny keyless generator for drawing a plan from a seed, apart from the
/// simulator's ChaCha streams so that the plan does not shift any of them.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_validated() {
        assert!(FaultPlan::none().validate().is_ok());
        assert!(FaultPlan::default_faults().validate().is_ok());
        let bad = FaultPlan {
            loss_ppm: PPM + 1,
            ..FaultPlan::none()
        };
        assert!(bad.validate().unwrap_err().starts_with("loss_ppm"));
        let bad = FaultPlan {
            delay_min_ms: 5,
            delay_max_ms: 1,
            ..FaultPlan::none()
        };
        assert!(bad.validate().unwrap_err().starts_with("delay_min_ms"));
        assert!(FaultPlan::named("chaos", 1)
            .unwrap_err()
            .contains("none, default, swarm"));
    }

    #[test]
    fn swarm_plans_are_valid_deterministic_and_varied() {
        let mut kinds_on = [0u32; 14];
        for seed in 0..200 {
            let p = FaultPlan::swarm(seed);
            assert_eq!(p, FaultPlan::swarm(seed));
            assert!(p.validate().is_ok(), "seed {seed}: {:?}", p.validate());
            let rates = [
                p.loss_ppm,
                p.duplicate_ppm,
                p.delay_spike_ppm,
                p.crash_ppm,
                p.custodian_silent_ppm,
                p.custodian_late_ppm,
                p.custodian_outage_ppm,
                p.job_late_ppm,
                p.job_twice_ppm,
                p.partition_ppm,
                p.storage_crash_ppm,
                p.storage_write_error_ppm,
                p.storage_sync_error_ppm,
                p.storage_read_error_ppm,
            ];
            for (k, r) in rates.iter().enumerate() {
                kinds_on[k] += (*r > 0) as u32;
            }
        }
        // Each fault is on for some seeds and off for others.
        assert!(kinds_on.iter().all(|&n| n > 50 && n < 150), "{kinds_on:?}");
        assert!(FaultPlan::swarm(1).describe().len() > 1);
        assert_eq!(FaultPlan::none().calm(), FaultPlan::none());
    }

    #[test]
    fn storage_corruption_is_on_in_a_minority_of_seeds() {
        let (mut bitflip, mut misdirect, mut either) = (0, 0, 0);
        for seed in 0..1_000 {
            let p = FaultPlan::swarm(seed);
            bitflip += (p.storage_bitflip_ppm > 0) as u32;
            misdirect += (p.storage_misdirect_ppm > 0) as u32;
            either += (p.rate("storage-corruption").unwrap() > 0) as u32;
        }
        assert!(
            (60..200).contains(&bitflip),
            "bitflip on in {bitflip} of 1000"
        );
        assert!(
            (60..200).contains(&misdirect),
            "misdirect on in {misdirect} of 1000"
        );
        assert!(either < 400, "corruption on in {either} of 1000");
    }

    #[test]
    fn the_storage_fields_left_the_earlier_swarm_draws_alone() {
        // Seed 7's plan as drawn before the storage kinds were added.
        let p = FaultPlan::swarm(7);
        let before = FaultPlan {
            delay_min_ms: 1,
            delay_max_ms: 4936,
            loss_ppm: 46152,
            duplicate_ppm: 0,
            delay_spike_ppm: 26930,
            delay_spike_max_ms: 279209,
            crash_ppm: 5346,
            restart_delay_ms: 2871,
            custodian_silent_ppm: 28056,
            custodian_late_ppm: 18248,
            custodian_late_max_min: 27,
            custodian_outage_ppm: 0,
            custodian_outage_max_min: 79,
            job_late_ppm: 118569,
            job_late_max_min: 8,
            job_twice_ppm: 0,
            partition_ppm: 0,
            partition_max_min: 50,
            ..p.clone()
        };
        assert_eq!(before, p);
    }

    #[test]
    fn without_switches_off_storage_kinds_by_group() {
        let d = FaultPlan::default_faults();
        assert_eq!(d.rate("storage"), Some(2_000));
        assert_eq!(d.rate("storage-corruption"), Some(200));
        let s = d.without("storage").unwrap();
        assert_eq!(
            (
                s.storage_crash_ppm,
                s.storage_write_error_ppm,
                s.storage_sync_error_ppm,
                s.storage_read_error_ppm
            ),
            (0, 0, 0, 0)
        );
        assert_eq!((s.storage_bitflip_ppm, s.storage_misdirect_ppm), (200, 100));
        assert_eq!(s.loss_ppm, d.loss_ppm);
        let c = d.without("storage-corruption").unwrap();
        assert_eq!((c.storage_bitflip_ppm, c.storage_misdirect_ppm), (0, 0));
        assert_eq!(c.storage_crash_ppm, 2_000);
        assert_eq!(c.rate("storage-corruption"), Some(0));
        for kind in KINDS {
            assert_eq!(d.without(kind).unwrap().rate(kind), Some(0), "{kind}");
        }
        assert!(d
            .without("disk")
            .unwrap_err()
            .contains("storage-corruption"));
        assert!(d
            .describe()
            .iter()
            .any(|l| l == "storage bit flips per sync 0.02% (200 ppm)"));
        assert!(FaultPlan::none()
            .describe()
            .iter()
            .all(|l| !l.starts_with("storage")));
        let bad = FaultPlan {
            storage_read_error_ppm: PPM + 1,
            ..FaultPlan::none()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .starts_with("storage_read_error_ppm"));
    }
}
