//! A [`MemLedger`]'s whole state as plain data, and a ledger rebuilt from it: what a checkpoint
//! of the durable ledger holds. The indexes and the expiry queue are derived, so they are rebuilt
//! rather than stored, and every invariant they rely on is checked on the way in: a state that
//! breaks one is refused with the reason, never loaded.

use super::{IdIndex, MemLedger, PendingStatus, NS_PER_S, TIMESTAMP_MAX};
use crate::port::Clock;
use crate::types::*;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Everything a [`MemLedger`] holds that is not derived from something else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemState {
    /// In creation (timestamp) order.
    pub accounts: Vec<Account>,
    /// In creation (timestamp) order.
    pub transfers: Vec<Transfer>,
    /// Per transfer: 0 not pending, 1 pending, 2 posted, 3 voided, 4 expired.
    pub pending_status: Vec<u8>,
    /// Ids that failed with a transient error (they may never be used again), ascending.
    pub failed_ids: Vec<u128>,
    /// The highest timestamp issued.
    pub prepare_timestamp: u64,
}

fn status_code(s: PendingStatus) -> u8 {
    match s {
        PendingStatus::None => 0,
        PendingStatus::Pending => 1,
        PendingStatus::Posted => 2,
        PendingStatus::Voided => 3,
        PendingStatus::Expired => 4,
    }
}

fn status_of(code: u8) -> Option<PendingStatus> {
    Some(match code {
        0 => PendingStatus::None,
        1 => PendingStatus::Pending,
        2 => PendingStatus::Posted,
        3 => PendingStatus::Voided,
        4 => PendingStatus::Expired,
        _ => return None,
    })
}

impl MemLedger {
    /// The pending status codes, parallel to [`MemLedger::transfers`] (see [`MemState`]).
    pub fn pending_status_codes(&self) -> Vec<u8> {
        self.pending_status
            .iter()
            .map(|s| status_code(*s))
            .collect()
    }

    /// The transiently failed ids, ascending.
    pub fn failed_ids_sorted(&self) -> Vec<u128> {
        let mut ids: Vec<u128> = self.failed_ids.ids.iter().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// A copy of the whole state.
    pub fn state(&self) -> MemState {
        MemState {
            accounts: self.accounts.clone(),
            transfers: self.transfers.clone(),
            pending_status: self.pending_status_codes(),
            failed_ids: self.failed_ids_sorted(),
            prepare_timestamp: self.prepare_timestamp,
        }
    }

    /// Makes room for `accounts` accounts and `transfers` transfers in all (vectors and id
    /// indexes), touching the memory now so that neither a reallocation nor a page fault lands
    /// on a later request (as [`MemLedger::with_capacity`], for a ledger that already holds
    /// records, such as one rebuilt from a checkpoint).
    pub fn reserve(&mut self, accounts: usize, transfers: usize) {
        reserve_prefaulted(&mut self.accounts, accounts);
        reserve_prefaulted(&mut self.transfers, transfers);
        reserve_prefaulted(&mut self.pending_status, transfers);
        while self.account_ids.slots.len() < IdIndex::slots_for(accounts) {
            self.account_ids.grow();
        }
        while self.transfer_ids.slots.len() < IdIndex::slots_for(transfers) {
            self.transfer_ids.grow();
        }
    }

    /// Whether a read now would expire a pending transfer (TigerBeetle's pulse), which changes
    /// the state: the durable ledger logs such a pulse before it answers the read.
    pub fn expiry_due(&self) -> bool {
        let Some(&(first, _)) = self.expiry.first() else {
            return false;
        };
        first <= (self.prepare_timestamp + 1).max(self.now())
    }

    /// Runs the pulse now: every pending transfer due expires.
    pub fn expire_due(&mut self) {
        self.pulse();
    }

    /// A ledger holding `state`, taking its timestamps from `clock`. Refuses a state that breaks
    /// an invariant of the ledger (ids, timestamps, statuses, references, balances' sources).
    pub fn from_state(
        clock: Arc<dyn Clock + Send + Sync>,
        state: MemState,
    ) -> Result<MemLedger, String> {
        let MemState {
            accounts,
            transfers,
            pending_status,
            failed_ids,
            prepare_timestamp,
        } = state;
        if pending_status.len() != transfers.len() {
            return Err(format!(
                "{} pending statuses for {} transfers",
                pending_status.len(),
                transfers.len()
            ));
        }
        if accounts.len() >= u32::MAX as usize || transfers.len() >= u32::MAX as usize {
            return Err("more records than positions".into());
        }
        if prepare_timestamp > TIMESTAMP_MAX {
            return Err("prepare timestamp beyond 2^63".into());
        }
        let mut ledger = MemLedger::new(clock);
        ledger.account_ids = IdIndex::with_capacity(accounts.len());
        ledger.transfer_ids = IdIndex::with_capacity(transfers.len());
        check_increasing(
            accounts.iter().map(|a| a.timestamp),
            prepare_timestamp,
            "account",
        )?;
        check_increasing(
            transfers.iter().map(|t| t.timestamp),
            prepare_timestamp,
            "transfer",
        )?;
        for (position, a) in accounts.iter().enumerate() {
            if a.id == 0 || a.id == u128::MAX {
                return Err(format!("account at {position} has a reserved id"));
            }
            let index = &ledger.account_ids;
            if index.get(a.id, |p| accounts[p as usize].id).is_some() {
                return Err(format!("account id {} twice", a.id));
            }
            ledger
                .account_ids
                .insert(a.id, position as u32, |p| accounts[p as usize].id);
        }
        ledger.accounts = accounts;
        let mut statuses = Vec::with_capacity(transfers.len());
        let mut expiry = BTreeSet::new();
        for (position, (t, &code)) in transfers.iter().zip(&pending_status).enumerate() {
            let status = status_of(code)
                .ok_or_else(|| format!("transfer {} has status code {code}", t.id))?;
            let pending = t.flags.contains(TransferFlags::PENDING);
            if pending == (status == PendingStatus::None) {
                return Err(format!(
                    "transfer {} has status {status:?} but flags {:?}",
                    t.id, t.flags
                ));
            }
            if t.id == 0 || t.id == u128::MAX {
                return Err(format!("transfer at {position} has a reserved id"));
            }
            if ledger
                .transfer_ids
                .get(t.id, |p| transfers[p as usize].id)
                .is_some()
            {
                return Err(format!("transfer id {} twice", t.id));
            }
            for account in [t.debit_account_id, t.credit_account_id] {
                if ledger.account_position(account).is_none() {
                    return Err(format!("transfer {} names unknown account {account}", t.id));
                }
            }
            ledger
                .transfer_ids
                .insert(t.id, position as u32, |p| transfers[p as usize].id);
            if status == PendingStatus::Pending && t.timeout > 0 {
                let expires_at = t
                    .timestamp
                    .checked_add(u64::from(t.timeout) * NS_PER_S)
                    .ok_or_else(|| format!("transfer {} expires beyond 2^64", t.id))?;
                expiry.insert((expires_at, position as u32));
            }
            statuses.push(status);
        }
        ledger.transfers = transfers;
        ledger.pending_status = statuses;
        ledger.expiry = expiry;
        if failed_ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err("failed ids not ascending".into());
        }
        for id in failed_ids {
            ledger.failed_ids.insert(id);
        }
        ledger.prepare_timestamp = prepare_timestamp;
        Ok(ledger)
    }
}

fn reserve_prefaulted<T: Copy + Default>(v: &mut Vec<T>, capacity: usize) {
    if capacity <= v.len() {
        return;
    }
    let len = v.len();
    v.reserve(capacity - len);
    v.resize(capacity, T::default());
    v.truncate(len);
}

fn check_increasing(
    timestamps: impl Iterator<Item = u64>,
    prepare_timestamp: u64,
    what: &str,
) -> Result<(), String> {
    let mut last = 0;
    for ts in timestamps {
        if ts <= last {
            return Err(format!("{what} timestamps not increasing at {ts}"));
        }
        last = ts;
    }
    if last > prepare_timestamp {
        return Err(format!(
            "{what} timestamp {last} beyond the prepare timestamp"
        ));
    }
    Ok(())
}
