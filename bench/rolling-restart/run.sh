#!/usr/bin/env bash
# One command for the rolling-restart benchmark (see bench.py for what it measures).
#
#   bench/rolling-restart/run.sh [--publish] [--plot FILE] [--out DIR] [--drainit PATH] [bench.py options]
#
#   (no options)   all inits (drainit, tini, dumb-init, catatonit) x both app modes, 3 backends,
#                  each restarted twice, 100 + 100 req/s; about 7 minutes
#   --publish      also write the results block into docs/rolling-restart.md and the picture
#                  to docs/rolling-restart.png
#   --plot FILE    draw the picture (installs matplotlib with pip if it is missing)
#   --drainit PATH use this binary instead of building target/release/drainit
#   e.g. --inits drainit --modes default --rounds 1 --rate-keepalive 30 --rate-new 30
#        --fail-on-loss (tests/rolling_restart.rs runs this short form)
#
# Installs what is missing first (scripts/install-deps.sh: apt-get, only what is missing: HAProxy,
# tini, dumb-init, catatonit, node, npm, util-linux). Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

inits=drainit,tini,dumb-init,catatonit
drainit=
plot=
out=
args=()
while (($#)); do
    case $1 in
        --inits) inits=$2; args+=("$1" "$2"); shift 2 ;;
        --inits=*) inits=${1#--inits=}; args+=("$1"); shift ;;
        --drainit) drainit=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --plot) plot=$2; shift 2 ;;
        --publish)
            plot=$root/docs/rolling-restart.png
            args+=(--docs "$root/docs/rolling-restart.md"); shift ;;
        *) args+=("$1"); shift ;;
    esac
done

"$root/scripts/install-deps.sh"

if [[ ,$inits, == *,drainit,* && -z $drainit ]]; then
    (cd "$root" && cargo build --release --quiet)
    drainit=$root/target/release/drainit
fi
out=${out:-$(mktemp -d /tmp/rolling-restart.XXXXXX)}

status=0
python3 "$here/bench.py" --drainit "${drainit:-drainit}" --out "$out" "${args[@]}" || status=$?
if [[ -n $plot && -f $out/results.json ]]; then
    python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib
    python3 "$here/plot.py" "$out" "$plot"
fi
exit "$status"
