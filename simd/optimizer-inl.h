// thaw/simd/optimizer-inl.h — per-target optimizer updates behind
// simd/optimizer.h. Included once per Highway target (toggling guard below).
//
// Every product is rounded before it is added (Mul then Add, never MulAdd),
// and the project builds with -ffp-contract=off, so an update gives the same
// bits on every target and as ScalarSgdStep / ScalarAdamStep: the optimizer is
// memory-bound, fusing would buy nothing measurable. Sqrt and Div are IEEE
// (correctly rounded) on every target (simd/ieee-inl.h).

#if defined(THAW_SIMD_OPTIMIZER_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_OPTIMIZER_INL_H_
#undef THAW_SIMD_OPTIMIZER_INL_H_
#else
#define THAW_SIMD_OPTIMIZER_INL_H_
#endif

#include <cstddef>

#include "hwy/highway.h"
#include "simd/ieee-inl.h"
#include "simd/optimizer.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace detail {

// One vector of SgdStep at the given (unaligned) pointers. velocity is only
// touched when p.momentum != 0.
template <class D>
HWY_INLINE void SgdVector(D d, const simd::SgdParams& p, const float* grad,
                          float* weight, float* velocity) {
  auto g = hn::LoadU(d, grad);
  const auto w = hn::LoadU(d, weight);
  if (p.weight_decay != 0.0f) {
    g = hn::Add(g, hn::Mul(hn::Set(d, p.weight_decay), w));
  }
  if (p.momentum != 0.0f) {
    const auto momentum = hn::Set(d, p.momentum);
    const auto vel = hn::Add(hn::Mul(momentum, hn::LoadU(d, velocity)), g);
    hn::StoreU(vel, d, velocity);
    if (p.nesterov) {
      g = hn::Add(g, hn::Mul(momentum, vel));
    } else {
      g = vel;
    }
  }
  hn::StoreU(hn::Sub(w, hn::Mul(hn::Set(d, p.learning_rate), g)), d, weight);
}

// Scalars of AdamStep that do not depend on the element, computed once per
// chunk. The "1 - x" factors are formed in double and rounded once, as
// PyTorch does with its Python-float hyper-parameters.
struct AdamConstants {
  explicit AdamConstants(const simd::AdamParams& p)
      : decay(
            static_cast<float>(1.0 - static_cast<double>(p.learning_rate) *
                                         static_cast<double>(p.weight_decay))),
        one_minus_beta1(static_cast<float>(1.0 - static_cast<double>(p.beta1))),
        one_minus_beta2(static_cast<float>(1.0 - static_cast<double>(p.beta2))),
        params(p) {}
  float decay;  // AdamW: w *= 1 - lr * wd
  float one_minus_beta1;
  float one_minus_beta2;
  simd::AdamParams params;
};

// One vector of AdamStep at the given (unaligned) pointers.
template <class D>
HWY_INLINE void AdamVector(D d, const AdamConstants& k, const float* grad,
                           float* weight, float* m_ptr, float* v_ptr) {
  const simd::AdamParams& p = k.params;
  auto g = hn::LoadU(d, grad);
  auto w = hn::LoadU(d, weight);
  if (p.weight_decay != 0.0f) {
    if (p.decoupled_weight_decay) {
      w = hn::Mul(w, hn::Set(d, k.decay));
    } else {
      g = hn::Add(g, hn::Mul(hn::Set(d, p.weight_decay), w));
    }
  }
  // m.lerp_(g, 1 - beta1): m + (1 - beta1) * (g - m).
  auto m = hn::LoadU(d, m_ptr);
  m = hn::Add(m, hn::Mul(hn::Set(d, k.one_minus_beta1), hn::Sub(g, m)));
  // v.mul_(beta2).addcmul_(g, g, value=1 - beta2): ((1 - beta2) * g) * g.
  auto v = hn::LoadU(d, v_ptr);
  v = hn::Add(hn::Mul(hn::Set(d, p.beta2), v),
              hn::Mul(hn::Mul(hn::Set(d, k.one_minus_beta2), g), g));
  const auto denom =
      hn::Add(IeeeDiv(d, IeeeSqrt(d, v), hn::Set(d, p.bias_correction2_sqrt)),
              hn::Set(d, p.epsilon));
  // addcdiv_(m, denom, value=-step_size): (step_size * m) / denom.
  w = hn::Sub(w, IeeeDiv(d, hn::Mul(hn::Set(d, p.step_size), m), denom));
  hn::StoreU(m, d, m_ptr);
  hn::StoreU(v, d, v_ptr);
  hn::StoreU(w, d, weight);
}

}  // namespace detail

// simd::SgdStep over one range. velocity may be nullptr when momentum == 0.
// The tail (n % Lanes) runs the same vector code on zero-padded stack copies
// (SafeCopyN: 1.0.3 has no LoadN and MaskedLoad may fault on SSE4/AVX2).
HWY_INLINE void SgdChunk(const float* HWY_RESTRICT grad,
                         float* HWY_RESTRICT weight,
                         float* HWY_RESTRICT velocity, size_t n,
                         const simd::SgdParams& params) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  // A local copy: stores through weight/velocity cannot alias it, so the
  // branches and broadcasts hoist out of the loop.
  const simd::SgdParams p = params;
  const bool has_velocity = p.momentum != 0.0f;
  size_t i = 0;
  for (; i + N <= n; i += N) {
    detail::SgdVector(d, p, grad + i, weight + i,
                      has_velocity ? velocity + i : nullptr);
  }
  if (i == n) return;
  const size_t rem = n - i;
  HWY_ALIGN float g[HWY_LANES(float)];
  HWY_ALIGN float w[HWY_LANES(float)];
  HWY_ALIGN float vel[HWY_LANES(float)];
  hn::Store(hn::Zero(d), d, g);
  hn::Store(hn::Zero(d), d, w);
  hn::Store(hn::Zero(d), d, vel);
  hn::SafeCopyN(rem, d, grad + i, g);
  hn::SafeCopyN(rem, d, weight + i, w);
  if (has_velocity) hn::SafeCopyN(rem, d, velocity + i, vel);
  detail::SgdVector(d, p, g, w, vel);
  hn::SafeCopyN(rem, d, w, weight + i);
  if (has_velocity) hn::SafeCopyN(rem, d, vel, velocity + i);
}

// simd::AdamStep over one range; tail handled like SgdChunk.
HWY_INLINE void AdamChunk(const float* HWY_RESTRICT grad,
                          float* HWY_RESTRICT weight, float* HWY_RESTRICT m,
                          float* HWY_RESTRICT v, size_t n,
                          const simd::AdamParams& params) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const detail::AdamConstants k(params);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    detail::AdamVector(d, k, grad + i, weight + i, m + i, v + i);
  }
  if (i == n) return;
  const size_t rem = n - i;
  HWY_ALIGN float bg[HWY_LANES(float)];
  HWY_ALIGN float bw[HWY_LANES(float)];
  HWY_ALIGN float bm[HWY_LANES(float)];
  HWY_ALIGN float bv[HWY_LANES(float)];
  hn::Store(hn::Zero(d), d, bg);
  hn::Store(hn::Zero(d), d, bw);
  hn::Store(hn::Zero(d), d, bm);
  hn::Store(hn::Zero(d), d, bv);
  hn::SafeCopyN(rem, d, grad + i, bg);
  hn::SafeCopyN(rem, d, weight + i, bw);
  hn::SafeCopyN(rem, d, m + i, bm);
  hn::SafeCopyN(rem, d, v + i, bv);
  detail::AdamVector(d, k, bg, bw, bm, bv);
  hn::SafeCopyN(rem, d, bw, weight + i);
  hn::SafeCopyN(rem, d, bm, m + i);
  hn::SafeCopyN(rem, d, bv, v + i);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_OPTIMIZER_INL_H_ (toggle)
