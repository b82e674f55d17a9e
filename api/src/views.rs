//! What the API shows: funds, members' pots (read from the ledger) and instructions, as JSON
//! with amounts as decimal strings (pence and micro-units formatted here, at the edge) and
//! times as RFC 3339 UTC.

use crate::config::Fund;
use crate::decimal::format_signed;
use crate::requests::profile_names;
use crate::store::{Instruction, Member};
use acme_ledger::chart;
use acme_ledger::Account;
use acme_processes::calendar::{Date, Ts, NS_PER_DAY};
use acme_processes::messages::{InstructionKind, InstructionState};
use acme_processes::money::{cash_for_units, Price};
use serde_json::{json, Value};

fn pence(v: i128) -> String {
    format_signed(v, 2)
}

fn units(v: i128) -> String {
    format_signed(v, 6)
}

fn price(p: Price) -> String {
    format_signed(i128::from(p.0), 6)
}

pub fn timestamp(ts: Ts) -> String {
    let in_day = ts % NS_PER_DAY;
    let (h, m, s) = (
        in_day / 3_600_000_000_000,
        in_day / 60_000_000_000 % 60,
        in_day / 1_000_000_000 % 60,
    );
    let ms = in_day / 1_000_000 % 1_000;
    format!("{}T{h:02}:{m:02}:{s:02}.{ms:03}Z", Date::of(ts))
}

pub fn state_name(s: InstructionState) -> &'static str {
    match s {
        InstructionState::Received => "received",
        InstructionState::Reserved => "reserved",
        InstructionState::Placed => "placed",
        InstructionState::Priced => "priced",
        InstructionState::Settled => "settled",
        InstructionState::Completed => "completed",
        InstructionState::Rejected => "rejected",
    }
}

fn profile_name(p: u8) -> &'static str {
    profile_names()
        .get(p as usize)
        .copied()
        .unwrap_or("unknown")
}

pub fn funds(funds: &[Fund]) -> Value {
    let list: Vec<Value> = funds
        .iter()
        .map(|f| json!({"isin": f.isin, "name": f.name, "last_price": price(f.price)}))
        .collect();
    json!({ "funds": list })
}

pub fn registration(member_id: &str, profile: u8) -> Value {
    json!({"member_id": member_id, "risk_profile": profile_name(profile)})
}

/// The ledger accounts of a pot: its cash, then its units of each fund.
pub fn pot_accounts(number: u64, funds: &[Fund]) -> Vec<u128> {
    std::iter::once(chart::member_cash(number))
        .chain(funds.iter().map(|f| chart::member_units(number, f.id)))
        .collect()
}

pub fn member(m: &Member, accounts: &[Account], funds: &[Fund]) -> Value {
    let find = |id: u128| accounts.iter().find(|a| a.id == id);
    let cash = find(chart::member_cash(m.number));
    let c = |f: fn(&Account) -> u128| cash.map_or(0, |a| f(a) as i128);
    let mut total: i128 = c(|a| a.credits_posted) - c(|a| a.debits_posted);
    let mut holdings = Vec::new();
    for f in funds {
        let Some(a) = find(chart::member_units(m.number, f.id)) else {
            continue;
        };
        let settled = a.credits_posted as i128 - a.debits_posted as i128;
        let pending = a.credits_pending as i128;
        let held = u64::try_from((settled + pending).max(0)).unwrap_or(u64::MAX);
        let value = i128::from(cash_for_units(held, f.price));
        total += value;
        holdings.push(json!({
            "isin": f.isin,
            "units_settled": units(settled),
            "units_pending": units(pending),
            "units_reserved": units(a.debits_pending as i128),
            "value": pence(value),
        }));
    }
    json!({
        "member_id": m.name,
        "risk_profile": profile_name(m.profile),
        "onboarded": cash.is_some(),
        "cash": {
            "available": pence(c(|a| a.credits_posted) - c(|a| a.debits_posted) - c(|a| a.debits_pending)),
            "reserved": pence(c(|a| a.debits_pending)),
            "incoming": pence(c(|a| a.credits_pending)),
        },
        "funds": holdings,
        "value": pence(total),
        "valued_at": "last closing prices",
    })
}

fn isin(funds: &[Fund], id: u32) -> String {
    funds
        .iter()
        .find(|f| f.id == id)
        .map_or_else(|| format!("fund {id}"), |f| f.isin.clone())
}

pub fn kind(k: &InstructionKind, funds: &[Fund]) -> Value {
    match k {
        InstructionKind::Onboard { profile } => {
            json!({"kind": "onboard", "risk_profile": profile_name(*profile)})
        }
        InstructionKind::Contribute { cash_pence } => {
            json!({"kind": "contribute", "amount": pence(i128::from(*cash_pence))})
        }
        InstructionKind::Invest { fund, cash_pence } => json!({
            "kind": "invest", "fund": isin(funds, *fund), "amount": pence(i128::from(*cash_pence))
        }),
        InstructionKind::Sell { fund, units_micro } => json!({
            "kind": "sell", "fund": isin(funds, *fund), "units": units(i128::from(*units_micro))
        }),
        InstructionKind::Switch {
            from_fund,
            to_fund,
            units_micro,
        } => json!({
            "kind": "switch", "from_fund": isin(funds, *from_fund),
            "to_fund": isin(funds, *to_fund), "units": units(i128::from(*units_micro))
        }),
    }
}

pub fn instruction(i: &Instruction, funds: &[Fund]) -> Value {
    let mut v = kind(&i.kind, funds);
    let state = i.history.last().map_or("received", |h| state_name(h.0));
    let mut history = vec![json!({"state": "received", "at": timestamp(i.received_at)})];
    history.extend(
        i.history
            .iter()
            .map(|(s, at)| json!({"state": state_name(*s), "at": timestamp(*at)})),
    );
    v["id"] = i.id.to_string().into();
    v["member_id"] = i.member.clone().into();
    v["state"] = state.into();
    v["dealing_date"] = i.dealing_date.map(|d| d.to_string()).into();
    v["history"] = history.into();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let d = Date::from_ymd(2026, 1, 5).expect("date");
        let ts = d.at_minute(16 * 60 + 1) + 2_345_000_000;
        assert_eq!(timestamp(ts), "2026-01-05T16:01:02.345Z");
    }
}
