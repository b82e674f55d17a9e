//! The day's jobs, run by operations through `POST /v1/jobs/{job}` with a business date, and
//! the simulated custodian they work with (`acme_sim::custodian::Custodian`, for demos and
//! tests: it fills every trade whole at the configured fund price and settles on time).
//!
//! - `cut-off`: tells aggregation the cut-off of the date has passed (it places one trade per
//!   fund with the custodian). The message id is derived from the date, so running it twice
//!   is one cut-off.
//! - `valuation`: the custodian prices the date's trades and its confirmations go to pricing.
//!   The custodian answers each trade once; a second run finds nothing new.
//! - `settlement`: the custodian settles the trades due on the date and tells settlement.
//!   Each trade settles once.
//!
//! Each job answers only once every message it sent was acknowledged by its host (durable).
//! The custodian's own books are in memory: after a restart it has forgotten the trades placed
//! before. With a file-drop custodian ([`crate::filedrop`]) the answers come from its inbox
//! instead, so valuation and settlement are refused (409) and only the cut-off runs here.

use crate::http::App;
use crate::problem::Problem;
use acme_processes::calendar::{Date, Schedule, Ts};
use acme_processes::messages::{msg_id, Confirmation, Message, MsgKind, TradeId};
use acme_processes::money::Price;
use acme_processes::process::{Envelope, Service};
use acme_sim::calendar::WorldCalendar;
use acme_sim::custodian::{Behaviour, Custodian, Outcome, PricedTrade};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The simulated custodian's seed: its fills are drawn from it (all whole here).
const CUSTODIAN_SEED: u64 = 13;

pub struct Desk {
    custodian: Mutex<Custodian>,
    /// The file-drop custodian, when configured: then it, not the simulated one, takes what
    /// the platform sends the custodian.
    pub file_drop: Option<Arc<crate::filedrop::FileDrop>>,
    /// Each job's last success (the clock's reading), for `/metrics`.
    last_success: Mutex<BTreeMap<&'static str, Ts>>,
}

/// The jobs there are.
pub const JOBS: [&str; 3] = ["cut-off", "valuation", "settlement"];

impl Default for Desk {
    fn default() -> Desk {
        let plain = Behaviour {
            reject_ppm: 0,
            partial_ppm: 0,
            amend_ppm: 0,
            late_settlement_ppm: 0,
        };
        let lag = Schedule::default().settlement_lag_days;
        Desk {
            custodian: Mutex::new(Custodian::new(
                CUSTODIAN_SEED,
                plain,
                lag,
                // The simulated custodian's own England and Wales calendar, by rule.
                WorldCalendar::england_and_wales(2026, 2040),
            )),
            last_success: Mutex::new(BTreeMap::new()),
            file_drop: None,
        }
    }
}

/// A message from the custodian (simulated or file drop) to the platform's host `to`.
pub(crate) fn custodian_says(to: Service, id: u128, body: Message) -> Envelope {
    Envelope {
        id,
        from: Service::Custodian,
        to,
        seq: 0,
        body,
    }
}

fn confirmation(c: Confirmation) -> Envelope {
    let id = msg_id(MsgKind::TradePriced, c.trade_id, u64::from(c.revision));
    custodian_says(Service::Pricing, id, Message::TradePriced(c))
}

fn rejection(trade_id: TradeId) -> Envelope {
    let id = msg_id(MsgKind::TradeRejected, trade_id, 0);
    custodian_says(Service::Pricing, id, Message::TradeRejected { trade_id })
}

fn settlement(p: &PricedTrade) -> Envelope {
    let body = Message::TradeSettled {
        trade_id: p.trade.id,
        net_units: p.net_units(),
        net_cash: p.net_cash(),
    };
    custodian_says(
        Service::Settlement,
        msg_id(MsgKind::TradeSettled, p.trade.id, 0),
        body,
    )
}

impl Desk {
    /// A desk whose custodian is the file drop `fd`.
    pub fn with_file_drop(fd: crate::filedrop::FileDrop) -> Desk {
        Desk {
            file_drop: Some(Arc::new(fd)),
            ..Desk::default()
        }
    }

    /// Whether `job` is run here: with a file drop, the custodian's answers come from its inbox.
    pub fn runs(&self, job: &str) -> bool {
        self.file_drop.is_none() || job == "cut-off"
    }

    /// Each job's last success so far.
    pub fn last_success(&self) -> BTreeMap<&'static str, Ts> {
        self.last_success
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Custodian>, Problem> {
        self.custodian
            .lock()
            .map_err(|_| Problem::unavailable("the custodian's books are unusable", 60))
    }
}

/// Runs `job` for `date`; the answer says how many trades it touched.
pub async fn run(app: &App, job: &str, date: Date) -> Result<Value, Problem> {
    let price_of = |fund| {
        app.settings
            .funds
            .iter()
            .find(|f| f.id == fund)
            .map_or(Price(1_000_000), |f| f.price)
    };
    if JOBS.contains(&job) && !app.desk.runs(job) {
        return Err(Problem::conflict(
            "file-drop-custodian",
            "the custodian is a file drop: its confirmations and settlements come from its \
             inbox, not from this job",
        ));
    }
    let sends: Vec<Envelope> = match job {
        "cut-off" => vec![Envelope {
            id: msg_id(MsgKind::CutOff, u64::from(date.0), 0),
            from: Service::Scheduler,
            to: Service::Aggregation,
            seq: 0,
            body: Message::CutOff { date },
        }],
        "valuation" => {
            let mut custodian = app.desk.lock()?;
            let answers = custodian.value(date, price_of);
            let mut out = Vec::new();
            for (trade, outcome) in answers {
                match outcome {
                    Outcome::Rejected => out.push(rejection(trade.id)),
                    Outcome::Filled { .. } => {
                        if let Some(p) = custodian.priced_trades().find(|p| p.trade.id == trade.id)
                        {
                            out.push(confirmation(p.confirmation));
                        }
                    }
                }
            }
            out
        }
        "settlement" => app
            .desk
            .lock()?
            .settle_due(date)
            .iter()
            .map(settlement)
            .collect(),
        _ => {
            return Err(Problem::not_found(
                "jobs are cut-off, valuation and settlement",
            ))
        }
    };
    let trades = if job == "cut-off" {
        None
    } else {
        Some(sends.len())
    };
    for envelope in sends {
        app.platform.deliver(envelope).await?;
    }
    if let (Some(name), Ok(mut last)) = (
        JOBS.iter().find(|j| **j == job),
        app.desk.last_success.lock(),
    ) {
        last.insert(name, app.platform.now());
    }
    Ok(json!({"job": job, "date": date.to_string(), "trades": trades}))
}

/// What the platform sends the custodian: trades to place and chases. Each is acknowledged
/// at once (the simulated custodian has taken it); a chase's answer is sent again until its
/// host has it.
pub fn on_message(app: &Arc<App>, envelope: Envelope) {
    if let Some(fd) = &app.desk.file_drop {
        crate::filedrop::on_message(app, fd.clone(), envelope);
        return;
    }
    let answer = {
        let Ok(mut custodian) = app.desk.custodian.lock() else {
            return;
        };
        match &envelope.body {
            Message::Ack { .. } => return,
            Message::PlaceTrade(trade) => {
                custodian.place(*trade, false);
                None
            }
            Message::ChaseConfirmation { trade_id } => match custodian.answer(*trade_id) {
                Some(Some(c)) => Some(confirmation(c)),
                Some(None) => Some(rejection(*trade_id)),
                None => None,
            },
            Message::ChaseSettlement { trade_id } => {
                custodian.settled_trade(*trade_id).map(|p| settlement(&p))
            }
            _ => None,
        }
    };
    app.platform.acknowledge(&envelope, Service::Custodian);
    if let Some(reply) = answer {
        let app = app.clone();
        tokio::spawn(async move {
            let _ = app.platform.deliver(reply).await;
        });
    }
}

/// The date of a job's body, `{"date": "YYYY-MM-DD"}`.
pub fn date_of(body: &[u8]) -> Result<Date, Problem> {
    let map = crate::requests::object(body)?;
    if let Some(k) = map.keys().find(|k| k.as_str() != "date") {
        let k: String = k.chars().take(64).collect();
        return Err(Problem::invalid(&k, "unknown field; the field is date"));
    }
    match map.get("date") {
        Some(Value::String(s)) => s
            .parse::<Date>()
            .map_err(|e| Problem::invalid("date", e.chars().take(120).collect::<String>())),
        Some(_) => Err(Problem::invalid("date", "must be a string YYYY-MM-DD")),
        None => Err(Problem::invalid("date", "is required")),
    }
}
