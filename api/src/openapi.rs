//! The OpenAPI 3 description served at `/openapi.json`, built from the same constants the
//! handlers use (body limit, key length, profiles, kinds, fields), and kept as a snapshot in
//! `api/openapi.json` so that a change to the API shows up in review (the test fails until the
//! snapshot is rewritten with `UPDATE_SNAPSHOTS=1`).

use crate::http::{BODY_MAX, IN_FLIGHT_MAX};
use crate::idempotency::KEY_MAX;
use crate::requests::{profile_names, MEMBER_ID_MAX};
use serde_json::{json, Value};

const IDEMPOTENCY_POLICY: &str = "Required on POST /v1/instructions (IETF httpapi \
idempotency-key draft). A missing key is 400. Keys are scoped to the caller's token and kept for \
good. The fingerprint is the method, the path and the SHA-256 of the body bytes. The same key \
with the same fingerprint replays the stored answer with `Idempotent-Replayed: true`; with \
another fingerprint it is 422; while the first request with the key is still being handled, \
409. The 202 is sent only once the instruction is durable (the API's journal synced, intake's \
journal record synced); a request that failed without an answer (503, a crash) may be sent \
again with the same key and finishes the same instruction.";

fn problem(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn ok(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {
        "schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn decimal(places: u32) -> Value {
    json!({"type": "string", "pattern": format!("^[0-9]+(\\.[0-9]{{1,{places}}})?$")})
}

fn schemas() -> Value {
    let isin = json!({"type": "string", "description": "an ISIN of GET /v1/funds"});
    let member_id = json!({"type": "string", "maxLength": MEMBER_ID_MAX,
        "pattern": "^[A-Za-z0-9._-]+$"});
    let kind = |name: &str, fields: Value, required: &[&str]| {
        let mut props = json!({"member_id": member_id, "kind": {"type": "string", "enum": [name]}});
        for (k, v) in fields.as_object().into_iter().flatten() {
            props[k] = v.clone();
        }
        let mut req = vec!["member_id", "kind"];
        req.extend_from_slice(required);
        json!({"type": "object", "additionalProperties": false, "properties": props,
            "required": req})
    };
    json!({
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"],
            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "field": {"type": "string"}}},
        "Registration": {"type": "object", "additionalProperties": false,
            "required": ["member_id", "risk_profile"],
            "properties": {"member_id": member_id,
                "risk_profile": {"type": "string", "enum": profile_names()}}},
        "InstructionRequest": {"oneOf": [
            kind("contribute", json!({"amount": decimal(2)}), &["amount"]),
            kind("invest", json!({"fund": isin, "amount": decimal(2)}), &["fund", "amount"]),
            kind("sell", json!({"fund": isin, "units": decimal(6)}), &["fund", "units"]),
            kind("switch", json!({"from_fund": isin, "to_fund": isin, "units": decimal(6)}),
                &["from_fund", "to_fund", "units"]),
        ]},
        "Instruction": {"type": "object", "properties": {
            "id": {"type": "string"}, "member_id": {"type": "string"},
            "kind": {"type": "string"},
            "state": {"type": "string", "enum": ["received", "reserved", "placed", "priced",
                "settled", "completed", "rejected"]},
            "dealing_date": {"type": "string", "format": "date", "nullable": true},
            "history": {"type": "array", "items": {"type": "object", "properties": {
                "state": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}}}}},
        "Instructions": {"type": "object", "properties": {"instructions": {"type": "array",
            "items": {"$ref": "#/components/schemas/Instruction"}}}},
        "Pot": {"type": "object", "properties": {
            "member_id": {"type": "string"}, "risk_profile": {"type": "string"},
            "cash": {"type": "object", "properties": {"available": decimal(2),
                "reserved": decimal(2), "incoming": decimal(2)}},
            "funds": {"type": "array", "items": {"type": "object", "properties": {
                "isin": isin, "units_settled": decimal(6), "units_pending": decimal(6),
                "units_reserved": decimal(6), "value": decimal(2)}}},
            "value": decimal(2)}},
        "Funds": {"type": "object", "properties": {"funds": {"type": "array", "items": {
            "type": "object", "properties": {"isin": isin, "name": {"type": "string"},
                "last_price": decimal(6)}}}}},
    })
}

fn paths() -> Value {
    let auth = [
        ("401", "no or unknown bearer token"),
        ("403", "the token's role may not"),
    ];
    let with_auth = |mut responses: Value| {
        for (code, why) in auth {
            responses[code] = problem(why);
        }
        responses
    };
    let id_param = |name: &str| {
        json!([{"name": name, "in": "path", "required": true,
        "schema": {"type": "string"}}])
    };
    let body = |schema: &str| {
        json!({"required": true, "content": {"application/json": {
        "schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
    };
    let key = json!({"name": "Idempotency-Key", "in": "header", "required": true,
        "description": IDEMPOTENCY_POLICY,
        "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX}});
    json!({
        "/v1/funds": {"get": {"summary": "The funds (channel, operations, auditor)",
            "responses": with_auth(json!({"200": ok("the funds", "Funds")}))}},
        "/v1/members": {"post": {"summary": "Register a member and open their pot (channel, operations)",
            "requestBody": body("Registration"),
            "responses": with_auth(json!({"201": ok("registered", "Registration"),
                "200": ok("already registered so", "Registration"),
                "400": problem("not a JSON object"), "409": problem("registered with another profile"),
                "413": problem(&format!("body over {BODY_MAX} bytes")),
                "422": problem("a field is invalid"),
                "429": problem(&format!("over {IN_FLIGHT_MAX} requests waiting; see Retry-After")),
                "503": problem("the platform did not confirm in time; see Retry-After")}))}},
        "/v1/members/{id}": {"get": {"summary": "A member's pot, from the ledger",
            "parameters": id_param("id"),
            "responses": with_auth(json!({"200": ok("the pot", "Pot"), "404": problem("no such member")}))}},
        "/v1/members/{id}/instructions": {"get": {"summary": "A member's instructions",
            "parameters": id_param("id"),
            "responses": with_auth(json!({"200": ok("the instructions", "Instructions"),
                "404": problem("no such member")}))}},
        "/v1/instructions": {"post": {"summary": "Submit an instruction (channel)",
            "description": IDEMPOTENCY_POLICY, "parameters": [key],
            "requestBody": body("InstructionRequest"),
            "responses": with_auth(json!({
                "202": ok("durable; Location names it", "Instruction"),
                "400": problem("no Idempotency-Key, or not a JSON object"),
                "409": problem("the first request with this key is in flight"),
                "413": problem(&format!("body over {BODY_MAX} bytes")),
                "422": problem("a field is invalid (unknown fund or member, a non-positive or \
                    over-precise amount, insufficient cash or units), or the key was used for \
                    another request"),
                "429": problem(&format!("over {IN_FLIGHT_MAX} requests waiting; see Retry-After")),
                "503": problem("intake did not confirm in time; send again with the same key")}))}},
        "/v1/instructions/{id}": {"get": {"summary": "An instruction's state and history",
            "parameters": id_param("id"),
            "responses": with_auth(json!({"200": ok("the instruction", "Instruction"),
                "404": problem("no such instruction")}))}},
        "/v1/jobs/{job}": {"post": {"summary": "Run a day's job for a business date (operations): \
            cut-off, valuation or settlement; idempotent per job and date",
            "parameters": [{"name": "job", "in": "path", "required": true,
                "schema": {"type": "string", "enum": ["cut-off", "valuation", "settlement"]}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["date"], "additionalProperties": false,
                "properties": {"date": {"type": "string", "format": "date"}}}}}},
            "responses": with_auth(json!({"200": {"description": "done; the trades it touched"},
                "404": problem("no such job"), "422": problem("not a date"),
                "409": problem("valuation or settlement with a file-drop custodian (its answers \
                    come from its inbox)"),
                "503": problem("the platform did not confirm in time; run it again")}))}},
        "/healthz": {"get": {"summary": "Alive", "security": [], "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "Ready: what the last run left unanswered is finished",
            "security": [], "responses": {"200": {"description": "ready"},
                "503": problem("not yet; see Retry-After")}}},
        "/metrics": {"get": {"summary": "Prometheus text", "security": [],
            "responses": {"200": {"description": "metrics"}}}},
        "/openapi.json": {"get": {"summary": "This description", "security": [],
            "responses": {"200": {"description": "OpenAPI 3"}}}},
    })
}

pub fn description() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "ACME trade intake", "version": env!("CARGO_PKG_VERSION"),
            "description": "Members' instructions into the ACME Master Trust platform. Amounts \
                are decimal strings (pence: 2 places, units: 6), never numbers. Errors are \
                application/problem+json (RFC 9457) with the offending `field`."},
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas()},
        "paths": paths(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_matches_its_snapshot() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let now = format!(
            "{}\n",
            serde_json::to_string_pretty(&description()).expect("serialises")
        );
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(path, &now).expect("snapshot written");
        }
        let kept = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            kept == now,
            "api/openapi.json differs from the API: review, then UPDATE_SNAPSHOTS=1 cargo test"
        );
        let paths = description()["paths"].as_object().map(|p| p.len());
        assert_eq!(paths, Some(11));
    }
}
