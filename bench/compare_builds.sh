#!/usr/bin/env bash
# Two builds of thaw_bench, same cases, interleaved: is a change faster or
# slower? Runs ROUNDS rounds (default 3) of "A then B", each case with 5
# repetitions, and prints per case the median time of each build and the
# median and range of the per-round ratios B/A (below 1: B is faster).
# Usage: bench/compare_builds.sh BUILD_A BUILD_B [filter]
#   e.g. bench/compare_builds.sh /tmp/old/build build/tests '^mlp_'
# Both builds should use the same CMake options (THAW_FAST_BUILD, type).
set -euo pipefail
a=$1
b=$2
filter=${3:-^mlp_}
rounds=${ROUNDS:-3}
out=$(mktemp -d)
for round in $(seq "$rounds"); do
  for side in a b; do
    dir=$a
    [[ $side == b ]] && dir=$b
    "$dir/bench/thaw_bench" --benchmark_filter="$filter" --benchmark_repetitions=5 \
      --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
      --benchmark_out="$out/${side}_$round.json" --benchmark_out_format=json >/dev/null 2>&1
  done
done
/usr/bin/python3 - "$out" "$a" "$b" <<'PY'
import glob, json, os, statistics, sys
out, a, b = sys.argv[1:4]
unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
def load(side):
    runs = []
    for path in sorted(glob.glob(os.path.join(out, side + "_*.json"))):
        run = json.load(open(path))
        runs.append({x["run_name"]: x["real_time"] * unit[x["time_unit"]]
                     for x in run["benchmarks"] if x.get("aggregate_name") == "median"})
    return runs, run["context"]
ra, ctx = load("a")
rb, _ = load("b")
print("A = %s\nB = %s\n%d CPUs, %d rounds; library build type %s" %
      (a, b, ctx["num_cpus"], len(ra), ctx.get("library_build_type", "?")))
for key in ("thaw_target", "cpu_targets", "openblas_core"):
    if key in ctx:
        print("%s: %s" % (key, ctx[key]))
print("\n| case | A | B | B/A median (range) |\n|---|--:|--:|--:|")
for name in ra[0]:
    ratios = [r2[name] / r1[name] for r1, r2 in zip(ra, rb) if name in r1 and name in r2]
    if not ratios:
        continue
    ta = statistics.median(r[name] for r in ra)
    tb = statistics.median(r[name] for r in rb)
    print("| %s | %.1f us | %.1f us | %.3f (%.3f-%.3f) |" %
          (name.replace("/real_time", ""), ta * 1e6, tb * 1e6, statistics.median(ratios),
           min(ratios), max(ratios)))
PY
