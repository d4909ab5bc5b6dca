//! `drainit --probe [TARGET]` (contract, point 9): a health-check client in the same binary, for
//! images with no shell and no curl (`HEALTHCHECK CMD ["drainit", "--probe"]`). It runs one
//! check of TARGET with the code `--ready-check` uses (check.rs) and exits 0 when healthy, 1
//! when not (one line on stderr saying why), 2 on a usage error. It gives up 1.9 s after it
//! started, whatever the target does, so it answers within 2 s.
//!
//! This mode runs no command and touches no signal intake, spawn or event loop: `main` hands
//! over to it before anything else, and it unblocks the signals that sys.rs's constructor
//! blocked before `main` ran, so it stops on SIGTERM or Ctrl-C like any client. It is chosen
//! by the first argument alone (`--probe` or `--probe=TARGET`), and reads no other option and
//! no env var but `DRAINIT_READY_ADDR` (the default target), so a probe works in a container
//! whose drainit is configured with `DRAINIT_*` variables it has no use for. Anything after
//! TARGET, a COMMAND included, is a usage error: a probe never starts anything.

use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

use crate::check;
use crate::error::Fatal;
use crate::parse::{self, CheckTarget};

pub const FLAG: &str = "--probe";
/// The default target is the /readyz of this drainit's readiness server.
const READY_ADDR_ENV: &str = "DRAINIT_READY_ADDR";
/// The probe gives up this long after it started, so that with its own start and exit it
/// answers within the 2 s the contract promises.
const TIMEOUT: Duration = Duration::from_millis(1900);
const USAGE: &str = "Usage: drainit --probe [TARGET]\n\n\
    Probe TARGET once and exit 0 if it is healthy, 1 if not, 2 on a usage error; runs no command.\n\
    TARGET: tcp://HOST:PORT (connects), http://HOST:PORT/PATH (answers 2xx), or an ADDR as\n\
    --ready-addr takes it (HOST:PORT, :PORT), meaning http://ADDR/readyz (:PORT on 127.0.0.1).\n\
    Default: the /readyz of DRAINIT_READY_ADDR. The answer comes within 2 s.";
const USAGE_LINE: &str =
    "Usage: drainit --probe [TARGET]\n\nFor more information, try 'drainit --probe --help'.";

/// The arguments after `--probe` (with `--probe=TARGET`, TARGET first), when the first argument
/// asks for this mode.
pub fn requested(argv: impl IntoIterator<Item = OsString>) -> Option<Vec<OsString>> {
    let mut args = argv.into_iter().skip(1);
    let first = args.next()?;
    let first = first.to_str()?;
    let mut rest = Vec::new();
    if let Some(target) = first.strip_prefix(FLAG)?.strip_prefix('=') {
        rest.push(OsString::from(target));
    } else if first != FLAG {
        return None;
    }
    rest.extend(args);
    Some(rest)
}

/// Probe, report and return the exit code.
pub fn run(args: &[OsString]) -> u8 {
    // sys.rs's constructor blocked the signals the init collects, before main could tell the
    // modes apart. A probe is an ordinary client: a SIGTERM or Ctrl-C must stop it.
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&SigSet::all()), None);
    let target = match target(args, std::env::var_os(READY_ADDR_ENV)) {
        Ok(Some(target)) => target,
        Ok(None) => {
            // Help goes to stdout, as clap's does.
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return 0;
        }
        Err(usage) => {
            say(&format!("error: {usage}\n\n{}", USAGE_LINE));
            return Fatal::USAGE;
        }
    };
    match check::check_now(&target, TIMEOUT) {
        Ok(()) => 0,
        Err(why) => {
            say(&format!("drainit: probe {target}: {why}"));
            Fatal::OTHER
        }
    }
}

/// What to probe: TARGET, else the /readyz of `ready_addr_env`. `Ok(None)` asks for the help.
/// `Err` is a usage error whose first line names the option and the value.
fn target(
    args: &[OsString],
    ready_addr_env: Option<OsString>,
) -> Result<Option<CheckTarget>, String> {
    let (value, from_env) = match args {
        [] => match ready_addr_env {
            Some(v) => (v, true),
            None => {
                return Err(format!(
                    "'{FLAG}' needs a TARGET: none given and {READY_ADDR_ENV} is not set"
                ));
            }
        },
        [one] if one == "-h" || one == "--help" => return Ok(None),
        [one] => (one.clone(), false),
        [_, extra, ..] => {
            return Err(format!(
                "unexpected argument '{}' after '{FLAG} TARGET': a probe takes one TARGET and \
                 runs no command",
                extra.to_string_lossy()
            ));
        }
    };
    let source = if from_env {
        format!("'{FLAG}' (set by {READY_ADDR_ENV})")
    } else {
        format!("'{FLAG}'")
    };
    let text = value.to_str().ok_or_else(|| {
        format!(
            "invalid value '{}' for {source}: not valid UTF-8",
            value.to_string_lossy()
        )
    })?;
    parse::probe_target(text)
        .map(Some)
        .map_err(|why| format!("invalid value '{text}' for {source}: {why}"))
}

/// One message on stderr. A closed or broken stderr is no reason to change the exit code.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn only_a_first_argument_of_probe_asks_for_this_mode() {
        assert_eq!(requested(os(&["drainit", "--probe"])), Some(vec![]));
        assert_eq!(
            requested(os(&["drainit", "--probe", ":8086"])),
            Some(os(&[":8086"]))
        );
        assert_eq!(
            requested(os(&["drainit", "--probe=:8086", "x"])),
            Some(os(&[":8086", "x"]))
        );
        assert_eq!(requested(os(&["drainit", "--probe="])), Some(os(&[""])));
        assert_eq!(requested(os(&["drainit"])), None);
        assert_eq!(requested(os(&["drainit", "--prober"])), None);
        assert_eq!(requested(os(&["drainit", "node", "--probe"])), None);
        assert_eq!(requested(os(&["drainit", "-v", "--probe"])), None);
    }

    #[test]
    fn the_target_is_the_argument_else_the_ready_addr_env() {
        let readyz = |addr: &str| parse::probe_target(addr).map(Some);
        assert_eq!(target(&os(&[":8086"]), None), readyz(":8086"));
        assert_eq!(
            target(&os(&["tcp://127.0.0.1:5"]), Some(":1".into())),
            readyz("tcp://127.0.0.1:5")
        );
        assert_eq!(target(&[], Some(":8086".into())), readyz(":8086"));
        assert_eq!(target(&os(&["--help"]), None), Ok(None));
    }

    #[test]
    fn usage_errors_name_the_option_and_the_value() {
        let err =
            |args: &[&str], env: Option<&str>| target(&os(args), env.map(Into::into)).unwrap_err();
        assert!(err(&[], None).contains("DRAINIT_READY_ADDR is not set"));
        let e = err(&["nowhere"], None);
        assert!(
            e.starts_with("invalid value 'nowhere' for '--probe': "),
            "{e}"
        );
        let e = err(&[], Some("8086"));
        assert!(
            e.starts_with("invalid value '8086' for '--probe' (set by DRAINIT_READY_ADDR): "),
            "{e}"
        );
        assert!(err(&[""], None).starts_with("invalid value '' for '--probe'"));
        let e = err(&[":8086", "node", "server.js"], None);
        assert!(e.contains("'node'") && e.contains("runs no command"), "{e}");
        assert!(err(&["--", "node"], None).contains("'node'"));
    }
}
