#!/usr/bin/env bash
# Starts throw-away PostgreSQL and Redis servers on free loopback ports, runs a command with
# their URLs exported, and stops them (and deletes their data) when the command ends.
#
#   scripts/test-services.sh                      # runs `cargo test --all-features`
#   scripts/test-services.sh cargo test --all-features --test store_postgres
#   scripts/test-services.sh --shell              # a shell with the URLs set; exit to stop
#
# Exports CX_SSO_TEST_POSTGRES_URL and CX_SSO_TEST_REDIS_URL. Needs the PostgreSQL server
# binaries (Debian: postgresql-15; found under /usr/lib/postgresql/*/bin, or set PG_BIN) and
# redis-server (Debian: redis-server). A server that cannot be started is a failure under CI=true;
# elsewhere it is reported, and the tests that need it skip with a printed reason.
#
# PostgreSQL refuses to run as root: when run as root, its commands run as the `postgres` user
# (runuser), in a temporary directory that user owns. Redis runs as `redis` then, if that user
# exists. Nothing listens on anything but 127.0.0.1.
set -euo pipefail

in_ci() { [ "${CI:-}" = "true" ]; }
say() { echo "test-services: $*" >&2; }
fail_or_warn() {
    if in_ci; then
        say "ERROR: $*"
        exit 1
    fi
    say "warning: $* (tests that need it will skip)"
}

workdir="$(mktemp -d "${TMPDIR:-/tmp}/cx-sso-services.XXXXXX")"
chmod 755 "$workdir"
pg_data=""
pg_ctl=""
redis_pidfile=""
as_pg=()
as_redis=()
if [ "$(id -u)" = "0" ]; then
    as_pg=(runuser -u postgres --)
    if id redis >/dev/null 2>&1; then as_redis=(runuser -u redis --); fi
fi

cleanup() {
    local rc=$?
    if [ -n "$pg_ctl" ] && [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
        "${as_pg[@]}" "$pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -n "$redis_pidfile" ] && [ -f "$redis_pidfile" ]; then
        kill "$(cat "$redis_pidfile")" 2>/dev/null || true
        for _ in $(seq 50); do [ -f "$redis_pidfile" ] || break; sleep 0.1; done
    fi
    rm -rf "$workdir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port on 127.0.0.1 that nothing listens on (checked, not reserved: a start that loses the
# race fails and is retried with another port).
free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

start_postgres() {
    local bin="${PG_BIN:-}"
    if [ -z "$bin" ]; then
        bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    fi
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        fail_or_warn "PostgreSQL server binaries not found (install postgresql or set PG_BIN)"
        return 0
    fi
    local dir="$workdir/pg"
    mkdir -p "$dir"
    if [ "${#as_pg[@]}" -gt 0 ]; then chown postgres "$dir"; fi
    pg_data="$dir/data"
    if ! "${as_pg[@]}" "$bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 \
        --no-locale >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        fail_or_warn "initdb failed"
        return 0
    fi
    local port
    for _ in 1 2 3; do
        port="$(free_port)"
        if "${as_pg[@]}" "$bin/pg_ctl" -D "$pg_data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null 2>&1; then
            pg_ctl="$bin/pg_ctl"
            export CX_SSO_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
            say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
            return 0
        fi
    done
    cat "$dir/server.log" >&2 || true
    fail_or_warn "PostgreSQL did not start"
}

start_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        fail_or_warn "redis-server not found (Debian: apt-get install redis-server)"
        return 0
    fi
    local dir="$workdir/redis"
    mkdir -p "$dir"
    if [ "${#as_redis[@]}" -gt 0 ]; then chown redis "$dir"; fi
    local port
    for _ in 1 2 3; do
        port="$(free_port)"
        redis_pidfile="$dir/redis.pid"
        if "${as_redis[@]}" redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" \
            --save "" --appendonly no --daemonize yes --pidfile "$redis_pidfile" \
            --logfile "$dir/redis.log" >/dev/null 2>&1; then
            for _ in $(seq 100); do
                if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
                    export CX_SSO_TEST_REDIS_URL="redis://127.0.0.1:$port/"
                    say "Redis $(redis-server --version | awk '{print $3}') on 127.0.0.1:$port"
                    return 0
                fi
                sleep 0.1
            done
        fi
    done
    cat "$dir/redis.log" >&2 || true
    fail_or_warn "Redis did not start"
}

start_postgres
start_redis

if [ "${1:-}" = "--shell" ]; then
    say "services up; exit the shell to stop them"
    "${SHELL:-bash}" -i
elif [ "$#" -gt 0 ]; then
    "$@"
else
    cargo test --all-features
fi
