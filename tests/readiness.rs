//! The readiness server and the readiness check (contract, points 7 and 8), end to end: the real
//! binary as PID 1 of a fresh PID namespace, probed with curl and with raw sockets for what curl
//! will not send. The apps are small shell and Python programs that leave marker files, so a
//! test can tell what the app saw and when, relative to what the probes saw. Every wait polls a
//! condition against a generous deadline; what is asserted is order, never a duration.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::{DEADLINE, Drainit, TempDir, drainit, free_port};

// ---------------------------------------------------------------------------------------------
// Harness (tests/common) plus: marker files, a free port, the apps.

/// A scratch directory for an app's marker files.
struct Scratch(TempDir);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        Scratch(TempDir::new(&format!("readiness-{tag}")))
    }

    fn dir(&self) -> String {
        self.0.0.to_str().unwrap().to_string()
    }

    fn s(&self, name: &str) -> String {
        self.0.path(name).to_str().unwrap().to_string()
    }

    fn has(&self, name: &str) -> bool {
        self.0.path(name).exists()
    }

    fn touch(&self, name: &str) {
        std::fs::write(self.0.path(name), b"").unwrap();
    }

    fn remove(&self, name: &str) {
        std::fs::remove_file(self.0.path(name)).unwrap();
    }
}

fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    common::wait_until(what, DEADLINE, cond);
}

/// An app that marks `started`, and on SIGTERM (or USR1) marks `got-term` (`got-usr1`) and
/// for TERM exits 42. The `sleep` is short so the trap runs promptly.
fn app(dir: &Scratch) -> Vec<String> {
    let script = format!(
        "trap 'touch {t}; exit 42' TERM; trap 'touch {u}' USR1; touch {s}; \
         while :; do sleep 0.05; done",
        t = dir.s("got-term"),
        u = dir.s("got-usr1"),
        s = dir.s("started"),
    );
    vec!["sh".into(), "-c".into(), script]
}

/// drainit serving on a free port with `extra` options, running `app`; returns once /livez
/// answers.
fn serve(extra: &[&str], dir: &Scratch) -> (Drainit, SocketAddr) {
    serve_command(extra, &app(dir))
}

fn serve_command(extra: &[&str], command: &[String]) -> (Drainit, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let ready_addr = addr.to_string();
    let mut args: Vec<&str> = vec!["--ready-addr", &ready_addr];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    let init = drainit(args).start();
    wait_until("/livez to answer", || curl(addr, &["/livez"]).0 == 200);
    (init, addr)
}

// ---------------------------------------------------------------------------------------------
// Clients: curl, and raw sockets.

/// `curl` the paths (one connection, reused) with `opts`; the last status and all bodies.
fn curl(addr: SocketAddr, paths_and_opts: &[&str]) -> (u16, String) {
    let out = curl_raw(addr, paths_and_opts, "%{http_code}");
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Run curl: each argument starting with `/` is a URL on `addr`, the rest are options; stdout
/// holds the bodies, then a newline and `write_out` (of the last transfer).
fn curl_raw(addr: SocketAddr, args: &[&str], write_out: &str) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "10", "-w", &format!("\n{write_out}")]);
    for a in args {
        if a.starts_with('/') {
            cmd.arg(format!("http://{addr}{a}"));
        } else {
            cmd.arg(a);
        }
    }
    let out = cmd.output().expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Send `request` on a new connection and read until the server closes it.
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = connect(addr);
    s.write_all(request).unwrap();
    read_to_close(&mut s)
}

fn read_to_close(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "reading a response: {e} (after {:?})",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Read one response with a `Content-Length` body off a kept-alive connection.
fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed mid-head: {got:?}");
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    if !head.starts_with("HEAD") {
        s.read_exact(&mut body).unwrap();
    }
    head + &String::from_utf8(body).unwrap()
}

fn status_of(response: &str) -> u16 {
    response
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Answers while running and while draining.

#[test]
fn readyz_and_livez_answer_200_ok_while_the_app_runs() {
    let dir = Scratch::new("ok");
    let (_d, addr) = serve(&[], &dir);
    assert_eq!(curl(addr, &["/readyz"]), (200, "ok\n".to_string()));
    assert_eq!(curl(addr, &["/livez"]), (200, "ok\n".to_string()));
    let headers = curl_raw(addr, &["-D", "-", "-o", "/dev/null", "/readyz"], "");
    assert!(
        headers.contains("Content-Type: text/plain\r\n"),
        "{headers}"
    );
    assert!(headers.contains("Cache-Control: no-store\r\n"), "{headers}");
    assert!(headers.contains("Content-Length: 3\r\n"), "{headers}");
}

#[test]
fn the_first_probe_after_sigterm_answers_503_while_the_app_keeps_running() {
    let dir = Scratch::new("drain");
    let (mut d, addr) = serve(&["--drain-delay", "60s"], &dir);
    wait_until("the app to start", || dir.has("started"));
    assert_eq!(curl(addr, &["/readyz"]).0, 200);
    d.send(libc::SIGTERM);
    assert_eq!(curl(addr, &["/readyz"]), (503, "draining\n".to_string()));
    // The app has not been told yet, and /livez still says it is alive.
    assert!(!dir.has("got-term"));
    assert_eq!(curl(addr, &["/livez"]), (200, "ok\n".to_string()));
    assert_eq!(curl(addr, &["-I", "/readyz"]).0, 503);
    // A second SIGTERM cuts the delay short: now the app gets it and drainit exits with it.
    d.send(libc::SIGTERM);
    wait_until("the app to get SIGTERM", || dir.has("got-term"));
    assert_eq!(d.wait_exit(), 42);
}

// ---------------------------------------------------------------------------------------------
// HTTP: paths, methods, malformed and oversized requests, versions, keep-alive, HEAD.

#[test]
fn other_paths_get_404_other_methods_405_and_query_strings_are_ignored() {
    let dir = Scratch::new("codes");
    let (_d, addr) = serve(&[], &dir);
    assert_eq!(curl(addr, &["/readyz?verbose"]), (200, "ok\n".to_string()));
    assert_eq!(curl(addr, &["/livez?x=1&y"]).0, 200);
    assert_eq!(curl(addr, &["/"]).0, 404);
    assert_eq!(curl(addr, &["/readyz/extra"]).0, 404);
    assert_eq!(curl(addr, &["/metrics"]).0, 404);
    assert_eq!(curl(addr, &["-X", "POST", "/readyz"]).0, 405);
    assert_eq!(curl(addr, &["-X", "DELETE", "/livez"]).0, 405);
    let headers = curl_raw(
        addr,
        &["-X", "PUT", "-D", "-", "-o", "/dev/null", "/readyz"],
        "",
    );
    assert!(headers.contains("Allow: GET, HEAD\r\n"), "{headers}");
}

#[test]
fn malformed_requests_get_400_and_the_connection_is_closed() {
    let dir = Scratch::new("bad");
    let (_d, addr) = serve(&[], &dir);
    for bad in [
        &b"GET /readyz HTTP/9.9\r\n\r\n"[..],
        b"hello\r\n\r\n",
        b"GET /readyz HTTP/1.1\r\nno colon here\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    ] {
        // read_to_close returns only once drainit has closed the connection.
        let text = exchange(addr, bad);
        assert!(text.starts_with("HTTP/1.1 400 "), "{bad:?}: {text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
    }
    assert_eq!(curl(addr, &["/readyz"]).0, 200);
}

#[test]
fn a_request_head_over_8_kib_gets_431_and_the_connection_is_closed() {
    let dir = Scratch::new("431");
    let (_d, addr) = serve(&[], &dir);
    let pad = format!("X-Pad: {}", "a".repeat(9000));
    assert_eq!(curl(addr, &["-H", &pad, "/readyz"]).0, 431);
    // Raw, with the rest of the head still coming after the answer.
    let mut s = connect(addr);
    s.write_all(b"GET /readyz HTTP/1.1\r\nX-Pad: ").unwrap();
    s.write_all(&[b'a'; 20_000]).unwrap();
    let text = read_to_close(&mut s);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    // Many small headers are fine up to the limit (100 fields), then 431 too.
    let headers = |n: usize| -> Vec<String> { (0..n).map(|i| format!("X-{i}: v")).collect() };
    for (n, code) in [(40, 200), (120, 431)] {
        let many = headers(n);
        let mut args: Vec<&str> = many.iter().flat_map(|h| ["-H", h.as_str()]).collect();
        args.push("/readyz");
        assert_eq!(curl(addr, &args).0, code, "{n} header fields");
    }
    assert_eq!(curl(addr, &["/readyz"]).0, 200);
}

#[test]
fn http_1_0_is_served_and_closed_unless_it_asks_for_keep_alive() {
    let dir = Scratch::new("http10");
    let (_d, addr) = serve(&[], &dir);
    assert_eq!(
        curl(addr, &["--http1.0", "/readyz"]),
        (200, "ok\n".to_string())
    );
    let text = exchange(addr, b"GET /readyz HTTP/1.0\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    let mut s = connect(addr);
    for _ in 0..3 {
        s.write_all(b"GET /livez HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let r = read_response(&mut s);
        assert!(r.contains("Connection: keep-alive\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nok\n"), "{r}");
    }
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let dir = Scratch::new("keepalive");
    let (d, addr) = serve(&["--drain-delay", "60s"], &dir);
    // curl reuses its connection: one connect for the three transfers.
    let out = curl_raw(addr, &["/readyz", "/livez", "/readyz"], "%{num_connects}");
    assert_eq!(out, "ok\n\n1ok\n\n0ok\n\n0", "connects per transfer");
    // Raw: sequential and pipelined requests on one connection, and the health changes under a
    // kept-alive connection.
    let mut s = connect(addr);
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(status_of(&read_response(&mut s)), 200);
    s.write_all(
        b"GET /livez HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /readyz HTTP/1.1\r\n\r\n",
    )
    .unwrap();
    let codes: Vec<u16> = (0..3).map(|_| status_of(&read_response(&mut s))).collect();
    assert_eq!(codes, [200, 404, 200]);
    d.send(libc::SIGTERM);
    d.wait_stderr("/readyz now answers 503");
    s.write_all(b"GET /readyz HTTP/1.1\r\n\r\n").unwrap();
    let r = read_response(&mut s);
    assert!(
        r.starts_with("HTTP/1.1 503 ") && r.ends_with("draining\n"),
        "{r}"
    );
}

#[test]
fn head_requests_get_the_headers_and_no_body() {
    let dir = Scratch::new("head");
    let (_d, addr) = serve(&[], &dir);
    let text = exchange(addr, b"HEAD /readyz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Length: 3\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "a body came: {text:?}");
    let out = curl_raw(addr, &["-I", "/livez"], "%{http_code}");
    assert!(out.ends_with("\r\n\r\n\n200"), "{out:?}");
}

// ---------------------------------------------------------------------------------------------
// Start-up failures: before any child runs.

#[test]
fn an_invalid_ready_addr_exits_2_without_starting_the_app() {
    let dir = Scratch::new("invalid");
    for bad in [
        "nonsense",
        "127.0.0.1",
        "127.0.0.1:99999",
        "no-such-host.invalid:80",
    ] {
        let marker = dir.s("started");
        let mut d = drainit(["--ready-addr", bad, "--", "touch", &marker]).start();
        assert_eq!(d.wait_exit(), 2, "--ready-addr {bad}");
        let first = d.stderr().lines().next().unwrap_or_default().to_string();
        assert!(first.contains("--ready-addr"), "{bad}: {first}");
        assert!(!dir.has("started"), "{bad}: the app ran");
    }
}

#[test]
fn a_busy_ready_addr_exits_1_without_starting_the_app() {
    let dir = Scratch::new("busy");
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let marker = dir.s("started");
    let mut d = drainit(["--ready-addr", &addr, "--", "touch", &marker]).start();
    assert_eq!(d.wait_exit(), 1);
    assert!(d.stderr().contains(&addr), "{}", d.stderr());
    assert!(!dir.has("started"), "the app ran");
}

// ---------------------------------------------------------------------------------------------
// Bounds: floods, idle and slow clients.

/// Open `n` connections at once and keep them, half of them with a partial request head.
fn flood(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|i| {
            let s = TcpStream::connect(addr).ok()?;
            if i % 2 == 0 {
                let _ = s.try_clone().ok()?.write_all(b"GET /readyz HTT");
            }
            Some(s)
        })
        .collect()
}

fn three_hundred_connections_leave_probes_and_signals_working(nofile: Option<u32>) {
    let dir = Scratch::new(&format!("flood-{}", nofile.unwrap_or(0)));
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let ready_addr = addr.to_string();
    let mut args = vec!["--ready-addr", ready_addr.as_str(), "--"];
    let command = app(&dir);
    args.extend(command.iter().map(String::as_str));
    let mut d = match nofile {
        Some(n) => drainit(args).shell(&format!("ulimit -n {n}")).start(),
        None => drainit(args).start(),
    };
    wait_until("/livez to answer", || curl(addr, &["/livez"]).0 == 200);
    wait_until("the app to start", || dir.has("started"));
    let conns = flood(addr, 300);
    assert_eq!(conns.len(), 300, "the kernel refused connections");
    // Probes still get through: each new connection evicts the one idle longest.
    wait_until("a probe to get through the flood", || {
        curl(addr, &["/readyz"]) == (200, "ok\n".to_string())
    });
    // Signals are forwarded as ever, and drainit exits with the app's status.
    d.send(libc::SIGUSR1);
    wait_until("the app to get SIGUSR1", || dir.has("got-usr1"));
    d.send(libc::SIGTERM);
    wait_until("the app to get SIGTERM", || dir.has("got-term"));
    assert_eq!(d.wait_exit(), 42);
    // Evictions and accept failures are summarised, not logged one by one.
    let server_lines = d.stderr().matches("readiness server").count();
    assert!(server_lines <= 6, "{server_lines} lines:\n{}", d.stderr());
    drop(conns);
}

#[test]
fn three_hundred_connections_at_once_neither_crash_drainit_nor_delay_signals() {
    three_hundred_connections_leave_probes_and_signals_working(None);
}

#[test]
fn three_hundred_connections_with_only_16_descriptors_neither_crash_drainit_nor_delay_signals() {
    three_hundred_connections_leave_probes_and_signals_working(Some(16));
}

#[test]
fn an_incomplete_head_gets_408_before_an_idle_connection_is_closed() {
    let dir = Scratch::new("timeouts");
    let (_d, addr) = serve(&[], &dir);
    let mut idle = connect(addr);
    let mut slow = connect(addr);
    slow.write_all(b"GET /readyz HTTP/1.1\r\n").unwrap();
    let idle_closed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&idle_closed);
    let watcher = thread::spawn(move || {
        let text = read_to_close(&mut idle);
        flag.store(true, Ordering::SeqCst);
        text
    });
    let text = read_to_close(&mut slow);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(
        !idle_closed.load(Ordering::SeqCst),
        "the idle one closed first"
    );
    // The idle connection is closed too, silently.
    assert_eq!(watcher.join().unwrap(), "");
}

#[test]
fn a_slow_client_blocks_neither_other_probes_nor_signals() {
    let dir = Scratch::new("slowloris");
    let (d, addr) = serve(&[], &dir);
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let mut slow = connect(addr);
    let slow_client = thread::spawn(move || {
        // One byte a second; drainit gives up on it at 5 s with a 408.
        let mut answer = String::new();
        for b in b"GET /readyz HTTP/1.1\r\nHost: slow\r\n\r\n" {
            if slow.write_all(&[*b]).is_err() {
                break;
            }
            slow.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 512];
            if let Ok(n) = slow.read(&mut buf) {
                answer.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            slow.set_nonblocking(false).unwrap();
            if !answer.is_empty() {
                break;
            }
            thread::sleep(Duration::from_secs(1));
        }
        flag.store(true, Ordering::SeqCst);
        answer
    });
    for _ in 0..5 {
        assert_eq!(curl(addr, &["/readyz"]).0, 200);
    }
    d.send(libc::SIGUSR1);
    wait_until("the app to get SIGUSR1", || dir.has("got-usr1"));
    assert!(
        !done.load(Ordering::SeqCst),
        "the slow client finished before the probes"
    );
    let answer = slow_client.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
}

// ---------------------------------------------------------------------------------------------
// --ready-check.

/// A Python app that listens on `port` while the file `listen` exists in `dir` (accepting and
/// closing what comes), and not while it does not.
fn toggling_tcp_app(dir: &Scratch, port: u16) -> Vec<String> {
    let script = format!(
        r#"
import os, socket, time
s = None
while True:
    want = os.path.exists({flag:?})
    if want and s is None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", {port}))
        s.listen(64)
        s.setblocking(False)
    elif not want and s is not None:
        s.close()
        s = None
    while s is not None:
        try:
            s.accept()[0].close()
        except BlockingIOError:
            break
    time.sleep(0.05)
"#,
        flag = dir.s("listen"),
    );
    vec!["python3".into(), "-c".into(), script]
}

fn ready(addr: SocketAddr) -> (u16, String) {
    curl(addr, &["/readyz"])
}

#[test]
fn a_tcp_ready_check_follows_the_app_listening_and_draining_wins() {
    let dir = Scratch::new("check-tcp");
    let port = free_port();
    let target = format!("tcp://127.0.0.1:{port}");
    let (mut d, addr) = serve_command(
        &["-v", "--drain-delay", "60s", "--ready-check", &target],
        &toggling_tcp_app(&dir, port),
    );
    // Checked, failed: 503 until the app listens.
    d.wait_stderr("not passing yet");
    assert_eq!(ready(addr), (503, "not ready\n".to_string()));
    dir.touch("listen");
    wait_until("/readyz to turn 200", || ready(addr).0 == 200);
    dir.remove("listen");
    wait_until("/readyz to turn 503", || {
        ready(addr) == (503, "not ready\n".to_string())
    });
    dir.touch("listen");
    wait_until("/readyz to turn 200 again", || ready(addr).0 == 200);
    // The second change came within 10 s of the first one's log line: it is logged late, not
    // lost.
    d.wait_stderr("passes again");
    // Draining wins over a passing check, at once, and the check stops: nothing more to say.
    d.send(libc::SIGTERM);
    assert_eq!(ready(addr), (503, "draining\n".to_string()));
    assert_eq!(curl(addr, &["/livez"]).0, 200);
    assert!(!d.has_exited());
}

#[test]
fn an_http_ready_check_follows_the_apps_answer_and_draining_wins() {
    let dir = Scratch::new("check-http");
    let port = free_port();
    let target = format!("http://127.0.0.1:{port}/healthy");
    // The app starts listening when `go` exists; it answers 200 for /healthy while that file
    // exists in its directory, and 404 when not.
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.05; done; \
         exec python3 -m http.server --bind 127.0.0.1 --directory {dir} {port}",
        go = dir.s("go"),
        dir = dir.dir(),
    );
    let command = vec!["sh".to_string(), "-c".to_string(), script];
    let (mut d, addr) = serve_command(
        &["-v", "--drain-delay", "60s", "--ready-check", &target],
        &command,
    );
    d.wait_stderr("not passing yet");
    assert_eq!(ready(addr), (503, "not ready\n".to_string()));
    // Listening, but answering 404: still not ready.
    dir.touch("go");
    d.wait_stderr("answered 404");
    assert_eq!(ready(addr), (503, "not ready\n".to_string()));
    dir.touch("healthy");
    wait_until("/readyz to turn 200", || ready(addr).0 == 200);
    dir.remove("healthy");
    wait_until("/readyz to turn 503", || {
        ready(addr) == (503, "not ready\n".to_string())
    });
    dir.touch("healthy");
    wait_until("/readyz to turn 200 again", || ready(addr).0 == 200);
    d.send(libc::SIGTERM);
    assert_eq!(ready(addr), (503, "draining\n".to_string()));
    assert!(!d.has_exited());
}

#[test]
fn a_bare_port_listens_on_all_interfaces_ipv4_and_ipv6_alike() {
    let dir = Scratch::new("bare-port");
    let port = free_port();
    let bare = format!(":{port}");
    let mut args = vec!["--ready-addr", bare.as_str(), "--"];
    let command = app(&dir);
    args.extend(command.iter().map(String::as_str));
    let _d = drainit(args).start();
    let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    wait_until("/readyz to answer on 127.0.0.1", || ready(v4).0 == 200);
    assert_eq!(ready(v6), (200, "ok\n".to_string()), "the same port on ::1");
}

#[test]
fn three_hundred_partial_heads_under_a_tight_address_space_limit_do_not_abort_drainit() {
    // 300 connections, each holding an 8000-byte partial head, would be 2.4 MB of buffers.
    // drainit runs (as PID 1) with an address-space limit of what it maps at start plus
    // 1.5 MiB, set on drainit alone once the app runs (the app keeps its own limit): it must
    // bound what it buffers and evict or refuse, not die of a failed allocation.
    let dir = Scratch::new("as-limit");
    let (mut d, addr) = serve(&[], &dir);
    wait_until("the app to start", || dir.has("started"));
    let vm_kb: u64 = common::status_field(d.pid(), "VmSize")
        .and_then(|v| v.trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    let limit = (vm_kb + 1536) * 1024;
    let set = Command::new("prlimit")
        .arg(format!("--pid={}", d.pid()))
        .arg(format!("--as={limit}"))
        .status()
        .unwrap();
    assert!(set.success(), "prlimit failed");
    let mut head = b"GET /readyz HTTP/1.1\r\nX-Pad: ".to_vec();
    head.resize(8000, b'a');
    let conns: Vec<TcpStream> = (0..300)
        .filter_map(|_| {
            let mut s = TcpStream::connect(addr).ok()?;
            s.write_all(&head).ok()?;
            Some(s)
        })
        .collect();
    assert_eq!(conns.len(), 300, "the kernel refused connections");
    wait_until("a probe to get through", || {
        curl(addr, &["/readyz"]) == (200, "ok\n".to_string())
    });
    d.send(libc::SIGTERM);
    wait_until("the app to get SIGTERM", || dir.has("got-term"));
    assert_eq!(d.wait_exit(), 42, "{}", d.stderr());
    let log = d.stderr();
    assert!(log.contains("closing the connection idle longest"), "{log}");
    let server_lines = log.matches("readiness server").count();
    assert!(server_lines <= 6, "{server_lines} lines:\n{log}");
    drop(conns);
}
