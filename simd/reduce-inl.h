// thaw/simd/reduce-inl.h — per-target, width-independent sums behind
// simd/reduce.h. Included once per Highway target (toggling guard below).
//
// SumChunk and DotChunk give the same bits on every target, x86 and Arm:
//  - 16 logical lanes: element i of the range (i < n rounded down to 16)
//    goes to lane i % 16, and each lane adds its elements in index order.
//    SIMD targets hold the lanes as 4 vectors of exactly 4 floats
//    (CappedTag<float, 4>; every SIMD target has at least 128-bit vectors),
//    HWY_SCALAR as 16 floats. Vector width never changes the grouping.
//  - the 16 lane sums s[0..15] are combined by a fixed tree:
//      t[r] = (s[r] + s[4 + r]) + (s[8 + r] + s[12 + r]),  r = 0..3
//      sum  = (t[0] + t[1]) + (t[2] + t[3])
//  - the remaining n % 16 elements are added to sum one by one, in order.
//  - Dot multiplies then adds (Mul, Add; never MulAdd), and the project
//    builds with -ffp-contract=off so the scalar code is not fused either.

#if defined(THAW_SIMD_REDUCE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_REDUCE_INL_H_
#undef THAW_SIMD_REDUCE_INL_H_
#else
#define THAW_SIMD_REDUCE_INL_H_
#endif

#include <cstddef>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace detail {

// The fixed combination tree over 16 lane sums (see the file comment).
HWY_INLINE float CombineSixteenLanes(const float* s) {
  float t[4];
  for (size_t r = 0; r < 4; ++r) {
    t[r] = (s[r] + s[4 + r]) + (s[8 + r] + s[12 + r]);
  }
  return (t[0] + t[1]) + (t[2] + t[3]);
}

#if HWY_TARGET != HWY_SCALAR
// Vector form of the first tree level: lane r of the result is t[r] when
// v_q holds logical lanes 4q..4q+3. Returns (t0 + t1) + (t2 + t3).
template <class D4, class V>
HWY_INLINE float CombineFourVectors(D4 d4, V v0, V v1, V v2, V v3) {
  HWY_ALIGN float t[HWY_LANES(float)];  // only the first 4 are used
  hn::Store(hn::Add(hn::Add(v0, v1), hn::Add(v2, v3)), d4, t);
  return (t[0] + t[1]) + (t[2] + t[3]);
}
#endif

}  // namespace detail

// Returns the sum of x[0..n) in the order described at the top of the file.
HWY_INLINE float SumChunk(const float* x, size_t n) {
  const size_t whole = n - n % 16;
  float sum;
#if HWY_TARGET == HWY_SCALAR
  float s[16] = {};
  for (size_t i = 0; i < whole; i += 16) {
    for (size_t l = 0; l < 16; ++l) s[l] += x[i + l];
  }
  sum = detail::CombineSixteenLanes(s);
#else
  const hn::CappedTag<float, 4> d4;
  HWY_DASSERT(hn::Lanes(d4) == 4);
  auto v0 = hn::Zero(d4), v1 = hn::Zero(d4);
  auto v2 = hn::Zero(d4), v3 = hn::Zero(d4);
  for (size_t i = 0; i < whole; i += 16) {
    v0 = hn::Add(v0, hn::LoadU(d4, x + i));
    v1 = hn::Add(v1, hn::LoadU(d4, x + i + 4));
    v2 = hn::Add(v2, hn::LoadU(d4, x + i + 8));
    v3 = hn::Add(v3, hn::LoadU(d4, x + i + 12));
  }
  sum = detail::CombineFourVectors(d4, v0, v1, v2, v3);
#endif
  for (size_t i = whole; i < n; ++i) sum += x[i];
  return sum;
}

// Returns the sum of a[i] * b[i] over [0, n), ordered like SumChunk over the
// products; each product is rounded to float before it is added.
HWY_INLINE float DotChunk(const float* a, const float* b, size_t n) {
  const size_t whole = n - n % 16;
  float sum;
#if HWY_TARGET == HWY_SCALAR
  float s[16] = {};
  for (size_t i = 0; i < whole; i += 16) {
    for (size_t l = 0; l < 16; ++l) {
      const float product = a[i + l] * b[i + l];
      s[l] += product;
    }
  }
  sum = detail::CombineSixteenLanes(s);
#else
  const hn::CappedTag<float, 4> d4;
  HWY_DASSERT(hn::Lanes(d4) == 4);
  auto v0 = hn::Zero(d4), v1 = hn::Zero(d4);
  auto v2 = hn::Zero(d4), v3 = hn::Zero(d4);
  for (size_t i = 0; i < whole; i += 16) {
    v0 = hn::Add(v0, hn::Mul(hn::LoadU(d4, a + i), hn::LoadU(d4, b + i)));
    v1 = hn::Add(v1,
                 hn::Mul(hn::LoadU(d4, a + i + 4), hn::LoadU(d4, b + i + 4)));
    v2 = hn::Add(v2,
                 hn::Mul(hn::LoadU(d4, a + i + 8), hn::LoadU(d4, b + i + 8)));
    v3 = hn::Add(v3,
                 hn::Mul(hn::LoadU(d4, a + i + 12), hn::LoadU(d4, b + i + 12)));
  }
  sum = detail::CombineFourVectors(d4, v0, v1, v2, v3);
#endif
  for (size_t i = whole; i < n; ++i) {
    const float product = a[i] * b[i];
    sum += product;
  }
  return sum;
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_REDUCE_INL_H_ (toggle)
