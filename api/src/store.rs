//! What the API knows, rebuilt from its journal at every start: members (the client's id, the
//! platform's number for them, their risk profile, the next instruction number), idempotency
//! keys (per caller: the request's fingerprint, the instruction it made and the answer given)
//! and instructions (what was asked, when, and the states intake reported).
//!
//! Numbers are handed out here and made durable before anything is sent to the platform: a
//! member's number and an instruction's id are never given twice, even across a crash, so a
//! re-sent instruction is recognised by intake as the same one, and a new one never as a copy.

use acme_processes::calendar::{Date, Ts};
use acme_processes::messages::{
    instruction_id, InstructionId, InstructionKind, InstructionState, INSTRUCTION_SEQ_MAX,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The journal's records.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    Member {
        name: String,
        number: u64,
        profile: u8,
        at: Ts,
        /// The onboarding's number on the API's channel to intake (0 in journals written
        /// before the channel was numbered: sent unnumbered, deduplicated by its id).
        #[serde(default)]
        seq: u64,
    },
    /// Intake acknowledged the member's onboarding (written without waiting for its sync: if a
    /// crash loses it, the next start sends the onboarding again, which intake takes once).
    Onboarded { number: u64 },
    /// An idempotency key was taken for a new instruction (before it is sent to intake).
    Begin {
        caller: String,
        key: String,
        fingerprint: String,
        instruction: InstructionId,
        member: String,
        kind: InstructionKind,
        dealing_date: Option<Date>,
        at: Ts,
        /// The instruction's number on the API's channel to intake (0 before it was numbered).
        #[serde(default)]
        seq: u64,
    },
    /// Intake committed it; this is the answer given (and replayed) under the key.
    Done {
        caller: String,
        key: String,
        answer: Answer,
    },
    /// A state intake reported.
    Status {
        instruction: InstructionId,
        state: InstructionState,
        at: Ts,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    pub location: String,
    pub body: String,
}

#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub number: u64,
    pub profile: u8,
    /// Its record is durable (until then a second registration is told to wait).
    pub durable: bool,
    next_seq: u64,
    pub instructions: Vec<InstructionId>,
    /// The onboarding's number on the channel to intake, and whether intake acknowledged it.
    pub channel_seq: u64,
    pub onboarded: bool,
    pub registered_at: Ts,
}

#[derive(Clone, Debug)]
pub struct Instruction {
    pub id: InstructionId,
    pub member: String,
    pub kind: InstructionKind,
    pub dealing_date: Option<Date>,
    pub received_at: Ts,
    /// The states reported, in order; empty while only received.
    pub history: Vec<(InstructionState, Ts)>,
    /// Intake acknowledged it (the key's answer is recorded).
    pub accepted: bool,
    /// Its number on the channel to intake.
    pub channel_seq: u64,
}

#[derive(Clone, Debug)]
pub struct KeyEntry {
    pub fingerprint: String,
    pub instruction: InstructionId,
    pub answer: Option<Answer>,
}

/// What an idempotency key says about a request.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// Never seen: go ahead (and the key is now held as in flight).
    New,
    /// The same request was answered: replay this.
    Replay(Answer),
    /// The same request was begun but not answered (a crash came between): finish it.
    Resume(InstructionId),
    /// Another request used this key.
    Mismatch,
    /// The first request with this key is still being handled.
    InFlight,
}

/// B-trees, not hash maps: a hash map doubles in one go, rehashing every entry under the
/// store's lock, and at 10,000 instructions a second each doubling of the keys and
/// instructions (at 114,688, 229,376, ... entries) stopped every request for 100 to 300 ms,
/// most of the service's p99.
#[derive(Default)]
pub struct Store {
    members: BTreeMap<String, Member>,
    numbers: BTreeMap<u64, String>,
    keys: BTreeMap<(String, String), KeyEntry>,
    in_flight: BTreeSet<(String, String)>,
    instructions: BTreeMap<InstructionId, Instruction>,
    /// The next number on the API's channel to intake (see [`Store::take_channel_seq`]).
    channel_next: u64,
}

/// Why a member cannot be given another instruction id.
pub const SEQ_EXHAUSTED: &str = "the member has used every instruction number";

impl Store {
    pub fn replay(records: Vec<Record>) -> Store {
        let mut store = Store::default();
        for r in records {
            store.apply(r, true);
        }
        store
    }

    /// Takes a durable record in (`durable` false: a member record not yet synced).
    pub fn apply(&mut self, record: Record, durable: bool) {
        match record {
            Record::Member {
                name,
                number,
                profile,
                at,
                seq,
            } => {
                self.saw_channel_seq(seq);
                let m = self.members.entry(name.clone()).or_insert(Member {
                    name: name.clone(),
                    number,
                    profile,
                    durable,
                    next_seq: 1,
                    instructions: Vec::new(),
                    channel_seq: seq,
                    onboarded: false,
                    registered_at: at,
                });
                m.durable |= durable;
                self.numbers.insert(number, name);
            }
            Record::Onboarded { number } => {
                if let Some(m) = self
                    .numbers
                    .get(&number)
                    .and_then(|n| self.members.get_mut(n))
                {
                    m.onboarded = true;
                }
            }
            Record::Begin {
                caller,
                key,
                fingerprint,
                instruction,
                member,
                kind,
                dealing_date,
                at,
                seq,
            } => {
                self.saw_channel_seq(seq);
                self.begin(
                    caller,
                    key,
                    fingerprint,
                    instruction,
                    member,
                    kind,
                    dealing_date,
                    (at, seq),
                )
            }
            Record::Done {
                caller,
                key,
                answer,
            } => {
                let k = (caller, key);
                if let Some(e) = self.keys.get_mut(&k) {
                    if let Some(i) = self.instructions.get_mut(&e.instruction) {
                        i.accepted = true;
                    }
                    e.answer = Some(answer);
                }
                self.in_flight.remove(&k);
            }
            Record::Status {
                instruction,
                state,
                at,
            } => {
                if let Some(i) = self.instructions.get_mut(&instruction) {
                    if i.history.last().map(|h| h.0) != Some(state) {
                        i.history.push((state, at));
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // the fields of one record
    fn begin(
        &mut self,
        caller: String,
        key: String,
        fingerprint: String,
        instruction: InstructionId,
        member: String,
        kind: InstructionKind,
        dealing_date: Option<Date>,
        (at, channel_seq): (Ts, u64),
    ) {
        if let Some(m) = self.members.get_mut(&member) {
            let seq = instruction & INSTRUCTION_SEQ_MAX;
            m.next_seq = m.next_seq.max(seq + 1);
            if !m.instructions.contains(&instruction) {
                m.instructions.push(instruction);
            }
        }
        self.instructions.entry(instruction).or_insert(Instruction {
            id: instruction,
            member,
            kind,
            dealing_date,
            received_at: at,
            history: Vec::new(),
            accepted: false,
            channel_seq,
        });
        self.keys.insert(
            (caller, key),
            KeyEntry {
                fingerprint,
                instruction,
                answer: None,
            },
        );
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.get(name)
    }

    /// The number the next new member gets (members are numbered from 1).
    pub fn next_member_number(&self) -> u64 {
        self.numbers.keys().next_back().map_or(1, |n| n + 1)
    }

    pub fn instruction(&self, id: InstructionId) -> Option<&Instruction> {
        self.instructions.get(&id)
    }

    /// Checks a key, holding it as in flight when it is new or to be resumed.
    pub fn check_key(&mut self, caller: &str, key: &str, fingerprint: &str) -> KeyCheck {
        let k = (caller.to_string(), key.to_string());
        if self.in_flight.contains(&k) {
            return KeyCheck::InFlight;
        }
        let check = match self.keys.get(&k) {
            None => KeyCheck::New,
            Some(e) if e.fingerprint != fingerprint => return KeyCheck::Mismatch,
            Some(KeyEntry {
                answer: Some(a), ..
            }) => return KeyCheck::Replay(a.clone()),
            Some(e) => KeyCheck::Resume(e.instruction),
        };
        self.in_flight.insert(k);
        check
    }

    /// Lets a held key go without an answer (the request was refused before it began).
    pub fn release_key(&mut self, caller: &str, key: &str) {
        self.in_flight
            .remove(&(caller.to_string(), key.to_string()));
    }

    /// The next instruction id of `member`, taken now.
    pub fn take_instruction_id(&mut self, member: &str) -> Result<InstructionId, &'static str> {
        let m = self.members.get_mut(member).ok_or("unknown member")?;
        if m.next_seq > INSTRUCTION_SEQ_MAX {
            return Err(SEQ_EXHAUSTED);
        }
        let id = instruction_id(m.number, m.next_seq);
        m.next_seq += 1;
        Ok(id)
    }

    /// The next number on the API's channel to intake, taken now. Numbers let intake's host
    /// deduplicate the API's messages by a watermark (constant state) instead of remembering
    /// every message id for a day (most of its snapshot under load). The caller must queue the
    /// record carrying it to the journal before letting the store go (see
    /// `App::keep_numbered`), so the journal holds numbers in order: a durable number follows
    /// every lower one, and the only gap intake can see is a record not yet sent.
    pub fn take_channel_seq(&mut self) -> u64 {
        let seq = self.next_channel_seq();
        self.channel_next = seq + 1;
        seq
    }

    /// Returns the number just taken, unused (still under the same lock, so none was taken
    /// after it).
    pub fn give_back_channel_seq(&mut self, seq: u64) {
        assert_eq!(
            self.channel_next,
            seq + 1,
            "only the last number taken goes back"
        );
        self.channel_next = seq;
    }

    fn next_channel_seq(&self) -> u64 {
        self.channel_next.max(1)
    }

    fn saw_channel_seq(&mut self, seq: u64) {
        if seq > 0 {
            self.channel_next = self.channel_next.max(seq + 1);
        }
    }

    /// Durable members whose onboarding intake has not acknowledged yet, as (number, profile,
    /// channel number, registered at).
    pub fn unonboarded(&self) -> Vec<(u64, u8, u64, Ts)> {
        let mut out: Vec<_> = self
            .members
            .values()
            .filter(|m| m.durable && !m.onboarded)
            .map(|m| (m.number, m.profile, m.channel_seq, m.registered_at))
            .collect();
        out.sort_unstable();
        out
    }

    /// Holds an unanswered key for finishing it (false if it is held already or answered).
    pub fn hold_unanswered(&mut self, caller: &str, key: &str) -> bool {
        let k = (caller.to_string(), key.to_string());
        let unanswered = self.keys.get(&k).is_some_and(|e| e.answer.is_none());
        unanswered && self.in_flight.insert(k)
    }

    /// Keys begun but never answered: what a crash cut short, to finish at the start.
    pub fn unanswered(&self) -> Vec<(String, String, InstructionId)> {
        let mut out: Vec<_> = self
            .keys
            .iter()
            .filter(|(_, e)| e.answer.is_none())
            .map(|((c, k), e)| (c.clone(), k.clone(), e.instruction))
            .collect();
        out.sort_by_key(|x| x.2);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, number: u64) -> Record {
        Record::Member {
            name: name.into(),
            number,
            profile: 1,
            at: 0,
            seq: number,
        }
    }

    #[test]
    fn keys_replay_mismatch_and_hold_and_numbers_survive_a_replay() {
        let mut s = Store::replay(vec![member("M-1", 1)]);
        assert_eq!(s.next_member_number(), 2);
        assert_eq!(s.check_key("c", "k", "f1"), KeyCheck::New);
        assert_eq!(s.check_key("c", "k", "f1"), KeyCheck::InFlight);
        assert_eq!(
            s.check_key("other", "k", "f1"),
            KeyCheck::New,
            "keys are per caller"
        );
        let id = s.take_instruction_id("M-1").expect("a number");
        assert_eq!(id, instruction_id(1, 1));
        let begin = Record::Begin {
            caller: "c".into(),
            key: "k".into(),
            fingerprint: "f1".into(),
            instruction: id,
            member: "M-1".into(),
            kind: InstructionKind::Contribute { cash_pence: 5 },
            dealing_date: None,
            at: 7,
            seq: 9,
        };
        s.apply(begin.clone(), true);
        let answer = Answer {
            status: 202,
            location: "/x".into(),
            body: "{}".into(),
        };
        let done = Record::Done {
            caller: "c".into(),
            key: "k".into(),
            answer: answer.clone(),
        };
        s.apply(done.clone(), true);
        assert_eq!(
            s.check_key("c", "k", "f1"),
            KeyCheck::Replay(answer.clone())
        );
        assert_eq!(s.check_key("c", "k", "f2"), KeyCheck::Mismatch);
        // After a crash between Begin and Done: resumed, and the next id is not reused.
        let mut r = Store::replay(vec![member("M-1", 1), begin.clone()]);
        assert_eq!(r.unanswered().len(), 1);
        assert_eq!(r.check_key("c", "k", "f1"), KeyCheck::Resume(id));
        assert_eq!(r.take_instruction_id("M-1"), Ok(instruction_id(1, 2)));
        let full = Store::replay(vec![member("M-1", 1), begin, done]);
        assert!(full.unanswered().is_empty());
        assert!(full.instruction(id).expect("kept").accepted);
    }

    #[test]
    fn channel_numbers_continue_after_the_journal_and_onboardings_wait_for_their_ack() {
        let mut fresh = Store::default();
        assert_eq!(
            fresh.take_channel_seq(),
            1,
            "numbers start at 1 (0 is unnumbered)"
        );
        assert_eq!(fresh.take_channel_seq(), 2);
        // A journal of old, unnumbered records and numbered ones: the next follows the highest.
        let mut old = member("M-0", 3);
        if let Record::Member { seq, .. } = &mut old {
            *seq = 0;
        }
        let mut s = Store::replay(vec![member("M-1", 1), member("M-7", 7), old]);
        assert_eq!(s.take_channel_seq(), 8);
        assert_eq!(
            s.unonboarded()
                .iter()
                .map(|m| (m.0, m.2))
                .collect::<Vec<_>>(),
            vec![(1, 1), (3, 0), (7, 7)]
        );
        s.apply(Record::Onboarded { number: 7 }, true);
        assert_eq!(s.unonboarded().len(), 2);
        assert!(!s.hold_unanswered("c", "k"), "no such key");
    }
}
