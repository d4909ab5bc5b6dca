//! Stress: drainit as PID 1 under loads far past what a container sees, each bounded in time and
//! each able to fail. A storm of 50 000 signals from several senders; 10 000 orphans exiting in
//! one burst; a child forking until the process limit stops it; the readiness port flooded with
//! connections, slow clients, garbage and huge heads while drainit drains. After each, drainit must still
//! forward, still drain on time, leave no zombie and exit with the child's status.
//!
//! The tests take a shared lock so that only one runs at a time: each alone loads both cores,
//! and two at once would only make every deadline noisier.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One heavy test at a time (see the module doc). A failed test poisons the lock; the next one
/// still runs.
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// drainit's whole log, once it is all read: the test's reader thread may still be behind when
/// drainit has exited, so wait for the last line drainit writes.
fn final_log(d: &Drainit) -> String {
    d.wait_stderr("exiting with status");
    d.stderr()
}

/// Fails if drainit logged a warning or an error: none of these loads is a reason for one.
fn assert_no_warnings(d: &Drainit) {
    final_log(d);
    let bad: Vec<String> = d
        .stderr_lines()
        .into_iter()
        .map(|l| l.text)
        .filter(|l| l.contains(": warn:") || l.contains(": error:"))
        .collect();
    assert!(bad.is_empty(), "drainit complained: {bad:#?}");
}

/// A sender process: bash's builtin kill, `count` times, cycling through `sigs`.
const SENDER: &str = r#"
pid=$1; count=$2; shift 2; sigs=("$@")
for ((i = 0; i < count; i++)); do
    kill -"${sigs[i % ${#sigs[@]}]}" "$pid" || exit 1
done
"#;

#[test]
fn survives_a_storm_of_50000_mixed_signals_then_still_forwards_and_drains_on_time() {
    let _heavy = heavy();
    let mut d = drainit(["-d", "1s"])
        .arg(example("print-signals"))
        .args(["--exit-on", "TERM:7"])
        .start();
    d.wait_stdout("ready");
    let storm = [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGHUP,
        libc::SIGWINCH,
        rtmin(1),
    ];
    // Five senders, each starting at a different signal so all five kinds are always in flight.
    let senders: Vec<_> = (0..storm.len())
        .map(|k| {
            let mut sigs = storm.to_vec();
            sigs.rotate_left(k);
            Command::new("bash")
                .args(["-c", SENDER, "bash"])
                .arg(d.pid().to_string())
                .arg("10000")
                .args(sigs.iter().map(i32::to_string))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut s in senders {
        assert!(
            s.wait().unwrap().success(),
            "a sender could not signal drainit"
        );
    }
    assert!(!d.has_exited(), "drainit died in the storm");
    for name in ["SIGUSR1", "SIGUSR2", "SIGHUP", "SIGWINCH", "SIGRTMIN+1"] {
        d.wait_stdout(name);
    }

    // Still forwarding: a signal that was not in the storm arrives.
    d.send(libc::SIGALRM);
    d.wait_stdout("SIGALRM");

    // Still draining: TERM is held for the delay, then forwarded once.
    let sent = Instant::now();
    d.send(libc::SIGTERM);
    d.wait_stderr("holding SIGTERM");
    let term = d.wait_stdout("SIGTERM");
    assert!(
        term.at.duration_since(sent) >= Duration::from_millis(900),
        "SIGTERM reached the child {:?} after it was sent, before the 1s drain delay",
        term.at.duration_since(sent)
    );
    assert_eq!(d.wait_exit(), 7);
    let terms = d
        .stdout_lines()
        .iter()
        .filter(|l| l.text == "SIGTERM")
        .count();
    assert_eq!(terms, 1, "SIGTERM forwarded {terms} times");
    assert_no_warnings(&d);
}

/// How long the orphan fixture may take to start 10 000 processes on a busy 2-core machine.
const SPAWN_10000: Duration = Duration::from_secs(90);

#[test]
fn reaps_10000_orphans_exiting_at_once_leaving_no_zombie() {
    let _heavy = heavy();
    let mut d = drainit::<_, &str>([])
        .arg(example("orphans"))
        .args(["--count", "10000", "--exit-together", "--then", "stay"])
        .start();
    d.wait_for_stdout_line(|l| l == "ready 10000", SPAWN_10000);
    // The orphans are released the moment `ready` is printed. Every one is a child of drainit
    // until reaped, zombie or not, so "only the fixture's main process is left" means all
    // 10 000 were reaped.
    wait_until(
        "drainit to reap the 10000 orphans",
        Duration::from_secs(60),
        || d.processes().len() == 1,
    );
    assert_eq!(d.zombies(), 0);
    assert_eq!(d.processes(), vec![d.child()]);
    // The main process has SIGTERM at its default action: 128 + 15.
    d.send(libc::SIGTERM);
    assert_eq!(d.wait_exit(), 143);
    assert_no_warnings(&d);
}

#[test]
fn exits_with_the_childs_status_when_it_exits_in_a_burst_of_10000_orphan_exits() {
    let _heavy = heavy();
    // A grace period of 60 s is also how long drainit waits for leftovers. If one SIGCHLD of the
    // burst were lost, drainit would not notice that nothing is left and would sit out the whole
    // wait, then SIGKILL; exiting well before it shows every exit was seen.
    let mut d = drainit(["-g", "60s"])
        .arg(example("orphans"))
        .args(["--count", "10000", "--exit-together", "--then", "exit:5"])
        .start();
    d.wait_for_stdout_line(|l| l == "ready 10000", SPAWN_10000);
    let released = Instant::now();
    assert_eq!(d.wait_status(Duration::from_secs(45)), 5);
    assert!(
        released.elapsed() < Duration::from_secs(45),
        "drainit waited for processes that were gone"
    );
    let log = final_log(&d);
    assert!(
        !log.contains("sent SIGKILL"),
        "drainit had to SIGKILL leftovers:\n{log}"
    );
    assert_no_warnings(&d);
}

/// Forks until fork fails (at most 2000 times); each child sleeps until killed. Then reports how
/// many it forked and why it stopped, and exits 3, leaving them all behind.
const FORK_BOMB: &str = r#"
$| = 1;
my ($n, $why) = (0, "limit of 2000 reached");
while ($n < 2000) {
    my $pid = fork();
    if (!defined $pid) { $why = "$!"; last; }
    if ($pid == 0) { sleep 120; exit 0; }
    $n++;
}
print "forked $n: $why\n";
exit 3;
"#;

#[test]
fn reaps_a_fork_bomb_stopped_by_the_process_limit_and_exits_with_its_status() {
    let _heavy = heavy();
    // RLIMIT_NPROC binds only non-root users, so the bomb runs as nobody (drainit stays root,
    // PID 1). The limit counts all of nobody's processes on the machine; 300 is far below 2000.
    let mut d = drainit::<_, &str>([])
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .args(["prlimit", "--nproc=300", "--"])
        .args(["perl", "-e", FORK_BOMB])
        .start();
    let line = d.wait_for_stdout_line(|l| l.starts_with("forked "), Duration::from_secs(60));
    let forked: usize = line.text["forked ".len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        forked > 0 && forked < 2000,
        "the process limit did not stop the bomb: {}",
        line.text
    );
    assert!(
        line.text.contains("Resource temporarily unavailable"),
        "{}",
        line.text
    );
    // The bomb's children are left behind: drainit SIGTERMs them (they die of it), reaps them
    // all and exits with the bomb's status, long before its 5 s leftover wait would end.
    assert_eq!(d.wait_exit(), 3);
    let log = final_log(&d);
    assert!(log.contains("sent SIGTERM to the processes left"), "{log}");
    assert!(
        !log.contains("sent SIGKILL"),
        "drainit had to SIGKILL leftovers:\n{log}"
    );
}

/// `GET /readyz` on a fresh connection: the status code, or None if the server did not answer
/// within two seconds (refused, closed, or busy).
fn probe(addr: SocketAddr) -> Option<u16> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    c.write_all(b"GET /readyz HTTP/1.1\r\nHost: drainit\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Poll /readyz until it answers `want`; the time it first did.
fn probe_until(addr: SocketAddr, want: u16) -> Instant {
    let mut seen = Vec::new();
    let end = Instant::now() + DEADLINE;
    loop {
        let got = probe(addr);
        if got == Some(want) {
            return Instant::now();
        }
        seen.push(got);
        assert!(
            Instant::now() < end,
            "/readyz never answered {want} in the flood; it answered {seen:?}"
        );
    }
}

/// Clients that keep the readiness port busy until `stop`: each kind in its own threads.
struct Flood {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Connections made, over all kinds.
    connects: Arc<AtomicUsize>,
}

impl Flood {
    fn start(addr: SocketAddr) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let connects = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        let mut spawn = |kind: fn(SocketAddr, &AtomicBool, &AtomicUsize)| {
            let (stop, connects) = (stop.clone(), connects.clone());
            threads.push(std::thread::spawn(move || kind(addr, &stop, &connects)));
        };
        spawn(Flood::hold_many);
        spawn(Flood::slowloris);
        for _ in 0..2 {
            spawn(Flood::garbage);
            spawn(Flood::huge_heads);
            spawn(Flood::churn);
        }
        Flood {
            stop,
            threads,
            connects,
        }
    }

    fn connect(addr: SocketAddr, connects: &AtomicUsize) -> Option<TcpStream> {
        let c = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        c.set_write_timeout(Some(Duration::from_millis(200))).ok()?;
        c.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
        connects.fetch_add(1, Ordering::Relaxed);
        Some(c)
    }

    /// 600 idle connections, far over the table's 256, re-opened as they are closed.
    fn hold_many(addr: SocketAddr, stop: &AtomicBool, connects: &AtomicUsize) {
        let mut held = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            held.truncate(500);
            while held.len() < 600 && !stop.load(Ordering::Relaxed) {
                held.extend(Flood::connect(addr, connects));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// 100 slowloris clients: one byte of a head each every 100 ms, never finishing it.
    fn slowloris(addr: SocketAddr, stop: &AtomicBool, connects: &AtomicUsize) {
        let mut conns: Vec<TcpStream> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            while conns.len() < 100 {
                match Flood::connect(addr, connects) {
                    Some(c) => conns.push(c),
                    None => break,
                }
            }
            conns.retain_mut(|c| c.write_all(b"X").is_ok());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Connections that send random bytes, then read what comes back.
    fn garbage(addr: SocketAddr, stop: &AtomicBool, connects: &AtomicUsize) {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        while !stop.load(Ordering::Relaxed) {
            let Some(mut c) = Flood::connect(addr, connects) else {
                continue;
            };
            let junk: Vec<u8> = (0..2048)
                .map(|_| {
                    // xorshift: cheap, and the same bytes every run.
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = c.write_all(&junk);
            let _ = c.read(&mut [0u8; 4096]);
        }
    }

    /// Request heads far over the 8 KiB limit, sent as fast as the server takes them.
    fn huge_heads(addr: SocketAddr, stop: &AtomicBool, connects: &AtomicUsize) {
        let mut head = b"GET /readyz HTTP/1.1\r\nX-Pad: ".to_vec();
        head.resize(64 * 1024, b'a');
        while !stop.load(Ordering::Relaxed) {
            let Some(mut c) = Flood::connect(addr, connects) else {
                continue;
            };
            let _ = c.write_all(&head);
            let _ = c.read(&mut [0u8; 4096]);
        }
    }

    /// Well-formed probes on short connections, as fast as they are answered.
    fn churn(addr: SocketAddr, stop: &AtomicBool, connects: &AtomicUsize) {
        while !stop.load(Ordering::Relaxed) {
            if let Some(mut c) = Flood::connect(addr, connects) {
                let _ = c.write_all(b"GET /livez HTTP/1.1\r\nConnection: close\r\n\r\n");
                let _ = c.read(&mut [0u8; 4096]);
            }
        }
    }

    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        self.connects.load(Ordering::Relaxed)
    }
}

#[test]
fn forwards_and_drains_on_time_while_the_readiness_port_is_flooded() {
    let _heavy = heavy();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut d = drainit(["-d", "2s", "--ready-addr", &addr.to_string()])
        .arg(example("print-signals"))
        .args(["--exit-on", "TERM:9"])
        .start();
    d.wait_stdout("ready");
    assert_eq!(probe(addr), Some(200));

    let flood = Flood::start(addr);
    wait_until("the flood to get going", DEADLINE, || {
        flood.connects.load(Ordering::Relaxed) > 1000
    });
    // Signals are forwarded while the server is swamped, and promptly: the server never delays
    // signal handling (the bound is generous; a forward takes well under a millisecond).
    for (sig, name) in [(libc::SIGUSR1, "SIGUSR1"), (libc::SIGHUP, "SIGHUP")] {
        let sent = Instant::now();
        d.send(sig);
        let got = d.wait_stdout(name);
        assert!(
            got.at.duration_since(sent) < Duration::from_secs(5),
            "{name} took {:?} to be forwarded in the flood",
            got.at.duration_since(sent)
        );
    }
    // ...and a probe still gets through: a full table evicts the connection idle longest.
    probe_until(addr, 200);

    // The drain: /readyz fails at once, the child gets SIGTERM only after the delay.
    let sent = Instant::now();
    d.send(libc::SIGTERM);
    let failing = probe_until(addr, 503);
    let term = d.wait_stdout("SIGTERM");
    assert!(
        failing < term.at,
        "/readyz still passed when the child got SIGTERM"
    );
    assert!(
        term.at.duration_since(sent) >= Duration::from_millis(1900),
        "SIGTERM reached the child {:?} after it was sent, before the 2s drain delay",
        term.at.duration_since(sent)
    );
    assert_eq!(d.wait_exit(), 9);
    let connects = flood.stop();
    assert!(
        connects > 1000,
        "the flood made only {connects} connections"
    );
    // Floods are summarised in the log, not logged line by line.
    let log = final_log(&d);
    eprintln!("flood: {connects} connections\n{log}");
    let lines = log.lines().count();
    assert!(lines < 50, "drainit logged {lines} lines in the flood");
}

#[test]
fn with_16_descriptors_readiness_degrades_but_signals_reaping_and_status_do_not() {
    let _heavy = heavy();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // 200 orphans in sessions of their own, so the SIGUSR1 below misses them: they are left
    // for drainit to SIGTERM and reap at the end.
    let mut d = drainit(["--ready-addr", &addr.to_string()])
        .shell("ulimit -n 16")
        .arg(example("orphans"))
        .args(["--count", "200", "--daemon", "--then", "stay"])
        .start();
    d.wait_for_stdout_line(|l| l == "ready 200", Duration::from_secs(60));
    wait_until("drainit to adopt the orphans", DEADLINE, || {
        d.processes().len() == 201
    });
    // 40 idle connections: more than 16 descriptors can hold. drainit runs out of descriptors,
    // closes the connection idle longest and serves fewer at once; a probe still gets through.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(TcpStream::connect(addr).unwrap());
    }
    probe_until(addr, 200);
    d.send(libc::SIGUSR1);
    assert_eq!(d.wait_exit(), 128 + libc::SIGUSR1);
    drop(held);
    let log = final_log(&d);
    assert!(log.contains("sent SIGTERM to the processes left"), "{log}");
    assert!(log.contains("cannot accept a connection"), "{log}");
    let complaints = log
        .lines()
        .filter(|l| l.contains(": warn:") || l.contains(": error:"));
    for line in complaints {
        assert!(line.contains("readiness server"), "{line}");
    }
    assert!(log.lines().count() < 20, "{log}");
}
