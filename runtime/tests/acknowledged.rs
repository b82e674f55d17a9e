//! `Gateway::send_acknowledged`: the receiver completes only once intake has committed the
//! instruction, so a front end that answers its caller then never answers for something a crash
//! can lose. Checked by killing the runtime (as `kill -9` would) right after the
//! acknowledgement: the next start still has the instruction and reports its outcome.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_ledger::chart;
use acme_ledger::CreateAccountResult;
use acme_processes::calendar::Date;
use acme_processes::messages::{
    instruction_id, msg_id, Instruction, InstructionKind, InstructionState, Message, MsgKind,
    Origin,
};
use acme_processes::process::{Envelope, Service};
use acme_runtime::{AcceleratedClock, Clock, Config, Runtime};
use acme_sim::world::FUNDS;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn instruction(member: u64, seq: u64, kind: InstructionKind) -> Envelope {
    let instruction = Instruction {
        id: instruction_id(member, seq),
        member,
        kind,
        origin: Origin::Member,
    };
    Envelope {
        id: msg_id(MsgKind::Instruction, instruction.id, 0),
        from: Service::Members,
        to: Service::Intake,
        seq: 0,
        body: Message::Instruction(instruction),
    }
}

#[test]
fn an_acknowledged_instruction_survives_a_kill_that_follows_at_once() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime-acknowledged");
    let _ = std::fs::remove_dir_all(&dir);
    let day = Date::from_ymd(2026, 1, 6).expect("a date");
    let clock: Arc<dyn Clock> = AcceleratedClock::new(day.at_minute(9 * 60), 1);
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("the driver's runtime");
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let rt = Runtime::start(Config::new(&dir, clock.clone(), out_tx.clone())).expect("starts");
    {
        let mut ledger = rt.ledger();
        let results = ledger
            .create_accounts(&chart::house_accounts(&FUNDS))
            .expect("the ledger answers");
        assert!(results.iter().all(|r| *r == CreateAccountResult::Ok));
    }
    let gateway = rt.gateway();
    let onboard = instruction(7, 0, InstructionKind::Onboard { profile: 1 });
    let ack = gateway
        .send_acknowledged(onboard.clone())
        .expect("intake runs");
    driver
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), ack).await })
        .expect("acknowledged in time")
        .expect("the runtime still runs");
    // A duplicate is acknowledged again (a retried request waits for the same thing).
    let again = gateway.send_acknowledged(onboard).expect("intake runs");
    driver
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), again).await })
        .expect("the duplicate is acknowledged")
        .expect("the runtime still runs");
    // A service that is not run here is refused, not waited for.
    let mut elsewhere = instruction(7, 1, InstructionKind::Contribute { cash_pence: 1 });
    elsewhere.to = Service::Custodian;
    assert!(gateway.send_acknowledged(elsewhere).is_err());
    rt.kill();
    while out_rx.try_recv().is_ok() {}

    let rt = Runtime::start(Config::new(&dir, clock, out_tx)).expect("restarts");
    let wanted = instruction_id(7, 0);
    let got = driver.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let envelope = out_rx.recv().await.expect("the runtime runs");
                if let Message::InstructionStatus { id, state } = envelope.body {
                    if id == wanted {
                        return state;
                    }
                }
            }
        })
        .await
    });
    rt.kill();
    assert_eq!(got, Ok(InstructionState::Completed));
}
