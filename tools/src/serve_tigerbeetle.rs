//! `acme serve --tigerbeetle`: the service's ledger connections on a TigerBeetle cluster.
//!
//! The cluster is pinged once at start, so a wrong address is an error before the service
//! listens. After that the runtime opens a connection per host worker and for the API's reads,
//! each its own TigerBeetle client; one that cannot be made answers every call `Unavailable`
//! (with the reason), which the hosts retry, rather than bringing a thread down.

use acme_ledger::{
    Account, AccountFilter, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    QueryFilter, Transfer,
};
use acme_ledger_tigerbeetle::TigerBeetleLedger;
use std::sync::Arc;

const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub fn serve_connect(cluster_id: u128, addresses: &str) -> Result<acme_runtime::Connect, String> {
    let mut first = TigerBeetleLedger::connect(cluster_id, addresses).map_err(|e| e.to_string())?;
    // A cluster that is up answers a ping in milliseconds; an operator waits 5 s, not 30.
    first.set_request_timeout(Some(PING_TIMEOUT));
    first
        .ping()
        .map_err(|e| format!("TigerBeetle cluster {cluster_id} at {addresses}: {e}"))?;
    let addresses = addresses.to_string();
    Ok(Arc::new(move || -> Box<dyn Ledger + Send> {
        match TigerBeetleLedger::connect(cluster_id, &addresses) {
            Ok(client) => Box::new(client),
            Err(e) => Box::new(Unreachable(e.to_string())),
        }
    }))
}

/// A connection that could not be made: every call is `Unavailable`, saying why.
struct Unreachable(String);

impl Unreachable {
    fn err<T>(&self) -> Result<T, LedgerError> {
        Err(LedgerError::Unavailable {
            reason: self.0.clone(),
        })
    }
}

impl Ledger for Unreachable {
    fn create_accounts(&mut self, _: &[Account]) -> Result<Vec<CreateAccountResult>, LedgerError> {
        self.err()
    }
    fn create_transfers(
        &mut self,
        _: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        self.err()
    }
    fn lookup_accounts(&mut self, _: &[u128]) -> Result<Vec<Account>, LedgerError> {
        self.err()
    }
    fn lookup_transfers(&mut self, _: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        self.err()
    }
    fn get_account_transfers(&mut self, _: &AccountFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.err()
    }
    fn query_transfers(&mut self, _: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        self.err()
    }
    fn query_accounts(&mut self, _: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        self.err()
    }
}
