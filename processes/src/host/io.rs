//! The world as a host sees it: [`Io`]. The simulator implements it with virtual time and
//! faults, the tokio runtime (`acme-runtime`) with real timers, a bus and a ledger client.

use crate::calendar::Ts;
use crate::process::{Alert, Envelope, LedgerReply, LedgerRequest, Service};
use acme_ledger::{Ledger, LedgerError};

/// Names one submission of a ledger request, so that its answer finds its way back and a late
/// answer to an earlier attempt or incarnation is recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket {
    pub incarnation: u64,
    /// The request's place in the host's outbox.
    pub seq: u64,
    pub attempt: u64,
}

/// The ports of a host.
///
/// The ledger contract: requests of one host are applied in the order submitted, and each is
/// answered once, later, by [`super::Host::on_ledger`]. An answer `Unavailable` means the
/// request may or may not have been applied, and that no request this host submitted after it
/// was applied (each is answered `Unavailable` too, or not at all): the host submits them again,
/// in order, after [`super::LEDGER_RETRY_NS`].
pub trait Io {
    /// Submits a ledger request; its answer comes back later.
    fn submit_ledger(&mut self, service: Service, ticket: Ticket, request: &LedgerRequest);
    /// Hands a message to the bus.
    fn send(&mut self, now: Ts, envelope: Envelope);
    /// Arms a timer; it comes back by [`super::Host::fire_timer`] tagged with `incarnation`,
    /// and the host ignores timers of earlier incarnations.
    fn set_timer(&mut self, service: Service, timer_id: u64, at: Ts, incarnation: u64);
    /// Raises an alert to operations.
    fn alert(&mut self, now: Ts, alert: Alert);
    /// Asked between any two store operations and effects: `true` crashes the host right there
    /// (fault injection).
    fn crash_point(&mut self, _service: Service) -> bool {
        false
    }
}

/// Runs one request against a ledger port (what an `Io` does with a submitted request).
pub fn execute(
    ledger: &mut dyn Ledger,
    request: &LedgerRequest,
) -> Result<LedgerReply, LedgerError> {
    Ok(match request {
        LedgerRequest::CreateAccounts(batch) => {
            LedgerReply::CreateAccounts(ledger.create_accounts(batch)?)
        }
        LedgerRequest::CreateTransfers(batch) => {
            LedgerReply::CreateTransfers(ledger.create_transfers(batch)?)
        }
        LedgerRequest::LookupAccounts(ids) => LedgerReply::Accounts(ledger.lookup_accounts(ids)?),
        LedgerRequest::LookupTransfers(ids) => {
            LedgerReply::Transfers(ledger.lookup_transfers(ids)?)
        }
        LedgerRequest::GetAccountTransfers(filter) => {
            LedgerReply::Transfers(ledger.get_account_transfers(filter)?)
        }
        LedgerRequest::QueryTransfers(filter) => {
            LedgerReply::Transfers(ledger.query_transfers(filter)?)
        }
        LedgerRequest::QueryAccounts(filter) => {
            LedgerReply::Accounts(ledger.query_accounts(filter)?)
        }
    })
}
