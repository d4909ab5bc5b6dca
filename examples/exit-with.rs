//! exit-with: ends the way it is told, so tests can check the status drainit passes on.
//!
//! ```text
//! exit-with 3             # exits with status 3
//! exit-with --signal 15   # kills itself with signal 15 (any number, real-time ones included)
//! ```
//!
//! `--signal` resets the signal to its default action first (Rust's runtime ignores SIGPIPE),
//! then raises it; if the signal's default action does not end the process, it exits 1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [code] => std::process::exit(code.parse().expect("exit code")),
        ["--signal", sig] => {
            let sig: i32 = sig.parse().expect("signal number");
            // Not SIGPIPE's SIG_IGN from the runtime: the kernel's default action.
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            signal_hook::low_level::raise(sig).expect("raise");
            std::process::exit(1);
        }
        _ => panic!("usage: exit-with CODE | exit-with --signal N"),
    }
}
