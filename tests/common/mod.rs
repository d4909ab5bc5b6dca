//! The harness every integration test shares: start the real `drainit` binary as PID 1 of a
//! fresh PID namespace (`unshare --pid --fork --mount-proc`) or plainly, capture its stdout and
//! stderr line by line, look at it and its processes from the host side through /proc, signal
//! it, and wait for its exit. Every wait polls a condition against a generous deadline (the
//! machine is small and busy); none is a bare sleep. Dropping a `Drainit` SIGKILLs it (as PID 1
//! that kills its whole namespace; otherwise its descendants are killed too) and reaps it.
//!
//! The fixture programs (`examples/`) are built once per test binary with `cargo build
//! --examples`, next to the drainit binary under test; `example("print-signals")` is the path.
//!
//! ```ignore
//! mod common;
//! use common::*;
//! let mut d = drainit(["-d", "2s"]).arg(example("print-signals")).start();
//! d.wait_stdout("ready");
//! d.send(libc::SIGTERM);                       // waits until drainit catches it
//! d.wait_stdout("SIGTERM");                    // print-signals got it (2 s later)
//! assert_eq!(d.wait_exit(), 0);                // 128+N if signal N killed it
//! ```
//!
//! Builder options: `.pid1(false)` (plain, as subreaper), `.env(k, v)` (the test's own
//! `DRAINIT_*` are removed), `.shell("exec 7<file; ulimit -n 16")` (bash set-up, then exec),
//! `.inner_shell(..)` (the same inside the PID namespace, right before drainit),
//! `.tty()` (a terminal via script(1); `type_keys(b"\x03")`), `.own_session()` (PID 1 as a
//! session leader with that terminal, like `docker run -it`); `.run()` runs to the end and
//! returns code, stdout and stderr. On a running `Drainit`: `pid()` and `child()` (host pids),
//! `processes()`, `zombies()`, `send`/`send_raw`/`send_and_see`, `wait_stdout`/`wait_stderr`
//! (timestamped `Line`s), `stdout()`/`stderr()`, `wait_exit()`/`wait_status(deadline)`.
//! Free functions read /proc: `stat`, `status_field`, `sigmask`, `children`, `descendants`,
//! `open_fds`, `cmdline`; `kill` sends any signal number; `wait_until` polls a condition.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

/// The failure bound for every wait. Generous: only a broken drainit should ever reach it.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How long `wait_exit` waits for drainit's output pipes to close after it exited.
const OUTPUT_AFTER_EXIT: Duration = Duration::from_secs(5);
/// How often polled conditions are checked.
const POLL: Duration = Duration::from_millis(5);

/// Signals whose presence in drainit's blocked set shows its intake is installed (drainit
/// blocks what it collects and reads it from a signalfd; a handler would show in SigCgt).
const INTAKE_SIGNALS: [i32; 6] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGUSR1,
    libc::SIGTERM,
    libc::SIGWINCH,
    64,
];

/// The drainit binary under test: `$DRAINIT_BIN` if set (CI runs the whole suite on the
/// shipped static build from scripts/build-static.sh), else the one cargo built for the tests.
pub fn drainit_bin() -> PathBuf {
    std::env::var_os("DRAINIT_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_drainit")),
        PathBuf::from,
    )
}

/// The path of a fixture program from `examples/`, built (once per test binary) next to cargo's
/// drainit, whichever drainit is under test.
pub fn example(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_drainit"));
    let profile_dir = bin.parent().expect("target profile dir");
    BUILD.call_once(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--examples", "--quiet"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name() == Some(OsStr::new("release")) {
            cargo.arg("--release");
        }
        let out = cargo.output().expect("run cargo build --examples");
        assert!(
            out.status.success(),
            "cargo build --examples failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "no fixture {}", path.display());
    path
}

/// The real-time signal RTMIN+n, as this libc numbers it.
pub fn rtmin(n: i32) -> i32 {
    libc::SIGRTMIN() + n
}

/// The lowest real-time signal the drainit under test can catch and forward. Its C library keeps
/// the ones below for itself, and that need not be this test's libc: glibc keeps 32-33, musl (the
/// static build, `DRAINIT_BIN`) 32-34. Asked of drainit itself, once: it refuses a reserved
/// stop signal with status 2.
pub fn drainit_rtmin() -> i32 {
    static FIRST: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *FIRST.get_or_init(|| {
        let sig = libc::SIGRTMIN();
        let out = Command::new(drainit_bin())
            .args(["-q", "--stop-signal", &sig.to_string(), "--", "true"])
            .env_remove("DRAINIT_STOP_SIGNALS")
            .output()
            .expect("run drainit");
        if out.status.code() == Some(2) {
            sig + 1
        } else {
            sig
        }
    })
}

/// Send `sig` (any number, real-time too) to a host pid; `pid < 0` is a process group.
pub fn kill(pid: i32, sig: i32) -> bool {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s).is_ok(),
        // nix's Signal cannot hold real-time signals; procps' kill(1) can.
        Err(_) => Command::new("kill")
            .arg(format!("-{sig}"))
            .arg("--")
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}

/// A loopback port that was free a moment ago (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `arg` quoted for sh.
pub fn shell_quote(arg: &OsStr) -> String {
    format!("'{}'", arg.to_string_lossy().replace('\'', r"'\''"))
}

/// Poll `cond` until it holds; panic naming `what` at the deadline.
pub fn wait_until(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------------------------
// /proc from the host side. Processes in a child PID namespace are visible here with host pids.

/// The fields of /proc/PID/stat that tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// The foreground process group of the controlling terminal (-1: none).
    pub tpgid: i32,
    pub starttime: u64,
}

/// /proc/PID/stat, or `None` once the process is gone (reaped).
pub fn stat(pid: i32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let f: Vec<&str> = s[close + 1..].split_whitespace().collect();
    // After the name: state(0) ppid(1) pgrp(2) session(3) tty_nr(4) tpgid(5) ... starttime(19)
    Some(Stat {
        comm,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        tpgid: f.get(5)?.parse().ok()?,
        starttime: f.get(19)?.parse().ok()?,
    })
}

/// A field of /proc/PID/status (`SigCgt`, `NSpid`, ...), its value trimmed.
pub fn status_field(pid: i32, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// A signal mask field of /proc/PID/status (`SigBlk`, `SigIgn`, `SigCgt`) as bits.
pub fn sigmask(pid: i32, key: &str) -> Option<u64> {
    u64::from_str_radix(&status_field(pid, key)?, 16).ok()
}

/// The signals `pid` collects rather than leaving to their default action: those it blocks
/// (drainit reads them from a signalfd) or handles (the fixtures).
pub fn collected_mask(pid: i32) -> Option<u64> {
    Some(sigmask(pid, "SigBlk")? | sigmask(pid, "SigCgt")?)
}

/// Is bit `sig` set in a /proc signal mask?
pub fn has_signal(mask: u64, sig: i32) -> bool {
    mask & (1u64 << (sig - 1)) != 0
}

/// Wait until `pid` has a handler for `sig` (for a fixture whose `ready` line cannot be read).
pub fn wait_catches(pid: i32, sig: i32) {
    wait_until(
        &format!("pid {pid} to catch signal {sig}"),
        DEADLINE,
        || sigmask(pid, "SigCgt").is_some_and(|m| has_signal(m, sig)),
    );
}

/// The direct children of `pid` (/proc/PID/task/*/children).
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Every descendant of `pid`, breadth first.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for c in children(p) {
            if !found.contains(&c) {
                found.push(c);
                frontier.push(c);
            }
        }
    }
    found
}

/// The host pids of the processes whose command name is `comm` among `pid`'s descendants.
pub fn descendants_named(pid: i32, comm: &str) -> Vec<i32> {
    descendants(pid)
        .into_iter()
        .filter(|p| stat(*p).is_some_and(|s| s.comm == comm))
        .collect()
}

/// The command line of `pid` (empty for a zombie, or once it is gone).
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The open descriptors of `pid` and what they point to.
pub fn open_fds(pid: i32) -> HashMap<i32, PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let fd = e.file_name().to_str()?.parse().ok()?;
                    Some((fd, std::fs::read_link(e.path()).ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Captured output.

/// One line of output and when the reader thread saw it.
#[derive(Clone, Debug)]
pub struct Line {
    pub text: String,
    pub at: Instant,
}

#[derive(Default)]
struct Stream {
    lines: Vec<Line>,
    partial: Vec<u8>,
    closed: bool,
}

/// A pipe read to its end by a background thread, split into timestamped lines.
#[derive(Clone, Default)]
struct Captured(Arc<(Mutex<Stream>, Condvar)>);

impl Captured {
    fn spawn(mut from: impl Read + Send + 'static) -> Captured {
        let c = Captured::default();
        let shared = c.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = from.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*shared.0;
                let mut s = lock.lock().unwrap();
                if n == 0 {
                    if !s.partial.is_empty() {
                        let rest = std::mem::take(&mut s.partial);
                        let line = Line {
                            text: String::from_utf8_lossy(&rest).into_owned(),
                            at: Instant::now(),
                        };
                        s.lines.push(line);
                    }
                    s.closed = true;
                    cv.notify_all();
                    return;
                }
                let at = Instant::now();
                s.partial.extend_from_slice(&buf[..n]);
                while let Some(nl) = s.partial.iter().position(|b| *b == b'\n') {
                    let raw: Vec<u8> = s.partial.drain(..=nl).collect();
                    // A terminal ends lines in CR LF.
                    let end = if nl > 0 && raw[nl - 1] == b'\r' {
                        nl - 1
                    } else {
                        nl
                    };
                    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
                    s.lines.push(Line { text, at });
                }
                cv.notify_all();
            }
        });
        c
    }

    fn lines(&self) -> Vec<Line> {
        self.0.0.lock().unwrap().lines.clone()
    }

    fn text(&self) -> String {
        let s = self.0.0.lock().unwrap();
        let mut t: String = s.lines.iter().map(|l| format!("{}\n", l.text)).collect();
        t.push_str(&String::from_utf8_lossy(&s.partial));
        t
    }

    /// The first line (from the start) matching `pred`, waiting for it until `deadline`.
    fn wait_line(&self, deadline: Duration, pred: impl Fn(&str) -> bool) -> Option<Line> {
        let end = Instant::now() + deadline;
        let (lock, cv) = &*self.0;
        let mut s = lock.lock().unwrap();
        loop {
            if let Some(l) = s.lines.iter().find(|l| pred(&l.text)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if s.closed || now >= end {
                return None;
            }
            s = cv.wait_timeout(s, end - now).unwrap().0;
        }
    }

    /// Wait until the pipe is closed by every writer.
    fn wait_closed(&self, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        let (lock, cv) = &*self.0;
        let mut s = lock.lock().unwrap();
        while !s.closed {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            s = cv.wait_timeout(s, end - now).unwrap().0;
        }
        true
    }
}

// ---------------------------------------------------------------------------------------------
// Starting drainit.

/// drainit with these arguments (more with `.arg`), as PID 1 of a new PID namespace, stdin
/// `/dev/null`; `.pid1(false)` to run it plainly. Then `.start()` or `.run()`.
pub fn drainit<I, S>(args: I) -> Builder
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Builder {
        args: Vec::new(),
        env: Vec::new(),
        pid1: true,
        shell: None,
        inner_shell: None,
        tty: false,
        own_session: false,
    }
    .args(args)
}

/// How to start drainit. `drainit(args)` makes one; `.start()` or `.run()` uses it.
pub struct Builder {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    pid1: bool,
    shell: Option<String>,
    inner_shell: Option<String>,
    tty: bool,
    own_session: bool,
}

impl Builder {
    /// One more argument for drainit (options, then the command and its arguments).
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Builder {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Builder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set an environment variable for drainit (all `DRAINIT_*` of the test's own environment
    /// are removed).
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Builder {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    /// Run drainit as PID 1 of a new PID namespace (the default) or, with `false`, plainly as a
    /// child of the test (then it is a subreaper, not PID 1).
    pub fn pid1(mut self, yes: bool) -> Builder {
        self.pid1 = yes;
        self
    }

    /// Start through bash, which runs `setup` (redirections, ulimits: `exec 7</etc/hostname`)
    /// and then execs drainit (or unshare), so the process tree is unchanged.
    pub fn shell(mut self, setup: &str) -> Builder {
        self.shell = Some(setup.to_string());
        self
    }

    /// Like `shell`, but run inside the PID namespace, right before drainit (so as PID 1 the
    /// setup must end in `exec`, directly or through a program that execs the rest of its
    /// command line, as `python3 -c '...; os.execvp(...)' "$@"`).
    pub fn inner_shell(mut self, setup: &str) -> Builder {
        self.inner_shell = Some(setup.to_string());
        self
    }

    /// Give drainit a controlling terminal on stdin, stdout and stderr: run it under
    /// `script`, which copies our stdin (`Drainit::type_keys`) to the terminal and the
    /// terminal's output (drainit's log included, lines ending in CR LF) to our stdout.
    pub fn tty(mut self) -> Builder {
        self.tty = true;
        self
    }

    /// Start drainit as the leader of a new session whose controlling terminal is its stdin
    /// (`setsid --ctty`), as a container runtime starts a container's PID 1 under `-it`. As PID
    /// 1 only: with `tty()` a plain drainit already is one (and setsid would fork).
    pub fn own_session(mut self) -> Builder {
        self.own_session = true;
        self
    }

    fn command(&self) -> Command {
        let mut argv: Vec<OsString> = Vec::new();
        if self.shell.is_some() {
            argv.extend(["bash", "-c", "", "bash"].map(OsString::from));
        }
        if self.pid1 {
            argv.extend(["unshare", "--pid", "--fork", "--mount-proc"].map(OsString::from));
        }
        if self.own_session && self.pid1 {
            argv.extend(["setsid", "--ctty"].map(OsString::from));
        }
        if let Some(inner) = &self.inner_shell {
            argv.extend(
                ["bash", "-c", &format!("{inner}\nexec \"$@\""), "bash"].map(OsString::from),
            );
        }
        argv.push(drainit_bin().into_os_string());
        argv.extend(self.args.iter().cloned());
        if let Some(setup) = &self.shell {
            argv[2] = format!("{setup}\nexec \"$@\"").into();
        }
        if self.tty {
            let line: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
            let exec = format!("exec {}", line.join(" "));
            argv = ["script", "-qfec", &exec, "/dev/null"]
                .map(OsString::from)
                .to_vec();
        }
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("DRAINIT_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(if self.tty {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    }

    /// Start drainit and wait until it runs with its signal intake installed (so a signal sent
    /// now is not dropped, which PID 1 would otherwise do), or until it has already exited.
    pub fn start(self) -> Drainit {
        let mut proc = self.command().spawn().expect("spawn drainit");
        let stdin = proc.stdin.take();
        let stdout = Captured::spawn(proc.stdout.take().unwrap());
        let stderr = Captured::spawn(proc.stderr.take().unwrap());
        let top = proc.id() as i32;
        let mut pid = None;
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if proc.try_wait().unwrap().is_some() {
                break;
            }
            let found = if stat(top).is_some_and(|s| s.comm == "drainit") {
                Some(top)
            } else {
                descendants_named(top, "drainit").first().copied()
            };
            if let Some(p) = found {
                let caught =
                    |p| collected_mask(p).map(|m| INTAKE_SIGNALS.iter().all(|s| has_signal(m, *s)));
                match caught(p) {
                    Some(true) | None => {
                        pid = Some(p);
                        break;
                    }
                    Some(false) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Drainit {
            proc,
            stdin,
            pid,
            pid1: self.pid1,
            stdout,
            stderr,
            status: None,
            child: Mutex::new(None),
        }
    }

    /// Run drainit to its end (within the deadline) and return what it did.
    pub fn run(self) -> Finished {
        let mut d = self.start();
        let code = d.wait_exit();
        Finished {
            code,
            stdout: d.stdout(),
            stderr: d.stderr(),
        }
    }
}

/// A drainit that ran to its end.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn first_stderr_line(&self) -> &str {
        self.stderr.lines().next().unwrap_or_default()
    }
}

/// A running drainit. Dropping it kills it and everything it started.
pub struct Drainit {
    /// What the test spawned: unshare (PID 1 mode), drainit itself, or bash that exec'd either.
    proc: Child,
    /// With `tty()`: what we type into the terminal.
    stdin: Option<std::process::ChildStdin>,
    /// drainit's host pid, once found.
    pid: Option<i32>,
    pid1: bool,
    stdout: Captured,
    stderr: Captured,
    status: Option<ExitStatus>,
    child: Mutex<Option<i32>>,
}

impl Drainit {
    /// drainit's host pid.
    pub fn pid(&self) -> i32 {
        self.pid.expect("drainit was not seen running")
    }

    pub fn is_pid1(&self) -> bool {
        self.pid1
    }

    /// The host pid of drainit's direct child (the command), waiting for it to exist and to
    /// have exec'd the command (between fork and exec it is a copy of drainit, with drainit's
    /// handlers: not what a test means to look at). As PID 1 the command is pid 2 of the
    /// namespace; otherwise it is drainit's oldest child.
    pub fn child(&self) -> i32 {
        let mut cached = self.child.lock().unwrap();
        if let Some(c) = *cached {
            return c;
        }
        let pid = self.pid();
        let ours = drainit_bin().canonicalize().unwrap();
        let mut found = None;
        wait_until("drainit's child", DEADLINE, || {
            let mut kids: Vec<(u64, i32)> = children(pid)
                .into_iter()
                .filter_map(|c| Some((stat(c)?.starttime, c)))
                .collect();
            kids.sort();
            found = if self.pid1 {
                kids.iter().map(|(_, c)| *c).find(|c| {
                    status_field(*c, "NSpid")
                        .is_some_and(|ns| ns.split_whitespace().last() == Some("2"))
                })
            } else {
                kids.first().map(|(_, c)| *c)
            };
            found.is_some_and(|c| {
                std::fs::read_link(format!("/proc/{c}/exe")).is_ok_and(|exe| exe != ours)
            })
        });
        *cached = found;
        found.unwrap()
    }

    /// Every process under drainit (the child, its descendants, the orphans drainit adopted).
    pub fn processes(&self) -> Vec<i32> {
        descendants(self.pid())
    }

    /// The process under drainit whose command line has the word `word` (like a
    /// `--label grandchild`), waiting for it to exist.
    pub fn process_with_arg(&self, word: &str) -> i32 {
        let mut found = None;
        wait_until(&format!("a process with argument {word}"), DEADLINE, || {
            found = self
                .processes()
                .into_iter()
                .find(|p| cmdline(*p).iter().any(|a| a == word));
            found.is_some()
        });
        found.unwrap()
    }

    /// How many processes under drainit are zombies (ended, not yet reaped).
    pub fn zombies(&self) -> usize {
        self.processes()
            .into_iter()
            .filter(|p| stat(*p).is_some_and(|s| s.state == 'Z'))
            .count()
    }

    /// Send `sig` to drainit, once it collects it (a PID 1 drops signals it neither blocks nor
    /// handles).
    pub fn send(&self, sig: i32) {
        let pid = self.pid();
        wait_until(
            &format!("drainit to collect signal {sig}"),
            DEADLINE,
            || collected_mask(pid).is_none_or(|m| has_signal(m, sig)),
        );
        assert!(kill(pid, sig), "cannot send signal {sig} to drainit");
    }

    /// Send `sig` to drainit and wait for the stdout line `line` (print-signals' report of it).
    pub fn send_and_see(&self, sig: i32, line: &str) -> Line {
        self.send(sig);
        self.wait_stdout(line)
    }

    /// Send `sig` to drainit as it is, caught or not.
    pub fn send_raw(&self, sig: i32) {
        assert!(kill(self.pid(), sig), "cannot send signal {sig} to drainit");
    }

    /// Type into drainit's terminal (`tty()` only): `b"\x03"` is Ctrl-C, `b"\x1a"` Ctrl-Z.
    pub fn type_keys(&mut self, keys: &[u8]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("type_keys needs Builder::tty()");
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
    }

    /// The first stdout line (from the start) that satisfies `pred`; panics at `deadline`.
    pub fn wait_for_stdout_line(&self, pred: impl Fn(&str) -> bool, deadline: Duration) -> Line {
        self.stdout
            .wait_line(deadline, pred)
            .unwrap_or_else(|| self.fail("the stdout line"))
    }

    /// Like `wait_for_stdout_line`, on stderr (drainit's log).
    pub fn wait_for_stderr_line(&self, pred: impl Fn(&str) -> bool, deadline: Duration) -> Line {
        self.stderr
            .wait_line(deadline, pred)
            .unwrap_or_else(|| self.fail("the stderr line"))
    }

    /// The first stdout line equal to `text`.
    pub fn wait_stdout(&self, text: &str) -> Line {
        self.stdout
            .wait_line(DEADLINE, |l| l == text)
            .unwrap_or_else(|| self.fail(&format!("stdout line {text:?}")))
    }

    /// The first stderr line containing `part`.
    pub fn wait_stderr(&self, part: &str) -> Line {
        self.stderr
            .wait_line(DEADLINE, |l| l.contains(part))
            .unwrap_or_else(|| self.fail(&format!("a stderr line containing {part:?}")))
    }

    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    pub fn stdout_lines(&self) -> Vec<Line> {
        self.stdout.lines()
    }

    pub fn stderr_lines(&self) -> Vec<Line> {
        self.stderr.lines()
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "did not see {what}\n--- stdout:\n{}--- stderr:\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    /// Has drainit exited (reaped by the test)?
    pub fn has_exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.proc.try_wait().unwrap();
        }
        self.status.is_some()
    }

    /// Wait (up to `DEADLINE`) for drainit to exit; its exit code, or 128+N if signal N killed
    /// it. unshare passes PID 1's exit code through, and re-raises a signal that killed it
    /// (SIGKILL excepted: unshare then exits 1). Then wait (briefly) until the reader threads
    /// have all of its output, so `stdout()`/`stderr()` are complete.
    pub fn wait_exit(&mut self) -> i32 {
        let code = self.wait_status(DEADLINE);
        // Closed once nothing holds the pipes: at once, unless something outlived drainit.
        self.stdout.wait_closed(OUTPUT_AFTER_EXIT);
        self.stderr.wait_closed(OUTPUT_AFTER_EXIT);
        code
    }

    /// Like `wait_exit`, within `deadline`, and without waiting for the output: for a test
    /// where processes outlive drainit and keep its pipes open.
    pub fn wait_status(&mut self, deadline: Duration) -> i32 {
        let end = Instant::now() + deadline;
        while !self.has_exited() {
            if Instant::now() >= end {
                self.fail("drainit exit");
            }
            std::thread::sleep(POLL);
        }
        let status = self.status.unwrap();
        use std::os::unix::process::ExitStatusExt;
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    }
}

impl Drop for Drainit {
    fn drop(&mut self) {
        if self.has_exited() {
            return;
        }
        if let Some(pid) = self.pid {
            // Killing a PID 1 kills its namespace; a plain drainit's descendants must be found
            // first, or they would be orphaned out of our reach.
            let rest = descendants(pid);
            kill(pid, libc::SIGKILL);
            for p in rest {
                kill(p, libc::SIGKILL);
            }
        }
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

/// Two forwarding modes: `[]` (the stop signals to the process group) and `["-c"]` (every
/// signal to the child alone).
pub const MODES: [&[&str]; 2] = [&[], &["-c"]];

/// A fresh scratch directory for one test, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("drainit-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A nameserver that never answers: a UDP socket on a spare loopback address (127.0.0.77 and
/// on) that the test holds open and never reads, so queries are neither answered nor refused
/// and getaddrinfo waits its full timeout (5 s, 2 attempts). Returns the socket (keep it) and
/// the shell commands that bind-mount, in a private mount namespace, a resolv.conf naming it,
/// an nsswitch.conf that asks files then DNS, and an /etc/hosts with localhost only. As root.
pub fn silent_nameserver(dir: &TempDir) -> (std::net::UdpSocket, String) {
    let (socket, ip) = (77..=99)
        .find_map(|n| {
            let ip = format!("127.0.0.{n}");
            std::net::UdpSocket::bind((ip.as_str(), 53))
                .ok()
                .map(|s| (s, ip))
        })
        .expect("a free UDP port 53 on 127.0.0.77-99 (the tests run as root)");
    let files = [
        (
            "resolv.conf",
            format!("nameserver {ip}\noptions timeout:5 attempts:2\n"),
        ),
        ("nsswitch.conf", "hosts: files dns\n".to_string()),
        ("hosts", "127.0.0.1\tlocalhost\n".to_string()),
    ];
    let mounts: Vec<String> = files
        .iter()
        .map(|(name, text)| {
            std::fs::write(dir.path(name), text).unwrap();
            format!("mount --bind {} /etc/{name}", dir.path(name).display())
        })
        .collect();
    (socket, mounts.join(" && "))
}
