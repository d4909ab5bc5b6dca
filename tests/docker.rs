#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! drainit as the ENTRYPOINT of a real container: a FROM-scratch image holding only the static
//! (musl) drainit and a static fixture program. `docker stop` must drain (503 at once, the
//! signal held for the delay, then forwarded), the container must exit with the fixture's
//! status, `docker kill -s USR1` must reach the fixture, and an orphan must not stay a zombie.
//!
//! Skipped, with a message, when `docker info` fails (no daemon): the test then passes.
//! Builds drainit with `cargo build --release --target x86_64-unknown-linux-musl` into its own
//! target directory (target/docker-test), so it never waits on the lock of the `cargo test`
//! that runs it. Containers and images are removed on drop, also when an assertion fails.

mod docker_common;

use docker_common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MUSL: &str = "x86_64-unknown-linux-musl";
const DRAIN_DELAY: Duration = Duration::from_secs(2);

/// The fixture: prints the signals it gets (on stderr, the stream drainit logs to, so the order
/// of the two is kept), exits 3 on SIGTERM, and leaves an orphan that exits 300 ms after start
/// and so must be reaped by PID 1. std only, compiled by rustc for musl: a static binary.
const FIXTURE: &str = r#"
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static PENDING: AtomicU64 = AtomicU64::new(0);
const NAMES: [(i32, &str); 4] = [(1, "SIGHUP"), (10, "SIGUSR1"), (12, "SIGUSR2"), (15, "SIGTERM")];

extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

extern "C" fn on_signal(n: i32) {
    PENDING.fetch_or(1 << n, Ordering::SeqCst);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("orphan-parent") => {
            std::process::Command::new(&args[0]).arg("orphan").spawn().unwrap();
            return;
        }
        Some("orphan") => {
            std::thread::sleep(Duration::from_millis(300));
            return;
        }
        _ => {}
    }
    for (n, _) in NAMES {
        unsafe { signal(n, on_signal) };
    }
    std::process::Command::new(&args[0]).arg("orphan-parent").status().unwrap();
    eprintln!("fixture: ready");
    loop {
        let pending = PENDING.swap(0, Ordering::SeqCst);
        for (n, name) in NAMES {
            if pending & (1 << n) != 0 {
                eprintln!("fixture: got {name}");
                if n == 15 {
                    std::process::exit(3);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
"#;

#[test]
fn drains_forwards_and_reaps_as_the_entrypoint_of_a_from_scratch_container() {
    if no_docker("tests/docker.rs") {
        return;
    }
    let context = TempDir::new("drainit-docker");
    build_static_drainit(&context.0.join("drainit"));
    build_fixture(&context.0);
    std::fs::write(
        context.0.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY drainit fixture /\n\
             ENTRYPOINT [\"/drainit\", \"--drain-delay\", \"{}s\", \"--ready-addr\", \":8086\", \"--\"]\n\
             CMD [\"/fixture\"]\n",
            DRAIN_DELAY.as_secs()
        ),
    )
    .unwrap();

    let image = Image::build(&context.0);
    let container = Container::run(&["-p", "127.0.0.1::8086", &image.0]);
    let port = container.published_port(8086);

    wait_for("the fixture to start", Duration::from_secs(30), || {
        container.logs().contains("fixture: ready")
    });
    wait_for("/readyz to answer 200", Duration::from_secs(30), || {
        http_status(port, "/readyz") == Some(200)
    });

    docker(&["kill", "-s", "USR1", &container.id]);
    wait_for(
        "SIGUSR1 to reach the fixture",
        Duration::from_secs(10),
        || container.logs().contains("fixture: got SIGUSR1"),
    );

    // The orphan (re-parented to drainit, PID 1) exits after 300 ms: drainit must reap it,
    // leaving exactly drainit and the fixture, neither a zombie.
    wait_for(
        "the orphan to be reaped (no zombie, 2 processes left)",
        Duration::from_secs(10),
        || {
            let top = container.top();
            top.len() == 2 && top.iter().all(|stat| !stat.starts_with('Z'))
        },
    );

    let stop_started = Instant::now();
    let mut stop = container.stop_until_draining(port);
    assert!(
        !container.logs().contains("fixture: got SIGTERM"),
        "the fixture got SIGTERM before /readyz turned 503:\n{}",
        container.logs()
    );
    let stopped = wait_child("docker stop", &mut stop, Duration::from_secs(60));
    assert!(stopped.success(), "docker stop failed: {stopped}");
    let stop_took = stop_started.elapsed();

    let logs = container.logs();
    assert_in_order(
        &logs,
        &[
            "fixture: got SIGUSR1",
            "SIGTERM received: /readyz now answers 503",
            "drain delay over: forwarding SIGTERM",
            "fixture: got SIGTERM",
            "exited with status 3",
            "exiting with status 3",
        ],
    );
    assert!(
        stop_took >= DRAIN_DELAY,
        "docker stop returned after {stop_took:?}, before the drain delay of {DRAIN_DELAY:?}:\n{logs}"
    );
    assert_eq!(container.inspect("{{.State.ExitCode}}"), "3", "{logs}");
    assert_eq!(container.inspect("{{.State.OOMKilled}}"), "false");
}

// ------------------------------------------------------------------ helpers

fn build_static_drainit(dest: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = root.join("target").join("docker-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--release", "--target", MUSL, "--quiet"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(root)
        .output()
        .unwrap();
    assert_success(
        "cargo build --release --target x86_64-unknown-linux-musl",
        &out,
    );
    std::fs::copy(target_dir.join(MUSL).join("release").join("drainit"), dest).unwrap();
}

fn build_fixture(dir: &Path) {
    let src = dir.join("fixture.rs");
    std::fs::write(&src, FIXTURE).unwrap();
    // rustc next to the cargo that runs us, so both are the same toolchain.
    let rustc = std::env::var("CARGO")
        .map(|c| PathBuf::from(c).with_file_name("rustc"))
        .ok()
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("rustc"));
    let out = Command::new(rustc)
        .args(["--edition", "2021", "-O", "--target", MUSL, "-o"])
        .arg(dir.join("fixture"))
        .arg(&src)
        .output()
        .unwrap();
    assert_success("rustc fixture.rs", &out);
    std::fs::remove_file(src).unwrap();
}

/// A test image, removed on drop.
struct Image(String);

impl Image {
    fn build(context: &Path) -> Image {
        let image = Image(unique("drainit-test"));
        docker(&["build", "-q", "-t", &image.0, context.to_str().unwrap()]);
        image
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}
