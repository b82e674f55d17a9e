//! The canary's HTTP/1.1 client: one request a connection, over plain TCP, with a deadline.
//! Enough for a JSON API on a private network; TLS is a proxy's job in front of the service.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long one request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(&self.body).map_err(|e| format!("the body is not JSON ({e})"))
    }
}

/// The target: `http://HOST:PORT` with no path.
#[derive(Clone, Debug)]
pub struct Target {
    host_port: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--target {url:?}: expected http://HOST:PORT"))?;
        let host_port = rest.trim_end_matches('/');
        if host_port.is_empty() || host_port.contains('/') {
            return Err(format!(
                "--target {url:?}: expected http://HOST:PORT, no path"
            ));
        }
        Ok(Target {
            host_port: host_port.to_string(),
        })
    }

    /// Sends one request; `Err` when the target cannot be reached or answers no HTTP.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Reply, String> {
        let mut stream = self.connect()?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.host_port,
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        let io = |e: std::io::Error| format!("{method} {path}: {e}");
        stream.write_all(request.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(io)?;
        parse(&raw).map_err(|e| format!("{method} {path}: {e}"))
    }

    fn connect(&self) -> Result<TcpStream, String> {
        let addrs = self
            .host_port
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", self.host_port))?;
        let mut last = format!("{}: no address", self.host_port);
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT) {
                Ok(s) => {
                    let timeouts = s
                        .set_read_timeout(Some(REQUEST_TIMEOUT))
                        .and_then(|()| s.set_write_timeout(Some(REQUEST_TIMEOUT)));
                    timeouts.map_err(|e| format!("{addr}: {e}"))?;
                    return Ok(s);
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    }
}

fn parse(raw: &[u8]) -> Result<Reply, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = String::from_utf8_lossy(&raw[split + 4..]).into_owned();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_split_into_status_headers_and_body() {
        let raw = b"HTTP/1.1 202 Accepted\r\nLocation: /v1/instructions/7\r\nx: y\r\n\r\n{\"a\":1}";
        let r = parse(raw).unwrap();
        assert_eq!(r.status, 202);
        assert_eq!(r.header("location"), Some("/v1/instructions/7"));
        assert_eq!(r.json().unwrap()["a"], 1);
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse(b"SSH-2.0\r\n\r\n")
            .unwrap_err()
            .contains("status line"));
    }

    #[test]
    fn a_target_is_http_host_and_port_only() {
        assert!(Target::parse("http://127.0.0.1:8080/").is_ok());
        assert!(Target::parse("https://x:1")
            .unwrap_err()
            .contains("http://"));
        assert!(Target::parse("http://x:1/v1")
            .unwrap_err()
            .contains("no path"));
    }
}
