//! orphans: leaves orphaned processes behind for drainit to reap and to shut down. A test fixture
//! for reaping (contract, point 4) and the exit path (point 5), and a demo of both:
//!
//! ```text
//! drainit target/debug/examples/orphans --count 1000 --exit-together --then await-reaped
//! ```
//!
//! The main process starts `--count` orphans by double fork: it starts helper processes, each
//! starts up to 100 orphans and exits at once, so the orphans are re-parented to drainit (PID 1,
//! or the subreaper). Every orphan reports its pid once its signal handling is set up; when all
//! have, the main process prints `ready N` and does what `--then` says.
//!
//! Orphan options (every orphan behaves the same):
//! - `--life MS`: exit 0 after MS milliseconds. Default: live until a signal ends it.
//! - `--exit-together`: exit the moment the main process has started them all (they all wait
//!   for EOF on a pipe the main process closes), so their SIGCHLDs arrive in one burst.
//! - `--ignore-term`: catch SIGTERM and carry on (a daemon that needs SIGKILL).
//! - `--term-takes MS`: on SIGTERM take MS to finish, then append `finished PID` to `--marker`.
//! - `--marker PATH`: the file `--term-takes` appends to.
//! - `--daemon`: call setsid(), leaving the process group (a daemonized grandchild).
//!
//! Main process options:
//! - `--count N`: how many orphans (default 1).
//! - `--then exit[:CODE]` (default `exit:0`): exit at once, leaving the orphans behind.
//! - `--then stay`: keep running until a signal ends it.
//! - `--then await-reaped`: wait until every orphan has exited and been reaped (no process but
//!   this one is a child of our parent, none a zombie), print `zombies 0` and exit 0; after 30 s
//!   print `left A zombies Z` and exit 1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use signal_hook::iterator::Signals;

/// Orphans per helper process: a helper starts this many, then exits.
const PER_HELPER: usize = 100;

/// What every orphan does (parsed from the options passed on to it).
#[derive(Default)]
struct Orphan {
    life: Option<u64>,
    exit_together: bool,
    ignore_term: bool,
    term_takes: Option<u64>,
    marker: Option<String>,
    daemon: bool,
}

fn parse_orphan(args: &[String]) -> Orphan {
    let mut o = Orphan::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| panic!("{a} needs a value"))
                .clone()
        };
        match a.as_str() {
            "--life" => o.life = Some(value().parse().expect("ms")),
            "--term-takes" => o.term_takes = Some(value().parse().expect("ms")),
            "--marker" => o.marker = Some(value()),
            "--exit-together" => o.exit_together = true,
            "--ignore-term" => o.ignore_term = true,
            "--daemon" => o.daemon = true,
            other => panic!("orphans: unknown argument {other}"),
        }
    }
    o
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--helper") => helper(args[1].parse().expect("n"), &args[2..]),
        Some("--orphan") => orphan(&parse_orphan(&args[1..])),
        _ => main_process(&args),
    }
}

/// Start the orphans through helpers, collect their pids, then do what `--then` says.
fn main_process(args: &[String]) {
    let (mut count, mut then, mut orphan_args) = (1, "exit:0".to_string(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--count" => count = it.next().expect("--count N").parse().expect("count"),
            "--then" => then = it.next().expect("--then WHAT").clone(),
            _ => orphan_args.push(a.clone()),
        }
    }
    parse_orphan(&orphan_args); // fail here, not in a thousand orphans
    let exe = std::env::current_exe().expect("current_exe");
    let mut left = count;
    let mut reports = Vec::new();
    // The orphans' stdin: we hold the only write end, so closing it releases them all at once.
    let mut release = None;
    while left > 0 {
        let n = left.min(PER_HELPER);
        left -= n;
        let mut helper = Command::new(&exe)
            .arg("--helper")
            .arg(n.to_string())
            .args(&orphan_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn helper");
        let stdout = helper.stdout.take().expect("helper stdout");
        release
            .get_or_insert_with(Vec::new)
            .extend(helper.stdin.take());
        helper.wait().expect("wait for helper");
        reports.push((n, BufReader::new(stdout)));
    }
    let mut pids = 0;
    for (n, mut r) in reports {
        for _ in 0..n {
            let mut line = String::new();
            r.read_line(&mut line).expect("orphan report");
            assert!(!line.is_empty(), "an orphan died before it reported");
            pids += 1;
        }
    }
    say(&format!("ready {pids}"));
    drop(release);
    match then.as_str() {
        "stay" => loop {
            std::thread::park();
        },
        "await-reaped" => await_reaped(),
        then => {
            let code = then
                .strip_prefix("exit")
                .map(|c| c.trim_start_matches(':'))
                .map_or(0, |c| c.parse().unwrap_or(0));
            std::process::exit(code);
        }
    }
}

/// Start `n` orphans with the options in `rest`, then exit without waiting for them: not
/// waiting is the point, it is what makes them orphans.
#[allow(clippy::zombie_processes)]
fn helper(n: usize, rest: &[String]) {
    let exe = std::env::current_exe().expect("current_exe");
    for _ in 0..n {
        // stdin and stdout are inherited: the release pipe and the report pipe.
        Command::new(&exe)
            .arg("--orphan")
            .args(rest)
            .spawn()
            .expect("spawn orphan");
    }
}

fn orphan(o: &Orphan) {
    if o.daemon {
        nix::unistd::setsid().expect("setsid");
    }
    // Catch SIGTERM only when asked to; otherwise its default action ends us.
    let caught = (o.ignore_term || o.term_takes.is_some())
        .then(|| Signals::new([libc::SIGTERM]).expect("catch SIGTERM"));
    say(&std::process::id().to_string());
    if let Some(ms) = o.life {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            std::process::exit(0);
        });
    }
    if o.exit_together {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    }
    let Some(mut signals) = caught else {
        loop {
            std::thread::park();
        }
    };
    for _ in signals.forever() {
        if let Some(ms) = o.term_takes {
            std::thread::sleep(Duration::from_millis(ms));
            let marker = o.marker.as_deref().expect("--term-takes needs --marker");
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(marker)
                .expect("open marker");
            writeln!(f, "finished {}", std::process::id()).expect("write marker");
            std::process::exit(0);
        }
    }
}

/// Wait until no process but us is a child of our parent (drainit), zombie or not.
fn await_reaped() {
    let me = std::process::id().to_string();
    let parent = nix::unistd::getppid().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (mut alive, mut zombies) = (0, 0);
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
                continue;
            };
            // Fields after the command name (which may hold spaces): state, ppid, ...
            let rest = &stat[stat.rfind(')').expect("stat") + 1..];
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or_default();
            if fields.next() == Some(parent.as_str()) {
                if state == "Z" {
                    zombies += 1;
                } else {
                    alive += 1;
                }
            }
        }
        if alive == 0 && zombies == 0 {
            say("zombies 0");
            std::process::exit(0);
        }
        if Instant::now() >= deadline {
            say(&format!("left {alive} zombies {zombies}"));
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn say(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{what}");
    let _ = out.flush();
}
