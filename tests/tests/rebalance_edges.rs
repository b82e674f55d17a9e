//! Re-balancing's planning against the reference model, on pots drawn at the band's edges.
//!
//! The platform plans a pass with `acme_processes::trading::rebalancing::plan`; the simulator's
//! model decides the same pass with its own arithmetic (`acme_sim::oracle::Oracle::rebalance`).
//! Here the pots are drawn so that some fund's weight sits within a few basis points of its
//! target plus or minus the band (both sides of both edges), over every model, with prices from
//! 1p to £10,000 a unit, values from just under the smallest pot re-balanced to £100 million
//! (where one switch is capped at what intake takes), and cash in the pot or not (which does not
//! count). Both must propose the same switches, instruction by instruction.
//!
//! 10,000 cases in the default run; `SOAK=1` runs 200,000.

use acme_ledger::chart::{FundId, MemberId};
use acme_processes::calendar::Date;
use acme_processes::messages::{Instruction, InstructionKind, Origin};
use acme_processes::money::Price;
use acme_processes::trading::rebalancing::{
    plan, rebalance_instruction_id, ModelSet, Portfolio, MODEL_FUNDS,
};
use acme_sim::oracle::Oracle;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::cell::Cell;
use std::collections::BTreeMap;

const SET: ModelSet = ModelSet::V1;

/// Weights in parts of 10^8 of the pot (10^4 to a basis point).
const WHOLE: i128 = 100_000_000;

/// Where one fund's weight is drawn: at its upper or lower band edge or at its target (plus an
/// offset in hundredths of a basis point), or left to take a share of what the others leave.
#[derive(Clone, Copy, Debug)]
enum Place {
    Upper(i32),
    Lower(i32),
    On(i32),
    Free,
}

#[derive(Clone, Debug)]
struct Pot {
    profile: u8,
    value_pence: u64,
    places: [Place; MODEL_FUNDS],
    cash_pence: u64,
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        (-400i32..=400).prop_map(Place::Upper),
        (-400i32..=400).prop_map(Place::Lower),
        (-40_000i32..=40_000).prop_map(Place::On),
        Just(Place::Free),
    ]
}

/// Micro-pounds a unit: a penny, £10,000, or anything between.
fn price() -> impl Strategy<Value = u64> {
    prop_oneof![
        10_000u64..=10_100,
        9_999_000_000u64..=10_000_000_000,
        10_000u64..=10_000_000_000,
        (4u32..=10)
            .prop_flat_map(|e| 10u64.pow(e - 1)..10u64.pow(e))
            .prop_map(|p| p.max(10_000)),
    ]
}

/// Two funds at opposite edges, a few hundredths of a basis point inside or outside, the rest
/// on target: in band or out of it by a hair.
fn balanced() -> impl Strategy<Value = [Place; MODEL_FUNDS]> {
    (0usize..MODEL_FUNDS, 1usize..MODEL_FUNDS, -300i32..=300).prop_map(|(a, k, d)| {
        let mut places = [Place::On(0); MODEL_FUNDS];
        places[a] = Place::Upper(d);
        places[(a + k) % MODEL_FUNDS] = Place::Lower(-d);
        places
    })
}

fn pot() -> impl Strategy<Value = Pot> {
    let value = prop_oneof![
        4_990u64..=5_030,
        5_000u64..=1_000_000,
        1_000_000u64..=10_000_000_000,
    ];
    let cash = prop_oneof![Just(0u64), 1u64..=100_000_000];
    let places = prop_oneof![proptest::array::uniform5(place()), balanced()];
    (0u8..3, value, places, cash).prop_map(|(profile, value_pence, places, cash_pence)| Pot {
        profile,
        value_pence,
        places,
        cash_pence,
    })
}

/// Weights, parts of 10^8: the edge funds first (in fund order, as far as the whole allows),
/// the rest shared over the free funds by their targets. At least one fund is free.
fn weights(pot: &Pot) -> [i128; MODEL_FUNDS] {
    let target = SET.models[pot.profile as usize].target_bp;
    let band = SET.band_bp as i128 * 10_000;
    let mut places = pot.places;
    if places.iter().all(|p| !matches!(p, Place::Free)) {
        places[MODEL_FUNDS - 1] = Place::Free;
    }
    let mut w = [0i128; MODEL_FUNDS];
    let mut left = WHOLE;
    for i in 0..MODEL_FUNDS {
        let t = target[i] as i128 * 10_000;
        let at = match places[i] {
            Place::Upper(d) => t + band + d as i128 * 100,
            Place::Lower(d) => t - band + d as i128 * 100,
            Place::On(d) => t + d as i128 * 100,
            Place::Free => continue,
        };
        w[i] = at.clamp(0, left);
        left -= w[i];
    }
    let free: Vec<usize> = (0..MODEL_FUNDS)
        .filter(|&i| matches!(places[i], Place::Free))
        .collect();
    let free_target: i128 = free.iter().map(|&i| target[i] as i128).sum();
    let mut shared = 0;
    for &i in &free {
        w[i] = left * target[i] as i128 / free_target;
        shared += w[i];
    }
    w[free[0]] += left - shared;
    w
}

/// The units that make each fund worth its weight of the pot, to the nearest micro-unit.
fn units(pot: &Pot, prices: &[u64; MODEL_FUNDS]) -> [u64; MODEL_FUNDS] {
    let w = weights(pot);
    let mut units = [0u64; MODEL_FUNDS];
    for i in 0..MODEL_FUNDS {
        let value = pot.value_pence as i128 * w[i]; // pence, times 10^8
        let price = prices[i] as i128;
        units[i] = ((value * 100 + price / 2) / price) as u64; // 10^10 / 10^8
    }
    units
}

/// How far the pot's nearest weight is from a band edge, in basis points (this test's own
/// arithmetic, exact), and whether any weight is beyond its band; `None` below the smallest pot.
fn nearest_edge(
    pot: &Pot,
    units: &[u64; MODEL_FUNDS],
    prices: &[u64; MODEL_FUNDS],
) -> Option<(i128, bool)> {
    let values: Vec<i128> = (0..MODEL_FUNDS)
        .map(|i| units[i] as i128 * prices[i] as i128 / 10_000_000_000)
        .collect();
    let total: i128 = values.iter().sum();
    if total < SET.min_value_pence as i128 {
        return None;
    }
    let target = SET.models[pot.profile as usize].target_bp;
    let band = SET.band_bp as i128;
    let mut nearest = i128::MAX;
    let mut beyond = false;
    for i in 0..MODEL_FUNDS {
        // |weight - target| - band, times total; weight = value * 10^4 / total basis points.
        let off = (values[i] * 10_000 - target[i] as i128 * total).abs() - band * total;
        nearest = nearest.min(off.abs() / total);
        beyond |= off >= total; // a whole basis point beyond: out of band by either rounding
    }
    Some((nearest, beyond))
}

fn member(k: usize) -> MemberId {
    k as MemberId * 7 + 3
}

/// The platform's pass, as its process sends it: each member's switches numbered from 0.
fn platform(pots: &[Pot], prices: &[u64; MODEL_FUNDS], date: Date) -> Vec<Instruction> {
    let portfolios: Vec<Portfolio> = pots
        .iter()
        .enumerate()
        .map(|(k, pot)| Portfolio {
            member: member(k),
            profile: pot.profile,
            units: units(pot, prices),
            busy: false,
        })
        .collect();
    let prices = prices.map(Price);
    let mut index: BTreeMap<MemberId, u64> = BTreeMap::new();
    plan(&portfolios, &prices, &SET)
        .into_iter()
        .map(|p| {
            let i = index.entry(p.member).or_insert(0);
            let id = rebalance_instruction_id(p.member, date, *i);
            *i += 1;
            Instruction {
                id,
                member: p.member,
                kind: InstructionKind::Switch {
                    from_fund: p.from,
                    to_fund: p.to,
                    units_micro: p.units_micro,
                },
                origin: Origin::Rebalancing,
            }
        })
        .collect()
}

fn model(pots: &[Pot], prices: &[u64; MODEL_FUNDS], date: Date) -> Vec<Instruction> {
    let mut oracle = Oracle::default();
    for (k, pot) in pots.iter().enumerate() {
        let held: Vec<(FundId, u64)> = SET
            .funds
            .iter()
            .copied()
            .zip(units(pot, prices))
            .filter(|&(_, u)| u > 0)
            .collect();
        oracle.open_pot(member(k), pot.profile, pot.cash_pence, &held);
    }
    let prices: BTreeMap<FundId, Price> =
        SET.funds.iter().copied().zip(prices.map(Price)).collect();
    oracle.rebalance(date, &prices, &SET)
}

#[test]
fn planning_agrees_with_the_model_at_the_band_edges() {
    let cases = if std::env::var_os("SOAK").is_some() {
        200_000
    } else {
        10_000
    };
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let date = Date::from_ymd(2027, 6, 15).expect("a date");
    let (near, drifted, kept, switches) = (
        Cell::new(0u64),
        Cell::new(0u64),
        Cell::new(0u64),
        Cell::new(0u64),
    );
    let strategy = (
        proptest::collection::vec(pot(), 1..=4),
        proptest::array::uniform5(price()),
    );
    let result = runner.run(&strategy, |(pots, prices)| {
        let ours = platform(&pots, &prices, date);
        let theirs = model(&pots, &prices, date);
        prop_assert_eq!(&ours, &theirs, "prices {:?}", prices);
        for pot in &pots {
            if let Some((nearest, beyond)) = nearest_edge(pot, &units(pot, &prices), &prices) {
                near.set(near.get() + u64::from(nearest <= 5));
                drifted.set(drifted.get() + u64::from(beyond));
                kept.set(kept.get() + u64::from(!beyond));
            }
        }
        switches.set(switches.get() + ours.len() as u64);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let pots_checked = drifted.get() + kept.get();
    println!(
        "{cases} cases: {pots_checked} pots valued, {} within 5 bp of an edge, {} out of band, {} switches",
        near.get(),
        drifted.get(),
        switches.get()
    );
    // The draw must reach what it is for: pots at the edges, on both sides of the band.
    assert!(near.get() * 2 > pots_checked, "too few pots near an edge");
    assert!(drifted.get() * 5 > pots_checked, "too few pots out of band");
    assert!(kept.get() * 5 > pots_checked, "too few pots in band");
}
