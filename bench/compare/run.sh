#!/usr/bin/env bash
# The performance comparison in one command: drainit against tini, tini-static, dumb-init and
# catatonit, each as PID 1 of a fresh PID namespace. Installs what it needs (idempotently: every
# step checks first), builds the shipped static drainit (scripts/build-static.sh) and the C helpers, measures (compare.py), then
# writes the table and the chart into docs/performance.md and docs/performance.png (report.py).
#
#   bench/compare/run.sh            full run (~4 min), updates docs/performance.{md,png}
#   bench/compare/run.sh --quick    smoke run (~30 s), prints the table, leaves docs/ alone
#
# Needs root: PID namespaces, and 5000 pidfds at once in the reaping test. Debian/Ubuntu (apt).
# Raw samples: target/bench-compare/results.json (--quick: results-quick.json); the inits'
# stderr: target/bench-compare/logs/.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ $(id -u) -ne 0 ]]; then
  echo "run.sh: run as root (it creates PID namespaces)" >&2
  exit 1
fi
quick=()
[[ ${1:-} == --quick ]] && quick=(--quick)

# --- install -------------------------------------------------------------------------------
need=()
want() { # want PATH-OR-COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || [[ -x $1 ]] || need+=("$2")
}
want /usr/bin/tini tini
want /usr/bin/tini-static tini
want /usr/bin/dumb-init dumb-init
want /usr/bin/catatonit catatonit
want gcc gcc
want file file
want ldd libc-bin
want unshare util-linux
want python3 python3
want valgrind valgrind # instructions at start-up (callgrind)
want strace strace     # syscalls at start-up
# gcc -static needs the static glibc.
[[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || need+=(libc6-dev)
if ((${#need[@]})); then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "run.sh: apt-get install ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  echo "run.sh: pip install matplotlib (for the chart)" >&2
  python3 -m pip install --quiet matplotlib ||
    echo "run.sh: no matplotlib: the table is written, the chart is not" >&2
fi
# --- build ---------------------------------------------------------------------------------
# The shipped binaries (the pinned nightly is installed by the script when missing); arm64 only
# for its size.
drainit=$(scripts/build-static.sh x86_64 | tail -n 1)
drainit_arm64=$(scripts/build-static.sh aarch64 | tail -n 1)
out=target/bench-compare
mkdir -p "$out/bin"
for helper in sigrecv siglat orphans minit; do
  # Static, so the 5000 forks of `orphans` and the receivers load no shared libraries.
  gcc -O2 -Wall -Wextra -Werror -static -o "$out/bin/$helper" "bench/compare/$helper.c"
done

# --- measure, report -----------------------------------------------------------------------
if ((${#quick[@]})); then
  # Its own file, so a smoke run never overwrites the samples behind the published results.
  python3 bench/compare/compare.py --bin "$out/bin" --drainit "$drainit" \
    --drainit-arm64 "$drainit_arm64" --out "$out/results-quick.json" --quick
  python3 bench/compare/report.py "$out/results-quick.json" --png "$out/performance-quick.png"
else
  python3 bench/compare/compare.py --bin "$out/bin" --drainit "$drainit" \
    --drainit-arm64 "$drainit_arm64" --out "$out/results.json"
  python3 bench/compare/report.py "$out/results.json" \
    --doc docs/performance.md --png docs/performance.png
fi
