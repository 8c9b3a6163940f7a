// thaw/bench/fma_probe.cc — peak FMA probe, compiled once per Highway target
// (foreach_target) so it runs on the same target as the kernels.
#include "bench/fma_probe.h"

#include <cstddef>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench/fma_probe.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 12 independent accumulators: enough to cover FMA latency x ports (4 x 2 on
// current x86 and Arm cores), few enough for 16-register targets. Each
// accumulator is a dependent chain acc = acc * x + y, which the compiler
// must keep (no fast-math); the sum at the end uses every chain.
static float FmaProbeImpl(size_t iterations) {
  const hn::ScalableTag<float> d;
  const auto x = hn::Set(d, 0.999999f);
  const auto y = hn::Set(d, 1e-6f);
  // Distinct starting values, or the compiler merges identical chains.
  auto a0 = hn::Set(d, 1.00f), a1 = hn::Set(d, 1.01f), a2 = hn::Set(d, 1.02f);
  auto a3 = hn::Set(d, 1.03f), a4 = hn::Set(d, 1.04f), a5 = hn::Set(d, 1.05f);
  auto a6 = hn::Set(d, 1.06f), a7 = hn::Set(d, 1.07f), a8 = hn::Set(d, 1.08f);
  auto a9 = hn::Set(d, 1.09f), a10 = hn::Set(d, 1.10f), a11 = hn::Set(d, 1.11f);
  for (size_t i = 0; i < iterations; ++i) {
    a0 = hn::MulAdd(a0, x, y);
    a1 = hn::MulAdd(a1, x, y);
    a2 = hn::MulAdd(a2, x, y);
    a3 = hn::MulAdd(a3, x, y);
    a4 = hn::MulAdd(a4, x, y);
    a5 = hn::MulAdd(a5, x, y);
    a6 = hn::MulAdd(a6, x, y);
    a7 = hn::MulAdd(a7, x, y);
    a8 = hn::MulAdd(a8, x, y);
    a9 = hn::MulAdd(a9, x, y);
    a10 = hn::MulAdd(a10, x, y);
    a11 = hn::MulAdd(a11, x, y);
  }
  auto s = hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)),
                   hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)));
  s = hn::Add(s, hn::Add(hn::Add(a8, a9), hn::Add(a10, a11)));
  return hn::GetLane(hn::SumOfLanes(d, s));
}

static size_t LanesImpl() { return hn::Lanes(hn::ScalableTag<float>()); }

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thaw {

HWY_EXPORT(FmaProbeImpl);
HWY_EXPORT(LanesImpl);

namespace bench {

float FmaProbe(size_t iterations) {
  return HWY_DYNAMIC_DISPATCH(FmaProbeImpl)(iterations);
}

double FmaProbeFlops(size_t iterations) {
  // 12 FMAs of Lanes() floats, 2 operations each.
  return 2.0 * 12.0 * static_cast<double>(HWY_DYNAMIC_DISPATCH(LanesImpl)()) *
         static_cast<double>(iterations);
}

}  // namespace bench
}  // namespace thaw
#endif  // HWY_ONCE
