//! The routes. Each handler authenticates, checks the role, reads the body within the size
//! limit, and answers; every refusal is a [`Problem`]. An instruction is answered 202 only
//! after the API's journal holds its key and intake has acknowledged it (so it is in intake's
//! journal); the answer itself is journaled before it is sent, and replayed from there.

use crate::auth::{Caller, Role};
use crate::config::Settings;
use crate::journal::Journal;
use crate::platform::Platform;
use crate::problem::Problem;
use crate::store::{Answer, Record, Store};
use crate::{idempotency, requests, views};
use acme_processes::messages::{Instruction, InstructionId, InstructionKind, Origin};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Semaphore;

/// Largest request body taken.
pub const BODY_MAX: usize = 16 * 1024;
/// Instructions and registrations waiting for intake at once before new ones get 429 (by
/// default; the config's `in_flight_max`).
pub const IN_FLIGHT_MAX: usize = 8_192;

pub struct App {
    pub settings: Settings,
    pub store: Arc<Mutex<Store>>,
    pub journal: Journal,
    pub platform: Platform,
    pub permits: Semaphore,
    pub desk: crate::jobs::Desk,
    /// Set once what a crash cut short has been finished (see `resume` in lib.rs).
    pub ready: std::sync::atomic::AtomicBool,
}

type Shared = State<Arc<App>>;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { json(StatusCode::OK, crate::openapi::description()) }),
        )
        .route("/v1/funds", get(funds))
        .route("/v1/members", post(register))
        .route("/v1/members/{id}", get(member))
        .route("/v1/members/{id}/instructions", get(member_instructions))
        .route("/v1/instructions", post(submit))
        .route("/v1/instructions/{id}", get(instruction))
        .route("/v1/jobs/{job}", post(job))
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .with_state(app)
}

impl App {
    fn store(&self) -> Result<MutexGuard<'_, Store>, Problem> {
        self.store
            .lock()
            .map_err(|_| Problem::unavailable("the API's state is unusable", 60))
    }

    fn caller(&self, headers: &HeaderMap) -> Result<Caller, Problem> {
        let value = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
        self.settings.tokens.authenticate(value)
    }
}

const READERS: [Role; 3] = [Role::Channel, Role::Operations, Role::Auditor];

pub(crate) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Problem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_MAX as u64) {
        return Err(Problem::too_large(BODY_MAX));
    }
    axum::body::to_bytes(body, BODY_MAX)
        .await
        .map_err(|_| Problem::too_large(BODY_MAX))
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    let mut r = (status, value.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn answer_response(a: &Answer, replayed: bool) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::ACCEPTED);
    let mut r = (status, a.body.clone()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&a.location) {
        h.insert(header::LOCATION, v);
    }
    if replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

fn unwrap_response(r: Result<Response, Problem>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// 200 once the keys a crash left unanswered are finished; 503 before.
async fn readyz(State(app): Shared) -> Response {
    if app.ready.load(std::sync::atomic::Ordering::SeqCst) {
        "ready\n".into_response()
    } else {
        Problem::unavailable("finishing what the last run left unanswered", 1).into_response()
    }
}

/// Prometheus text: the API journal's group commits (how many requests share a sync, and what
/// a sync costs) and the requests waiting for intake. Nothing in it is secret, so it needs no
/// token (a scraper has none).
async fn metrics(State(app): Shared) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let j = &app.journal.stats;
    let waiting = app.settings.in_flight_max - app.permits.available_permits();
    let text = format!(
        "# TYPE acme_api_journal_syncs_total counter\nacme_api_journal_syncs_total {}\n\
         # TYPE acme_api_journal_records_total counter\nacme_api_journal_records_total {}\n\
         # TYPE acme_api_journal_sync_seconds_total counter\nacme_api_journal_sync_seconds_total {}\n\
         # TYPE acme_api_journal_batch_max gauge\nacme_api_journal_batch_max {}\n\
         # TYPE acme_api_waiting_for_intake gauge\nacme_api_waiting_for_intake {waiting}\n",
        j.syncs.load(Relaxed),
        j.records.load(Relaxed),
        crate::decimal::format(j.sync_micros.load(Relaxed), 6),
        j.batch_max.load(Relaxed),
    );
    let mut text = text;
    host_metrics(&app, &mut text);
    text.push_str("# TYPE acme_day_job_last_success_seconds gauge\n");
    for (job, at) in app.desk.last_success() {
        let seconds = crate::decimal::format(at / 1_000, 6);
        text.push_str(&format!(
            "acme_day_job_last_success_seconds{{job=\"{job}\"}} {seconds}\n"
        ));
    }
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

type HostFigure = fn(&acme_runtime::HostStatus) -> u64;

/// Each platform host: up, snapshots taken, dead letters held, effects not yet complete, and its
/// group commits (one sync for what waited in its mailbox: the inputs a sync took is the figure
/// that bounds intake's throughput).
fn host_metrics(app: &App, text: &mut String) {
    let hosts = app.platform.hosts();
    let families: [(&str, &str, HostFigure); 8] = [
        ("acme_host_up", "gauge", |h| u64::from(h.up)),
        ("acme_host_snapshots_total", "counter", |h| {
            h.stats.snapshots
        }),
        ("acme_host_dead_letters", "gauge", |h| h.dead_letters as u64),
        ("acme_host_outbox", "gauge", |h| h.outbox as u64),
        ("acme_host_dedupe_ids", "gauge", |h| h.dedupe_ids as u64),
        ("acme_host_group_commits_total", "counter", |h| {
            h.stats.group_commits
        }),
        ("acme_host_grouped_inputs_total", "counter", |h| {
            h.stats.grouped_inputs
        }),
        ("acme_host_group_max", "gauge", |h| h.stats.group_max),
    ];
    for (name, kind, value) in families {
        text.push_str(&format!("# TYPE {name} {kind}\n"));
        for (service, status) in &hosts {
            let host = format!("{service:?}").to_lowercase();
            text.push_str(&format!("{name}{{host=\"{host}\"}} {}\n", value(status)));
        }
    }
}

async fn funds(State(app): Shared, headers: HeaderMap) -> Response {
    unwrap_response((|| {
        app.caller(&headers)?.require(&READERS, "reading funds")?;
        Ok(json(StatusCode::OK, views::funds(&app.settings.funds)))
    })())
}

async fn register(State(app): Shared, headers: HeaderMap, body: Body) -> Response {
    unwrap_response(register_inner(&app, &headers, body).await)
}

async fn register_inner(app: &App, headers: &HeaderMap, body: Body) -> Result<Response, Problem> {
    app.caller(headers)?
        .require(&[Role::Channel, Role::Operations], "registering members")?;
    let reg = requests::registration(&read_body(headers, body).await?)?;
    let _permit = app
        .permits
        .try_acquire()
        .map_err(|_| Problem::overloaded(1))?;
    let now = app.platform.now();
    let (number, seq, created) = app
        .keep_numbered(|store, seq| match store.member(&reg.member_id) {
            Some(m) if m.profile != reg.profile => Err(Problem::conflict(
                "member-exists",
                "this member is registered with another risk profile",
            )
            .with_field("risk_profile")),
            Some(m) if !m.durable => Err(Problem::conflict(
                "in-flight",
                "this member's registration is still being recorded",
            )),
            Some(m) => Ok((None, (m.number, m.channel_seq, false))),
            None => {
                let number = store.next_member_number();
                let record = member_record(&reg, number, now, seq);
                // Seen at once (not durable yet), so a second registration waits for this one.
                store.apply(record.clone(), false);
                Ok((Some(record), (number, seq, true)))
            }
        })
        .await?;
    // Sent again for an existing member too: intake takes an onboarding once, and this answers
    // only once intake has it.
    onboard(app, number, reg.profile, seq).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut r = json(status, views::registration(&reg.member_id, reg.profile));
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/members/{}", reg.member_id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

fn member_record(reg: &requests::Registration, number: u64, at: u64, seq: u64) -> Record {
    Record::Member {
        name: reg.member_id.clone(),
        number,
        profile: reg.profile,
        at,
        seq,
    }
}

/// Sends a member's onboarding to intake until it is acknowledged, and notes that it was.
pub(crate) async fn onboard(app: &App, number: u64, profile: u8, seq: u64) -> Result<(), Problem> {
    app.platform
        .submit(onboarding(number, profile), seq)
        .await?;
    app.keep_later(Record::Onboarded { number })
}

fn onboarding(number: u64, profile: u8) -> Instruction {
    Instruction {
        id: acme_processes::messages::instruction_id(number, 0),
        member: number,
        kind: InstructionKind::Onboard { profile },
        origin: Origin::Member,
    }
}

async fn member(
    State(app): Shared,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    unwrap_response(member_inner(&app, &headers, id).await)
}

fn path_id(
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, Problem> {
    id.map(|Path(s)| s)
        .map_err(|_| Problem::malformed("the id in the path is not valid"))
}

async fn member_inner(
    app: &App,
    headers: &HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, Problem> {
    app.caller(headers)?.require(&READERS, "reading members")?;
    let name = path_id(id)?;
    let m = app
        .store()?
        .member(&name)
        .cloned()
        .ok_or_else(|| Problem::not_found("no member with this id"))?;
    let ids = views::pot_accounts(m.number, &app.settings.funds);
    let accounts = app.platform.accounts(ids).await?;
    Ok(json(
        StatusCode::OK,
        views::member(&m, &accounts, &app.settings.funds),
    ))
}

async fn member_instructions(
    State(app): Shared,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    unwrap_response((|| {
        app.caller(&headers)?
            .require(&READERS, "reading instructions")?;
        let name = path_id(id)?;
        let store = app.store()?;
        let m = store
            .member(&name)
            .ok_or_else(|| Problem::not_found("no member with this id"))?;
        let list: Vec<serde_json::Value> = m
            .instructions
            .iter()
            .filter_map(|id| store.instruction(*id))
            .map(|i| views::instruction(i, &app.settings.funds))
            .collect();
        Ok(json(
            StatusCode::OK,
            serde_json::json!({ "instructions": list }),
        ))
    })())
}

async fn instruction(
    State(app): Shared,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    unwrap_response((|| {
        app.caller(&headers)?
            .require(&READERS, "reading instructions")?;
        let text = path_id(id)?;
        let id: InstructionId = text
            .parse()
            .map_err(|_| Problem::not_found("no instruction with this id"))?;
        let store = app.store()?;
        let i = store
            .instruction(id)
            .ok_or_else(|| Problem::not_found("no instruction with this id"))?;
        Ok(json(
            StatusCode::OK,
            views::instruction(i, &app.settings.funds),
        ))
    })())
}

async fn job(
    State(app): Shared,
    headers: HeaderMap,
    job: Result<Path<String>, axum::extract::rejection::PathRejection>,
    body: Body,
) -> Response {
    let run = async {
        app.caller(&headers)?
            .require(&[Role::Operations], "running the day's jobs")?;
        let job = path_id(job)?;
        let date = crate::jobs::date_of(&read_body(&headers, body).await?)?;
        let done = crate::jobs::run(&app, &job, date).await?;
        Ok(json(StatusCode::OK, done))
    };
    unwrap_response(run.await)
}

async fn submit(State(app): Shared, headers: HeaderMap, body: Body) -> Response {
    unwrap_response(idempotency::submit(&app, &headers, body).await)
}

impl App {
    /// Journals a record that `make` builds, with the next number on the API's channel to
    /// intake, and applies it once durable. The number is taken and the record queued under
    /// the store's lock, so the journal holds the numbers in order (see
    /// [`Store::take_channel_seq`]); `make` may refuse or find nothing new to keep (`None`),
    /// and then no number is used.
    pub(crate) async fn keep_numbered<T>(
        &self,
        make: impl FnOnce(&mut Store, u64) -> Result<(Option<Record>, T), Problem>,
    ) -> Result<T, Problem> {
        let (record, value, synced) = {
            let mut store = self.store()?;
            let seq = store.take_channel_seq();
            let made = make(&mut store, seq);
            let Ok((Some(record), value)) = made else {
                store.give_back_channel_seq(seq); // refused, or nothing new to keep
                return made.map(|(_, value)| value);
            };
            let synced = self
                .journal
                .queue(&record)
                .map_err(|e| Problem::unavailable(e, crate::platform::RETRY_AFTER_S))?;
            (record, value, synced)
        };
        synced.await.map_err(|_| {
            Problem::unavailable(
                "the journal writer has stopped",
                crate::platform::RETRY_AFTER_S,
            )
        })?;
        self.store()?.apply(record, true);
        Ok(value)
    }

    /// Journals a record without waiting for its sync, and applies it at once: only for a
    /// record a restart rebuilds if it was lost (a key's answer, see `idempotency::finish`).
    pub(crate) fn keep_later(&self, record: Record) -> Result<(), Problem> {
        self.journal
            .append_later(&record)
            .map_err(|e| Problem::unavailable(e, crate::platform::RETRY_AFTER_S))?;
        self.store()?.apply(record, true);
        Ok(())
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Store>, Problem> {
        self.store()
    }

    pub(crate) fn who(&self, headers: &HeaderMap) -> Result<Caller, Problem> {
        self.caller(headers)
    }
}
