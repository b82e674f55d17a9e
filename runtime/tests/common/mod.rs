//! The members' side of the small runtime tests: sends instructions, acknowledges the
//! statuses intake reports, counts acknowledgements, and runs the clock on, skipping quiet time.
#![allow(dead_code)]

use acme_processes::calendar::Ts;
use acme_processes::messages::{
    instruction_id, msg_id, Instruction, InstructionKind, InstructionState, Message, MsgKind,
    Origin,
};
use acme_processes::process::{Envelope, Service};
use acme_runtime::{AcceleratedClock, Clock, Gateway, Runtime};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The members' side: sends instructions, acknowledges statuses, notes acknowledgements.
pub struct Members {
    pub gateway: Gateway,
    pub statuses: BTreeMap<u64, InstructionState>,
    pub acked: BTreeMap<u128, u64>,
}

impl Members {
    pub fn new(gateway: Gateway) -> Members {
        Members {
            gateway,
            statuses: BTreeMap::new(),
            acked: BTreeMap::new(),
        }
    }

    pub fn instruct(&self, member: u64, seq: u64, kind: InstructionKind) -> u128 {
        let instruction = Instruction {
            id: instruction_id(member, seq),
            member,
            kind,
            origin: Origin::Member,
        };
        let id = msg_id(MsgKind::Instruction, instruction.id, 0);
        self.gateway
            .send(Envelope {
                id,
                from: Service::Members,
                to: Service::Intake,
                seq: 0,
                body: Message::Instruction(instruction),
            })
            .expect("intake runs");
        id
    }

    pub fn receive(&mut self, envelope: Envelope) {
        match envelope.body {
            Message::Ack { id } => *self.acked.entry(id).or_default() += 1,
            Message::InstructionStatus { id, state } => {
                self.statuses.insert(id, state);
                self.gateway
                    .send(Envelope {
                        id: acme_processes::host::ack_id(envelope.id, Service::Members),
                        from: Service::Members,
                        to: envelope.from,
                        seq: 0,
                        body: Message::Ack { id: envelope.id },
                    })
                    .expect("the sender runs");
            }
            other => panic!("members got {other:?}"),
        }
    }

    /// Runs until the clock reads `until`, skipping it over quiet time.
    pub async fn run_until(
        &mut self,
        rt: &Runtime,
        clock: &AcceleratedClock,
        rx: &mut mpsc::UnboundedReceiver<Envelope>,
        until: Ts,
    ) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut idle = rt.idle_signal();
        while clock.now() < until {
            idle.borrow_and_update();
            assert!(Instant::now() < deadline, "stuck: {:?}", rt.status());
            while let Ok(envelope) = rx.try_recv() {
                self.receive(envelope);
            }
            if let Some(quiet) = rt.quiet_until() {
                if rx.is_empty() {
                    clock.skip_to(until.min(quiet));
                    continue;
                }
            }
            tokio::select! {
                envelope = rx.recv() => self.receive(envelope.expect("open")),
                _ = idle.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
}
