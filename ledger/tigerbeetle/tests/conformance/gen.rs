//! The operation generator of the conformance test: a seed gives a stream of steps (batches of
//! `create_accounts` / `create_transfers`, and pauses that let short timeouts expire), written in
//! *logical* ids (small numbers) that the harness maps into a fresh namespace per replay.
//!
//! The stream is a pure function of the seed. To aim well (post a transfer that is still
//! pending, spend just below or just above what a limited account holds, avoid closed accounts
//! most of the time) the generator applies each step to a private `MemLedger` of its own and
//! looks at its state; that ledger only steers, it is not what the test compares, and the
//! stream (a list of steps) is fixed once generated, so a replay of any subsequence (the
//! shrinker's) is well defined.
//!
//! What it covers (see [`Gen::transfer_op`] and friends): every flag the platform uses
//! (`linked`, `pending`, `post_pending_transfer`, `void_pending_transfer`; accounts with
//! `debits_must_not_exceed_credits`), and the rest of TigerBeetle's flags (balancing, closing,
//! `credits_must_not_exceed_debits`, `history`, `closed`, `imported` error paths); linked chains
//! that fail in the middle and chains left open at the end of a batch; pending then post, partial
//! post, post of zero, void, double post, post after void, post after expiry; duplicates with the
//! same and with one different field; unknown accounts and transfers; zero, maximal and
//! overflowing amounts; cross-ledger attempts; every validation error of both operations.
//!
//! Deliberately not generated (they would depend on the cluster's clock or on other tests'
//! data, not on the stream): imported events that pass validation (their timestamps must not
//! regress against *every* record in the cluster) and timeouts that could expire at an
//! unplanned moment. Nor imported posts/voids with a past timestamp: they crash TigerBeetle
//! 0.16.78 (an assertion, `p.timestamp < timestamp`, precedes the regression check).
//!
//! Short timeouts appear only in an expiry episode: a batch of pending transfers with
//! [`SHORT_TIMEOUT_S`], then a [`Step::Sleep`] well past it, and nothing touches those transfers
//! in between; every other timeout is at least an hour.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use acme_ledger::{
    Account, AccountFlags, Clock, Ledger, MemLedger, Transfer, TransferFlags, BATCH_EVENTS_MAX,
};

/// One step of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Accounts(Vec<Account>),
    Transfers(Vec<Transfer>),
    /// Let this many milliseconds pass (TigerBeetle: really; MemLedger: on its clock).
    Sleep(u32),
}

impl Step {
    pub fn events(&self) -> usize {
        match self {
            Step::Accounts(a) => a.len(),
            Step::Transfers(t) => t.len(),
            Step::Sleep(_) => 0,
        }
    }
}

/// Timeout of the pending transfers of an expiry episode, in seconds.
pub const SHORT_TIMEOUT_S: u32 = 2;
/// The pause after an expiry episode: the short timeouts have expired, and TigerBeetle's primary
/// (which checks every 100 ms) has pulsed them, well before it ends.
pub const EXPIRY_SLEEP_MS: u32 = 3_500;

/// Ledgers: 1 and 2 for ordinary amounts, 3 for extreme ones (overflows).
pub const LEDGERS: [u32; 3] = [1, 2, 3];
const EXTREME_LEDGER: u32 = 3;

/// Logical ids of accounts that are never created.
pub const UNKNOWN_ACCOUNTS: [u128; 3] = [900_001, 900_002, 900_003];
/// Logical ids of transfers that are never created.
const UNKNOWN_TRANSFERS: [u128; 2] = [990_001, 990_002];
const FIRST_TRANSFER: u128 = 1_000_001;

/// A small, fast, seedable generator (SplitMix64): the stream must not change with a crate
/// upgrade.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        lo + self.next_u64() % (span + 1)
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.range(0, n as u64 - 1) as usize
    }
    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 99) < percent
    }
    pub fn u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }
    /// An index into `weights`, chosen in proportion to them.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut r = self.range(0, total - 1);
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        unreachable!()
    }
    /// An element of `items`, the later ones (the recent past) more likely.
    pub fn recent<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let n = items.len();
        let index = if self.chance(70) {
            n - 1 - self.below(n.min(24))
        } else {
            self.below(n)
        };
        items.get(index)
    }
}

/// The stream of `seed`, with at least `ops` events (accounts and transfers).
pub fn generate(seed: u64, ops: usize) -> Vec<Step> {
    let clock = Arc::new(GenClock(AtomicU64::new(1_700_000_000 * 1_000_000_000)));
    let mut g = Gen {
        oracle: MemLedger::new(clock.clone()),
        clock,
        rng: Rng::new(seed),
        steps: Vec::new(),
        ops: 0,
        accounts: Vec::new(),
        next_account: 1,
        transfers: Vec::new(),
        pendings: Vec::new(),
        next_transfer: FIRST_TRANSFER,
        expired_pool: Vec::new(),
    };
    g.initial_accounts();
    g.first_transfers();
    while g.ops < ops {
        match g.rng.weighted(&[90, 6, 1]) {
            0 => {
                let batch = g.transfers_batch();
                g.push(Step::Transfers(batch));
            }
            1 => {
                let batch = g.accounts_batch();
                g.push(Step::Accounts(batch));
            }
            _ => g.expiry_episode(),
        }
    }
    g.steps
}

/// The clock of the generator's private ledger: moved on by the sleeps only.
struct GenClock(AtomicU64);

impl Clock for GenClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Gen {
    /// The generator's private ledger (steering only; see the module documentation).
    oracle: MemLedger,
    clock: Arc<GenClock>,
    rng: Rng,
    steps: Vec<Step>,
    ops: usize,
    /// Every well-formed account submitted (it may have failed, e.g. in a broken chain).
    accounts: Vec<Account>,
    next_account: u128,
    /// Every transfer submitted with a usable id (duplicate candidates).
    transfers: Vec<Transfer>,
    /// Pending transfers submitted (post/void targets).
    pendings: Vec<Transfer>,
    next_transfer: u128,
    /// Short-timeout pendings of the last episode, released to `pendings` after its sleep.
    expired_pool: Vec<Transfer>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// No limits.
    Open,
    /// `debits_must_not_exceed_credits` (the platform's member pots).
    DebitLimited,
    /// `credits_must_not_exceed_debits`.
    CreditLimited,
}

impl Gen {
    fn push(&mut self, step: Step) {
        self.ops += step.events();
        match &step {
            Step::Accounts(batch) => {
                self.oracle
                    .create_accounts(batch)
                    .expect("a batch within limits");
            }
            Step::Transfers(batch) => {
                self.oracle
                    .create_transfers(batch)
                    .expect("a batch within limits");
            }
            Step::Sleep(ms) => {
                self.clock
                    .0
                    .fetch_add(u64::from(*ms) * 1_000_000, Ordering::SeqCst);
            }
        }
        self.steps.push(step);
    }

    fn new_account_id(&mut self) -> u128 {
        let id = self.next_account;
        self.next_account += 1;
        id
    }

    fn new_transfer_id(&mut self) -> u128 {
        let id = self.next_transfer;
        self.next_transfer += 1;
        id
    }

    fn account(&mut self, ledger: u32, role: Role) -> Account {
        let mut flags = match role {
            Role::Open => AccountFlags::NONE,
            Role::DebitLimited => AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            Role::CreditLimited => AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
        };
        if self.rng.chance(15) {
            flags |= AccountFlags::HISTORY;
        }
        Account {
            id: self.new_account_id(),
            user_data_128: self.rng.range(0, 3).into(),
            user_data_64: self.rng.range(0, 2),
            user_data_32: self.rng.range(0, 2) as u32,
            ledger,
            code: self.rng.range(1, 2) as u16,
            flags,
            ..Account::default()
        }
    }

    /// Step 0: the accounts every stream starts with (all valid).
    fn initial_accounts(&mut self) {
        let mut batch = Vec::new();
        for (ledger, open, debit_limited, credit_limited) in
            [(1, 3, 6, 2), (2, 3, 3, 1), (EXTREME_LEDGER, 4, 1, 1)]
        {
            for _ in 0..open {
                let a = self.account(ledger, Role::Open);
                batch.push(a);
            }
            for _ in 0..debit_limited {
                let a = self.account(ledger, Role::DebitLimited);
                batch.push(a);
            }
            for _ in 0..credit_limited {
                let a = self.account(ledger, Role::CreditLimited);
                batch.push(a);
            }
        }
        self.accounts.extend(batch.iter().copied());
        self.push(Step::Accounts(batch));
    }

    /// Step 1: fund the debit-limited accounts so that they can move something.
    fn first_transfers(&mut self) {
        let mut batch = Vec::new();
        for ledger in LEDGERS {
            let open: Vec<Account> = self.on_ledger(ledger, Some(Role::Open));
            let limited: Vec<Account> = self.on_ledger(ledger, Some(Role::DebitLimited));
            for a in limited {
                let from = open[self.rng.below(open.len())];
                let amount = self.rng.range(50, 500).into();
                let t = self.plain(from.id, a.id, ledger, amount);
                batch.push(t);
            }
        }
        self.transfers.extend(batch.iter().copied());
        self.push(Step::Transfers(batch));
    }

    fn role_of(a: &Account) -> Role {
        if a.flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
        {
            Role::DebitLimited
        } else if a
            .flags
            .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        {
            Role::CreditLimited
        } else {
            Role::Open
        }
    }

    fn on_ledger(&self, ledger: u32, role: Option<Role>) -> Vec<Account> {
        self.accounts
            .iter()
            .filter(|a| a.ledger == ledger && role.is_none_or(|r| Gen::role_of(a) == r))
            .copied()
            .collect()
    }

    /// The account exists and is open (in the generator's ledger, as of the current step).
    fn usable(&self, id: u128) -> bool {
        self.oracle
            .account(id)
            .is_some_and(|a| !a.flags.contains(AccountFlags::CLOSED))
    }

    /// What a debit-limited account may still spend, or a credit-limited one still receive.
    fn headroom(&self, id: u128) -> u128 {
        match self.oracle.account(id) {
            Some(a)
                if a.flags
                    .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS) =>
            {
                a.debits_posted
                    .saturating_sub(a.credits_posted + a.credits_pending)
            }
            Some(a) => a
                .credits_posted
                .saturating_sub(a.debits_posted + a.debits_pending),
            None => 0,
        }
    }

    /// An amount near `headroom`: mostly within it, sometimes just beyond.
    fn near(&mut self, headroom: u128) -> u128 {
        match self.rng.weighted(&[60, 25, 15]) {
            0 => {
                let r = self.rng.u128();
                headroom.checked_add(1).map_or(r, |m| r % m)
            }
            1 => headroom.saturating_add(self.rng.range(1, 50).into()),
            _ => self.rng.range(0, 300).into(),
        }
    }

    fn pick(&mut self, ledger: u32, role: Option<Role>) -> u128 {
        let mut candidates = self.on_ledger(ledger, role);
        if self.rng.chance(93) {
            let usable: Vec<Account> = candidates
                .iter()
                .filter(|a| self.usable(a.id))
                .copied()
                .collect();
            if !usable.is_empty() {
                candidates = usable;
            }
        }
        if candidates.is_empty() {
            let all = self.on_ledger(ledger, None);
            return all[self.rng.below(all.len())].id;
        }
        candidates[self.rng.below(candidates.len())].id
    }

    fn ledger(&mut self) -> u32 {
        LEDGERS[self.rng.weighted(&[70, 22, 8])]
    }

    /// Two different accounts of `ledger`.
    fn pair(&mut self, ledger: u32) -> (u128, u128) {
        // Mostly from an account without limits, so that a fair share succeeds.
        let debit = if self.rng.chance(75) {
            self.pick(ledger, Some(Role::Open))
        } else {
            self.pick(ledger, None)
        };
        for _ in 0..8 {
            let credit = self.pick(ledger, None);
            if credit != debit {
                return (debit, credit);
            }
        }
        // Every ledger starts with several accounts, so this is only a fallback.
        let all = self.on_ledger(ledger, None);
        let credit = all.iter().find(|a| a.id != debit).expect("two accounts").id;
        (debit, credit)
    }

    fn amount(&mut self, ledger: u32) -> u128 {
        if ledger == EXTREME_LEDGER {
            return match self.rng.below(9) {
                0 => u128::MAX,
                1 => u128::MAX - self.rng.range(0, 100) as u128,
                2 => 1 << 127,
                3 => (1 << 127) - 1,
                4 => 1 << 126,
                5 => self.rng.u128(),
                6 => u128::from(self.rng.next_u64()),
                7 => 0,
                _ => self.rng.range(1, 1000).into(),
            };
        }
        match self.rng.weighted(&[6, 70, 18, 6]) {
            0 => 0,
            1 => self.rng.range(1, 100).into(),
            2 => self.rng.range(100, 10_000).into(),
            _ => self.rng.range(10_000, 1 << 40).into(),
        }
    }

    fn user_data(&mut self, t: &mut Transfer) {
        if self.rng.chance(40) {
            t.user_data_128 = self.rng.range(0, 3).into();
        }
        if self.rng.chance(30) {
            t.user_data_64 = self.rng.range(0, 3);
        }
        if self.rng.chance(20) {
            t.user_data_32 = self.rng.range(0, 3) as u32;
        }
    }

    fn plain(&mut self, debit: u128, credit: u128, ledger: u32, amount: u128) -> Transfer {
        let mut t = Transfer {
            id: self.new_transfer_id(),
            debit_account_id: debit,
            credit_account_id: credit,
            amount,
            ledger,
            code: if self.rng.chance(85) { 1 } else { 2 },
            ..Transfer::default()
        };
        self.user_data(&mut t);
        t
    }

    fn long_timeout(&mut self) -> u32 {
        match self.rng.below(4) {
            0 => 3_600,
            1 => self.rng.range(3_600, 86_400) as u32,
            2 => self.rng.range(86_400, u64::from(u32::MAX)) as u32,
            _ => u32::MAX,
        }
    }

    fn pending(&mut self) -> Transfer {
        let ledger = self.ledger();
        let (debit, credit) = self.pair(ledger);
        let amount = self.amount(ledger);
        let mut t = self.plain(debit, credit, ledger, amount);
        t.flags = TransferFlags::PENDING;
        if self.rng.chance(25) {
            t.timeout = self.long_timeout();
        }
        t
    }

    /// A post or void of a pending transfer submitted earlier (or of something else, rarely).
    fn post_or_void(&mut self, void: bool) -> Transfer {
        let still_pending: Vec<Transfer> = if self.rng.chance(75) {
            self.pendings
                .iter()
                .filter(|p| self.oracle.is_pending(p.id))
                .copied()
                .collect()
        } else {
            Vec::new()
        };
        let pool = if still_pending.is_empty() {
            &self.pendings
        } else {
            &still_pending
        };
        let p = match self.rng.recent(pool) {
            // As stored, if it was created (a balancing transfer's amount may be less).
            Some(p) if !self.rng.chance(4) => self.oracle.transfer(p.id).copied().unwrap_or(*p),
            _ => {
                // Not a pending transfer: unknown, or a posted one.
                let mut p = match self.rng.recent(&self.transfers) {
                    Some(t) if self.rng.chance(50) => *t,
                    _ => Transfer {
                        id: UNKNOWN_TRANSFERS[self.rng.below(UNKNOWN_TRANSFERS.len())],
                        ledger: 1,
                        code: 1,
                        amount: 10,
                        ..Transfer::default()
                    },
                };
                p.flags = TransferFlags::NONE;
                p
            }
        };
        let mut t = Transfer {
            id: self.new_transfer_id(),
            pending_id: p.id,
            flags: if void {
                TransferFlags::VOID_PENDING_TRANSFER
            } else {
                TransferFlags::POST_PENDING_TRANSFER
            },
            ..Transfer::default()
        };
        t.amount = if void {
            match self.rng.weighted(&[55, 20, 10, 10, 5]) {
                0 => 0,
                1 => p.amount,
                2 => p.amount.saturating_sub(1),
                3 => p.amount.saturating_add(1),
                _ => u128::MAX,
            }
        } else {
            match self.rng.weighted(&[30, 20, 20, 8, 8, 4, 10]) {
                0 => u128::MAX,
                1 => p.amount,
                2 => {
                    if p.amount == 0 {
                        0
                    } else {
                        self.rng.u128() % p.amount
                    }
                }
                3 => 0,
                4 => p.amount.saturating_add(1),
                5 => u128::MAX - 1,
                _ => self.amount(p.ledger),
            }
        };
        // The platform repeats the pending transfer's fields; TigerBeetle also takes zeros.
        match self.rng.weighted(&[45, 45, 10]) {
            0 => {}
            1 => {
                t.debit_account_id = p.debit_account_id;
                t.credit_account_id = p.credit_account_id;
                t.ledger = p.ledger;
                t.code = p.code;
                t.user_data_64 = p.user_data_64;
                t.user_data_32 = p.user_data_32;
            }
            _ => match self.rng.below(4) {
                0 => t.debit_account_id = self.pick(p.ledger.clamp(1, 3), None),
                1 => t.credit_account_id = self.pick(p.ledger.clamp(1, 3), None),
                2 => t.ledger = p.ledger % 3 + 1,
                _ => t.code = p.code % 2 + 1,
            },
        }
        if self.rng.chance(30) {
            t.user_data_128 = self.rng.range(1, 3).into();
        }
        t
    }

    fn balancing(&mut self) -> Transfer {
        let ledger = self.ledger();
        let (debit, credit) = self.pair(ledger);
        let amount = match self.rng.below(4) {
            0 => u128::MAX,
            1 => 0,
            _ => self.amount(ledger),
        };
        let mut t = self.plain(debit, credit, ledger, amount);
        t.flags = match self.rng.weighted(&[45, 45, 10]) {
            0 => TransferFlags::BALANCING_DEBIT,
            1 => TransferFlags::BALANCING_CREDIT,
            _ => TransferFlags::BALANCING_DEBIT | TransferFlags::BALANCING_CREDIT,
        };
        if self.rng.chance(25) {
            t.flags |= TransferFlags::PENDING;
        }
        t
    }

    fn closing(&mut self) -> Transfer {
        // Closing happens on ledger 2 only, so that ledger 1 stays usable.
        let (debit, credit) = self.pair(2);
        let amount = self.rng.range(0, 20).into();
        let mut t = self.plain(debit, credit, 2, amount);
        t.flags = match self.rng.weighted(&[45, 45, 10]) {
            0 => TransferFlags::CLOSING_DEBIT,
            1 => TransferFlags::CLOSING_CREDIT,
            _ => TransferFlags::CLOSING_DEBIT | TransferFlags::CLOSING_CREDIT,
        } | TransferFlags::PENDING;
        if self.rng.chance(10) {
            t.flags = t.flags.without(TransferFlags::PENDING); // closing_transfer_must_be_pending
        }
        t
    }

    /// Spend from a limited account, near its means.
    fn limited(&mut self) -> Transfer {
        let ledger = LEDGERS[self.rng.weighted(&[70, 25, 5])];
        if self.rng.chance(70) {
            let debit = self.pick(ledger, Some(Role::DebitLimited));
            let credit = self.pick(ledger, Some(Role::Open));
            let amount = self.near(self.headroom(debit));
            let mut t = self.plain(debit, credit, ledger, amount);
            if self.rng.chance(30) {
                t.flags = TransferFlags::PENDING;
            }
            t
        } else {
            let debit = self.pick(ledger, Some(Role::Open));
            let credit = self.pick(ledger, Some(Role::CreditLimited));
            let amount = self.near(self.headroom(credit));
            self.plain(debit, credit, ledger, amount)
        }
    }

    /// Fund a limited account (debit-limited accounts need credits; credit-limited ones need
    /// debits).
    fn deposit(&mut self) -> Transfer {
        let ledger = LEDGERS[self.rng.weighted(&[70, 25, 5])];
        if self.rng.chance(75) {
            let debit = self.pick(ledger, Some(Role::Open));
            let credit = self.pick(ledger, Some(Role::DebitLimited));
            let amount = self.rng.range(1, 400).into();
            self.plain(debit, credit, ledger, amount)
        } else {
            let debit = self.pick(ledger, Some(Role::CreditLimited));
            let credit = self.pick(ledger, Some(Role::Open));
            let amount = self.rng.range(1, 400).into();
            self.plain(debit, credit, ledger, amount)
        }
    }

    fn extreme(&mut self) -> Transfer {
        let (debit, credit) = self.pair(EXTREME_LEDGER);
        let amount = self.amount(EXTREME_LEDGER);
        let mut t = self.plain(debit, credit, EXTREME_LEDGER, amount);
        if self.rng.chance(40) {
            t.flags = TransferFlags::PENDING;
        }
        t
    }

    /// A resubmission of an earlier transfer, as it was or with one field changed.
    fn duplicate(&mut self) -> Option<Transfer> {
        let mut t = *self.rng.recent(&self.transfers)?;
        if self.rng.chance(45) {
            return Some(t);
        }
        match self.rng.below(13) {
            0 => t.amount = t.amount.wrapping_add(1),
            1 => t.amount = t.amount.saturating_sub(1),
            2 => t.amount = if t.amount == 0 { u128::MAX } else { 0 },
            3 => t.flags.0 ^= TransferFlags::LINKED.0,
            4 => {
                if t.pending_id == 0 {
                    t.flags.0 ^= TransferFlags::PENDING.0;
                    t.timeout = 0;
                } else {
                    t.flags.0 ^= TransferFlags::POST_PENDING_TRANSFER.0
                        | TransferFlags::VOID_PENDING_TRANSFER.0;
                }
            }
            5 => {
                if t.pending_id != 0 {
                    t.pending_id = self
                        .rng
                        .recent(&self.pendings)
                        .map_or(UNKNOWN_TRANSFERS[0], |p| p.id);
                } else if t.flags.contains(TransferFlags::PENDING) {
                    t.timeout = if t.timeout == 0 {
                        3_600
                    } else {
                        t.timeout.saturating_add(1).max(3_600)
                    };
                } else {
                    t.code = t.code % 3 + 1;
                }
            }
            6 => t.debit_account_id = self.pick(t.ledger.clamp(1, 3), None),
            7 => t.credit_account_id = self.pick(t.ledger.clamp(1, 3), None),
            8 => t.user_data_128 = (t.user_data_128 + 1) % 4,
            9 => t.user_data_64 = (t.user_data_64 + 1) % 4,
            10 => t.user_data_32 = (t.user_data_32 + 1) % 4,
            11 => t.ledger = t.ledger % 3 + 1,
            _ => t.code = t.code % 3 + 1,
        }
        Some(t)
    }

    /// A transfer with one validation error (or an unknown account, or a ledger mismatch).
    fn invalid(&mut self) -> Transfer {
        let ledger = self.ledger();
        let (debit, credit) = self.pair(ledger);
        let amount = self.amount(ledger);
        let mut t = self.plain(debit, credit, ledger, amount);
        match self.rng.below(26) {
            0 => t.id = 0,
            1 => t.id = u128::MAX,
            2 => t.flags.0 |= 1 << (9 + self.rng.below(7)),
            3 => t.debit_account_id = 0,
            4 => t.debit_account_id = u128::MAX,
            5 => t.credit_account_id = 0,
            6 => t.credit_account_id = u128::MAX,
            7 => t.credit_account_id = t.debit_account_id,
            8 => t.pending_id = self.rng.range(1, 5).into(),
            9 => t.timeout = self.rng.range(1, 100) as u32,
            10 => t.ledger = 0,
            11 => t.code = 0,
            12 => t.debit_account_id = UNKNOWN_ACCOUNTS[self.rng.below(3)],
            13 => t.credit_account_id = UNKNOWN_ACCOUNTS[self.rng.below(3)],
            14 => {
                // Accounts of different ledgers.
                let other = ledger % 3 + 1;
                t.credit_account_id = self.pick(other, None);
            }
            15 => t.ledger = ledger % 3 + 1,
            16 => t.timestamp = self.rng.range(1, u64::MAX),
            17 => t.flags = TransferFlags::PENDING | TransferFlags::POST_PENDING_TRANSFER,
            18 => {
                t.flags =
                    TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER;
                t.pending_id = self.rng.recent(&self.pendings).map_or(5, |p| p.id);
            }
            19 => {
                let mut p = {
                    let void = self.rng.chance(50);
                    self.post_or_void(void)
                };
                p.flags |= [
                    TransferFlags::BALANCING_DEBIT,
                    TransferFlags::BALANCING_CREDIT,
                    TransferFlags::CLOSING_DEBIT,
                    TransferFlags::CLOSING_CREDIT,
                    TransferFlags::PENDING,
                ][self.rng.below(5)];
                return p;
            }
            20 => {
                let mut p = {
                    let void = self.rng.chance(50);
                    self.post_or_void(void)
                };
                match self.rng.below(4) {
                    0 => p.pending_id = 0,
                    1 => p.pending_id = u128::MAX,
                    2 => p.pending_id = p.id,
                    _ => p.timeout = self.rng.range(1, 10) as u32,
                }
                return p;
            }
            21 => {
                t.flags = TransferFlags::POST_PENDING_TRANSFER;
                t.pending_id = UNKNOWN_TRANSFERS[self.rng.below(2)];
            }
            22 => {
                t.flags = TransferFlags::CLOSING_DEBIT;
            }
            23 => {
                t.debit_account_id = UNKNOWN_ACCOUNTS[0];
                t.credit_account_id = UNKNOWN_ACCOUNTS[1];
            }
            24 => {
                t.flags = TransferFlags::BALANCING_DEBIT | TransferFlags::PENDING;
                t.timeout = 0;
                t.debit_account_id = UNKNOWN_ACCOUNTS[2];
            }
            _ => {
                t.flags = TransferFlags::VOID_PENDING_TRANSFER;
                t.pending_id = self
                    .rng
                    .recent(&self.transfers)
                    .filter(|x| !x.flags.contains(TransferFlags::PENDING))
                    .map_or(UNKNOWN_TRANSFERS[1], |x| x.id);
            }
        }
        t
    }

    /// One operation, by kind.
    fn transfer_op(&mut self) -> Transfer {
        let kind = self.rng.weighted(&[18, 12, 12, 6, 6, 1, 10, 8, 6, 6, 4]);
        let t = match kind {
            0 => {
                let ledger = self.ledger();
                let (debit, credit) = self.pair(ledger);
                let amount = self.amount(ledger);
                self.plain(debit, credit, ledger, amount)
            }
            1 => self.pending(),
            2 => self.post_or_void(false),
            3 => self.post_or_void(true),
            4 => self.balancing(),
            5 => self.closing(),
            6 => match self.duplicate() {
                Some(t) => return t,
                None => self.pending(),
            },
            7 => self.invalid(),
            8 => self.limited(),
            9 => self.deposit(),
            _ => self.extreme(),
        };
        self.remember(t);
        t
    }

    fn remember(&mut self, t: Transfer) {
        if t.id == 0 || t.id == u128::MAX {
            return;
        }
        debug_assert!(t.timeout != SHORT_TIMEOUT_S || !t.flags.contains(TransferFlags::PENDING));
        self.transfers.push(t);
        if t.flags.contains(TransferFlags::PENDING) {
            self.pendings.push(t);
            if t.flags.contains(TransferFlags::CLOSING_DEBIT)
                || t.flags.contains(TransferFlags::CLOSING_CREDIT)
            {
                // Usually reopen soon: a closed account blocks everything else.
                self.pendings.push(t);
            }
        }
    }

    fn batch_size(&mut self) -> usize {
        match self.rng.weighted(&[550, 300, 110, 30, 8, 2]) {
            0 => self.rng.range(1, 4) as usize,
            1 => self.rng.range(5, 32) as usize,
            2 => self.rng.range(33, 128) as usize,
            3 => self.rng.range(129, 1024) as usize,
            4 => self.rng.range(1025, 4096) as usize,
            _ => self.rng.range(4097, BATCH_EVENTS_MAX as u64) as usize,
        }
    }

    fn transfers_batch(&mut self) -> Vec<Transfer> {
        let size = self.batch_size();
        let mut batch: Vec<Transfer> = Vec::with_capacity(size + 8);
        while batch.len() < size {
            match self.rng.weighted(&[70, 6, 8, 5, 3, 2]) {
                0 => {
                    let t = self.transfer_op();
                    batch.push(t);
                }
                1 => {
                    // A linked chain, perhaps with a failure in the middle.
                    let n = [2, 2, 3, 3, 4, 6][self.rng.below(6)];
                    let mut chain: Vec<Transfer> = (0..n).map(|_| self.transfer_op()).collect();
                    if self.rng.chance(35) {
                        let at = self.rng.below(n);
                        chain[at] = self.invalid();
                    }
                    link(&mut chain);
                    batch.extend(chain);
                }
                2 => {
                    // The platform's pair: post (or void) a reservation, linked with a new
                    // pending transfer.
                    let settle = {
                        let void = self.rng.chance(20);
                        self.post_or_void(void)
                    };
                    self.remember(settle);
                    let pending = self.pending();
                    self.remember(pending);
                    let mut chain = vec![settle, pending];
                    link(&mut chain);
                    batch.extend(chain);
                }
                3 => {
                    // Pending then its post or void in the same batch, perhaps twice.
                    let p = self.pending();
                    self.remember(p);
                    batch.push(p);
                    for _ in 0..self.rng.range(1, 3) {
                        let t = {
                            let void = self.rng.chance(30);
                            self.post_or_void(void)
                        };
                        self.remember(t);
                        batch.push(t);
                    }
                }
                4 => batch.push(self.imported_error()),
                _ => {
                    // A transient failure burns the id; retry it (id_already_failed).
                    let mut t = self.limited();
                    t.amount = 1 << 60;
                    t.flags = TransferFlags::NONE;
                    self.remember(t);
                    batch.push(t);
                    let mut again = t;
                    again.amount = 1;
                    batch.push(again);
                }
            }
        }
        batch.truncate(BATCH_EVENTS_MAX);
        if self.rng.chance(3) {
            // Leave a chain open at the end of the batch.
            batch.last_mut().expect("non-empty").flags |= TransferFlags::LINKED;
        }
        batch
    }

    /// Imported events that fail whatever the cluster holds: a timestamp out of range or in the
    /// future, an imported event in a batch that does not import, or a plain one after an
    /// imported first event, or a tiny timestamp (which regresses: every stream starts with
    /// records newer than that, on both sides).
    fn imported_error(&mut self) -> Transfer {
        let mut t = self.transfer_op();
        t.flags |= TransferFlags::IMPORTED;
        t.timeout = 0;
        let post_or_void = t.flags.contains(TransferFlags::POST_PENDING_TRANSFER)
            || t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
        // Never a past timestamp on a post or void: TigerBeetle 0.16.78 asserts
        // `pending.timestamp < timestamp` before it checks for regression, and the replica
        // crashes (see the MemLedger documentation).
        t.timestamp = match self.rng.below(if post_or_void { 3 } else { 5 }) {
            0 => 0,
            1 => self.rng.range(1 << 63, u64::MAX),
            2 => self.rng.range(1 << 62, (1 << 63) - 1),
            _ => self.rng.range(1, 1000),
        };
        t
    }

    fn accounts_batch(&mut self) -> Vec<Account> {
        let size = self.rng.range(1, 12) as usize;
        let mut batch = Vec::new();
        while batch.len() < size {
            match self.rng.weighted(&[30, 25, 20, 10, 5]) {
                0 => {
                    // New accounts, sometimes on the extreme ledger (fresh room for overflows).
                    let ledger = LEDGERS[self.rng.weighted(&[40, 30, 30])];
                    let role = [Role::Open, Role::DebitLimited, Role::CreditLimited]
                        [self.rng.weighted(&[50, 35, 15])];
                    let mut a = self.account(ledger, role);
                    if self.rng.chance(5) {
                        a.flags |= AccountFlags::CLOSED;
                    }
                    self.accounts.push(a);
                    batch.push(a);
                }
                1 => {
                    // A duplicate, as it was or with one field changed.
                    let mut a = self.accounts[self.rng.below(self.accounts.len())];
                    if self.rng.chance(50) {
                        match self.rng.below(7) {
                            0 => a.flags.0 ^= AccountFlags::HISTORY.0,
                            1 => a.flags.0 ^= AccountFlags::LINKED.0,
                            2 => a.user_data_128 = (a.user_data_128 + 1) % 4,
                            3 => a.user_data_64 = (a.user_data_64 + 1) % 4,
                            4 => a.user_data_32 = (a.user_data_32 + 1) % 4,
                            5 => a.ledger = a.ledger % 3 + 1,
                            _ => a.code = a.code % 2 + 1,
                        }
                    }
                    batch.push(a);
                }
                2 => {
                    let a = self.invalid_account();
                    batch.push(a);
                }
                3 => {
                    // A linked chain of new accounts, perhaps failing in the middle.
                    let n = self.rng.range(2, 4) as usize;
                    let mut chain = Vec::new();
                    for _ in 0..n {
                        let ledger = self.ledger();
                        let a = self.account(ledger, Role::Open);
                        self.accounts.push(a);
                        chain.push(a);
                    }
                    if self.rng.chance(40) {
                        let at = self.rng.below(n);
                        chain[at] = self.invalid_account();
                    }
                    let last = chain.len() - 1;
                    for a in &mut chain[..last] {
                        a.flags |= AccountFlags::LINKED;
                    }
                    batch.extend(chain);
                }
                _ => {
                    let mut a = self.account(1, Role::Open);
                    a.flags |= AccountFlags::IMPORTED;
                    a.timestamp = match self.rng.below(4) {
                        0 => 0,
                        1 => self.rng.range(1 << 63, u64::MAX),
                        2 => self.rng.range(1 << 62, (1 << 63) - 1),
                        _ => self.rng.range(1, 1000),
                    };
                    batch.push(a);
                }
            }
        }
        if self.rng.chance(5) {
            batch.last_mut().expect("non-empty").flags |= AccountFlags::LINKED;
        }
        batch
    }

    fn invalid_account(&mut self) -> Account {
        let mut a = self.account(1, Role::Open);
        match self.rng.below(14) {
            0 => a.id = 0,
            1 => a.id = u128::MAX,
            2 => a.reserved = self.rng.range(1, 100) as u32,
            3 => a.flags.0 |= 1 << (6 + self.rng.below(10)),
            4 => {
                a.flags |= AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
                    | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS
            }
            5 => a.debits_pending = self.rng.range(1, 100).into(),
            6 => a.debits_posted = self.rng.range(1, 100).into(),
            7 => a.credits_pending = u128::MAX,
            8 => a.credits_posted = 1,
            9 => a.ledger = 0,
            10 => a.code = 0,
            11 => a.timestamp = self.rng.range(1, u64::MAX),
            12 => {
                // Two errors: the first in TigerBeetle's order wins.
                a.ledger = 0;
                a.code = 0;
            }
            _ => {
                a.debits_posted = 1;
                a.flags |= AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
                    | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS;
            }
        }
        a
    }

    /// Pending transfers with a short timeout, then a pause long enough for them to expire.
    fn expiry_episode(&mut self) {
        let mut batch = Vec::new();
        for _ in 0..self.rng.range(1, 4) {
            let mut t = if self.rng.chance(20) {
                let mut t = self.closing();
                t.flags |= TransferFlags::PENDING;
                t
            } else {
                self.pending()
            };
            t.timeout = SHORT_TIMEOUT_S;
            // Kept out of `transfers`: a duplicate of one that failed could be created later
            // with a short timeout at an unplanned moment.
            self.expired_pool.push(t);
            batch.push(t);
        }
        self.push(Step::Transfers(batch));
        self.push(Step::Sleep(EXPIRY_SLEEP_MS));
        let expired = std::mem::take(&mut self.expired_pool);
        self.pendings.extend(expired);
    }
}

fn link(chain: &mut [Transfer]) {
    let last = chain.len() - 1;
    for t in &mut chain[..last] {
        t.flags |= TransferFlags::LINKED;
    }
    chain[last].flags = chain[last].flags.without(TransferFlags::LINKED);
}
