#!/usr/bin/env bash
# Runs every fuzz target for N seconds on its committed seed corpus (default 60) and exits
# non-zero if any target crashes, leaks past the memory limits, or fails to build.
#
#   fuzz/run-smoke.sh 60
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain libFuzzer's -Z flags
# need RUSTC_BOOTSTRAP=1, which this script sets. New inputs go to a scratch corpus, so
# the committed seeds are never modified; crash inputs land in fuzz/artifacts/<target>/.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: $0 TARGET_SECONDS" >&2
    exit 2
fi

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export RUSTC_BOOTSTRAP=1

targets=(config_load vpp_frame icmp_reply http_response ctl_parse)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cargo fuzz build --debug-assertions

failed=()
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target" "artifacts/$target"
    echo "== $target: ${seconds}s"
    if cargo fuzz run --debug-assertions "$target" "$scratch/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=64 \
        -timeout=10 -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^Done' "$scratch/$target.log" || true
    else
        echo "!! $target failed; last lines:"
        tail -40 "$scratch/$target.log"
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz smoke FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz smoke passed: ${#targets[@]} targets, ${seconds}s each"
