#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after another, SECONDS each (default
# 600), and prints per target: executions, exec/s, coverage (libFuzzer's final
# `cov:` edges and `ft:` features), corpus size and findings. Exits 1 if any
# target found something (a crash, a timeout of a single input, an OOM, a leak);
# the reproducer is in fuzz/artifacts/TARGET/.
#
#   scripts/fuzz-long.sh [SECONDS] [TARGET...]     (default: every target)
#   FUZZ_RUNS=N scripts/fuzz-long.sh SECONDS TARGET  (also stop after N executions)
#
# Each target starts from its checked-in seeds (fuzz/corpus/TARGET, read only)
# plus what earlier runs found (fuzz/corpus-work/TARGET, not in git; new inputs
# go there). The log of each run is fuzz/corpus-work/TARGET.log. CI runs this
# with 60 seconds per target (.ci/run). Builds use --sanitizer none (the code
# under test is safe Rust; the sanitizer costs most of the speed) and
# --debug-assertions (overflow checks and debug_assert! on, so an arithmetic
# overflow on hostile input is a finding).
set -Eeuo pipefail
cd "$(dirname "$0")/../fuzz"

secs=${1:-600}
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
flags=(--sanitizer none --debug-assertions)
runs=()
[ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")

# One named target: build only it; otherwise all of them at once.
if [ ${#targets[@]} -eq 1 ]; then
    cargo +nightly fuzz build "${flags[@]}" "${targets[0]}"
else
    cargo +nightly fuzz build "${flags[@]}"
fi

printf '%-18s %12s %9s %7s %8s %6s %s\n' target execs exec/s cov ft corpus findings
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus-work/$t" "artifacts/$t"
    log="corpus-work/$t.log"
    before=$(find "artifacts/$t" -type f | wc -l)
    status=0
    # -timeout: one input running 10 s is a hang; -print_final_stats: the
    # stat:: lines read below.
    cargo +nightly fuzz run "${flags[@]}" "$t" "corpus-work/$t" "corpus/$t" -- \
        -max_total_time="$secs" "${runs[@]}" -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    after=$(find "artifacts/$t" -type f | wc -l)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    findings=$((after - before))
    if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
        failed=1
        note="$findings new in fuzz/artifacts/$t (exit $status; see $log)"
    else
        note=none
    fi
    printf '%-18s %12s %9s %7s %8s %6s %s\n' "$t" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$note"
done
exit "$failed"
