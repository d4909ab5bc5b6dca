//! The validated configuration: what `cli.rs` made of argv and the `DRAINIT_*` env vars. It is
//! built once, before the child is spawned, and only read after that.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use crate::parse::{CheckTarget, Rewrite, Sig};

/// How long the exit path waits for leftovers when `--grace-period` is unset (contract, point 5).
pub const DEFAULT_LEFTOVER_WAIT: Duration = Duration::from_secs(5);

/// How forwarded signals are addressed (contract, point 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Forwarding {
    /// The stop signals to the child's process group, every other signal to the child alone.
    #[default]
    StopToGroup,
    /// `-c`: every signal to the child alone, the stop signals too.
    SingleChild,
    /// `-G`: every signal to the child's process group (dumb-init's behaviour).
    GroupAll,
}

/// Where one forwarded signal goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The child's process group: a wrapper (`npm start`, `sh -c`) cannot keep it from the app.
    Group,
    /// The child alone: a process manager's master handles it, and its workers never see it.
    Child,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The command and its arguments; never empty.
    pub command: Vec<OsString>,
    /// Time between the first stop signal and forwarding it (`--drain-delay`).
    pub drain_delay: Duration,
    /// After the forward, SIGKILL the group when this runs out; `None` = never (`--grace-period`).
    pub grace_period: Option<Duration>,
    /// Where `/readyz` and `/livez` are served; `None` = no server.
    pub ready_addr: Option<SocketAddr>,
    /// What `/readyz` follows while running; `None` = ready as soon as the child runs.
    pub ready_check: Option<CheckTarget>,
    /// The signals that start draining; never empty.
    pub stop_signals: Vec<Sig>,
    /// `--rewrite` pairs; the last pair for a FROM wins.
    pub rewrites: Vec<Rewrite>,
    /// Which signals go to the child's process group (`-c`, `-G`); see `Config::target`.
    pub forwarding: Forwarding,
    /// `--remap-exit` pairs; the last pair for a FROM wins.
    pub remap_exit: Vec<(u8, u8)>,
    /// The env_logger filter (from `-v`/`-q`, else `DRAINIT_LOG`, else `info`).
    pub log_filter: String,
}

impl Config {
    /// Is `sig` one of the signals that start draining?
    pub fn is_stop_signal(&self, sig: Sig) -> bool {
        self.stop_signals.contains(&sig)
    }

    /// What to forward in place of `sig`: itself, its `--rewrite`, or `None` when dropped.
    pub fn rewrite(&self, sig: Sig) -> Option<Sig> {
        match self.rewrites.iter().rev().find(|r| r.from == sig) {
            Some(r) => r.to,
            None => Some(sig),
        }
    }

    /// The stop signals `--rewrite` drops (forwarding them sends nothing).
    pub fn dropped_stop_signals(&self) -> Vec<Sig> {
        self.stop_signals
            .iter()
            .copied()
            .filter(|s| self.rewrite(*s).is_none())
            .collect()
    }

    /// Where `sig`, as received (before `--rewrite`), is forwarded. The one place that decides
    /// it. The stop signals go to the group by default because they must reach the app behind
    /// a wrapper's shell; every other signal goes to the child alone because a process manager
    /// (gunicorn, nginx, php-fpm) handles HUP, USR1, USR2, TTIN... in its master, and the same
    /// signal sent straight to its workers kills them, as it kills a wrapper's shell.
    pub fn target(&self, sig: Sig) -> Target {
        match (self.forwarding, self.is_stop_signal(sig)) {
            (Forwarding::GroupAll, _) | (Forwarding::StopToGroup, true) => Target::Group,
            (Forwarding::SingleChild, _) | (Forwarding::StopToGroup, false) => Target::Child,
        }
    }

    /// How long the exit path waits for leftovers before SIGKILL.
    pub fn leftover_wait(&self) -> Duration {
        self.grace_period.unwrap_or(DEFAULT_LEFTOVER_WAIT)
    }
}

#[cfg(test)]
pub fn test_config() -> Config {
    Config {
        command: vec!["true".into()],
        drain_delay: Duration::ZERO,
        grace_period: None,
        ready_addr: None,
        ready_check: None,
        stop_signals: vec![Sig::TERM],
        rewrites: Vec::new(),
        forwarding: Forwarding::StopToGroup,
        remap_exit: Vec::new(),
        log_filter: "info".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_maps_drops_and_passes_through_with_the_last_pair_winning() {
        let mut c = test_config();
        c.rewrites = vec![
            Rewrite {
                from: Sig::TERM,
                to: Some(Sig::INT),
            },
            Rewrite {
                from: Sig::USR1,
                to: None,
            },
            Rewrite {
                from: Sig::TERM,
                to: Some(Sig::HUP),
            },
        ];
        assert_eq!(c.rewrite(Sig::TERM), Some(Sig::HUP));
        assert_eq!(c.rewrite(Sig::USR1), None);
        assert_eq!(c.rewrite(Sig::INT), Some(Sig::INT));
    }

    #[test]
    fn stop_signals_go_to_the_group_others_to_the_child_unless_c_or_g_says_otherwise() {
        use Forwarding::*;
        use Target::*;
        // (mode, stop signals, signal, where it goes)
        let table = [
            (StopToGroup, &[Sig::TERM][..], Sig::TERM, Group),
            (StopToGroup, &[Sig::TERM], Sig::HUP, Child),
            (StopToGroup, &[Sig::TERM], Sig::USR1, Child),
            (StopToGroup, &[Sig::TERM], Sig::INT, Child),
            (StopToGroup, &[Sig::TERM, Sig::INT], Sig::INT, Group),
            (StopToGroup, &[Sig(libc::SIGQUIT)], Sig::TERM, Child),
            (
                StopToGroup,
                &[Sig(libc::SIGQUIT)],
                Sig(libc::SIGQUIT),
                Group,
            ),
            (SingleChild, &[Sig::TERM], Sig::TERM, Child),
            (SingleChild, &[Sig::TERM], Sig::HUP, Child),
            (GroupAll, &[Sig::TERM], Sig::TERM, Group),
            (GroupAll, &[Sig::TERM], Sig::HUP, Group),
            (GroupAll, &[Sig::TERM], Sig(libc::SIGRTMIN() + 3), Group),
        ];
        for (mode, stops, sig, want) in table {
            let mut c = test_config();
            c.forwarding = mode;
            c.stop_signals = stops.to_vec();
            assert_eq!(
                c.target(sig),
                want,
                "{mode:?}, stop signals {stops:?}, {sig}"
            );
        }
    }

    #[test]
    fn leftover_wait_is_the_grace_period_or_five_seconds() {
        let mut c = test_config();
        assert_eq!(c.leftover_wait(), Duration::from_secs(5));
        c.grace_period = Some(Duration::from_millis(1500));
        assert_eq!(c.leftover_wait(), Duration::from_millis(1500));
    }
}
