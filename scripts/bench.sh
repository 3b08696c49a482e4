#!/usr/bin/env bash
# Reproduces the README's bench table with one command: starts throw-away PostgreSQL and Redis
# servers (through scripts/test-services.sh), runs every bench with short criterion settings,
# counts the store round trips (tests/round_trips.rs) and prints the table in README markdown.
#
#   scripts/bench.sh                 # the whole table (a few minutes once compiled)
#   scripts/bench.sh > bench.md      # the table alone on stdout; progress goes to stderr
#
# Every time is shown beside the floor measured in the same run, and the ratio between them:
# on a shared machine the absolute numbers move from run to run, the ratios much less.
# Environment: CX_SSO_BENCH_LOGINS (logins per backend, default 2000), CX_SSO_BENCH_PENDING
# (pending logins for the memory figure, default 1000000), CX_SSO_BENCH_SQLITE_ROWS (default
# 100000), CRITERION_ARGS (default "--warm-up-time 1 --measurement-time 3").
set -euo pipefail

cd "$(dirname "$0")/.."
if [ -z "${CX_SSO_BENCH_SERVICES_UP:-}" ]; then
    export CX_SSO_BENCH_SERVICES_UP=1
    exec scripts/test-services.sh "$0" "$@"
fi

say() { echo "bench: $*" >&2; }
target="${CARGO_TARGET_DIR:-target}"
crit_args="${CRITERION_ARGS:---warm-up-time 1 --measurement-time 3}"
log="$(mktemp -d "${TMPDIR:-/tmp}/cx-sso-bench.XXXXXX")"
trap 'rm -rf "$log"' EXIT

say "building the benches (release profile)"
cargo bench --all-features --no-run >&2

for bench in login visitor connection; do
    say "criterion bench $bench"
    # shellcheck disable=SC2086
    cargo bench --all-features --bench "$bench" -- --noplot $crit_args >"$log/$bench.txt" 2>&1 \
        || { cat "$log/$bench.txt" >&2; exit 1; }
done
say "throughput per store backend"
# A backend that fails is reported and the table is printed without it.
cargo bench --all-features --bench stores 2>"$log/stores.err" | tee "$log/stores.txt" >&2 \
    || { say "the stores bench failed:"; tail -n 20 "$log/stores.err" >&2; }
say "memory of pending logins, sweeps"
cargo bench --all-features --bench memory 2>"$log/memory.err" | tee "$log/memory.txt" >&2 \
    || { say "the memory bench failed:"; tail -n 20 "$log/memory.err" >&2; }
say "store round trips (tests/round_trips.rs)"
cargo test --all-features --test round_trips -- --nocapture --test-threads=1 \
    >"$log/round_trips.txt" 2>&1 || { cat "$log/round_trips.txt" >&2; exit 1; }

# The mean of a criterion bench, in nanoseconds.
mean_ns() {
    local file
    file="$(ls "$target"/criterion/"$1"/new/estimates.json 2>/dev/null | head -n 1)"
    if [ -z "$file" ]; then
        echo "missing"
        return
    fi
    jq -r '.mean.point_estimate' "$file"
}
fmt_us() { awk -v ns="$1" 'BEGIN { if (ns == "missing") print "?"; else printf "%.2f µs", ns / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "missing" || b == "missing" || b == 0) print "?"; else printf "%.1f ×", a / b }'; }
row() { # operation, bench id, floor description, floor bench id
    local t f
    t="$(mean_ns "$2")"
    if [ -n "${4:-}" ]; then
        f="$(mean_ns "$4")"
        echo "| $1 | $(fmt_us "$t") | $3: $(fmt_us "$f") | $(ratio "$t" "$f") |"
    else
        echo "| $1 | $(fmt_us "$t") | $3 | — |"
    fi
}
result() { grep "^RESULT $1 " "$2" || true; }

echo "Measured $(date -u +%Y-%m-%d) by \`scripts/bench.sh\` ($(rustc --version | awk '{print $1, $2}'), release profile, criterion \`$crit_args\`, $(nproc) cores)."
echo
echo "| operation | time per op | floor (same run) | ratio |"
echo "|---|---|---|---|"
row "\`begin_login\` (MemoryStore at steady state)" begin_login \
    "its store operations and random values alone" floor_begin_login
row "\`complete_login\`, bound user, \`SignedIn\` (RS256; FakeIdp in process)" complete_login \
    "raw RS256 verify (aws-lc-rs)" floor_rs256_verify
row "\`check_session\` (policy with past and scheduled switches)" check_session \
    "MemoryStore \`get\` of the policy" floor_check_session_store_get
row "\`mint_visitor_token\`" "visitor/visitor_mint" \
    "HMAC-SHA256 + JSON + base64url" "visitor/floor_hmac_sha256_plus_json_mint"
row "\`verify_visitor_token\`" "visitor/visitor_verify" \
    "HMAC-SHA256 + compare + base64url + JSON" "visitor/floor_hmac_sha256_plus_json_verify"
row "\`access_token\`, token still valid" "connection/access_token_cached" \
    "MemoryStore \`get\`" "connection/floor_memory_store_get"
row "same, tokens encrypted at rest" "connection/access_token_cached_encrypted" \
    "that \`get\`, then the raw XChaCha20-Poly1305 open of the stored token" "connection/floor_get_then_open"
row "\`xoauth2\`, encrypted" "connection/xoauth2_cached_encrypted" \
    "the same \`get\` and open" "connection/floor_get_then_open"

echo
echo "| memory and sweeps | figure | floor (same run) | ratio |"
echo "|---|---|---|---|"
result memory_per_login "$log/memory.txt" | awk '{
    printf "| memory per pending login, 1,000,000 in MemoryStore | %s B (%s allocations) | the bare keys in a HashSet: %s B | %.1f × |\n", $3, $4, $5, $3 / $5 }'
result memory_sweep "$log/memory.txt" | awk '{
    printf "| MemoryStore sweep of %s expired pending logins | %s ms | a HashMap retain over as many: %s ms | %.1f × |\n", $3, $4, $5, ($5 > 0 ? $4 / $5 : 0) }'
result sqlite_sweep "$log/memory.txt" | awk '{
    printf "| `SqlStore::sweep_expired`, SQLite, %s expired rows | %s ms | — | — |\n", $3, $4 }'

echo
echo "| login throughput, 8 in flight (\`benches/stores.rs\`) | logins/s | floors (same run): the login's store operations issued directly; RS256 verify alone | target ≥ 1,000 |"
echo "|---|---|---|---|"
grep -E '^RESULT (throughput|skipped) ' "$log/stores.txt" | awk '
    function commas(x,  s, r) {
        s = sprintf("%d", x); r = ""
        while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
        return s r
    }
    function label(n) {
        if (n == "memory") return "MemoryStore"
        if (n == "sqlite") return "SqlStore, SQLite (the defaults: WAL, durable records `synchronous=FULL`, short-lived `NORMAL`; file on the VM disk)"
        if (n == "sqlite-durable") return "same, every commit `FULL` (`ShortLivedCommits::Durable`)"
        if (n == "postgres") return "SqlStore, PostgreSQL 15 (the defaults: short-lived records `synchronous_commit=off`, durable `on`)"
        if (n == "postgres-durable") return "same, every commit `synchronous_commit=on` (`ShortLivedCommits::Durable`)"
        if (n == "redis+postgres") return "Redis 7 (short-lived namespaces) + PostgreSQL (`SplitStore`)"
        return n
    }
    {
    if ($2 == "skipped") { printf "| %s | skipped: %s not set | — | — |\n", label($3), $4; next }
    target = ($4 >= 1000 ? "met" : "**missed**")
    if ($3 ~ /-durable$/) target = "— (not the recommended setting)"
    printf "| %s | %s | %s/s; %s/s | %s |\n", label($3), commas($4), commas($5), commas($6), target }'

echo
echo "| broker operation | store round trips | sequence |"
echo "|---|---|---|"
# With --nocapture a test's output may follow its "test ... " line on the same line.
# Sorted by operation, so that two runs print the rows in the same order.
grep -o $'ROUND_TRIPS\t.*' "$log/round_trips.txt" | sort -t$'\t' -k2,2 | awk -F'\t' '{
    printf "| %s | %s | %s |\n", $2, $3, $4 }'
