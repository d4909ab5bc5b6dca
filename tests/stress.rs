//! Stress: drainit as PID 1 under loads far past what a container sees, each bounded in time and
//! each able to fail. A storm of 50 000 signals from several senders; 10 000 orphans exiting in
//! one burst; a child forking until the process limit stops it. After each, drainit must still
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

use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
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
    assert_eq!(d.wait_exit_within(Duration::from_secs(45)), 5);
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
