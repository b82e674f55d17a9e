//! The simulator on the durable ledger and its lying disk: storage faults are recovered from
//! with every recovery checked, a corrupted committed record halts the run safely (and says
//! where), and without faults the durable ledger is the embedded one, bit for bit.

use acme_faults::FaultPlan;
use acme_sim::durable::SimDurable;
use acme_sim::world::SimClock;
use acme_sim::{run, SimConfig, World};
use std::sync::Arc;

fn report(s: &acme_sim::Summary) -> String {
    format!(
        "seed {} ({}): {} violations, first {:#?}\nstorage {:?}\nreproduce: {}",
        s.seed,
        s.fault_plan.join("; "),
        s.violation_count,
        s.violations.first(),
        s.storage,
        s.reproduce()
    )
}

#[test]
fn the_default_plan_recovers_from_storage_failures_with_every_invariant_held() {
    let mut recoveries = 0;
    let mut kept = 0;
    let mut lost = 0;
    for seed in 1..=4 {
        // Every fault of the default plan but silent corruption, so that the run goes to its
        // end (corruption halts it: the next test).
        let plan = FaultPlan::default_faults()
            .without("storage-corruption")
            .unwrap();
        let s = run(SimConfig::new(seed, 2, 400).with_plan(plan));
        assert!(s.ok(), "{}", report(&s));
        let st = s
            .storage
            .as_ref()
            .expect("a durable run reports its storage");
        assert!(st.halted.is_none(), "{}", report(&s));
        assert!(st.recoveries > 0, "{}", report(&s));
        assert!(st.checkpoints > 0, "{}", report(&s));
        assert!(st.disk.crashes >= st.recoveries);
        recoveries += st.recoveries;
        kept += st.unacknowledged_kept;
        lost += st.unacknowledged_lost;
    }
    eprintln!("{recoveries} recoveries: {kept} unacknowledged records kept, {lost} requests lost");
    assert!(kept > 0 && lost > 0);
}

#[test]
fn the_default_plan_with_corruption_holds_every_invariant_or_halts_safely() {
    const SEEDS: u64 = 16;
    let mut halted = 0;
    // About one seed in eight meets corruption in a record it must read again (most flips land
    // in data a checkpoint already covers).
    for seed in 1..=SEEDS {
        let s = run(SimConfig::new(seed, 2, 1_000)
            .with_faults("default")
            .unwrap());
        assert!(s.ok(), "{}", report(&s));
        let st = s.storage.as_ref().expect("storage summary");
        if let Some(h) = &st.halted {
            assert!(st.corruptions_injected > 0, "{}", report(&s));
            eprintln!("seed {seed} halted on {}: {h}", s.last_day);
            halted += 1;
        }
    }
    eprintln!("{halted} of {SEEDS} seeds halted safely");
    assert!(
        halted > 0,
        "no seed met corruption where it halts the ledger"
    );
}

/// A world on the durable ledger on a calm disk, and the disk.
fn durable_world(cfg: SimConfig) -> (World, acme_sim::disk::SimDisk) {
    let clock = Arc::new(SimClock::default());
    let durable = SimDurable::new(cfg.seed, &cfg.faults, clock.clone());
    let disk = durable.disk().clone();
    (World::with_ledger(cfg, clock, Box::new(durable)), disk)
}

#[test]
fn without_faults_the_durable_ledger_is_the_embedded_one() {
    let cfg = SimConfig::new(3, 2, 300);
    let embedded = run(cfg.clone());
    let (mut world, disk) = durable_world(cfg);
    let durable = world.run_to_end();
    assert!(durable.ok(), "{}", report(&durable));
    assert_eq!(durable.trace_hash, embedded.trace_hash);
    assert_eq!(durable.ledger_digest, embedded.ledger_digest);
    let st = durable.storage.expect("storage summary");
    assert_eq!(st.recoveries, 0);
    assert!(st.checkpoints > 0, "{st:?}");
    assert!(embedded.storage.is_none());
    assert!(disk.corruptions().is_empty());
}

#[test]
fn a_flipped_bit_in_a_committed_record_halts_the_run_safely_and_names_the_file() {
    let cfg = SimConfig::new(5, 3, 300);
    let natural = run(cfg.clone());
    let (mut world, disk) = durable_world(cfg);
    while disk.ops() < 1_500 {
        assert!(world.step(), "the run ended early");
    }
    // The newest segment, in the middle: a record the ledger acknowledged.
    let image = disk.durable_image();
    let (segment, bytes) = image
        .iter()
        .filter(|(name, _)| acme_store::record::parse_segment_name(name).is_some())
        .max_by_key(|(name, _)| acme_store::record::parse_segment_name(name))
        .expect("a segment");
    let offset = bytes.len() as u64 / 2;
    disk.flip_bit(segment, offset, 3);
    // The machine loses power: the next commit fails and the ledger is opened again.
    disk.power_loss();
    while world.step() {}
    let s = world.finish();
    assert!(s.ok(), "{}", report(&s));
    let st = s.storage.as_ref().expect("storage summary");
    let halted = st.halted.as_deref().expect("a safe halt");
    assert!(halted.starts_with(segment.as_str()), "{halted}");
    assert_eq!(st.corruptions_injected, 1);
    assert_eq!(st.recoveries, 0, "{st:?}");
    // The run stopped there, days before its end.
    assert!(s.last_day < natural.last_day, "{}", report(&s));
    assert!(s.events < natural.events / 2, "{}", report(&s));
    let json: serde_json::Value = serde_json::to_value(&s).unwrap();
    assert_eq!(json["storage"]["halted"].as_str(), Some(halted));
}

#[test]
fn only_a_durable_run_has_a_storage_block_in_its_json() {
    let plain = serde_json::to_value(run(SimConfig::new(2, 1, 50))).unwrap();
    assert!(plain.get("storage").is_none(), "{plain}");
    let plan = FaultPlan {
        storage_crash_ppm: 5_000,
        ..FaultPlan::none()
    };
    let durable = serde_json::to_value(run(SimConfig::new(2, 1, 50).with_plan(plan))).unwrap();
    assert!(
        durable["storage"]["recoveries"].as_u64().unwrap() > 0,
        "{durable}"
    );
    assert!(durable["storage"]["halted"].is_null(), "{durable}");
}
