//! Crossing and netting never change a member's outcome.
//!
//! For a day's orders in one fund, the platform books one net trade and crosses the matched part
//! internally. Here the same orders are also traded *gross*, by an independent model: all buys
//! as one trade and all sells as another, each struck alone by the custodian's own arithmetic.
//! Both are applied to a ledger; every member's pot must match to the last minor unit.

use acme_ledger::chart::{self, AccountKind, FundId, LEDGER_CASH_GBP};
use acme_ledger::{Ledger, MemLedger, Transfer};
use acme_processes::calendar::Date;
use acme_processes::messages::{trade_id, Confirmation, ExternalTrade, Order, Side};
use acme_processes::money::Price;
use acme_processes::trading::allocation::{allocate, booking_transfers, reservation};
use acme_sim::custodian::{custodian_cash, custodian_units};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct FixedClock(AtomicU64);
impl acme_ledger::Clock for FixedClock {
    fn now_ns(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

const FUND: FundId = 1;

/// The gross outcome of each order: micro-units for a buy, pence for a sell. Pro rata of each
/// leg's gross proceeds, rounded down: what each member would get with no netting at all.
fn gross(orders: &[Order], price: Price) -> Vec<u64> {
    let leg = |side| {
        orders
            .iter()
            .filter(|o| o.side == side)
            .map(|o| o.amount as u128)
            .sum::<u128>()
    };
    let (cash_in, units_out) = (leg(Side::Buy), leg(Side::Sell));
    let units_bought = custodian_units(cash_in as u64, price) as u128;
    let cash_for_sold = custodian_cash(units_out as u64, price) as u128;
    orders
        .iter()
        .map(|o| match o.side {
            Side::Buy => (units_bought * o.amount as u128 / cash_in) as u64,
            Side::Sell => (cash_for_sold * o.amount as u128 / units_out) as u64,
        })
        .collect()
}

fn ledger_with_pots(orders: &[Order]) -> MemLedger {
    let mut ledger = MemLedger::new(Arc::new(FixedClock(AtomicU64::new(1))));
    let mut accounts = chart::house_accounts(&[FUND]);
    for o in orders {
        accounts.push(chart::account(
            AccountKind::MemberCash,
            LEDGER_CASH_GBP,
            o.member,
        ));
        accounts.push(chart::account(
            AccountKind::MemberUnits,
            chart::fund_ledger(FUND),
            o.member,
        ));
    }
    assert!(ledger
        .create_accounts(&accounts)
        .unwrap()
        .iter()
        .all(|r| r.is_applied()));
    // Fund every pot from outside, then reserve each order, as intake would.
    let mut funding = Vec::new();
    for (i, o) in orders.iter().enumerate() {
        let (ledger_id, source, target) = match o.side {
            Side::Buy => (
                LEDGER_CASH_GBP,
                chart::house(AccountKind::Bank, LEDGER_CASH_GBP),
                chart::member_cash(o.member),
            ),
            Side::Sell => (
                chart::fund_ledger(FUND),
                chart::house(AccountKind::CustodianSettled, chart::fund_ledger(FUND)),
                chart::member_units(o.member, FUND),
            ),
        };
        funding.push(Transfer {
            id: 1_000_000 + i as u128,
            debit_account_id: source,
            credit_account_id: target,
            amount: o.amount as u128,
            ledger: ledger_id,
            code: 99,
            ..Transfer::default()
        });
    }
    assert!(ledger
        .create_transfers(&funding)
        .unwrap()
        .iter()
        .all(|r| r.is_applied()));
    let reservations: Vec<Transfer> = orders.iter().map(reservation).collect();
    assert!(ledger
        .create_transfers(&reservations)
        .unwrap()
        .iter()
        .all(|r| r.is_applied()));
    ledger
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn netted_and_crossed_equals_gross(
        raw in proptest::collection::vec((any::<bool>(), 1u64..5_000_000), 2..60),
        price in 10_000u64..20_000_000,
    ) {
        let date = Date(20_500);
        let orders: Vec<Order> = raw
            .iter()
            .enumerate()
            .map(|(i, &(buy, amount))| Order {
                instruction: i as u64 + 1,
                leg: 0,
                member: i as u64 + 1,
                fund: FUND,
                side: if buy { Side::Buy } else { Side::Sell },
                // Buys in pence (up to £50,000), sells in micro-units (up to 5 units).
                amount,
                dealing_date: date,
            })
            .collect();
        let leg = |side| orders.iter().filter(|o| o.side == side).map(|o| o.amount).sum::<u64>();
        let trade = ExternalTrade {
            id: trade_id(date, FUND),
            fund: FUND,
            trade_date: date,
            buy_cash_pence: leg(Side::Buy),
            sell_units_micro: leg(Side::Sell),
        };
        let price = Price(price);
        let c = Confirmation {
            trade_id: trade.id,
            revision: 0,
            price,
            buy_cash_filled: trade.buy_cash_pence,
            sell_units_filled: trade.sell_units_micro,
            units_bought: custodian_units(trade.buy_cash_pence, price),
            cash_for_sold: custodian_cash(trade.sell_units_micro, price),
        };
        let allocation = allocate(&trade, &orders, &c);
        let expected = gross(&orders, price);
        for (line, want) in allocation.lines.iter().zip(&expected) {
            prop_assert_eq!(line.proceeds, *want, "order {:?}", line.order);
        }
        // And in the ledger: book the net trade; every pot holds its gross outcome.
        let mut ledger = ledger_with_pots(&orders);
        let results = ledger.create_transfers(&booking_transfers(&trade, &allocation)).unwrap();
        prop_assert!(results.iter().all(|r| r.is_applied()), "{:?}", results);
        for (o, want) in orders.iter().zip(&expected) {
            let (paid, got) = match o.side {
                Side::Buy => (chart::member_cash(o.member), chart::member_units(o.member, FUND)),
                Side::Sell => (chart::member_units(o.member, FUND), chart::member_cash(o.member)),
            };
            let accounts = ledger.lookup_accounts(&[paid, got]).unwrap();
            // What the order gave is gone for good (its reservation posted in full); what it got
            // is pending until settlement, to the last minor unit of the gross outcome.
            prop_assert_eq!(accounts[0].debits_posted, o.amount as u128);
            prop_assert_eq!(accounts[0].debits_pending, 0);
            prop_assert_eq!(accounts[1].credits_pending, *want as u128);
        }
        // The trading accounts are flat: crossing created and lost nothing.
        for l in [LEDGER_CASH_GBP, chart::fund_ledger(FUND)] {
            let t = ledger.lookup_accounts(&[chart::house(AccountKind::AcmeTrading, l)]).unwrap()[0];
            prop_assert_eq!(t.credits_posted + t.credits_pending, t.debits_posted + t.debits_pending);
        }
    }
}
