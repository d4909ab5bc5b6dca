//! Faults: drainit in a hostile or unusual environment, and a child that misbehaves: stderr
//! closed or a pipe whose reader is gone; a child that closes its stdio or
//! exits during the drain delay; drainit as an unprivileged user, in a user namespace or not; and
//! a kernel that refuses subreaper registration (a seccomp filter, as a strict container runtime
//! profile might set). In each, signals must still be forwarded, everything reaped, and the
//! child's status passed on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

use std::time::{Duration, Instant};

/// `orphans --count N --daemon --then stay`: N orphans in sessions of their own (so signals
/// forwarded to the child's group miss them) that live until a signal ends them.
fn orphans(count: usize) -> Vec<String> {
    vec![
        example("orphans").display().to_string(),
        "--count".into(),
        count.to_string(),
        "--daemon".into(),
        "--then".into(),
        "stay".into(),
    ]
}

/// With `orphans(count)` as the child: every orphan is adopted by drainit (PID 1 or subreaper),
/// none is a zombie; SIGUSR1 is forwarded and kills the fixture's main process (its default
/// action), and drainit SIGTERMs the orphans, reaps them and passes on 128 + 10.
fn adopts_orphans_forwards_and_passes_on_the_status(d: &mut Drainit, count: usize) {
    d.wait_for_stdout_line(|l| l == format!("ready {count}"), Duration::from_secs(60));
    wait_until("drainit to adopt the orphans", DEADLINE, || {
        d.processes().len() == count + 1
    });
    assert_eq!(d.zombies(), 0);
    d.send(libc::SIGUSR1);
    assert_eq!(d.wait_exit(), 128 + libc::SIGUSR1);
    let log = final_log(d);
    assert!(log.contains("sent SIGTERM to the processes left"), "{log}");
}

/// drainit's whole log, once it is all read: the test's reader thread may still be behind when
/// drainit has exited, so wait for the last line drainit writes.
fn final_log(d: &Drainit) -> String {
    d.wait_stderr("exiting with status");
    d.stderr()
}

/// The warning and error lines drainit logged (call after `final_log`).
fn complaints(d: &Drainit) -> Vec<String> {
    d.stderr_lines()
        .into_iter()
        .map(|l| l.text)
        .filter(|l| l.contains(": warn:") || l.contains(": error:"))
        .collect()
}

/// Run drainit with stderr set up by `setup` and -vv (a debug line for every forward, a few
/// dozen in all): signals are still forwarded, the drain still happens, the status is passed on,
/// and drainit's own SIGPIPE (if its log writes raise one) never reaches the child.
fn carries_on_logging_into(setup: &str) {
    let mut d = drainit(["-vv", "-d", "200ms"])
        .shell(setup)
        .arg(example("print-signals"))
        .args(["--exit-on", "TERM:5"])
        .start();
    d.wait_stdout("ready");
    for _ in 0..20 {
        d.send(libc::SIGUSR1);
    }
    d.send(libc::SIGUSR2);
    d.wait_stdout("SIGUSR2");
    d.send(libc::SIGTERM);
    d.wait_stdout("SIGTERM");
    assert_eq!(d.wait_exit(), 5);
    assert!(
        !d.stdout().contains("SIGPIPE"),
        "drainit forwarded its own SIGPIPE:\n{}",
        d.stdout()
    );
}

#[test]
fn a_closed_stderr_does_not_stop_drainit() {
    // drainit opens /dev/null on the closed fd 2 and logs into it.
    carries_on_logging_into("exec 2>&-");
}

#[test]
fn a_broken_stderr_pipe_does_not_stop_drainit() {
    // A pipe whose only reader has exited: every log write fails with EPIPE and raises SIGPIPE,
    // which drainit ignores and never forwards.
    carries_on_logging_into("exec 2> >(exec true); wait $!");
}

/// The line drainit logs after it had to drop some.
const NOTE: &str = "log lines dropped: stderr was not writable";

/// drainit with `args` and stderr on `writer`, a pipe of the test's own (bash opens it through
/// /proc), in front of print-signals, which exits 5 on SIGTERM; started and ready.
fn logging_into(writer: std::io::PipeWriter, args: &[&str]) -> Drainit {
    use std::os::fd::AsRawFd;
    let setup = format!(
        "exec 2>/proc/{}/fd/{}",
        std::process::id(),
        writer.as_raw_fd()
    );
    let d = drainit(args)
        .shell(&setup)
        .arg(example("print-signals"))
        .args(["--exit-on", "TERM:5"])
        .start();
    drop(writer);
    d.wait_stdout("ready");
    d
}

#[test]
fn a_stalled_stderr_reader_does_not_stop_forwarding() {
    // stderr is a pipe whose reader is alive but never reads (a stuck log collector). Once the
    // pipe is full, a blocking log write would park drainit: no more forwarding, reaping or
    // draining. The pipe is the test's own; bash opens its write end through /proc.
    use std::io::Read;
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut d = logging_into(writer, &["-vv", "-d", "200ms"]);
    // A debug line of about 70 bytes per forward: 4000 spaced-out signals write far more than
    // the pipe's 64 KiB. Spaced, so that they are not merged into a few.
    for _ in 0..4000 {
        d.send_raw(libc::SIGUSR1);
        std::thread::sleep(Duration::from_micros(300));
    }
    d.send(libc::SIGUSR2);
    d.wait_stdout("SIGUSR2");
    // The collector wakes up and reads what is there; the lines logged from now on get through,
    // after a note of how many were dropped.
    let mut log = vec![0u8; 128 * 1024];
    let n = reader.read(&mut log).unwrap();
    log.truncate(n);
    // The pipe holds 64 KiB; nearly that much means drainit met a full pipe.
    assert!(
        n >= 56 * 1024,
        "only {n} bytes logged before the pipe was read"
    );
    d.send(libc::SIGTERM);
    d.wait_stdout("SIGTERM");
    assert_eq!(d.wait_exit(), 5);
    reader.read_to_end(&mut log).unwrap();
    let log = String::from_utf8_lossy(&log);
    // Whole lines only: a line that did not fit was dropped, not cut.
    assert!(log.lines().all(|l| l.starts_with("drainit: ")), "{log}");
    assert!(
        log.contains(NOTE),
        "{}",
        &log[log.len().saturating_sub(2000)..]
    );
    assert!(log.contains("exiting with status 5"));
}

#[test]
fn a_stderr_pipe_with_less_room_than_a_line_does_not_park_drainit() {
    // poll(2) calls a pipe writable while one page of it is free, but a blocking write waits
    // until all of it is in. So "poll, then write" can still park PID 1: here a line longer
    // than the room left, and in real life the app filling the shared pipe between drainit's
    // poll and its write. Made deterministic: the pipe is full but for two pages and each check
    // logs a debug line of more than three. drainit must keep forwarding, cut its lines to
    // PIPE_BUF, and log the drop once the pipe is read again.
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    let flags = nix::fcntl::OFlag::from_bits_retain(
        nix::fcntl::fcntl(writer.as_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap(),
    );
    let nonblocking = flags | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(writer.as_fd(), nix::fcntl::FcntlArg::F_SETFL(nonblocking)).unwrap();
    let page = [b'x'; 4096];
    let mut filled = 0;
    while let Ok(n) = writer.write(&page) {
        filled += n;
    }
    let mut two_pages = vec![0u8; 2 * 4096];
    reader.read_exact(&mut two_pages).unwrap();
    // drainit opens the pipe anew through /proc, so O_NONBLOCK (ours) is not on its stderr.
    let target = format!("http://127.0.0.1:1/{}", "a".repeat(13_000));
    let args = [
        "-vv",
        "--ready-addr",
        "127.0.0.1:0",
        "--ready-check",
        &target,
    ];
    let probe = writer.try_clone().unwrap();
    let mut d = logging_into(writer, &args);
    // Checks fail every 100 ms, each with a 13 KB line, and soon fill the two pages (the old
    // code parked on the first of them). Then the "forwarding SIGUSR2" line meets a full pipe:
    // the child must still get its signal, and that line is dropped for sure.
    wait_until(
        "drainit's lines to fill the pipe",
        Duration::from_secs(10),
        || {
            let mut fds = [nix::poll::PollFd::new(
                probe.as_fd(),
                nix::poll::PollFlags::POLLOUT,
            )];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO) == Ok(0)
        },
    );
    drop(probe);
    d.send(libc::SIGUSR2);
    d.wait_stdout("SIGUSR2");
    // The log collector wakes up and keeps reading; lines get through again (a check fails
    // every 100 ms), after the note. Only once the note is seen does drainit get SIGTERM.
    let (seen, note) = std::sync::mpsc::channel();
    let collector = std::thread::spawn(move || {
        let mut log = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut told = false;
        while let Ok(n @ 1..) = reader.read(&mut chunk) {
            log.extend_from_slice(chunk.get(..n).unwrap());
            if !told && String::from_utf8_lossy(&log).contains(NOTE) {
                told = seen.send(()).is_ok();
            }
        }
        log
    });
    let got_note = note.recv_timeout(Duration::from_secs(10)).is_ok();
    d.send(libc::SIGTERM);
    d.wait_stdout("SIGTERM");
    assert_eq!(d.wait_exit(), 5);
    let log = collector.join().unwrap();
    let log = String::from_utf8_lossy(&log);
    assert!(filled >= 16 * 4096, "the pipe took only {filled} bytes");
    assert!(got_note, "{}", &log[log.len().saturating_sub(2000)..]);
    // Whole lines only: the 13 KB lines were cut to PIPE_BUF, so none was half written and
    // glued to the next.
    let cut = log.lines().filter(|l| l.ends_with(" [cut]")).count();
    assert!(cut >= 1, "no line was cut to size");
    for line in log.lines().filter(|l| !l.starts_with('x')) {
        assert!(
            line.starts_with("drainit: ") && line.len() < 4096,
            "{line:.200}"
        );
    }
}

#[test]
fn drainit_never_writes_its_log_into_a_pipe_that_fd_2_only_reads() {
    // `2<&0` with a pipe on stdin: fd 2 is the pipe's read end. drainit's lines must go
    // nowhere (poll never calls a read end writable, so they are dropped), not into the app's
    // stdin through a reopened write end.
    let d = drainit(["-vv"])
        .shell("exec 0< <(exec sleep 3) 2<&0")
        .args(["sh", "-c", "timeout 1 cat; echo read-done"])
        .start();
    d.wait_stdout("read-done");
    assert!(!d.stdout().contains("drainit"), "{}", d.stdout());
}

#[test]
fn a_child_that_closes_its_stdio_still_gets_signals_and_its_status_passed_on() {
    let dir = TempDir::new("closed-stdio");
    let log = dir.path("log");
    // The traps run between two short sleeps; forwarded signals also end the sleep at once.
    let script = r#"exec <&- >&- 2>&-
trap 'echo USR1 >> "$0"' USR1
trap 'exit 9' TERM
echo started >> "$0"
while :; do sleep 0.05; done"#;
    let mut d = drainit::<_, &str>([])
        .args(["sh", "-c", script])
        .arg(&log)
        .start();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until("the child to start", DEADLINE, || {
        read().contains("started")
    });
    d.send(libc::SIGUSR1);
    wait_until("the child to get SIGUSR1", DEADLINE, || {
        read().contains("USR1")
    });
    d.send(libc::SIGTERM);
    assert_eq!(d.wait_exit(), 9);
}

#[test]
fn a_child_exiting_during_the_drain_delay_ends_drainit_at_once_without_the_held_signal() {
    for pid1 in [true, false] {
        let mut d = drainit(["-d", "20s"])
            .pid1(pid1)
            .arg(example("print-signals"))
            .args(["--exit-on", "USR1:4"])
            .start();
        d.wait_stdout("ready");
        d.send(libc::SIGTERM);
        d.wait_stderr("holding SIGTERM");
        let exited_by = Instant::now();
        d.send(libc::SIGUSR1);
        assert_eq!(d.wait_exit(), 4, "pid1={pid1}");
        assert!(
            exited_by.elapsed() < Duration::from_secs(10),
            "drainit sat out the drain delay after its child exited (pid1={pid1})"
        );
        // The child exits right after printing SIGUSR1: a forwarded SIGTERM would be before it.
        d.wait_stdout("SIGUSR1");
        assert!(
            !d.stdout().contains("SIGTERM"),
            "the held SIGTERM reached the child"
        );
        let log = final_log(&d);
        assert!(log.contains("SIGTERM not forwarded"), "{log}");
    }
}

#[test]
fn a_reserved_real_time_signal_does_not_kill_a_drainit_that_is_not_pid1() {
    // 32 is kept by the C library (glibc and musl alike): drainit cannot catch it, and its
    // default action would end a non-PID-1 drainit and orphan the app. It is ignored instead.
    let mut d = drainit::<_, &str>([])
        .pid1(false)
        .arg(example("print-signals"))
        .args(["--exit-on", "TERM:7"])
        .start();
    d.wait_stdout("ready");
    d.send_raw(32);
    d.send_and_see(libc::SIGUSR1, "SIGUSR1");
    assert!(!d.has_exited(), "signal 32 ended drainit");
    d.send(libc::SIGTERM);
    assert_eq!(d.wait_exit(), 7, "the child's own status, passed on");
}

/// drainit's real uid is nobody's (65534).
fn assert_runs_as_nobody(d: &Drainit) {
    let uid = status_field(d.pid(), "Uid").unwrap();
    assert_eq!(uid.split_whitespace().next(), Some("65534"), "Uid: {uid}");
}

#[test]
fn runs_as_an_unprivileged_user_as_pid1_of_a_user_namespace() {
    // nobody, no capabilities outside; root only inside its own user namespace.
    let mut d = drainit::<_, &str>([])
        .pid1(false)
        .shell(
            "exec setpriv --reuid=65534 --regid=65534 --clear-groups \
             unshare --user --map-root-user --pid --fork --mount-proc \"$@\"",
        )
        .args(orphans(50))
        .start();
    assert_eq!(
        status_field(d.pid(), "NSpid")
            .unwrap()
            .split_whitespace()
            .last(),
        Some("1"),
        "drainit is not PID 1 of its namespace"
    );
    assert_runs_as_nobody(&d);
    adopts_orphans_forwards_and_passes_on_the_status(&mut d, 50);
    assert_eq!(complaints(&d), Vec::<String>::new());
}

#[test]
fn runs_as_nobody_as_a_quiet_subreaper() {
    let mut d = drainit::<_, &str>([])
        .pid1(false)
        .shell("exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$@\"")
        .args(orphans(50))
        .start();
    assert_runs_as_nobody(&d);
    // The orphans are re-parented to drainit, not to the host's init, only because it
    // registered as subreaper; and it did so quietly.
    adopts_orphans_forwards_and_passes_on_the_status(&mut d, 50);
    assert_eq!(complaints(&d), Vec::<String>::new());
}

/// Loads a seccomp filter that makes prctl(PR_SET_CHILD_SUBREAPER, ...) fail with EPERM, then
/// execs its arguments. x86_64 only (the syscall number and audit arch are that ABI's).
const NO_SUBREAPER: &str = r#"
import ctypes, os, sys

ALLOW, ERRNO_EPERM = 0x7FFF0000, 0x00050000 | 1
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
AUDIT_ARCH_X86_64, NR_PRCTL, PR_SET_CHILD_SUBREAPER = 0xC000003E, 157, 36
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2

class Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]

insns = [
    (LD_W_ABS, 0, 0, 4),                   # A = seccomp_data.arch
    (JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
    (RET_K, 0, 0, ALLOW),
    (LD_W_ABS, 0, 0, 0),                   # A = seccomp_data.nr
    (JEQ_K, 0, 3, NR_PRCTL),
    (LD_W_ABS, 0, 0, 16),                  # A = low word of args[0]
    (JEQ_K, 0, 1, PR_SET_CHILD_SUBREAPER),
    (RET_K, 0, 0, ERRNO_EPERM),
    (RET_K, 0, 0, ALLOW),
]
arr = (Insn * len(insns))(*[Insn(*i) for i in insns])
prog = Prog(len(insns), arr)
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
    sys.exit("no_new_privs: errno %d" % ctypes.get_errno())
if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
    sys.exit("seccomp: errno %d" % ctypes.get_errno())
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
    sys.exit("the filter did not refuse PR_SET_CHILD_SUBREAPER")
os.execvp(sys.argv[1], sys.argv[1:])
"#;

#[test]
#[cfg(target_arch = "x86_64")]
fn warns_once_and_still_works_when_subreaper_registration_is_refused() {
    let dir = TempDir::new("no-subreaper");
    let wrapper = dir.path("no-subreaper.py");
    std::fs::write(&wrapper, NO_SUBREAPER).unwrap();
    let mut d = drainit(["-d", "200ms"])
        .pid1(false)
        .shell(&format!("exec python3 {} \"$@\"", wrapper.display()))
        .arg(example("print-signals"))
        .args(["--exit-on", "TERM:6"])
        .start();
    d.wait_stdout("ready");
    d.send(libc::SIGUSR1);
    d.wait_stdout("SIGUSR1");
    d.send(libc::SIGTERM);
    d.wait_stdout("SIGTERM");
    assert_eq!(d.wait_exit(), 6);
    final_log(&d);
    let warnings = complaints(&d);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("subreaper"), "{}", warnings[0]);
}
