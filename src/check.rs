//! The readiness check (contract, point 8): about once a second, a non-blocking TCP connect or
//! HTTP GET to the app, with a 1 s timeout, advanced by the event loop's poll. At most one
//! socket is open at a time and nothing here waits: a connect in progress, a request half sent
//! and a status line half read are each resumed when poll says so. `passing` is the result of
//! the latest finished check, `false` until one passes.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrStorage, connect, getsockopt, socket, sockopt,
};

use crate::logging::Throttle;
use crate::parse::CheckTarget;

/// From the start of one check to the start of the next.
const INTERVAL: Duration = Duration::from_secs(1);
/// A check not finished this long after its start fails.
const TIMEOUT: Duration = Duration::from_secs(1);
/// An HTTP answer whose status line does not end within this many bytes fails.
const MAX_STATUS_LINE: usize = 1024;
/// How often the same kind of log line may appear; repeats in between are counted.
const LOG_WINDOW: Duration = Duration::from_secs(10);

pub struct Checker {
    target: CheckTarget,
    probe: Option<Probe>,
    next_start: Instant,
    passing: bool,
    /// Has any check passed yet? Failures before the first pass are the app starting up.
    ever_passed: bool,
    /// Changes of the result since the last line about one.
    unlogged_changes: u64,
    changes_logged: Throttle,
}

impl Checker {
    /// The first check starts at the first `on_poll`.
    pub fn new(target: CheckTarget) -> Checker {
        Checker {
            target,
            probe: None,
            next_start: Instant::now(),
            passing: false,
            ever_passed: false,
            unlogged_changes: 0,
            changes_logged: Throttle::new(LOG_WINDOW),
        }
    }

    /// The socket of the check in progress, if any, with what it waits for.
    pub fn poll_fds<'a>(&'a self, out: &mut Vec<PollFd<'a>>) {
        if let Some(p) = &self.probe {
            out.push(PollFd::new(p.stream.as_fd(), p.interest()));
        }
    }

    /// Act on poll's report for the descriptor `poll_fds` pushed (if it pushed one), and start
    /// the next check when it is due. Never blocks.
    pub fn on_poll(&mut self, revents: &[PollFlags], now: Instant) {
        if let Some(probe) = &mut self.probe {
            let ev = revents.first().copied().unwrap_or(PollFlags::empty());
            let mut outcome = if ev.is_empty() {
                Outcome::Pending
            } else {
                probe.advance(ev)
            };
            if outcome == Outcome::Pending && now >= probe.deadline {
                outcome = Outcome::Fail(format!("no answer within {}s", TIMEOUT.as_secs()));
            }
            if outcome != Outcome::Pending {
                self.probe = None;
                self.finish(outcome, now);
            }
        }
        if self.probe.is_none() && now >= self.next_start {
            self.next_start = now + INTERVAL;
            let (probe, outcome) = Probe::start(&self.target, now);
            self.probe = probe;
            if outcome != Outcome::Pending {
                self.finish(outcome, now);
            }
        }
    }

    /// The check's timeout while one runs, else the start of the next.
    pub fn next_deadline(&self) -> Option<Instant> {
        Some(self.probe.as_ref().map_or(self.next_start, |p| p.deadline))
    }

    /// Did the latest finished check pass? `false` until the first one does.
    pub fn passing(&self) -> bool {
        self.passing
    }

    /// Record a finished check, and log when the result changes: the first pass at info,
    /// failures before it at debug (the app is starting), each change after it at info, at
    /// most one line per `LOG_WINDOW` (a change held back is logged with the next check after
    /// the window, with the state as it is then), so a flapping app cannot flood the log.
    fn finish(&mut self, outcome: Outcome, now: Instant) {
        let passed = outcome == Outcome::Pass;
        let changed = passed != self.passing;
        self.passing = passed;
        let target = describe(&self.target);
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

/// `tcp://ADDR` or `http://HOST/PATH`, as the user wrote it (near enough) for log lines.
fn describe(target: &CheckTarget) -> String {
    match target {
        CheckTarget::Tcp(addr) => format!("tcp://{addr}"),
        CheckTarget::Http { host, path, .. } => format!("http://{host}{path}"),
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Outcome {
    Pending,
    Pass,
    Fail(String),
}

/// One check in progress.
struct Probe {
    stream: TcpStream,
    stage: Stage,
    deadline: Instant,
}

enum Stage {
    /// The non-blocking connect is in progress: POLLOUT, then SO_ERROR tells how it went.
    Connecting { http: Option<Vec<u8>> },
    /// Writing the request; `request[sent..]` is left.
    Sending { request: Vec<u8>, sent: usize },
    /// Reading until the status line is complete.
    Reading { got: Vec<u8> },
}

impl Probe {
    /// Open a non-blocking socket and start connecting. Loopback may connect (or refuse) at
    /// once; then the outcome may already be known.
    fn start(target: &CheckTarget, now: Instant) -> (Option<Probe>, Outcome) {
        let (addr, http) = match target {
            CheckTarget::Tcp(addr) => (*addr, None),
            CheckTarget::Http { addr, host, path } => (
                *addr,
                Some(
                    format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                        .into_bytes(),
                ),
            ),
        };
        let stream = match open(addr) {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) | Err(e) => return (None, Outcome::Fail(e.to_string())),
        };
        let mut probe = Probe {
            stream,
            stage: Stage::Connecting { http },
            deadline: now + TIMEOUT,
        };
        let outcome = match probe.connected() {
            Ok(true) => probe.after_connect(),
            Ok(false) => Outcome::Pending,
            Err(why) => Outcome::Fail(why),
        };
        let probe = (outcome == Outcome::Pending).then_some(probe);
        (probe, outcome)
    }

    fn interest(&self) -> PollFlags {
        match self.stage {
            Stage::Connecting { .. } | Stage::Sending { .. } => PollFlags::POLLOUT,
            Stage::Reading { .. } => PollFlags::POLLIN,
        }
    }

    fn advance(&mut self, ev: PollFlags) -> Outcome {
        match self.stage {
            Stage::Connecting { .. } => match self.connected() {
                Ok(true) => self.after_connect(),
                Ok(false) => Outcome::Pending,
                Err(why) => Outcome::Fail(why),
            },
            Stage::Sending { .. } => self.send(),
            Stage::Reading { .. } if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) => {
                self.read()
            }
            Stage::Reading { .. } => Outcome::Fail("connection error".to_string()),
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
        let http = match &mut self.stage {
            Stage::Connecting { http } => http.take(),
            _ => None,
        };
        match http {
            None => Outcome::Pass,
            Some(request) => {
                self.stage = Stage::Sending { request, sent: 0 };
                self.send()
            }
        }
    }

    fn send(&mut self) -> Outcome {
        let Stage::Sending { request, sent } = &mut self.stage else {
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

/// A non-blocking, close-on-exec socket with a connect to `addr` started. The outer error is
/// the socket's creation (out of descriptors), the inner one an immediate refusal.
fn open(addr: SocketAddr) -> Result<Result<TcpStream, Errno>, Errno> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    Ok(
        match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
            Ok(()) | Err(Errno::EINPROGRESS) => Ok(TcpStream::from(fd)),
            Err(e) => Err(e),
        },
    )
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
            if c.probe.is_none() {
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

    fn http_target(addr: SocketAddr, path: &str) -> CheckTarget {
        CheckTarget::Http {
            addr,
            host: addr.to_string(),
            path: path.to_string(),
        }
    }

    #[test]
    fn nothing_passes_before_the_first_check() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = Checker::new(CheckTarget::Tcp(l.local_addr().unwrap()));
        assert!(!c.passing());
        // The first check is due at once.
        assert!(c.next_deadline().unwrap() <= Instant::now());
    }

    #[test]
    fn a_tcp_check_follows_the_app_listening_both_ways() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut c = Checker::new(CheckTarget::Tcp(addr));
        let t = Instant::now();
        assert!(check_once(&mut c, t));
        drop(l);
        assert!(!check_once(&mut c, t + INTERVAL));
        let _l = TcpListener::bind(addr).unwrap();
        assert!(check_once(&mut c, t + 2 * INTERVAL));
    }

    #[test]
    fn a_tcp_check_of_a_closed_port_fails() {
        let mut c = Checker::new(CheckTarget::Tcp(closed_port()));
        assert!(!check_once(&mut c, Instant::now()));
    }

    #[test]
    fn checks_start_about_once_a_second() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = Checker::new(CheckTarget::Tcp(l.local_addr().unwrap()));
        let t = Instant::now();
        assert!(check_once(&mut c, t));
        assert_eq!(c.next_deadline(), Some(t + INTERVAL));
        // Not due yet: nothing starts.
        c.on_poll(&[], t + INTERVAL / 2);
        assert!(c.probe.is_none());
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
        assert!(c.probe.is_some(), "still waiting for an answer");
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
