//! The data model of TigerBeetle 0.16.78, mirrored field for field.
//!
//! Layouts, flag bits and result-code numbers are those of `tb_client.h` of that release, so that
//! the TigerBeetle adapter converts by copying and a differential test can compare results as
//! numbers. Amounts are `u128` in the minor units of the account's ledger (see `chart`).

use serde::{Deserialize, Serialize};

/// Most events TigerBeetle accepts in one request (`create_*` batches of 128-byte events).
pub const BATCH_EVENTS_MAX: usize = 8189;

/// Default page size for queries, the most TigerBeetle returns in one reply.
pub const QUERY_RESULTS_MAX: u32 = 8189;

macro_rules! flags_u16 {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $flag:ident = $bit:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u16);
        impl $name {
            $($(#[$fm])* pub const $flag: $name = $name(1 << $bit);)*
            /// Every bit that TigerBeetle defines; others are `reserved_flag`.
            pub const ALL: $name = $name(0 $(| (1 << $bit))*);
            pub const NONE: $name = $name(0);
            #[inline]
            pub const fn contains(self, other: $name) -> bool { self.0 & other.0 == other.0 }
            #[inline]
            pub const fn union(self, other: $name) -> $name { $name(self.0 | other.0) }
            #[inline]
            pub const fn without(self, other: $name) -> $name { $name(self.0 & !other.0) }
        }
        impl core::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, rhs: $name) -> $name { self.union(rhs) }
        }
        impl core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: $name) { *self = self.union(rhs) }
        }
        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let mut first = true;
                write!(f, "{}(", stringify!($name))?;
                $(if self.contains($name::$flag) {
                    if !first { write!(f, "|")?; }
                    first = false;
                    write!(f, "{}", stringify!($flag))?;
                })*
                let rest = self.0 & !$name::ALL.0;
                if rest != 0 { if !first { write!(f, "|")?; } write!(f, "{:#x}", rest)?; }
                write!(f, ")")
            }
        }
    };
}

flags_u16!(
    /// `TB_ACCOUNT_FLAGS`.
    AccountFlags {
        LINKED = 0,
        DEBITS_MUST_NOT_EXCEED_CREDITS = 1,
        CREDITS_MUST_NOT_EXCEED_DEBITS = 2,
        HISTORY = 3,
        IMPORTED = 4,
        CLOSED = 5,
    }
);

flags_u16!(
    /// `TB_TRANSFER_FLAGS`.
    TransferFlags {
        LINKED = 0,
        PENDING = 1,
        POST_PENDING_TRANSFER = 2,
        VOID_PENDING_TRANSFER = 3,
        BALANCING_DEBIT = 4,
        BALANCING_CREDIT = 5,
        CLOSING_DEBIT = 6,
        CLOSING_CREDIT = 7,
        IMPORTED = 8,
    }
);

flags_u16!(
    /// `TB_ACCOUNT_FILTER_FLAGS` (stored in the low bits of a u32 by TigerBeetle).
    AccountFilterFlags {
        DEBITS = 0,
        CREDITS = 1,
        REVERSED = 2,
    }
);

flags_u16!(
    /// `TB_QUERY_FILTER_FLAGS`.
    QueryFilterFlags {
        REVERSED = 0,
    }
);

/// `tb_account_t`: 128 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Account {
    pub id: u128,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub reserved: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: AccountFlags,
    pub timestamp: u64,
}

impl Account {
    /// Credit-normal balance (liabilities, member pots): credits posted minus debits posted.
    /// Amounts above `i128::MAX` are outside what the platform books (it asserts far lower
    /// limits on every instruction), so the conversion is exact for every real account.
    pub fn credit_balance_posted(&self) -> i128 {
        self.credits_posted as i128 - self.debits_posted as i128
    }

    /// Debit-normal balance (assets, mirrors of external holdings).
    pub fn debit_balance_posted(&self) -> i128 {
        self.debits_posted as i128 - self.credits_posted as i128
    }
}

/// `tb_transfer_t`: 128 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transfer {
    pub id: u128,
    pub debit_account_id: u128,
    pub credit_account_id: u128,
    pub amount: u128,
    pub pending_id: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    /// Seconds after which a pending transfer expires; 0 means never.
    pub timeout: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: TransferFlags,
    pub timestamp: u64,
}

/// `tb_account_filter_t`, the argument of `get_account_transfers`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountFilter {
    pub account_id: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub code: u16,
    pub timestamp_min: u64,
    pub timestamp_max: u64,
    pub limit: u32,
    pub flags: AccountFilterFlags,
}

/// `tb_query_filter_t`, the argument of `query_transfers` / `query_accounts`: zero fields match
/// anything, non-zero fields must all match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueryFilter {
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub ledger: u32,
    pub code: u16,
    pub timestamp_min: u64,
    pub timestamp_max: u64,
    pub limit: u32,
    pub flags: QueryFilterFlags,
}

macro_rules! result_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $n:expr),* $(,)? }) => {
        $(#[$m])*
        // No `Ord`: ordering by code would not be TigerBeetle's precedence (see `ALL`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[repr(u32)]
        pub enum $name { $($variant = $n),* }
        impl $name {
            /// Every code, in TigerBeetle's order of precedence (declaration order of the enum).
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            /// The numeric code as `tb_client.h` defines it.
            pub const fn code(self) -> u32 { self as u32 }
            pub fn from_code(code: u32) -> Option<$name> {
                match code { $($n => Some($name::$variant),)* _ => None }
            }
        }
    };
}

result_enum!(
    /// `TB_CREATE_ACCOUNT_RESULT`, variants in TigerBeetle's order of precedence.
    CreateAccountResult {
        Ok = 0,
        LinkedEventFailed = 1,
        LinkedEventChainOpen = 2,
        ImportedEventExpected = 22,
        ImportedEventNotExpected = 23,
        TimestampMustBeZero = 3,
        ImportedEventTimestampOutOfRange = 24,
        ImportedEventTimestampMustNotAdvance = 25,
        ReservedField = 4,
        ReservedFlag = 5,
        IdMustNotBeZero = 6,
        IdMustNotBeIntMax = 7,
        ExistsWithDifferentFlags = 15,
        ExistsWithDifferentUserData128 = 16,
        ExistsWithDifferentUserData64 = 17,
        ExistsWithDifferentUserData32 = 18,
        ExistsWithDifferentLedger = 19,
        ExistsWithDifferentCode = 20,
        Exists = 21,
        FlagsAreMutuallyExclusive = 8,
        DebitsPendingMustBeZero = 9,
        DebitsPostedMustBeZero = 10,
        CreditsPendingMustBeZero = 11,
        CreditsPostedMustBeZero = 12,
        LedgerMustNotBeZero = 13,
        CodeMustNotBeZero = 14,
        ImportedEventTimestampMustNotRegress = 26,
    }
);

result_enum!(
    /// `TB_CREATE_TRANSFER_RESULT`, variants in TigerBeetle's order of precedence.
    CreateTransferResult {
        Ok = 0,
        LinkedEventFailed = 1,
        LinkedEventChainOpen = 2,
        ImportedEventExpected = 56,
        ImportedEventNotExpected = 57,
        TimestampMustBeZero = 3,
        ImportedEventTimestampOutOfRange = 58,
        ImportedEventTimestampMustNotAdvance = 59,
        ReservedFlag = 4,
        IdMustNotBeZero = 5,
        IdMustNotBeIntMax = 6,
        ExistsWithDifferentFlags = 36,
        ExistsWithDifferentPendingId = 40,
        ExistsWithDifferentTimeout = 44,
        ExistsWithDifferentDebitAccountId = 37,
        ExistsWithDifferentCreditAccountId = 38,
        ExistsWithDifferentAmount = 39,
        ExistsWithDifferentUserData128 = 41,
        ExistsWithDifferentUserData64 = 42,
        ExistsWithDifferentUserData32 = 43,
        ExistsWithDifferentLedger = 67,
        ExistsWithDifferentCode = 45,
        Exists = 46,
        IdAlreadyFailed = 68,
        FlagsAreMutuallyExclusive = 7,
        DebitAccountIdMustNotBeZero = 8,
        DebitAccountIdMustNotBeIntMax = 9,
        CreditAccountIdMustNotBeZero = 10,
        CreditAccountIdMustNotBeIntMax = 11,
        AccountsMustBeDifferent = 12,
        PendingIdMustBeZero = 13,
        PendingIdMustNotBeZero = 14,
        PendingIdMustNotBeIntMax = 15,
        PendingIdMustBeDifferent = 16,
        TimeoutReservedForPendingTransfer = 17,
        ClosingTransferMustBePending = 64,
        LedgerMustNotBeZero = 19,
        CodeMustNotBeZero = 20,
        DebitAccountNotFound = 21,
        CreditAccountNotFound = 22,
        AccountsMustHaveTheSameLedger = 23,
        TransferMustHaveTheSameLedgerAsAccounts = 24,
        PendingTransferNotFound = 25,
        PendingTransferNotPending = 26,
        PendingTransferHasDifferentDebitAccountId = 27,
        PendingTransferHasDifferentCreditAccountId = 28,
        PendingTransferHasDifferentLedger = 29,
        PendingTransferHasDifferentCode = 30,
        ExceedsPendingTransferAmount = 31,
        PendingTransferHasDifferentAmount = 32,
        PendingTransferAlreadyPosted = 33,
        PendingTransferAlreadyVoided = 34,
        PendingTransferExpired = 35,
        ImportedEventTimestampMustNotRegress = 60,
        ImportedEventTimestampMustPostdateDebitAccount = 61,
        ImportedEventTimestampMustPostdateCreditAccount = 62,
        ImportedEventTimeoutMustBeZero = 63,
        DebitAccountAlreadyClosed = 65,
        CreditAccountAlreadyClosed = 66,
        OverflowsDebitsPending = 47,
        OverflowsCreditsPending = 48,
        OverflowsDebitsPosted = 49,
        OverflowsCreditsPosted = 50,
        OverflowsDebits = 51,
        OverflowsCredits = 52,
        OverflowsTimeout = 53,
        ExceedsCredits = 54,
        ExceedsDebits = 55,
    }
);

impl CreateTransferResult {
    /// The transfer is in the ledger with exactly these fields: either it was just created or an
    /// earlier identical request created it. This is what makes a retried step a no-op.
    pub const fn is_applied(self) -> bool {
        matches!(
            self,
            CreateTransferResult::Ok | CreateTransferResult::Exists
        )
    }
}

/// Whether every transfer of a batch is in the ledger with these fields, now or from an earlier
/// identical submission.
///
/// A linked chain that was applied before does not answer `exists` on every event when it is
/// submitted again: TigerBeetle (and `MemLedger`) stops the chain at its first event, which
/// `exists`, and answers `linked_event_failed` for the rest. Chains are atomic, so an `exists`
/// that breaks a chain means the whole chain was applied. Hence a batch is applied when each
/// result is `ok`, `exists` or `linked_event_failed`: any other failure that broke a chain
/// appears in the results itself.
pub fn batch_applied(results: &[CreateTransferResult]) -> bool {
    results.iter().all(|r| {
        matches!(
            r,
            CreateTransferResult::Ok
                | CreateTransferResult::Exists
                | CreateTransferResult::LinkedEventFailed
        )
    })
}

impl CreateAccountResult {
    /// The account exists with exactly these fields.
    pub const fn is_applied(self) -> bool {
        matches!(self, CreateAccountResult::Ok | CreateAccountResult::Exists)
    }
}
