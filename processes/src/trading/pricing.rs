//! Pricing: books a priced net trade in the members' pots.
//!
//! It needs two things, in either order: the trade's composition (`TradeBooked`, from
//! aggregation) and the custodian's answer: a price confirmation (`TradePriced`, revision 0), or
//! a rejection (`TradeRejected`). Then, in the ledger:
//! 1. the unit accounts of the buyers are created (`exists` is fine);
//! 2. the net with the custodian moves between its unsettled mirror and ACME's trading accounts;
//! 3. per order, a linked chain posts the filled part of the reservation (the rest is released
//!    by TigerBeetle's partial post; a fill of zero voids it) and books the member's proceeds as
//!    a *pending* transfer, final at settlement;
//! 4. the residuals go, pending too, to ACME's rounding accounts.
//!
//! If the custodian has not answered [`Schedule::chase_after_min`] after the valuation point,
//! pricing chases it (`ChaseConfirmation`), and again at that interval until it answers: a lost
//! or withheld confirmation is recovered by our side, not waited for.
//!
//! A rejected trade voids every reservation: each order ends `Rejected` with its cash or units
//! back. An amended price (`TradePriced` with a higher revision, before settlement) voids the
//! previous revision's pending lines and books new ones (see [`super::allocation`]).

use super::allocation::{self, Allocation};
use super::{tag, untag};
use crate::calendar::{Schedule, Ts, NS_PER_MIN};
use crate::messages::{
    msg_id, Advance, Confirmation, ExternalTrade, InstructionState, Message, MsgKind, Order, Side,
    TradeId,
};
use crate::process::{Ctx, Effects, Input, LedgerReply, LedgerRequest, Process, Service};
use acme_ledger::chart::{self, AccountKind};
use acme_ledger::{Account, BATCH_EVENTS_MAX};
use std::collections::BTreeMap;

const PHASE_ACCOUNTS: u64 = 1;
const PHASE_BOOK: u64 = 2;
const PHASE_REJECT: u64 = 3;
/// Amendment phases are `PHASE_AMEND_BASE + revision` (revision < 8).
const PHASE_AMEND_BASE: u64 = 8;
/// Amendments a trade may have.
pub const REVISIONS_MAX: u32 = 7;

#[derive(Clone, Debug)]
enum Custodian {
    Priced(Confirmation),
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for the composition or the custodian's answer.
    Waiting,
    /// Ledger requests of `phase` outstanding.
    Running { phase: u64, outstanding: u64 },
    /// Booked at this allocation; amendments may follow.
    Booked,
    /// Rejected and released.
    Released,
}

struct TradeState {
    booked: Option<(ExternalTrade, Vec<Order>)>,
    /// The custodian's answers by revision (0 = first pricing), and a rejection.
    answers: BTreeMap<u32, Custodian>,
    allocation: Option<Allocation>,
    stage: Stage,
}

pub struct Pricing {
    schedule: Schedule,
    trades: BTreeMap<TradeId, TradeState>,
    /// Chases sent per trade.
    chases: BTreeMap<TradeId, u64>,
}

impl Pricing {
    pub fn new(schedule: Schedule) -> Pricing {
        Pricing {
            schedule,
            trades: BTreeMap::new(),
            chases: BTreeMap::new(),
        }
    }

    fn on_chase_timer(&mut self, trade_id: TradeId, now: Ts, fx: &mut Effects) {
        let answered = self
            .trades
            .get(&trade_id)
            .is_some_and(|t| t.answers.contains_key(&0));
        if answered {
            return;
        }
        let attempt = self.chases.entry(trade_id).or_default();
        *attempt += 1;
        fx.send(
            msg_id(MsgKind::ChaseConfirmation, trade_id, *attempt),
            Service::Pricing,
            Service::Custodian,
            Message::ChaseConfirmation { trade_id },
        );
        fx.timer(
            trade_id,
            now + self.schedule.chase_after_min as u64 * NS_PER_MIN,
        );
    }

    fn state(&mut self, trade_id: TradeId) -> &mut TradeState {
        self.trades.entry(trade_id).or_insert(TradeState {
            booked: None,
            answers: BTreeMap::new(),
            allocation: None,
            stage: Stage::Waiting,
        })
    }

    /// Moves a trade forward as far as what it has allows.
    fn progress(&mut self, trade_id: TradeId, fx: &mut Effects) {
        let t = self.trades.get_mut(&trade_id).expect("known trade");
        let Some((trade, orders)) = &t.booked else {
            return;
        };
        match t.stage {
            Stage::Waiting => match t.answers.get(&0) {
                None => {}
                Some(Custodian::Rejected) => {
                    if crate::plant::active(crate::plant::Bug::ReservationNotReleased) {
                        // Planted: the orders are told they are rejected, but nothing is given
                        // back.
                        t.stage = Stage::Released;
                        send_rejected(trade_id, orders, fx);
                        return;
                    }
                    let voids = orders.iter().map(allocation::void_reservation).collect();
                    t.stage = Stage::Running {
                        phase: PHASE_REJECT,
                        outstanding: fx
                            .create_transfers_chunked(voids, |i| tag(trade_id, PHASE_REJECT, i)),
                    };
                }
                Some(Custodian::Priced(c)) => {
                    if c.buy_cash_filled > trade.buy_cash_pence
                        || c.sell_units_filled > trade.sell_units_micro
                    {
                        fx.alert(
                            "pricing",
                            format!("trade {trade_id:#x}: fill above the order: {c:?}"),
                        );
                        return;
                    }
                    t.allocation = Some(allocation::allocate(trade, orders, c));
                    let accounts: Vec<Account> = orders
                        .iter()
                        .filter(|o| o.side == Side::Buy)
                        .map(|o| {
                            chart::account(
                                AccountKind::MemberUnits,
                                chart::fund_ledger(o.fund),
                                o.member,
                            )
                        })
                        .collect();
                    let mut chunks = 0;
                    for batch in accounts.chunks(BATCH_EVENTS_MAX) {
                        fx.ledger(
                            tag(trade_id, PHASE_ACCOUNTS, chunks),
                            LedgerRequest::CreateAccounts(batch.to_vec()),
                        );
                        chunks += 1;
                    }
                    t.stage = Stage::Running {
                        phase: PHASE_ACCOUNTS,
                        outstanding: chunks,
                    };
                    if chunks == 0 {
                        self.book(trade_id, fx);
                    }
                }
            },
            Stage::Booked => {
                let current = t.allocation.as_ref().expect("booked").revision;
                let Some((&revision, Custodian::Priced(c))) = t.answers.range(current + 1..).next()
                else {
                    return;
                };
                if revision > REVISIONS_MAX {
                    fx.alert(
                        "pricing",
                        format!("trade {trade_id:#x}: amendment {revision} past the limit"),
                    );
                    return;
                }
                let next = allocation::allocate(trade, orders, c);
                let transfers = allocation::amendment_transfers(
                    trade,
                    t.allocation.as_ref().expect("booked"),
                    &next,
                );
                let phase = PHASE_AMEND_BASE + revision as u64;
                t.allocation = Some(next);
                t.stage = Stage::Running {
                    phase,
                    outstanding: fx
                        .create_transfers_chunked(transfers, |i| tag(trade_id, phase, i)),
                };
            }
            Stage::Running { .. } | Stage::Released => {}
        }
    }

    fn book(&mut self, trade_id: TradeId, fx: &mut Effects) {
        let t = self.trades.get_mut(&trade_id).expect("known trade");
        let (trade, _) = t.booked.as_ref().expect("booked");
        let transfers =
            allocation::booking_transfers(trade, t.allocation.as_ref().expect("allocated"));
        t.stage = Stage::Running {
            phase: PHASE_BOOK,
            outstanding: fx.create_transfers_chunked(transfers, |i| tag(trade_id, PHASE_BOOK, i)),
        };
    }

    fn on_reply(&mut self, tag: u64, reply: &LedgerReply, fx: &mut Effects) {
        let (trade_id, phase, _) = untag(tag);
        let failures: Vec<String> = match reply {
            LedgerReply::CreateAccounts(r) => r
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.is_applied())
                .map(|(i, r)| format!("account #{i}: {r:?}"))
                .collect(),
            // A replayed chain answers `exists` then `linked_event_failed`: still applied.
            LedgerReply::CreateTransfers(r) if acme_ledger::batch_applied(r) => Vec::new(),
            LedgerReply::CreateTransfers(r) => r
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.is_applied())
                .map(|(i, r)| format!("transfer #{i}: {r:?}"))
                .collect(),
            _ => vec!["unexpected reply kind".to_string()],
        };
        if !failures.is_empty() {
            // A refusal of a step that was valid when it was built: stop and call a person. The
            // trade stays where it is; nothing half-done is hidden.
            fx.alert(
                "pricing",
                format!("trade {trade_id:#x} phase {phase}: {}", failures.join(", ")),
            );
            return;
        }
        let Some(t) = self.trades.get_mut(&trade_id) else {
            fx.alert("pricing", format!("reply for unknown trade {trade_id:#x}"));
            return;
        };
        let Stage::Running {
            phase: running,
            outstanding,
        } = &mut t.stage
        else {
            fx.alert(
                "pricing",
                format!("reply for trade {trade_id:#x} not running"),
            );
            return;
        };
        assert_eq!(*running, phase, "reply of another phase");
        *outstanding -= 1;
        if *outstanding > 0 {
            return;
        }
        match phase {
            PHASE_ACCOUNTS => self.book(trade_id, fx),
            PHASE_REJECT => {
                t.stage = Stage::Released;
                let (_, orders) = t.booked.as_ref().expect("booked");
                send_rejected(trade_id, orders, fx);
            }
            _ => {
                t.stage = Stage::Booked;
                let (trade, _) = t.booked.as_ref().expect("booked");
                let a = t.allocation.as_ref().expect("allocated");
                let pending_lines = allocation::pending_lines(trade, a).len() as u64;
                let filled: Vec<Advance> = a
                    .lines
                    .iter()
                    .filter(|l| l.filled > 0)
                    .map(|l| Advance {
                        instruction: l.order.instruction,
                        leg: l.order.leg,
                        partial: l.filled < l.order.amount,
                        proceeds_pence: 0,
                    })
                    .collect();
                fx.send(
                    msg_id(MsgKind::TradeAllocated, trade_id, a.revision as u64),
                    Service::Pricing,
                    Service::Settlement,
                    Message::TradeAllocated {
                        trade: *trade,
                        revision: a.revision,
                        pending_lines,
                        net_units: a.net_units,
                        net_cash: a.net_cash,
                        filled: filled.clone(),
                    },
                );
                if a.revision == 0 {
                    let priced = filled;
                    fx.send(
                        msg_id(
                            MsgKind::InstructionsAdvanced,
                            trade_id,
                            InstructionState::Priced as u64,
                        ),
                        Service::Pricing,
                        Service::Intake,
                        Message::InstructionsAdvanced {
                            orders: priced,
                            state: InstructionState::Priced,
                        },
                    );
                    let unfilled: Vec<Advance> = a
                        .lines
                        .iter()
                        .filter(|l| l.filled == 0)
                        .map(|l| Advance {
                            instruction: l.order.instruction,
                            leg: l.order.leg,
                            partial: false,
                            proceeds_pence: 0,
                        })
                        .collect();
                    if !unfilled.is_empty() {
                        fx.send(
                            msg_id(
                                MsgKind::InstructionsAdvanced,
                                trade_id,
                                InstructionState::Rejected as u64,
                            ),
                            Service::Pricing,
                            Service::Intake,
                            Message::InstructionsAdvanced {
                                orders: unfilled,
                                state: InstructionState::Rejected,
                            },
                        );
                    }
                }
                // An amendment that arrived while this revision was being booked.
                self.progress(trade_id, fx);
            }
        }
    }
}

impl Process for Pricing {
    fn name(&self) -> &'static str {
        "pricing"
    }

    fn handle(&mut self, ctx: &Ctx, input: &Input, fx: &mut Effects) {
        match input {
            Input::Message(env) => {
                let trade_id = match &env.body {
                    Message::TradeBooked { trade, orders } => {
                        let t = self.state(trade.id);
                        if t.booked.is_none() {
                            t.booked = Some((*trade, orders.clone()));
                            let s = self.schedule;
                            let due = trade
                                .trade_date
                                .at_minute(s.valuation_min + s.chase_after_min);
                            fx.timer(trade.id, due.max(ctx.now));
                        }
                        trade.id
                    }
                    Message::TradePriced(c) => {
                        self.state(c.trade_id)
                            .answers
                            .entry(c.revision)
                            .or_insert(Custodian::Priced(*c));
                        c.trade_id
                    }
                    Message::TradeRejected { trade_id } => {
                        self.state(*trade_id)
                            .answers
                            .entry(0)
                            .or_insert(Custodian::Rejected);
                        *trade_id
                    }
                    other => {
                        fx.alert("pricing", format!("unexpected message {other:?}"));
                        return;
                    }
                };
                self.progress(trade_id, fx);
            }
            Input::Ledger { tag, reply } => self.on_reply(*tag, reply, fx),
            Input::Timer { timer_id } => self.on_chase_timer(*timer_id, ctx.now, fx),
        }
    }
}

/// Tells intake that every order of a rejected trade ended `Rejected`.
fn send_rejected(trade_id: TradeId, orders: &[Order], fx: &mut Effects) {
    let advances = orders
        .iter()
        .map(|o| Advance {
            instruction: o.instruction,
            leg: o.leg,
            partial: false,
            proceeds_pence: 0,
        })
        .collect();
    fx.send(
        msg_id(
            MsgKind::InstructionsAdvanced,
            trade_id,
            InstructionState::Rejected as u64,
        ),
        Service::Pricing,
        Service::Intake,
        Message::InstructionsAdvanced {
            orders: advances,
            state: InstructionState::Rejected,
        },
    );
}
