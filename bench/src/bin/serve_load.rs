//! Open-loop load for `acme serve`: contributions sent at a fixed rate, whatever the server's
//! answers, with each request's latency counted from the moment it was due, not from when it
//! was sent. A closed-loop generator (wrk) waits for each answer before the next request, so a
//! server stall slows the load down and hides itself (coordinated omission); here a stall
//! makes every request due during it late, and the percentiles show it.
//!
//! Usage: `serve_load ADDR TOKEN RATE_PER_S SECONDS CONNECTIONS MEMBERS`. Members M-1 ..
//! M-MEMBERS must be registered. Each connection (one thread, HTTP/1.1 keep-alive) takes every
//! CONNECTIONS-th slot of the schedule; a request that cannot go out at its slot (the previous
//! answer on its connection is late) goes as soon as it can, and its wait is in its latency.

// A measuring tool: it is the wall clock and the sockets it measures with.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Args {
    addr: String,
    token: String,
    rate_per_s: u64,
    seconds: u64,
    connections: u64,
    members: u64,
}

fn args() -> Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 6 {
        return Err("usage: serve_load ADDR TOKEN RATE_PER_S SECONDS CONNECTIONS MEMBERS".into());
    }
    let number = |i: usize, name: &str| {
        a[i].parse::<u64>().ok().filter(|n| *n > 0).ok_or(format!(
            "{name} must be a positive whole number, not {:?}",
            a[i]
        ))
    };
    Ok(Args {
        addr: a[0].clone(),
        token: a[1].clone(),
        rate_per_s: number(2, "RATE_PER_S")?,
        seconds: number(3, "SECONDS")?,
        connections: number(4, "CONNECTIONS")?,
        members: number(5, "MEMBERS")?,
    })
}

/// What one connection saw: latencies in microseconds, and counts of answers by class.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    /// (due time since the start in ms, latency in µs) of each request over 50 ms: when the
    /// stalls came.
    slow: Vec<(u64, u64)>,
    accepted: u64,
    other: u64,
    errors: u64,
}

fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("serve_load: {e}");
            std::process::exit(2);
        }
    };
    let interval_ns = 1_000_000_000 * args.connections / args.rate_per_s;
    let slots = args.rate_per_s * args.seconds / args.connections;
    let start = Instant::now() + Duration::from_millis(100);
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.connections)
            .map(|c| {
                let args = &args;
                s.spawn(move || {
                    // Connections start spread over one interval, not all at once.
                    let offset = Duration::from_nanos(interval_ns * c / args.connections);
                    connection(args, c, start + offset, interval_ns, slots)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a connection thread"))
            .collect()
    });
    report(&args, tallies, start.elapsed());
}

fn connection(args: &Args, c: u64, first: Instant, interval_ns: u64, slots: u64) -> Tally {
    let mut tally = Tally::default();
    let mut stream: Option<BufReader<TcpStream>> = None;
    for slot in 0..slots {
        let due = first + Duration::from_nanos(interval_ns * slot);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let member = (c * slots + slot) % args.members + 1;
        let request = format!(
            "POST /v1/instructions HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Idempotency-Key: \"open-{c}-{slot}\"\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{}",
            args.addr,
            args.token,
            body(member).len(),
            body(member)
        );
        match exchange(&args.addr, &mut stream, request.as_bytes()) {
            Ok(202) => tally.accepted += 1,
            Ok(_) => tally.other += 1,
            Err(_) => {
                tally.errors += 1;
                stream = None;
            }
        }
        let late = Instant::now().duration_since(due);
        let late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        tally.latencies_us.push(late_us);
        if late_us > 50_000 {
            let due_ms = due.duration_since(first).as_millis() as u64;
            tally.slow.push((due_ms, late_us));
        }
    }
    tally
}

fn body(member: u64) -> String {
    format!(r#"{{"member_id": "M-{member}", "kind": "contribute", "amount": "1.00"}}"#)
}

/// Sends one request on the connection (opening it if needed) and reads the answer's status,
/// skipping its body.
fn exchange(
    addr: &str,
    stream: &mut Option<BufReader<TcpStream>>,
    request: &[u8],
) -> Result<u16, String> {
    if stream.is_none() {
        let s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        *stream = Some(BufReader::new(s));
    }
    let reader = stream.as_mut().ok_or("no connection")?;
    reader
        .get_mut()
        .write_all(request)
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(format!("no status in {line:?}"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| "a bad Content-Length")?;
            }
        }
    }
    let mut skip = vec![0u8; length];
    reader.read_exact(&mut skip).map_err(|e| e.to_string())?;
    Ok(status)
}

fn report(args: &Args, tallies: Vec<Tally>, elapsed: Duration) {
    let mut latencies: Vec<u64> = Vec::new();
    let (mut accepted, mut other, mut errors) = (0, 0, 0);
    let mut slow_by_100ms: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
    for t in tallies {
        for (due_ms, us) in &t.slow {
            let w = slow_by_100ms.entry(due_ms / 100).or_default();
            w.0 += 1;
            w.1 = w.1.max(*us);
        }
        latencies.extend(t.latencies_us);
        accepted += t.accepted;
        other += t.other;
        errors += t.errors;
    }
    latencies.sort_unstable();
    let at = |p_per_mille: usize| {
        let i = (latencies.len() * p_per_mille / 1000).min(latencies.len().saturating_sub(1));
        latencies.get(i).map_or(0.0, |us| *us as f64 / 1000.0)
    };
    let secs = elapsed.as_secs_f64();
    println!(
        "open loop at {} requests/s for {} s over {} connections: {} answered 202 ({:.0}/s), {} other, {} errors",
        args.rate_per_s,
        args.seconds,
        args.connections,
        accepted,
        accepted as f64 / secs,
        other,
        errors
    );
    println!(
        "latency from the due time: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        at(500),
        at(990),
        at(999),
        latencies.last().map_or(0.0, |us| *us as f64 / 1000.0)
    );
    // When the stalls came (by the due time, per 100 ms): periodic ones point at the disk's
    // journal commits or a timer; ones that follow the load point at the server.
    let windows: Vec<String> = slow_by_100ms
        .iter()
        .map(|(w, (n, max_us))| format!("{:.1}s:{n}x<={}ms", *w as f64 / 10.0, max_us / 1000))
        .collect();
    println!(
        "requests over 50 ms, by 100 ms window of their due time: {}",
        windows.join(" ")
    );
}
