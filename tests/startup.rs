//! Start-up (contract, point 1): the child starts with a clean signal state in its own process
//! group; drainit keeps no inherited descriptor and moves to `/` (the child keeps both); closed
//! stdio is survived; a signal sent at start-up is never lost; a descriptor limit of 16 works.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

/// Shell set-up that starts drainit with signals ignored: ignored dispositions survive exec, so
/// drainit inherits them and must not pass them on. bash ignores the ordinary ones; 32 and 33
/// (which glibc keeps for itself and whose sigaction refuses) take a raw rt_sigaction, here
/// from python3 through ctypes, which then execs the rest of the command line.
fn ignoring_signals() -> String {
    format!(
        "trap '' HUP INT QUIT USR1 TERM PIPE 34 64\n\
         exec python3 -c 'import ctypes, os, sys\n\
         ign = (ctypes.c_uint64 * 8)(1)\n\
         for s in (32, 33): ctypes.CDLL(None).syscall({}, s, ign, None, 8)\n\
         os.execvp(sys.argv[1], sys.argv[1:])' \"$@\"",
        libc::SYS_rt_sigaction
    )
}

#[test]
fn the_child_starts_with_nothing_blocked_and_nothing_ignored() {
    // First, that the set-up does ignore what it says (without drainit in between).
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &ignoring_signals(),
            "bash",
            "cat",
            "/proc/self/status",
        ])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    let ign = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap_or_else(|| panic!("no SigIgn in {status:?}"));
    for sig in [libc::SIGHUP, libc::SIGTERM, 32, 33, 34, 64] {
        assert!(has_signal(ign, sig), "the set-up did not ignore {sig}");
    }
    for pid1 in [true, false] {
        for mode in MODES {
            let f = drainit(mode)
                .pid1(pid1)
                .shell(&ignoring_signals())
                .args(["cat", "/proc/self/status"])
                .run();
            assert_eq!(f.code, 0, "{}", f.stderr);
            for key in ["SigBlk", "SigIgn", "SigCgt"] {
                let line = f
                    .stdout
                    .lines()
                    .find(|l| l.starts_with(key))
                    .unwrap_or_else(|| panic!("no {key} in\n{}", f.stdout));
                assert_eq!(
                    line.split_whitespace().nth(1),
                    Some("0000000000000000"),
                    "pid1={pid1} mode={mode:?}: {line}"
                );
            }
        }
    }
}

#[test]
fn the_child_leads_its_own_process_group() {
    for pid1 in [true, false] {
        for mode in MODES {
            let mut d = drainit(mode)
                .pid1(pid1)
                .arg(example("print-signals"))
                .start();
            d.wait_stdout("ready");
            let child = d.child();
            let st = stat(child).unwrap();
            assert_eq!(st.pgrp, child, "the child leads its own group");
            assert_ne!(st.pgrp, stat(d.pid()).unwrap().pgrp);
            d.send(libc::SIGTERM);
            assert_eq!(d.wait_exit(), 0);
        }
    }
}

#[test]
fn drainit_moves_to_root_and_closes_inherited_descriptors_which_the_child_keeps() {
    let dir = TempDir::new("cwd");
    let inherited = dir.path("inherited");
    std::fs::write(&inherited, "x").unwrap();
    for pid1 in [true, false] {
        let mut d = drainit(Vec::<&str>::new())
            .pid1(pid1)
            .shell(&format!(
                "cd {} && exec 7<inherited 9>>inherited 12<&7",
                dir.0.display()
            ))
            .arg(example("print-signals"))
            .start();
        d.wait_stdout("ready");
        let (pid, child) = (d.pid(), d.child());
        // drainit does both right after the spawn, which a loaded machine may delay past the
        // child's `ready`.
        wait_until("drainit to close what it inherited", DEADLINE, || {
            open_fds(pid).values().all(|p| *p != inherited)
        });
        wait_until("drainit to move to /", DEADLINE, || {
            std::fs::read_link(format!("/proc/{pid}/cwd"))
                .is_ok_and(|c| c == std::path::Path::new("/"))
        });
        let theirs = open_fds(child);
        for fd in [7, 9, 12] {
            assert_eq!(
                theirs.get(&fd),
                Some(&inherited),
                "the child lost fd {fd}: {theirs:?}"
            );
        }
        assert_eq!(
            std::fs::read_link(format!("/proc/{child}/cwd")).unwrap(),
            dir.0,
            "the child starts where drainit was started"
        );
        d.send(libc::SIGTERM);
        assert_eq!(d.wait_exit(), 0);
    }
}

#[test]
fn with_stdio_closed_drainit_still_runs_the_child_and_passes_its_status() {
    for pid1 in [true, false] {
        let f = drainit(Vec::<&str>::new())
            .pid1(pid1)
            .shell("exec 0<&- 1>&- 2>&-")
            .arg(example("exit-with"))
            .arg("3")
            .run();
        assert_eq!(f.code, 3, "pid1={pid1}");
    }
}

#[test]
fn with_stdio_closed_drainit_and_the_child_get_dev_null_on_0_1_2() {
    let mut d = drainit(Vec::<&str>::new())
        .pid1(false)
        .shell("exec 0<&- 1>&- 2>&-")
        .arg(example("print-signals"))
        .start();
    let child = d.child();
    wait_catches(child, libc::SIGTERM);
    for pid in [d.pid(), child] {
        let fds = open_fds(pid);
        for fd in 0..3 {
            assert_eq!(
                fds.get(&fd).map(|p| p.display().to_string()),
                Some("/dev/null".into()),
                "pid {pid} fd {fd}: {fds:?}"
            );
        }
    }
    d.send(libc::SIGTERM);
    assert_eq!(d.wait_exit(), 0);
}

/// Start drainit, send SIGUSR1 the moment its intake is installed (before the child exists, or
/// before the child has its handlers), and check the child saw it one way or the other.
fn usr1_at_startup_is_delivered(pid1: bool) {
    let mut d = drainit(["-v"])
        .pid1(pid1)
        .arg(example("print-signals"))
        .start();
    d.send(libc::SIGUSR1);
    let end = std::time::Instant::now() + DEADLINE;
    while !(d.stdout().contains("SIGUSR1") || d.has_exited()) {
        if std::time::Instant::now() >= end {
            let pid = d.pid();
            let kids: Vec<String> = children(pid)
                .into_iter()
                .map(|c| {
                    let sig = |k| status_field(c, k).unwrap_or_default();
                    format!(
                        "{:?} pnd {} blk {} cgt {}",
                        stat(c),
                        sig("SigPnd"),
                        sig("SigBlk"),
                        sig("SigCgt")
                    )
                })
                .collect();
            panic!(
                "SIGUSR1 lost (pid1={pid1}): drainit {:?} pending {:?}, children {kids:?}\n\
                 stdout: {}\nstderr: {}",
                stat(pid),
                status_field(pid, "ShdPnd"),
                d.stdout(),
                d.stderr()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    if d.has_exited() {
        // It arrived before print-signals installed its handler: default action, death by it.
        assert_eq!(d.wait_exit(), 128 + libc::SIGUSR1, "{}", d.stderr());
    } else {
        d.send(libc::SIGTERM);
        assert_eq!(d.wait_exit(), 0);
    }
}

#[test]
fn a_signal_sent_right_at_startup_is_not_lost() {
    for _ in 0..50 {
        usr1_at_startup_is_delivered(true);
    }
    for _ in 0..20 {
        usr1_at_startup_is_delivered(false);
    }
}

/// drainit with `args`, started after the shell `setup`, still forwards a signal, drains and
/// passes on the child's status; as PID 1 and not.
fn works_after(setup: &str, args: &[&str]) {
    for pid1 in [true, false] {
        let mut d = drainit(args)
            .pid1(pid1)
            .shell(setup)
            .arg(example("print-signals"))
            .start();
        d.wait_stdout("ready");
        d.send_and_see(libc::SIGUSR1, "SIGUSR1");
        d.send_and_see(libc::SIGTERM, "SIGTERM");
        assert_eq!(d.wait_exit(), 0, "{setup}: pid1={pid1}\n{}", d.stderr());
    }
}

#[test]
fn a_broken_stderr_pipe_does_not_stop_drainit() {
    // stderr is a pipe whose reader is gone: every log line fails with EPIPE.
    works_after("exec 2> >(exec true)\nwait $!", &["-vv", "-d", "100ms"]);
}

#[test]
fn a_descriptor_limit_of_16_is_enough() {
    works_after("ulimit -n 16", &["-d", "100ms"]);
}

/// Start drainit (through bash, which first opens fds 3-1000, so that drainit's start-up has
/// many inherited descriptors to list) and send it SIGUSR1 the moment its own code runs: once
/// it has exec'd and either blocks USR1 or Rust's runtime has installed its SEGV handler (which
/// it does right before `main`). drainit must survive it and pass it on: the child then prints
/// it, or dies of it before its handler is in (exit 138, logged). Before the fix drainit listed
/// the descriptors before blocking anything: the USR1 ended it, or a PID 1 lost it.
fn usr1_right_after_exec(pid1: bool) {
    use std::os::unix::process::ExitStatusExt;
    let dir = TempDir::new("usr1-at-exec");
    let (out, err) = (dir.path("stdout"), dir.path("stderr"));
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    if pid1 {
        argv.extend(["unshare", "--pid", "--fork", "--mount-proc"].map(Into::into));
    }
    argv.push(drainit_bin().into());
    argv.extend(["-v", "--"].map(Into::into));
    argv.push(example("print-signals").into());
    let mut top = std::process::Command::new("bash")
        .arg("-c")
        .arg("for i in $(seq 3 1000); do eval \"exec $i</dev/null\"; done\nexec \"$@\"")
        .arg("bash")
        .args(&argv)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let ours = drainit_bin().canonicalize().unwrap();
    let is_drainit = |p: i32| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e == ours);
    // Polled without pause: the window this is about lasts a millisecond or two.
    let spin_until = |what: &str, mut cond: Box<dyn FnMut() -> bool + '_>| {
        let end = std::time::Instant::now() + DEADLINE;
        while !cond() {
            assert!(
                std::time::Instant::now() < end,
                "timed out waiting for {what}"
            );
            std::thread::yield_now();
        }
    };
    let mut pid = 0;
    let top_pid = top.id() as i32;
    spin_until(
        "drainit to exec",
        Box::new(|| {
            pid = std::iter::once(top_pid)
                .chain(descendants(top_pid))
                .find(|p| is_drainit(*p))
                .unwrap_or(0);
            pid != 0
        }),
    );
    spin_until(
        "drainit's own code to run",
        Box::new(|| {
            sigmask(pid, "SigBlk").is_some_and(|m| has_signal(m, libc::SIGUSR1))
                || sigmask(pid, "SigCgt").is_some_and(|m| has_signal(m, libc::SIGSEGV))
        }),
    );
    assert!(kill(pid, libc::SIGUSR1));
    let text = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let mut status = None;
    wait_until("SIGUSR1 to reach the child", DEADLINE, || {
        status = top.try_wait().unwrap();
        status.is_some() || text(&out).contains("SIGUSR1")
    });
    match status {
        None => {
            kill(pid, libc::SIGTERM);
            let st = top.wait().unwrap();
            assert_eq!(st.code(), Some(0), "pid1={pid1}\n{}", text(&err));
        }
        Some(st) => {
            assert_eq!(
                (st.code(), st.signal()),
                (Some(128 + libc::SIGUSR1), None),
                "pid1={pid1}: drainit itself did not survive SIGUSR1\n{}",
                text(&err)
            );
            assert!(
                text(&err).contains("was killed by SIGUSR1"),
                "{}",
                text(&err)
            );
        }
    }
}

#[test]
fn a_signal_right_after_exec_with_many_inherited_descriptors_is_survived_and_passed_on() {
    for _ in 0..5 {
        usr1_right_after_exec(false);
        usr1_right_after_exec(true);
    }
}
