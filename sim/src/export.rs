//! Export of a simulated day for operations (`acme sim --export DIR`) and the simulator's
//! end-of-day reconciliation.
//!
//! Both see the world the same way: the ledger as it stands, and the statements the simulated
//! custodian and bank would send from their own books (the custodian's holdings, confirmations
//! and cash; the bank's balance, which is every pound paid in: opening pots and contributions). The end-of-day check runs
//! `acme_processes::recon` on them, the engine `acme recon` runs on the exported files, and
//! turns every true break into a violation. Timing breaks (a confirmation or settlement notice
//! still on the bus) are not violations; the bank is compared only when no contribution is still
//! on its way to the ledger (its amount is not known to the ledger until it lands).

use crate::checker::Violation;
use crate::world::{scan_accounts, FUNDS};
use crate::World;
use acme_ledger::chart::FundId;
use acme_ledger::export::{write_accounts, write_transfers};
use acme_ledger::{Account, Transfer};
use acme_processes::calendar::Date;
use acme_processes::messages::{InstructionKind, InstructionState, Side};
use acme_processes::recon::cash::{cash_csv, CashLine, CashStatement};
use acme_processes::recon::holdings::{
    holdings_csv, holdings_semt002, HoldingLine, HoldingsStatement,
};
use acme_processes::recon::ledger::{
    scan, LedgerFacts, LedgerScan, Manifest, ACCOUNTS_FILE, CALENDAR_FILE, MANIFEST_FILE,
    TRANSFERS_FILE,
};
use acme_processes::recon::source::{latest_timestamp, scan_ledger_from, transfers_between};
use acme_processes::recon::trades::{trades_csv, ConfStatus, Confirmation, Confirmations};
use acme_processes::recon::{
    reconcile, CashAccount, Classification, ReconConfig, Report, Statements,
    DEFAULT_CUSTODIAN_ACCOUNT,
};

/// One file of an export: its path under the export directory and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Which of the custodian's trades a statement lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TradeScope {
    /// Every trade it ever priced (the simulator's own check).
    All,
    /// The day's confirmations: priced or settled that day, or still open.
    Day,
}

/// The simulated custodian's holdings statement at the end of `date`.
pub fn custodian_holdings(world: &World, date: Date) -> HoldingsStatement {
    let mut funds: Vec<FundId> = FUNDS.to_vec();
    funds.sort_unstable();
    let lines = funds
        .iter()
        .enumerate()
        .map(|(i, &fund)| {
            let h = world.custodian.holding(fund);
            HoldingLine {
                line: i as u64 + 2,
                fund,
                settled_units: h.settled_units,
                pending_units: h.pending_units,
            }
        })
        .collect();
    HoldingsStatement {
        file: format!("custodian/holdings-{date}"),
        date,
        custodian_account: DEFAULT_CUSTODIAN_ACCOUNT.to_string(),
        lines,
    }
}

/// The simulated custodian's confirmations: a row per leg of every trade it priced, in scope.
pub fn custodian_confirmations(world: &World, date: Date, scope: TradeScope) -> Confirmations {
    let mut lines = Vec::new();
    for p in world.custodian.priced_trades() {
        let settled = world.custodian.is_settled(p.trade.id);
        let in_scope = match scope {
            TradeScope::All => true,
            TradeScope::Day => p.trade.trade_date == date || !settled || p.settle_date == date,
        };
        if !in_scope {
            continue;
        }
        let c = p.confirmation;
        let status = if settled {
            ConfStatus::Settled
        } else if c.revision > 0 {
            ConfStatus::Amended
        } else {
            ConfStatus::Priced
        };
        let legs = [
            (
                Side::Buy,
                p.trade.buy_cash_pence > 0,
                c.units_bought,
                c.buy_cash_filled,
            ),
            (
                Side::Sell,
                p.trade.sell_units_micro > 0,
                c.sell_units_filled,
                c.cash_for_sold,
            ),
        ];
        for (side, placed, units_micro, cash_pence) in legs {
            if !placed {
                continue;
            }
            lines.push(Confirmation {
                line: lines.len() as u64 + 2,
                trade: p.trade.id,
                trade_date: p.trade.trade_date,
                settle_date: p.settle_date,
                fund: p.trade.fund,
                side,
                units_micro,
                price: c.price,
                cash_pence,
                status,
            });
        }
    }
    Confirmations {
        file: format!("custodian/trades-{date}.csv"),
        lines,
    }
}

/// The custodian's cash: what ACME paid it (net, signed), settled and pending.
pub fn custodian_cash(world: &World, date: Date) -> CashStatement {
    let (settled, pending) = FUNDS.iter().fold((0i128, 0i128), |(s, p), &f| {
        let h = world.custodian.holding(f);
        (s + h.settled_cash_pence, p + h.pending_cash_pence)
    });
    CashStatement {
        file: format!("custodian/cash-{date}.csv"),
        date,
        lines: vec![
            CashLine {
                line: 2,
                account: CashAccount::CustodySettled,
                balance_pence: settled,
            },
            CashLine {
                line: 3,
                account: CashAccount::CustodyPending,
                balance_pence: pending,
            },
        ],
    }
}

/// Contributions the bank has but the ledger may not yet: instructions the model expects to
/// complete that intake has not completed (or not received, so of unknown kind).
fn contributions_in_flight(world: &World) -> usize {
    if world.intake.process().is_none() {
        return usize::MAX;
    }
    world
        .oracle
        .expected_states()
        .iter()
        .filter(|(_, want)| **want == InstructionState::Completed)
        .filter(|(id, _)| world.statuses.get(id) != Some(&InstructionState::Completed))
        .filter(|(id, _)| match world.taken.get(id) {
            None => true,
            Some((kind, _)) => matches!(kind, InstructionKind::Contribute { .. }),
        })
        .count()
}

/// The bank's statement: everything paid in (opening pots, contributions), if no contribution
/// is still on its way to the ledger; `None` otherwise.
pub fn bank_cash(world: &World, date: Date) -> Option<CashStatement> {
    (contributions_in_flight(world) == 0).then(|| CashStatement {
        file: format!("bank/cash-{date}.csv"),
        date,
        lines: vec![CashLine {
            line: 2,
            account: CashAccount::ClientMoney,
            balance_pence: world.oracle.total_paid_in() as i128,
        }],
    })
}

fn config(world: &World, date: Date) -> ReconConfig {
    ReconConfig {
        as_of: date,
        settlement_lag_days: world.cfg.schedule.settlement_lag_days,
        cash_tolerance_pence: 0,
    }
}

/// The world's ledger against the simulated custodian's and bank's books at the end of `date`.
pub fn reconcile_world(world: &mut World, date: Date) -> Report {
    let facts = ledger_facts(world);
    let mut cash = vec![custodian_cash(world, date)];
    cash.extend(bank_cash(world, date));
    let statements = Statements {
        holdings: Some(custodian_holdings(world, date)),
        trades: Some(custodian_confirmations(world, date, TradeScope::All)),
        cash,
    };
    reconcile(&config(world, date), &facts, &statements)
        .expect("the simulator's statements agree with each other")
}

/// The end-of-day reconciliation of the simulated world against the simulated custodian's and
/// bank's statements, through the same engine `acme recon` uses: every true break is a
/// violation.
pub(crate) fn end_of_day_recon(world: &mut World, date: Date) -> Vec<Violation> {
    reconcile_world(world, date)
        .breaks
        .into_iter()
        .filter(|b| b.classification == Classification::True)
        .map(|b| Violation {
            invariant: format!("reconciliation_{}", b.level.name()),
            detail: format!(
                "{} {} {}: ledger {}, statement {}, difference {}; {}",
                b.kind.name(),
                b.asset,
                b.account,
                b.ledger.render().unwrap_or_else(|| "-".into()),
                b.statement.render().unwrap_or_else(|| "-".into()),
                b.difference().unwrap_or_else(|| "-".into()),
                b.detail
            ),
            at: 0,
            event: String::new(),
        })
        .collect()
}

/// The ledger's facts: from the embedded ledger's slices when that is the backend, otherwise
/// through the port at one point (as `acme recon --tigerbeetle` reads a cluster), dated by the
/// backend's calendar.
fn ledger_facts(world: &mut World) -> LedgerFacts {
    if let Some(mem) = world.ledger.inner.as_mem() {
        return scan(mem.accounts(), mem.transfers(), false);
    }
    let calendar = world.ledger.inner.calendar();
    let from = calendar.first_timestamp();
    let mut facts = LedgerScan::with_replay(None, calendar);
    scan_ledger_from(&mut *world.ledger.inner, &mut facts, from)
        .unwrap_or_else(|e| panic!("the end-of-day reconciliation cannot read the ledger: {e}"));
    facts
        .finish()
        .expect("a scan without a journal replay does not fail")
}

/// Every account and transfer: the embedded ledger's, or read through the port.
fn ledger_records(world: &mut World) -> (Vec<Account>, Vec<Transfer>) {
    if let Some(mem) = world.ledger.inner.as_mem() {
        return (mem.accounts().to_vec(), mem.transfers().to_vec());
    }
    // A shared cluster holds others' records too: those stamped before the run are left out.
    let from = world.ledger.inner.calendar().first_timestamp();
    let ledger = &mut *world.ledger.inner;
    let read = (|| {
        let latest = latest_timestamp(ledger)?;
        let mut accounts = scan_accounts(ledger).map_err(|e| e.to_string())?;
        accounts.retain(|a| a.timestamp >= from);
        let mut transfers = Vec::new();
        transfers_between(ledger, from, latest, &mut |t| transfers.push(*t))?;
        Ok::<_, String>((accounts, transfers))
    })();
    read.unwrap_or_else(|e| panic!("the export cannot read the ledger: {e}"))
}

fn ledger_files(
    accounts: &[Account],
    transfers: &[Transfer],
    manifest: &Manifest,
) -> Vec<ExportFile> {
    let mut a = Vec::with_capacity(64 + accounts.len() * 128 + 32);
    write_accounts(&mut a, accounts).expect("writing to memory");
    let mut t = Vec::with_capacity(64 + transfers.len() * 128 + 32);
    write_transfers(&mut t, transfers).expect("writing to memory");
    vec![
        ExportFile {
            path: format!("ledger/{MANIFEST_FILE}"),
            bytes: manifest.render().into_bytes(),
        },
        ExportFile {
            path: format!("ledger/{ACCOUNTS_FILE}"),
            bytes: a,
        },
        ExportFile {
            path: format!("ledger/{TRANSFERS_FILE}"),
            bytes: t,
        },
    ]
}

impl World {
    /// The simulated business date now (the virtual clock's day).
    pub fn today(&self) -> Date {
        Date::of(self.now)
    }

    /// The files of `acme sim --export DIR` for the last simulated day: the ledger (every
    /// account and transfer), and the custodian's and bank's statements as they see that day.
    /// `source` is recorded in the manifest (the command that made it).
    /// On a backend with a clock of its own (a TigerBeetle cluster) the ledger is read through
    /// the port, and `ledger/calendar.txt` gives the first timestamp of each simulated day.
    pub fn export_day(&mut self, source: &str) -> Vec<ExportFile> {
        let date = self.last_day();
        let (accounts, transfers) = ledger_records(self);
        let manifest = Manifest {
            as_of: date,
            accounts: accounts.len() as u64,
            transfers: transfers.len() as u64,
            journal_complete: true,
            settlement_lag_days: self.cfg.schedule.settlement_lag_days,
            source: source.to_string(),
        };
        let mut files = ledger_files(&accounts, &transfers, &manifest);
        let calendar = self.ledger.inner.calendar();
        if !calendar.is_default() {
            files.push(ExportFile {
                path: format!("ledger/{CALENDAR_FILE}"),
                bytes: calendar.render().into_bytes(),
            });
        }
        let holdings = custodian_holdings(self, date);
        files.push(ExportFile {
            path: format!("custodian/holdings-{date}.csv"),
            bytes: holdings_csv(&holdings).into_bytes(),
        });
        files.push(ExportFile {
            path: format!("custodian/holdings-{date}.xml"),
            bytes: holdings_semt002(&holdings, &format!("ACME-SIM-{date}")).into_bytes(),
        });
        let trades = custodian_confirmations(self, date, TradeScope::Day);
        files.push(ExportFile {
            path: format!("custodian/trades-{date}.csv"),
            bytes: trades_csv(&trades).into_bytes(),
        });
        files.push(ExportFile {
            path: format!("custodian/cash-{date}.csv"),
            bytes: cash_csv(&custodian_cash(self, date)).into_bytes(),
        });
        // The bank's statement is its own: everything paid in (at the end of a run none
        // is on its way).
        let bank = bank_cash(self, date).unwrap_or_else(|| CashStatement {
            file: String::new(),
            date,
            lines: vec![CashLine {
                line: 2,
                account: CashAccount::ClientMoney,
                balance_pence: self.oracle.total_paid_in() as i128,
            }],
        });
        files.push(ExportFile {
            path: format!("bank/cash-{date}.csv"),
            bytes: cash_csv(&bank).into_bytes(),
        });
        files
    }
}
