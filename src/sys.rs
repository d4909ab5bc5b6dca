//! The only module with `unsafe`: the things nix cannot say safely.
//!
//! - `BLOCK_AT_LOAD`: an ELF constructor, so drainit blocks the signals it collects before the
//!   Rust runtime (or any other code of drainit's) runs.
//! - `fork_exec`: fork, set up the child (own process group, terminal, clean signal state), exec.
//!   `std::process::Command` clears the signal mask *before* its `pre_exec` hooks run, so a
//!   signal landing in that window would run drainit's handler inside the child (dumb-init#174);
//!   we keep everything blocked until the last step before exec instead.
//! - `kill`: nix's `Signal` enum cannot hold real-time signals, and drainit forwards them.
//! - `waitpid_any`: nix's `waitpid` reaps a child killed by a real-time signal and then returns
//!   `EINVAL` (it cannot build its `Signal`), losing the status. We keep the raw status.
//! - `close_raw`: inherited descriptors are known only by number (contract, point 1).
//! - `restore_default`: nix's `signal` is unsafe because a handler could be any code; SIG_DFL
//!   is none.
//! - `fork_helper`: a short-lived child that runs one blocking job (a host-name lookup) and
//!   writes its answer to a pipe, so the event loop never waits for it (drainit has no threads).
//! - `ignore_reserved`: the C library refuses to set any disposition for the real-time signals
//!   it keeps for itself, so only the raw syscall can stop one of them from killing drainit.
//! - `write_nowait`: pwritev2(2) with RWF_NOWAIT, which nix does not wrap: a write to stderr
//!   that fails rather than blocks, on a descriptor drainit shares with the app.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// Process ids as the kernel uses them (`pid_t`).
pub type Pid = libc::pid_t;

/// The highest signal number there is (`_NSIG - 1`).
const MAX_SIGNAL: libc::c_int = 64;
/// The kernel's `sigset_t` size, which rt_sigaction(2) insists on: 64 signals, one bit each.
const KERNEL_SIGSET_BYTES: libc::size_t = 8;

/// The signals drainit itself ignores right now, as a mask (bit `n - 1` for signal `n`): what
/// it inherited ignored, SIGPIPE (Rust's runtime), the C library's reserved real-time signals
/// (`ignore_reserved`). Ignored is the one disposition that survives exec (handlers are reset
/// to default), so it is all the child has to undo. The raw rt_sigaction, as in
/// `ignore_reserved`: libc's sigaction refuses to even report on the reserved numbers.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn ignored_signals() -> u64 {
    let mut mask = 0u64;
    for sig in 1..=MAX_SIGNAL {
        // The kernel's struct sigaction: the handler first on x86_64 and aarch64 (see
        // `ignore_reserved`), then flags, restorer, mask; 64 bytes is more than enough.
        let mut old = [0u64; 8];
        // SAFETY: a null new action only reads the disposition; the kernel writes at most its
        // 32-byte struct into `old` (64 bytes).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<u64>(),
                old.as_mut_ptr(),
                KERNEL_SIGSET_BYTES,
            )
        };
        if rc == 0 && old.first().copied() == Some(libc::SIG_IGN as u64) {
            mask |= 1 << (sig - 1);
        }
    }
    mask
}

/// Elsewhere the kernel's struct sigaction has another layout (MIPS puts the flags first), so
/// ask the C library, which knows it; it refuses the numbers it reserves, which `ignore_reserved`
/// leaves alone there anyway.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn ignored_signals() -> u64 {
    let mut mask = 0u64;
    for sig in 1..=MAX_SIGNAL {
        // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action only reads.
        let ignored = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
        };
        if ignored {
            mask |= 1 << (sig - 1);
        }
    }
    mask
}

/// Fork and exec `argv` (resolved through PATH) in its own process group. Returns the child's
/// pid. If exec fails, the child writes its errno (4 bytes) to `err_pipe` and exits 127; the pipe
/// is close-on-exec, so reading EOF from it means the exec succeeded.
///
/// The caller must have blocked the signals it collects (signals.rs keeps them blocked for
/// drainit's whole life, so the child starts with them blocked, SIGTTOU among them), must be
/// single-threaded, and must pass a non-empty `argv`. With `take_terminal`, the child's group
/// becomes the foreground group of the terminal on fd 0.
pub fn fork_exec(argv: &[CString], err_pipe: &OwnedFd, take_terminal: bool) -> Result<Pid, Errno> {
    // Everything the child needs is built here, before fork: after it, the child may only make
    // async-signal-safe calls (signal-safety(7)), and allocating is not one of them.
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let file = ptrs.first().copied().unwrap_or(std::ptr::null());
    if file.is_null() {
        return Err(Errno::EINVAL);
    }
    let err_fd = err_pipe.as_raw_fd();
    let ignored = ignored_signals();

    // SAFETY: drainit is single-threaded here, so the child is a full copy with no lock held by
    // another thread. Between fork and exec the child calls only async-signal-safe functions
    // (signal-safety(7)): setpgid, getpid, tcsetpgrp, syscall(rt_sigaction), sigemptyset,
    // sigprocmask, execvp (a PATH search over execve; it uses no heap in glibc or musl), write,
    // _exit. It touches only `ptrs`, `file`, `err_fd`, `take_terminal`, `ignored` and `dfl`,
    // built before the fork or on the stack. drainit installs no signal handler (it reads a
    // signalfd), so none can run in the child; the signals it collects stay blocked until the
    // mask is cleared as the very last step, and the rest have their default action, as after
    // exec.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(Errno::last());
        }
        if pid > 0 {
            return Ok(pid);
        }
        // Child. Own process group, so drainit can signal the app and all it starts as one.
        libc::setpgid(0, 0);
        // Take the terminal's foreground (`docker run -it`), so Ctrl-C and Ctrl-Z reach the app.
        // Done in the child, before exec, so the app never runs in the background (tini does the
        // same). SIGTTOU is blocked, so a background group may do this (tcsetpgrp(3)).
        if take_terminal {
            libc::tcsetpgrp(0, libc::getpid());
        }
        // Clean signal state: the ignored dispositions back to default (exec resets handlers
        // but keeps SIG_IGN), then the mask. Only those: a reset per signal was 62 of the
        // child's 68 syscalls before exec. The raw rt_sigaction, not libc's sigaction: glibc
        // refuses the numbers it keeps for itself (32 and 33) with EINVAL, so an ignore drainit
        // inherited there would reach the app. An all-zero kernel `struct sigaction` is SIG_DFL,
        // no flags, an empty mask, in every architecture's field order.
        let dfl = [0u64; 8];
        let mut sig = 1;
        while sig <= MAX_SIGNAL {
            if ignored & (1 << (sig - 1)) != 0 {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    dfl.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    KERNEL_SIGSET_BYTES,
                );
            }
            sig += 1;
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execvp(file, ptrs.as_ptr());
        let errno = *libc::__errno_location();
        let bytes = errno.to_ne_bytes();
        libc::write(err_fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

/// The descriptor the helper of `fork_helper` writes its answer to.
const HELPER_OUT: RawFd = 3;

/// Run `job` in a forked child, the helper, and return the read end of a pipe (non-blocking,
/// close-on-exec) that gets what `job` returned, then EOF. The helper is an ordinary child:
/// drainit's reaper reaps it; nobody signals it by pid (once reaped, its pid may be anyone's).
/// It keeps only the pipe (fd 3) and /dev/null on 0-2, so it holds no connection of the
/// readiness server open and writes nothing to drainit's stdout or stderr; its signals are
/// unblocked, TERM, INT and ALRM at their default action (so the leftover sweep's SIGTERM ends
/// it), and it dies of SIGALRM `lifetime_secs` after it started, whatever `job` waits for. It
/// runs no destructor and no atexit handler (`_exit`).
///
/// The caller must be single-threaded (drainit is), so the child may run ordinary Rust code:
/// no lock is held by a thread that the fork left behind.
pub fn fork_helper(lifetime_secs: u32, job: impl FnOnce() -> Vec<u8>) -> Result<OwnedFd, Errno> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    // SAFETY: drainit is single-threaded, so the child is a whole copy: no lock (malloc's, std's
    // environment lock around getaddrinfo) is held by a thread that does not exist in it, and
    // the child may allocate and call getaddrinfo. drainit installs no signal handler (it reads a
    // signalfd), so none runs in the child. The child never returns from this block: it ends in
    // `_exit`, so no Rust destructor (of `read`, `write`, or anything of the parent's) and no
    // atexit handler runs there; a panic in `job` is caught and ends it the same way.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(Errno::last());
        }
        if pid > 0 {
            drop(write);
            return Ok(read);
        }
        // The helper. Its answer goes to fd 3; everything else of drainit's is closed, 0-2 are
        // /dev/null (a library that writes to stderr must not reach drainit's log).
        let w = write.as_raw_fd();
        if w != HELPER_OUT && libc::dup2(w, HELPER_OUT) != HELPER_OUT {
            libc::_exit(1);
        }
        if libc::syscall(libc::SYS_close_range, HELPER_OUT + 1, libc::c_uint::MAX, 0) != 0 {
            // Before Linux 5.9: one close per possible descriptor.
            let max = libc::sysconf(libc::_SC_OPEN_MAX).clamp(0, 65536) as RawFd;
            for fd in HELPER_OUT + 1..max {
                libc::close(fd);
            }
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..HELPER_OUT {
                if fd != null {
                    libc::dup2(null, fd);
                }
            }
            if null > HELPER_OUT {
                libc::close(null);
            }
        }
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGALRM] {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::alarm(lifetime_secs);
        let Ok(answer) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) else {
            libc::_exit(1)
        };
        let mut left: &[u8] = &answer;
        while !left.is_empty() {
            let n = libc::write(HELPER_OUT, left.as_ptr().cast(), left.len());
            if n < 0 && Errno::last() == Errno::EINTR {
                continue;
            }
            match usize::try_from(n).ok().filter(|n| *n > 0) {
                Some(n) => left = left.get(n..).unwrap_or_default(),
                None => libc::_exit(1),
            }
        }
        libc::_exit(0)
    }
}

/// Runs `signals::block` from `.init_array`: the C library calls it after loading drainit and
/// before `main` (and before Rust's runtime start-up, which installs handlers and may take a
/// while with the dynamic loader), so the window in which a signal meets drainit unblocked is
/// exec(2) and the C library's own start-up, as small as any program's can be. Not in unit
/// tests: the test harness's threads must keep their signals.
#[cfg(not(test))]
#[used]
// SAFETY: `.init_array` holds pointers to `extern "C" fn()` that the C library calls once,
// single-threaded, before `main`; this is one such pointer. `signals::block` only sets the
// signal mask and two dispositions (no allocation, no I/O, no std runtime needed).
#[unsafe(link_section = ".init_array")]
static BLOCK_AT_LOAD: extern "C" fn() = block_at_load;

#[cfg(not(test))]
extern "C" fn block_at_load() {
    crate::signals::block();
}

/// Give `sig` its default action in drainit itself (signal(2) with SIG_DFL).
pub fn restore_default(sig: nix::sys::signal::Signal) -> Result<(), Errno> {
    use nix::sys::signal::{SigHandler, signal};
    // SAFETY: SIG_DFL runs no code of ours, so no handler can break async-signal-safety; the
    // only code relying on the previous handler is what the caller means to switch off.
    unsafe { signal(sig, SigHandler::SigDfl) }.map(drop)
}

/// Ignore `sig`, one of the real-time signals the C library keeps for itself (glibc: 32-33,
/// musl: 32-34). drainit cannot catch them (libc's sigaction says EINVAL), and their default
/// action would terminate a drainit that is not PID 1, orphaning the app. drainit is
/// single-threaded and never calls what the C library uses them for (thread cancellation,
/// set*id broadcasts to other threads). The child gets them back at default (`fork_exec`).
pub fn ignore_reserved(sig: libc::c_int) -> Result<(), Errno> {
    // The kernel's struct sigaction starts with the handler on x86_64 and aarch64 (not on
    // every architecture: MIPS puts the flags first); SIG_IGN needs no flags and no restorer.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let mut ign = [0u64; 8];
        if let Some(handler) = ign.first_mut() {
            *handler = libc::SIG_IGN as u64;
        }
        // SAFETY: rt_sigaction reads the 4-word kernel struct from `ign` (64 bytes, enough) and
        // writes nothing (null old action); SIG_IGN runs no code of ours.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                ign.as_ptr(),
                std::ptr::null_mut::<u64>(),
                KERNEL_SIGSET_BYTES,
            )
        };
        Errno::result(rc).map(drop)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = sig;
        Ok(())
    }
}

/// kill(2) with a raw signal number: `pid > 0` a process, `pid < -1` the group `-pid`, `-1`
/// every process we may signal (as PID 1: the whole namespace but us).
pub fn kill(pid: Pid, sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, sig) };
    Errno::result(rc).map(drop)
}

/// waitpid(-1, WNOHANG): `Ok(Some((pid, raw_status)))` for a reaped process, `Ok(None)` when
/// children exist but none has ended, `Err(ECHILD)` when there are no children at all.
pub fn waitpid_any() -> Result<Option<(Pid, i32)>, Errno> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid, writable c_int for the duration of the call.
    let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    match rc {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some((pid, status))),
    }
}

/// Close a descriptor known only by number. Used once, after the spawn, on the descriptors
/// drainit inherited (listed before it opened any of its own, so none of these is ours).
pub fn close_raw(fd: RawFd) {
    // SAFETY: the caller owns no Rust object for `fd` (it was inherited, never wrapped), so no
    // OwnedFd or File will close it again.
    unsafe {
        libc::close(fd);
    }
}

/// Is `fd` an open descriptor? fcntl(F_GETFD) fails with EBADF exactly when it is not.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD reads the descriptor's flags and touches no memory of ours.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Write `buf` to `fd` unless that would block: pwritev2(2) with RWF_NOWAIT at the file
/// position (offset -1, as write(2)). EAGAIN means it would have blocked; a pipe takes part of a
/// write longer than PIPE_BUF and then says how much. Where the kernel or the file does not do
/// RWF_NOWAIT (older kernels on pipes, ttys, some file systems) it fails with EOPNOTSUPP (or
/// EINVAL or ENOSYS), and the caller falls back to poll(2) then write(2). The raw syscall, so
/// the C library's version does not matter; offset -1 in both halves means -1 on 32- and
/// 64-bit kernels alike.
pub fn write_nowait(fd: RawFd, buf: &[u8]) -> Result<usize, Errno> {
    let iov = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `iov` describes `buf`, which lives and stays unchanged for the call; the kernel
    // only reads through it (a write).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pwritev2,
            fd,
            &iov as *const libc::iovec,
            1 as libc::c_int,
            -1 as libc::c_long,
            -1 as libc::c_long,
            libc::RWF_NOWAIT,
        )
    };
    Errno::result(rc).map(|n| usize::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn write_nowait_fails_with_eagain_on_a_full_pipe_and_never_blocks() {
        // A blocking pipe, as stderr is: write_nowait must fill it and then say EAGAIN.
        let (mut r, w) = std::io::pipe().unwrap();
        let page = [b'x'; 4096];
        let mut total = 0;
        let full = loop {
            match write_nowait(w.as_raw_fd(), &page) {
                Ok(n) => total += n,
                Err(e) => break e,
            }
            assert!(total <= 1 << 20, "a pipe never took over 1 MiB");
        };
        if full == Errno::EOPNOTSUPP {
            return; // a kernel without RWF_NOWAIT on pipes: logging falls back to poll
        }
        assert_eq!(full, Errno::EAGAIN);
        assert!(total >= 4096, "{total}");
        let mut buf = vec![0; 4096];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(write_nowait(w.as_raw_fd(), b"ok\n"), Ok(3));
    }

    #[test]
    fn write_nowait_on_a_reopened_fifo_is_not_supported_so_logging_reopens_it_itself() {
        // What logging.rs relies on: a pipe opened by path (a FIFO, or /proc/self/fd/N) takes
        // no RWF_NOWAIT here, so it gets a non-blocking description of its own instead.
        let (_r, w) = std::io::pipe().unwrap();
        let path = format!("/proc/self/fd/{}", w.as_raw_fd());
        let again = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        match write_nowait(again.as_raw_fd(), b"x") {
            Ok(1) | Err(Errno::EOPNOTSUPP) => {}
            other => panic!("{other:?}"),
        }
    }
}
