//! The double-entry core of the ACME platform: the system of record for every penny and unit.
//!
//! - [`types`]: TigerBeetle 0.16.78's accounts, transfers, flags, filters and result codes,
//!   mirrored exactly so that the embedded ledger and a real cluster are interchangeable.
//! - [`port`]: the [`Ledger`] trait (batched, at most [`BATCH_EVENTS_MAX`] events a call) and the
//!   [`Clock`] it takes timestamps from.
//! - [`mem`]: [`MemLedger`], the embedded ledger with TigerBeetle's semantics; the default backend
//!   and the one the simulator runs on.
//! - [`chart`]: ACME's chart of accounts (ledgers per asset, account codes, account ids).
//! - [`ids`]: the derivation of every transfer id from its cause, which makes retries no-ops.
//!
//! This crate is pure: no wall clock, no OS randomness, no threads, no iteration over
//! hash-ordered collections. Time comes in through [`Clock`].

pub mod chart;
pub mod export;
pub mod ids;
pub mod mem;
pub mod port;
pub mod types;

pub use mem::{MemLedger, MemState};
pub use port::{Clock, Ledger, LedgerError};
pub use types::*;
