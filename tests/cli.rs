//! The command line and the environment (contract: CLI, env vars, point 6): options stop at the
//! first non-option word, `--` is allowed, every option has its `DRAINIT_*` env var and the
//! command line overrides it, bad values exit 2 naming option and value on the first line,
//! 127/126/1 each with one line, `--help`/`--version` on stdout, and nothing else ever on stdout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;

/// drainit (not PID 1: these are about drainit's own start) with `args`, run to its end.
fn run(args: &[&str], env: &[(&str, &str)]) -> Finished {
    env.iter()
        .fold(drainit(args).pid1(false), |b, (k, v)| b.env(k, v))
        .run()
}

#[test]
fn options_stop_at_the_first_non_option_word() {
    let f = run(
        &[
            "sh",
            "-c",
            "echo \"$@\"",
            "sh",
            "-v",
            "-d",
            "9s",
            "--help",
            "--",
        ],
        &[],
    );
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(f.stdout, "-v -d 9s --help --\n");
    assert!(
        !f.stderr.contains("debug"),
        "drainit took the child's -v: {}",
        f.stderr
    );
}

#[test]
fn a_double_dash_ends_drainit_s_options() {
    let f = run(&["-q", "--", "sh", "-c", "echo ok"], &[]);
    assert_eq!((f.code, f.stdout.as_str()), (0, "ok\n"));
    let f = run(&["-d", "1s", "--", "-weird-name"], &[]);
    assert_eq!(f.code, 127);
    assert!(
        f.first_stderr_line().contains("'-weird-name'"),
        "{}",
        f.stderr
    );
}

/// (option, its env var, a bad value): each bad value exits 2 with the option (or, from the
/// environment, the option or the env var) and the value on the first line of stderr.
const BAD: &[(&str, &str, &str)] = &[
    ("--drain-delay", "DRAINIT_DRAIN_DELAY", "soon"),
    ("--drain-delay", "DRAINIT_DRAIN_DELAY", "-1s"),
    // No exponents (`1e3s` never parsed either), nothing finer than drainit's milliseconds.
    ("--drain-delay", "DRAINIT_DRAIN_DELAY", "1e3"),
    ("--grace-period", "DRAINIT_GRACE_PERIOD", "0.0000001s"),
    ("--grace-period", "DRAINIT_GRACE_PERIOD", "forever"),
    ("--ready-addr", "DRAINIT_READY_ADDR", "nowhere"),
    ("--ready-addr", "DRAINIT_READY_ADDR", "127.0.0.1:99999"),
    (
        "--ready-addr",
        "DRAINIT_READY_ADDR",
        "no-such-host.invalid:80",
    ),
    ("--ready-check", "DRAINIT_READY_CHECK", "ftp://127.0.0.1:1"),
    ("--stop-signal", "DRAINIT_STOP_SIGNALS", "KILL"),
    ("--stop-signal", "DRAINIT_STOP_SIGNALS", "STOP"),
    ("--stop-signal", "DRAINIT_STOP_SIGNALS", "NOPE"),
    ("--stop-signal", "DRAINIT_STOP_SIGNALS", "RTMIN+"),
    // Never caught, so it could never start a drain.
    ("--stop-signal", "DRAINIT_STOP_SIGNALS", "PIPE"),
    // Reserved by the C library (glibc: 32-33, musl: 32-34): cannot be caught either.
    ("--stop-signal", "DRAINIT_STOP_SIGNALS", "32"),
    ("--rewrite", "DRAINIT_REWRITE", "33:TERM"),
    ("--rewrite", "DRAINIT_REWRITE", "TERM"),
    ("--rewrite", "DRAINIT_REWRITE", "KILL:TERM"),
    ("--remap-exit", "DRAINIT_REMAP_EXIT", "300:0"),
    ("--remap-exit", "DRAINIT_REMAP_EXIT", "x"),
];

fn assert_usage_error(f: &Finished, names: &[&str], value: &str, what: &str) {
    assert_eq!(f.code, 2, "{what}: {}", f.stderr);
    let first = f.first_stderr_line();
    assert!(
        first.contains(value) && names.iter().any(|n| first.contains(n)),
        "{what}: the first line names neither the option nor the value: {first}"
    );
    assert!(f.stdout.is_empty(), "{what}: {}", f.stdout);
}

#[test]
fn a_bad_option_value_exits_2_naming_option_and_value() {
    for (opt, _, value) in BAD {
        let f = run(&[opt, value, "true"], &[]);
        assert_usage_error(&f, &[opt], value, &format!("{opt} {value}"));
        let joined = format!("{opt}={value}");
        let f = run(&[&joined, "true"], &[]);
        assert_usage_error(&f, &[opt], value, &joined);
    }
}

#[test]
fn a_bad_env_value_exits_2_naming_option_variable_and_value() {
    for (opt, env, value) in BAD {
        let f = run(&["true"], &[(env, value)]);
        assert_usage_error(&f, &[opt], value, &format!("{env}={value}"));
        assert!(
            f.first_stderr_line().contains(env),
            "{env}={value}: the first line does not name the variable: {}",
            f.first_stderr_line()
        );
    }
    for (env, value, names) in [
        (
            "DRAINIT_SINGLE_CHILD",
            "maybe",
            &["--single-child", "DRAINIT_SINGLE_CHILD"],
        ),
        (
            "DRAINIT_GROUP_ALL",
            "sometimes",
            &["--group-all", "DRAINIT_GROUP_ALL"],
        ),
        (
            "DRAINIT_LOG",
            "drainit=loud",
            &["DRAINIT_LOG", "DRAINIT_LOG"],
        ),
        // A bare word env_logger would read as a module name, silencing drainit altogether.
        ("DRAINIT_LOG", "warning", &["DRAINIT_LOG", "DRAINIT_LOG"]),
    ] {
        let f = run(&["true"], &[(env, value)]);
        assert_usage_error(&f, names, value, &format!("{env}={value}"));
    }
}

#[test]
fn a_misspelt_option_is_a_usage_error_not_a_command() {
    let f = run(&["--grace", "5s", "true"], &[]);
    assert_eq!(f.code, 2, "{}", f.stderr);
    assert!(f.first_stderr_line().contains("'--grace'"), "{}", f.stderr);
}

#[test]
fn other_usage_errors_exit_2() {
    for args in [
        &[][..],
        &["-d", "1s"],
        &["-v", "-q", "true"],
        &["--no-such-option", "true"],
    ] {
        let f = run(args, &[]);
        assert_eq!(f.code, 2, "{args:?}: {}", f.stderr);
        assert!(f.stdout.is_empty());
    }
}

#[test]
fn the_command_line_overrides_the_environment() {
    // A bad env value is not even read when the option is on the command line.
    for (opt, env, value) in BAD {
        let good = match *opt {
            "--drain-delay" | "--grace-period" => "1s",
            "--ready-addr" => "127.0.0.1:0",
            "--ready-check" => "tcp://127.0.0.1:1",
            "--stop-signal" => "INT",
            "--rewrite" => "USR1:USR2",
            _ => "3:4",
        };
        let f = run(&[opt, good, "true"], &[(env, value)]);
        assert_eq!(f.code, 0, "{env}={value} with {opt} {good}: {}", f.stderr);
    }
}

/// Send SIGTERM to print-signals under drainit with `args` and `env`; drainit's log.
fn log_of_a_stop(args: &[&str], env: &[(&str, &str)], cut: bool) -> String {
    let mut d = env
        .iter()
        .fold(drainit(args), |b, (k, v)| b.env(k, v))
        .arg(example("print-signals"))
        .start();
    d.wait_stdout("ready");
    d.send(libc::SIGTERM);
    if cut {
        d.wait_stderr("holding SIGTERM");
        d.send(libc::SIGTERM);
    }
    assert_eq!(d.wait_exit(), 0, "{}", d.stderr());
    d.stderr()
}

#[test]
fn drain_delay_comes_from_the_environment_unless_given() {
    let log = log_of_a_stop(&[], &[("DRAINIT_DRAIN_DELAY", "7s")], true);
    assert!(log.contains("holding SIGTERM for 7s"), "{log}");
    let log = log_of_a_stop(&["-d", "30s"], &[("DRAINIT_DRAIN_DELAY", "7s")], true);
    assert!(log.contains("holding SIGTERM for 30s"), "{log}");
}

#[test]
fn single_child_comes_from_the_environment_unless_given() {
    for (value, single) in [
        ("1", true),
        ("true", true),
        ("yes", true),
        ("on", true),
        ("0", false),
        ("false", false),
        ("no", false),
        ("off", false),
    ] {
        let log = log_of_a_stop(&[], &[("DRAINIT_SINGLE_CHILD", value)], false);
        let target = if single {
            "to child "
        } else {
            "to process group "
        };
        assert!(
            log.contains(&format!("forwarding SIGTERM {target}")),
            "{value}: {log}"
        );
    }
    let log = log_of_a_stop(&["-c"], &[("DRAINIT_SINGLE_CHILD", "off")], false);
    assert!(log.contains("forwarding SIGTERM to child "), "{log}");
}

/// drainit's log after print-signals got a SIGHUP and a SIGTERM, with `-v` (a forwarded HUP is
/// logged at debug level).
fn log_of_a_hup(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut d = env
        .iter()
        .fold(drainit(["-v"]).args(args), |b, (k, v)| b.env(k, v))
        .arg(example("print-signals"))
        .start();
    d.wait_stdout("ready");
    d.send_and_see(libc::SIGHUP, "SIGHUP");
    d.send(libc::SIGTERM);
    assert_eq!(d.wait_exit(), 0, "{}", d.stderr());
    d.stderr()
}

#[test]
fn group_all_comes_from_the_environment_unless_given() {
    for (value, all) in [
        ("1", true),
        ("yes", true),
        ("on", true),
        ("true", true),
        ("0", false),
        ("off", false),
        ("no", false),
        ("false", false),
    ] {
        let log = log_of_a_hup(&[], &[("DRAINIT_GROUP_ALL", value)]);
        let target = if all {
            "to process group "
        } else {
            "to child "
        };
        assert!(
            log.contains(&format!("forwarding SIGHUP {target}")),
            "{value}: {log}"
        );
        assert!(
            log.contains("forwarding SIGTERM to process group "),
            "{value}: {log}"
        );
    }
    let log = log_of_a_hup(&["-G"], &[("DRAINIT_GROUP_ALL", "off")]);
    assert!(log.contains("forwarding SIGHUP to process group "), "{log}");
    let log = log_of_a_hup(&[], &[]);
    assert!(log.contains("forwarding SIGHUP to child "), "{log}");
}

#[test]
fn single_child_with_group_all_is_a_usage_error_from_flags_or_env() {
    let on = |k| (k, "1");
    for (args, env) in [
        (&["-c", "-G"][..], &[][..]),
        (&["--single-child", "--group-all"], &[]),
        (&["-c"], &[on("DRAINIT_GROUP_ALL")]),
        (&["-G"], &[on("DRAINIT_SINGLE_CHILD")]),
        (&[], &[on("DRAINIT_SINGLE_CHILD"), on("DRAINIT_GROUP_ALL")]),
    ] {
        let mut all: Vec<&str> = args.to_vec();
        all.push("true");
        let f = run(&all, env);
        let what = format!("{args:?} {env:?}");
        assert_eq!(f.code, 2, "{what}: {}", f.stderr);
        let first = f.first_stderr_line();
        assert!(
            first.contains("--single-child") && first.contains("--group-all"),
            "{what}: the first line does not name both: {first}"
        );
        assert!(f.stdout.is_empty(), "{what}");
    }
    // Switched off in the environment, it conflicts with nothing.
    let f = run(&["-c", "true"], &[("DRAINIT_GROUP_ALL", "0")]);
    assert_eq!(f.code, 0, "{}", f.stderr);
    let f = run(&["-G", "true"], &[("DRAINIT_SINGLE_CHILD", "off")]);
    assert_eq!(f.code, 0, "{}", f.stderr);
}

#[test]
fn grace_period_comes_from_the_environment_unless_given() {
    for (args, env, shown) in [
        (&[][..], "1s", "(1s)"),
        (&["-g", "500ms"][..], "1s", "(500ms)"),
    ] {
        let mut d = drainit(args)
            .env("DRAINIT_GRACE_PERIOD", env)
            .arg(example("print-signals"))
            .arg("--ignore-term")
            .start();
        d.wait_stdout("ready");
        d.send(libc::SIGTERM);
        assert_eq!(d.wait_exit(), 137);
        d.wait_stderr(&format!("grace period {shown} over"));
    }
}

#[test]
fn ready_addr_comes_from_the_environment_unless_given_and_a_busy_one_exits_1() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let f = run(&["true"], &[("DRAINIT_READY_ADDR", &addr)]);
    assert_eq!(f.code, 1, "{}", f.stderr);
    assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    assert!(f.stderr.contains(&addr));
    let f = run(&["--ready-addr", &addr, "true"], &[]);
    assert_eq!(f.code, 1);
    let f = run(
        &["--ready-addr", "127.0.0.1:0", "true"],
        &[("DRAINIT_READY_ADDR", &addr)],
    );
    assert_eq!(f.code, 0, "{}", f.stderr);
}

#[test]
fn rewrite_from_the_command_line_replaces_the_env_list() {
    let mut d = drainit(["-r", "HUP:NONE"])
        .env("DRAINIT_REWRITE", "USR1:USR2")
        .arg(example("print-signals"))
        .start();
    d.wait_stdout("ready");
    d.send_and_see(libc::SIGUSR1, "SIGUSR1");
    d.send(libc::SIGTERM);
    assert_eq!(d.wait_exit(), 0);
    assert!(!d.stdout().contains("SIGUSR2"));
}

#[test]
fn the_log_level_comes_from_drainit_log_and_v_or_q_override_it() {
    let has = |args: &[&str], env: &[(&str, &str)], level: &str| {
        run(args, env)
            .stderr
            .lines()
            .any(|l| l.starts_with(&format!("drainit: {level}:")))
    };
    assert!(has(&["true"], &[], "info"));
    assert!(!has(&["true"], &[], "debug"));
    assert!(has(&["true"], &[("DRAINIT_LOG", "debug")], "debug"));
    assert!(!has(&["true"], &[("DRAINIT_LOG", "warn")], "info"));
    assert!(has(&["-v", "true"], &[("DRAINIT_LOG", "warn")], "debug"));
    assert!(!has(&["-q", "true"], &[("DRAINIT_LOG", "debug")], "info"));
    assert!(!has(&["-q", "true"], &[], "info"));
}

#[test]
fn a_missing_command_exits_127_with_one_line() {
    for pid1 in [true, false] {
        let f = drainit(["no-such-command-for-drainit"]).pid1(pid1).run();
        assert_eq!(f.code, 127);
        assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
        assert!(f.stderr.contains("'no-such-command-for-drainit'"));
        assert!(f.stdout.is_empty());
    }
}

#[test]
fn a_command_that_cannot_be_executed_exits_126_with_one_line() {
    let dir = TempDir::new("noexec");
    let file = dir.path("not-executable");
    std::fs::write(&file, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    for target in [file, dir.0.clone()] {
        for pid1 in [true, false] {
            let f = drainit([&target]).pid1(pid1).run();
            assert_eq!(f.code, 126, "{}: {}", target.display(), f.stderr);
            assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
            assert!(f.stderr.contains(&target.display().to_string()));
            assert!(f.stdout.is_empty());
        }
    }
}

#[test]
fn help_and_version_go_to_stdout_and_exit_0() {
    for flag in ["--help", "-h", "--version", "-V"] {
        let f = run(&[flag], &[]);
        assert_eq!(f.code, 0, "{flag}");
        assert!(f.stdout.contains("drainit"), "{flag}: {}", f.stdout);
        assert!(f.stderr.is_empty(), "{flag}: {}", f.stderr);
    }
    let help = run(&["--help"], &[]).stdout;
    for env in [
        "DRAINIT_DRAIN_DELAY",
        "DRAINIT_GRACE_PERIOD",
        "DRAINIT_READY_ADDR",
        "DRAINIT_READY_CHECK",
        "DRAINIT_STOP_SIGNALS",
        "DRAINIT_REWRITE",
        "DRAINIT_SINGLE_CHILD",
        "DRAINIT_GROUP_ALL",
        "DRAINIT_REMAP_EXIT",
    ] {
        assert!(help.contains(env), "--help does not mention {env}");
    }
    for option in ["--single-child", "--group-all"] {
        assert!(help.contains(option), "--help does not mention {option}");
    }
}

#[test]
fn drainit_never_writes_to_stdout_itself() {
    for pid1 in [true, false] {
        for mode in MODES {
            // Every step logs: start, hold, forward, the child's death, leftovers, exit.
            let mut d = drainit(["-vv", "-d", "100ms", "-g", "5s"])
                .args(mode)
                .pid1(pid1)
                .args(["sh", "-c", "sleep 30 & sleep 30"])
                .start();
            wait_until("sleep to run", DEADLINE, || {
                d.processes()
                    .iter()
                    .any(|p| cmdline(*p).first().is_some_and(|c| c == "sleep"))
            });
            d.send(libc::SIGUSR2);
            assert_eq!(d.wait_exit(), 128 + libc::SIGUSR2);
            assert!(
                d.stdout().is_empty(),
                "drainit wrote to stdout: {}",
                d.stdout()
            );
            assert!(d.stderr().contains("drainit: "), "{}", d.stderr());
        }
    }
}

#[test]
fn a_value_that_is_not_utf8_exits_2_naming_where_it_came_from() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let bad = OsStr::from_bytes(b"\xff");
    let run = |args: &[&OsStr], env: Option<(&str, &OsStr)>| {
        let mut cmd = std::process::Command::new(drainit_bin());
        cmd.args(args).env_remove("DRAINIT_LOG");
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let first = String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        (out.status.code(), first)
    };
    let t = OsStr::new("true");
    for (args, env, name) in [
        (vec![OsStr::new("-d"), bad, t], None, "'-d'"),
        (
            vec![OsStr::new("--grace-period"), bad, t],
            None,
            "'--grace-period'",
        ),
        (
            vec![t],
            Some(("DRAINIT_DRAIN_DELAY", bad)),
            "DRAINIT_DRAIN_DELAY",
        ),
        (vec![t], Some(("DRAINIT_LOG", bad)), "DRAINIT_LOG"),
    ] {
        let (code, first) = run(&args, env);
        assert_eq!(code, Some(2), "{name}: {first}");
        assert!(
            first.contains(name) && first.contains("UTF-8"),
            "{name}: {first}"
        );
    }
    // The command's own arguments may be any bytes.
    let (code, _) = run(
        &[
            OsStr::new("-q"),
            OsStr::new("sh"),
            OsStr::new("-c"),
            OsStr::new("exit 4"),
            bad,
        ],
        None,
    );
    assert_eq!(code, Some(4));
}

#[test]
fn an_empty_or_blank_drainit_log_exits_2_like_every_other_variable() {
    for value in ["", " ", "\t"] {
        let f = run(&["true"], &[("DRAINIT_LOG", value)]);
        assert_eq!(f.code, 2, "DRAINIT_LOG={value:?}: {}", f.stderr);
        assert!(
            f.first_stderr_line().contains("DRAINIT_LOG"),
            "{value:?}: {}",
            f.stderr
        );
        // -v and -q override DRAINIT_LOG, so it is not read at all then.
        assert_eq!(run(&["-q", "true"], &[("DRAINIT_LOG", value)]).code, 0);
    }
}

#[test]
fn a_scalar_option_given_twice_takes_the_last_value() {
    let f = run(
        &[
            "-d",
            "5s",
            "-d",
            "1ms",
            "-g",
            "9s",
            "--grace-period=2s",
            "true",
        ],
        &[],
    );
    assert_eq!(f.code, 0, "{}", f.stderr);
    let f = run(&["-q", "-q", "-c", "-c", "true"], &[]);
    assert_eq!(f.code, 0, "{}", f.stderr);
    // Which -d won shows in the drain: SIGTERM is held for the last one.
    let log = log_of_a_stop(&["-d", "9s", "-d", "100ms"], &[], false);
    assert!(log.contains("holding SIGTERM for 100ms"), "{log}");
    // Repeatable options still collect every value.
    let f = run(
        &[
            "--remap-exit",
            "3:4",
            "--remap-exit",
            "4:5",
            "sh",
            "-c",
            "exit 4",
        ],
        &[],
    );
    assert_eq!(f.code, 5, "{}", f.stderr);
}

#[test]
fn an_invalid_env_value_is_not_read_when_the_option_is_on_the_command_line() {
    // As for the options in `the_command_line_overrides_the_environment`: -v and -q override
    // DRAINIT_LOG, so a bad DRAINIT_LOG is not read either.
    for args in [&["-v", "true"][..], &["-q", "true"]] {
        let f = run(args, &[("DRAINIT_LOG", "drainit=loud")]);
        assert_eq!(f.code, 0, "{args:?}: {}", f.stderr);
    }
    let f = run(&["-c", "true"], &[("DRAINIT_SINGLE_CHILD", "maybe")]);
    assert_eq!(f.code, 0, "{}", f.stderr);
}
