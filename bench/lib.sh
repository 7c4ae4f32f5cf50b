# shellcheck shell=bash disable=SC2034
# Shared by bench/api, bench/freshness and bench/footprint: the machine banner, the build, a
# private stack (redis-server, fake exchange, tickflow replicas) and the cleanup of every child
# and temp dir on exit. Source it after scripts/lib.sh; do not run it.
#
# Knobs (environment):
#   BENCH_BUILD_DIR  build directory (default build, like scripts/demo)
#   BENCH_NO_BUILD=1 use the binaries already in BENCH_BUILD_DIR (when the tree is mid-edit)

BENCH_BUILD=${BENCH_BUILD_DIR:-build}
BENCH_PREMIUM_KEY=tf:premium:bithumb:binance:BTC

bench_children=()
bench_work=

bench_cleanup() {
    trap - EXIT INT TERM
    local pid i
    # Reverse start order: the API replica and the peers go before the Redis they talk to.
    for ((i = ${#bench_children[@]} - 1; i >= 0; i--)); do
        kill -TERM "${bench_children[i]}" 2>/dev/null || true
    done
    for pid in "${bench_children[@]}"; do
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        # Still there after 5 s: it ignored TERM, so it gets KILL rather than outliving us.
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    tf_stop_redis
    [ -n "$bench_work" ] && rm -rf "$bench_work"
}

# bench_init: temp dir and traps; call once, first.
bench_init() {
    bench_work=$(mktemp -d "${TMPDIR:-/tmp}/tickflow-bench.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# bench_banner SCRIPT ARGS...: the exact command line and the machine, first thing printed.
bench_banner() {
    local knobs=() v
    for v in BENCH_SECONDS BENCH_BUILD_DIR BENCH_NO_BUILD BENCH_API_THREADS BENCH_COUNT; do
        [ -n "${!v:-}" ] && knobs+=("$v=${!v}")
    done
    echo "command: ${knobs[*]:+${knobs[*]} }$*"
    echo "machine: nproc=$(nproc), cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
        head -n 1), kernel=$(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "tickflow: $(git -C "$TF_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        "(working tree, build type RelWithDebInfo, $BENCH_BUILD/)"
    bench_load start
}

# bench_load WHEN: the load average, so a reader can tell a busy machine from a slow program.
bench_load() {
    echo "load average at $1: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; $(nproc) CPUs)"
}

# bench_quote ARGS...: the arguments as one shell-quoted line, to print exact command lines.
bench_quote() {
    local out=() a
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=("$a"); else out+=("$(printf %q "$a")"); fi
    done
    echo "${out[*]}"
}

# bench_build [extra packages...]: installs what is missing and builds into BENCH_BUILD.
bench_build() {
    tf_ensure_packages "${TF_PACKAGES[@]}" "$@"
    if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then
        tf_log "BENCH_NO_BUILD=1: using the binaries in $BENCH_BUILD/"
    else
        tf_log "building ($BENCH_BUILD/)"
        tf_build "$BENCH_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    local b
    for b in tickflow tickflow-fake-exchange; do
        if [ ! -x "$BENCH_BUILD/bin/$b" ]; then
            tf_log "expected $BENCH_BUILD/bin/$b after the build, found nothing"
            return 1
        fi
    done
}

# bench_spawn NAME CMD...: runs CMD in the background, output in $bench_work/NAME.log; sets
# BENCH_PID. Every spawned process is stopped on exit.
bench_spawn() {
    local name=$1
    shift
    "$@" >"$bench_work/$name.log" 2>&1 &
    BENCH_PID=$!
    bench_children+=("$BENCH_PID")
}

# bench_run CMD...: runs CMD to completion and returns its status. It runs as a child waited
# for with `wait`, which a signal interrupts at once, so Ctrl-C or TERM does not first sit out
# a long wrk; until it ends, cleanup stops it with the others.
bench_run() {
    "$@" &
    local pid=$! rc=0
    bench_children+=("$pid")
    wait "$pid" || rc=$?
    unset 'bench_children[${#bench_children[@]}-1]'
    return "$rc"
}

# bench_alive PID NAME: fails with the tail of NAME's log when PID has exited.
bench_alive() {
    if kill -0 "$1" 2>/dev/null; then return 0; fi
    tf_log "$2 exited; the end of its log:"
    tail -n 20 "$bench_work/$2.log" >&2
    return 1
}

# bench_wait_port PORT PID NAME: waits up to 10 s for a listener on 127.0.0.1:PORT.
bench_wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        bench_alive "$2" "$3" || return 1
        sleep 0.05
    done
    tf_log "expected $3 to listen on 127.0.0.1:$1 within 10 s; nothing listens"
    return 1
}

# bench_wait_200 URL SECONDS [PID NAME]: waits until GET URL answers 200.
bench_wait_200() {
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt "$end" ]; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" = 200 ] && return 0
        if [ -n "${3:-}" ]; then bench_alive "$3" "$4" || return 1; fi
        sleep 0.1
    done
    return 1
}

# bench_wait_key KEY SECONDS: waits until the private Redis holds KEY.
bench_wait_key() {
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt "$end" ]; do
        [ "$(redis-cli -p "$TF_REDIS_PORT" EXISTS "$1" 2>/dev/null)" = 1 ] && return 0
        sleep 0.1
    done
    tf_log "expected Redis key $1 within $2 s; it never appeared"
    return 1
}

# bench_start_base: private Redis and fake exchange; sets BENCH_REDIS_URL, BENCH_EXCHANGE.
bench_start_base() {
    tf_start_redis "$bench_work/redis"
    BENCH_REDIS_URL="redis://127.0.0.1:$TF_REDIS_PORT/0"
    local port
    port=$(tf_free_port)
    bench_spawn exchange "$BENCH_BUILD/bin/tickflow-fake-exchange" --port "$port" --quiet
    bench_wait_port "$port" "$BENCH_PID" exchange
    BENCH_EXCHANGE="http://127.0.0.1:$port"
    echo "redis-server: $BENCH_REDIS_URL (private, no persistence)"
    echo "fake exchange: $BENCH_EXCHANGE"
}

# bench_start_batch YAML: one batch replica; sets BENCH_BATCH_PID. The process is exec'd by
# env so BENCH_BATCH_PID is tickflow itself (its /proc entry is what footprint samples).
bench_start_batch() {
    local cmd=(env TICKFLOW_REDIS_URL="$BENCH_REDIS_URL" TF_DEMO_EXCHANGE="$BENCH_EXCHANGE"
        TICKFLOW_REPLICA=bench-batch TICKFLOW_METRICS_LISTEN="127.0.0.1:$(tf_free_port)"
        "$BENCH_BUILD/bin/tickflow" run "$1")
    echo "batch replica: $(bench_quote "${cmd[@]}")"
    bench_spawn batch "${cmd[@]}"
    BENCH_BATCH_PID=$BENCH_PID
}

# bench_api_missing: prints why the API replica cannot run here, or nothing when it can.
bench_api_missing() {
    if [ ! -f "$TF_ROOT/pipelines/api.yaml" ]; then
        echo "pipelines/api.yaml does not exist yet"
    elif ! compgen -G "$BENCH_BUILD/lib/tickflow/plugins/*http_api*.so" >/dev/null; then
        echo "the http_api sink plugin is not in $BENCH_BUILD/lib/tickflow/plugins/ (not built yet)"
    fi
}

# bench_start_api: one API replica (pipelines/api.yaml); sets BENCH_API_URL, BENCH_API_PID.
bench_start_api() {
    local port
    port=$(tf_free_port)
    local cmd=(env TICKFLOW_REDIS_URL="$BENCH_REDIS_URL" TICKFLOW_REPLICA=bench-api
        TICKFLOW_API_RATE_LIMIT=0 TICKFLOW_API_LISTEN="127.0.0.1:$port" TICKFLOW_METRICS_LISTEN="127.0.0.1:$(tf_free_port)"
        "$BENCH_BUILD/bin/tickflow" run "$TF_ROOT/pipelines/api.yaml")
    echo "API replica: $(bench_quote "${cmd[@]}")"
    bench_spawn api "${cmd[@]}"
    BENCH_API_PID=$BENCH_PID
    BENCH_API_URL="http://127.0.0.1:$port"
}

# bench_mhd_workers PID: the number of libmicrohttpd pool threads of PID (0 when it has none;
# libmicrohttpd names them "MHD-worker").
bench_mhd_workers() {
    local n=0 t
    for t in /proc/"$1"/task/*/comm; do
        [ "$(cat "$t" 2>/dev/null)" = MHD-worker ] && n=$((n + 1))
    done
    echo "$n"
}
