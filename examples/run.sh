#!/usr/bin/env bash
# The main demo: installs what is missing, builds thaw in Release, runs it.
# Usage: examples/run.sh            (from the project root or anywhere)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/.ci/deps"
build="$root/build/release"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTHAW_BUILD_TESTS=OFF -DTHAW_BUILD_BENCH=OFF -DTHAW_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" --target seed_case1_freeze seed_case2_unfreeze
for example in seed_case1_freeze seed_case2_unfreeze; do
  echo
  echo "== $example"
  "$build/examples/$example"
done
