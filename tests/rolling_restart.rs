#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The rolling-restart proof, short form: HAProxy with active `/readyz` checks in front of two
//! node apps (`npm start`), each under drainit as PID 1 of its own PID namespace; load through
//! HAProxy while each backend is restarted once, for both app modes (a graceful SIGTERM handler,
//! and none). Not one request may fail.
//!
//! It runs bench/rolling-restart/run.sh (the full benchmark, see docs/rolling-restart.md) with
//! two backends, a lower rate and one round. run.sh installs what is missing with scripts/install-deps.sh; a
//! missing HAProxy that cannot be installed fails this test, it does not skip it. Needs root,
//! node and npm.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Generous: the run takes about 40 s; the machine is small and shared.
const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn drainit_loses_no_request_while_haproxy_backends_restart_one_by_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = TempDir::new("drainit-rolling-restart");
    let log = out.0.join("run.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut bench = Bench::spawn(
        Command::new("bash")
            .arg(root.join("bench/rolling-restart/run.sh"))
            .arg("--drainit")
            .arg(common::drainit_bin())
            .args(["--out", out.0.join("results").to_str().unwrap()])
            .args(["--inits", "drainit", "--modes", "graceful,default"])
            // Two backends, one round: each restart costs the drain delay plus ~3 s until
            // HAProxy has the new instance UP (rise 2), and CI time counts.
            .args(["--backends", "2", "--rounds", "1"])
            .args(["--warmup", "1", "--pause", "0.5", "--tail", "1"])
            .args(["--rate-keepalive", "40", "--rate-new", "40"])
            // The delay deploy/haproxy.cfg sizes for these checks (fall x inter + timeout check
            // + longest request), and a timeout that a slow CI machine does not turn into
            // failures: a late answer is not a lost request.
            .args(["--drain-delay", "4s", "--timeout", "15"])
            .arg("--fail-on-loss")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file),
    );
    let status = bench.wait(LIMIT, &log);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "run.sh failed ({status}): exit 1 = drainit lost requests, 2 = setup failed\n{output}"
    );

    // Belt and braces: read the counts themselves, so that a bench that measured nothing
    // cannot pass.
    let tsv = std::fs::read_to_string(out.0.join("results/results.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = tsv
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 2, "two cases expected in results.tsv:\n{tsv}");
    for row in rows {
        let [init, mode, requests, failures, restarts] = row[..] else {
            panic!("bad row {row:?} in results.tsv:\n{tsv}");
        };
        let n = |s: &str| s.parse::<u64>().unwrap();
        assert_eq!(init, "drainit");
        assert_eq!(n(restarts), 2, "{mode}: 2 restarts expected\n{output}");
        assert!(
            n(requests) >= 500,
            "{mode}: only {requests} requests sent\n{output}"
        );
        assert_eq!(
            n(failures),
            0,
            "{mode}: {failures} of {requests} failed\n{output}"
        );
    }
}

/// run.sh in its own process group; on drop (a failed assertion, a timeout) the group gets
/// SIGTERM, on which bench.py stops its backends and HAProxy, then SIGKILL.
struct Bench(Child);

impl Bench {
    fn spawn(cmd: &mut Command) -> Bench {
        Bench(cmd.process_group(0).spawn().unwrap())
    }

    fn wait(&mut self, limit: Duration, log: &Path) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "run.sh did not finish within {limit:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.0.id() as i32);
        if killpg(group, Signal::SIGTERM).is_err() {
            return; // the group is gone: nothing left to clean
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && killpg(group, None).is_ok() {
            // Reap run.sh when it ends, or its zombie would keep the group "alive".
            let _ = self.0.try_wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
