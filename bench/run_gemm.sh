#!/usr/bin/env bash
# Runs thaw's GEMM benchmarks against OpenBLAS the recommended way and reports
# medians: interleaved repetitions (the machines we measure on are shared and
# drift), 1- and 2-thread cases in separate passes, a peak-FMA probe next to
# the 1-thread cases, and the ratios. bench/report.py prints the Markdown
# table and writes it and a plot to bench/results/gemm.md and gemm.png.
#
# Usage: bench/run_gemm.sh [build-dir] [extra Google Benchmark flags...]
#   build-dir defaults to build/bench (configured Release if missing).
#   Extra flags go to every pass below (a --benchmark_filter replaces the
#   passes' own filters), e.g. --benchmark_repetitions=9.
#   THAW_OPENBLAS_CORETYPE=... overrides the OpenBLAS kernel choice
#   (bench/openblas_core.sh).
#   THAW_RESULTS_DIR=... writes gemm.md and gemm.png there instead (a quick
#   or filtered run would otherwise replace the committed results).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/bench}
[[ $# -gt 0 ]] && shift
results=${THAW_RESULTS_DIR:-$root/bench/results}
if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DTHAW_BUILD_TESTS=OFF -DTHAW_BUILD_EXAMPLES=OFF >/dev/null
fi
cmake --build "$build" --target thaw_bench -j2 >/dev/null

source "$root/bench/openblas_core.sh"

# The plot needs matplotlib for the system Python; install it now, before
# measuring. Without it bench/report.py prints the table and says why no plot.
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  "$root/.ci/deps" python3-matplotlib || echo "no python3-matplotlib: no plot"
fi

# Three passes, each with interleaved repetitions: all 1-thread cases (and
# the FMA probe); thaw's 2-thread cases; OpenBLAS's 2-thread cases. After
# each multi-threaded call OpenBLAS's worker threads keep spinning for a
# while (~0.1 s) and TBB's briefly too, so in one mixed pass whatever runs
# next has a busy second core: the 1-thread cases lost ~5%, and thaw's
# 2-thread cases after OpenBLAS's lost 10-15% (512^3: 141 GFLOP/s mixed,
# 171 alone). Each pass writes its own JSON file.
args=(--benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
      --benchmark_report_aggregates_only=true --benchmark_min_time=0.2)
jsons=()
pass=0
for filter in '^(gemm/[^/]+/[^/]+/1/|fma_probe/)' '^gemm/thaw/[^/]+/2/' \
              '^gemm/openblas/[^/]+/2/'; do
  pass=$((pass + 1))
  json="$build/gemm_bench_pass$pass.json"
  "$build/bench/thaw_bench" --benchmark_filter="$filter" "${args[@]}" \
    --benchmark_out="$json" --benchmark_out_format=json "$@" >/dev/null
  jsons+=("$json")
done
echo "results: ${jsons[*]}"

[[ -x /usr/bin/python3 ]] || { echo "/usr/bin/python3 not found: see the JSON files"; exit 0; }
/usr/bin/python3 "$root/bench/report.py" --markdown "$results/gemm.md" \
  --plot "$results/gemm.png" "${jsons[@]}"
echo "wrote $results/gemm.md and $results/gemm.png"
