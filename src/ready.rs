//! The readiness server's mechanism (contract, point 7): a non-blocking listener and a bounded
//! table of non-blocking connections, driven by the event loop's poll. What to answer is decided
//! in http.rs; this file moves the bytes and enforces the bounds: at most 256 connections (a new
//! one evicts the one idle longest, so probes get through a slowloris), 5 s to send a request
//! head (else 408), 10 s idle (else closed). A turn serves a bounded batch and a flood makes the
//! server rest between batches, so signals and reaping never wait on it. Running out of
//! descriptors is survived: the idle longest connection makes room, or the listener rests for a
//! moment. Nothing here blocks, and every failure is logged through a `Throttle` so floods
//! cannot flood the log.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket,
    sockopt,
};

use crate::http::{self, MAX_HEAD, MAX_RESPONSE, OUTPUT_SOFT_LIMIT, Response};
pub use crate::http::{Health, ReadyState};
use crate::logging::Throttle;

/// Connections open at once (contract, point 7).
const MAX_CONNS: usize = 256;
/// A request head must arrive whole within this long of its first byte.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that moves no byte for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a closing response we shut our side and read for up to this long before closing, so
/// bytes the client is still sending (the rest of an oversized head, a body) do not make the
/// kernel answer with a reset that destroys the response before the client has read it.
const LINGER: Duration = Duration::from_secs(2);
/// Connections accepted, and ready connections served, per turn: the event loop takes signals
/// and reaps between turns, so a flood must not make a turn long. A probe is one request on a
/// fresh or kept-alive connection now and then; eight at once is already a crowd.
const ACCEPT_BATCH: usize = 8;
const SERVE_BATCH: usize = 8;
/// After a turn that left work undone (more ready connections than `SERVE_BATCH`, or a full
/// accept batch), connections and listener are not polled for this long. A flood then costs
/// drainit a small share of a core instead of all of it: the app keeps its CPU, and drainit,
/// asleep in poll most of the time, is scheduled at once when a signal comes (a process that
/// never sleeps waits for its time slice: forwarding took ~1-4 ms instead of ~0.15 ms). The
/// price: under a flood the server answers some thousands of requests a second, not tens of
/// thousands (bench/readiness.sh).
const REST: Duration = Duration::from_millis(1);
/// How long the listener rests when accept fails and no connection can make room.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Room in the kernel's queue of connections not yet accepted.
const BACKLOG: i32 = 1024;
/// How often the same kind of failure is logged; repeats in between are counted.
const LOG_WINDOW: Duration = Duration::from_secs(10);
/// The most bytes all connections' buffers hold together. A connection holds buffers only
/// while it has bytes to read or to answer (`CONN_BUFFERS` each; an idle or kept-alive one
/// holds none), so this is about 50 request heads in progress at once. When it is reached, the
/// connection with buffers idle longest is closed to make room (a probe is answered through a
/// slowloris), and an allocation that fails lowers it: PID 1 must not die of a full heap or a
/// tight RLIMIT_AS (`prlimit --as`), where Rust aborts on a failed allocation.
const BUFFER_BUDGET: usize = 512 * 1024;
/// After an allocation failed, how long the lowered budget holds before the full one is tried
/// again: memory pressure passes, and a budget cut for good would leave probes evicting each
/// other for the rest of the container's life.
const BUDGET_RETRY: Duration = Duration::from_secs(60);
/// One connection's buffers: one request head, and the answers waiting to be sent.
const INPUT_BUFFER: usize = MAX_HEAD;
const OUTPUT_BUFFER: usize = OUTPUT_SOFT_LIMIT + 2 * MAX_RESPONSE;
const CONN_BUFFERS: usize = INPUT_BUFFER + OUTPUT_BUFFER;

pub struct Server {
    listener: TcpListener,
    conns: Vec<Conn>,
    /// The most connections kept at once: `MAX_CONNS`, lowered if the descriptor limit is met,
    /// so one descriptor stays free for the readiness check.
    cap: usize,
    /// While set, the listener is not polled (accept failed with nothing to evict).
    paused_until: Option<Instant>,
    /// After a turn with more ready connections than `SERVE_BATCH`, connections are not polled
    /// until then.
    resting_until: Option<Instant>,
    /// Where the next turn starts serving ready connections (fairness under `SERVE_BATCH`).
    next_ready: usize,
    accept_errors: Throttle,
    evictions: Throttle,
    evicted: u64,
    /// The most buffer bytes kept at once: `BUFFER_BUDGET`, lowered when an allocation fails.
    budget: usize,
    /// When an allocation failure lowered `budget`; `None` while it is `BUFFER_BUDGET`.
    budget_cut: Option<Instant>,
    memory_evictions: Throttle,
    memory_evicted: u64,
}

/// A non-blocking, close-on-exec listener on exactly `addr`.
fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let fd = tcp_socket(addr)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &false)?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    Ok(TcpListener::from(fd))
}

impl Server {
    /// Bind `addr`: non-blocking, close-on-exec, SO_REUSEADDR (a restarted container must not be
    /// refused by connections of its predecessor still in TIME_WAIT). Called before the spawn.
    ///
    /// `[::]` (what `:PORT` means) listens on IPv6 and IPv4 alike (IPV6_V6ONLY off, whatever
    /// the host's `bindv6only` default); on a kernel or pod with IPv6 switched off it falls back
    /// to `0.0.0.0`, so "all interfaces" works everywhere.
    pub fn bind(addr: SocketAddr) -> io::Result<Server> {
        let listener = match listen_on(addr) {
            Err(e)
                if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
                    ) =>
            {
                listen_on(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    addr.port(),
                ))?
            }
            other => other?,
        };
        // The table is allocated now, before the child runs, so it never grows under a flood.
        let mut conns = Vec::new();
        conns
            .try_reserve_exact(MAX_CONNS)
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
        Ok(Server {
            listener,
            conns,
            cap: MAX_CONNS,
            paused_until: None,
            resting_until: None,
            next_ready: 0,
            accept_errors: Throttle::new(LOG_WINDOW),
            evictions: Throttle::new(LOG_WINDOW),
            evicted: 0,
            budget: BUFFER_BUDGET,
            budget_cut: None,
            memory_evictions: Throttle::new(LOG_WINDOW),
            memory_evicted: 0,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Push the descriptors to poll, with their interests, onto `out`: the listener (unless it
    /// rests), then each connection in table order. `on_poll` relies on this layout.
    pub fn poll_fds<'a>(&'a self, out: &mut Vec<PollFd<'a>>) {
        if self.polls_listener() {
            out.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        }
        let resting = self.resting_until.is_some();
        for c in &self.conns {
            // While resting, poll still reports errors and hang-ups (they are cheap to act on).
            let interest = if resting {
                PollFlags::empty()
            } else {
                c.interest()
            };
            out.push(PollFd::new(c.stream.as_fd(), interest));
        }
    }

    fn polls_listener(&self) -> bool {
        self.paused_until.is_none() && self.resting_until.is_none()
    }

    /// Act on what poll reported for the descriptors `poll_fds` pushed (same order, same
    /// count), and on deadlines due at `now`. Never blocks.
    pub fn on_poll(&mut self, revents: &[PollFlags], health: Health, now: Instant) {
        let (listener, conns) = if self.polls_listener() {
            revents
                .split_first()
                .map_or((PollFlags::empty(), revents), |(l, c)| (*l, c))
        } else {
            (PollFlags::empty(), revents)
        };
        if self.resting_until.is_some_and(|t| now >= t) {
            self.resting_until = None;
        }
        self.serve_ready(conns, health, now);
        for c in &mut self.conns {
            c.expire(now);
        }
        self.conns.retain(|c| c.state != State::Done);
        if self.next_ready >= self.conns.len() {
            self.next_ready = 0;
        }
        if self.paused_until.is_some_and(|t| now >= t) {
            // Back on the next turn's poll; nothing to accept before poll has said so.
            self.paused_until = None;
        } else if !listener.is_empty() {
            self.accept_batch(health, now);
        }
    }

    /// The next time `on_poll` must run even if no descriptor is ready.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .map(Conn::deadline)
            .chain(self.paused_until)
            .chain(self.resting_until)
            .min()
    }

    /// Move the bytes of at most `SERVE_BATCH` of the connections poll found ready, starting
    /// where the last turn stopped (the rest are still ready at the next poll, which comes
    /// right after the signals have been taken).
    fn serve_ready(&mut self, revents: &[PollFlags], health: Health, now: Instant) {
        let n = self.conns.len();
        let mut served = 0;
        for k in 0..n {
            let i = (self.next_ready + k) % n;
            let ev = revents.get(i).copied().unwrap_or(PollFlags::empty());
            if ev.is_empty() {
                continue;
            }
            if served == SERVE_BATCH {
                self.next_ready = i;
                self.resting_until = Some(now + REST);
                return;
            }
            self.advance(i, ev, health, now);
            served += 1;
        }
    }

    fn accept_batch(&mut self, health: Health, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, health, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The client gave up before we got to it, or a signal: try the next one.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    self.accept_failed(&e, now);
                    return;
                }
            }
        }
        // More may be waiting: a connect flood, rest like a full serving batch.
        self.resting_until = Some(now + REST);
    }

    /// Take a new connection into the table, making room if it is full, and answer at once
    /// what it has already sent (a probe usually sends its request with the connect).
    fn admit(&mut self, stream: TcpStream, health: Health, now: Instant) {
        // std's accept sets close-on-exec (accept4 with SOCK_CLOEXEC); blocking is ours to drop.
        if let Err(e) = stream.set_nonblocking(true) {
            log::debug!("readiness server: cannot make a connection non-blocking: {e}");
            return;
        }
        if self.conns.len() >= self.cap {
            self.evict_idlest();
            self.evicted += 1;
            if self.evictions.hit(now).is_some() {
                log::warn!(
                    "readiness server: {} connections open (the most it keeps): closing the one \
                     idle longest for each new one ({} so far)",
                    self.cap,
                    self.evicted
                );
            }
        }
        self.conns.push(Conn::new(stream, now));
        let i = self.conns.len() - 1;
        self.advance(i, PollFlags::POLLIN, health, now);
        // Making room marks other connections done but moves none, so this one is still last.
        if self.conns.last().is_some_and(|c| c.state == State::Done) {
            self.conns.pop();
        }
    }

    /// Act on poll's report for connection `i`, first giving it buffers if it now needs them;
    /// with no room for them, it is closed.
    fn advance(&mut self, i: usize, ev: PollFlags, health: Health, now: Instant) {
        let needs = self.conns.get(i).is_some_and(|c| c.needs_buffers(ev));
        if needs && !self.give_buffers(i, now) {
            if let Some(c) = self.conns.get_mut(i) {
                c.close();
            }
            return;
        }
        if let Some(c) = self.conns.get_mut(i) {
            c.advance(ev, health, now);
        }
    }

    /// The buffer bytes all connections hold now.
    fn buffered(&self) -> usize {
        self.conns.iter().map(Conn::buffered).sum()
    }

    /// Allocate connection `i`'s buffers within the budget, closing the connection with
    /// buffers idle longest while there is no room. Did it get them? Log lines are written only
    /// after a connection was closed: a line costs an allocation too.
    fn give_buffers(&mut self, i: usize, now: Instant) -> bool {
        if self
            .budget_cut
            .is_some_and(|at| now.saturating_duration_since(at) >= BUDGET_RETRY)
        {
            self.budget = BUFFER_BUDGET;
            self.budget_cut = None;
        }
        loop {
            let mut failed = None;
            if self.buffered() + CONN_BUFFERS <= self.budget {
                match self.conns.get_mut(i).map(Conn::allocate) {
                    Some(Ok(())) => return true,
                    None => return false,
                    // The heap or RLIMIT_AS is tighter than the budget: stay well below where
                    // it failed, and never below one connection's worth (memory may come back).
                    Some(Err(e)) => {
                        self.budget = self
                            .buffered()
                            .saturating_sub(CONN_BUFFERS)
                            .max(CONN_BUFFERS);
                        self.budget_cut = Some(now);
                        failed = Some(e);
                    }
                }
            }
            if !self.evict_idlest_buffered(i) {
                return false;
            }
            self.memory_evicted += 1;
            if let Some(suppressed) = self.memory_evictions.hit(now) {
                let why = match failed {
                    Some(_) => format!(
                        "cannot allocate {CONN_BUFFERS} bytes for a connection (out of memory \
                         or RLIMIT_AS): buffering at most {} bytes for the next minute",
                        self.budget
                    ),
                    None => format!("{} bytes buffered (the most it keeps)", self.budget),
                };
                let also = if suppressed > 0 {
                    format!(", {suppressed} similar lines not logged")
                } else {
                    String::new()
                };
                log::warn!(
                    "readiness server: {why}; closing the connection idle longest for each new \
                     request ({} so far{also})",
                    self.memory_evicted
                );
            }
        }
    }

    /// Close the connection with buffers, other than `except`, that is idle longest, and give
    /// its buffers back at once. Was there one?
    fn evict_idlest_buffered(&mut self, except: usize) -> bool {
        let idlest = self
            .conns
            .iter_mut()
            .enumerate()
            .filter(|(j, c)| *j != except && c.buffered() > 0)
            .min_by_key(|(_, c)| c.last_active);
        match idlest {
            Some((_, c)) => {
                c.close();
                true
            }
            None => false,
        }
    }

    /// Out of descriptors (or memory): make room by closing the connection idle longest and keep
    /// one descriptor spare from now on; with nothing to close, rest the listener for a moment.
    /// Either way this turn accepts no more, so a flood cannot spin the loop.
    fn accept_failed(&mut self, e: &io::Error, now: Instant) {
        let errno = e.raw_os_error().map(Errno::from_raw);
        let out_of_fds = matches!(errno, Some(Errno::EMFILE | Errno::ENFILE));
        let lowered = if out_of_fds && self.evict_idlest() {
            let cap = self.conns.len().max(1);
            let lowered = cap < self.cap;
            self.cap = self.cap.min(cap);
            lowered
        } else {
            self.paused_until = Some(now + ACCEPT_PAUSE);
            false
        };
        if let Some(suppressed) = self.accept_errors.hit(now) {
            let also = if suppressed > 0 {
                format!(" ({suppressed} similar failures not logged)")
            } else {
                String::new()
            };
            if lowered {
                log::warn!(
                    "readiness server: cannot accept a connection: {e}; serving at most {} \
                     connections at once from now on{also}",
                    self.cap
                );
            } else {
                log::warn!("readiness server: cannot accept a connection: {e}{also}");
            }
        }
    }

    /// Close the connection idle longest. Was there one?
    fn evict_idlest(&mut self) -> bool {
        let idlest = self
            .conns
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.last_active)
            .map(|(i, _)| i);
        match idlest {
            Some(i) => {
                self.conns.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Reading requests and answering them.
    Open,
    /// The last response closes the connection: send what is left, then linger.
    Closing,
    /// Our side is shut; reading and discarding until the client closes or `LINGER` is over.
    Lingering { until: Instant },
    /// To be dropped from the table (which closes the socket).
    Done,
}

struct Conn {
    stream: TcpStream,
    /// Received bytes not answered yet: at most one request head (`MAX_HEAD`).
    input: Vec<u8>,
    /// Response bytes; `output[sent..]` is still to be written.
    output: Vec<u8>,
    sent: usize,
    /// The last time a byte moved either way (or the connection was accepted).
    last_active: Instant,
    /// When the first byte of the request head in `input` arrived.
    head_since: Option<Instant>,
    /// The client has shut its side: answer what is complete, then close.
    peer_closed: bool,
    state: State,
}

impl Conn {
    fn new(stream: TcpStream, now: Instant) -> Conn {
        Conn {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            last_active: now,
            head_since: None,
            peer_closed: false,
            state: State::Open,
        }
    }

    fn pending_output(&self) -> bool {
        self.sent < self.output.len()
    }

    /// Bytes of buffer this connection holds.
    fn buffered(&self) -> usize {
        self.input.capacity() + self.output.capacity()
    }

    /// Will `advance` read (or answer) with these events, with no buffers to do it in?
    fn needs_buffers(&self, ev: PollFlags) -> bool {
        self.buffered() == 0
            && self.state == State::Open
            && !self.peer_closed
            && ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
    }

    /// Allocate both buffers at their full size, fallibly: neither ever grows after this
    /// (`read` fills at most `INPUT_BUFFER`, `answer_all` writes at most `OUTPUT_BUFFER`).
    fn allocate(&mut self) -> Result<(), std::collections::TryReserveError> {
        self.input.try_reserve_exact(INPUT_BUFFER)?;
        self.output.try_reserve_exact(OUTPUT_BUFFER)
    }

    /// Give the buffers back once nothing is waiting in them, so an idle connection costs none.
    fn release_idle_buffers(&mut self) {
        if self.input.is_empty() && !self.pending_output() {
            self.input = Vec::new();
            self.output = Vec::new();
            self.sent = 0;
        }
    }

    /// Close now (the table drops it), giving the buffers back at once.
    fn close(&mut self) {
        self.state = State::Done;
        self.input = Vec::new();
        self.output = Vec::new();
        self.sent = 0;
    }

    /// What to poll for. Reading stops while a response waits to be sent: a client that sends
    /// and never reads must not make us buffer without bound.
    fn interest(&self) -> PollFlags {
        match self.state {
            State::Lingering { .. } => PollFlags::POLLIN,
            _ if self.pending_output() => PollFlags::POLLOUT,
            State::Open if self.input.len() < MAX_HEAD && !self.peer_closed => PollFlags::POLLIN,
            _ => PollFlags::empty(),
        }
    }

    fn deadline(&self) -> Instant {
        let idle = self.last_active + IDLE_TIMEOUT;
        match self.state {
            State::Open => self.head_since.map_or(idle, |t| idle.min(t + HEAD_TIMEOUT)),
            State::Lingering { until } => idle.min(until),
            State::Closing | State::Done => idle,
        }
    }

    /// Act on poll's report for this connection.
    fn advance(&mut self, ev: PollFlags, health: Health, now: Instant) {
        if let State::Lingering { .. } = self.state {
            self.discard_input();
            return;
        }
        if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            self.read(now);
        }
        self.answer_and_send(health, now);
        self.release_idle_buffers();
    }

    /// Read once (poll is level-triggered: more comes next turn; one read per connection per
    /// turn keeps a busy client from starving the others).
    fn read(&mut self, now: Instant) {
        if self.state != State::Open || self.peer_closed {
            return;
        }
        // Only into the buffer allocated for it (`Server::give_buffers`): never grow it here.
        let room = MAX_HEAD
            .min(self.input.capacity())
            .saturating_sub(self.input.len());
        if room == 0 {
            return;
        }
        let start = self.input.len();
        self.input.resize(start + room, 0);
        let got = self
            .stream
            .read(self.input.get_mut(start..).unwrap_or_default());
        self.input.truncate(start + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => self.peer_closed = true,
            Ok(_) => {
                self.last_active = now;
                self.head_since.get_or_insert(now);
            }
            Err(e) if is_transient(&e) => {}
            Err(_) => self.state = State::Done,
        }
    }

    /// Answer the complete requests received, send, and repeat while sending drains the output
    /// and requests remain (pipelining beyond the output limit). Each round consumes input, so
    /// this ends.
    fn answer_and_send(&mut self, health: Health, now: Instant) {
        loop {
            let mut consumed = 0;
            if self.state == State::Open && self.output.len() < OUTPUT_SOFT_LIMIT {
                let served = http::answer_all(&self.input, health, &mut self.output);
                consumed = served.consumed;
                self.input.drain(..served.consumed.min(self.input.len()));
                if served.close {
                    self.state = State::Closing;
                    self.input.clear();
                } else if self.peer_closed {
                    // A half-closed client gets its complete requests answered, nothing more.
                    self.state = State::Closing;
                }
                if consumed > 0 {
                    // What is left is the start of the next head, arriving now.
                    self.head_since = (!self.input.is_empty()).then_some(now);
                }
            }
            let flushed = self.send(now);
            if !flushed || consumed == 0 || self.state != State::Open || self.input.is_empty() {
                return;
            }
        }
    }

    /// Write what is pending. True when nothing is left to send.
    fn send(&mut self, now: Instant) -> bool {
        while self.pending_output() {
            match self
                .stream
                .write(self.output.get(self.sent..).unwrap_or_default())
            {
                Ok(0) => {
                    self.state = State::Done;
                    return false;
                }
                Ok(n) => {
                    self.sent += n;
                    self.last_active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => {
                    self.state = State::Done;
                    return false;
                }
            }
        }
        self.output.clear();
        self.sent = 0;
        if self.state == State::Closing {
            self.finish(now);
        }
        true
    }

    /// Everything is sent on a closing connection. Shut our side, then linger (unless the
    /// client has closed already: then there is nothing to wait for).
    fn finish(&mut self, now: Instant) {
        if self.peer_closed || self.stream.shutdown(Shutdown::Write).is_err() {
            self.state = State::Done;
        } else {
            self.state = State::Lingering {
                until: now + LINGER,
            };
        }
    }

    /// While lingering: read and throw away, a bounded amount per turn, until EOF or an error.
    fn discard_input(&mut self) {
        let mut sink = [0u8; 4096];
        // A client still sending after these reads gets more turns, bounded by LINGER.
        for _ in 0..4 {
            match self.stream.read(&mut sink) {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) if is_transient(&e) => return,
                Err(_) => {}
            }
            // EOF or an error: the client has what we sent, or never will.
            self.state = State::Done;
            return;
        }
    }

    /// Apply the timers due at `now`.
    fn expire(&mut self, now: Instant) {
        if now >= self.last_active + IDLE_TIMEOUT {
            self.state = State::Done;
            return;
        }
        match self.state {
            State::Lingering { until } if now >= until => self.state = State::Done,
            State::Open if self.head_since.is_some_and(|t| now >= t + HEAD_TIMEOUT) => {
                self.head_since = None;
                self.input.clear();
                // Written only into room there is: a buffer never grows after `allocate`.
                if self.output.capacity() - self.output.len() < MAX_RESPONSE {
                    self.close();
                    return;
                }
                self.state = State::Closing;
                Response::timeout().write_to(&mut self.output);
                self.send(now);
                self.release_idle_buffers();
            }
            _ => {}
        }
    }
}

/// A non-blocking, close-on-exec TCP socket of `addr`'s family (the check uses it too).
pub fn tcp_socket(addr: SocketAddr) -> nix::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{PollTimeout, poll};
    use nix::sys::socket::getsockopt;

    const READY: Health = Health {
        ready: ReadyState::Ready,
        live: true,
    };

    fn server() -> (Server, SocketAddr) {
        let s = Server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = s.local_addr().unwrap();
        (s, addr)
    }

    /// One event-loop turn as event_loop.rs runs it: poll what the server asks for (briefly),
    /// then hand it the revents. `now` may be moved ahead to fire timers.
    fn turn(s: &mut Server, health: Health, now: Instant) {
        turn_waiting(s, health, now, 20);
    }

    fn turn_waiting(s: &mut Server, health: Health, now: Instant, wait_ms: u8) {
        let mut fds = Vec::new();
        s.poll_fds(&mut fds);
        let _ = poll(&mut fds, PollTimeout::from(wait_ms));
        let revents: Vec<PollFlags> = fds.iter().map(|f| f.revents().unwrap()).collect();
        drop(fds);
        s.on_poll(&revents, health, now);
    }

    /// Turn until `done`, at most a generous number of times.
    fn turn_until(s: &mut Server, health: Health, mut done: impl FnMut(&Server) -> bool) {
        for _ in 0..500 {
            if done(s) {
                return;
            }
            turn(s, health, Instant::now());
        }
        panic!("condition not reached");
    }

    fn client(addr: SocketAddr) -> TcpStream {
        let c = TcpStream::connect(addr).unwrap();
        c.set_nonblocking(true).unwrap();
        c
    }

    /// Read what is there without blocking; `None` at EOF.
    fn read_some(c: &mut TcpStream) -> Option<Vec<u8>> {
        let mut buf = [0u8; 65536];
        match c.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => Some(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(Vec::new()),
            Err(_) => None,
        }
    }

    /// Turn the server until the client has received `want` bytes of text (or EOF).
    fn response(s: &mut Server, c: &mut TcpStream, health: Health, until: &str) -> String {
        let mut got = Vec::new();
        let mut eof = false;
        turn_until(s, health, |_| {
            match read_some(c) {
                Some(b) => got.extend(b),
                None => eof = true,
            }
            eof || String::from_utf8_lossy(&got).contains(until)
        });
        String::from_utf8(got).unwrap()
    }

    fn is_closed(c: &mut TcpStream) -> bool {
        read_some(c).is_none()
    }

    #[test]
    fn the_listener_reuses_addresses_and_does_not_block() {
        let (s, _) = server();
        assert!(getsockopt(&s.listener, sockopt::ReuseAddr).unwrap());
        let flags = nix::fcntl::fcntl(&s.listener, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_ne!(flags & libc::O_NONBLOCK, 0);
        let fd_flags = nix::fcntl::fcntl(&s.listener, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(fd_flags & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn ipv6_and_all_interfaces_of_both_families_are_served() {
        let any = Server::bind("[::]:0".parse().unwrap());
        // Where IPv6 exists, `[::]` also takes IPv4 connections (bindv6only is 0 by default).
        let Ok(mut s) = any else { return };
        let port = s.local_addr().unwrap().port();
        for host in ["[::1]", "127.0.0.1"] {
            let Ok(mut c) = TcpStream::connect(format!("{host}:{port}")) else {
                continue;
            };
            c.set_nonblocking(true).unwrap();
            c.write_all(b"GET /livez HTTP/1.1\r\n\r\n").unwrap();
            let text = response(&mut s, &mut c, READY, "ok");
            assert!(text.starts_with("HTTP/1.1 200 "), "{host}: {text}");
        }
    }

    #[test]
    fn a_busy_address_is_refused() {
        let (_s, addr) = server();
        assert!(Server::bind(addr).is_err());
    }

    #[test]
    fn requests_on_one_connection_are_answered_with_the_health_of_their_turn() {
        let (mut s, addr) = server();
        let mut c = client(addr);
        c.write_all(b"GET /readyz HTTP/1.1\r\n\r\n").unwrap();
        let text = response(&mut s, &mut c, READY, "\r\n\r\nok");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        let draining = Health {
            ready: ReadyState::Draining,
            live: true,
        };
        c.write_all(b"GET /readyz HTTP/1.1\r\n\r\n").unwrap();
        let text = response(&mut s, &mut c, draining, "draining");
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        assert_eq!(s.conns.len(), 1);
    }

    #[test]
    fn a_closing_response_is_delivered_and_then_the_connection_closed() {
        let (mut s, addr) = server();
        let mut c = client(addr);
        c.write_all(b"GET /livez HTTP/1.0\r\n\r\n").unwrap();
        let text = response(&mut s, &mut c, READY, "ok");
        assert!(text.contains("Connection: close"), "{text}");
        turn_until(&mut s, READY, |_| is_closed(&mut c));
        turn_until(&mut s, READY, |s| s.conns.is_empty());
    }

    #[test]
    fn a_head_not_complete_within_5s_gets_408() {
        let (mut s, addr) = server();
        let mut c = client(addr);
        c.write_all(b"GET /readyz HTTP/1.1\r\n").unwrap();
        turn_until(&mut s, READY, |s| {
            s.conns.first().is_some_and(|c| c.head_since.is_some())
        });
        let since = s.conns[0].head_since.unwrap();
        assert_eq!(s.next_deadline(), Some(since + HEAD_TIMEOUT));
        s.on_poll(
            &[PollFlags::empty(), PollFlags::empty()],
            READY,
            since + HEAD_TIMEOUT,
        );
        let text = response(&mut s, &mut c, READY, "timeout");
        assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    }

    #[test]
    fn a_connection_idle_for_10s_is_closed() {
        let (mut s, addr) = server();
        let mut c = client(addr);
        turn_until(&mut s, READY, |s| s.conns.len() == 1);
        let idle_since = s.conns[0].last_active;
        assert_eq!(s.next_deadline(), Some(idle_since + IDLE_TIMEOUT));
        s.on_poll(
            &[PollFlags::empty(), PollFlags::empty()],
            READY,
            idle_since + IDLE_TIMEOUT,
        );
        assert!(s.conns.is_empty());
        assert!(s.next_deadline().is_none());
        turn_until(&mut s, READY, |_| is_closed(&mut c));
    }

    #[test]
    fn when_the_table_is_full_a_new_connection_evicts_the_one_idle_longest() {
        let (mut s, addr) = server();
        let mut clients: Vec<TcpStream> = Vec::new();
        for _ in 0..MAX_CONNS {
            clients.push(client(addr));
        }
        turn_until(&mut s, READY, |s| s.conns.len() == MAX_CONNS);
        // The first one stays busy: it is not the one idle longest.
        clients[0]
            .write_all(b"GET /livez HTTP/1.1\r\n\r\n")
            .unwrap();
        let text = response(&mut s, &mut clients[0], READY, "ok");
        assert!(text.starts_with("HTTP/1.1 200 "));
        let mut probe = client(addr);
        probe.write_all(b"GET /readyz HTTP/1.1\r\n\r\n").unwrap();
        let text = response(&mut s, &mut probe, READY, "ok");
        assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        assert_eq!(s.conns.len(), MAX_CONNS);
        assert!(!is_closed(&mut clients[0]));
        let closed = clients.iter_mut().map(is_closed).filter(|c| *c).count();
        assert_eq!(closed, 1);
    }

    #[test]
    fn more_ready_connections_than_a_turn_serves_are_all_answered() {
        let (mut s, addr) = server();
        let mut clients: Vec<TcpStream> = (0..3 * SERVE_BATCH).map(|_| client(addr)).collect();
        turn_until(&mut s, READY, |s| s.conns.len() == clients.len());
        for c in &mut clients {
            c.write_all(b"GET /readyz HTTP/1.1\r\n\r\n").unwrap();
        }
        let mut answered = vec![false; clients.len()];
        turn_until(&mut s, READY, |_| {
            for (c, done) in clients.iter_mut().zip(answered.iter_mut()) {
                *done |= read_some(c).is_some_and(|b| !b.is_empty());
            }
            answered.iter().all(|d| *d)
        });
    }

    #[test]
    fn a_turn_with_more_ready_connections_than_a_batch_rests_the_server_briefly() {
        let (mut s, addr) = server();
        let mut clients: Vec<TcpStream> = (0..2 * SERVE_BATCH).map(|_| client(addr)).collect();
        turn_until(&mut s, READY, |s| s.conns.len() == clients.len());
        for c in &mut clients {
            c.write_all(b"GET /readyz HTTP/1.1\r\n\r\n").unwrap();
        }
        turn_until(&mut s, READY, |s| s.resting_until.is_some());
        let until = s.resting_until.unwrap();
        assert!(s.next_deadline().unwrap() <= until);
        // While resting, neither the listener nor a connection is polled for input.
        let mut fds = Vec::new();
        s.poll_fds(&mut fds);
        assert_eq!(fds.len(), clients.len());
        assert!(fds.iter().all(|f| f.events().is_empty()));
        drop(fds);
        s.on_poll(&vec![PollFlags::empty(); clients.len()], READY, until);
        assert!(s.resting_until.is_none());
    }

    #[test]
    fn many_pipelined_requests_to_a_slow_reader_are_all_answered_in_order() {
        let (mut s, addr) = server();
        let mut c = client(addr);
        // A small receive window, so the server's writes come out partial.
        nix::sys::socket::setsockopt(&c, sockopt::RcvBuf, &16384).unwrap();
        let n = 2000;
        let mut to_send: Vec<u8> = Vec::new();
        for i in 0..n {
            let path = if i % 2 == 0 { "/readyz" } else { "/nope" };
            to_send.extend_from_slice(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes());
        }
        let mut sent = 0;
        let mut got = Vec::new();
        let mut turns = 0;
        // Each response ends in a body of "ok" or "not found"; count them as they come.
        let mut seen = 0;
        while seen < n {
            turns += 1;
            assert!(turns < 100_000, "stuck");
            if sent < to_send.len() {
                match c.write(&to_send[sent..(sent + 1000).min(to_send.len())]) {
                    Ok(k) => sent += k,
                    Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
                }
            }
            turn_waiting(&mut s, READY, Instant::now(), 1);
            let mut buf = [0u8; 2048];
            if let Ok(k) = c.read(&mut buf) {
                let from = got.len().saturating_sub(8);
                got.extend_from_slice(&buf[..k]);
                seen += got[from..]
                    .windows(9)
                    .filter(|w| *w == b"HTTP/1.1 ")
                    .count();
            }
        }
        let text = String::from_utf8(got).unwrap();
        let statuses: Vec<&str> = text.split("HTTP/1.1 ").skip(1).map(|r| &r[..3]).collect();
        assert_eq!(statuses.len(), n);
        for (i, st) in statuses.iter().enumerate() {
            assert_eq!(*st, if i % 2 == 0 { "200" } else { "404" }, "response {i}");
        }
    }

    #[test]
    fn an_oversized_head_gets_431_even_while_the_client_keeps_sending() {
        let (mut s, addr) = server();
        let mut c = client(addr);
        let mut head = b"GET /readyz HTTP/1.1\r\nX-Pad: ".to_vec();
        head.resize(3 * MAX_HEAD, b'a');
        let mut sent = 0;
        let mut got = Vec::new();
        turn_until(&mut s, READY, |_| {
            if sent < head.len() {
                if let Ok(k) = c.write(&head[sent..]) {
                    sent += k;
                }
            }
            match read_some(&mut c) {
                Some(b) => got.extend(b),
                None => return true,
            }
            false
        });
        let text = String::from_utf8(got).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(text.contains("Connection: close"), "{text}");
    }
}
