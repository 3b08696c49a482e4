#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/*.rs) in turn for SECONDS each (default 60) with
# cargo-fuzz (libFuzzer) on the stable toolchain, and exits non-zero if any target finds
# something: a panic, an assertion of the harness, a timeout or more memory than the limit.
#
#   scripts/fuzz.sh [SECONDS]
#
# Environment: FUZZ_TARGETS (space-separated subset), FUZZ_RSS_LIMIT_MB (default 512),
# FUZZ_TIMEOUT (seconds one input may take, default 30).
#
# Each target starts from its checked-in seeds (fuzz/corpus/TARGET, read-only) and a working
# corpus in fuzz/target/corpus/TARGET that grows across runs. A finding is saved under
# fuzz/artifacts/TARGET/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-...
# and turn it into a regression test in tests/ before fixing. The last lines print each
# target's execution count (libFuzzer's stat::number_of_executed_units).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
rss="${FUZZ_RSS_LIMIT_MB:-512}"
timeout="${FUZZ_TIMEOUT:-30}"
targets="${FUZZ_TARGETS:-$(ls fuzz_targets | sed -n 's/\.rs$//p' | sort)}"
# cargo-fuzz needs nightly-only rustc flags; RUSTC_BOOTSTRAP lets stable accept them.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

echo "== building the fuzz targets (sanitizer: none)"
cargo fuzz build -s none

mkdir -p target/logs
failed=()
summary=()
for t in $targets; do
    mkdir -p "target/corpus/$t" "artifacts/$t" "corpus/$t"
    log="target/logs/$t.log"
    echo "== $t: ${seconds}s, rss limit ${rss} MB"
    if cargo fuzz run -s none "$t" "target/corpus/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb="$rss" -timeout="$timeout" \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
        result="ok"
    else
        result="FINDING"
        failed+=("$t")
        echo "---- $t: last lines of $log"
        tail -n 40 "$log"
    fi
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    summary+=("$(printf '%-22s %-8s %12s executions' "$t" "$result" "${execs:-?}")")
done

echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "findings in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
