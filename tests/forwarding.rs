//! Signal forwarding (contract, point 2): every signal drainit receives is forwarded at once,
//! after `--rewrite`: the stop signals to the child's process group, every other signal to the
//! child alone; `-G` sends every signal to the group, `-c` every signal to the child alone.
//! SIGCHLD, SIGPIPE and the fault signals are never forwarded. The fixture `print-signals`
//! prints each signal it gets; a grandchild in the child's group shows what reached the group.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

/// The signals the contract names as forwarded, with the name print-signals prints.
fn forwarded() -> Vec<(i32, String)> {
    let mut v: Vec<(i32, String)> = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGURG, "SIGURG"),
    ]
    .map(|(n, s)| (n, s.to_string()))
    .to_vec();
    v.push((rtmin(3), "SIGRTMIN+3".to_string()));
    v
}

/// The highest signal: a marker the tests send straight to a process. print-signals reports
/// what is pending in signal-number order, so once it printed this, it printed anything that
/// arrived before it.
fn marker() -> (i32, String) {
    let max = libc::SIGRTMAX();
    (max, format!("SIGRTMIN+{}", max - libc::SIGRTMIN()))
}

/// Send the marker to `grandchild` and wait until it printed it for the `n`th time: from then
/// on, every signal that reached it before is in its output (print-signals reports pending
/// signals in number order, and the marker is the highest).
fn flush_grandchild(d: &Drainit, grandchild: i32, n: usize) {
    let (m, mname) = marker();
    let line = format!("grandchild {mname}");
    assert!(
        kill(grandchild, m),
        "the grandchild {grandchild} is gone\n--- stdout:\n{}\n--- stderr:\n{}",
        d.stdout(),
        d.stderr()
    );
    wait_until(&format!("{line} #{n}"), DEADLINE, || {
        d.stdout_lines().iter().filter(|l| l.text == line).count() >= n
    });
}

fn printed(d: &Drainit, line: &str) -> bool {
    d.stdout_lines().iter().any(|l| l.text == line)
}

/// (drainit's options, its env, does the grandchild get the stop signal TERM, does it get the
/// other signals). The child gets every signal in every mode.
type Case = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    bool,
    bool,
);
const CASES: [Case; 5] = [
    (&[], &[], true, false),
    (&["-G"], &[], true, true),
    (&[], &[("DRAINIT_GROUP_ALL", "1")], true, true),
    (&["-c"], &[], false, false),
    (&[], &[("DRAINIT_SINGLE_CHILD", "yes")], false, false),
];

#[test]
fn stop_signals_reach_the_group_others_the_child_alone_and_g_or_c_change_that() {
    // Both print-signals, in one process group; neither ends on TERM, so the TERM's target can
    // be seen before the exit path's leftover sweep sends its own. PWR ends them in the end.
    let mut all = forwarded();
    all.push((libc::SIGTERM, "SIGTERM".to_string()));
    for pid1 in [true, false] {
        for (args, env, term_to_group, others_to_group) in CASES {
            let what = format!("pid1={pid1} {args:?} {env:?}");
            let mut d = env
                .iter()
                .fold(drainit(args).pid1(pid1), |b, (k, v)| b.env(k, v))
                .arg(example("print-signals"))
                .args(["--fork-grandchild", "--ignore-term", "--exit-on", "PWR"])
                .start();
            d.wait_stdout("child ready");
            d.wait_stdout("grandchild ready");
            let grandchild = d.process_with_arg("grandchild");
            for (n, (sig, name)) in all.iter().enumerate() {
                d.send_and_see(*sig, &format!("child {name}"));
                flush_grandchild(&d, grandchild, n + 1);
                let want = if *sig == libc::SIGTERM {
                    term_to_group
                } else {
                    others_to_group
                };
                assert_eq!(
                    printed(&d, &format!("grandchild {name}")),
                    want,
                    "{what}: did {name} reach the grandchild?\n{}",
                    d.stderr()
                );
            }
            assert!(kill(grandchild, libc::SIGKILL));
            d.send(libc::SIGPWR);
            assert_eq!(d.wait_exit(), 0, "{what}");
        }
    }
}

#[test]
fn a_changed_stop_signal_goes_to_the_group_and_term_then_to_the_child_alone() {
    let mut d = drainit(["--stop-signal", "INT"])
        .arg(example("print-signals"))
        .args(["--fork-grandchild", "--ignore-term", "--exit-on", "PWR"])
        .start();
    d.wait_stdout("grandchild ready");
    let grandchild = d.process_with_arg("grandchild");
    d.send_and_see(libc::SIGTERM, "child SIGTERM");
    flush_grandchild(&d, grandchild, 1);
    assert!(!printed(&d, "grandchild SIGTERM"), "{}", d.stdout());
    d.send_and_see(libc::SIGINT, "child SIGINT");
    d.wait_stdout("grandchild SIGINT");
    assert!(kill(grandchild, libc::SIGKILL));
    d.send(libc::SIGPWR);
    assert_eq!(d.wait_exit(), 0);
}

/// The `npm start` shape: `sh -c` between drainit and the app (here print-signals, labelled
/// grandchild), the shell reporting the signals it gets. It waits on the app in the
/// background, because a shell runs a trap only once a foreground command has ended; its TERM
/// trap waits for the app and exits 7.
const WRAPPER: &str = "trap 'echo sh SIGUSR1' USR1; trap 'echo sh SIGHUP' HUP; \
     trap 'echo sh SIGTERM; wait \"$g\"; exit 7' TERM; \
     \"$0\" --label grandchild & g=$!; echo sh waiting; \
     while kill -0 \"$g\" 2>/dev/null; do wait \"$g\"; done";

fn wrapped(args: &[&str], pid1: bool) -> (Drainit, i32) {
    let d = drainit(args)
        .pid1(pid1)
        .args(["sh", "-c", WRAPPER])
        .arg(example("print-signals"))
        .start();
    d.wait_stdout("grandchild ready");
    // And the shell has the app's pid for its TERM trap (under load it may print "ready" first).
    d.wait_stdout("sh waiting");
    assert_eq!(stat(d.child()).unwrap().comm, "sh");
    let grandchild = d.process_with_arg("grandchild");
    (d, grandchild)
}

#[test]
fn behind_sh_c_usr1_and_hup_reach_only_the_shell_and_term_reaches_the_app_too() {
    for pid1 in [true, false] {
        let (mut d, grandchild) = wrapped(&[], pid1);
        for (n, (sig, name)) in [(libc::SIGUSR1, "SIGUSR1"), (libc::SIGHUP, "SIGHUP")]
            .into_iter()
            .enumerate()
        {
            d.send_and_see(sig, &format!("sh {name}"));
            flush_grandchild(&d, grandchild, n + 1);
            assert!(
                !printed(&d, &format!("grandchild {name}")),
                "pid1={pid1}: {name} reached the app behind sh\n{}",
                d.stdout()
            );
        }
        d.send_and_see(libc::SIGTERM, "grandchild SIGTERM");
        d.wait_stdout("sh SIGTERM");
        assert_eq!(d.wait_exit(), 7, "pid1={pid1}");
    }
}

#[test]
fn behind_sh_c_with_g_every_forwarded_signal_reaches_the_app() {
    // The shell ignores all but its three traps, so none of these ends or stops it.
    let others: Vec<String> = forwarded()
        .iter()
        .filter(|(n, _)| ![libc::SIGUSR1, libc::SIGHUP].contains(n))
        .map(|(n, _)| n.to_string())
        .collect();
    let script = format!("trap '' {}; {WRAPPER}", others.join(" "));
    for pid1 in [true, false] {
        let mut d = drainit(["-G"])
            .pid1(pid1)
            .args(["sh", "-c", &script])
            .arg(example("print-signals"))
            .start();
        d.wait_stdout("grandchild ready");
        d.wait_stdout("sh waiting");
        for (sig, name) in forwarded() {
            d.send_and_see(sig, &format!("grandchild {name}"));
        }
        d.wait_stdout("sh SIGUSR1");
        d.wait_stdout("sh SIGHUP");
        d.send_and_see(libc::SIGTERM, "grandchild SIGTERM");
        assert_eq!(d.wait_exit(), 7, "pid1={pid1}");
    }
}

#[test]
fn behind_sh_c_with_c_term_reaches_only_the_shell() {
    for pid1 in [true, false] {
        let (mut d, grandchild) = wrapped(&["-c"], pid1);
        d.send_and_see(libc::SIGTERM, "sh SIGTERM");
        flush_grandchild(&d, grandchild, 1);
        assert!(
            !printed(&d, "grandchild SIGTERM"),
            "pid1={pid1}: with -c TERM reached the app behind sh\n{}",
            d.stdout()
        );
        // The shell's trap waits for the app: end it by hand.
        assert!(kill(grandchild, libc::SIGTERM));
        assert_eq!(d.wait_exit(), 7, "pid1={pid1}");
    }
}

#[test]
fn every_real_time_signal_is_forwarded() {
    let mut d = drainit(Vec::<&str>::new())
        .arg(example("print-signals"))
        .start();
    d.wait_stdout("ready");
    for sig in drainit_rtmin()..=libc::SIGRTMAX() {
        d.send_and_see(sig, &format!("SIGRTMIN+{}", sig - libc::SIGRTMIN()));
    }
    d.send(libc::SIGTERM);
    assert_eq!(d.wait_exit(), 0);
}

#[test]
fn rewrite_forwards_to_instead_of_from_and_none_drops_it() {
    let (m, mname) = marker();
    for mode in MODES {
        for via_env in [false, true] {
            let b = if via_env {
                drainit(mode).env("DRAINIT_REWRITE", "USR1:USR2,HUP:NONE,TERM:QUIT")
            } else {
                drainit(mode).args([
                    "-r",
                    "USR1:USR2",
                    "-r",
                    "HUP:NONE",
                    "--rewrite",
                    "TERM:QUIT",
                ])
            };
            let mut d = b
                .arg(example("print-signals"))
                .args(["--exit-on", "QUIT:3"])
                .start();
            d.wait_stdout("ready");
            d.send_and_see(libc::SIGUSR1, "SIGUSR2");
            d.send(libc::SIGHUP);
            d.send_and_see(m, &mname);
            let out = d.stdout();
            assert!(!out.contains("SIGUSR1"), "USR1 was not rewritten:\n{out}");
            assert!(!out.contains("SIGHUP"), "HUP:NONE did not drop it:\n{out}");
            d.send_and_see(libc::SIGTERM, "SIGQUIT");
            assert_eq!(d.wait_exit(), 3, "the stop signal is rewritten too");
            assert!(!d.stdout().contains("SIGTERM"));
        }
    }
}

#[test]
fn chld_and_pipe_are_not_forwarded() {
    let (m, mname) = marker();
    for pid1 in [true, false] {
        let mut d = drainit(Vec::<&str>::new())
            .pid1(pid1)
            .arg(example("print-signals"))
            .start();
        d.wait_stdout("ready");
        d.send_raw(libc::SIGCHLD);
        d.send_raw(libc::SIGPIPE);
        d.send_and_see(m, &mname);
        let out = d.stdout();
        assert!(
            !out.contains("SIGCHLD") && !out.contains("SIGPIPE"),
            "{out}"
        );
        d.send(libc::SIGTERM);
        assert_eq!(d.wait_exit(), 0);
    }
}

const FAULTS: [i32; 7] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGABRT,
];

#[test]
fn fault_signals_are_not_forwarded_and_pid_1_survives_them() {
    // Sent back to back, as PID 1 has no handler for any of them (the kernel drops them).
    let (m, mname) = marker();
    for _ in 0..20 {
        pid_1_survives_the_faults(m, &mname);
    }
}

fn pid_1_survives_the_faults(m: i32, mname: &str) {
    let mut d = drainit(Vec::<&str>::new())
        .arg(example("print-signals"))
        .start();
    d.wait_stdout("ready");
    for sig in FAULTS {
        d.send_raw(sig);
    }
    d.send_and_see(m, mname);
    let lines: Vec<String> = d.stdout_lines().into_iter().map(|l| l.text).collect();
    assert_eq!(lines, ["ready", mname]);
    d.send(libc::SIGTERM);
    assert_eq!(d.wait_exit(), 0, "PID 1 ignored the faults and kept going");
}

#[test]
fn a_fault_signal_sent_to_drainit_not_pid_1_takes_its_default_action_and_is_not_forwarded() {
    let (m, mname) = marker();
    for (sig, name) in [
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGSYS, "SIGSYS"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGBUS, "SIGBUS"),
    ] {
        let mut d = drainit(Vec::<&str>::new())
            .pid1(false)
            .shell("ulimit -c 0")
            .arg(example("print-signals"))
            .start();
        d.wait_stdout("ready");
        let child = d.child();
        d.send_raw(sig);
        assert_eq!(d.wait_status(DEADLINE), 128 + sig, "{name} killed drainit");
        assert!(kill(child, m));
        d.wait_stdout(&mname);
        assert!(!d.stdout().contains(name), "{name} was forwarded");
        kill(child, libc::SIGKILL);
    }
}
