#!/usr/bin/env bash
# Fuzz smoke step for CI: build every cargo-fuzz target of drainit and run each for a short,
# bounded time (FUZZ_SECONDS, default 20) from the committed seed corpus and dictionary. Exits
# non-zero when a target fails to build or libFuzzer reports a crash (a panic, an assertion on a
# property, or a sanitizer error); the crashing input is left in fuzz/artifacts/<target>/.
# New inputs go to a scratch directory, so the committed corpus stays small.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-20}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cargo +nightly fuzz build
status=0
for target in $(cargo +nightly fuzz list); do
    mkdir -p "$scratch/$target" "fuzz/corpus/$target"
    dict=()
    if [[ -f "fuzz/dict/$target.dict" ]]; then
        dict=("-dict=fuzz/dict/$target.dict")
    fi
    echo "fuzz: $target for ${seconds}s"
    if ! cargo +nightly fuzz run "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
        echo "fuzz: $target FAILED; its last lines:"
        tail -n 40 "$scratch/$target.log"
        status=1
    else
        grep -E '^stat::number_of_executed_units' "$scratch/$target.log" | sed "s/^/fuzz: $target /" || true
    fi
done
exit "$status"
