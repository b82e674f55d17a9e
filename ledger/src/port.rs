//! The `Ledger` port: the one way every other crate talks to the double-entry core.
//!
//! It is synchronous and batched. The simulator is single-threaded and owns time, so a synchronous
//! port keeps it deterministic; the TigerBeetle adapter blocks on its client internally and may
//! keep several requests in flight when a call carries more than one request's worth of events.
//! Results are dense (one per event, `Ok` included) so callers index them by position; the
//! TigerBeetle adapter expands TigerBeetle's sparse replies.

use crate::types::{
    Account, AccountFilter, CreateAccountResult, CreateTransferResult, QueryFilter, Transfer,
};

/// Why a ledger call could not be answered at all (as opposed to per-event results).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerError {
    /// More events than one request may carry ([`crate::BATCH_EVENTS_MAX`]).
    BatchTooLarge { events: usize, max: usize },
    /// The ledger could not be reached; the request may or may not have been applied, so the
    /// caller retries with the same ids (which is safe: ids are derived from causes).
    Unavailable { reason: String },
    /// A filter that TigerBeetle would reject (for example a zero account id).
    InvalidFilter { reason: String },
}

impl core::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LedgerError::BatchTooLarge { events, max } => {
                write!(
                    f,
                    "batch of {events} events exceeds the limit of {max} events"
                )
            }
            LedgerError::Unavailable { reason } => write!(f, "ledger unavailable: {reason}"),
            LedgerError::InvalidFilter { reason } => write!(f, "invalid filter: {reason}"),
        }
    }
}

impl std::error::Error for LedgerError {}

/// The double-entry ledger, with TigerBeetle's operations and semantics.
pub trait Ledger {
    /// Creates accounts; one result per event, in order.
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError>;

    /// Creates transfers; one result per event, in order.
    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError>;

    /// Accounts found, in the order of `ids`; ids not found are left out (as in TigerBeetle).
    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError>;

    /// Transfers found, in the order of `ids`; ids not found are left out.
    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError>;

    /// Transfers touching one account, by timestamp, at most `filter.limit`.
    fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, LedgerError>;

    /// Transfers matching user data / ledger / code, by timestamp, at most `filter.limit`.
    fn query_transfers(&mut self, filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError>;

    /// Accounts matching user data / ledger / code, by timestamp, at most `filter.limit`.
    fn query_accounts(&mut self, filter: &QueryFilter) -> Result<Vec<Account>, LedgerError>;
}

/// The clock port as the ledger sees it: nanoseconds since the Unix epoch, like TigerBeetle's
/// cluster time. The simulator implements it with virtual time; production with the wall clock
/// (in an adapter crate, never in the pure crates).
pub trait Clock {
    fn now_ns(&self) -> u64;
}
