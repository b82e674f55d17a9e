//! The member population: N members with risk profiles who pay in and invest at random times.
//!
//! Each business day every member may contribute in the morning and may invest in the
//! afternoon (both inside the instruction window), choosing a fund by their risk profile's
//! weights. A few invest more than they have, on purpose, to exercise rejection. Every
//! instruction is registered with the [`Oracle`] as it is made.

use crate::oracle::Oracle;
use crate::rng::{SimRng, Stream};
use acme_ledger::chart::{FundId, MemberId};
use acme_processes::calendar::{Date, Schedule, Ts, NS_PER_MIN};
use acme_processes::messages::{instruction_id, Instruction, InstructionKind};

/// A risk profile: its name and integer weights over the funds (in fund order).
pub struct RiskProfile {
    pub name: &'static str,
    pub weights: [u32; 5],
}

/// Three model profiles over five funds (equity-heavy to bond-heavy).
pub const PROFILES: [RiskProfile; 3] = [
    RiskProfile { name: "cautious", weights: [10, 10, 20, 30, 30] },
    RiskProfile { name: "balanced", weights: [20, 20, 20, 20, 20] },
    RiskProfile { name: "adventurous", weights: [40, 30, 15, 10, 5] },
];

/// Chance a member contributes on a given day, ppm.
pub const CONTRIBUTE_PPM: u32 = 250_000;
/// Chance a member invests on a given day, ppm.
pub const INVEST_PPM: u32 = 300_000;
/// Chance an invest asks for more than the member has, ppm.
pub const OVER_INVEST_PPM: u32 = 30_000;

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
            .map(|_| rng.below(PROFILES.len() as u64) as u8)
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

    fn next_instruction(&mut self, index: usize, kind: InstructionKind) -> Instruction {
        let seq = self.next_seq[index];
        self.next_seq[index] += 1;
        let member = Population::member_id(index);
        Instruction { id: instruction_id(member, seq), member, kind }
    }

    fn time_in(&mut self, date: Date, from_min: u32, to_min: u32) -> Ts {
        let start = date.at_minute(from_min);
        start + self.rng.below((to_min - from_min) as u64 * NS_PER_MIN)
    }

    /// Everybody opens their pot on the first day, before the window opens.
    pub fn onboarding(&mut self, date: Date, schedule: &Schedule, oracle: &mut Oracle) -> Vec<(Ts, Instruction)> {
        let open = schedule.window_open_min;
        (0..self.profiles.len())
            .map(|i| {
                let at = self.time_in(date, open - 60, open);
                let instruction = self.next_instruction(i, InstructionKind::Onboard);
                oracle.onboard(instruction.id, instruction.member);
                (at, instruction)
            })
            .collect()
    }

    /// One business day of instructions, with their send times.
    pub fn day(&mut self, date: Date, schedule: &Schedule, oracle: &mut Oracle) -> Vec<(Ts, Instruction)> {
        let open = schedule.window_open_min;
        let close = schedule.window_close_min;
        // Contributions in the first third of the window, invests after: an invest never races
        // the same day's contribution.
        let split = open + (close - open) / 3;
        let mut out = Vec::new();
        for i in 0..self.profiles.len() {
            let member = Population::member_id(i);
            if self.rng.chance_ppm(CONTRIBUTE_PPM) {
                let pence = self.rng.between(1_000, 100_000);
                let at = self.time_in(date, open, split);
                let instruction = self.next_instruction(i, InstructionKind::Contribute { cash_pence: pence });
                oracle.contribute(instruction.id, member, pence);
                out.push((at, instruction));
            }
            if self.rng.chance_ppm(INVEST_PPM) {
                let available = oracle.available_cash(member);
                let pence = if self.rng.chance_ppm(OVER_INVEST_PPM) {
                    available + self.rng.between(1, 10_000)
                } else if available == 0 {
                    continue;
                } else {
                    self.rng.between(1, available)
                };
                let profile = &PROFILES[self.profiles[i] as usize];
                let fund = self.funds[self.rng.weighted(&profile.weights)];
                let at = self.time_in(date, split + 1, close);
                let instruction = self.next_instruction(i, InstructionKind::Invest { fund, cash_pence: pence });
                oracle.invest(instruction.id, member, fund, pence, date);
                out.push((at, instruction));
            }
        }
        out
    }
}
