//! `acme canary`: synthetic members driven through the real API of a running `acme serve`,
//! their pots and instruction states checked end to end, so operations can run fake customers
//! against any environment and see it work as a member's channel would.
//!
//! Each member is new (`CANARY-<tag>-<n>`), so a run never touches a real member's money, and
//! every request carries its own `Idempotency-Key`, so a canary re-run with the same `--tag`
//! replays its own answers instead of paying in twice. Without `--operations-token` the canary
//! checks what needs no day job: registration, a payment in to completion, the idempotent
//! replay, a refused over-precise amount, an investment reserved. With it (a test environment
//! only: cut-off, valuation and settlement run for every member of that date) it also runs
//! the day's jobs for the investment's dealing date, waits for it to settle, checks the units,
//! and sells half of them.
//!
//! Exit codes: 0 every check held; 1 a check failed (each failure is printed with the step
//! and what was seen); 2 the target could not be reached or the arguments are wrong.

mod http;

use http::{Reply, Target};
use serde_json::Value;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct CanaryArgs {
    /// The service, as `http://HOST:PORT`.
    #[arg(long)]
    target: String,
    /// A channel token (it submits for members and reads pots).
    #[arg(long)]
    token: String,
    /// An operations token: also run the day's jobs for the canary's dealing date and follow
    /// the investment to settlement. Only in an environment whose other members may trade.
    #[arg(long)]
    operations_token: Option<String>,
    /// How many synthetic members.
    #[arg(long, default_value_t = 1)]
    members: u32,
    /// Names this run's members and keys (default: the Unix time); the same tag replays.
    #[arg(long)]
    tag: Option<String>,
    /// How long to wait for each state, seconds.
    #[arg(long, default_value_t = 30)]
    patience_s: u64,
}

/// A member the canary has taken up to its reserved investment.
struct Member {
    n: u32,
    id: String,
    fund: String,
    location: String,
    dealing: String,
    started: Instant,
}

const PAY_IN: &str = "100.00";
const INVEST: &str = "40.00";
const POLL: Duration = Duration::from_millis(50);

struct Canary {
    target: Target,
    token: String,
    operations: Option<String>,
    tag: String,
    patience: Duration,
}

pub fn main(args: CanaryArgs) -> ExitCode {
    let target = match Target::parse(&args.target) {
        Ok(t) => t,
        Err(e) => return usage(&e),
    };
    if let Err(e) = target.send("GET", "/healthz", &[], "") {
        return usage(&format!("cannot reach {}: {e}", args.target));
    }
    let tag = args.tag.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(0, |d| d.as_secs()).to_string()
    });
    let canary = Canary {
        target,
        token: args.token,
        operations: args.operations_token,
        tag,
        patience: Duration::from_secs(args.patience_s),
    };
    let mut failed = 0;
    let mut report = |n: u32, outcome: Result<(), Failure>| {
        if let Err((step, why)) = outcome {
            println!("FAIL member {n}: {step}: {why}");
            failed += 1;
        }
    };
    // Every member up to its reserved investment first, so that one run of the day's jobs
    // trades them all (a second cut-off of the same date would find nothing to take).
    let mut started = Vec::new();
    for n in 1..=args.members {
        match canary.begin(n) {
            Ok(member) => started.push(member),
            Err(failure) => report(n, Err(failure)),
        }
    }
    if canary.operations.is_some() {
        let dates: std::collections::BTreeSet<String> =
            started.iter().map(|m| m.dealing.clone()).collect();
        for date in dates {
            if let Err(failure) = canary.day_jobs(&date) {
                started
                    .iter()
                    .for_each(|m| report(m.n, Err(failure.clone())));
                started.clear();
            }
        }
    }
    for member in &started {
        report(member.n, canary.finish(member));
    }
    println!(
        "canary {}: {} of {} members end to end",
        canary.tag,
        args.members - failed,
        args.members
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("acme canary: {why}");
    ExitCode::from(2)
}

/// A failed check: the step, and what was seen.
type Failure = (&'static str, String);

fn check(step: &'static str, ok: bool, seen: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err((step, seen()))
    }
}

fn expect_status(step: &'static str, r: &Reply, want: &[u16]) -> Result<(), Failure> {
    check(step, want.contains(&r.status), || {
        format!("HTTP {} (wanted {want:?}): {}", r.status, r.body.trim())
    })
}

impl Canary {
    /// One synthetic member up to a reserved investment; the first check that fails ends it.
    fn begin(&self, n: u32) -> Result<Member, Failure> {
        let id = format!("CANARY-{}-{n}", self.tag);
        let started = Instant::now();
        let body = format!(r#"{{"member_id": "{id}", "risk_profile": "balanced"}}"#);
        let r = self.call("register", "POST", "/v1/members", None, &body)?;
        expect_status("register", &r, &[200, 201])?;
        self.wait_pot("onboarded", &id, |p| p["onboarded"] == true)?;
        let fund = self.first_fund()?;
        let pay = format!(r#"{{"member_id": "{id}", "kind": "contribute", "amount": "{PAY_IN}"}}"#);
        let key = format!("canary-{}-{n}-pay", self.tag);
        let location = self.submit("pay in", &key, &pay)?;
        let again = self.call("replay", "POST", "/v1/instructions", Some(&key), &pay)?;
        expect_status("replay", &again, &[202])?;
        check(
            "replay",
            again.header("idempotent-replayed") == Some("true"),
            || {
                format!(
                    "no Idempotent-Replayed: true on the second copy: {:?}",
                    again.headers
                )
            },
        )?;
        self.wait_state("pay in completed", &location, "completed")?;
        self.wait_pot("pot after the pay in", &id, |p| {
            p["cash"]["available"] == PAY_IN
        })?;
        self.refused_over_precise(&id, &fund, n)?;
        let invest = format!(
            r#"{{"member_id": "{id}", "kind": "invest", "fund": "{fund}", "amount": "{INVEST}"}}"#
        );
        let key = format!("canary-{}-{n}-invest", self.tag);
        let location = self.submit("invest", &key, &invest)?;
        self.wait_pot("investment reserved", &id, |p| {
            p["cash"]["reserved"] == INVEST
        })?;
        let seen = self.instruction("investment reserved", &location)?;
        let dealing = seen["dealing_date"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(Member {
            n,
            id,
            fund,
            location,
            dealing,
            started,
        })
    }

    /// After the day's jobs (when the canary runs them): the settlement and a sale.
    fn finish(&self, m: &Member) -> Result<(), Failure> {
        if self.operations.is_some() {
            self.trade_through(m)?;
        }
        let ms = m.started.elapsed().as_millis();
        println!("ok   member {} ({}) in {ms} ms", m.n, m.id);
        Ok(())
    }

    /// An amount finer than a penny is refused at once, naming the field.
    fn refused_over_precise(&self, id: &str, fund: &str, n: u32) -> Result<(), Failure> {
        let step = "over-precise amount refused";
        let body = format!(
            r#"{{"member_id": "{id}", "kind": "invest", "fund": "{fund}", "amount": "1.001"}}"#
        );
        let key = format!("canary-{}-{n}-bad", self.tag);
        let r = self.call(step, "POST", "/v1/instructions", Some(&key), &body)?;
        expect_status(step, &r, &[422])?;
        let problem = r.json().map_err(|e| (step, e))?;
        check(step, problem["field"] == "amount", || {
            format!("the problem names no field amount: {problem}")
        })
    }

    /// The day's jobs for a dealing date: the cut-off, the valuation once the trades reached
    /// the custodian, the settlement two business days on.
    fn day_jobs(&self, dealing: &str) -> Result<(), Failure> {
        let date: acme_processes::calendar::Date = dealing
            .parse()
            .map_err(|_| ("day jobs", format!("not a dealing date: {dealing:?}")))?;
        // No pause for the orders to reach aggregation: the cut-off closes intake's dealing
        // for the date first, and intake answers only once every order of it is handed on.
        self.job("cut-off", dealing)?;
        let deadline = Instant::now() + self.patience;
        while self.job("valuation", dealing)? == Some(0) {
            check("valuation", Instant::now() < deadline, || {
                format!("no trade of {dealing} reached the custodian")
            })?;
            std::thread::sleep(POLL);
        }
        self.job("settlement", &date.add_business_days(2).to_string())?;
        Ok(())
    }

    /// The investment settled, its units in the pot, and half of them sold.
    fn trade_through(&self, m: &Member) -> Result<(), Failure> {
        let (id, n, fund) = (m.id.as_str(), m.n, m.fund.as_str());
        self.wait_state("investment settled", &m.location, "settled")?;
        let pot = self.wait_pot("pot after the trade", id, |p| {
            p["cash"]["reserved"] == "0.00" && p["funds"][0]["isin"] == fund
        })?;
        let units = pot["funds"][0]["units_settled"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let micro = parse_micro(&units).unwrap_or(0);
        check("pot after the trade", micro > 0, || {
            format!("no units settled: {pot}")
        })?;
        let half = format!("{}.{:06}", micro / 2 / 1_000_000, micro / 2 % 1_000_000);
        let sell = format!(
            r#"{{"member_id": "{id}", "kind": "sell", "fund": "{fund}", "units": "{half}"}}"#
        );
        let key = format!("canary-{}-{n}-sell", self.tag);
        self.submit("sell", &key, &sell)?;
        self.wait_pot("sale reserved", id, |p| {
            p["funds"][0]["units_reserved"] == half.as_str()
        })?;
        Ok(())
    }

    fn call(
        &self,
        step: &'static str,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> Result<Reply, Failure> {
        let auth = format!("Bearer {}", self.token);
        let quoted = key.map(|k| format!("\"{k}\""));
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(k) = &quoted {
            headers.push(("Idempotency-Key", k.as_str()));
        }
        self.target
            .send(method, path, &headers, body)
            .map_err(|e| (step, e))
    }

    /// Submits an instruction: 202 with a Location.
    fn submit(&self, step: &'static str, key: &str, body: &str) -> Result<String, Failure> {
        let r = self.call(step, "POST", "/v1/instructions", Some(key), body)?;
        expect_status(step, &r, &[202])?;
        let location = r
            .header("location")
            .ok_or((step, "a 202 with no Location".to_string()))?;
        Ok(location.to_string())
    }

    fn first_fund(&self) -> Result<String, Failure> {
        let r = self.call("funds", "GET", "/v1/funds", None, "")?;
        expect_status("funds", &r, &[200])?;
        let funds = r.json().map_err(|e| ("funds", e))?;
        let isin = funds["funds"][0]["isin"]
            .as_str()
            .ok_or(("funds", format!("no fund listed: {funds}")))?;
        Ok(isin.to_string())
    }

    fn instruction(&self, step: &'static str, location: &str) -> Result<Value, Failure> {
        let r = self.call(step, "GET", location, None, "")?;
        expect_status(step, &r, &[200])?;
        r.json().map_err(|e| (step, e))
    }

    fn wait_state(&self, step: &'static str, location: &str, want: &str) -> Result<Value, Failure> {
        self.wait(
            step,
            || self.instruction(step, location),
            |v| v["state"] == want,
        )
    }

    fn wait_pot(
        &self,
        step: &'static str,
        id: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Result<Value, Failure> {
        let path = format!("/v1/members/{id}");
        let read = || {
            let r = self.call(step, "GET", &path, None, "")?;
            expect_status(step, &r, &[200])?;
            r.json().map_err(|e| (step, e))
        };
        self.wait(step, read, ok)
    }

    fn wait(
        &self,
        step: &'static str,
        read: impl Fn() -> Result<Value, Failure>,
        ok: impl Fn(&Value) -> bool,
    ) -> Result<Value, Failure> {
        let deadline = Instant::now() + self.patience;
        loop {
            let v = read()?;
            if ok(&v) {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err((
                    step,
                    format!("not so after {} s: {v}", self.patience.as_secs()),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs a day job; its trade count (none for a cut-off).
    fn job(&self, name: &str, date: &str) -> Result<Option<u64>, Failure> {
        let ops = self.operations.as_deref().unwrap_or_default();
        let auth = format!("Bearer {ops}");
        let body = format!(r#"{{"date": "{date}"}}"#);
        let path = format!("/v1/jobs/{name}");
        let r = self
            .target
            .send("POST", &path, &[("Authorization", &auth)], &body)
            .map_err(|e| ("day jobs", e))?;
        expect_status("day jobs", &r, &[200])?;
        Ok(r.json().map_err(|e| ("day jobs", e))?["trades"].as_u64())
    }
}

/// "12.345678" as millionths; `None` for anything else.
fn parse_micro(units: &str) -> Option<u64> {
    let (whole, frac) = units.split_once('.')?;
    if frac.len() != 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(frac.parse().ok()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn units_parse_as_millionths_or_not_at_all() {
        assert_eq!(super::parse_micro("40.000000"), Some(40_000_000));
        assert_eq!(super::parse_micro("0.000001"), Some(1));
        assert_eq!(super::parse_micro("1.5"), None);
        assert_eq!(super::parse_micro("x.000000"), None);
    }
}
