//! Signal intake: every signal drainit can catch lands, via signal-hook's handler, in a
//! self-pipe that the event loop polls. Installed first thing in `main`, before argument parsing
//! and long before the fork, so a signal sent at start-up waits in the pipe instead of being
//! dropped (dumb-init#102). Also owns which signals are forwarded at all (contract, point 2).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use signal_hook::iterator::backend::SignalDelivery;
use signal_hook::iterator::exfiltrator::SignalOnly;

use crate::parse::Sig;
use crate::sys;

/// The signals drainit catches: all but KILL and STOP (impossible), the fault signals (about
/// drainit itself: they keep their default action), and PIPE (drainit's own broken pipes are
/// not news for the app; Rust already ignores it). SIGCHLD is caught only to wake the loop.
pub fn caught() -> Vec<libc::c_int> {
    let standard = (1..32).filter(|&n| {
        let s = Sig(n);
        !s.is_uncatchable() && !s.is_fault() && n != libc::SIGPIPE
    });
    // Real-time signals as this libc allows them: glibc keeps 32-33 and musl 32-34 for itself.
    standard
        .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
        .collect()
}

/// The real-time signals this C library keeps for itself (glibc: 32-33, musl: 32-34): drainit
/// cannot catch them, so they can be neither stop signals nor `--rewrite` sources here. (They
/// can still be sent: `--rewrite USR1:34` works.)
pub fn reserved() -> std::ops::Range<libc::c_int> {
    32..libc::SIGRTMIN()
}

/// Is `sig` passed on to the child at all (before stop-signal handling and `--rewrite`)?
pub fn is_forwarded(sig: Sig) -> bool {
    sig != Sig::CHLD && sig.0 != libc::SIGPIPE && !sig.is_fault() && !sig.is_uncatchable()
}

/// The read end of the self-pipe and the per-signal flags behind it.
pub struct Intake {
    delivery: SignalDelivery<UnixStream, SignalOnly>,
}

impl Intake {
    /// Install handlers for every signal in `caught()`. Job-control signals are among them, so
    /// drainit itself is never stopped by TSTP/TTIN/TTOU: it forwards them instead.
    ///
    /// SEGV and BUS also get back their default action: Rust's runtime catches them to report
    /// a stack overflow, and its handler returns from a SEGV or BUS sent by kill(2), so a
    /// non-PID-1 drainit survived the first one (contract, point 2: the default action), and a
    /// PID 1, which the kernel spares a signal it has no handler for, could die of SEGV and
    /// BUS sent back to back (a forced SIGSEGV when the nested frames overflow the runtime's
    /// alternate signal stack). A real fault still ends drainit, without the overflow message.
    ///
    /// Signals are blocked meanwhile: signal-hook installs each OS handler a moment before it
    /// records where the signal goes, and one landing in between would be dropped, neither
    /// collected nor given its default action. Blocked, it waits and is collected after.
    pub fn install() -> io::Result<Intake> {
        for sig in [Signal::SIGSEGV, Signal::SIGBUS] {
            sys::restore_default(sig)?;
        }
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut old = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut old),
        )?;
        let delivery = SignalDelivery::with_pipe(read, write, SignalOnly, caught());
        // A reserved real-time signal sent to a drainit that is not PID 1 must not kill it.
        for sig in reserved() {
            if let Err(e) = sys::ignore_reserved(sig) {
                log::debug!("cannot ignore reserved signal {sig}: {e}");
            }
        }
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None)?;
        Ok(Intake {
            delivery: delivery?,
        })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.delivery.get_read().as_fd()
    }

    /// Empty the pipe, then return the signals that arrived since the last call. Emptying first
    /// means a signal arriving meanwhile leaves a byte for the next poll: extra wake-ups are
    /// harmless, lost signals are not. Like the kernel, this keeps one of each standard signal;
    /// they come in number order.
    pub fn pending(&mut self) -> Vec<Sig> {
        self.delivery.pending().map(Sig).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_set_excludes_the_uncatchable_faults_and_pipe_but_has_job_control_and_rt() {
        let c = caught();
        for n in [9, 19, 4, 5, 6, 7, 8, 11, 31, 13] {
            assert!(!c.contains(&n), "{n} must not be caught");
        }
        for n in [
            1,
            2,
            3,
            10,
            12,
            14,
            15,
            17,
            18,
            20,
            21,
            22,
            28,
            libc::SIGRTMIN(),
            64,
        ] {
            assert!(c.contains(&n), "{n} must be caught");
        }
    }

    #[test]
    fn chld_pipe_and_faults_are_never_forwarded() {
        assert!(!is_forwarded(Sig::CHLD));
        assert!(!is_forwarded(Sig(13)));
        assert!(!is_forwarded(Sig(11)));
        assert!(is_forwarded(Sig::TERM));
        assert!(is_forwarded(Sig(20)));
        assert!(is_forwarded(Sig(40)));
    }
}
