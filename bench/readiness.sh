#!/usr/bin/env bash
# Benchmark of drainit's readiness server (contract, points 3 and 7), on loopback only:
#   1. stop signal -> first 503: drainit as PID 1 with a long drain delay; a client polls
#      /readyz on a kept-alive connection as fast as it can; SIGTERM is sent between two polls.
#      Measured: from just before kill(2) to the first 503 the client has read (so it includes
#      one request round trip). One fresh drainit per sample.
#   2. probe throughput: wrk against /readyz, kept-alive and with `Connection: close`.
#   3. signal-forwarding latency: an app that waits in sigwaitinfo(2) stamps each SIGUSR1 it
#      gets; latency = its stamp - the stamp taken just before kill(2) to drainit (both
#      CLOCK_MONOTONIC). Once idle, once while wrk floods the readiness port (kept-alive and
#      connection-close clients at once).
# Prints medians and p99 (and wrk's own figures). Needs root (unshare), python3 and wrk.
# Usage: bench/readiness.sh [SAMPLES [SECTIONS]]   (default 200 and "123"; section 1 uses
# SAMPLES/4 runs)
set -euo pipefail
cd "$(dirname "$0")/.."

samples=${1:-200}
sections=${2:-123}
# unshare (util-linux 2.38) complains when its child is SIGKILLed; that is not ours to show.
exec 2> >(grep -v --line-buffered 'sigprocmask unblock failed' >&2)
command -v wrk >/dev/null || { echo "bench/readiness.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench/readiness.sh: needs python3" >&2; exit 1; }

cargo build --release --quiet
bin=$PWD/target/release/drainit
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  # Only these: a bare `wait` would also wait for the stderr filter below, which waits for us.
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# Stop a background process this script started, reap it and forget it (so cleanup never
# signals a pid that may have been reused).
# With a second argument (drainit's pid under unshare $1), that one is killed first: unshare
# exits once its child has, so the port is free again when stop returns.
stop() {
  local p keep=()
  kill -KILL "${2:-$1}" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# drainit's host pid under the unshare whose pid is $1.
drainit_pid() {
  local u=$1 c=""
  for _ in $(seq 200); do
    c=$(cat "/proc/$u/task/$u/children" 2>/dev/null || true)
    [ -n "$c" ] && { echo "${c%% *}"; return; }
    sleep 0.01
  done
  echo "bench: drainit did not start" >&2; exit 1
}

wait_ready() {
  for _ in $(seq 500); do
    curl -s -o /dev/null "http://127.0.0.1:$1/livez" && return
    sleep 0.01
  done
  echo "bench: drainit does not serve on $1" >&2; exit 1
}

echo "drainit: $bin ($(stat -c %s "$bin") bytes); $(nproc) cores; samples: $samples"
echo

# --- 1. stop signal -> first 503 -------------------------------------------------------------
if [[ $sections == *1* ]]; then
echo "== 1. SIGTERM -> first 503 seen by a client polling /readyz (kept-alive), $((samples / 4)) runs"
port=$(free_port)
: >"$work/stop.txt"
for _ in $(seq $((samples / 4))); do
  unshare --pid --fork --kill-child --mount-proc "$bin" -q --ready-addr "127.0.0.1:$port" -d 60s -- sleep 600 &
  u=$!; pids+=("$u")
  d=$(drainit_pid "$u")
  wait_ready "$port"
  python3 - "$port" "$d" >>"$work/stop.txt" <<'EOF'
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = b"GET /readyz HTTP/1.1\r\n\r\n"
def probe():
    s.sendall(req)
    buf = b""
    while not (b"\r\n\r\n" in buf and (buf.endswith(b"ok\n") or buf.endswith(b"draining\n"))):
        buf += s.recv(4096)
    return int(buf[9:12])
for _ in range(50):          # warm up the connection and the loop
    assert probe() == 200
t0 = time.monotonic_ns()
os.kill(pid, signal.SIGTERM)
polls = 0
while probe() != 503:
    polls += 1
t1 = time.monotonic_ns()
print((t1 - t0) / 1000, polls)
EOF
  stop "$u" "$d"
done
python3 - "$work/stop.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
us = sorted(float(r[0]) for r in rows)
late = sum(1 for r in rows if int(r[1]) > 0)
p99 = us[min(len(us) - 1, int(len(us) * 0.99))]
print(f"   runs {len(us)}: median {statistics.median(us):.0f} us, p99 {p99:.0f} us, "
      f"max {us[-1]:.0f} us; 200s seen after the kill: {late} of {len(us)} runs")
EOF
echo

fi

# --- 2. probe throughput -----------------------------------------------------------------------
if [[ $sections == *2* ]]; then
port=$(free_port)
unshare --pid --fork --kill-child --mount-proc "$bin" -q --ready-addr "127.0.0.1:$port" -- sleep 600 &
u=$!; pids+=("$u"); d=$(drainit_pid "$u"); wait_ready "$port"
summary() { awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx|Socket errors/ {err=err" "$0}
  END {printf "   %s req/s, latency median %s, p99 %s%s\n", rps, p50, p99, err}'; }
echo "== 2. probe throughput (wrk -t1 -d5s; drainit is single-threaded, and rests 1 ms after a"
echo "   turn with more than 8 connections ready: 4 clients is a crowd of probers, 32 a flood)"
for c in 4 32; do
  echo "   $c clients, kept-alive:"
  wrk -t1 -c$c -d5s --latency "http://127.0.0.1:$port/readyz" | summary
  echo "   $c clients, Connection: close (a new connection per probe):"
  wrk -t1 -c$c -d5s --latency -H "Connection: close" "http://127.0.0.1:$port/readyz" | summary
done
stop "$u" "$d"
echo

fi

# --- 3. signal forwarding latency, idle and under a flood ---------------------------------------
if [[ $sections == *3* ]]; then
cat >"$work/app.py" <<'EOF'
import signal, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
out = open(sys.argv[1], "a", buffering=1)
open(sys.argv[2], "w").close()          # started
while True:
    signal.sigwaitinfo({signal.SIGUSR1})
    out.write(f"{time.monotonic_ns()}\n")
EOF
forward_latency() {  # $1 = label, $2 = flood: no, same (this drainit's port), other (another's)
  local port u d u2 d2
  port=$(free_port)
  : >"$work/got.txt"; rm -f "$work/started"
  unshare --pid --fork --kill-child --mount-proc "$bin" -q --ready-addr "127.0.0.1:$port" -- \
    python3 "$work/app.py" "$work/got.txt" "$work/started" &
  u=$!; pids+=("$u"); d=$(drainit_pid "$u"); wait_ready "$port"
  while [ ! -e "$work/started" ]; do sleep 0.01; done
  local flood=() target=$port
  if [ "$2" = other ]; then
    target=$(free_port)
    unshare --pid --fork --kill-child --mount-proc "$bin" -q --ready-addr "127.0.0.1:$target" -- sleep 600 &
    u2=$!; pids+=("$u2"); d2=$(drainit_pid "$u2"); wait_ready "$target"
  fi
  if [ "$2" != no ]; then
    wrk -t1 -c200 -d120s "http://127.0.0.1:$target/readyz" >/dev/null &
    flood+=($!)
    wrk -t1 -c50 -d120s -H "Connection: close" "http://127.0.0.1:$target/readyz" >/dev/null &
    flood+=($!)
    pids+=("${flood[@]}")
    sleep 1
  fi
  python3 - "$d" "$work/got.txt" "$samples" "$1" <<'EOF'
import os, signal, statistics, sys, time
pid, got, n, label = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
sent = []
for _ in range(n):
    before = len(open(got).read().split())
    t0 = time.monotonic_ns()
    os.kill(pid, signal.SIGUSR1)
    sent.append(t0)
    deadline = time.monotonic() + 10
    while len(open(got).read().split()) == before:   # one at a time: signals coalesce
        if time.monotonic() > deadline:
            sys.exit(f"bench: SIGUSR1 not forwarded within 10 s ({label})")
        time.sleep(0.0005)
    time.sleep(0.01)
recv = [int(x) for x in open(got).read().split()]
us = sorted((r - s) / 1000 for s, r in zip(sent, recv))
p99 = us[min(len(us) - 1, int(len(us) * 0.99))]
print(f"   {label}: {len(us)} signals, median {statistics.median(us):.0f} us, "
      f"p99 {p99:.0f} us, max {us[-1]:.0f} us")
EOF
  for f in "${flood[@]}"; do stop "$f"; done
  stop "$u" "$d"
  if [ "$2" = other ]; then stop "$u2" "$d2"; fi
}
echo "== 3. SIGUSR1 -> app (sigwaitinfo), forwarding latency; the flood is wrk, 200 kept-alive"
echo "   and 50 Connection: close clients. 'another drainit' puts the same load on the machine"
echo "   (2 cores) while this drainit's server is idle: the scheduler's share of the figures."
forward_latency "idle                       " no
forward_latency "flood on its readiness port" same
forward_latency "flood on another drainit   " other
fi
