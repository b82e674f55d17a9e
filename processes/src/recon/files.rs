//! What `acme recon` does between reading its files and printing the report, as a library
//! function: every statement's text parsed against the ledger's date and the custodian account,
//! then [`reconcile`]. The command reads the files and prints; the fuzz test calls this in
//! process with generated and mutated statements, so both meet the same code.

use super::cash::parse_cash;
use super::holdings::{parse_holdings, Expect};
use super::ledger::LedgerFacts;
use super::trades::parse_trades;
use super::{reconcile, InputError, ReconConfig, Report, Statements};

/// A statement file as given: its name (for errors) and its text.
#[derive(Clone, Copy, Debug)]
pub struct StatementFile<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// The statement files of one reconciliation; a level without its file is skipped.
#[derive(Clone, Debug, Default)]
pub struct StatementFiles<'a> {
    pub holdings: Option<StatementFile<'a>>,
    pub trades: Option<StatementFile<'a>>,
    pub cash: Vec<StatementFile<'a>>,
}

/// Parses the statements (holdings for `custodian_account` as of `cfg.as_of`) and reconciles
/// them with the ledger's facts.
pub fn reconcile_files(
    cfg: &ReconConfig,
    custodian_account: &str,
    facts: &LedgerFacts,
    files: &StatementFiles,
) -> Result<Report, InputError> {
    let expect = Expect {
        date: Some(cfg.as_of),
        custodian_account: Some(custodian_account.to_string()),
    };
    let mut statements = Statements::default();
    if let Some(f) = files.holdings {
        statements.holdings = Some(parse_holdings(f.name, f.text, &expect)?);
    }
    if let Some(f) = files.trades {
        statements.trades = Some(parse_trades(f.name, f.text, Some(cfg.as_of))?);
    }
    for f in &files.cash {
        statements
            .cash
            .push(parse_cash(f.name, f.text, Some(cfg.as_of))?);
    }
    reconcile(cfg, facts, &statements)
}

/// `acme recon`'s exit code for an outcome: 0 clean (timing breaks allowed), 2 at least one true
/// break, 1 an error (a file refused, with its line and field).
pub fn exit_code<E>(outcome: &Result<Report, E>) -> u8 {
    match outcome {
        Ok(r) if r.is_clean() => 0,
        Ok(_) => 2,
        Err(_) => 1,
    }
}
