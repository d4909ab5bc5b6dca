//! Runs the rolling-restart benchmark (bench/rolling-restart/run.sh) in its short form and
//! asserts that drainit lost no request: shared by tests/rolling_restart.rs (node behind
//! `npm start`) and tests/gunicorn.rs (gunicorn + UvicornWorker). run.sh installs what is
//! missing with scripts/install-deps.sh; a missing HAProxy that cannot be installed fails the
//! test, it does not skip it. Needs root. Its user declares `mod common;` too (the harness's
//! `drainit_bin`, so `DRAINIT_BIN` picks the binary under test here as well).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Generous: a run takes about 40 s; the machine is small and shared.
const LIMIT: Duration = Duration::from_secs(300);

/// Run run.sh for drainit in its short form (one round, short pauses) with `args` (which pick
/// the app, modes, backends, rates), expect `cases` rows in results.tsv, each with `restarts`
/// restarts, at least `min_requests` requests and not one failure.
pub fn assert_no_request_lost(args: &[&str], cases: usize, restarts: u64, min_requests: u64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = TempDir::new("drainit-rolling-restart");
    let log = out.0.join("run.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut bench = Bench::spawn(
        Command::new("bash")
            .arg(root.join("bench/rolling-restart/run.sh"))
            .arg("--drainit")
            .arg(super::common::drainit_bin())
            .args(["--out", out.0.join("results").to_str().unwrap()])
            .args(["--inits", "drainit", "--rounds", "1"])
            .args(["--warmup", "1", "--pause", "0.5", "--tail", "1"])
            // The delay deploy/haproxy.cfg sizes for these checks (fall x inter + timeout check
            // + longest request), and a timeout that a slow CI machine does not turn into
            // failures: a late answer is not a lost request.
            .args(["--drain-delay", "4s", "--timeout", "15"])
            .args(args)
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
    assert_eq!(
        rows.len(),
        cases,
        "{cases} cases expected in results.tsv:\n{tsv}"
    );
    for row in rows {
        let [init, mode, requests, failures, done] = row[..] else {
            panic!("bad row {row:?} in results.tsv:\n{tsv}");
        };
        let n = |s: &str| s.parse::<u64>().unwrap();
        assert_eq!(init, "drainit");
        assert_eq!(
            n(done),
            restarts,
            "{mode}: {restarts} restarts expected\n{output}"
        );
        assert!(
            n(requests) >= min_requests,
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
