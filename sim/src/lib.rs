//! The deterministic simulator: whole business days of the platform, replayed bit for bit from a
//! seed, with every invariant checked after every event.
//!
//! - [`world`]: the event loop, virtual clock, simulated bus, and the hosts of the platform's
//!   processes, all on the embedded ledger; `bus`: the broker's copies of what it delivered,
//!   kept until acknowledged.
//! - [`market`], [`members`], [`custodian`]: the outside world, seeded; [`calendar`]: its own
//!   business days and London clock, apart from the platform's.
//! - [`checker`]: named invariants over the ledger; [`oracle`]: the independent reference model of
//!   what every member should hold; the custodian's own books are the second oracle.
//! - [`trace`]: the rolling trace hash; [`summary`]: what a run reports; [`paging`]: how the
//!   largest pieces of work were split over ledger batches and pages.
//! - [`trace`]: the rolling trace hash; [`summary`]: what a run reports; [`coverage`]: what it
//!   exercised (instruction paths, custodian outcomes, faults), which a swarm checks.
//! - [`settle_watch`]: every pot of a trade the custodian settled, against the model, once the
//!   ledger has booked it; [`trade_watch`]: each allocated trade's trading accounts flat, after
//!   every event; [`trade_recon`]: each trade rebuilt from the custodian's books, against the
//!   ledger, at the end of day; [`layout`]: the simulator's own reading of the ledger's documented layout.
//! - [`holdings`]: the opening pots members bring, so every path is open from the first day.
//! - [`disk`]: the simulated disk that lies (power loss, torn and misdirected writes, bit flips,
//!   EIO), behind the durable store's `Storage` port.
//! - [`durable`]: the durable ledger on that disk (runs with storage faults), every recovery
//!   checked against what the ledger had acknowledged.
//!
//! Pure like the crates it drives: time is virtual, randomness is ChaCha from the seed, and no
//! collection is iterated in hash order.

pub mod budget;
mod bus;
pub mod calendar;
pub mod checker;
pub mod coverage;
pub mod custodian;
pub mod disk;
pub mod durable;
pub mod export;
pub mod holdings;
pub mod layout;
pub mod market;
pub mod members;
pub mod oracle;
pub mod paging;
mod partition;
pub mod release;
pub mod rng;
pub mod settle_watch;
pub mod summary;
pub mod trace;
pub mod trade_recon;
pub mod trade_watch;
mod valuation;
pub mod world;

pub use summary::Summary;
pub use world::{SimConfig, World};

/// Runs one simulation to the end.
pub fn run(cfg: SimConfig) -> Summary {
    World::new(cfg).run()
}
