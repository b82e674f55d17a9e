//! `POST /v1/instructions` under an `Idempotency-Key` (the IETF httpapi draft): the key is
//! required (400 without it); a key already answered for the same request (method, path and a
//! SHA-256 of the body) replays the stored answer with `Idempotent-Replayed: true`; the same
//! key with another request is 422; a second request while the first is still being handled
//! is 409. Keys are scoped to the caller's token and kept for good in the API's journal.
//!
//! Order of work for a new key: the key, the request's fingerprint and the instruction id are
//! journaled (synced) first, then the instruction goes to intake, then intake's acknowledgement
//! (its own journal record is durable), then the answer is journaled and only then sent. A
//! crash anywhere leaves either nothing or a begun key, which the next start finishes (sending
//! the same instruction id again, which intake takes at most once).

use crate::auth::{hex, sha256, Role};
use crate::http::{answer_response as replay, read_body as body_of, App};
use crate::problem::Problem;
use crate::store::{Answer, KeyCheck, Record};
use crate::{requests, views};
use acme_ledger::chart;
use acme_processes::calendar::{Date, Schedule, Ts};
use acme_processes::messages::{
    instruction_member, Instruction, InstructionId, InstructionKind, Origin,
};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// Longest key taken (the draft leaves it to the server).
pub const KEY_MAX: usize = 255;
pub const PATH: &str = "/v1/instructions";

/// The key: a structured-field string (`"..."`), or the same characters bare for clients that
/// do not quote; printable ASCII only.
fn key(headers: &HeaderMap) -> Result<String, Problem> {
    let raw = headers
        .get("idempotency-key")
        .ok_or_else(|| Problem::malformed("the Idempotency-Key header is required"))?
        .as_bytes();
    let inner = match raw {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    let printable = inner
        .iter()
        .all(|b| (0x20..0x7f).contains(b) && *b != b'"' && *b != b'\\');
    if inner.is_empty() || inner.len() > KEY_MAX || !printable {
        return Err(Problem::malformed(format!(
            "the Idempotency-Key must be 1 to {KEY_MAX} printable ASCII characters"
        )));
    }
    Ok(String::from_utf8_lossy(inner).into_owned())
}

pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut bytes = format!("{method}\n{path}\n").into_bytes();
    bytes.extend_from_slice(body);
    hex(&sha256(&bytes))
}

/// The dealing date of an order taken at `now`, by the published cut-off (London time). Intake
/// stamps the date when it receives the order, a moment later: one taken at the very edge of
/// the cut-off may deal on the next business day.
pub fn dealing_date(kind: &InstructionKind, now: Ts) -> Option<Date> {
    if matches!(
        kind,
        InstructionKind::Contribute { .. } | InstructionKind::Onboard { .. }
    ) {
        return None;
    }
    Some(Schedule::default().dealing_date(now))
}

/// Releases the key's in-flight hold however the request ends.
struct Hold<'a> {
    app: &'a App,
    caller: String,
    key: String,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.app.lock() {
            s.release_key(&self.caller, &self.key);
        }
    }
}

pub async fn submit(app: &App, headers: &HeaderMap, body: Body) -> Result<Response, Problem> {
    let caller = app.who(headers)?;
    caller.require(&[Role::Channel], "submitting instructions")?;
    let key = key(headers)?;
    let body = body_of(headers, body).await?;
    let fp = fingerprint("POST", PATH, &body);
    let _permit = app
        .permits
        .try_acquire()
        .map_err(|_| Problem::overloaded(1))?;
    let check = app.lock()?.check_key(&caller.id, &key, &fp);
    let resume = match check {
        KeyCheck::Replay(a) => return Ok(replay(&a, true)),
        KeyCheck::Mismatch => {
            return Err(Problem::unprocessable(
                "idempotency-key-reused",
                "this Idempotency-Key was used for a different request",
            ))
        }
        KeyCheck::InFlight => {
            return Err(Problem::conflict(
                "in-flight",
                "a request with this Idempotency-Key is still being handled",
            ))
        }
        KeyCheck::Resume(id) => Some(id),
        KeyCheck::New => None,
    };
    let hold = Hold {
        app,
        caller: caller.id.clone(),
        key: key.clone(),
    };
    let id = match resume {
        Some(id) => id,
        None => begin(app, &hold, &body, fp).await?,
    };
    let answer = finish(app, &hold.caller, &hold.key, id).await?;
    drop(hold);
    Ok(replay(&answer, false))
}

/// Checks the request, takes an instruction id and journals the key's beginning.
async fn begin(
    app: &App,
    hold: &Hold<'_>,
    body: &[u8],
    fp: String,
) -> Result<InstructionId, Problem> {
    let req = requests::instruction(body, &app.settings.funds)?;
    let number = match app.lock()?.member(&req.member_id) {
        Some(m) if m.durable => m.number,
        _ => return Err(Problem::invalid("member_id", "no member with this id")),
    };
    precheck(app, &req.member_id, number, &req.kind).await?;
    let now = app.platform.now();
    let dealing_date = dealing_date(&req.kind, now);
    let id = app
        .keep_numbered(|store, seq| {
            let id = store
                .take_instruction_id(&req.member_id)
                .map_err(|why| Problem::invalid("member_id", why))?;
            let record = Record::Begin {
                caller: hold.caller.clone(),
                key: hold.key.clone(),
                fingerprint: fp,
                instruction: id,
                member: req.member_id,
                dealing_date,
                kind: req.kind,
                at: now,
                seq,
            };
            Ok((Some(record), id))
        })
        .await?;
    Ok(id)
}

/// Sends the begun instruction to intake, waits for it to be durable there, and journals the
/// answer.
pub async fn finish(
    app: &App,
    caller: &str,
    key: &str,
    id: InstructionId,
) -> Result<Answer, Problem> {
    let (kind, view, seq) = {
        let store = app.lock()?;
        let i = store
            .instruction(id)
            .ok_or_else(|| Problem::unavailable("the instruction's record is missing", 60))?;
        (
            i.kind.clone(),
            views::instruction(i, &app.settings.funds),
            i.channel_seq,
        )
    };
    let instruction = Instruction {
        id,
        member: instruction_member(id),
        kind,
        origin: Origin::Member,
    };
    app.platform.submit(instruction, seq).await?;
    let answer = Answer {
        status: StatusCode::ACCEPTED.as_u16(),
        location: format!("{PATH}/{id}"),
        body: view.to_string(),
    };
    // The answer is not waited for: what it says (the instruction id, its place) is durable
    // already, in the key's beginning and in intake. Lost to a crash, the key is found begun
    // and unanswered at the next start, finished again (intake takes the copy as a
    // duplicate) and answered the same way; a sync less on every request's path.
    app.keep_later(Record::Done {
        caller: caller.to_string(),
        key: key.to_string(),
        answer: answer.clone(),
    })?;
    Ok(answer)
}

/// Refuses an invest or a sale the pot plainly cannot pay for. Only when none of the member's
/// instructions is still open: one may be bringing the cash or units in, and intake, which
/// takes them in order, has the last word (it rejects what the pot cannot cover).
async fn precheck(
    app: &App,
    member: &str,
    number: u64,
    kind: &InstructionKind,
) -> Result<(), Problem> {
    let (account, need, field, what) = match *kind {
        InstructionKind::Invest { cash_pence, .. } => {
            (chart::member_cash(number), cash_pence, "amount", "cash")
        }
        InstructionKind::Sell { fund, units_micro } => (
            chart::member_units(number, fund),
            units_micro,
            "units",
            "units",
        ),
        InstructionKind::Switch {
            from_fund,
            units_micro,
            ..
        } => (
            chart::member_units(number, from_fund),
            units_micro,
            "units",
            "units",
        ),
        _ => return Ok(()),
    };
    let open = {
        let store = app.lock()?;
        let m = store
            .member(member)
            .map(|m| m.instructions.clone())
            .unwrap_or_default();
        m.iter().any(|id| {
            store
                .instruction(*id)
                .is_some_and(|i| !i.history.last().is_some_and(|h| h.0.is_terminal()))
        })
    };
    if open {
        return Ok(());
    }
    let accounts = app.platform.accounts(vec![account]).await?;
    let available = accounts.first().map_or(0, |a| {
        a.credits_posted
            .saturating_sub(a.debits_posted)
            .saturating_sub(a.debits_pending)
    });
    if available < u128::from(need) {
        let places = if what == "cash" { 2 } else { 6 };
        let shown = crate::decimal::format_signed(available as i128, places);
        return Err(Problem::invalid(
            field,
            format!("insufficient {what}: the pot has {shown} available"),
        ));
    }
    Ok(())
}
