#!/usr/bin/env bash
# Runs thaw's GEMM benchmarks against OpenBLAS the recommended way and prints
# medians: interleaved repetitions (the machines we measure on are shared and
# drift), 1- and 2-thread cases in separate passes, a peak-FMA probe next to
# the 1-thread cases, and the ratios.
#
# Usage: bench/run_gemm.sh [build-dir] [extra Google Benchmark flags...]
#   build-dir defaults to build/bench (configured Release if missing).
#   Extra flags go to every pass below (a --benchmark_filter replaces the
#   passes' own filters), e.g. --benchmark_repetitions=9.
#   OPENBLAS_CORETYPE=... overrides the OpenBLAS kernel choice below.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/bench}
[[ $# -gt 0 ]] && shift
if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DTHAW_BUILD_TESTS=OFF -DTHAW_BUILD_EXAMPLES=OFF >/dev/null
fi
cmake --build "$build" --target thaw_bench -j2 >/dev/null

# Debian's OpenBLAS 0.3.21 picks kernels from the CPU model and silently falls
# back to SSE3 (Prescott) kernels on models it does not know (it did so on an
# Emerald Rapids VM). Name its best kernel family for this CPU explicitly:
# AVX-512 -> SkylakeX; AVX2 + FMA -> Haswell (on the Zen 3 we measured, the
# auto-detected Zen core runs the same AVX2 kernels, within noise of Haswell).
if [[ -z "${OPENBLAS_CORETYPE:-}" ]]; then
  if grep -qw avx512f /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Haswell
  fi
fi
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<auto>}"

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

command -v python3 >/dev/null || { echo "python3 not found: see the JSON files"; exit 0; }
python3 - "${jsons[@]}" <<'EOF'
import json, re, sys
runs = [json.load(open(path)) for path in sys.argv[1:]]
ctx = runs[0]["context"]
print("host: %s CPUs @ %s MHz, load at start of each pass: %s" % (
      ctx.get("num_cpus"), ctx.get("mhz_per_cpu"),
      " | ".join(" ".join("%.2f" % x for x in r["context"].get("load_avg", [])) for r in runs)))
for key in ("thaw_target", "openblas_core", "openblas_config"):
    print("%s: %s" % (key, ctx.get(key, "-")))
rate = {}
for b in [b for data in runs for b in data["benchmarks"]]:
    if b.get("aggregate_name") != "median":
        continue
    name = re.sub(r"/real_time$", "", b["run_name"])
    rate[name] = b["FLOP/s"] / 1e9
peak = next((v for k, v in rate.items() if k.startswith("fma_probe/")), None)
if peak:
    print("FMA probe (1 thread): %.1f GFLOP/s" % peak)
shapes = []
for name in rate:
    m = re.match(r"gemm/thaw/([^/]+)/(\d)$", name)
    if m and m.group(1) not in shapes:
        shapes.append(m.group(1))
def order(shape):
    # Squares by size, then per batch the layers from the input side, each
    # as forward, input gradient, weight gradient.
    m = re.match(r"(\d+)x(\d+)x(\d+)(?:_[nt]{2})?(?:_(fwd|dx|dw))?$", shape)
    if not m:
        return (2, 0, 0, 0)
    a, b, c, kind = int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
    if kind is None:
        return (0, a, 0, 0)
    batch, layer_in = {"fwd": (a, c), "dx": (a, b), "dw": (c, b)}[kind]
    return (1, batch, -layer_in, ["fwd", "dx", "dw"].index(kind))
shapes.sort(key=order)
print()
print("%-22s %3s %9s %9s %7s %7s %8s" % ("shape (m x n x k)", "thr", "thaw", "openblas",
      "ratio", "%peak", "2t/1t"))
for shape in shapes:
    for t in ("1", "2"):
        th = rate.get("gemm/thaw/%s/%s" % (shape, t))
        ob = rate.get("gemm/openblas/%s/%s" % (shape, t))
        one = rate.get("gemm/thaw/%s/1" % shape)
        print("%-22s %3s %9.1f %9s %7s %7s %8s" % (
            shape, t, th,
            "%.1f" % ob if ob else "-",
            "%.2f" % (th / ob) if ob else "-",
            "%.0f%%" % (100 * th / (peak * int(t))) if peak else "-",
            "%.2f" % (th / one) if t == "2" and one else ""))
print("\nGFLOP/s: medians of interleaved repetitions; ratio = thaw / OpenBLAS (2-thread"
      " rows: from two passes run one after the other); %peak = thaw / (threads x"
      " 1-thread FMA probe); 2t/1t = thaw's 2-thread speedup.")
EOF
