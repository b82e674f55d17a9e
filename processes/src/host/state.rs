//! The host's durable state beside the process's: the outbox of effects not yet complete, the
//! timers, the channels' sequence numbers, the dedupe memory and the dead letters.
//!
//! It changes only by [`HostState::apply`] of a journal record, so replaying the journal after
//! a snapshot rebuilds it exactly, and it is snapshotted with the process. Everything here is
//! bounded by what is in flight, never by how long the process has run: platform messages, and
//! an outside sender that numbers its messages (the API's channel to intake), are deduplicated
//! by their channel's sequence numbers (a watermark and the few seen above it); unnumbered
//! messages from outside by their id for [`EXTERNAL_DEDUPE_NS`] after commit.

use super::record::{Entry, Record};
use crate::calendar::{Ts, NS_PER_SEC};
use crate::process::{Alert, Effect, Envelope, Input, LedgerRequest, MessageId, Service};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How long the id of an unnumbered message from outside the platform (the custodian's notice,
/// a scheduler's job, a simulated member's instruction) is remembered after it was committed. Such senders
/// send again until acknowledged, every minute or so, so a day outlasts any retry (as an
/// idempotency key's usual 24 hours does); a copy that comes back later is judged by the
/// process on its business key (an instruction id, a trade id) and by the ledger's ids, which
/// never forget. The window is most of a busy host's snapshot: a week of it made recovery
/// four times slower than a day does, and under `acme serve`'s load a day of the API's ids was
/// 25 MB of every intake snapshot, until the API numbered its channel.
pub const EXTERNAL_DEDUPE_NS: Ts = 24 * 3600 * NS_PER_SEC;

/// An effect committed and not yet complete: a message until its receiver acknowledges it, a
/// ledger request until its answer is committed, an alert until it was raised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pending {
    Send(Envelope),
    Ledger { tag: u64, request: LedgerRequest },
    Alert(Alert),
}

/// What a receiver saw of one sender's channel: every sequence number below `below`, and
/// those in `above`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub below: u64,
    pub above: BTreeSet<u64>,
}

impl Watermark {
    pub fn seen(&self, seq: u64) -> bool {
        seq < self.below || self.above.contains(&seq)
    }

    /// Records `seq`; false if it was seen already.
    pub fn insert(&mut self, seq: u64) -> bool {
        assert!(seq >= 1, "channel sequence numbers start at 1");
        if self.below == 0 {
            self.below = 1;
        }
        if self.seen(seq) {
            return false;
        }
        if seq == self.below {
            self.below += 1;
            while self.above.remove(&self.below) {
                self.below += 1;
            }
        } else {
            self.above.insert(seq);
        }
        true
    }
}

/// An input the process could not handle: it panicked, or declared it poison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub at: Ts,
    pub input: Input,
    pub reason: String,
    /// An operator asked for it to be handled again (at the next start, or now).
    pub redrive: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// Inputs committed (handled or dead-lettered), all time.
    pub inputs: u64,
    next_seq: u64,
    pending: BTreeMap<u64, Pending>,
    timers: BTreeMap<u64, Ts>,
    channels_out: BTreeMap<Service, u64>,
    channels_in: BTreeMap<Service, Watermark>,
    /// External message ids by commit time, and the reverse (rebuilt on restore).
    #[serde(with = "crate::serde_packed")]
    external: BTreeSet<(Ts, MessageId)>,
    #[serde(skip)]
    external_ids: BTreeMap<MessageId, Ts>,
    /// Pending sends by message id (rebuilt on restore).
    #[serde(skip)]
    sends_by_id: BTreeMap<MessageId, BTreeSet<u64>>,
    /// The outbox seqs of pending ledger requests (rebuilt on restore): the host submits them
    /// in order without walking the sends that wait for acknowledgements.
    #[serde(skip)]
    ledger_seqs: BTreeSet<u64>,
    dead_letters: BTreeMap<u64, DeadLetter>,
    next_dead_letter: u64,
}

impl HostState {
    /// Rebuilds the indexes that a snapshot does not carry.
    pub fn reindex(&mut self) {
        self.external_ids = self.external.iter().map(|&(at, id)| (id, at)).collect();
        self.sends_by_id.clear();
        self.ledger_seqs.clear();
        for (&seq, p) in &self.pending {
            match p {
                Pending::Send(env) => {
                    self.sends_by_id.entry(env.id).or_default().insert(seq);
                }
                Pending::Ledger { .. } => {
                    self.ledger_seqs.insert(seq);
                }
                Pending::Alert(_) => {}
            }
        }
    }

    /// Whether a message was committed already.
    pub fn is_duplicate(&self, envelope: &Envelope) -> bool {
        if envelope.seq > 0 {
            self.channels_in
                .get(&envelope.from)
                .is_some_and(|w| w.seen(envelope.seq))
        } else {
            self.external_ids.contains_key(&envelope.id)
        }
    }

    /// Ids of messages from outside the platform remembered (see [`EXTERNAL_DEDUPE_NS`]).
    pub fn external_remembered(&self) -> usize {
        self.external.len()
    }

    pub fn pending(&self) -> &BTreeMap<u64, Pending> {
        &self.pending
    }

    /// The outbox seqs of the pending ledger requests, in order.
    pub fn ledger_seqs(&self) -> &BTreeSet<u64> {
        &self.ledger_seqs
    }

    pub fn timers(&self) -> &BTreeMap<u64, Ts> {
        &self.timers
    }

    pub fn dead_letters(&self) -> &BTreeMap<u64, DeadLetter> {
        &self.dead_letters
    }

    /// The pending sends of message `id` (normally one).
    pub fn sends_of(&self, id: MessageId) -> Vec<u64> {
        self.sends_by_id
            .get(&id)
            .map_or_else(Vec::new, |s| s.iter().copied().collect())
    }

    /// Completes a pending effect (idempotent: a record may name one completed already).
    pub fn complete(&mut self, seq: u64) {
        self.ledger_seqs.remove(&seq);
        if let Some(Pending::Send(env)) = self.pending.remove(&seq) {
            let empty = self.sends_by_id.get_mut(&env.id).is_some_and(|s| {
                s.remove(&seq);
                s.is_empty()
            });
            if empty {
                self.sends_by_id.remove(&env.id);
            }
        }
    }

    /// Applies one journal record: the only way this state changes.
    pub fn apply(&mut self, service: Service, record: &Record) {
        match &record.entry {
            Entry::Step {
                input,
                effects,
                done,
                redrive,
            } => {
                match redrive {
                    Some(id) => {
                        self.dead_letters.remove(id);
                    }
                    None => self.take_input(record.at, input),
                }
                self.inputs += 1;
                for &seq in done {
                    self.complete(seq);
                }
                for effect in effects {
                    self.add_effect(service, effect.clone());
                }
            }
            Entry::DeadLetter {
                input,
                reason,
                done,
                redrive,
            } => {
                let id = match redrive {
                    Some(id) => *id,
                    None => {
                        self.take_input(record.at, input);
                        self.next_dead_letter += 1;
                        self.next_dead_letter
                    }
                };
                self.inputs += 1;
                for &seq in done {
                    self.complete(seq);
                }
                self.dead_letters.insert(
                    id,
                    DeadLetter {
                        at: record.at,
                        input: input.clone(),
                        reason: reason.clone(),
                        redrive: false,
                    },
                );
                self.add_effect(
                    service,
                    Effect::Alert(Alert {
                        process: format!("{service:?}").to_lowercase(),
                        what: format!("dead letter {id}: {reason}"),
                    }),
                );
            }
            Entry::Progress { done } => {
                for &seq in done {
                    self.complete(seq);
                }
            }
            Entry::Redrive { dead_letter } => {
                if let Some(d) = self.dead_letters.get_mut(dead_letter) {
                    d.redrive = true;
                }
            }
        }
    }

    /// The dedupe and timer side of taking an input.
    fn take_input(&mut self, at: Ts, input: &Input) {
        match input {
            Input::Message(env) if env.seq > 0 => {
                let fresh = self
                    .channels_in
                    .entry(env.from)
                    .or_default()
                    .insert(env.seq);
                let planted = crate::plant::active(crate::plant::Bug::DuplicateAppliedTwice);
                assert!(
                    fresh || planted,
                    "message {:#x} (seq {}) committed twice",
                    env.id,
                    env.seq
                );
            }
            Input::Message(env) => {
                if let Some(old) = self.external_ids.insert(env.id, at) {
                    self.external.remove(&(old, env.id));
                }
                self.external.insert((at, env.id));
                self.forget_external_before(at.saturating_sub(EXTERNAL_DEDUPE_NS));
            }
            Input::Timer { timer_id } => {
                self.timers.remove(timer_id);
            }
            Input::Ledger { .. } => {}
        }
    }

    fn forget_external_before(&mut self, horizon: Ts) {
        while let Some(&(at, id)) = self.external.first() {
            if at >= horizon {
                break;
            }
            self.external.pop_first();
            self.external_ids.remove(&id);
        }
    }

    fn add_effect(&mut self, service: Service, effect: Effect) {
        self.next_seq += 1;
        let seq = self.next_seq;
        match effect {
            Effect::Send(mut env) => {
                assert_eq!(env.from, service, "a process sends as itself");
                let channel = self.channels_out.entry(env.to).or_default();
                *channel += 1;
                env.seq = *channel;
                self.sends_by_id.entry(env.id).or_default().insert(seq);
                self.pending.insert(seq, Pending::Send(env));
            }
            Effect::SetTimer { timer_id, at } => {
                self.timers.insert(timer_id, at);
            }
            Effect::Ledger { tag, request } => {
                self.ledger_seqs.insert(seq);
                self.pending.insert(seq, Pending::Ledger { tag, request });
            }
            Effect::Alert(alert) => {
                self.pending.insert(seq, Pending::Alert(alert));
            }
        }
    }

    /// Marks a dead letter for handling again.
    pub fn dead_letter_mut(&mut self, id: u64) -> Option<&mut DeadLetter> {
        self.dead_letters.get_mut(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_is_exact_and_small() {
        let mut w = Watermark::default();
        for seq in [1, 2, 4, 5, 3, 7] {
            assert!(w.insert(seq));
        }
        assert!(!w.insert(4));
        assert!(!w.seen(6) && w.seen(5));
        assert_eq!(w.below, 6);
        assert_eq!(w.above.len(), 1);
        for seq in 6..10_000 {
            w.insert(seq);
        }
        assert_eq!(w.below, 10_000);
        assert!(w.above.is_empty());
    }
}
