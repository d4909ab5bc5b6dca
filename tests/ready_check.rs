//! `--ready-check` follows the app (contract, point 8), end to end, where host names matter: a
//! name is resolved at each check and every address it stands for is tried, so an app on
//! 127.0.0.1 is found behind `localhost` even where /etc/hosts lists `::1 localhost` first, as
//! Docker's default /etc/hosts does (glibc then returns ::1 first). drainit runs as PID 1 of a
//! PID namespace, and plainly as a subreaper, in a mount namespace that has that /etc/hosts
//! bind-mounted; the host's is never touched. What is asserted is what /readyz says and in which order, never how fast (the
//! 100 ms cadence is unit-tested in src/check.rs; timings belong in bench/).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{
    DEADLINE, Drainit, TempDir, descendants_named, drainit, example, free_port, open_fds,
    wait_until,
};

/// What "at once" means while a lookup hangs: a correctness bound, far below the silent
/// resolver's 10 s and more, generous for a busy machine (speed belongs in bench/).
const PROMPT: Duration = Duration::from_secs(4);

/// Docker's default /etc/hosts (the part about localhost), for which glibc returns `::1` first.
const DOCKER_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// A shell set-up line for the harness that gives everything after it a private mount
/// namespace with `hosts` on /etc/hosts. The harness's own `unshare --mount-proc` comes after
/// it, inside this namespace; a bare `mount` in the set-up would change the host's /etc/hosts.
fn private_etc_hosts(hosts: &std::path::Path) -> String {
    format!(
        "exec unshare --mount --propagation private bash -c \
         'mount --bind {} /etc/hosts && exec \"$@\"' bash \"$@\"",
        hosts.display()
    )
}

/// `GET path` on `port` of loopback: the status code, or 0 when nothing answered.
fn status(port: u16, path: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    if write!(s, "GET {path} HTTP/1.0\r\n\r\n").is_err() {
        return 0;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The port drainit's readiness server got (it was asked for port 0).
fn ready_port(d: &Drainit) -> u16 {
    let line = d.wait_stderr("serving /readyz and /livez on ");
    line.text
        .rsplit(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn localhost_with_ipv6_listed_first_finds_an_app_on_127_0_0_1() {
    let dir = TempDir::new("ready-check-hosts");
    let hosts = dir.path("hosts");
    // glibc sorts ::1 before 127.0.0.1 for this file (checked below, inside the namespace).
    std::fs::write(&hosts, DOCKER_HOSTS).unwrap();
    for (scheme, pid1) in [
        ("tcp", true),
        ("http", true),
        ("tcp", false),
        ("http", false),
    ] {
        let app_port = free_port();
        let check = format!("{scheme}://localhost:{app_port}/");
        // The app listens on 127.0.0.1 only.
        let app = format!("exec python3 -m http.server --bind 127.0.0.1 {app_port}");
        let d = drainit(["--ready-addr", "127.0.0.1:0", "--ready-check", &check, "-v"])
            .args(["--", "bash", "-c"])
            .arg(format!(
                "getent ahosts localhost | head -1 > {}; {app}",
                dir.path("first").display()
            ))
            .shell(&private_etc_hosts(&hosts))
            .pid1(pid1)
            .start();
        ready_with_ipv6_first(&d, &dir, &format!("{check} (PID 1: {pid1})"));
        // The check did meet ::1 and went on to 127.0.0.1.
        assert!(
            !d.stderr().contains("/readyz answers 503 until it resolves"),
            "{}",
            d.stderr()
        );
    }
    // The host's own /etc/hosts is untouched.
    assert_ne!(
        std::fs::read_to_string("/etc/hosts").unwrap(),
        std::fs::read_to_string(&hosts).unwrap()
    );
}

#[test]
fn readyz_turns_200_once_the_app_listens_and_back_to_503_when_it_stops() {
    let app_port = free_port();
    let check = format!("tcp://127.0.0.1:{app_port}");
    let d = drainit(["--ready-addr", "127.0.0.1:0", "--ready-check", &check])
        .args(["--", "sleep", "1000"])
        .start();
    let port = ready_port(&d);
    // Nobody listens yet: 503, for as many checks as we care to watch.
    wait_until("/readyz to answer", DEADLINE, || {
        status(port, "/readyz") != 0
    });
    assert_eq!(status(port, "/readyz"), 503);
    // The app (here, the test) starts listening: /readyz follows.
    let app = TcpListener::bind(("127.0.0.1", app_port)).unwrap();
    wait_until("/readyz to turn 200", DEADLINE, || {
        status(port, "/readyz") == 200
    });
    d.wait_stderr(&format!("ready check {check} passes"));
    drop(app);
    wait_until("/readyz to turn 503", DEADLINE, || {
        status(port, "/readyz") == 503
    });
}

#[test]
fn a_name_that_does_not_resolve_at_start_is_kept_and_warned_about() {
    // A name the app's container may only get later: drainit starts, warns, and answers 503.
    let dir = TempDir::new("ready-check-later");
    let hosts = dir.path("hosts");
    std::fs::write(&hosts, DOCKER_HOSTS).unwrap();
    let app_port = free_port();
    let check = format!("tcp://app-later:{app_port}");
    let d = drainit(["--ready-addr", "127.0.0.1:0", "--ready-check", &check])
        .args(["--", "sleep", "1000"])
        .shell(&private_etc_hosts(&hosts))
        .start();
    let port = ready_port(&d);
    d.wait_stderr("cannot resolve 'app-later'");
    wait_until("/readyz to answer", DEADLINE, || {
        status(port, "/readyz") != 0
    });
    assert_eq!(status(port, "/readyz"), 503);
    // The name appears (the file is bind-mounted, so writing it is seen inside) and the app
    // listens: /readyz turns 200.
    let _app = TcpListener::bind(("127.0.0.1", app_port)).unwrap();
    std::fs::write(&hosts, format!("{DOCKER_HOSTS}127.0.0.1\tapp-later\n")).unwrap();
    wait_until("/readyz to turn 200", DEADLINE, || {
        status(port, "/readyz") == 200
    });
}

/// `setup` (shell commands) run in a private mount namespace, then the rest of the command line.
fn in_private_mounts(setup: &str) -> String {
    format!(
        "exec unshare --mount --propagation private bash -c '{setup} && exec \"$@\"' bash \"$@\""
    )
}

#[test]
fn a_silent_nameserver_delays_neither_the_child_nor_signals_nor_readyz() {
    // The name is looked up by a helper process, off the loop: drainit starts the child, answers
    // /readyz and forwards SIGTERM at once while the lookup hangs (getaddrinfo waits 10 s+).
    let dir = TempDir::new("ready-check-dns");
    let (_dns, mounts) = common::silent_nameserver(&dir);
    for pid1 in [true, false] {
        let started = Instant::now();
        let mut d = drainit([
            "--ready-addr",
            "127.0.0.1:0",
            "--ready-check",
            "tcp://nohost.example:80",
            "-v",
        ])
        .arg(example("print-signals"))
        .shell(&in_private_mounts(&mounts))
        .pid1(pid1)
        .start();
        d.wait_stdout("ready");
        let took = started.elapsed();
        assert!(
            took < PROMPT,
            "the child started after {took:?} (PID 1: {pid1})"
        );
        let port = ready_port(&d);
        // A lookup is hanging now (the first check's), or has just given up.
        d.wait_stderr("cannot resolve 'nohost.example': the resolver did not answer within 1s");
        let asked = Instant::now();
        assert_eq!(status(port, "/readyz"), 503);
        assert_eq!(status(port, "/livez"), 200);
        let took = asked.elapsed();
        assert!(
            took < PROMPT,
            "/readyz answered after {took:?} (PID 1: {pid1})"
        );
        // The helper of the timed-out lookup is left to finish; meanwhile no other starts (the
        // checks due fail at once), and it holds no socket of drainit's.
        d.wait_stderr("of an earlier check is still running");
        let helpers = descendants_named(d.pid(), "drainit");
        assert!(helpers.len() <= 1, "one lookup at a time: {helpers:?}");
        let ours: Vec<_> = open_fds(d.pid()).into_values().collect();
        for helper in helpers {
            // Its own resolver socket is there; none of drainit's (the readiness server's).
            for (fd, target) in open_fds(helper) {
                let shared =
                    target.to_string_lossy().starts_with("socket:") && ours.contains(&target);
                assert!(!shared, "the helper holds drainit's fd {fd}: {target:?}");
            }
        }
        let sent = Instant::now();
        d.send(libc::SIGTERM);
        let took = d.wait_stdout("SIGTERM").at - sent;
        assert!(
            took < PROMPT,
            "SIGTERM forwarded after {took:?} (PID 1: {pid1})"
        );
        // And the helper does not hold up the exit: the leftover sweep's SIGTERM ends it.
        let sent = Instant::now();
        assert_eq!(d.wait_exit(), 0);
        let took = sent.elapsed();
        assert!(
            took < PROMPT,
            "drainit exited after {took:?} (PID 1: {pid1})"
        );
    }
}

#[test]
fn a_name_whose_first_address_drops_the_syn_passes_on_its_second() {
    // `twohomes` is ::1 (first, as glibc sorts it) and 127.0.0.1. On [::1]:PORT a listener
    // whose accept queue is full: the kernel drops further SYNs, as for a dead host. On
    // 127.0.0.1:PORT the app. Each address gets a slice of the check's 1 s, so it passes.
    let Ok(dead) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    let port = dead.local_addr().unwrap().port();
    nix::sys::socket::listen(&dead, nix::sys::socket::Backlog::new(0).unwrap()).unwrap();
    let Ok(_app) = TcpListener::bind(("127.0.0.1", port)) else {
        eprintln!("skipped: port {port} is taken on 127.0.0.1");
        return;
    };
    let _queued: Vec<_> = (0..3)
        .map(|_| {
            TcpStream::connect_timeout(&dead.local_addr().unwrap(), Duration::from_millis(100))
        })
        .collect();
    assert!(
        TcpStream::connect_timeout(&dead.local_addr().unwrap(), Duration::from_millis(300))
            .is_err(),
        "the premise: [::1]:{port} drops the SYN"
    );
    let dir = TempDir::new("ready-check-two");
    let hosts = dir.path("hosts");
    std::fs::write(
        &hosts,
        format!("{DOCKER_HOSTS}::1\ttwohomes\n127.0.0.1\ttwohomes\n"),
    )
    .unwrap();
    let check = format!("tcp://twohomes:{port}");
    let d = drainit(["--ready-addr", "127.0.0.1:0", "--ready-check", &check])
        .args(["--", "bash", "-c"])
        .arg(format!(
            "getent ahosts twohomes | head -1 > {}; exec sleep 1000",
            dir.path("first").display()
        ))
        .shell(&private_etc_hosts(&hosts))
        .start();
    ready_with_ipv6_first(&d, &dir, &check);
}

/// Wait for `/readyz` to answer 200, then check the premise: inside drainit's namespace the
/// name's first address (written by the test's `getent` to `dir/first`) was `::1`.
fn ready_with_ipv6_first(d: &Drainit, dir: &TempDir, what: &str) {
    let port = ready_port(d);
    wait_until(
        &format!("/readyz to answer 200 with {what}"),
        DEADLINE,
        || status(port, "/readyz") == 200,
    );
    // The child's `getent` may not have written its line yet (the shell creates the file
    // first): /readyz can pass before it does.
    let mut first = String::new();
    wait_until("the child's getent to write its line", DEADLINE, || {
        first = std::fs::read_to_string(dir.path("first")).unwrap_or_default();
        first.ends_with('\n')
    });
    assert!(
        first.starts_with("::1"),
        "the premise, ::1 first: {first:?}"
    );
}
