//! Request bodies, checked field by field: every refusal names the field and says why, unknown
//! fields are refused (a misspelt `ammount` must not be silently dropped), and amounts are
//! decimal strings turned into integer minor units here, at the edge.

use crate::config::Fund;
use crate::decimal;
use crate::problem::Problem;
use acme_processes::messages::InstructionKind;
use acme_processes::trading::intake::{INSTRUCTION_CASH_MAX_PENCE, INSTRUCTION_UNITS_MAX};
use acme_processes::trading::rebalancing::ModelSet;
use serde_json::{Map, Value};

/// Longest client member id.
pub const MEMBER_ID_MAX: usize = 35;

pub struct Registration {
    pub member_id: String,
    pub profile: u8,
}

pub struct InstructionRequest {
    pub member_id: String,
    pub kind: InstructionKind,
}

/// The body as a JSON object (400 otherwise).
pub fn object(body: &[u8]) -> Result<Map<String, Value>, Problem> {
    if body.is_empty() {
        return Err(Problem::malformed("the body is empty; send a JSON object"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Problem::malformed("the body must be a JSON object")),
        Err(e) => Err(Problem::malformed(format!("the body is not JSON: {e}"))),
    }
}

fn only(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), Problem> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Problem::invalid(
            &short(k),
            format!("unknown field; the fields are {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

fn string<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, Problem> {
    match map.get(field) {
        None | Some(Value::Null) => Err(Problem::invalid(field, "is required")),
        Some(Value::String(s)) => Ok(s),
        Some(Value::Number(_)) => Err(Problem::invalid(
            field,
            "must be a string (amounts are decimal strings like \"100.00\", never numbers)",
        )),
        Some(_) => Err(Problem::invalid(field, "must be a string")),
    }
}

/// A client's member id: 1 to 35 letters, digits, `-`, `_` or `.`.
pub fn member_id(field: &str, s: &str) -> Result<String, Problem> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if s.is_empty() || s.len() > MEMBER_ID_MAX || !s.chars().all(ok_char) {
        return Err(Problem::invalid(
            field,
            format!("must be 1 to {MEMBER_ID_MAX} letters, digits, `-`, `_` or `.`"),
        ));
    }
    Ok(s.to_string())
}

pub fn profile_names() -> Vec<&'static str> {
    ModelSet::V1.models.iter().map(|m| m.name).collect()
}

pub fn registration(body: &[u8]) -> Result<Registration, Problem> {
    let map = object(body)?;
    only(&map, &["member_id", "risk_profile"])?;
    let member_id = member_id("member_id", string(&map, "member_id")?)?;
    let name = string(&map, "risk_profile")?;
    let names = profile_names();
    let profile = names.iter().position(|n| *n == name).ok_or_else(|| {
        Problem::invalid(
            "risk_profile",
            format!(
                "unknown risk profile; the profiles are {}",
                names.join(", ")
            ),
        )
    })?;
    Ok(Registration {
        member_id,
        profile: profile as u8,
    })
}

fn fund(map: &Map<String, Value>, field: &str, funds: &[Fund]) -> Result<Fund, Problem> {
    let isin = string(map, field)?;
    funds
        .iter()
        .find(|f| f.isin == isin)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = funds.iter().map(|f| f.isin.as_str()).collect();
            Problem::invalid(
                field,
                format!("unknown fund; the funds are {}", known.join(", ")),
            )
        })
}

fn cash(map: &Map<String, Value>) -> Result<u64, Problem> {
    decimal::parse_positive(
        "amount",
        string(map, "amount")?,
        2,
        INSTRUCTION_CASH_MAX_PENCE,
    )
}

fn units(map: &Map<String, Value>) -> Result<u64, Problem> {
    decimal::parse_positive("units", string(map, "units")?, 6, INSTRUCTION_UNITS_MAX)
}

pub fn instruction(body: &[u8], funds: &[Fund]) -> Result<InstructionRequest, Problem> {
    let map = object(body)?;
    let kind_name = string(&map, "kind")?;
    let kind = match kind_name {
        "contribute" => {
            only(&map, &["member_id", "kind", "amount"])?;
            InstructionKind::Contribute {
                cash_pence: cash(&map)?,
            }
        }
        "invest" => {
            only(&map, &["member_id", "kind", "fund", "amount"])?;
            InstructionKind::Invest {
                fund: fund(&map, "fund", funds)?.id,
                cash_pence: cash(&map)?,
            }
        }
        "sell" => {
            only(&map, &["member_id", "kind", "fund", "units"])?;
            InstructionKind::Sell {
                fund: fund(&map, "fund", funds)?.id,
                units_micro: units(&map)?,
            }
        }
        "switch" => {
            only(
                &map,
                &["member_id", "kind", "from_fund", "to_fund", "units"],
            )?;
            let from = fund(&map, "from_fund", funds)?;
            let to = fund(&map, "to_fund", funds)?;
            if from.id == to.id {
                return Err(Problem::invalid("to_fund", "must differ from from_fund"));
            }
            InstructionKind::Switch {
                from_fund: from.id,
                to_fund: to.id,
                units_micro: units(&map)?,
            }
        }
        _ => {
            return Err(Problem::invalid(
                "kind",
                "must be contribute, invest, sell or switch",
            ))
        }
    };
    let member_id = member_id("member_id", string(&map, "member_id")?)?;
    Ok(InstructionRequest { member_id, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_funds;

    fn field_of(body: &str) -> (u16, Option<String>) {
        match instruction(body.as_bytes(), &default_funds()) {
            Ok(_) => (0, None),
            Err(p) => (p.status.as_u16(), p.field),
        }
    }

    #[test]
    fn instructions_parse_and_bad_ones_name_their_field() {
        let funds = default_funds();
        let ok = instruction(
            br#"{"member_id": "M-1", "kind": "invest", "fund": "GB00ACME0027", "amount": "50.00"}"#,
            &funds,
        )
        .expect("valid");
        assert_eq!(
            ok.kind,
            InstructionKind::Invest {
                fund: 2,
                cash_pence: 5_000
            }
        );
        let f = |s: &str| Some(s.to_string());
        assert_eq!(field_of("[1]"), (400, None));
        assert_eq!(field_of("{"), (400, None));
        assert_eq!(field_of(""), (400, None));
        assert_eq!(field_of(r#"{"member_id": "M-1"}"#), (422, f("kind")));
        assert_eq!(
            field_of(r#"{"member_id": "M-1", "kind": "contribute", "amount": 100}"#),
            (422, f("amount"))
        );
        assert_eq!(
            field_of(r#"{"member_id": "M-1", "kind": "contribute", "amount": "1.001"}"#),
            (422, f("amount"))
        );
        assert_eq!(
            field_of(r#"{"member_id": "M-1", "kind": "contribute", "ammount": "1"}"#),
            (422, f("ammount"))
        );
        assert_eq!(
            field_of(r#"{"member_id": "M-1", "kind": "sell", "fund": "XX", "units": "1"}"#),
            (422, f("fund"))
        );
        let long = "M".repeat(36);
        let body = format!(r#"{{"member_id": "{long}", "kind": "contribute", "amount": "1"}}"#);
        assert_eq!(field_of(&body), (422, f("member_id")));
    }

    #[test]
    fn registrations_take_the_model_profiles() {
        let r = registration(br#"{"member_id": "M-1", "risk_profile": "balanced"}"#).expect("ok");
        assert_eq!(r.profile, 1);
        let e = registration(br#"{"member_id": "M-1", "risk_profile": "yolo"}"#).err();
        assert_eq!(e.and_then(|p| p.field).as_deref(), Some("risk_profile"));
    }
}
