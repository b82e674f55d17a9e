//! Re-balancing: brings members whose pots drifted from their risk profile back to its model
//! portfolio.
//!
//! After each valuation point the scheduler sends `Rebalance { date, prices }`. The process
//! reads every member's pot from the ledger (the cash accounts carry the member's risk profile in
//! `user_data_32`; the unit accounts follow from the member id), values it at the closing prices,
//! and for every member outside the drift band sends switches (sell the overweight funds, buy the
//! underweight ones with the proceeds) to intake as instructions. Switches never need cash the
//! member does not have: the purchase is made with the sale's proceeds when the sale settles.
//!
//! **Rule** (deterministic, integer): value each fund `floor(units * price / 10^10)` pence; skip
//! pots worth less than [`ModelSet::min_value_pence`] and members with anything pending (a trade
//! priced but unsettled, a reservation, sale cash not yet settled): they are re-balanced once
//! settled, never twice. A member is out of band when some fund's weight differs from its target
//! by more than `band_bp` basis points. Then, in fund order, each fund's excess over target
//! value is sold and paired greedily (largest excess first, ties to the lower fund) with the
//! largest shortfalls; each pair becomes a switch of `floor(value * 10^10 / price)` micro-units,
//! at most [`INSTRUCTION_UNITS_MAX`] (what intake takes in one instruction: a large pot in a
//! penny fund is brought back over several passes, never proposed a switch intake refuses).
//!
//! The planning pass ([`plan`]) is a pure function over compact portfolios, so one pass over 5
//! million members is a tight loop (measured in `bench/`).
//!
//! **Retention.** The dates whose pass ran are kept for [`RETAIN_DAYS`] business days after the
//! newest such date, so that a job that fires twice or late finds its pass done; older ones are
//! retired and every date up to the newest retired one counts as done (the scheduler sends each
//! day's job that evening: a job days late for a date never run does not happen, and would be
//! stale). Passes postponed for a date at most that old are dropped with them.

use super::intake::INSTRUCTION_UNITS_MAX;
use super::tag;
use crate::calendar::{Date, Ts};
use crate::messages::{
    msg_id, Instruction, InstructionId, InstructionKind, Message, MsgKind, Origin,
};
use crate::money::Price;
use crate::process::{Ctx, Effects, Input, LedgerReply, LedgerRequest, Process, Service};
use acme_ledger::chart::{self, AccountKind, FundId, MemberId, LEDGER_CASH_GBP};
use acme_ledger::{Account, QueryFilter, QUERY_RESULTS_MAX};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Funds in a model portfolio.
pub const MODEL_FUNDS: usize = 5;

/// One risk profile's model portfolio: target weights in basis points over the funds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Model {
    pub name: &'static str,
    pub target_bp: [u32; MODEL_FUNDS],
}

/// The versioned set of model portfolios and the re-balancing parameters.
///
/// The sets are constants of the code: a set serializes as its `version` alone and
/// deserializes by looking that version up among the known sets ([`ModelSet::by_version`]); an
/// unknown version is an error. A set that differs from the known set of its version refuses to
/// serialize (a changed set must carry a new version, or a snapshot would restore another one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelSet {
    pub version: u32,
    pub funds: [FundId; MODEL_FUNDS],
    pub models: [Model; 3],
    /// Drift band, basis points of absolute weight.
    pub band_bp: u32,
    /// Pots worth less than this are not re-balanced.
    pub min_value_pence: u64,
}

impl ModelSet {
    /// Version 1: three profiles over funds 1..=5, a 5-point band, pots of £50 and more.
    pub const V1: ModelSet = ModelSet {
        version: 1,
        funds: [1, 2, 3, 4, 5],
        models: [
            Model {
                name: "cautious",
                target_bp: [1_000, 1_000, 2_000, 3_000, 3_000],
            },
            Model {
                name: "balanced",
                target_bp: [2_000, 2_000, 2_000, 2_000, 2_000],
            },
            Model {
                name: "adventurous",
                target_bp: [4_000, 3_000, 1_500, 1_000, 500],
            },
        ],
        band_bp: 500,
        min_value_pence: 5_000,
    };

    /// The known sets, oldest first.
    pub const KNOWN: [ModelSet; 1] = [ModelSet::V1];

    /// The known set of version `version`.
    pub fn by_version(version: u32) -> Option<ModelSet> {
        ModelSet::KNOWN.into_iter().find(|s| s.version == version)
    }

    pub fn validate(&self) -> Result<(), String> {
        for (i, m) in self.models.iter().enumerate() {
            let sum: u32 = m.target_bp.iter().sum();
            if sum != 10_000 {
                return Err(format!(
                    "models[{i}] ({}): target_bp sums to {sum}, not 10000",
                    m.name
                ));
            }
        }
        if self.band_bp == 0 || self.band_bp >= 10_000 {
            return Err(format!("band_bp: {} is not in 1..10000", self.band_bp));
        }
        Ok(())
    }
}

impl Serialize for ModelSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if ModelSet::by_version(self.version) != Some(*self) {
            return Err(serde::ser::Error::custom(format!(
                "model set version {} is not the known set of that version",
                self.version
            )));
        }
        serializer.serialize_u32(self.version)
    }
}

impl<'de> Deserialize<'de> for ModelSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ModelSet, D::Error> {
        let version = u32::deserialize(deserializer)?;
        ModelSet::by_version(version)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown model set version {version}")))
    }
}

/// A member's pot as re-balancing sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Portfolio {
    pub member: MemberId,
    pub profile: u8,
    /// Settled units per model fund, micro-units.
    pub units: [u64; MODEL_FUNDS],
    /// Something is pending: leave the member alone this time.
    pub busy: bool,
}

/// One switch to propose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Proposal {
    pub member: MemberId,
    pub from: FundId,
    pub to: FundId,
    pub units_micro: u64,
}

/// Value in pence of `units` at `price`, rounded down.
fn value(units: u64, price: Price) -> u64 {
    (units as u128 * price.0 as u128 / 10_000_000_000) as u64
}

/// The switches that bring one portfolio back to its model, if it is out of band.
pub fn plan_one(
    p: &Portfolio,
    prices: &[Price; MODEL_FUNDS],
    set: &ModelSet,
    out: &mut Vec<Proposal>,
) {
    if p.busy && !crate::plant::active(crate::plant::Bug::RebalancesBusyMembers) {
        return;
    }
    let Some(model) = set.models.get(p.profile as usize) else {
        return;
    };
    let mut values = [0u64; MODEL_FUNDS];
    let mut total: u64 = 0;
    for i in 0..MODEL_FUNDS {
        values[i] = value(p.units[i], prices[i]);
        total += values[i];
    }
    if total < set.min_value_pence {
        return;
    }
    let mut out_of_band = false;
    let mut excess = [0i64; MODEL_FUNDS];
    for i in 0..MODEL_FUNDS {
        let mut weight_bp = (values[i] as u128 * 10_000 / total as u128) as i64;
        if crate::plant::active(crate::plant::Bug::RebalancingWeightRoundedUp) {
            // Planted: the weight rounded up to the next basis point.
            weight_bp = (values[i] as u128 * 10_000).div_ceil(total as u128) as i64;
        }
        if (weight_bp - model.target_bp[i] as i64).unsigned_abs() > set.band_bp as u64 {
            out_of_band = true;
        }
        let target = (total as u128 * model.target_bp[i] as u128 / 10_000) as i64;
        excess[i] = values[i] as i64 - target;
    }
    if !out_of_band {
        return;
    }
    // Greedy pairing, largest excess with largest shortfall; ties to the lower fund index.
    loop {
        let over = (0..MODEL_FUNDS)
            .filter(|&i| excess[i] > 0)
            .max_by_key(|&i| (excess[i], std::cmp::Reverse(i)));
        let under = (0..MODEL_FUNDS)
            .filter(|&i| excess[i] < 0)
            .max_by_key(|&i| (-excess[i], std::cmp::Reverse(i)));
        let (Some(o), Some(u)) = (over, under) else {
            break;
        };
        let amount = excess[o].min(-excess[u]);
        excess[o] -= amount;
        excess[u] += amount;
        let units = ((amount as u128 * 10_000_000_000) / prices[o].0 as u128) as u64;
        let units = units.min(p.units[o]).min(INSTRUCTION_UNITS_MAX);
        if units > 0 {
            out.push(Proposal {
                member: p.member,
                from: set.funds[o],
                to: set.funds[u],
                units_micro: units,
            });
        }
    }
}

/// One re-balancing pass over many portfolios.
pub fn plan(
    portfolios: &[Portfolio],
    prices: &[Price; MODEL_FUNDS],
    set: &ModelSet,
) -> Vec<Proposal> {
    let mut out = Vec::new();
    for p in portfolios {
        plan_one(p, prices, set, &mut out);
    }
    out
}

/// Instruction ids of re-balancing switches: the top bit set, then the member, the date and the
/// switch's index within the member's plan, so a pass that runs twice proposes the same ids.
pub fn rebalance_instruction_id(member: MemberId, date: Date, index: u64) -> InstructionId {
    assert!(index < 16, "more than 16 switches for one member");
    assert!(member < 1 << 39);
    1 << 63 | member << 24 | (date.0 as u64 & 0xF_FFFF) << 4 | index
}

/// How long a pass waits when the day's pricing is not complete.
pub const POSTPONE_NS: Ts = 30 * crate::calendar::NS_PER_MIN;
/// How many times a pass waits at most (three hours).
pub const POSTPONE_ATTEMPTS_MAX: u32 = 6;

/// Business days a date whose pass ran is kept after the newest such date.
pub const RETAIN_DAYS: u32 = 5;

const PHASE_SCAN: u64 = 1;
const PHASE_UNITS: u64 = 2;

#[derive(Serialize, Deserialize)]
struct Pass {
    date: Date,
    prices: [Price; MODEL_FUNDS],
    portfolios: BTreeMap<MemberId, Portfolio>,
    /// Unit lookups outstanding; the scan itself is done when `scan_done`.
    lookups: u64,
    scan_done: bool,
    /// Accounts with a reservation pending: an order of the day not yet priced.
    reservations: u64,
}

/// The re-balancing process.
#[derive(Serialize, Deserialize)]
pub struct Rebalancing {
    set: ModelSet,
    pass: Option<Pass>,
    /// Dates whose pass ran (the recent ones; see `done_through`).
    done: BTreeSet<Date>,
    /// Every date up to this one counts as done: the newest retired date (`Date(0)` before any).
    done_through: Date,
    /// Passes waiting for the day's pricing to complete, with their prices.
    postponed: BTreeMap<Date, ([Price; MODEL_FUNDS], u32)>,
    /// Switches proposed over all passes.
    pub proposed: u64,
}

impl Rebalancing {
    pub fn new(set: ModelSet) -> Rebalancing {
        set.validate().expect("valid model set");
        Rebalancing {
            set,
            pass: None,
            done: Default::default(),
            done_through: Date(0),
            postponed: Default::default(),
            proposed: 0,
        }
    }

    fn start(&mut self, date: Date, prices: [Price; MODEL_FUNDS], fx: &mut Effects) {
        self.pass = Some(Pass {
            date,
            prices,
            portfolios: Default::default(),
            lookups: 0,
            scan_done: false,
            reservations: 0,
        });
        self.scan(date, 0, 0, fx);
    }

    /// Dates whose pass has run, of the last [`RETAIN_DAYS`] business days before the newest.
    pub fn passes_done(&self) -> &BTreeSet<Date> {
        &self.done
    }

    fn is_done(&self, date: Date) -> bool {
        date <= self.done_through || self.done.contains(&date)
    }

    /// Dates remembered one by one: done, and postponed.
    pub fn dates_held(&self) -> (usize, usize) {
        (self.done.len(), self.postponed.len())
    }

    /// Marks `date` done and retires the dates [`RETAIN_DAYS`] before the newest done.
    fn mark_done(&mut self, date: Date) {
        self.done.insert(date);
        let newest = *self.done.last().expect("just inserted");
        while let Some(&first) = self.done.first() {
            if !super::aged(first, newest, RETAIN_DAYS) {
                break;
            }
            self.done.pop_first();
            self.done_through = self.done_through.max(first);
        }
        let through = self.done_through;
        self.postponed.retain(|d, _| *d > through);
    }

    fn scan(&mut self, date: Date, page: u64, timestamp_min: u64, fx: &mut Effects) {
        fx.ledger(
            tag(date.0 as u64, PHASE_SCAN, page),
            LedgerRequest::QueryAccounts(QueryFilter {
                ledger: LEDGER_CASH_GBP,
                code: AccountKind::MemberCash.code(),
                timestamp_min,
                limit: QUERY_RESULTS_MAX,
                ..QueryFilter::default()
            }),
        );
    }

    fn on_cash_page(&mut self, page: u64, accounts: &[Account], now: Ts, fx: &mut Effects) {
        let pass = self.pass.as_mut().expect("pass running");
        for a in accounts {
            pass.reservations += (a.debits_pending > 0) as u64;
            pass.portfolios.insert(
                a.user_data_64,
                Portfolio {
                    member: a.user_data_64,
                    profile: a.user_data_32 as u8,
                    units: [0; MODEL_FUNDS],
                    busy: a.debits_pending > 0 || a.credits_pending > 0,
                },
            );
        }
        // Look the unit accounts of this page's members up, as many members a request as fit.
        let per_request = acme_ledger::BATCH_EVENTS_MAX / MODEL_FUNDS;
        let mut chunk = 0;
        let date = pass.date;
        let funds = self.set.funds;
        for members in accounts.chunks(per_request) {
            let ids = members
                .iter()
                .flat_map(|a| {
                    funds
                        .iter()
                        .map(move |&f| chart::member_units(a.user_data_64, f))
                })
                .collect();
            fx.ledger(
                tag(date.0 as u64, PHASE_UNITS, page << 8 | chunk),
                LedgerRequest::LookupAccounts(ids),
            );
            chunk += 1;
        }
        pass.lookups += chunk;
        let full = accounts.len() == QUERY_RESULTS_MAX as usize;
        // Planted: the scan stops after its first page.
        if full && !crate::plant::active(crate::plant::Bug::RebalancingFirstPageOnly) {
            let next = accounts.last().expect("full page").timestamp + 1;
            self.scan(date, page + 1, next, fx);
        } else {
            pass.scan_done = true;
            self.maybe_finish(now, fx);
        }
    }

    fn on_units(&mut self, accounts: &[Account], now: Ts, fx: &mut Effects) {
        let pass = self.pass.as_mut().expect("pass running");
        for a in accounts {
            let member = a.user_data_64;
            let Some(fund) = self.set.funds.iter().position(|&f| f == a.user_data_32) else {
                continue;
            };
            let Some(p) = pass.portfolios.get_mut(&member) else {
                fx.alert("rebalancing", format!("units of unknown member {member}"));
                continue;
            };
            p.units[fund] = (a.credits_posted - a.debits_posted) as u64;
            p.busy |= a.debits_pending > 0 || a.credits_pending > 0;
            pass.reservations += (a.debits_pending > 0) as u64;
        }
        pass.lookups -= 1;
        self.maybe_finish(now, fx);
    }

    fn maybe_finish(&mut self, now: Ts, fx: &mut Effects) {
        let pass = self.pass.as_ref().expect("pass running");
        if !pass.scan_done || pass.lookups > 0 {
            return;
        }
        let pass = self.pass.take().expect("pass running");
        let attempts = self.postponed.get(&pass.date).map_or(0, |p| p.1);
        if pass.reservations > 0 && attempts < POSTPONE_ATTEMPTS_MAX {
            // Some of the day's orders are not priced yet (a confirmation late or lost and being
            // chased): the pots are not what they will be. Look again later, at the same prices
            // (a bounded number of times; then the members concerned count as busy).
            self.postponed
                .insert(pass.date, (pass.prices, attempts + 1));
            fx.timer(pass.date.0 as u64, now + POSTPONE_NS);
            return;
        }
        self.postponed.remove(&pass.date);
        let portfolios: Vec<Portfolio> = pass.portfolios.into_values().collect();
        let proposals = plan(&portfolios, &pass.prices, &self.set);
        let mut index = 0;
        let mut last_member = None;
        for p in &proposals {
            if last_member != Some(p.member) {
                index = 0;
                last_member = Some(p.member);
            }
            let id = rebalance_instruction_id(p.member, pass.date, index);
            index += 1;
            fx.send(
                msg_id(MsgKind::Instruction, id, 0),
                Service::Rebalancing,
                Service::Intake,
                Message::Instruction(Instruction {
                    id,
                    member: p.member,
                    kind: InstructionKind::Switch {
                        from_fund: p.from,
                        to_fund: p.to,
                        units_micro: p.units_micro,
                    },
                    origin: Origin::Rebalancing,
                }),
            );
        }
        self.proposed += proposals.len() as u64;
        self.mark_done(pass.date);
    }
}

impl Process for Rebalancing {
    fn name(&self) -> &'static str {
        "rebalancing"
    }

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        match input {
            Input::Message(env) => match &env.body {
                Message::Rebalance { date, prices } => {
                    // A job that fires twice, or while a pass runs, does nothing more. A new day's
                    // job supersedes a pass still waiting for yesterday's pricing.
                    if self.is_done(*date) || self.pass.is_some() {
                        return;
                    }
                    self.postponed.retain(|d, _| d > date);
                    let mut by_fund = [Price(0); MODEL_FUNDS];
                    for (i, f) in self.set.funds.iter().enumerate() {
                        match prices.iter().find(|(pf, _)| pf == f) {
                            Some((_, p)) if p.0 > 0 => by_fund[i] = *p,
                            _ => {
                                fx.alert("rebalancing", format!("no price for fund {f} on {date}"));
                                return;
                            }
                        }
                    }
                    self.start(*date, by_fund, fx);
                }
                // Re-balancing is sent nothing else: no state makes sense of it.
                other => fx.poison(format!("rebalancing: unexpected message {other:?}")),
            },
            Input::Ledger { tag, reply } => {
                let (_, phase, page) = super::untag(*tag);
                match (phase, reply) {
                    (PHASE_SCAN, LedgerReply::Accounts(a)) => {
                        self.on_cash_page(page, a, ctx.now, fx)
                    }
                    (PHASE_UNITS, LedgerReply::Accounts(a)) => self.on_units(a, ctx.now, fx),
                    // A phase re-balancing never uses, or a reply of another kind than its
                    // request.
                    _ => fx.poison(format!(
                        "rebalancing: unexpected ledger reply for tag {tag:#x}: {reply:?}"
                    )),
                }
            }
            Input::Timer { timer_id } => {
                let date = Date(*timer_id as u32);
                let newest = self.postponed.keys().next_back() == Some(&date);
                if let (Some((prices, _)), None, true) =
                    (self.postponed.get(&date).copied(), &self.pass, newest)
                {
                    self.start(date, prices, fx);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICES: [Price; 5] = [Price(1_000_000); 5];

    #[test]
    fn a_pot_on_target_is_left_alone() {
        let p = Portfolio {
            member: 1,
            profile: 1,
            units: [20_000_000; 5],
            busy: false,
        };
        assert!(plan(&[p], &PRICES, &ModelSet::V1).is_empty());
    }

    #[test]
    fn a_pot_all_in_one_fund_is_switched_back_to_its_model() {
        // £100 all in fund 1, balanced profile: £80 goes out, £20 to each other fund.
        let p = Portfolio {
            member: 7,
            profile: 1,
            units: [100_000_000, 0, 0, 0, 0],
            busy: false,
        };
        let proposals = plan(&[p], &PRICES, &ModelSet::V1);
        assert_eq!(proposals.len(), 4);
        let sold: u64 = proposals.iter().map(|s| s.units_micro).sum();
        assert_eq!(sold, 80_000_000);
        assert!(proposals
            .iter()
            .all(|s| s.from == 1 && s.to != 1 && s.units_micro == 20_000_000));
    }

    #[test]
    fn no_switch_is_larger_than_intake_takes() {
        // £2,000,000 all in a penny fund: 200,000,000 units, of which £1,600,000 (160,000,000
        // units) should go; each switch stops at intake's limit, the rest waits for a pass.
        let mut prices = PRICES;
        prices[0] = Price(10_000);
        let p = Portfolio {
            member: 3,
            profile: 1,
            units: [200_000_000 * 1_000_000, 0, 0, 0, 0],
            busy: false,
        };
        let proposals = plan(&[p], &prices, &ModelSet::V1);
        assert_eq!(proposals.len(), 4);
        assert!(proposals
            .iter()
            .all(|s| s.from == 1 && s.units_micro == INSTRUCTION_UNITS_MAX));
    }

    #[test]
    fn busy_and_small_pots_are_skipped() {
        let busy = Portfolio {
            member: 1,
            profile: 1,
            units: [100_000_000, 0, 0, 0, 0],
            busy: true,
        };
        let small = Portfolio {
            member: 2,
            profile: 1,
            units: [1_000_000, 0, 0, 0, 0],
            busy: false,
        };
        assert!(plan(&[busy, small], &PRICES, &ModelSet::V1).is_empty());
    }

    use crate::process::Effect;
    use crate::trading::testkit::{handle, message, monday, round_trip, same_next, sent};

    fn job(date: Date) -> Input {
        message(
            msg_id(MsgKind::Rebalance, date.0 as u64, 0),
            Service::Scheduler,
            Service::Rebalancing,
            Message::Rebalance {
                date,
                prices: ModelSet::V1
                    .funds
                    .iter()
                    .map(|&f| (f, Price(1_000_000)))
                    .collect(),
            },
        )
    }

    fn cash(member: MemberId, profile: u32, debits_pending: u128) -> Account {
        Account {
            user_data_64: member,
            user_data_32: profile,
            debits_pending,
            timestamp: member,
            ..Account::default()
        }
    }

    fn units(member: MemberId, fund: FundId, units: u128) -> Account {
        Account {
            user_data_64: member,
            user_data_32: fund,
            credits_posted: units,
            ..Account::default()
        }
    }

    /// The ledger request among `effects` answered with `accounts`.
    fn reply(effects: &[Effect], accounts: Vec<Account>) -> Input {
        let tag = effects
            .iter()
            .find_map(|e| match e {
                Effect::Ledger { tag, .. } => Some(*tag),
                _ => None,
            })
            .expect("a ledger request");
        Input::Ledger {
            tag,
            reply: LedgerReply::Accounts(accounts),
        }
    }

    fn switches(effects: &[Effect]) -> usize {
        sent(effects)
            .iter()
            .filter(|e| matches!(e.body, Message::Instruction(_)))
            .count()
    }

    #[test]
    fn rebalancing_round_trips() {
        let mut r = Rebalancing::new(ModelSet::V1);
        let d = monday();
        let now = d.at_minute(18 * 60);
        let scan = handle(&mut r, now, &job(d)).0;
        // Member 1 (balanced) holds only fund 1; member 2 is on target.
        let lookups = handle(
            &mut r,
            now,
            &reply(&scan, vec![cash(1, 1, 0), cash(2, 1, 0)]),
        )
        .0;
        let mut held = vec![units(1, 1, 100_000_000)];
        held.extend((1..=5).map(|f| units(2, f, 20_000_000)));

        let mut restored = round_trip(&r);
        let fx = same_next(&mut r, &mut restored, now, &reply(&lookups, held));
        assert_eq!(switches(&fx), 4);
        assert!(r.passes_done().contains(&d));

        // The next day a reservation is pending: the pass is postponed, then runs again.
        let next = d.add_business_days(1);
        let now = next.at_minute(18 * 60);
        let mut restored = round_trip(&r);
        let scan = same_next(&mut r, &mut restored, now, &job(next));
        let mut restored = round_trip(&r);
        let lookups = same_next(
            &mut r,
            &mut restored,
            now,
            &reply(&scan, vec![cash(1, 1, 5)]),
        );
        let mut restored = round_trip(&r);
        let fx = same_next(&mut r, &mut restored, now, &reply(&lookups, vec![]));
        assert!(matches!(fx[..], [Effect::SetTimer { .. }]));
        assert_eq!(r.dates_held(), (1, 1));
        let mut restored = round_trip(&r);
        let timer = Input::Timer {
            timer_id: next.0 as u64,
        };
        let rescan = same_next(&mut r, &mut restored, now + POSTPONE_NS, &timer);
        assert_eq!(rescan.len(), 1);
    }

    #[test]
    fn retention_bounds_rebalancing_state() {
        let mut r = Rebalancing::new(ModelSet::V1);
        let first = monday();
        let mut d = first;
        for _ in 0..30 {
            let now = d.at_minute(18 * 60);
            let scan = handle(&mut r, now, &job(d)).0;
            let (fx, poison) = handle(&mut r, now, &reply(&scan, vec![]));
            assert!(fx.is_empty() && poison.is_none());
            assert!(r.passes_done().contains(&d));
            assert!(r.dates_held().0 <= RETAIN_DAYS as usize);
            d = d.add_business_days(1);
        }
        assert_eq!(r.dates_held(), (RETAIN_DAYS as usize, 0));
        // A job for a retired date finds it done; so does one fired twice.
        let now = d.at_minute(9 * 60);
        assert_eq!(handle(&mut r, now, &job(first)), (vec![], None));
        assert_eq!(handle(&mut r, now, &job(d)).0.len(), 1);
        let restored = round_trip(&r);
        assert_eq!(restored.dates_held(), r.dates_held());
    }

    #[test]
    fn a_model_set_serializes_as_its_version() {
        assert_eq!(serde_json::to_string(&ModelSet::V1).unwrap(), "1");
        assert_eq!(serde_json::from_str::<ModelSet>("1").unwrap(), ModelSet::V1);
        let err = serde_json::from_str::<ModelSet>("2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown model set version 2"), "{err}");
        let mut changed = ModelSet::V1;
        changed.band_bp = 400;
        assert!(serde_json::to_string(&changed).is_err());
        for set in ModelSet::KNOWN {
            assert_eq!(ModelSet::by_version(set.version), Some(set));
            assert!(set.validate().is_ok());
        }
    }

    #[test]
    fn nonsense_inputs_are_poison() {
        let mut r = Rebalancing::new(ModelSet::V1);
        let body = Message::CutOff { date: Date(1) };
        let (fx, poison) = handle(
            &mut r,
            0,
            &message(1, Service::Scheduler, Service::Rebalancing, body),
        );
        assert!(fx.is_empty() && poison.is_some());
        for (phase, reply) in [
            (3, LedgerReply::Accounts(vec![])),
            (PHASE_SCAN, LedgerReply::CreateTransfers(vec![])),
        ] {
            let input = Input::Ledger {
                tag: tag(1, phase, 0),
                reply,
            };
            let (fx, poison) = handle(&mut r, 0, &input);
            assert!(fx.is_empty() && poison.is_some(), "phase {phase}");
        }
    }

    #[test]
    fn the_model_set_is_valid() {
        assert!(ModelSet::V1.validate().is_ok());
        let mut bad = ModelSet::V1;
        bad.models[0].target_bp[0] += 1;
        assert!(bad.validate().unwrap_err().starts_with("models[0]"));
    }
}
