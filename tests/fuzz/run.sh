#!/usr/bin/env bash
# The libFuzzer harnesses (tests/fuzz/fuzz_*.cc): installs clang when missing,
# builds build/fuzz (clang, ASan + UBSan, THAW_FUZZ=ON; the file readers are
# what is fuzzed, on tiny models, so the kernels are compiled for Highway's
# baseline target alone) and runs every harness
# for SECONDS, starting from a scratch copy of its seeds (corpus/<harness>/,
# which is never written to). Fails when any harness finds a crash, a leak, a
# sanitizer report, a hang or a broken check; the input that did it is kept
# under build/fuzz/crashes/ and named in the output.
# Usage: tests/fuzz/run.sh [SECONDS]     (default 60 per harness)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-60}
# clang's package only recommends libclang-rt-dev, which holds libFuzzer, and
# .ci/deps installs without recommendations.
"$root/.ci/deps" clang libclang-rt-dev
build="$root/build/fuzz"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTHAW_FUZZ=ON -DTHAW_SANITIZE=ON -DTHAW_BUILD_TESTS=OFF -DTHAW_BUILD_BENCH=OFF \
  -DTHAW_BUILD_EXAMPLES=OFF -DTHAW_ONE_TARGET=BASELINE >/dev/null
cmake --build "$build"

# The harnesses rewrite their input file for every run (fuzz_util.h), which on
# a disk waits for it: measured on ext4, fuzz_idx ran 150 inputs/s with its
# files under /tmp and 1500/s under /dev/shm (tmpfs). A TMPDIR set by the
# caller wins.
if [[ -z "${TMPDIR:-}" && -d /dev/shm && -w /dev/shm ]]; then
  export TMPDIR=/dev/shm
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/thaw_fuzz_run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# The harnesses' own files (fuzz_util.h) go under $scratch too, so that a
# crashed run leaves nothing behind but the input it saved in $crashes.
mkdir "$scratch/tmp"
crashes="$build/crashes"
mkdir -p "$crashes"
failed=()
summary=()
for source in "$root"/tests/fuzz/fuzz_*.cc; do
  name=$(basename "$source" .cc)
  corpus="$scratch/$name"
  mkdir -p "$corpus"
  if [[ -d "$root/tests/fuzz/corpus/$name" ]]; then
    cp -R "$root/tests/fuzz/corpus/$name/." "$corpus/"
  fi
  log="$build/$name.log"
  echo "thaw: fuzzing $name for $seconds s (log: $log)"
  status=0
  # Inputs up to 64 KiB: larger than any seed, small enough to stay fast.
  TMPDIR="$scratch/tmp" "$build/tests/fuzz/$name" "$corpus" -max_total_time="$seconds" \
    -max_len=65536 -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$crashes/$name-" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  line="$name: ${runs:-unknown} executions"
  if [[ $status -ne 0 ]]; then
    found=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    line="$line, FAILED (exit $status): ${found:-no input saved, see the log}"
    failed+=("$name")
    grep -E -A1 'fuzz check failed|runtime error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' \
      "$log" | head -n 6 >&2 || true
  fi
  summary+=("$line")
done

echo "thaw: fuzzing done, $seconds s per harness:"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "thaw: fuzzers found problems in: ${failed[*]}" \
       "(reproduce: build/fuzz/tests/fuzz/<harness> <input>)" >&2
  exit 1
fi
