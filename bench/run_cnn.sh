#!/usr/bin/env bash
# thaw vs PyTorch on convolutional networks, batch 32 on 28x28x1 images:
#  - the reference CNN, conv 3x3 (1->16) ReLU, max pool 2, conv 3x3 (16->32)
#    ReLU, max pool 2, linear 1568->10;
#  - the demo's MobileNet-style network (examples/mobilenet_style.h);
# training steps (all trainable, or the convolutions frozen) with SGD-momentum
# and Adam, and inference at batch 1 and 32, on 1 and 2 threads; then the
# convolution kernels alone against the FMA probe, and the depthwise kernel
# against the STREAM probe, from the same runs. Writes bench/results/cnn.md
# (THAW_RESULTS_DIR=... writes it elsewhere).
# Usage: bench/run_cnn.sh [build_dir]   (default build/tests, as tests/run.sh makes)
# PyTorch comes from Debian's python3-torch (system /usr/bin/python3); it gets
# channels_last tensors, its best thread split, and malloc settings that stop
# its per-step mmap/munmap of large buffers (GLIBC_TUNABLES below).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/tests}
out=$(mktemp -d)
source "$root/bench/openblas_core.sh"
torch_malloc=glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456
# Rounds as in bench/run_mlp.sh: the machine is shared and drifts; ratios are
# taken within a round.
rounds=${ROUNDS:-3}
for round in $(seq "$rounds"); do
  "$build/bench/thaw_bench" \
    --benchmark_filter='^(cnn_|mobilenet_|conv/|depthwise/|fma_probe/|stream_scale/|cross_core/)' \
    --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
    --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/thaw_$round.json" --benchmark_out_format=json >/dev/null
  for split in "1 1" "1 2" "2 1"; do
    GLIBC_TUNABLES=$torch_malloc /usr/bin/python3 "$root/bench/pytorch_cnn.py" $split 5 \
      >"$out/torch_${round}_${split/ /_}.json"
  done
done
results=${THAW_RESULTS_DIR:-$root/bench/results}
mkdir -p "$results"
{
  /usr/bin/python3 "$root/bench/steps_report.py" "$out" "Reference CNN, batch 32" \
    "${OPENBLAS_CORETYPE:-}" "$(nproc)" bench/run_cnn.sh \
    "cnn_step:all_sgd_momentum:train, all layers, SGD-momentum" \
    "cnn_step:all_adam:train, all layers, Adam" \
    "cnn_step:head_only_sgd_momentum:train, convolutions frozen, SGD-momentum" \
    "cnn_step:head_only_adam:train, convolutions frozen, Adam" \
    "cnn_infer:batch1:inference, batch 1" \
    "cnn_infer:batch32:inference, batch 32"
  echo
  /usr/bin/python3 "$root/bench/steps_report.py" "$out" \
    "MobileNet-style network of the CNN demo, batch 32" \
    "${OPENBLAS_CORETYPE:-}" "$(nproc)" bench/run_cnn.sh \
    "mobilenet_step:all_sgd_momentum:train, all layers, SGD-momentum" \
    "mobilenet_step:all_adam:train, all layers, Adam" \
    "mobilenet_step:head_only_sgd_momentum:train, backbone frozen, SGD-momentum" \
    "mobilenet_step:head_only_adam:train, backbone frozen, Adam" \
    "mobilenet_infer:batch1:inference, batch 1" \
    "mobilenet_infer:batch32:inference, batch 32"
  echo
  /usr/bin/python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
rates = {}  # case -> per-round median rate (FLOP/s or bytes/s)
for path in sorted(glob.glob(os.path.join(sys.argv[1], "thaw_*.json"))):
    for b in json.load(open(path))["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"].replace("/real_time", "")
        rate = b.get("FLOP/s", b.get("bytes/s"))
        if rate:
            rates.setdefault(name, []).append(rate)
rate = {k: statistics.median(v) for k, v in rates.items()}
probe = next((v for k, v in rate.items() if k.startswith("fma_probe/")), None)
stream = rate.get("stream_scale/plain/4194304/1")
print("**Convolution kernels alone** (forward, batch 32, NHWC, median of rounds): GFLOP/s against "
      "the FMA probe (one core: %s GFLOP/s; two threads are compared with twice that)."
      % ("%.1f" % (probe / 1e9) if probe else "-"))
print()
print("| kernel | 1 thread | % of probe | 2 threads | % of 2 x probe |")
print("|---|--:|--:|--:|--:|")
for shape, label in (("3x3_32to32_14x14_b32", "conv 3x3, 32 -> 32, 14x14"),
                     ("3x3_16to32_14x14_b32", "conv 3x3, 16 -> 32, 14x14"),
                     ("3x3_1to16_28x28_b32", "conv 3x3, 1 -> 16, 28x28")):
    cells = [label]
    for t in (1, 2):
        r = rate.get("conv/thaw/%s/%d" % (shape, t))
        cells += ["%.1f" % (r / 1e9) if r else "-",
                  "%.0f%%" % (100 * r / (t * probe)) if r and probe else "-"]
    print("| " + " | ".join(cells) + " |")
print()
print("| kernel | 1 thread GiB/s | 2 threads GiB/s | STREAM scale, 1 thread, 2^22 floats |")
print("|---|--:|--:|--:|")
gib = lambda r: "%.1f" % (r / 2**30) if r else "-"
print("| depthwise 3x3, 32 channels, 14x14 (input + output, 1.5 MiB) | %s | %s | %s |" % (
      gib(rate.get("depthwise/thaw/3x3_32_14x14_b32/1")),
      gib(rate.get("depthwise/thaw/3x3_32_14x14_b32/2")), gib(stream)))
print()
print("Bytes for depthwise: the input read once and the output written once; its working set "
      "fits in L2/L3, so it can beat the DRAM-bound STREAM probe.")
PY
} >"$results/cnn.md"
cat "$results/cnn.md"
echo "($rounds rounds; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<auto>}; $(nproc) cores; raw results in $out)"
