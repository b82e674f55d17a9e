//! `MemLedger`: TigerBeetle 0.16.78's state machine, embedded in the process and kept in memory.
//!
//! It is a transcription of `src/state_machine.zig` of that release (`execute_create`,
//! `create_account`, `create_transfer`, `post_or_void_pending_transfer`, the `*_exists`
//! comparisons, `execute_expire_pending_transfers`, the query-filter validation), with the LSM
//! forest replaced by a few flat arrays. Where the Zig code and the documentation disagree the
//! code wins; every such place is listed below.
//!
//! # Data structures, and why
//!
//! - `accounts: Vec<Account>` and `transfers: Vec<Transfer>` hold the records exactly as
//!   TigerBeetle stores them, in creation order. Creation order is also timestamp order (imported
//!   events must not regress, and every non-imported batch is stamped after everything before
//!   it), so the vectors double as TigerBeetle's timestamp-keyed object trees: range queries
//!   binary-search them and `accounts.exists(timestamp)` is a binary search.
//! - `account_ids` / `transfer_ids` (`IdIndex`) map an id to its position in the vector. They
//!   are open-addressing tables (linear probing, backward-shift deletion, load factor at most
//!   1/2) of 8-byte slots holding only the position and a 32-bit hash tag; the id itself is read
//!   from the record. At one million accounts that is 16 MiB of index against 69 MiB for an
//!   `FxHashMap<u128, u32>` (32-byte buckets plus control bytes, 2^21 buckets), which keeps the
//!   whole ledger at about 150 bytes per account (128 of them the record itself; the map would
//!   have made it 203), and a probe touches one cache line. The tables are never iterated, so
//!   their order cannot leak into results.
//! - `failed_ids` holds the ids of transfers that failed with a *transient* error (TigerBeetle's
//!   "orphaned ids"), so that a retry with the same id gets `id_already_failed`. It is an
//!   `FxHashSet` behind a wrapper that only offers `contains` / `insert`.
//! - `pending_status: Vec<PendingStatus>` is one byte per transfer, parallel to `transfers`
//!   (TigerBeetle's `transfers_pending` groove): none / pending / posted / voided / expired.
//! - `expiry: BTreeSet<(expires_at, position)>` is TigerBeetle's `expires_at` index: the pending
//!   transfers with a timeout that are still pending, ordered by expiry and then by creation, which
//!   is the order in which TigerBeetle's pulse expires them.
//! - Linked chains are rolled back with an undo log written only while a chain is open: the
//!   previous value of every account record touched, every pending status changed and every
//!   expiry entry removed, plus the vector lengths at the start of the chain (records created in
//!   the chain are truncated away and their ids removed from the index). Events outside a chain
//!   write no undo entries, so the common path costs nothing extra.
//!
//! Nothing is allocated per transfer apart from amortised vector/table growth and B-tree nodes for
//! pending transfers with a timeout. The queries (`get_account_transfers`, `query_transfers`,
//! `query_accounts`) scan the records linearly within the binary-searched timestamp range; only
//! lookups by id are O(1). That is fine for the platform's use (reports and tests) but is not how
//! TigerBeetle answers them (it has secondary indexes).
//!
//! # Performance
//!
//! With a million accounts nothing fits in the caches, so `create_transfers` is bound by memory
//! latency: per transfer, two account-index slots, two account records (three cache lines each:
//! the vector is only 16-byte aligned, so a 128-byte record straddles three lines) and one
//! transfer-index slot. Like TigerBeetle, execution is split in a prefetch phase and an execute
//! phase, per chunk of 256 events: the prefetch pass resolves both accounts of every event
//! (accounts cannot appear or disappear during `create_transfers`) and reads every cache line the
//! execution will need, in short loops of independent loads so the CPU keeps many misses in
//! flight; the execute pass then runs on data in L1/L2. (A whole-batch prefetch does not work:
//! 8189 events touch about 4 MiB, more than L2, and the shared L3 of a VM does not keep it.)
//!
//! The other cost is the kernel zeroing fresh pages as `transfers` grows (128 bytes a transfer;
//! in a VM a page fault costs microseconds). [`MemLedger::with_capacity`] therefore allocates
//! *and touches* its vectors up front, as TigerBeetle allocates all its memory at startup; with
//! it, the `perf` test measures about 5 million transfers per second on 1 million accounts in
//! batches of 8189 on a 2-vCPU VM (and about 2 million without pre-sizing, half of that time in
//! the kernel's page-fault path). [`MemLedger::heap_bytes`] reports the memory held.
//!
//! # Time
//!
//! TigerBeetle stamps a request with `prepare_timestamp = max(prepare_timestamp + 1, realtime)
//! + event_count` and gives event `i` of `n` the timestamp `prepare_timestamp - n + i + 1`.
//! MemLedger does the same with `realtime = clock.now_ns()`, so timestamps strictly increase
//! across calls even if the clock stalls or goes backwards. Only the `create_*` calls (and the
//! pulse below) advance the ledger's time; lookups and queries do not (in TigerBeetle every
//! request, queries included, advances `prepare_timestamp` by at least one nanosecond; that
//! difference is unobservable except through the exact timestamp values). Timestamps must stay
//! below 2^63 (TigerBeetle's `TimestampRange`); a clock beyond that is a bug and panics.
//!
//! Expiry: a TigerBeetle primary sends itself a `pulse` operation whenever the earliest pending
//! expiry is due, and the pulse releases the pending amounts. MemLedger runs that pulse at the
//! start of every call (queries included, so that a lookup after the deadline sees the released
//! balances): with `P = max(prepare_timestamp + 1, now)`, every still-pending transfer with
//! `timestamp + timeout * 10^9 <= P` expires, in `(expires_at, timestamp)` order, each expiry
//! taking one timestamp from `P` on. A transfer that expires between the pulse and the moment a
//! later event in the batch posts or voids it is *not* pulsed yet, so (as in TigerBeetle) its
//! amount still counts as pending for the rest of that batch, and the post/void gets
//! `pending_transfer_expired` from the explicit `expires_at <= timestamp` check of
//! `post_or_void_pending_transfer`.
//!
//! # Surprising TigerBeetle behaviour (reproduced on purpose)
//!
//! - Posting: `amount == u128::MAX` posts the full pending amount; **`amount == 0` posts zero**
//!   (the pre-0.16 meaning "0 = full amount" is gone), releasing the whole reservation. Any other
//!   amount up to the pending amount is a partial post; above it is
//!   `exceeds_pending_transfer_amount`.
//! - Voiding: `amount == 0` means the pending amount; any other amount must equal it
//!   (`exceeds_pending_transfer_amount` if larger, `pending_transfer_has_different_amount` if
//!   smaller). Both amount checks come *before* the posted/voided/expired status checks.
//! - Balancing transfers: `amount` is a maximum and `0` means zero (not "as much as possible");
//!   a balancing transfer that ends up moving 0 succeeds with `ok` and records amount 0. The
//!   balancing limit ignores the account's `*_must_not_exceed_*` flags: balancing_debit clamps
//!   to `credits_posted - (debits_posted + debits_pending)` (saturating) regardless of flags.
//! - Zero amounts are allowed everywhere (`amount_must_not_be_zero` is deprecated).
//! - `exists` for a post/void compares against the *stored* transfer: zero `debit_account_id`,
//!   `credit_account_id`, `ledger`, `code` and zero user data in the retry match whatever was
//!   inherited from the pending transfer. For a post, a retry with `amount == u128::MAX` is
//!   `exists` only if the original post posted the full amount; any other amount must equal the
//!   posted amount exactly. The docs say "the transfer amount must be greater than or equal to the
//!   pending amount" for a full post; the code says a retry with e.g. `pending + 1` is
//!   `exists_with_different_amount`. MemLedger follows the code.
//! - `exists` for a balancing transfer: a retry is `exists` as long as its amount is `>=` the
//!   amount actually moved.
//! - `exists_with_different_flags` compares the whole flags word, `linked` included, and for
//!   accounts also `closed`: retrying `create_accounts` for an account that has since been closed
//!   yields `exists_with_different_flags`.
//! - Transient errors (`debit_account_not_found`, `credit_account_not_found`,
//!   `pending_transfer_not_found`, `exceeds_credits`, `exceeds_debits`,
//!   `debit_account_already_closed`, `credit_account_already_closed`) burn the id, even inside a
//!   linked chain that is rolled back and even later in the same batch: any later transfer with
//!   that id gets `id_already_failed` (after the `exists` checks, which cannot match since the id
//!   was never created). `create_accounts` has no transient errors.
//! - Linked chains: the last event of a batch, if it has `linked`, always gets
//!   `linked_event_chain_open`, even when its chain had already failed; the other events of that
//!   open chain get `linked_event_failed` (they are rolled back).
//! - `create_accounts` accepts `flags.closed` (an account may be created closed) and
//!   `flags.history` (which MemLedger ignores, see below).
//! - The `debits_must_not_exceed_credits` check counts pending debits
//!   (`debits_pending + debits_posted + amount > credits_posted`) but not pending credits; posting
//!   and voiding never check limits (they cannot make them worse).
//! - Closed accounts: a closing transfer must be pending; a closed account accepts no transfer
//!   except voids of its pending transfers; voiding (or expiry of) the closing transfer re-opens
//!   it. Posting a closing transfer is therefore impossible (`*_account_already_closed`).
//! - Imported transfers: the docs say the accounts' timestamps must be "less than or equal to"
//!   the transfer's; the code requires strictly greater (`imported_event_timestamp_must_postdate_*`
//!   when equal). MemLedger follows the code.
//! - Overflow checks run in the order pending, posted, pending + posted, timeout, and the posted
//!   ones apply to pending transfers too: a pending transfer fails with `overflows_debits_posted`
//!   if `debits_posted + amount` would overflow, although it does not touch `debits_posted`.
//! - `linked_event_chain_open` takes precedence over everything, even `id_must_not_be_zero`.
//! - A comment in `create_transfer_exists` says a balancing amount of zero means "maxInt"; the
//!   code treats it as zero. MemLedger follows the code.
//! - An imported post/void whose timestamp precedes its pending transfer trips an assertion in
//!   TigerBeetle (`p.timestamp < timestamp`) before `imported_event_timestamp_must_not_regress`
//!   would be returned; MemLedger returns `imported_event_timestamp_must_not_regress`. Checked
//!   on 0.16.78: the replica dies (`panic: reached unreachable code`) on such a request, and as
//!   every replica executes the same prepare, a whole cluster would. So a client can stop a
//!   cluster with one malformed import; the platform never imports.
//! - Retrying a linked chain that was applied (its reply lost to a timeout): the first event is
//!   `exists`, which is a failure as far as the chain is concerned, so every other event of the
//!   chain is `linked_event_failed` (and nothing changes). A retried lone event is `exists`.
//!   Seen in the cluster fault test (`tools/tests/tigerbeetle.rs`); MemLedger does the same.
//! - `imported_event_timestamp_must_not_regress` compares with the newest account / transfer of
//!   the whole cluster, whoever created it: on a shared cluster, whether an import regresses
//!   depends on other users' records.
//!
//! # Checked against TigerBeetle
//!
//! `ledger/tigerbeetle/tests/conformance` applies seeded random operation streams to MemLedger
//! and to a real TigerBeetle 0.16.78 and compares every result, account and transfer after every
//! batch, and the queries at the end (timestamps aside): in the default run 32 seeds, about
//! 228,000 events, zero differences, and every result code of both operations but four
//! (`overflows_timeout`, which needs a clock near 2^63 ns, and three that only an import passing
//! the regression check reaches). Not covered, because the outcome would depend on the cluster's
//! clock or on other users of the cluster rather than on the stream: imported events that pass
//! validation, a post or void racing its pending transfer's expiry, exact timestamp values. A
//! difference fails the test with the seed and a shortest sequence that shows it.
//!
//! Not a ledger matter but found on the way (see `acme_ledger_tigerbeetle`): TigerBeetle's client
//! packs a newly queued request into the *oldest* waiting request with room, so more than one
//! request waiting behind the one in flight can be applied out of order.
//!
//! # Deliberate differences and omissions
//!
//! - No `get_account_balances`, no `get_change_events`: account history (`flags.history`) and
//!   the account-events groove are not kept.
//! - Importing is implemented in full (`imported_event_*`, `timestamp_must_be_zero`,
//!   must-not-regress against the newest account/transfer and any record with that timestamp,
//!   must-postdate the accounts, timeout must be zero). Imported records keep their own
//!   timestamps and do not move the ledger's clock, as in TigerBeetle.
//! - Invalid query filters return an empty result (as TigerBeetle does); `limit` is capped at
//!   [`QUERY_RESULTS_MAX`]. `lookup_*` calls with more than [`BATCH_EVENTS_MAX`] ids are
//!   rejected with [`LedgerError::BatchTooLarge`] (TigerBeetle's client would reject them too).
//! - Time advances only on `create_*` and pulses (see *Time*). A pulse expires every due transfer
//!   at once and takes one timestamp per expiry; TigerBeetle's pulse expires at most 8189
//!   transfers (and pulses again right after), expiring those due up to its own timestamp, which
//!   is 8189 ns ahead of its start. Only exact timestamp values can tell the difference.
//! - Pulses happen at the start of each call, not on a timer: with no calls, nothing expires
//!   (nobody can observe it either).

use crate::port::{Clock, Ledger, LedgerError};
use crate::types::*;
use rustc_hash::FxHashSet;
use std::collections::BTreeSet;
use std::sync::Arc;

#[path = "mem_state.rs"]
mod state;
pub use state::MemState;

/// TigerBeetle's `TimestampRange.timestamp_max`: the top bit of a timestamp is its tombstone bit.
const TIMESTAMP_MAX: u64 = (1 << 63) - 1;
const NS_PER_S: u64 = 1_000_000_000;

/// The embedded ledger. See the module documentation.
pub struct MemLedger {
    clock: Arc<dyn Clock + Send + Sync>,
    accounts: Vec<Account>,
    account_ids: IdIndex,
    transfers: Vec<Transfer>,
    transfer_ids: IdIndex,
    /// Parallel to `transfers`.
    pending_status: Vec<PendingStatus>,
    /// Ids of transfers that failed with a transient error.
    failed_ids: IdSet,
    /// `(expires_at, position in transfers)` of every pending transfer with a timeout that is
    /// still pending.
    expiry: BTreeSet<(u64, u32)>,
    /// The highest timestamp issued (TigerBeetle's `prepare_timestamp`).
    prepare_timestamp: u64,
    /// Open linked chain, if any.
    scope: Option<Scope>,
    undo: Vec<Undo>,
    /// Per event of the current `create_transfers` batch: the positions of its debit and credit
    /// accounts ([`NOT_FOUND`] if absent), resolved by the prefetch pass. Reused across batches.
    prefetched: Vec<[u32; 2]>,
}

/// A position that is not there.
const NOT_FOUND: u32 = u32::MAX;
const PREFETCH_CHUNK: usize = 256;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
enum PendingStatus {
    #[default]
    None,
    Pending,
    Posted,
    Voided,
    Expired,
}

#[derive(Clone, Copy, Debug)]
struct Scope {
    accounts_len: usize,
    transfers_len: usize,
}

#[derive(Clone, Copy, Debug)]
enum Undo {
    Account {
        position: u32,
        before: Account,
    },
    PendingStatus {
        position: u32,
        before: PendingStatus,
    },
    ExpiryRemoved {
        expires_at: u64,
        position: u32,
    },
}

impl MemLedger {
    /// An empty ledger that grows on demand, taking its timestamps from `clock`.
    pub fn new(clock: Arc<dyn Clock + Send + Sync>) -> Self {
        MemLedger::with_capacity(clock, 0, 0)
    }

    /// A ledger with room for `accounts` accounts and `transfers` transfers before any
    /// reallocation (vectors and id indexes). The memory is allocated *and written once* here
    /// (about 150 bytes per account and 145 per transfer), so that the page faults happen now
    /// rather than on the hot path: ask only for what will be used.
    pub fn with_capacity(
        clock: Arc<dyn Clock + Send + Sync>,
        accounts: usize,
        transfers: usize,
    ) -> Self {
        MemLedger {
            clock,
            accounts: prefaulted(accounts),
            account_ids: IdIndex::with_capacity(accounts),
            transfers: prefaulted(transfers),
            transfer_ids: IdIndex::with_capacity(transfers),
            pending_status: prefaulted(transfers),
            failed_ids: IdSet::default(),
            expiry: BTreeSet::new(),
            prepare_timestamp: 0,
            scope: None,
            undo: Vec::new(),
            prefetched: Vec::new(),
        }
    }

    /// Every account, in creation (timestamp) order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Every transfer, in creation (timestamp) order.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// The account with this id, without running the expiry pulse (see [`Ledger::lookup_accounts`]
    /// for the TigerBeetle-equivalent read).
    pub fn account(&self, id: u128) -> Option<&Account> {
        self.account_position(id)
            .map(|p| &self.accounts[p as usize])
    }

    /// The transfer with this id (transfers that failed are not stored).
    pub fn transfer(&self, id: u128) -> Option<&Transfer> {
        self.transfer_position(id)
            .map(|p| &self.transfers[p as usize])
    }

    /// Whether `id` is a pending transfer that is still pending: neither posted, voided nor
    /// expired by a pulse. (A pending transfer whose deadline has passed but that has not been
    /// pulsed yet still counts as pending, as in TigerBeetle.)
    pub fn is_pending(&self, id: u128) -> bool {
        self.transfer_position(id)
            .is_some_and(|p| self.pending_status[p as usize] == PendingStatus::Pending)
    }

    /// The highest timestamp issued so far (0 before the first `create_*` call).
    pub fn last_timestamp(&self) -> u64 {
        self.prepare_timestamp
    }

    /// Bytes of heap owned by the ledger's main structures (capacity, not length): records,
    /// indexes, status table. The expiry B-tree and the failed-ids set are estimated.
    pub fn heap_bytes(&self) -> usize {
        self.accounts.capacity() * size_of::<Account>()
            + self.transfers.capacity() * size_of::<Transfer>()
            + self.pending_status.capacity()
            + self.account_ids.heap_bytes()
            + self.transfer_ids.heap_bytes()
            + self.failed_ids.len() * 2 * (size_of::<u128>() + 1)
            + self.expiry.len() * 2 * size_of::<(u64, u32)>()
            + self.undo.capacity() * size_of::<Undo>()
            + self.prefetched.capacity() * size_of::<[u32; 2]>()
    }

    #[inline]
    fn account_position(&self, id: u128) -> Option<u32> {
        let accounts = &self.accounts;
        self.account_ids.get(id, |p| accounts[p as usize].id)
    }

    #[inline]
    fn transfer_position(&self, id: u128) -> Option<u32> {
        let transfers = &self.transfers;
        self.transfer_ids.get(id, |p| transfers[p as usize].id)
    }

    // ---------------------------------------------------------------------------------------
    // Time and expiry.

    fn now(&self) -> u64 {
        let now = self.clock.now_ns();
        assert!(now <= TIMESTAMP_MAX, "clock beyond 2^63 ns: {now}");
        now
    }

    /// Stamps a request of `events` events; returns the request's timestamp (that of its last
    /// event). Event `i` gets `timestamp - events + i + 1`.
    fn prepare(&mut self, events: usize) -> u64 {
        let base = (self.prepare_timestamp + 1).max(self.now());
        let timestamp = base + events as u64;
        assert!(timestamp <= TIMESTAMP_MAX, "timestamps exhausted");
        assert!(timestamp > self.prepare_timestamp);
        self.prepare_timestamp = timestamp;
        timestamp
    }

    /// TigerBeetle's `pulse`: expires every pending transfer that is due at the ledger's current
    /// time. See the module documentation.
    fn pulse(&mut self) {
        assert!(self.scope.is_none());
        let Some(&(first, _)) = self.expiry.first() else {
            return;
        };
        let pulse_timestamp = (self.prepare_timestamp + 1).max(self.now());
        if first > pulse_timestamp {
            return;
        }
        let mut timestamp = pulse_timestamp;
        while let Some(&(expires_at, position)) = self.expiry.first() {
            if expires_at > pulse_timestamp {
                break;
            }
            self.expiry.pop_first();
            let p = self.transfers[position as usize];
            // Money: expiring releases the pending amounts, so only a transfer still pending may
            // expire, or the accounts lose what another post or void already moved.
            assert!(p.flags.contains(TransferFlags::PENDING));
            assert_eq!(
                self.pending_status[position as usize],
                PendingStatus::Pending
            );
            // Bookkeeping of the expiry queue, not money: debug builds check it.
            assert!(p.timeout > 0);
            assert_eq!(p.timestamp + u64::from(p.timeout) * NS_PER_S, expires_at);
            assert!(expires_at <= timestamp);
            self.pending_status[position as usize] = PendingStatus::Expired;

            let dr = self
                .account_position(p.debit_account_id)
                .expect("debit account");
            let cr = self
                .account_position(p.credit_account_id)
                .expect("credit account");
            let dr_account = &mut self.accounts[dr as usize];
            dr_account.debits_pending -= p.amount;
            if p.flags.contains(TransferFlags::CLOSING_DEBIT) {
                assert!(dr_account.flags.contains(AccountFlags::CLOSED));
                dr_account.flags = dr_account.flags.without(AccountFlags::CLOSED);
            }
            let cr_account = &mut self.accounts[cr as usize];
            cr_account.credits_pending -= p.amount;
            if p.flags.contains(TransferFlags::CLOSING_CREDIT) {
                assert!(cr_account.flags.contains(AccountFlags::CLOSED));
                cr_account.flags = cr_account.flags.without(AccountFlags::CLOSED);
            }
            timestamp += 1;
        }
        // The expiries took the timestamps `pulse_timestamp .. timestamp`.
        assert!(timestamp > pulse_timestamp);
        assert!(timestamp - 1 <= TIMESTAMP_MAX);
        self.prepare_timestamp = timestamp - 1;
    }

    // ---------------------------------------------------------------------------------------
    // Linked-chain scopes.

    fn scope_open(&mut self) {
        assert!(self.scope.is_none());
        assert!(self.undo.is_empty());
        self.scope = Some(Scope {
            accounts_len: self.accounts.len(),
            transfers_len: self.transfers.len(),
        });
    }

    fn scope_persist(&mut self) {
        assert!(self.scope.is_some());
        self.scope = None;
        self.undo.clear();
    }

    fn scope_discard(&mut self) {
        let scope = self.scope.take().expect("open scope");
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Account { position, before } => self.accounts[position as usize] = before,
                Undo::PendingStatus { position, before } => {
                    self.pending_status[position as usize] = before
                }
                Undo::ExpiryRemoved {
                    expires_at,
                    position,
                } => {
                    let inserted = self.expiry.insert((expires_at, position));
                    assert!(inserted);
                }
            }
        }
        while self.transfers.len() > scope.transfers_len {
            let t = self.transfers.last().copied().expect("transfer");
            let position = (self.transfers.len() - 1) as u32;
            if t.flags.contains(TransferFlags::PENDING) && t.timeout > 0 {
                let removed = self
                    .expiry
                    .remove(&(t.timestamp + u64::from(t.timeout) * NS_PER_S, position));
                assert!(removed);
            }
            let transfers = &self.transfers;
            let removed = self.transfer_ids.remove(t.id, |p| transfers[p as usize].id);
            assert_eq!(removed, Some(position));
            self.transfers.pop();
            self.pending_status.pop();
        }
        while self.accounts.len() > scope.accounts_len {
            let id = self.accounts.last().expect("account").id;
            let accounts = &self.accounts;
            let removed = self.account_ids.remove(id, |p| accounts[p as usize].id);
            assert_eq!(removed, Some((self.accounts.len() - 1) as u32));
            self.accounts.pop();
        }
    }

    /// Saves the account at `position` in the undo log if a chain is open.
    #[inline]
    fn touch_account(&mut self, position: u32) {
        if self.scope.is_some() {
            self.undo.push(Undo::Account {
                position,
                before: self.accounts[position as usize],
            });
        }
    }

    // ---------------------------------------------------------------------------------------
    // create_accounts.

    fn create_account(&mut self, timestamp: u64, a: &Account) -> CreateAccountResult {
        use CreateAccountResult as R;
        let imported = a.flags.contains(AccountFlags::IMPORTED);
        assert!(if imported {
            a.timestamp == timestamp
        } else {
            a.timestamp == 0
        });

        if a.reserved != 0 {
            return R::ReservedField;
        }
        if a.flags.0 & !AccountFlags::ALL.0 != 0 {
            return R::ReservedFlag;
        }
        if a.id == 0 {
            return R::IdMustNotBeZero;
        }
        if a.id == u128::MAX {
            return R::IdMustNotBeIntMax;
        }
        if let Some(position) = self.account_position(a.id) {
            return create_account_exists(a, &self.accounts[position as usize]);
        }
        if a.flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && a.flags
                .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        {
            return R::FlagsAreMutuallyExclusive;
        }
        if a.debits_pending != 0 {
            return R::DebitsPendingMustBeZero;
        }
        if a.debits_posted != 0 {
            return R::DebitsPostedMustBeZero;
        }
        if a.credits_pending != 0 {
            return R::CreditsPendingMustBeZero;
        }
        if a.credits_posted != 0 {
            return R::CreditsPostedMustBeZero;
        }
        if a.ledger == 0 {
            return R::LedgerMustNotBeZero;
        }
        if a.code == 0 {
            return R::CodeMustNotBeZero;
        }
        if imported {
            // After the idempotency checks, so that importers still see `exists`.
            if self
                .accounts
                .last()
                .is_some_and(|last| timestamp <= last.timestamp)
            {
                return R::ImportedEventTimestampMustNotRegress;
            }
            if self.transfer_with_timestamp(timestamp) {
                return R::ImportedEventTimestampMustNotRegress;
            }
        }

        assert!(self.accounts.last().map(|last| last.timestamp) < Some(timestamp));
        let position = u32::try_from(self.accounts.len()).expect("too many accounts");
        self.accounts.push(Account {
            id: a.id,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            user_data_128: a.user_data_128,
            user_data_64: a.user_data_64,
            user_data_32: a.user_data_32,
            reserved: 0,
            ledger: a.ledger,
            code: a.code,
            flags: a.flags,
            timestamp,
        });
        let accounts = &self.accounts;
        self.account_ids
            .insert(a.id, position, |p| accounts[p as usize].id);
        R::Ok
    }

    fn account_with_timestamp(&self, timestamp: u64) -> bool {
        self.accounts
            .binary_search_by_key(&timestamp, |a| a.timestamp)
            .is_ok()
    }

    fn transfer_with_timestamp(&self, timestamp: u64) -> bool {
        self.transfers
            .binary_search_by_key(&timestamp, |t| t.timestamp)
            .is_ok()
    }

    // ---------------------------------------------------------------------------------------
    // create_transfers.

    /// The prefetch pass over a `create_transfers` batch (TigerBeetle has one too): resolves the
    /// debit and credit account of every event into `prefetched`, and pulls into the cache the
    /// index slots of the transfer ids and the account records. Its loads are independent of each
    /// other, so the CPU overlaps the cache misses that would otherwise be paid one at a time
    /// while executing. It changes no state; the execution pass reads the account positions from
    /// it (valid for the whole batch: `create_transfers` never creates or removes accounts).
    fn prefetch_transfers(&mut self, events: &[Transfer], range: core::ops::Range<usize>) {
        let mut prefetched = std::mem::take(&mut self.prefetched);
        if range.start == 0 {
            prefetched.clear();
        }
        assert_eq!(prefetched.len(), range.start);
        let events = &events[range];
        assert!(events.len() <= PREFETCH_CHUNK);
        // Stages of short loops, each over independent loads, so that many misses are in flight.
        let mut tags = [[0u32; 3]; PREFETCH_CHUNK];
        for (t, tag) in events.iter().zip(tags.iter_mut()) {
            *tag = [
                IdIndex::tag(t.debit_account_id),
                IdIndex::tag(t.credit_account_id),
                IdIndex::tag(t.id),
            ];
        }
        let mut candidates = [[NOT_FOUND; 2]; PREFETCH_CHUNK];
        for (tag, candidate) in tags[..events.len()].iter().zip(candidates.iter_mut()) {
            *candidate = [
                self.account_ids.home_candidate(tag[0]),
                self.account_ids.home_candidate(tag[1]),
            ];
        }
        let mut touched = 0u64;
        for ((t, candidate), tag) in events.iter().zip(candidates.iter()).zip(tags.iter()) {
            let mut positions = [NOT_FOUND; 2];
            for (side, id) in [t.debit_account_id, t.credit_account_id]
                .into_iter()
                .enumerate()
            {
                let c = candidate[side];
                let position = if c != NOT_FOUND && self.accounts[c as usize].id == id {
                    c
                } else {
                    self.account_position(id).unwrap_or(NOT_FOUND)
                };
                if position != NOT_FOUND {
                    // A 128-byte record only 16-byte aligned spans up to three cache lines:
                    // touch one field in each (`id` was read above).
                    let a = &self.accounts[position as usize];
                    touched ^= (a.credits_posted as u64) ^ u64::from(a.flags.0);
                }
                positions[side] = position;
            }
            touched ^= u64::from(self.transfer_ids.home_candidate(tag[2]));
            prefetched.push(positions);
        }
        std::hint::black_box(touched);
        self.prefetched = prefetched;
    }

    /// `accounts`: the positions of the debit and credit accounts, as resolved by
    /// [`MemLedger::prefetch_transfers`] (accounts cannot be created during `create_transfers`).
    fn create_transfer(
        &mut self,
        timestamp: u64,
        t: &Transfer,
        accounts: [u32; 2],
    ) -> CreateTransferResult {
        use CreateTransferResult as R;
        let flags = t.flags;
        let imported = flags.contains(TransferFlags::IMPORTED);
        assert!(if imported {
            t.timestamp == timestamp
        } else {
            t.timestamp == 0
        });

        if flags.0 & !TransferFlags::ALL.0 != 0 {
            return R::ReservedFlag;
        }
        if t.id == 0 {
            return R::IdMustNotBeZero;
        }
        if t.id == u128::MAX {
            return R::IdMustNotBeIntMax;
        }
        if let Some(position) = self.transfer_position(t.id) {
            return self.create_transfer_exists(t, &self.transfers[position as usize]);
        }
        if self.failed_ids.contains(t.id) {
            return R::IdAlreadyFailed;
        }

        if flags.contains(TransferFlags::POST_PENDING_TRANSFER)
            || flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
        {
            return self.post_or_void_pending_transfer(timestamp, t);
        }

        if t.debit_account_id == 0 {
            return R::DebitAccountIdMustNotBeZero;
        }
        if t.debit_account_id == u128::MAX {
            return R::DebitAccountIdMustNotBeIntMax;
        }
        if t.credit_account_id == 0 {
            return R::CreditAccountIdMustNotBeZero;
        }
        if t.credit_account_id == u128::MAX {
            return R::CreditAccountIdMustNotBeIntMax;
        }
        if t.credit_account_id == t.debit_account_id {
            return R::AccountsMustBeDifferent;
        }
        if t.pending_id != 0 {
            return R::PendingIdMustBeZero;
        }
        let pending = flags.contains(TransferFlags::PENDING);
        if !pending {
            if t.timeout != 0 {
                return R::TimeoutReservedForPendingTransfer;
            }
            if flags.contains(TransferFlags::CLOSING_DEBIT)
                || flags.contains(TransferFlags::CLOSING_CREDIT)
            {
                return R::ClosingTransferMustBePending;
            }
        }
        if t.ledger == 0 {
            return R::LedgerMustNotBeZero;
        }
        if t.code == 0 {
            return R::CodeMustNotBeZero;
        }

        // A second lookup of both accounts would cost the cache misses the prefetch exists to
        // overlap, so only debug builds redo it; what guards money (the positions are the
        // transfer's own accounts) is the id check below, on records about to be read anyway.
        debug_assert_eq!(
            self.account_position(t.debit_account_id)
                .unwrap_or(NOT_FOUND),
            accounts[0]
        );
        debug_assert_eq!(
            self.account_position(t.credit_account_id)
                .unwrap_or(NOT_FOUND),
            accounts[1]
        );
        let [dr_position, cr_position] = accounts;
        if dr_position == NOT_FOUND {
            return R::DebitAccountNotFound;
        }
        if cr_position == NOT_FOUND {
            return R::CreditAccountNotFound;
        }
        assert_eq!(self.accounts[dr_position as usize].id, t.debit_account_id);
        assert_eq!(self.accounts[cr_position as usize].id, t.credit_account_id);
        let dr = &self.accounts[dr_position as usize];
        let cr = &self.accounts[cr_position as usize];
        // Money: one account on both sides would make the transfer a no-op that still counts.
        assert_ne!(dr_position, cr_position);

        if dr.ledger != cr.ledger {
            return R::AccountsMustHaveTheSameLedger;
        }
        if t.ledger != dr.ledger {
            return R::TransferMustHaveTheSameLedgerAsAccounts;
        }

        if imported {
            if self
                .transfers
                .last()
                .is_some_and(|last| timestamp <= last.timestamp)
            {
                return R::ImportedEventTimestampMustNotRegress;
            }
            if self.account_with_timestamp(timestamp) {
                return R::ImportedEventTimestampMustNotRegress;
            }
            if timestamp <= dr.timestamp {
                return R::ImportedEventTimestampMustPostdateDebitAccount;
            }
            if timestamp <= cr.timestamp {
                return R::ImportedEventTimestampMustPostdateCreditAccount;
            }
            if t.timeout != 0 {
                assert!(pending);
                return R::ImportedEventTimeoutMustBeZero;
            }
        }
        assert!(timestamp > dr.timestamp);
        assert!(timestamp > cr.timestamp);

        if dr.flags.contains(AccountFlags::CLOSED) {
            return R::DebitAccountAlreadyClosed;
        }
        if cr.flags.contains(AccountFlags::CLOSED) {
            return R::CreditAccountAlreadyClosed;
        }

        let mut amount = t.amount;
        if flags.contains(TransferFlags::BALANCING_DEBIT) {
            let dr_balance = dr.debits_posted + dr.debits_pending;
            amount = amount.min(dr.credits_posted.saturating_sub(dr_balance));
        }
        if flags.contains(TransferFlags::BALANCING_CREDIT) {
            let cr_balance = cr.credits_posted + cr.credits_pending;
            amount = amount.min(cr.debits_posted.saturating_sub(cr_balance));
        }

        if pending {
            if amount.checked_add(dr.debits_pending).is_none() {
                return R::OverflowsDebitsPending;
            }
            if amount.checked_add(cr.credits_pending).is_none() {
                return R::OverflowsCreditsPending;
            }
        }
        if amount.checked_add(dr.debits_posted).is_none() {
            return R::OverflowsDebitsPosted;
        }
        if amount.checked_add(cr.credits_posted).is_none() {
            return R::OverflowsCreditsPosted;
        }
        // The sum of pending and posted never overflows (an invariant kept by these checks).
        if amount
            .checked_add(dr.debits_pending + dr.debits_posted)
            .is_none()
        {
            return R::OverflowsDebits;
        }
        if amount
            .checked_add(cr.credits_pending + cr.credits_posted)
            .is_none()
        {
            return R::OverflowsCredits;
        }
        let timeout_ns = u64::from(t.timeout) * NS_PER_S;
        if timestamp + timeout_ns > TIMESTAMP_MAX {
            return R::OverflowsTimeout;
        }
        if dr
            .flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && dr.debits_pending + dr.debits_posted + amount > dr.credits_posted
        {
            return R::ExceedsCredits;
        }
        if cr
            .flags
            .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            && cr.credits_pending + cr.credits_posted + amount > cr.debits_posted
        {
            return R::ExceedsDebits;
        }

        // From here on the transfer succeeds.
        assert!(self.transfers.last().map(|last| last.timestamp) < Some(timestamp));
        let position = u32::try_from(self.transfers.len()).expect("too many transfers");
        self.transfers.push(Transfer {
            id: t.id,
            debit_account_id: t.debit_account_id,
            credit_account_id: t.credit_account_id,
            amount,
            pending_id: 0,
            user_data_128: t.user_data_128,
            user_data_64: t.user_data_64,
            user_data_32: t.user_data_32,
            timeout: t.timeout,
            ledger: t.ledger,
            code: t.code,
            flags,
            timestamp,
        });
        self.pending_status.push(if pending {
            PendingStatus::Pending
        } else {
            PendingStatus::None
        });
        let transfers = &self.transfers;
        self.transfer_ids
            .insert(t.id, position, |p| transfers[p as usize].id);
        if t.timeout > 0 {
            assert!(pending && !imported);
            let inserted = self.expiry.insert((timestamp + timeout_ns, position));
            assert!(inserted);
        }

        self.touch_account(dr_position);
        self.touch_account(cr_position);
        let dr = &mut self.accounts[dr_position as usize];
        if pending {
            dr.debits_pending += amount;
        } else {
            dr.debits_posted += amount;
        }
        if flags.contains(TransferFlags::CLOSING_DEBIT) {
            dr.flags |= AccountFlags::CLOSED;
        }
        assert_account(dr);
        let cr = &mut self.accounts[cr_position as usize];
        if pending {
            cr.credits_pending += amount;
        } else {
            cr.credits_posted += amount;
        }
        if flags.contains(TransferFlags::CLOSING_CREDIT) {
            cr.flags |= AccountFlags::CLOSED;
        }
        assert_account(cr);
        R::Ok
    }

    fn create_transfer_exists(&self, t: &Transfer, e: &Transfer) -> CreateTransferResult {
        use CreateTransferResult as R;
        assert_eq!(t.id, e.id);
        if t.flags != e.flags {
            return R::ExistsWithDifferentFlags;
        }
        if t.pending_id != e.pending_id {
            return R::ExistsWithDifferentPendingId;
        }
        if t.timeout != e.timeout {
            return R::ExistsWithDifferentTimeout;
        }
        if t.flags.contains(TransferFlags::POST_PENDING_TRANSFER)
            || t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
        {
            let p = self
                .transfer(t.pending_id)
                .expect("pending transfer of a post/void");
            return post_or_void_pending_transfer_exists(t, e, p);
        }
        if t.debit_account_id != e.debit_account_id {
            return R::ExistsWithDifferentDebitAccountId;
        }
        if t.credit_account_id != e.credit_account_id {
            return R::ExistsWithDifferentCreditAccountId;
        }
        if t.flags.contains(TransferFlags::BALANCING_DEBIT)
            || t.flags.contains(TransferFlags::BALANCING_CREDIT)
        {
            if t.amount < e.amount {
                return R::ExistsWithDifferentAmount;
            }
        } else if t.amount != e.amount {
            return R::ExistsWithDifferentAmount;
        }
        if t.user_data_128 != e.user_data_128 {
            return R::ExistsWithDifferentUserData128;
        }
        if t.user_data_64 != e.user_data_64 {
            return R::ExistsWithDifferentUserData64;
        }
        if t.user_data_32 != e.user_data_32 {
            return R::ExistsWithDifferentUserData32;
        }
        if t.ledger != e.ledger {
            return R::ExistsWithDifferentLedger;
        }
        if t.code != e.code {
            return R::ExistsWithDifferentCode;
        }
        R::Exists
    }

    fn post_or_void_pending_transfer(
        &mut self,
        timestamp: u64,
        t: &Transfer,
    ) -> CreateTransferResult {
        use CreateTransferResult as R;
        let flags = t.flags;
        let post = flags.contains(TransferFlags::POST_PENDING_TRANSFER);
        let void = flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
        assert!(post || void);

        if post && void {
            return R::FlagsAreMutuallyExclusive;
        }
        for exclusive in [
            TransferFlags::PENDING,
            TransferFlags::BALANCING_DEBIT,
            TransferFlags::BALANCING_CREDIT,
            TransferFlags::CLOSING_DEBIT,
            TransferFlags::CLOSING_CREDIT,
        ] {
            if flags.contains(exclusive) {
                return R::FlagsAreMutuallyExclusive;
            }
        }
        if t.pending_id == 0 {
            return R::PendingIdMustNotBeZero;
        }
        if t.pending_id == u128::MAX {
            return R::PendingIdMustNotBeIntMax;
        }
        if t.pending_id == t.id {
            return R::PendingIdMustBeDifferent;
        }
        if t.timeout != 0 {
            return R::TimeoutReservedForPendingTransfer;
        }

        let Some(p_position) = self.transfer_position(t.pending_id) else {
            return R::PendingTransferNotFound;
        };
        let p = self.transfers[p_position as usize];
        if !p.flags.contains(TransferFlags::PENDING) {
            return R::PendingTransferNotPending;
        }
        let dr_position = self
            .account_position(p.debit_account_id)
            .expect("debit account");
        let cr_position = self
            .account_position(p.credit_account_id)
            .expect("credit account");

        if t.debit_account_id > 0 && t.debit_account_id != p.debit_account_id {
            return R::PendingTransferHasDifferentDebitAccountId;
        }
        if t.credit_account_id > 0 && t.credit_account_id != p.credit_account_id {
            return R::PendingTransferHasDifferentCreditAccountId;
        }
        // User data may differ between the pending transfer and its post/void.
        if t.ledger > 0 && t.ledger != p.ledger {
            return R::PendingTransferHasDifferentLedger;
        }
        if t.code > 0 && t.code != p.code {
            return R::PendingTransferHasDifferentCode;
        }

        let amount = if void {
            if t.amount == 0 {
                p.amount
            } else {
                t.amount
            }
        } else if t.amount == u128::MAX {
            p.amount
        } else {
            t.amount
        };
        if amount > p.amount {
            return R::ExceedsPendingTransferAmount;
        }
        if void && amount < p.amount {
            return R::PendingTransferHasDifferentAmount;
        }

        match self.pending_status[p_position as usize] {
            PendingStatus::None => unreachable!("pending transfer without pending status"),
            PendingStatus::Pending => {}
            PendingStatus::Posted => return R::PendingTransferAlreadyPosted,
            PendingStatus::Voided => return R::PendingTransferAlreadyVoided,
            PendingStatus::Expired => {
                assert!(p.timeout > 0);
                return R::PendingTransferExpired;
            }
        }

        let expires_at = if p.timeout == 0 {
            None
        } else {
            let expires_at = p.timestamp + u64::from(p.timeout) * NS_PER_S;
            if expires_at <= timestamp {
                return R::PendingTransferExpired;
            }
            Some(expires_at)
        };

        if flags.contains(TransferFlags::IMPORTED) {
            if self
                .transfers
                .last()
                .is_some_and(|last| timestamp <= last.timestamp)
            {
                return R::ImportedEventTimestampMustNotRegress;
            }
            if self.account_with_timestamp(timestamp) {
                return R::ImportedEventTimestampMustNotRegress;
            }
        }
        assert!(timestamp > p.timestamp);

        // The only movement allowed in a closed account is voiding a pending transfer.
        let dr_closed = self.accounts[dr_position as usize]
            .flags
            .contains(AccountFlags::CLOSED);
        let cr_closed = self.accounts[cr_position as usize]
            .flags
            .contains(AccountFlags::CLOSED);
        if dr_closed && !void {
            return R::DebitAccountAlreadyClosed;
        }
        if cr_closed && !void {
            return R::CreditAccountAlreadyClosed;
        }

        // From here on the transfer succeeds.
        assert!(self.transfers.last().map(|last| last.timestamp) < Some(timestamp));
        let position = u32::try_from(self.transfers.len()).expect("too many transfers");
        self.transfers.push(Transfer {
            id: t.id,
            debit_account_id: p.debit_account_id,
            credit_account_id: p.credit_account_id,
            amount,
            pending_id: t.pending_id,
            user_data_128: if t.user_data_128 > 0 {
                t.user_data_128
            } else {
                p.user_data_128
            },
            user_data_64: if t.user_data_64 > 0 {
                t.user_data_64
            } else {
                p.user_data_64
            },
            user_data_32: if t.user_data_32 > 0 {
                t.user_data_32
            } else {
                p.user_data_32
            },
            timeout: 0,
            ledger: p.ledger,
            code: p.code,
            flags,
            timestamp,
        });
        self.pending_status.push(PendingStatus::None);
        let transfers = &self.transfers;
        self.transfer_ids
            .insert(t.id, position, |q| transfers[q as usize].id);

        if let Some(expires_at) = expires_at {
            assert!(expires_at > timestamp);
            let removed = self.expiry.remove(&(expires_at, p_position));
            assert!(removed);
            if self.scope.is_some() {
                self.undo.push(Undo::ExpiryRemoved {
                    expires_at,
                    position: p_position,
                });
            }
        }
        if self.scope.is_some() {
            self.undo.push(Undo::PendingStatus {
                position: p_position,
                before: PendingStatus::Pending,
            });
        }
        self.pending_status[p_position as usize] = if post {
            PendingStatus::Posted
        } else {
            PendingStatus::Voided
        };

        self.touch_account(dr_position);
        self.touch_account(cr_position);
        let dr = &mut self.accounts[dr_position as usize];
        dr.debits_pending -= p.amount;
        if post {
            assert!(!p.flags.contains(TransferFlags::CLOSING_DEBIT));
            dr.debits_posted += amount;
        } else if p.flags.contains(TransferFlags::CLOSING_DEBIT) {
            assert!(dr.flags.contains(AccountFlags::CLOSED));
            dr.flags = dr.flags.without(AccountFlags::CLOSED);
        }
        assert_account(dr);
        let cr = &mut self.accounts[cr_position as usize];
        cr.credits_pending -= p.amount;
        if post {
            assert!(!p.flags.contains(TransferFlags::CLOSING_CREDIT));
            cr.credits_posted += amount;
        } else if p.flags.contains(TransferFlags::CLOSING_CREDIT) {
            assert!(cr.flags.contains(AccountFlags::CLOSED));
            cr.flags = cr.flags.without(AccountFlags::CLOSED);
        }
        assert_account(cr);
        R::Ok
    }

    // ---------------------------------------------------------------------------------------
    // The batch loop shared by create_accounts and create_transfers (`execute_create`).

    fn execute_create<E: Event>(&mut self, events: &[E]) -> Result<Vec<E::Result>, LedgerError> {
        if events.len() > BATCH_EVENTS_MAX {
            return Err(LedgerError::BatchTooLarge {
                events: events.len(),
                max: BATCH_EVENTS_MAX,
            });
        }
        self.pulse();
        let timestamp = self.prepare(events.len());
        let count = events.len() as u64;

        let mut results = vec![E::OK; events.len()];
        let mut chain: Option<usize> = None;
        let mut chain_broken = false;
        // The first event decides whether the batch imports events with past timestamps.
        let batch_imported = events.first().is_some_and(|e| e.imported());
        for (index, event) in events.iter().enumerate() {
            if index % PREFETCH_CHUNK == 0 {
                E::prefetch(
                    self,
                    events,
                    index..events.len().min(index + PREFETCH_CHUNK),
                );
            }
            let linked = event.linked();
            let result = 'result: {
                if linked {
                    if chain.is_none() {
                        chain = Some(index);
                        assert!(!chain_broken);
                        self.scope_open();
                    }
                    if index == events.len() - 1 {
                        break 'result E::LINKED_EVENT_CHAIN_OPEN;
                    }
                }
                if chain_broken {
                    break 'result E::LINKED_EVENT_FAILED;
                }
                if batch_imported != event.imported() {
                    break 'result if event.imported() {
                        E::IMPORTED_EVENT_NOT_EXPECTED
                    } else {
                        E::IMPORTED_EVENT_EXPECTED
                    };
                }
                let timestamp_event = if event.imported() {
                    let t = event.timestamp();
                    if !(1..=TIMESTAMP_MAX).contains(&t) {
                        break 'result E::IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE;
                    }
                    if t >= timestamp {
                        break 'result E::IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE;
                    }
                    t
                } else {
                    if event.timestamp() != 0 {
                        break 'result E::TIMESTAMP_MUST_BE_ZERO;
                    }
                    timestamp - count + index as u64 + 1
                };
                event.create(self, timestamp_event, index)
            };
            if result != E::OK {
                if let Some(chain_start) = chain {
                    if !chain_broken {
                        chain_broken = true;
                        self.scope_discard();
                        for r in &mut results[chain_start..index] {
                            *r = E::LINKED_EVENT_FAILED;
                        }
                    } else {
                        assert!(
                            result == E::LINKED_EVENT_FAILED
                                || result == E::LINKED_EVENT_CHAIN_OPEN
                        );
                    }
                }
                results[index] = result;
                event.failed(self, result);
            }
            if chain.is_some() && (!linked || result == E::LINKED_EVENT_CHAIN_OPEN) {
                if !chain_broken {
                    self.scope_persist();
                }
                chain = None;
                chain_broken = false;
            }
        }
        assert!(chain.is_none() && !chain_broken && self.scope.is_none());
        assert!(self.undo.is_empty());
        Ok(results)
    }

    // ---------------------------------------------------------------------------------------
    // Queries.

    /// The positions `lo..hi` of the records whose timestamps lie in `[min, max]` (0 = open).
    fn timestamp_range<T>(
        records: &[T],
        min: u64,
        max: u64,
        ts: impl Fn(&T) -> u64,
    ) -> (usize, usize) {
        let min = if min == 0 { 1 } else { min };
        let max = if max == 0 { TIMESTAMP_MAX } else { max };
        let lo = records.partition_point(|r| ts(r) < min);
        let hi = records.partition_point(|r| ts(r) <= max);
        (lo, hi.max(lo))
    }
}

/// Keeps the records of `records[lo..hi]` that match, in timestamp order or reversed, at most
/// `limit` of them.
fn collect_matching<T: Copy>(
    records: &[T],
    reversed: bool,
    limit: u32,
    matches: impl Fn(&T) -> bool,
) -> Vec<T> {
    let limit = limit.min(QUERY_RESULTS_MAX) as usize;
    let mut out = Vec::new();
    let mut push = |r: &T| {
        if matches(r) {
            out.push(*r);
        }
        out.len() < limit
    };
    if reversed {
        for r in records.iter().rev() {
            if !push(r) {
                break;
            }
        }
    } else {
        for r in records {
            if !push(r) {
                break;
            }
        }
    }
    out
}

/// An empty vector with room for `capacity` elements whose memory has been written once, so that
/// the page faults (expensive in a virtual machine: the kernel zeroes every page) happen here
/// rather than on the hot path. TigerBeetle, too, allocates and touches all its memory at startup.
fn prefaulted<T: Copy + Default>(capacity: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(capacity);
    v.resize(capacity, T::default());
    v.clear();
    v
}

fn timestamp_filter_valid(min: u64, max: u64) -> bool {
    (min == 0 || (1..=TIMESTAMP_MAX).contains(&min))
        && (max == 0 || (1..=TIMESTAMP_MAX).contains(&max))
        && (max == 0 || min <= max)
}

fn create_account_exists(a: &Account, e: &Account) -> CreateAccountResult {
    use CreateAccountResult as R;
    assert_eq!(a.id, e.id);
    if a.flags != e.flags {
        return R::ExistsWithDifferentFlags;
    }
    if a.user_data_128 != e.user_data_128 {
        return R::ExistsWithDifferentUserData128;
    }
    if a.user_data_64 != e.user_data_64 {
        return R::ExistsWithDifferentUserData64;
    }
    if a.user_data_32 != e.user_data_32 {
        return R::ExistsWithDifferentUserData32;
    }
    assert!(a.reserved == 0 && e.reserved == 0);
    if a.ledger != e.ledger {
        return R::ExistsWithDifferentLedger;
    }
    if a.code != e.code {
        return R::ExistsWithDifferentCode;
    }
    R::Exists
}

fn post_or_void_pending_transfer_exists(
    t: &Transfer,
    e: &Transfer,
    p: &Transfer,
) -> CreateTransferResult {
    use CreateTransferResult as R;
    assert_eq!(t.flags, e.flags);
    assert_eq!(t.pending_id, p.id);
    // Money: a post never moved more than its pending transfer held.
    assert!(p.flags.contains(TransferFlags::PENDING));
    assert!(e.amount <= p.amount);

    if t.debit_account_id != 0 && t.debit_account_id != e.debit_account_id {
        return R::ExistsWithDifferentDebitAccountId;
    }
    if t.credit_account_id != 0 && t.credit_account_id != e.credit_account_id {
        return R::ExistsWithDifferentCreditAccountId;
    }
    if t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER) {
        if t.amount == 0 {
            if e.amount != p.amount {
                return R::ExistsWithDifferentAmount;
            }
        } else if t.amount != e.amount {
            return R::ExistsWithDifferentAmount;
        }
    }
    if t.flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
        if t.amount == u128::MAX {
            if e.amount != p.amount {
                return R::ExistsWithDifferentAmount;
            }
        } else if t.amount != e.amount {
            return R::ExistsWithDifferentAmount;
        }
    }
    let inherited = |t_value: u128, e_value: u128, p_value: u128| {
        if t_value == 0 {
            e_value != p_value
        } else {
            t_value != e_value
        }
    };
    if inherited(t.user_data_128, e.user_data_128, p.user_data_128) {
        return R::ExistsWithDifferentUserData128;
    }
    if inherited(
        t.user_data_64.into(),
        e.user_data_64.into(),
        p.user_data_64.into(),
    ) {
        return R::ExistsWithDifferentUserData64;
    }
    if inherited(
        t.user_data_32.into(),
        e.user_data_32.into(),
        p.user_data_32.into(),
    ) {
        return R::ExistsWithDifferentUserData32;
    }
    if t.ledger != 0 && t.ledger != e.ledger {
        return R::ExistsWithDifferentLedger;
    }
    if t.code != 0 && t.code != e.code {
        return R::ExistsWithDifferentCode;
    }
    R::Exists
}

/// `CreateTransferResult.transient()`: errors that depend on the ledger's state at the time, which
/// burn the transfer's id.
fn transient(result: CreateTransferResult) -> bool {
    use CreateTransferResult as R;
    matches!(
        result,
        R::DebitAccountNotFound
            | R::CreditAccountNotFound
            | R::PendingTransferNotFound
            | R::ExceedsCredits
            | R::ExceedsDebits
            | R::DebitAccountAlreadyClosed
            | R::CreditAccountAlreadyClosed
    )
}

/// Invariants of an account after every event (TigerStyle: assert what must hold). They guard
/// money (no balance overflows, no member pot below zero), cost a few comparisons, and so hold
/// in release builds too: a ledger that breaks one stops rather than books on.
#[inline]
fn assert_account(a: &Account) {
    let debits = a.debits_pending.checked_add(a.debits_posted);
    let credits = a.credits_pending.checked_add(a.credits_posted);
    assert!(
        debits.is_some() && credits.is_some(),
        "balance overflow: {a:?}"
    );
    assert!(
        !a.flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            || debits.is_some_and(|d| d <= a.credits_posted),
        "debits exceed credits: {a:?}"
    );
    assert!(
        !a.flags
            .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            || credits.is_some_and(|c| c <= a.debits_posted),
        "credits exceed debits: {a:?}"
    );
}

/// What `execute_create` needs to know about an event type (account or transfer).
trait Event: Copy {
    type Result: Copy + PartialEq + core::fmt::Debug;
    const OK: Self::Result;
    const LINKED_EVENT_FAILED: Self::Result;
    const LINKED_EVENT_CHAIN_OPEN: Self::Result;
    const IMPORTED_EVENT_EXPECTED: Self::Result;
    const IMPORTED_EVENT_NOT_EXPECTED: Self::Result;
    const TIMESTAMP_MUST_BE_ZERO: Self::Result;
    const IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE: Self::Result;
    const IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE: Self::Result;
    fn linked(&self) -> bool;
    fn imported(&self) -> bool;
    fn timestamp(&self) -> u64;
    /// TigerBeetle's prefetch phase: resolve what can be resolved for the whole batch before
    /// executing it, with independent memory accesses the CPU can overlap.
    fn prefetch(ledger: &mut MemLedger, events: &[Self], range: core::ops::Range<usize>);
    /// Executes event `index` of the batch (everything before the per-object checks is done).
    fn create(&self, ledger: &mut MemLedger, timestamp: u64, index: usize) -> Self::Result;
    fn failed(&self, ledger: &mut MemLedger, result: Self::Result);
}

impl Event for Account {
    type Result = CreateAccountResult;
    const OK: Self::Result = CreateAccountResult::Ok;
    const LINKED_EVENT_FAILED: Self::Result = CreateAccountResult::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self::Result = CreateAccountResult::LinkedEventChainOpen;
    const IMPORTED_EVENT_EXPECTED: Self::Result = CreateAccountResult::ImportedEventExpected;
    const IMPORTED_EVENT_NOT_EXPECTED: Self::Result = CreateAccountResult::ImportedEventNotExpected;
    const TIMESTAMP_MUST_BE_ZERO: Self::Result = CreateAccountResult::TimestampMustBeZero;
    const IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE: Self::Result =
        CreateAccountResult::ImportedEventTimestampOutOfRange;
    const IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE: Self::Result =
        CreateAccountResult::ImportedEventTimestampMustNotAdvance;
    #[inline]
    fn linked(&self) -> bool {
        self.flags.contains(AccountFlags::LINKED)
    }
    #[inline]
    fn imported(&self) -> bool {
        self.flags.contains(AccountFlags::IMPORTED)
    }
    #[inline]
    fn timestamp(&self) -> u64 {
        self.timestamp
    }
    #[inline]
    fn prefetch(_: &mut MemLedger, _: &[Self], _: core::ops::Range<usize>) {}
    #[inline]
    fn create(&self, ledger: &mut MemLedger, timestamp: u64, _: usize) -> Self::Result {
        ledger.create_account(timestamp, self)
    }
    #[inline]
    fn failed(&self, _: &mut MemLedger, _: Self::Result) {
        // `create_accounts` errors never depend on transient state.
    }
}

impl Event for Transfer {
    type Result = CreateTransferResult;
    const OK: Self::Result = CreateTransferResult::Ok;
    const LINKED_EVENT_FAILED: Self::Result = CreateTransferResult::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self::Result = CreateTransferResult::LinkedEventChainOpen;
    const IMPORTED_EVENT_EXPECTED: Self::Result = CreateTransferResult::ImportedEventExpected;
    const IMPORTED_EVENT_NOT_EXPECTED: Self::Result =
        CreateTransferResult::ImportedEventNotExpected;
    const TIMESTAMP_MUST_BE_ZERO: Self::Result = CreateTransferResult::TimestampMustBeZero;
    const IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE: Self::Result =
        CreateTransferResult::ImportedEventTimestampOutOfRange;
    const IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE: Self::Result =
        CreateTransferResult::ImportedEventTimestampMustNotAdvance;
    #[inline]
    fn linked(&self) -> bool {
        self.flags.contains(TransferFlags::LINKED)
    }
    #[inline]
    fn imported(&self) -> bool {
        self.flags.contains(TransferFlags::IMPORTED)
    }
    #[inline]
    fn timestamp(&self) -> u64 {
        self.timestamp
    }
    #[inline]
    fn prefetch(ledger: &mut MemLedger, events: &[Self], range: core::ops::Range<usize>) {
        ledger.prefetch_transfers(events, range);
    }
    #[inline]
    fn create(&self, ledger: &mut MemLedger, timestamp: u64, index: usize) -> Self::Result {
        let accounts = ledger.prefetched[index];
        ledger.create_transfer(timestamp, self, accounts)
    }
    #[inline]
    fn failed(&self, ledger: &mut MemLedger, result: Self::Result) {
        if transient(result) {
            // Outside any scope (the chain, if any, was discarded first): never rolled back.
            ledger.failed_ids.insert(self.id);
        }
    }
}

impl Ledger for MemLedger {
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        self.execute_create(batch)
    }

    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        self.execute_create(batch)
    }

    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        check_lookup_len(ids)?;
        self.pulse();
        Ok(ids
            .iter()
            .filter_map(|&id| self.account(id).copied())
            .collect())
    }

    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        check_lookup_len(ids)?;
        self.pulse();
        Ok(ids
            .iter()
            .filter_map(|&id| self.transfer(id).copied())
            .collect())
    }

    fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, LedgerError> {
        self.pulse();
        let f = *filter;
        let flags = f.flags;
        let valid = f.account_id != 0
            && f.account_id != u128::MAX
            && timestamp_filter_valid(f.timestamp_min, f.timestamp_max)
            && f.limit != 0
            && (flags.contains(AccountFilterFlags::DEBITS)
                || flags.contains(AccountFilterFlags::CREDITS))
            && flags.0 & !AccountFilterFlags::ALL.0 == 0;
        if !valid {
            return Ok(Vec::new());
        }
        let debits = flags.contains(AccountFilterFlags::DEBITS);
        let credits = flags.contains(AccountFilterFlags::CREDITS);
        let (lo, hi) =
            Self::timestamp_range(&self.transfers, f.timestamp_min, f.timestamp_max, |t| {
                t.timestamp
            });
        Ok(collect_matching(
            &self.transfers[lo..hi],
            flags.contains(AccountFilterFlags::REVERSED),
            f.limit,
            |t| {
                ((debits && t.debit_account_id == f.account_id)
                    || (credits && t.credit_account_id == f.account_id))
                    && (f.user_data_128 == 0 || t.user_data_128 == f.user_data_128)
                    && (f.user_data_64 == 0 || t.user_data_64 == f.user_data_64)
                    && (f.user_data_32 == 0 || t.user_data_32 == f.user_data_32)
                    && (f.code == 0 || t.code == f.code)
            },
        ))
    }

    fn query_transfers(&mut self, filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.pulse();
        let f = *filter;
        if !query_filter_valid(&f) {
            return Ok(Vec::new());
        }
        let (lo, hi) =
            Self::timestamp_range(&self.transfers, f.timestamp_min, f.timestamp_max, |t| {
                t.timestamp
            });
        Ok(collect_matching(
            &self.transfers[lo..hi],
            f.flags.contains(QueryFilterFlags::REVERSED),
            f.limit,
            |t| {
                (f.user_data_128 == 0 || t.user_data_128 == f.user_data_128)
                    && (f.user_data_64 == 0 || t.user_data_64 == f.user_data_64)
                    && (f.user_data_32 == 0 || t.user_data_32 == f.user_data_32)
                    && (f.ledger == 0 || t.ledger == f.ledger)
                    && (f.code == 0 || t.code == f.code)
            },
        ))
    }

    fn query_accounts(&mut self, filter: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        self.pulse();
        let f = *filter;
        if !query_filter_valid(&f) {
            return Ok(Vec::new());
        }
        let (lo, hi) =
            Self::timestamp_range(&self.accounts, f.timestamp_min, f.timestamp_max, |a| {
                a.timestamp
            });
        Ok(collect_matching(
            &self.accounts[lo..hi],
            f.flags.contains(QueryFilterFlags::REVERSED),
            f.limit,
            |a| {
                (f.user_data_128 == 0 || a.user_data_128 == f.user_data_128)
                    && (f.user_data_64 == 0 || a.user_data_64 == f.user_data_64)
                    && (f.user_data_32 == 0 || a.user_data_32 == f.user_data_32)
                    && (f.ledger == 0 || a.ledger == f.ledger)
                    && (f.code == 0 || a.code == f.code)
            },
        ))
    }
}

fn query_filter_valid(f: &QueryFilter) -> bool {
    timestamp_filter_valid(f.timestamp_min, f.timestamp_max)
        && f.limit != 0
        && f.flags.0 & !QueryFilterFlags::ALL.0 == 0
}

fn check_lookup_len(ids: &[u128]) -> Result<(), LedgerError> {
    if ids.len() > BATCH_EVENTS_MAX {
        return Err(LedgerError::BatchTooLarge {
            events: ids.len(),
            max: BATCH_EVENTS_MAX,
        });
    }
    Ok(())
}

// -------------------------------------------------------------------------------------------
// Id index.

/// A hash index from a 128-bit id to the position (`u32`) of the record holding it in a vector.
///
/// Open addressing with linear probing over a power-of-two array of 8-byte slots `(position,
/// tag)`, where `tag` is 32 bits of the id's hash and the low bits of the tag pick the home slot.
/// The id is not stored: a candidate slot is confirmed by reading the id from the record through
/// `key_of(position)`, which callers pass in (the record is usually wanted anyway). Growth and
/// backward-shift deletion need only the tags. Load factor at most 1/2. Never iterated.
struct IdIndex {
    slots: Vec<Slot>,
    len: usize,
}

#[derive(Clone, Copy)]
struct Slot {
    position: u32,
    tag: u32,
}

const SLOT_EMPTY: Slot = Slot {
    position: u32::MAX,
    tag: 0,
};
const INDEX_CAPACITY_MIN: usize = 16;

impl IdIndex {
    fn with_capacity(entries: usize) -> IdIndex {
        let mut index = IdIndex {
            slots: Vec::new(),
            len: 0,
        };
        if entries > 0 {
            index.slots = vec![SLOT_EMPTY; Self::slots_for(entries)];
        }
        index
    }

    fn slots_for(entries: usize) -> usize {
        entries
            .saturating_mul(2)
            .next_power_of_two()
            .max(INDEX_CAPACITY_MIN)
    }

    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
    }

    #[inline]
    fn tag(id: u128) -> u32 {
        // A 64-bit finaliser (murmur3's fmix64) over both halves; ids may be sequential.
        #[inline]
        fn fmix64(mut h: u64) -> u64 {
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            h ^ (h >> 33)
        }
        let h = fmix64(id as u64 ^ fmix64((id >> 64) as u64 ^ 0x9e37_79b9_7f4a_7c15));
        (h >> 32) as u32
    }

    #[inline]
    fn get(&self, id: u128, key_of: impl Fn(u32) -> u128) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = Self::tag(id);
        let mut i = tag as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.position == SLOT_EMPTY.position {
                return None;
            }
            if slot.tag == tag && key_of(slot.position) == id {
                return Some(slot.position);
            }
            i = (i + 1) & mask;
        }
    }

    /// The position in the home slot of `tag` if that slot holds `tag`, else [`NOT_FOUND`]: a
    /// guess to confirm against the record (the prefetch pass uses it to warm the cache).
    #[inline]
    fn home_candidate(&self, tag: u32) -> u32 {
        if self.slots.is_empty() {
            return NOT_FOUND;
        }
        let slot = self.slots[tag as usize & (self.slots.len() - 1)];
        if slot.tag == tag {
            slot.position
        } else {
            NOT_FOUND
        }
    }

    /// Inserts an id known to be absent.
    #[inline]
    fn insert(&mut self, id: u128, position: u32, key_of: impl Fn(u32) -> u128) {
        assert!(position != SLOT_EMPTY.position);
        // A probe of its own per insert: the callers have just looked the id up, so only debug
        // builds repeat it (an index check, not money: the ledger's records are elsewhere).
        debug_assert!(self.get(id, &key_of).is_none());
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let tag = Self::tag(id);
        let mut i = tag as usize & mask;
        while self.slots[i].position != SLOT_EMPTY.position {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot { position, tag };
        self.len += 1;
    }

    /// Removes an id; returns the position it mapped to.
    fn remove(&mut self, id: u128, key_of: impl Fn(u32) -> u128) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = Self::tag(id);
        let mut i = tag as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.position == SLOT_EMPTY.position {
                return None;
            }
            if slot.tag == tag && key_of(slot.position) == id {
                break;
            }
            i = (i + 1) & mask;
        }
        let removed = self.slots[i].position;
        // Backward-shift deletion: pull later members of the probe run into the hole unless
        // their home lies cyclically in (hole, j].
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let slot = self.slots[j];
            if slot.position == SLOT_EMPTY.position {
                break;
            }
            let home = slot.tag as usize & mask;
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = slot;
                hole = j;
            }
        }
        self.slots[hole] = SLOT_EMPTY;
        self.len -= 1;
        Some(removed)
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(INDEX_CAPACITY_MIN);
        // Homes come from the 32-bit tag, and positions are below 2^32.
        assert!(capacity <= 1 << 32, "id index full");
        let old = std::mem::replace(&mut self.slots, vec![SLOT_EMPTY; capacity]);
        let mask = capacity - 1;
        for slot in old {
            if slot.position == SLOT_EMPTY.position {
                continue;
            }
            let mut i = slot.tag as usize & mask;
            while self.slots[i].position != SLOT_EMPTY.position {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }
}

/// The ids of transfers that failed with a transient error. Membership only; never iterated.
#[derive(Default)]
struct IdSet {
    ids: FxHashSet<u128>,
}

impl IdSet {
    #[inline]
    fn contains(&self, id: u128) -> bool {
        !self.ids.is_empty() && self.ids.contains(&id)
    }

    fn insert(&mut self, id: u128) {
        self.ids.insert(id);
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// xorshift64*: deterministic test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Two different ids with the same 32-bit tag (so the same home slot at every capacity).
    fn colliding_ids() -> (u128, u128) {
        let mut seen: BTreeMap<u32, u128> = BTreeMap::new();
        for id in 1u128.. {
            if let Some(&other) = seen.get(&IdIndex::tag(id)) {
                return (other, id);
            }
            seen.insert(IdIndex::tag(id), id);
        }
        unreachable!()
    }

    #[test]
    fn id_index_matches_a_map_under_random_operations() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (a, b) = colliding_ids();
        for round in 0..20 {
            let mut index = IdIndex::with_capacity(round % 3);
            let mut records: Vec<Option<u128>> = Vec::new();
            let mut map: BTreeMap<u128, u32> = BTreeMap::new();
            // Small id ranges in some rounds: many shared home slots, long probe runs.
            let range = [50u64, 1_000, u64::MAX][round % 3];
            for _ in 0..3_000 {
                let id = match rng.next() % 10 {
                    0 => a,
                    1 => b,
                    _ => u128::from(rng.next() % range) + 1,
                };
                let key_of = |p: u32| records[p as usize].expect("live record");
                assert_eq!(index.get(id, key_of), map.get(&id).copied(), "get {id}");
                match rng.next() % 3 {
                    0 | 1 if !map.contains_key(&id) => {
                        let position = records.len() as u32;
                        records.push(Some(id));
                        index.insert(id, position, |p| records[p as usize].expect("live"));
                        map.insert(id, position);
                    }
                    _ if map.contains_key(&id) => {
                        let removed = index.remove(id, |p| records[p as usize].expect("live"));
                        assert_eq!(removed, map.remove(&id));
                        records[removed.unwrap() as usize] = None;
                    }
                    _ => {
                        assert_eq!(
                            index.remove(id, |p| records[p as usize].expect("live")),
                            None
                        );
                    }
                }
                assert_eq!(index.len, map.len());
            }
            for (&id, &position) in &map {
                assert_eq!(
                    index.get(id, |p| records[p as usize].unwrap()),
                    Some(position)
                );
            }
        }
    }

    struct FixedClock;

    impl Clock for FixedClock {
        fn now_ns(&self) -> u64 {
            1_000_000_000
        }
    }

    #[test]
    fn ledger_with_colliding_account_and_transfer_ids() {
        let (a, b) = colliding_ids();
        assert_eq!(IdIndex::tag(a), IdIndex::tag(b));
        let mut ledger = MemLedger::new(Arc::new(FixedClock));
        let account = |id| Account {
            id,
            ledger: 1,
            code: 1,
            ..Account::default()
        };
        // Created in both orders across two ledgers' worth of history; one rolled back.
        let linked = Account {
            flags: AccountFlags::LINKED,
            ..account(b)
        };
        assert_eq!(
            ledger
                .create_accounts(&[account(a), linked, account(0)])
                .unwrap(),
            vec![
                CreateAccountResult::Ok,
                CreateAccountResult::LinkedEventFailed,
                CreateAccountResult::IdMustNotBeZero
            ]
        );
        assert!(ledger.account(b).is_none());
        assert_eq!(
            ledger.create_accounts(&[account(b), account(7)]).unwrap(),
            vec![CreateAccountResult::Ok; 2]
        );
        let transfer = |id, dr, cr| Transfer {
            id,
            debit_account_id: dr,
            credit_account_id: cr,
            amount: 5,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        assert_eq!(
            ledger
                .create_transfers(&[transfer(a, a, b), transfer(b, b, 7), transfer(3, 7, a)])
                .unwrap(),
            vec![CreateTransferResult::Ok; 3]
        );
        assert_eq!(ledger.account(a).unwrap().debits_posted, 5);
        assert_eq!(ledger.account(a).unwrap().credits_posted, 5);
        assert_eq!(ledger.account(b).unwrap().credits_posted, 5);
        assert_eq!(ledger.account(b).unwrap().debits_posted, 5);
        assert_eq!(ledger.transfer(a).unwrap().credit_account_id, b);
        assert_eq!(ledger.transfer(b).unwrap().credit_account_id, 7);
    }

    #[test]
    fn transfer_ids_removed_by_rollback_across_index_growth() {
        let mut ledger = MemLedger::new(Arc::new(FixedClock));
        let accounts: Vec<Account> = (1..=2)
            .map(|id| Account {
                id,
                ledger: 1,
                code: 1,
                ..Account::default()
            })
            .collect();
        ledger.create_accounts(&accounts).unwrap();
        // A chain long enough to grow the transfer index several times, then failing.
        let mut batch: Vec<Transfer> = (1..=1000u128)
            .map(|id| Transfer {
                id,
                debit_account_id: 1,
                credit_account_id: 2,
                amount: 1,
                ledger: 1,
                code: 1,
                flags: TransferFlags::LINKED,
                ..Transfer::default()
            })
            .collect();
        batch.push(Transfer {
            id: 5000,
            ledger: 0,
            ..batch[0]
        });
        batch.last_mut().unwrap().flags = TransferFlags::NONE;
        let results = ledger.create_transfers(&batch).unwrap();
        assert_eq!(results[1000], CreateTransferResult::LedgerMustNotBeZero);
        assert!(ledger.transfers().is_empty());
        assert_eq!(ledger.transfer_ids.len, 0);
        for id in 1..=1000u128 {
            assert!(ledger.transfer(id).is_none());
        }
        batch.pop();
        batch.last_mut().unwrap().flags = TransferFlags::NONE;
        let results = ledger.create_transfers(&batch).unwrap();
        assert!(results.iter().all(|r| *r == CreateTransferResult::Ok));
        assert_eq!(ledger.account(1).unwrap().debits_posted, 1000);
    }
}
