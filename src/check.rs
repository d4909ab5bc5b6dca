//! The readiness check (contract, point 8) and the health-check client (point 9) share this
//! code. One check is a non-blocking TCP connect, or an HTTP GET read up to its status line, to
//! each address of the target in turn until one connects (Docker's /etc/hosts has `::1
//! localhost` beside `127.0.0.1 localhost`, and an app may listen on only one of them), within
//! a deadline. Nothing in a check waits: a connect in progress, a request half sent and a status
//! line half read are each resumed when poll says so, and at most one socket is open at a time.
//!
//! `Checker` runs checks for `--ready-check` from the event loop's poll: every 100 ms until the
//! first one passes (so `/readyz` follows the app listening within about 0.1 s), then about once
//! a second, each with a 1 s timeout; `passing` is the result of the latest finished check.
//! `check_now` runs one check with a blocking poll loop, for `--probe`.
//!
//! An IP address is used as it is: no resolution, nothing blocks. A host name is resolved at each
//! check with the system resolver (getaddrinfo: /etc/hosts, then DNS), which blocks while it
//! looks; for a name in /etc/hosts (`localhost`, a Compose service's own name) that is a file
//! read, but a DNS lookup holds the caller for as long as the resolver takes.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{SockaddrStorage, connect, getsockopt, sockopt};

use crate::logging::{Throttle, human};
use crate::parse::{CheckTarget, Endpoint, Host};
use crate::ready::tcp_socket;

/// From the start of one check to the start of the next, until one has passed: the app is
/// starting, and `/readyz` should follow it listening within about this long.
const FIRST_PASS_INTERVAL: Duration = Duration::from_millis(100);
/// From the start of one check to the start of the next, once one has passed.
const INTERVAL: Duration = Duration::from_secs(1);
/// A check not finished this long after its start fails.
const TIMEOUT: Duration = Duration::from_secs(1);
/// An HTTP answer whose status line does not end within this many bytes fails.
const MAX_STATUS_LINE: usize = 1024;
/// How often the same kind of log line may appear; repeats in between are counted.
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// `--ready-check`: the check in progress, when the next is due, and the latest result.
pub struct Checker {
    target: CheckTarget,
    check: Option<Check>,
    /// When the first check is due: at once.
    created: Instant,
    /// When the latest check started; the next is due an interval after it.
    last_start: Option<Instant>,
    passing: bool,
    /// Has any check passed yet? Failures before the first pass are the app starting up.
    ever_passed: bool,
    /// Changes of the result since the last line about one.
    unlogged_changes: u64,
    changes_logged: Throttle,
}

impl Checker {
    /// The first check starts at the first `on_poll`. A host name that does not resolve now is
    /// kept (the app's container may not be up yet) with a warning: `/readyz` stays 503 until
    /// it resolves and answers.
    pub fn new(target: CheckTarget) -> Checker {
        if let Err(why) = addresses(target.endpoint()) {
            log::warn!("ready check {target}: {why}; /readyz answers 503 until it resolves");
        }
        Checker {
            target,
            check: None,
            created: Instant::now(),
            last_start: None,
            passing: false,
            ever_passed: false,
            unlogged_changes: 0,
            changes_logged: Throttle::new(LOG_WINDOW),
        }
    }

    /// The socket of the check in progress, if any, with what it waits for.
    pub fn poll_fds<'a>(&'a self, out: &mut Vec<PollFd<'a>>) {
        if let Some(c) = &self.check {
            out.push(c.poll_fd());
        }
    }

    /// Act on poll's report for the descriptor `poll_fds` pushed (if it pushed one), and start
    /// the next check when it is due. Never blocks, except to resolve a host name.
    pub fn on_poll(&mut self, revents: &[PollFlags], now: Instant) {
        if let Some(check) = &mut self.check {
            let ev = revents.first().copied().unwrap_or(PollFlags::empty());
            let mut outcome = if ev.is_empty() {
                Outcome::Pending
            } else {
                check.advance(ev)
            };
            if outcome == Outcome::Pending && now >= check.deadline {
                outcome = Outcome::Fail(no_answer(TIMEOUT));
            }
            if outcome != Outcome::Pending {
                self.check = None;
                self.finish(outcome, now);
            }
        }
        if self.check.is_none() && now >= self.next_start() {
            self.last_start = Some(now);
            let (check, outcome) = Check::start(&self.target, now + TIMEOUT);
            self.check = check;
            if outcome != Outcome::Pending {
                self.finish(outcome, now);
            }
        }
    }

    /// The check's timeout while one runs, else the start of the next.
    pub fn next_deadline(&self) -> Option<Instant> {
        Some(
            self.check
                .as_ref()
                .map_or(self.next_start(), |c| c.deadline),
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
    /// failures before it at debug (the app is starting), each change after it at info, at
    /// most one line per `LOG_WINDOW` (a change held back is logged with the next check after
    /// the window, with the state as it is then), so a flapping app cannot flood the log.
    fn finish(&mut self, outcome: Outcome, now: Instant) {
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

/// One check of `target`, run to its end (at most `timeout`) by a blocking poll loop: the
/// health-check client, `--probe`. `Err` says why the target is not healthy.
pub fn check_now(target: &CheckTarget, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let (mut check, mut outcome) = Check::start(target, deadline);
    while let Some(c) = check.as_mut().filter(|_| outcome == Outcome::Pending) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            outcome = Outcome::Fail(no_answer(timeout));
            break;
        }
        // Rounded up, so the loop does not spin through the last millisecond.
        let wait = PollTimeout::try_from(left.saturating_add(Duration::from_micros(999)))
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [c.poll_fd()];
        let ev = match poll(&mut fds, wait) {
            Ok(_) => fds.first().and_then(PollFd::revents),
            Err(Errno::EINTR) => None,
            Err(e) => return Err(format!("poll: {e}")),
        };
        if let Some(ev) = ev.filter(|ev| !ev.is_empty()) {
            outcome = c.advance(ev);
        }
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

/// Every address `endpoint` stands for, in the order to try them. An IP address is itself, but
/// the unspecified one (`0.0.0.0`, `::`: "all interfaces" in a listen address) means this
/// machine, so its loopback. A name is resolved now (see the module's note on blocking).
fn addresses(endpoint: &Endpoint) -> Result<Vec<SocketAddr>, String> {
    let port = endpoint.port;
    let mut addrs: Vec<SocketAddr> = match &endpoint.host {
        Host::Ip(IpAddr::V4(ip)) if ip.is_unspecified() => {
            vec![(Ipv4Addr::LOCALHOST, port).into()]
        }
        // An IPv6 wildcard listener may have fallen back to IPv4 (ready.rs): try both.
        Host::Ip(IpAddr::V6(ip)) if ip.is_unspecified() => vec![
            (Ipv6Addr::LOCALHOST, port).into(),
            (Ipv4Addr::LOCALHOST, port).into(),
        ],
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => (name.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve '{name}': {e}"))?
            .collect(),
    };
    // getaddrinfo may list one address twice (once per /etc/hosts line): try it once.
    let mut seen = Vec::with_capacity(addrs.len());
    addrs.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
    if addrs.is_empty() {
        return Err(format!("'{endpoint}' resolves to no address"));
    }
    Ok(addrs)
}

/// One check in progress: connected (or connecting) to `addr`, with `rest` to try if that
/// connect fails.
struct Check {
    stream: TcpStream,
    addr: SocketAddr,
    stage: Stage,
    /// The addresses not tried yet, in order.
    rest: std::vec::IntoIter<SocketAddr>,
    /// Each address that did not connect, and why.
    failures: Vec<(SocketAddr, String)>,
    /// The HTTP request, or `None` for a TCP check.
    request: Option<Vec<u8>>,
    deadline: Instant,
}

enum Stage {
    /// The non-blocking connect is in progress: POLLOUT, then SO_ERROR tells how it went.
    Connecting,
    /// Writing the request; `request[sent..]` is left.
    Sending { sent: usize },
    /// Reading until the status line is complete.
    Reading { got: Vec<u8> },
}

impl Check {
    /// Resolve the target and start connecting to its first address. Loopback may connect (or
    /// refuse) at once; then the outcome may already be known.
    fn start(target: &CheckTarget, deadline: Instant) -> (Option<Check>, Outcome) {
        let request = match target {
            CheckTarget::Tcp(_) => None,
            CheckTarget::Http { host, path, .. } => Some(
                format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .into_bytes(),
            ),
        };
        let mut rest = match addresses(target.endpoint()) {
            Ok(addrs) => addrs.into_iter(),
            Err(why) => return (None, Outcome::Fail(why)),
        };
        let mut failures = Vec::new();
        let Some((addr, stream)) = open_next(&mut rest, &mut failures) else {
            return (None, Outcome::Fail(refused(&failures)));
        };
        let mut check = Check {
            stream,
            addr,
            stage: Stage::Connecting,
            rest,
            failures,
            request,
            deadline,
        };
        let outcome = check.on_connecting();
        ((outcome == Outcome::Pending).then_some(check), outcome)
    }

    fn poll_fd(&self) -> PollFd<'_> {
        let interest = match self.stage {
            Stage::Connecting | Stage::Sending { .. } => PollFlags::POLLOUT,
            Stage::Reading { .. } => PollFlags::POLLIN,
        };
        PollFd::new(self.stream.as_fd(), interest)
    }

    fn advance(&mut self, ev: PollFlags) -> Outcome {
        match self.stage {
            Stage::Connecting => self.on_connecting(),
            Stage::Sending { .. } => self.send(),
            Stage::Reading { .. } if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) => {
                self.read()
            }
            Stage::Reading { .. } => Outcome::Fail("connection error".to_string()),
        }
    }

    /// While connecting: go on once connected; when the connect failed, connect to the next
    /// address (a refusal on `::1` says nothing about `127.0.0.1`); fail when none is left.
    fn on_connecting(&mut self) -> Outcome {
        loop {
            match self.connected() {
                Ok(true) => return self.after_connect(),
                Ok(false) => return Outcome::Pending,
                Err(why) => self.failures.push((self.addr, why)),
            }
            match open_next(&mut self.rest, &mut self.failures) {
                Some((addr, stream)) => (self.addr, self.stream) = (addr, stream),
                None => return Outcome::Fail(refused(&self.failures)),
            }
        }
    }

    /// Has the connect finished? SO_ERROR says how; poll's POLLOUT says when.
    fn connected(&self) -> Result<bool, String> {
        match getsockopt(&self.stream, sockopt::SocketError) {
            Ok(0) => {}
            Ok(err) => return Err(Errno::from_raw(err).desc().to_string()),
            Err(e) => return Err(e.desc().to_string()),
        }
        // No error yet: connected, or still connecting (then there is no peer).
        Ok(self.stream.peer_addr().is_ok())
    }

    fn after_connect(&mut self) -> Outcome {
        if self.request.is_none() {
            return Outcome::Pass;
        }
        self.stage = Stage::Sending { sent: 0 };
        self.send()
    }

    fn send(&mut self) -> Outcome {
        let (Stage::Sending { sent }, Some(request)) = (&mut self.stage, &self.request) else {
            return Outcome::Pending;
        };
        while *sent < request.len() {
            match self.stream.write(request.get(*sent..).unwrap_or_default()) {
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Pending,
                Err(e) => return Outcome::Fail(format!("sending the request: {e}")),
            }
        }
        self.stage = Stage::Reading { got: Vec::new() };
        self.read()
    }

    fn read(&mut self) -> Outcome {
        let Stage::Reading { got } = &mut self.stage else {
            return Outcome::Pending;
        };
        let mut buf = [0u8; 512];
        loop {
            match self.stream.read(&mut buf) {
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
            assert_eq!(fds.len(), 1, "one socket at a time");
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
    fn a_name_is_resolved_to_all_its_addresses() {
        let e = Endpoint {
            host: Host::Name("localhost".to_string()),
            port: 80,
        };
        let addrs = addresses(&e).unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
        let unique: std::collections::HashSet<_> = addrs.iter().collect();
        assert_eq!(unique.len(), addrs.len(), "each address once: {addrs:?}");
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
