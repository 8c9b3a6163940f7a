// thaw/simd/ieee-inl.h — division and square root correctly rounded on every
// target, as IEEE 754 and the scalar references compute them. Included once
// per Highway target (toggling guard below).
//
// Highway's Div and Sqrt are IEEE on every target but one: 32-bit Arm NEON has
// no vector divide or square root, and Highway 1.0.3 approximates both there
// (a reciprocal estimate and three Newton-Raphson steps), which is off by an
// ulp or more. On that target these divide and take roots lane by lane with
// VFP's scalar instructions (IEEE, like the references); 4 lanes, and VFP's
// divide is slow anyway (10-14 cycles on Cortex-A7/A15). Everywhere else they
// are hn::Div and hn::Sqrt.
//
// (ARMv7 NEON also flushes subnormal inputs and results to zero and returns
// the default NaN, whatever the FPSCR says: a kernel fed subnormals or NaN
// payloads may differ there from the scalar reference in those bits.)

#if defined(THAW_SIMD_IEEE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_IEEE_INL_H_
#undef THAW_SIMD_IEEE_INL_H_
#else
#define THAW_SIMD_IEEE_INL_H_
#endif

#include <cmath>
#include <cstddef>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_ARCH_ARM_V7 && HWY_TARGET == HWY_NEON
#define THAW_LANEWISE_DIV_SQRT 1
#else
#define THAW_LANEWISE_DIV_SQRT 0
#endif

// a / b, correctly rounded.
template <class D, class V>
HWY_INLINE V IeeeDiv(D d, V a, V b) {
#if THAW_LANEWISE_DIV_SQRT
  constexpr size_t kLanes = hn::MaxLanes(D());
  HWY_ALIGN float qa[kLanes];
  HWY_ALIGN float qb[kLanes];
  hn::Store(a, d, qa);
  hn::Store(b, d, qb);
  for (size_t i = 0; i < kLanes; ++i) qa[i] = qa[i] / qb[i];
  return hn::Load(d, qa);
#else
  (void)d;
  return hn::Div(a, b);
#endif
}

// sqrt(v), correctly rounded.
template <class D, class V>
HWY_INLINE V IeeeSqrt(D d, V v) {
#if THAW_LANEWISE_DIV_SQRT
  constexpr size_t kLanes = hn::MaxLanes(D());
  HWY_ALIGN float q[kLanes];
  hn::Store(v, d, q);
  for (size_t i = 0; i < kLanes; ++i) q[i] = std::sqrt(q[i]);
  return hn::Load(d, q);
#else
  (void)d;
  return hn::Sqrt(v);
#endif
}

#undef THAW_LANEWISE_DIV_SQRT

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_IEEE_INL_H_ (toggle)
