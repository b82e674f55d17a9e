//! The helpers of the `acme serve` tests: the real binary on an ephemeral port and a
//! temporary data directory, and a tiny HTTP/1.1 client over raw TCP (one request a
//! connection).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHANNEL: &str = "channel-token-for-tests-0001";
pub const AUDITOR: &str = "auditor-token-for-tests-0001";
pub const OPERATIONS: &str = "operations-token-for-tests-01";

pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, extra: &[&std::ffi::OsStr]) -> Server {
        std::fs::create_dir_all(dir).expect("data dir");
        let tokens = dir.join("test-tokens");
        std::fs::write(
            &tokens,
            format!("channel {CHANNEL}\nauditor {AUDITOR}\noperations {OPERATIONS}\n"),
        )
        .expect("tokens file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_acme"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir)
            .arg("--tokens")
            .arg(&tokens)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("acme serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the listening line");
        let addr = line
            .trim()
            .strip_prefix("acme serve: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, addr }
    }

    /// As `kill -9`: no clean stop at all.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        self.child.wait().expect("exits")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// One request on its own connection; `raw_head` extra header lines are sent as given.
pub fn send(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    try_send(addr, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// As [`send`], but a server that is not there (or goes away mid-request) is an `Err`.
pub fn try_send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    // The server may refuse a large body before reading it all.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err("no reply".into());
    }
    Ok(parse(&raw))
}

pub fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no reply head in {text:?}"));
    let mut lines = head.lines();
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub fn get(addr: &str, path: &str, token: &str) -> Reply {
    send(addr, "GET", path, &[("Authorization", &bearer(token))], b"")
}

pub fn post(addr: &str, path: &str, token: &str, key: Option<&str>, body: &str) -> Reply {
    let auth = bearer(token);
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(k) = key {
        headers.push(("Idempotency-Key", k));
    }
    send(addr, "POST", path, &headers, body.as_bytes())
}

/// A problem+json refusal with this status (and field, if given).
pub fn assert_problem(r: &Reply, status: u16, field: Option<&str>) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{r:?}"
    );
    let p = r.json();
    assert_eq!(p["status"], status, "{r:?}");
    assert!(
        p["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("/problems/")),
        "{r:?}"
    );
    assert!(p["title"].is_string() && p["detail"].is_string(), "{r:?}");
    if let Some(f) = field {
        assert_eq!(p["field"], f, "{r:?}");
    }
}

pub fn wait_for_state(addr: &str, location: &str, want: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = get(addr, location, AUDITOR);
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json();
        if v["state"] == want {
            return v;
        }
        assert!(Instant::now() < deadline, "never {want}: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn data_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub const CONTRIBUTE: &str = r#"{"member_id": "M-1", "kind": "contribute", "amount": "100.00"}"#;
pub const MEMBER: &str = r#"{"member_id": "M-1", "risk_profile": "balanced"}"#;
