#!/usr/bin/env bash
# The whole test suite on 64-bit (arm64) or 32-bit (armhf: ARMv7, hard-float)
# Arm, from an amd64 Debian 12 machine: installs the cross compiler, qemu-user
# and the :arm64 or :armhf libraries when missing, cross-builds thaw (library,
# examples, tests) with cmake/<triplet>.cmake and runs every test and the seed
# examples through qemu, once per emulated CPU.
# Usage: tests/run_arm.sh [arm64|armhf]          (arm64 when not given)
#        THAW_WITH_TBB=OFF tests/run_arm.sh ...   serial runtime, no TBB
#        THAW_FAST_BUILD=ON tests/run_arm.sh ...  fewer Highway targets (arm64:
#              NEON, SVE and SVE2_128; SVE2 and SVE_256 are left out)
#        THAW_QEMU_CPUS="a b" tests/run_arm.sh    the emulated CPUs, in order
#        THAW_ARM_LATER_TESTS=cpu tests/run_arm.sh
#              after the first CPU, only the tests whose code path depends on
#              the CPU (see below); the first CPU always runs everything
# Default CPUs, which cover every compiled target:
#   arm64: max with 128-bit SVE (kernel tests on SVE2_128, SVE2, SVE and
#          NEON), max with 256-bit SVE (adds SVE_256) and cortex-a72 (NEON
#          only: everything else dispatches to NEON);
#   armhf: cortex-a15 (NEON with VFPv4: kernel tests on NEON and SCALAR).
# Plain max has 512-bit SVE (SVE2, SVE, NEON); qemu emulates wide SVE
# slowly (GEMM tests take about 3x the CPU time with 256-bit vectors as with
# 128-bit ones). cortex-a9 is an armhf NEON CPU without VFPv4 (SCALAR only).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:-arm64}
case "$arch" in
  arm64)
    triplet=aarch64-linux-gnu qemu=qemu-aarch64
    default_cpus="max,sve-default-vector-length=16 max,sve-default-vector-length=32 cortex-a72"
    ;;
  armhf) triplet=arm-linux-gnueabihf qemu=qemu-arm default_cpus="cortex-a15" ;;
  *)
    echo "usage: tests/run_arm.sh [arm64|armhf]" >&2
    exit 2
    ;;
esac
tbb=${THAW_WITH_TBB:-ON}
read -ra cpus <<< "${THAW_QEMU_CPUS:-$default_cpus}"
later=${THAW_ARM_LATER_TESTS:-all}
jobs=${THAW_JOBS:-$(nproc)}

# The :$arch libraries come from Debian's multiarch archive. Adding the
# architecture makes apt also upgrade the amd64 halves of Multi-Arch: same
# packages (liblzma5, libudev1, libssl3, ...) to the same version.
if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "thaw: run as root: dpkg --add-architecture $arch" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "thaw: adding the $arch architecture to dpkg"
  "${sudo[@]}" dpkg --add-architecture "$arch"
fi
# zlib's runtime only, not zlib1g-dev:$arch: that one depends on
# libc6-dev:$arch and a dozen packages behind it (linux-libc-dev, libssl3,
# krb5...) whose versions must match their amd64 twins, often security
# updates, while the cross compiler brings its own libc headers and zlib's
# headers are the same on every architecture (the amd64 zlib1g-dev, which
# .ci/deps installs). CMake is pointed at the library below.
packages=("g++-$triplet" qemu-user "libhwy-dev:$arch" "libgtest-dev:$arch" "zlib1g:$arch"
          dataset-fashion-mnist)
[[ "$tbb" == ON ]] && packages+=("libtbb-dev:$arch")
"$root/.ci/deps" "${packages[@]}"

build="$root/build/$arch"
[[ "$tbb" == OFF ]] && build="$build-serial"

# Tests that cannot pass under qemu-user, for a reason outside thaw. qemu 7.2
# takes madvise() as a hint: it returns 0 and does nothing (linux-user/mmap.c,
# target_madvise), so MADV_POPULATE_WRITE maps no page and PrefaultTest, which
# counts the resident pages with mincore(), sees none. (The same binary's
# madvise maps all 16 of 16 pages on the host kernel.)
exclude='^PrefaultTest\.'
# After the first CPU (THAW_ARM_LATER_TESTS=cpu): the per-target kernel tests
# of the targets this CPU offers that an earlier one did not, and the tests
# that run whole models, whose kernels dispatch to this CPU's best target.
# Kernel tests of a target already run do the same again; files, datasets,
# arenas and plans do not depend on the CPU.
model_tests='^(ModelTest|Functional[A-Za-z]*Test|ModelAgreementTest|TapeTest|Ops/GradientCheckTest|OptimizerTest|BatchNormTest|GradientClippingTest|Threads/NoAllocTest|CApiTest|InPlaceWeightsTest|[A-Za-z]*PlanTest|PlanBeforeBuildTest|CpuTest)\.'

start=$SECONDS
failed=()
seen_targets=" "
for i in "${!cpus[@]}"; do
  cpu=${cpus[$i]}
  echo
  echo "== $arch, THAW_WITH_TBB=$tbb, $qemu -cpu $cpu"
  variant_start=$SECONDS
  # Changing THAW_QEMU_CPU only relinks the tests: GoogleTest lists their
  # cases under the new CPU, so the per-target cases follow what it supports.
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$root/cmake/$triplet.cmake" -DTHAW_QEMU_CPU="$cpu" \
    -DZLIB_LIBRARY="/usr/lib/$triplet/libz.so.1" -DZLIB_INCLUDE_DIR=/usr/include \
    -DTHAW_WITH_TBB="$tbb" -DTHAW_FAST_BUILD="${THAW_FAST_BUILD:-OFF}" -DTHAW_BUILD_TESTS=ON \
    -DTHAW_BUILD_BENCH=OFF -DTHAW_BUILD_EXAMPLES=ON >/dev/null
  cmake --build "$build" --parallel "$jobs"
  targets=$(cd "$build" && ctest -N | grep -oE '/[A-Z0-9_]+  # GetParam' | cut -d' ' -f1 |
            tr -d / | awk '!seen[$0]++' | tr '\n' ' ')
  echo "kernel tests run on: $targets"
  select=()
  if [[ $i -gt 0 && "$later" == cpu ]]; then
    new=()
    for t in $targets; do [[ "$seen_targets" == *" $t "* ]] || new+=("$t"); done
    pattern=$model_tests
    if [[ ${#new[@]} -gt 0 ]]; then
      pattern="$pattern|/($(IFS='|'; echo "${new[*]}"))  # GetParam"
    fi
    echo "this CPU runs the model tests and the kernel tests on: ${new[*]:-(no new target)}"
    select=(-R "$pattern")
  fi
  for t in $targets; do seen_targets+="$t "; done
  ok=1
  (cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 1200 -E "$exclude" "${select[@]}") ||
    ok=0
  # The seed examples end to end (a second or two each under qemu).
  for example in seed_case1_freeze seed_case2_unfreeze seed_case3_finetune; do
    if ! log=$("$qemu" -cpu "$cpu" "$build/examples/$example" 2>&1); then
      printf '%s\n' "$log"
      echo "thaw: example $example failed under -cpu $cpu" >&2
      ok=0
    fi
  done
  [[ $ok == 1 ]] || failed+=("$cpu")
  echo "-cpu $cpu took $((SECONDS - variant_start)) s"
done

echo
echo "$arch suite took $((SECONDS - start)) s for: ${cpus[*]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "thaw: $arch failures under -cpu ${failed[*]}" >&2
  exit 1
fi
