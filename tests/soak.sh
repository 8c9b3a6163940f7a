#!/usr/bin/env bash
# The soak run (not in CI): builds thaw_soak in the test build (build/tests,
# as tests/run.sh configures it) and runs it for MINUTES (default 5) in a
# scratch directory: training with freeze and thaw every 7 steps, checkpoint
# and training-state saves every 25, failing saves, hostile loads every 30
# (which must change nothing), the state loaded back every 100. It prints the
# arena's high-water mark and the resident memory ten times, and fails when
# either grew after the first fifth of the run.
# Usage: tests/soak.sh [MINUTES]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-5}
"$root/.ci/deps"
build="$root/build/tests"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTHAW_BUILD_TESTS=ON >/dev/null
cmake --build "$build" --target thaw_soak
scratch=$(mktemp -d "${TMPDIR:-/tmp}/thaw_soak.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
"$build/tests/thaw_soak" "$(awk "BEGIN { print $minutes * 60 }")" "$scratch"
