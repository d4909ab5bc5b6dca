//! Pure parsers for every value the CLI and the `DRAINIT_*` env vars take: durations, signals,
//! `FROM:TO` pairs, the readiness address and the readiness-check target. Each returns a short
//! reason on error; clap (see `cli.rs`) prefixes it with the option and the value, so the first
//! line of a usage error names both. Nothing here touches the process, except `ready_addr` and
//! `check_target`, which resolve a host name once, at start, as the contract asks.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// A signal number. Not `nix::sys::signal::Signal`: that enum cannot hold real-time signals,
/// and drainit forwards those too.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Sig(pub i32);

/// `RTMIN` as userland names it (`kill -l`, bash, Docker's `--stop-signal`): glibc reserves the
/// kernel's 32 and 33, so `RTMIN+3` is 37 everywhere users type it. We fix it here rather than ask
/// the libc we were built with (musl says 35), so a static drainit and a glibc app agree.
pub const RTMIN: i32 = 34;
/// The kernel's highest signal number (`_NSIG - 1`).
pub const RTMAX: i32 = 64;

const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

impl Sig {
    #[cfg(test)]
    pub const HUP: Sig = Sig(1);
    #[cfg(test)]
    pub const INT: Sig = Sig(2);
    pub const KILL: Sig = Sig(9);
    #[cfg(test)]
    pub const USR1: Sig = Sig(10);
    pub const TERM: Sig = Sig(15);
    pub const PIPE: Sig = Sig(13);
    pub const CHLD: Sig = Sig(17);
    pub const STOP: Sig = Sig(19);

    /// The fault signals: the kernel raises them for drainit's own bugs, so they are about
    /// drainit and are neither caught nor forwarded (contract, point 2).
    pub fn is_fault(self) -> bool {
        matches!(self.0, 4..=8 | 11 | 31)
    }

    /// KILL and STOP can be neither caught nor blocked (signal(7)).
    pub fn is_uncatchable(self) -> bool {
        self == Sig::KILL || self == Sig::STOP
    }
}

impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == self.0) {
            write!(f, "SIG{name}")
        } else if self.0 == RTMIN {
            f.write_str("SIGRTMIN")
        } else if self.0 > RTMIN && self.0 <= RTMAX {
            write!(f, "SIGRTMIN+{}", self.0 - RTMIN)
        } else {
            write!(f, "signal {}", self.0)
        }
    }
}

/// `4s`, `500ms`, `1m`, `1.5s`, `2m30s`, `1h`; a bare number (`3`, `0.5`) is seconds.
/// Exact decimal arithmetic in nanoseconds (digits past a nanosecond are dropped), not floats:
/// `0.1s` is 100ms exactly, and the binary carries no float parser (about 17 KB of 350).
pub fn duration(s: &str) -> Result<Duration, String> {
    const HINT: &str = "expected a duration such as 4s, 500ms, 1.5s, 2m30s or a number of seconds";
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("empty duration; {HINT}"));
    }
    let total = match decimal_nanos(t, NANOS_PER_SEC) {
        Some(n) => n,
        None => {
            let mut total = 0u128;
            let mut rest = t;
            while !rest.is_empty() {
                let num_len = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(rest.len());
                let (num, tail) = rest.split_at(num_len);
                let unit_len = tail
                    .find(|c: char| c.is_ascii_digit() || c == '.')
                    .unwrap_or(tail.len());
                let (unit, tail) = tail.split_at(unit_len);
                let unit_ns = match unit {
                    "ms" => 1_000_000,
                    "s" => NANOS_PER_SEC,
                    "m" => 60 * NANOS_PER_SEC,
                    "h" => 3600 * NANOS_PER_SEC,
                    "us" | "µs" => 1_000,
                    _ => return Err(HINT.to_string()),
                };
                let value = decimal_nanos(num, unit_ns).ok_or_else(|| HINT.to_string())?;
                total = total.saturating_add(value);
                rest = tail;
            }
            total
        }
    };
    // A year is far past any orchestrator's timeout; the bound keeps Instant arithmetic safe.
    if total > 31_536_000 * NANOS_PER_SEC {
        return Err(format!("out of range; {HINT}"));
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| format!("out of range; {HINT}"))?;
    let nanos = u32::try_from(total % NANOS_PER_SEC).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// `num` units of `unit_ns` nanoseconds each, for `num` made of digits with at most one '.' and
/// a digit on at least one side of it (`3`, `1.5`, `.5`, `5.`). Saturates rather than overflow:
/// the caller's range check turns a huge number into "out of range".
fn decimal_nanos(num: &str, unit_ns: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    let whole = int.bytes().fold(0u128, |n, b| {
        n.saturating_mul(10).saturating_add(u128::from(b - b'0'))
    });
    let mut total = whole.saturating_mul(unit_ns);
    let mut scale = unit_ns;
    for b in frac.bytes() {
        scale /= 10;
        total = total.saturating_add(u128::from(b - b'0') * scale);
    }
    Some(total)
}

/// `TERM`, `SIGTERM`, `term`, `15`, `RTMIN`, `RTMIN+3`, `RTMAX-2`.
pub fn signal(s: &str) -> Result<Sig, String> {
    const HINT: &str = "expected a signal name (TERM, SIGTERM, term), a number 1-64 or RTMIN+N";
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=RTMAX).contains(&n) {
            Ok(Sig(n))
        } else {
            Err(format!("no signal has number {n}; {HINT}"))
        };
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(nm, _)| *nm == name) {
        return Ok(Sig(*n));
    }
    let rt = |base: i32, off: &str, sign: i32| -> Result<Sig, String> {
        let k: i32 = if off.is_empty() {
            0
        } else {
            off.parse().map_err(|_| HINT.to_string())?
        };
        // Checked: `RTMIN+2147483647` must be a usage error, not an overflow panic.
        match k.checked_mul(sign).and_then(|d| base.checked_add(d)) {
            Some(n) if (RTMIN..=RTMAX).contains(&n) => Ok(Sig(n)),
            _ => Err(format!("outside RTMIN..RTMAX ({RTMIN}..{RTMAX}); {HINT}")),
        }
    };
    if let Some(off) = name.strip_prefix("RTMIN") {
        return match off.strip_prefix('+') {
            Some(k) => rt(RTMIN, k, 1),
            None if off.is_empty() => rt(RTMIN, "", 1),
            None => Err(HINT.to_string()),
        };
    }
    if let Some(off) = name.strip_prefix("RTMAX") {
        return match off.strip_prefix('-') {
            Some(k) => rt(RTMAX, k, -1),
            None if off.is_empty() => rt(RTMAX, "", 1),
            None => Err(HINT.to_string()),
        };
    }
    Err(format!("unknown signal; {HINT}"))
}

/// A signal drainit can catch and act on: not KILL or STOP (they cannot be caught), not a fault
/// signal (about drainit itself), not CHLD (it drives reaping), not PIPE (drainit ignores it).
/// The real-time numbers the C library reserves are checked in `cli.rs`: they depend on the
/// libc drainit was built with, and this module stays pure.
pub fn catchable_signal(s: &str) -> Result<Sig, String> {
    let sig = signal(s)?;
    if sig.is_uncatchable() {
        Err(format!(
            "{sig} cannot be caught (signal(7)), so it cannot be used here"
        ))
    } else if sig.is_fault() {
        Err(format!(
            "{sig} is a fault signal about drainit itself and is never forwarded"
        ))
    } else if sig == Sig::CHLD {
        Err("SIGCHLD drives reaping and is never forwarded".to_string())
    } else if sig == Sig::PIPE {
        Err("SIGPIPE is ignored by drainit (its own broken pipes) and never forwarded".to_string())
    } else {
        Ok(sig)
    }
}

/// One `--rewrite FROM:TO`: forward `to` instead of `from`; `to == None` drops `from`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Rewrite {
    pub from: Sig,
    pub to: Option<Sig>,
}

/// `FROM:TO`, both signals; `TO` may be `0` or `NONE` to drop FROM.
pub fn rewrite(s: &str) -> Result<Rewrite, String> {
    let (from, to) = s
        .split_once(':')
        .ok_or_else(|| "expected FROM:TO, e.g. TERM:QUIT or WINCH:NONE".to_string())?;
    let from = catchable_signal(from).map_err(|e| format!("FROM: {e}"))?;
    let to = match to.trim() {
        t if t.parse::<u64>() == Ok(0) || t.eq_ignore_ascii_case("none") => None,
        t => Some(signal(t).map_err(|e| format!("TO: {e}"))?),
    };
    Ok(Rewrite { from, to })
}

/// `FROM:TO`, both exit statuses 0-255.
pub fn remap(s: &str) -> Result<(u8, u8), String> {
    let (from, to) = s
        .split_once(':')
        .ok_or_else(|| "expected FROM:TO, two exit statuses 0-255, e.g. 143:0".to_string())?;
    let status = |v: &str, which: &str| {
        v.trim()
            .parse::<u8>()
            .map_err(|_| format!("{which} must be an exit status 0-255"))
    };
    Ok((status(from, "FROM")?, status(to, "TO")?))
}

/// `HOST:PORT`, `:PORT` (all interfaces: `[::]`, which the server opens to IPv4 too), `[::]:PORT`
/// or `[IPv6]:PORT`. A name is resolved once, here; the first address wins.
pub fn ready_addr(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    if let Some(port) = t.strip_prefix(':') {
        let port = port_number(port)?;
        return Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
    }
    host_port(t)
}

fn port_number(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .map_err(|_| format!("'{p}' is not a port number 0-65535"))
}

/// `HOST:PORT` with HOST an IP address, `[v6]`, or a name resolved now.
fn host_port(t: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = t
        .rsplit_once(':')
        .ok_or_else(|| "expected HOST:PORT, :PORT or [::]:PORT".to_string())?;
    let port = port_number(port)?;
    if host.is_empty() || host.contains(['[', ']', '/', ' ']) {
        return Err("expected HOST:PORT, :PORT or [::]:PORT".to_string());
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{host}' resolves to no address"))
}

/// What `--ready-check` asks about the app.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CheckTarget {
    /// Passing while a TCP connect succeeds.
    Tcp(SocketAddr),
    /// Passing while `GET path` answers 2xx. `host` is sent as the Host header.
    Http {
        addr: SocketAddr,
        host: String,
        path: String,
    },
}

/// `tcp://HOST:PORT` or `http://HOST:PORT/PATH` (PATH defaults to `/`).
pub fn check_target(s: &str) -> Result<CheckTarget, String> {
    let t = s.trim();
    if let Some(rest) = t.strip_prefix("tcp://") {
        return Ok(CheckTarget::Tcp(host_port(rest.trim_end_matches('/'))?));
    }
    if let Some(rest) = t.strip_prefix("http://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("the path must not contain spaces or control characters".to_string());
        }
        let addr = host_port(authority)?;
        return Ok(CheckTarget::Http {
            addr,
            host: authority.to_string(),
            path: path.to_string(),
        });
    }
    Err("expected tcp://HOST:PORT or http://HOST:PORT/PATH".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_accept_units_fractions_compounds_and_bare_seconds() {
        assert_eq!(duration("4s"), Ok(ms(4000)));
        assert_eq!(duration("500ms"), Ok(ms(500)));
        assert_eq!(duration("1m"), Ok(ms(60_000)));
        assert_eq!(duration("1.5s"), Ok(ms(1500)));
        assert_eq!(duration("2m30s"), Ok(ms(150_000)));
        assert_eq!(duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(duration("3"), Ok(ms(3000)));
        assert_eq!(duration("0.5"), Ok(ms(500)));
        assert_eq!(duration("0"), Ok(ms(0)));
        assert_eq!(duration("0s"), Ok(ms(0)));
        assert_eq!(duration(".5s"), Ok(ms(500)));
        assert_eq!(duration("5."), Ok(ms(5000)));
        assert_eq!(duration("1.5m"), Ok(ms(90_000)));
        assert_eq!(duration("2.5ms"), Ok(Duration::from_micros(2500)));
        assert_eq!(duration("1.0000000019"), Ok(Duration::new(1, 1)));
        assert_eq!(duration("8760h"), Ok(Duration::from_secs(31_536_000)));
        assert!(duration("8760h1ns").is_err());
    }

    #[test]
    fn durations_reject_garbage_negatives_and_huge_values() {
        for bad in [
            "",
            "s",
            "4x",
            "-1",
            "-1s",
            "1e400",
            "nan",
            "inf",
            "4 s",
            "1..5s",
            "99999999999",
            ".",
            "1e3",
            "+3",
            "1.5.s",
            "99999999999999999999999999999999999999999999999s",
        ] {
            assert!(duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn signals_accept_names_prefixes_case_numbers_and_realtime() {
        assert_eq!(signal("TERM"), Ok(Sig(15)));
        assert_eq!(signal("SIGTERM"), Ok(Sig(15)));
        assert_eq!(signal("term"), Ok(Sig(15)));
        assert_eq!(signal("sigusr1"), Ok(Sig(10)));
        assert_eq!(signal("15"), Ok(Sig(15)));
        assert_eq!(signal("RTMIN"), Ok(Sig(34)));
        assert_eq!(signal("RTMIN+3"), Ok(Sig(37)));
        assert_eq!(signal("SIGRTMIN+3"), Ok(Sig(37)));
        assert_eq!(signal("rtmax-1"), Ok(Sig(63)));
        assert_eq!(signal("RTMAX"), Ok(Sig(64)));
        assert_eq!(signal("64"), Ok(Sig(64)));
    }

    #[test]
    fn signals_reject_unknown_names_and_numbers_out_of_range() {
        for bad in [
            "",
            "0",
            "65",
            "-1",
            "FOO",
            "SIG",
            "RTMIN+31",
            "RTMIN-1",
            "RTMAX+1",
            "RTMINx",
            "RTMIN+2147483647",
            "RTMAX--2147483648",
            "RTMAX-2147483647",
        ] {
            assert!(signal(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn kill_stop_faults_and_chld_are_not_catchable() {
        for bad in [
            "KILL", "STOP", "9", "SEGV", "BUS", "ILL", "FPE", "TRAP", "SYS", "ABRT", "CHLD",
        ] {
            assert!(catchable_signal(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(catchable_signal("INT"), Ok(Sig::INT));
        assert_eq!(catchable_signal("RTMIN+1"), Ok(Sig(35)));
    }

    #[test]
    fn signal_names_display_like_kill_l() {
        assert_eq!(Sig(15).to_string(), "SIGTERM");
        assert_eq!(Sig(6).to_string(), "SIGABRT");
        assert_eq!(Sig(34).to_string(), "SIGRTMIN");
        assert_eq!(Sig(37).to_string(), "SIGRTMIN+3");
        assert_eq!(Sig(99).to_string(), "signal 99");
    }

    #[test]
    fn rewrites_take_a_signal_or_a_drop() {
        assert_eq!(
            rewrite("TERM:QUIT"),
            Ok(Rewrite {
                from: Sig(15),
                to: Some(Sig(3))
            })
        );
        assert_eq!(
            rewrite("winch:NONE"),
            Ok(Rewrite {
                from: Sig(28),
                to: None
            })
        );
        assert_eq!(rewrite("USR1:0").map(|r| r.to), Ok(None));
        assert_eq!(rewrite("USR1:00").map(|r| r.to), Ok(None));
        assert_eq!(rewrite("TSTP:STOP").map(|r| r.to), Ok(Some(Sig::STOP)));
        for bad in [
            "TERM",
            "KILL:TERM",
            "STOP:TERM",
            "TERM:",
            ":TERM",
            "TERM:FOO",
        ] {
            assert!(rewrite(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn remaps_take_two_statuses() {
        assert_eq!(remap("143:0"), Ok((143, 0)));
        assert_eq!(remap("0:255"), Ok((0, 255)));
        for bad in ["143", "256:0", "1:-1", "a:b", ":"] {
            assert!(remap(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn ready_addresses_take_host_port_bare_port_and_ipv6() {
        assert_eq!(ready_addr(":8086"), Ok("[::]:8086".parse().unwrap()));
        assert_eq!(
            ready_addr("127.0.0.1:9"),
            Ok("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(ready_addr("[::]:8086"), Ok("[::]:8086".parse().unwrap()));
        assert_eq!(ready_addr("localhost:80").map(|a| a.port()), Ok(80));
        for bad in [
            "",
            "8086",
            ":",
            ":99999",
            "host:",
            "[::]",
            "no.such.host.invalid:80",
            "1.2.3.4:x",
        ] {
            assert!(ready_addr(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn check_targets_take_tcp_and_http() {
        assert_eq!(
            check_target("tcp://127.0.0.1:3000"),
            Ok(CheckTarget::Tcp("127.0.0.1:3000".parse().unwrap()))
        );
        assert_eq!(
            check_target("http://127.0.0.1:3000/healthz?x=1"),
            Ok(CheckTarget::Http {
                addr: "127.0.0.1:3000".parse().unwrap(),
                host: "127.0.0.1:3000".to_string(),
                path: "/healthz?x=1".to_string(),
            })
        );
        assert_eq!(
            check_target("http://127.0.0.1:3000").map(|t| match t {
                CheckTarget::Http { path, .. } => path,
                CheckTarget::Tcp(_) => String::new(),
            }),
            Ok("/".to_string())
        );
        for bad in [
            "",
            "127.0.0.1:3000",
            "udp://1.2.3.4:5",
            "tcp://",
            "http://:80/",
            "http://1.2.3.4/",
            "http://1.2.3.4:80/a b",
        ] {
            assert!(check_target(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
