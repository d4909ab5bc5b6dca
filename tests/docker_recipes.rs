#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The README's Docker recipes, run in the real Docker engine with no registry:
//!
//! 1. `Dockerfile.example` itself, built from base images this test assembles
//!    (scripts/docker-bases.sh: debootstrap + `docker import`, the host's Rust toolchain and
//!    Node.js copied in) and passed through its `RUST_IMAGE` / `NODE_IMAGE` build args.
//!    The container turns healthy through `HEALTHCHECK CMD ["drainit", "--probe"]`, and
//!    `docker stop` drains: /readyz 503 at once, the app serving through the delay, node's
//!    SIGTERM after it, exit 143. And `docker stop -t 1`, shorter than the delay, SIGKILLs
//!    the app before it sees SIGTERM (the README's stop-budget warning).
//! 2. drainit as Docker's own init, the cheap way: the static binary bind-mounted at
//!    `/sbin/docker-init` with `--entrypoint /sbin/docker-init` (the argv `docker run --init`
//!    gives it) on the unchanged node image, configured by `-e DRAINIT_DRAIN_DELAY=2s` only.
//! 3. `deploy/compose.yaml`, with `docker compose` or `docker-compose`: HAProxy and three
//!    replicas, each recreated in turn under `ab -c 20`: no request fails.
//!
//! One test, the scenarios in sequence, so the base images (about two minutes to make) are
//! built once; everything it made is removed by guards, also when an assertion fails. With
//! `DRAINIT_BIN` set (CI's second pass, on the shipped static binary) only scenario 2 runs,
//! with that binary.
//! Skipped, with a message, when `docker info` fails.

mod docker_common;

use docker_common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn dockerfile_example_docker_init_and_compose_rollout() {
    if no_docker("tests/docker_recipes.rs") {
        return;
    }
    let prefix = unique("drainit-test");
    let _images = Images(prefix.clone());
    // CI runs every integration test a second time on the shipped static binary. The image
    // recipes build their own drainit, so that pass runs only the one recipe that takes a
    // binary as it is: the shipped drainit as Docker's init.
    if let Some(shipped) = std::env::var_os("DRAINIT_BIN") {
        step("DRAINIT_BIN is set: only the docker-init recipe, with that binary");
        base_images(&prefix, &["node"]);
        drainit_as_docker_init(&prefix, Path::new(&shipped));
        return;
    }
    step("base images (scripts/docker-bases.sh)");
    base_images(&prefix, &[]);

    step("docker build -f Dockerfile.example");
    let app = format!("{prefix}/app:test");
    let rust_arg = format!("RUST_IMAGE={prefix}/rust:1-bookworm");
    let node_arg = format!("NODE_IMAGE={prefix}/node:20-bookworm-slim");
    // The build stage first, under a name of ours: Docker's classic builder keeps a finished
    // stage as an untagged image (1.4 GB here) that nothing would remove. The second build
    // takes that stage from the cache.
    let build_stage = format!("{prefix}/app-build:test");
    for (target, tag) in [(Some("build"), &build_stage), (None, &app)] {
        let mut args = vec![
            "build",
            "-q",
            // A failed step's container would otherwise stay behind.
            "--force-rm",
            "--build-arg",
            &rust_arg,
            "--build-arg",
            &node_arg,
            "-f",
            "Dockerfile.example",
            "-t",
            tag,
        ];
        if let Some(target) = target {
            args.extend(["--target", target]);
        }
        args.push(ROOT);
        docker(&args);
    }

    step("Dockerfile.example: healthy, then docker stop drains");
    dockerfile_example_drains(&app);

    step("Dockerfile.example: a stop timeout shorter than the drain delay");
    short_stop_timeout_kills_before_sigterm(&app);

    step("drainit bind-mounted as /sbin/docker-init");
    // The static drainit, out of the image Dockerfile.example built.
    let dir = TempDir::new("drainit-docker-init");
    let holder = Container {
        id: docker(&["create", &app]),
    };
    let drainit = dir.0.join("drainit");
    docker(&[
        "cp",
        &format!("{}:/usr/local/bin/drainit", holder.id),
        drainit.to_str().unwrap(),
    ]);
    drop(holder);
    drainit_as_docker_init(&prefix, &drainit);

    step("deploy/compose.yaml: each replica recreated in turn under ab -c 20");
    compose_rollout(&prefix, &app);
}

/// scripts/docker-bases.sh PREFIX [IMAGES] (none: all of them).
fn base_images(prefix: &str, images: &[&str]) {
    let out = Command::new(Path::new(ROOT).join("scripts/docker-bases.sh"))
        .arg(prefix)
        .args(images)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert_success("scripts/docker-bases.sh", &out);
}

fn step(what: &str) {
    eprintln!("docker_recipes: {what}");
}

fn dockerfile_example_drains(app: &str) {
    let c = Container::run(&["-p", "127.0.0.1::8086", "-p", "127.0.0.1::3000", app]);
    wait_for(
        "HEALTHCHECK (drainit --probe) to say healthy",
        Duration::from_secs(180),
        || c.inspect("{{.State.Health.Status}}") == "healthy",
    );
    stop_drains(&c, Duration::from_secs(4), "143");
    let health = c.inspect("{{json .State.Health.Log}}");
    assert!(
        health.contains(r#""ExitCode":0"#),
        "no passing probe in the health log: {health}"
    );
}

/// The README's warning: `docker stop -t 1` with a 4 s drain delay SIGKILLs the app while
/// drainit still holds SIGTERM, so node never sees it (and exit 137 is Docker's SIGKILL).
fn short_stop_timeout_kills_before_sigterm(app: &str) {
    let c = Container::run(&[app]);
    wait_for("node to listen", Duration::from_secs(60), || {
        c.logs().contains("listening on")
    });
    docker(&["stop", "-t", "1", &c.id]);
    let logs = c.logs();
    assert!(
        logs.contains("SIGTERM received") && !logs.contains("got SIGTERM"),
        "{logs}"
    );
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "137", "{logs}");
}

/// `docker stop` while polling: /readyz turns 503 at once, the app answers 200 all through the
/// drain delay, node gets SIGTERM `delay` after drainit did, and the exit status is `exit`.
fn stop_drains(c: &Container, delay: Duration, exit: &str) {
    let ready = c.published_port(8086);
    let app = c.published_port(3000);
    wait_for("/readyz to answer 200", Duration::from_secs(30), || {
        http_status(ready, "/readyz") == Some(200)
    });
    assert_eq!(http_status(app, "/"), Some(200), "{}", c.logs());

    let mut stop = c.stop_until_draining(ready);
    // Until drainit forwards SIGTERM, the app must keep serving: the load balancer may still
    // send it requests during the delay.
    let mut served = 0;
    while !c.logs().contains("drain delay over") {
        match http_status(app, "/") {
            Some(200) => served += 1,
            // The forward may have come between the log check and the request.
            _ if c.logs().contains("drain delay over") => break,
            other => panic!(
                "the app answered {other:?} during the drain delay:\n{}",
                c.logs()
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // One round of `docker logs` and a request can take a second on a loaded machine.
    assert!(
        served >= 1,
        "no request served during the delay:\n{}",
        c.logs()
    );
    let stopped = wait_child("docker stop", &mut stop, Duration::from_secs(60));
    assert!(stopped.success(), "docker stop failed: {stopped}");

    // node's lines are on stdout, drainit's on stderr: each stream in its order, and the two
    // compared by Docker's timestamps (which are when Docker read a line, so only to a few ms).
    let logs = c.logs();
    assert_in_order(
        &logs,
        &["listening on", "got SIGTERM: closing", "closed: exiting"],
    );
    assert_in_order(
        &logs,
        &[
            "SIGTERM received: /readyz now answers 503",
            "drain delay over: forwarding SIGTERM",
            &format!("exiting with status {exit}"),
        ],
    );
    let lines = c.timed_logs();
    let at = |needle: &str| {
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("{needle:?} missing in:\n{logs}"))
    };
    let held = at("got SIGTERM: closing") - at("SIGTERM received");
    assert!(
        held >= delay.as_secs_f64() - 0.05 && held < delay.as_secs_f64() + 5.0,
        "node got SIGTERM {held:.3} s after drainit, not after the {delay:?} delay:\n{logs}"
    );
    eprintln!(
        "docker_recipes: node got SIGTERM {held:.3} s after drainit; {served} requests served \
         during the delay"
    );
    assert_eq!(c.inspect("{{.State.ExitCode}}"), exit, "{logs}");
}

fn drainit_as_docker_init(prefix: &str, drainit: &Path) {
    let mount = format!("{}:/sbin/docker-init:ro", drainit.display());
    let app_dir = format!("{ROOT}/examples/node-app:/app:ro");
    let node = format!("{prefix}/node:20-bookworm-slim");
    // What `docker run --init` runs is `/sbin/docker-init -- ENTRYPOINT CMD`; this is that,
    // with drainit in tini's place and its options from the environment.
    let c = Container::run(&[
        "-v",
        &mount,
        "--entrypoint",
        "/sbin/docker-init",
        "-e",
        "DRAINIT_DRAIN_DELAY=2s",
        "-e",
        "DRAINIT_READY_ADDR=:8086",
        "-e",
        "DRAINIT_READY_CHECK=tcp://127.0.0.1:3000",
        "-e",
        "GRACEFUL=1",
        "-v",
        &app_dir,
        "-w",
        "/app",
        "-p",
        "127.0.0.1::8086",
        "-p",
        "127.0.0.1::3000",
        &node,
        "--",
        "npm",
        "start",
    ]);
    stop_drains(&c, Duration::from_secs(2), "143");
}

// ------------------------------------------------------------------ Compose

/// The Compose project, taken down (containers, network) on drop.
struct Compose {
    cmd: Vec<String>,
    project: String,
    env: Vec<(String, String)>,
}

impl Compose {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.cmd[0]);
        c.args(&self.cmd[1..])
            .args(["-p", &self.project, "-f"])
            .arg(Path::new(ROOT).join("deploy/compose.yaml"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Run a compose command to its end (bounded), panicking with its output if it fails.
    fn run(&self, args: &[&str], limit: Duration) -> String {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let what = format!("compose {}", args.join(" "));
        wait_child(&what, &mut child, limit);
        let out = child.wait_with_output().unwrap();
        assert_success(&what, &out);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn container(&self, service: &str) -> String {
        self.run(&["ps", "-q", service], Duration::from_secs(30))
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self
            .command(&["down", "-t", "1", "--remove-orphans", "-v"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `docker compose` where the plugin exists, else `docker-compose`, else None.
fn compose_cmd() -> Option<Vec<String>> {
    let works = |cmd: &[&str]| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    [&["docker", "compose"][..], &["docker-compose"][..]]
        .into_iter()
        .find(|c| works(c))
        .map(|c| c.iter().map(|s| s.to_string()).collect())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy's state of server `name` ("UP", "DOWN", "UP 1/2"...) from its CSV stats.
fn haproxy_status(stats_port: u16, name: &str) -> String {
    let csv = http_body(stats_port, "/stats;csv");
    csv.lines()
        .find(|l| l.starts_with(&format!("app,{name},")))
        .and_then(|l| l.split(',').nth(17))
        .unwrap_or("")
        .to_string()
}

/// One `ab` run's counts.
#[derive(Debug, Default)]
struct AbCounts {
    complete: u64,
    failed: u64,
    length: u64,
    non_2xx: u64,
}

fn parse_ab(out: &str) -> Option<AbCounts> {
    let number = |label: &str| -> Option<u64> {
        let line = out.lines().find(|l| l.trim_start().starts_with(label))?;
        line.split(':')
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let length = out
        .split("Length: ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Some(AbCounts {
        complete: number("Complete requests")?,
        failed: number("Failed requests")?,
        length,
        non_2xx: number("Non-2xx responses").unwrap_or(0),
    })
}

fn compose_rollout(prefix: &str, app: &str) {
    let Some(cmd) = compose_cmd() else {
        eprintln!(
            "SKIPPED the Compose rollout of tests/docker_recipes.rs: neither `docker compose` \
             nor `docker-compose` works here"
        );
        return;
    };
    let ab_works = Command::new("ab")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ab_works,
        "ab is missing: scripts/install-deps.sh installs apache2-utils"
    );
    let port = free_port();
    let stats = free_port();
    let compose = Compose {
        cmd,
        project: prefix.to_string(),
        env: vec![
            ("APP_IMAGE".into(), app.into()),
            ("HAPROXY_IMAGE".into(), format!("{prefix}/haproxy:2.6")),
            ("RUST_IMAGE".into(), format!("{prefix}/rust:1-bookworm")),
            (
                "NODE_IMAGE".into(),
                format!("{prefix}/node:20-bookworm-slim"),
            ),
            ("HAPROXY_PORT".into(), port.to_string()),
            ("HAPROXY_STATS_PORT".into(), stats.to_string()),
        ],
    };
    // `up` returns once the apps are healthy (HAProxy depends_on service_healthy).
    compose.run(&["up", "-d"], Duration::from_secs(300));
    let replicas = ["app1", "app2", "app3"];
    for name in replicas {
        wait_for(
            &format!("HAProxy to see {name} UP"),
            Duration::from_secs(60),
            || haproxy_status(stats, name) == "UP",
        );
    }

    // The load: ab -c 20, in runs of 2000 requests back to back until the rollout is over.
    let done = Arc::new(AtomicBool::new(false));
    let load = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut runs = Vec::new();
            while !done.load(Ordering::SeqCst) || runs.is_empty() {
                let out = Command::new("ab")
                    .args(["-q", "-r", "-s", "10", "-n", "2000", "-c", "20"])
                    .arg(format!("http://127.0.0.1:{port}/"))
                    .output()
                    .unwrap();
                runs.push(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            runs
        })
    };
    let started = Instant::now();
    for name in replicas {
        let old = compose.container(name);
        compose.run(
            &["up", "-d", "--no-deps", "--force-recreate", name],
            Duration::from_secs(120),
        );
        let new = compose.container(name);
        assert_ne!(old, new, "{name} was not recreated");
        wait_for(
            &format!("the new {name} to be healthy"),
            Duration::from_secs(60),
            || docker(&["inspect", "-f", "{{.State.Health.Status}}", &new]) == "healthy",
        );
        wait_for(
            &format!("HAProxy to see the new {name} UP"),
            Duration::from_secs(60),
            || haproxy_status(stats, name) == "UP",
        );
    }
    let took = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let runs = load.join().unwrap();

    let mut total = AbCounts::default();
    for out in &runs {
        let c = parse_ab(out).unwrap_or_else(|| panic!("cannot read ab's output:\n{out}"));
        // ab counts a body whose length differs from the first one's as failed ("Length"):
        // the app answers "hello from <pid>", and pids differ in width between replicas.
        // With every response 2xx those are answered requests, not failures.
        assert!(
            c.failed == c.length && c.non_2xx == 0,
            "requests failed during the rollout: {c:?}\n{out}\nHAProxy:\n{}",
            docker_logs_of(&compose, "haproxy")
        );
        total.complete += c.complete;
        total.length += c.length;
    }
    eprintln!(
        "docker_recipes: rollout of 3 replicas in {took:.1?}: {} requests in {} ab runs, 0 failed",
        total.complete,
        runs.len()
    );
    assert!(total.complete >= 2000, "too little load: {total:?}");
}

fn docker_logs_of(compose: &Compose, service: &str) -> String {
    let id = compose.container(service);
    let out = Command::new("docker").args(["logs", &id]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
