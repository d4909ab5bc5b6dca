//! drainit's exit status is the child's (contract, point 5): its exit code unchanged, 128+N when
//! signal N killed it (real-time signals included), then `--remap-exit`. As PID 1 and not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

fn status_of(pid1: bool, drainit_args: &[&str], fixture_args: &[String]) -> i32 {
    let f = drainit(drainit_args)
        .pid1(pid1)
        .arg(example("exit-with"))
        .args(fixture_args)
        .run();
    f.code
}

#[test]
fn exit_codes_pass_through_unchanged() {
    for pid1 in [true, false] {
        for code in [0, 1, 2, 3, 42, 126, 127, 128, 129, 254, 255] {
            assert_eq!(
                status_of(pid1, &[], &[code.to_string()]),
                code,
                "exit {code}, pid1={pid1}"
            );
        }
    }
}

#[test]
fn a_death_by_signal_n_becomes_128_plus_n_real_time_signals_included() {
    for pid1 in [true, false] {
        for sig in [
            libc::SIGTERM,
            libc::SIGKILL,
            libc::SIGUSR1,
            libc::SIGINT,
            rtmin(3),
            libc::SIGRTMAX(),
        ] {
            let args = ["--signal".to_string(), sig.to_string()];
            assert_eq!(
                status_of(pid1, &[], &args),
                128 + sig,
                "signal {sig}, pid1={pid1}"
            );
        }
    }
}

#[test]
fn remap_exit_maps_the_final_status_after_signal_folding() {
    let term = ["--signal".to_string(), "15".to_string()];
    assert_eq!(status_of(true, &["--remap-exit", "143:0"], &term), 0);
    assert_eq!(status_of(true, &["--remap-exit", "1:0"], &term), 143);
    let three = ["3".to_string()];
    assert_eq!(
        status_of(
            false,
            &["--remap-exit", "3:4", "--remap-exit", "3:5"],
            &three
        ),
        5,
        "the last pair for a FROM wins"
    );
    assert_eq!(
        status_of(false, &["--remap-exit", "3:0,0:3"], &three),
        0,
        "a comma list is accepted and each status is mapped once"
    );
    let zero = ["0".to_string()];
    assert_eq!(status_of(false, &["--remap-exit", "0:255"], &zero), 255);
}

#[test]
fn remap_exit_is_read_from_the_environment_and_the_command_line_replaces_it() {
    let three = ["3".to_string()];
    let from_env = drainit(Vec::<&str>::new())
        .env("DRAINIT_REMAP_EXIT", "3:7,5:6")
        .arg(example("exit-with"))
        .args(&three)
        .run();
    assert_eq!(from_env.code, 7);
    let replaced = drainit(["--remap-exit", "5:1"])
        .env("DRAINIT_REMAP_EXIT", "3:7")
        .arg(example("exit-with"))
        .args(&three)
        .run();
    assert_eq!(
        replaced.code, 3,
        "the command-line list replaces the env list"
    );
}
