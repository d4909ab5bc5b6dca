#!/usr/bin/env bash
# Installs what the rolling-restart benchmark needs, and only what is missing, so that it is
# cheap to call before every run and works on a fresh CI machine (Debian, root).
#
#   install-deps.sh [INIT...]     INIT = tini | dumb-init | catatonit | drainit (drainit is built
#                                 by cargo, not installed)
#
# Always: haproxy (the load balancer), unshare/setpriv (util-linux), python3, node and npm.
# The plot (--plot) needs matplotlib, installed with pip by run.sh only when asked for.
set -euo pipefail

pkgs=()
need() { # need COMMAND PACKAGE...
    command -v "$1" >/dev/null 2>&1 || pkgs+=("${@:2}")
}
need haproxy haproxy
need unshare util-linux
need setpriv util-linux
need python3 python3
need node nodejs
need npm npm
for init in "$@"; do
    case "$init" in
        tini | dumb-init | catatonit) need "$init" "$init" ;;
        drainit) ;;
        *) echo "install-deps.sh: unknown init '$init'" >&2; exit 2 ;;
    esac
done

if ((${#pkgs[@]})); then
    # Sorted and unique: util-linux may be asked for twice.
    mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
    echo "install-deps.sh: apt-get install ${pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
fi
