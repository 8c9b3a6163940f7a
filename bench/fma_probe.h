// thaw/bench/fma_probe.h — the machine's peak FMA rate, for quoting kernels
// as a fraction of it in the same run.
#ifndef THAW_BENCH_FMA_PROBE_H_
#define THAW_BENCH_FMA_PROBE_H_

#include <cstddef>

namespace thaw {
namespace bench {

// Runs `iterations` rounds of 12 independent vector FMAs on registers, on the
// SIMD target the kernels dispatch to, and returns a value that depends on
// all of them (so nothing is optimised away). Floating-point operations per
// call: FmaProbeFlops(iterations).
float FmaProbe(size_t iterations);
double FmaProbeFlops(size_t iterations);

}  // namespace bench
}  // namespace thaw

#endif  // THAW_BENCH_FMA_PROBE_H_
