#!/usr/bin/env bash
# The README's first command: drainit in front of a tiny shell "app", showing the stop timeline
# in a few lines: /readyz 200 -> SIGTERM -> /readyz 503 at once while the app keeps running ->
# the delayed forward -> the app's exit status. Needs nothing beyond a built drainit and bash.
# As root it runs drainit as PID 1 of a new PID namespace (as in a container); otherwise plainly.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${DRAINIT:-target/release/drainit}
[ -x "$bin" ] || bin=target/debug/drainit
[ -x "$bin" ] || { echo "demo: build drainit first: cargo build --release" >&2; exit 1; }
port=${PORT:-18086}
delay=${DELAY:-2s}

t0=$(date +%s%N)
say() { printf 'demo: t=%5.2fs  %s\n' "$(( ($(date +%s%N) - t0) / 10000000 ))e-2" "$*"; }

# GET /readyz over bash's /dev/tcp; prints the status code, or "-" when nothing listens.
probe() {
  local status=-
  if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
    printf 'GET /readyz HTTP/1.0\r\nHost: demo\r\n\r\n' >&3
    read -r _ status _ <&3 || status=-
    exec 3<&-
  fi
  echo "$status"
}

app='trap "echo \"app:  got SIGTERM, finishing up\"; sleep 0.3; echo \"app:  bye\"; exit 0" TERM
echo "app:  serving"; while :; do sleep 0.1; done'

launcher=()
if [ "$(id -u)" = 0 ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
  launcher=(unshare --pid --fork --mount-proc)
fi
"${launcher[@]}" "$bin" --drain-delay "$delay" --ready-addr "127.0.0.1:$port" -- sh -c "$app" &
outer=$!
trap 'kill -KILL "$outer" 2>/dev/null || true' EXIT

# drainit's pid: the launcher's child under unshare, else the job itself.
pid=$outer
for _ in $(seq 100); do
  if ((${#launcher[@]})); then
    pid=$(cat /proc/"$outer"/task/*/children 2>/dev/null | awk '{print $1}')
  fi
  [ -n "$pid" ] && [ "$(probe)" = 200 ] && break
  sleep 0.05
done
[ "$(probe)" = 200 ] || { echo "demo: drainit did not come up on :$port" >&2; exit 1; }
say "/readyz -> 200 (drainit is pid ${pid}${launcher:+ on the host, PID 1 in its namespace})"

t0=$(date +%s%N)
kill -TERM "$pid"
say "sent SIGTERM (like docker stop)"
say "/readyz -> $(probe)   (the load balancer stops sending traffic; the app still runs)"
sleep 1
say "/readyz -> $(probe)   (still draining; SIGTERM is held for $delay)"
status=0
wait "$outer" || status=$?
trap - EXIT
say "drainit exited with status $status (the app's)"
