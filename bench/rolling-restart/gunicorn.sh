#!/usr/bin/env bash
# gunicorn + UvicornWorker (examples/fastapi-app) behind HAProxy and behind nginx open source:
# how many requests do drainit, tini -g and dumb-init lose in a rolling restart?
#
#   bench/rolling-restart/gunicorn.sh [--publish] [--rounds N] [--drainit PATH]
#
# Three runs of run.sh (bench.py), GET and POST load, three nodes:
#   1. HAProxy, active checks on /readyz: drainit (--drain-delay 4s), tini -g, dumb-init
#   2. nginx (deploy/nginx.conf, no active checks): drainit --drain-delay 0s, tini -g, dumb-init
#   3. nginx: drainit --drain-delay 4s (what a drain delay does where nobody polls /readyz)
# --publish writes the three tables into docs/rolling-restart.md (between the
# `<!-- gunicorn:begin -->` and `<!-- gunicorn:end -->` markers). Needs root; installs what is
# missing with scripts/install-deps.sh (via run.sh). About 10 minutes with --rounds 2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

publish=
rounds=2
drainit=
while (($#)); do
    case $1 in
        --publish) publish=1; shift ;;
        --rounds) rounds=$2; shift 2 ;;
        --drainit) drainit=$2; shift 2 ;;
        *) echo "gunicorn.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [[ -z $drainit ]]; then
    (cd "$root" && cargo build --release --quiet)
    drainit=$root/target/release/drainit
fi
out=$(mktemp -d /tmp/rolling-restart-gunicorn.XXXXXX)
common=(--drainit "$drainit" --app gunicorn --post --modes default --backends 3
        --rounds "$rounds" --rate-keepalive 50 --rate-new 50 --up-timeout 90)

run() { # run NAME LB DELAY INITS
    echo "== $1" >&2
    "$here/run.sh" "${common[@]}" --out "$out/$1" --lb "$2" --drain-delay "$3" --inits "$4" \
        >"$out/$1.md"
}
run haproxy haproxy 4s drainit,tini,dumb-init
run nginx nginx 0s drainit,tini,dumb-init
run nginx-delay nginx 4s drainit

block=$(for n in haproxy nginx nginx-delay; do
    case $n in
        haproxy) echo "**Behind HAProxy** (active checks on \`/readyz\`):" ;;
        nginx) echo "**Behind nginx open source**, drainit with \`--drain-delay 0s\`:" ;;
        nginx-delay) echo "**Behind nginx open source**, drainit with \`--drain-delay 4s\`:" ;;
    esac
    echo
    cat "$out/$n.md"
    echo
done)
printf '%s\n' "$block"
if [[ -n $publish ]]; then
    BLOCK=$block python3 - "$root/docs/rolling-restart.md" <<'PY'
import os, sys
path = sys.argv[1]
begin, end = "<!-- gunicorn:begin -->", "<!-- gunicorn:end -->"
text = open(path).read()
new = f"{begin}\n{os.environ['BLOCK'].strip()}\n{end}"
if begin in text and end in text:
    text = text[:text.index(begin)] + new + text[text.index(end) + len(end):]
else:
    text += "\n" + new + "\n"
open(path, "w").write(text)
PY
fi
echo "raw results in $out" >&2
