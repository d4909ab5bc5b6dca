#!/usr/bin/env bash
# Installs what drainit's tests and benchmarks need, idempotently: every step checks first and
# does nothing when the tool is already there, so it is cheap to run before every test run.
#   - Debian packages: HAProxy (the real load balancer in the rolling-restart test), the inits we
#     compare against (tini, dumb-init, catatonit), curl, util-linux (unshare, setpriv, script),
#     qemu-user-static (CI runs the arm64 build under it).
#   - nginx, for `nginx -t` of deploy/nginx.conf and the benchmark behind nginx.
#   - The gunicorn stack (gunicorn, uvicorn, FastAPI at the versions pinned in
#     examples/fastapi-app/requirements.txt) in a virtual environment outside the repository:
#     $DRAINIT_VENV, default /opt/drainit-venv (`cargo clean` does not wipe it).
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
want qemu-aarch64-static qemu-user-static # the arm64 static build as PID 1 (.ci/run)
want nginx nginx
# `python3 -m venv` needs ensurepip, which Debian ships apart (python3-venv).
python3 -c 'import ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
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

venv=${DRAINIT_VENV:-/opt/drainit-venv}
reqs=$(cd "$(dirname "$0")/.." && pwd)/examples/fastapi-app/requirements.txt
pinned=$(grep -E '^[A-Za-z]' "$reqs")
installed=$("$venv/bin/python" -m pip freeze 2>/dev/null || true)
if [[ -n $(grep -vxF -f <(printf '%s\n' "$installed") <<<"$pinned") ]]; then
  echo "install-deps: pip install -r $reqs into $venv" >&2
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
fi
