//! Pure parsers for every value the CLI and the `DRAINIT_*` env vars take: durations, signals,
//! `FROM:TO` pairs, the readiness address and the readiness-check target (and `human`, which
//! prints a duration back the way it parses). Each returns a short reason on error; clap (see
//! `cli.rs`) prefixes it with the option and the value, so the first line of a usage error
//! names both. Nothing here touches the process, except `ready_addr`, which resolves a host
//! name once, at start, as the contract asks (check targets keep their names).

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

/// `4s`, `500ms`, `1m`, `1.5s`, `2m30s`, `1h`; a bare number (`3`, `0.5`) is seconds. Plain
/// decimal digits only (no sign, no exponent: `1e3` is refused, as `1e3s` is), counted
/// exactly in integers, to the millisecond: drainit's timers have millisecond resolution, so
/// a finer duration (`0.0000001s`, `1.5ms`) is refused rather than logged as something it is
/// not. At most a year: far past any orchestrator's timeout, and safe for `Instant` arithmetic.
pub fn duration(s: &str) -> Result<Duration, String> {
    const HINT: &str = "expected a duration such as 4s, 500ms, 1.5s, 2m30s or a number of seconds";
    const NS_PER_MS: u128 = 1_000_000;
    const MAX_NS: u128 = 31_536_000 * 1_000_000_000;
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("empty duration; {HINT}"));
    }
    let is_number = |c: char| c.is_ascii_digit() || c == '.';
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let (num, tail) = rest.split_at(rest.find(|c| !is_number(c)).unwrap_or(rest.len()));
        let (unit, tail) = tail.split_at(tail.find(is_number).unwrap_or(tail.len()));
        // A bare number is seconds, but only on its own: `1s2` is not 1.000002 s.
        let ns_per_unit: u128 = match unit {
            "" if rest.len() == t.len() => 1_000_000_000,
            "ms" => NS_PER_MS,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "us" | "µs" => 1_000,
            _ => return Err(HINT.to_string()),
        };
        let ns = decimal_times(num, ns_per_unit).ok_or_else(|| HINT.to_string())?;
        total = total
            .checked_add(ns.ok_or_else(|| finer_than_a_millisecond(HINT))?)
            .filter(|n| *n <= MAX_NS)
            .ok_or_else(|| format!("out of range (at most a year); {HINT}"))?;
        rest = tail;
    }
    if !total.is_multiple_of(NS_PER_MS) {
        return Err(finer_than_a_millisecond(HINT));
    }
    let ms = u64::try_from(total / NS_PER_MS).map_err(|_| HINT.to_string())?;
    Ok(Duration::from_millis(ms))
}

fn finer_than_a_millisecond(hint: &str) -> String {
    format!("finer than a millisecond, which drainit's timers cannot tell apart; {hint}")
}

/// `num` (digits with at most one '.') times `scale`, exactly: `None` if `num` is no such
/// number; `Some(None)` if the product is not a whole number (or is beyond any duration).
fn decimal_times(num: &str, scale: u128) -> Option<Option<u128>> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    // Longer than this is finer than a nanosecond, or far beyond a year.
    if int.len() > 20 || frac.len() > 18 {
        return Some(None);
    }
    let digits = |d: &str| -> u128 { d.bytes().fold(0, |n, b| n * 10 + u128::from(b - b'0')) };
    let den = 10u128.pow(u32::try_from(frac.len()).unwrap_or(0));
    let scaled = (digits(int) * den + digits(frac)).checked_mul(scale)?;
    Some(scaled.is_multiple_of(den).then_some(scaled / den))
}

/// `4s`, `1.5s`, `500ms`, `2m30s`: a duration as a user would type it, for log lines; `duration`
/// parses it back to the same value (the `duration` fuzz target holds the two to that).
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_string(),
        1..=999 => format!("{ms}ms"),
        _ if ms < 60_000 || !ms.is_multiple_of(1000) => {
            // Rounded to the millisecond, in integers (no float formatting in the binary).
            let ms = (d.as_micros() + 500) / 1000;
            let frac = format!("{:03}", ms % 1000);
            match frac.trim_end_matches('0') {
                "" => format!("{}s", ms / 1000),
                f => format!("{}.{f}s", ms / 1000),
            }
        }
        _ => match (ms / 60_000, ms % 60_000 / 1000) {
            (m, 0) => format!("{m}m"),
            (m, s) => format!("{m}m{s}s"),
        },
    }
}

/// `TERM`, `SIGTERM`, `term`, `15`, `RTMIN`, `RTMIN+3`, `RTMAX-2`.
pub fn signal(s: &str) -> Result<Sig, String> {
    const HINT: &str = "expected a signal name (TERM, SIGTERM, term), a number 1-64 or RTMIN+N";
    let t = s.trim();
    if let Some(n) = decimal::<i32>(t) {
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
    // The offset is digits, and there must be one: `RTMIN+` and `RTMIN++1` are no signals.
    let offset = |k: &str| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit());
    if let Some(off) = name.strip_prefix("RTMIN") {
        return match off.strip_prefix('+') {
            Some(k) if offset(k) => rt(RTMIN, k, 1),
            None if off.is_empty() => rt(RTMIN, "", 1),
            _ => Err(HINT.to_string()),
        };
    }
    if let Some(off) = name.strip_prefix("RTMAX") {
        return match off.strip_prefix('-') {
            Some(k) if offset(k) => rt(RTMAX, k, -1),
            None if off.is_empty() => rt(RTMAX, "", 1),
            _ => Err(HINT.to_string()),
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
        t if decimal::<u64>(t) == Some(0) || t.eq_ignore_ascii_case("none") => None,
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
        decimal::<u8>(v.trim()).ok_or_else(|| format!("{which} must be an exit status 0-255"))
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
    decimal::<u16>(p).ok_or_else(|| format!("'{p}' is not a port number 0-65535"))
}

/// A number as users write one: decimal digits only. Rust's integer `from_str` also takes a
/// leading `+` (and `-` for signed types), so `:+3000`, `+15` and `143:+0` would pass, and
/// `tcp://1.0.0.1:+3000` would print back as a different target. `kill`, `ss` and Docker
/// take no signs either.
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
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
    if ends_in_a_number(host) {
        return Err(format!(
            "'{host}' is no IP address (write IPv4 as four decimal parts) and no host name"
        ));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{host}' resolves to no address"))
}

/// Where a check connects (contract, point 8): an IP address, used as it is, or a host name,
/// kept as a name and resolved at each check, since the address behind it may change (a
/// restarted container) and one name may stand for several (`::1` and `127.0.0.1`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

/// A check's `HOST:PORT`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Endpoint {
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(ip) => write!(f, "{ip}:{}", self.port),
            Host::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// What `--ready-check` asks about the app, and what `--probe` asks about its target.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CheckTarget {
    /// Passing while a TCP connect succeeds.
    Tcp(Endpoint),
    /// Passing while `GET path` answers 2xx. `host` is sent as the Host header.
    Http {
        endpoint: Endpoint,
        host: String,
        path: String,
    },
}

impl CheckTarget {
    pub fn endpoint(&self) -> &Endpoint {
        match self {
            CheckTarget::Tcp(endpoint) | CheckTarget::Http { endpoint, .. } => endpoint,
        }
    }
}

/// `tcp://HOST:PORT` or `http://HOST/PATH`, as the user wrote it (near enough), for messages.
impl fmt::Display for CheckTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckTarget::Tcp(endpoint) => write!(f, "tcp://{endpoint}"),
            CheckTarget::Http { host, path, .. } => write!(f, "http://{host}{path}"),
        }
    }
}

/// `tcp://HOST:PORT` or `http://HOST:PORT/PATH` (PATH defaults to `/`). HOST is an IP address or
/// a name, which is only checked for its form here: it is resolved at each check.
pub fn check_target(s: &str) -> Result<CheckTarget, String> {
    let t = s.trim();
    if let Some(rest) = t.strip_prefix("tcp://") {
        return Ok(CheckTarget::Tcp(endpoint(rest.trim_end_matches('/'))?));
    }
    if let Some(rest) = t.strip_prefix("http://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("the path must not contain spaces or control characters".to_string());
        }
        return Ok(CheckTarget::Http {
            endpoint: endpoint(authority)?,
            host: authority.to_string(),
            path: path.to_string(),
        });
    }
    Err("expected tcp://HOST:PORT or http://HOST:PORT/PATH".to_string())
}

/// `--probe`'s TARGET (contract, point 9): a `check_target`, or an ADDR as `--ready-addr` takes
/// it, which means `http://ADDR/readyz`; `:PORT` means `127.0.0.1:PORT` there.
pub fn probe_target(s: &str) -> Result<CheckTarget, String> {
    const HINT: &str = "expected tcp://HOST:PORT, http://HOST:PORT/PATH, HOST:PORT or :PORT";
    let t = s.trim();
    if t.starts_with("tcp://") || t.starts_with("http://") {
        return check_target(t);
    }
    if t.contains("://") {
        return Err(HINT.to_string());
    }
    let host = match t.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{}", port_number(port)?),
        None => t.to_string(),
    };
    Ok(CheckTarget::Http {
        endpoint: endpoint(&host).map_err(|e| format!("{e}; {HINT}"))?,
        host,
        path: "/readyz".to_string(),
    })
}

/// A check's `HOST:PORT`: an IP address (`[v6]` in brackets) or a well-formed host name, and a
/// port other than 0 (nothing can be reached there).
fn endpoint(t: &str) -> Result<Endpoint, String> {
    const HINT: &str = "expected HOST:PORT";
    let (host, port) = match t.parse::<SocketAddr>() {
        Ok(addr) => (Host::Ip(addr.ip()), addr.port()),
        Err(_) => {
            let (name, port) = t.rsplit_once(':').ok_or_else(|| HINT.to_string())?;
            if !is_host_name(name) {
                return Err(format!("'{name}' is neither an IP address nor a host name"));
            }
            (Host::Name(name.to_string()), port_number(port)?)
        }
    };
    if port == 0 {
        return Err("port 0 cannot be connected to".to_string());
    }
    Ok(Endpoint { host, port })
}

/// Dot-separated labels of letters, digits, `-` and `_` (Compose names hold underscores), as
/// getaddrinfo and /etc/hosts take them, that does not end in a number.
fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && !ends_in_a_number(name)
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Is the last label (a trailing dot aside) a number? getaddrinfo reads such a "name" with
/// inet_aton(3), which takes octal, hex and short forms: `010.0.0.1` is 8.0.0.1, `0x7f000001`
/// and `127.1` are 127.0.0.1. The WHATWG URL standard ("ends in a number") treats them as IPv4
/// too. An IPv4 address must be written as the four plain decimal parts `Ipv4Addr` parses.
fn ends_in_a_number(name: &str) -> bool {
    let last = name
        .strip_suffix('.')
        .unwrap_or(name)
        .rsplit('.')
        .next()
        .unwrap_or_default();
    match last.strip_prefix("0x").or_else(|| last.strip_prefix("0X")) {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()),
    }
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
        assert_eq!(duration(".5"), Ok(ms(500)));
        assert_eq!(duration("1.001"), Ok(ms(1001)));
        assert_eq!(duration("1000us"), Ok(ms(1)));
        assert_eq!(duration("0.1000000000000s"), Ok(ms(100)));
        assert_eq!(duration("31536000"), Ok(ms(31_536_000_000)));
    }

    #[test]
    fn durations_print_as_typed() {
        assert_eq!(human(Duration::from_millis(0)), "0s");
        assert_eq!(human(Duration::from_millis(500)), "500ms");
        assert_eq!(human(Duration::from_millis(4000)), "4s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_secs(150)), "2m30s");
        assert_eq!(human(Duration::from_secs(120)), "2m");
        assert_eq!(human(Duration::from_millis(1001)), "1.001s");
        assert_eq!(human(Duration::from_millis(61_500)), "61.5s");
        assert_eq!(
            human(Duration::from_millis(31_536_000_001)),
            "31536000.001s"
        );
    }

    #[test]
    fn durations_refuse_exponents_and_anything_finer_than_a_millisecond() {
        for bad in [
            "1e3",
            "1e3s",
            "1E3",
            "1e-3",
            "+3",
            "0.0000001s",
            "1.5ms",
            "500us",
            "1.0001",
        ] {
            assert!(duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(duration("0.0000001s").unwrap_err().contains("millisecond"));
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
            "31536000.001",
            "1s2",
            ".",
            "s5",
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
            "RTMIN+",
            "RTMAX-",
            "RTMIN++1",
            "RTMIN+-1",
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

    fn ip(addr: &str) -> Endpoint {
        let a: SocketAddr = addr.parse().unwrap();
        Endpoint {
            host: Host::Ip(a.ip()),
            port: a.port(),
        }
    }

    fn name(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: Host::Name(host.to_string()),
            port,
        }
    }

    fn http(endpoint: Endpoint, host: &str, path: &str) -> CheckTarget {
        CheckTarget::Http {
            endpoint,
            host: host.to_string(),
            path: path.to_string(),
        }
    }

    #[test]
    fn check_targets_take_tcp_and_http() {
        assert_eq!(
            check_target("tcp://127.0.0.1:3000"),
            Ok(CheckTarget::Tcp(ip("127.0.0.1:3000")))
        );
        assert_eq!(
            check_target("tcp://[::1]:3000/"),
            Ok(CheckTarget::Tcp(ip("[::1]:3000")))
        );
        assert_eq!(
            check_target("http://127.0.0.1:3000/healthz?x=1"),
            Ok(http(ip("127.0.0.1:3000"), "127.0.0.1:3000", "/healthz?x=1"))
        );
        assert_eq!(
            check_target("http://127.0.0.1:3000"),
            Ok(http(ip("127.0.0.1:3000"), "127.0.0.1:3000", "/"))
        );
        for bad in [
            "",
            "127.0.0.1:3000",
            "udp://1.2.3.4:5",
            "tcp://",
            "tcp://1.2.3.4:0",
            "http://:80/",
            "http://1.2.3.4/",
            "http://1.2.3.4:80/a b",
            "tcp://::1:80",
            "tcp://a..b:80",
            "tcp://a b:80",
            "tcp://[::1]:80x",
        ] {
            assert!(check_target(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn check_targets_keep_host_names_to_resolve_at_each_check() {
        // Not resolved here: a name that does not resolve yet is still a target (the app's
        // container may not be up), and one that does keeps all its addresses for later.
        assert_eq!(
            check_target("tcp://localhost:3000"),
            Ok(CheckTarget::Tcp(name("localhost", 3000)))
        );
        assert_eq!(
            check_target("http://app_1.no-such-host.invalid:8080/up"),
            Ok(http(
                name("app_1.no-such-host.invalid", 8080),
                "app_1.no-such-host.invalid:8080",
                "/up"
            ))
        );
    }

    #[test]
    fn probe_targets_take_urls_and_ready_addrs() {
        assert_eq!(
            probe_target("tcp://localhost:5432"),
            Ok(CheckTarget::Tcp(name("localhost", 5432)))
        );
        assert_eq!(
            probe_target("http://127.0.0.1:3000/healthz"),
            Ok(http(ip("127.0.0.1:3000"), "127.0.0.1:3000", "/healthz"))
        );
        // An ADDR as --ready-addr takes it is that server's /readyz, `:PORT` on loopback.
        assert_eq!(
            probe_target(":8086"),
            Ok(http(ip("127.0.0.1:8086"), "127.0.0.1:8086", "/readyz"))
        );
        assert_eq!(
            probe_target("[::]:8086"),
            Ok(http(ip("[::]:8086"), "[::]:8086", "/readyz"))
        );
        assert_eq!(
            probe_target("localhost:8086"),
            Ok(http(name("localhost", 8086), "localhost:8086", "/readyz"))
        );
        for bad in [
            "",
            ":",
            ":0",
            ":99999",
            "8086",
            "https://x:1/",
            "ftp://x:1",
            "node",
            "-v",
            "a b:1",
        ] {
            assert!(probe_target(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn numbers_are_plain_digits_and_numeric_names_are_no_names() {
        // Found by the address fuzz target: `:+3000` was port 3000, and `1.0.0.1` a *name*, so
        // the target printed back as a different one (an IP). Signs are refused everywhere a
        // number is typed, and a name that inet_aton(3) would read as an IPv4 is refused.
        for bad in [
            "tcp://1.0.0.1:+3000",
            "tcp://localhost:+80",
            "http://localhost:-1/",
            "tcp://010.0.0.1:80",
            "tcp://127.1:80",
            "tcp://0x7f000001:80",
            "tcp://app.0X1f:80",
            "tcp://12345:80",
        ] {
            assert!(check_target(bad).is_err(), "{bad:?} should be rejected");
        }
        for bad in [
            ":+8086",
            "+8086",
            "127.0.0.1:+80",
            "010.0.0.1:80",
            "127.1:80",
        ] {
            assert!(ready_addr(bad).is_err(), "{bad:?} should be rejected");
            assert!(probe_target(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(signal("+15").is_err());
        assert!(rewrite("+15:TERM").is_err());
        assert!(rewrite("TERM:+0").is_err());
        assert!(remap("+143:0").is_err());
        assert!(remap("143:+0").is_err());
        assert!(ready_addr("127.1.:80").is_err());
        // What --ready-addr took before still goes to the resolver: a trailing dot is a fully
        // qualified name (whether it resolves is the resolver's business).
        match ready_addr("localhost.:80") {
            Ok(addr) => assert_eq!(addr.port(), 80),
            Err(e) => assert!(e.starts_with("cannot resolve 'localhost.'"), "{e}"),
        }
        // Names that merely hold digits are names.
        assert_eq!(
            check_target("tcp://1password.example:80"),
            Ok(CheckTarget::Tcp(name("1password.example", 80)))
        );
        assert_eq!(
            check_target("tcp://app-0x1:80"),
            Ok(CheckTarget::Tcp(name("app-0x1", 80)))
        );
    }

    #[test]
    fn check_targets_display_as_written() {
        for t in [
            "tcp://127.0.0.1:3000",
            "tcp://[::1]:3000",
            "tcp://localhost:3000",
            "http://localhost:3000/up?x",
        ] {
            assert_eq!(check_target(t).unwrap().to_string(), t);
        }
        assert_eq!(
            probe_target(":8086").unwrap().to_string(),
            "http://127.0.0.1:8086/readyz"
        );
    }
}
