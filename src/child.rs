//! Starting the command and addressing it afterwards. `spawn` turns argv into a running child in
//! its own process group (the unsafe fork/exec is in `sys.rs`) and maps exec failures to the
//! contract's 126/127. `Child::send` forwards a signal to the target `Config::target` chose (the
//! group or the child alone), and refuses once the child is reaped: pids are reused, so a reaped
//! pid is never signalled again.

use std::ffi::{CString, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

use crate::config::Target;
use crate::error::Fatal;
use crate::parse::Sig;
use crate::sys::{self, Pid};

/// The direct child, as long as it has not been reaped.
#[derive(Debug)]
pub struct Child {
    pub pid: Pid,
    reaped: bool,
    /// The child's group was made the terminal's foreground group.
    took_terminal: bool,
}

impl Child {
    /// Send `sig` to the child's process group or to the child alone. A no-op once the child is
    /// reaped. `ESRCH` (the group is gone) is not an error worth more than debug.
    pub fn send(&self, sig: Sig, target: Target) -> Result<(), Errno> {
        if self.reaped {
            return Ok(());
        }
        let pid = match target {
            Target::Group => -self.pid,
            Target::Child => self.pid,
        };
        sys::kill(pid, sig.0)
    }

    /// SIGKILL the child's process group, also with `-c` (contract, point 3).
    pub fn kill_group(&self) -> Result<(), Errno> {
        if self.reaped {
            return Ok(());
        }
        sys::kill(-self.pid, libc::SIGKILL)
    }

    pub fn mark_reaped(&mut self) {
        self.reaped = true;
    }

    /// The child's pid while it is not reaped; `None` after (the number may be reused).
    pub fn unreaped(&self) -> Option<Pid> {
        (!self.reaped).then_some(self.pid)
    }

    pub fn is_reaped(&self) -> bool {
        self.reaped
    }

    /// Give the terminal's foreground back to drainit's own group, as a shell does when a job
    /// ends; otherwise whoever ran drainit is left in the background of its own terminal.
    /// tcsetpgrp(3) from a background group needs SIGTTOU blocked, and drainit always has it
    /// blocked (it collects it from its signalfd).
    pub fn release_terminal(&self) {
        if self.took_terminal {
            let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpgrp());
        }
    }
}

/// Start `command`. The signals drainit collects are blocked throughout (signals.rs), so one
/// delivered meanwhile stays queued for the signalfd, and the child clears its mask itself as
/// the last step before exec (sys.rs).
pub fn spawn(command: &[OsString]) -> Result<Child, Fatal> {
    let name = command
        .first()
        .map(|c| c.to_string_lossy().into_owned())
        .ok_or_else(|| Fatal::new(Fatal::USAGE, "no command given"))?;
    let argv = command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            Fatal::new(
                Fatal::USAGE,
                format!("'{name}': argument contains a NUL byte"),
            )
        })?;
    let (mut err_read, err_write) =
        std::io::pipe().map_err(|e| Fatal::other(format!("cannot create a pipe: {e}")))?;

    let take_terminal = in_terminal_foreground();
    let forked = sys::fork_exec(&argv, &err_write.into(), take_terminal);
    if let Ok(pid) = forked {
        // Also from the parent, so the group exists before we first signal it (the race every
        // shell closes this way). EACCES after the child's exec is harmless.
        let _ = nix::unistd::setpgid(
            nix::unistd::Pid::from_raw(pid),
            nix::unistd::Pid::from_raw(pid),
        );
    }
    let pid = forked.map_err(|e| Fatal::other(format!("cannot fork: {e}")))?;

    // The write end was moved into fork_exec's argument and dropped; EOF means exec succeeded.
    let mut buf = [0u8; 4];
    let n = read_full(&mut err_read, &mut buf);
    if n < buf.len() {
        return Ok(Child {
            pid,
            reaped: false,
            took_terminal: take_terminal,
        });
    }
    let errno = Errno::from_raw(i32::from_ne_bytes(buf));
    // The child has exited (127); reap it now so no zombie stays behind.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    Err(exec_failure(&name, errno))
}

/// Is fd 0 our controlling terminal, with our group in its foreground? Only then does the child
/// take the terminal over: `drainit ... &` from an interactive shell must not steal the shell's.
/// A group outside our PID namespace reads as 0 from both calls (`unshare --pid --fork drainit`
/// run from a shell): we could neither tell whose the foreground is nor hand it back on exit,
/// so we leave it alone (Ctrl-C then reaches drainit's group, and drainit forwards it).
fn in_terminal_foreground() -> bool {
    let ours = nix::unistd::getpgrp();
    ours.as_raw() != 0 && nix::unistd::tcgetpgrp(std::io::stdin()).is_ok_and(|fg| fg == ours)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    n
}

/// execvp(3)'s errno → drainit's exit code and one line naming the cause (like a shell).
fn exec_failure(name: &str, errno: Errno) -> Fatal {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => {
            Fatal::new(Fatal::NOT_FOUND, format!("'{name}': command not found"))
        }
        Errno::EACCES | Errno::EPERM | Errno::ENOEXEC | Errno::EISDIR => Fatal::new(
            Fatal::NOT_EXECUTABLE,
            format!("'{name}': cannot execute: {}", errno.desc()),
        ),
        _ => Fatal::other(format!("'{name}': cannot execute: {}", errno.desc())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_errors_map_to_the_shell_codes() {
        assert_eq!(exec_failure("x", Errno::ENOENT).code, 127);
        assert_eq!(exec_failure("x", Errno::EACCES).code, 126);
        assert_eq!(exec_failure("x", Errno::ENOEXEC).code, 126);
        assert_eq!(exec_failure("x", Errno::E2BIG).code, 1);
        assert!(exec_failure("foo", Errno::ENOENT).message.contains("'foo'"));
    }
}
