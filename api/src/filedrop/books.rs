//! What the file drop knows of each trade: the orders it placed (its own copies, kept however
//! the custodian clears the outbox) and the answers it has taken from the inbox. A notices
//! file is checked against them as a whole before any of it is delivered, so a file that
//! contradicts itself or what came before is refused, never half-applied; one that only
//! repeats what was taken passes and changes nothing (its messages are duplicates).

use super::format::{Bad, Notice};
use acme_processes::messages::{Confirmation, ExternalTrade, TradeId};
use acme_processes::recon::trade_ref;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
struct Answers {
    rejected: bool,
    priced: BTreeMap<u32, Confirmation>,
    settled: Option<Confirmation>,
}

#[derive(Debug, Default)]
pub struct Books {
    placed: BTreeMap<TradeId, ExternalTrade>,
    answers: BTreeMap<TradeId, Answers>,
}

impl Books {
    pub fn place(&mut self, trade: ExternalTrade) {
        self.placed.insert(trade.id, trade);
    }

    /// Takes answers already checked (a file moved to `done/`, or read back from there).
    pub fn record(&mut self, notices: &[Notice]) {
        for n in notices {
            let a = self.answers.entry(n.trade()).or_default();
            match *n {
                Notice::Priced { terms, .. } => {
                    a.priced.entry(terms.revision).or_insert(terms);
                }
                Notice::Settled { terms, .. } => a.settled = a.settled.or(Some(terms)),
                Notice::Rejected { .. } => a.rejected = true,
            }
        }
    }

    /// Checks `notices` in file order against the trades placed and the answers taken (and the
    /// rows before them).
    pub fn check(&self, notices: &[Notice]) -> Result<(), Bad> {
        let mut seen: BTreeMap<TradeId, Answers> = BTreeMap::new();
        for n in notices {
            let (line, id) = (n.line(), n.trade());
            let r = trade_ref(id);
            let Some(trade) = self.placed.get(&id) else {
                let why = format!("{r} was never placed by this platform (no order of it)");
                return Err(Bad::at(line, "trade_ref", why));
            };
            let a = seen
                .entry(id)
                .or_insert_with(|| self.answers.get(&id).cloned().unwrap_or_default());
            check_one(a, trade, n)
                .map_err(|(field, why)| Bad::at(line, field, format!("{r}: {why}")))?;
            match *n {
                Notice::Priced { terms, .. } => {
                    a.priced.entry(terms.revision).or_insert(terms);
                }
                Notice::Settled { terms, .. } => a.settled = Some(terms),
                Notice::Rejected { .. } => a.rejected = true,
            }
        }
        Ok(())
    }
}

/// Whether one notice fits what is known of its trade: `(field, why)` if not.
fn check_one(a: &Answers, trade: &ExternalTrade, n: &Notice) -> Result<(), (&'static str, String)> {
    match n {
        Notice::Rejected { .. } => {
            if !a.priced.is_empty() {
                return Err(("kind", "the trade was priced; it cannot be rejected".into()));
            }
        }
        Notice::Priced { terms, .. } => {
            if a.rejected {
                return Err(("kind", "the trade was rejected; it cannot be priced".into()));
            }
            if terms.buy_cash_filled > trade.buy_cash_pence {
                let why = format!(
                    "{} filled, above the {} ordered",
                    crate::decimal::format(terms.buy_cash_filled, 2),
                    crate::decimal::format(trade.buy_cash_pence, 2)
                );
                return Err(("buy_cash", why));
            }
            if terms.sell_units_filled > trade.sell_units_micro {
                let why = format!(
                    "{} filled, above the {} ordered",
                    crate::decimal::format(terms.sell_units_filled, 6),
                    crate::decimal::format(trade.sell_units_micro, 6)
                );
                return Err(("sell_units", why));
            }
            match (a.priced.get(&terms.revision), a.settled) {
                (Some(before), _) if before != terms => {
                    let why = format!(
                        "revision {} was confirmed before with other figures",
                        terms.revision
                    );
                    return Err(("revision", why));
                }
                (None, Some(_)) => {
                    return Err(("revision", "the trade has settled; no amendment now".into()));
                }
                _ => {}
            }
        }
        Notice::Settled { terms, .. } => {
            if a.rejected {
                return Err(("kind", "the trade was rejected; it cannot settle".into()));
            }
            let latest = a.priced.last_key_value();
            match latest {
                None => return Err(("kind", "the trade was never priced".into())),
                Some((rev, _)) if *rev != terms.revision => {
                    let why = format!("revision {rev} is the trade's latest terms");
                    return Err(("revision", why));
                }
                Some((_, priced)) if priced != terms => {
                    let why = "the settled figures are not the priced ones of the revision";
                    return Err(("price", why.into()));
                }
                _ => {}
            }
            if a.settled.is_some_and(|s| s != *terms) {
                return Err(("kind", "the trade settled before on other terms".into()));
            }
        }
    }
    Ok(())
}
