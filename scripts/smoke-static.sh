#!/usr/bin/env bash
# Smoke test of the shipped static (musl) binary as PID 1. The test suite runs the glibc debug
# build; musl differs where it matters to an init: it keeps real-time signals 32-34 (so RTMIN,
# 34, cannot be caught) and has its own allocator and exec path. Every wait has a deadline.
# A runner runs the binary of another architecture, as PID 1 all the same:
#   scripts/smoke-static.sh target/static/aarch64-unknown-linux-musl/release/drainit qemu-aarch64-static
# (qemu-user runs drainit's code; the commands drainit starts are the host's, run natively.)
set -euo pipefail
bin=${1:?usage: smoke-static.sh PATH-TO-STATIC-DRAINIT [RUNNER...]}
shift
runner=("$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${outer:-}" ] && kill -KILL "$outer" 2>/dev/null; true' EXIT
fail() { echo "smoke-static: FAIL: $*" >&2; exit 1; }
wait_for() { # wait_for DESCRIPTION COMMAND...: poll up to 10 s
  local what=$1; shift
  for _ in $(seq 200); do "$@" && return 0; sleep 0.05; done
  fail "timed out waiting for $what"
}
pid1() { unshare --pid --fork --mount-proc "${runner[@]}" "$bin" "$@"; }

# Exit status passes through; 128+N for a signal; 127 for a missing command.
rc=0; pid1 -q -- sh -c 'exit 3' || rc=$?; [ "$rc" = 3 ] || fail "exit 3 came back as $rc"
rc=0; pid1 -q -- sh -c 'kill -USR1 $$' || rc=$?; [ "$rc" = 138 ] || fail "USR1 death came back as $rc"
rc=0; pid1 -q -- no-such-command-xyz 2>/dev/null || rc=$?; [ "$rc" = 127 ] || fail "missing command gave $rc"

# A stop signal the C library reserves is refused up front, naming itself (musl keeps 34).
rc=0; "${runner[@]}" "$bin" --stop-signal RTMIN true 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] && grep -q "reserved by the C library" "$tmp/err" || fail "--stop-signal RTMIN gave $rc: $(cat "$tmp/err")"

# Signals are forwarded through sh to a grandchild, and the drain works: real-time RTMIN+1 (35)
# and RTMAX (64) reach bash's traps; TERM is held for the delay, then forwarded. Under a runner,
# HUP and USR2 stand in for the real-time pair: qemu-user renumbers real-time signals between
# host and guest (the host's SIGRTMIN, 34, is the guest's 32), both ways, and cannot carry the
# top ones at all.
sig_a=35 sig_b=64
((${#runner[@]})) && sig_a=HUP sig_b=USR2
cat > "$tmp/app" <<APP
trap 'echo got-a >> "\$LOG"' $sig_a
trap 'echo got-b >> "\$LOG"' $sig_b
trap 'echo term >> "\$LOG"; exit 5' TERM
echo ready >> "\$LOG"
while :; do sleep 0.05 & wait \$!; done
APP
export LOG="$tmp/log"
unshare --pid --fork --mount-proc "${runner[@]}" "$bin" -d 0.5s -- sh -c 'exec bash "$0"' "$tmp/app" 2>"$tmp/drainit.err" &
outer=$!
wait_for "the app to start" grep -qs ready "$LOG"
init=$(cat /proc/"$outer"/task/*/children | awk '{print $1}')
kill -s "$sig_a" "$init"; wait_for "$sig_a to reach the app" grep -qs got-a "$LOG"
kill -s "$sig_b" "$init"; wait_for "$sig_b to reach the app" grep -qs got-b "$LOG"
kill -TERM "$init"
rc=0; wait "$outer" || rc=$?; outer=
[ "$rc" = 5 ] || fail "the drained app's status came back as $rc: $(cat "$tmp/drainit.err")"
grep -q "holding SIGTERM for 500ms" "$tmp/drainit.err" || fail "no drain: $(cat "$tmp/drainit.err")"

# --probe with musl's resolver: Docker's /etc/hosts (::1 localhost listed beside 127.0.0.1, ::1
# sorted first) in a private mount namespace, a drainit serving /readyz on 127.0.0.1 only.
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$tmp/hosts"
"${runner[@]}" "$bin" --ready-addr 127.0.0.1:0 -- sleep 100 2>"$tmp/server.err" &
outer=$!
wait_for "the readiness server" grep -qs "serving /readyz" "$tmp/server.err"
port=$(sed -n 's/.*serving \/readyz and \/livez on .*:\([0-9]*\)$/\1/p' "$tmp/server.err")
rc=0; unshare --mount sh -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' \
  sh "$tmp/hosts" "${runner[@]}" "$bin" --probe "localhost:$port" 2>"$tmp/probe.err" || rc=$?
[ "$rc" = 0 ] || fail "--probe localhost:$port gave $rc: $(cat "$tmp/probe.err")"
kill -TERM "$outer"; wait "$outer" 2>/dev/null || true; outer=
rc=0; "${runner[@]}" "$bin" --probe "127.0.0.1:$port" 2>"$tmp/probe.err" || rc=$?
[ "$rc" = 1 ] || fail "--probe of a stopped server gave $rc"
echo "smoke-static: ok ($(stat -c %s "$bin") bytes${runner[*]:+, under ${runner[*]}})"
