//! `drainit --probe [TARGET]`, the health-check client (contract, point 9), end to end: the real
//! binary probes a real drainit's readiness server, plain TCP listeners and small HTTP servers
//! of the test's own (one that answers, one that accepts and never answers, one that trickles
//! bytes). Exit 0 healthy, 1 not (one line on stderr saying why), 2 on a usage error; the answer
//! comes within 2 s whatever the target does. Durations are only asserted as generous upper
//! bounds on that promise; speed belongs in bench/.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{DEADLINE, Drainit, TempDir, drainit, drainit_bin, free_port};

/// What one probe did.
#[derive(Debug)]
struct Probed {
    code: i32,
    stderr: String,
    took: Duration,
}

/// Run `drainit ARGS` (a probe) with `env` as its only `DRAINIT_*` variables, optionally
/// through `sh -c SETUP` in a private mount namespace, and wait for it (a hung probe is killed
/// at the deadline and fails the test).
fn probe_with(args: &[&str], env: &[(&str, &str)], mount_setup: Option<&str>) -> Probed {
    let mut cmd = match mount_setup {
        None => Command::new(drainit_bin()),
        Some(setup) => {
            let mut c = Command::new("unshare");
            c.args([
                "--mount",
                "sh",
                "-c",
                &format!("{setup}\nexec \"$0\" \"$@\""),
            ])
            .arg(drainit_bin());
            c
        }
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("DRAINIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn the probe");
    let mut stderr = child.stderr.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("drainit {args:?} did not exit within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    Probed {
        code: status.code().expect("the probe exited, not killed"),
        stderr: reader.join().unwrap(),
        took,
    }
}

fn probe(args: &[&str]) -> Probed {
    probe_with(args, &[], None)
}

/// A drainit serving its readiness endpoints on `ready_addr` (port 0: the kernel picks), with
/// the port it got.
fn server(ready_addr: &str, more: &[&str]) -> (Drainit, u16) {
    let d = drainit(["--ready-addr", ready_addr])
        .args(more)
        .args(["--", "sleep", "1000"])
        .pid1(false)
        .start();
    let line = d.wait_stderr("serving /readyz and /livez on ");
    let port = line
        .text
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {:?}", line.text));
    (d, port)
}

/// A tiny HTTP server on 127.0.0.1 only: each connection gets `status`, after the request head.
/// Stops with the returned guard.
struct HttpApp {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl HttpApp {
    fn start(status: &'static str) -> HttpApp {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.ends_with(b"\r\n\r\n") {
                            match s.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        HttpApp { port, stop }
    }
}

impl Drop for HttpApp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn assert_healthy(p: &Probed, what: &str) {
    assert_eq!(p.code, 0, "{what}: {p:?}");
    assert_eq!(p.stderr, "", "{what}: a healthy probe says nothing");
}

/// Unhealthy: exit 1 and one line on stderr that names the target and contains `why`.
fn assert_unhealthy(p: &Probed, target: &str, why: &str) {
    assert_eq!(p.code, 1, "{p:?}");
    assert_eq!(p.stderr.lines().count(), 1, "one line: {p:?}");
    assert!(
        p.stderr.starts_with(&format!("drainit: probe {target}: ")) && p.stderr.contains(why),
        "expected '{target}' and '{why}' in {:?}",
        p.stderr
    );
}

#[test]
fn every_target_form_finds_a_healthy_drainit() {
    let (_d, port) = server("127.0.0.1:0", &[]);
    for target in [
        format!(":{port}"),
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::]:{port}"),
        format!("http://127.0.0.1:{port}/readyz"),
        format!("http://localhost:{port}/livez?x=1"),
        format!("tcp://127.0.0.1:{port}"),
        format!("tcp://localhost:{port}/"),
    ] {
        assert_healthy(&probe(&["--probe", &target]), &target);
    }
    assert_healthy(&probe(&[&format!("--probe=:{port}")]), "--probe=:PORT");
    // A path drainit does not serve: 404 is not healthy.
    let target = format!("http://127.0.0.1:{port}/nope");
    assert_unhealthy(&probe(&["--probe", &target]), &target, "answered 404");
}

#[test]
fn without_a_target_the_probe_asks_the_ready_addr_of_the_environment() {
    // The container's own environment, other DRAINIT_* variables included: the probe reads
    // DRAINIT_READY_ADDR and nothing else.
    let (_d, port) = server(":0", &[]);
    let env = [
        ("DRAINIT_READY_ADDR", format!(":{port}")),
        ("DRAINIT_DRAIN_DELAY", "4s".to_string()),
        ("DRAINIT_READY_CHECK", "tcp://127.0.0.1:1".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_healthy(&probe_with(&["--probe"], &env, None), "DRAINIT_READY_ADDR");
    // An explicit TARGET wins over the variable.
    let refused = format!(":{}", free_port());
    assert_unhealthy(
        &probe_with(&["--probe", &refused], &env, None),
        &format!("http://127.0.0.1{refused}/readyz"),
        "Connection refused",
    );
}

#[test]
fn a_draining_drainit_is_unhealthy() {
    let (d, port) = server("127.0.0.1:0", &["-d", "60s"]);
    assert_healthy(&probe(&["--probe", &format!(":{port}")]), "before SIGTERM");
    d.send(libc::SIGTERM);
    d.wait_stderr("/readyz now answers 503");
    assert_unhealthy(
        &probe(&["--probe", &format!(":{port}")]),
        &format!("http://127.0.0.1:{port}/readyz"),
        "answered 503",
    );
    // /livez still says the process runs.
    assert_healthy(
        &probe(&["--probe", &format!("http://127.0.0.1:{port}/livez")]),
        "livez while draining",
    );
}

#[test]
fn a_refused_connection_is_unhealthy() {
    let port = free_port();
    for (target, shown) in [
        (
            format!("tcp://127.0.0.1:{port}"),
            format!("tcp://127.0.0.1:{port}"),
        ),
        (
            format!(":{port}"),
            format!("http://127.0.0.1:{port}/readyz"),
        ),
    ] {
        assert_unhealthy(&probe(&["--probe", &target]), &shown, "Connection refused");
    }
}

#[test]
fn http_targets_are_healthy_on_2xx_only() {
    let ok = HttpApp::start("204 No Content");
    let sick = HttpApp::start("500 Internal Server Error");
    assert_healthy(
        &probe(&["--probe", &format!("http://127.0.0.1:{}/health", ok.port)]),
        "204",
    );
    let target = format!("http://127.0.0.1:{}/health", sick.port);
    assert_unhealthy(&probe(&["--probe", &target]), &target, "answered 500");
}

#[test]
fn a_server_that_accepts_and_never_answers_is_unhealthy_within_two_seconds() {
    // The kernel completes the handshake for a listener nobody accepts on: connected, silent.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    // This one answers one byte at a time, never a whole status line.
    let trickling = TcpListener::bind("127.0.0.1:0").unwrap();
    let trickle_port = trickling.local_addr().unwrap().port();
    thread::spawn(move || {
        for s in trickling.incoming() {
            let Ok(mut s) = s else { break };
            thread::spawn(move || {
                while s.write_all(b"H").is_ok() {
                    thread::sleep(Duration::from_millis(50));
                }
            });
        }
    });
    for port in [silent_port, trickle_port] {
        let target = format!("http://127.0.0.1:{port}/");
        let p = probe(&["--probe", &target]);
        assert_unhealthy(&p, &target, "no answer within 1.9s");
        // The promise is 2 s; the bound leaves room for a busy machine.
        assert!(p.took < Duration::from_secs(6), "took {:?}", p.took);
    }
    drop(silent);
}

#[test]
fn a_probe_stops_on_sigterm_like_any_client() {
    // drainit blocks its signals before main (for the init); the probe must not keep them so.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("http://127.0.0.1:{}/", silent.local_addr().unwrap().port());
    let mut child = Command::new(drainit_bin())
        .args(["--probe", &target])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // Once it has connected, it waits for the answer, with nothing blocked.
    silent.set_nonblocking(true).unwrap();
    let mut accepted = None;
    common::wait_until("the probe to connect", DEADLINE, || {
        accepted = silent.accept().ok();
        accepted.is_some()
    });
    assert_eq!(
        common::sigmask(pid, "SigBlk"),
        Some(0),
        "signals left blocked"
    );
    common::kill(pid, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

#[test]
fn bad_targets_and_a_command_are_usage_errors() {
    for (args, first_line_has) in [
        (&["--probe", "nowhere"][..], "'nowhere' for '--probe'"),
        (&["--probe", "8086"], "'8086' for '--probe'"),
        (&["--probe", ":99999"], "':99999' for '--probe'"),
        (
            &["--probe", "https://127.0.0.1:1/"],
            "'https://127.0.0.1:1/'",
        ),
        (&["--probe", "tcp://127.0.0.1"], "'tcp://127.0.0.1'"),
        (&["--probe="], "'' for '--probe'"),
        (
            &["--probe", ":8086", "node", "server.js"],
            "runs no command",
        ),
        (&["--probe", "--", "node"], "runs no command"),
        (&["--probe"], "DRAINIT_READY_ADDR is not set"),
        (&["-v", "--probe", ":8086"], "must be the first argument"),
    ] {
        let p = probe(args);
        assert_eq!(p.code, 2, "{args:?}: {p:?}");
        let first = p.stderr.lines().next().unwrap_or_default();
        assert!(first.contains(first_line_has), "{args:?}: {first}");
    }
    let p = probe_with(&["--probe"], &[("DRAINIT_READY_ADDR", "nowhere")], None);
    assert_eq!(p.code, 2, "{p:?}");
    assert!(p.stderr.contains("(set by DRAINIT_READY_ADDR)"), "{p:?}");
}

#[test]
fn help_for_the_probe_exits_0_and_drainits_help_lists_it() {
    let p = Command::new(drainit_bin())
        .args(["--probe", "--help"])
        .output()
        .unwrap();
    assert!(p.status.success(), "{p:?}");
    let usage = String::from_utf8_lossy(&p.stdout);
    assert!(
        usage.starts_with("Usage: drainit --probe [TARGET]"),
        "{usage}"
    );
    let help = Command::new(drainit_bin()).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("drainit --probe [TARGET]"), "{help}");
    assert!(help.contains("--probe [<TARGET>]"), "{help}");
}

#[test]
fn localhost_is_found_on_127_0_0_1_with_dockers_etc_hosts() {
    // Docker's default /etc/hosts, for which glibc returns ::1 first; the app listens on
    // 127.0.0.1 only.
    let dir = TempDir::new("probe-hosts");
    let hosts = dir.path("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )
    .unwrap();
    let setup = format!("mount --bind {} /etc/hosts", hosts.display());
    let first = Command::new("unshare")
        .args([
            "--mount",
            "sh",
            "-c",
            &format!("{setup} && getent ahosts localhost"),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&first.stdout).starts_with("::1"),
        "the premise: ::1 comes first: {first:?}"
    );
    let app = HttpApp::start("200 OK");
    for target in [
        format!("http://localhost:{}/", app.port),
        format!("tcp://localhost:{}", app.port),
        // The ADDR form asks for /readyz, which this app answers 200 too.
        format!("localhost:{}", app.port),
    ] {
        assert_healthy(
            &probe_with(&["--probe", &target], &[], Some(&setup)),
            &target,
        );
    }
    // And where nobody listens, each address is named with why it failed.
    let port = free_port();
    let p = probe_with(
        &["--probe", &format!("tcp://localhost:{port}")],
        &[],
        Some(&setup),
    );
    assert_unhealthy(
        &p,
        &format!("tcp://localhost:{port}"),
        &format!("127.0.0.1:{port}: Connection refused"),
    );
    assert!(p.stderr.contains(&format!("[::1]:{port}: ")), "{p:?}");
}

#[test]
fn a_silent_nameserver_gets_an_answer_within_two_seconds() {
    // The probe gives up at its 1.9 s deadline, whatever the resolver does (here: 10 s).
    let dir = TempDir::new("probe-dns");
    let (_dns, mounts) = common::silent_nameserver(&dir);
    let target = "http://nohost.example:80/";
    let p = probe_with(&["--probe", target], &[], Some(&mounts));
    assert_unhealthy(
        &p,
        target,
        "cannot resolve 'nohost.example': the resolver did not answer within 1.9s",
    );
    assert!(p.took < Duration::from_secs(5), "{p:?}");
}

#[test]
fn a_probe_never_leaves_a_connection_open_on_the_server() {
    // The probe closes its socket when it exits: a server that counts connections sees each
    // one end (read returns 0) rather than pile up.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let p = probe(&["--probe", &format!("tcp://127.0.0.1:{port}")]);
    assert_healthy(&p, "tcp");
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "the probe closed its end");
}
