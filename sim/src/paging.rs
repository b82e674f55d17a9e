//! How the platform split its largest pieces of work, seen from outside: the orders one trade
//! carried, and the ledger requests that booked it, settled it and scanned the pots.
//!
//! A fund's day with more orders than a ledger batch holds must be booked in several batches,
//! settled over several query pages, and the re-balancing pass must read the pots over several
//! pages; a process that stopped after the first would leave members out without any error.
//! These figures are counted from the requests' contents (the trade id a transfer carries, the
//! timestamp a query starts from), not from the processes' tags or counters, so a process that
//! forgot its next page shows here as one page.

use acme_ledger::{Transfer, TransferFlags};
use acme_processes::messages::Message;
use acme_processes::process::{LedgerRequest, Service};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The figures a run reports (each the largest over the run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PagingSummary {
    /// Orders one trade (one fund's day) aggregated.
    pub orders_per_trade_max: u64,
    /// Events in one of intake's ledger batches.
    pub intake_batch_events_max: u64,
    /// Ledger batches pricing booked one trade's allocation in.
    pub booking_batches_max: u64,
    /// Query pages settlement read one trade's pending lines in.
    pub settlement_pages_max: u64,
    /// Pages of members' cash accounts one re-balancing pass read.
    pub rebalancing_pages_max: u64,
}

#[derive(Default)]
pub struct Paging {
    summary: PagingSummary,
    /// Per trade, the first transfer id of each booking batch (a retried batch counts once).
    booking: BTreeMap<u128, BTreeSet<u128>>,
    /// Per trade, the timestamps settlement's queries started from.
    settlement: BTreeMap<u128, BTreeSet<u64>>,
    /// The timestamps the current re-balancing scan's pages started from.
    scan: BTreeSet<u64>,
}

/// Booking posts the orders' reservations (an amendment posts none); each post carries the
/// trade's id.
fn is_reservation_post(t: &Transfer) -> bool {
    t.flags.contains(TransferFlags::POST_PENDING_TRANSFER) && t.user_data_128 != 0
}

impl Paging {
    /// A message a host took.
    pub fn on_message(&mut self, body: &Message) {
        if let Message::TradeBooked { orders, .. } = body {
            let s = &mut self.summary;
            s.orders_per_trade_max = s.orders_per_trade_max.max(orders.len() as u64);
        }
    }

    /// A ledger request of `service` the ledger applied.
    pub fn on_request(&mut self, service: Service, request: &LedgerRequest) {
        let s = &mut self.summary;
        match (service, request) {
            (Service::Intake, LedgerRequest::CreateTransfers(batch)) => {
                s.intake_batch_events_max = s.intake_batch_events_max.max(batch.len() as u64);
            }
            (Service::Pricing, LedgerRequest::CreateTransfers(batch)) => {
                let Some(post) = batch.iter().find(|t| is_reservation_post(t)) else {
                    return;
                };
                let batches = self.booking.entry(post.user_data_128).or_default();
                batches.insert(batch[0].id);
                s.booking_batches_max = s.booking_batches_max.max(batches.len() as u64);
            }
            (Service::Settlement, LedgerRequest::QueryTransfers(filter)) => {
                let pages = self.settlement.entry(filter.user_data_128).or_default();
                pages.insert(filter.timestamp_min);
                s.settlement_pages_max = s.settlement_pages_max.max(pages.len() as u64);
            }
            (Service::Rebalancing, LedgerRequest::QueryAccounts(filter)) => {
                // Every pass (and every postponed pass looking again) starts from the beginning.
                if filter.timestamp_min == 0 {
                    self.scan.clear();
                }
                self.scan.insert(filter.timestamp_min);
                s.rebalancing_pages_max = s.rebalancing_pages_max.max(self.scan.len() as u64);
            }
            _ => {}
        }
    }

    pub fn summary(&self) -> PagingSummary {
        self.summary
    }
}
