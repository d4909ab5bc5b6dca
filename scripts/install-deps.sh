#!/usr/bin/env bash
# Installs what drainit's tests and benchmarks need, idempotently: every step checks first and
# does nothing when the tool is already there, so it is cheap to run before every test run.
#   - Debian packages: HAProxy (the real load balancer in the rolling-restart test), the inits we
#     compare against (tini, dumb-init, catatonit), curl, util-linux (unshare, setpriv, script).
#   - Rust: the x86_64-unknown-linux-musl target for the static release binary.
# Needs root for apt-get (the tests need root anyway: they create PID namespaces).
set -euo pipefail

need_pkgs=()
want() { # want COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2")
}
want haproxy haproxy
want tini tini
want dumb-init dumb-init
want catatonit catatonit
want curl curl
want unshare util-linux
want setpriv util-linux
want script bsdutils
want python3 python3
want file file
want node nodejs
want npm npm
want debootstrap debootstrap # the Debian base images of tests/docker_recipes.rs (scripts/docker-bases.sh)
want ab apache2-utils        # the load in tests/docker_recipes.rs and bench/docker-rollout

if ((${#need_pkgs[@]})); then
  echo "install-deps: apt-get install ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if command -v rustup >/dev/null 2>&1 &&
  ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  echo "install-deps: rustup target add x86_64-unknown-linux-musl" >&2
  rustup target add x86_64-unknown-linux-musl
fi
