#!/usr/bin/env bash
# Builds, with no registry, the base images that Dockerfile.example and deploy/compose.yaml
# name, under local tags of their own so a user's real images are never shadowed:
#
#   scripts/docker-bases.sh PREFIX [rust] [node] [haproxy]    (none named: all three)
#
#   PREFIX/debian:bookworm         `debootstrap --variant=minbase bookworm` + `docker import`
#   PREFIX/rust:1-bookworm         that + gcc (apt) + a copy of this host's Rust toolchain
#                                  (rustup, cargo, rustc, std for the host and for
#                                  x86_64-unknown-linux-musl; no docs), laid out as in the
#                                  official image (RUSTUP_HOME=/usr/local/rustup, ...), and
#                                  the crates Cargo.lock names, from this host's cargo cache
#                                  (`cargo fetch`), with CARGO_NET_OFFLINE=true: building
#                                  drainit in it needs no network
#   PREFIX/node:20-bookworm-slim   that + this host's node and npm, and the `node` user (1000)
#   PREFIX/haproxy:2.6             that + Debian's haproxy (apt), run as the official image
#                                  runs it: `haproxy -W -db -f /usr/local/etc/haproxy/haproxy.cfg`
#
# Build with them:  docker build --build-arg RUST_IMAGE=PREFIX/rust:1-bookworm \
#                     --build-arg NODE_IMAGE=PREFIX/node:20-bookworm-slim -f Dockerfile.example .
# Remove them:      docker rmi PREFIX/debian:bookworm PREFIX/rust:1-bookworm ... (the tests do)
#
# The debootstrap tarball is cached in target/docker-base/ (about 70 s to make, once per
# machine); everything else takes about a minute. apt inside `docker build` reaches Debian's
# mirror. Needs root (debootstrap), debootstrap (scripts/install-deps.sh), node and rustup.
set -euo pipefail
prefix=${1:?usage: scripts/docker-bases.sh PREFIX [rust] [node] [haproxy]}
shift
wanted=" ${*:-rust node haproxy} "
root=$(cd "$(dirname "$0")/.." && pwd)
cache=$root/target/docker-base
mkdir -p "$cache"
log() { echo "docker-bases: $*" >&2; }

# --- the Debian root filesystem, made once and kept (flock: tests and benches may race here).
tarball=$cache/bookworm-minbase.tar
(
    flock 9
    if [[ ! -s $tarball ]]; then
        log "debootstrap --variant=minbase bookworm (once; cached in $tarball)"
        rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
        trap 'rm -rf "$rootfs"' EXIT
        debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
            { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
    fi
) 9>"$cache/.lock"

debian=$prefix/debian:bookworm
log "docker import -> $debian"
docker import -c 'CMD ["bash"]' "$tarball" "$debian" >/dev/null

ctx=$(mktemp -d "$cache/ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT

# --- rust: the host's toolchain, hard-linked into the build context (same file system, no copy).
sysroot=$(rustc --print sysroot)
toolchain=$(basename "$sysroot")
[[ -d $sysroot/lib/rustlib/x86_64-unknown-linux-musl ]] ||
    { log "the host toolchain $toolchain has no x86_64-unknown-linux-musl target (scripts/install-deps.sh adds it)"; exit 1; }
mkdir -p "$ctx/rust/rustup/toolchains/$toolchain/bin" "$ctx/rust/cargo/bin"
cp -al "$sysroot/lib" "$ctx/rust/rustup/toolchains/$toolchain/" 2>/dev/null ||
    cp -a "$sysroot/lib" "$ctx/rust/rustup/toolchains/$toolchain/"
cp -a "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$ctx/rust/rustup/toolchains/$toolchain/bin/"
printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
    "$toolchain" >"$ctx/rust/rustup/settings.toml"
cp "$(command -v rustup)" "$ctx/rust/cargo/bin/rustup"
(cd "$root" && cargo fetch --locked --quiet)
mkdir -p "$ctx/rust/cargo/registry"
cp -a "${CARGO_HOME:-$HOME/.cargo}/registry/index" "${CARGO_HOME:-$HOME/.cargo}/registry/cache" \
    "$ctx/rust/cargo/registry/"
ln -s rustup "$ctx/rust/cargo/bin/cargo"
ln -s rustup "$ctx/rust/cargo/bin/rustc"
cat >"$ctx/rust/Dockerfile" <<'EOF'
ARG BASE
FROM $BASE
# gcc: the musl target links through `cc` (its crt objects and libc are rustc's own).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH \
    CARGO_NET_OFFLINE=true
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
EOF

# --- node: the host's node binary (it needs only libc, libstdc++ and libgcc: in minbase) and npm.
node=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
mkdir -p "$ctx/node"
cp "$node" "$ctx/node/node"
cp -a "$npm_dir" "$ctx/node/npm"
cat >"$ctx/node/Dockerfile" <<'EOF'
ARG BASE
FROM $BASE
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
CMD ["node"]
EOF

# --- haproxy
mkdir -p "$ctx/haproxy"
cat >"$ctx/haproxy/Dockerfile" <<'EOF'
ARG BASE
FROM $BASE
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /usr/local/etc/haproxy
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
EOF

# The three builds wait mostly on apt and on copying: run them side by side.
pids=()
for image in rust:1-bookworm node:20-bookworm-slim haproxy:2.6; do
    name=${image%%:*}
    [[ $wanted == *" $name "* ]] || continue
    log "docker build -> $prefix/$image"
    docker build -q --force-rm --build-arg "BASE=$debian" -t "$prefix/$image" "$ctx/$name" \
        >"$ctx/$name.log" 2>&1 &
    pids+=("$!:$name")
done
status=0
for entry in "${pids[@]}"; do
    if ! wait "${entry%%:*}"; then
        log "building ${entry#*:} failed:"
        cat "$ctx/${entry#*:}.log" >&2
        status=1
    fi
done
exit "$status"
