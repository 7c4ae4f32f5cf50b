# Shared by scripts/test, scripts/demo and bench/*: install what is missing, build, and find
# free loopback ports. Source it; do not run it.

TF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian 12 packages the project needs, each for a reason:
#   build: cmake gcc make pkg-config, and the libraries the code links;
#   tests: libcunit1-dev, redis-server (real Redis), prometheus (promtool);
#   style: clang-format (the formatting check);
#   docs: nodejs + npm run a real OpenAPI 3.1 validator on docs/openapi.yaml.
TF_PACKAGES=(cmake gcc make pkg-config libc6-dev libyaml-dev libjansson-dev
    libcurl4-openssl-dev libhiredis-dev libmicrohttpd-dev libssl-dev libcunit1-dev
    redis-server prometheus clang-format curl procps)
# The fuzz harnesses (tests/fuzz, bench/fuzz): clang and its runtime libraries (libFuzzer,
# ASan, UBSan). Debian 12's clang is 14; gcc has no libFuzzer.
TF_FUZZ_PACKAGES=(clang libclang-rt-14-dev)

# node and npm run the OpenAPI validator. Checked by command, not by package: a machine may
# already have them from another source (e.g. nodesource), which Debian's npm would conflict
# with.
tf_ensure_node() {
    command -v node >/dev/null && command -v npm >/dev/null && return 0
    tf_ensure_packages nodejs npm
}

tf_log() { printf '==> %s\n' "$*" >&2; }

tf_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the packages in "$@" that dpkg does not report as installed.
tf_ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    tf_log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    tf_as_root apt-get update -qq
    tf_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# tf_build DIR [cmake args...]: configures and builds the project into DIR.
tf_build() {
    local dir=$1
    shift
    cmake -S "$TF_ROOT" -B "$dir" -DTF_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

# Prints a free TCP port on 127.0.0.1. It is picked BELOW the kernel's ephemeral range: a port
# in that range that "nothing listens on" can still be taken by an outgoing connection (or sit
# in TIME_WAIT after a benchmark) by the time a server binds it. Ports any socket uses, in any
# state, are skipped (ss, when installed), and so are ports something answers on.
tf_free_port() {
    local lo port
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
    [ "$lo" -gt 12000 ] || lo=61000 # unusual range: fall back to above the default one
    for _ in $(seq 1 200); do
        if [ "$lo" -eq 61000 ]; then
            port=$((61000 + RANDOM % 4000))
        else
            port=$((10000 + RANDOM % (lo - 10000)))
        fi
        if [ -z "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ] &&
            ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# tf_start_redis DIR: starts a private redis-server on a free loopback port with no
# persistence; sets TF_REDIS_PORT and TF_REDIS_PID.
tf_start_redis() {
    local dir=$1
    mkdir -p "$dir"
    TF_REDIS_PORT=$(tf_free_port)
    redis-server --port "$TF_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$dir" --daemonize no --protected-mode yes >"$dir/redis.log" 2>&1 &
    TF_REDIS_PID=$!
    for _ in $(seq 1 200); do
        if redis-cli -p "$TF_REDIS_PORT" ping 2>/dev/null | grep -q PONG; then return 0; fi
        if ! kill -0 "$TF_REDIS_PID" 2>/dev/null; then break; fi
        sleep 0.05
    done
    tf_log "redis-server did not start; its log:"
    cat "$dir/redis.log" >&2
    return 1
}

tf_stop_redis() {
    if [ -n "${TF_REDIS_PID:-}" ] && kill -0 "$TF_REDIS_PID" 2>/dev/null; then
        kill "$TF_REDIS_PID" 2>/dev/null || true
        wait "$TF_REDIS_PID" 2>/dev/null || true
    fi
    TF_REDIS_PID=
}

# tf_build_fuzz DIR: configures and builds the libFuzzer harnesses (tests/fuzz) with clang into
# DIR; they land in DIR/fuzz/.
tf_build_fuzz() {
    tf_build "$1" -DCMAKE_C_COMPILER=clang -DTF_FUZZ=ON -DTF_BUILD_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo
}

# The names of the fuzz harnesses, one a line (from tests/fuzz/CMakeLists.txt).
tf_fuzz_harnesses() {
    sed -n 's/^tf_add_fuzzer(\([a-z0-9_]*\).*/\1/p' "$TF_ROOT/tests/fuzz/CMakeLists.txt"
}
