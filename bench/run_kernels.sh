#!/usr/bin/env bash
# Elementwise, reduction and optimizer kernels in GiB/s at 4096 floats per
# array (L1), 2^18 (L2/L3) and 2^22 (DRAM), against their scalar references
# and, at 2^22, against a STREAM-style bandwidth probe; medians of interleaved
# repetitions. Bytes are counted as STREAM counts them: Adam 7 floats per
# parameter, SGD-momentum 5, axpy 3, the probe 2 (a write to a line not in
# cache also reads it first, so the probe really moves ~3 floats per element
# from DRAM: at 2^22, ~1.5x its counted GiB/s is the machine's bandwidth).
# Writes the table to bench/results/kernels.md (THAW_RESULTS_DIR=... elsewhere).
# Usage: bench/run_kernels.sh [build-dir]   (default build/tests, as tests/run.sh makes)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/tests}
json=$(mktemp --suffix=.json)
"$build/bench/thaw_bench" --benchmark_filter='^(stream_scale|axpy|sum|non_finite|sgd_momentum|adam)/' \
  --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true --benchmark_min_time=0.1 \
  --benchmark_out="$json" --benchmark_out_format=json >/dev/null
results=${THAW_RESULTS_DIR:-$root/bench/results}
mkdir -p "$results"
/usr/bin/python3 - "$json" >"$results/kernels.md" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))
rate = {}
for b in runs["benchmarks"]:
    if b.get("aggregate_name") == "median":
        rate[b["run_name"].replace("/real_time", "")] = b["bytes/s"] / 2**30
ctx = runs["context"]
print("**Elementwise and optimizer kernels** (GiB/s) — %s CPUs @ %.0f MHz, thaw: %s, %s\n" % (
      ctx.get("num_cpus"), ctx.get("mhz_per_cpu", 0), ctx.get("thaw_target", "?"), ctx.get("date", "")[:10]))
print("| kernel | floats per array | threads | thaw GiB/s | scalar GiB/s | thaw / scalar | thaw / stream |")
print("|---|---|---|---|---|---|---|")
for op in ("axpy", "sum", "non_finite", "sgd_momentum", "adam"):
    for n in ("4096", "262144", "4194304"):
        for t in ("1", "2"):
            thaw = rate.get("%s/thaw/%s/%s" % (op, n, t))
            scalar = rate.get("%s/scalar/%s/1" % (op, n))
            copy = rate.get("stream_scale/plain/%s/1" % n)  # 2^22 only
            if thaw is None:
                continue
            print("| %s | %s | %s | %.1f | %s | %s | %s |" % (
                op, n, t, thaw, "%.1f" % scalar if scalar and t == "1" else "",
                "%.2f" % (thaw / scalar) if scalar and t == "1" else "",
                "%.2f" % (thaw / copy) if copy else "-"))
print("\nMedians of 5 interleaved repetitions (`bench/run_kernels.sh`). Bytes are counted as STREAM "
      "counts them (axpy 3 floats per element, sum and non_finite 1, SGD-momentum 5, Adam 7, the probe 2); the probe "
      "(2^22 only) is STREAM's scale loop y = a * x, whose writes also read each line first, so it "
      "moves ~1.5x what it is credited with.")
if "stream_scale/plain/4194304/1" in rate:
    print("\nstream scale probe (1 thread, 2^22 floats per array): %.1f GiB/s counted, ~%.1f moved."
          % (rate["stream_scale/plain/4194304/1"], 1.5 * rate["stream_scale/plain/4194304/1"]))
PY
cat "$results/kernels.md"
rm -f "$json"
