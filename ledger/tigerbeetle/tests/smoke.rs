//! Smoke test of `TigerBeetleLedger` against a running cluster.
//!
//! Needs `TB_ADDRESS` (for example `127.0.0.1:3000`, or the list `tools/tigerbeetle.sh up`
//! prints) and optionally `TB_CLUSTER_ID` (default 0). Without `TB_ADDRESS` the tests fail, on
//! purpose, unless `ACME_SKIP_TIGERBEETLE=1` says to skip them: a silently skipped test would
//! look like a passing one. Every run uses fresh ids, so a cluster can be reused.
//!
//! This is an adapter's test: it reads the environment and the wall clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::time::Duration;

use acme_ledger::{
    Account, AccountFilter, AccountFilterFlags, AccountFlags, CreateAccountResult,
    CreateTransferResult as R, Ledger, LedgerError, QueryFilter, Transfer, TransferFlags,
    BATCH_EVENTS_MAX,
};
use acme_ledger_tigerbeetle::TigerBeetleLedger;

const LEDGER: u32 = 1;
const CODE: u16 = 1;

/// The adapter for the cluster named by the environment, or `None` when told to skip.
fn cluster() -> Option<TigerBeetleLedger> {
    let address = std::env::var("TB_ADDRESS")
        .ok()
        .filter(|a| !a.trim().is_empty());
    let Some(address) = address else {
        if std::env::var("ACME_SKIP_TIGERBEETLE").as_deref() == Ok("1") {
            eprintln!("SKIPPED: TB_ADDRESS is unset and ACME_SKIP_TIGERBEETLE=1");
            return None;
        }
        panic!(
            "TB_ADDRESS is not set. These tests need a TigerBeetle cluster: run \
             `tools/tigerbeetle.sh install && tools/tigerbeetle.sh up` and set TB_ADDRESS to the \
             address list it prints (or set ACME_SKIP_TIGERBEETLE=1 to skip them knowingly)."
        );
    };
    let cluster_id: u128 = std::env::var("TB_CLUSTER_ID")
        .ok()
        .map(|s| s.parse().expect("TB_CLUSTER_ID must be an integer"))
        .unwrap_or(0);
    let mut ledger = TigerBeetleLedger::connect(cluster_id, &address)
        .unwrap_or_else(|e| panic!("connect to {address}: {e}"));
    ledger
        .ping()
        .unwrap_or_else(|e| panic!("TigerBeetle at {address} does not answer: {e}"));
    Some(ledger)
}

/// A block of fresh ids for this run: TigerBeetle time-based ids leave the low 80 bits random,
/// so clear the low 32 bits and count from there.
fn fresh_ids() -> u128 {
    (tigerbeetle_unofficial::id() >> 32) << 32
}

fn account(id: u128, tag: u128, flags: AccountFlags) -> Account {
    Account {
        id,
        user_data_128: tag,
        ledger: LEDGER,
        code: CODE,
        flags,
        ..Account::default()
    }
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: LEDGER,
        code: CODE,
        ..Transfer::default()
    }
}

fn balances(ledger: &mut TigerBeetleLedger, ids: &[u128]) -> Vec<(u128, u128, u128, u128)> {
    let found = ledger.lookup_accounts(ids).unwrap();
    assert_eq!(found.len(), ids.len(), "every account is found");
    found
        .iter()
        .map(|a| {
            (
                a.debits_pending,
                a.debits_posted,
                a.credits_pending,
                a.credits_posted,
            )
        })
        .collect()
}

#[test]
fn accounts_transfers_chains_two_phase_and_duplicates() {
    let Some(mut ledger) = cluster() else { return };
    let base = fresh_ids();
    let tag = base; // user_data_128 of everything this test creates, for the queries
    let (a, b, c) = (base + 1, base + 2, base + 3);
    let missing = base + 99;

    // Accounts: three new ones, then a replay with one changed: dense results, one per event.
    let accounts = [
        account(a, tag, AccountFlags::NONE),
        account(b, tag, AccountFlags::NONE),
        account(c, tag, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
    ];
    assert_eq!(
        ledger.create_accounts(&accounts).unwrap(),
        vec![CreateAccountResult::Ok; 3]
    );
    let mut changed = accounts[1];
    changed.code = CODE + 1;
    assert_eq!(
        ledger
            .create_accounts(&[accounts[0], changed, accounts[2]])
            .unwrap(),
        vec![
            CreateAccountResult::Exists,
            CreateAccountResult::ExistsWithDifferentCode,
            CreateAccountResult::Exists,
        ]
    );

    // A plain transfer, then a batch with a linked chain failing in the middle and an
    // independent transfer after it.
    let t1 = transfer(base + 101, a, b, 100);
    assert_eq!(ledger.create_transfers(&[t1]).unwrap(), vec![R::Ok]);
    let chain = [
        Transfer {
            flags: TransferFlags::LINKED,
            ..transfer(base + 102, a, b, 10)
        },
        Transfer {
            flags: TransferFlags::LINKED,
            ..transfer(base + 103, a, missing, 10)
        },
        transfer(base + 104, b, a, 10),
        transfer(base + 105, b, a, 7),
        // c may not go negative: rejected on its own, outside any chain.
        transfer(base + 106, c, a, 1),
    ];
    assert_eq!(
        ledger.create_transfers(&chain).unwrap(),
        vec![
            R::LinkedEventFailed,
            R::CreditAccountNotFound,
            R::LinkedEventFailed,
            R::Ok,
            R::ExceedsCredits,
        ]
    );
    let found = ledger
        .lookup_transfers(&[base + 102, base + 104, base + 105, base + 101])
        .unwrap();
    assert_eq!(
        found.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![base + 105, base + 101],
        "the failed chain left nothing; lookups keep the order of the ids"
    );
    assert!(found.iter().all(|t| t.timestamp != 0));

    // Two-phase: reserve 50, post 30; the other 20 goes back.
    let pending = Transfer {
        flags: TransferFlags::PENDING,
        ..transfer(base + 201, a, b, 50)
    };
    assert_eq!(ledger.create_transfers(&[pending]).unwrap(), vec![R::Ok]);
    assert_eq!(balances(&mut ledger, &[a])[0], (50, 100, 0, 7));
    let post = Transfer {
        pending_id: pending.id,
        flags: TransferFlags::POST_PENDING_TRANSFER,
        ..transfer(base + 202, a, b, 30)
    };
    assert_eq!(ledger.create_transfers(&[post]).unwrap(), vec![R::Ok]);
    let post_again = Transfer {
        id: base + 203,
        ..post
    };
    assert_eq!(
        ledger.create_transfers(&[post_again]).unwrap(),
        vec![R::PendingTransferAlreadyPosted]
    );

    // Duplicates: same id and fields is `exists`, a different amount is an error.
    let mut t1_changed = t1;
    t1_changed.amount = 101;
    assert_eq!(
        ledger.create_transfers(&[t1, t1_changed]).unwrap(),
        vec![R::Exists, R::ExistsWithDifferentAmount]
    );

    // Balances: a paid 100 + 30, received 7; b the reverse; c untouched.
    assert_eq!(
        balances(&mut ledger, &[a, b, c]),
        vec![(0, 130, 0, 7), (0, 7, 0, 130), (0, 0, 0, 0)]
    );

    // Queries.
    let of_a = ledger
        .get_account_transfers(&AccountFilter {
            account_id: a,
            limit: 100,
            flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
            ..AccountFilter::default()
        })
        .unwrap();
    assert_eq!(
        of_a.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![base + 101, base + 105, base + 201, base + 202],
        "by timestamp"
    );
    let newest_debit = ledger
        .get_account_transfers(&AccountFilter {
            account_id: a,
            limit: 1,
            flags: AccountFilterFlags::DEBITS | AccountFilterFlags::REVERSED,
            ..AccountFilter::default()
        })
        .unwrap();
    assert_eq!(newest_debit.len(), 1);
    assert_eq!(newest_debit[0].id, base + 202);
    assert_eq!(
        newest_debit[0],
        post_with_timestamp(post, newest_debit[0].timestamp)
    );

    let tagged_accounts = ledger
        .query_accounts(&QueryFilter {
            user_data_128: tag,
            limit: 10,
            ..QueryFilter::default()
        })
        .unwrap();
    assert_eq!(
        tagged_accounts.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![a, b, c]
    );
    let on_ledger = ledger
        .query_transfers(&QueryFilter {
            ledger: LEDGER,
            code: CODE,
            timestamp_min: found[1].timestamp, // t1's
            limit: 2,
            ..QueryFilter::default()
        })
        .unwrap();
    assert_eq!(on_ledger.len(), 2);
    assert_eq!(on_ledger[0].id, base + 101);
    // An invalid filter (limit 0) answers nothing, as in TigerBeetle and MemLedger.
    assert!(ledger
        .query_transfers(&QueryFilter::default())
        .unwrap()
        .is_empty());
}

fn post_with_timestamp(post: Transfer, timestamp: u64) -> Transfer {
    Transfer { timestamp, ..post }
}

#[test]
fn oversized_calls_and_many_requests() {
    let Some(mut ledger) = cluster() else { return };
    let base = fresh_ids();
    let (a, b) = (base + 1, base + 2);
    assert_eq!(
        ledger
            .create_accounts(&[
                account(a, base, AccountFlags::NONE),
                account(b, base, AccountFlags::NONE)
            ])
            .unwrap(),
        vec![CreateAccountResult::Ok; 2]
    );

    // The port's limit, as MemLedger: one request's worth of events at most.
    let too_many: Vec<Transfer> = (0..BATCH_EVENTS_MAX as u128 + 1)
        .map(|i| transfer(base + 1000 + i, a, b, 1))
        .collect();
    assert_eq!(
        ledger.create_transfers(&too_many),
        Err(LedgerError::BatchTooLarge {
            events: BATCH_EVENTS_MAX + 1,
            max: BATCH_EVENTS_MAX
        })
    );
    assert!(matches!(
        ledger.lookup_accounts(&vec![a; BATCH_EVENTS_MAX + 1]),
        Err(LedgerError::BatchTooLarge { .. })
    ));

    // A full request goes through the port in one call.
    let full: Vec<Transfer> = (0..BATCH_EVENTS_MAX as u128)
        .map(|i| transfer(base + 1000 + i, a, b, 1))
        .collect();
    assert_eq!(
        ledger.create_transfers(&full).unwrap(),
        vec![R::Ok; BATCH_EVENTS_MAX]
    );

    // Many requests: 3 full requests and a bit, with a linked chain across the first boundary
    // (kept whole by the split) and one failure in the last request, at its dense position.
    let n = 3 * BATCH_EVENTS_MAX + 100;
    let first = base + 100_000;
    let mut many: Vec<Transfer> = (0..n as u128)
        .map(|i| transfer(first + i, a, b, 1))
        .collect();
    for t in &mut many[BATCH_EVENTS_MAX - 3..BATCH_EVENTS_MAX + 2] {
        t.flags = TransferFlags::LINKED;
    }
    many[n - 5].credit_account_id = base + 99; // not found
    ledger.set_requests_in_flight(3);
    let results = ledger.create_transfers_many(&many).unwrap();
    assert_eq!(results.len(), n);
    let failed: Vec<(usize, R)> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| **r != R::Ok)
        .map(|(i, r)| (i, *r))
        .collect();
    assert_eq!(failed, vec![(n - 5, R::CreditAccountNotFound)]);
    // Replayed: every applied one `exists` and the failed one fails again (a transient error,
    // so its id is burnt). In the linked chain, `exists` on its first event fails the chain, so
    // the rest of it reports `linked_event_failed` although those transfers exist: TigerBeetle's
    // semantics (and MemLedger's), which callers replaying chains must expect.
    let again = ledger.create_transfers_many(&many).unwrap();
    let not_exists: Vec<(usize, R)> = again
        .iter()
        .enumerate()
        .filter(|(_, r)| **r != R::Exists)
        .map(|(i, r)| (i, *r))
        .collect();
    let chain_start = BATCH_EVENTS_MAX - 3;
    let mut expected: Vec<(usize, R)> = (chain_start + 1..=chain_start + 5)
        .map(|i| (i, R::LinkedEventFailed))
        .collect();
    expected.push((n - 5, R::IdAlreadyFailed));
    assert_eq!(not_exists, expected);

    let moved = (BATCH_EVENTS_MAX + n - 1) as u128;
    assert_eq!(
        balances(&mut ledger, &[a, b]),
        vec![(0, moved, 0, 0), (0, 0, 0, moved)]
    );
}

#[test]
fn an_unreachable_cluster_is_unavailable_not_a_panic() {
    // Needs no cluster: nothing listens on port 1.
    let mut ledger = TigerBeetleLedger::connect(0, "127.0.0.1:1").unwrap();
    ledger.set_request_timeout(Some(Duration::from_millis(500)));
    match ledger.lookup_accounts(&[1]) {
        Err(LedgerError::Unavailable { reason }) => assert!(reason.contains("no reply")),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        TigerBeetleLedger::connect(0, "not an address"),
        Err(LedgerError::Unavailable { .. })
    ));
    assert!(matches!(
        TigerBeetleLedger::connect(0, ""),
        Err(LedgerError::Unavailable { .. })
    ));
}
