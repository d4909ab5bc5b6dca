//! The readiness check (contract, point 8): about once a second, a non-blocking TCP connect or
//! HTTP GET to the app, with a 1 s timeout, run from the event loop. STUB: never passes.

use std::time::Instant;

use nix::poll::{PollFd, PollFlags};

use crate::parse::CheckTarget;

pub struct Checker {
    target: CheckTarget,
}

impl Checker {
    /// The first check starts at the first `on_poll`.
    pub fn new(target: CheckTarget) -> Checker {
        Checker { target }
    }

    pub fn poll_fds<'a>(&'a self, out: &mut Vec<PollFd<'a>>) {
        let _ = (&self.target, out);
    }

    pub fn on_poll(&mut self, revents: &[PollFlags], now: Instant) {
        let _ = (revents, now);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Did the latest finished check pass? `false` until the first one does.
    pub fn passing(&self) -> bool {
        false
    }
}
