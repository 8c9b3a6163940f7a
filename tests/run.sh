#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds everything (library,
# examples, tests, benchmarks) and runs every test through CTest.
# Usage: tests/run.sh                 Release build, all Highway targets
#        THAW_SANITIZE=ON tests/run.sh  AddressSanitizer + UBSan build
#        THAW_WITH_TBB=OFF tests/run.sh serial runtime, no TBB
#        THAW_FIRMWARE=ON tests/run.sh  serial and without thaw_io (no zlib,
#                                       no nlohmann-json): what firmware links;
#                                       also checks that nothing links them
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Fashion-MNIST lets the dataset test read the real files too.
"$root/.ci/deps" dataset-fashion-mnist
sanitize=${THAW_SANITIZE:-OFF}
tbb=${THAW_WITH_TBB:-ON}
io=ON
bench=ON
firmware=${THAW_FIRMWARE:-OFF}
if [[ "$firmware" == ON ]]; then
  tbb=OFF
  io=OFF
  bench=OFF  # measured in the default build
fi
name=tests
[[ "$sanitize" == ON ]] && name=asan
[[ "$tbb" == OFF ]] && name="$name-serial"
[[ "$firmware" == ON ]] && name="firmware"
build="$root/build/$name"
type=Release
[[ "$sanitize" == ON ]] && type=RelWithDebInfo
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=$type \
  -DTHAW_SANITIZE="$sanitize" -DTHAW_WITH_TBB="$tbb" -DTHAW_BUILD_IO="$io" \
  -DTHAW_BUILD_TESTS=ON -DTHAW_BUILD_BENCH="$bench" -DTHAW_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build"
if [[ "$firmware" == ON ]]; then
  # The runtime alone: no TBB, zlib or JSON parser in what links it.
  for binary in "$build/examples/seed_case1_freeze" "$build/tests/model_test"; do
    if ldd "$binary" | grep -E 'libtbb|libz\.' || nm -C "$binary" | grep -q nlohmann; then
      echo "thaw: $binary links TBB, zlib or nlohmann-json in a firmware build" >&2
      exit 1
    fi
  done
fi
cd "$build"
ctest --output-on-failure -j2 --timeout 600
