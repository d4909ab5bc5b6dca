//! The README's first command, `examples/demo.sh`, keeps working: it must show the readiness
//! flip, the held signal, the forward and the app's exit status, in that order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

#[test]
fn the_demo_shows_the_flip_the_delay_the_forward_and_the_exit_in_order() {
    let out = Command::new("examples/demo.sh")
        .env("DRAINIT", common::drainit_bin())
        .env("PORT", "18199")
        .env("DELAY", "1s")
        .output()
        .expect("run examples/demo.sh");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let steps = [
        "/readyz -> 200",
        "sent SIGTERM",
        "/readyz -> 503",
        "app:  got SIGTERM",
        "drainit exited with status 0",
    ];
    let mut at = 0;
    for step in steps {
        let found = stdout[at..]
            .find(step)
            .unwrap_or_else(|| panic!("demo output lacks {step:?} after byte {at}:\n{text}"));
        at += found + step.len();
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holding SIGTERM for 1s"), "{text}");
    assert!(
        stderr.contains("drain delay over: forwarding SIGTERM"),
        "{text}"
    );
}
