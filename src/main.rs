//! drainit: a tiny init for containers that drains before it stops.
//!
//! Data flows one way: argv/env → `Config` (cli.rs) → spawn (child.rs) → one event loop
//! (event_loop.rs) → exit status. This file is the only place that exits. Before the child runs,
//! failures exit with the contract's codes (error.rs); after it runs, drainit exits only with the
//! child's status.

mod check;
mod child;
mod cli;
mod config;
mod drain;
mod error;
mod event_loop;
mod fds;
mod http;
mod logging;
mod lookup;
mod parse;
mod probe;
mod ready;
mod reap;
mod signals;
mod status;
mod sys;

use std::process::ExitCode;

use crate::check::Checker;
use crate::config::Config;
use crate::error::Fatal;
use crate::event_loop::EventLoop;
use crate::ready::Server;
use crate::signals::Intake;

fn main() -> ExitCode {
    // `--probe` is a second, tiny mode (probe.rs): it must not block signals or spawn, so it is
    // chosen before anything else.
    if let Some(args) = probe::requested(std::env::args_os()) {
        return ExitCode::from(probe::run(&args));
    }
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(fatal) => {
            eprintln!("drainit: {fatal}");
            ExitCode::from(fatal.code)
        }
    }
}

fn run() -> Result<u8, Fatal> {
    // Order matters. The signals first (already blocked by the constructor in sys.rs; again
    // here for a platform that skips it), so one sent at start-up waits in the queue; then fds
    // 0-2, so nothing of ours lands there; then the inherited list, before we open descriptors
    // of our own; then the signalfd.
    signals::block();
    fds::ensure_stdio()?;
    let inherited = fds::inherited();
    let intake =
        Intake::open().map_err(|e| Fatal::other(format!("cannot set up signal handling: {e}")))?;
    let config = match cli::parse() {
        Ok(config) => config,
        Err(e) => {
            let code = u8::try_from(e.exit_code()).unwrap_or(Fatal::USAGE);
            let _ = e.print();
            return Ok(code);
        }
    };
    logging::init(&config.log_filter);
    let server = bind_server(&config)?;
    let checker = config.ready_check.clone().map(Checker::new);
    reap::become_subreaper();

    let child = child::spawn(&config.command)?;
    log::debug!("started {:?} as pid {}", config.command, child.pid);
    // From here on nothing is fatal.
    fds::close_inherited(&inherited);
    if let Err(e) = nix::unistd::chdir("/") {
        log::warn!("cannot change directory to /: {e}");
    }
    Ok(EventLoop::new(config, intake, server, checker, child).run())
}

/// Bind the readiness listener before the spawn: a busy address exits 1 with no child started.
fn bind_server(config: &Config) -> Result<Option<Server>, Fatal> {
    let Some(addr) = config.ready_addr else {
        return Ok(None);
    };
    let server = Server::bind(addr)
        .map_err(|e| Fatal::other(format!("cannot listen on --ready-addr {addr}: {e}")))?;
    // The real address: a port of 0 was picked by the kernel, `[::]` may have fallen back.
    let bound = server.local_addr().map_or(addr, |a| a);
    log::info!("serving /readyz and /livez on {bound}");
    Ok(Some(server))
}
