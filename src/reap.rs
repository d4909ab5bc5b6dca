//! Reaping and the leftovers. As PID 1 every orphan of the namespace is ours; otherwise drainit
//! registers as child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER) so orphans of the command come
//! to it. `reap` loops waitpid(-1, WNOHANG) until nothing more has ended, because SIGCHLD
//! coalesces (catatonit#4), and reports the direct child's status from inside that loop. The
//! leftovers of a drainit that is not PID 1 are found in `/proc` only if it is the `/proc` of
//! drainit's own PID namespace; otherwise they are the child's process group.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;

use crate::parse::Sig;
use crate::status::Ended;
use crate::sys::{self, Pid};

pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Become child subreaper unless we are PID 1. Quiet on success (unlike tini's warning); on
/// failure, one clear warning: orphans then go to the real init, the rest works as before.
pub fn become_subreaper() {
    if is_pid1() {
        return;
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        log::warn!(
            "cannot register as child subreaper ({e}): orphaned grandchildren will be reaped by \
             the real init, not drainit; run drainit as PID 1 to reap them"
        );
    }
}

/// What one pass of reaping found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// The direct child's ending, if it was among those reaped.
    pub child: Option<Ended>,
    /// How many processes were reaped (the child included).
    pub count: usize,
    /// waitpid said ECHILD: drainit has no children left at all.
    pub none_left: bool,
}

/// Reap everything that has ended, without blocking. `child`: the direct child's pid while it
/// is not reaped yet; `None` after, so an orphan that later gets the same pid (pids are
/// reused) is not taken for the child.
pub fn reap(child: Option<Pid>) -> Reaped {
    let mut out = Reaped::default();
    loop {
        match sys::waitpid_any() {
            Ok(Some((pid, status))) => {
                out.count += 1;
                if Some(pid) == child && out.child.is_none() {
                    out.child = Ended::from_raw(status);
                }
            }
            Ok(None) => return out,
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => {
                out.none_left = true;
                return out;
            }
            Err(e) => {
                log::debug!("waitpid: {e}");
                return out;
            }
        }
    }
}

/// Send `sig` to every process left: as PID 1 the whole namespace (kill(-1) spares only us), as
/// a subreaper our descendants, found in `/proc` when that `/proc` is our PID namespace's;
/// without one, the group of the child `group` was (contract, point 5). Returns whether any
/// process was there to get it.
///
/// The group after the child is reaped: the kernel does not hand out a pid again while it is
/// still some process's group id, so while a member lives the group is the child's. Once the
/// group is empty the number could in principle come back as a new process's own group in
/// the instants between the reap and this call; that is the price of having no `/proc`.
/// As PID 1, are there processes in the namespace that are not drainit's children (a
/// `docker exec` or `nsenter` session, whose parent is outside)? waitpid cannot see them, and
/// no SIGCHLD tells when they end; kill(2) with signal 0 to -1 asks the kernel (ESRCH: none).
pub fn strangers_left() -> bool {
    is_pid1() && sys::kill(-1, 0).is_ok()
}

pub fn signal_leftovers(sig: Sig, group: Pid) -> bool {
    if is_pid1() {
        return sys::kill(-1, sig.0).is_ok();
    }
    if let Err(why) = own_proc() {
        if !PROC_WARNED.swap(true, Ordering::Relaxed) {
            log::warn!(
                "cannot list the processes left: {why}; signalling the child's process group \
                 {group} instead (processes that left it are not reached; mount this namespace's \
                 /proc, or run drainit as PID 1)"
            );
        }
        // Once the group is empty its number may be handed out again: never signal it again.
        if GROUP_GONE.load(Ordering::Relaxed) {
            return false;
        }
        return match sys::kill(-group, sig.0) {
            Ok(()) => true,
            Err(e) => {
                if e == Errno::ESRCH {
                    GROUP_GONE.store(true, Ordering::Relaxed);
                }
                false
            }
        };
    }
    let pids = descendants(std::process::id());
    for pid in &pids {
        let _ = sys::kill(*pid, sig.0);
    }
    !pids.is_empty()
}

/// The fallback's warning is logged once.
static PROC_WARNED: AtomicBool = AtomicBool::new(false);
/// The fallback found the child's group empty (ESRCH).
static GROUP_GONE: AtomicBool = AtomicBool::new(false);

/// Is `/proc` a view of drainit's own PID namespace? Its `/proc/self` names us by our pid as
/// that procfs's namespace counts: `getpid()` only in our own. A `/proc` of an outer namespace
/// (`unshare --pid --fork` without `--mount-proc`, as container tooling and CI runners do)
/// names another number, and there `/proc/N` is someone else: its "children" are not ours. One
/// of an unrelated namespace does not show us at all. NSpid (Linux 4.1) lists our pid in each
/// namespace from that procfs's down to ours: one entry in our own, which also rules out a
/// number that matches by chance.
fn own_proc() -> Result<(), &'static str> {
    let me = std::process::id().to_string();
    match std::fs::read_link("/proc/self") {
        Ok(link) if link.as_os_str() == me.as_str() => {}
        Ok(_) => return Err("/proc belongs to another PID namespace"),
        Err(_) => return Err("/proc is not mounted"),
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match status.lines().find_map(|l| l.strip_prefix("NSpid:")) {
        Some(ns) if ns.split_whitespace().count() > 1 => {
            Err("/proc belongs to another PID namespace")
        }
        _ => Ok(()),
    }
}

/// Every descendant of `root`. Walks /proc/PID/task/TID/children (proc(5)) down from `root`,
/// so the cost follows drainit's own tree, not the host's process count. Without that file
/// (a kernel built without CONFIG_PROC_CHILDREN), falls back to every /proc/PID/stat's parent.
fn descendants(root: u32) -> Vec<Pid> {
    let root = Pid::try_from(root).unwrap_or(0);
    match children_of(root) {
        Some(first) => {
            let mut found = Vec::new();
            let mut frontier = first;
            while let Some(pid) = frontier.pop() {
                if !found.contains(&pid) {
                    found.push(pid);
                    frontier.extend(children_of(pid).unwrap_or_default());
                }
            }
            found
        }
        None => descendants_by_scan(root),
    }
}

/// The children of every thread of `pid`; `None` if the kernel does not list them.
fn children_of(pid: Pid) -> Option<Vec<Pid>> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut kids = Vec::new();
    let mut listed = false;
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            listed = true;
            kids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<Pid>().ok()),
            );
        }
    }
    listed.then_some(kids)
}

/// The slow path: parent links of every process on the host (/proc/PID/stat field 4).
fn descendants_by_scan(root: Pid) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let links: Vec<(Pid, Pid)> = dir
        .filter_map(|e| {
            let pid: Pid = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parent_from_stat(&stat)?))
        })
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, _) in links.iter().filter(|(_, pp)| *pp == parent) {
            if !found.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

/// The ppid in a /proc/PID/stat line. The command name may hold spaces and parentheses, so
/// parse from the last ')'.
fn parent_from_stat(stat: &str) -> Option<Pid> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_is_read_after_the_last_parenthesis() {
        assert_eq!(parent_from_stat("12 (node) S 7 12 12 0"), Some(7));
        assert_eq!(parent_from_stat("12 (a) b) (c) R 99 1"), Some(99));
        assert_eq!(parent_from_stat("garbage"), None);
    }

    #[test]
    fn our_descendants_include_a_spawned_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let found = descendants(std::process::id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found.contains(&(child.id() as Pid)));
    }
}
