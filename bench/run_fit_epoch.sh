#!/usr/bin/env bash
# thaw vs PyTorch on head-only fine-tuning epochs (500 examples, shuffled
# batches of 32, Adam): thaw with Fit's frozen-prefix feature cache and
# without it, against PyTorch's training loop with the backbone frozen
# (requires_grad=False), for the MLP 784-256-128-10 and the demo's
# MobileNet-style network, on 1 and 2 threads. The time is that of an epoch
# after the first (bench/fit_epoch_bench.cc). Writes bench/results/
# fit_epoch.md (THAW_RESULTS_DIR=... writes it elsewhere).
# Usage: bench/run_fit_epoch.sh [build_dir]   (default build/tests, as tests/run.sh makes)
# PyTorch comes from Debian's python3-torch (system /usr/bin/python3), with
# the thread splits of bench/run_mlp.sh and the malloc settings of
# bench/run_cnn.sh.
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
  "$build/bench/thaw_bench" --benchmark_filter='^fit_epoch/' --benchmark_repetitions=5 \
    --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/thaw_$round.json" --benchmark_out_format=json >/dev/null
  for split in "1 1" "1 2" "2 1"; do
    GLIBC_TUNABLES=$torch_malloc /usr/bin/python3 "$root/bench/pytorch_fit_epoch.py" $split 5 \
      >"$out/torch_${round}_${split/ /_}.json"
  done
done
results=${THAW_RESULTS_DIR:-$root/bench/results}
mkdir -p "$results"
{
  /usr/bin/python3 "$root/bench/steps_report.py" "$out" \
    "Head-only fine-tuning, one epoch after the first (500 examples, batch 32, Adam)" \
    "${OPENBLAS_CORETYPE:-}" "$(nproc)" bench/run_fit_epoch.sh \
    "fit_epoch:mlp_head_only_cached:MLP 784-256-128-10, thaw with the feature cache" \
    "fit_epoch:mlp_head_only_uncached:MLP 784-256-128-10, thaw without it" \
    "fit_epoch:mobilenet_head_only_cached:MobileNet-style, thaw with the feature cache" \
    "fit_epoch:mobilenet_head_only_uncached:MobileNet-style, thaw without it"
  echo
  echo "Rows are per epoch (thaw: EpochResult::seconds of the second epoch of a Fit; PyTorch: a"
  echo "permutation and 16 steps of gather, zero_grad, forward, backward, step). PyTorch has no"
  echo "cache: its time is the same in both rows of a network."
} >"$results/fit_epoch.md"
cat "$results/fit_epoch.md"
echo "($rounds rounds; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<auto>}; $(nproc) cores; raw results in $out)"
