//! The per-settlement pot check, driven by the outside world, not by the platform's notices.
//!
//! When the simulated custodian settles a trade, the world notes it, with the members the
//! reference model put into that trade. The transfers the ledger takes for the trade (read from
//! what the ledger applied, with the simulator's own [`crate::layout`]) add the members whose
//! pots the platform moved for it, re-balancing switches and orders the model never expected
//! included, and say when the settlement is booked: the custodian mirror of the trade moves,
//! which settlement does after it has posted every line. Then every one of those members' units
//! in the fund is compared with the model.
//!
//! A check waits only while the model cannot know the ledger's state yet, each case counted:
//! - another trade of the fund settled by the custodian is not booked yet (the model settles a
//!   day's trades at once, the platform one after another; the fund's members are checked when
//!   the last one is booked);
//! - a trade of the fund is priced or amended by the custodian and its allocation not yet
//!   booked (the model moves units at the valuation point, the ledger when pricing books it);
//! - a trade with no net at all moves no mirror, so nothing says when it is booked: its pots
//!   are left to the end-of-day oracle (deferred);
//! - reservations are not compared (the model takes a day's sells when the day is planned, the
//!   platform when they arrive); the end-of-day oracle compares them.

use crate::custodian::PricedTrade;
use crate::layout;
use crate::world::World;
use acme_ledger::chart::{FundId, MemberId};
use acme_ledger::Transfer;
use acme_processes::calendar::Date;
use acme_processes::messages::TradeId;
use std::collections::{BTreeMap, BTreeSet};

/// A custodian's settlement day for one fund: its trades and the pots they touch.
#[derive(Default)]
struct Group {
    trades: BTreeSet<TradeId>,
    members: BTreeSet<MemberId>,
}

/// How much the per-settlement check covered (in the summary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SettleCoverage {
    /// Pots compared right after their trade's settlement was booked.
    pub pots_checked: u64,
    /// Pots left to the end-of-day oracle (a trade with no net, or never booked in the run).
    pub pots_deferred: u64,
    /// Checks that waited for another trade of the fund (booking or allocation) first.
    pub waits: u64,
}

#[derive(Default)]
pub struct SettleWatch {
    /// Per (custodian settlement date, fund).
    groups: BTreeMap<(Date, FundId), Group>,
    /// Trades whose settlement the ledger booked (its mirror moved), not yet checked.
    booked: BTreeSet<TradeId>,
    /// Members' unit pots the ledger moved for each trade not yet checked.
    touched: BTreeMap<TradeId, BTreeSet<(MemberId, FundId)>>,
    /// Something changed that may let a waiting check run.
    pub(crate) dirty: bool,
    pub coverage: SettleCoverage,
}

impl SettleWatch {
    /// Folds in transfers the ledger applied.
    pub fn applied(&mut self, transfers: &[Transfer]) {
        for t in transfers {
            let trade = layout::transfer_trade(t);
            if trade == 0 {
                continue;
            }
            if matches!(
                t.code,
                layout::SETTLE_CUSTODIAN_UNITS | layout::SETTLE_CUSTODIAN_CASH
            ) {
                self.booked.insert(trade);
                self.dirty = true;
            }
            for account in [t.debit_account_id, t.credit_account_id] {
                if layout::account_kind(account) != layout::ACCOUNT_MEMBER_UNITS {
                    continue;
                }
                let fund = layout::ledger_fund(layout::account_ledger(account));
                if let Some(fund) = fund {
                    let member = layout::account_owner(account);
                    self.touched
                        .entry(trade)
                        .or_default()
                        .insert((member, fund));
                }
            }
        }
    }

    /// The custodian settled `p` on `date`; `members` are those the model put in its trades of
    /// the fund settling that day.
    pub fn settled(&mut self, date: Date, p: &PricedTrade, members: &BTreeSet<MemberId>) {
        let group = self.groups.entry((date, p.trade.fund)).or_default();
        group.trades.insert(p.trade.id);
        group.members.extend(members.iter().copied());
        if p.net_units() == 0 && p.net_cash() == 0 {
            // No mirror moves for it, so nothing marks it booked: the end of day checks it.
            let group = self.groups.remove(&(date, p.trade.fund)).expect("inserted");
            self.coverage.pots_deferred += group.members.len() as u64;
            for t in group.trades {
                self.touched.remove(&t);
            }
        }
        self.dirty = true;
    }

    /// Whether every trade of the fund the custodian settled is booked in the ledger.
    fn fund_booked(&self, fund: FundId) -> bool {
        self.groups
            .iter()
            .filter(|((_, f), _)| *f == fund)
            .all(|(_, g)| g.trades.iter().all(|t| self.booked.contains(t)))
    }

    /// Takes the pots of a fund ready to compare: every settled trade of it booked.
    fn take_fund(&mut self, fund: FundId) -> Vec<(MemberId, FundId)> {
        let keys: Vec<(Date, FundId)> = self
            .groups
            .keys()
            .filter(|(_, f)| *f == fund)
            .copied()
            .collect();
        let mut pots = BTreeSet::new();
        for key in keys {
            let group = self.groups.remove(&key).expect("listed");
            pots.extend(group.members.iter().map(|&m| (m, fund)));
            for t in group.trades {
                self.booked.remove(&t);
                if let Some(touched) = self.touched.remove(&t) {
                    pots.extend(touched.into_iter().filter(|&(_, f)| f == fund));
                }
            }
        }
        self.coverage.pots_checked += pots.len() as u64;
        pots.into_iter().collect()
    }

    /// At the end of the run: what never became checkable.
    pub fn finish(&mut self) {
        for (_, group) in std::mem::take(&mut self.groups) {
            self.coverage.pots_deferred += group.members.len() as u64;
        }
    }
}

impl World {
    /// The custodian's settlement day `date`: the model settles, the custodian settles and
    /// sends its notices, and the per-settlement check learns which trades to watch.
    pub(crate) fn settlement_day(&mut self, date: Date) {
        let members = self.oracle.members_settling(date);
        self.oracle.settlement(date);
        let none = BTreeSet::new();
        for p in self.custodian.settle_due(date) {
            let lag = self.cfg.schedule.settlement_lag_days;
            if p.settle_date > self.calendar.add_business_days(p.trade.trade_date, lag) {
                *self.trade_counts.entry("late_settlement").or_default() += 1;
            }
            let of_fund = members.get(&p.trade.fund).unwrap_or(&none);
            self.settle_watch.settled(date, &p, of_fund);
            self.send_settlement(&p, true);
        }
    }

    /// After an event: the pots of every fund whose settled trades are all booked, unless an
    /// allocation of the fund is on its way to the ledger.
    pub(crate) fn check_settlements(&mut self, event: &str) {
        if !std::mem::take(&mut self.settle_watch.dirty) {
            return;
        }
        let funds: BTreeSet<FundId> = self.settle_watch.groups.keys().map(|k| k.1).collect();
        for fund in funds {
            if !self.settle_watch.fund_booked(fund) {
                continue;
            }
            if self.allocation_in_flight(fund) {
                self.settle_watch.coverage.waits += 1;
                continue;
            }
            let pots = self.settle_watch.take_fund(fund);
            self.compare_units(&pots, false, event);
        }
    }

    /// Whether a trade of `fund` the custodian answered (priced, or amended) is not yet booked
    /// by pricing at that revision; settled trades were booked before they settled.
    fn allocation_in_flight(&self, fund: FundId) -> bool {
        let waiting = self
            .custodian
            .priced_trades()
            .filter(|p| p.trade.fund == fund && !self.custodian.is_settled(p.trade.id))
            .any(|p| self.trade_watch.announced(p.trade.id) < Some(p.confirmation.revision));
        // Its announcement marks the watch dirty again (see `World::watch_trades`).
        waiting
    }
}
