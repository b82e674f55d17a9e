//! Opening pots: members who come to the trust with savings already (a bulk transfer in from
//! another scheme), so that sells, switches, internal crossing and re-balancing happen from the
//! first day, under the first day's faults. Without them every member starts from nothing, and
//! a run of a few days meets only the buy path: day-one buys settle on day three.
//!
//! A pot is drawn from the seed before the first day and booked three times, each by its own
//! hand: in the ledger (operations' opening entries: the bank's cash into the member's cash
//! account, the custodian's settled units into the member's units accounts), in the reference
//! model, and in the custodian's books. The platform's processes are not involved: they find the
//! balances in the ledger, as they would after a migration.

use crate::members::Population;
use crate::rng::{SimRng, Stream};
use crate::World;
use acme_ledger::chart::{self, AccountKind, FundId, MemberId, LEDGER_CASH_GBP};
use acme_ledger::ids::{transfer_id, Domain, Step};
use acme_ledger::{Account, CreateAccountResult, CreateTransferResult, Ledger, Transfer};
use acme_processes::money::Price;

/// Share of members who start with a pot, ppm (the default of `SimConfig::opening_ppm`). A
/// quarter is enough for every sell-side path on every day, and keeps a run's cost near what it
/// was without (each order is a dozen ledger transfers).
pub const OPENING_PPM: u32 = 250_000;
/// Of those, the share whose pot is off its model portfolio (re-balancing's work), ppm.
pub const DRIFTED_PPM: u32 = 100_000;
/// Of those, the share that bring uninvested cash too, ppm.
pub const WITH_CASH_PPM: u32 = 500_000;
/// An opening pot's value in funds, pence.
pub const VALUE_PENCE: (u64, u64) = (50_000, 5_000_000);
/// An opening pot's uninvested cash, when it has some, pence.
pub const CASH_PENCE: (u64, u64) = (1, 200_000);

/// One member's opening pot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpeningPot {
    pub member: MemberId,
    pub profile: u8,
    pub cash_pence: u64,
    /// Settled micro-units per fund, funds in order, none zero.
    pub units: Vec<(FundId, u64)>,
}

/// Micro-units worth `pence` at `price` (micro-pounds per unit), rounded down: the simulator's
/// own arithmetic, not the platform's.
fn units_for(pence: u64, price: Price) -> u64 {
    (pence as u128 * 10_000_000_000 / price.0 as u128) as u64
}

/// The opening pots of a run: `ppm` of the members, valued at `prices` (the first day's
/// closes), split by their model's weights, or (`DRIFTED_PPM` of them) by weights of their own.
pub fn draw(
    seed: u64,
    population: &Population,
    funds: &[FundId],
    prices: &[Price],
    ppm: u32,
) -> Vec<OpeningPot> {
    let mut rng = SimRng::new(seed, Stream::Holdings);
    let mut pots = Vec::new();
    for index in 0..population.len() as usize {
        if !rng.chance_ppm(ppm) {
            continue;
        }
        let member = Population::member_id(index);
        let value = rng.between(VALUE_PENCE.0, VALUE_PENCE.1);
        let cash_pence = if rng.chance_ppm(WITH_CASH_PPM) {
            rng.between(CASH_PENCE.0, CASH_PENCE.1)
        } else {
            0
        };
        let weights: Vec<u64> = if rng.chance_ppm(DRIFTED_PPM) {
            let mut w: Vec<u64> = funds.iter().map(|_| rng.between(0, 10)).collect();
            w[rng.below(funds.len() as u64) as usize] += 1; // never all zero
            w
        } else {
            let model = population.model(member);
            model.target_bp.iter().map(|&w| w as u64).collect()
        };
        let total: u64 = weights.iter().sum::<u64>().max(1);
        let units = funds
            .iter()
            .zip(&weights)
            .zip(prices)
            .map(|((&f, &w), &p)| (f, units_for(value * w / total, p)))
            .filter(|&(_, u)| u > 0)
            .collect();
        pots.push(OpeningPot {
            member,
            profile: population.profile(member),
            cash_pence,
            units,
        });
    }
    pots
}

/// The ledger's opening entries for `pots`: the accounts (the cash account as onboarding
/// makes it, the units accounts as pricing does, so the platform's own creations of them find
/// them `exists`) and a transfer per balance, its id derived from the member and the fund.
fn entries(pots: &[OpeningPot]) -> (Vec<Account>, Vec<Transfer>) {
    let (mut accounts, mut transfers) = (Vec::new(), Vec::new());
    for pot in pots {
        accounts.push(Account {
            user_data_32: pot.profile as u32,
            ..chart::account(AccountKind::MemberCash, LEDGER_CASH_GBP, pot.member)
        });
        let opening = |sub: u64, debit, credit, amount: u64, ledger| Transfer {
            id: transfer_id(Step::OpeningBalance, Domain::Member, pot.member, sub),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: amount as u128,
            user_data_64: pot.member,
            ledger,
            code: Step::OpeningBalance.code(),
            ..Transfer::default()
        };
        if pot.cash_pence > 0 {
            let bank = chart::house(AccountKind::Bank, LEDGER_CASH_GBP);
            let cash = chart::member_cash(pot.member);
            transfers.push(opening(0, bank, cash, pot.cash_pence, LEDGER_CASH_GBP));
        }
        for &(fund, units) in &pot.units {
            let ledger = chart::fund_ledger(fund);
            accounts.push(chart::account(AccountKind::MemberUnits, ledger, pot.member));
            let custodian = chart::house(AccountKind::CustodianSettled, ledger);
            let member = chart::member_units(pot.member, fund);
            transfers.push(opening(fund as u64, custodian, member, units, ledger));
        }
    }
    (accounts, transfers)
}

/// Books the opening pots of the run before its first event: in the ledger, the reference
/// model and the custodian's books. Set-up by the simulator itself, so a refusal is a bug here.
pub(crate) fn open(world: &mut World) {
    if world.cfg.opening_ppm == 0 {
        return;
    }
    let first = world.calendar.on_or_after(world.cfg.start);
    let funds = crate::world::FUNDS;
    let prices: Vec<Price> = funds
        .iter()
        .map(|&f| world.market.close(f, first))
        .collect();
    let pots = draw(
        world.cfg.seed,
        &world.population,
        &funds,
        &prices,
        world.cfg.opening_ppm,
    );
    let (accounts, transfers) = entries(&pots);
    for batch in accounts.chunks(acme_ledger::BATCH_EVENTS_MAX) {
        let results = world.ledger.create_accounts(batch).expect("set-up ledger");
        assert!(
            results.iter().all(|r| *r == CreateAccountResult::Ok),
            "opening accounts: {results:?}"
        );
    }
    for batch in transfers.chunks(acme_ledger::BATCH_EVENTS_MAX) {
        let results = world.ledger.create_transfers(batch).expect("set-up ledger");
        assert!(
            results.iter().all(|r| *r == CreateTransferResult::Ok),
            "opening transfers: {results:?}"
        );
    }
    for pot in &pots {
        world
            .oracle
            .open_pot(pot.member, pot.profile, pot.cash_pence, &pot.units);
        for &(fund, units) in &pot.units {
            world.custodian.open(fund, units);
        }
    }
    let cash: u64 = pots.iter().map(|p| p.cash_pence).sum();
    let units: u64 = pots.iter().flat_map(|p| p.units.iter().map(|u| u.1)).sum();
    world
        .trace
        .record(&("opening pots", pots.len(), cash, units));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pots(seed: u64, ppm: u32) -> Vec<OpeningPot> {
        let funds = [1, 2, 3, 4, 5];
        let population = Population::new(seed, 1_000, &funds);
        let prices = [1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000].map(Price);
        draw(seed, &population, &funds, &prices, ppm)
    }

    #[test]
    fn pots_are_drawn_from_the_seed_within_their_ranges() {
        let a = pots(7, OPENING_PPM);
        assert_eq!(a, pots(7, OPENING_PPM), "same seed, same pots");
        assert_ne!(a, pots(8, OPENING_PPM));
        // About a quarter of 1,000 members, half of them with cash.
        assert!((180..=320).contains(&a.len()), "{} pots", a.len());
        let with_cash = a.iter().filter(|p| p.cash_pence > 0).count();
        assert!(
            with_cash > a.len() / 4 && with_cash < a.len() * 3 / 4,
            "{with_cash}"
        );
        for p in &a {
            assert!(p.cash_pence <= CASH_PENCE.1);
            assert!(!p.units.is_empty() && p.units.iter().all(|&(_, u)| u > 0));
            // Worth at most the largest value (each fund at its price, rounded down).
            let prices = [1_000_000u128, 2_000_000, 3_000_000, 4_000_000, 5_000_000];
            let pence: u128 = p
                .units
                .iter()
                .map(|&(f, u)| u as u128 * prices[f as usize - 1] / 10_000_000_000)
                .sum();
            assert!(pence <= VALUE_PENCE.1 as u128, "{p:?} worth {pence}");
        }
        assert!(pots(7, 0).is_empty());
    }

    #[test]
    fn some_pots_are_off_their_model() {
        // A pot on its model holds every fund its model weights (every model weights all five);
        // a drifted one usually does not.
        let a = pots(3, OPENING_PPM);
        let partial = a.iter().filter(|p| p.units.len() < 5).count();
        assert!(
            partial > 0 && partial < a.len() / 2,
            "{partial} of {}",
            a.len()
        );
    }
}
