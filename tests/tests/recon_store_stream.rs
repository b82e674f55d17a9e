//! The durable store read as a stream (`acme_ledger_durable::stream`, what `acme recon --ledger
//! STORE` reads) gives the facts of the ledger that wrote it: a simulated ledger's accounts and
//! transfers loaded into a `DurableLedger` as requests, a checkpoint in the middle (pending
//! transfers open across it, posted and voided after it), a log tail after it with duplicates
//! and refused requests among its batches.
//!
//! Two oracles that share nothing with the stream: the writer's own in-memory ledger (what it
//! acknowledged), and the store's recovery (`Store::open` with the `Replayer`, which
//! materialises the ledger).

use acme_ledger::{Account, Clock, Ledger, MemLedger, Transfer, TransferFlags, BATCH_EVENTS_MAX};
use acme_ledger_durable::stream::{stream_store, Sink, StreamReport};
use acme_ledger_durable::{Config, DurableLedger, Replayer};
use acme_processes::recon::ledger::{Calendar, LedgerFacts, LedgerScan};
use acme_processes::recon::replay::{MemSpill, Replay};
use acme_sim::{SimConfig, World};
use acme_store::{MemStorage, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct Tick(AtomicU64);
impl Clock for Tick {
    fn now_ns(&self) -> u64 {
        self.0.fetch_add(1_000, Ordering::SeqCst)
    }
}

fn fresh_scan() -> LedgerScan {
    let replay = Replay::new(Box::new(MemSpill::default()), 3);
    LedgerScan::with_replay(Some(replay), Calendar::default())
}

struct Scan(LedgerScan);
impl Sink for Scan {
    fn account(&mut self, a: &Account) {
        self.0.account(a);
    }
    fn transfer(&mut self, t: &Transfer) {
        self.0.transfer(t);
    }
}

/// Facts with their findings in id order (the stream hands out the log's accounts last).
fn sorted(mut f: LedgerFacts) -> LedgerFacts {
    for v in [&mut f.negative, &mut f.unknown, &mut f.journal_mismatches] {
        v.sort_by_key(|x| x.id);
    }
    f
}

fn facts_of(mem: &MemLedger) -> LedgerFacts {
    let mut s = fresh_scan();
    mem.accounts().iter().for_each(|a| s.account(a));
    mem.transfers().iter().for_each(|t| s.transfer(t));
    sorted(s.finish().expect("in memory"))
}

fn streamed(storage: &mut MemStorage) -> (LedgerFacts, StreamReport) {
    let located = acme_store::stream::locate(storage).expect("locate");
    let mut scan = Scan(fresh_scan());
    let candidate = located.candidates.first().copied();
    let report = stream_store(storage, &located, candidate, &mut scan).expect("stream");
    (sorted(scan.0.finish().expect("in memory")), report)
}

/// A simulated ledger's records as requests: timestamps cleared, accounts empty.
fn requests() -> (Vec<Account>, Vec<Transfer>) {
    let mut world = World::new(SimConfig::new(11, 4, 600));
    let summary = world.run_to_end();
    assert!(summary.ok(), "{:?}", summary.violations);
    let accounts = world
        .ledger()
        .accounts()
        .iter()
        .map(|a| Account {
            timestamp: 0,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            ..*a
        })
        .collect();
    let transfers = world
        .ledger()
        .transfers()
        .iter()
        .map(|t| Transfer { timestamp: 0, ..*t })
        .collect();
    (accounts, transfers)
}

/// Writes the requests to a durable ledger, checkpointing after `checkpoint_after` transfers;
/// the tail also re-sends some batches whole (all `exists`) and a transfer to no account.
fn write(
    accounts: &[Account],
    transfers: &[Transfer],
    checkpoint_after: usize,
) -> DurableLedger<MemStorage> {
    let clock = Arc::new(Tick(AtomicU64::new(1_000_000)));
    let mut l =
        DurableLedger::create(MemStorage::new(), 5, clock, Config::default()).expect("create");
    for batch in accounts.chunks(BATCH_EVENTS_MAX) {
        let r = l.create_accounts(batch).expect("accounts");
        assert!(r.iter().all(|r| r.code() == 0), "{r:?}");
    }
    let (before, after) = transfers.split_at(checkpoint_after);
    for batch in before.chunks(100) {
        l.create_transfers(batch).expect("transfers");
    }
    l.checkpoint_now().expect("checkpoint");
    for (i, batch) in after.chunks(60).enumerate() {
        l.create_transfers(batch).expect("transfers");
        if i % 3 == 0 {
            // Again, and one the ledger refuses: failures logged with the batch.
            let mut again = batch.to_vec();
            again.push(Transfer {
                id: u128::MAX - 7 - i as u128,
                debit_account_id: 12345,
                credit_account_id: 54321,
                ..batch[0]
            });
            let r = l.create_transfers(&again).expect("transfers");
            assert!(r.iter().all(|r| r.code() != 0));
        }
    }
    l.create_accounts(&accounts[..3]).expect("accounts again");
    l
}

#[test]
fn the_streamed_store_gives_the_facts_of_the_ledger_that_wrote_it() {
    let (accounts, transfers) = requests();
    let pending = transfers
        .iter()
        .filter(|t| t.flags.contains(TransferFlags::PENDING))
        .count();
    assert!(
        pending > 0 && transfers.len() > 500,
        "{pending} of {}",
        transfers.len()
    );
    let l = write(&accounts, &transfers, transfers.len() / 2);
    let (mem, mut storage) = l.into_parts();
    let written = facts_of(&mem);
    assert!(written.accounts > 0 && written.transfers > 0);
    // Posts and voids after the checkpoint of pending transfers before it.
    let half = &transfers[..transfers.len() / 2];
    let crossing = transfers[transfers.len() / 2..]
        .iter()
        .filter(|t| t.pending_id != 0 && half.iter().any(|p| p.id == t.pending_id))
        .count();
    assert!(crossing > 0, "no post crosses the checkpoint");

    let (facts, report) = streamed(&mut storage);
    assert_eq!(facts, written);
    assert!(
        report.checkpoint_seq > 0 && report.replayed > 0,
        "{report:?}"
    );
    let checkpointed = report.checkpoint_transfers;
    assert!(
        checkpointed > 0 && checkpointed <= half.len() as u64,
        "{report:?}"
    );
    // The small ledger held the log's effect, not the ledger.
    assert!(
        report.tail_accounts < mem.accounts().len() as u64,
        "{report:?}"
    );
    let latest = mem.accounts().iter().map(|a| a.timestamp);
    let latest = latest
        .chain(mem.transfers().iter().map(|t| t.timestamp))
        .max();
    assert_eq!(Some(report.latest_timestamp), latest);

    let mut replayer = Replayer::new();
    let (_, recovery) = Store::open(
        storage.clone(),
        acme_store::Config::default(),
        &mut replayer,
    )
    .expect("open");
    let recovered = replayer.mem.take().expect("restored");
    assert_eq!(facts_of(&recovered), facts);
    assert_eq!(recovery.head, report.head);
    assert_eq!(recovery.replayed, report.replayed);
    assert_eq!(recovery.checkpoint_seq, report.checkpoint_seq);
}

#[test]
fn a_store_without_a_checkpoint_streams_its_whole_log() {
    let (accounts, transfers) = requests();
    let clock = Arc::new(Tick(AtomicU64::new(1_000_000)));
    let mut l =
        DurableLedger::create(MemStorage::new(), 5, clock, Config::default()).expect("create");
    for batch in accounts.chunks(BATCH_EVENTS_MAX) {
        l.create_accounts(batch).expect("accounts");
    }
    for batch in transfers.chunks(150) {
        l.create_transfers(batch).expect("transfers");
    }
    let (mem, mut storage) = l.into_parts();
    let (facts, report) = streamed(&mut storage);
    assert_eq!(report.checkpoint_seq, 0);
    assert_eq!(facts, facts_of(&mem));
}
