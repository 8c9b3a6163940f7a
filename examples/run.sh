#!/usr/bin/env bash
# The demos: installs what is missing (including Fashion-MNIST), builds thaw in
# Release, runs the seed examples, the C example and the Fashion-MNIST transfer
# demos (MLP, CNN).
# Usage: examples/run.sh            (from the project root or anywhere)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/.ci/deps" dataset-fashion-mnist
build="$root/build/release"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTHAW_BUILD_TESTS=OFF -DTHAW_BUILD_BENCH=OFF -DTHAW_BUILD_EXAMPLES=ON >/dev/null
demos=(seed_case1_freeze seed_case2_unfreeze seed_case3_finetune c/c_finetune
       fashion_mnist_transfer fashion_mnist_cnn_transfer)
cmake --build "$build" --target "${demos[@]#c/}"
# The seed examples and the C example first (a second each), then the two
# transfer demos.
for example in "${demos[@]}"; do
  echo
  echo "== $example"
  "$build/examples/$example"
done
