//! What `acme serve` is configured with: the funds members may trade (the platform's fund ids
//! with their ISIN, name and last closing price) and the bearer tokens, from one JSON file, or
//! defaults that need no file at all. The risk profiles are the model portfolios the processes
//! run (`ModelSet::V1`), so they are not configured here: a profile the processes do not know
//! could never be re-balanced.
//!
//! `custodian` says who answers the platform's trades: `"simulated"` (the default, for demos and
//! tests: [`crate::jobs`]) or `"file-drop"` (orders written to an outbox folder, the custodian's
//! answers read from an inbox folder: [`crate::filedrop`]), by default `DATA/custodian/outbox`
//! and `DATA/custodian/inbox`; `{"mode": "file-drop", "outbox": DIR, "inbox": DIR}` names
//! the folders (a relative path is under the data directory).

use crate::auth::{Role, TokenTable};
use crate::decimal;
use acme_ledger::chart::FundId;
use acme_processes::money::Price;
use acme_processes::trading::rebalancing::ModelSet;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One fund as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fund {
    pub id: FundId,
    pub isin: String,
    pub name: String,
    pub price: Price,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub funds: Vec<Fund>,
    pub tokens: TokenTable,
    /// Instructions and registrations waiting for intake at once; beyond it, 429.
    pub in_flight_max: usize,
    pub custodian: CustodianMode,
}

/// Who answers the trades the platform places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustodianMode {
    /// The simulated custodian in memory, driven by the valuation and settlement jobs.
    Simulated,
    /// Files: orders out to `outbox`, confirmations and settlement notices in from `inbox`.
    FileDrop { outbox: PathBuf, inbox: PathBuf },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    funds: Option<Vec<FileFund>>,
    #[serde(default)]
    tokens: Vec<FileToken>,
    #[serde(default)]
    in_flight_max: Option<usize>,
    /// A string or an object: see [`parse_custodian`].
    #[serde(default)]
    custodian: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFund {
    fund: FundId,
    isin: String,
    name: String,
    /// Pounds per unit, a decimal string with up to 6 places.
    price: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToken {
    role: String,
    /// The token's SHA-256, lower-case hex: the file never holds a token itself.
    sha256: String,
}

/// The default funds: the model set's five, with ISINs of this platform's own (valid check
/// digits) and a price of £1.
pub fn default_funds() -> Vec<Fund> {
    const ISINS: [&str; 5] = [
        "GB00ACME0019",
        "GB00ACME0027",
        "GB00ACME0035",
        "GB00ACME0043",
        "GB00ACME0050",
    ];
    const NAMES: [&str; 5] = [
        "ACME Global Equity",
        "ACME UK Equity",
        "ACME Property",
        "ACME Corporate Bond",
        "ACME Gilt",
    ];
    ModelSet::V1
        .funds
        .iter()
        .enumerate()
        .map(|(i, &id)| Fund {
            id,
            isin: ISINS[i].into(),
            name: NAMES[i].into(),
            price: Price(1_000_000),
        })
        .collect()
}

/// ISO 6166: two letters, nine letters or digits, a Luhn check digit over their base-36 digits.
pub fn isin_is_valid(isin: &str) -> bool {
    let b = isin.as_bytes();
    if b.len() != 12
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..11]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        || !b[11].is_ascii_digit()
    {
        return false;
    }
    let digits: String = b[..11]
        .iter()
        .map(|&c| (c as char).to_digit(36).unwrap_or(0).to_string())
        .collect();
    let mut sum = 0;
    for (i, d) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(d - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    (10 - sum % 10) % 10 == u32::from(b[11] - b'0')
}

fn parse_funds(funds: Vec<FileFund>) -> Result<Vec<Fund>, String> {
    let mut out: Vec<Fund> = Vec::new();
    for (i, f) in funds.into_iter().enumerate() {
        let at = format!("funds[{i}]");
        if !ModelSet::V1.funds.contains(&f.fund) {
            return Err(format!(
                "{at}.fund: {} is not a fund the processes run ({:?})",
                f.fund,
                ModelSet::V1.funds
            ));
        }
        if !isin_is_valid(&f.isin) {
            return Err(format!("{at}.isin: `{}` is not a valid ISIN", f.isin));
        }
        if out.iter().any(|o| o.id == f.fund || o.isin == f.isin) {
            return Err(format!(
                "{at}: fund {} or ISIN {} given twice",
                f.fund, f.isin
            ));
        }
        let micro = decimal::parse_positive("price", &f.price, 6, u64::MAX)
            .map_err(|p| format!("{at}.price: {}", p.detail))?;
        out.push(Fund {
            id: f.fund,
            isin: f.isin,
            name: f.name,
            price: Price(micro),
        });
    }
    Ok(out)
}

/// Reads the configuration file (if any) and the tokens file (if any); with neither token
/// source, makes (once) and reads development tokens in `data_dir/tokens`.
pub fn load(
    config: Option<&Path>,
    tokens_file: Option<&Path>,
    data_dir: &Path,
) -> Result<Settings, String> {
    let file: FileConfig = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("config {}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?
        }
        None => FileConfig {
            funds: None,
            tokens: Vec::new(),
            in_flight_max: None,
            custodian: None,
        },
    };
    let custodian = parse_custodian(file.custodian.as_ref(), data_dir)?;
    let funds = match file.funds {
        Some(funds) if !funds.is_empty() => parse_funds(funds)?,
        Some(_) => return Err("config: `funds` is empty".into()),
        None => default_funds(),
    };
    let mut tokens = TokenTable::default();
    for (i, t) in file.tokens.iter().enumerate() {
        let role = Role::parse(&t.role).ok_or_else(|| {
            format!(
                "config tokens[{i}].role: `{}` is not channel, operations or auditor",
                t.role
            )
        })?;
        tokens
            .add_hash(role, &t.sha256)
            .map_err(|e| format!("config tokens[{i}].sha256: {e}"))?;
    }
    if let Some(path) = tokens_file {
        tokens.add_file(path)?;
    }
    if tokens.is_empty() {
        let path = data_dir.join("tokens");
        crate::auth::ensure_dev_tokens(&path)?;
        tokens.add_file(&path)?;
        // The path only: tokens never reach a log.
        eprintln!(
            "acme serve: no tokens configured; development tokens (ROLE TOKEN) are in {}",
            path.display()
        );
    }
    Ok(Settings {
        funds,
        tokens,
        in_flight_max: file.in_flight_max.unwrap_or(crate::http::IN_FLIGHT_MAX),
        custodian,
    })
}

/// `"simulated"`, `"file-drop"`, or `{"mode": "file-drop", "outbox": DIR, "inbox": DIR}`
/// (either folder left out is its default under `data_dir/custodian`).
fn parse_custodian(
    value: Option<&serde_json::Value>,
    data_dir: &Path,
) -> Result<CustodianMode, String> {
    use serde_json::Value;
    const MODES: &str = "the custodian is \"simulated\" or \"file-drop\"";
    let under = |p: &str| data_dir.join(p);
    let file_drop = |outbox: Option<&str>, inbox: Option<&str>| CustodianMode::FileDrop {
        outbox: under(outbox.unwrap_or("custodian/outbox")),
        inbox: under(inbox.unwrap_or("custodian/inbox")),
    };
    let mode = |m: &str| match m {
        "simulated" | "file-drop" => Ok(()),
        other => Err(format!("config custodian: `{other}`: {MODES}")),
    };
    match value {
        None => Ok(CustodianMode::Simulated),
        Some(Value::String(m)) => {
            mode(m)?;
            Ok(if m == "simulated" {
                CustodianMode::Simulated
            } else {
                file_drop(None, None)
            })
        }
        Some(Value::Object(map)) => {
            if let Some(k) = map
                .keys()
                .find(|k| !["mode", "outbox", "inbox"].contains(&k.as_str()))
            {
                return Err(format!(
                    "config custodian.{k}: unknown field; the fields are mode, outbox and inbox"
                ));
            }
            let text = |k: &str| match map.get(k) {
                None => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.as_str())),
                Some(_) => Err(format!("config custodian.{k}: must be a non-empty string")),
            };
            match text("mode")? {
                Some("file-drop") => Ok(file_drop(text("outbox")?, text("inbox")?)),
                Some("simulated") if map.len() == 1 => Ok(CustodianMode::Simulated),
                Some("simulated") => {
                    Err("config custodian: a simulated custodian has no folders".into())
                }
                Some(other) => Err(format!("config custodian.mode: `{other}`: {MODES}")),
                None => Err("config custodian.mode: is required".into()),
            }
        }
        Some(_) => Err(format!("config custodian: {MODES}, or an object with mode")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isins_are_checked() {
        assert!(isin_is_valid("US0378331005"));
        assert!(!isin_is_valid("US0378331006"));
        for f in default_funds() {
            assert!(isin_is_valid(&f.isin), "{}", f.isin);
        }
        assert!(!isin_is_valid("GB00ACME001"));
        assert!(!isin_is_valid("gb00ACME0019"));
    }

    #[test]
    fn a_config_file_is_checked_field_by_field() {
        let dir = std::env::temp_dir().join(format!("acme-api-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("config.json");
        let write = |text: &str| std::fs::write(&path, text).expect("write");
        write(r#"{"funds": [{"fund": 1, "isin": "US0378331005", "name": "X", "price": "2.5"}]}"#);
        let s = load(Some(&path), None, &dir).expect("loads");
        assert_eq!(s.funds.len(), 1);
        assert_eq!(s.funds[0].price, Price(2_500_000));
        assert!(!s.tokens.is_empty(), "dev tokens were made");
        write(r#"{"funds": [{"fund": 9, "isin": "US0378331005", "name": "X", "price": "1"}]}"#);
        let e = load(Some(&path), None, &dir).expect_err("unknown fund");
        assert!(e.contains("funds[0].fund"), "{e}");
        write(r#"{"tokens": [{"role": "root", "sha256": "00"}]}"#);
        let e = load(Some(&path), None, &dir).expect_err("bad role");
        assert!(e.contains("tokens[0].role"), "{e}");
        assert_eq!(s.custodian, CustodianMode::Simulated, "the default");
        write(r#"{"custodian": "file-drop"}"#);
        let s = load(Some(&path), None, &dir).expect("loads");
        let outbox = dir.join("custodian/outbox");
        let inbox = dir.join("custodian/inbox");
        assert_eq!(s.custodian, CustodianMode::FileDrop { outbox, inbox });
        write(r#"{"custodian": {"mode": "file-drop", "inbox": "/srv/in", "outbox": "out"}}"#);
        let s = load(Some(&path), None, &dir).expect("loads");
        let (outbox, inbox) = (dir.join("out"), PathBuf::from("/srv/in"));
        assert_eq!(s.custodian, CustodianMode::FileDrop { outbox, inbox });
        for (bad, names) in [
            (r#"{"custodian": "fax"}"#, "custodian: `fax`"),
            (
                r#"{"custodian": {"mode": "file-drop", "outbx": "o"}}"#,
                "custodian.outbx",
            ),
            (r#"{"custodian": {"inbox": "i"}}"#, "custodian.mode"),
            (r#"{"custodian": 3}"#, "custodian"),
        ] {
            write(bad);
            let e = load(Some(&path), None, &dir).expect_err(bad);
            assert!(e.contains(names), "{bad}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
