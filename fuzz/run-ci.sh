#!/usr/bin/env bash
# Fuzz step: build every cargo-fuzz target of drainit and run each from the committed seed
# corpus and dictionary. Exits non-zero when a target fails to build or libFuzzer reports a
# crash (a panic, an assertion on a property, or a sanitizer error); the crashing input is left
# in fuzz/artifacts/<target>/. New inputs go to a scratch directory, so the committed corpus
# stays small; a crash worth keeping goes into fuzz/corpus/<target>/ by hand, as a regression.
#
# Two modes. By default (CI) a run is reproducible: every committed input, then FUZZ_RUNS
# (default 200000) mutations from a fixed seed (FUZZ_SEED, default 1), so the verdict does
# not hang on the machine's speed or on luck (libFuzzer may order same-size corpus files
# differently on another file system; the committed regression inputs run every time). A time-bounded run with a random seed
# once failed CI on a bug that had been there for weeks: finding bugs is the developers' job,
# with FUZZ_SECONDS=N (explore mode: a random seed, N seconds a target, as long as you like).
# Needs the nightly toolchain (libFuzzer's sanitizer flags are nightly-only) and cargo-fuzz; it
# installs cargo-fuzz from crates.io when missing. FUZZ_TOOLCHAIN names the nightly (default
# `nightly`; CI passes the one scripts/build-static.sh pins). A machine without it cannot fuzz at
# all: then it says so and exits 0, unless FUZZ_REQUIRED=1.
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ -n "${FUZZ_SECONDS:-}" ]]; then
    budget=(-max_total_time="$FUZZ_SECONDS")
    what="for ${FUZZ_SECONDS}s, random seed"
else
    budget=(-runs="${FUZZ_RUNS:-200000}" -seed="${FUZZ_SEED:-1}")
    what="${FUZZ_RUNS:-200000} runs from seed ${FUZZ_SEED:-1}"
fi
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

if ! cargo "+$toolchain" --version >/dev/null 2>&1; then
    echo "fuzz: SKIPPED: no $toolchain toolchain on this machine (rustup toolchain list)"
    [[ "${FUZZ_REQUIRED:-0}" == 1 ]] && exit 1
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

cargo "+$toolchain" fuzz build
status=0
for target in $(cargo "+$toolchain" fuzz list); do
    mkdir -p "$scratch/$target" "fuzz/corpus/$target"
    dict=()
    if [[ -f "fuzz/dict/$target.dict" ]]; then
        dict=("-dict=fuzz/dict/$target.dict")
    fi
    # http's inputs must reach past the 8 KiB head limit, over libFuzzer's default of 4 KiB.
    if [[ "$target" == http ]]; then
        dict+=("-max_len=20000")
    fi
    echo "fuzz: $target, $what"
    if ! cargo "+$toolchain" fuzz run "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        "${dict[@]}" "${budget[@]}" -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
        echo "fuzz: $target FAILED; its last lines:"
        tail -n 40 "$scratch/$target.log"
        status=1
    else
        grep -E '^stat::number_of_executed_units' "$scratch/$target.log" | sed "s/^/fuzz: $target /" || true
    fi
done
exit "$status"
