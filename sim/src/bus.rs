//! The broker's side of delivery to the platform's hosts, as a broker with acknowledgements
//! behaves (NATS JetStream, SQS): it keeps a copy of every message it delivers to a consumer
//! until that consumer acknowledges it, then drops the copy for good; what is still
//! unacknowledged when the consumer comes back from a stop is offered again.
//!
//! The acknowledgement the bus honours is the one the consumer's host sends, which a correct
//! host sends only once the message is durably committed. So a host that acknowledges early and
//! crashes before its commit loses the message here as it would on a real broker, and the
//! simulator's oracles see the loss (the planted `ack-before-commit`).
//!
//! The bus needs no acknowledgement timer of its own: a consumer that is up acknowledges within
//! the delivery that handed it the message (committed, a duplicate, or a dead letter), so a copy
//! outlives its delivery only when the consumer went down during it or was down already, and
//! the restart offers it again. The senders' own retransmissions stay as they were: a message
//! the consumer never acknowledged is also sent again by its sender.

use acme_processes::messages::Message;
use acme_processes::process::{Envelope, MessageId, Service};
use std::collections::BTreeMap;

/// Copies delivered to consumers and not yet acknowledged.
#[derive(Default)]
pub(crate) struct Bus {
    /// Per consumer, the copies by arrival number (so they are offered again in the order
    /// they came).
    kept: BTreeMap<Service, BTreeMap<u64, Envelope>>,
    /// Where each kept copy is: one copy per consumer and message, however often it came.
    index: BTreeMap<(Service, MessageId), u64>,
    arrivals: u64,
    /// Copies dropped because their consumer acknowledged them.
    acked: u64,
}

impl Bus {
    /// The broker hands `envelope` to its consumer: it keeps a copy until acknowledged.
    /// Acknowledgements themselves are never acknowledged, so no copy of one is kept.
    pub(crate) fn delivering(&mut self, envelope: &Envelope) {
        if matches!(envelope.body, Message::Ack { .. }) {
            return;
        }
        let key = (envelope.to, envelope.id);
        if self.index.contains_key(&key) {
            return;
        }
        self.arrivals += 1;
        self.index.insert(key, self.arrivals);
        self.kept
            .entry(envelope.to)
            .or_default()
            .insert(self.arrivals, envelope.clone());
    }

    /// `consumer` acknowledged message `id`: its copy is dropped and never offered again.
    pub(crate) fn acknowledged(&mut self, consumer: Service, id: MessageId) {
        let Some(arrival) = self.index.remove(&(consumer, id)) else {
            return;
        };
        if let Some(kept) = self.kept.get_mut(&consumer) {
            kept.remove(&arrival);
        }
        self.acked += 1;
    }

    /// `consumer` is back: what it never acknowledged, in the order it came, to deliver again
    /// (each is kept again when it is delivered).
    pub(crate) fn take_unacknowledged(&mut self, consumer: Service) -> Vec<Envelope> {
        let kept = self.kept.remove(&consumer).unwrap_or_default();
        let copies: Vec<Envelope> = kept.into_values().collect();
        for envelope in &copies {
            self.index.remove(&(consumer, envelope.id));
        }
        copies
    }

    /// `consumer` stopped for good: it is offered nothing more (or the run would never end).
    pub(crate) fn forget(&mut self, consumer: Service) {
        self.take_unacknowledged(consumer);
    }

    /// Copies waiting for `consumer`'s acknowledgement.
    #[cfg(test)]
    pub(crate) fn unacknowledged(&self, consumer: Service) -> usize {
        self.kept.get(&consumer).map_or(0, BTreeMap::len)
    }

    /// Nothing waiting for an acknowledgement.
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Copies dropped on their consumer's acknowledgement so far.
    #[cfg(test)]
    pub(crate) fn acked(&self) -> u64 {
        self.acked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: MessageId, to: Service) -> Envelope {
        Envelope {
            id,
            from: Service::Members,
            to,
            seq: 0,
            body: Message::Ack { id: 0 },
        }
    }

    fn instruction(id: MessageId, to: Service) -> Envelope {
        use acme_processes::messages::{Instruction, InstructionKind, Origin};
        Envelope {
            body: Message::Instruction(Instruction {
                id: id as u64,
                member: 1,
                kind: InstructionKind::Contribute { cash_pence: 1 },
                origin: Origin::Member,
            }),
            ..message(id, to)
        }
    }

    #[test]
    fn an_acknowledged_copy_is_never_offered_again_and_the_rest_come_in_order() {
        let mut bus = Bus::default();
        for id in [3, 1, 2] {
            bus.delivering(&instruction(id, Service::Intake));
        }
        bus.delivering(&instruction(1, Service::Intake)); // a second copy: kept once
        bus.delivering(&instruction(9, Service::Pricing));
        assert_eq!(bus.unacknowledged(Service::Intake), 3);
        bus.acknowledged(Service::Intake, 1);
        bus.acknowledged(Service::Pricing, 3); // another consumer's ack drops nothing of intake's
        let again: Vec<MessageId> = bus
            .take_unacknowledged(Service::Intake)
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(again, vec![3, 2]);
        assert_eq!(bus.acked(), 1);
        assert!(bus.take_unacknowledged(Service::Intake).is_empty());
        assert!(!bus.is_empty(), "pricing's copy is still waiting");
        bus.forget(Service::Pricing);
        assert!(bus.is_empty());
    }

    #[test]
    fn acknowledgements_are_not_kept() {
        let mut bus = Bus::default();
        bus.delivering(&message(7, Service::Settlement));
        assert!(bus.is_empty());
    }
}
