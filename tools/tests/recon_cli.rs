//! `acme recon` as operations run it: a simulated day exported to disk, reconciled by the binary;
//! exit codes, the output formats, the HTML report, errors that name file, line and field.

// The test plays operations: it writes and edits statement files on disk.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn acme(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acme"))
        .args(args)
        .output()
        .expect("acme runs")
}

/// A fresh export of seed 5 under a directory of this test's own.
struct Day {
    dir: PathBuf,
    date: String,
}

impl Day {
    fn new(name: &str) -> Day {
        let dir =
            std::env::temp_dir().join(format!("acme-recon-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = acme(&[
            "sim",
            "--seed",
            "5",
            "--days",
            "3",
            "--members",
            "300",
            "--export",
            dir.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "sim --export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let holdings = std::fs::read_dir(dir.join("custodian"))
            .expect("custodian dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .find(|n| n.starts_with("holdings-") && n.ends_with(".csv"))
            .expect("a holdings statement");
        let date = holdings
            .trim_start_matches("holdings-")
            .trim_end_matches(".csv")
            .to_string();
        Day { dir, date }
    }

    fn path(&self, rel: &str) -> String {
        self.dir
            .join(rel.replace("DATE", &self.date))
            .to_string_lossy()
            .to_string()
    }

    /// `acme recon` with every statement of the day and extra arguments.
    fn recon(&self, holdings: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "recon".to_string(),
            "--ledger".into(),
            self.path("ledger"),
            "--holdings".into(),
            self.path(holdings),
            "--trades".into(),
            self.path("custodian/trades-DATE.csv"),
            "--cash".into(),
            self.path("custodian/cash-DATE.csv"),
            "--cash".into(),
            self.path("bank/cash-DATE.csv"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        acme(&args)
    }

    fn edit(&self, rel: &str, f: impl FnOnce(String) -> String) {
        let p = self.path(rel);
        let t = std::fs::read_to_string(&p).expect("readable");
        std::fs::write(&p, f(t)).expect("writable");
    }
}

impl Drop for Day {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Adds `pence` to the bank's statement.
fn bump_bank(day: &Day, pence: i64) {
    day.edit("bank/cash-DATE.csv", |t| {
        let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
        let mut f: Vec<String> = lines[1].split(',').map(str::to_string).collect();
        let (pounds, p) = f[3].split_once('.').expect("pounds.pence");
        let total: i64 = pounds.parse::<i64>().unwrap() * 100 + p.parse::<i64>().unwrap() + pence;
        f[3] = format!("{}.{:02}", total / 100, total % 100);
        lines[1] = f.join(",");
        lines.join("\n") + "\n"
    });
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn an_exported_clean_day_reconciles_clean_and_exits_0() {
    let day = Day::new("clean");
    for f in [
        "ledger/manifest.txt",
        "ledger/accounts.bin",
        "ledger/transfers.bin",
        "custodian/holdings-DATE.xml",
        "bank/cash-DATE.csv",
    ] {
        assert!(Path::new(&day.path(f)).exists(), "{f} not exported");
    }
    let out = day.recon("custodian/holdings-DATE.csv", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("status: clean"), "{text}");
    assert!(text.contains("no breaks"), "{text}");
    // The semt.002 twin, told apart by content, gives the same verdict.
    let out = day.recon("custodian/holdings-DATE.xml", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["status"], "clean");
}

#[test]
fn json_has_the_documented_fields_and_a_planted_break_exits_2() {
    let day = Day::new("planted");
    let out = day.recon("custodian/holdings-DATE.csv", &["--format", "json"]);
    let v = json_of(&out);
    assert_eq!(v["status"], "clean");
    assert_eq!(v["breaks"].as_array().map(Vec::len), Some(0));
    assert_eq!(v["levels"].as_array().map(Vec::len), Some(4));
    // Change one holding: exit 2 and one true positions break, fully described.
    day.edit("custodian/holdings-DATE.csv", |t| {
        let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
        let mut f: Vec<String> = lines[1].split(',').map(str::to_string).collect();
        f[3] = "999999.000000".into();
        lines[1] = f.join(",");
        lines.join("\n") + "\n"
    });
    let out = day.recon("custodian/holdings-DATE.csv", &["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["status"], "breaks");
    let breaks = v["breaks"].as_array().expect("breaks");
    assert_eq!(breaks.len(), 1, "{breaks:?}");
    let b = &breaks[0];
    for field in [
        "level",
        "kind",
        "asset",
        "ledger",
        "statement",
        "difference",
        "classification",
    ] {
        assert!(
            b.get(field).is_some_and(|x| !x.is_null()),
            "missing {field}: {b}"
        );
    }
    assert_eq!(b["level"], "positions");
    assert_eq!(b["kind"], "settled_units");
    assert_eq!(b["classification"], "true");
    assert_eq!(b["statement"], "999999.000000");
    // The same as CSV and as a table.
    let out = day.recon("custodian/holdings-DATE.csv", &["--format", "csv"]);
    assert_eq!(out.status.code(), Some(2));
    let csv = String::from_utf8_lossy(&out.stdout);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("level,kind,asset,account,ledger,statement,difference,classification,trades,detail")
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("positions,settled_units,")),
        "{csv}"
    );
    let out = day.recon("custodian/holdings-DATE.csv", &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("status: breaks (1 true, 0 timing)"));
}

#[test]
fn a_malformed_file_exits_1_naming_file_line_and_field() {
    let day = Day::new("malformed");
    day.edit("custodian/trades-DATE.csv", |t| {
        let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
        let mut f: Vec<String> = lines[1].split(',').map(str::to_string).collect();
        f[6] = "one pound".into();
        lines[1] = f.join(",");
        lines.join("\n") + "\n"
    });
    let out = day.recon("custodian/holdings-DATE.csv", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("trades-{}.csv", day.date))
            && err.contains("line 2")
            && err.contains("`price`"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing half-reconciled is printed");
}

#[test]
fn a_damaged_ledger_export_exits_1_naming_the_file() {
    let day = Day::new("damaged");
    let p = day.path("ledger/accounts.bin");
    let mut bytes = std::fs::read(&p).expect("accounts");
    bytes[64 + 128 * 3 + 40] ^= 0x10;
    std::fs::write(&p, &bytes).expect("write");
    let out = day.recon("custodian/holdings-DATE.csv", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("accounts.bin") && err.contains("checksum"),
        "{err}"
    );
    // Truncated: the record where it stops is named.
    std::fs::write(&p, &bytes[..64 + 128 * 10 + 5]).expect("write");
    let out = day.recon("custodian/holdings-DATE.csv", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("accounts.bin") && err.contains("record 11"),
        "{err}"
    );
}

#[test]
fn levels_without_a_statement_are_skipped_and_said_so() {
    let day = Day::new("skipped");
    let out = acme(&["recon", "--ledger", &day.path("ledger"), "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let levels = v["levels"].as_array().expect("levels");
    let ran: Vec<(&str, bool)> = levels
        .iter()
        .map(|l| (l["level"].as_str().unwrap(), l["ran"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        ran,
        vec![
            ("internal", true),
            ("positions", false),
            ("trades", false),
            ("cash", false)
        ]
    );
    assert!(levels[1]["skipped"]
        .as_str()
        .is_some_and(|s| s.contains("--holdings")));
    let out = acme(&["recon", "--ledger", &day.path("ledger")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("skipped: no holdings statement"));
}

#[test]
fn the_html_report_has_a_summary_the_breaks_and_a_chart() {
    let day = Day::new("html");
    bump_bank(&day, 100);
    let html = day.dir.join("report.html");
    let out = day.recon(
        "custodian/holdings-DATE.csv",
        &["--html", html.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let page = std::fs::read_to_string(&html).expect("html written");
    for needle in [
        "<h2>Summary</h2>",
        "<h2>Breaks</h2>",
        "cash_balance",
        "ACME-CLIENT-MONEY",
        "<svg",
        "GBACM",
    ] {
        assert!(page.contains(needle), "no {needle} in the report");
    }
}

#[test]
fn a_cash_tolerance_absorbs_small_differences() {
    let day = Day::new("tolerance");
    bump_bank(&day, 3);
    assert_eq!(
        day.recon("custodian/holdings-DATE.csv", &[]).status.code(),
        Some(2)
    );
    assert_eq!(
        day.recon("custodian/holdings-DATE.csv", &["--cash-tolerance", "0.03"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        day.recon("custodian/holdings-DATE.csv", &["--cash-tolerance", "0.02"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_durable_store_reconciles_read_only_like_its_export() {
    let dir = std::env::temp_dir().join(format!("acme-recon-cli-{}-store", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, export) = (dir.join("store"), dir.join("export"));
    let out = acme(&[
        "sim",
        "--seed",
        "5",
        "--days",
        "2",
        "--members",
        "200",
        "--data",
        store.to_str().unwrap(),
        "--export",
        export.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = std::fs::read_to_string(export.join("ledger/manifest.txt")).unwrap();
    let date = manifest
        .lines()
        .find_map(|l| l.strip_prefix("as_of="))
        .unwrap()
        .to_string();
    let listing = |d: &Path| {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(&store);
    let run = |ledger: &Path, holdings_delta: bool| {
        let p = |rel: &str| {
            export
                .join(rel.replace("DATE", &date))
                .to_string_lossy()
                .into_owned()
        };
        if holdings_delta {
            let h = p("custodian/holdings-DATE.csv");
            let t = std::fs::read_to_string(&h).unwrap();
            std::fs::write(&h, t.replacen(",0.000000\n", ",0.000001\n", 1)).unwrap();
        }
        let args = [
            "recon".to_string(),
            "--format".into(),
            "json".into(),
            "--ledger".into(),
            ledger.to_string_lossy().into_owned(),
            "--holdings".into(),
            p("custodian/holdings-DATE.csv"),
            "--trades".into(),
            p("custodian/trades-DATE.csv"),
            "--cash".into(),
            p("custodian/cash-DATE.csv"),
            "--cash".into(),
            p("bank/cash-DATE.csv"),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = acme(&args);
        (out.status.code(), json_of(&out))
    };
    let (code, from_store) = run(&store, false);
    assert_eq!(code, Some(0), "{from_store:#}");
    assert!(from_store["ledger"]
        .as_str()
        .is_some_and(|s| s.contains("durable store")));
    assert!(from_store["levels"][0]["notes"]
        .to_string()
        .contains("journal replayed"));
    let (_, from_export) = run(&export.join("ledger"), false);
    assert_eq!(from_store["positions"], from_export["positions"]);
    // Read-only: the store's files are as they were.
    assert_eq!(listing(&store), before);
    // A planted difference in the statement (one micro-unit pending) is the one break.
    let (code, v) = run(&store, true);
    assert_eq!(code, Some(2), "{v:#}");
    assert_eq!(v["breaks"].as_array().map(Vec::len), Some(1), "{v:#}");
    assert_eq!(v["breaks"][0]["kind"], "pending_units");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The binary on bad files: the named cases of issue 12 exit with their documented codes (a
/// 24-digit figure used to exit 101, a panic), and seeded byte mutations of every statement exit
/// 0, 1 or 2, never anything else. The fuzz test (`tests/tests/recon_fuzz.rs`) runs 50,000 cases
/// in process, a million in the soak; these check the exit codes the binary really returns.
#[test]
fn bad_files_exit_1_or_2_and_mutated_ones_never_anything_but_0_1_or_2() {
    let day = Day::new("bad-files");
    let field = |n: usize, v: &'static str| {
        move |t: String| {
            let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
            let mut f: Vec<String> = lines[1].split(',').map(str::to_string).collect();
            f[n] = v.to_string();
            lines[1] = f.join(",");
            lines.join("\n") + "\n"
        }
    };
    type Edit = Box<dyn Fn(String) -> String>;
    let cases: Vec<(&str, &str, Edit, i32)> = vec![
        (
            "holdings 24 digits",
            "custodian/holdings-DATE.csv",
            Box::new(field(3, "123456789012345678901234")),
            1,
        ),
        (
            "semt.002 24 digits",
            "custodian/holdings-DATE.xml",
            Box::new(|t: String| t.replacen("<Unit>", "<Unit>123456789012345678901234", 1)),
            1,
        ),
        (
            "unknown sub-balance",
            "custodian/holdings-DATE.xml",
            Box::new(|t: String| t.replacen("<Cd>AWAS</Cd>", "<Cd>BLOK</Cd>", 1)),
            1,
        ),
        (
            "price 10^30",
            "custodian/trades-DATE.csv",
            Box::new(field(6, "1000000000000000000000000000000")),
            1,
        ),
        (
            "cash 10^23",
            "bank/cash-DATE.csv",
            Box::new(field(3, "99999999999999999999999")),
            1,
        ),
        (
            "no settled cash line",
            "custodian/cash-DATE.csv",
            Box::new(|t: String| {
                t.lines()
                    .filter(|l| !l.contains("CASH-SETTLED"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n"
            }),
            2,
        ),
    ];
    for (what, file, edit, want) in &cases {
        let original = std::fs::read(day.path(file)).expect("readable");
        day.edit(file, edit);
        let holdings = if file.ends_with(".xml") {
            *file
        } else {
            "custodian/holdings-DATE.csv"
        };
        let out = day.recon(holdings, &[]);
        assert_eq!(
            out.status.code(),
            Some(*want),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(day.path(file), original).expect("writable");
    }
    // Seeded byte mutations (xorshift), a few per statement.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let statements = [
        "custodian/holdings-DATE.csv",
        "custodian/holdings-DATE.xml",
        "custodian/trades-DATE.csv",
        "custodian/cash-DATE.csv",
        "bank/cash-DATE.csv",
    ];
    for file in statements {
        let original = std::fs::read(day.path(file)).expect("readable");
        for _ in 0..4 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                match next() % 3 {
                    0 => bytes[at] = b"0123456789-.,<>\n9"[(next() % 17) as usize],
                    1 => bytes[at] ^= 1 << (next() % 8),
                    _ => bytes.truncate(at.max(1)),
                }
            }
            std::fs::write(day.path(file), &bytes).expect("writable");
            let holdings = if file.ends_with(".xml") {
                file
            } else {
                statements[0]
            };
            let code = day.recon(holdings, &[]).status.code();
            assert!(matches!(code, Some(0..=2)), "{file} mutated: exit {code:?}");
        }
        std::fs::write(day.path(file), original).expect("writable");
    }
}
