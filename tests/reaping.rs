//! Reaping (contract, point 4): drainit reaps every process it inherits, as PID 1 (every
//! orphan of the namespace) and not (it registers as child subreaper, quietly), also when a
//! thousand exit in one burst and their SIGCHLDs coalesce.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

/// `orphans --then await-reaped` exits 0 after printing `zombies 0` once none of its orphans is
/// left, zombie or not; it gives up after 30 s with `left A zombies Z` and exit 1.
fn orphans_all_reaped(pid1: bool, count: usize) {
    let mut d = drainit(Vec::<&str>::new())
        .pid1(pid1)
        .arg(example("orphans"))
        .args(["--count", &count.to_string(), "--exit-together"])
        .args(["--then", "await-reaped"])
        .start();
    let ready = format!("ready {count}");
    d.wait_for_stdout_line(|l| l == ready, DEADLINE * 2);
    d.wait_for_stdout_line(
        |l| l.starts_with("zombies") || l.starts_with("left"),
        DEADLINE * 2,
    );
    assert_eq!(d.wait_exit(), 0, "pid1={pid1}: {}", d.stdout());
    assert!(d.stdout().contains("zombies 0"));
}

#[test]
fn a_thousand_orphans_exiting_at_once_leave_no_zombie_as_pid_1() {
    orphans_all_reaped(true, 1000);
}

#[test]
fn orphans_exiting_at_once_leave_no_zombie_when_not_pid_1() {
    orphans_all_reaped(false, 300);
}

#[test]
fn not_as_pid_1_drainit_adopts_orphans_as_subreaper_without_a_warning() {
    let mut d = drainit(Vec::<&str>::new())
        .pid1(false)
        .arg(example("orphans"))
        .args(["--count", "3", "--then", "stay"])
        .start();
    d.wait_stdout("ready 3");
    let pid = d.pid();
    let child = d.child();
    let orphans: Vec<i32> = children(pid).into_iter().filter(|p| *p != child).collect();
    assert_eq!(orphans.len(), 3, "the orphans went elsewhere");
    for p in &orphans {
        kill(*p, libc::SIGTERM);
    }
    // A zombie stays in /proc until it is reaped.
    wait_until("the orphans to be reaped", DEADLINE, || {
        orphans.iter().all(|p| stat(*p).is_none())
    });
    assert_eq!(d.zombies(), 0);
    d.send(libc::SIGTERM);
    assert_eq!(d.wait_exit(), 128 + libc::SIGTERM);
    assert!(!d.stderr().contains("warn"), "{}", d.stderr());
}

#[test]
fn zombies_of_the_namespace_are_reaped_while_the_child_runs() {
    // As PID 1: orphans end one by one on their own while the child keeps running.
    let mut d = drainit(Vec::<&str>::new())
        .arg(example("orphans"))
        .args(["--count", "50", "--life", "200", "--then", "stay"])
        .start();
    d.wait_stdout("ready 50");
    let child = d.child();
    wait_until("only the child to be left", DEADLINE, || {
        d.processes() == [child]
    });
    d.send(libc::SIGTERM);
    assert_eq!(d.wait_exit(), 128 + libc::SIGTERM);
}

/// python3 that ignores SIGCHLD, then execs the rest of its command line: a parent that starts
/// drainit with an ignored SIGCHLD (some supervisors and shells do), which survives exec.
const IGNORING_SIGCHLD: &str = "exec python3 -c 'import os, signal, sys\n\
     signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n\
     os.execvp(sys.argv[1], sys.argv[1:])' \"$@\"";

#[test]
fn an_inherited_ignored_sigchld_does_not_hide_the_child_s_exit() {
    for pid1 in [true, false] {
        // As PID 1 the ignore must sit between unshare and drainit: unshare waits for its child.
        let b = drainit(["--", "sh", "-c", "exit 3"]).pid1(pid1);
        let b = if pid1 {
            b.inner_shell(IGNORING_SIGCHLD)
        } else {
            b.shell(IGNORING_SIGCHLD)
        };
        let mut d = b.start();
        assert_eq!(
            d.wait_status(std::time::Duration::from_secs(10)),
            3,
            "pid1={pid1}\n{}",
            d.stderr()
        );
    }
}
