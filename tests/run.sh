#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds everything (library,
# examples, tests, benchmarks) and runs every test through CTest.
# Usage: tests/run.sh                 Release build, all Highway targets
#        THAW_SANITIZE=ON tests/run.sh  AddressSanitizer + UBSan build
#        THAW_WITH_TBB=OFF tests/run.sh serial runtime, no TBB
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Fashion-MNIST lets the dataset test read the real files too.
"$root/.ci/deps" dataset-fashion-mnist
sanitize=${THAW_SANITIZE:-OFF}
tbb=${THAW_WITH_TBB:-ON}
name=tests
[[ "$sanitize" == ON ]] && name=asan
[[ "$tbb" == OFF ]] && name="$name-serial"
build="$root/build/$name"
type=Release
[[ "$sanitize" == ON ]] && type=RelWithDebInfo
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=$type \
  -DTHAW_SANITIZE="$sanitize" -DTHAW_WITH_TBB="$tbb" \
  -DTHAW_BUILD_TESTS=ON -DTHAW_BUILD_BENCH=ON -DTHAW_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build"
cd "$build"
ctest --output-on-failure -j2 --timeout 600
