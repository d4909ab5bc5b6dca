//! The drain state machine (contract, points 3 and 5), pure: it takes events and `now`, and
//! returns what to do and when it next needs to be woken. No syscalls, no clock, no logging, so
//! every timing rule is tested without processes or sleeps.
//!
//! ```text
//! Running --stop--> Holding --delay over / 2nd stop--> Forwarded --grace over--> Killed
//!    |                 |                                  |                        |
//!    +-----------------+---------- child exited ----------+------------------------+
//!                                       v
//!                          Leftovers --nothing left / wait over / stop--> Done
//! ```

use std::time::{Duration, Instant};

use crate::parse::Sig;

/// Why a signal is forwarded; the event loop logs the stop-related ones at info.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Why {
    /// An ordinary signal, or a stop signal after the forward: passed on at once.
    PassOn,
    /// The first stop signal with no drain delay.
    NoDelay,
    /// The drain delay ran out.
    DelayOver,
    /// A second stop signal cut the delay short.
    CutShort,
    /// The first stop signal that is sent after `--rewrite` dropped the first: the grace period
    /// starts with it.
    StartsGrace,
}

/// What the event loop must do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// The first stop signal: `/readyz` is now 503; `sig` is held for `delay`.
    Hold { sig: Sig, delay: Duration },
    /// Forward `sig` (the loop applies `--rewrite`) to the child's group, or the child with `-c`.
    Forward { sig: Sig, why: Why },
    /// The grace period after the forward ran out: SIGKILL the child's process group.
    KillChild { grace: Duration },
    /// The child exited while `sig` was held: it is dropped, never forwarded.
    DropHeld { sig: Sig },
    /// The child exited: SIGTERM every process left and wait for them up to `wait`.
    TermLeftovers { wait: Duration },
    /// SIGKILL every process left (the wait ran out, or a stop signal ended it).
    KillLeftovers { why: KillWhy },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KillWhy {
    WaitOver,
    StopSignal(Sig),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// The child runs; nothing asked us to stop.
    Running,
    /// A stop signal came; it is held until `until`.
    Holding { sig: Sig, until: Instant },
    /// The stop signal went to the child; SIGKILL at `kill_at` (never if `None`).
    Forwarded { kill_at: Option<Instant> },
    /// The child's group got SIGKILL; waiting for the child to be reaped.
    Killed,
    /// The child is gone; the rest got SIGTERM and have until `kill_at`.
    Leftovers { kill_at: Instant },
    /// Nothing left to wait for (or SIGKILL sent): reap what remains and exit.
    Done,
}

#[derive(Debug)]
pub struct Drain {
    delay: Duration,
    grace: Option<Duration>,
    leftover_wait: Duration,
    /// The stop signals `--rewrite` drops: forwarding one sends nothing.
    dropped: Vec<Sig>,
    phase: Phase,
}

impl Drain {
    pub fn new(delay: Duration, grace: Option<Duration>, leftover_wait: Duration) -> Drain {
        Drain {
            delay,
            grace,
            leftover_wait,
            dropped: Vec::new(),
            phase: Phase::Running,
        }
    }

    /// Which stop signals `--rewrite FROM:NONE` drops. The grace period starts "after the
    /// forward" (contract, point 3): when the forward sends nothing, no timer starts, and none
    /// SIGKILLs an app that was never asked to stop. A later stop signal that is sent starts it.
    pub fn dropping(mut self, dropped: Vec<Sig>) -> Drain {
        self.dropped = dropped;
        self
    }

    /// The grace timer as it starts when `sig` is forwarded at `now`: never if `sig` is dropped.
    fn kill_at(&self, sig: Sig, now: Instant) -> Option<Instant> {
        if self.dropped.contains(&sig) {
            None
        } else {
            self.grace.map(|g| now + g)
        }
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// `/readyz` is 503 from the first stop signal on (and after the child exits).
    pub fn draining(&self) -> bool {
        self.phase != Phase::Running
    }

    /// `/livez` is 200 while the child runs, also while draining.
    pub fn child_running(&self) -> bool {
        !matches!(self.phase, Phase::Leftovers { .. } | Phase::Done)
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// A stop signal arrived.
    pub fn on_stop_signal(&mut self, sig: Sig, now: Instant) -> Vec<Action> {
        match self.phase {
            Phase::Running if self.delay.is_zero() => self.forward(sig, Why::NoDelay, now),
            Phase::Running => {
                self.phase = Phase::Holding {
                    sig,
                    until: now + self.delay,
                };
                vec![Action::Hold {
                    sig,
                    delay: self.delay,
                }]
            }
            // What is forwarded is the first stop signal, once; the second only ends the wait.
            Phase::Holding { sig: held, .. } => self.forward(held, Why::CutShort, now),
            // The first forward sent nothing: this one is the first that stops the app.
            Phase::Forwarded { kill_at: None } => {
                let kill_at = self.kill_at(sig, now);
                self.phase = Phase::Forwarded { kill_at };
                // The step that starts the grace timer is worth its info line (point 3).
                let why = if kill_at.is_some() {
                    Why::StartsGrace
                } else {
                    Why::PassOn
                };
                vec![Action::Forward { sig, why }]
            }
            Phase::Forwarded { .. } | Phase::Killed => vec![Action::Forward {
                sig,
                why: Why::PassOn,
            }],
            Phase::Leftovers { .. } => {
                self.phase = Phase::Done;
                vec![Action::KillLeftovers {
                    why: KillWhy::StopSignal(sig),
                }]
            }
            Phase::Done => Vec::new(),
        }
    }

    /// Any other forwardable signal: passed on while the child runs, dropped after it exited.
    pub fn on_other_signal(&self, sig: Sig) -> Vec<Action> {
        if self.child_running() {
            vec![Action::Forward {
                sig,
                why: Why::PassOn,
            }]
        } else {
            Vec::new()
        }
    }

    /// The direct child was reaped. `others_left`: waitpid still sees children (leftovers).
    /// With none, there is no one to TERM or wait for: straight to `Done`.
    pub fn on_child_exit(&mut self, now: Instant, others_left: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.phase {
            Phase::Leftovers { .. } | Phase::Done => return actions,
            Phase::Holding { sig, .. } => actions.push(Action::DropHeld { sig }),
            Phase::Running | Phase::Forwarded { .. } | Phase::Killed => {}
        }
        if !others_left {
            self.phase = Phase::Done;
            return actions;
        }
        self.phase = Phase::Leftovers {
            kill_at: now + self.leftover_wait,
        };
        actions.push(Action::TermLeftovers {
            wait: self.leftover_wait,
        });
        actions
    }

    /// waitpid reported no children at all: after the child exited, that means we are done.
    pub fn on_nothing_left(&mut self) {
        if let Phase::Leftovers { .. } = self.phase {
            self.phase = Phase::Done;
        }
    }

    /// Time passed; act on any deadline that is due.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        match self.phase {
            Phase::Holding { sig, until } if now >= until => self.forward(sig, Why::DelayOver, now),
            Phase::Forwarded {
                kill_at: Some(at), ..
            } if now >= at => {
                self.phase = Phase::Killed;
                vec![Action::KillChild {
                    grace: self.grace.unwrap_or_default(),
                }]
            }
            Phase::Leftovers { kill_at } if now >= kill_at => {
                self.phase = Phase::Done;
                vec![Action::KillLeftovers {
                    why: KillWhy::WaitOver,
                }]
            }
            _ => Vec::new(),
        }
    }

    /// When `on_tick` next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Holding { until, .. } => Some(until),
            Phase::Forwarded { kill_at } => kill_at,
            Phase::Leftovers { kill_at } => Some(kill_at),
            Phase::Running | Phase::Killed | Phase::Done => None,
        }
    }

    fn forward(&mut self, sig: Sig, why: Why, now: Instant) -> Vec<Action> {
        self.phase = Phase::Forwarded {
            kill_at: self.kill_at(sig, now),
        };
        vec![Action::Forward { sig, why }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const QUIT: Sig = Sig(3);

    fn drain(delay: u32, grace: Option<u32>) -> Drain {
        Drain::new(delay * S, grace.map(|g| g * S), 5 * S)
    }

    fn fwd(sig: Sig, why: Why) -> Vec<Action> {
        vec![Action::Forward { sig, why }]
    }

    #[test]
    fn without_a_delay_the_first_stop_signal_is_forwarded_at_once() {
        let t = Instant::now();
        let mut d = drain(0, None);
        assert_eq!(d.on_stop_signal(Sig::TERM, t), fwd(Sig::TERM, Why::NoDelay));
        assert!(d.draining());
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn the_first_stop_signal_is_held_for_the_delay_then_forwarded_once() {
        let t = Instant::now();
        let mut d = drain(4, None);
        assert_eq!(
            d.on_stop_signal(Sig::TERM, t),
            vec![Action::Hold {
                sig: Sig::TERM,
                delay: 4 * S
            }]
        );
        assert!(
            d.draining(),
            "/readyz flips with the signal, not after the delay"
        );
        assert_eq!(d.next_deadline(), Some(t + 4 * S));
        assert!(d.on_tick(t + 3 * S).is_empty());
        assert_eq!(d.on_tick(t + 4 * S), fwd(Sig::TERM, Why::DelayOver));
        assert!(d.on_tick(t + 9 * S).is_empty(), "forwarded once only");
    }

    #[test]
    fn a_second_stop_signal_cuts_the_delay_short_and_forwards_the_first_one() {
        let t = Instant::now();
        let mut d = drain(4, None);
        d.on_stop_signal(Sig::TERM, t);
        assert_eq!(
            d.on_stop_signal(Sig::INT, t + S),
            fwd(Sig::TERM, Why::CutShort)
        );
        assert!(
            d.on_tick(t + 4 * S).is_empty(),
            "no second forward when the delay would end"
        );
        assert_eq!(d.on_stop_signal(QUIT, t + 5 * S), fwd(QUIT, Why::PassOn));
    }

    #[test]
    fn the_grace_period_starts_at_the_forward_and_ends_in_sigkill() {
        let t = Instant::now();
        let mut d = drain(2, Some(3));
        d.on_stop_signal(Sig::TERM, t);
        d.on_tick(t + 2 * S);
        assert_eq!(d.next_deadline(), Some(t + 5 * S));
        assert!(d.on_tick(t + 4 * S).is_empty());
        assert_eq!(
            d.on_tick(t + 5 * S),
            vec![Action::KillChild { grace: 3 * S }]
        );
        assert_eq!(d.phase(), Phase::Killed);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_stop_signal_that_rewrite_drops_starts_no_grace_timer_until_one_is_sent() {
        let t = Instant::now();
        let mut d = drain(0, Some(1)).dropping(vec![Sig::TERM]);
        assert_eq!(d.on_stop_signal(Sig::TERM, t), fwd(Sig::TERM, Why::NoDelay));
        assert_eq!(d.next_deadline(), None);
        assert!(
            d.on_tick(t + 3600 * S).is_empty(),
            "no SIGKILL after nothing"
        );
        // Dropped again: still nothing.
        assert_eq!(
            d.on_stop_signal(Sig::TERM, t + S),
            fwd(Sig::TERM, Why::PassOn)
        );
        assert_eq!(d.next_deadline(), None);
        // A stop signal that is sent is the forward the grace period follows.
        assert_eq!(
            d.on_stop_signal(Sig::INT, t + 2 * S),
            fwd(Sig::INT, Why::StartsGrace)
        );
        assert_eq!(d.next_deadline(), Some(t + 3 * S));
        assert_eq!(d.on_tick(t + 3 * S), vec![Action::KillChild { grace: S }]);
    }

    #[test]
    fn without_a_grace_period_nothing_is_ever_killed_while_the_child_runs() {
        let t = Instant::now();
        let mut d = drain(0, None);
        d.on_stop_signal(Sig::TERM, t);
        assert!(d.on_tick(t + 3600 * S).is_empty());
        assert!(d.child_running());
    }

    #[test]
    fn a_child_exiting_during_the_delay_drops_the_held_signal() {
        let t = Instant::now();
        let mut d = drain(4, None);
        d.on_stop_signal(Sig::TERM, t);
        assert_eq!(
            d.on_child_exit(t + S, true),
            vec![
                Action::DropHeld { sig: Sig::TERM },
                Action::TermLeftovers { wait: 5 * S }
            ]
        );
        assert!(
            d.on_tick(t + 4 * S).is_empty(),
            "never forwarded after the child is gone"
        );
    }

    #[test]
    fn leftovers_get_term_then_kill_after_the_wait_and_signals_stop_being_forwarded() {
        let t = Instant::now();
        let mut d = drain(0, Some(2));
        assert_eq!(
            d.on_child_exit(t, true),
            vec![Action::TermLeftovers { wait: 5 * S }]
        );
        assert!(!d.child_running());
        assert!(d.draining());
        assert!(d.on_other_signal(Sig::USR1).is_empty());
        assert_eq!(d.next_deadline(), Some(t + 5 * S));
        assert_eq!(
            d.on_tick(t + 5 * S),
            vec![Action::KillLeftovers {
                why: KillWhy::WaitOver
            }]
        );
        assert!(d.is_done());
    }

    #[test]
    fn a_stop_signal_during_the_leftover_wait_ends_it_at_once() {
        let t = Instant::now();
        let mut d = drain(0, None);
        d.on_child_exit(t, true);
        assert_eq!(
            d.on_stop_signal(Sig::TERM, t + S),
            vec![Action::KillLeftovers {
                why: KillWhy::StopSignal(Sig::TERM)
            }]
        );
        assert!(d.is_done());
    }

    #[test]
    fn nothing_left_ends_the_wait_early() {
        let t = Instant::now();
        let mut d = drain(0, None);
        d.on_nothing_left();
        assert_eq!(
            d.phase(),
            Phase::Running,
            "ECHILD before the child exits means nothing"
        );
        d.on_child_exit(t, true);
        d.on_nothing_left();
        assert!(d.is_done());
        assert!(d.on_tick(t + 10 * S).is_empty());
    }

    #[test]
    fn a_child_exit_with_nothing_else_left_is_done_at_once() {
        let t = Instant::now();
        let mut d = drain(4, None);
        d.on_stop_signal(Sig::TERM, t);
        assert_eq!(
            d.on_child_exit(t + S, false),
            vec![Action::DropHeld { sig: Sig::TERM }]
        );
        assert!(d.is_done());
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn other_signals_pass_on_in_every_phase_while_the_child_runs() {
        let t = Instant::now();
        let mut d = drain(4, Some(1));
        assert_eq!(d.on_other_signal(Sig::HUP), fwd(Sig::HUP, Why::PassOn));
        d.on_stop_signal(Sig::TERM, t);
        assert_eq!(d.on_other_signal(Sig::HUP), fwd(Sig::HUP, Why::PassOn));
        d.on_tick(t + 4 * S);
        d.on_tick(t + 5 * S);
        assert_eq!(d.phase(), Phase::Killed);
        assert_eq!(d.on_other_signal(Sig::HUP), fwd(Sig::HUP, Why::PassOn));
    }
}
