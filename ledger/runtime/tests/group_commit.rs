//! Many client threads, one writer: batches share records (group commit), every answer comes
//! after its record is durable, and the reopened ledger is exactly the one the clients saw.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_ledger::{Account, Clock, CreateTransferResult, Ledger, Transfer};
use acme_ledger_durable::{Config, DurableLedger};
use acme_ledger_runtime::LedgerServer;
use acme_store_fs::{FileStorage, Mode};
use std::sync::Arc;

struct WallClock;
impl Clock for WallClock {
    fn now_ns(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64
    }
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn concurrent_clients_share_commits_and_reopen_exactly() {
    let path = dir("group-commit");
    let storage = FileStorage::open(&path, Mode::ReadWrite).unwrap();
    let clock: Arc<dyn Clock + Send + Sync> = Arc::new(WallClock);
    let ledger = DurableLedger::create(storage, 1, clock.clone(), Config::default()).unwrap();
    let server = LedgerServer::spawn(ledger);
    let mut c = server.client();
    let accounts: Vec<Account> = (1..=100)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            ..Account::default()
        })
        .collect();
    assert!(c
        .create_accounts(&accounts)
        .unwrap()
        .iter()
        .all(|r| r.code() == 0));
    let threads: Vec<_> = (0..8u128)
        .map(|t| {
            let mut c = server.client();
            std::thread::spawn(move || {
                for b in 0..40u128 {
                    let batch: Vec<Transfer> = (0..50u128)
                        .map(|k| Transfer {
                            id: (t << 64) | (b << 32) | (k + 1),
                            debit_account_id: 1 + (t * 7 + k) % 100,
                            credit_account_id: 1 + (t * 7 + k + 1) % 100,
                            amount: 1 + k,
                            ledger: 1,
                            code: 2,
                            ..Transfer::default()
                        })
                        .collect();
                    let r = c.create_transfers(&batch).unwrap();
                    assert!(r.iter().all(|x| *x == CreateTransferResult::Ok));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let read = c.lookup_accounts(&[1, 2]).unwrap();
    assert_eq!(read.len(), 2);
    drop(c);
    let (ledger, stats) = server.join();
    assert_eq!(stats.events, 100 + 8 * 40 * 50);
    assert!(
        stats.groups < stats.requests,
        "some requests shared a commit: {stats:?}"
    );
    assert!(stats.group_requests_max > 1);
    let before = ledger.mem().state();
    let records = ledger.stats().records;
    assert!(
        records < 1 + 8 * 40,
        "{records} records for {} requests",
        1 + 8 * 40
    );
    drop(ledger);
    let storage = FileStorage::open(&path, Mode::ReadWrite).unwrap();
    let (reopened, recovery) = DurableLedger::open(storage, clock, Config::default()).unwrap();
    assert!(recovery.torn.is_none());
    assert_eq!(reopened.mem().state(), before);
    assert_eq!(reopened.mem().transfers().len(), 8 * 40 * 50);
}
