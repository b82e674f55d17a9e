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
use std::collections::{BTreeMap, HashMap, HashSet};

/// The journal's records.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    Member {
        name: String,
        number: u64,
        profile: u8,
        at: Ts,
    },
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

#[derive(Default)]
pub struct Store {
    members: HashMap<String, Member>,
    numbers: BTreeMap<u64, String>,
    keys: HashMap<(String, String), KeyEntry>,
    in_flight: HashSet<(String, String)>,
    instructions: HashMap<InstructionId, Instruction>,
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
                ..
            } => {
                let m = self.members.entry(name.clone()).or_insert(Member {
                    name: name.clone(),
                    number,
                    profile,
                    durable,
                    next_seq: 1,
                    instructions: Vec::new(),
                });
                m.durable |= durable;
                self.numbers.insert(number, name);
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
            } => self.begin(
                caller,
                key,
                fingerprint,
                instruction,
                member,
                kind,
                dealing_date,
                at,
            ),
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
        at: Ts,
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
}
