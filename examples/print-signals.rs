//! print-signals: prints every signal it receives, one line each, so tests (and you) can see
//! what drainit forwards. A test fixture first, and a demo:
//!
//! ```text
//! cargo build --examples
//! drainit target/debug/examples/print-signals      # then, from another shell: kill -USR1 <pid>
//! ```
//!
//! It catches every catchable signal (all but KILL, STOP and the faults ILL, FPE, SEGV, which
//! signal-hook refuses), real-time ones included, then prints `ready`. Each signal received
//! prints its name (`SIGUSR1`, `SIGRTMIN+3`); stdout is flushed after every line. Output lines
//! carry the `--label`, if any, as a first word (`child SIGUSR1`).
//!
//! Options:
//! - `--label NAME`: prefix every line with NAME.
//! - `--exit-on SIG[:CODE]` (repeatable): exit with CODE (default 0) after printing SIG.
//!   Replaces the default, which is to exit 0 on SIGTERM like a well-behaved app.
//! - `--ignore-term`: SIGTERM is printed but does not make it exit (to test `--grace-period`).
//! - `--exit-delay MS`: after an exit signal, take MS milliseconds to finish (a slow graceful
//!   shutdown), then print `exiting` and exit.
//! - `--exit-after MS`: exit 0 on its own MS milliseconds after `ready`, printing `exiting`.
//! - `--status`: before installing handlers, print its `/proc/self/status` SigBlk, SigIgn and
//!   SigCgt lines and `pid P pgid G sid S`. Rust's runtime ignores SIGPIPE before `main`, so
//!   SigIgn always has bit 13 set here; to see a child's real start-up state use `cat
//!   /proc/self/status` as the child.
//! - `--fork-grandchild`: once its own handlers are in (after its `ready`), start a copy of
//!   itself (same options, label `grandchild`) in the same process group; this process's label
//!   defaults to `child`. Both print `ready`, the child first.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
use signal_hook::iterator::Signals;

/// The classic names, by number (`kill -l` order); index 0 is unused.
const NAMES: [&str; 32] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// `SIGUSR1`, `SIGRTMIN+3`: how a signal number is printed.
fn name(sig: i32) -> String {
    let rtmin = libc::SIGRTMIN();
    match usize::try_from(sig).ok().and_then(|i| NAMES.get(i)) {
        Some(n) if !n.is_empty() => format!("SIG{n}"),
        _ if sig >= rtmin => format!("SIGRTMIN+{}", sig - rtmin),
        _ => format!("SIG{sig}"),
    }
}

/// `TERM`, `SIGTERM`, `15`, `RTMIN+3` → the number.
fn parse_signal(s: &str) -> i32 {
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Ok(n) = bare.parse() {
        return n;
    }
    if let Some(off) = bare.strip_prefix("RTMIN+") {
        return libc::SIGRTMIN() + off.parse::<i32>().expect("RTMIN+N");
    }
    NAMES
        .iter()
        .position(|n| !n.is_empty() && *n == bare)
        .map(|i| i as i32)
        .unwrap_or_else(|| panic!("unknown signal {s}"))
}

#[derive(Clone, Default)]
struct Opts {
    label: Option<String>,
    exit_on: Vec<(i32, i32)>,
    ignore_term: bool,
    exit_delay: Option<u64>,
    exit_after: Option<u64>,
    status: bool,
    fork_grandchild: bool,
}

fn parse_args() -> Opts {
    let mut o = Opts::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--label" => o.label = Some(value()),
            "--exit-on" => {
                let v = value();
                let (sig, code) = v.split_once(':').unwrap_or((&v, "0"));
                o.exit_on
                    .push((parse_signal(sig), code.parse().expect("exit code")));
            }
            "--ignore-term" => o.ignore_term = true,
            "--exit-delay" => o.exit_delay = Some(value().parse().expect("ms")),
            "--exit-after" => o.exit_after = Some(value().parse().expect("ms")),
            "--status" => o.status = true,
            "--fork-grandchild" => o.fork_grandchild = true,
            other => panic!("print-signals: unknown argument {other}"),
        }
    }
    if o.exit_on.is_empty() && !o.ignore_term {
        o.exit_on.push((libc::SIGTERM, 0));
    }
    if o.ignore_term {
        o.exit_on.retain(|(s, _)| *s != libc::SIGTERM);
    }
    o
}

/// Print one line (with the label) and flush; a closed stdout is not our problem.
fn say(label: &Option<String>, what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = match label {
        Some(l) => writeln!(out, "{l} {what}"),
        None => writeln!(out, "{what}"),
    };
    let _ = out.flush();
}

fn print_status(label: &Option<String>) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    for line in status.lines() {
        if ["SigBlk:", "SigIgn:", "SigCgt:"]
            .iter()
            .any(|k| line.starts_with(k))
        {
            say(
                label,
                &line.split_whitespace().collect::<Vec<_>>().join(" "),
            );
        }
    }
    let pid = nix::unistd::getpid();
    let pgid = nix::unistd::getpgrp();
    let sid = nix::unistd::getsid(None).expect("getsid");
    say(label, &format!("pid {pid} pgid {pgid} sid {sid}"));
}

/// Start a copy of ourselves labelled `grandchild`, with our own options minus this one.
#[allow(clippy::zombie_processes)]
fn fork_grandchild() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--fork-grandchild")
        .collect();
    let exe = std::env::current_exe().expect("current_exe");
    // Not waited for: if we exit first, it is an orphan for drainit to reap.
    Command::new(exe)
        .args(args)
        .args(["--label", "grandchild"])
        .spawn()
        .expect("spawn grandchild");
}

fn main() {
    let mut o = parse_args();
    if o.fork_grandchild {
        o.label.get_or_insert_with(|| "child".to_string());
    }
    if o.status {
        print_status(&o.label);
    }
    let forbidden = signal_hook::consts::FORBIDDEN;
    let all = (1..32)
        .filter(|s| !forbidden.contains(s))
        .chain(libc::SIGRTMIN()..=libc::SIGRTMAX());
    // Blocked while the handlers go in: signal-hook installs each OS handler a moment before
    // it records the action, and a signal landing in between is dropped (neither printed nor
    // its default action), which a test would read as a signal drainit lost.
    let mut old = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )
    .expect("block signals");
    let mut signals = Signals::new(all).expect("install signal handlers");
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None).expect("unblock signals");
    say(&o.label, "ready");
    // Only now, so "grandchild ready" also means this process handles its signals: a test that
    // waits for the grandchild and then signals the group must not meet a child still starting.
    if o.fork_grandchild {
        fork_grandchild();
    }
    if let Some(ms) = o.exit_after {
        let label = o.label.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            say(&label, "exiting");
            std::process::exit(0);
        });
    }
    for sig in signals.forever() {
        say(&o.label, &name(sig));
        if let Some((_, code)) = o.exit_on.iter().find(|(s, _)| *s == sig) {
            if let Some(ms) = o.exit_delay {
                std::thread::sleep(Duration::from_millis(ms));
                say(&o.label, "exiting");
            }
            std::process::exit(*code);
        }
    }
}
