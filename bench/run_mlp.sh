#!/usr/bin/env bash
# thaw vs PyTorch on the MLP 784-256-128-10 (batch 64): training steps for
# three freeze sets with SGD-momentum and Adam, and inference at batch 1 and 64,
# on 1 and 2 threads; prints a Markdown table of medians and ratios.
# Usage: bench/run_mlp.sh [build_dir]   (default build/tests, as tests/run.sh makes)
# PyTorch comes from Debian's python3-torch (system /usr/bin/python3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/tests}
out=$(mktemp -d)
# Debian's OpenBLAS 0.3.21 does not recognise every CPU and may fall back to
# SSE3 kernels; give it its best kernel for an AVX2 (Haswell-class) machine
# unless the caller chose one.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
"$build/bench/thaw_bench" --benchmark_filter='^mlp_' --benchmark_repetitions=7 \
  --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/thaw.json" --benchmark_out_format=json >/dev/null
# PyTorch: every split of each thread budget between its own (OpenMP) threads
# and OpenBLAS's; the fastest per case counts.
for split in "1 1" "2 2" "1 2" "2 1"; do
  /usr/bin/python3 "$root/bench/pytorch_mlp.py" $split 7 >"$out/torch_${split/ /_}.json"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
thaw = {}
for b in json.load(open(os.path.join(out, "thaw.json")))["benchmarks"]:
    if b.get("aggregate_name") == "median":
        thaw[b["run_name"].replace("/real_time", "")] = b["real_time"] * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
import glob
torch = {}
for path in glob.glob(os.path.join(out, "torch_*.json")):
    for k, v in json.load(open(path)).items():
        if not k.startswith("_"):
            torch[k] = min(v, torch.get(k, v))
print("| case | threads | thaw | PyTorch | PyTorch / thaw |")
print("|---|---|---|---|---|")
for name in sorted(thaw):
    op, _, case, threads = name.split("/")
    peer = torch.get("%s/pytorch/%s/%s" % (op, case, threads))
    if peer is None:
        continue
    print("| %s %s | %s | %.3f ms | %.3f ms | %.2fx |" % (op, case, threads, 1e3 * thaw[name], 1e3 * peer, peer / thaw[name]))
PY
echo "(medians of 7; OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE; $(nproc) cores; raw results in $out)"
