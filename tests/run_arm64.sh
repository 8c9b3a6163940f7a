#!/usr/bin/env bash
# The whole test suite on aarch64, from an amd64 Debian 12 machine: installs the
# cross compiler, qemu-user and the :arm64 libraries when missing, cross-builds
# thaw (library, examples, tests) with cmake/aarch64-linux-gnu.cmake and runs
# every test through qemu-aarch64, once per emulated CPU.
# Usage: tests/run_arm64.sh                      TBB runtime; CPUs max and cortex-a72
#        THAW_WITH_TBB=OFF tests/run_arm64.sh    serial runtime, no TBB
#        THAW_QEMU_CPUS="max,sve-default-vector-length=16 a64fx" tests/run_arm64.sh
# The default CPUs cover both Arm SIMD families: max has SVE2 with 512-bit
# vectors (kernel tests run on SVE2, SVE and NEON), cortex-a72 is NEON only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# The :arm64 libraries come from Debian's multiarch archive. Adding the
# architecture makes apt also upgrade the amd64 halves of Multi-Arch: same
# packages (liblzma5, libudev1, libssl3, ...) to the same version.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "thaw: run as root: dpkg --add-architecture arm64" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "thaw: adding the arm64 architecture to dpkg"
  "${sudo[@]}" dpkg --add-architecture arm64
fi
"$root/.ci/deps" g++-aarch64-linux-gnu qemu-user libhwy-dev:arm64 libtbb-dev:arm64 \
  libgtest-dev:arm64 zlib1g-dev:arm64 dataset-fashion-mnist

tbb=${THAW_WITH_TBB:-ON}
read -ra cpus <<< "${THAW_QEMU_CPUS:-max cortex-a72}"
jobs=${THAW_JOBS:-$(nproc)}
build="$root/build/arm64"
[[ "$tbb" == OFF ]] && build="$build-serial"

start=$SECONDS
failed=()
for cpu in "${cpus[@]}"; do
  echo
  echo "== aarch64, THAW_WITH_TBB=$tbb, qemu-aarch64 -cpu $cpu"
  variant_start=$SECONDS
  # Changing THAW_QEMU_CPU only relinks the tests: GoogleTest lists their
  # cases under the new CPU, so the per-target cases follow what it supports.
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" -DTHAW_QEMU_CPU="$cpu" \
    -DTHAW_WITH_TBB="$tbb" -DTHAW_BUILD_TESTS=ON -DTHAW_BUILD_BENCH=OFF \
    -DTHAW_BUILD_EXAMPLES=ON >/dev/null
  cmake --build "$build" --parallel "$jobs"
  targets=$(cd "$build" && ctest -N | grep -oE '/[A-Z0-9_]+  # GetParam' | cut -d' ' -f1 |
            tr -d / | awk '!seen[$0]++' | tr '\n' ' ')
  echo "kernel tests run on: $targets"
  ok=1
  (cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 600) || ok=0
  # The seed examples end to end (well under a second each under qemu).
  for example in seed_case1_freeze seed_case2_unfreeze seed_case3_finetune; do
    if ! log=$(qemu-aarch64 -cpu "$cpu" "$build/examples/$example" 2>&1); then
      printf '%s\n' "$log"
      echo "thaw: example $example failed under -cpu $cpu" >&2
      ok=0
    fi
  done
  [[ $ok == 1 ]] || failed+=("$cpu")
  echo "-cpu $cpu took $((SECONDS - variant_start)) s"
done

echo
echo "aarch64 suite took $((SECONDS - start)) s for: ${cpus[*]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "thaw: aarch64 failures under -cpu ${failed[*]}" >&2
  exit 1
fi
