//! `.dockerignore` keeps build outputs and version control out of the build context of
//! `docker build -f Dockerfile.example .` (issue 10: `target/` alone is hundreds of MB), while
//! everything the Dockerfiles copy is still there. Checked in the real Docker engine: an image
//! `FROM scratch` that copies the whole context, exported and listed. Skips, saying so, where
//! `docker info` fails; removes the image and the container it made.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

use common::TempDir;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the image and the container when the test ends, passed or not.
struct Cleanup {
    image: String,
    container: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(c) = &self.container {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

#[test]
fn the_build_context_has_the_sources_and_no_build_outputs() {
    let info = Command::new("docker").arg("info").output();
    if !info.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: `docker info` fails: no Docker engine to build with");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    // The context is this checkout, as users build it. cargo has made target/ by now.
    assert!(std::path::Path::new(root).join("target").is_dir());
    let dir = TempDir::new("dockerignore");
    let dockerfile = dir.path("Dockerfile");
    std::fs::write(&dockerfile, "FROM scratch\nCOPY . /context/\n").unwrap();
    let mut cleanup = Cleanup {
        image: format!("drainit-test-dockerignore:{}", std::process::id()),
        container: None,
    };
    docker(&[
        "build",
        "-q",
        "-t",
        &cleanup.image,
        "-f",
        dockerfile.to_str().unwrap(),
        root,
    ]);
    let container = docker(&["create", &cleanup.image, "/none"])
        .trim()
        .to_string();
    cleanup.container = Some(container.clone());
    let tar = Command::new("docker")
        .args(["export", &container])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let tar_path = dir.path("context.tar");
    std::fs::write(&tar_path, &tar.stdout).unwrap();
    let list = Command::new("tar")
        .args(["-tf", tar_path.to_str().unwrap()])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    let files: Vec<&str> = list
        .lines()
        .filter_map(|l| l.strip_prefix("context/"))
        .collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "src/main.rs",
        "examples/node-app/package.json",
        "Dockerfile.example",
    ] {
        assert!(files.contains(&needed), "{needed} missing from the context");
    }
    // `.git` is a directory in a clone and a file in a worktree.
    assert!(!files.iter().any(|f| *f == ".git" || f.starts_with(".git/")));
    for left_out in ["target/", "fuzz/target/", "node_modules/"] {
        assert!(
            !files
                .iter()
                .any(|f| f.starts_with(left_out) || f.contains(&format!("/{left_out}"))),
            "{left_out} is in the build context"
        );
    }
}
