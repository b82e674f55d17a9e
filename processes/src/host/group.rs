//! Group commit: a host takes every message waiting in its mailbox as one append.
//!
//! Each message is still its own step, handled in turn against the state the ones before it
//! left, and its own record; the records reach the store together ([`ProcessStore::
//! append_group`]: one write and one sync on a log), and only then is any of them
//! acknowledged or any effect carried out. Nothing leaves the host before the record that
//! caused it is durable, so a crash anywhere in the group loses only unacknowledged inputs,
//! which their senders send again. This is what lets one process take thousands of
//! instructions a second on a disk that syncs a few thousand times a second.

use super::{Delivery, Host, Io, ProcessStore};
use crate::calendar::Ts;
use crate::process::{Envelope, MessageId, Process, Service};

/// Messages one group takes at most: a bound on the memory and the latency a group holds.
pub const GROUP_MESSAGES_MAX: usize = 8189;

impl<P: Process, S: ProcessStore> Host<P, S> {
    /// Delivers `envelopes` as one group commit. Each is what [`Host::deliver`] would say of
    /// it, except that a step not durable when the group ended (the host crashed or its store
    /// failed) is `Crashed`.
    pub fn deliver_group(
        &mut self,
        now: Ts,
        envelopes: Vec<Envelope>,
        io: &mut dyn Io,
    ) -> Vec<Delivery> {
        assert!(
            envelopes.len() <= GROUP_MESSAGES_MAX,
            "a group over its limit"
        );
        assert!(self.group.is_none(), "a group inside a group");
        let mut deliveries = Vec::with_capacity(envelopes.len());
        let mut to_ack: Vec<(MessageId, Service)> = Vec::new();
        self.group = Some(Vec::new());
        for envelope in envelopes {
            assert_eq!(envelope.to, self.service, "message for {:?}", envelope.to);
            let delivery = if self.process.is_none() {
                Delivery::Down
            } else {
                self.take(now, envelope, &mut to_ack, io)
            };
            deliveries.push(delivery);
        }
        let flushed = self.process.is_some() && self.flush_group().is_ok();
        self.group = None;
        if !flushed {
            for d in &mut deliveries {
                if matches!(d, Delivery::Handled | Delivery::DeadLettered) {
                    *d = Delivery::Crashed;
                }
            }
            return deliveries;
        }
        // Committed and not yet acknowledged: a crash here makes the senders send again, and
        // the copies are duplicates.
        if self.crash_here(io) {
            return deliveries;
        }
        for (id, sender) in to_ack {
            self.acknowledge(now, id, sender, io);
        }
        self.carry_out(now, io);
        self.maybe_snapshot(now, io);
        deliveries
    }

    /// One message of a group: screened, stepped, its acknowledgement kept for after the
    /// group's append.
    fn take(
        &mut self,
        now: Ts,
        envelope: Envelope,
        to_ack: &mut Vec<(MessageId, Service)>,
        io: &mut dyn Io,
    ) -> Delivery {
        let (id, sender) = (envelope.id, envelope.from);
        if let Some(delivery) = self.screen(&envelope) {
            if delivery == Delivery::Duplicate {
                // The first copy may be in this very group: acknowledged once it is durable.
                to_ack.push((id, sender));
            }
            return delivery;
        }
        if crate::plant::active(crate::plant::Bug::AckBeforeCommit) {
            self.acknowledge(now, id, sender, io);
        }
        if self.crash_here(io) {
            return Delivery::Crashed;
        }
        let delivery = self.step(
            now,
            crate::process::Input::Message(envelope),
            None,
            vec![],
            io,
        );
        if matches!(delivery, Delivery::Handled | Delivery::DeadLettered) {
            to_ack.push((id, sender));
        }
        delivery
    }

    /// Appends what the group took so far. A failure stops the host.
    pub(super) fn flush_group(&mut self) -> Result<(), ()> {
        let Some(group) = self.group.as_mut() else {
            return Ok(());
        };
        let records = std::mem::take(group);
        if records.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.append_group(&records) {
            self.stop(format!("append failed: {e}"));
            return Err(());
        }
        let taken = records.len() as u64;
        self.stats.group_commits += 1;
        self.stats.grouped_inputs += taken;
        self.stats.group_max = self.stats.group_max.max(taken);
        Ok(())
    }
}
