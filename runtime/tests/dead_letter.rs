//! A panic in `handle` on the runtime: the input becomes exactly one dead letter and one alert,
//! is acknowledged (so its sender stops), copies of it are dropped as duplicates, the process
//! carries on with the next input, and nothing loops however long the runtime runs on.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use acme_ledger::chart;
use acme_ledger::{CreateAccountResult, Ledger};
use acme_processes::calendar::{Date, NS_PER_MIN};
use acme_processes::messages::{instruction_id, InstructionKind, InstructionState, Message};
use acme_processes::process::{Ctx, Effects, Envelope, Input, Process, Service};
use acme_processes::trading::intake::Intake;
use acme_processes::trading::rebalancing::ModelSet;
use acme_runtime::{AcceleratedClock, Clock, Config, ProcessSpec, Runtime, SharedLedger};
use acme_sim::world::FUNDS;
use common::Members;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The contribution the planted bug cannot take.
const UNLUCKY_PENCE: u64 = 1_313;

/// Intake, with a bug planted: it panics on a contribution of exactly £13.13.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Unlucky(Intake);

impl Process for Unlucky {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn version(&self) -> u32 {
        self.0.version()
    }

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        if let Input::Message(Envelope {
            body: Message::Instruction(i),
            ..
        }) = input
        {
            if i.kind
                == (InstructionKind::Contribute {
                    cash_pence: UNLUCKY_PENCE,
                })
            {
                panic!("planted: £13.13 is unlucky");
            }
        }
        self.0.handle(ctx, input, fx)
    }
}

fn processes() -> Vec<ProcessSpec> {
    let models = ModelSet::V1;
    let mut specs = acme_runtime::platform(Default::default(), models);
    specs.retain(|s| s.service() != Service::Intake);
    specs.push(ProcessSpec::new(Service::Intake, move || {
        Unlucky(Intake::new(models.funds.to_vec(), models.models.len()))
    }));
    specs
}

#[test]
fn a_panic_in_handle_is_one_dead_letter_and_one_alert_not_a_loop() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime-dead-letter");
    let _ = std::fs::remove_dir_all(&dir);
    let day = Date::from_ymd(2026, 1, 6).expect("a date");
    let clock = AcceleratedClock::new(day.at_minute(8 * 60 + 30), 100);
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    // An embedded ledger outside the runtime, which outlives it.
    let ledger = SharedLedger::mem(dyn_clock.clone());
    let results = ledger
        .clone()
        .create_accounts(&chart::house_accounts(&FUNDS))
        .unwrap();
    assert!(results.iter().all(|r| *r == CreateAccountResult::Ok));
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let config = |outside| {
        let mut c = Config::new(&dir, dyn_clock.clone(), outside);
        c.ledger = ledger.config();
        c.processes = processes();
        c
    };
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let rt = Runtime::start(config(out_tx.clone())).expect("starts");
    let mut members = Members::new(rt.gateway());
    for member in 1..=3 {
        members.instruct(member, 0, InstructionKind::Onboard { profile: 0 });
    }
    let t = clock.now() + NS_PER_MIN;
    driver.block_on(members.run_until(&rt, &clock, &mut out_rx, t));
    assert_eq!(members.statuses.len(), 3, "{:?}", members.statuses);

    // The planted bug, then a normal contribution behind it.
    let poison = members.instruct(
        2,
        1,
        InstructionKind::Contribute {
            cash_pence: UNLUCKY_PENCE,
        },
    );
    let fine = members.instruct(3, 1, InstructionKind::Contribute { cash_pence: 5_000 });
    let t = clock.now() + NS_PER_MIN;
    driver.block_on(members.run_until(&rt, &clock, &mut out_rx, t));
    assert_eq!(
        members.acked.get(&poison),
        Some(&1),
        "the dead letter is acknowledged"
    );
    assert_eq!(members.acked.get(&fine), Some(&1));
    // A sender that missed the acknowledgement sends it again, twice: duplicates, dropped.
    for _ in 0..2 {
        members.instruct(
            2,
            1,
            InstructionKind::Contribute {
                cash_pence: UNLUCKY_PENCE,
            },
        );
    }
    // Half an hour of runtime: retransmission periods, timers, no loop.
    let t = clock.now() + 30 * NS_PER_MIN;
    driver.block_on(members.run_until(&rt, &clock, &mut out_rx, t));

    let status = rt.status()[&Service::Intake].clone();
    assert!(status.up, "{status:?}");
    assert_eq!(status.dead_letters, 1, "{status:?}");
    assert_eq!(status.stats.dead_letters, 1, "{status:?}");
    assert_eq!(status.stats.duplicates, 2, "{status:?}");
    assert_eq!(
        members.acked.get(&poison),
        Some(&3),
        "each copy acknowledged"
    );
    let alerts = rt.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let what = &alerts[0].alert.what;
    assert!(
        what.contains("dead letter 1") && what.contains("planted"),
        "{what}"
    );
    assert_eq!(alerts[0].alert.process, "intake");
    // The poison instruction never happened; the next one did.
    let poison_id = instruction_id(2, 1);
    assert!(!members.statuses.contains_key(&poison_id));
    assert_eq!(
        members.statuses.get(&instruction_id(3, 1)),
        Some(&InstructionState::Completed)
    );
    let mut l = rt.ledger();
    let cash = l
        .lookup_accounts(&[chart::member_cash(2), chart::member_cash(3)])
        .unwrap();
    let posted: BTreeSet<(u128, u128)> = cash.iter().map(|a| (a.id, a.credits_posted)).collect();
    assert!(posted.contains(&(chart::member_cash(2), 0)), "{cash:?}");
    assert!(posted.contains(&(chart::member_cash(3), 5_000)), "{cash:?}");
    drop(l);

    // A clean stop and a new start: the dead letter is kept, not handled again, not alerted
    // again.
    let report = rt.shutdown();
    assert!(report.snapshots.values().all(|&ok| ok), "{report:?}");
    let rt = Runtime::start(config(out_tx.clone())).expect("starts again");
    members.gateway = rt.gateway();
    let t = clock.now() + 10 * NS_PER_MIN;
    driver.block_on(members.run_until(&rt, &clock, &mut out_rx, t));
    let status = rt.status()[&Service::Intake].clone();
    assert_eq!(status.dead_letters, 1, "{status:?}");
    assert_eq!(status.stats.dead_letters, 0, "{status:?}");
    assert!(rt.alerts().is_empty(), "{:#?}", rt.alerts());
    rt.kill();
}
