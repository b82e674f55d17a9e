//! Reconciliation sources: the ledger read through the port (`scan_ledger`, as `acme recon`
//! reads a durable store or a TigerBeetle cluster) gives the same facts as the ledger's own
//! records, even when transfers are committed while the scan runs; the streaming journal replay
//! finds what the in-memory one found, with any number of partitions.

use acme_ledger::chart::{self, AccountKind, LEDGER_CASH_GBP};
use acme_ledger::{Account, Ledger, MemLedger, Transfer, TransferFlags};
use acme_processes::recon::ledger::{scan, Calendar, LedgerFacts, LedgerScan};
use acme_processes::recon::replay::{MemSpill, Replay};
use acme_processes::recon::source::{latest_timestamp, scan_ledger};
use acme_sim::{SimConfig, World};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A simulated ledger (a few days, a few hundred members): its accounts and transfers.
fn simulated() -> MemLedger {
    let mut world = World::new(SimConfig::new(7, 3, 300));
    let summary = world.run_to_end();
    assert!(summary.ok(), "{:?}", summary.violations);
    copy(world.ledger())
}

/// A copy of a ledger, on a clock that ticks after its last timestamp.
fn copy(mem: &MemLedger) -> MemLedger {
    let clock = Arc::new(Tick(AtomicU64::new(mem.last_timestamp() + 1)));
    MemLedger::from_state(clock, mem.state()).expect("a ledger's own state restores")
}

struct Tick(AtomicU64);
impl acme_ledger::Clock for Tick {
    fn now_ns(&self) -> u64 {
        self.0.fetch_add(1_000, Ordering::SeqCst)
    }
}

fn port_facts(ledger: &mut dyn Ledger, parts: u32) -> LedgerFacts {
    let replay = Replay::new(Box::new(MemSpill::default()), parts);
    let mut s = LedgerScan::with_replay(Some(replay), Calendar::default());
    let stats = scan_ledger(ledger, &mut s).expect("the scan reads the ledger");
    assert!(stats.accounts > 0 && stats.transfers > 0, "{stats:?}");
    s.finish().expect("in memory")
}

#[test]
fn the_port_scan_gives_the_facts_of_the_ledgers_records() {
    let mut mem = simulated();
    let direct = scan(mem.accounts(), mem.transfers(), true);
    assert!(direct.journal_mismatches.is_empty());
    assert!(!direct.trades.is_empty(), "the run traded");
    for parts in [1, 7] {
        let through_port = port_facts(&mut mem, parts);
        assert_eq!(through_port, direct, "{parts} partitions");
    }
}

/// A ledger that commits one more transfer each time its accounts are queried: a live ledger
/// under a scan.
struct Busy {
    inner: MemLedger,
    later: Vec<Transfer>,
    committed: usize,
}

impl Ledger for Busy {
    fn create_accounts(
        &mut self,
        b: &[Account],
    ) -> Result<Vec<acme_ledger::CreateAccountResult>, acme_ledger::LedgerError> {
        self.inner.create_accounts(b)
    }
    fn create_transfers(
        &mut self,
        b: &[Transfer],
    ) -> Result<Vec<acme_ledger::CreateTransferResult>, acme_ledger::LedgerError> {
        self.inner.create_transfers(b)
    }
    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, acme_ledger::LedgerError> {
        self.inner.lookup_accounts(ids)
    }
    fn lookup_transfers(
        &mut self,
        ids: &[u128],
    ) -> Result<Vec<Transfer>, acme_ledger::LedgerError> {
        self.inner.lookup_transfers(ids)
    }
    fn get_account_transfers(
        &mut self,
        f: &acme_ledger::AccountFilter,
    ) -> Result<Vec<Transfer>, acme_ledger::LedgerError> {
        self.inner.get_account_transfers(f)
    }
    fn query_transfers(
        &mut self,
        f: &acme_ledger::QueryFilter,
    ) -> Result<Vec<Transfer>, acme_ledger::LedgerError> {
        self.inner.query_transfers(f)
    }
    fn query_accounts(
        &mut self,
        f: &acme_ledger::QueryFilter,
    ) -> Result<Vec<Account>, acme_ledger::LedgerError> {
        // Before and after the read: a transfer may land on either side of it.
        let before = self.commit_one();
        let page = self.inner.query_accounts(f)?;
        if !before {
            self.commit_one();
        }
        Ok(page)
    }
}

impl Busy {
    fn commit_one(&mut self) -> bool {
        let Some(t) = self.later.get(self.committed).copied() else {
            return false;
        };
        self.committed += 1;
        let r = self.inner.create_transfers(&[t]).expect("within limits");
        assert_eq!(r, vec![acme_ledger::CreateTransferResult::Ok]);
        self.committed.is_multiple_of(2)
    }
}

#[test]
fn transfers_committed_during_the_scan_make_no_false_break() {
    let mem = simulated();
    let direct = scan(mem.accounts(), mem.transfers(), true);
    let bank = chart::house(AccountKind::Bank, LEDGER_CASH_GBP);
    let members: Vec<u128> = (1..=3).map(chart::member_cash).collect();
    assert!(mem.account(bank).is_some() && members.iter().all(|&m| mem.account(m).is_some()));
    let base: u128 = 0xACE0_0000_0000_0000_0000_0000_0000_0000;
    let plain = |i: u128, cr: u128| Transfer {
        id: base + i,
        debit_account_id: bank,
        credit_account_id: cr,
        amount: 1_000 + i,
        ledger: LEDGER_CASH_GBP,
        code: 1,
        ..Transfer::default()
    };
    let mut later = vec![plain(1, members[0]), plain(2, members[1])];
    let mut pending = plain(3, members[2]);
    pending.flags = TransferFlags::PENDING;
    later.push(pending);
    later.push(Transfer {
        id: base + 4,
        pending_id: pending.id,
        flags: TransferFlags::POST_PENDING_TRANSFER,
        ..pending
    });
    later.extend((5..9).map(|i| plain(i, members[(i % 3) as usize])));
    let n = later.len();
    let mut busy = None;
    for parts in [1, 5] {
        let mut b = Busy {
            inner: copy(&mem),
            later: later.clone(),
            committed: 0,
        };
        let through_port = port_facts(&mut b, parts);
        // The ledger as it stood when the scan began: no false break, the same facts.
        assert_eq!(through_port, direct, "{parts} partitions");
        assert!(b.committed > 1, "transfers were committed during the scan");
        busy = Some(b);
    }
    let mut busy = busy.expect("scanned");
    while busy.commit_one() || busy.committed < n {}
    // Read again now, the scan sees the transfers: the bank's balance moved.
    let after = port_facts(&mut busy, 3);
    assert!(after.journal_mismatches.is_empty());
    assert_ne!(
        after.class(LEDGER_CASH_GBP, AccountKind::Bank),
        direct.class(LEDGER_CASH_GBP, AccountKind::Bank)
    );
    assert_eq!(after.transfers, direct.transfers + n as u64);
}

#[test]
fn an_empty_ledger_scans_to_nothing() {
    let mut mem = MemLedger::new(Arc::new(Zero));
    assert_eq!(latest_timestamp(&mut mem), Ok(0));
    let mut s = LedgerScan::new(true);
    let stats = scan_ledger(&mut mem, &mut s).expect("empty");
    assert_eq!((stats.accounts, stats.transfers), (0, 0));
}

struct Zero;
impl acme_ledger::Clock for Zero {
    fn now_ns(&self) -> u64 {
        1
    }
}
