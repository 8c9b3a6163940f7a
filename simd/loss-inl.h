// thaw/simd/loss-inl.h — per-target loss loops behind simd/loss.h.
// Included once per Highway target (toggling guard).
//
// Per-element (or per-row) losses are computed a vector at a time and added
// to a double accumulator in index order, so the order of the sum does not
// depend on the vector width.

#if defined(THAW_SIMD_LOSS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_LOSS_INL_H_
#undef THAW_SIMD_LOSS_INL_H_
#else
#define THAW_SIMD_LOSS_INL_H_
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "simd/activation-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace detail {

// Adds the first `count` lanes of v to *acc in lane order.
template <class D>
HWY_INLINE void AccumulateLanes(D d, hn::Vec<D> v, size_t count, double* acc) {
  HWY_ALIGN float lanes[HWY_LANES(float)];
  hn::Store(v, d, lanes);
  for (size_t l = 0; l < count; ++l) *acc += lanes[l];
}

// Calls body(v_first, v_second, count, offset) for every vector of two
// arrays of n floats; the tail goes through zero-filled stack vectors.
template <class D, class Body>
HWY_INLINE void ForEachVector2(D d, const float* a, const float* b, size_t n,
                               const Body& body) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) body(hn::LoadU(d, a + i), hn::LoadU(d, b + i), N, i);
  if (i < n) {
    body(LoadTail(d, a + i, n - i, 0.0f), LoadTail(d, b + i, n - i, 0.0f), n - i, i);
  }
}

template <class D>
HWY_INLINE void StoreCount(D d, hn::Vec<D> v, size_t count, float* p) {
  if (count == hn::Lanes(d)) {
    hn::StoreU(v, d, p);
  } else {
    StoreTail(d, v, count, p);
  }
}

}  // namespace detail

HWY_INLINE double SoftmaxCrossEntropyRows(const float* z, const int32_t* labels,
                                          size_t rows, size_t cols, float* probs,
                                          float* dz, float grad_scale) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  double total = 0.0;
  for (size_t r = 0; r < rows; ++r) {
    const float* zr = z + r * cols;
    const int32_t label = labels[r];
    float max, sum;
    RowMaxAndExpSum(zr, cols, nullptr, &max, &sum);
    // log-sum-exp - z[label], with the large terms cancelled first.
    total += (static_cast<double>(max) - zr[label]) + std::log(static_cast<double>(sum));
    if (probs == nullptr && dz == nullptr) continue;
    const auto vmax = hn::Set(d, max);
    const auto inv_sum = hn::Set(d, 1.0f / sum);
    const auto scale = hn::Set(d, grad_scale);
    for (size_t i = 0; i < cols; i += N) {
      const size_t count = cols - i < N ? cols - i : N;
      const auto vz = count == N ? hn::LoadU(d, zr + i) : LoadTail(d, zr + i, count, 0.0f);
      const auto p = hn::Mul(hn::Exp(d, hn::Sub(vz, vmax)), inv_sum);
      if (probs != nullptr) detail::StoreCount(d, p, count, probs + r * cols + i);
      if (dz != nullptr) detail::StoreCount(d, hn::Mul(p, scale), count, dz + r * cols + i);
    }
    if (dz != nullptr) dz[r * cols + label] -= grad_scale;
  }
  return total;
}

HWY_INLINE double BinaryCrossEntropyWithLogitsChunk(const float* z, const float* t,
                                                    size_t n, float* dz,
                                                    float grad_scale) {
  const hn::ScalableTag<float> d;
  double total = 0.0;
  const auto scale = hn::Set(d, grad_scale);
  detail::ForEachVector2(d, z, t, n, [&](auto vz, auto vt, size_t count, size_t i) HWY_ATTR {
    // max(z, 0) - z t + log(1 + exp(-|z|)): never overflows.
    const auto loss = hn::Add(hn::Sub(hn::Max(vz, hn::Zero(d)), hn::Mul(vz, vt)),
                              hn::Log1p(d, hn::Exp(d, hn::Neg(hn::Abs(vz)))));
    detail::AccumulateLanes(d, loss, count, &total);
    if (dz != nullptr) {
      detail::StoreCount(d, hn::Mul(hn::Sub(Sigmoid(d, vz), vt), scale), count, dz + i);
    }
  });
  return total;
}

HWY_INLINE double SquaredErrorChunk(const float* y, const float* t, size_t n,
                                    float* dy, float grad_scale) {
  const hn::ScalableTag<float> d;
  double total = 0.0;
  const auto scale = hn::Set(d, 2.0f * grad_scale);
  detail::ForEachVector2(d, y, t, n, [&](auto vy, auto vt, size_t count, size_t i) HWY_ATTR {
    const auto diff = hn::Sub(vy, vt);
    detail::AccumulateLanes(d, hn::Mul(diff, diff), count, &total);
    if (dy != nullptr) detail::StoreCount(d, hn::Mul(diff, scale), count, dy + i);
  });
  return total;
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_LOSS_INL_H_ (toggle)
