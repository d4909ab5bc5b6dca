//! Signal forwarding (contract, point 2): every signal drainit receives goes at once to the
//! child's process group, or to the child alone with `-c`, after `--rewrite`; SIGCHLD, SIGPIPE
//! and the fault signals never do. The fixture `print-signals` prints each signal it gets.
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

#[test]
fn every_forwarded_signal_reaches_a_grandchild_behind_sh_c() {
    // The `npm start` shape: sh stays in between (traps keep it alive through the signals that
    // would end or stop it; print-signals installs its own handlers over the ignores).
    let traps: Vec<String> = forwarded().iter().map(|(n, _)| n.to_string()).collect();
    let script = format!(
        "trap '' {}; \"$0\" --label grandchild; exit $?",
        traps.join(" ")
    );
    for pid1 in [true, false] {
        let mut d = drainit(Vec::<&str>::new())
            .pid1(pid1)
            .args(["sh", "-c", &script])
            .arg(example("print-signals"))
            .start();
        d.wait_stdout("grandchild ready");
        assert_eq!(stat(d.child()).unwrap().comm, "sh");
        for (sig, name) in forwarded() {
            d.send_and_see(sig, &format!("grandchild {name}"));
        }
        d.send_and_see(libc::SIGTERM, "grandchild SIGTERM");
        assert_eq!(d.wait_exit(), 143, "sh died of SIGTERM; pid1={pid1}");
    }
}

#[test]
fn the_group_gets_every_forwarded_signal_and_with_c_only_the_child_does() {
    for pid1 in [true, false] {
        for mode in MODES {
            let single = !mode.is_empty();
            let mut d = drainit(mode)
                .pid1(pid1)
                .arg(example("print-signals"))
                .arg("--fork-grandchild")
                .start();
            d.wait_stdout("child ready");
            d.wait_stdout("grandchild ready");
            for (sig, name) in forwarded() {
                d.send_and_see(sig, &format!("child {name}"));
                if !single {
                    d.wait_stdout(&format!("grandchild {name}"));
                }
            }
            if single {
                let grandchild = d.process_with_arg("grandchild");
                let (m, mname) = marker();
                assert!(kill(grandchild, m));
                d.wait_stdout(&format!("grandchild {mname}"));
                let got: Vec<String> = d
                    .stdout_lines()
                    .into_iter()
                    .map(|l| l.text)
                    .filter(|l| {
                        l.starts_with("grandchild SIG") && *l != format!("grandchild {mname}")
                    })
                    .collect();
                assert!(got.is_empty(), "with -c the grandchild got {got:?}");
            }
            d.send(libc::SIGTERM);
            assert_eq!(d.wait_exit(), 0, "pid1={pid1} mode={mode:?}");
        }
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
