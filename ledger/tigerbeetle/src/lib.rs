//! The TigerBeetle adapter of the [`Ledger`] port: [`TigerBeetleLedger`] sends every port call to
//! a real TigerBeetle 0.16.78 cluster through the `tigerbeetle-unofficial` client, so that the
//! processes and tools that run on the embedded `MemLedger` can run unchanged on the real thing
//! (and a differential test can compare the two). It converts our mirrored types field by field,
//! expands TigerBeetle's sparse create results to the port's dense ones, blocks on the async
//! client with a tiny executor of its own, and turns every transport failure into
//! [`LedgerError::Unavailable`] rather than a panic.
//!
//! This crate is opt-in: the client's build compiles Zig code (see `tools/tigerbeetle.sh install`,
//! which also provides the server and a local cluster), so only crates that depend on it pay for
//! that. It is an adapter crate: it reads the wall clock to notice a cluster that stopped
//! answering, which the pure crates may not.
//!
//! The client never times a request out by itself (TigerBeetle retries until the cluster
//! answers); the adapter gives up after [`DEFAULT_REQUEST_TIMEOUT`] without a reply (settable
//! with [`TigerBeetleLedger::set_request_timeout`]) and reports `Unavailable`. The request may
//! still be applied later, so callers retry with the same ids, as the port says.

// The workspace's clippy.toml forbids the wall clock (`Instant`) for the pure crates; this
// adapter needs it for its reply deadline.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use acme_ledger::{
    Account, AccountFilter, AccountFlags, CreateAccountResult, CreateTransferResult, Ledger,
    LedgerError, QueryFilter, Transfer, TransferFlags, BATCH_EVENTS_MAX,
};
use tigerbeetle_unofficial as tb;
use tigerbeetle_unofficial::error::{CreateAccountsError, CreateTransfersError, SendError};

/// How long a call waits without any reply before it reports [`LedgerError::Unavailable`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How many requests [`TigerBeetleLedger::create_transfers_many`] and the `*_batches` calls keep
/// queued in the client at once, and the most they may: one in flight and one waiting. The
/// client sends one request at a time per session; queueing the next one lets it go as soon as
/// the previous reply arrives, without a round trip through us.
///
/// Never more: TigerBeetle 0.16's client packs a newly queued request into the *oldest* waiting
/// request of the same operation that has room (its "multi-batch"), so with two or more waiting
/// behind the one in flight, a small request can overtake a larger one queued before it, and be
/// applied first. Found by `tb_platform_bench` (account creations answered `exists` before the
/// request that created them); `tests/batches.rs` checks the order.
pub const DEFAULT_REQUESTS_IN_FLIGHT: usize = 2;

/// A [`Ledger`] backed by a TigerBeetle cluster. See the crate documentation.
pub struct TigerBeetleLedger {
    client: tb::Client,
    cluster_id: u128,
    addresses: String,
    request_timeout: Option<Duration>,
    requests_in_flight: usize,
}

impl core::fmt::Debug for TigerBeetleLedger {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TigerBeetleLedger")
            .field("cluster_id", &self.cluster_id)
            .field("addresses", &self.addresses)
            .field("request_timeout", &self.request_timeout)
            .field("requests_in_flight", &self.requests_in_flight)
            .finish_non_exhaustive()
    }
}

impl TigerBeetleLedger {
    /// A client of cluster `cluster_id` at `addresses` (TigerBeetle's syntax: a comma-separated
    /// list of `host:port` or ports, one per replica, in replica order).
    ///
    /// Like TigerBeetle's client this does not wait for the cluster: an unreachable cluster shows
    /// on the first call, as [`LedgerError::Unavailable`] after the request timeout. Call
    /// [`TigerBeetleLedger::ping`] to check at once.
    pub fn connect(cluster_id: u128, addresses: &str) -> Result<Self, LedgerError> {
        let addresses = addresses.trim();
        if addresses.is_empty() {
            return Err(unavailable(format!(
                "no TigerBeetle address given for cluster {cluster_id}"
            )));
        }
        let client = tb::Client::new(cluster_id, addresses).map_err(|e| {
            unavailable(format!(
                "cannot create a TigerBeetle client for cluster {cluster_id} at {addresses}: {e}"
            ))
        })?;
        Ok(TigerBeetleLedger {
            client,
            cluster_id,
            addresses: addresses.to_owned(),
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            requests_in_flight: DEFAULT_REQUESTS_IN_FLIGHT,
        })
    }

    /// How long a call waits without a reply before it gives up with `Unavailable`; `None`
    /// waits for ever, as TigerBeetle's own clients do.
    pub fn set_request_timeout(&mut self, timeout: Option<Duration>) {
        self.request_timeout = timeout;
    }

    /// How many requests [`Self::create_transfers_many`] and the `*_batches` calls queue at
    /// once: 1 or 2 (more would let the client reorder them, see
    /// [`DEFAULT_REQUESTS_IN_FLIGHT`]).
    pub fn set_requests_in_flight(&mut self, requests: usize) {
        self.requests_in_flight = requests.clamp(1, DEFAULT_REQUESTS_IN_FLIGHT);
    }

    pub fn cluster_id(&self) -> u128 {
        self.cluster_id
    }

    pub fn addresses(&self) -> &str {
        &self.addresses
    }

    /// One round trip to the cluster (a lookup of an id that cannot exist): `Ok` once it answers.
    pub fn ping(&mut self) -> Result<(), LedgerError> {
        let reply = self.block_on(self.client.lookup_accounts(vec![u128::MAX]))?;
        reply.map(drop).map_err(|e| self.send_error(&e))
    }

    /// Creates any number of transfers: splits them into requests of at most
    /// [`BATCH_EVENTS_MAX`] events, keeps up to [`Self::set_requests_in_flight`] of them queued
    /// in the client at once, and returns one result per transfer, in order.
    ///
    /// Requests are applied in order. A split never falls inside a chain of linked transfers
    /// unless the chain alone is longer than a request (TigerBeetle then answers
    /// `linked_event_chain_open` for it, as it would for that request). If any request fails to
    /// get a reply, the whole call returns `Unavailable`; some requests may have been applied, so
    /// the caller retries the whole call with the same ids.
    pub fn create_transfers_many(
        &mut self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        let chunks = split_batches(transfers, BATCH_EVENTS_MAX);
        let jobs = chunks.iter().map(|range| {
            let batch: Vec<tb::Transfer> = transfers[range.clone()]
                .iter()
                .map(to_tb_transfer)
                .collect();
            self.client.create_transfers(batch)
        });
        let replies = drive(jobs, self.requests_in_flight, self.request_timeout)
            .map_err(|stalled| self.stalled(stalled))?;
        let mut results = Vec::with_capacity(transfers.len());
        for (range, reply) in chunks.iter().zip(replies) {
            results.extend(self.transfer_results(range.len(), reply)?);
        }
        Ok(results)
    }

    /// Applies `batches` in order, each with the results it would have alone, packing
    /// consecutive batches into requests of at most [`BATCH_EVENTS_MAX`] events (a batch is never
    /// split) and keeping [`Self::set_requests_in_flight`] of them queued in the client. Returns
    /// the results of each batch.
    ///
    /// Packing does not change what a batch does: a batch that ends inside a linked chain ends
    /// its request (its chain stays open, as alone), and batches whose first events differ in
    /// `imported` are not packed together (the first event decides for the whole request). What
    /// differs is the timestamps (one request, consecutive) and so the moment at which pending
    /// transfers with a timeout can expire between batches. This is what TigerBeetle's client
    /// does with concurrent requests (its multi-batch), but in order: many small batches cost
    /// about what one large one does. If any request gets no reply, the whole call is
    /// `Unavailable` (some requests may have been applied).
    pub fn create_transfers_batches(
        &mut self,
        batches: &[Vec<Transfer>],
    ) -> Result<Vec<Vec<CreateTransferResult>>, LedgerError> {
        let groups = pack_batches(batches, |t| {
            (
                t.flags.contains(TransferFlags::LINKED),
                t.flags.contains(TransferFlags::IMPORTED),
            )
        })?;
        let jobs = groups.iter().map(|group| {
            let request: Vec<tb::Transfer> = batches[group.clone()]
                .iter()
                .flatten()
                .map(to_tb_transfer)
                .collect();
            self.client.create_transfers(request)
        });
        let replies = drive(jobs, self.requests_in_flight, self.request_timeout)
            .map_err(|stalled| self.stalled(stalled))?;
        let mut out = Vec::with_capacity(batches.len());
        for (group, reply) in groups.iter().zip(replies) {
            let events = batches[group.clone()].iter().map(Vec::len).sum();
            let mut results = self.transfer_results(events, reply)?.into_iter();
            for batch in &batches[group.clone()] {
                out.push(results.by_ref().take(batch.len()).collect());
            }
        }
        Ok(out)
    }

    /// [`Self::create_transfers_batches`] for accounts.
    pub fn create_accounts_batches(
        &mut self,
        batches: &[Vec<Account>],
    ) -> Result<Vec<Vec<CreateAccountResult>>, LedgerError> {
        let groups = pack_batches(batches, |a| {
            (
                a.flags.contains(AccountFlags::LINKED),
                a.flags.contains(AccountFlags::IMPORTED),
            )
        })?;
        let jobs = groups.iter().map(|group| {
            let request: Vec<tb::Account> = batches[group.clone()]
                .iter()
                .flatten()
                .map(to_tb_account)
                .collect();
            self.client.create_accounts(request)
        });
        let replies = drive(jobs, self.requests_in_flight, self.request_timeout)
            .map_err(|stalled| self.stalled(stalled))?;
        let mut out = Vec::with_capacity(batches.len());
        for (group, reply) in groups.iter().zip(replies) {
            let events = batches[group.clone()].iter().map(Vec::len).sum();
            let mut results = self.account_results(events, reply)?.into_iter();
            for batch in &batches[group.clone()] {
                out.push(results.by_ref().take(batch.len()).collect());
            }
        }
        Ok(out)
    }

    fn block_on<F: Future>(&self, future: F) -> Result<F::Output, LedgerError> {
        let mut outputs = drive(std::iter::once(future), 1, self.request_timeout)
            .map_err(|stalled| self.stalled(stalled))?;
        outputs
            .pop()
            .ok_or_else(|| unavailable("internal: no reply collected".to_owned()))
    }

    fn stalled(&self, stalled: Stalled) -> LedgerError {
        unavailable(format!(
            "no reply from TigerBeetle cluster {} at {} within {:?} ({} request(s) unanswered; \
             is the cluster up, and is the cluster id right?); the request may or may not have \
             been applied",
            self.cluster_id, self.addresses, stalled.waited, stalled.unanswered
        ))
    }

    fn send_error(&self, e: &SendError) -> LedgerError {
        unavailable(format!(
            "TigerBeetle cluster {} at {}: {e} ({:?})",
            self.cluster_id,
            self.addresses,
            e.kind()
        ))
    }

    fn transfer_results(
        &self,
        events: usize,
        reply: Result<(), CreateTransfersError>,
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        let mut results = vec![CreateTransferResult::Ok; events];
        match reply {
            Ok(()) => {}
            Err(CreateTransfersError::Api(errors)) => {
                for e in errors.as_slice() {
                    let code = e.inner().code().get();
                    let result = CreateTransferResult::from_code(code).ok_or_else(|| {
                        unavailable(format!("unknown create_transfers result code {code}"))
                    })?;
                    set_result(&mut results, e.index(), result)?;
                }
            }
            Err(CreateTransfersError::Send(e)) => return Err(self.send_error(&e)),
            Err(e) => return Err(unavailable(format!("TigerBeetle create_transfers: {e}"))),
        }
        Ok(results)
    }

    fn account_results(
        &self,
        events: usize,
        reply: Result<(), CreateAccountsError>,
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        let mut results = vec![CreateAccountResult::Ok; events];
        match reply {
            Ok(()) => {}
            Err(CreateAccountsError::Api(errors)) => {
                for e in errors.as_slice() {
                    let code = e.inner().code().get();
                    let result = CreateAccountResult::from_code(code).ok_or_else(|| {
                        unavailable(format!("unknown create_accounts result code {code}"))
                    })?;
                    set_result(&mut results, e.index(), result)?;
                }
            }
            Err(CreateAccountsError::Send(e)) => return Err(self.send_error(&e)),
            Err(e) => return Err(unavailable(format!("TigerBeetle create_accounts: {e}"))),
        }
        Ok(results)
    }
}

impl Ledger for TigerBeetleLedger {
    fn create_accounts(
        &mut self,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        check_batch_len(batch.len())?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let accounts: Vec<tb::Account> = batch.iter().map(to_tb_account).collect();
        let reply = self.block_on(self.client.create_accounts(accounts))?;
        self.account_results(batch.len(), reply)
    }

    fn create_transfers(
        &mut self,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        check_batch_len(batch.len())?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let transfers: Vec<tb::Transfer> = batch.iter().map(to_tb_transfer).collect();
        let reply = self.block_on(self.client.create_transfers(transfers))?;
        self.transfer_results(batch.len(), reply)
    }

    fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        check_batch_len(ids.len())?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let reply = self.block_on(self.client.lookup_accounts(ids.to_vec()))?;
        let found = reply.map_err(|e| self.send_error(&e))?;
        Ok(found.iter().map(from_tb_account).collect())
    }

    fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        check_batch_len(ids.len())?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let reply = self.block_on(self.client.lookup_transfers(ids.to_vec()))?;
        let found = reply.map_err(|e| self.send_error(&e))?;
        Ok(found.iter().map(from_tb_transfer).collect())
    }

    fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, LedgerError> {
        let filter = Box::new(to_tb_account_filter(filter));
        let reply = self.block_on(self.client.get_account_transfers(filter))?;
        let found = reply.map_err(|e| self.send_error(&e))?;
        Ok(found.iter().map(from_tb_transfer).collect())
    }

    fn query_transfers(&mut self, filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        let filter = Box::new(to_tb_query_filter(filter));
        let reply = self.block_on(self.client.query_transfers(filter))?;
        let found = reply.map_err(|e| self.send_error(&e))?;
        Ok(found.iter().map(from_tb_transfer).collect())
    }

    fn query_accounts(&mut self, filter: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        let filter = Box::new(to_tb_query_filter(filter));
        let reply = self.block_on(self.client.query_accounts(filter))?;
        let found = reply.map_err(|e| self.send_error(&e))?;
        Ok(found.iter().map(from_tb_account).collect())
    }
}

fn unavailable(reason: String) -> LedgerError {
    LedgerError::Unavailable { reason }
}

fn check_batch_len(events: usize) -> Result<(), LedgerError> {
    if events > BATCH_EVENTS_MAX {
        return Err(LedgerError::BatchTooLarge {
            events,
            max: BATCH_EVENTS_MAX,
        });
    }
    Ok(())
}

fn set_result<R>(results: &mut [R], index: u32, result: R) -> Result<(), LedgerError> {
    let len = results.len();
    let slot = results.get_mut(index as usize).ok_or_else(|| {
        unavailable(format!(
            "TigerBeetle returned a result for event {index} of a batch of {len}"
        ))
    })?;
    *slot = result;
    Ok(())
}

/// Groups consecutive batches into requests (ranges of batch indexes) of at most
/// [`BATCH_EVENTS_MAX`] events, such that each batch does in its request what it would do alone:
/// a batch whose last event is `linked` (an open chain) ends its request, and a request holds
/// only batches whose first events agree on `imported`. Empty batches are sent alone (TigerBeetle
/// answers an empty request with no results). `flags(event) = (linked, imported)`.
pub fn pack_batches<E>(
    batches: &[Vec<E>],
    flags: impl Fn(&E) -> (bool, bool),
) -> Result<Vec<std::ops::Range<usize>>, LedgerError> {
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    let mut events = 0;
    let mut imported = None;
    let mut closed = true;
    for (i, batch) in batches.iter().enumerate() {
        check_batch_len(batch.len())?;
        let first_imported = batch.first().map(|e| flags(e).1);
        let fits = events + batch.len() <= BATCH_EVENTS_MAX
            && closed
            && !batch.is_empty()
            && events > 0
            && first_imported == imported;
        if !fits && i > start {
            groups.push(start..i);
            start = i;
            events = 0;
        }
        if events == 0 {
            imported = first_imported;
        }
        events += batch.len();
        closed = batch.last().is_none_or(|e| !flags(e).0);
        if batch.is_empty() {
            groups.push(start..i + 1);
            start = i + 1;
            events = 0;
            closed = true;
        }
    }
    if start < batches.len() {
        groups.push(start..batches.len());
    }
    Ok(groups)
}

/// Splits `events` into consecutive ranges of at most `max` events, cutting after the last
/// event that closes a chain (`LINKED` clear) wherever one exists in the range, so that linked
/// chains stay within one request.
pub fn split_batches(events: &[Transfer], max: usize) -> Vec<std::ops::Range<usize>> {
    let max = max.max(1);
    let mut ranges = Vec::with_capacity(events.len().div_ceil(max));
    let mut start = 0;
    while start < events.len() {
        let mut end = (start + max).min(events.len());
        if end < events.len() {
            // Cut after the last chain-closing event in [start, end), if any.
            if let Some(last_closing) = events[start..end]
                .iter()
                .rposition(|t| !t.flags.contains(TransferFlags::LINKED))
            {
                end = start + last_closing + 1;
            }
        }
        ranges.push(start..end);
        start = end;
    }
    ranges
}

// -------------------------------------------------------------------------------------------
// Conversions, field by field. Our types mirror `tb_client.h` of 0.16.78 exactly.

pub fn to_tb_account(a: &Account) -> tb::Account {
    tb::Account::from_raw(tb::account::Raw {
        id: a.id,
        debits_pending: a.debits_pending,
        debits_posted: a.debits_posted,
        credits_pending: a.credits_pending,
        credits_posted: a.credits_posted,
        user_data_128: a.user_data_128,
        user_data_64: a.user_data_64,
        user_data_32: a.user_data_32,
        reserved: a.reserved,
        ledger: a.ledger,
        code: a.code,
        flags: a.flags.0,
        timestamp: a.timestamp,
    })
}

pub fn from_tb_account(a: &tb::Account) -> Account {
    let r = a.as_raw();
    Account {
        id: r.id,
        debits_pending: r.debits_pending,
        debits_posted: r.debits_posted,
        credits_pending: r.credits_pending,
        credits_posted: r.credits_posted,
        user_data_128: r.user_data_128,
        user_data_64: r.user_data_64,
        user_data_32: r.user_data_32,
        reserved: r.reserved,
        ledger: r.ledger,
        code: r.code,
        flags: AccountFlags(r.flags),
        timestamp: r.timestamp,
    }
}

pub fn to_tb_transfer(t: &Transfer) -> tb::Transfer {
    tb::Transfer::from_raw(tb::transfer::Raw {
        id: t.id,
        debit_account_id: t.debit_account_id,
        credit_account_id: t.credit_account_id,
        amount: t.amount,
        pending_id: t.pending_id,
        user_data_128: t.user_data_128,
        user_data_64: t.user_data_64,
        user_data_32: t.user_data_32,
        timeout: t.timeout,
        ledger: t.ledger,
        code: t.code,
        flags: t.flags.0,
        timestamp: t.timestamp,
    })
}

pub fn from_tb_transfer(t: &tb::Transfer) -> Transfer {
    let r = t.as_raw();
    Transfer {
        id: r.id,
        debit_account_id: r.debit_account_id,
        credit_account_id: r.credit_account_id,
        amount: r.amount,
        pending_id: r.pending_id,
        user_data_128: r.user_data_128,
        user_data_64: r.user_data_64,
        user_data_32: r.user_data_32,
        timeout: r.timeout,
        ledger: r.ledger,
        code: r.code,
        flags: TransferFlags(r.flags),
        timestamp: r.timestamp,
    }
}

pub fn to_tb_account_filter(f: &AccountFilter) -> tb::account::Filter {
    tb::account::Filter::from_raw(tb::account::RawFilter {
        account_id: f.account_id,
        user_data_128: f.user_data_128,
        user_data_64: f.user_data_64,
        user_data_32: f.user_data_32,
        code: f.code,
        reserved: [0; 58],
        timestamp_min: f.timestamp_min,
        timestamp_max: f.timestamp_max,
        limit: f.limit,
        flags: u32::from(f.flags.0),
    })
}

pub fn to_tb_query_filter(f: &QueryFilter) -> tb::QueryFilter {
    tb::QueryFilter::from_raw(tb::core::query_filter::Raw {
        user_data_128: f.user_data_128,
        user_data_64: f.user_data_64,
        user_data_32: f.user_data_32,
        ledger: f.ledger,
        code: f.code,
        reserved: [0; 6],
        timestamp_min: f.timestamp_min,
        timestamp_max: f.timestamp_max,
        limit: f.limit,
        flags: u32::from(f.flags.0),
    })
}

// -------------------------------------------------------------------------------------------
// A minimal executor: the client's futures are oneshot receivers completed from the client's
// own thread, so polling them with a waker that unparks the calling thread is all it takes.

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// [`drive`] gave up: no future completed for `waited`, and `unanswered` were still pending.
#[derive(Debug)]
pub struct Stalled {
    pub waited: Duration,
    pub unanswered: usize,
}

/// Runs the futures of `jobs` on the calling thread, at most `window` at a time (a client future
/// submits its request when first polled), and returns their outputs in order. Gives up when
/// none completes for `timeout`; the unfinished futures are dropped (their requests may still be
/// applied). Public for the raw benchmark, which drives the bare client with it.
pub fn drive<I>(
    jobs: I,
    window: usize,
    timeout: Option<Duration>,
) -> Result<Vec<<I::Item as Future>::Output>, Stalled>
where
    I: Iterator,
    I::Item: Future,
{
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut outputs: Vec<Option<<I::Item as Future>::Output>> = Vec::new();
    let mut running: Vec<(usize, Pin<Box<I::Item>>)> = Vec::new();
    let mut jobs = jobs.fuse();
    let mut last_progress = Instant::now();
    loop {
        while running.len() < window.max(1) {
            let Some(job) = jobs.next() else { break };
            running.push((outputs.len(), Box::pin(job)));
            outputs.push(None);
        }
        if running.is_empty() {
            break;
        }
        let mut progressed = false;
        running.retain_mut(|(index, future)| match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => {
                outputs[*index] = Some(output);
                progressed = true;
                false
            }
            Poll::Pending => true,
        });
        if progressed {
            last_progress = Instant::now();
            continue;
        }
        match timeout {
            None => thread::park(),
            Some(timeout) => {
                let waited = last_progress.elapsed();
                if waited >= timeout {
                    return Err(Stalled {
                        waited,
                        unanswered: running.len(),
                    });
                }
                thread::park_timeout(timeout - waited);
            }
        }
    }
    Ok(outputs.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(id: u128, linked: bool) -> Transfer {
        Transfer {
            id,
            flags: if linked {
                TransferFlags::LINKED
            } else {
                TransferFlags::NONE
            },
            ..Transfer::default()
        }
    }

    #[test]
    fn split_respects_the_limit() {
        let events: Vec<Transfer> = (1..=10).map(|i| transfer(i, false)).collect();
        assert_eq!(split_batches(&events, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(split_batches(&events, 10), vec![0..10]);
        assert_eq!(split_batches(&[], 4), Vec::<std::ops::Range<usize>>::new());
    }

    #[test]
    fn split_keeps_chains_whole() {
        // Events 2..=5 form a chain (2, 3, 4 linked; 5 closes it).
        let events: Vec<Transfer> = (0..8)
            .map(|i| transfer(i + 1, (2..5).contains(&i)))
            .collect();
        assert_eq!(split_batches(&events, 4), vec![0..2, 2..6, 6..8]);
    }

    #[test]
    fn split_cuts_a_chain_longer_than_a_request() {
        let events: Vec<Transfer> = (0..6).map(|i| transfer(i + 1, i < 5)).collect();
        assert_eq!(split_batches(&events, 4), vec![0..4, 4..6]);
    }

    fn flags(t: &Transfer) -> (bool, bool) {
        (
            t.flags.contains(TransferFlags::LINKED),
            t.flags.contains(TransferFlags::IMPORTED),
        )
    }

    #[test]
    fn packing_keeps_batches_whole_and_within_a_request() {
        let batch = |n: u128| (0..n).map(|i| transfer(i + 1, false)).collect::<Vec<_>>();
        let batches = vec![
            batch(1),
            batch(2),
            batch(8186),
            batch(1),
            batch(8189),
            batch(3),
        ];
        assert_eq!(
            pack_batches(&batches, flags).unwrap(),
            vec![0..3, 3..4, 4..5, 5..6]
        );
        assert_eq!(pack_batches::<Transfer>(&[], flags).unwrap(), vec![]);
        let too_big = vec![batch(BATCH_EVENTS_MAX as u128 + 1)];
        assert!(pack_batches(&too_big, flags).is_err());
    }

    #[test]
    fn packing_ends_a_request_at_an_open_chain_and_at_a_change_of_imported() {
        let mut open = vec![transfer(1, false), transfer(2, true)];
        let mut imported = vec![transfer(3, false)];
        imported[0].flags |= TransferFlags::IMPORTED;
        let batches = vec![
            vec![transfer(4, false)],
            std::mem::take(&mut open),
            vec![transfer(5, false)],
            imported.clone(),
            imported,
            vec![],
            vec![transfer(6, false)],
        ];
        assert_eq!(
            pack_batches(&batches, flags).unwrap(),
            vec![0..2, 2..3, 3..5, 5..6, 6..7]
        );
    }

    #[test]
    fn conversions_copy_every_field() {
        let t = Transfer {
            id: 1,
            debit_account_id: 2,
            credit_account_id: 3,
            amount: 4,
            pending_id: 5,
            user_data_128: 6,
            user_data_64: 7,
            user_data_32: 8,
            timeout: 9,
            ledger: 10,
            code: 11,
            flags: TransferFlags(0x1ff),
            timestamp: 12,
        };
        assert_eq!(from_tb_transfer(&to_tb_transfer(&t)), t);
        let a = Account {
            id: 1,
            debits_pending: 2,
            debits_posted: 3,
            credits_pending: 4,
            credits_posted: 5,
            user_data_128: 6,
            user_data_64: 7,
            user_data_32: 8,
            reserved: 9,
            ledger: 10,
            code: 11,
            flags: AccountFlags(0x3f),
            timestamp: 12,
        };
        assert_eq!(from_tb_account(&to_tb_account(&a)), a);
        let f = AccountFilter {
            account_id: 1,
            user_data_128: 2,
            user_data_64: 3,
            user_data_32: 4,
            code: 5,
            timestamp_min: 6,
            timestamp_max: 7,
            limit: 8,
            flags: acme_ledger::AccountFilterFlags(7),
        };
        let r = *to_tb_account_filter(&f).as_raw();
        assert_eq!(
            (
                r.account_id,
                r.user_data_128,
                r.user_data_64,
                r.user_data_32,
                r.code
            ),
            (1, 2, 3, 4, 5)
        );
        assert_eq!(
            (r.timestamp_min, r.timestamp_max, r.limit, r.flags),
            (6, 7, 8, 7)
        );
        let q = QueryFilter {
            user_data_128: 1,
            user_data_64: 2,
            user_data_32: 3,
            ledger: 4,
            code: 5,
            timestamp_min: 6,
            timestamp_max: 7,
            limit: 8,
            flags: acme_ledger::QueryFilterFlags(1),
        };
        let r = *to_tb_query_filter(&q).as_raw();
        assert_eq!(
            (
                r.user_data_128,
                r.user_data_64,
                r.user_data_32,
                r.ledger,
                r.code
            ),
            (1, 2, 3, 4, 5)
        );
        assert_eq!(
            (r.timestamp_min, r.timestamp_max, r.limit, r.flags),
            (6, 7, 8, 1)
        );
    }

    #[test]
    fn drive_keeps_order_and_window() {
        let outputs = drive((0..10).map(|i| async move { i * 2 }), 3, None).unwrap();
        assert_eq!(outputs, (0..10).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn drive_gives_up_on_silence() {
        let never = std::future::pending::<()>();
        let stalled = drive(std::iter::once(never), 1, Some(Duration::from_millis(50)));
        assert!(matches!(stalled, Err(Stalled { unanswered: 1, .. })));
    }
}
