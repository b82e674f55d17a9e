//! The buy cycle of the brief's flowchart, as four processes:
//!
//! ```text
//! Members --Instruction--> Intake --OrderAccepted--> Aggregation --PlaceTrade--> Custodian
//!                            ^                          | TradeBooked                |
//!                            |                          v                            |
//!                            +--InstructionsAdvanced-- Pricing <----TradePriced------+
//!                            |                          | TradeAllocated             |
//!                            |                          v                            |
//!                            +--InstructionsAdvanced-- Settlement <--TradeSettled----+
//! ```
//!
//! - [`intake`]: onboarding, contributions (bank -> pot) and invest instructions (a pending
//!   reservation of the member's cash), in batches.
//! - [`aggregation`]: per fund and trade date, all reserved orders become one external trade at
//!   the cut-off.
//! - [`pricing`]: at the closing price, units are allocated pro rata (rounded down, the residual
//!   to ACME's rounding account) as pending transfers, reservations are posted and the cash goes
//!   to the custodian.
//! - [`confirmation`]: what a custodian's confirmation must say before pricing acts on it.
//! - [`settlement`]: at T+N the pending units are posted (final) and the custodian mirror moves
//!   from unsettled to settled.

pub mod aggregation;
pub mod allocation;
pub mod confirmation;
pub mod intake;
pub mod pricing;
pub mod rebalancing;
pub mod settlement;

/// Ledger request tags: `cause << 24 | phase << 20 | chunk`, so a reply names what it answers.
pub(crate) fn tag(cause: u64, phase: u64, chunk: u64) -> u64 {
    assert!(phase < 16 && chunk < (1 << 20) && cause < (1 << 40));
    cause << 24 | phase << 20 | chunk
}

pub(crate) fn untag(tag: u64) -> (u64, u64, u64) {
    (tag >> 24, (tag >> 20) & 0xF, tag & 0xF_FFFF)
}

/// Whether `date` is at least `days` business days before `newest`: how the trading processes
/// decide that a finished trade (or date) can leave their state. They measure against the newest
/// date their inputs have shown them, never a clock, so retirement replays exactly.
pub(crate) fn aged(date: crate::calendar::Date, newest: crate::calendar::Date, days: u32) -> bool {
    date.add_business_days(days) <= newest
}

/// Helpers for the processes' own tests: they drive a process through `handle` directly.
#[cfg(test)]
pub(crate) mod testkit {
    use crate::calendar::Date;
    use crate::messages::{
        instruction_id, trade_id, Confirmation, ExternalTrade, Message, Order, Side,
    };
    use crate::money::{cash_for_units, units_for_cash, Price};
    use crate::process::{
        Ctx, Effect, Effects, Envelope, Input, LedgerReply, LedgerRequest, Process, Service,
    };
    use acme_ledger::chart::FundId;
    use acme_ledger::{CreateAccountResult, CreateTransferResult};

    pub fn message(id: u128, from: Service, to: Service, body: Message) -> Input {
        Input::Message(Envelope {
            id,
            from,
            to,
            seq: 0,
            body,
        })
    }

    /// Handles `input` at `now`; the effects, and the poison reason if any.
    pub fn handle<P: Process>(p: &mut P, now: u64, input: &Input) -> (Vec<Effect>, Option<String>) {
        let mut fx = Effects::new();
        p.handle(&Ctx { now }, input, &mut fx);
        let poison = fx.poisoned().map(str::to_string);
        (fx.into_vec(), poison)
    }

    /// Serializes `p`, restores it, and checks that the restored copy serializes to the same
    /// bytes. Returns the copy.
    pub fn round_trip<P: Process>(p: &P) -> P {
        let bytes = serde_json::to_vec(p).expect("serializes");
        let restored: P = serde_json::from_slice(&bytes).expect("deserializes");
        let again = serde_json::to_vec(&restored).expect("serializes again");
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&again),
            "a restored {} serializes differently",
            p.name()
        );
        restored
    }

    /// The original and its restored copy handle `input` alike, and end in the same state.
    pub fn same_next<P: Process>(
        original: &mut P,
        restored: &mut P,
        now: u64,
        input: &Input,
    ) -> Vec<Effect> {
        let a = handle(original, now, input);
        let b = handle(restored, now, input);
        assert_eq!(a, b, "the restored {} answers differently", original.name());
        assert_eq!(
            serde_json::to_vec(original).unwrap(),
            serde_json::to_vec(restored).unwrap(),
            "the restored {} ends in another state",
            original.name()
        );
        a.0
    }

    /// The ledger's answer to each request among `effects`, everything applied.
    pub fn ok_answers(effects: &[Effect]) -> Vec<Input> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Ledger {
                    tag,
                    request: LedgerRequest::CreateAccounts(a),
                } => Some(Input::Ledger {
                    tag: *tag,
                    reply: LedgerReply::CreateAccounts(vec![CreateAccountResult::Ok; a.len()]),
                }),
                Effect::Ledger {
                    tag,
                    request: LedgerRequest::CreateTransfers(t),
                } => Some(Input::Ledger {
                    tag: *tag,
                    reply: LedgerReply::CreateTransfers(vec![CreateTransferResult::Ok; t.len()]),
                }),
                _ => None,
            })
            .collect()
    }

    /// Handles `input`, then answers every ledger request that follows with success, until
    /// none is left; all the effects, in order. Panics on poison.
    pub fn drive_ok<P: Process>(p: &mut P, now: u64, input: &Input) -> Vec<Effect> {
        let mut all = Vec::new();
        let mut queue = std::collections::VecDeque::from([input.clone()]);
        while let Some(i) = queue.pop_front() {
            let (fx, poison) = handle(p, now, &i);
            assert_eq!(poison, None);
            queue.extend(ok_answers(&fx));
            all.extend(fx);
        }
        all
    }

    /// A trade of `fund` on `date`: two buys and a sale, all filled at £2.50.
    pub fn sample_trade(date: Date, fund: FundId) -> (ExternalTrade, Vec<Order>, Confirmation) {
        let order = |member: u64, side, amount| Order {
            instruction: instruction_id(member, date.0 as u64 % 1_000),
            leg: 0,
            member,
            fund,
            side,
            amount,
            dealing_date: date,
        };
        let orders = vec![
            order(1, Side::Buy, 10_000),
            order(2, Side::Buy, 5_000),
            order(3, Side::Sell, 2_000_000),
        ];
        let trade = ExternalTrade {
            id: trade_id(date, fund),
            fund,
            trade_date: date,
            buy_cash_pence: 15_000,
            sell_units_micro: 2_000_000,
        };
        let price = Price(2_500_000);
        let c = Confirmation {
            trade_id: trade.id,
            revision: 0,
            price,
            buy_cash_filled: 15_000,
            sell_units_filled: 2_000_000,
            units_bought: units_for_cash(15_000, price),
            cash_for_sold: cash_for_units(2_000_000, price),
        };
        (trade, orders, c)
    }

    /// A Monday.
    pub fn monday() -> Date {
        "2026-11-23".parse().unwrap()
    }

    pub fn alerts(effects: &[Effect]) -> Vec<&str> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Alert(a) => Some(a.what.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn sent(effects: &[Effect]) -> Vec<&Envelope> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(env) => Some(env),
                _ => None,
            })
            .collect()
    }
}
