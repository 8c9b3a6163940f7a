#!/usr/bin/env bash
# Cold start: the time from launching a process to the end of its first
# training step (MLP 784-256-128-10, Adam, batch 32) and of its first
# prediction (batch 32 and 1), for thaw (without and with the arena
# pre-faulted), PyTorch (Debian's python3-torch: interpreter start, import
# torch, the model, the first step) and LibTorch (Debian's libtorch-dev, a C++
# program); also where thaw's own start time goes. Writes the report to
# bench/results/cold_start.md (THAW_RESULTS_DIR=... writes it elsewhere).
# Usage: bench/run_cold_start.sh [build_dir]   (default build/cold-start)
#   LAUNCHES=15   fresh processes per configuration (interleaved)
#
# It builds what it runs: a Release build of thaw_cold_start (bench/cold_start.cc,
# no tests or examples), the same in the firmware profile
# (bench/cold_start_firmware), bench/libtorch_cold_start.cc against LibTorch
# (installed here through .ci/deps; thaw's build and tests never need it),
# and bench/cold_start_floor.cc linked to nothing, libhwy, libtbb and both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/cold-start}
launches=${LAUNCHES:-15}
"$root/.ci/deps"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTHAW_BUILD_TESTS=OFF \
  -DTHAW_BUILD_EXAMPLES=OFF -DTHAW_BUILD_BENCH=ON >/dev/null
# Builds run niced (a shared machine); the measurements do not.
nice -n 19 cmake --build "$build" --target thaw_cold_start
# The same program in the firmware profile: one static Highway target, so no
# libhwy.so (and its constructor) and no TBB.
cmake -S "$root/bench/cold_start_firmware" -B "$build/firmware" -G Ninja >/dev/null
nice -n 19 cmake --build "$build/firmware" --target thaw_cold_start

cxx=(nice -n 19 g++)
command -v ccache >/dev/null && cxx=(nice -n 19 ccache g++)
libtorch=
if "$root/.ci/deps" libtorch-dev && [[ -f /usr/include/torch/csrc/api/include/torch/torch.h ]]; then
  libtorch=$build/bench/libtorch_cold_start
  # torch/torch.h takes minutes to compile: only when the source changed.
  if [[ ! -x $libtorch || $root/bench/libtorch_cold_start.cc -nt $libtorch ]]; then
    echo "building $libtorch"
    "${cxx[@]}" -O2 -std=c++17 "$root/bench/libtorch_cold_start.cc" \
      -I/usr/include/torch/csrc/api/include -ltorch -ltorch_cpu -lc10 -o "$libtorch"
  fi
else
  echo "note: libtorch-dev could not be installed; LibTorch is not measured" >&2
fi
floors=$build/bench/floors
mkdir -p "$floors"
for libs in "" hwy tbb "hwy tbb"; do
  name=empty_main${libs:+_${libs// /_}}
  flags=()
  for lib in $libs; do flags+=("-l$lib"); done
  "${cxx[@]}" -O2 "$root/bench/cold_start_floor.cc" -Wl,--no-as-needed "${flags[@]}" \
    -o "$floors/$name"
done

# PyTorch's matrix products run in OpenBLAS: give it its best kernels, as
# the other bench scripts do.
source "$root/bench/openblas_core.sh" >/dev/null
# (Several architectures may be installed: ask for the native one.)
version() {
  dpkg-query -W -f='${Version}' "$1:$(dpkg --print-architecture)" 2>/dev/null || echo "?"
}
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
mhz=$(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//; s/\..*//')
thp=$(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null ||
  echo "?")
machine="$(nproc) CPUs ($cpu) @ $mhz MHz, Linux $(uname -r), $(getconf PAGESIZE)-byte pages"
machine+=" (transparent huge pages: $thp), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto};"
machine+=" Debian packages python3-torch $(version python3-torch), libtorch-dev"
machine+=" $(version libtorch-dev), libhwy1 $(version libhwy1), libtbb12 $(version libtbb12),"
machine+=" $(/usr/bin/python3 --version); $(date +%F)"

results=${THAW_RESULTS_DIR:-$root/bench/results}
mkdir -p "$results"
/usr/bin/python3 "$root/bench/cold_start_report.py" "$build" "$build/firmware/thaw_cold_start" \
  "$libtorch" "$floors" "$launches" "$machine" >"$results/cold_start.md"
cat "$results/cold_start.md"
