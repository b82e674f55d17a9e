//! The custodian as a file drop (`"custodian": "file-drop"` in the configuration): what the
//! platform sends the custodian (trades to place, chases) is written as one file a message to
//! the outbox, durably (a temporary name, synced, renamed, the directory synced) and only then
//! acknowledged; the custodian's answers (confirmations, amendments, rejections, settlement
//! notices) are read from the inbox. The formats are in [`format`].
//!
//! An inbox file is read, parsed and checked whole (every row by itself, then against the
//! trades placed and the answers already taken: [`books`]) before anything of it is sent on.
//! A good file becomes messages to pricing and settlement with ids derived from the trade and
//! revision (the simulated custodian's), so delivering it again, or a copy of it, is a no-op;
//! once every host has acknowledged them (its journal record is synced) the file moves to
//! `inbox/done/`. A crash before that move re-reads the file and re-sends the same messages.
//! A bad file moves to `inbox/rejected/` with `NAME.report.txt` beside it (file, line, field,
//! reason) and nothing of it is sent.
//!
//! The file drop keeps its own copy of each order in `DATA/custodian/placed/` (the custodian
//! may clear the outbox) and rebuilds what it knows at start from that and `inbox/done/`.

pub mod books;
pub mod files;
pub mod format;
#[cfg(test)]
mod tests;

use crate::config::Fund;
use crate::http::App;
use acme_ledger::chart::FundId;
use acme_processes::messages::{msg_id, trade_fund, Message, MsgKind};
use acme_processes::process::{Envelope, Service};
use books::Books;
use format::{Bad, Notice, Order};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the inbox is looked at.
const POLL: Duration = Duration::from_millis(200);

pub struct FileDrop {
    outbox: PathBuf,
    inbox: PathBuf,
    done: PathBuf,
    rejected: PathBuf,
    placed: PathBuf,
    isins: BTreeMap<FundId, String>,
    books: Mutex<Books>,
    /// One outbox write at a time: two copies of a message (a re-send while the first is being
    /// written) would share the temporary file, and one could rename it half written.
    writing: Mutex<()>,
}

fn make_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("custodian folder {}: {e}", dir.display()))
}

impl FileDrop {
    /// Opens the folders (made if missing) and reads back what was placed and answered.
    pub fn open(
        outbox: &Path,
        inbox: &Path,
        data_dir: &Path,
        funds: &[Fund],
    ) -> Result<FileDrop, String> {
        let mut fd = FileDrop {
            outbox: outbox.to_path_buf(),
            inbox: inbox.to_path_buf(),
            done: inbox.join("done"),
            rejected: inbox.join("rejected"),
            placed: data_dir.join("custodian").join("placed"),
            isins: funds.iter().map(|f| (f.id, f.isin.clone())).collect(),
            books: Mutex::new(Books::default()),
            writing: Mutex::new(()),
        };
        for dir in [&fd.outbox, &fd.inbox, &fd.done, &fd.rejected, &fd.placed] {
            make_dir(dir)?;
        }
        let mut books = Books::default();
        // Both are this service's own writing: one that does not read is damage, so refuse
        // to start rather than forget an order or an answer.
        for (dir, placed) in [(&fd.placed, true), (&fd.done, false)] {
            for name in files::listing(dir)? {
                let at = dir.join(&name);
                let text = std::fs::read_to_string(&at)
                    .map_err(|e| format!("custodian file {}: {e}", at.display()))?;
                let damaged = |b: Bad| format!("custodian file {}: {}", at.display(), show(&b));
                if placed {
                    books.place(format::parse_placed(&text).map_err(damaged)?);
                } else {
                    books.record(&format::parse_notices(&text).map_err(damaged)?);
                }
            }
        }
        fd.books = Mutex::new(books);
        Ok(fd)
    }

    fn books(&self) -> Result<std::sync::MutexGuard<'_, Books>, String> {
        self.books
            .lock()
            .map_err(|_| "the file drop's books are unusable".to_string())
    }

    /// Writes what the platform sends the custodian as its outbox file (the name is the
    /// message's id: a re-send replaces the file with the same bytes). A placed trade is
    /// recorded in `placed/` first.
    pub fn send(&self, envelope: &Envelope) -> Result<(), String> {
        let (order, prefix) = match &envelope.body {
            Message::PlaceTrade(t) => (Order::Place(t), "order"),
            Message::ChaseConfirmation { trade_id } => {
                (Order::ChaseConfirmation(*trade_id), "chase-confirmation")
            }
            Message::ChaseSettlement { trade_id } => {
                (Order::ChaseSettlement(*trade_id), "chase-settlement")
            }
            // The platform sends the custodian nothing else; there is nothing to write.
            _ => return Ok(()),
        };
        let trade = match order {
            Order::Place(t) => t.id,
            Order::ChaseConfirmation(id) | Order::ChaseSettlement(id) => id,
        };
        let isin = self
            .isins
            .get(&trade_fund(trade))
            .map_or("", String::as_str);
        let text = format::render_order(&order, isin);
        let name = format!("{prefix}-{:032x}.csv", envelope.id);
        let _one = self
            .writing
            .lock()
            .map_err(|_| "an outbox write failed before".to_string())?;
        if let Order::Place(t) = order {
            files::write_durable(&self.placed, &name, text.as_bytes())?;
            self.books()?.place(*t);
        }
        files::write_durable(&self.outbox, &name, text.as_bytes())
    }

    /// The inbox's files waiting, by name.
    pub fn waiting(&self) -> Result<Vec<String>, String> {
        files::listing(&self.inbox)
    }

    /// Reads and checks inbox file `name` whole: its notices, or where it is wrong (`Ok(Err)`).
    /// `Err` is an I/O failure: the file stays for the next look.
    pub fn take(&self, name: &str) -> Result<Result<Vec<Notice>, Bad>, String> {
        if !name.ends_with(".csv") {
            let why = "not a .csv notices file (statements go to `acme recon`)";
            return Ok(Err(Bad {
                line: None,
                field: "file".into(),
                reason: why.into(),
            }));
        }
        let text = match files::read_text(&self.inbox, name)? {
            Ok(text) => text,
            Err(bad) => return Ok(Err(bad)),
        };
        let checked = format::parse_notices(&text).and_then(|notices| {
            self.books
                .lock()
                .map_err(|_| Bad::at(1, "file", "the file drop's books are unusable"))?
                .check(&notices)
                .map(|()| notices)
        });
        Ok(checked)
    }

    /// File `name`'s notices were all acknowledged: it moves to `done/`, they to the books.
    pub fn done(&self, name: &str, notices: &[Notice]) -> Result<(), String> {
        files::move_durable(&self.inbox, &self.done, name)?;
        self.books()?.record(notices);
        Ok(())
    }

    /// File `name` is refused: its report is written beside where it goes, then it moves.
    pub fn reject(&self, name: &str, bad: &Bad) -> Result<(), String> {
        let report = format!(
            "acme serve: custodian file refused; nothing of it was applied\nfile: {name}\n{}",
            report_lines(bad)
        );
        let report_name = format!("{name}.report.txt");
        files::write_durable(&self.rejected, &report_name, report.as_bytes())?;
        files::move_durable(&self.inbox, &self.rejected, name)
    }
}

fn report_lines(bad: &Bad) -> String {
    let line = bad.line.map_or("-".to_string(), |l| l.to_string());
    format!(
        "line: {line}\nfield: {}\nreason: {}\n",
        bad.field, bad.reason
    )
}

fn show(bad: &Bad) -> String {
    match bad.line {
        Some(l) => format!("line {l}, field {}: {}", bad.field, bad.reason),
        None => format!("field {}: {}", bad.field, bad.reason),
    }
}

/// The message a notice becomes: the ids are the simulated custodian's, derived from the trade
/// (and the revision), so the same answer from any file is one message.
pub fn envelope(n: &Notice) -> Envelope {
    let (to, id, body) = match *n {
        Notice::Priced { terms, .. } => (
            Service::Pricing,
            msg_id(
                MsgKind::TradePriced,
                terms.trade_id,
                u64::from(terms.revision),
            ),
            Message::TradePriced(terms),
        ),
        Notice::Rejected { trade, .. } => (
            Service::Pricing,
            msg_id(MsgKind::TradeRejected, trade, 0),
            Message::TradeRejected { trade_id: trade },
        ),
        Notice::Settled { terms, .. } => (
            Service::Settlement,
            msg_id(MsgKind::TradeSettled, terms.trade_id, 0),
            Message::TradeSettled {
                trade_id: terms.trade_id,
                // Checked by pricing's rules before: the gross figures fit a u64 each.
                net_units: i128::from(terms.units_bought) - i128::from(terms.sell_units_filled),
                net_cash: i128::from(terms.buy_cash_filled) - i128::from(terms.cash_for_sold),
            },
        ),
    };
    crate::jobs::custodian_says(to, id, body)
}

/// What the platform sends the custodian, in file-drop mode: written to the outbox, then
/// acknowledged. A write that fails is not acknowledged: the sender sends it again.
pub fn on_message(app: &Arc<App>, fd: Arc<FileDrop>, envelope: Envelope) {
    if matches!(envelope.body, Message::Ack { .. }) {
        return;
    }
    let app = app.clone();
    tokio::spawn(async move {
        let sent = envelope.clone();
        match tokio::task::spawn_blocking(move || fd.send(&sent)).await {
            Ok(Ok(())) => app.platform.acknowledge(&envelope, Service::Custodian),
            Ok(Err(e)) => eprintln!("acme serve: custodian outbox: {e}"),
            Err(e) => eprintln!("acme serve: custodian outbox: {e}"),
        }
    });
}

/// Looks at the inbox every [`POLL`] until the service stops.
pub async fn watch(app: Arc<App>, fd: Arc<FileDrop>) {
    // I/O failures are told once a file, not every look.
    let mut told: BTreeSet<String> = BTreeSet::new();
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        let names = blocking(&fd, |fd| fd.waiting()).await;
        let names = match names {
            Ok(names) => names,
            Err(e) => {
                if told.insert(String::new()) {
                    eprintln!("acme serve: custodian inbox: {e}");
                }
                continue;
            }
        };
        for name in names {
            match take_one(&app, &fd, &name).await {
                Ok(true) => {
                    told.remove(&name);
                }
                // The platform is stopping or did not confirm in time: look again later.
                Ok(false) => break,
                Err(e) => {
                    if told.insert(name.clone()) {
                        eprintln!("acme serve: custodian inbox {name}: {e}");
                    }
                }
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    fd: &Arc<FileDrop>,
    f: impl FnOnce(&FileDrop) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let fd = fd.clone();
    tokio::task::spawn_blocking(move || f(&fd))
        .await
        .map_err(|e| e.to_string())?
}

/// Takes one inbox file: refused with its report, or delivered whole and then done. False when
/// the platform did not take every message (the file stays and is sent again).
async fn take_one(app: &Arc<App>, fd: &Arc<FileDrop>, name: &str) -> Result<bool, String> {
    let n = name.to_string();
    let notices = match blocking(fd, move |fd| fd.take(&n)).await? {
        Ok(notices) => notices,
        Err(bad) => {
            eprintln!("acme serve: custodian file {name} refused: {}", show(&bad));
            let n = name.to_string();
            blocking(fd, move |fd| fd.reject(&n, &bad)).await?;
            return Ok(true);
        }
    };
    for n in &notices {
        if let Err(p) = app.platform.deliver(envelope(n)).await {
            eprintln!("acme serve: custodian file {name}: {}", p.detail);
            return Ok(false);
        }
    }
    let n = name.to_string();
    blocking(fd, move |fd| fd.done(&n, &notices)).await?;
    Ok(true)
}
