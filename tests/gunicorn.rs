//! drainit in front of a real process manager: gunicorn with uvicorn's UvicornWorker serving
//! examples/fastapi-app (pinned versions, installed into a virtual environment by
//! scripts/install-deps.sh), drainit as PID 1 of its own PID namespace, behind a real HAProxy
//! that checks drainit's `/readyz` (`inter 1s fall 2 rise 2`, `retries 0`).
//!
//! - A rolling restart of three such nodes under GET and POST load loses no request (through
//!   bench/rolling-restart, as tests/rolling_restart.rs does for `npm start`).
//! - HUP, TTIN and USR2 sent to drainit reach gunicorn's master alone (contract, point 2) and do
//!   what gunicorn documents: HUP reloads (new workers, the old ones shut down gracefully), TTIN
//!   adds a worker, USR2 starts a new master (a child of the old one) with its own workers
//!   beside the old ones. In none of them is a worker killed by the signal (gunicorn would log
//!   `Worker (pid:N) was sent SIGHUP!`), and no request through HAProxy fails.
//! - With `-G` the same HUP reaches the workers too, and kills them: what the default avoids.
//!
//! `--ready-check http://`, not `tcp://`: gunicorn's master binds the port before any worker
//! can answer. The tests in this file run one at a time (they share two cores with the rest).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod rolling;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;

/// gunicorn boots, reloads and re-execs Python: slow on a busy two-core machine.
const SLOW: Duration = Duration::from_secs(90);

/// One test at a time: each runs gunicorn, HAProxy and a load generator.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The gunicorn of the virtual environment scripts/install-deps.sh fills (once per run).
fn gunicorn() -> PathBuf {
    static INSTALL: Once = Once::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    INSTALL.call_once(|| {
        let status = Command::new(root.join("scripts/install-deps.sh"))
            .stdin(Stdio::null())
            .status()
            .expect("run scripts/install-deps.sh");
        assert!(status.success(), "scripts/install-deps.sh failed: {status}");
    });
    let venv = std::env::var_os("DRAINIT_VENV").unwrap_or_else(|| "/opt/drainit-venv".into());
    let bin = PathBuf::from(venv).join("bin/gunicorn");
    assert!(bin.exists(), "no {} after install-deps.sh", bin.display());
    bin
}

/// The status code of one HTTP/1.1 request on a new connection, or an error saying what went
/// wrong. `body` makes it a POST.
fn request(port: u16, path: &str, body: Option<&str>) -> Result<u16, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let req = match body {
        Some(b) => format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\n\r\n{b}",
            b.len()
        ),
        None => format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    };
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {answer:?}"))?;
    // A body cut short is a failed request too.
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    if length.is_some_and(|n| n != body.len()) {
        return Err(format!("truncated answer {answer:?}"));
    }
    Ok(status)
}

/// drainit as PID 1, running gunicorn with two UvicornWorkers.
struct Node {
    d: Drainit,
    app: u16,
    ready: u16,
}

impl Node {
    fn start(drainit_args: &[&str]) -> Node {
        let (app, ready) = (free_port(), free_port());
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/fastapi-app");
        let d = drainit(["--ready-addr", &format!("127.0.0.1:{ready}")])
            .args(["--ready-check", &format!("http://127.0.0.1:{app}/healthz")])
            .args(["--grace-period", "10s"])
            .args(drainit_args)
            .arg(gunicorn())
            .args(["-w", "2", "-k", "uvicorn.workers.UvicornWorker"])
            .args(["-b", &format!("127.0.0.1:{app}")])
            // gunicorn 27's control socket is one path for every instance on the machine.
            .arg("--no-control-socket")
            .arg("--chdir")
            .arg(dir)
            .arg("app:app")
            .start();
        let node = Node { d, app, ready };
        wait_until("the node's /readyz to answer 200", SLOW, || {
            request(node.ready, "/readyz", None) == Ok(200)
        });
        assert_eq!(node.workers().len(), 2, "{}", node.d.stderr());
        node
    }

    /// gunicorn's master: drainit's child.
    fn master(&self) -> i32 {
        self.d.child()
    }

    /// The master's children: its workers (and, after USR2, the new master).
    fn workers(&self) -> Vec<i32> {
        let mut w = children(self.master());
        w.sort();
        w
    }

    /// The `Worker (pid:N) was sent SIG...!` lines of gunicorn's log for any signal but TERM
    /// (TERM is how a graceful shutdown ends).
    fn killed_workers(&self) -> Vec<String> {
        self.d
            .stderr()
            .lines()
            .filter(|l| l.contains("was sent") && !l.contains("was sent SIGTERM!"))
            .map(str::to_string)
            .collect()
    }

    fn wait_log(&self, part: &str) {
        self.d.wait_for_stderr_line(|l| l.contains(part), SLOW);
    }

    fn stop(mut self) {
        self.d.send(libc::SIGTERM);
        assert_eq!(self.d.wait_status(SLOW), 0, "{}", self.d.stderr());
    }
}

/// HAProxy in front of one node, checking drainit's `/readyz` as deploy/haproxy.cfg does.
struct HaProxy {
    proc: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl HaProxy {
    fn start(node: &Node) -> HaProxy {
        let dir = TempDir::new("gunicorn-haproxy");
        let port = free_port();
        let cfg = dir.path("haproxy.cfg");
        std::fs::write(
            &cfg,
            format!(
                "defaults\n  mode http\n  retries 0\n  timeout connect 1s\n  timeout client 30s\n\
                 \x20 timeout server 30s\n  timeout check 1s\n\
                 frontend web\n  bind 127.0.0.1:{port}\n  default_backend app\n\
                 backend app\n  option httpchk GET /readyz\n  http-check expect status 200\n\
                 \x20 default-server inter 1s fall 2 rise 2\n\
                 \x20 server n1 127.0.0.1:{} check port {}\n",
                node.app, node.ready
            ),
        )
        .unwrap();
        let proc = Command::new("haproxy")
            .args(["-db", "-q", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy (scripts/install-deps.sh installs it)");
        let lb = HaProxy {
            proc,
            port,
            _dir: dir,
        };
        wait_until("HAProxy to pass a request to the node", SLOW, || {
            request(lb.port, "/", None) == Ok(200)
        });
        lb
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

/// GET and POST requests through HAProxy on new connections, each one taking 20 ms in the
/// app, so that some are always in flight; every answer but a 200 is a failure.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let threads = [None, Some("x".repeat(512)), None, Some("y".repeat(2048))]
            .into_iter()
            .map(|body| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match request(port, "/?delay=20", body.as_deref()) {
                            Ok(200) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => failed.lock().unwrap().push(format!(
                                "{} {other:?}",
                                if body.is_some() { "POST" } else { "GET" }
                            )),
                        }
                        // Pacing, not synchronisation: about 40 requests/s per thread.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        let load = Load {
            stop,
            ok,
            failed,
            threads,
        };
        load.wait_for_more(50);
        load
    }

    /// Until `n` more requests have succeeded: the app answers, and the load has run a while.
    fn wait_for_more(&self, n: u64) {
        let target = self.ok.load(Ordering::Relaxed) + n;
        wait_until(&format!("{n} more requests to succeed"), SLOW, || {
            self.ok.load(Ordering::Relaxed) >= target
        });
    }

    /// Stop and return (succeeded, failed).
    fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        let failed = std::mem::take(&mut *self.failed.lock().unwrap());
        (self.ok.load(Ordering::Relaxed), failed)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Start a node behind HAProxy under load, send `sig` to drainit, wait until `done` says
/// gunicorn did what the signal asks, let the load run on, and check that no request failed and
/// no worker died of a signal. `done` gets the node and the workers from before the signal.
fn signal_under_load(sig: i32, log: &str, done: impl Fn(&Node, &[i32]) -> bool) {
    let _one = serial();
    let node = Node::start(&[]);
    let lb = HaProxy::start(&node);
    let load = Load::start(lb.port);
    let before = node.workers();
    let master = node.master();
    node.d.send(sig);
    node.wait_log(log);
    wait_until(&format!("gunicorn to act on signal {sig}"), SLOW, || {
        done(&node, &before)
    });
    load.wait_for_more(100);
    let (ok, failed) = load.finish();
    let stderr = node.d.stderr();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}\n{stderr}",
        failed.len(),
        ok + failed.len() as u64
    );
    assert_eq!(node.killed_workers(), Vec::<String>::new(), "{stderr}");
    assert_eq!(node.master(), master, "the master is still drainit's child");
    assert!(
        stat(master).is_some_and(|s| s.state != 'Z'),
        "the master still runs"
    );
    drop(lb);
    node.stop();
}

#[test]
fn a_rolling_restart_of_three_gunicorn_nodes_under_get_and_post_load_loses_no_request() {
    let _one = serial();
    gunicorn();
    rolling::assert_no_request_lost(
        &[
            "--app",
            "gunicorn",
            "--post",
            "--modes",
            "default",
            "--backends",
            "3",
            "--rate-keepalive",
            "30",
            "--rate-new",
            "30",
            "--up-timeout",
            "90",
        ],
        1,
        3,
        500,
    );
}

#[test]
fn hup_to_drainit_reloads_gunicorn_with_no_worker_killed_and_no_request_failed() {
    // gunicorn: "HUP: reload the configuration, start the new worker processes with a new
    // configuration and gracefully shut down older workers."
    signal_under_load(libc::SIGHUP, "Handling signal: hup", |node, before| {
        let now = node.workers();
        now.len() == 2 && now.iter().all(|w| !before.contains(w))
    });
}

#[test]
fn ttin_to_drainit_adds_one_gunicorn_worker() {
    // gunicorn: "TTIN: increment the number of processes by one."
    signal_under_load(libc::SIGTTIN, "Handling signal: ttin", |node, before| {
        let now = node.workers();
        now.len() == 3 && before.iter().all(|w| now.contains(w))
    });
}

#[test]
fn usr2_to_drainit_starts_a_new_gunicorn_master_beside_the_old_workers() {
    // gunicorn: "USR2: upgrade Gunicorn on the fly": the master forks and execs a new master
    // (its child, so drainit's grandchild), which starts its own workers; the old master and
    // its workers keep serving until told otherwise.
    signal_under_load(libc::SIGUSR2, "Handling signal: usr2", |node, before| {
        let now = node.workers();
        let new_masters: Vec<i32> = now
            .iter()
            .copied()
            .filter(|p| !before.contains(p) && children(*p).len() == 2)
            .collect();
        before.iter().all(|w| now.contains(w)) && new_masters.len() == 1
    });
}

#[test]
fn with_g_a_hup_reaches_the_workers_and_kills_them() {
    // The negative control: what the default spares gunicorn, and that the tests above would
    // see it (gunicorn's UvicornWorker resets HUP to its default action).
    let _one = serial();
    let node = Node::start(&["-G"]);
    let before = node.workers();
    node.d.send(libc::SIGHUP);
    wait_until("gunicorn to log workers killed by SIGHUP", SLOW, || {
        node.killed_workers()
            .iter()
            .filter(|l| l.contains("was sent SIGHUP!"))
            .count()
            >= before.len()
    });
    node.stop();
}
