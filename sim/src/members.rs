//! The member population: N members with risk profiles who pay in, invest, sell and switch at
//! random times.
//!
//! Each business day every member may contribute in the morning and may invest, sell or switch
//! in the afternoon (all inside the instruction window), choosing funds by their risk profile's
//! weights. A few ask for more than they have, on purpose, to exercise rejection. Every
//! instruction is given to the [`Oracle`] when it is sent.

use crate::calendar::WorldCalendar;
use crate::oracle::Oracle;
use crate::rng::{SimRng, Stream};
use acme_ledger::chart::{FundId, MemberId};
use acme_processes::calendar::{Date, Schedule, Ts, NS_PER_MIN};
use acme_processes::messages::{instruction_id, Instruction, InstructionKind, Origin};
use acme_processes::trading::rebalancing::{Model, ModelSet};

/// The model portfolios members choose their risk profile from (and pick funds by).
pub const MODELS: ModelSet = ModelSet::V1;

/// Members trade (invest, sell, switch) from this minute of the day; they contribute before.
pub const TRADES_FROM_MIN: u32 = 12 * 60;
/// Chance a member contributes on a given day, ppm.
pub const CONTRIBUTE_PPM: u32 = 250_000;
/// Chance a member invests on a given day, ppm.
pub const INVEST_PPM: u32 = 300_000;
/// Chance a member sells on a given day, ppm.
pub const SELL_PPM: u32 = 60_000;
/// Chance a member switches on a given day, ppm.
pub const SWITCH_PPM: u32 = 40_000;
/// Chance an invest is a round sum (whole tens of pounds), ppm.
pub const ROUND_SUM_PPM: u32 = 300_000;
/// Chance an instruction asks for more than the member has, ppm.
pub const OVERREACH_PPM: u32 = 30_000;
/// Chance a contribution is a large one (a transfer in from another scheme), ppm.
pub const LARGE_CONTRIBUTION_PPM: u32 = 2_000;
/// Ordinary contributions: £10 to £1,000.
pub const CONTRIBUTION_PENCE: (u64, u64) = (1_000, 100_000);
/// Large contributions: £1,000 to £1,000,000, log-uniform.
pub const LARGE_CONTRIBUTION_PENCE: (u64, u64) = (100_000, 100_000_000);
const _: () = assert!(
    LARGE_CONTRIBUTION_PENCE.1 <= acme_processes::trading::intake::INSTRUCTION_CASH_MAX_PENCE
);

pub struct Population {
    rng: SimRng,
    funds: Vec<FundId>,
    profiles: Vec<u8>,
    next_seq: Vec<u64>,
}

impl Population {
    pub fn new(seed: u64, members: u64, funds: &[FundId]) -> Population {
        assert_eq!(funds.len(), 5, "the profiles are over five funds");
        let mut rng = SimRng::new(seed, Stream::Members);
        let profiles = (0..members)
            .map(|_| rng.below(MODELS.models.len() as u64) as u8)
            .collect();
        Population {
            rng,
            funds: funds.to_vec(),
            profiles,
            next_seq: vec![0; members as usize],
        }
    }

    pub fn len(&self) -> u64 {
        self.profiles.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// Member ids are 1..=N.
    pub fn member_id(index: usize) -> MemberId {
        index as MemberId + 1
    }

    /// A member's risk profile (an index into [`MODELS`]).
    pub fn profile(&self, member: MemberId) -> u8 {
        self.profiles[(member - 1) as usize]
    }

    /// The model portfolio of a member's risk profile.
    pub fn model(&self, member: MemberId) -> &'static Model {
        &MODELS.models[self.profiles[(member - 1) as usize] as usize]
    }

    fn next_instruction(&mut self, index: usize, kind: InstructionKind) -> Instruction {
        let seq = self.next_seq[index];
        self.next_seq[index] += 1;
        let member = Population::member_id(index);
        Instruction {
            id: instruction_id(member, seq),
            member,
            kind,
            origin: Origin::Member,
        }
    }

    fn time_in(&mut self, cal: &WorldCalendar, date: Date, from_min: u32, to_min: u32) -> Ts {
        // The window is in London time; no clock change falls inside it.
        let start = cal.london(date, from_min);
        start + self.rng.below((to_min - from_min) as u64 * NS_PER_MIN)
    }

    /// Everybody opens their pot on the first day, before the window opens.
    pub fn onboarding(
        &mut self,
        date: Date,
        schedule: &Schedule,
        cal: &WorldCalendar,
    ) -> Vec<(Ts, Instruction)> {
        let open = schedule.window_open_min;
        (0..self.profiles.len())
            .map(|i| {
                let at = self.time_in(cal, date, open - 60, open);
                let profile = self.profiles[i];
                (
                    at,
                    self.next_instruction(i, InstructionKind::Onboard { profile }),
                )
            })
            .collect()
    }

    /// A contribution: mostly an ordinary one, rarely a large one (a decade, then a sum in it).
    fn contribution(&mut self) -> u64 {
        if !self.rng.chance_ppm(LARGE_CONTRIBUTION_PPM) {
            return self.rng.between(CONTRIBUTION_PENCE.0, CONTRIBUTION_PENCE.1);
        }
        let (low, high) = LARGE_CONTRIBUTION_PENCE;
        let decades = (high / low).ilog10() as u64;
        let from = low * 10u64.pow(self.rng.below(decades) as u32);
        self.rng.between(from, from * 10)
    }

    /// An amount up to `available`, or (rarely, on purpose) more.
    fn amount(&mut self, available: u64, overreach_max: u64) -> Option<u64> {
        if self.rng.chance_ppm(OVERREACH_PPM) {
            Some(available + self.rng.between(1, overreach_max))
        } else if available == 0 {
            None
        } else {
            Some(self.rng.between(1, available))
        }
    }

    /// A fund the member holds available units of, if any (drawn by profile weight).
    fn held_fund(
        &mut self,
        member: MemberId,
        weights: &[u32; 5],
        oracle: &Oracle,
    ) -> Option<FundId> {
        let held: Vec<u32> = self
            .funds
            .iter()
            .zip(weights)
            .map(|(&f, &w)| {
                if oracle.available_units(member, f) > 0 {
                    w.max(1)
                } else {
                    0
                }
            })
            .collect();
        held.iter()
            .any(|&w| w > 0)
            .then(|| self.funds[self.rng.weighted(&held)])
    }

    /// One business day of instructions, with their send times. Members size them from what the
    /// model says they hold at the start of the day; whether each is accepted is decided when it
    /// is sent (see `Oracle::submit`).
    pub fn day(
        &mut self,
        date: Date,
        schedule: &Schedule,
        cal: &WorldCalendar,
        oracle: &Oracle,
    ) -> Vec<(Ts, Instruction)> {
        let open = schedule.window_open_min;
        let close = schedule.window_close_min;
        // Contributions in the morning, trades from noon: a trade never races the same day's
        // contribution, nor the morning's settlement (sale proceeds, a switch's purchase), even
        // when messages are lost and sent again or the custodian has to be chased for hours.
        let split = TRADES_FROM_MIN.max(open + 1).min(close - 2);
        // Sells before switches, hours apart: both draw on the same units, and the model decides
        // in the order the platform will see them.
        let afternoon = split + 1 + (close - split - 1) / 2;
        let mut out = Vec::new();
        for i in 0..self.profiles.len() {
            let member = Population::member_id(i);
            let weights = MODELS.models[self.profiles[i] as usize].target_bp;
            if self.rng.chance_ppm(CONTRIBUTE_PPM) {
                let pence = self.contribution();
                let at = self.time_in(cal, date, open, split);
                let instruction =
                    self.next_instruction(i, InstructionKind::Contribute { cash_pence: pence });
                out.push((at, instruction));
            }
            if self.rng.chance_ppm(INVEST_PPM) {
                if let Some(mut pence) = self.amount(oracle.available_cash(member), 10_000) {
                    // Many members invest round sums; equal orders also exercise the tie-breaks
                    // of partial fills.
                    if pence >= 1_000 && self.rng.chance_ppm(ROUND_SUM_PPM) {
                        pence -= pence % 1_000;
                    }
                    let fund = self.funds[self.rng.weighted(&weights)];
                    let at = self.time_in(cal, date, split + 1, close);
                    let instruction = self.next_instruction(
                        i,
                        InstructionKind::Invest {
                            fund,
                            cash_pence: pence,
                        },
                    );
                    out.push((at, instruction));
                }
            }
            if self.rng.chance_ppm(SELL_PPM) {
                if let Some(fund) = self.held_fund(member, &weights, oracle) {
                    if let Some(units) =
                        self.amount(oracle.available_units(member, fund), 1_000_000)
                    {
                        let at = self.time_in(cal, date, split + 1, afternoon);
                        let instruction = self.next_instruction(
                            i,
                            InstructionKind::Sell {
                                fund,
                                units_micro: units,
                            },
                        );
                        out.push((at, instruction));
                    }
                }
            }
            if self.rng.chance_ppm(SWITCH_PPM) {
                if let Some(from) = self.held_fund(member, &weights, oracle) {
                    let to = loop {
                        let f = self.funds[self.rng.weighted(&weights)];
                        if f != from {
                            break f;
                        }
                    };
                    if let Some(units) =
                        self.amount(oracle.available_units(member, from), 1_000_000)
                    {
                        let at = self.time_in(cal, date, afternoon + 1, close);
                        let kind = InstructionKind::Switch {
                            from_fund: from,
                            to_fund: to,
                            units_micro: units,
                        };
                        out.push((at, self.next_instruction(i, kind)));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large contributions are rare but do come, over every decade up to the largest.
    #[test]
    fn contributions_are_mostly_ordinary_and_sometimes_large() {
        let mut p = Population::new(1, 1, &[1, 2, 3, 4, 5]);
        let draws: Vec<u64> = (0..200_000).map(|_| p.contribution()).collect();
        let large: Vec<u64> = draws
            .iter()
            .copied()
            .filter(|&c| c > CONTRIBUTION_PENCE.1)
            .collect();
        assert!(draws.iter().all(|&c| c >= CONTRIBUTION_PENCE.0));
        assert!(large.iter().all(|&c| c <= LARGE_CONTRIBUTION_PENCE.1));
        // 1 in 500 of 200,000: about 400.
        assert!((250..600).contains(&large.len()), "{} large", large.len());
        assert!(large.iter().any(|&c| c > LARGE_CONTRIBUTION_PENCE.1 / 10));
    }
}
