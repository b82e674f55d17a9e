//! The durable ledger answers exactly as a MemLedger does, and reopening it rebuilds exactly the
//! ledger it acknowledged: with and without checkpoints, with pending transfers that expire on
//! a read, with linked chains that fail.

use acme_ledger::{
    Account, AccountFilter, AccountFilterFlags, Clock, Ledger, MemLedger, QueryFilter, Transfer,
    TransferFlags,
};
use acme_ledger_durable::{verify_ledger, Config, DurableLedger};
use acme_store::MemStorage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct TestClock(AtomicU64);
impl Clock for TestClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ACCOUNTS: u64 = 40;

/// A request stream that exercises every path the log must reproduce.
fn request(rng: &mut Rng, i: u64) -> Result<Vec<Transfer>, Vec<Account>> {
    if i == 0 || rng.below(20) == 0 {
        let n = if i == 0 { ACCOUNTS } else { rng.below(3) + 1 };
        return Err((0..n)
            .map(|k| Account {
                id: if i == 0 {
                    k as u128 + 1
                } else {
                    rng.below(ACCOUNTS * 2) as u128 + 1
                },
                ledger: 1 + (k % 2) as u32,
                code: 7,
                ..Account::default()
            })
            .collect());
    }
    let n = rng.below(12) + 1;
    Ok((0..n)
        .map(|k| {
            let dr = rng.below(ACCOUNTS) as u128 + 1;
            // Same parity, so the same ledger (account k+1 is on ledger 1 + k % 2).
            let cr = (rng.below(ACCOUNTS / 2) * 2) as u128 + 1 + (dr - 1) % 2;
            let id = i as u128 * 100 + k as u128;
            let mut t = Transfer {
                id,
                debit_account_id: dr,
                credit_account_id: cr,
                amount: rng.below(1000) as u128 + 1,
                ledger: 1 + ((dr - 1) % 2) as u32,
                code: 3,
                ..Transfer::default()
            };
            match rng.below(10) {
                0 | 1 => {
                    t.flags = TransferFlags::PENDING;
                    t.timeout = rng.below(3) as u32; // 0: no expiry; 1-2 s: expires soon
                }
                2 => {
                    t = Transfer {
                        id,
                        pending_id: (i.saturating_sub(rng.below(5) + 1)) as u128 * 100,
                        amount: u128::MAX,
                        flags: TransferFlags::POST_PENDING_TRANSFER,
                        ..Transfer::default()
                    }
                }
                3 => {
                    t = Transfer {
                        id,
                        pending_id: (i.saturating_sub(rng.below(5) + 1)) as u128 * 100,
                        flags: TransferFlags::VOID_PENDING_TRANSFER,
                        ..Transfer::default()
                    }
                }
                4 => t.flags = TransferFlags::LINKED,
                5 => t.id = (i.saturating_sub(1)) as u128 * 100, // often exists
                _ => {}
            }
            t
        })
        .collect())
}

fn run(seed: u64, steps: u64, config: Config) -> (MemLedger, MemStorage, u64) {
    let clock = Arc::new(TestClock::default());
    clock.0.store(1_000_000_000_000, Ordering::SeqCst);
    let mut plain = MemLedger::new(clock.clone());
    let mut durable = DurableLedger::create(MemStorage::new(), 5, clock.clone(), config).unwrap();
    let mut rng = Rng(seed | 1);
    for i in 0..steps {
        clock.0.fetch_add(rng.below(900_000_000), Ordering::SeqCst);
        match request(&mut rng, i) {
            Ok(ts) => assert_eq!(
                durable.create_transfers(&ts).unwrap(),
                plain.create_transfers(&ts).unwrap(),
                "step {i}"
            ),
            Err(accs) => assert_eq!(
                durable.create_accounts(&accs).unwrap(),
                plain.create_accounts(&accs).unwrap(),
                "step {i}"
            ),
        }
        if rng.below(4) == 0 {
            // Reads pulse: pending transfers that are due expire here, and must be logged.
            let id = rng.below(ACCOUNTS) as u128 + 1;
            assert_eq!(
                durable.lookup_accounts(&[id]).unwrap(),
                plain.lookup_accounts(&[id]).unwrap()
            );
            let f = AccountFilter {
                account_id: id,
                limit: 10,
                flags: AccountFilterFlags::DEBITS,
                ..AccountFilter::default()
            };
            assert_eq!(
                durable.get_account_transfers(&f).unwrap(),
                plain.get_account_transfers(&f).unwrap()
            );
            let q = QueryFilter {
                limit: 5,
                ..QueryFilter::default()
            };
            assert_eq!(
                durable.query_transfers(&q).unwrap(),
                plain.query_transfers(&q).unwrap()
            );
        }
    }
    assert_eq!(durable.mem().state(), plain.state());
    let checkpoints = durable.stats().checkpoints;
    let (_, storage) = durable.into_parts();
    (plain, storage, checkpoints)
}

fn reopened_state(storage: MemStorage, config: Config) -> acme_ledger::MemState {
    let clock = Arc::new(TestClock::default());
    let (ledger, recovery) = DurableLedger::open(storage, clock, config).unwrap();
    assert!(recovery.torn.is_none());
    ledger.mem().state()
}

#[test]
fn reopening_rebuilds_exactly_the_acknowledged_ledger() {
    for seed in 1..=6 {
        let config = Config::default();
        let (plain, storage, _) = run(seed, 400, config);
        let state = plain.state();
        assert!(
            state.pending_status.contains(&4),
            "seed {seed}: some pending transfer expired"
        );
        assert!(
            state.pending_status.contains(&2),
            "seed {seed}: some pending transfer posted"
        );
        assert_eq!(
            reopened_state(storage.clone(), config),
            state,
            "seed {seed}"
        );
        let mut ro = storage;
        ro.read_only = true;
        let report = verify_ledger(&mut ro, None).unwrap();
        assert!(
            report.is_clean(),
            "seed {seed}: {:?} {:?}",
            report.store.corruptions,
            report.unbalanced
        );
        assert_eq!(report.transfers, state.transfers.len() as u64);
    }
}

#[test]
fn checkpoints_and_segments_give_the_same_ledger() {
    let config = Config {
        store: acme_store::Config {
            segment_bytes_max: 16 << 10,
        },
        checkpoint_log_bytes: 40 << 10,
        ..Config::default()
    };
    let (plain, storage, checkpoints) = run(11, 600, config);
    assert!(checkpoints >= 3, "{checkpoints} checkpoints");
    assert!(
        !storage.files.contains_key("log-00000000000000000001"),
        "covered segments removed"
    );
    assert_eq!(reopened_state(storage.clone(), config), plain.state());
    let mut ro = storage;
    ro.read_only = true;
    assert!(verify_ledger(&mut ro, None).unwrap().is_clean());
}

#[test]
fn a_replay_that_differs_from_the_log_is_refused() {
    // Tamper with a logged outcome (and re-checksum, as a buggy writer or a changed MemLedger
    // would): replay notices that the request no longer gives what was acknowledged.
    use acme_ledger_durable::codec;
    let clock = Arc::new(TestClock::default());
    clock.0.store(5_000_000_000, Ordering::SeqCst);
    let mut d =
        DurableLedger::create(MemStorage::new(), 1, clock.clone(), Config::default()).unwrap();
    let a = |id| Account {
        id,
        ledger: 1,
        code: 1,
        ..Account::default()
    };
    d.create_accounts(&[a(1), a(2)]).unwrap();
    let (_, storage) = d.into_parts();
    let entry = codec::Entry {
        op: codec::Op::CreateAccounts,
        now_ns: 6_000_000_000,
        prepare_timestamp_after: 6_000_000_001,
        events: codec::Events::Accounts(vec![a(1)]),
        failures: vec![], // a duplicate account is `exists`, not ok
    };
    let mut body = Vec::new();
    codec::encode_entry(&mut body, &entry);
    let (mut store, _) = acme_store::Store::open(
        storage,
        acme_store::Config::default(),
        &mut acme_ledger_durable::Replayer::new(),
    )
    .unwrap();
    store
        .append(codec::KIND_GROUP, &codec::group_body(1, &body))
        .unwrap();
    match DurableLedger::open(store.into_storage(), clock, Config::default()) {
        Err(acme_store::StoreError::Replay { seq: 2, reason }) => {
            assert!(reason.contains("results"), "{reason}")
        }
        other => panic!("expected a refused replay, got {:?}", other.err()),
    }
}
