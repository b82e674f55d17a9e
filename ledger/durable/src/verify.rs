//! The durable ledger verified: the store's own checks (every checksum, the chain, a replay in
//! which every request must reproduce its logged outcome), then the replayed ledger's books:
//! debits equal credits in every ledger, and every account's balances equal what its transfers
//! add up to, recomputed here from the transfers alone.

use crate::ledger::Replayer;
use acme_ledger::{MemLedger, TransferFlags};
use acme_store::{verify, ChainHead, Corruption, Storage, StoreError, VerifyReport};
use std::collections::BTreeMap;

/// The store's report and the ledger's.
pub struct LedgerReport {
    pub store: VerifyReport,
    pub accounts: u64,
    pub transfers: u64,
    pub ledgers: u64,
    /// Books that do not balance (also pushed to the store report's corruptions).
    pub unbalanced: Vec<String>,
    /// The replayed ledger, for inspection.
    pub ledger: Option<MemLedger>,
}

impl LedgerReport {
    pub fn is_clean(&self) -> bool {
        self.store.is_clean() && self.unbalanced.is_empty()
    }
}

/// Verifies the durable ledger in `storage` (open it read-only).
pub fn verify_ledger(
    storage: &mut dyn Storage,
    since: Option<ChainHead>,
) -> Result<LedgerReport, StoreError> {
    let mut replayer = Replayer::new();
    let mut store = verify(storage, &mut replayer, since)?;
    let mut report = LedgerReport {
        store: VerifyReport::default(),
        accounts: 0,
        transfers: 0,
        ledgers: 0,
        unbalanced: Vec::new(),
        ledger: None,
    };
    if store.corruptions.is_empty() {
        if let Some(mem) = replayer.mem.take() {
            report.accounts = mem.accounts().len() as u64;
            report.transfers = mem.transfers().len() as u64;
            let (ledgers, problems) = check_books(&mem);
            report.ledgers = ledgers;
            for p in &problems {
                store.corruptions.push(Corruption {
                    file: "log".into(),
                    offset: 0,
                    seq: Some(store.head.seq),
                    reason: format!("the replayed ledger does not balance: {p}"),
                });
            }
            report.unbalanced = problems;
            report.ledger = Some(mem);
        }
    }
    report.store = store;
    Ok(report)
}

/// Per ledger, debits equal credits (posted and pending); per account, balances equal the sum of
/// its transfers. Returns the number of ledgers and every problem found (at most 20).
pub fn check_books(mem: &MemLedger) -> (u64, Vec<String>) {
    #[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
    struct Sums {
        dp: u128,
        dq: u128,
        cp: u128,
        cq: u128,
    }
    let mut problems = Vec::new();
    let mut by_account: BTreeMap<u128, Sums> = BTreeMap::new();
    let statuses = mem.pending_status_codes();
    let mut overflow = false;
    let mut add = |v: &mut u128, x: u128| match v.checked_add(x) {
        Some(s) => *v = s,
        None => overflow = true,
    };
    for (t, &status) in mem.transfers().iter().zip(&statuses) {
        let voiding = t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
        if t.flags.contains(TransferFlags::PENDING) {
            // Only a transfer still pending holds amounts in the pending balances.
            if status == 1 {
                add(
                    &mut by_account.entry(t.debit_account_id).or_default().dq,
                    t.amount,
                );
                add(
                    &mut by_account.entry(t.credit_account_id).or_default().cq,
                    t.amount,
                );
            }
        } else if !voiding {
            add(
                &mut by_account.entry(t.debit_account_id).or_default().dp,
                t.amount,
            );
            add(
                &mut by_account.entry(t.credit_account_id).or_default().cp,
                t.amount,
            );
        }
    }
    if overflow {
        problems.push("transfer amounts overflow 128 bits".to_string());
    }
    let mut per_ledger: BTreeMap<u32, Sums> = BTreeMap::new();
    for a in mem.accounts() {
        let expected = by_account.get(&a.id).copied().unwrap_or_default();
        let actual = Sums {
            dp: a.debits_posted,
            dq: a.debits_pending,
            cp: a.credits_posted,
            cq: a.credits_pending,
        };
        if expected != actual && problems.len() < 20 {
            problems.push(format!(
                "account {} holds {actual:?}, its transfers add up to {expected:?}",
                a.id
            ));
        }
        let l = per_ledger.entry(a.ledger).or_default();
        for (v, x) in [
            (&mut l.dp, a.debits_posted),
            (&mut l.dq, a.debits_pending),
            (&mut l.cp, a.credits_posted),
            (&mut l.cq, a.credits_pending),
        ] {
            *v = v.wrapping_add(x);
        }
    }
    for (ledger, s) in &per_ledger {
        if (s.dp != s.cp || s.dq != s.cq) && problems.len() < 20 {
            problems.push(format!(
                "ledger {ledger}: debits {}/{} vs credits {}/{} (posted/pending)",
                s.dp, s.dq, s.cp, s.cq
            ));
        }
    }
    (per_ledger.len() as u64, problems)
}
