//! Hand-written tests of `MemLedger` against TigerBeetle 0.16.78's semantics, one behaviour at a
//! time, with the expected results worked out from `src/state_machine.zig`.

mod common;

use acme_ledger::{
    Account, AccountFilter, AccountFilterFlags, AccountFlags, CreateAccountResult as A,
    CreateTransferResult as T, Ledger, LedgerError, MemLedger, QueryFilter, QueryFilterFlags,
    Transfer, TransferFlags, BATCH_EVENTS_MAX, QUERY_RESULTS_MAX,
};
use common::*;

const MAX: u128 = u128::MAX;

fn create_accounts(l: &mut MemLedger, batch: &[Account]) -> Vec<A> {
    l.create_accounts(batch).unwrap()
}

fn create(l: &mut MemLedger, batch: &[Transfer]) -> Vec<T> {
    l.create_transfers(batch).unwrap()
}

fn create_one(l: &mut MemLedger, t: Transfer) -> T {
    create(l, &[t])[0]
}

/// `(debits_pending, debits_posted, credits_pending, credits_posted)`, read through
/// `lookup_accounts` (which runs the expiry pulse, like any request to TigerBeetle).
fn balances(l: &mut MemLedger, id: u128) -> (u128, u128, u128, u128) {
    let a = l.lookup_accounts(&[id]).unwrap()[0];
    (
        a.debits_pending,
        a.debits_posted,
        a.credits_pending,
        a.credits_posted,
    )
}

fn flags_of(l: &mut MemLedger, id: u128) -> AccountFlags {
    l.lookup_accounts(&[id]).unwrap()[0].flags
}

/// Accounts 1, 2, 3 (ledger 1, no flags), 4 (debits must not exceed credits), 5 (credits must
/// not exceed debits), 6 (ledger 2).
fn setup() -> (MemLedger, std::sync::Arc<TestClock>) {
    let (mut l, clock) = ledger();
    let results = create_accounts(
        &mut l,
        &[
            account(1, 1),
            account(2, 1),
            account(3, 1),
            account_with(4, 1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
            account_with(5, 1, AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS),
            account(6, 2),
        ],
    );
    assert!(results.iter().all(|r| *r == A::Ok), "{results:?}");
    (l, clock)
}

// ---------------------------------------------------------------------------------------------
// create_accounts

#[test]
fn create_accounts_validation_in_order() {
    let (mut l, _) = ledger();
    let ok = account(1, 1);
    let cases: Vec<(Account, A)> = vec![
        (
            Account {
                timestamp: 5,
                reserved: 1,
                id: 0,
                ..ok
            },
            A::TimestampMustBeZero,
        ),
        (
            Account {
                reserved: 1,
                id: 0,
                ..ok
            },
            A::ReservedField,
        ),
        (
            Account {
                flags: AccountFlags(1 << 15),
                id: 0,
                ..ok
            },
            A::ReservedFlag,
        ),
        (
            Account {
                id: 0,
                ledger: 0,
                ..ok
            },
            A::IdMustNotBeZero,
        ),
        (Account { id: MAX, ..ok }, A::IdMustNotBeIntMax),
        (
            Account {
                flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
                    | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
                debits_pending: 1,
                ..ok
            },
            A::FlagsAreMutuallyExclusive,
        ),
        (
            Account {
                debits_pending: 1,
                debits_posted: 1,
                ..ok
            },
            A::DebitsPendingMustBeZero,
        ),
        (
            Account {
                debits_posted: 1,
                credits_pending: 1,
                ..ok
            },
            A::DebitsPostedMustBeZero,
        ),
        (
            Account {
                credits_pending: 1,
                credits_posted: 1,
                ..ok
            },
            A::CreditsPendingMustBeZero,
        ),
        (
            Account {
                credits_posted: 1,
                ledger: 0,
                ..ok
            },
            A::CreditsPostedMustBeZero,
        ),
        (
            Account {
                ledger: 0,
                code: 0,
                ..ok
            },
            A::LedgerMustNotBeZero,
        ),
        (Account { code: 0, ..ok }, A::CodeMustNotBeZero),
        (ok, A::Ok),
        (ok, A::Exists),
    ];
    for (account, expected) in cases {
        assert_eq!(
            create_accounts(&mut l, &[account]),
            vec![expected],
            "{account:?}"
        );
    }
    assert_eq!(l.accounts().len(), 1);
}

#[test]
fn create_accounts_exists_precedence() {
    let (mut l, _) = ledger();
    let e = Account {
        id: 7,
        user_data_128: 1,
        user_data_64: 2,
        user_data_32: 3,
        ledger: 1,
        code: 1,
        flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        ..Account::default()
    };
    assert_eq!(create_accounts(&mut l, &[e]), vec![A::Ok]);
    // Each case differs in its field and in every later one; the first difference wins.
    let cases = [
        (
            Account {
                flags: AccountFlags::NONE,
                user_data_128: 9,
                user_data_64: 9,
                user_data_32: 9,
                ledger: 9,
                code: 9,
                ..e
            },
            A::ExistsWithDifferentFlags,
        ),
        (
            Account {
                user_data_128: 9,
                user_data_64: 9,
                user_data_32: 9,
                ledger: 9,
                code: 9,
                ..e
            },
            A::ExistsWithDifferentUserData128,
        ),
        (
            Account {
                user_data_64: 9,
                user_data_32: 9,
                ledger: 9,
                code: 9,
                ..e
            },
            A::ExistsWithDifferentUserData64,
        ),
        (
            Account {
                user_data_32: 9,
                ledger: 9,
                code: 9,
                ..e
            },
            A::ExistsWithDifferentUserData32,
        ),
        (
            Account {
                ledger: 9,
                code: 9,
                ..e
            },
            A::ExistsWithDifferentLedger,
        ),
        (Account { code: 9, ..e }, A::ExistsWithDifferentCode),
        // Exists is checked before the balance fields, which are then ignored.
        (
            Account {
                debits_posted: 5,
                ..e
            },
            A::Exists,
        ),
        (e, A::Exists),
        // `linked` is part of the flags compared.
        (
            Account {
                flags: e.flags | AccountFlags::LINKED,
                ..e
            },
            A::LinkedEventChainOpen, // last event of the batch
        ),
    ];
    for (account, expected) in cases {
        assert_eq!(
            create_accounts(&mut l, &[account]),
            vec![expected],
            "{account:?}"
        );
    }
    let linked = Account {
        flags: e.flags | AccountFlags::LINKED,
        ..e
    };
    assert_eq!(
        create_accounts(&mut l, &[linked, account(8, 1)]),
        vec![A::ExistsWithDifferentFlags, A::LinkedEventFailed]
    );
    assert!(l.account(8).is_none());
}

#[test]
fn create_accounts_linked_chains() {
    let (mut l, _) = ledger();
    let linked = |id| account_with(id, 1, AccountFlags::LINKED);
    // The second event of the chain collides with the first (created inside the chain).
    assert_eq!(
        create_accounts(
            &mut l,
            &[linked(1), linked(1), account(2, 1), account(3, 1)]
        ),
        vec![A::LinkedEventFailed, A::Exists, A::LinkedEventFailed, A::Ok]
    );
    assert!(l.account(1).is_none() && l.account(2).is_none());
    assert_eq!(l.accounts().len(), 1);
    // A chain left open at the end of the batch.
    assert_eq!(
        create_accounts(&mut l, &[account(4, 1), linked(5), linked(6)]),
        vec![A::Ok, A::LinkedEventFailed, A::LinkedEventChainOpen]
    );
    assert!(l.account(5).is_none() && l.account(4).is_some());
    // A successful chain.
    assert_eq!(
        create_accounts(&mut l, &[linked(5), linked(6), account(7, 1)]),
        vec![A::Ok, A::Ok, A::Ok]
    );
    assert_eq!(l.accounts().len(), 5);
    // The ids freed by the rolled-back chain are usable again (create_accounts has no
    // transient errors).
    assert_eq!(create_accounts(&mut l, &[account(1, 1)]), vec![A::Ok]);
}

#[test]
fn create_accounts_closed_and_history_flags_are_accepted() {
    let (mut l, _) = ledger();
    assert_eq!(
        create_accounts(
            &mut l,
            &[
                account_with(1, 1, AccountFlags::CLOSED),
                account_with(2, 1, AccountFlags::HISTORY)
            ]
        ),
        vec![A::Ok, A::Ok]
    );
    assert_eq!(
        create_one(&mut l, transfer(10, 2, 1, 1)),
        T::CreditAccountAlreadyClosed
    );
}

// ---------------------------------------------------------------------------------------------
// create_transfers: validation

#[test]
fn create_transfers_validation_in_order() {
    let (mut l, _) = setup();
    let ok = transfer(100, 1, 2, 10);
    let pending_flag = TransferFlags::PENDING;
    let cases: Vec<(Transfer, T)> = vec![
        (
            Transfer {
                timestamp: 1,
                flags: TransferFlags(1 << 12),
                ..ok
            },
            T::TimestampMustBeZero,
        ),
        (
            Transfer {
                flags: TransferFlags(1 << 12),
                id: 0,
                ..ok
            },
            T::ReservedFlag,
        ),
        (
            Transfer {
                id: 0,
                debit_account_id: 0,
                ..ok
            },
            T::IdMustNotBeZero,
        ),
        (Transfer { id: MAX, ..ok }, T::IdMustNotBeIntMax),
        (
            Transfer {
                flags: TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER,
                ..ok
            },
            T::FlagsAreMutuallyExclusive,
        ),
        (
            Transfer {
                flags: TransferFlags::POST_PENDING_TRANSFER | TransferFlags::PENDING,
                ..ok
            },
            T::FlagsAreMutuallyExclusive,
        ),
        (
            Transfer {
                flags: TransferFlags::VOID_PENDING_TRANSFER | TransferFlags::BALANCING_DEBIT,
                ..ok
            },
            T::FlagsAreMutuallyExclusive,
        ),
        (
            Transfer {
                flags: TransferFlags::POST_PENDING_TRANSFER | TransferFlags::BALANCING_CREDIT,
                ..ok
            },
            T::FlagsAreMutuallyExclusive,
        ),
        (
            Transfer {
                flags: TransferFlags::POST_PENDING_TRANSFER | TransferFlags::CLOSING_CREDIT,
                ..ok
            },
            T::FlagsAreMutuallyExclusive,
        ),
        (
            Transfer {
                debit_account_id: 0,
                credit_account_id: 0,
                ..ok
            },
            T::DebitAccountIdMustNotBeZero,
        ),
        (
            Transfer {
                debit_account_id: MAX,
                ..ok
            },
            T::DebitAccountIdMustNotBeIntMax,
        ),
        (
            Transfer {
                credit_account_id: 0,
                ..ok
            },
            T::CreditAccountIdMustNotBeZero,
        ),
        (
            Transfer {
                credit_account_id: MAX,
                ..ok
            },
            T::CreditAccountIdMustNotBeIntMax,
        ),
        (
            Transfer {
                credit_account_id: 1,
                pending_id: 5,
                ..ok
            },
            T::AccountsMustBeDifferent,
        ),
        (
            Transfer {
                pending_id: 5,
                timeout: 1,
                ..ok
            },
            T::PendingIdMustBeZero,
        ),
        (
            Transfer {
                timeout: 1,
                ledger: 0,
                ..ok
            },
            T::TimeoutReservedForPendingTransfer,
        ),
        (
            Transfer {
                flags: TransferFlags::CLOSING_DEBIT,
                ledger: 0,
                ..ok
            },
            T::ClosingTransferMustBePending,
        ),
        (
            Transfer {
                ledger: 0,
                code: 0,
                ..ok
            },
            T::LedgerMustNotBeZero,
        ),
        (
            Transfer {
                code: 0,
                debit_account_id: 99,
                ..ok
            },
            T::CodeMustNotBeZero,
        ),
        (
            Transfer {
                debit_account_id: 99,
                credit_account_id: 98,
                ..ok
            },
            T::DebitAccountNotFound,
        ),
        (
            Transfer {
                id: 101,
                credit_account_id: 98,
                ..ok
            },
            T::CreditAccountNotFound,
        ),
        // The two not-found errors above are transient: ids 100 and 101 are burnt.
        (
            Transfer {
                id: 102,
                credit_account_id: 6,
                ledger: 2,
                ..ok
            },
            T::AccountsMustHaveTheSameLedger,
        ),
        (
            Transfer {
                id: 102,
                ledger: 2,
                ..ok
            },
            T::TransferMustHaveTheSameLedgerAsAccounts,
        ),
        (
            Transfer {
                id: 102,
                flags: pending_flag,
                timeout: 1,
                ..ok
            },
            T::Ok,
        ),
        (ok, T::IdAlreadyFailed),
    ];
    for (t, expected) in cases {
        assert_eq!(create_one(&mut l, t), expected, "{t:?}");
    }
    assert_eq!(l.transfers().len(), 1);
}

#[test]
fn zero_amounts_are_allowed() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, transfer(10, 1, 2, 0)), T::Ok);
    assert_eq!(create_one(&mut l, pending(11, 1, 2, 0, 0)), T::Ok);
    assert_eq!(create_one(&mut l, post(12, 11, MAX)), T::Ok);
    assert_eq!(balances(&mut l, 1), (0, 0, 0, 0));
    assert_eq!(l.transfer(10).unwrap().amount, 0);
    assert_eq!(l.transfer(12).unwrap().amount, 0);
}

#[test]
fn single_phase_transfer_moves_balances_and_records_fields() {
    let (mut l, clock) = setup();
    let t = Transfer {
        user_data_128: 7,
        user_data_64: 8,
        user_data_32: 9,
        ..transfer(10, 1, 2, 25)
    };
    assert_eq!(create_one(&mut l, t), T::Ok);
    assert_eq!(balances(&mut l, 1), (0, 25, 0, 0));
    assert_eq!(balances(&mut l, 2), (0, 0, 0, 25));
    let stored = l.lookup_transfers(&[10]).unwrap()[0];
    assert_eq!(
        Transfer {
            timestamp: 0,
            ..stored
        },
        t
    );
    assert!(stored.timestamp > clock.get());
}

// ---------------------------------------------------------------------------------------------
// Linked chains

fn linked(t: Transfer) -> Transfer {
    Transfer {
        flags: t.flags | TransferFlags::LINKED,
        ..t
    }
}

#[test]
fn linked_chain_failing_in_the_middle_rolls_back_everything() {
    let (mut l, _) = setup();
    let results = create(
        &mut l,
        &[
            transfer(1, 1, 2, 5),
            linked(transfer(2, 1, 2, 10)),
            linked(pending(3, 2, 3, 7, 60)),
            linked(transfer(4, 1, 99, 1)), // fails: credit account not found
            linked(transfer(5, 1, 2, 1)),
            transfer(6, 1, 2, 1), // end of the chain
            transfer(7, 1, 3, 2), // independent
        ],
    );
    assert_eq!(
        results,
        vec![
            T::Ok,
            T::LinkedEventFailed,
            T::LinkedEventFailed,
            T::CreditAccountNotFound,
            T::LinkedEventFailed,
            T::LinkedEventFailed,
            T::Ok,
        ]
    );
    assert_eq!(balances(&mut l, 1), (0, 7, 0, 0));
    assert_eq!(balances(&mut l, 2), (0, 0, 0, 5));
    assert_eq!(balances(&mut l, 3), (0, 0, 0, 2));
    let found: Vec<u128> = l
        .lookup_transfers(&[1, 2, 3, 4, 5, 6, 7])
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(found, vec![1, 7]);
    // Ids of rolled-back events are free; the id that failed with a transient error is not.
    assert_eq!(
        create(
            &mut l,
            &[
                transfer(2, 1, 2, 10),
                transfer(4, 1, 2, 1),
                pending(3, 2, 3, 7, 60)
            ]
        ),
        vec![T::Ok, T::IdAlreadyFailed, T::Ok]
    );
}

#[test]
fn linked_chain_open_at_end_of_batch() {
    let (mut l, _) = setup();
    assert_eq!(
        create(
            &mut l,
            &[
                transfer(1, 1, 2, 5),
                linked(transfer(2, 1, 2, 5)),
                linked(transfer(3, 1, 2, 5))
            ]
        ),
        vec![T::Ok, T::LinkedEventFailed, T::LinkedEventChainOpen]
    );
    // A single linked event at the end.
    assert_eq!(
        create(&mut l, &[linked(transfer(4, 1, 2, 5))]),
        vec![T::LinkedEventChainOpen]
    );
    // The chain already failed: the last event still reports the open chain.
    assert_eq!(
        create(
            &mut l,
            &[linked(transfer(5, 1, 99, 5)), linked(transfer(6, 1, 2, 5))]
        ),
        vec![T::CreditAccountNotFound, T::LinkedEventChainOpen]
    );
    // Even an invalid last event reports the open chain first.
    assert_eq!(
        create(&mut l, &[linked(transfer(0, 1, 2, 5))]),
        vec![T::LinkedEventChainOpen]
    );
    assert_eq!(balances(&mut l, 1), (0, 5, 0, 0));
    // linked_event_chain_open is not transient: the ids can be used.
    assert_eq!(
        create(&mut l, &[transfer(3, 1, 2, 5), transfer(4, 1, 2, 5)]),
        vec![T::Ok, T::Ok]
    );
}

#[test]
fn linked_chain_rollback_restores_pending_status_and_expiry() {
    let (mut l, clock) = setup();
    assert_eq!(create_one(&mut l, pending(1, 1, 2, 10, 5)), T::Ok);
    // A post inside a chain that then fails is undone: the pending transfer is pending again,
    // holds its amount, and still expires.
    assert_eq!(
        create(&mut l, &[linked(post(4, 1, MAX)), transfer(5, 1, 99, 1)]),
        vec![T::LinkedEventFailed, T::CreditAccountNotFound]
    );
    assert!(l.is_pending(1));
    assert_eq!(balances(&mut l, 1), (10, 0, 0, 0));
    assert_eq!(balances(&mut l, 2), (0, 0, 10, 0));
    clock.advance(6 * NS_PER_S);
    assert_eq!(balances(&mut l, 1), (0, 0, 0, 0));
    assert!(!l.is_pending(1));
    assert_eq!(
        create_one(&mut l, post(4, 1, MAX)),
        T::PendingTransferExpired
    );
}

#[test]
fn linked_chain_sees_its_own_effects() {
    let (mut l, _) = setup();
    // 4 may not go negative; the chain credits it first, then debits it.
    assert_eq!(
        create(
            &mut l,
            &[linked(transfer(1, 1, 4, 10)), transfer(2, 4, 2, 10)]
        ),
        vec![T::Ok, T::Ok]
    );
    assert_eq!(balances(&mut l, 4), (0, 10, 0, 10));
    // A pending transfer and its post in one chain.
    assert_eq!(
        create(&mut l, &[linked(pending(3, 1, 2, 8, 0)), post(4, 3, 3)]),
        vec![T::Ok, T::Ok]
    );
    assert_eq!(balances(&mut l, 1), (0, 13, 0, 0));
}

// ---------------------------------------------------------------------------------------------
// Two-phase transfers

#[test]
fn pending_then_full_post() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, pending(1, 1, 2, 100, 0)), T::Ok);
    assert_eq!(balances(&mut l, 1), (100, 0, 0, 0));
    assert_eq!(balances(&mut l, 2), (0, 0, 100, 0));
    assert_eq!(create_one(&mut l, post(2, 1, MAX)), T::Ok);
    assert_eq!(balances(&mut l, 1), (0, 100, 0, 0));
    assert_eq!(balances(&mut l, 2), (0, 0, 0, 100));
    let p = *l.transfer(2).unwrap();
    assert_eq!(
        (
            p.debit_account_id,
            p.credit_account_id,
            p.amount,
            p.ledger,
            p.code
        ),
        (1, 2, 100, 1, 1)
    );
    assert_eq!(p.pending_id, 1);
    assert_eq!(p.timeout, 0);
    assert_eq!(
        create_one(&mut l, post(3, 1, MAX)),
        T::PendingTransferAlreadyPosted
    );
    assert_eq!(
        create_one(&mut l, void(4, 1)),
        T::PendingTransferAlreadyPosted
    );
}

#[test]
fn partial_post_releases_the_remainder() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, pending(1, 1, 2, 100, 0)), T::Ok);
    assert_eq!(
        create_one(&mut l, post(2, 1, 101)),
        T::ExceedsPendingTransferAmount
    );
    assert_eq!(create_one(&mut l, post(3, 1, 40)), T::Ok);
    assert_eq!(balances(&mut l, 1), (0, 40, 0, 0));
    assert_eq!(balances(&mut l, 2), (0, 0, 0, 40));
    assert_eq!(l.transfer(3).unwrap().amount, 40);
}

#[test]
fn post_with_amount_zero_posts_zero() {
    // TigerBeetle >= 0.16: only u128::MAX means "the pending amount".
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, pending(1, 1, 2, 100, 0)), T::Ok);
    assert_eq!(create_one(&mut l, post(2, 1, 0)), T::Ok);
    assert_eq!(balances(&mut l, 1), (0, 0, 0, 0));
    assert_eq!(l.transfer(2).unwrap().amount, 0);
}

#[test]
fn post_exact_amount_and_amount_checks_precede_status_checks() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, pending(1, 1, 2, 100, 0)), T::Ok);
    assert_eq!(create_one(&mut l, post(2, 1, 100)), T::Ok);
    // Already posted, but the amount is checked first.
    assert_eq!(
        create_one(&mut l, post(3, 1, 101)),
        T::ExceedsPendingTransferAmount
    );
    assert_eq!(
        create_one(&mut l, post(4, 1, 100)),
        T::PendingTransferAlreadyPosted
    );
}

#[test]
fn void_releases_and_checks_amount() {
    let (mut l, _) = setup();
    assert_eq!(
        create(&mut l, &[pending(1, 1, 2, 100, 0), pending(2, 1, 3, 50, 0)]),
        vec![T::Ok, T::Ok]
    );
    assert_eq!(
        create_one(
            &mut l,
            Transfer {
                amount: 99,
                ..void(3, 1)
            }
        ),
        T::PendingTransferHasDifferentAmount
    );
    assert_eq!(
        create_one(
            &mut l,
            Transfer {
                amount: 101,
                ..void(4, 1)
            }
        ),
        T::ExceedsPendingTransferAmount
    );
    assert_eq!(create_one(&mut l, void(5, 1)), T::Ok);
    assert_eq!(
        create_one(
            &mut l,
            Transfer {
                amount: 50,
                ..void(6, 2)
            }
        ),
        T::Ok
    );
    assert_eq!(balances(&mut l, 1), (0, 0, 0, 0));
    assert_eq!(l.transfer(5).unwrap().amount, 100);
    assert_eq!(
        create_one(&mut l, post(7, 1, MAX)),
        T::PendingTransferAlreadyVoided
    );
    assert_eq!(
        create_one(&mut l, void(8, 1)),
        T::PendingTransferAlreadyVoided
    );
}

#[test]
fn post_or_void_validation_in_order() {
    let (mut l, _) = setup();
    let p = Transfer {
        user_data_128: 1,
        user_data_64: 2,
        user_data_32: 3,
        ..pending(1, 1, 2, 100, 0)
    };
    assert_eq!(
        create(&mut l, &[p, transfer(2, 1, 2, 5)]),
        vec![T::Ok, T::Ok]
    );
    let cases: Vec<(Transfer, T)> = vec![
        (
            Transfer {
                pending_id: 0,
                timeout: 1,
                ..post(10, 1, 1)
            },
            T::PendingIdMustNotBeZero,
        ),
        (
            Transfer {
                pending_id: MAX,
                ..post(10, 1, 1)
            },
            T::PendingIdMustNotBeIntMax,
        ),
        (
            Transfer {
                pending_id: 10,
                ..post(10, 1, 1)
            },
            T::PendingIdMustBeDifferent,
        ),
        (
            Transfer {
                timeout: 1,
                ..post(10, 1, 1)
            },
            T::TimeoutReservedForPendingTransfer,
        ),
        (
            Transfer {
                pending_id: 2,
                ..post(10, 1, 1)
            },
            T::PendingTransferNotPending,
        ),
        (
            Transfer {
                debit_account_id: 3,
                credit_account_id: 3,
                ..post(11, 1, 1)
            },
            T::PendingTransferHasDifferentDebitAccountId,
        ),
        (
            Transfer {
                credit_account_id: 3,
                ledger: 2,
                ..post(11, 1, 1)
            },
            T::PendingTransferHasDifferentCreditAccountId,
        ),
        (
            Transfer {
                ledger: 2,
                code: 2,
                ..post(11, 1, 1)
            },
            T::PendingTransferHasDifferentLedger,
        ),
        (
            Transfer {
                code: 2,
                amount: 1000,
                ..post(11, 1, 1)
            },
            T::PendingTransferHasDifferentCode,
        ),
        // The same account ids / ledger / code given explicitly are fine.
        (
            Transfer {
                debit_account_id: 1,
                credit_account_id: 2,
                ledger: 1,
                code: 1,
                user_data_64: 1,
                ..post(11, 1, 60)
            },
            T::Ok,
        ),
    ];
    for (t, expected) in cases {
        assert_eq!(create_one(&mut l, t), expected, "{t:?}");
    }
    let posted = *l.transfer(11).unwrap();
    // Zero user data is inherited from the pending transfer; non-zero overrides it.
    assert_eq!(
        (
            posted.user_data_128,
            posted.user_data_64,
            posted.user_data_32
        ),
        (1, 1, 3)
    );
    // Unknown pending transfer: transient, the id is burnt.
    assert_eq!(
        create_one(&mut l, post(12, 999, 1)),
        T::PendingTransferNotFound
    );
    assert_eq!(create_one(&mut l, post(12, 1, 1)), T::IdAlreadyFailed);
}

// ---------------------------------------------------------------------------------------------
// Expiry

#[test]
fn expired_pending_transfer_releases_balances_and_cannot_be_posted() {
    let (mut l, clock) = setup();
    assert_eq!(
        create(&mut l, &[pending(1, 1, 2, 100, 10), pending(2, 1, 2, 5, 0)]),
        vec![T::Ok, T::Ok]
    );
    clock.advance(9 * NS_PER_S);
    assert_eq!(balances(&mut l, 1), (105, 0, 0, 0));
    assert!(l.is_pending(1));
    clock.advance(2 * NS_PER_S);
    assert_eq!(balances(&mut l, 1), (5, 0, 0, 0));
    assert_eq!(balances(&mut l, 2), (0, 0, 5, 0));
    assert!(!l.is_pending(1));
    assert_eq!(
        create_one(&mut l, post(3, 1, MAX)),
        T::PendingTransferExpired
    );
    assert_eq!(create_one(&mut l, void(4, 1)), T::PendingTransferExpired);
    // Not transient: the id is not burnt.
    assert_eq!(create_one(&mut l, post(3, 2, MAX)), T::Ok);
    // A pending transfer without timeout never expires.
    clock.advance(1_000_000 * NS_PER_S);
    assert_eq!(balances(&mut l, 1), (0, 5, 0, 0));
}

#[test]
fn expiry_is_exact_to_the_nanosecond_of_the_event() {
    let (mut l, clock) = setup();
    assert_eq!(create_one(&mut l, pending(1, 1, 2, 100, 10)), T::Ok);
    let deadline = l.transfer(1).unwrap().timestamp + 10 * NS_PER_S;
    // The post's timestamp is `now + 1`: one nanosecond before the deadline.
    clock.set(deadline - 2);
    assert_eq!(create_one(&mut l, post(2, 1, 1)), T::Ok);

    assert_eq!(create_one(&mut l, pending(3, 1, 2, 100, 10)), T::Ok);
    let deadline = l.transfer(3).unwrap().timestamp + 10 * NS_PER_S;
    // The post's timestamp is exactly the deadline: expired, although the pulse at the start
    // of the request (at `deadline - 1`) has not released the pending amount yet.
    clock.set(deadline - 1);
    assert_eq!(create_one(&mut l, post(4, 3, 1)), T::PendingTransferExpired);
    assert!(l.is_pending(3));
    assert_eq!(l.account(1).unwrap().debits_pending, 100);
    // The next request pulses.
    assert_eq!(balances(&mut l, 1), (0, 1, 0, 0));
    assert!(!l.is_pending(3));
}

#[test]
fn pulse_expires_transfers_due_exactly_now() {
    let (mut l, clock) = setup();
    assert_eq!(create_one(&mut l, pending(1, 1, 2, 100, 10)), T::Ok);
    let deadline = l.transfer(1).unwrap().timestamp + 10 * NS_PER_S;
    clock.set(deadline - 1);
    assert_eq!(balances(&mut l, 1), (100, 0, 0, 0));
    clock.set(deadline);
    assert_eq!(balances(&mut l, 1), (0, 0, 0, 0));
}

#[test]
fn unpulsed_expired_transfer_still_counts_against_limits_within_the_batch() {
    let (mut l, clock) = setup();
    assert_eq!(create_one(&mut l, transfer(1, 1, 4, 100)), T::Ok);
    assert_eq!(create_one(&mut l, pending(2, 4, 2, 100, 1)), T::Ok);
    let deadline = l.transfer(2).unwrap().timestamp + NS_PER_S;
    clock.set(deadline - 1);
    // The pulse ran at `deadline - 1`: transfer 2 has not expired and still holds 100.
    assert_eq!(
        create(&mut l, &[transfer(3, 4, 2, 1), void(4, 2)]),
        vec![T::ExceedsCredits, T::PendingTransferExpired]
    );
    assert_eq!(create_one(&mut l, transfer(5, 4, 2, 1)), T::Ok);
}

#[test]
fn posting_removes_the_transfer_from_the_expiry_queue() {
    let (mut l, clock) = setup();
    assert_eq!(
        create(&mut l, &[pending(1, 1, 2, 100, 1), post(2, 1, 30)]),
        vec![T::Ok, T::Ok]
    );
    clock.advance(5 * NS_PER_S);
    assert_eq!(balances(&mut l, 1), (0, 30, 0, 0));
    assert_eq!(balances(&mut l, 2), (0, 0, 0, 30));
}

#[test]
fn overflows_timeout_boundary() {
    let (mut l, clock) = setup();
    let timeout_ns = u64::from(u32::MAX) * NS_PER_S;
    // Events get `now + 1` and `now + 2`: the first expires exactly at 2^63 - 1 (fits), the
    // second one nanosecond later (does not).
    clock.set((1 << 63) - 1 - timeout_ns - 1);
    assert_eq!(
        create(
            &mut l,
            &[pending(1, 1, 2, 1, u32::MAX), pending(2, 1, 2, 1, u32::MAX)]
        ),
        vec![T::Ok, T::OverflowsTimeout]
    );
}

#[test]
fn overflows_timeout() {
    let (mut l, clock) = setup();
    clock.set(5_000_000_000_000_000_000); // 5e18 ns: 5e18 + 2^32 s does not fit in 63 bits.
    assert_eq!(
        create_one(&mut l, pending(1, 1, 2, 1, u32::MAX)),
        T::OverflowsTimeout
    );
    assert_eq!(
        create_one(&mut l, pending(2, 1, 2, 1, 1_000_000_000)),
        T::Ok
    );
}

// ---------------------------------------------------------------------------------------------
// Balancing transfers and limits

#[test]
fn balancing_debit_clamps_to_the_debit_accounts_credit_balance() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, transfer(1, 1, 4, 100)), T::Ok);
    let balancing =
        |id, amount| with_flags(transfer(id, 4, 2, amount), TransferFlags::BALANCING_DEBIT);
    assert_eq!(create_one(&mut l, balancing(2, 30)), T::Ok);
    assert_eq!(l.transfer(2).unwrap().amount, 30);
    assert_eq!(create_one(&mut l, balancing(3, 1000)), T::Ok);
    assert_eq!(l.transfer(3).unwrap().amount, 70);
    assert_eq!(balances(&mut l, 4), (0, 100, 0, 100));
    // Nothing left: moves zero, still ok.
    assert_eq!(create_one(&mut l, balancing(4, MAX)), T::Ok);
    assert_eq!(l.transfer(4).unwrap().amount, 0);
    // Amount zero means zero (not "as much as possible").
    assert_eq!(create_one(&mut l, transfer(5, 1, 4, 10)), T::Ok);
    assert_eq!(create_one(&mut l, balancing(6, 0)), T::Ok);
    assert_eq!(l.transfer(6).unwrap().amount, 0);
    // The clamp applies to accounts without limit flags too: account 1 has no credits.
    assert_eq!(
        create_one(
            &mut l,
            with_flags(transfer(7, 1, 2, 50), TransferFlags::BALANCING_DEBIT)
        ),
        T::Ok
    );
    assert_eq!(l.transfer(7).unwrap().amount, 0);
}

#[test]
fn balancing_credit_and_pending_balancing() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, transfer(1, 5, 1, 50)), T::Ok);
    // Pending debits of the debit account reduce what a balancing debit may take.
    assert_eq!(create_one(&mut l, transfer(2, 1, 4, 100)), T::Ok);
    assert_eq!(create_one(&mut l, pending(3, 4, 2, 60, 0)), T::Ok);
    let t = with_flags(
        transfer(4, 4, 2, MAX),
        TransferFlags::BALANCING_DEBIT | TransferFlags::PENDING,
    );
    assert_eq!(create_one(&mut l, t), T::Ok);
    assert_eq!(l.transfer(4).unwrap().amount, 40);
    assert_eq!(balances(&mut l, 4), (100, 0, 0, 100));
    // balancing_credit: credits of 5 may reach its debits (50).
    let t = with_flags(transfer(5, 1, 5, MAX), TransferFlags::BALANCING_CREDIT);
    assert_eq!(create_one(&mut l, t), T::Ok);
    assert_eq!(l.transfer(5).unwrap().amount, 50);
    // Both flags: the smaller limit wins.
    assert_eq!(create_one(&mut l, transfer(6, 5, 3, 20)), T::Ok);
    assert_eq!(create_one(&mut l, void(7, 4)), T::Ok);
    let both = with_flags(
        transfer(8, 4, 5, MAX),
        TransferFlags::BALANCING_DEBIT | TransferFlags::BALANCING_CREDIT,
    );
    assert_eq!(create_one(&mut l, both), T::Ok);
    assert_eq!(l.transfer(8).unwrap().amount, 20);
}

#[test]
fn balancing_credit_counts_pending_credits() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, transfer(1, 5, 1, 50)), T::Ok);
    assert_eq!(create_one(&mut l, pending(2, 1, 5, 20, 0)), T::Ok);
    let t = with_flags(transfer(3, 1, 5, MAX), TransferFlags::BALANCING_CREDIT);
    assert_eq!(create_one(&mut l, t), T::Ok);
    assert_eq!(l.transfer(3).unwrap().amount, 30);
    assert_eq!(balances(&mut l, 5), (0, 50, 20, 30));
}

#[test]
fn balancing_retry_is_exists_when_the_maximum_covers_the_amount_moved() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, transfer(1, 1, 4, 100)), T::Ok);
    let balancing = |amount| with_flags(transfer(2, 4, 2, amount), TransferFlags::BALANCING_DEBIT);
    assert_eq!(create_one(&mut l, balancing(1000)), T::Ok);
    assert_eq!(l.transfer(2).unwrap().amount, 100);
    assert_eq!(create_one(&mut l, balancing(5000)), T::Exists);
    assert_eq!(create_one(&mut l, balancing(100)), T::Exists);
    assert_eq!(
        create_one(&mut l, balancing(99)),
        T::ExistsWithDifferentAmount
    );
}

#[test]
fn debits_must_not_exceed_credits_counts_pending_debits() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, transfer(1, 1, 4, 100)), T::Ok);
    assert_eq!(create_one(&mut l, pending(2, 4, 2, 60, 0)), T::Ok);
    assert_eq!(create_one(&mut l, transfer(3, 4, 2, 50)), T::ExceedsCredits);
    assert_eq!(
        create_one(&mut l, pending(4, 4, 2, 41, 0)),
        T::ExceedsCredits
    );
    assert_eq!(create_one(&mut l, transfer(5, 4, 2, 40)), T::Ok);
    // Pending credits do not raise the limit.
    assert_eq!(create_one(&mut l, pending(6, 1, 4, 1000, 0)), T::Ok);
    assert_eq!(create_one(&mut l, transfer(7, 4, 2, 1)), T::ExceedsCredits);
    // Voiding the pending debit frees room; the transient failures burnt their ids.
    assert_eq!(create_one(&mut l, void(8, 2)), T::Ok);
    assert_eq!(
        create_one(&mut l, transfer(3, 4, 2, 50)),
        T::IdAlreadyFailed
    );
    assert_eq!(create_one(&mut l, transfer(9, 4, 2, 60)), T::Ok);
    assert_eq!(balances(&mut l, 4), (0, 100, 1000, 100));
}

#[test]
fn credits_must_not_exceed_debits_counts_pending_credits() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, transfer(1, 5, 1, 100)), T::Ok);
    assert_eq!(create_one(&mut l, pending(2, 1, 5, 70, 0)), T::Ok);
    assert_eq!(create_one(&mut l, transfer(3, 1, 5, 31)), T::ExceedsDebits);
    assert_eq!(create_one(&mut l, transfer(4, 1, 5, 30)), T::Ok);
    assert_eq!(balances(&mut l, 5), (0, 100, 70, 30));
    // Posting never checks limits (it cannot make them worse).
    assert_eq!(create_one(&mut l, post(5, 2, MAX)), T::Ok);
    assert_eq!(balances(&mut l, 5), (0, 100, 0, 100));
}

#[test]
fn exceeds_credits_precedes_exceeds_debits() {
    let (mut l, _) = setup();
    assert_eq!(create_one(&mut l, transfer(1, 4, 5, 1)), T::ExceedsCredits);
    assert_eq!(create_one(&mut l, transfer(2, 1, 4, 10)), T::Ok);
    assert_eq!(create_one(&mut l, transfer(3, 4, 5, 1)), T::ExceedsDebits);
}

// ---------------------------------------------------------------------------------------------
// Idempotency

#[test]
fn transfer_exists_precedence() {
    let (mut l, _) = setup();
    let e = Transfer {
        user_data_128: 1,
        user_data_64: 2,
        user_data_32: 3,
        ..transfer(50, 1, 2, 10)
    };
    assert_eq!(create_one(&mut l, e), T::Ok);
    // Each case differs in its field and in every later one.
    let all_after = |t: Transfer| Transfer {
        user_data_128: 9,
        user_data_64: 9,
        user_data_32: 9,
        ledger: 9,
        code: 9,
        ..t
    };
    let cases = [
        (
            all_after(Transfer {
                flags: TransferFlags::PENDING,
                pending_id: 9,
                timeout: 9,
                debit_account_id: 9,
                credit_account_id: 9,
                amount: 9,
                ..e
            }),
            T::ExistsWithDifferentFlags,
        ),
        (
            all_after(Transfer {
                pending_id: 9,
                timeout: 9,
                debit_account_id: 9,
                amount: 9,
                ..e
            }),
            T::ExistsWithDifferentPendingId,
        ),
        (
            all_after(Transfer {
                timeout: 9,
                debit_account_id: 9,
                amount: 9,
                ..e
            }),
            T::ExistsWithDifferentTimeout,
        ),
        (
            all_after(Transfer {
                debit_account_id: 9,
                credit_account_id: 9,
                amount: 9,
                ..e
            }),
            T::ExistsWithDifferentDebitAccountId,
        ),
        (
            all_after(Transfer {
                credit_account_id: 9,
                amount: 9,
                ..e
            }),
            T::ExistsWithDifferentCreditAccountId,
        ),
        (
            all_after(Transfer { amount: 9, ..e }),
            T::ExistsWithDifferentAmount,
        ),
        (all_after(e), T::ExistsWithDifferentUserData128),
        (
            Transfer {
                user_data_64: 9,
                user_data_32: 9,
                ledger: 9,
                code: 9,
                ..e
            },
            T::ExistsWithDifferentUserData64,
        ),
        (
            Transfer {
                user_data_32: 9,
                ledger: 9,
                code: 9,
                ..e
            },
            T::ExistsWithDifferentUserData32,
        ),
        (
            Transfer {
                ledger: 9,
                code: 9,
                ..e
            },
            T::ExistsWithDifferentLedger,
        ),
        (Transfer { code: 9, ..e }, T::ExistsWithDifferentCode),
        (e, T::Exists),
    ];
    for (t, expected) in cases {
        assert_eq!(create_one(&mut l, t), expected, "{t:?}");
    }
    // `exists` comes before every other check (here: id reused in an invalid transfer).
    assert_eq!(
        create_one(&mut l, Transfer { ledger: 0, ..e }),
        T::ExistsWithDifferentLedger
    );
    assert_eq!(balances(&mut l, 1), (0, 10, 0, 0));
}

#[test]
fn post_and_void_exists_compare_against_inherited_fields() {
    let (mut l, _) = setup();
    let p = Transfer {
        user_data_128: 1,
        user_data_64: 2,
        user_data_32: 3,
        ..pending(1, 1, 2, 100, 0)
    };
    assert_eq!(create(&mut l, &[p, post(2, 1, 40)]), vec![T::Ok, T::Ok]);
    let x = post(2, 1, 40);
    let cases = [
        (
            Transfer {
                debit_account_id: 1,
                credit_account_id: 2,
                ledger: 1,
                code: 1,
                ..x
            },
            T::Exists,
        ),
        (
            Transfer {
                user_data_128: 1,
                user_data_64: 2,
                user_data_32: 3,
                ..x
            },
            T::Exists,
        ),
        (
            Transfer {
                debit_account_id: 3,
                amount: 1,
                ..x
            },
            T::ExistsWithDifferentDebitAccountId,
        ),
        (
            Transfer {
                credit_account_id: 3,
                amount: 1,
                ..x
            },
            T::ExistsWithDifferentCreditAccountId,
        ),
        (Transfer { amount: MAX, ..x }, T::ExistsWithDifferentAmount),
        (Transfer { amount: 0, ..x }, T::ExistsWithDifferentAmount),
        (
            Transfer {
                user_data_128: 5,
                user_data_64: 5,
                ..x
            },
            T::ExistsWithDifferentUserData128,
        ),
        (
            Transfer {
                user_data_64: 5,
                ledger: 5,
                ..x
            },
            T::ExistsWithDifferentUserData64,
        ),
        (
            Transfer {
                user_data_32: 5,
                ledger: 5,
                ..x
            },
            T::ExistsWithDifferentUserData32,
        ),
        (
            Transfer {
                ledger: 5,
                code: 5,
                ..x
            },
            T::ExistsWithDifferentLedger,
        ),
        (Transfer { code: 5, ..x }, T::ExistsWithDifferentCode),
        (
            Transfer { pending_id: 7, ..x },
            T::ExistsWithDifferentPendingId,
        ),
        (Transfer { timeout: 7, ..x }, T::ExistsWithDifferentTimeout),
        (void(2, 1), T::ExistsWithDifferentFlags),
        (x, T::Exists),
    ];
    for (t, expected) in cases {
        assert_eq!(create_one(&mut l, t), expected, "{t:?}");
    }
}

#[test]
fn full_post_retry_amounts() {
    let (mut l, _) = setup();
    assert_eq!(
        create(&mut l, &[pending(1, 1, 2, 100, 0), post(2, 1, MAX)]),
        vec![T::Ok, T::Ok]
    );
    assert_eq!(create_one(&mut l, post(2, 1, MAX)), T::Exists);
    assert_eq!(create_one(&mut l, post(2, 1, 100)), T::Exists);
    // The docs say any amount >= the pending amount; the code compares exactly.
    assert_eq!(
        create_one(&mut l, post(2, 1, 101)),
        T::ExistsWithDifferentAmount
    );
    // Voids: 0 means the pending amount.
    assert_eq!(
        create(&mut l, &[pending(3, 1, 2, 100, 0), void(4, 3)]),
        vec![T::Ok, T::Ok]
    );
    assert_eq!(create_one(&mut l, void(4, 3)), T::Exists);
    assert_eq!(
        create_one(
            &mut l,
            Transfer {
                amount: 100,
                ..void(4, 3)
            }
        ),
        T::Exists
    );
    assert_eq!(
        create_one(
            &mut l,
            Transfer {
                amount: 99,
                ..void(4, 3)
            }
        ),
        T::ExistsWithDifferentAmount
    );
}

#[test]
fn resubmitting_an_applied_batch_changes_nothing() {
    let (mut l, _) = setup();
    let batch = [
        transfer(1, 1, 2, 10),
        linked(pending(2, 2, 3, 5, 0)),
        post(3, 2, 2),
        with_flags(transfer(4, 1, 4, 7), TransferFlags::BALANCING_CREDIT),
    ];
    assert_eq!(create(&mut l, &batch), vec![T::Ok, T::Ok, T::Ok, T::Ok]);
    let before = l.accounts().to_vec();
    assert_eq!(
        create(&mut l, &batch),
        vec![T::Exists, T::Exists, T::LinkedEventFailed, T::Exists]
    );
    assert_eq!(l.accounts(), &before[..]);
    assert_eq!(l.transfers().len(), 4);
}

#[test]
fn id_already_failed_only_after_transient_errors() {
    let (mut l, _) = setup();
    assert_eq!(
        create(&mut l, &[pending(100, 1, 2, 5, 0), void(101, 100)]),
        vec![T::Ok, T::Ok]
    );
    // Transient errors burn the id.
    let transient = [
        (transfer(1, 99, 2, 1), T::DebitAccountNotFound),
        (transfer(2, 1, 99, 1), T::CreditAccountNotFound),
        (post(3, 99, 1), T::PendingTransferNotFound),
        (transfer(4, 4, 2, 1), T::ExceedsCredits),
        (transfer(5, 1, 5, 1), T::ExceedsDebits),
    ];
    for (t, expected) in transient {
        assert_eq!(create_one(&mut l, t), expected);
        assert_eq!(
            create_one(&mut l, transfer(t.id, 1, 2, 1)),
            T::IdAlreadyFailed
        );
        assert!(l.lookup_transfers(&[t.id]).unwrap().is_empty());
    }
    // Non-transient errors do not.
    let permanent = [
        Transfer {
            ledger: 0,
            ..transfer(10, 1, 2, 1)
        },
        Transfer {
            code: 0,
            ..transfer(11, 1, 2, 1)
        },
        transfer(12, 1, 6, 1),
        post(13, 100, 1), // pending_transfer_already_voided
        Transfer {
            amount: 7,
            ..void(14, 100)
        }, // exceeds_pending_transfer_amount
        linked(transfer(15, 1, 2, 1)), // linked_event_chain_open
    ];
    for t in permanent {
        assert_ne!(create_one(&mut l, t), T::Ok);
        assert_eq!(create_one(&mut l, transfer(t.id, 1, 2, 1)), T::Ok, "{t:?}");
    }
    // Within one batch.
    assert_eq!(
        create(&mut l, &[transfer(20, 1, 99, 1), transfer(20, 1, 2, 1)]),
        vec![T::CreditAccountNotFound, T::IdAlreadyFailed]
    );
    // Within a chain: only the failing event's id is burnt.
    assert_eq!(
        create(
            &mut l,
            &[linked(transfer(21, 1, 2, 1)), transfer(22, 4, 2, 1)]
        ),
        vec![T::LinkedEventFailed, T::ExceedsCredits]
    );
    assert_eq!(
        create(&mut l, &[transfer(21, 1, 2, 1), transfer(22, 1, 2, 1)]),
        vec![T::Ok, T::IdAlreadyFailed]
    );
}

#[test]
fn closed_account_errors_are_transient() {
    let (mut l, _) = setup();
    let closing = Transfer {
        flags: TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT,
        ..transfer(1, 1, 2, 0)
    };
    assert_eq!(create_one(&mut l, closing), T::Ok);
    assert_eq!(
        create_one(&mut l, transfer(2, 1, 3, 1)),
        T::DebitAccountAlreadyClosed
    );
    assert_eq!(
        create_one(&mut l, transfer(3, 3, 1, 1)),
        T::CreditAccountAlreadyClosed
    );
    assert_eq!(create_one(&mut l, void(4, 1)), T::Ok);
    assert_eq!(create_one(&mut l, transfer(2, 1, 3, 1)), T::IdAlreadyFailed);
    assert_eq!(create_one(&mut l, transfer(3, 3, 1, 1)), T::IdAlreadyFailed);
    assert_eq!(create_one(&mut l, transfer(5, 1, 3, 1)), T::Ok);
}

// ---------------------------------------------------------------------------------------------
// Overflows

#[test]
fn overflow_checks_in_order() {
    let (mut l, _) = ledger();
    let accounts: Vec<Account> = (1..=20).map(|id| account(id, 1)).collect();
    assert!(create_accounts(&mut l, &accounts)
        .iter()
        .all(|r| *r == A::Ok));
    // debits_pending / credits_pending.
    assert_eq!(create_one(&mut l, pending(1, 1, 2, MAX, 0)), T::Ok);
    assert_eq!(
        create_one(&mut l, pending(2, 1, 3, 1, 0)),
        T::OverflowsDebitsPending
    );
    assert_eq!(
        create_one(&mut l, pending(3, 3, 2, 1, 0)),
        T::OverflowsCreditsPending
    );
    // Pending checks come first: account 1's debits_posted is fine, the pending one is not.
    // debits_posted / credits_posted.
    assert_eq!(create_one(&mut l, transfer(4, 4, 5, MAX)), T::Ok);
    assert_eq!(
        create_one(&mut l, transfer(5, 4, 6, 1)),
        T::OverflowsDebitsPosted
    );
    assert_eq!(
        create_one(&mut l, transfer(6, 6, 5, 1)),
        T::OverflowsCreditsPosted
    );
    assert_eq!(
        create_one(&mut l, pending(7, 4, 6, 1, 0)),
        T::OverflowsDebitsPosted
    );
    // debits (pending + posted) / credits.
    assert_eq!(create_one(&mut l, pending(8, 7, 8, MAX - 5, 0)), T::Ok);
    assert_eq!(create_one(&mut l, transfer(9, 7, 9, 5)), T::Ok);
    assert_eq!(
        create_one(&mut l, transfer(10, 7, 9, 1)),
        T::OverflowsDebits
    );
    assert_eq!(create_one(&mut l, transfer(11, 9, 8, 5)), T::Ok);
    assert_eq!(
        create_one(&mut l, transfer(12, 10, 8, 1)),
        T::OverflowsCredits
    );
    // Overflows are not transient.
    assert_eq!(create_one(&mut l, transfer(12, 10, 11, 1)), T::Ok);
    // Balances never overflowed.
    let a = l.account(7).unwrap();
    assert_eq!(a.debits_pending + a.debits_posted, MAX);
}

// ---------------------------------------------------------------------------------------------
// Closing accounts

#[test]
fn closing_debit_and_credit_close_and_void_reopens() {
    let (mut l, _) = setup();
    let closing = |id, dr, cr, flags| Transfer {
        flags: TransferFlags::PENDING | flags,
        ..transfer(id, dr, cr, 0)
    };
    assert_eq!(create_one(&mut l, pending(1, 1, 3, 10, 0)), T::Ok);
    assert_eq!(
        create_one(&mut l, closing(2, 1, 2, TransferFlags::CLOSING_DEBIT)),
        T::Ok
    );
    assert!(flags_of(&mut l, 1).contains(AccountFlags::CLOSED));
    assert!(!flags_of(&mut l, 2).contains(AccountFlags::CLOSED));
    assert_eq!(
        create_one(&mut l, transfer(3, 1, 2, 1)),
        T::DebitAccountAlreadyClosed
    );
    assert_eq!(
        create_one(&mut l, closing(4, 3, 1, TransferFlags::CLOSING_CREDIT)),
        T::CreditAccountAlreadyClosed
    );
    // Posting a pending transfer of a closed account fails; voiding works.
    assert_eq!(
        create_one(&mut l, post(5, 1, MAX)),
        T::DebitAccountAlreadyClosed
    );
    assert_eq!(create_one(&mut l, void(6, 1)), T::Ok);
    // The closing transfer itself can only be voided.
    assert_eq!(
        create_one(&mut l, post(7, 2, MAX)),
        T::DebitAccountAlreadyClosed
    );
    assert_eq!(create_one(&mut l, void(8, 2)), T::Ok);
    assert!(!flags_of(&mut l, 1).contains(AccountFlags::CLOSED));
    assert_eq!(create_one(&mut l, transfer(9, 1, 2, 1)), T::Ok);
    // closing_credit, and both at once.
    assert_eq!(
        create_one(
            &mut l,
            closing(
                10,
                1,
                2,
                TransferFlags::CLOSING_DEBIT | TransferFlags::CLOSING_CREDIT
            )
        ),
        T::Ok
    );
    assert!(flags_of(&mut l, 1).contains(AccountFlags::CLOSED));
    assert!(flags_of(&mut l, 2).contains(AccountFlags::CLOSED));
    // Retrying the account's creation now sees different flags.
    assert_eq!(
        create_accounts(&mut l, &[account(1, 1)]),
        vec![A::ExistsWithDifferentFlags]
    );
    assert_eq!(create_one(&mut l, void(11, 10)), T::Ok);
    assert!(!flags_of(&mut l, 1).contains(AccountFlags::CLOSED));
    assert!(!flags_of(&mut l, 2).contains(AccountFlags::CLOSED));
    assert_eq!(create_accounts(&mut l, &[account(1, 1)]), vec![A::Exists]);
}

#[test]
fn expiry_of_a_closing_transfer_reopens() {
    let (mut l, clock) = setup();
    let closing = Transfer {
        flags: TransferFlags::PENDING | TransferFlags::CLOSING_CREDIT,
        timeout: 3,
        ..transfer(1, 1, 2, 5)
    };
    let closing_debit = Transfer {
        flags: TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT,
        timeout: 2,
        ..transfer(2, 3, 1, 5)
    };
    assert_eq!(
        create(&mut l, &[closing, closing_debit]),
        vec![T::Ok, T::Ok]
    );
    assert!(flags_of(&mut l, 2).contains(AccountFlags::CLOSED));
    assert!(flags_of(&mut l, 3).contains(AccountFlags::CLOSED));
    assert!(!flags_of(&mut l, 1).contains(AccountFlags::CLOSED));
    clock.advance(4 * NS_PER_S);
    assert!(!flags_of(&mut l, 2).contains(AccountFlags::CLOSED));
    assert!(!flags_of(&mut l, 3).contains(AccountFlags::CLOSED));
    assert_eq!(balances(&mut l, 2), (0, 0, 0, 0));
    assert_eq!(balances(&mut l, 3), (0, 0, 0, 0));
    assert_eq!(
        create(&mut l, &[transfer(3, 1, 2, 1), transfer(4, 3, 2, 1)]),
        vec![T::Ok, T::Ok]
    );
}

#[test]
fn timestamps_come_from_the_clock_and_strictly_increase() {
    let (mut l, clock) = ledger();
    let t0 = clock.get();
    assert_eq!(
        create_accounts(&mut l, &[account(1, 1), account(2, 1), account(3, 1)]),
        vec![A::Ok; 3]
    );
    let ts: Vec<u64> = l.accounts().iter().map(|a| a.timestamp).collect();
    assert_eq!(ts, vec![t0 + 1, t0 + 2, t0 + 3]);
    // Clock stalled: the next request starts one nanosecond after the last one.
    assert_eq!(
        create(
            &mut l,
            &[
                transfer(1, 1, 2, 1),
                transfer(0, 1, 2, 1),
                transfer(2, 1, 2, 1)
            ]
        ),
        vec![T::Ok, T::IdMustNotBeZero, T::Ok]
    );
    // Failed events consume their timestamp slot.
    assert_eq!(l.transfer(1).unwrap().timestamp, t0 + 5);
    assert_eq!(l.transfer(2).unwrap().timestamp, t0 + 7);
    // Clock going backwards changes nothing.
    clock.set(t0 - 1_000_000);
    assert_eq!(create_one(&mut l, transfer(3, 1, 2, 1)), T::Ok);
    assert_eq!(l.transfer(3).unwrap().timestamp, t0 + 9);
    // Clock jumping ahead is followed.
    clock.set(t0 + NS_PER_S);
    assert_eq!(
        create(&mut l, &[transfer(4, 1, 2, 1), transfer(5, 1, 2, 1)]),
        vec![T::Ok, T::Ok]
    );
    assert_eq!(l.transfer(4).unwrap().timestamp, t0 + NS_PER_S + 1);
    assert_eq!(l.transfer(5).unwrap().timestamp, t0 + NS_PER_S + 2);
    assert_eq!(l.last_timestamp(), t0 + NS_PER_S + 2);
    let all: Vec<u64> = l.transfers().iter().map(|t| t.timestamp).collect();
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert!(l.accounts().last().unwrap().timestamp < all[0]);
}

// ---------------------------------------------------------------------------------------------
// Imported events

#[test]
fn imported_events() {
    let (mut l, clock) = ledger();
    let now = clock.get();
    let imported = |id, ts| Account {
        flags: AccountFlags::IMPORTED,
        timestamp: ts,
        ..account(id, 1)
    };
    assert_eq!(
        create_accounts(&mut l, &[imported(1, 10), imported(2, 20), account(3, 1)]),
        vec![A::Ok, A::Ok, A::ImportedEventExpected]
    );
    assert_eq!(l.account(2).unwrap().timestamp, 20);
    assert_eq!(
        create_accounts(&mut l, &[account(3, 1), imported(4, 30)]),
        vec![A::Ok, A::ImportedEventNotExpected]
    );
    assert_eq!(
        create_accounts(
            &mut l,
            &[
                imported(4, 0),
                imported(4, 1 << 63),
                imported(4, now + 1_000_000),
                imported(4, 15)
            ]
        ),
        vec![
            A::ImportedEventTimestampOutOfRange,
            A::ImportedEventTimestampOutOfRange,
            A::ImportedEventTimestampMustNotAdvance,
            A::ImportedEventTimestampMustNotRegress,
        ]
    );
    // Account 3 was created (non-imported) at `now + ...`: importing before it regresses.
    assert_eq!(
        create_accounts(&mut l, &[imported(4, 25)]),
        vec![A::ImportedEventTimestampMustNotRegress]
    );
    // Idempotency is checked before the regress check.
    assert_eq!(create_accounts(&mut l, &[imported(1, 5)]), vec![A::Exists]);

    // Transfers between imported accounts 1 (ts 10) and 2 (ts 20).
    let (mut l, clock) = ledger();
    let now = clock.get();
    assert_eq!(
        create_accounts(&mut l, &[imported(1, 10), imported(2, 20)]),
        vec![A::Ok, A::Ok]
    );
    let imp = |id, ts| Transfer {
        flags: TransferFlags::IMPORTED,
        timestamp: ts,
        ..transfer(id, 1, 2, 5)
    };
    assert_eq!(
        create(
            &mut l,
            &[
                imp(1, 20),
                imp(1, 15),
                imp(1, 10),
                Transfer {
                    timeout: 5,
                    flags: TransferFlags::IMPORTED | TransferFlags::PENDING,
                    ..imp(1, 25)
                },
                imp(1, 25),
                imp(2, 25),
                imp(3, 24),
                transfer(4, 1, 2, 1)
            ]
        ),
        vec![
            T::ImportedEventTimestampMustNotRegress, // an account has timestamp 20
            T::ImportedEventTimestampMustPostdateCreditAccount,
            T::ImportedEventTimestampMustNotRegress, // an account has timestamp 10
            T::ImportedEventTimeoutMustBeZero,
            T::Ok,
            T::ImportedEventTimestampMustNotRegress, // transfer 1 has timestamp 25
            T::ImportedEventTimestampMustNotRegress,
            T::ImportedEventExpected,
        ]
    );
    assert_eq!(l.transfer(1).unwrap().timestamp, 25);
    // Imported pending, then an imported post.
    let p = Transfer {
        flags: TransferFlags::IMPORTED | TransferFlags::PENDING,
        ..imp(5, 30)
    };
    let x = Transfer {
        flags: TransferFlags::IMPORTED | TransferFlags::POST_PENDING_TRANSFER,
        timestamp: 31,
        ..post(6, 5, MAX)
    };
    assert_eq!(create(&mut l, &[p, x]), vec![T::Ok, T::Ok]);
    assert_eq!(l.account(1).unwrap().debits_posted, 10);
    // Non-imported batches are stamped by the clock as usual.
    assert_eq!(create_one(&mut l, transfer(7, 1, 2, 1)), T::Ok);
    assert!(l.transfer(7).unwrap().timestamp > now);
    assert_eq!(
        create_one(
            &mut l,
            Transfer {
                timestamp: 1,
                ..transfer(8, 1, 2, 1)
            }
        ),
        T::TimestampMustBeZero
    );
}

// ---------------------------------------------------------------------------------------------
// Batch limits and lookups

#[test]
fn batches_larger_than_the_limit_are_rejected() {
    let (mut l, _) = setup();
    let batch: Vec<Transfer> = (1..=BATCH_EVENTS_MAX as u128 + 1)
        .map(|id| transfer(id, 1, 2, 1))
        .collect();
    assert_eq!(
        l.create_transfers(&batch),
        Err(LedgerError::BatchTooLarge {
            events: BATCH_EVENTS_MAX + 1,
            max: BATCH_EVENTS_MAX
        })
    );
    assert!(l.transfers().is_empty());
    assert!(matches!(
        l.create_accounts(&vec![account(100, 1); BATCH_EVENTS_MAX + 1]),
        Err(LedgerError::BatchTooLarge { .. })
    ));
    assert!(matches!(
        l.lookup_accounts(&vec![1; BATCH_EVENTS_MAX + 1]),
        Err(LedgerError::BatchTooLarge { .. })
    ));
    assert!(matches!(
        l.lookup_transfers(&vec![1; BATCH_EVENTS_MAX + 1]),
        Err(LedgerError::BatchTooLarge { .. })
    ));
    let results = l.create_transfers(&batch[..BATCH_EVENTS_MAX]).unwrap();
    assert_eq!(results.len(), BATCH_EVENTS_MAX);
    assert!(results.iter().all(|r| *r == T::Ok));
    assert_eq!(l.create_transfers(&[]).unwrap(), vec![]);
}

#[test]
fn lookups_return_found_records_in_request_order() {
    let (mut l, _) = setup();
    assert_eq!(
        create(&mut l, &[transfer(1, 1, 2, 1), transfer(2, 1, 2, 1)]),
        vec![T::Ok, T::Ok]
    );
    let ids: Vec<u128> = l
        .lookup_accounts(&[5, 99, 1, 5, 0, MAX])
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, vec![5, 1, 5]);
    let ids: Vec<u128> = l
        .lookup_transfers(&[2, 3, 1])
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, vec![2, 1]);
}

// ---------------------------------------------------------------------------------------------
// Queries

fn account_filter(account_id: u128, flags: AccountFilterFlags) -> AccountFilter {
    AccountFilter {
        account_id,
        limit: 100,
        flags,
        ..AccountFilter::default()
    }
}

fn ids(transfers: Vec<Transfer>) -> Vec<u128> {
    transfers.iter().map(|t| t.id).collect()
}

/// Transfers 1..=6 touching account 1 in various ways, with user data and codes.
fn query_setup() -> MemLedger {
    let (mut l, _) = setup();
    let results = create(
        &mut l,
        &[
            Transfer {
                user_data_128: 7,
                ..transfer(1, 1, 2, 1)
            },
            Transfer {
                code: 2,
                user_data_64: 8,
                ..transfer(2, 2, 1, 1)
            },
            Transfer {
                user_data_32: 9,
                ..transfer(3, 1, 3, 1)
            },
            transfer(4, 2, 3, 1),
            Transfer {
                ledger: 2,
                ..transfer(5, 6, 6, 1)
            }, // fails: same accounts
            Transfer {
                code: 2,
                user_data_128: 7,
                ..transfer(6, 3, 1, 1)
            },
        ],
    );
    assert_eq!(
        results,
        vec![
            T::Ok,
            T::Ok,
            T::Ok,
            T::Ok,
            T::AccountsMustBeDifferent,
            T::Ok
        ]
    );
    l
}

#[test]
fn get_account_transfers_filters() {
    let mut l = query_setup();
    let both = AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS;
    assert_eq!(
        ids(l.get_account_transfers(&account_filter(1, both)).unwrap()),
        vec![1, 2, 3, 6]
    );
    assert_eq!(
        ids(l
            .get_account_transfers(&account_filter(1, AccountFilterFlags::DEBITS))
            .unwrap()),
        vec![1, 3]
    );
    assert_eq!(
        ids(l
            .get_account_transfers(&account_filter(1, AccountFilterFlags::CREDITS))
            .unwrap()),
        vec![2, 6]
    );
    assert_eq!(
        ids(l
            .get_account_transfers(&account_filter(1, both | AccountFilterFlags::REVERSED))
            .unwrap()),
        vec![6, 3, 2, 1]
    );
    let limited = AccountFilter {
        limit: 2,
        ..account_filter(1, both | AccountFilterFlags::REVERSED)
    };
    assert_eq!(ids(l.get_account_transfers(&limited).unwrap()), vec![6, 3]);
    let ts = |l: &MemLedger, id| l.transfer(id).unwrap().timestamp;
    let range = AccountFilter {
        timestamp_min: ts(&l, 2),
        timestamp_max: ts(&l, 3),
        ..account_filter(1, both)
    };
    assert_eq!(ids(l.get_account_transfers(&range).unwrap()), vec![2, 3]);
    let from = AccountFilter {
        timestamp_min: ts(&l, 3),
        ..account_filter(1, both)
    };
    assert_eq!(ids(l.get_account_transfers(&from).unwrap()), vec![3, 6]);
    let until = AccountFilter {
        timestamp_max: ts(&l, 2),
        ..account_filter(1, both)
    };
    assert_eq!(ids(l.get_account_transfers(&until).unwrap()), vec![1, 2]);
    let ud = AccountFilter {
        user_data_128: 7,
        ..account_filter(1, both)
    };
    assert_eq!(ids(l.get_account_transfers(&ud).unwrap()), vec![1, 6]);
    let ud = AccountFilter {
        user_data_64: 8,
        ..account_filter(1, both)
    };
    assert_eq!(ids(l.get_account_transfers(&ud).unwrap()), vec![2]);
    let ud = AccountFilter {
        user_data_32: 9,
        ..account_filter(1, both)
    };
    assert_eq!(ids(l.get_account_transfers(&ud).unwrap()), vec![3]);
    let code = AccountFilter {
        code: 2,
        ..account_filter(1, both)
    };
    assert_eq!(ids(l.get_account_transfers(&code).unwrap()), vec![2, 6]);
    let code_and_ud = AccountFilter {
        code: 2,
        user_data_128: 7,
        ..account_filter(1, both)
    };
    assert_eq!(ids(l.get_account_transfers(&code_and_ud).unwrap()), vec![6]);
    assert!(l
        .get_account_transfers(&account_filter(99, both))
        .unwrap()
        .is_empty());
}

#[test]
fn get_account_transfers_invalid_filters_return_nothing() {
    let mut l = query_setup();
    let both = AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS;
    let valid = account_filter(1, both);
    assert_eq!(l.get_account_transfers(&valid).unwrap().len(), 4);
    let invalid = [
        AccountFilter {
            account_id: 0,
            ..valid
        },
        AccountFilter {
            account_id: MAX,
            ..valid
        },
        AccountFilter { limit: 0, ..valid },
        AccountFilter {
            flags: AccountFilterFlags::REVERSED,
            ..valid
        },
        AccountFilter {
            flags: both | AccountFilterFlags(1 << 3),
            ..valid
        },
        AccountFilter {
            timestamp_min: 1 << 63,
            ..valid
        },
        AccountFilter {
            timestamp_max: u64::MAX,
            ..valid
        },
        AccountFilter {
            timestamp_min: 10,
            timestamp_max: 9,
            ..valid
        },
    ];
    for f in invalid {
        assert!(l.get_account_transfers(&f).unwrap().is_empty(), "{f:?}");
    }
    // min > 0 with max == 0 (open) is valid; min == max is valid.
    let ts = l.transfer(2).unwrap().timestamp;
    let f = AccountFilter {
        timestamp_min: ts,
        timestamp_max: ts,
        ..valid
    };
    assert_eq!(ids(l.get_account_transfers(&f).unwrap()), vec![2]);
}

#[test]
fn query_transfers_filters() {
    let mut l = query_setup();
    let all = QueryFilter {
        limit: 100,
        ..QueryFilter::default()
    };
    assert_eq!(ids(l.query_transfers(&all).unwrap()), vec![1, 2, 3, 4, 6]);
    assert_eq!(
        ids(l
            .query_transfers(&QueryFilter {
                flags: QueryFilterFlags::REVERSED,
                limit: 3,
                ..all
            })
            .unwrap()),
        vec![6, 4, 3]
    );
    assert_eq!(
        ids(l
            .query_transfers(&QueryFilter {
                user_data_128: 7,
                ..all
            })
            .unwrap()),
        vec![1, 6]
    );
    assert_eq!(
        ids(l
            .query_transfers(&QueryFilter {
                user_data_64: 8,
                ..all
            })
            .unwrap()),
        vec![2]
    );
    assert_eq!(
        ids(l
            .query_transfers(&QueryFilter {
                user_data_32: 9,
                ..all
            })
            .unwrap()),
        vec![3]
    );
    assert_eq!(
        ids(l.query_transfers(&QueryFilter { code: 2, ..all }).unwrap()),
        vec![2, 6]
    );
    assert_eq!(
        ids(l
            .query_transfers(&QueryFilter {
                ledger: 1,
                code: 1,
                ..all
            })
            .unwrap()),
        vec![1, 3, 4]
    );
    assert!(l
        .query_transfers(&QueryFilter { ledger: 2, ..all })
        .unwrap()
        .is_empty());
    let ts = l.transfer(3).unwrap().timestamp;
    assert_eq!(
        ids(l
            .query_transfers(&QueryFilter {
                timestamp_min: ts,
                ..all
            })
            .unwrap()),
        vec![3, 4, 6]
    );
    assert_eq!(
        ids(l
            .query_transfers(&QueryFilter {
                timestamp_max: ts,
                ..all
            })
            .unwrap()),
        vec![1, 2, 3]
    );
    for f in [
        QueryFilter { limit: 0, ..all },
        QueryFilter {
            flags: QueryFilterFlags(2),
            ..all
        },
        QueryFilter {
            timestamp_min: ts + 1,
            timestamp_max: ts,
            ..all
        },
        QueryFilter {
            timestamp_max: 1 << 63,
            ..all
        },
    ] {
        assert!(l.query_transfers(&f).unwrap().is_empty(), "{f:?}");
    }
}

#[test]
fn query_accounts_filters_and_limit_cap() {
    let (mut l, _) = ledger();
    let accounts: Vec<Account> = (1..=BATCH_EVENTS_MAX as u128 + 11)
        .map(|id| Account {
            user_data_32: (id % 3) as u32,
            code: (id % 2 + 1) as u16,
            ..account(id, 1 + (id % 5 == 0) as u32)
        })
        .collect();
    for batch in accounts.chunks(BATCH_EVENTS_MAX) {
        assert!(create_accounts(&mut l, batch).iter().all(|r| *r == A::Ok));
    }
    let all = QueryFilter {
        limit: u32::MAX,
        ..QueryFilter::default()
    };
    let found = l.query_accounts(&all).unwrap();
    assert_eq!(found.len(), QUERY_RESULTS_MAX as usize);
    assert_eq!(found[0].id, 1);
    let found = l
        .query_accounts(&QueryFilter {
            flags: QueryFilterFlags::REVERSED,
            limit: 2,
            ..all
        })
        .unwrap();
    assert_eq!(
        found.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![accounts.len() as u128, accounts.len() as u128 - 1]
    );
    let found = l
        .query_accounts(&QueryFilter {
            ledger: 2,
            user_data_32: 1,
            code: 1,
            limit: 3,
            ..all
        })
        .unwrap();
    assert_eq!(
        found.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![10, 40, 70]
    );
    let ts = l.account(100).unwrap().timestamp;
    let found = l
        .query_accounts(&QueryFilter {
            timestamp_min: ts,
            timestamp_max: ts + 1,
            ..all
        })
        .unwrap();
    assert_eq!(
        found.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![100, 101]
    );
    assert!(l
        .query_accounts(&QueryFilter { limit: 0, ..all })
        .unwrap()
        .is_empty());
}
