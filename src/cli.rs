//! The command line and the `DRAINIT_*` env vars, with clap: the doc comments below are the
//! `--help`. This is the only clap user; it turns raw arguments into a validated `Config`.
//! Options stop at the first non-option word (`drainit node -v` runs `node -v`), an option on
//! the command line overrides its env var, and for a repeatable option the command-line list
//! replaces the env list. A bad value exits 2 with the option and the value on the first line.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

use crate::config::{Config, Forwarding};
use crate::logging;
use crate::parse::{self, CheckTarget, Rewrite, Sig};
use crate::signals;

#[derive(Parser, Debug)]
#[command(
    name = "drainit",
    version,
    about = "A tiny init for containers that drains before it stops.",
    long_about = "A tiny init for containers that drains before it stops.\n\n\
        drainit runs COMMAND as PID 1's child, reaps every zombie and forwards signals: the stop \
        signals to COMMAND's process group (so a wrapper such as npm start or sh -c cannot keep \
        them from the app), every other signal to COMMAND alone (so a process manager such as \
        gunicorn or nginx gets HUP, USR2, TTIN in its master, not in its workers). On the first \
        stop signal it fails /readyz at once, holds the signal for --drain-delay so the load \
        balancer stops sending traffic, then forwards it.",
    after_help = "DUR: 4s, 500ms, 1m, 1.5s, 2m30s; a bare number is seconds; whole milliseconds.\n\
        SIG: TERM, SIGTERM, term, 15, RTMIN+3.\n\
        Exit status: the command's, or 128+N if signal N killed it; drainit's own failures: \
        127 not found, 126 not executable, 2 usage, 1 other.",
    override_usage = "drainit [OPTIONS] [--] COMMAND [ARGS]...\n       drainit --probe [TARGET]",
    trailing_var_arg = true,
    dont_delimit_trailing_values = true,
    // `-d 1 -d 2` is `-d 2`: the last one wins, as with getopt-based inits and most CLIs (the
    // repeatable options still collect every value).
    args_override_self = true
)]
struct Args {
    /// Time between the first stop signal and forwarding it; /readyz is 503 meanwhile
    #[arg(short = 'd', long, env = "DRAINIT_DRAIN_DELAY", value_name = "DUR",
          default_value = "0s", value_parser = parse::duration, allow_hyphen_values = true)]
    drain_delay: Duration,

    /// After forwarding the stop signal, SIGKILL the child's process group when this runs out
    /// [default: never; the orchestrator's timeout applies]
    #[arg(short = 'g', long, env = "DRAINIT_GRACE_PERIOD", value_name = "DUR",
          value_parser = parse::duration, allow_hyphen_values = true)]
    grace_period: Option<Duration>,

    /// Serve /readyz and /livez on HOST:PORT, :PORT (all interfaces, IPv4 and IPv6) or [::]:PORT
    #[arg(long, env = "DRAINIT_READY_ADDR", value_name = "ADDR", value_parser = parse::ready_addr,
          allow_hyphen_values = true)]
    ready_addr: Option<SocketAddr>,

    /// /readyz is 200 only while TARGET answers: tcp://HOST:PORT or http://HOST:PORT/PATH (2xx)
    #[arg(long, env = "DRAINIT_READY_CHECK", value_name = "TARGET",
          value_parser = parse::check_target, allow_hyphen_values = true)]
    ready_check: Option<CheckTarget>,

    /// A signal that starts draining; repeatable [default: TERM]
    #[arg(long = "stop-signal", env = "DRAINIT_STOP_SIGNALS", value_name = "SIG",
          action = ArgAction::Append, value_delimiter = ',', value_parser = stop_signal,
          allow_hyphen_values = true)]
    stop_signals: Vec<Sig>,

    /// Forward TO instead of FROM; TO may be 0 or NONE to drop FROM; repeatable
    #[arg(short = 'r', long = "rewrite", env = "DRAINIT_REWRITE", value_name = "FROM:TO",
          action = ArgAction::Append, value_delimiter = ',', value_parser = rewrite,
          allow_hyphen_values = true)]
    rewrites: Vec<Rewrite>,

    /// Send even the stop signals to the child alone, not to its process group
    #[arg(short = 'c', long, env = "DRAINIT_SINGLE_CHILD", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    single_child: bool,

    /// Forward every signal to the child's process group, not only the stop signals
    /// (dumb-init's behaviour); not with -c
    #[arg(short = 'G', long, env = "DRAINIT_GROUP_ALL", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    group_all: bool,

    /// Map the final exit status FROM (0-255, after 128+N folding) to TO; repeatable
    #[arg(long = "remap-exit", env = "DRAINIT_REMAP_EXIT", value_name = "FROM:TO",
          action = ArgAction::Append, value_delimiter = ',', value_parser = parse::remap,
          allow_hyphen_values = true)]
    remap_exit: Vec<(u8, u8)>,

    /// More log lines (-v debug, -vv trace); overrides DRAINIT_LOG
    #[arg(short = 'v', long, action = ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,

    /// Warnings and errors only; overrides DRAINIT_LOG
    #[arg(short = 'q', long)]
    quiet: bool,

    /// Health-check client: probe TARGET once, exit 0 if healthy, 1 if not; runs no command.
    /// TARGET: tcp://HOST:PORT, http://HOST:PORT/PATH or an ADDR, meaning its /readyz
    /// [default: the /readyz of DRAINIT_READY_ADDR]. Must be the first argument
    // main.rs hands `drainit --probe ...` to probe.rs before clap runs; this entry is the help,
    // and the error when --probe comes after other options.
    #[arg(long, value_name = "TARGET", num_args = 0..=1)]
    probe: Option<Option<String>>,

    /// The command to run, and its arguments
    // Not allow_hyphen_values: a misspelt option (`--grace 5s node`) must be a usage error, not
    // a command named `--grace`. Options take values starting with '-' instead, so `-g -1`
    // is a bad value of --grace-period; `--` runs a command whose name starts with '-'.
    #[arg(value_name = "COMMAND", required_unless_present = "probe", num_args = 1..)]
    command: Vec<OsString>,
}

/// The env var that holds an env_logger filter when neither -v nor -q is given.
pub const LOG_ENV: &str = "DRAINIT_LOG";

/// Parse argv and the environment. `Err` carries clap's error, which prints itself and exits
/// with 0 (help, version) or 2 (usage).
pub fn parse() -> Result<Config, clap::Error> {
    let log_env = match std::env::var(LOG_ENV) {
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(v)) => {
            return Err(Args::command().error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "invalid value '{}' for '{LOG_ENV}': not valid UTF-8",
                    v.to_string_lossy()
                ),
            ));
        }
    };
    parse_from(std::env::args_os(), log_env)
}

fn parse_from(
    argv: impl IntoIterator<Item = OsString>,
    log_env: Option<String>,
) -> Result<Config, clap::Error> {
    let argv: Vec<OsString> = argv.into_iter().collect();
    let mut cmd = Args::command();
    let mut matches = cmd
        .try_get_matches_from_mut(&argv)
        .map_err(|e| name_the_env_var(&mut cmd, e))
        .map_err(|e| name_the_non_utf8_value(&mut cmd, &argv, e))?;
    // _mut takes the values out; the by-reference version clones all the matches first (a
    // tenth of start-up's instructions, callgrind).
    let args = Args::from_arg_matches_mut(&mut matches)?;
    if args.probe.is_some() {
        return Err(cmd.error(
            clap::error::ErrorKind::ArgumentConflict,
            "'--probe' must be the first argument (drainit --probe [TARGET]): a probe takes no \
             other option and runs no command",
        ));
    }

    let log_filter = match (args.verbose, args.quiet, log_env) {
        (0, true, _) => "warn".to_string(),
        (1, _, _) => "debug".to_string(),
        (v, _, _) if v >= 2 => "trace".to_string(),
        // Empty or blank is invalid too, as for every other DRAINIT_* variable.
        (_, _, Some(env)) => {
            if !logging::valid_filter(&env) {
                return Err(cmd.error(
                    clap::error::ErrorKind::ValueValidation,
                    format!(
                        "invalid value '{env}' for '{LOG_ENV}': expected an env_logger filter \
                         such as info, debug or drainit=trace"
                    ),
                ));
            }
            env
        }
        _ => "info".to_string(),
    };
    // Checked here, not with clap's conflicts_with: that counts DRAINIT_SINGLE_CHILD=0 as given.
    let forwarding = match (args.single_child, args.group_all) {
        (false, false) => Forwarding::StopToGroup,
        (true, false) => Forwarding::SingleChild,
        (false, true) => Forwarding::GroupAll,
        (true, true) => {
            return Err(cmd.error(
                clap::error::ErrorKind::ArgumentConflict,
                "--single-child (-c, DRAINIT_SINGLE_CHILD) and --group-all (-G, \
                 DRAINIT_GROUP_ALL) cannot be used together: -c sends every signal to the \
                 child alone, -G every signal to its process group",
            ));
        }
    };
    Ok(Config {
        command: args.command,
        drain_delay: args.drain_delay,
        grace_period: args.grace_period,
        ready_addr: args.ready_addr,
        ready_check: args.ready_check,
        stop_signals: if args.stop_signals.is_empty() {
            vec![Sig::TERM]
        } else {
            args.stop_signals
        },
        rewrites: args.rewrites,
        forwarding,
        remap_exit: args.remap_exit,
        log_filter,
    })
}

/// clap names the option even when the bad value came from its environment variable; a user
/// who only set `DRAINIT_DRAIN_DELAY` should read that name too.
fn name_the_env_var(cmd: &mut clap::Command, e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return e;
    }
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) else {
        return e;
    };
    let long = arg
        .split([' ', '='])
        .next()
        .unwrap_or_default()
        .trim_start_matches('-');
    let Some(env) = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|env| env.to_string_lossy().into_owned())
    else {
        return e;
    };
    let from_env =
        std::env::var(&env).is_ok_and(|v| v == *value || v.split(',').any(|p| p == value));
    if !from_env {
        return e;
    }
    let reason = std::error::Error::source(&e)
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    cmd.error(
        ErrorKind::ValueValidation,
        format!("invalid value '{value}' for '{arg}' (set by {env}){reason}"),
    )
}

/// clap's message for bytes that are not UTF-8 names neither the option nor the value; find them
/// (on the command line before the command, or in a `DRAINIT_*` variable) and say which.
fn name_the_non_utf8_value(
    cmd: &mut clap::Command,
    argv: &[OsString],
    e: clap::Error,
) -> clap::Error {
    if e.kind() != clap::error::ErrorKind::InvalidUtf8 {
        return e;
    }
    let mut culprit = None;
    let mut previous: Option<&str> = None;
    for arg in argv.iter().skip(1) {
        match arg.to_str() {
            Some("--") => break,
            Some(a) => {
                // The command starts at the first word that is neither an option nor its value.
                let after_option = previous.is_some_and(|p| p.starts_with('-') && !p.contains('='));
                if !a.starts_with('-') && !after_option {
                    break;
                }
                previous = Some(a);
            }
            None => {
                let lossy = arg.to_string_lossy().into_owned();
                culprit = match lossy.split_once('=').filter(|(o, _)| o.starts_with("--")) {
                    Some((option, value)) => Some((option.to_string(), value.to_string())),
                    None => previous.map(|p| (p.to_string(), lossy)),
                };
                break;
            }
        }
    }
    if culprit.is_none() {
        culprit = std::env::vars_os().find_map(|(k, v)| {
            let k = k.to_str()?;
            (k.starts_with("DRAINIT_") && v.to_str().is_none())
                .then(|| (k.to_string(), v.to_string_lossy().into_owned()))
        });
    }
    match culprit {
        Some((name, value)) => cmd.error(
            clap::error::ErrorKind::ValueValidation,
            format!("invalid value '{value}' for '{name}': not valid UTF-8"),
        ),
        None => e,
    }
}

/// `parse::catchable_signal`, minus the real-time signals the C library keeps for itself: they
/// cannot be caught, so they can start no drain. Which ones depends on the libc drainit was
/// built with (glibc: 32-33, musl: 32-34), so this check lives here and parse.rs stays pure.
fn stop_signal(s: &str) -> Result<Sig, String> {
    let sig = parse::catchable_signal(s)?;
    if signals::reserved().contains(&sig.0) {
        return Err(format!(
            "signal {} is reserved by the C library this drainit was built with and cannot be \
             caught; use {} or above",
            sig.0,
            Sig(libc::SIGRTMIN())
        ));
    }
    Ok(sig)
}

/// `parse::rewrite`, with FROM checked as `stop_signal` checks it.
fn rewrite(s: &str) -> Result<Rewrite, String> {
    let r = parse::rewrite(s)?;
    stop_signal(&r.from.0.to_string()).map_err(|e| format!("FROM: {e}"))?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let argv = std::iter::once("drainit")
            .chain(args.iter().copied())
            .map(OsString::from);
        parse_from(argv, None)
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn options_stop_at_the_first_non_option_word() {
        let c = parse(&["-d", "4s", "node", "-v", "--drain-delay", "9s"]).unwrap();
        assert_eq!(c.command, ["node", "-v", "--drain-delay", "9s"]);
        assert_eq!(c.drain_delay, Duration::from_secs(4));
        assert_eq!(c.log_filter, "info");
        let c = parse(&["--", "-weird-name", "x"]).unwrap();
        assert_eq!(c.command, ["-weird-name", "x"]);
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = parse(&["true"]).unwrap();
        assert_eq!(c.drain_delay, Duration::ZERO);
        assert_eq!(c.grace_period, None);
        assert_eq!(c.ready_addr, None);
        assert_eq!(c.stop_signals, [Sig::TERM]);
        assert_eq!(c.forwarding, Forwarding::StopToGroup);
    }

    #[test]
    fn repeatable_options_collect_and_accept_comma_lists() {
        let c = parse(&[
            "--stop-signal",
            "TERM",
            "--stop-signal",
            "INT,QUIT",
            "-r",
            "TERM:QUIT",
            "-r",
            "WINCH:NONE",
            "--remap-exit",
            "143:0",
            "true",
        ])
        .unwrap();
        assert_eq!(c.stop_signals, [Sig::TERM, Sig::INT, Sig(3)]);
        assert_eq!(c.rewrites.len(), 2);
        assert_eq!(c.remap_exit, [(143, 0)]);
    }

    #[test]
    fn bad_values_are_usage_errors_naming_option_and_value() {
        for (args, opt, val) in [
            (&["-d", "soon", "true"][..], "--drain-delay", "soon"),
            (&["-g", "-1", "true"][..], "--grace-period", "-1"),
            (
                &["--stop-signal", "KILL", "true"][..],
                "--stop-signal",
                "KILL",
            ),
            (
                &["--ready-addr", "nowhere", "true"][..],
                "--ready-addr",
                "nowhere",
            ),
            (
                &["--ready-check", "ftp://x:1", "true"][..],
                "--ready-check",
                "ftp://x:1",
            ),
            (&["-r", "TERM", "true"][..], "--rewrite", "TERM"),
            (
                &["--remap-exit", "300:0", "true"][..],
                "--remap-exit",
                "300:0",
            ),
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            assert!(
                first.contains(opt) && first.contains(val),
                "{args:?}: {first}"
            );
        }
    }

    #[test]
    fn an_unknown_option_is_a_usage_error_not_the_command() {
        for args in [
            &["--grace", "5s", "node"][..],
            &["--no-such-option", "true"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(args[0]), "{e}");
        }
    }

    #[test]
    fn signals_reserved_by_the_c_library_cannot_start_a_drain_or_be_rewritten() {
        for args in [
            &["--stop-signal", "32", "true"][..],
            &["-r", "33:TERM", "true"][..],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains("reserved by the C library"), "{e}");
        }
        let first_free = Sig(libc::SIGRTMIN()).to_string();
        assert!(parse(&["--stop-signal", &first_free, "true"]).is_ok());
    }

    #[test]
    fn probe_after_other_options_is_a_usage_error() {
        for args in [&["-v", "--probe"][..], &["-q", "--probe", ":8086", "true"]] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains("must be the first argument"), "{e}");
        }
    }

    #[test]
    fn c_and_g_pick_the_forwarding_and_together_are_a_usage_error() {
        assert_eq!(
            parse(&["-c", "true"]).unwrap().forwarding,
            Forwarding::SingleChild
        );
        assert_eq!(
            parse(&["--group-all", "true"]).unwrap().forwarding,
            Forwarding::GroupAll
        );
        for args in [&["-c", "-G", "true"][..], &["-cG", "true"]] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            assert!(
                first.contains("--single-child") && first.contains("--group-all"),
                "{first}"
            );
        }
    }

    #[test]
    fn a_missing_command_is_a_usage_error() {
        assert_eq!(parse(&[]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["-d", "1s"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn verbosity_flags_override_the_log_env() {
        let argv = |a: &[&str]| {
            std::iter::once("drainit")
                .chain(a.iter().copied())
                .map(OsString::from)
                .collect::<Vec<_>>()
        };
        let c = parse_from(argv(&["-v", "true"]), Some("warn".into())).unwrap();
        assert_eq!(c.log_filter, "debug");
        let c = parse_from(argv(&["true"]), Some("drainit=trace".into())).unwrap();
        assert_eq!(c.log_filter, "drainit=trace");
        let c = parse_from(argv(&["-q", "true"]), None).unwrap();
        assert_eq!(c.log_filter, "warn");
        let c = parse_from(argv(&["-v", "-v", "true"]), None).unwrap();
        assert_eq!(
            c.log_filter, "trace",
            "-v still counts with args_override_self"
        );
        let e = parse_from(argv(&["true"]), Some("x=loud".into())).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("DRAINIT_LOG"));
    }
}
