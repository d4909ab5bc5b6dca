//! The exit path (contract, point 5): when the child exits, every process left gets SIGTERM and
//! up to the grace period (5 s by default) to finish, daemonized ones included; what remains is
//! SIGKILLed; drainit exits as soon as nothing is left, with the child's status; a stop signal
//! ends the wait; other signals are no longer forwarded. And the `npm start` shape: the app
//! behind a shell that dies on SIGTERM still gets to finish its graceful shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use std::time::{Duration, Instant};

/// The orphans' pids: every process under drainit but its child.
fn leftovers(d: &Drainit) -> Vec<i32> {
    let child = d.child();
    d.processes().into_iter().filter(|p| *p != child).collect()
}

#[test]
fn leftovers_that_need_time_after_term_get_it_and_drainit_exits_when_they_are_done() {
    for pid1 in [true, false] {
        for daemon in [false, true] {
            let dir = TempDir::new("leftovers");
            let marker = dir.path("finished");
            let mut args = vec!["--count", "3", "--term-takes", "500", "--then", "exit:4"];
            if daemon {
                args.push("--daemon");
            }
            // A long wait, so "as soon as they are done" is far from "when the wait ends".
            let mut d = drainit(["-g", "30s"])
                .pid1(pid1)
                .arg(example("orphans"))
                .args(&args)
                .arg("--marker")
                .arg(&marker)
                .start();
            let ready = d.wait_stdout("ready 3").at;
            assert_eq!(
                d.wait_exit(),
                4,
                "pid1={pid1} daemon={daemon}\n{}",
                d.stderr()
            );
            let took = ready.elapsed();
            let finished = std::fs::read_to_string(&marker).unwrap_or_default();
            assert_eq!(
                finished.lines().count(),
                3,
                "pid1={pid1} daemon={daemon}: {finished:?}"
            );
            assert!(took < Duration::from_secs(10), "drainit took {took:?}");
        }
    }
}

#[test]
fn a_leftover_that_ignores_term_is_killed_when_the_grace_period_runs_out() {
    for pid1 in [true, false] {
        let mut d = drainit(["-g", "1s"])
            .pid1(pid1)
            .arg(example("orphans"))
            .args([
                "--count",
                "2",
                "--ignore-term",
                "--daemon",
                "--then",
                "stay",
            ])
            .start();
        d.wait_stdout("ready 2");
        let left = leftovers(&d);
        assert_eq!(left.len(), 2);
        // The wait starts when drainit has reaped the child, after this.
        let killed = Instant::now();
        kill(d.child(), libc::SIGKILL);
        d.wait_stderr("sent SIGTERM to the processes left");
        assert_eq!(d.wait_exit(), 137, "the child's status, pid1={pid1}");
        let took = killed.elapsed();
        assert!(took >= Duration::from_millis(900), "killed after {took:?}");
        assert!(
            d.stderr()
                .contains("processes still left after the wait: sent SIGKILL")
        );
        for p in left {
            assert!(stat(p).is_none(), "leftover {p} survived");
        }
    }
}

#[test]
fn without_a_grace_period_leftovers_get_five_seconds() {
    let mut d = drainit(Vec::<&str>::new())
        .pid1(false)
        .arg(example("orphans"))
        .args(["--count", "1", "--ignore-term"])
        .start();
    // The child exits right after it printed this; the wait starts after that.
    let ready = d.wait_stdout("ready 1").at;
    d.wait_stderr("sent SIGTERM to the processes left");
    assert_eq!(d.wait_exit(), 0);
    let took = ready.elapsed();
    assert!(took >= Duration::from_millis(4900), "killed after {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn drainit_exits_at_once_when_the_leftovers_end_on_term() {
    for pid1 in [true, false] {
        let mut d = drainit(["-g", "30s"])
            .pid1(pid1)
            .arg(example("orphans"))
            .args(["--count", "20", "--then", "exit:3"])
            .start();
        let ready = d.wait_stdout("ready 20").at;
        assert_eq!(d.wait_exit(), 3);
        let took = ready.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "drainit took {took:?}; the wait is 30 s"
        );
    }
}

#[test]
fn a_stop_signal_during_the_leftover_wait_ends_it_and_other_signals_are_not_forwarded() {
    // The leftover is print-signals' grandchild, left in the child's group when the child
    // (told to by the test, once both are ready) exits 3.
    let max = libc::SIGRTMAX();
    let marker = format!("grandchild SIGRTMIN+{}", max - libc::SIGRTMIN());
    for pid1 in [true, false] {
        let mut d = drainit(["-g", "30s"])
            .pid1(pid1)
            .arg(example("print-signals"))
            .args(["--fork-grandchild", "--ignore-term", "--exit-on", "USR2:3"])
            .start();
        d.wait_stdout("child ready");
        d.wait_stdout("grandchild ready");
        let leftover = d.process_with_arg("grandchild");
        assert!(kill(d.child(), libc::SIGUSR2));
        // The leftovers' SIGTERM, which it ignores.
        d.wait_stdout("grandchild SIGTERM");
        d.send(libc::SIGUSR1);
        assert!(kill(leftover, max));
        d.wait_stdout(&marker);
        assert!(!d.stdout().contains("SIGUSR1"), "forwarded during the wait");
        let sent = Instant::now();
        d.send(libc::SIGTERM);
        assert_eq!(d.wait_exit(), 3, "pid1={pid1}");
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "took {:?}",
            sent.elapsed()
        );
        d.wait_stderr("SIGTERM received while waiting for the processes left: sent SIGKILL");
        assert!(stat(leftover).is_none(), "the leftover survived");
    }
}

#[test]
fn npm_start_shape_the_app_behind_a_shell_that_dies_on_term_finishes_its_shutdown() {
    // npm runs `sh -c "node server.js"`: the shell dies on SIGTERM at once, the app takes a
    // second to shut down gracefully. Plain inits exit with the shell and the kernel kills the
    // app; drainit waits for it.
    // With -c only the shell gets the forwarded SIGTERM; the app gets the leftovers' SIGTERM.
    for pid1 in [true, false] {
        for mode in MODES {
            let mut d = drainit(mode)
                .pid1(pid1)
                .args(["sh", "-c", "\"$0\" --exit-delay 1000; exit $?"])
                .arg(example("print-signals"))
                .start();
            d.wait_stdout("ready");
            d.send(libc::SIGTERM);
            assert_eq!(
                d.wait_exit(),
                143,
                "the shell's status, pid1={pid1} mode={mode:?}"
            );
            let got = d.wait_stdout("SIGTERM").at;
            let done = d.wait_stdout("exiting").at;
            assert!(done - got >= Duration::from_millis(900));
        }
    }
}
