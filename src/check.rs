//! The readiness check (contract, point 8) and the health-check client (point 9) share this
//! code. One check is a non-blocking TCP connect, or an HTTP GET read up to its status line, to
//! the addresses of the target until one connects (Docker's /etc/hosts has `::1 localhost`
//! beside `127.0.0.1 localhost`, and an app may listen on only one of them), within a deadline.
//! Nothing in a check waits: a lookup, a connect in progress, a request half sent and a status
//! line half read are each resumed when poll says so.
//!
//! Each address gets `ATTEMPT_SLICE` of the deadline to itself: a connect that fails outright
//! moves on at once, one still pending after its slice stays open while the next address gets
//! its turn (Happy-Eyeballs-like), so an address that silently drops the SYN does not hide a
//! live one after it.
//!
//! `Checker` runs checks for `--ready-check` from the event loop's poll: every 100 ms until the
//! first one passes (so `/readyz` follows the app listening within about 0.1 s), then about once
//! a second, each with a 1 s timeout; `passing` is the result of the latest finished check.
//! `check_now` runs one check with a blocking poll loop, for `--probe`.
//!
//! An IP address is used as it is: no lookup. A host name is looked up at each check, off the
//! loop, by a short-lived helper process (lookup.rs). A check that times out during its lookup
//! leaves the helper to finish on its own; until its pipe reports EOF, no other lookup starts
//! (a due check fails at once, "still running"), so a silent nameserver cannot pile helpers up.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{SockaddrStorage, connect, getsockopt, sockopt};

use crate::logging::Throttle;
use crate::lookup::Lookup;
use crate::parse::{CheckTarget, Endpoint, Host, human};
use crate::ready::tcp_socket;

/// From the start of one check to the start of the next, until one has passed: the app is
/// starting, and `/readyz` should follow it listening within about this long.
const FIRST_PASS_INTERVAL: Duration = Duration::from_millis(100);
/// From the start of one check to the start of the next, once one has passed.
const INTERVAL: Duration = Duration::from_secs(1);
/// A check not finished this long after its start fails.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How long a connect has to itself before the next address gets its turn too.
const ATTEMPT_SLICE: Duration = Duration::from_millis(250);
/// An HTTP answer whose status line does not end within this many bytes fails.
const MAX_STATUS_LINE: usize = 1024;
/// How often the same kind of log line may appear; repeats in between are counted.
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// `--ready-check`: the check in progress, when the next is due, and the latest result.
pub struct Checker {
    target: CheckTarget,
    check: Option<Check>,
    /// The lookup of a check that timed out, still running: read to EOF, then gone.
    stale: Option<Lookup>,
    /// When the first check is due: at once.
    created: Instant,
    /// When the latest check started; the next is due an interval after it.
    last_start: Option<Instant>,
    passing: bool,
    /// Has any check passed yet? Failures before the first pass are the app starting up.
    ever_passed: bool,
    /// Has a name that does not resolve been warned about (once, before the first pass)?
    warned_unresolved: bool,
    /// Changes of the result since the last line about one.
    unlogged_changes: u64,
    changes_logged: Throttle,
}

impl Checker {
    /// The first check starts at the first `on_poll`; nothing is looked up before (main runs
    /// this before the spawn). A host name that does not resolve is kept (the app's container
    /// may not be up yet) with a warning: `/readyz` stays 503 until it resolves and answers.
    pub fn new(target: CheckTarget) -> Checker {
        Checker {
            target,
            check: None,
            stale: None,
            created: Instant::now(),
            last_start: None,
            passing: false,
            ever_passed: false,
            warned_unresolved: false,
            unlogged_changes: 0,
            changes_logged: Throttle::new(LOG_WINDOW),
        }
    }

    /// The descriptors of the check in progress, with what each waits for, then the pipe of a
    /// stale lookup.
    pub fn poll_fds<'a>(&'a self, out: &mut Vec<PollFd<'a>>) {
        if let Some(c) = &self.check {
            c.poll_fds(out);
        }
        if let Some(l) = &self.stale {
            out.push(l.poll_fd());
        }
    }

    /// Act on poll's report for the descriptors `poll_fds` pushed, and start the next check
    /// when it is due. Never blocks.
    pub fn on_poll(&mut self, revents: &[PollFlags], now: Instant) {
        let mine = self.check.as_ref().map_or(0, Check::fd_count);
        let (for_check, rest) = revents.split_at_checked(mine).unwrap_or((revents, &[]));
        if let Some(stale) = &mut self.stale {
            if rest.first().is_some_and(|ev| !ev.is_empty()) && stale.read().is_some() {
                self.stale = None;
            }
        }
        if let Some(check) = &mut self.check {
            let outcome = check.step(for_check, now);
            if outcome != Outcome::Pending {
                let resolving = check.resolving();
                if let Some(c) = self.check.take() {
                    self.stale = c.into_lookup();
                }
                self.finish(outcome, resolving, now);
            }
        }
        if self.check.is_none() && now >= self.next_start() {
            self.last_start = Some(now);
            if let Some(stale) = &self.stale {
                let why = format!(
                    "the lookup of '{}' of an earlier check is still running",
                    stale.name()
                );
                self.finish(Outcome::Fail(why), true, now);
                return;
            }
            let (check, outcome) = Check::start(&self.target, now, now + TIMEOUT);
            if outcome != Outcome::Pending {
                self.finish(outcome, false, now);
            }
            self.check = check;
        }
    }

    /// The check's next timer (its timeout, an address's slice) while one runs, else the start
    /// of the next.
    pub fn next_deadline(&self) -> Option<Instant> {
        Some(
            self.check
                .as_ref()
                .map_or(self.next_start(), Check::next_wakeup),
        )
    }

    /// Did the latest finished check pass? `false` until the first one does.
    pub fn passing(&self) -> bool {
        self.passing
    }

    /// When the next check is due: at once at first, then 100 ms after the latest one started
    /// until one has passed, and a second after it from then on.
    fn next_start(&self) -> Instant {
        let interval = if self.ever_passed {
            INTERVAL
        } else {
            FIRST_PASS_INTERVAL
        };
        self.last_start.map_or(self.created, |t| t + interval)
    }

    /// Record a finished check, and log when the result changes: the first pass at info,
    /// failures before it at debug (the app is starting; but a name that does not resolve is
    /// warned about once), each change after it at info, at most one line per `LOG_WINDOW` (a
    /// change held back is logged with the next check after the window, with the state as it
    /// is then), so a flapping app cannot flood the log.
    fn finish(&mut self, outcome: Outcome, unresolved: bool, now: Instant) {
        let passed = outcome == Outcome::Pass;
        let changed = passed != self.passing;
        self.passing = passed;
        let target = &self.target;
        if !self.ever_passed {
            match outcome {
                Outcome::Pass => {
                    self.ever_passed = true;
                    log::info!("ready check {target} passes: /readyz answers 200");
                }
                Outcome::Fail(why) if unresolved && !self.warned_unresolved => {
                    self.warned_unresolved = true;
                    log::warn!(
                        "ready check {target}: {why}; /readyz answers 503 until it resolves"
                    );
                }
                Outcome::Fail(why) => log::debug!("ready check {target}: not passing yet: {why}"),
                Outcome::Pending => {}
            }
            return;
        }
        self.unlogged_changes += u64::from(changed);
        if self.unlogged_changes == 0 || self.changes_logged.hit(now).is_none() {
            return;
        }
        let also = match std::mem::take(&mut self.unlogged_changes) {
            1 => String::new(),
            n => format!(" ({n} changes since the last line)"),
        };
        match outcome {
            Outcome::Fail(why) => {
                log::info!("ready check {target} fails: {why}; /readyz answers 503{also}")
            }
            _ => log::info!("ready check {target} passes again: /readyz answers 200{also}"),
        }
    }
}

/// One check of `target`, run to its end (at most `timeout`, whatever the resolver does) by a
/// blocking poll loop: the health-check client, `--probe`. `Err` says why the target is not
/// healthy.
pub fn check_now(target: &CheckTarget, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    let (mut check, mut outcome) = Check::start(target, start, start + timeout);
    while let Some(c) = check.as_mut().filter(|_| outcome == Outcome::Pending) {
        let left = c.next_wakeup().saturating_duration_since(Instant::now());
        // Rounded up, so the loop does not spin through the last millisecond.
        let wait = PollTimeout::try_from(left.saturating_add(Duration::from_micros(999)))
            .unwrap_or(PollTimeout::MAX);
        let mut fds = Vec::new();
        c.poll_fds(&mut fds);
        let revents: Vec<PollFlags> = match poll(&mut fds, wait) {
            Ok(_) | Err(Errno::EINTR) => fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect(),
            Err(e) => return Err(format!("poll: {e}")),
        };
        drop(fds);
        outcome = c.step(&revents, Instant::now());
    }
    match outcome {
        Outcome::Pass => Ok(()),
        Outcome::Fail(why) => Err(why),
        Outcome::Pending => Err(no_answer(timeout)),
    }
}

fn no_answer(timeout: Duration) -> String {
    format!("no answer within {}", human(timeout))
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Outcome {
    Pending,
    Pass,
    Fail(String),
}

/// The addresses an IP `endpoint` stands for, in the order to try them: itself, but the
/// unspecified one (`0.0.0.0`, `::`: "all interfaces" in a listen address) means this machine,
/// so its loopback. `None` for a name: that takes a lookup.
fn ip_addresses(endpoint: &Endpoint) -> Option<Vec<SocketAddr>> {
    let port = endpoint.port;
    Some(match &endpoint.host {
        Host::Ip(IpAddr::V4(ip)) if ip.is_unspecified() => {
            vec![(Ipv4Addr::LOCALHOST, port).into()]
        }
        // An IPv6 wildcard listener may have fallen back to IPv4 (ready.rs): try both.
        Host::Ip(IpAddr::V6(ip)) if ip.is_unspecified() => vec![
            (Ipv6Addr::LOCALHOST, port).into(),
            (Ipv4Addr::LOCALHOST, port).into(),
        ],
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(_) => return None,
    })
}

/// `addrs` with each address once: getaddrinfo may list one twice (once per /etc/hosts line).
fn distinct(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut seen = Vec::with_capacity(addrs.len());
    addrs.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
    addrs
}

/// One check in progress.
struct Check {
    stage: Stage,
    /// The HTTP request, or `None` for a TCP check.
    request: Option<Vec<u8>>,
    started: Instant,
    deadline: Instant,
}

enum Stage {
    /// The helper is looking the name up.
    Resolving(Lookup),
    /// Connects in progress, one address after the other.
    Connecting(Attempts),
    /// Connected: writing the request (`request[sent..]` is left), then reading until the
    /// status line is complete.
    Talking {
        stream: TcpStream,
        sent: usize,
        got: Vec<u8>,
    },
}

/// The connects of one check: those in progress, oldest first, and the addresses not tried.
struct Attempts {
    open: Vec<(SocketAddr, TcpStream)>,
    rest: std::vec::IntoIter<SocketAddr>,
    /// Each address that did not connect, and why.
    failures: Vec<(SocketAddr, String)>,
    /// When the next address gets its turn even if those open are still pending.
    next_turn: Instant,
}

impl Check {
    /// Start a check: the lookup of a name, or connecting to an IP address. Loopback may connect
    /// (or refuse) at once; then the outcome may already be known.
    fn start(target: &CheckTarget, now: Instant, deadline: Instant) -> (Option<Check>, Outcome) {
        let request = match target {
            CheckTarget::Tcp(_) => None,
            CheckTarget::Http { host, path, .. } => Some(
                format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .into_bytes(),
            ),
        };
        let endpoint = target.endpoint();
        let stage = match (ip_addresses(endpoint), &endpoint.host) {
            (Some(addrs), _) => Stage::Connecting(Attempts::new(addrs, now)),
            (None, Host::Name(name)) => match Lookup::start(name, endpoint.port) {
                Ok(lookup) => Stage::Resolving(lookup),
                Err(why) => return (None, Outcome::Fail(why)),
            },
            (None, Host::Ip(_)) => return (None, Outcome::Fail("no address".to_string())),
        };
        let mut check = Check {
            stage,
            request,
            started: now,
            deadline,
        };
        let outcome = check.step(&[], now);
        ((outcome == Outcome::Pending).then_some(check), outcome)
    }

    fn resolving(&self) -> bool {
        matches!(self.stage, Stage::Resolving(_))
    }

    /// The lookup of a check that ended during it, if its helper is still running.
    fn into_lookup(self) -> Option<Lookup> {
        match self.stage {
            Stage::Resolving(lookup) if lookup.running() => Some(lookup),
            _ => None,
        }
    }

    fn fd_count(&self) -> usize {
        match &self.stage {
            Stage::Connecting(a) => a.open.len(),
            _ => 1,
        }
    }

    fn poll_fds<'a>(&'a self, out: &mut Vec<PollFd<'a>>) {
        match &self.stage {
            Stage::Resolving(lookup) => out.push(lookup.poll_fd()),
            Stage::Connecting(a) => out.extend(
                a.open
                    .iter()
                    .map(|(_, s)| PollFd::new(s.as_fd(), PollFlags::POLLOUT)),
            ),
            Stage::Talking { stream, sent, .. } => {
                let sending = self.request.as_ref().is_some_and(|r| *sent < r.len());
                let interest = if sending {
                    PollFlags::POLLOUT
                } else {
                    PollFlags::POLLIN
                };
                out.push(PollFd::new(stream.as_fd(), interest));
            }
        }
    }

    /// When the check needs a turn even if poll reports nothing: its deadline, or the next
    /// address's turn.
    fn next_wakeup(&self) -> Instant {
        match &self.stage {
            Stage::Connecting(a) if a.rest.len() > 0 => a.next_turn.min(self.deadline),
            _ => self.deadline,
        }
    }

    /// Act on poll's report for the descriptors `poll_fds` pushed (none: only the timers),
    /// as of `now`.
    fn step(&mut self, revents: &[PollFlags], now: Instant) -> Outcome {
        let outcome = self.advance(revents, now);
        if outcome != Outcome::Pending || now < self.deadline {
            return outcome;
        }
        let waited = self.deadline.saturating_duration_since(self.started);
        match &self.stage {
            Stage::Resolving(lookup) => Outcome::Fail(format!(
                "cannot resolve '{}': the resolver did not answer within {}",
                lookup.name(),
                human(waited)
            )),
            _ => Outcome::Fail(no_answer(waited)),
        }
    }

    fn advance(&mut self, revents: &[PollFlags], now: Instant) -> Outcome {
        let ev = revents.first().copied().unwrap_or(PollFlags::empty());
        match &mut self.stage {
            Stage::Resolving(lookup) => {
                if ev.is_empty() {
                    return Outcome::Pending;
                }
                match lookup.read() {
                    None => Outcome::Pending,
                    Some(Err(why)) => Outcome::Fail(why),
                    Some(Ok(addrs)) => {
                        self.stage = Stage::Connecting(Attempts::new(distinct(addrs), now));
                        self.advance(&[], now)
                    }
                }
            }
            Stage::Connecting(attempts) => match attempts.advance(now) {
                Err(why) => Outcome::Fail(why),
                Ok(None) => Outcome::Pending,
                Ok(Some(_)) if self.request.is_none() => Outcome::Pass,
                Ok(Some(stream)) => {
                    self.stage = Stage::Talking {
                        stream,
                        sent: 0,
                        got: Vec::new(),
                    };
                    self.talk()
                }
            },
            Stage::Talking { .. } => self.talk(),
        }
    }

    /// Send the request, then read the status line, as far as the socket lets us now (an
    /// error poll reported comes back from the read).
    fn talk(&mut self) -> Outcome {
        let (Stage::Talking { stream, sent, got }, Some(request)) =
            (&mut self.stage, &self.request)
        else {
            return Outcome::Pending;
        };
        while *sent < request.len() {
            match stream.write(request.get(*sent..).unwrap_or_default()) {
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Pending,
                Err(e) => return Outcome::Fail(format!("sending the request: {e}")),
            }
        }
        let mut buf = [0u8; 512];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => {
                    return status_outcome(got)
                        .unwrap_or_else(|| Outcome::Fail("closed before answering".to_string()));
                }
                Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Pending,
                Err(e) => return Outcome::Fail(format!("reading the answer: {e}")),
            }
            if let Some(outcome) = status_outcome(got) {
                return outcome;
            }
            if got.len() >= MAX_STATUS_LINE {
                return Outcome::Fail("no HTTP status line".to_string());
            }
        }
    }
}

impl Attempts {
    fn new(addrs: Vec<SocketAddr>, now: Instant) -> Attempts {
        Attempts {
            open: Vec::new(),
            rest: addrs.into_iter(),
            failures: Vec::new(),
            next_turn: now,
        }
    }

    /// The stream that connected, if one has; `Err` once every address failed. A connect that
    /// fails (a refusal on `::1` says nothing about `127.0.0.1`) gives its turn to the next
    /// address at once, one still pending after `ATTEMPT_SLICE` shares it with the next.
    fn advance(&mut self, now: Instant) -> Result<Option<TcpStream>, String> {
        loop {
            let mut i = 0;
            while let Some((addr, stream)) = self.open.get(i) {
                match connected(stream) {
                    Ok(true) => {
                        let (_, stream) = self.open.swap_remove(i);
                        // The others are dropped (closed) with `self`.
                        self.open.clear();
                        return Ok(Some(stream));
                    }
                    Ok(false) => i += 1,
                    Err(why) => {
                        self.failures.push((*addr, why));
                        self.open.remove(i);
                        self.next_turn = now;
                    }
                }
            }
            if now < self.next_turn || self.rest.len() == 0 {
                break;
            }
            match open_next(&mut self.rest, &mut self.failures) {
                Some(attempt) => {
                    self.open.push(attempt);
                    self.next_turn = now + ATTEMPT_SLICE;
                }
                None => break,
            }
        }
        if self.open.is_empty() {
            return Err(refused(&self.failures));
        }
        Ok(None)
    }
}

/// Has the connect finished? SO_ERROR says how; poll's POLLOUT says when.
fn connected(stream: &TcpStream) -> Result<bool, String> {
    match getsockopt(stream, sockopt::SocketError) {
        Ok(0) => {}
        Ok(err) => return Err(Errno::from_raw(err).desc().to_string()),
        Err(e) => return Err(e.desc().to_string()),
    }
    // No error yet: connected, or still connecting (then there is no peer).
    Ok(stream.peer_addr().is_ok())
}

/// The outcome, once `got` holds a whole status line: 2xx passes.
fn status_outcome(got: &[u8]) -> Option<Outcome> {
    let end = got.iter().position(|b| *b == b'\n')?;
    let line = String::from_utf8_lossy(got.get(..end).unwrap_or_default());
    Some(match status_code(&line) {
        Some(code) if (200..300).contains(&code) => Outcome::Pass,
        Some(code) => Outcome::Fail(format!("answered {code}")),
        None => Outcome::Fail("no HTTP status line".to_string()),
    })
}

/// `HTTP/1.1 200 OK` → 200.
fn status_code(line: &str) -> Option<u16> {
    let mut words = line.trim_end().split(' ');
    let version = words.next()?;
    let code = words.next()?;
    if !version.starts_with("HTTP/") || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    code.parse().ok()
}

/// Start connecting to the first of `rest` that takes a connect, recording why the others
/// did not (no IPv6 in this network namespace, a refusal on loopback).
fn open_next(
    rest: &mut impl Iterator<Item = SocketAddr>,
    failures: &mut Vec<(SocketAddr, String)>,
) -> Option<(SocketAddr, TcpStream)> {
    for addr in rest {
        match open(addr) {
            Ok(stream) => return Some((addr, stream)),
            Err(e) => failures.push((addr, e.desc().to_string())),
        }
    }
    None
}

/// Why no address connected: the reason alone for one address, `ADDR: why; ...` for several.
fn refused(failures: &[(SocketAddr, String)]) -> String {
    match failures {
        [(_, why)] => why.clone(),
        _ => failures
            .iter()
            .map(|(addr, why)| format!("{addr}: {why}"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// A non-blocking, close-on-exec socket with a connect to `addr` started (or, on loopback,
/// maybe already done).
fn open(addr: SocketAddr) -> Result<TcpStream, Errno> {
    let fd = tcp_socket(addr)?;
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{PollTimeout, poll};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;

    /// Run one check to its end on a virtual clock `t` (so the 1 s cadence costs no time);
    /// the sockets themselves are real. Returns `passing()` after it.
    fn check_once(c: &mut Checker, t: Instant) -> bool {
        c.on_poll(&[], t);
        for _ in 0..500 {
            if c.check.is_none() {
                return c.passing();
            }
            let mut fds = Vec::new();
            c.poll_fds(&mut fds);
            let _ = poll(&mut fds, PollTimeout::from(20u8));
            let revents: Vec<PollFlags> = fds.iter().map(|f| f.revents().unwrap()).collect();
            drop(fds);
            c.on_poll(&revents, t);
        }
        panic!("the check never finished");
    }

    fn closed_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    /// A one-shot HTTP app: answers each of `statuses` to one connection in turn and sends
    /// the request it read back on the channel.
    fn http_app(statuses: &'static [&'static str]) -> (SocketAddr, mpsc::Receiver<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for status in statuses {
                let (mut s, _) = l.accept().unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    req.extend_from_slice(&buf[..n]);
                }
                let _ = s.write_all(format!("HTTP/1.0 {status}\r\n\r\nbody").as_bytes());
                let _ = tx.send(String::from_utf8(req).unwrap());
            }
        });
        (addr, rx)
    }

    fn endpoint(addr: SocketAddr) -> Endpoint {
        Endpoint {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }

    fn tcp(addr: SocketAddr) -> CheckTarget {
        CheckTarget::Tcp(endpoint(addr))
    }

    fn http_target(addr: SocketAddr, path: &str) -> CheckTarget {
        CheckTarget::Http {
            endpoint: endpoint(addr),
            host: addr.to_string(),
            path: path.to_string(),
        }
    }

    #[test]
    fn nothing_passes_before_the_first_check() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = Checker::new(tcp(l.local_addr().unwrap()));
        assert!(!c.passing());
        // The first check is due at once.
        assert!(c.next_deadline().unwrap() <= Instant::now());
    }

    #[test]
    fn a_tcp_check_follows_the_app_listening_both_ways() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut c = Checker::new(tcp(addr));
        let t = Instant::now();
        assert!(check_once(&mut c, t));
        drop(l);
        assert!(!check_once(&mut c, t + INTERVAL));
        let _l = TcpListener::bind(addr).unwrap();
        assert!(check_once(&mut c, t + 2 * INTERVAL));
    }

    #[test]
    fn a_tcp_check_of_a_closed_port_fails() {
        let mut c = Checker::new(tcp(closed_port()));
        assert!(!check_once(&mut c, Instant::now()));
    }

    #[test]
    fn checks_start_about_once_a_second() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = Checker::new(tcp(l.local_addr().unwrap()));
        let t = Instant::now();
        assert!(check_once(&mut c, t));
        assert_eq!(c.next_deadline(), Some(t + INTERVAL));
        // Not due yet: nothing starts.
        c.on_poll(&[], t + INTERVAL / 2);
        assert!(c.check.is_none());
    }

    #[test]
    fn an_http_check_sends_a_get_and_passes_on_2xx_only() {
        let (addr, requests) = http_app(&["200 OK", "204 No Content", "503 Unavailable", "301 X"]);
        let mut c = Checker::new(http_target(addr, "/healthz?x=1"));
        let t = Instant::now();
        assert!(check_once(&mut c, t));
        assert_eq!(
            requests.recv().unwrap(),
            format!("GET /healthz?x=1 HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        );
        assert!(check_once(&mut c, t + INTERVAL));
        assert!(!check_once(&mut c, t + 2 * INTERVAL));
        assert!(!check_once(&mut c, t + 3 * INTERVAL));
    }

    #[test]
    fn an_http_check_of_an_app_that_never_answers_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = Checker::new(http_target(l.local_addr().unwrap(), "/"));
        let t = Instant::now();
        c.on_poll(&[], t);
        // The connect and the request go through (the kernel accepts for the app) ...
        for _ in 0..50 {
            let mut fds = Vec::new();
            c.poll_fds(&mut fds);
            let _ = poll(&mut fds, PollTimeout::from(10u8));
            let revents: Vec<PollFlags> = fds.iter().map(|f| f.revents().unwrap()).collect();
            drop(fds);
            c.on_poll(&revents, t);
        }
        assert!(c.check.is_some(), "still waiting for an answer");
        assert_eq!(c.next_deadline(), Some(t + TIMEOUT));
        // ... and 1 s on, the check has failed, and the next one (due too) has started.
        c.on_poll(&[PollFlags::empty()], t + TIMEOUT);
        assert!(!c.passing());
        assert_eq!(c.next_deadline(), Some(t + TIMEOUT + TIMEOUT));
    }

    #[test]
    fn an_http_check_fails_on_an_app_that_is_not_http() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let _ = s.write_all(b"SSH-2.0-OpenSSH\r\n");
        });
        let mut c = Checker::new(http_target(addr, "/"));
        assert!(!check_once(&mut c, Instant::now()));
    }

    #[test]
    fn checks_start_every_100ms_until_the_first_pass_then_once_a_second() {
        let addr = closed_port();
        let mut c = Checker::new(tcp(addr));
        let t = Instant::now();
        let ms = Duration::from_millis;
        assert!(!check_once(&mut c, t));
        assert_eq!(c.next_deadline(), Some(t + ms(100)));
        c.on_poll(&[], t + ms(99));
        assert!(c.check.is_none(), "not due yet");
        assert!(!check_once(&mut c, t + ms(100)));
        assert_eq!(c.next_deadline(), Some(t + ms(200)));
        // The app listens: the next check, 100 ms on, passes ...
        let l = TcpListener::bind(addr).unwrap();
        assert!(check_once(&mut c, t + ms(200)));
        // ... and from then on checks are a second apart, failing ones too.
        assert_eq!(c.next_deadline(), Some(t + ms(1200)));
        drop(l);
        assert!(!check_once(&mut c, t + ms(1200)));
        assert_eq!(c.next_deadline(), Some(t + ms(2200)));
    }

    #[test]
    fn every_address_is_tried_until_one_connects() {
        // `[::]` stands for this machine's loopback, `::1` first and then `127.0.0.1`, like a
        // name that /etc/hosts lists twice; the app listens on 127.0.0.1 alone.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let both = CheckTarget::Tcp(Endpoint {
            host: Host::Ip(Ipv6Addr::UNSPECIFIED.into()),
            port,
        });
        let mut c = Checker::new(both.clone());
        assert!(check_once(&mut c, Instant::now()));
        assert_eq!(check_now(&both, Duration::from_secs(2)), Ok(()));
        // With nobody on either, the failure names each address and why.
        drop(l);
        let why = check_now(&both, Duration::from_secs(2)).unwrap_err();
        assert!(why.contains(&format!("[::1]:{port}: ")), "{why}");
        assert!(
            why.contains(&format!("127.0.0.1:{port}: Connection refused")),
            "{why}"
        );
    }

    #[test]
    fn each_address_is_tried_once() {
        let a: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let b: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(distinct(vec![b, a, b, a]), vec![b, a]);
    }

    #[test]
    fn an_address_that_drops_the_syn_does_not_hide_the_next_one() {
        // `[::]` is `::1`, then `127.0.0.1`. On `::1` a listener whose accept queue is full:
        // the kernel drops further SYNs, as a firewall or a dead host does; on 127.0.0.1 the app.
        let Ok(dead) = TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let port = dead.local_addr().unwrap().port();
        nix::sys::socket::listen(&dead, nix::sys::socket::Backlog::new(0).unwrap()).unwrap();
        let Ok(_app) = TcpListener::bind(("127.0.0.1", port)) else {
            eprintln!("skipped: port {port} taken on 127.0.0.1");
            return;
        };
        let fill: Vec<_> = (0..3)
            .map(|_| {
                TcpStream::connect_timeout(&dead.local_addr().unwrap(), Duration::from_millis(100))
            })
            .collect();
        let silent =
            TcpStream::connect_timeout(&dead.local_addr().unwrap(), Duration::from_millis(200));
        assert!(silent.is_err(), "the premise: ::1 drops the SYN");
        let both = CheckTarget::Tcp(Endpoint {
            host: Host::Ip(Ipv6Addr::UNSPECIFIED.into()),
            port,
        });
        assert_eq!(check_now(&both, TIMEOUT), Ok(()));
        drop(fill);
    }

    #[test]
    fn check_now_answers_healthy_refused_and_http_statuses() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert_eq!(check_now(&tcp(addr), Duration::from_secs(2)), Ok(()));
        drop(l);
        assert_eq!(
            check_now(&tcp(addr), Duration::from_secs(2)),
            Err("Connection refused".to_string())
        );
        let (addr, _requests) = http_app(&["204 No Content", "503 Service Unavailable"]);
        let target = http_target(addr, "/readyz");
        assert_eq!(check_now(&target, Duration::from_secs(2)), Ok(()));
        assert_eq!(
            check_now(&target, Duration::from_secs(2)),
            Err("answered 503".to_string())
        );
    }

    #[test]
    fn check_now_gives_up_at_its_deadline_on_a_silent_or_trickling_app() {
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let trickling = TcpListener::bind("127.0.0.1:0").unwrap();
        let trickle_addr = trickling.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = trickling.accept().unwrap();
            // Bytes keep coming, but never a whole status line.
            while s.write_all(b"H").is_ok() {
                thread::sleep(Duration::from_millis(20));
            }
        });
        let timeout = Duration::from_millis(300);
        for addr in [silent.local_addr().unwrap(), trickle_addr] {
            let start = Instant::now();
            let why = check_now(&http_target(addr, "/"), timeout).unwrap_err();
            assert_eq!(why, "no answer within 300ms");
            assert!(start.elapsed() >= timeout);
        }
    }

    #[test]
    fn status_lines_are_read_strictly() {
        assert_eq!(status_code("HTTP/1.1 200 OK\r"), Some(200));
        assert_eq!(status_code("HTTP/1.0 503"), Some(503));
        assert_eq!(status_code("HTTP/1.1 20 OK"), None);
        assert_eq!(status_code("SSH-2.0 200"), None);
        assert_eq!(status_code(""), None);
        assert_eq!(status_outcome(b"HTTP/1.1 200 OK"), None);
        assert_eq!(status_outcome(b"HTTP/1.1 299 X\r\n"), Some(Outcome::Pass));
        assert_eq!(
            status_outcome(b"HTTP/1.1 300 X\r\n"),
            Some(Outcome::Fail("answered 300".to_string()))
        );
    }
}
