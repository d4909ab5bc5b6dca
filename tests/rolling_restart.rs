//! The rolling-restart proof, short form: HAProxy with active `/readyz` checks in front of two
//! node apps (`npm start`), each under drainit as PID 1 of its own PID namespace; load through
//! HAProxy while each backend is restarted once, for both app modes (a graceful SIGTERM handler,
//! and none). Not one request may fail.
//!
//! It runs bench/rolling-restart/run.sh (the full benchmark, see docs/rolling-restart.md) with
//! two backends, a lower rate and one round (tests/rolling/mod.rs). Needs root, node and npm.

mod common;
mod rolling;

#[test]
fn drainit_loses_no_request_while_haproxy_backends_restart_one_by_one() {
    rolling::assert_no_request_lost(
        &[
            "--modes",
            "graceful,default",
            // Two backends: each restart costs the drain delay plus ~3 s until HAProxy has the
            // new instance UP (rise 2), and CI time counts.
            "--backends",
            "2",
            "--rate-keepalive",
            "40",
            "--rate-new",
            "40",
        ],
        2,
        2,
        500,
    );
}
