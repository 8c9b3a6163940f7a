// thaw/simd/elementwise-inl.h — per-target elementwise loops behind
// simd/elementwise.h. Included once per Highway target (toggling guard below)
// by simd/elementwise.cc, and by any per-target code that wants the loops
// inline.
//
// Every function here works on one contiguous range of n floats, needs no
// alignment (LoadU/StoreU) and allows an output to be exactly the same array
// as an input: each vector of inputs is loaded before the results for those
// positions are stored, so the pointers carry no HWY_RESTRICT.

#if defined(THAW_SIMD_ELEMENTWISE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_ELEMENTWISE_INL_H_
#undef THAW_SIMD_ELEMENTWISE_INL_H_
#else
#define THAW_SIMD_ELEMENTWISE_INL_H_
#endif

#include <cstddef>
#include <utility>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace detail {

// The last n % Lanes(d) elements: each input is copied into a zeroed stack
// vector (zeros rather than stack garbage, so unused lanes cannot raise NaN or
// denormal slow paths), `op` runs on whole vectors exactly as in the body, and
// only the valid lanes are copied out. 1.0.3 has no LoadN, and
// MaskedLoad/BlendedStore may fault on SSSE3/SSE4/AVX2, hence SafeCopyN.
template <class D, class Op, size_t... kIndex, class... Inputs>
HWY_INLINE void MapTail(D d, const Op& op, size_t count, float* out,
                        std::index_sequence<kIndex...>, const Inputs*... in) {
  // Rows are HWY_LANES(float) floats, a whole number of vectors, so every
  // row keeps HWY_ALIGN's vector alignment (Lanes(d) is runtime on SVE).
  HWY_ALIGN float bounce[sizeof...(Inputs)][HWY_LANES(float)];
  ((hn::Store(hn::Zero(d), d, bounce[kIndex]),
    hn::SafeCopyN(count, d, in, bounce[kIndex])),
   ...);
  HWY_ALIGN float result[HWY_LANES(float)];
  hn::Store(op(d, hn::Load(d, bounce[kIndex])...), d, result);
  hn::SafeCopyN(count, d, result, out);
}

}  // namespace detail

// out[i] = op(d, in_0[i], in_1[i], ...) for i in [0, n), a vector at a time
// with the body unrolled four times. op is a generic callable
// `V op(D d, V a, V b, ...)` (lambdas need HWY_ATTR).
template <class Op, class... Inputs>
HWY_INLINE void MapVectors(const Op& op, size_t n, float* out,
                           const Inputs*... in) {
  static_assert(sizeof...(Inputs) >= 1, "MapVectors needs an input");
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    // All four results are computed before any is stored: `out` may be the
    // same array as an input.
    const auto r0 = op(d, hn::LoadU(d, in + i)...);
    const auto r1 = op(d, hn::LoadU(d, in + i + N)...);
    const auto r2 = op(d, hn::LoadU(d, in + i + 2 * N)...);
    const auto r3 = op(d, hn::LoadU(d, in + i + 3 * N)...);
    hn::StoreU(r0, d, out + i);
    hn::StoreU(r1, d, out + i + N);
    hn::StoreU(r2, d, out + i + 2 * N);
    hn::StoreU(r3, d, out + i + 3 * N);
  }
  for (; i + N <= n; i += N) {
    hn::StoreU(op(d, hn::LoadU(d, in + i)...), d, out + i);
  }
  if (i < n) {
    detail::MapTail(d, op, n - i, out + i, std::index_sequence_for<Inputs...>(),
                    (in + i)...);
  }
}

// The kernels of simd/elementwise.h over one range (no threads here).

HWY_INLINE void AddChunk(const float* a, const float* b, float* out, size_t n) {
  MapVectors([](auto /*d*/, auto va, auto vb)
                 HWY_ATTR { return hn::Add(va, vb); },
             n, out, a, b);
}

HWY_INLINE void SubChunk(const float* a, const float* b, float* out, size_t n) {
  MapVectors([](auto /*d*/, auto va, auto vb)
                 HWY_ATTR { return hn::Sub(va, vb); },
             n, out, a, b);
}

HWY_INLINE void MulChunk(const float* a, const float* b, float* out, size_t n) {
  MapVectors([](auto /*d*/, auto va, auto vb)
                 HWY_ATTR { return hn::Mul(va, vb); },
             n, out, a, b);
}

HWY_INLINE void AddScalarChunk(const float* x, float c, float* out, size_t n) {
  MapVectors([c](auto d, auto vx)
                 HWY_ATTR { return hn::Add(vx, hn::Set(d, c)); },
             n, out, x);
}

HWY_INLINE void ScaleChunk(const float* x, float alpha, float* out, size_t n) {
  MapVectors([alpha](auto d, auto vx)
                 HWY_ATTR { return hn::Mul(hn::Set(d, alpha), vx); },
             n, out, x);
}

// Clamps to [-limit, limit] (limit > 0): Keras' clipvalue.
HWY_INLINE void ClampAbsChunk(const float* x, float limit, float* out, size_t n) {
  MapVectors([limit](auto d, auto vx) HWY_ATTR {
               return hn::Min(hn::Max(vx, hn::Set(d, -limit)), hn::Set(d, limit));
             },
             n, out, x);
}

// y += alpha * x with MulAdd: fused (one rounding) on targets with FMA
// (AVX2, AVX3, NEON, SVE), a multiply then an add elsewhere.
HWY_INLINE void AxpyChunk(float alpha, const float* x, float* y, size_t n) {
  MapVectors([alpha](auto d, auto vx, auto vy)
                 HWY_ATTR { return hn::MulAdd(hn::Set(d, alpha), vx, vy); },
             n, y, x, y);
}

// out += a * b, fused like AxpyChunk.
HWY_INLINE void MulAccChunk(const float* a, const float* b, float* out,
                            size_t n) {
  MapVectors([](auto /*d*/, auto va, auto vb, auto vout)
                 HWY_ATTR { return hn::MulAdd(va, vb, vout); },
             n, out, a, b, out);
}

// ReLU as PyTorch's: 0 where x <= 0, else x, so NaN stays NaN (the
// comparison is false for it on every target; Max's NaN handling differs
// between targets) and -0 maps to +0. The backward pass is threshold's: dy
// where x is not <= 0 (NaN included), else 0.
template <class D, class V>
HWY_INLINE V ReluVector(D d, V vx) {
  return hn::IfThenZeroElse(hn::Le(vx, hn::Zero(d)), vx);
}

HWY_INLINE void ReluForwardChunk(const float* x, float* y, size_t n) {
  MapVectors([](auto d, auto vx) HWY_ATTR { return ReluVector(d, vx); }, n, y, x);
}

template <class D, class V>
HWY_INLINE V ReluGradient(D d, V vx, V vdy) {
  return hn::IfThenZeroElse(hn::Le(vx, hn::Zero(d)), vdy);
}

HWY_INLINE void ReluBackwardChunk(const float* x, const float* dy, float* dx,
                                  size_t n) {
  MapVectors([](auto d, auto vx, auto vdy) HWY_ATTR { return ReluGradient(d, vx, vdy); }, n,
             dx, x, dy);
}

// ReLU6 = min(max(x, 0), 6) as PyTorch's hardtanh(x, 0, 6): ReLU as above,
// then 6 where that is above 6; NaN stays NaN.
template <class D, class V>
HWY_INLINE V Relu6Vector(D d, V vx) {
  const V six = hn::Set(d, 6.0f);
  const V relu = ReluVector(d, vx);
  return hn::IfThenElse(hn::Gt(relu, six), six, relu);
}

HWY_INLINE void Relu6ForwardChunk(const float* x, float* y, size_t n) {
  MapVectors([](auto d, auto vx) HWY_ATTR { return Relu6Vector(d, vx); }, n, y, x);
}

// dx = dy where 0 < y < 6 (y the forward output, or the input), else 0 (NaN
// included, as hardtanh's backward).
template <class D, class V>
HWY_INLINE V Relu6Gradient(D d, V vy, V vdy) {
  return hn::IfThenElseZero(hn::And(hn::Gt(vy, hn::Zero(d)), hn::Lt(vy, hn::Set(d, 6.0f))), vdy);
}

HWY_INLINE void Relu6BackwardChunk(const float* y, const float* dy, float* dx, size_t n) {
  MapVectors([](auto d, auto vy, auto vdy) HWY_ATTR { return Relu6Gradient(d, vy, vdy); }, n,
             dx, y, dy);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_ELEMENTWISE_INL_H_ (toggle)
