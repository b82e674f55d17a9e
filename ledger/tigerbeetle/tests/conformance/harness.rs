//! Replays a stream on two ledgers side by side, compares everything after every step, and
//! shrinks a stream that shows a difference down to a short one that still shows one.
//!
//! A replay maps the stream's logical ids into a fresh namespace (`base + id`, with 0 and
//! `u128::MAX` kept as they are), so that a shared TigerBeetle cluster never sees an id twice,
//! and gives both sides the very same events. It starts with a small prelude (two accounts and a
//! transfer on a ledger of their own) so that both sides hold records newer than any tiny
//! imported timestamp, whatever the stream (or a shrunk piece of it) does.
//!
//! After every step: the per-event results, every account the stream mentions (balances, flags,
//! user data; timestamps aside) and every transfer the step mentions (and the pending transfers
//! it refers to). After the last step: `get_account_transfers`, `query_transfers` and
//! `query_accounts` with several filters (timestamps aside; order included).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use acme_ledger::{
    Account, AccountFilter, AccountFilterFlags, CreateAccountResult, CreateTransferResult, Ledger,
    QueryFilter, QueryFilterFlags, Transfer, BATCH_EVENTS_MAX,
};

use crate::gen::Step;

/// One of the two ledgers under comparison.
pub trait Side {
    fn name(&self) -> &'static str;
    /// Before each replay: a fresh ledger (MemLedger) or nothing (TigerBeetle: the namespace
    /// is fresh).
    fn begin(&mut self);
    fn ledger(&mut self) -> &mut dyn Ledger;
    /// Let `ms` milliseconds pass.
    fn elapse(&mut self, ms: u32);
}

/// Logical ids of the prelude (never used by the generator).
const PRELUDE_ACCOUNTS: [u128; 2] = [999_001, 999_002];
const PRELUDE_TRANSFER: u128 = 999_001;
const PRELUDE_LEDGER: u32 = 99;

/// Maps a logical id (or user_data_128 value) into the namespace `base`.
pub fn map(base: u128, x: u128) -> u128 {
    if x == 0 || x == u128::MAX {
        x
    } else {
        debug_assert!(x < 1 << 32, "logical values stay below 2^32");
        base + x
    }
}

fn map_account(base: u128, a: &Account) -> Account {
    Account {
        id: map(base, a.id),
        user_data_128: map(base, a.user_data_128),
        ..*a
    }
}

fn map_transfer(base: u128, t: &Transfer) -> Transfer {
    Transfer {
        id: map(base, t.id),
        debit_account_id: map(base, t.debit_account_id),
        credit_account_id: map(base, t.credit_account_id),
        pending_id: map(base, t.pending_id),
        user_data_128: map(base, t.user_data_128),
        ..*t
    }
}

/// What one step returned on each side: result codes by event (empty for a sleep).
#[derive(Clone, Debug, Default)]
pub struct StepResults {
    pub left: Vec<String>,
    pub right: Vec<String>,
}

/// The first difference of a replay.
#[derive(Clone, Debug)]
pub struct Mismatch {
    /// The step after which (or in which) it showed; `steps` for the final queries.
    pub step: usize,
    pub what: String,
    /// A side could not answer at all (`LedgerError`): nothing to shrink, the cluster may be
    /// down.
    pub error: bool,
    /// Results of steps `0..=step` (as far as they ran).
    pub results: Vec<StepResults>,
}

/// Figures of a replay without differences.
#[derive(Clone, Debug, Default)]
pub struct Replayed {
    pub events: usize,
    pub steps: usize,
    /// How often each result was seen (both sides agreed), by operation and name.
    pub results: BTreeMap<String, u64>,
}

/// Every account id a stream mentions (created or not), for the state comparison.
fn account_ids(steps: &[Step]) -> Vec<u128> {
    let mut ids = BTreeSet::new();
    for step in steps {
        match step {
            Step::Accounts(batch) => ids.extend(batch.iter().map(|a| a.id)),
            Step::Transfers(batch) => {
                for t in batch {
                    ids.insert(t.debit_account_id);
                    ids.insert(t.credit_account_id);
                }
            }
            Step::Sleep(_) => {}
        }
    }
    ids.remove(&0);
    ids.remove(&u128::MAX);
    ids.into_iter().collect()
}

/// The transfers a step mentions (ids and pending ids).
fn transfer_ids(batch: &[Transfer]) -> Vec<u128> {
    let mut ids = BTreeSet::new();
    for t in batch {
        ids.insert(t.id);
        ids.insert(t.pending_id);
    }
    ids.remove(&0);
    ids.remove(&u128::MAX);
    ids.into_iter().collect()
}

/// The inverse of [`map`] (values outside the namespace stay as they are).
pub fn unmap(base: u128, x: u128) -> u128 {
    match x.checked_sub(base) {
        Some(d) if d > 0 && d < 1 << 32 => d,
        _ => x,
    }
}

/// A record as compared and printed: timestamp cleared, ids back to logical ones.
fn normal_account(base: u128, a: &Account) -> Account {
    Account {
        id: unmap(base, a.id),
        user_data_128: unmap(base, a.user_data_128),
        timestamp: 0,
        ..*a
    }
}

fn normal_transfer(base: u128, t: &Transfer) -> Transfer {
    Transfer {
        id: unmap(base, t.id),
        debit_account_id: unmap(base, t.debit_account_id),
        credit_account_id: unmap(base, t.credit_account_id),
        pending_id: unmap(base, t.pending_id),
        user_data_128: unmap(base, t.user_data_128),
        timestamp: 0,
        ..*t
    }
}

/// Replays `steps` on both sides in namespace `base`. `final_queries`: also compare the query
/// operations after the last step.
pub fn replay(
    steps: &[Step],
    base: u128,
    left: &mut dyn Side,
    right: &mut dyn Side,
    final_queries: bool,
) -> Result<Replayed, Box<Mismatch>> {
    left.begin();
    right.begin();
    prelude(base, left);
    prelude(base, right);

    let logical_accounts = account_ids(steps);
    let accounts: Vec<u128> = logical_accounts.iter().map(|&id| map(base, id)).collect();
    let mut out = Replayed::default();
    let mut results: Vec<StepResults> = Vec::new();
    let fail = |step: usize, what: String, results: &Vec<StepResults>| {
        Box::new(Mismatch {
            step,
            error: what.contains(" failed: "),
            what,
            results: results.clone(),
        })
    };

    for (i, step) in steps.iter().enumerate() {
        let mut transfers_to_check = Vec::new();
        match step {
            Step::Accounts(batch) => {
                let batch: Vec<Account> = batch.iter().map(|a| map_account(base, a)).collect();
                let l = left.ledger().create_accounts(&batch);
                let r = right.ledger().create_accounts(&batch);
                let (l, r) = match (l, r) {
                    (Ok(l), Ok(r)) => (l, r),
                    (l, r) => {
                        return Err(fail(
                            i,
                            format!(
                                "create_accounts failed: {} {:?}, {} {:?}",
                                left.name(),
                                l.err(),
                                right.name(),
                                r.err()
                            ),
                            &results,
                        ))
                    }
                };
                results.push(StepResults {
                    left: l.iter().map(account_result).collect(),
                    right: r.iter().map(account_result).collect(),
                });
                if let Some(j) = (0..l.len().max(r.len())).find(|&j| l.get(j) != r.get(j)) {
                    return Err(fail(
                        i,
                        format!(
                            "event {j}: {} says {:?}, {} says {:?}",
                            left.name(),
                            l.get(j),
                            right.name(),
                            r.get(j)
                        ),
                        &results,
                    ));
                }
                for result in &l {
                    *out.results
                        .entry(format!("create_accounts {result:?}"))
                        .or_default() += 1;
                }
                out.events += batch.len();
            }
            Step::Transfers(batch) => {
                let batch: Vec<Transfer> = batch.iter().map(|t| map_transfer(base, t)).collect();
                let l = left.ledger().create_transfers(&batch);
                let r = right.ledger().create_transfers(&batch);
                let (l, r) = match (l, r) {
                    (Ok(l), Ok(r)) => (l, r),
                    (l, r) => {
                        return Err(fail(
                            i,
                            format!(
                                "create_transfers failed: {} {:?}, {} {:?}",
                                left.name(),
                                l.err(),
                                right.name(),
                                r.err()
                            ),
                            &results,
                        ))
                    }
                };
                results.push(StepResults {
                    left: l.iter().map(transfer_result).collect(),
                    right: r.iter().map(transfer_result).collect(),
                });
                if let Some(j) = (0..l.len().max(r.len())).find(|&j| l.get(j) != r.get(j)) {
                    return Err(fail(
                        i,
                        format!(
                            "event {j}: {} says {:?}, {} says {:?}",
                            left.name(),
                            l.get(j),
                            right.name(),
                            r.get(j)
                        ),
                        &results,
                    ));
                }
                for result in &l {
                    *out.results
                        .entry(format!("create_transfers {result:?}"))
                        .or_default() += 1;
                }
                out.events += batch.len();
                transfers_to_check = transfer_ids(&batch);
            }
            Step::Sleep(ms) => {
                left.elapse(*ms);
                right.elapse(*ms);
                results.push(StepResults::default());
            }
        }
        out.steps += 1;

        // The state after the step.
        for chunk in accounts.chunks(BATCH_EVENTS_MAX) {
            let l = left.ledger().lookup_accounts(chunk);
            let r = right.ledger().lookup_accounts(chunk);
            if let Some(what) =
                compare_records("lookup_accounts", left, right, l, r, base, normal_account)
            {
                return Err(fail(i, what, &results));
            }
        }
        for chunk in transfers_to_check.chunks(BATCH_EVENTS_MAX) {
            let l = left.ledger().lookup_transfers(chunk);
            let r = right.ledger().lookup_transfers(chunk);
            if let Some(what) =
                compare_records("lookup_transfers", left, right, l, r, base, normal_transfer)
            {
                return Err(fail(i, what, &results));
            }
        }
    }

    if final_queries {
        if let Some(what) = compare_queries(base, &logical_accounts, left, right) {
            return Err(fail(steps.len(), what, &results));
        }
    }
    Ok(out)
}

fn prelude(base: u128, side: &mut dyn Side) {
    let accounts: Vec<Account> = PRELUDE_ACCOUNTS
        .iter()
        .map(|&id| Account {
            id: map(base, id),
            ledger: PRELUDE_LEDGER,
            code: 1,
            ..Account::default()
        })
        .collect();
    let r = side.ledger().create_accounts(&accounts);
    assert!(
        matches!(&r, Ok(r) if r.iter().all(|r| *r == CreateAccountResult::Ok)),
        "{}: prelude accounts: {r:?}",
        side.name()
    );
    let transfer = Transfer {
        id: map(base, PRELUDE_TRANSFER),
        debit_account_id: accounts[0].id,
        credit_account_id: accounts[1].id,
        amount: 1,
        ledger: PRELUDE_LEDGER,
        code: 1,
        ..Transfer::default()
    };
    let r = side.ledger().create_transfers(&[transfer]);
    assert!(
        matches!(&r, Ok(r) if r.iter().all(|r| *r == CreateTransferResult::Ok)),
        "{}: prelude transfer: {r:?}",
        side.name()
    );
}

fn account_result(r: &CreateAccountResult) -> String {
    format!("{r:?}")
}

fn transfer_result(r: &CreateTransferResult) -> String {
    format!("{r:?}")
}

/// Compares two answers record by record (timestamps aside); `None` when equal.
fn compare_records<T: PartialEq + core::fmt::Debug>(
    what: &str,
    left: &dyn Side,
    right: &dyn Side,
    l: Result<Vec<T>, acme_ledger::LedgerError>,
    r: Result<Vec<T>, acme_ledger::LedgerError>,
    base: u128,
    normal: fn(u128, &T) -> T,
) -> Option<String> {
    let (l, r) = match (l, r) {
        (Ok(l), Ok(r)) => (l, r),
        (l, r) => {
            return Some(format!(
                "{what} failed: {} {:?}, {} {:?}",
                left.name(),
                l.err(),
                right.name(),
                r.err()
            ))
        }
    };
    let l: Vec<T> = l.iter().map(|x| normal(base, x)).collect();
    let r: Vec<T> = r.iter().map(|x| normal(base, x)).collect();
    if l == r {
        return None;
    }
    let index = (0..l.len().max(r.len()))
        .find(|&i| l.get(i) != r.get(i))
        .expect("a difference");
    Some(format!(
        "{what} differs ({} records on {}, {} on {}; logical ids, timestamps left out); \
         first difference at record {index}:\n      {}: {:?}\n      {}: {:?}",
        l.len(),
        left.name(),
        r.len(),
        right.name(),
        left.name(),
        l.get(index),
        right.name(),
        r.get(index)
    ))
}

fn compare_queries(
    base: u128,
    logical_accounts: &[u128],
    left: &mut dyn Side,
    right: &mut dyn Side,
) -> Option<String> {
    let both = AccountFilterFlags(AccountFilterFlags::DEBITS.0 | AccountFilterFlags::CREDITS.0);
    for &logical in logical_accounts {
        let account_id = map(base, logical);
        let filters = [
            AccountFilter {
                account_id,
                limit: acme_ledger::QUERY_RESULTS_MAX,
                flags: both,
                ..AccountFilter::default()
            },
            AccountFilter {
                account_id,
                limit: 5,
                flags: AccountFilterFlags(both.0 | AccountFilterFlags::REVERSED.0),
                ..AccountFilter::default()
            },
            AccountFilter {
                account_id,
                code: 1,
                limit: 100,
                flags: AccountFilterFlags::DEBITS,
                ..AccountFilter::default()
            },
            AccountFilter {
                account_id,
                user_data_64: 1,
                limit: 100,
                flags: AccountFilterFlags::CREDITS,
                ..AccountFilter::default()
            },
            AccountFilter {
                account_id,
                limit: 100,
                flags: AccountFilterFlags::NONE,
                ..AccountFilter::default()
            },
        ];
        let mut bounds = None;
        for filter in filters {
            let l = left.ledger().get_account_transfers(&filter);
            let r = right.ledger().get_account_transfers(&filter);
            if bounds.is_none() {
                bounds = Some(time_bounds(&l, &r, |t| t.timestamp));
            }
            let what = format!(
                "get_account_transfers(A{logical}, flags {:?}, limit {}, code {}, user_data_64 {})",
                filter.flags, filter.limit, filter.code, filter.user_data_64
            );
            if let Some(d) = compare_records(&what, left, right, l, r, base, normal_transfer) {
                return Some(d);
            }
        }
        // Timestamp ranges: each side's own timestamps of the same records (a third and two
        // thirds into the full answer), inclusive bounds, forwards and reversed.
        if let Some(Some([(l_min, l_max), (r_min, r_max)])) = bounds {
            for (reversed, limit) in [(false, 8189), (true, 2)] {
                let flags = if reversed {
                    AccountFilterFlags(both.0 | AccountFilterFlags::REVERSED.0)
                } else {
                    both
                };
                let f = |timestamp_min, timestamp_max| AccountFilter {
                    account_id,
                    timestamp_min,
                    timestamp_max,
                    limit,
                    flags,
                    ..AccountFilter::default()
                };
                let l = left.ledger().get_account_transfers(&f(l_min, l_max));
                let r = right.ledger().get_account_transfers(&f(r_min, r_max));
                let what = format!(
                    "get_account_transfers(A{logical}, timestamps from the third to the two \
                     thirds record, reversed {reversed}, limit {limit})"
                );
                if let Some(d) = compare_records(&what, left, right, l, r, base, normal_transfer) {
                    return Some(d);
                }
            }
        }
    }
    for tag in 1..=3u128 {
        let user_data_128 = map(base, tag);
        let filters = [
            QueryFilter {
                user_data_128,
                limit: acme_ledger::QUERY_RESULTS_MAX,
                ..QueryFilter::default()
            },
            QueryFilter {
                user_data_128,
                limit: 10,
                flags: QueryFilterFlags::REVERSED,
                ..QueryFilter::default()
            },
            QueryFilter {
                user_data_128,
                ledger: 1,
                code: 2,
                limit: 1000,
                ..QueryFilter::default()
            },
            QueryFilter {
                user_data_128,
                user_data_64: 1,
                user_data_32: 2,
                limit: 1000,
                ..QueryFilter::default()
            },
        ];
        let mut transfer_bounds = None;
        let mut account_bounds = None;
        for filter in filters {
            let l = left.ledger().query_transfers(&filter);
            let r = right.ledger().query_transfers(&filter);
            if transfer_bounds.is_none() {
                transfer_bounds = Some(time_bounds(&l, &r, |t| t.timestamp));
            }
            let shown = QueryFilter {
                user_data_128: tag,
                ..filter
            };
            let what = format!("query_transfers({shown:?})");
            if let Some(d) = compare_records(&what, left, right, l, r, base, normal_transfer) {
                return Some(d);
            }
            let l = left.ledger().query_accounts(&filter);
            let r = right.ledger().query_accounts(&filter);
            if account_bounds.is_none() {
                account_bounds = Some(time_bounds(&l, &r, |a| a.timestamp));
            }
            let what = format!("query_accounts({shown:?})");
            if let Some(d) = compare_records(&what, left, right, l, r, base, normal_account) {
                return Some(d);
            }
        }
        for (reversed, limit) in [(false, 8189), (true, 2)] {
            let f = |(timestamp_min, timestamp_max)| QueryFilter {
                user_data_128,
                timestamp_min,
                timestamp_max,
                limit,
                flags: if reversed {
                    QueryFilterFlags::REVERSED
                } else {
                    QueryFilterFlags::NONE
                },
                ..QueryFilter::default()
            };
            if let Some(Some([lb, rb])) = transfer_bounds {
                let l = left.ledger().query_transfers(&f(lb));
                let r = right.ledger().query_transfers(&f(rb));
                let what = format!(
                    "query_transfers(user_data_128 {tag}, timestamps from the third to the two \
                     thirds record, reversed {reversed}, limit {limit})"
                );
                if let Some(d) = compare_records(&what, left, right, l, r, base, normal_transfer) {
                    return Some(d);
                }
            }
            if let Some(Some([lb, rb])) = account_bounds {
                let l = left.ledger().query_accounts(&f(lb));
                let r = right.ledger().query_accounts(&f(rb));
                let what = format!(
                    "query_accounts(user_data_128 {tag}, timestamps from the third to the two \
                     thirds record, reversed {reversed}, limit {limit})"
                );
                if let Some(d) = compare_records(&what, left, right, l, r, base, normal_account) {
                    return Some(d);
                }
            }
        }
    }
    None
}

/// Each side's timestamps of the records a third and two thirds into its answer, when both
/// answers have the same length (at least 3); the comparison of the answers comes after.
fn time_bounds<T>(
    l: &Result<Vec<T>, acme_ledger::LedgerError>,
    r: &Result<Vec<T>, acme_ledger::LedgerError>,
    timestamp: fn(&T) -> u64,
) -> Option<[(u64, u64); 2]> {
    let (Ok(l), Ok(r)) = (l, r) else { return None };
    if l.len() != r.len() || l.len() < 3 {
        return None;
    }
    let (i, j) = (l.len() / 3, l.len() * 2 / 3);
    Some([
        (timestamp(&l[i]), timestamp(&l[j])),
        (timestamp(&r[i]), timestamp(&r[j])),
    ])
}

// ---------------------------------------------------------------------------------------------
// Shrinking.

/// The outcome of shrinking.
pub struct Shrunk {
    pub steps: Vec<Step>,
    pub mismatch: Mismatch,
    pub replays: usize,
    /// False when the replay budget ran out before a fixpoint.
    pub complete: bool,
}

/// Shrinks `steps` (which show `mismatch`) by dropping whole steps, then events within steps,
/// for as long as the shorter stream still shows a difference (any difference), until nothing
/// more can be dropped or `budget` replays have run. `check` replays a candidate (on fresh
/// ledgers / fresh ids) and returns its first difference.
pub fn shrink(
    steps: Vec<Step>,
    mismatch: Mismatch,
    budget: usize,
    check: &mut dyn FnMut(&[Step]) -> Option<Mismatch>,
) -> Shrunk {
    let mut s = Shrunk {
        steps,
        mismatch,
        replays: 0,
        complete: false,
    };
    truncate_after(&mut s.steps, s.mismatch.step);
    let mut try_candidate = |s: &mut Shrunk, candidate: Vec<Step>| -> bool {
        if s.replays >= budget {
            return false;
        }
        s.replays += 1;
        match check(&candidate) {
            Some(m) => {
                s.steps = candidate;
                truncate_after(&mut s.steps, m.step);
                s.mismatch = m;
                true
            }
            None => false,
        }
    };
    loop {
        let before = (s.steps.len(), total_events(&s.steps));
        // Whole steps, in chunks of halving size.
        let mut chunk = s.steps.len().div_ceil(2).max(1);
        loop {
            let mut i = 0;
            while i < s.steps.len() {
                let end = (i + chunk).min(s.steps.len());
                let mut candidate = s.steps.clone();
                candidate.drain(i..end);
                if candidate.is_empty() || !try_candidate(&mut s, candidate) {
                    i += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        // Events within each step, in chunks of halving size.
        let mut step = 0;
        while step < s.steps.len() {
            let n = s.steps[step].events();
            if n > 1 {
                let mut chunk = n.div_ceil(2);
                loop {
                    let mut i = 0;
                    while step < s.steps.len() && i < s.steps[step].events() {
                        let len = s.steps[step].events();
                        let end = (i + chunk).min(len);
                        if end - i == len {
                            i = end; // Dropping every event is dropping the step (done above).
                            continue;
                        }
                        let mut candidate = s.steps.clone();
                        match &mut candidate[step] {
                            Step::Accounts(b) => drop(b.drain(i..end)),
                            Step::Transfers(b) => drop(b.drain(i..end)),
                            Step::Sleep(_) => unreachable!(),
                        }
                        if !try_candidate(&mut s, candidate) {
                            i += chunk;
                        }
                    }
                    if chunk == 1 {
                        break;
                    }
                    chunk = chunk.div_ceil(2);
                }
            }
            step += 1;
        }
        if s.replays >= budget {
            return s;
        }
        if (s.steps.len(), total_events(&s.steps)) == before {
            s.complete = true;
            return s;
        }
    }
}

fn truncate_after(steps: &mut Vec<Step>, step: usize) {
    if step < steps.len() {
        steps.truncate(step + 1);
    }
}

pub fn total_events(steps: &[Step]) -> usize {
    steps.iter().map(Step::events).sum()
}

// ---------------------------------------------------------------------------------------------
// Printing, in logical ids.

fn amount(a: u128) -> String {
    if a == u128::MAX {
        "MAX".into()
    } else if a > 1 << 64 {
        format!("{a:#x}")
    } else {
        a.to_string()
    }
}

fn id(prefix: &str, x: u128) -> String {
    if x == u128::MAX {
        format!("{prefix}MAX")
    } else {
        format!("{prefix}{x}")
    }
}

pub fn describe_transfer(t: &Transfer) -> String {
    let mut s = format!(
        "{} {} -> {} amount={}",
        id("T", t.id),
        id("A", t.debit_account_id),
        id("A", t.credit_account_id),
        amount(t.amount)
    );
    if t.pending_id != 0 {
        let _ = write!(s, " pending_id={}", id("T", t.pending_id));
    }
    let _ = write!(s, " ledger={} code={}", t.ledger, t.code);
    if (t.user_data_128, t.user_data_64, t.user_data_32) != (0, 0, 0) {
        let _ = write!(
            s,
            " user_data=({},{},{})",
            t.user_data_128, t.user_data_64, t.user_data_32
        );
    }
    if t.timeout != 0 {
        let _ = write!(s, " timeout={}", t.timeout);
    }
    if t.timestamp != 0 {
        let _ = write!(s, " timestamp={}", t.timestamp);
    }
    let _ = write!(s, " {:?}", t.flags);
    s
}

pub fn describe_account(a: &Account) -> String {
    let mut s = format!("{} ledger={} code={}", id("A", a.id), a.ledger, a.code);
    if (a.user_data_128, a.user_data_64, a.user_data_32) != (0, 0, 0) {
        let _ = write!(
            s,
            " user_data=({},{},{})",
            a.user_data_128, a.user_data_64, a.user_data_32
        );
    }
    for (name, v) in [
        ("debits_pending", a.debits_pending),
        ("debits_posted", a.debits_posted),
        ("credits_pending", a.credits_pending),
        ("credits_posted", a.credits_posted),
    ] {
        if v != 0 {
            let _ = write!(s, " {name}={}", amount(v));
        }
    }
    if a.reserved != 0 {
        let _ = write!(s, " reserved={}", a.reserved);
    }
    if a.timestamp != 0 {
        let _ = write!(s, " timestamp={}", a.timestamp);
    }
    let _ = write!(s, " {:?}", a.flags);
    s
}

/// The steps with both sides' results, event by event; differing results are marked.
pub fn describe(steps: &[Step], m: &Mismatch, left: &str, right: &str) -> String {
    let mut s = String::new();
    for (i, step) in steps.iter().enumerate() {
        let results = m.results.get(i);
        let result = |j: usize| -> String {
            match results {
                Some(r) => {
                    let l = r.left.get(j).map_or("-", String::as_str);
                    let rr = r.right.get(j).map_or("-", String::as_str);
                    if l == rr {
                        format!("both {l}")
                    } else {
                        format!("{left} {l}, {right} {rr}   <<< DIFFERENT")
                    }
                }
                None => "(not run)".into(),
            }
        };
        match step {
            Step::Accounts(batch) => {
                let _ = writeln!(s, "  step {i}: create_accounts ({} events)", batch.len());
                for (j, a) in batch.iter().enumerate() {
                    let _ = writeln!(s, "    [{j}] {}  =>  {}", describe_account(a), result(j));
                }
            }
            Step::Transfers(batch) => {
                let _ = writeln!(s, "  step {i}: create_transfers ({} events)", batch.len());
                for (j, t) in batch.iter().enumerate() {
                    let _ = writeln!(s, "    [{j}] {}  =>  {}", describe_transfer(t), result(j));
                }
            }
            Step::Sleep(ms) => {
                let _ = writeln!(s, "  step {i}: sleep {ms} ms");
            }
        }
    }
    let at = if m.step >= steps.len() {
        "after the last step (queries)".to_string()
    } else {
        format!("at step {}", m.step)
    };
    let _ = writeln!(s, "  first difference {at}: {}", m.what);
    s
}
