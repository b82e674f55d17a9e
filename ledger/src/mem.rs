//! `MemLedger`: TigerBeetle's state machine, embedded. (Being written.)
use crate::port::{Clock, Ledger, LedgerError};
use crate::types::*;
use std::sync::Arc;

pub struct MemLedger {
    clock: Arc<dyn Clock + Send + Sync>,
    accounts: Vec<Account>,
}

impl MemLedger {
    pub fn new(clock: Arc<dyn Clock + Send + Sync>) -> Self {
        MemLedger { clock, accounts: Vec::new() }
    }
    /// Every account, in creation (timestamp) order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }
    /// Every transfer, in creation (timestamp) order.
    pub fn transfers(&self) -> &[Transfer] {
        todo!()
    }
}

impl Ledger for MemLedger {
    fn create_accounts(&mut self, _batch: &[Account]) -> Result<Vec<CreateAccountResult>, LedgerError> {
        let _ = self.clock.now_ns();
        todo!()
    }
    fn create_transfers(&mut self, _batch: &[Transfer]) -> Result<Vec<CreateTransferResult>, LedgerError> {
        todo!()
    }
    fn lookup_accounts(&mut self, _ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        todo!()
    }
    fn lookup_transfers(&mut self, _ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        todo!()
    }
    fn get_account_transfers(&mut self, _filter: &AccountFilter) -> Result<Vec<Transfer>, LedgerError> {
        todo!()
    }
    fn query_transfers(&mut self, _filter: &QueryFilter) -> Result<Vec<Transfer>, LedgerError> {
        todo!()
    }
    fn query_accounts(&mut self, _filter: &QueryFilter) -> Result<Vec<Account>, LedgerError> {
        todo!()
    }
}
