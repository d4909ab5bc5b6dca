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

/// The warning drainit logs, once, when it cannot use /proc to find the processes left.
const NO_OWN_PROC: &str = "cannot list the processes left";

#[test]
fn with_the_proc_of_another_pid_namespace_only_drainit_s_own_leftovers_are_signalled() {
    // `unshare --pid --fork` without `--mount-proc`, as container tooling and CI runners do:
    // drainit (pid 2 of its namespace, not PID 1) sees the /proc of the namespace outside,
    // where pid 2 is someone else, whose children would be read as drainit's. Nested in a
    // namespace of the test's own, so that "someone else" is known: the inner namespace's
    // init, whose children there are drainit and its siblings, one number off. Two sibling
    // `sleep`s started beside drainit must survive; the child's own leftover must not.
    let dir = TempDir::new("foreign-proc");
    let inner = dir.path("inner.sh");
    std::fs::write(
        &inner,
        "dir=$1; shift\n\
         \"$@\" &\n\
         d=$!\n\
         sleep 100 & s1=$!\n\
         sleep 100 & s2=$!\n\
         touch \"$dir/go\"\n\
         wait $d; code=$?\n\
         alive=0\n\
         for s in $s1 $s2; do kill -0 $s 2>/dev/null && alive=$((alive + 1)); done\n\
         echo \"siblings alive: $alive\"\n\
         kill -9 $s1 $s2 2>/dev/null\n\
         exit $code\n",
    )
    .unwrap();
    let go = dir.path("go");
    let child = format!(
        "sleep 30 & while [ ! -e {} ]; do sleep 0.01; done; exit 3",
        go.display()
    );
    let mut d = drainit(["-g", "2s", "--", "sh", "-c", &child])
        .pid1(false)
        .shell(&format!(
            "exec unshare --pid --fork --mount-proc --kill-child unshare --pid --fork bash {} {} \"$@\"",
            inner.display(),
            dir.0.display()
        ))
        .start();
    assert_eq!(d.wait_exit(), 3, "{}", d.stderr());
    assert!(
        d.stdout().contains("siblings alive: 2"),
        "drainit signalled processes that are not its own:\n{}\n{}",
        d.stdout(),
        d.stderr()
    );
    let log = d.stderr();
    assert_eq!(log.matches(NO_OWN_PROC).count(), 1, "{log}");
    assert!(log.contains("another PID namespace"), "{log}");
}

#[test]
fn without_proc_the_leftovers_in_the_child_s_group_are_stopped_with_one_warning() {
    // Not PID 1: the leftovers are found through /proc, which is unmounted here; the child's
    // process group is what is left to signal. As PID 1, kill(-1) needs no /proc: no warning.
    let unmount = "exec unshare --mount bash -c 'umount -l /proc && exec \"$@\"' bash \"$@\"";
    for pid1 in [false, true] {
        let dir = TempDir::new("no-proc");
        let pidfile = dir.path("pid");
        let child = format!("sleep 30 & echo $! > {}; exit 4", pidfile.display());
        let b = drainit(["--", "sh", "-c", &child]).pid1(pid1);
        let b = if pid1 {
            b.inner_shell("umount -l /proc")
        } else {
            b.shell(unmount)
        };
        let start = Instant::now();
        let mut d = b.start();
        let code = d.wait_exit();
        let took = start.elapsed();
        let log = d.stderr();
        if !pid1 {
            let sleep: i32 = std::fs::read_to_string(&pidfile)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let left = stat(sleep).is_some_and(|s| s.comm == "sleep");
            if left {
                kill(sleep, libc::SIGKILL);
            }
            assert!(!left, "the leftover sleep survived drainit\n{log}");
            assert_eq!(log.matches(NO_OWN_PROC).count(), 1, "{log}");
            assert!(log.contains("/proc is not mounted"), "{log}");
        } else {
            assert!(!log.contains(NO_OWN_PROC), "{log}");
        }
        assert_eq!(code, 4, "pid1={pid1}\n{log}");
        assert!(
            took < Duration::from_secs(4),
            "pid1={pid1}: took {took:?}\n{log}"
        );
    }
}

#[test]
fn as_pid1_a_process_that_is_not_drainit_s_child_gets_sigterm_and_its_time_too() {
    // `docker exec` and `nsenter` put processes into the namespace whose parent is outside:
    // waitpid never sees them and no SIGCHLD tells drainit when they end. "All of the
    // namespace" (contract, point 5) includes them.
    let dir = TempDir::new("stranger");
    let go = dir.path("go");
    let got_term = dir.path("got-term");
    let ready = dir.path("ready");
    let mut d = drainit(["-g", "30s"])
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "while [ ! -e '{}' ]; do sleep 0.02; done; exit 6",
            go.display()
        ))
        .start();
    let script = format!(
        "trap 'sleep 0.3; echo term > \"{}\"; exit 0' TERM; echo > \"{}\"; \
         while :; do sleep 0.02; done",
        got_term.display(),
        ready.display()
    );
    let mut stranger = std::process::Command::new("nsenter")
        .args(["-t", &d.pid().to_string(), "-p", "--", "sh", "-c", &script])
        .spawn()
        .unwrap();
    wait_until("the stranger to start", DEADLINE, || ready.exists());
    std::fs::write(&go, "").unwrap();
    assert_eq!(d.wait_exit(), 6, "{}", d.stderr());
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert_eq!(
        std::fs::read_to_string(&got_term)
            .unwrap_or_default()
            .trim(),
        "term",
        "the stranger was not given SIGTERM and its time\n{}",
        d.stderr()
    );
    let log = d.stderr();
    assert!(log.contains("sent SIGTERM to the processes left"), "{log}");
    // It ended on TERM well within the 30 s: drainit noticed without a SIGCHLD.
    assert!(!log.contains("still left after the wait"), "{log}");
}
