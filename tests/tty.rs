//! The terminal (contract, point 1): with a controlling terminal on stdin (`docker run -it`),
//! the child's process group is the terminal's foreground group, so Ctrl-C and Ctrl-Z reach
//! the app straight from the terminal, without drainit forwarding anything. drainit takes the
//! terminal only when its own group has it, and gives it back when it exits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

#[test]
fn ctrl_c_and_ctrl_z_on_the_terminal_reach_the_child_directly() {
    for pid1 in [true, false] {
        // As a container runtime starts PID 1 under `-it`: session leader, terminal attached.
        let mut d = drainit(["-v"])
            .pid1(pid1)
            .tty()
            .own_session()
            .arg(example("print-signals"))
            .args(["--exit-on", "INT:0"])
            .start();
        d.wait_stdout("ready");
        let child = d.child();
        let st = stat(child).unwrap();
        assert_eq!(
            st.tpgid, child,
            "the child's group is the terminal's foreground group"
        );
        // The terminal echoes the key (`^C`) just before the line print-signals writes.
        d.type_keys(b"\x1a");
        d.wait_for_stdout_line(|l| l.ends_with("SIGTSTP"), DEADLINE);
        d.type_keys(b"\x03");
        d.wait_for_stdout_line(|l| l.ends_with("SIGINT"), DEADLINE);
        assert_eq!(d.wait_exit(), 0, "pid1={pid1}\n{}", d.stdout());
        let log = d.stdout();
        assert!(
            !log.contains("forwarding SIGINT") && !log.contains("forwarding SIGTSTP"),
            "drainit got the terminal's signals itself:\n{log}"
        );
    }
}

#[test]
fn the_terminal_goes_back_to_drainit_s_group_when_it_exits() {
    // A shell without job control runs drainit in its own (foreground) group and reports the
    // terminal's foreground group afterwards: it must be the shell's again. As PID 1 of a
    // namespace started from the shell (`unshare --pid --fork drainit`), drainit's group lies
    // outside the namespace: it cannot give the terminal back, so it must not take it.
    let report = "\"$@\"\necho \"foreground $(cut -d' ' -f8 /proc/$$/stat) shell $(cut -d' ' -f5 /proc/$$/stat)\"\nexit 0";
    for pid1 in [true, false] {
        let mut d = drainit(Vec::<&str>::new())
            .pid1(pid1)
            .tty()
            .shell(report)
            .arg(example("print-signals"))
            .start();
        d.wait_stdout("ready");
        let child = d.child();
        assert_eq!(stat(child).unwrap().tpgid == child, !pid1, "pid1={pid1}");
        d.send(libc::SIGTERM);
        let line = d
            .wait_for_stdout_line(|l| l.starts_with("foreground "), DEADLINE)
            .text;
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[1], words[3], "pid1={pid1}: {line}");
        assert_eq!(d.wait_exit(), 0);
    }
}

#[test]
fn a_drainit_started_in_the_background_leaves_the_terminal_alone() {
    // With job control (`set -m`), `drainit ... &` runs in a background group of its own.
    let background = "set -m\n\"$@\" &\nwait $!\nexit $?";
    for pid1 in [true, false] {
        let mut d = drainit(Vec::<&str>::new())
            .pid1(pid1)
            .tty()
            .shell(background)
            .arg(example("print-signals"))
            .start();
        d.wait_stdout("ready");
        let child = d.child();
        let st = stat(child).unwrap();
        assert_ne!(
            st.tpgid, st.pgrp,
            "the child took the terminal from the foreground"
        );
        d.send_and_see(libc::SIGUSR1, "SIGUSR1");
        d.send(libc::SIGTERM);
        assert_eq!(d.wait_exit(), 0, "pid1={pid1}");
    }
}

#[test]
fn ctrl_z_stops_an_app_with_default_tstp_while_drainit_keeps_running() {
    // As in a shell, the terminal's Ctrl-Z stops the foreground group: the app. drainit is not
    // in that group and never stops itself, so it keeps reaping and forwarding; with no shell
    // to give the prompt to, nothing else happens (tini does the same). SIGCONT sent to
    // drainit is forwarded and resumes the app.
    for pid1 in [true, false] {
        let mut d = drainit(Vec::<&str>::new())
            .pid1(pid1)
            .tty()
            .own_session()
            .args(["sh", "-c", "echo ready; exec sleep 60"])
            .start();
        d.wait_for_stdout_line(|l| l == "ready", DEADLINE);
        let child = d.child();
        wait_until("the app to run sleep", DEADLINE, || {
            stat(child).is_some_and(|s| s.comm == "sleep")
        });
        d.type_keys(b"\x1a");
        wait_until("the app to stop", DEADLINE, || {
            stat(child).is_some_and(|s| s.state == 'T')
        });
        let own = stat(d.pid()).unwrap().state;
        assert!(
            own != 'T' && own != 't',
            "pid1={pid1}: drainit is stopped too"
        );
        d.send(libc::SIGCONT);
        wait_until("the app to run again", DEADLINE, || {
            stat(child).is_some_and(|s| s.state != 'T')
        });
        d.type_keys(b"\x03");
        assert_eq!(
            d.wait_exit(),
            128 + libc::SIGINT,
            "pid1={pid1}\n{}",
            d.stdout()
        );
    }
}
