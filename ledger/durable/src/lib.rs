//! The durable embedded ledger: [`MemLedger`](acme_ledger::MemLedger)'s semantics, with every
//! request in the store's log before it is answered, and recovery that rebuilds exactly the
//! acknowledged ledger (checkpoint plus replay, each replayed request checked against its logged
//! outcome).
//!
//! - [`ledger`]: [`DurableLedger`], the `Ledger` port on the store, with group commit.
//! - [`codec`]: the log entries and the checkpoint state, byte for byte.
//! - [`stream`]: the store read back as a stream of accounts and transfers (the checkpoint's
//!   records one chunk at a time, the log's effect in a ledger of only what it touches), for
//!   readers of a large store that must not hold the ledger (`acme recon --ledger STORE`).
//! - [`verify`]: the store verified and the replayed ledger checked: every ledger balanced, every
//!   account's balances equal to what its transfers add up to.
//!
//! Pure like the store: all IO goes through the `Storage` port, time through the `Clock` port.

pub mod codec;
pub mod ledger;
pub mod stream;
pub mod verify;

pub use ledger::{Config, DurableLedger, PinnedClock, Replayer, Stats};
pub use verify::{verify_ledger, LedgerReport};
