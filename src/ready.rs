//! The readiness HTTP server (contract, point 7): `/readyz` and `/livez` served from drainit's
//! own event loop. STUB: the listener is bound (so bad and busy addresses fail before the
//! spawn) but no connection is served yet.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags};

/// What `/readyz` reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReadyState {
    /// 200 `ok`: running and (with `--ready-check`) the check passes.
    Ready,
    /// 503: the check has not passed (yet).
    NotReady,
    /// 503 `draining`: a stop signal came, or the child exited.
    Draining,
}

/// What the endpoints report, decided by the event loop for each batch of requests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Health {
    pub ready: ReadyState,
    /// `/livez`: 200 while the child runs (also while draining), 503 once it has exited.
    pub live: bool,
}

pub struct Server {
    listener: TcpListener,
}

impl Server {
    /// Bind `addr` (non-blocking, close-on-exec). Called before the spawn.
    pub fn bind(addr: SocketAddr) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Server { listener })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Push the descriptors to poll, with their interests, onto `out`.
    pub fn poll_fds<'a>(&'a self, out: &mut Vec<PollFd<'a>>) {
        out.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
    }

    /// Act on what poll reported for the descriptors `poll_fds` pushed (same order, same
    /// count), and on deadlines due at `now`. Never blocks.
    pub fn on_poll(&mut self, revents: &[PollFlags], health: Health, now: Instant) {
        let _ = (revents, health, now);
    }

    /// The next time `on_poll` must run even if no descriptor is ready.
    pub fn next_deadline(&self) -> Option<Instant> {
        None
    }
}
