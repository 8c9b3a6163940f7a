#!/usr/bin/env bash
# Binary size of thaw's examples: the firmware profile (THAW_FIRMWARE=ON,
# with and without error strings) against the default build.
# Usage: bench/size.sh
#        THAW_ONE_TARGET=SSE4 bench/size.sh        another static target
#        THAW_SIZE_BUILD=/tmp/size bench/size.sh   where the builds go
#                                                  (default build/size-*)
#
# How it measures: each example is built (Release, examples only, no tests),
# copied through `strip` (symbols and debug info out), and the copy's file
# size is the figure; `size -A` of the copy splits it into code (.text),
# constants (.rodata), unwind tables (.eh_frame + .eh_frame_hdr) and the
# rest (ELF and dynamic-linking headers, .data...). .bss is listed apart: it
# costs RAM, not file. Shared libraries are not counted: glibc, libm,
# libstdc++ and libgcc_s are the system's. libhwy.so is listed when an
# example needs it at run time (readelf NEEDED), with the Highway symbols it
# imports and libhwy's own stripped size, the bytes a device would have to
# carry for it (Debian ships no static libhwy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${THAW_SIZE_BUILD:-$root/build/size}
target_flag=()
[[ -n "${THAW_ONE_TARGET:-}" ]] && target_flag=(-DTHAW_ONE_TARGET="$THAW_ONE_TARGET")

# The examples to measure: the seed's freeze example (tape, SGD, an arena
# report) and the C examples (examples/c/) when the C API is there.
binaries() {  # binaries <build dir>: the example executables it holds
  local dir=$1 file
  echo "$dir/examples/seed_case1_freeze"
  for file in "$dir"/examples/c/*; do
    [[ -f "$file" && -x "$file" ]] && echo "$file"
  done
  return 0
}

build() {  # build <dir> <cmake args...>
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTHAW_BUILD_TESTS=OFF \
    -DTHAW_BUILD_BENCH=OFF -DTHAW_BUILD_EXAMPLES=ON "$@" >/dev/null
  cmake --build "$dir" >/dev/null
}

section() {  # section <size -A output> <name regex>: the bytes of those sections
  awk -v re="$2" '$1 ~ re { s += $2 } END { print s + 0 }' <<< "$1"
}

report() {  # report <label> <build dir>
  local label=$1 dir=$2 binary stripped sections file text rodata unwind bss hwy
  for binary in $(binaries "$dir"); do
    stripped=$(mktemp)
    strip -o "$stripped" "$binary"
    sections=$(size -A "$stripped")
    file=$(stat -c %s "$stripped")
    text=$(section "$sections" '^\.text$')
    rodata=$(section "$sections" '^\.rodata$')
    unwind=$(section "$sections" '^\.eh_frame')
    bss=$(section "$sections" '^\.bss$')
    rm -f "$stripped"
    hwy="-"
    if readelf -d "$binary" | grep -q 'NEEDED.*libhwy'; then
      hwy="libhwy.so ($(nm -D --undefined-only "$binary" | grep -c 'hwy' || true) symbols)"
    fi
    printf '%-22s %-20s %9d %9d %8d %8d %9d %9d  %s\n' "$(basename "$binary")" "$label" \
      "$file" "$text" "$rodata" "$unwind" "$((file - text - rodata - unwind))" "$bss" "$hwy"
  done
}

echo "building into $prefix-{default,firmware,firmware-nostrings} ..." >&2
build "$prefix-default"
build "$prefix-firmware" -DTHAW_FIRMWARE=ON "${target_flag[@]}"
build "$prefix-firmware-nostrings" -DTHAW_FIRMWARE=ON -DTHAW_ERROR_STRINGS=OFF "${target_flag[@]}"
# The firmware's one target, as its compile lines name it (none: BASELINE).
target=$(grep -m1 -oE 'THAW_STATIC_TARGET=HWY_[A-Z0-9_]+' "$prefix-firmware/build.ninja" |
         sed 's/.*=HWY_//' || true)
target=${target:-BASELINE}

echo "stripped example binaries, bytes ($(uname -m); firmware target $target;"
echo "shared glibc, libm, libstdc++ and libgcc_s not counted)"
printf '%-22s %-20s %9s %9s %8s %8s %9s %9s  %s\n' binary build file .text .rodata unwind \
  other .bss "needs at run time"
report default "$prefix-default"
report firmware "$prefix-firmware"
report "firmware, no strings" "$prefix-firmware-nostrings"

# libhwy, when something above needs it: what it imports and what it weighs.
for dir in "$prefix-default" "$prefix-firmware"; do
  for binary in $(binaries "$dir"); do
    if readelf -d "$binary" | grep -q 'NEEDED.*libhwy'; then
      echo "$(basename "$dir")/$(basename "$binary") imports from libhwy:" \
        "$(nm -D --undefined-only "$binary" | awk '/hwy/ {print $2}' | c++filt | tr '\n' ' ')"
    fi
  done
done
# (awk reads to the end: an early exit would fail the pipe under pipefail.)
libhwy=$(ldconfig -p | awk '/libhwy\.so\.1 / && !found {print $NF; found = 1}')
if [[ -n "$libhwy" ]]; then
  stripped=$(mktemp)
  strip -o "$stripped" "$(readlink -f "$libhwy")"
  echo "libhwy.so.1 itself, stripped: $(stat -c %s "$stripped") bytes ($(readlink -f "$libhwy"))"
  rm -f "$stripped"
fi
