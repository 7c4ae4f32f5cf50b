#!/usr/bin/env bash
# run.sh BINARY NAME SECONDS WORKDIR: the regression check of one libFuzzer harness (ctest in a
# -DTF_FUZZ=ON build, and bench/fuzz):
#   1. every input of tests/fuzz/regressions/NAME/ (each once crashed) runs once and must not
#      crash again;
#   2. the seeds of tests/fuzz/corpus/NAME/ run once, then SECONDS of fuzzing grow a working
#      corpus in WORKDIR/corpus/NAME (kept between runs, never in the repo). A crash stops the
#      run with a non-zero status; its input is left in WORKDIR/crashes/NAME/ and the output
#      says how to keep it as a regression.
set -euo pipefail
bin=$1 name=$2 seconds=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
seeds=$here/corpus/$name regressions=$here/regressions/$name
mkdir -p "$work/corpus/$name" "$work/crashes/$name"
# Leaks are findings too; a slow input is reported after 10 s.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
common=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024
    "-artifact_prefix=$work/crashes/$name/")

mapfile -t replays < <(find "$regressions" -type f ! -name '*.md' 2>/dev/null | sort)
if [ ${#replays[@]} -gt 0 ]; then
    echo "== $name: replaying ${#replays[@]} regression input(s)"
    "$bin" "${common[@]}" "${replays[@]}"
fi

dirs=("$work/corpus/$name")
[ -d "$seeds" ] && dirs+=("$seeds")
echo "== $name: seeds + ${seconds} s of fuzzing"
if ! "$bin" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 "${dirs[@]}"; then
    echo "== $name: CRASH; input in $work/crashes/$name/. Fix it, then keep the input:" >&2
    echo "   cp $work/crashes/$name/<file> $regressions/" >&2
    exit 1
fi
