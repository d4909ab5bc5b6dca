//! Helpers for the tests that drive the real Docker engine (tests/docker.rs,
//! tests/docker_recipes.rs): running docker and asserting it worked, polling with a deadline,
//! HTTP status of a published port, and guards that remove what a test made (containers,
//! images, temp dirs), also when an assertion fails.
#![allow(dead_code)] // each test crate uses its own part of this

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// False where there is no Docker engine to talk to: the caller then skips, saying so.
pub fn docker_works() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True, after saying that `test` is skipped, where there is no Docker engine.
pub fn no_docker(test: &str) -> bool {
    if docker_works() {
        return false;
    }
    eprintln!("SKIPPED {test}: `docker info` failed (no Docker daemon here); nothing was tested");
    true
}

/// Run docker; panic with its output if it fails. Returns stdout, trimmed.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert_success(&format!("docker {}", args.join(" ")), &out);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Run docker for a side effect that may fail (clean-up): the result is ignored.
pub fn docker_quiet(args: &[&str]) {
    let _ = Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Status of `GET path` on 127.0.0.1:port, or None if nothing answered.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = String::new();
    s.read_to_string(&mut head).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

/// The body of `GET path` on 127.0.0.1:port ("" if nothing answered).
pub fn http_body(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    );
    let mut all = String::new();
    let _ = s.read_to_string(&mut all);
    all.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn wait_child(what: &str, child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{what} did not return within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match haystack[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{needle:?} missing, or out of order, in:\n{haystack}"),
        }
    }
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running container, removed (killed if need be) on drop.
pub struct Container {
    pub id: String,
}

impl Container {
    /// `docker run -d ARGS...`
    pub fn run(args: &[&str]) -> Container {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        Container { id: docker(&all) }
    }

    pub fn published_port(&self, port: u16) -> u16 {
        let mapping = docker(&["port", &self.id, &format!("{port}/tcp")]);
        // "127.0.0.1:49153" (one line per address)
        let first = mapping.lines().next().unwrap();
        first.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// stdout and stderr of the container (each in order; stdout first).
    pub fn logs(&self) -> String {
        let out = Command::new("docker")
            .args(["logs", &self.id])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// Both streams merged in time order, each line starting with Docker's RFC 3339 timestamp.
    pub fn timed_logs(&self) -> Vec<(f64, String)> {
        let out = Command::new("docker")
            .args(["logs", "-t", &self.id])
            .output()
            .unwrap();
        let mut lines: Vec<(f64, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .filter_map(|l| {
                let (stamp, rest) = l.split_once(' ')?;
                Some((unix_seconds(stamp)?, rest.to_string()))
            })
            .collect();
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        lines
    }

    /// The `ps` state (R, S, Z...) of each process in the container.
    pub fn top(&self) -> Vec<String> {
        // docker needs the pid column; the state is the second.
        let out = docker(&["top", &self.id, "-o", "pid,stat"]);
        out.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
            .collect()
    }

    /// Start `docker stop -t 30` in the background and wait until /readyz on the published
    /// `ready_port` answers 503: the drain has begun. The caller waits for the returned child.
    pub fn stop_until_draining(&self, ready_port: u16) -> Child {
        let stop = Command::new("docker")
            .args(["stop", "-t", "30", &self.id])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(
            "/readyz to answer 503 after docker stop",
            Duration::from_secs(10),
            || http_status(ready_port, "/readyz") == Some(503),
        );
        stop
    }

    pub fn inspect(&self, format: &str) -> String {
        docker(&["inspect", "-f", format, &self.id])
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        docker_quiet(&["rm", "-f", "-v", &self.id]);
    }
}

/// "2026-12-01T22:03:14.558744261Z" -> seconds since 1970 (UTC).
fn unix_seconds(stamp: &str) -> Option<f64> {
    let (date, time) = stamp.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    // Days from the civil date (Howard Hinnant's algorithm), so a test may span midnight.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut hms = time.trim_end_matches('Z').split(':');
    let h: f64 = hms.next()?.parse().ok()?;
    let min: f64 = hms.next()?.parse().ok()?;
    let s: f64 = hms.next()?.parse().ok()?;
    Some(days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

/// Every image whose name starts with `prefix/` (and their untagged build layers), removed on
/// drop.
pub struct Images(pub String);

impl Drop for Images {
    fn drop(&mut self) {
        let out = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output();
        if let Ok(out) = out {
            let prefix = format!("{}/", self.0);
            let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with(&prefix))
                .map(str::to_string)
                .collect();
            if !names.is_empty() {
                let mut args = vec!["rmi", "-f"];
                args.extend(names.iter().map(String::as_str));
                docker_quiet(&args);
            }
        }
    }
}
