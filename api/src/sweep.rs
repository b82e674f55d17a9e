//! Sends again what the API journaled for intake and intake never confirmed, until it does:
//! at the start, what a crash cut short (then the service is ready); after that, every few
//! seconds, what a client gave up on (a 503 after the platform did not confirm in time, and
//! the client never retried its key).
//!
//! Each such record holds a number on the API's channel to intake, and intake's host
//! deduplicates the channel by a watermark: a number journaled and never delivered is a gap
//! that holds the numbers above it in the host's memory. Sending everything journaled until
//! it is acknowledged closes every gap; a copy intake has already is acknowledged as one.

use crate::http::{onboard, App};
use crate::idempotency;
use acme_processes::calendar::{Ts, NS_PER_SEC};
use std::sync::Arc;
use std::time::Duration;

/// How often the journal is looked over for what was never confirmed.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// How old an unconfirmed record must be before it is sent again (younger ones are most likely
/// still on their way, with their request).
const SWEEP_AGE_NS: Ts = 5 * NS_PER_SEC;

/// Finishes what the last run left unconfirmed, reports ready, then sweeps until the runtime
/// stops.
pub async fn run(app: Arc<App>) {
    sweep(&app, Ts::MAX).await;
    app.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let now = app.platform.now();
        sweep(&app, now.saturating_sub(SWEEP_AGE_NS)).await;
    }
}

/// Sends again each key begun and not answered, and each onboarding not acknowledged, whose
/// record is older than `before` (`Ts::MAX`: all of them).
async fn sweep(app: &App, before: Ts) {
    let (keys, members) = match app.store.lock() {
        Ok(s) => (s.unanswered(), s.unonboarded()),
        Err(_) => return, // the state is unusable: never ready
    };
    for (caller, key, id) in keys {
        let due = app
            .store
            .lock()
            .ok()
            .and_then(|s| s.instruction(id).map(|i| i.received_at < before))
            .unwrap_or(false);
        let held = due
            && app
                .store
                .lock()
                .is_ok_and(|mut s| s.hold_unanswered(&caller, &key));
        if !held {
            continue; // young, or its request (a client's retry) is handling it now
        }
        let finished = idempotency::finish(app, &caller, &key, id).await;
        if let Ok(mut s) = app.store.lock() {
            s.release_key(&caller, &key);
        }
        if let Err(p) = finished {
            eprintln!(
                "acme serve: instruction {id} not yet confirmed: {}",
                p.detail
            );
        }
    }
    for (number, profile, seq, registered_at) in members {
        if registered_at >= before {
            continue;
        }
        if let Err(p) = onboard(app, number, profile, seq).await {
            eprintln!(
                "acme serve: member {number}'s onboarding not yet confirmed: {}",
                p.detail
            );
        }
    }
}
