//! The store on a storage that never lies: round trips, checkpoints, segments, torn tails,
//! corruption, and an exhaustive single-byte-flip sweep over a small store.

use acme_store::{verify, ChainHead, Config, MemStorage, Replay, Storage, Store, StoreError};

/// Rebuilds "the state" as the list of every record body, so equality is exact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Bodies {
    records: Vec<(u64, u16, Vec<u8>)>,
}

impl Bodies {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, kind, body) in &self.records {
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(body);
        }
        out
    }

    fn decode(mut b: &[u8]) -> Result<Bodies, String> {
        let mut records = Vec::new();
        while !b.is_empty() {
            if b.len() < 14 {
                return Err("short".into());
            }
            let seq = u64::from_le_bytes(b[..8].try_into().unwrap());
            let kind = u16::from_le_bytes(b[8..10].try_into().unwrap());
            let len = u32::from_le_bytes(b[10..14].try_into().unwrap()) as usize;
            if b.len() < 14 + len {
                return Err("short body".into());
            }
            records.push((seq, kind, b[14..14 + len].to_vec()));
            b = &b[14 + len..];
        }
        Ok(Bodies { records })
    }
}

impl Replay for Bodies {
    fn restore(&mut self, _seq: u64, state: Option<&[u8]>) -> Result<(), String> {
        *self = match state {
            Some(s) => Bodies::decode(s)?,
            None => Bodies::default(),
        };
        Ok(())
    }
    fn apply(&mut self, seq: u64, kind: u16, body: &[u8]) -> Result<(), String> {
        if self.records.last().is_some_and(|r| r.0 + 1 != seq) {
            return Err(format!("record {seq} out of order"));
        }
        self.records.push((seq, kind, body.to_vec()));
        Ok(())
    }
}

fn body(i: u64) -> Vec<u8> {
    (0..(i * 37 % 300)).map(|k| (k * 7 + i) as u8).collect()
}

fn small() -> Config {
    Config {
        segment_bytes_max: 2048,
    }
}

/// A store of `n` records with checkpoints every `every` records; returns it and what it holds.
fn build(n: u64, every: u64) -> (MemStorage, Bodies) {
    let mut store = Store::create(MemStorage::new(), 42, small()).unwrap();
    let mut state = Bodies::default();
    for i in 1..=n {
        let b = body(i);
        let head = store.append((i % 3) as u16, &b).unwrap();
        assert_eq!(head.seq, i);
        state.records.push((i, (i % 3) as u16, b));
        if every > 0 && i % every == 0 {
            store.checkpoint(&state.encode()).unwrap();
        }
    }
    (store.into_storage(), state)
}

fn reopen(
    storage: MemStorage,
) -> Result<(Store<MemStorage>, acme_store::Recovery, Bodies), StoreError> {
    let mut state = Bodies::default();
    let (store, recovery) = Store::open(storage, small(), &mut state)?;
    Ok((store, recovery, state))
}

#[test]
fn round_trip_across_segments_and_checkpoints() {
    for every in [0, 5, 13] {
        let (storage, expected) = build(40, every);
        let segments = storage
            .files
            .keys()
            .filter(|n| n.starts_with("log-"))
            .count();
        assert!(segments > 1, "the test must cross segments");
        let (mut store, recovery, state) = reopen(storage).unwrap();
        assert_eq!(state, expected, "checkpoint every {every}");
        assert_eq!(recovery.head.seq, 40);
        assert!(recovery.torn.is_none());
        // The store carries on where it stopped.
        store.append(9, b"after").unwrap();
        let (_, _, state) = reopen(store.into_storage()).unwrap();
        assert_eq!(state.records.len(), 41);
        assert_eq!(state.records[40].2, b"after");
    }
}

#[test]
fn checkpoints_remove_covered_segments_but_keep_a_fallback() {
    let (storage, expected) = build(60, 10);
    let checkpoints: Vec<&String> = storage
        .files
        .keys()
        .filter(|n| n.starts_with("checkpoint-"))
        .collect();
    assert_eq!(
        checkpoints.len(),
        2,
        "current and previous: {checkpoints:?}"
    );
    let first_segment = storage
        .files
        .keys()
        .find(|n| n.starts_with("log-"))
        .unwrap()
        .clone();
    assert_ne!(
        first_segment, "log-00000000000000000001",
        "covered segments were removed"
    );
    // The current checkpoint corrupt: recovery falls back to the previous one and the log.
    let mut damaged = storage.clone();
    let current = damaged
        .files
        .keys()
        .rfind(|n| n.starts_with("checkpoint-"))
        .unwrap()
        .clone();
    damaged.files.get_mut(&current).unwrap()[200] ^= 1;
    let (_, recovery, state) = reopen(damaged.clone()).unwrap();
    assert_eq!(state, expected);
    assert!(recovery.checkpoint_fallback.is_some());
    // ... and verify says so.
    let mut ro = damaged;
    ro.read_only = true;
    let report = verify(&mut ro, &mut Bodies::default(), None).unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.corruptions[0].file, current);
}

#[test]
fn a_torn_last_record_is_cut_and_reported() {
    let (storage, expected) = build(12, 0);
    // A record past the boundary whose write a crash tore: write a 13th record by hand, then
    // tear its body. The superblock still says 12.
    let mut torn = storage.clone();
    {
        let mut store = Store::open(torn.clone(), small(), &mut Bodies::default())
            .unwrap()
            .0;
        store.append(1, &[5u8; 200]).unwrap();
        let after = store.into_storage();
        let seg = after
            .files
            .keys()
            .rfind(|n| n.starts_with("log-"))
            .unwrap()
            .clone();
        let mut data = after.files[&seg].clone();
        let n = data.len();
        data[n - 10] ^= 0xff;
        torn.files.insert(seg, data);
    }
    let mut ro = torn.clone();
    ro.read_only = true;
    let report = verify(&mut ro, &mut Bodies::default(), None).unwrap();
    assert!(report.is_clean(), "{:?}", report.corruptions);
    assert!(report.torn.is_some());
    let (_, recovery, state) = reopen(torn).unwrap();
    assert_eq!(state, expected);
    let t = recovery.torn.expect("torn tail reported");
    assert_eq!(t.seq, 13);
}

#[test]
fn a_bad_acknowledged_record_is_refused_with_its_place() {
    let (storage, _) = build(12, 0);
    let seg = storage
        .files
        .keys()
        .find(|n| n.starts_with("log-"))
        .unwrap()
        .clone();
    let mut bad = storage.clone();
    bad.files.get_mut(&seg).unwrap()[100] ^= 4;
    match reopen(bad) {
        Err(StoreError::Corrupt(c)) => {
            assert_eq!(c.file, seg);
            assert!(c.seq.is_some());
        }
        other => panic!("expected a refusal, got {:?}", other.map(|r| r.1)),
    }
}

#[test]
fn since_proves_an_earlier_head() {
    let mut store = Store::create(MemStorage::new(), 1, small()).unwrap();
    let mut noted = ChainHead::default();
    for i in 1..=30 {
        let h = store.append(0, &body(i)).unwrap();
        if i == 17 {
            noted = h;
        }
    }
    let mut storage = store.into_storage();
    storage.read_only = true;
    let report = verify(&mut storage, &mut Bodies::default(), Some(noted)).unwrap();
    assert!(matches!(report.since, Some(Ok(_))), "{:?}", report.since);
    let wrong = ChainHead {
        seq: 17,
        checksum: noted.checksum ^ 1,
    };
    let report = verify(&mut storage, &mut Bodies::default(), Some(wrong)).unwrap();
    assert!(matches!(report.since, Some(Err(_))));
    assert!(!report.is_clean());
    assert_eq!(format!("{noted}").parse::<ChainHead>().unwrap(), noted);
}

/// Every byte of every file of a small store, flipped one at a time: verify reports a
/// corruption naming that file, and recovery either refuses or recovers exactly the same
/// records. Never a different state, never a panic.
#[test]
fn exhaustive_single_byte_flip_sweep() {
    let (storage, expected) = build(20, 6);
    // Every kind of file is in the sweep.
    for kind in ["superblock", "log-", "checkpoint-", "chain"] {
        assert!(
            storage.files.keys().any(|n| n.starts_with(kind)),
            "no {kind} file"
        );
    }
    let mut flips = 0;
    for (name, data) in &storage.files {
        for at in 0..data.len() {
            let mut damaged = storage.clone();
            damaged.files.get_mut(name).unwrap()[at] ^= 0x5a;
            let mut ro = damaged.clone();
            ro.read_only = true;
            let report = verify(&mut ro, &mut Bodies::default(), None).unwrap();
            assert!(
                report.corruptions.iter().any(|c| &c.file == name),
                "flip at {name}:{at} not reported: {:?} notes {:?}",
                report.corruptions,
                report.notes
            );
            match reopen(damaged) {
                Ok((_, _, state)) => assert_eq!(
                    state, expected,
                    "flip at {name}:{at} recovered a different state"
                ),
                Err(StoreError::Corrupt(c)) => assert!(!c.file.is_empty()),
                Err(e) => panic!("flip at {name}:{at}: unexpected error {e}"),
            }
            flips += 1;
        }
    }
    assert!(flips > 3000, "swept {flips} bytes");
}

/// Random and mutated files in place of a store: no panic, only clean errors.
#[test]
fn random_files_never_panic() {
    use rand::{Rng, SeedableRng};
    let (storage, _) = build(10, 4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for case in 0..3000 {
        let mut s = storage.clone();
        let names: Vec<String> = s.files.keys().cloned().collect();
        match case % 4 {
            0 => {
                let name = &names[rng.random_range(0..names.len())];
                let len = rng.random_range(0..4096);
                let junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                s.files.insert(name.clone(), junk);
            }
            1 => {
                let name = &names[rng.random_range(0..names.len())];
                let f = s.files.get_mut(name).unwrap();
                let cut = rng.random_range(0..=f.len());
                f.truncate(cut);
            }
            2 => {
                for _ in 0..rng.random_range(1..20) {
                    let name = &names[rng.random_range(0..names.len())];
                    let f = s.files.get_mut(name).unwrap();
                    if !f.is_empty() {
                        let at = rng.random_range(0..f.len());
                        f[at] = rng.random();
                    }
                }
            }
            _ => {
                let name = &names[rng.random_range(0..names.len())];
                s.files.remove(name);
                let extra = format!("log-{:020}", rng.random_range(1..40u64));
                let junk: Vec<u8> = (0..rng.random_range(0..300))
                    .map(|_| rng.random())
                    .collect();
                s.files.insert(extra, junk);
            }
        }
        let mut ro = s.clone();
        ro.read_only = true;
        let _ = verify(&mut ro, &mut Bodies::default(), None);
        let _ = reopen(s);
    }
    let mut empty = MemStorage::new();
    assert!(matches!(
        verify(&mut empty, &mut Bodies::default(), None),
        Err(StoreError::NotAStore { .. })
    ));
    let _ = Storage::list(&mut empty);
}

/// After compaction removed the first segments, their headers stay in the chain archive: an
/// auditor's head from record 3 is still proven, and a removed archive is a gap.
#[test]
fn the_chain_runs_from_record_one_after_compaction() {
    let mut store = Store::create(MemStorage::new(), 1, small()).unwrap();
    let mut state = Bodies::default();
    let mut noted = ChainHead::default();
    for i in 1..=60 {
        let b = body(i);
        let h = store.append(0, &b).unwrap();
        state.records.push((i, 0, b));
        if i == 3 {
            noted = h;
        }
        if i % 10 == 0 {
            store.checkpoint(&state.encode()).unwrap();
        }
    }
    let mut storage = store.into_storage();
    assert!(!storage.files.contains_key("log-00000000000000000001"));
    assert!(storage.files.contains_key("chain"));
    storage.read_only = true;
    let report = verify(&mut storage, &mut Bodies::default(), Some(noted)).unwrap();
    assert!(report.is_clean(), "{:?}", report.corruptions);
    assert!(report.archived >= 3 && report.first_seq > 3);
    assert!(matches!(report.since, Some(Ok(_))), "{:?}", report.since);
    // Opening reads only the archive's end, and finds the same end as the whole read.
    let first_live = report.first_seq;
    let whole = acme_store::chain::read(&mut storage, &[], Some(first_live)).unwrap();
    let tail = acme_store::chain::read_tail(&mut storage, Some(first_live)).unwrap();
    assert_eq!(
        (tail.last_seq, tail.last_checksum),
        (whole.last_seq, whole.last_checksum)
    );
    assert_eq!((tail.torn_bytes, tail.torn_from), (0, None));
    // A header torn after the parent of the first live record is found by the tail read too.
    let mut torn = storage.clone();
    let chain = torn.files.get_mut("chain").unwrap();
    let last = chain.len() - 40;
    chain[last] ^= 0xff;
    let tail = acme_store::chain::read_tail(&mut torn, Some(whole.last_seq)).unwrap();
    assert_eq!(tail.torn_from, Some(whole.last_seq), "{tail:?}");
    let mut gap = storage.clone();
    gap.files.remove("chain");
    let report = verify(&mut gap, &mut Bodies::default(), None).unwrap();
    assert!(report
        .corruptions
        .iter()
        .any(|c| c.reason.contains("neither in the chain archive")));
}

/// A corrupted record in a segment that recovery never reads (it lies before the checkpoint)
/// stops compaction: the segment is not removed, so the evidence stays for `verify`.
#[test]
fn compaction_never_deletes_a_corrupt_segment() {
    let (storage, mut state) = build(30, 10);
    let first = storage
        .files
        .keys()
        .find(|n| n.starts_with("log-"))
        .unwrap()
        .clone();
    let mut damaged = storage.clone();
    damaged.files.get_mut(&first).unwrap()[HEADER_BODY_BYTE] ^= 1;
    let (mut store, _, _) = reopen(damaged).unwrap();
    let mut refused = None;
    for i in 31..=60 {
        let b = body(i);
        store.append(0, &b).unwrap();
        state.records.push((i, 0, b));
        if i % 10 == 0 {
            if let Err(e) = store.checkpoint(&state.encode()) {
                refused = Some(e);
                break;
            }
        }
    }
    match refused {
        Some(StoreError::Corrupt(c)) => assert_eq!(c.file, first),
        other => panic!("expected compaction to refuse, got {other:?}"),
    }
    assert!(store.is_stopped());
    assert!(
        store.storage().files.contains_key(&first),
        "the corrupt segment is kept"
    );
}

/// Where a record's body starts in the first segment (past the first header).
const HEADER_BODY_BYTE: usize = acme_store::record::HEADER_SIZE + 3;

/// Recovery fell back past a bad current checkpoint: the next checkpoint keeps the good one as
/// its fallback, never the bad one.
#[test]
fn after_a_fallback_the_bad_checkpoint_is_not_kept() {
    let (storage, mut state) = build(40, 10);
    let current = storage
        .files
        .keys()
        .rfind(|n| n.starts_with("checkpoint-"))
        .unwrap()
        .clone();
    let previous = storage
        .files
        .keys()
        .find(|n| n.starts_with("checkpoint-"))
        .unwrap()
        .clone();
    let mut damaged = storage.clone();
    damaged.files.get_mut(&current).unwrap()[300] ^= 1;
    let (mut store, recovery, replayed) = reopen(damaged).unwrap();
    assert!(recovery.checkpoint_fallback.is_some());
    assert_eq!(replayed, state);
    let b = body(41);
    store.append(0, &b).unwrap();
    state.records.push((41, 0, b));
    store.checkpoint(&state.encode()).unwrap();
    let sb = *store.superblock();
    assert_eq!(
        sb.previous
            .map(|p| acme_store::checkpoint::file_name(p.seq)),
        Some(previous)
    );
    assert!(
        !store.storage().files.contains_key(&current),
        "the bad checkpoint is gone"
    );
    let (_, _, again) = reopen(store.into_storage()).unwrap();
    assert_eq!(again, state);
}

/// A create cut short (the superblock never renamed into place) leaves no store, and the
/// directory can be used again.
#[test]
fn an_interrupted_create_leaves_no_half_store() {
    let mut storage = MemStorage::new();
    storage.files.insert("superblock.tmp".into(), vec![1, 2, 3]);
    assert!(matches!(
        reopen(storage.clone()),
        Err(StoreError::NotAStore { .. })
    ));
    let store = Store::create(storage, 3, small()).unwrap();
    let storage = store.into_storage();
    assert!(!storage.files.contains_key("superblock.tmp"));
    assert_eq!(storage.files["superblock"].len(), 1024);
    reopen(storage).unwrap();
}
