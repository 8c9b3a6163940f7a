#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds everything (library,
# examples, tests, benchmarks) and runs every test through CTest.
# Usage: tests/run.sh                 Release build, all Highway targets
#        THAW_SANITIZE=ON tests/run.sh  AddressSanitizer + UBSan build (no benchmarks)
#        THAW_SANITIZE=thread tests/run.sh
#                                       ThreadSanitizer build (build/tsan) against
#                                       a oneTBB built with TSan too
#                                       (tests/tsan/build_tbb.sh, cached); no
#                                       benchmarks; any report fails the test
#        THAW_WITH_TBB=OFF tests/run.sh serial runtime, no TBB
#        THAW_FIRMWARE=ON tests/run.sh  the firmware profile (CMake
#                                       THAW_FIRMWARE=ON): serial, without
#                                       thaw_io, no exceptions or RTTI, one
#                                       static Highway target; also checks
#                                       that nothing links TBB, zlib or libhwy
#                                       and that the libraries neither throw,
#                                       catch nor use RTTI
#        THAW_FIRMWARE=ON THAW_ERROR_STRINGS=OFF tests/run.sh
#                                       the same without error strings
#                                       (build/firmware-nostrings)
#        THAW_ONE_TARGET=AVX2 (with any of the above) compiles that Highway
#                                       target alone, with its flags, instead
#                                       of every target with run-time
#                                       dispatch (the firmware profile's
#                                       default: AVX2 on x86-64); the CPU
#                                       must run it
#        THAW_FAST_BUILD=ON (with any of the above, not the firmware
#                                       profile) compiles fewer Highway
#                                       targets (AVX3, AVX2, SCALAR on x86)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Fashion-MNIST lets the dataset test read the real files too.
"$root/.ci/deps" dataset-fashion-mnist
sanitize=${THAW_SANITIZE:-OFF}
tbb=${THAW_WITH_TBB:-ON}
io=ON
bench=ON
firmware=${THAW_FIRMWARE:-OFF}
strings=${THAW_ERROR_STRINGS:-ON}
extra=()
if [[ "$firmware" == ON ]]; then
  tbb=OFF
  io=OFF
  bench=OFF  # measured in the default build
  extra+=(-DTHAW_FIRMWARE=ON -DTHAW_ERROR_STRINGS="$strings")
elif [[ "$strings" != ON ]]; then
  echo "thaw: THAW_ERROR_STRINGS=OFF is part of the firmware profile: add THAW_FIRMWARE=ON" >&2
  exit 1
fi
name=tests
[[ "$sanitize" == ON ]] && name=asan
[[ "$sanitize" == thread ]] && name=tsan
[[ "$tbb" == OFF ]] && name="$name-serial"
[[ "$firmware" == ON ]] && name="firmware"
[[ "$strings" != ON ]] && name="$name-nostrings"
build="$root/build/$name"
type=Release
if [[ "$sanitize" == ON || "$sanitize" == thread ]]; then
  type=RelWithDebInfo
  bench=OFF  # timings under a sanitizer mean nothing (and no test runs them)
fi
if [[ "$sanitize" == thread ]]; then
  if [[ "$tbb" == ON ]]; then
    # Debian's libtbb is not instrumented: TSan would not see its
    # synchronisation and would report races that are not there. The
    # instrumented one is found through TBB_DIR, and the binaries find it at
    # run time through the build tree's RPATH (CMake adds its directory).
    tbb_install=$("$root/tests/tsan/build_tbb.sh" | tail -n 1)
    extra+=(-DTBB_DIR="$tbb_install/lib/cmake/TBB")
  fi
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=$type \
  -DTHAW_SANITIZE="$sanitize" -DTHAW_WITH_TBB="$tbb" -DTHAW_BUILD_IO="$io" \
  -DTHAW_BUILD_TESTS=ON -DTHAW_BUILD_BENCH="$bench" -DTHAW_BUILD_EXAMPLES=ON \
  -DTHAW_FAST_BUILD="${THAW_FAST_BUILD:-OFF}" -DTHAW_ONE_TARGET="${THAW_ONE_TARGET:-}" \
  "${extra[@]}" >/dev/null
cmake --build "$build"
if [[ "$firmware" == ON ]]; then
  # The runtime alone: no TBB, zlib or JSON parser in what links it, and no
  # libhwy in an example (with one static target thaw calls nothing in it;
  # the tests' Highway helpers do).
  for binary in "$build/examples/seed_case1_freeze" "$build/tests/model_test"; do
    if ldd "$binary" | grep -E 'libtbb|libz\.' || nm -C "$binary" | grep -q nlohmann; then
      echo "thaw: $binary links TBB, zlib or nlohmann-json in a firmware build" >&2
      exit 1
    fi
  done
  for binary in "$build"/examples/seed_case1_freeze "$build"/examples/c/*; do
    [[ -f "$binary" && -x "$binary" ]] || continue
    if ldd "$binary" | grep libhwy; then
      echo "thaw: $binary needs libhwy at run time in a firmware build" >&2
      exit 1
    fi
  done
  # -fno-exceptions -fno-rtti held: no throw, catch, typeinfo or dynamic_cast
  # in the libraries (std::__throw_* helpers of libstdc++ are allowed: without
  # exceptions they end the program).
  for archive in $(find "$build" -name 'libthaw*.a'); do
    if nm -u "$archive" | grep -E '__cxa_throw|__cxa_begin_catch|__gxx_personality|__dynamic_cast|_ZTI'; then
      echo "thaw: $archive throws, catches or uses RTTI in a firmware build" >&2
      exit 1
    fi
  done
fi
cd "$build"
skip=()
if [[ "$sanitize" == thread ]]; then
  # One exclusion under TSan, for time, not hiding a report: the SCALAR
  # target's kernel tests. Highway's one-lane emulation is the slowest under
  # TSan (GemmTest.EpilogueMatchesSeparateKernels/SCALAR took 259 s of its
  # 300 s limit); the threading around the kernels is the same source on every
  # target and runs under SSSE3, SSE4 and AVX2.
  skip=(-E '/SCALAR( |$)')
fi
ctest --output-on-failure -j2 --timeout 600 "${skip[@]}"
