//! Log lines on stderr (never stdout: that is the app's), one per step, as
//! `drainit: LEVEL: message`. Write errors are ignored by env_logger, and SIGPIPE is ignored, so
//! a closed or broken stderr never stops drainit; a stderr that is not writable (a log reader
//! that stopped reading) costs lines, never a blocked event loop. `Throttle` keeps floods from
//! flooding the log: the first report of a kind goes out, repeats within the window are counted
//! and summarised.

use std::io::Write;
use std::time::{Duration, Instant};

/// Start logging with an env_logger filter (`info`, `debug`, `drainit=trace`, ...).
pub fn init(filter: &str) {
    let _ = ROUTE.set(Route::choose());
    let _ = env_logger::Builder::new()
        .parse_filters(filter)
        .format(|buf, record| {
            writeln!(
                buf,
                "drainit: {}: {}",
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            )
        })
        .target(env_logger::Target::Pipe(Box::new(Stderr::default())))
        .try_init();
}

/// stderr, written only when it can take a line. (Once the child owns the terminal, drainit is
/// a background group; with `stty tostop` its writes would raise SIGTTOU, but drainit keeps
/// SIGTTOU blocked, collecting it from its signalfd, and a blocked SIGTTOU lets the write
/// through: tty_check_change in the kernel.)
///
/// A pipe whose reader stopped reading fills up, and a blocking write would park PID 1 (no
/// forwarding, no reaping, no drain) until the reader wakes. stderr is shared with the child,
/// so it cannot be made non-blocking: O_NONBLOCK belongs to the open file description, and the
/// app's writes would start failing with EAGAIN. Asking poll(2) first, as drainit once did, is
/// not enough: the app can fill the shared pipe between our poll and our write, and poll calls
/// a pipe writable while one page is free, so a longer line blocked outright. See `Route`.
///
/// Every line is at most `MAX_LINE` bytes (`capped`), so a write to a pipe is atomic: all of it
/// or EAGAIN. A line that would block is dropped and counted, and the count is logged with the
/// next line that gets through. A stream socket takes part of a line; if the rest would block,
/// the next write first ends that fragment with a newline, so no two records run together.
#[derive(Default)]
struct Stderr {
    /// Lines dropped because stderr was not writable, not reported yet.
    dropped: u64,
    /// Part of a line is out and its newline is not.
    unfinished: bool,
}

/// PIPE_BUF (pipe(7)): a pipe write of at most this many bytes is atomic.
const MAX_LINE: usize = 4096;
/// How a line longer than `MAX_LINE` ends.
const CUT: &[u8] = b" [cut]\n";

/// How drainit writes to fd 2, chosen once by `Route::choose`.
static ROUTE: std::sync::OnceLock<Route> = std::sync::OnceLock::new();

enum Route {
    /// A pipe or FIFO (Docker's and the kubelet's stdio are pipes): drainit's own non-blocking
    /// description of it, opened through `/proc/self/fd/2`. A new open file description of
    /// the same pipe, whose O_NONBLOCK is ours alone (close-on-exec: the child never gets it).
    Own(std::os::fd::OwnedFd),
    /// A pipe drainit cannot reopen (no `/proc`, a pipe of another user's: EACCES; a FIFO with
    /// no reader at start: ENXIO), or a socket: each write with RWF_NOWAIT
    /// (`sys::write_nowait`). Pipes take it from Linux 6.4; where it is refused, poll then
    /// write, window and all.
    NoWait,
    /// Anything else (a tty, a file, `/dev/null`): poll then write. Not RWF_NOWAIT: some file
    /// systems (XFS, btrfs) take it on files and say EAGAIN for a moment's lock, and not a
    /// description of our own: a file's second description has its own offset and would write
    /// over the app's output.
    Poll,
}

impl Route {
    fn choose() -> Route {
        use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
        use nix::sys::stat::{Mode, SFlag, fstat};
        let stderr = std::io::stderr();
        let Ok(stat) = fstat(&stderr) else {
            return Route::Poll;
        };
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFSOCK {
            return Route::NoWait;
        }
        if kind != SFlag::S_IFIFO {
            return Route::Poll;
        }
        // Only a write end: `2<&0` with a pipe on stdin would have drainit write into the
        // app's own input.
        let mode = fcntl(&stderr, FcntlArg::F_GETFL).map(OFlag::from_bits_retain);
        if !mode.is_ok_and(|m| matches!(m & OFlag::O_ACCMODE, OFlag::O_WRONLY | OFlag::O_RDWR)) {
            return Route::Poll;
        }
        let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        match open("/proc/self/fd/2", flags, Mode::empty()) {
            Ok(fd) => Route::Own(fd),
            Err(_) => Route::NoWait,
        }
    }
}

/// `line` cut to at most `MAX_LINE` bytes, at a character boundary, ending in `CUT`.
fn capped(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if line.len() <= MAX_LINE {
        return line.into();
    }
    let room = line.get(..MAX_LINE - CUT.len()).unwrap_or_default();
    let keep = std::str::from_utf8(room).map_or_else(|e| e.valid_up_to(), str::len);
    let mut out = room.get(..keep).unwrap_or_default().to_vec();
    out.extend_from_slice(CUT);
    out.into()
}

/// Can stderr take a write now without blocking? An error (fd 2 closed: drainit reopens it as
/// /dev/null at start, but the app may share and close it) counts as yes: the write then fails
/// quickly on its own.
fn stderr_writable() -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stderr = std::io::stderr();
    let mut fds = [PollFd::new(stderr.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => false,
        Ok(_) | Err(_) => true,
    }
}

/// Write what stderr takes now: `Ok(None)` when it would block.
fn put(buf: &[u8]) -> std::io::Result<Option<usize>> {
    use nix::errno::Errno;
    let polled = || {
        if stderr_writable() {
            std::io::stderr().write(buf).map(Some)
        } else {
            Ok(None)
        }
    };
    let wrote = match ROUTE.get() {
        Some(Route::Own(fd)) => nix::unistd::write(fd, buf),
        Some(Route::NoWait) => match crate::sys::write_nowait(libc::STDERR_FILENO, buf) {
            Err(Errno::EOPNOTSUPP | Errno::EINVAL | Errno::ENOSYS) => return polled(),
            other => other,
        },
        Some(Route::Poll) | None => return polled(),
    };
    match wrote {
        Ok(n) => Ok(Some(n)),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Stderr {
    /// One line from env_logger (it writes each record with one `write_all`), written with
    /// `put` (what the descriptor takes now, `None` when it would block). Always claims the
    /// whole line written: what did not fit is dropped, never retried.
    fn emit(
        &mut self,
        buf: &[u8],
        put: &mut impl FnMut(&[u8]) -> std::io::Result<Option<usize>>,
    ) -> std::io::Result<usize> {
        if self.unfinished && !self.all(b"\n", put)? {
            self.dropped += 1;
            return Ok(buf.len());
        }
        if self.dropped > 0 {
            let note = format!(
                "drainit: warn: {} log lines dropped: stderr was not writable\n",
                self.dropped
            );
            if !self.all(note.as_bytes(), put)? {
                self.dropped += 1;
                return Ok(buf.len());
            }
            self.dropped = 0;
        }
        if !self.all(&capped(buf), put)? {
            self.dropped += 1;
        }
        Ok(buf.len())
    }

    /// Write all of `line`, or say `false` when the rest would block (then part of it may be
    /// out, and the next write must end it first).
    fn all(
        &mut self,
        line: &[u8],
        put: &mut impl FnMut(&[u8]) -> std::io::Result<Option<usize>>,
    ) -> std::io::Result<bool> {
        let mut done = 0;
        while let Some(rest) = line.get(done..).filter(|r| !r.is_empty()) {
            match put(rest)? {
                Some(n) if n > 0 => done += n,
                _ => {
                    // Nothing out: a fragment from before is still unfinished, or there is none.
                    self.unfinished |= done > 0;
                    return Ok(false);
                }
            }
        }
        self.unfinished = false;
        Ok(true)
    }
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.emit(buf, &mut put)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Is `filter` an env_logger filter that says something about drainit's own lines? Each
/// comma-separated part is a level, or `drainit[::module]` with an optional `=level`. Any other
/// bare word would read as a module name to env_logger and silence drainit altogether
/// (`DRAINIT_LOG=warning` must not hide the warnings), so it is refused.
pub fn valid_filter(filter: &str) -> bool {
    let is_level = |s: &str| {
        matches!(
            s.to_ascii_lowercase().as_str(),
            "off" | "error" | "warn" | "info" | "debug" | "trace"
        )
    };
    let is_ours = |s: &str| {
        s == "drainit"
            || s.strip_prefix("drainit::").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            })
    };
    !filter.trim().is_empty()
        && filter
            .split(',')
            .map(str::trim)
            .all(|part| match part.split_once('=') {
                Some((path, level)) => is_ours(path) && is_level(level),
                None => is_level(part) || is_ours(part),
            })
}

/// Rate limit for repeated failures: one line per window, then a count.
#[derive(Debug)]
pub struct Throttle {
    window: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub fn new(window: Duration) -> Throttle {
        Throttle {
            window,
            last: None,
            suppressed: 0,
        }
    }

    /// Should this occurrence be logged? `Some(n)`: yes, and `n` were suppressed since the last
    /// one logged. `None`: no, it is counted.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.window => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor that takes at most `chunk` bytes a call, `room` bytes in all (then it would
    /// block), into `out`.
    fn fake<'a>(
        out: &'a mut Vec<u8>,
        room: &'a mut usize,
        chunk: usize,
    ) -> impl FnMut(&[u8]) -> std::io::Result<Option<usize>> + 'a {
        move |b: &[u8]| {
            let n = b.len().min(chunk).min(*room);
            if n == 0 {
                return Ok(None);
            }
            out.extend_from_slice(b.get(..n).unwrap());
            *room -= n;
            Ok(Some(n))
        }
    }

    #[test]
    fn a_line_cut_off_by_a_full_socket_is_ended_before_the_next_and_the_drop_is_counted() {
        let mut e = Stderr::default();
        let mut out = Vec::new();
        let mut room = 10;
        // 10 bytes fit of a 20-byte line; the rest would block.
        e.emit(b"drainit: info: 12345\n", &mut fake(&mut out, &mut room, 4))
            .unwrap();
        assert!(e.unfinished);
        assert_eq!(e.dropped, 1);
        // Nothing fits: one more dropped, nothing written, the fragment still open.
        e.emit(b"drainit: info: two\n", &mut fake(&mut out, &mut room, 4))
            .unwrap();
        assert_eq!(e.dropped, 2);
        assert!(e.unfinished);
        // Room again: the fragment is ended, then the note, then the line.
        let mut room = 1000;
        e.emit(b"drainit: info: three\n", &mut fake(&mut out, &mut room, 7))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "drainit: i\ndrainit: warn: 2 log lines dropped: stderr was not writable\n\
             drainit: info: three\n"
        );
        assert!(!e.unfinished);
        assert_eq!(e.dropped, 0);
    }

    #[test]
    fn whole_lines_go_out_whole_and_a_full_descriptor_only_counts() {
        let mut e = Stderr::default();
        let mut out = Vec::new();
        let mut room = 0;
        for _ in 0..3 {
            let n = e
                .emit(b"drainit: info: x\n", &mut fake(&mut out, &mut room, 4096))
                .unwrap();
            assert_eq!(n, 17, "the line is always claimed written");
        }
        assert!(out.is_empty() && !e.unfinished);
        assert_eq!(e.dropped, 3);
    }

    #[test]
    fn lines_over_pipe_buf_are_cut_at_a_character_boundary_and_still_end_in_a_newline() {
        let short = b"drainit: info: ok\n";
        assert_eq!(&*capped(short), short);
        let exact = vec![b'a'; MAX_LINE];
        assert_eq!(capped(&exact).len(), MAX_LINE);
        let long = format!("drainit: debug: {}\n", "a".repeat(13_000));
        let cut = capped(long.as_bytes());
        assert_eq!(cut.len(), MAX_LINE);
        assert!(cut.ends_with(b" [cut]\n"));
        assert!(cut.starts_with(b"drainit: debug: aaa"));
        // A multi-byte character across the cut is left out whole, not split.
        let wide = format!("drainit: info: {}\n", "\u{e9}".repeat(5000));
        let cut = capped(wide.as_bytes());
        assert!(
            cut.len() <= MAX_LINE && cut.len() >= MAX_LINE - 1,
            "{}",
            cut.len()
        );
        assert!(std::str::from_utf8(&cut).is_ok());
        assert!(cut.ends_with(b" [cut]\n"));
    }

    #[test]
    fn filters_are_validated_like_env_logger_reads_them() {
        for ok in [
            "info",
            "DEBUG",
            "drainit=trace",
            "warn,drainit::ready=debug",
            "off",
        ] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "drainit=loud", "a b", "=info", "x=/y"] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }

    #[test]
    fn throttle_logs_the_first_then_summarises_the_repeats() {
        let t = Instant::now();
        let mut th = Throttle::new(Duration::from_secs(10));
        assert_eq!(th.hit(t), Some(0));
        assert_eq!(th.hit(t + Duration::from_secs(1)), None);
        assert_eq!(th.hit(t + Duration::from_secs(2)), None);
        assert_eq!(th.hit(t + Duration::from_secs(11)), Some(2));
    }
}
