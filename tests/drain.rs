//! Draining (contract, point 3): the first stop signal is held for `--drain-delay`, then
//! forwarded once; a second one cuts the delay short; later ones pass at once; the grace
//! period ends in SIGKILL; a child exiting during the delay ends drainit with its status and
//! the held signal is dropped. Timings are asserted as order with generous bounds, both modes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use std::time::{Duration, Instant};

/// Generous slack for "promptly" on a busy two-core machine, where the contrast is a 2 s delay.
const SLACK: Duration = Duration::from_secs(3);
/// "At once" where the contrast is a 30 s delay: far from both.
const AT_ONCE: Duration = Duration::from_secs(10);

fn count(d: &Drainit, line: &str) -> usize {
    d.stdout_lines().iter().filter(|l| l.text == line).count()
}

#[test]
fn the_first_stop_signal_is_held_for_the_drain_delay_then_forwarded_once() {
    let delay = Duration::from_secs(2);
    for mode in MODES {
        let mut d = drainit(["-d", "2s"])
            .args(mode)
            .arg(example("print-signals"))
            .args(["--ignore-term", "--exit-on", "USR2"])
            .start();
        d.wait_stdout("ready");
        let sent = Instant::now();
        d.send(libc::SIGTERM);
        d.wait_stderr("holding SIGTERM for 2s");
        let got = d.wait_stdout("SIGTERM").at - sent;
        assert!(
            got >= delay - Duration::from_millis(100),
            "forwarded after {got:?}"
        );
        assert!(got < delay + SLACK, "forwarded only after {got:?}");
        // Once: a signal sent now is forwarded at once, and nothing else came before it.
        d.send_and_see(libc::SIGUSR1, "SIGUSR1");
        assert_eq!(count(&d, "SIGTERM"), 1);
        d.send(libc::SIGUSR2);
        assert_eq!(d.wait_exit(), 0, "mode={mode:?}");
        // One info line per step.
        let log = d.stderr();
        for step in [
            "holding SIGTERM for 2s",
            "drain delay over: forwarding SIGTERM",
        ] {
            assert_eq!(log.matches(step).count(), 1, "{step}:\n{log}");
        }
    }
}

#[test]
fn a_second_stop_signal_cuts_the_delay_short_and_forwards_the_first_one_once() {
    for mode in MODES {
        let mut d = drainit(["-d", "30s", "--stop-signal", "TERM", "--stop-signal", "INT"])
            .args(mode)
            .arg(example("print-signals"))
            .args(["--ignore-term", "--exit-on", "USR2"])
            .start();
        d.wait_stdout("ready");
        d.send(libc::SIGTERM);
        d.wait_stderr("holding SIGTERM for 30s");
        let cut = Instant::now();
        let got = d.send_and_see(libc::SIGINT, "SIGTERM").at - cut;
        assert!(
            got < AT_ONCE,
            "the second stop signal did not cut the delay: {got:?}"
        );
        // Stop signals after the forward are forwarded at once, like any signal.
        d.send_and_see(libc::SIGINT, "SIGINT");
        d.send(libc::SIGTERM);
        wait_until("a second SIGTERM", DEADLINE, || count(&d, "SIGTERM") == 2);
        let lines: Vec<String> = d.stdout_lines().into_iter().map(|l| l.text).collect();
        assert_eq!(
            lines,
            ["ready", "SIGTERM", "SIGINT", "SIGTERM"],
            "the cutting SIGINT itself was not forwarded; mode={mode:?}"
        );
        d.send(libc::SIGUSR2);
        assert_eq!(d.wait_exit(), 0);
    }
}

#[test]
fn without_a_drain_delay_the_stop_signal_is_forwarded_at_once() {
    for mode in MODES {
        let mut d = drainit(mode).arg(example("print-signals")).start();
        d.wait_stdout("ready");
        let sent = Instant::now();
        let got = d.send_and_see(libc::SIGTERM, "SIGTERM").at - sent;
        assert!(got < AT_ONCE, "{got:?}");
        assert_eq!(d.wait_exit(), 0);
    }
}

#[test]
fn stop_signal_replaces_the_default_list() {
    for via_env in [false, true] {
        let b = if via_env {
            drainit(["-d", "30s"]).env("DRAINIT_STOP_SIGNALS", "INT,QUIT")
        } else {
            drainit(["-d", "30s", "--stop-signal", "INT", "--stop-signal", "QUIT"])
        };
        let mut d = b
            .arg(example("print-signals"))
            .args(["--exit-on", "INT:5"])
            .start();
        d.wait_stdout("ready");
        // TERM is no longer a stop signal: it passes at once (print-signals keeps running).
        let sent = Instant::now();
        d.send(libc::SIGTERM);
        assert!(d.wait_stdout("SIGTERM").at - sent < AT_ONCE);
        d.send(libc::SIGINT);
        d.wait_stderr("holding SIGINT for 30s");
        // QUIT is a stop signal too: the second one, so it cuts the delay; INT is forwarded.
        d.send_and_see(libc::SIGQUIT, "SIGINT");
        assert_eq!(d.wait_exit(), 5, "via_env={via_env}");
        assert!(!d.stdout().contains("SIGQUIT"));
    }
    // The command line replaces the env list rather than adding to it.
    let mut d = drainit(["-d", "30s", "--stop-signal", "USR2"])
        .env("DRAINIT_STOP_SIGNALS", "INT")
        .arg(example("print-signals"))
        .args(["--exit-on", "INT:5"])
        .start();
    d.wait_stdout("ready");
    d.send(libc::SIGINT);
    assert_eq!(d.wait_exit(), 5, "INT was held: the env list was kept");
}

#[test]
fn the_grace_period_ends_in_sigkill_of_the_group_and_exit_137() {
    let grace = Duration::from_secs(1);
    for mode in MODES {
        let mut d = drainit(["-g", "1s"])
            .args(mode)
            .arg(example("print-signals"))
            .args(["--ignore-term", "--fork-grandchild"])
            .start();
        d.wait_stdout("child ready");
        d.wait_stdout("grandchild ready");
        let grandchild = d.process_with_arg("grandchild");
        // The grace period starts at the forward, after this.
        let sent = Instant::now();
        d.send_and_see(libc::SIGTERM, "child SIGTERM");
        d.wait_stderr("grace period (1s) over: sending SIGKILL");
        assert_eq!(d.wait_exit(), 137, "mode={mode:?}");
        let took = sent.elapsed();
        assert!(took >= grace, "killed after {took:?}");
        assert!(stat(grandchild).is_none(), "the grandchild survived");
    }
}

#[test]
fn without_a_grace_period_a_child_ignoring_term_is_never_killed() {
    let mut d = drainit(Vec::<&str>::new())
        .arg(example("print-signals"))
        .args(["--ignore-term", "--exit-on", "USR2:4"])
        .start();
    d.wait_stdout("ready");
    d.send_and_see(libc::SIGTERM, "SIGTERM");
    d.send_and_see(libc::SIGUSR1, "SIGUSR1");
    assert!(!d.has_exited());
    d.send(libc::SIGUSR2);
    assert_eq!(d.wait_exit(), 4);
}

#[test]
fn a_child_exiting_during_the_drain_delay_ends_drainit_with_its_status_and_drops_the_signal() {
    for mode in MODES {
        let mut d = drainit(["-d", "30s"])
            .args(mode)
            .arg(example("print-signals"))
            .args(["--exit-on", "USR1:7"])
            .start();
        d.wait_stdout("ready");
        d.send(libc::SIGTERM);
        d.wait_stderr("holding SIGTERM for 30s");
        let sent = Instant::now();
        d.send(libc::SIGUSR1);
        assert_eq!(d.wait_exit(), 7, "mode={mode:?}");
        assert!(
            sent.elapsed() < AT_ONCE,
            "drainit waited {:?}",
            sent.elapsed()
        );
        d.wait_stderr("the child exited during the drain delay: SIGTERM not forwarded");
        assert!(!d.stdout().contains("SIGTERM"));
        assert!(!d.stderr().contains("drain delay over"));
    }
}

/// Send `sig` to `pid` `times` times while it is stopped, so they are all pending together.
fn queue_while_stopped(pid: i32, signals: &[(i32, usize)]) {
    assert!(kill(pid, libc::SIGSTOP));
    wait_until("drainit to be stopped", DEADLINE, || {
        stat(pid).is_some_and(|s| s.state == 'T')
    });
    for (sig, times) in signals {
        for _ in 0..*times {
            assert!(kill(pid, *sig));
        }
    }
    assert!(kill(pid, libc::SIGCONT));
}

#[test]
fn real_time_signals_queued_together_are_forwarded_once_and_are_one_stop_signal() {
    // Stop signal RTMIN+1 (35; drainit's RTMIN is 34). Two of them pending together are one
    // stop signal: the delay holds. Five RTMIN+2 pending together are one forward. 300 of each
    // (a backlog longer than the 256 signals one loop turn takes) are still one of each.
    for ((stops, others), pid1) in [
        ((2, 5), true),
        ((2, 5), false),
        ((300, 300), true),
        ((300, 300), false),
    ] {
        let mut d = drainit(["-v", "--stop-signal", "RTMIN+1", "-d", "3s"])
            .pid1(pid1)
            .arg(example("print-signals"))
            .start();
        d.wait_stdout("ready");
        let sent = Instant::now();
        queue_while_stopped(d.pid(), &[(35, stops), (36, others)]);
        d.wait_stderr("holding SIGRTMIN+1 for 3s");
        d.wait_stdout("SIGRTMIN+2");
        let got = d.wait_stdout("SIGRTMIN+1").at - sent;
        assert!(
            got >= Duration::from_millis(2900),
            "pid1={pid1}: forwarded after {got:?}\n{}",
            d.stderr()
        );
        d.send(libc::SIGTERM);
        assert_eq!(d.wait_exit(), 0, "pid1={pid1}\n{}", d.stderr());
        let log = d.stderr();
        assert!(!log.contains("cut short"), "pid1={pid1}\n{log}");
        let forwards = log.matches("forwarding SIGRTMIN+2 ").count();
        assert_eq!(forwards, 1, "pid1={pid1}\n{log}");
        assert_eq!(count(&d, "SIGRTMIN+2"), 1, "pid1={pid1}");
    }
}

#[test]
fn a_stop_signal_rewritten_to_none_starts_no_grace_period() {
    // Nothing was forwarded, so nothing asked the app to stop: it must not be SIGKILLed a
    // grace period later.
    for pid1 in [true, false] {
        let mut d = drainit(["-r", "TERM:NONE", "-g", "500ms"])
            .pid1(pid1)
            .arg(example("print-signals"))
            .args(["--exit-on", "USR2"])
            .start();
        d.wait_stdout("ready");
        d.send(libc::SIGTERM);
        let dropped = d.wait_stderr("nothing forwarded").at;
        assert!(d.stderr().contains("no SIGKILL follows"), "{}", d.stderr());
        // Four grace periods on, the app still runs (checked all along, not slept through).
        let child = d.child();
        while dropped.elapsed() < Duration::from_secs(2) {
            assert!(
                stat(child).is_some_and(|s| s.state != 'Z'),
                "pid1={pid1}: the app was killed\n{}",
                d.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d.send_and_see(libc::SIGUSR2, "SIGUSR2");
        assert_eq!(d.wait_exit(), 0, "pid1={pid1}\n{}", d.stderr());
        assert!(!d.stderr().contains("sending SIGKILL"), "{}", d.stderr());
    }
}
