//! The journal replay in bounded memory: every transfer folded into the balances it should
//! produce, compared with the accounts' stored balances, with memory bounded by one partition
//! and the accounts that break, not by the size of the ledger.
//!
//! Accounts and transfers arrive as a stream, in any number. Nothing per account is kept in
//! memory while they do: each account and each transfer's effects on its two accounts are
//! written as small records to one of `P` partitions by a hash of the account id, and the
//! pending transfers and their posts or voids to partitions by the pending transfer's id (a post
//! names its pending transfer, whose amount and accounts decide what it undoes). [`Replay::finish`]
//! then joins each pending partition (emitting the undo and post effects to the account
//! partitions), and loads each account partition alone, applies its effects, and keeps only the
//! accounts whose balances differ from their replay. Where the records go is the [`Spill`]: in
//! memory for small ledgers and the simulator, files on disk for `acme recon` at scale.
//!
//! The rules are the ones TigerBeetle applies, recomputed here with this module's own
//! arithmetic (an oracle does not share the code it checks): a plain transfer adds to posted
//! debits and credits, a pending one to pending ones; a post or void takes the pending amount
//! off the pending transfer's accounts and, for a post, adds the amount posted to their posted
//! sides. A post of a pending transfer the journal does not hold, or a pending transfer with a
//! timeout still open at the end (it may have expired, which leaves no transfer), makes its
//! accounts unverifiable: they are left out of the comparison, as the ledger cannot say.

use super::combine::Combiner;
use super::ledger::{AccountFinding, Sums};
use acme_ledger::{Account, Transfer, TransferFlags};
use std::collections::BTreeMap;

/// The three kinds of partition a replay writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Set {
    /// Accounts (id, ledger, stored balances), by account id.
    Accounts,
    /// Effects on balances and unverifiable marks, by account id.
    Effects,
    /// Pending transfers and their posts and voids, by pending transfer id.
    Pending,
}

/// Where a replay's records go: appended per (set, partition), read back once in order.
pub trait Spill {
    fn append(&mut self, set: Set, part: u32, record: &[u8]) -> Result<(), String>;
    /// Calls `f` with every record of the partition, in the order appended (records are given
    /// back exactly as appended); the partition may be dropped afterwards.
    fn read(
        &mut self,
        set: Set,
        part: u32,
        f: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String>;
}

/// A spill in memory (the simulator, tests, small exports).
#[derive(Default)]
pub struct MemSpill {
    parts: BTreeMap<(Set, u32), Vec<Vec<u8>>>,
}

impl Spill for MemSpill {
    fn append(&mut self, set: Set, part: u32, record: &[u8]) -> Result<(), String> {
        self.parts
            .entry((set, part))
            .or_default()
            .push(record.to_vec());
        Ok(())
    }

    fn read(
        &mut self,
        set: Set,
        part: u32,
        f: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        for r in self.parts.remove(&(set, part)).unwrap_or_default() {
            f(&r)?;
        }
        Ok(())
    }
}

/// Which balance an effect changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Field {
    DebitsPending = 0,
    DebitsPosted = 1,
    CreditsPending = 2,
    CreditsPosted = 3,
    /// Not a balance: the account cannot be verified from the journal.
    Unverifiable = 4,
}

const TAG_OPEN: u8 = 1;
const TAG_RESOLVE: u8 = 2;

/// The partition of an id: a mix of its bits (account ids are structured; their low bits alone
/// would put whole kinds of account in one partition).
pub fn partition_of(id: u128, parts: u32) -> u32 {
    let x = (id as u64) ^ ((id >> 64) as u64).rotate_left(29);
    let h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 32) % u64::from(parts.max(1))) as u32
}

/// How many partitions for about `accounts` accounts: at most [`ACCOUNTS_PER_PARTITION`] each
/// (the most a partition holds in memory at once), at least one.
pub fn partitions_for(accounts: u64) -> u32 {
    accounts
        .div_ceil(ACCOUNTS_PER_PARTITION)
        .clamp(1, u64::from(PARTITIONS_MAX)) as u32
}

/// The accounts a partition is sized for: about 150 bytes each in memory when it is loaded.
pub const ACCOUNTS_PER_PARTITION: u64 = 1 << 19;
/// The most partitions (open files, for a spill on disk, are twice this).
pub const PARTITIONS_MAX: u32 = 256;

fn get_u128(b: &[u8], at: usize) -> Result<u128, String> {
    b.get(at..at + 16)
        .and_then(|s| <[u8; 16]>::try_from(s).ok())
        .map(u128::from_le_bytes)
        .ok_or_else(|| format!("spill record of {} bytes is short", b.len()))
}

fn get_byte(b: &[u8], at: usize) -> Result<u8, String> {
    b.get(at)
        .copied()
        .ok_or_else(|| format!("spill record of {} bytes is short", b.len()))
}

/// The streaming journal replay. See the module documentation.
pub struct Replay {
    spill: Box<dyn Spill>,
    parts: u32,
    buf: Vec<u8>,
    /// Effects are summed here before they are spilled (see `combine`).
    combiner: Combiner,
}

impl Replay {
    /// A replay into `spill` with `parts` partitions (see [`partitions_for`]).
    pub fn new(spill: Box<dyn Spill>, parts: u32) -> Replay {
        Replay {
            spill,
            parts: parts.max(1),
            buf: Vec::with_capacity(128),
            combiner: Combiner::new(),
        }
    }

    fn put(&mut self, set: Set, key: u128) -> Result<(), String> {
        let part = partition_of(key, self.parts);
        self.spill.append(set, part, &self.buf)
    }

    fn effect(&mut self, id: u128, field: Field, amount: i128) -> Result<(), String> {
        match self.combiner.add(id, field as u8, amount) {
            Some((id, field, amount)) => self.spill_effect(id, field, amount),
            None => Ok(()),
        }
    }

    fn spill_effect(&mut self, id: u128, field: u8, amount: i128) -> Result<(), String> {
        self.buf.clear();
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.buf.push(field);
        self.buf.extend_from_slice(&amount.to_le_bytes());
        self.put(Set::Effects, id)
    }

    pub fn account(&mut self, a: &Account) -> Result<(), String> {
        self.buf.clear();
        self.buf.extend_from_slice(&a.id.to_le_bytes());
        self.buf.extend_from_slice(&a.ledger.to_le_bytes());
        for v in [
            a.debits_pending,
            a.debits_posted,
            a.credits_pending,
            a.credits_posted,
        ] {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.put(Set::Accounts, a.id)
    }

    pub fn transfer(&mut self, t: &Transfer) -> Result<(), String> {
        let amount = t.amount as i128;
        let f = t.flags;
        let post = f.contains(TransferFlags::POST_PENDING_TRANSFER);
        if post || f.contains(TransferFlags::VOID_PENDING_TRANSFER) {
            self.buf.clear();
            self.buf.push(TAG_RESOLVE);
            for v in [
                t.pending_id,
                t.amount,
                t.debit_account_id,
                t.credit_account_id,
            ] {
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
            self.buf.push(post as u8);
            return self.put(Set::Pending, t.pending_id);
        }
        if f.contains(TransferFlags::PENDING) {
            self.effect(t.debit_account_id, Field::DebitsPending, amount)?;
            self.effect(t.credit_account_id, Field::CreditsPending, amount)?;
            self.buf.clear();
            self.buf.push(TAG_OPEN);
            for v in [t.id, t.amount, t.debit_account_id, t.credit_account_id] {
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
            self.buf.push((t.timeout > 0) as u8);
            return self.put(Set::Pending, t.id);
        }
        self.effect(t.debit_account_id, Field::DebitsPosted, amount)?;
        self.effect(t.credit_account_id, Field::CreditsPosted, amount)
    }

    /// Joins the pending partitions, then compares every account partition: the accounts whose
    /// balances differ from the replay of their transfers.
    pub fn finish(mut self) -> Result<Vec<AccountFinding>, String> {
        for part in 0..self.parts {
            self.join_pending(part)?;
        }
        for (id, field, amount) in self.combiner.drain() {
            self.spill_effect(id, field, amount)?;
        }
        let mut found = Vec::new();
        for part in 0..self.parts {
            self.compare(part, &mut found)?;
        }
        found.sort_by_key(|f| f.id);
        Ok(found)
    }

    /// One pending partition: each post or void against the pending transfer it names.
    fn join_pending(&mut self, part: u32) -> Result<(), String> {
        // (amount, debit, credit, times out) of the pending transfers still open.
        let mut open: BTreeMap<u128, (u128, u128, u128, bool)> = BTreeMap::new();
        let mut out: Vec<(u128, Field, i128)> = Vec::new();
        // The partition's records are read first (the spill cannot be written while it is
        // read): memory for one pending partition, a small share of the journal.
        let mut records: Vec<Vec<u8>> = Vec::new();
        self.spill.read(Set::Pending, part, &mut |r| {
            records.push(r.to_vec());
            Ok(())
        })?;
        for r in records {
            let tag = get_byte(&r, 0)?;
            let id = get_u128(&r, 1)?;
            let amount = get_u128(&r, 17)?;
            let debit = get_u128(&r, 33)?;
            let credit = get_u128(&r, 49)?;
            let flag = get_byte(&r, 65)? != 0;
            match tag {
                TAG_OPEN => {
                    open.insert(id, (amount, debit, credit, flag));
                }
                TAG_RESOLVE => match open.remove(&id) {
                    Some((pending, pd, pc, _)) => {
                        out.push((pd, Field::DebitsPending, -(pending as i128)));
                        out.push((pc, Field::CreditsPending, -(pending as i128)));
                        if flag {
                            out.push((pd, Field::DebitsPosted, amount as i128));
                            out.push((pc, Field::CreditsPosted, amount as i128));
                        }
                    }
                    None => {
                        out.push((debit, Field::Unverifiable, 0));
                        out.push((credit, Field::Unverifiable, 0));
                    }
                },
                other => return Err(format!("spill record with unknown tag {other}")),
            }
            if out.len() >= 4096 {
                self.emit(&mut out)?;
            }
        }
        for (_, (_, d, c, times_out)) in open {
            if times_out {
                out.push((d, Field::Unverifiable, 0));
                out.push((c, Field::Unverifiable, 0));
            }
        }
        self.emit(&mut out)
    }

    fn emit(&mut self, out: &mut Vec<(u128, Field, i128)>) -> Result<(), String> {
        for (id, field, amount) in out.drain(..) {
            self.effect(id, field, amount)?;
        }
        Ok(())
    }

    /// One account partition: its accounts in memory, its effects streamed onto them.
    fn compare(&mut self, part: u32, found: &mut Vec<AccountFinding>) -> Result<(), String> {
        #[derive(Clone, Copy)]
        struct Row {
            id: u128,
            ledger: u32,
            stored: Sums,
            replayed: Sums,
            unverifiable: bool,
        }
        let mut rows: Vec<Row> = Vec::new();
        self.spill.read(Set::Accounts, part, &mut |r| {
            let s = |i: usize| get_u128(r, 20 + 16 * i).map(|v| v as i128);
            let ledger = r
                .get(16..20)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes)
                .ok_or("spill account record is short")?;
            rows.push(Row {
                id: get_u128(r, 0)?,
                ledger,
                stored: Sums {
                    debits_pending: s(0)?,
                    debits_posted: s(1)?,
                    credits_pending: s(2)?,
                    credits_posted: s(3)?,
                },
                replayed: Sums::default(),
                unverifiable: false,
            });
            Ok(())
        })?;
        // A later record of the same account wins (a scan that met it twice). The rows are
        // 160 bytes: an order of (id, position) is sorted, not the rows (a sort of the rows was a
        // seventh of the time, in moves), the rows are put in that order in place, and the
        // effects are looked up in the ids alone (ten to a cache line, not one).
        let mut keys: Vec<(u128, usize)> =
            rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut order: Vec<usize> = keys.into_iter().map(|k| k.1).collect();
        permute(&mut rows, &mut order);
        rows.dedup_by_key(|r| r.id);
        let ids: Vec<u128> = rows.iter().map(|r| r.id).collect();
        self.spill.read(Set::Effects, part, &mut |r| {
            let id = get_u128(r, 0)?;
            let field = get_byte(r, 16)?;
            let amount = get_u128(r, 17)? as i128;
            // Effects on ids that are not accounts (a journal with a transfer the accounts do
            // not explain) have nothing to be compared with.
            let Ok(i) = ids.binary_search(&id) else {
                return Ok(());
            };
            let row = &mut rows[i];
            let s = &mut row.replayed;
            let sum = match field {
                0 => &mut s.debits_pending,
                1 => &mut s.debits_posted,
                2 => &mut s.credits_pending,
                3 => &mut s.credits_posted,
                4 => {
                    row.unverifiable = true;
                    return Ok(());
                }
                other => return Err(format!("spill effect with unknown field {other}")),
            };
            // A journal whose amounts add up past any balance (a damaged export) is an error the
            // user is shown, not an overflow.
            *sum = sum.checked_add(amount).ok_or_else(|| {
                format!("account {id}: the journal's amounts on field {field} overflow 128 bits")
            })?;
            Ok(())
        })?;
        for r in rows {
            if !r.unverifiable && r.replayed != r.stored {
                found.push(AccountFinding {
                    id: r.id,
                    ledger: r.ledger,
                    sums: r.stored,
                    journal: Some(r.replayed),
                });
            }
        }
        Ok(())
    }
}

/// Puts `v` in the order `order` names (`v[k]` becomes the old `v[order[k]]`), in place, one
/// cycle of the permutation at a time; `order` is used up.
fn permute<T: Copy>(v: &mut [T], order: &mut [usize]) {
    assert_eq!(v.len(), order.len());
    const DONE: usize = usize::MAX;
    for start in 0..v.len() {
        if order[start] == DONE {
            continue;
        }
        let first = v[start];
        let mut k = start;
        loop {
            let from = std::mem::replace(&mut order[k], DONE);
            assert!(from != DONE, "order is not a permutation");
            if from == start {
                v[k] = first;
                break;
            }
            v[k] = v[from];
            k = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acme_ledger::chart::{self, AccountKind};

    #[test]
    fn permute_puts_values_where_the_order_says() {
        let mut x: u64 = 3;
        for n in [0usize, 1, 2, 7, 1000] {
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                order.swap(i, (x >> 33) as usize % (i + 1));
            }
            let v: Vec<u64> = (0..n as u64).map(|i| i * 10).collect();
            let expected: Vec<u64> = order.iter().map(|&i| v[i]).collect();
            let mut w = v.clone();
            permute(&mut w, &mut order.clone());
            assert_eq!(w, expected, "n {n}");
        }
    }

    fn t(
        id: u128,
        dr: u128,
        cr: u128,
        amount: u128,
        flags: TransferFlags,
        pending: u128,
    ) -> Transfer {
        Transfer {
            id,
            debit_account_id: dr,
            credit_account_id: cr,
            amount,
            pending_id: pending,
            ledger: 1,
            code: 1,
            flags,
            ..Transfer::default()
        }
    }

    fn replay(accounts: &[Account], transfers: &[Transfer], parts: u32) -> Vec<AccountFinding> {
        let mut r = Replay::new(Box::new(MemSpill::default()), parts);
        for tr in transfers {
            r.transfer(tr).unwrap();
        }
        for a in accounts {
            r.account(a).unwrap();
        }
        r.finish().unwrap()
    }

    #[test]
    fn pending_posts_and_voids_replay_to_the_balances_and_an_edit_is_found() {
        let bank = chart::account(AccountKind::Bank, 1, 0).id;
        let m = chart::account(AccountKind::MemberCash, 1, 7).id;
        let journal = [
            t(1, bank, m, 500, TransferFlags::NONE, 0),
            t(2, m, bank, 200, TransferFlags::PENDING, 0),
            t(3, m, bank, 150, TransferFlags::POST_PENDING_TRANSFER, 2),
            t(4, m, bank, 50, TransferFlags::PENDING, 0),
            t(5, m, bank, 50, TransferFlags::VOID_PENDING_TRANSFER, 4),
            t(6, m, bank, 30, TransferFlags::PENDING, 0),
        ];
        let acc = |id, dq, dp, cq, cp| Account {
            id,
            ledger: 1,
            debits_pending: dq,
            debits_posted: dp,
            credits_pending: cq,
            credits_posted: cp,
            ..Account::default()
        };
        let good = [acc(bank, 0, 500, 30, 150), acc(m, 30, 150, 0, 500)];
        for parts in [1, 3, 16] {
            assert!(replay(&good, &journal, parts).is_empty(), "{parts}");
            let mut bad = good;
            bad[1].credits_posted += 1;
            let found = replay(&bad, &journal, parts);
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].id, m);
            assert_eq!(found[0].journal.unwrap().credits_posted, 500);
        }
    }

    /// A scan that met an account twice (a page re-read while it moved) sends two records: the
    /// later is the account as it stands, whatever the partition's order.
    #[test]
    fn the_later_record_of_an_account_is_the_one_compared() {
        let (a, b) = (21, 22);
        let journal = [t(1, a, b, 10, TransferFlags::NONE, 0)];
        let acc = |id, dp, cp| Account {
            id,
            ledger: 1,
            debits_posted: dp,
            credits_posted: cp,
            ..Account::default()
        };
        let (a_old, a_now, b_now) = (acc(a, 3, 0), acc(a, 10, 0), acc(b, 0, 10));
        for parts in [1, 2, 5] {
            assert!(replay(&[a_old, b_now, a_now], &journal, parts).is_empty());
            let found = replay(&[a_now, b_now, a_old], &journal, parts);
            assert_eq!(found.iter().map(|f| f.id).collect::<Vec<_>>(), vec![a]);
            assert_eq!(found[0].sums.debits_posted, 3);
        }
    }

    #[test]
    fn a_post_without_its_pending_makes_its_accounts_unverifiable() {
        let (a, b, c) = (11, 12, 13);
        let journal = [
            t(1, a, b, 10, TransferFlags::POST_PENDING_TRANSFER, 99),
            t(2, a, c, 5, TransferFlags::NONE, 0),
        ];
        let acc = |id, dp, cp| Account {
            id,
            ledger: 1,
            debits_posted: dp,
            credits_posted: cp,
            ..Account::default()
        };
        // a and b cannot be checked; c can, and is wrong.
        let found = replay(&[acc(a, 1, 0), acc(b, 0, 1), acc(c, 0, 6)], &journal, 4);
        assert_eq!(found.iter().map(|f| f.id).collect::<Vec<_>>(), vec![c]);
    }

    #[test]
    fn partitions_spread_chart_ids() {
        let mut seen = [0u32; 8];
        for m in 0..8000 {
            seen[partition_of(chart::member_cash(m), 8) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 700), "{seen:?}");
        assert_eq!(partitions_for(0), 1);
        assert_eq!(partitions_for(25_000_000), 48);
    }
}
