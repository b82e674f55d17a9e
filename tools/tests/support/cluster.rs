//! A TigerBeetle cluster of a test's own: formatted in a temporary directory, on free loopback
//! ports, its replicas stopped by a guard even when the test fails.
//!
//! The tests manage their replicas themselves rather than through `tools/tigerbeetle.sh`: the
//! script keeps the state of one cluster in `.tools/cluster`, which the 1-replica cluster of
//! `tools/test-all.sh` occupies while the tests run (its `down` would stop that cluster).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acme_ledger_tigerbeetle::TigerBeetleLedger;

/// Replicas of a local cluster, stopped (SIGKILL) and their files removed on drop.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    pub addresses: String,
    replicas: Vec<Option<Child>>,
}

impl Cluster {
    /// Formats and starts `count` replicas on free loopback ports; waits until the cluster
    /// answers.
    pub fn start(bin: &Path, count: usize) -> Cluster {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "tigerbeetle-{}-{}",
            std::process::id(),
            count
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("cluster directory");
        let ports = free_ports(count);
        let addresses = ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            bin: bin.to_path_buf(),
            dir,
            addresses,
            replicas: (0..count).map(|_| None).collect(),
        };
        for i in 0..count {
            let out = Command::new(&cluster.bin)
                .arg("format")
                .arg("--cluster=0")
                .arg(format!("--replica={i}"))
                .arg(format!("--replica-count={count}"))
                .arg(cluster.data_file(i))
                .output()
                .expect("tigerbeetle format runs");
            assert!(
                out.status.success(),
                "format of replica {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for i in 0..count {
            cluster.start_replica(i);
        }
        cluster.wait_ready(Duration::from_secs(180));
        cluster
    }

    fn data_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("0_{i}.tigerbeetle"))
    }

    fn log_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("replica-{i}.log"))
    }

    pub fn start_replica(&mut self, i: usize) {
        assert!(self.replicas[i].is_none(), "replica {i} already runs");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(i))
            .expect("log file");
        let child = Command::new(&self.bin)
            .arg("start")
            .arg(format!("--addresses={}", self.addresses))
            // Three replicas with the default grid cache would reserve several GiB each.
            .arg("--cache-grid=256MiB")
            .arg(self.data_file(i))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("tigerbeetle start runs");
        self.replicas[i] = Some(child);
    }

    /// SIGKILL, as a crash would.
    pub fn kill_replica(&mut self, i: usize) {
        let mut child = self.replicas[i].take().expect("replica runs");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }

    fn wait_ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut ledger = TigerBeetleLedger::connect(0, &self.addresses).expect("client");
        ledger.set_request_timeout(Some(Duration::from_secs(5)));
        loop {
            for (i, replica) in self.replicas.iter_mut().enumerate() {
                if let Some(child) = replica {
                    if let Ok(Some(status)) = child.try_wait() {
                        let log = fs::read_to_string(self.dir.join(format!("replica-{i}.log")))
                            .unwrap_or_default();
                        panic!("replica {i} exited ({status}) during start-up:\n{log}");
                    }
                }
            }
            if ledger.ping().is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster at {} did not answer within {within:?} (logs in {})",
                self.addresses,
                self.dir.display()
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.replicas.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            // Keep the logs of a failed run (the data files are large: remove those).
            for i in 0..self.replicas.len() {
                let _ = fs::remove_file(self.data_file(i));
            }
            eprintln!("replica logs kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `count` consecutive loopback ports nobody listens on.
fn free_ports(count: usize) -> Vec<u16> {
    let start = 3300 + (std::process::id() % 2000) as u16 * 3;
    (start..60_000)
        .step_by(count)
        .map(|p| (p..p + count as u16).collect::<Vec<u16>>())
        .find(|ports| {
            ports
                .iter()
                .all(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        })
        .expect("free ports")
}

pub fn server_binary() -> Option<PathBuf> {
    let bin = std::env::var_os("TB_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/tigerbeetle"),
        PathBuf::from,
    );
    bin.exists().then_some(bin)
}

/// The server binary; `None` (the test skips, saying so) only when it is missing and
/// `ACME_SKIP_TIGERBEETLE=1` asks to skip knowingly. Missing otherwise is a failure.
pub fn server_binary_or_skip() -> Option<PathBuf> {
    if let Some(bin) = server_binary() {
        return Some(bin);
    }
    if std::env::var("ACME_SKIP_TIGERBEETLE").as_deref() == Ok("1") {
        eprintln!("SKIPPED: no TigerBeetle server, and ACME_SKIP_TIGERBEETLE=1");
        return None;
    }
    panic!(
        "the TigerBeetle server is not at .tools/bin/tigerbeetle (nor TB_BIN): run \
         tools/tigerbeetle.sh install, or set ACME_SKIP_TIGERBEETLE=1 to skip knowingly"
    );
}
