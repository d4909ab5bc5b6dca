//! deploy/nginx.conf, the recipe for nginx open source in front of drainit'd nodes, is a valid
//! nginx configuration: `nginx -t` accepts it. It runs with a prefix, pid file and error log in
//! a scratch directory, so it needs no system configuration. nginx comes from
//! scripts/install-deps.sh.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::TempDir;

#[test]
fn the_nginx_recipe_in_deploy_passes_nginx_t() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf");
    let dir = TempDir::new("nginx-t");
    let out = Command::new("nginx")
        .arg("-t")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(&dir.0)
        .arg("-e")
        .arg(dir.path("error.log"))
        .arg("-g")
        .arg(format!("pid {};", dir.path("nginx.pid").display()))
        .output()
        .expect("run nginx (scripts/install-deps.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nginx -t failed:\n{stderr}");
    assert!(stderr.contains("test is successful"), "{stderr}");
    // The settings the recipe is about are in it, not only a config that parses.
    let text = std::fs::read_to_string(&conf).unwrap();
    for setting in [
        "max_fails=3 fail_timeout=2s",
        "proxy_next_upstream error timeout;",
        "keepalive 16;",
        "proxy_http_version 1.1;",
        "non_idempotent",
    ] {
        assert!(
            text.contains(setting),
            "deploy/nginx.conf lacks {setting:?}"
        );
    }
}
