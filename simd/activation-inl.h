// thaw/simd/activation-inl.h — per-target activation loops behind
// simd/activation.h. Included once per Highway target (toggling guard).

#if defined(THAW_SIMD_ACTIVATION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_ACTIVATION_INL_H_
#undef THAW_SIMD_ACTIVATION_INL_H_
#else
#define THAW_SIMD_ACTIVATION_INL_H_
#endif

#include <algorithm>
#include <cstddef>
#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "simd/elementwise-inl.h"
#include "simd/ieee-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// sigmoid(z) through e = exp(-|z|), whose argument is never positive (Exp is
// valid on [-FLT_MAX, 104] only): 1 / (1 + e) for z >= 0, e / (1 + e) below.
// NaN stays NaN (Exp of NaN is not NaN on every target).
template <class D, class V>
HWY_INLINE V Sigmoid(D d, V z) {
  const V e = hn::Exp(d, hn::Neg(hn::Abs(z)));
  const V s = IeeeDiv(d, hn::Set(d, 1.0f), hn::Add(hn::Set(d, 1.0f), e));
  return hn::IfThenElse(hn::IsNaN(z), z, hn::IfThenElse(hn::Ge(z, hn::Zero(d)), s, hn::Mul(e, s)));
}

HWY_INLINE void SigmoidForwardChunk(const float* z, float* y, size_t n) {
  MapVectors([](auto d, auto vz) HWY_ATTR { return Sigmoid(d, vz); }, n, y, z);
}

HWY_INLINE void SigmoidBackwardChunk(const float* y, const float* dy, float* dz,
                                     size_t n) {
  MapVectors(
      [](auto d, auto vy, auto vdy) HWY_ATTR {
        return hn::Mul(vdy, hn::Mul(vy, hn::Sub(hn::Set(d, 1.0f), vy)));
      },
      n, dz, y, dy);
}

HWY_INLINE void TanhForwardChunk(const float* z, float* y, size_t n) {
  MapVectors(
      [](auto d, auto vz) HWY_ATTR { return hn::IfThenElse(hn::IsNaN(vz), vz, hn::Tanh(d, vz)); },
      n, y, z);
}

HWY_INLINE void TanhBackwardChunk(const float* y, const float* dy, float* dz,
                                  size_t n) {
  MapVectors(
      [](auto d, auto vy, auto vdy) HWY_ATTR {
        return hn::Mul(vdy, hn::Sub(hn::Set(d, 1.0f), hn::Mul(vy, vy)));
      },
      n, dz, y, dy);
}

// The last `count` (< Lanes) floats of a row as a vector; the other lanes
// hold `fill`. Through a stack buffer: 1.0.3 has no LoadN, and MaskedLoad may
// fault on SSE4/AVX2.
template <class D>
HWY_INLINE hn::Vec<D> LoadTail(D d, const float* p, size_t count, float fill) {
  HWY_ALIGN float bounce[HWY_LANES(float)];
  hn::Store(hn::Set(d, fill), d, bounce);
  hn::SafeCopyN(count, d, p, bounce);
  return hn::Load(d, bounce);
}

template <class D>
HWY_INLINE void StoreTail(D d, hn::Vec<D> v, size_t count, float* p) {
  HWY_ALIGN float bounce[HWY_LANES(float)];
  hn::Store(v, d, bounce);
  hn::SafeCopyN(count, d, bounce, p);
}

// The max of one row of `cols` floats and the sum of exp(z - max). When e is
// not null it receives exp(z - max) (e may be z). A row holding NaN gives NaN
// for both and for all of e, as PyTorch's softmax does (Max and Exp alone
// would drop the NaN and give its logit probability 0).
HWY_INLINE void RowMaxAndExpSum(const float* z, size_t cols, float* e,
                                float* max_out, float* sum_out) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t whole = cols - cols % N;
  const float lowest = -std::numeric_limits<float>::infinity();
  auto vmax = hn::Set(d, lowest);
  auto vnan = hn::Zero(d);  // lanes that saw a NaN are all ones
  for (size_t i = 0; i < whole; i += N) {
    const auto v = hn::LoadU(d, z + i);
    vmax = hn::Max(vmax, v);
    vnan = hn::Or(vnan, hn::VecFromMask(d, hn::IsNaN(v)));
  }
  if (whole < cols) {
    const auto v = LoadTail(d, z + whole, cols - whole, lowest);
    vmax = hn::Max(vmax, v);
    vnan = hn::Or(vnan, hn::VecFromMask(d, hn::IsNaN(v)));
  }
  if (!hn::AllFalse(d, hn::MaskFromVec(vnan))) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    if (e != nullptr) std::fill(e, e + cols, nan);
    *max_out = *sum_out = nan;
    return;
  }
  const auto max = hn::MaxOfLanes(d, vmax);  // in every lane
  auto vsum = hn::Zero(d);
  for (size_t i = 0; i < whole; i += N) {
    const auto v = hn::Exp(d, hn::Sub(hn::LoadU(d, z + i), max));
    if (e != nullptr) hn::StoreU(v, d, e + i);
    vsum = hn::Add(vsum, v);
  }
  if (whole < cols) {
    const size_t count = cols - whole;
    const auto v = hn::IfThenElseZero(
        hn::FirstN(d, count), hn::Exp(d, hn::Sub(LoadTail(d, z + whole, count, 0.0f), max)));
    if (e != nullptr) StoreTail(d, v, count, e + whole);
    vsum = hn::Add(vsum, v);
  }
  *max_out = hn::GetLane(max);
  *sum_out = hn::GetLane(hn::SumOfLanes(d, vsum));
}

// Softmax of one row of `cols` floats; y may be z.
HWY_INLINE void SoftmaxRow(const float* z, float* y, size_t cols) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t whole = cols - cols % N;
  float max, sum;
  RowMaxAndExpSum(z, cols, y, &max, &sum);
  const auto inv = hn::Set(d, 1.0f / sum);
  for (size_t i = 0; i < whole; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, y + i), inv), d, y + i);
  if (whole < cols) {
    const size_t count = cols - whole;
    StoreTail(d, hn::Mul(LoadTail(d, y + whole, count, 0.0f), inv), count, y + whole);
  }
}

// dz = y * (dy - dot(dy, y)) for one row; dz may be dy.
HWY_INLINE void SoftmaxBackwardRow(const float* y, const float* dy, float* dz,
                                   size_t cols) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t whole = cols - cols % N;
  auto vdot = hn::Zero(d);
  for (size_t i = 0; i < whole; i += N) {
    vdot = hn::MulAdd(hn::LoadU(d, dy + i), hn::LoadU(d, y + i), vdot);
  }
  if (whole < cols) {
    const size_t count = cols - whole;
    vdot = hn::MulAdd(LoadTail(d, dy + whole, count, 0.0f),
                      LoadTail(d, y + whole, count, 0.0f), vdot);
  }
  const auto dot = hn::SumOfLanes(d, vdot);
  for (size_t i = 0; i < whole; i += N) {
    const auto g = hn::Mul(hn::LoadU(d, y + i), hn::Sub(hn::LoadU(d, dy + i), dot));
    hn::StoreU(g, d, dz + i);
  }
  if (whole < cols) {
    const size_t count = cols - whole;
    const auto g = hn::Mul(LoadTail(d, y + whole, count, 0.0f),
                           hn::Sub(LoadTail(d, dy + whole, count, 0.0f), dot));
    StoreTail(d, g, count, dz + whole);
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_ACTIVATION_INL_H_ (toggle)
