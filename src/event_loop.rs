//! The one event loop, and the one mutable owner of drainit's state once the child runs. Each
//! turn reads like tini's: wait (poll the signal pipe, the readiness sockets, the check), take
//! the pending signals, reap, serve HTTP, act on due deadlines. Nothing in here blocks except
//! poll itself, and nothing here exits early: errors are logged and survived (catatonit's rule).

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::check::Checker;
use crate::child::Child;
use crate::config::{Config, Target};
use crate::drain::{Action, Drain, KillWhy, Why};
use crate::logging::Throttle;
use crate::parse::{Sig, human};
use crate::ready::{Health, ReadyState, Server};
use crate::reap;
use crate::signals::{self, Intake};
use crate::status::{self, Ended};

/// How long the final reap may take after SIGKILL: a process stuck in uninterruptible sleep must
/// not keep PID 1 alive forever.
const FINAL_REAP_LIMIT: Duration = Duration::from_secs(5);
/// How often the leftover wait looks for processes that are not drainit's children (as PID 1).
const STRANGERS_POLL: Duration = Duration::from_millis(50);
/// poll's longest wait; a bound so a clock oddity can never park the loop for long.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// poll's report on the descriptors of the check and of the readiness server.
struct Polled {
    check: Vec<PollFlags>,
    server: Vec<PollFlags>,
}

pub struct EventLoop {
    config: Config,
    intake: Intake,
    server: Option<Server>,
    checker: Option<Checker>,
    child: Child,
    drain: Drain,
    ended: Option<Ended>,
    forward_errors: Throttle,
    /// SIGCHLD was read and not yet followed by a reap; see `reap`.
    reap_due: bool,
    /// As PID 1, only processes that are not drainit's children are left; see `reap`.
    watch_strangers: bool,
}

impl EventLoop {
    pub fn new(
        config: Config,
        intake: Intake,
        server: Option<Server>,
        checker: Option<Checker>,
        child: Child,
    ) -> EventLoop {
        let drain = Drain::new(
            config.drain_delay,
            config.grace_period,
            config.leftover_wait(),
        )
        .dropping(config.dropped_stop_signals());
        EventLoop {
            config,
            intake,
            server,
            checker,
            child,
            drain,
            ended: None,
            forward_errors: Throttle::new(Duration::from_secs(10)),
            // The first turn reaps whatever came: the child may have died before the loop.
            reap_due: true,
            watch_strangers: false,
        }
    }

    /// Run until the child and everything it left behind are gone; return the exit status.
    pub fn run(mut self) -> u8 {
        while !self.drain.is_done() {
            let polled = self.wait();
            let now = Instant::now();
            self.take_signals(now);
            self.reap(now);
            self.serve(&polled, now);
            self.tick(now);
        }
        self.final_reap();
        self.child.release_terminal();
        self.exit_status()
    }

    /// Block in poll until a descriptor is ready or the next deadline. Returns what poll said
    /// about the check's and the server's descriptors, each in the order they pushed them.
    fn wait(&self) -> Polled {
        let mut fds = vec![PollFd::new(self.intake.fd(), PollFlags::POLLIN)];
        if let Some(c) = &self.checker {
            c.poll_fds(&mut fds);
        }
        let server_from = fds.len();
        if let Some(s) = &self.server {
            s.poll_fds(&mut fds);
        }
        let deadline = [
            self.drain.next_deadline(),
            self.checker.as_ref().and_then(Checker::next_deadline),
            self.server.as_ref().and_then(Server::next_deadline),
        ]
        .into_iter()
        .flatten()
        .min();
        let wait = deadline.map_or(MAX_WAIT, |d| {
            d.saturating_duration_since(Instant::now())
                // Round up: waking a hair early would spin until the deadline.
                .saturating_add(Duration::from_micros(999))
                .min(MAX_WAIT)
        });
        // A SIGCHLD read after this turn's reap (by `serve`) is no longer in the signalfd.
        let wait = if self.reap_due {
            Duration::ZERO
        } else if self.watch_strangers {
            wait.min(STRANGERS_POLL)
        } else {
            wait
        };
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => log::debug!("poll: {e}"),
        }
        // Without a check or a server both lists are empty and nothing is allocated: this runs
        // between a signal's arrival and its forward.
        let mut revents = fds
            .iter()
            .skip(1)
            .map(|f| f.revents().unwrap_or(PollFlags::empty()));
        let check = revents
            .by_ref()
            .take(server_from.saturating_sub(1))
            .collect();
        let server = revents.collect();
        Polled { check, server }
    }

    fn take_signals(&mut self, now: Instant) {
        for sig in self.intake.pending() {
            if sig == Sig::CHLD {
                self.reap_due = true;
            }
            if !signals::is_forwarded(sig) {
                continue;
            }
            let actions = if self.config.is_stop_signal(sig) {
                self.drain.on_stop_signal(sig, now)
            } else {
                self.drain.on_other_signal(sig)
            };
            self.perform(actions, now);
        }
    }

    /// Reap, but only after a SIGCHLD, and then until waitpid has nothing more. No ending is
    /// missed: the kernel raises SIGCHLD in drainit after every state change of a child (an
    /// orphan handed to drainit as a zombie too), SIGCHLD is blocked from before the fork, so
    /// it waits in the signalfd, and one pending SIGCHLD stands for any number of endings,
    /// which is why one pass reaps until empty. The first turn reaps regardless.
    ///
    /// As PID 1, processes that are not drainit's children (`docker exec`, `nsenter`) end with
    /// no SIGCHLD to drainit: while only they are left, `watch_strangers` has the loop look
    /// every `STRANGERS_POLL` instead.
    fn reap(&mut self, now: Instant) {
        let due = std::mem::take(&mut self.reap_due) || self.watch_strangers;
        if !due || (self.child.is_reaped() && self.drain.is_done()) {
            return;
        }
        let reaped = reap::reap(self.child.unreaped());
        let child_ended = reaped.child;
        if let Some(ended) = child_ended {
            self.child.mark_reaped();
            self.ended.get_or_insert(ended);
            log_child_end(self.child.pid, ended);
        }
        // Asked once a pass, and only when waitpid sees no child at all.
        let only_strangers = reaped.none_left && self.child.is_reaped() && reap::strangers_left();
        if child_ended.is_some() {
            let left = !reaped.none_left || only_strangers;
            let actions = self.drain.on_child_exit(now, left);
            self.perform(actions, now);
        }
        self.watch_strangers = only_strangers && !self.drain.is_done();
        if reaped.none_left && self.child.is_reaped() && !only_strangers {
            self.drain.on_nothing_left();
        }
    }

    /// Advance the check, then answer probes with the health as of this turn: the signals were
    /// taken first, so a probe that arrived with SIGTERM already sees 503.
    fn serve(&mut self, polled: &Polled, now: Instant) {
        // Draining always wins over the check, so once it starts the check has nothing left to
        // say: stop it (no connects to an app that is shutting down, no log lines about it).
        if self.drain.draining() {
            self.checker = None;
        }
        if let Some(c) = &mut self.checker {
            c.on_poll(&polled.check, now);
        }
        // A stop signal that landed since take_signals must flip /readyz before these answers.
        if polled.server.iter().any(|f| !f.is_empty()) {
            self.take_signals(now);
        }
        let health = self.health();
        if let Some(s) = &mut self.server {
            s.on_poll(&polled.server, health, now);
        }
    }

    fn tick(&mut self, now: Instant) {
        let actions = self.drain.on_tick(now);
        self.perform(actions, now);
    }

    /// What the readiness endpoints say right now. Draining always wins over the check.
    fn health(&self) -> Health {
        let ready = if self.drain.draining() {
            ReadyState::Draining
        } else if self.checker.as_ref().is_some_and(|c| !c.passing()) {
            ReadyState::NotReady
        } else {
            ReadyState::Ready
        };
        Health {
            ready,
            live: self.drain.child_running(),
        }
    }

    fn perform(&mut self, actions: Vec<Action>, now: Instant) {
        for action in actions {
            match action {
                Action::Hold { sig, delay } => log::info!(
                    "{sig} received: /readyz now answers 503; holding {sig} for {} before \
                     forwarding it",
                    human(delay)
                ),
                Action::Forward { sig, why } => self.forward(sig, why, now),
                Action::KillChild { grace } => {
                    log::info!(
                        "grace period ({}) over: sending SIGKILL to {}",
                        human(grace),
                        self.describe(Target::Group)
                    );
                    if let Err(e) = self.child.kill_group() {
                        log::debug!("SIGKILL to the child's group: {e}");
                    }
                }
                Action::DropHeld { sig } => {
                    log::info!("the child exited during the drain delay: {sig} not forwarded")
                }
                Action::TermLeftovers { wait } => {
                    if reap::signal_leftovers(Sig::TERM, self.child.pid) {
                        log::info!(
                            "sent SIGTERM to the processes left; waiting up to {} for them",
                            human(wait)
                        );
                    }
                }
                Action::KillLeftovers { why } => {
                    if reap::signal_leftovers(Sig::KILL, self.child.pid) {
                        match why {
                            KillWhy::WaitOver => {
                                log::info!("processes still left after the wait: sent SIGKILL")
                            }
                            KillWhy::StopSignal(sig) => log::info!(
                                "{sig} received while waiting for the processes left: sent SIGKILL"
                            ),
                        }
                    }
                }
            }
        }
    }

    /// Forward `sig` after `--rewrite`, where `Config::target` says the received `sig` goes.
    fn forward(&mut self, sig: Sig, why: Why, now: Instant) {
        let target = self.config.target(sig);
        let to = self.describe(target);
        let Some(out) = self.config.rewrite(sig) else {
            // Per-signal lines stay at debug, so a storm of dropped signals cannot flood the log;
            // the drain's own step is worth an info line.
            if why == Why::PassOn {
                log::debug!("{sig} dropped (--rewrite {sig}:NONE)");
            } else if self.config.grace_period.is_some() {
                log::info!(
                    "{sig} dropped (--rewrite {sig}:NONE): nothing forwarded, so no SIGKILL \
                     follows (the grace period starts when a stop signal is sent)"
                );
            } else {
                log::info!("{sig} dropped (--rewrite {sig}:NONE): nothing forwarded");
            }
            return;
        };
        let what = Forwarded { out, from: sig };
        match why {
            Why::PassOn => log::debug!("forwarding {what} to {to}"),
            Why::NoDelay => log::info!("{sig} received: forwarding {what} to {to}"),
            Why::DelayOver => log::info!("drain delay over: forwarding {what} to {to}"),
            Why::StartsGrace => {
                log::info!("{sig} received: forwarding {what} to {to}; the grace period starts")
            }
            Why::CutShort => {
                log::info!("second stop signal: drain delay cut short, forwarding {what} to {to}")
            }
        }
        match self.child.send(out, target) {
            Ok(()) => {}
            // The group is already gone (the child exited, not yet reaped): nothing to tell.
            Err(Errno::ESRCH) => log::debug!("{what}: no process left to receive it"),
            Err(e) => {
                if let Some(suppressed) = self.forward_errors.hit(now) {
                    log::warn!(
                        "cannot forward {what} to {to}: {e}{}",
                        if suppressed > 0 {
                            format!(" ({suppressed} similar failures not logged)")
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
    }

    /// A target as the log names it; formatted only if a line is logged (signal storms).
    fn describe(&self, target: Target) -> Named {
        Named {
            target,
            pid: self.child.pid,
        }
    }

    /// After SIGKILL (or with nothing left), reap until no child remains, bounded in time.
    fn final_reap(&mut self) {
        let start = Instant::now();
        loop {
            let reaped = reap::reap(self.child.unreaped());
            if let Some(ended) = reaped.child {
                // Only if the child ended in this same pass (e.g. a stop signal right at exit).
                self.child.mark_reaped();
                self.ended.get_or_insert(ended);
            }
            if reaped.none_left || start.elapsed() >= FINAL_REAP_LIMIT {
                return;
            }
            // Something forked after the SIGKILL, or is still dying: ask again, briefly.
            reap::signal_leftovers(Sig::KILL, self.child.pid);
            let mut fds = [PollFd::new(self.intake.fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(10u8));
            let _ = self.intake.pending();
        }
    }

    fn exit_status(&self) -> u8 {
        let Some(ended) = self.ended else {
            log::error!("the child's status was never collected; exiting with 1");
            return 1;
        };
        let code = ended.code();
        let mapped = status::remap(code, &self.config.remap_exit);
        if mapped == code {
            log::info!("exiting with status {code}");
        } else {
            log::info!("exiting with status {mapped} (--remap-exit {code}:{mapped})");
        }
        mapped
    }
}

/// `process group 7` or `child 7`, for log lines.
#[derive(Clone, Copy)]
struct Named {
    target: Target,
    pid: i32,
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.target {
            Target::Group => write!(f, "process group {}", self.pid),
            Target::Child => write!(f, "child {}", self.pid),
        }
    }
}

/// A forwarded signal as the log names it, formatted only when a line is written: the forward
/// allocates nothing (it runs between a signal's arrival and its delivery).
struct Forwarded {
    out: Sig,
    from: Sig,
}

impl std::fmt::Display for Forwarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.out == self.from {
            write!(f, "{}", self.out)
        } else {
            write!(f, "{} (rewritten from {})", self.out, self.from)
        }
    }
}

fn log_child_end(pid: i32, ended: Ended) {
    match ended {
        Ended::Exited(code) => log::info!("child {pid} exited with status {code}"),
        Ended::Signaled(n) => log::info!(
            "child {pid} was killed by {} (status {})",
            Sig(n),
            ended.code()
        ),
    }
}
