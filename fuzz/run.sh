#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each on the stable
# toolchain, one after the other, then folds inputs that add coverage into
# the committed corpus and copies crash inputs into regressions/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      (default: 60 s, every target)
#
# Environment: FUZZ_JOBS=N runs N libFuzzer workers per target (default 1);
# FUZZ_ARGS adds libFuzzer flags (e.g. "-fork=1 -ignore_crashes=1" to go on
# past a known crash). Per-target figures go to fuzz/logs/<target>.log and
# one line each to fuzz/logs/stats.tsv.
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz_dir/.."
# cargo-fuzz passes -Zsanitizer and friends; the stable compiler accepts them
# with this (see the project's TOOLING notes).
export RUSTC_BOOTSTRAP=1

seconds=${1:-60}
shift || true
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build
mkdir -p "$fuzz_dir/logs"
stats="$fuzz_dir/logs/stats.tsv"
[ -f "$stats" ] || printf 'date\ttarget\tseconds\texecs\texec_per_s\tpeak_rss_mb\tresult\n' >"$stats"

failed=()
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    grown="$fuzz_dir/corpus-new/$target"
    mkdir -p "$corpus" "$grown" "$fuzz_dir/regressions/$target"
    log="$fuzz_dir/logs/$target.log"
    echo "== $target: $seconds s"
    result=ok
    parallel=()
    if [ "${FUZZ_JOBS:-1}" != 1 ]; then
        parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
    fi
    # New inputs land in the first directory (uncommitted); the committed
    # corpus is read as seeds. The outer timeout (SIGINT, so libFuzzer still
    # prints its final stats) guards against a run that overstays.
    # shellcheck disable=SC2086
    if ! timeout --signal=INT $((seconds + 60)) cargo fuzz run "$target" "$grown" "$corpus" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        "${parallel[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1; then
        result=crash
        failed+=("$target")
    fi
    if [ ${#parallel[@]} -gt 0 ]; then
        cat fuzz-*.log >>"$log" 2>/dev/null && rm -f fuzz-*.log
    fi
    execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
    rate=$(grep -h 'stat::average_exec_per_sec' "$log" | awk '{s += $2} END {print s + 0}')
    rss=$(grep -h 'stat::peak_rss_mb' "$log" | awk '{if ($2 > m) m = $2} END {print m + 0}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$target" "$seconds" \
        "$execs" "$rate" "$rss" "$result" >>"$stats"
    echo "   $execs executions, $rate exec/s, peak RSS $rss MB, $result"

    # Re-minimize old and new inputs together by edge coverage (not
    # libFuzzer's finer features), so the committed corpus stays small.
    fresh="$fuzz_dir/corpus-new/.min-$target"
    rm -rf "$fresh" && mkdir -p "$fresh"
    if cargo fuzz run "$target" -- -set_cover_merge=1 -use_counters=0 \
        "$fresh" "$corpus" "$grown" >>"$log" 2>&1 && [ -n "$(ls -A "$fresh")" ]; then
        rm -rf "$corpus" && mv "$fresh" "$corpus"
    fi
    rm -rf "$fresh"
    # Artifacts move (not copy) so a crash is reported once.
    for artifact in "$fuzz_dir/artifacts/$target"/{crash,timeout,oom,leak}-*; do
        [ -e "$artifact" ] || continue
        mv -n "$artifact" "$fuzz_dir/regressions/$target/"
        rm -f "$artifact"
        echo "   kept $(basename "$artifact") in fuzz/regressions/$target/"
    done
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "crashes in: ${failed[*]} (inputs in fuzz/regressions/; replay: cargo test -p fec-fuzz-bodies)"
    exit 1
fi
