//! Descriptor hygiene for PID 1 (contract, point 1): fds 0-2 exist before anything else opens a
//! file (else our own sockets would land there and the app's output would go into them), and
//! descriptors drainit inherited stay open only until the child has them.

use std::fs::OpenOptions;
use std::os::fd::{IntoRawFd, RawFd};

use crate::error::Fatal;
use crate::sys;

/// Open `/dev/null` on each of fds 0, 1, 2 that is closed. open(2) returns the lowest free
/// number, so opening until fd 2 exists fills the gaps in order.
pub fn ensure_stdio() -> Result<(), Fatal> {
    while !is_open(0) || !is_open(1) || !is_open(2) {
        let fd = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| {
                Fatal::other(format!(
                    "stdio is closed and /dev/null cannot be opened: {e}"
                ))
            })?
            .into_raw_fd();
        if fd > 2 {
            sys::close_raw(fd);
            break;
        }
    }
    Ok(())
}

fn is_open(fd: RawFd) -> bool {
    sys::fd_is_open(fd)
}

/// The descriptors >= 3 open right now. Call before drainit opens any of its own.
pub fn inherited() -> Vec<RawFd> {
    let mut fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2)
            .collect(),
        // No /proc (a bare chroot): probe each number up to the soft limit, capped so a limit of
        // a million (Docker's default) costs milliseconds, not seconds.
        Err(_) => {
            let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_or(1024, |(soft, _)| soft.min(65_536));
            (3..RawFd::try_from(limit).unwrap_or(65_536)).collect()
        }
    };
    // read_dir's own descriptor is listed too, and is closed by now; keep only what is open.
    fds.retain(|fd| sys::fd_is_open(*fd));
    fds
}

/// Close what `inherited` listed: the child has its copies, drainit needs none of them.
pub fn close_inherited(fds: &[RawFd]) {
    for fd in fds {
        sys::close_raw(*fd);
    }
}
