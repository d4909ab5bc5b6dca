//! Signal intake: every signal drainit collects is blocked and read from a signalfd(2) that the
//! event loop polls, as tini (sigtimedwait) and catatonit (signalfd) do. No handler ever runs in
//! drainit: a signal storm cannot pre-empt the loop, real-time signals keep their queue, a
//! blocked signal is queued even for PID 1 (the kernel drops only what PID 1 neither handles nor
//! blocks), and drainit is never stopped by TSTP/TTIN/TTOU. The signals are blocked before any
//! of drainit's own code runs (`block`, from an ELF constructor), so a signal sent at start-up
//! waits in the queue (dumb-init#102); the signalfd is opened once stdio is ensured. The child gets an empty mask back before exec (sys.rs). Also owns
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
    /// The kinds already taken since the queue was last seen empty (bit N-1 for signal N): a
    /// queue longer than one batch is still "pending together" across the batches.
    seen: u64,
}

/// Block every signal in `caught()`, give SIGCHLD its default action and ignore the reserved
/// real-time signals: the first thing drainit does. It runs twice: from an ELF constructor
/// (`sys::BLOCK_AT_LOAD`), before Rust's runtime starts, and again as `main`'s first step
/// (in case a platform skips constructors); it opens no descriptor and allocates nothing. The
/// mask is set, not added to: whatever the parent blocked is drainit's no more.
///
/// SIGCHLD: an ignored SIGCHLD survives exec, and with it the kernel reaps drainit's children
/// itself (even while SIGCHLD is blocked), so `waitpid` would only ever say ECHILD and drainit
/// would never see its child exit. Some supervisors and shells start programs that way.
///
/// The reserved real-time signals cannot be blocked (the C library takes them out of every
/// mask) nor caught, and their default action would end a drainit that is not PID 1 and orphan
/// the app, so they are ignored.
pub fn block() {
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&caught_set()), None);
    if let Err(e) = sys::restore_default(Signal::SIGCHLD) {
        log::debug!("cannot reset SIGCHLD to its default action: {e}");
    }
    for sig in reserved() {
        if let Err(e) = sys::ignore_reserved(sig) {
            log::debug!("cannot ignore reserved signal {sig}: {e}");
        }
    }
}

impl Intake {
    /// Open a non-blocking, close-on-exec signalfd for the signals `block` blocked (signals
    /// that arrived since are queued and read from it). Call after `fds::ensure_stdio`, so the
    /// descriptor never lands on fd 0-2.
    ///
    /// SEGV and BUS get back their default action: Rust's runtime catches them (after the
    /// constructor ran, so not before `main`) to report a stack overflow, and its handler
    /// returns from a SEGV or BUS sent by kill(2), so a non-PID-1 drainit survived the first
    /// one (contract, point 2: the default action), and a PID 1 could die of SEGV and BUS sent
    /// back to back. A real fault still ends drainit, without the overflow message.
    pub fn open() -> io::Result<Intake> {
        for sig in [Signal::SIGSEGV, Signal::SIGBUS] {
            sys::restore_default(sig)?;
        }
        let set = caught_set();
        // Again: cheap, and the signalfd must never watch signals that are not blocked.
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&set), None)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Intake { fd, seen: 0 })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The signals queued since the last call, in the order the kernel hands them out (lowest
    /// standard signal first; real-time signals in their queue order), each kind once (see
    /// `coalesce`), from at most `BATCH` queued signals per call.
    ///
    /// Several records per read(2), so the usual wake-up (one signal) costs one read, not a
    /// second one to hear EAGAIN: a short read means the queue was empty behind it. That read
    /// sits between a signal's arrival and its forward (docs/performance.md, latency).
    pub fn pending(&mut self) -> Vec<Sig> {
        let (batch, emptied) = self.read_batch();
        let out = coalesce(batch, &mut self.seen);
        if emptied {
            self.seen = 0;
        }
        out
    }

    /// Up to `BATCH` queued signals, and whether the queue was seen empty behind them.
    fn read_batch(&mut self) -> (Vec<Sig>, bool) {
        let mut emptied = false;
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
                        emptied = true;
                        break;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => {
                    emptied = true;
                    break;
                }
                Err(e) => {
                    log::debug!("reading the signalfd: {e}");
                    emptied = true;
                    break;
                }
            }
        }
        (out, emptied)
    }
}

/// `batch` with each signal once, where it first came. The kernel keeps one pending instance
/// of a standard signal but queues every real-time one: five RTMIN+1s sent while drainit was
/// stopped or busy would be five forwards, and two queued stop signals would read as "a second
/// stop signal" and cut the drain delay short. Signals of one kind that were pending together
/// are one event (contract, point 2), real-time ones included. `seen` carries the kinds taken
/// from the same backlog by earlier batches (a backlog over `BATCH` signals is read in turns).
///
/// SIGCHLD always passes: it is never forwarded, only a cue to reap, and one that arrived after
/// this backlog's earlier batch was reaped for must still wake the reaper.
fn coalesce(mut batch: Vec<Sig>, seen: &mut u64) -> Vec<Sig> {
    // In place: this runs between a signal's arrival and its forward.
    batch.retain(|sig| {
        if *sig == Sig::CHLD {
            return true;
        }
        let Some(bit) = (1..=64).contains(&sig.0).then(|| 1u64 << (sig.0 - 1)) else {
            return true;
        };
        let first = *seen & bit == 0;
        *seen |= bit;
        first
    });
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_of_one_kind_in_one_read_are_one_event_in_first_arrival_order() {
        let s = |v: &[i32]| v.iter().map(|n| Sig(*n)).collect::<Vec<_>>();
        let fresh = |v: Vec<Sig>| coalesce(v, &mut 0);
        assert_eq!(
            fresh(s(&[18, 35, 35, 36, 36, 36, 36, 36, 10])),
            s(&[18, 35, 36, 10])
        );
        assert_eq!(fresh(s(&[64, 1, 64, 1, 15])), s(&[64, 1, 15]));
        assert_eq!(fresh(Vec::new()), Vec::new());
        // Numbers no signal has (never read from a signalfd) are kept, not folded.
        assert_eq!(fresh(s(&[0, 0, 200])), s(&[0, 0, 200]));
    }

    #[test]
    fn a_backlog_read_in_several_batches_is_still_one_event_per_kind_but_sigchld() {
        let s = |v: &[i32]| v.iter().map(|n| Sig(*n)).collect::<Vec<_>>();
        let mut seen = 0;
        assert_eq!(coalesce(s(&[17, 37, 37]), &mut seen), s(&[17, 37]));
        // The next batch of the same backlog: RTMIN+3 was taken already; SIGCHLD still wakes
        // the reaper (a child may have ended since the last reap).
        assert_eq!(coalesce(s(&[37, 17, 38]), &mut seen), s(&[17, 38]));
    }

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
