//! Simulated deployments: [`Release`] wraps a platform process as release `n` of its code, so
//! the simulator can deploy a new version mid-run and prove the host's version rules.
//!
//! Release `n` declares version `inner + n` and a migration from release `n - 1` (its state is
//! the same). It also reads its ledger answers differently from its neighbours: it marks the
//! tags of the requests it makes with the parity of `n` and unmarks the answers, as a real
//! change of tag layout would. So the new code is upgrade-safe only the way real code is: after
//! a clean stop with no ledger request outstanding. Replaying an old release's journal through
//! it (what recovery refuses, unless `unversioned-replay` is planted) mistakes every answer.

use acme_processes::process::{Ctx, Effect, Effects, Input, Process};
use serde::{Deserialize, Serialize};

/// The tag bit a release marks: no process uses it (causes are below 2^40, shifted by 24).
const TAG_MARK: u64 = 1 << 63;

#[derive(Serialize, Deserialize)]
pub struct Release<P> {
    pub inner: P,
    pub release: u32,
}

impl<P> Release<P> {
    pub fn new(inner: P, release: u32) -> Release<P> {
        Release { inner, release }
    }

    fn mark(&self) -> u64 {
        if self.release % 2 == 1 {
            TAG_MARK
        } else {
            0
        }
    }
}

impl<P: Process> Process for Release<P> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn version(&self) -> u32 {
        self.inner.version() + self.release
    }

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        let mark = self.mark();
        let mut inner_fx = Effects::new();
        match input {
            Input::Ledger { tag, reply } => {
                let input = Input::Ledger {
                    tag: tag ^ mark,
                    reply: reply.clone(),
                };
                self.inner.handle(ctx, &input, &mut inner_fx);
            }
            other => self.inner.handle(ctx, other, &mut inner_fx),
        }
        if let Some(reason) = inner_fx.poisoned() {
            fx.poison(reason.to_string());
            return;
        }
        for effect in inner_fx.into_vec() {
            match effect {
                Effect::Ledger { tag, request } => fx.ledger(tag ^ mark, request),
                Effect::Send(env) => fx.send(env.id, env.from, env.to, env.body),
                Effect::SetTimer { timer_id, at } => fx.timer(timer_id, at),
                Effect::Alert(a) => fx.alert(&a.process, a.what),
            }
        }
    }

    fn migrate(&self, from: u32, state: serde_json::Value) -> Result<serde_json::Value, String> {
        if from + 1 != self.version() {
            return Err(format!(
                "release {} migrates only from version {}",
                self.release,
                self.version() - 1
            ));
        }
        let mut state = state;
        state["release"] = serde_json::Value::from(self.release);
        Ok(state)
    }
}
