// thaw/simd/optimizer.cc — dispatch and threading for simd/optimizer.h.
// Compiled once per Highway target (foreach_target).
#include "simd/optimizer.h"

#include <cstddef>

#include "platform/status.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/optimizer.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "simd/optimizer-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

static void SgdStepImpl(const float* grad, float* weight, float* velocity,
                        size_t n, const simd::SgdParams& params) {
  SgdChunk(grad, weight, velocity, n, params);
}

static void AdamStepImpl(const float* grad, float* weight, float* m, float* v,
                         size_t n, const simd::AdamParams& params) {
  AdamChunk(grad, weight, m, v, n, params);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "simd/elementwise.h"  // kElementwiseChunk
#include "simd/offered_targets.h"
#include "simd/parallel_chunks.h"

namespace thaw {

HWY_EXPORT(SgdStepImpl);
HWY_EXPORT(AdamStepImpl);

namespace simd {

// Every element is updated independently, so chunking (the same chunks as the
// elementwise kernels) never changes the bits.

void SgdStep(const float* grad, float* weight, float* velocity, size_t n,
             const SgdParams& params, ThreadPool& pool) {
  THAW_CHECK(params.momentum == 0.0f || velocity != nullptr || n == 0);
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(SgdStepImpl)
    (grad + i, weight + i, velocity == nullptr ? nullptr : velocity + i, len,
     params);
  });
}

void AdamStep(const float* grad, float* weight, float* m, float* v, size_t n,
              const AdamParams& params, ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(AdamStepImpl)
    (grad + i, weight + i, m + i, v + i, len, params);
  });
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
