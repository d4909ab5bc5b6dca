//! Signal intake: every signal drainit collects is blocked and read from a signalfd(2) that the
//! event loop polls, as tini (sigtimedwait) and catatonit (signalfd) do. No handler ever runs in
//! drainit: a signal storm cannot pre-empt the loop, real-time signals keep their queue, a
//! blocked signal is queued even for PID 1 (the kernel drops only what PID 1 neither handles nor
//! blocks), and drainit is never stopped by TSTP/TTIN/TTOU. Installed first thing in `main`,
//! before argument parsing and long before the fork, so a signal sent at start-up waits in the
//! queue (dumb-init#102). The child gets an empty mask back before exec (sys.rs). Also owns
//! which signals are forwarded at all (contract, point 2).
//!
//! signal-hook's self-pipe was the first intake; measured against the other inits it cost 3x
//! their start-up (≈60 handler registrations) and 2x their CPU per signal, and under a storm of
//! 50 000 signals its handlers kept pre-empting the loop (docs/performance.md).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::parse::Sig;
use crate::sys;

/// How many signals one turn of the loop takes, so a storm cannot starve reaping and probes;
/// the rest stay queued and the descriptor stays readable for the next turn.
const BATCH: usize = 256;
/// How many signalfd records one read(2) asks for, and their size (signalfd(2)).
const READ_AT_ONCE: usize = 16;
const SIGINFO_BYTES: usize = std::mem::size_of::<libc::signalfd_siginfo>();

/// The signals drainit collects, as a list: all but KILL and STOP (impossible), the fault
/// signals (about drainit itself: they keep their default action), and PIPE (drainit's own
/// broken pipes are not news for the app; Rust already ignores it). SIGCHLD is collected only
/// to wake the loop. `caught_set` is what drainit blocks; a test holds the two equal.
#[cfg(test)]
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

/// `caught()` as a signal set. nix's `Signal` cannot name real-time signals, so start from the
/// full set (which the C library already leaves its reserved ones out of) and take away.
fn caught_set() -> SigSet {
    let mut set = SigSet::all();
    for sig in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGILL,
        Signal::SIGTRAP,
        Signal::SIGABRT,
        Signal::SIGBUS,
        Signal::SIGFPE,
        Signal::SIGSEGV,
        Signal::SIGSYS,
        Signal::SIGPIPE,
    ] {
        set.remove(sig);
    }
    set
}

/// The real-time signals this C library keeps for itself (glibc: 32-33, musl: 32-34): drainit
/// cannot block or catch them, so they can be neither stop signals nor `--rewrite` sources
/// here. (They can still be sent: `--rewrite USR1:34` works.)
pub fn reserved() -> std::ops::Range<libc::c_int> {
    32..libc::SIGRTMIN()
}

/// Is `sig` passed on to the child at all (before stop-signal handling and `--rewrite`)?
pub fn is_forwarded(sig: Sig) -> bool {
    sig != Sig::CHLD && sig.0 != libc::SIGPIPE && !sig.is_fault() && !sig.is_uncatchable()
}

/// The signalfd, and so the queue of blocked signals behind it.
pub struct Intake {
    fd: SignalFd,
}

impl Intake {
    /// Block every signal in `caught()` and open a non-blocking, close-on-exec signalfd for
    /// them. The mask is set, not added to: whatever the parent blocked is drainit's no more.
    ///
    /// SEGV and BUS get back their default action: Rust's runtime catches them to report a stack
    /// overflow, and its handler returns from a SEGV or BUS sent by kill(2), so a non-PID-1
    /// drainit survived the first one (contract, point 2: the default action), and a PID 1 could
    /// die of SEGV and BUS sent back to back. A real fault still ends drainit, without the
    /// overflow message. The reserved real-time signals are ignored, so one cannot end a
    /// drainit that is not PID 1 (their default action) and orphan the app.
    pub fn install() -> io::Result<Intake> {
        for sig in [Signal::SIGSEGV, Signal::SIGBUS] {
            sys::restore_default(sig)?;
        }
        for sig in reserved() {
            if let Err(e) = sys::ignore_reserved(sig) {
                log::debug!("cannot ignore reserved signal {sig}: {e}");
            }
        }
        let set = caught_set();
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&set), None)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Intake { fd })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The signals queued since the last call, in the order the kernel hands them out (lowest
    /// standard signal first; real-time signals in their queue order), at most `BATCH` per
    /// call. Like the kernel, this has one of each standard signal; real-time ones are queued.
    ///
    /// Several records per read(2), so the usual wake-up (one signal) costs one read, not a
    /// second one to hear EAGAIN: a short read means the queue was empty behind it. That read
    /// sits between a signal's arrival and its forward (docs/performance.md, latency).
    pub fn pending(&mut self) -> Vec<Sig> {
        let mut out = Vec::new();
        let mut buf = [0u8; READ_AT_ONCE * SIGINFO_BYTES];
        while out.len() < BATCH {
            let want = (BATCH - out.len()).min(READ_AT_ONCE) * SIGINFO_BYTES;
            match nix::unistd::read(&self.fd, buf.get_mut(..want).unwrap_or_default()) {
                Ok(n) => {
                    // struct signalfd_siginfo (signalfd(2)) starts with the u32 ssi_signo.
                    out.extend(
                        buf.get(..n)
                            .unwrap_or_default()
                            .chunks_exact(SIGINFO_BYTES)
                            .map(|info| {
                                let signo = info.first_chunk::<4>().copied().unwrap_or_default();
                                Sig(i32::try_from(u32::from_ne_bytes(signo)).unwrap_or(0))
                            }),
                    );
                    if n < want {
                        break;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(e) => {
                    log::debug!("reading the signalfd: {e}");
                    break;
                }
            }
        }
        out
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
    fn the_blocked_set_is_exactly_the_caught_list() {
        // In a thread of its own, so the test harness's other threads keep their masks.
        let blk = std::thread::spawn(|| {
            pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&caught_set()), None).unwrap();
            let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("SigBlk:")).unwrap();
            u64::from_str_radix(line.trim_start_matches("SigBlk:").trim(), 16).unwrap()
        })
        .join()
        .unwrap();
        let blocked: Vec<libc::c_int> = (1..=64).filter(|n| blk & (1u64 << (n - 1)) != 0).collect();
        assert_eq!(blocked, caught());
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
