//! `acme recon`: the ledger against the custodian's and the bank's statements.
//!
//! The adapter around `acme_processes::recon`: it reads the ledger (an export in chunks, with a
//! progress bar on large ledgers; a durable store or a TigerBeetle cluster through the port, see
//! [`source`]) and the files, hands their text to the engine's parsers, and writes
//! the report as a table, JSON or CSV, and optionally as an HTML page with a chart.
//! Exit codes: 0 clean (timing breaks allowed), 2 at least one true break, 1 an error (a bad
//! file is named with its line and field).

// An adapter: reading the statements and the ledger export and writing the reports is its job.
#![allow(clippy::disallowed_methods)]

mod source;

use acme_processes::calendar::Date;
use acme_processes::recon::files::{exit_code, reconcile_files, StatementFile, StatementFiles};
use acme_processes::recon::ledger::{Calendar, MANIFEST_FILE};
use acme_processes::recon::{
    fmt_units, parse_scaled, Break, Classification, ReconConfig, Report, DEFAULT_CUSTODIAN_ACCOUNT,
};
use acme_sim::export::ExportFile;
use source::{shown, Dating, LedgerRead};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["ledger", "tigerbeetle"])))]
pub struct ReconArgs {
    /// The ledger on disk: an export directory (`acme sim --export DIR` writes one under
    /// DIR/ledger) or a durable ledger's store (`acme sim --data DIR`), read-only at its last
    /// durable checkpoint plus log, streamed (memory for the log after the checkpoint, not for
    /// the ledger).
    #[arg(long, value_name = "DIR")]
    pub ledger: Option<PathBuf>,
    /// The ledger is a running TigerBeetle cluster at ADDR (`host:port`, comma separated, one per
    /// replica), read through the port at the point the scan starts.
    #[arg(long, value_name = "ADDR")]
    pub tigerbeetle: Option<String>,
    /// The TigerBeetle cluster id.
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub cluster_id: u128,
    /// The statement date, for a store or a cluster (an export's manifest has it): by default
    /// the business date of the ledger's latest timestamp.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<String>,
    /// Business days from trade to settlement, for a store or a cluster.
    #[arg(long, value_name = "DAYS", default_value_t = 2)]
    pub settlement_lag_days: u32,
    /// The ledger's business days (`DATE FIRST_TIMESTAMP` lines), for a ledger whose clock is not
    /// the calendar's (a TigerBeetle cluster under the simulator: `acme sim --export` writes
    /// DIR/ledger/calendar.txt). By default a transfer's date is its timestamp's UTC date.
    #[arg(long, value_name = "FILE")]
    pub calendar: Option<PathBuf>,
    /// Where the journal replay spills its partitions (the system's temporary directory by
    /// default); removed when done.
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// The custodian's holdings statement: CSV or ISO 20022 semt.002 XML (told apart by content).
    #[arg(long, value_name = "FILE")]
    pub holdings: Option<PathBuf>,
    /// The custodian's trade confirmations (CSV).
    #[arg(long, value_name = "FILE")]
    pub trades: Option<PathBuf>,
    /// A cash statement (CSV): the bank's, the custodian's; give it once per file.
    #[arg(long, value_name = "FILE")]
    pub cash: Vec<PathBuf>,
    /// Cash differences up to this many pounds either way are not breaks.
    #[arg(long, value_name = "POUNDS", default_value = "0")]
    pub cash_tolerance: String,
    /// The safekeeping account the holdings statement must be for.
    #[arg(long, value_name = "ID", default_value = DEFAULT_CUSTODIAN_ACCOUNT)]
    pub custodian_account: String,
    /// Output: a table for people, JSON or CSV for machines.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write an HTML report (summary, breaks, positions chart) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

pub(crate) fn read_text(p: &Path) -> Result<String, String> {
    let bytes = std::fs::read(p).map_err(|e| format!("{}: cannot read: {e}", shown(p)))?;
    String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        format!("{}: line {line}: not UTF-8 text", shown(p))
    })
}

/// Reads the ledger the arguments name.
fn read_ledger(args: &ReconArgs) -> Result<LedgerRead, String> {
    let as_of = match &args.as_of {
        Some(d) => Some(d.parse::<Date>().map_err(|e| format!("--as-of: {e}"))?),
        None => None,
    };
    let calendar = match &args.calendar {
        Some(p) => Calendar::parse(&shown(p), &read_text(p)?).map_err(|e| e.to_string())?,
        None => Calendar::default(),
    };
    let dating = Dating {
        as_of,
        settlement_lag_days: args.settlement_lag_days,
        calendar,
        spill_dir: args.spill_dir.clone(),
    };
    if let Some(addresses) = &args.tigerbeetle {
        return source::read_tigerbeetle(args.cluster_id, addresses, &dating);
    }
    let dir = args
        .ledger
        .as_deref()
        .ok_or("give --ledger DIR or --tigerbeetle ADDR")?;
    if let Some(export) = source::export_dir(dir) {
        let read = source::read_export(&export, args.spill_dir.as_deref())?;
        if as_of.is_some_and(|d| d != read.as_of) {
            return Err(format!(
                "--as-of: the export {} is as of {}",
                shown(&export),
                read.as_of
            ));
        }
        return Ok(read);
    }
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: cannot read: {e}", shown(dir)))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    if crate::ledger_cmd::holds_store(&names) {
        return source::read_store(dir, &dating);
    }
    Err(format!(
        "{}: neither an export ({MANIFEST_FILE}, in DIR or DIR/ledger) nor a durable store",
        shown(dir)
    ))
}

/// Everything `acme recon` does but printing: the report, or an error for people.
pub fn run(args: &ReconArgs) -> Result<(Report, String), String> {
    let tolerance = parse_scaled(&args.cash_tolerance, 2, false)
        .map_err(|e| format!("--cash-tolerance: {e}"))
        .and_then(|t| u64::try_from(t).map_err(|_| "--cash-tolerance: out of range".to_string()))?;
    let read = read_ledger(args)?;
    let cfg = ReconConfig {
        as_of: read.as_of,
        settlement_lag_days: read.settlement_lag_days,
        cash_tolerance_pence: tolerance,
    };
    let text = |p: &PathBuf| read_text(p).map(|t| (shown(p), t));
    let holdings = args.holdings.as_ref().map(text).transpose()?;
    let trades = args.trades.as_ref().map(text).transpose()?;
    let cash = args.cash.iter().map(text).collect::<Result<Vec<_>, _>>()?;
    fn file((name, text): &(String, String)) -> StatementFile<'_> {
        StatementFile { name, text }
    }
    let files = StatementFiles {
        holdings: holdings.as_ref().map(file),
        trades: trades.as_ref().map(file),
        cash: cash.iter().map(file).collect(),
    };
    let mut report = reconcile_files(&cfg, &args.custodian_account, &read.facts, &files)
        .map_err(|e| e.to_string())?;
    if let (Some(s), Some(internal)) = (read.stats, report.levels.first_mut()) {
        internal.notes.push(format!(
            "read through the port at timestamp {}: {} accounts, {} transfers in {} pages; \
             {} transfers committed during the scan left out ({} pages read again)",
            s.timestamp, s.accounts, s.transfers, s.pages, s.late_transfers, s.rereads
        ));
    }
    Ok((report, read.source))
}

pub fn main(args: ReconArgs) -> ExitCode {
    let (report, source) = match run(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("acme recon: {e}");
            return ExitCode::from(1);
        }
    };
    let out = match args.format {
        Format::Table => table(&report, &source),
        Format::Json => serde_json::to_string_pretty(&json(&report, &source)).expect("json") + "\n",
        Format::Csv => csv_out(&report),
    };
    print!("{out}");
    if let Some(p) = &args.html {
        if let Err(e) = std::fs::write(p, html(&report, &source)) {
            eprintln!("acme recon: {}: cannot write: {e}", shown(p));
            return ExitCode::from(1);
        }
    }
    ExitCode::from(exit_code::<String>(&Ok(report)))
}

// ---------------------------------------------------------------------------------------------
// Output

fn cell(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".to_string())
}

fn break_json(b: &Break) -> serde_json::Value {
    serde_json::json!({
        "level": b.level.name(),
        "kind": b.kind.name(),
        "asset": b.asset,
        "account": b.account,
        "ledger": b.ledger.render(),
        "statement": b.statement.render(),
        "difference": b.difference(),
        "classification": b.classification.name(),
        "trades": b.trades,
        "detail": b.detail,
    })
}

pub fn json(r: &Report, source: &str) -> serde_json::Value {
    serde_json::json!({
        "status": r.status(),
        "as_of": r.as_of.to_string(),
        "ledger": source,
        "true_breaks": r.true_breaks(),
        "timing_breaks": r.timing_breaks(),
        "levels": r.levels.iter().map(|l| serde_json::json!({
            "level": l.level.name(),
            "ran": l.skipped.is_none(),
            "skipped": l.skipped,
            "compared": l.compared,
            "notes": l.notes,
        })).collect::<Vec<_>>(),
        "breaks": r.breaks.iter().map(break_json).collect::<Vec<_>>(),
        "positions": r.positions.iter().map(|p| serde_json::json!({
            "asset": p.asset,
            "ledger_settled": fmt_units(p.ledger_settled),
            "ledger_pending": fmt_units(p.ledger_pending),
            "statement_settled": p.statement_settled.map(fmt_units),
            "statement_pending": p.statement_pending.map(fmt_units),
        })).collect::<Vec<_>>(),
    })
}

const CSV_COLUMNS: [&str; 10] = [
    "level",
    "kind",
    "asset",
    "account",
    "ledger",
    "statement",
    "difference",
    "classification",
    "trades",
    "detail",
];

pub fn csv_out(r: &Report) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS).expect("csv");
    for b in &r.breaks {
        w.write_record([
            b.level.name().to_string(),
            b.kind.name().to_string(),
            b.asset.clone(),
            b.account.clone(),
            b.ledger.render().unwrap_or_default(),
            b.statement.render().unwrap_or_default(),
            b.difference().unwrap_or_default(),
            b.classification.name().to_string(),
            b.trades.join(";"),
            b.detail.clone(),
        ])
        .expect("csv");
    }
    String::from_utf8(w.into_inner().expect("csv")).expect("utf-8")
}

fn pad(rows: &[Vec<String>]) -> String {
    let mut widths = vec![0; rows.first().map_or(0, Vec::len)];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub fn table(r: &Report, source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "acme recon: {source} as of {}", r.as_of);
    let _ = writeln!(out);
    for l in &r.levels {
        match &l.skipped {
            Some(why) => {
                let _ = writeln!(out, "  {:<10} skipped: {why}", l.level.name());
            }
            None => {
                let _ = writeln!(out, "  {:<10} {} compared", l.level.name(), l.compared);
                for n in &l.notes {
                    let _ = writeln!(out, "  {:<10}   {n}", "");
                }
            }
        }
    }
    let _ = writeln!(out);
    if r.breaks.is_empty() {
        let _ = writeln!(out, "no breaks");
    } else {
        let mut rows = vec![[
            "LEVEL",
            "KIND",
            "ASSET",
            "ACCOUNT",
            "LEDGER",
            "STATEMENT",
            "DIFFERENCE",
            "CLASS",
            "TRADES",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        for b in &r.breaks {
            rows.push(vec![
                b.level.name().into(),
                b.kind.name().into(),
                b.asset.clone(),
                b.account.clone(),
                cell(b.ledger.render()),
                cell(b.statement.render()),
                cell(b.difference()),
                b.classification.name().into(),
                b.trades.join(" "),
            ]);
        }
        out.push_str(&pad(&rows));
        let _ = writeln!(out);
        for (i, b) in r.breaks.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {} {} {}: {}",
                i + 1,
                b.level.name(),
                b.kind.name(),
                b.asset,
                b.detail
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "status: {} ({} true, {} timing)",
        r.status(),
        r.true_breaks(),
        r.timing_breaks()
    );
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The positions chart: per asset, the ledger's and the statement's units as two stacked bars
/// (settled, then pending), drawn to one scale.
fn svg_chart(r: &Report) -> String {
    let rows = &r.positions;
    if rows.is_empty() {
        return "<p>No positions.</p>".into();
    }
    let pos = |v: i128| v.max(0) as f64;
    let max = rows
        .iter()
        .flat_map(|p| {
            [
                pos(p.ledger_settled) + pos(p.ledger_pending),
                pos(p.statement_settled.unwrap_or(0)) + pos(p.statement_pending.unwrap_or(0)),
            ]
        })
        .fold(1.0_f64, f64::max);
    let (label_w, bar_w, row_h) = (140.0, 560.0, 46.0);
    let height = rows.len() as f64 * row_h + 40.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">",
        label_w + bar_w + 200.0
    );
    for (i, p) in rows.iter().enumerate() {
        let y = 20.0 + i as f64 * row_h;
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\">{}</text>",
            y + 20.0,
            esc(&p.asset)
        );
        let bars = [
            (
                "ledger",
                p.ledger_settled,
                p.ledger_pending,
                "#3465a4",
                "#9fbfe6",
                y,
            ),
            (
                "statement",
                p.statement_settled.unwrap_or(0),
                p.statement_pending.unwrap_or(0),
                "#4e9a06",
                "#b5dc8f",
                y + 18.0,
            ),
        ];
        for (who, settled, pending, dark, light, by) in bars {
            let ws = pos(settled) / max * bar_w;
            let wp = pos(pending) / max * bar_w;
            let missing = who == "statement" && p.statement_settled.is_none();
            let _ = write!(
                s,
                "<rect x=\"{label_w}\" y=\"{by}\" width=\"{ws:.1}\" height=\"14\" fill=\"{dark}\"><title>{who} settled {}</title></rect>\
                 <rect x=\"{:.1}\" y=\"{by}\" width=\"{wp:.1}\" height=\"14\" fill=\"{light}\"><title>{who} pending {}</title></rect>\
                 <text x=\"{:.1}\" y=\"{}\">{who}: {}{}</text>",
                fmt_units(settled),
                label_w + ws,
                fmt_units(pending),
                label_w + ws + wp + 6.0,
                by + 11.0,
                if missing { "no line".to_string() } else { fmt_units(settled + pending) },
                if missing { "" } else { " units" },
            );
        }
    }
    s.push_str("</svg>");
    s
}

pub fn html(r: &Report, source: &str) -> String {
    let mut h = String::new();
    let status_color = if r.is_clean() { "#4e9a06" } else { "#cc0000" };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ACME reconciliation {}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         td.num{{text-align:right;font-family:monospace}}tr.true td{{background:#fde8e8}}tr.timing td{{background:#fff7e0}}</style></head><body>\n",
        r.as_of
    );
    let _ = writeln!(h, "<h1>Reconciliation as of {}</h1>", r.as_of);
    let _ = writeln!(
        h,
        "<p>Ledger <code>{}</code>. Status: <strong style=\"color:{status_color}\">{}</strong> ({} true break(s), {} timing break(s)).</p>",
        esc(source),
        r.status(),
        r.true_breaks(),
        r.timing_breaks()
    );
    h.push_str("<h2>Summary</h2>\n<table><tr><th>level</th><th>ran</th><th>compared</th><th>true</th><th>timing</th><th>notes</th></tr>\n");
    for l in &r.levels {
        let count = |c: Classification| {
            r.breaks
                .iter()
                .filter(|b| b.level == l.level && b.classification == c)
                .count()
        };
        let mut notes = l.notes.clone();
        if let Some(why) = &l.skipped {
            notes.insert(0, format!("skipped: {why}"));
        }
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            l.level.name(),
            if l.skipped.is_none() { "yes" } else { "no" },
            l.compared,
            count(Classification::True),
            count(Classification::Timing),
            esc(&notes.join("; "))
        );
    }
    h.push_str("</table>\n<h2>Breaks</h2>\n");
    if r.breaks.is_empty() {
        h.push_str("<p>No breaks.</p>\n");
    } else {
        h.push_str("<table><tr><th>level</th><th>kind</th><th>asset</th><th>account</th><th>ledger</th><th>statement</th><th>difference</th><th>classification</th><th>trades</th><th>what to do</th></tr>\n");
        for b in &r.breaks {
            let _ = writeln!(
                h,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                b.classification.name(),
                b.level.name(),
                b.kind.name(),
                esc(&b.asset),
                esc(&b.account),
                esc(&cell(b.ledger.render())),
                esc(&cell(b.statement.render())),
                esc(&cell(b.difference())),
                b.classification.name(),
                esc(&b.trades.join(" ")),
                esc(&b.detail)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h2>Positions: ledger against statement</h2>\n<p>Dark: settled units; light: pending units.</p>\n");
    h.push_str(&svg_chart(r));
    h.push_str("\n</body></html>\n");
    h
}

/// Writes the files of `acme sim --export` under `dir`.
pub fn write_export(dir: &Path, files: &[ExportFile]) -> Result<(), String> {
    for f in files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("{}: cannot create: {e}", shown(parent)))?;
        }
        std::fs::write(&path, &f.bytes)
            .map_err(|e| format!("{}: cannot write: {e}", shown(&path)))?;
    }
    Ok(())
}
