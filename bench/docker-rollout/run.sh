#!/usr/bin/env bash
# The rolling-recreate benchmark in the real Docker engine (see bench.py for what it measures):
# `ab -n 100000 -c 20` and `-k` while every app container is recreated in turn, for drainit,
# Docker's `--init` (tini) and `npm start` as PID 1.
#
#   bench/docker-rollout/run.sh [--publish] [--plot FILE] [--out DIR] [bench.py options]
#
#   (no options)   all three inits x both ab modes, 100 000 requests each; about 15 minutes
#                  (the images first: 2 to 5 minutes)
#   --publish      also write the results block into docs/rolling-restart.md and the picture
#                  to docs/docker-rollout.png
#   --plot FILE    draw the picture (installs matplotlib with pip if it is missing)
#   e.g. --inits drainit,tini --modes new --requests 20000   (a quick look)
#
# Builds its images with no registry (scripts/docker-bases.sh, then Dockerfile.example) under
# the prefix drainit-bench-PID/ and removes them at the end. Needs root, a Docker engine and
# docker compose or docker-compose; installs what is missing (scripts/install-deps.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

plot=
out=
args=()
while (($#)); do
    case $1 in
        --out) out=$2; shift 2 ;;
        --plot) plot=$2; shift 2 ;;
        --publish)
            plot=$root/docs/docker-rollout.png
            args+=(--docs "$root/docs/rolling-restart.md"); shift ;;
        *) args+=("$1"); shift ;;
    esac
done

"$root/scripts/install-deps.sh"
prefix=drainit-bench-$$
cleanup() {
    docker images --format '{{.Repository}}:{{.Tag}}' | grep "^$prefix/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$root/scripts/docker-bases.sh" "$prefix"
echo "docker-rollout: docker build -f Dockerfile.example" >&2
# The build stage under a name of ours first: the classic builder would keep it untagged.
for target in build ""; do
    docker build -q --force-rm --build-arg "RUST_IMAGE=$prefix/rust:1-bookworm" \
        --build-arg "NODE_IMAGE=$prefix/node:20-bookworm-slim" ${target:+--target "$target"} \
        -f "$root/Dockerfile.example" -t "$prefix/app${target:+-$target}:bench" "$root" >/dev/null
done

out=${out:-$(mktemp -d /tmp/docker-rollout.XXXXXX)}
echo "docker-rollout: raw results in $out" >&2
python3 "$here/bench.py" --app-image "$prefix/app:bench" --haproxy-image "$prefix/haproxy:2.6" \
    --out "$out" "${args[@]}"
if [[ -n $plot ]]; then
    python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib
    python3 "$here/plot.py" "$out" "$plot"
fi
