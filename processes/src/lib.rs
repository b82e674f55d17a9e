//! ACME's business processes and the model every process follows.
//!
//! A process is a deterministic state machine ([`process::Process`]): inputs (messages, timers,
//! ledger answers) in, effects (ledger requests, messages, timers, alerts) out. The
//! [`host::Host`] wraps any process with persistence (one atomic journal record per input,
//! snapshots), duplicate suppression, retries, versions, dead letters and crash recovery, and
//! talks to the world only through ports ([`host::Io`], [`host::ProcessStore`]). The same
//! process runs under the deterministic simulator (`acme-sim`) and on tokio (`acme-runtime`).
//!
//! See `processes/README.md` for the pattern, with the trade lifecycle ([`trading`]) as the worked example.
//!
//! This crate is pure: no wall clock, no OS randomness, no threads, no hash-ordered iteration,
//! no floats. `clippy.toml` at the workspace root enforces it.

pub mod calendar;
pub mod host;
pub mod messages;
pub mod money;
pub mod plant;
pub mod process;
pub mod recon;
pub mod serde_packed;
pub mod serde_pairs;
pub mod trading;
