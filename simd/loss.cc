// thaw/simd/loss.cc — dispatch for simd/loss.h. Compiled once per Highway
// target (foreach_target).
#include "simd/loss.h"

#include <cstddef>
#include <cstdint>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/loss.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "simd/loss-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

static double SoftmaxCrossEntropyImpl(const float* z, const int32_t* labels,
                                      size_t rows, size_t cols, float* probs,
                                      float* dz, float grad_scale) {
  return SoftmaxCrossEntropyRows(z, labels, rows, cols, probs, dz, grad_scale);
}
static double BinaryCrossEntropyWithLogitsImpl(const float* z, const float* t,
                                               size_t n, float* dz,
                                               float grad_scale) {
  return BinaryCrossEntropyWithLogitsChunk(z, t, n, dz, grad_scale);
}
static double SquaredErrorImpl(const float* y, const float* t, size_t n,
                               float* dy, float grad_scale) {
  return SquaredErrorChunk(y, t, n, dy, grad_scale);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "simd/offered_targets.h"

namespace thaw {

HWY_EXPORT(SoftmaxCrossEntropyImpl);
HWY_EXPORT(BinaryCrossEntropyWithLogitsImpl);
HWY_EXPORT(SquaredErrorImpl);

namespace simd {

double SoftmaxCrossEntropy(const float* z, const int32_t* labels, size_t rows,
                           size_t cols, float* probs, float* dz,
                           float grad_scale) {
  if (rows == 0 || cols == 0) return 0.0;
  return HWY_DYNAMIC_DISPATCH(SoftmaxCrossEntropyImpl)(z, labels, rows, cols,
                                                       probs, dz, grad_scale);
}

double BinaryCrossEntropyWithLogits(const float* z, const float* t, size_t n,
                                    float* dz, float grad_scale) {
  if (n == 0) return 0.0;
  return HWY_DYNAMIC_DISPATCH(BinaryCrossEntropyWithLogitsImpl)(z, t, n, dz,
                                                                grad_scale);
}

double SquaredError(const float* y, const float* t, size_t n, float* dy,
                    float grad_scale) {
  if (n == 0) return 0.0;
  return HWY_DYNAMIC_DISPATCH(SquaredErrorImpl)(y, t, n, dy, grad_scale);
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
