//! The API's side of the runtime: hands instructions to intake and waits for intake's
//! acknowledgement (sent only once intake's journal record is durable), reads pots from the
//! ledger, and takes what the platform sends to members (the outcomes intake reports), keeping
//! each in the API's journal before acknowledging it, so none is lost to a crash.

use crate::problem::Problem;
use crate::store::Record;
use acme_ledger::{Account, Ledger};
use acme_processes::messages::{msg_id, Instruction, Message, MsgKind};
use acme_processes::process::{Envelope, Service};
use acme_runtime::{Clock, Gateway, Undeliverable};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long to wait for intake's acknowledgement before sending again (a host that was down
/// or recovering did not take it).
const ACK_RESEND: Duration = Duration::from_millis(1_000);
/// How long a request waits for intake in all before it is answered 503.
const ACK_PATIENCE: Duration = Duration::from_secs(10);
/// What a 503 for an unresponsive platform asks the client to wait.
pub const RETRY_AFTER_S: u32 = 2;

pub struct Platform {
    gateway: Gateway,
    clock: Arc<dyn Clock>,
    /// A connection to the hosts' ledger for reads; taken away before the runtime stops.
    ledger: Arc<Mutex<Option<Box<dyn Ledger + Send>>>>,
}

fn stopped() -> Problem {
    Problem::unavailable("the platform is stopping", RETRY_AFTER_S)
}

impl Platform {
    pub fn new(gateway: Gateway, clock: Arc<dyn Clock>, ledger: Box<dyn Ledger + Send>) -> Self {
        Platform {
            gateway,
            clock,
            ledger: Arc::new(Mutex::new(Some(ledger))),
        }
    }

    /// What each platform host last published (for `/metrics`).
    pub fn hosts(&self) -> std::collections::BTreeMap<Service, acme_runtime::HostStatus> {
        self.gateway.status()
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Drops the ledger connection (the runtime's clean stop waits for every one to go).
    pub fn close_ledger(&self) {
        if let Ok(mut l) = self.ledger.lock() {
            l.take();
        }
    }

    /// Sends `instruction` to intake until intake acknowledges it: then it is durable. `seq` is
    /// its number on the API's channel to intake, kept in the API's journal with it (so a
    /// copy sent again carries the same number); 0 for one journaled before channels were
    /// numbered, which intake's host deduplicates by its id instead.
    pub async fn submit(&self, instruction: Instruction, seq: u64) -> Result<(), Problem> {
        self.deliver(Envelope {
            id: msg_id(MsgKind::Instruction, instruction.id, 0),
            from: Service::Members,
            to: Service::Intake,
            seq,
            body: Message::Instruction(instruction),
        })
        .await
    }

    /// Sends a message from outside to its host until the host acknowledges it (its journal
    /// record is durable).
    pub async fn deliver(&self, envelope: Envelope) -> Result<(), Problem> {
        let deadline = Instant::now() + ACK_PATIENCE;
        while Instant::now() < deadline {
            let ack = match self.gateway.send_acknowledged(envelope.clone()) {
                Ok(ack) => ack,
                Err(Undeliverable::Stopped(_)) => return Err(stopped()),
                Err(Undeliverable::NotHere(s)) => {
                    return Err(Problem::unavailable(format!("{s:?} does not run here"), 60))
                }
            };
            match tokio::time::timeout(ACK_RESEND, ack).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(_)) => return Err(stopped()),
                Err(_) => continue,
            }
        }
        Err(Problem::unavailable(
            "the platform did not confirm in time; send it again (with the same \
             Idempotency-Key)",
            RETRY_AFTER_S,
        ))
    }

    /// Acknowledges `envelope` as `by` (an outside party that has taken it).
    pub fn acknowledge(&self, envelope: &Envelope, by: Service) {
        let _ = self.gateway.send(Envelope {
            id: acme_processes::host::ack_id(envelope.id, by),
            from: by,
            to: envelope.from,
            seq: 0,
            body: Message::Ack { id: envelope.id },
        });
    }

    /// The accounts found among `ids` (the ledger leaves out those that do not exist).
    pub async fn accounts(&self, ids: Vec<u128>) -> Result<Vec<Account>, Problem> {
        let ledger = self.ledger.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut guard = ledger.lock().map_err(|_| "the ledger connection failed")?;
            let l = guard.as_mut().ok_or("the platform is stopping")?;
            l.lookup_accounts(&ids)
                .map_err(|_| "the ledger did not answer")
        })
        .await;
        match read {
            Ok(Ok(accounts)) => Ok(accounts),
            Ok(Err(why)) => Err(Problem::unavailable(why, RETRY_AFTER_S)),
            Err(_) => Err(Problem::unavailable(
                "the ledger read failed",
                RETRY_AFTER_S,
            )),
        }
    }
}

/// The most statuses journaled together: one of the ledger's batches.
const DISPATCH_BATCH_MAX: usize = acme_ledger::BATCH_EVENTS_MAX;

/// Takes what the platform sends out: the statuses for members are journaled, applied, then
/// acknowledged (intake sends each again until then); what goes to the custodian goes to the
/// simulated custodian or the file drop ([`crate::jobs::on_message`]). Runs until the runtime stops.
///
/// Everything waiting is taken at once and journaled as one group: one status at a time, the
/// acknowledgements fall behind intake's rate under load (one sync each), and every status not
/// yet acknowledged stays in intake's outbox, so in its snapshots.
pub async fn dispatch(mut outside: mpsc::UnboundedReceiver<Envelope>, app: Arc<crate::http::App>) {
    let mut batch: Vec<Envelope> = Vec::new();
    while let Some(first) = outside.recv().await {
        batch.push(first);
        while batch.len() < DISPATCH_BATCH_MAX {
            match outside.try_recv() {
                Ok(envelope) => batch.push(envelope),
                Err(_) => break,
            }
        }
        if !dispatch_batch(&app, std::mem::take(&mut batch)).await {
            return;
        }
    }
}

/// Journals, applies and acknowledges one batch of what the platform sent out. False when the
/// journal is gone (the process is stopping).
async fn dispatch_batch(app: &Arc<crate::http::App>, batch: Vec<Envelope>) -> bool {
    let mut statuses = Vec::with_capacity(batch.len());
    for envelope in batch {
        if envelope.to == Service::Custodian {
            crate::jobs::on_message(app, envelope);
            continue;
        }
        // Acknowledgements were handed to their waiters by the gateway.
        if let Message::InstructionStatus { id, state } = &envelope.body {
            let (id, state) = (*id, *state);
            statuses.push((envelope, id, state));
        }
    }
    if statuses.is_empty() {
        return true;
    }
    let now = app.platform.now();
    let records: Vec<Record> = statuses
        .iter()
        .map(|&(_, id, state)| Record::Status {
            instruction: id,
            state,
            at: now,
        })
        .collect();
    if app.journal.append_all(&records).await.is_err() {
        return false;
    }
    if let Ok(mut s) = app.store.lock() {
        for record in records {
            s.apply(record, true);
        }
    }
    for (envelope, _, _) in &statuses {
        app.platform.acknowledge(envelope, Service::Members);
    }
    true
}
