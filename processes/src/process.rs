//! The process model: one small trait that every business process implements.
//!
//! A process is a deterministic state machine. It is handed one [`Input`] at a time (a message,
//! a timer it set, or the ledger's answer to a request it made) with the time of that input, and
//! it answers only by pushing [`Effect`]s: ledger requests, messages to other services, timers,
//! alerts. It never performs IO, reads a clock or draws randomness; the [`crate::host::Host`]
//! around it does all of that through ports. Because `handle` is a pure function of the state and
//! the input, the host can rebuild a crashed process by replaying its journal of inputs, and the
//! simulator can run any process, anywhere, bit for bit.

use crate::calendar::Ts;
use crate::messages::Message;
use acme_ledger::{
    Account, AccountFilter, CreateAccountResult, CreateTransferResult, QueryFilter, Transfer,
};
use serde::{Deserialize, Serialize};

/// A message id, derived from the message's cause by its sender (see [`crate::messages::msg_id`]),
/// so a re-sent message has the same id and the receiver's host drops it as a duplicate.
pub type MessageId = u128;

/// The services of the platform and the outside actors they talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Service {
    /// Members (through the intake API). Outside the platform.
    Members,
    /// The job scheduler: sends the daily cut-off and other calendar events.
    Scheduler,
    /// Takes instructions, keeps their status, reserves cash.
    Intake,
    /// Aggregates the day's orders per fund into external trades at the cut-off.
    Aggregation,
    /// Allocates a priced external trade to the members' pots.
    Pricing,
    /// Settles a trade in the pots and the custodian mirror.
    Settlement,
    /// Re-balances members' pots to their model portfolios after each valuation point.
    Rebalancing,
    /// The asset custodian. Outside the platform, reached through its gateway.
    Custodian,
}

impl Service {
    pub const PLATFORM: [Service; 5] = [
        Service::Intake,
        Service::Aggregation,
        Service::Pricing,
        Service::Settlement,
        Service::Rebalancing,
    ];
}

/// A message on the bus.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Envelope {
    pub id: MessageId,
    pub from: Service,
    pub to: Service,
    /// The sender's sequence number on the channel `from -> to`, from 1, given by the sending
    /// host when it commits the message; 0 for senders outside the platform. The receiving host
    /// deduplicates platform messages by it in constant memory (see `host::state`).
    #[serde(default)]
    pub seq: u64,
    pub body: Message,
}

/// What a process can ask of the ledger. Batches hold at most
/// [`acme_ledger::BATCH_EVENTS_MAX`] events; processes split larger work themselves (see
/// [`Effects::create_transfers_chunked`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LedgerRequest {
    CreateAccounts(Vec<Account>),
    CreateTransfers(Vec<Transfer>),
    LookupAccounts(Vec<u128>),
    LookupTransfers(Vec<u128>),
    GetAccountTransfers(AccountFilter),
    QueryTransfers(QueryFilter),
    QueryAccounts(QueryFilter),
}

/// The ledger's answer, delivered back to the process as an [`Input::Ledger`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LedgerReply {
    CreateAccounts(Vec<CreateAccountResult>),
    CreateTransfers(Vec<CreateTransferResult>),
    Accounts(Vec<Account>),
    Transfers(Vec<Transfer>),
}

/// One input to a process.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Input {
    Message(Envelope),
    /// A timer the process set, by its id.
    Timer {
        timer_id: u64,
    },
    /// The answer to the ledger request the process tagged `tag`.
    Ledger {
        tag: u64,
        reply: LedgerReply,
    },
}

/// Something that needs a person: a ledger answer that should be impossible, a message that
/// makes no sense in the current state. The simulator counts every alert as a violation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Alert {
    pub process: String,
    pub what: String,
}

/// One effect of handling an input.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Effect {
    Send(Envelope),
    Ledger { tag: u64, request: LedgerRequest },
    SetTimer { timer_id: u64, at: Ts },
    Alert(Alert),
}

/// The effects of one input, in the order they must be carried out.
#[derive(Debug, Default)]
pub struct Effects {
    items: Vec<Effect>,
    /// Set by [`Effects::poison`]: the input makes no sense and goes to the dead letters.
    poison: Option<String>,
}

impl Effects {
    pub fn new() -> Effects {
        Effects::default()
    }

    pub fn send(&mut self, id: MessageId, from: Service, to: Service, body: Message) {
        self.items.push(Effect::Send(Envelope {
            id,
            from,
            to,
            seq: 0,
            body,
        }));
    }

    pub fn ledger(&mut self, tag: u64, request: LedgerRequest) {
        let events = match &request {
            LedgerRequest::CreateAccounts(b) => b.len(),
            LedgerRequest::CreateTransfers(b) => b.len(),
            LedgerRequest::LookupAccounts(b) | LedgerRequest::LookupTransfers(b) => b.len(),
            LedgerRequest::GetAccountTransfers(_)
            | LedgerRequest::QueryTransfers(_)
            | LedgerRequest::QueryAccounts(_) => 1,
        };
        assert!(events >= 1, "empty ledger request");
        assert!(
            events <= acme_ledger::BATCH_EVENTS_MAX,
            "ledger request of {events} events"
        );
        self.items.push(Effect::Ledger { tag, request });
    }

    /// Splits `transfers` into requests of at most `BATCH_EVENTS_MAX` events without cutting a
    /// linked chain, tagged `tag_of(chunk_index)`. Returns the number of requests.
    pub fn create_transfers_chunked(
        &mut self,
        transfers: Vec<Transfer>,
        mut tag_of: impl FnMut(u64) -> u64,
    ) -> u64 {
        let mut chunks = 0;
        let mut current: Vec<Transfer> = Vec::new();
        let mut chain_start = 0;
        for t in transfers {
            let linked = t.flags.contains(acme_ledger::TransferFlags::LINKED);
            current.push(t);
            if !linked {
                chain_start = current.len();
            }
            if current.len() == acme_ledger::BATCH_EVENTS_MAX {
                assert!(chain_start > 0, "a linked chain longer than a batch");
                let rest = current.split_off(chain_start);
                self.ledger(tag_of(chunks), LedgerRequest::CreateTransfers(current));
                chunks += 1;
                current = rest;
                chain_start = 0;
                if let Some(last) = current.last() {
                    if !last.flags.contains(acme_ledger::TransferFlags::LINKED) {
                        chain_start = current.len();
                    }
                }
            }
        }
        if !current.is_empty() {
            self.ledger(tag_of(chunks), LedgerRequest::CreateTransfers(current));
            chunks += 1;
        }
        chunks
    }

    pub fn timer(&mut self, timer_id: u64, at: Ts) {
        self.items.push(Effect::SetTimer { timer_id, at });
    }

    pub fn alert(&mut self, process: &str, what: String) {
        self.items.push(Effect::Alert(Alert {
            process: process.to_string(),
            what,
        }));
    }

    /// Declares the input poison: it cannot be made sense of in any state (an unknown message
    /// kind, a reply to a request never made). The host drops every effect of it, commits it to
    /// the dead letters with `reason`, acknowledges it and raises an alert, and rebuilds the
    /// process from its store (so a half-applied input leaves no trace).
    pub fn poison(&mut self, reason: String) {
        self.poison = Some(reason);
    }

    pub fn poisoned(&self) -> Option<&str> {
        self.poison.as_deref()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn items(&self) -> &[Effect] {
        &self.items
    }

    pub fn into_vec(self) -> Vec<Effect> {
        self.items
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.poison = None;
    }
}

/// What a process knows besides the input: the time the input is handled at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    pub now: Ts,
}

/// A business process: a deterministic state machine from inputs to effects.
///
/// Rules a process keeps (the host and the simulator rely on them):
/// - `handle` depends only on `self`, `ctx` and `input`: same state and input, same effects.
/// - Every ledger transfer id and every message id it emits is derived from the cause
///   (`acme_ledger::ids`, [`crate::messages::msg_id`]), so re-emitting an effect is harmless.
/// - It treats a ledger `exists` like `ok`: the effect was applied by an earlier incarnation.
/// - It keeps no state that it could not rebuild from its inputs: the host persists the inputs.
/// - Its whole state serializes (serde): the host snapshots it and restores it after a crash,
///   then replays only the inputs after the snapshot. Finished work leaves the state.
/// - It declares the version of its code. Changing what `handle` does with an input, or the
///   shape of the state, is a new version; a snapshot of an older version is restored only
///   through [`Process::migrate`], and a journal written by another version is never replayed.
pub trait Process: Serialize + serde::de::DeserializeOwned + Send + 'static {
    /// A stable name for traces, storage and alerts.
    fn name(&self) -> &'static str;

    /// The version of this process's code (from 1).
    fn version(&self) -> u32 {
        1
    }

    /// Handles one input.
    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects);

    /// Turns the state of a snapshot written by code version `from` (as JSON) into this
    /// version's. The default refuses: a process that changes version declares its migration.
    fn migrate(&self, from: u32, state: serde_json::Value) -> Result<serde_json::Value, String> {
        let _ = state;
        Err(format!(
            "{} declares no migration from version {from} to {}",
            self.name(),
            self.version()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acme_ledger::TransferFlags;

    #[test]
    fn chunking_never_cuts_a_linked_chain() {
        let mut transfers = Vec::new();
        for i in 0..20_000u128 {
            // pairs: linked + closing
            let flags = if i % 2 == 0 {
                TransferFlags::LINKED
            } else {
                TransferFlags::NONE
            };
            transfers.push(Transfer {
                id: i + 1,
                flags,
                ..Transfer::default()
            });
        }
        let mut fx = Effects::new();
        let chunks = fx.create_transfers_chunked(transfers, |i| i);
        assert_eq!(chunks, 3);
        let mut total = 0;
        for e in fx.items() {
            let Effect::Ledger {
                request: LedgerRequest::CreateTransfers(batch),
                ..
            } = e
            else {
                panic!("not a transfer batch")
            };
            assert!(batch.len() <= acme_ledger::BATCH_EVENTS_MAX);
            assert!(!batch.last().unwrap().flags.contains(TransferFlags::LINKED));
            total += batch.len();
        }
        assert_eq!(total, 20_000);
    }
}
