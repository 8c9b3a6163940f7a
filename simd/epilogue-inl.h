// thaw/simd/epilogue-inl.h — the per-channel epilogue (bias, affine map,
// activation)
// that GEMM, convolutions and depthwise convolutions apply to finished rows
// of their output. Included once per Highway target (toggling guard below).

#if defined(THAW_SIMD_EPILOGUE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_EPILOGUE_INL_H_
#undef THAW_SIMD_EPILOGUE_INL_H_
#else
#define THAW_SIMD_EPILOGUE_INL_H_
#endif

#include <cstddef>

#include "hwy/highway.h"
#include "simd/activation-inl.h"  // also elementwise-inl.h
#include "simd/batchnorm-inl.h"
#include "simd/gemm.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

// Whether e leaves C as it is (the default epilogue).
HWY_INLINE bool EpilogueDoesNothing(const simd::GemmEpilogue& e) {
  return e.bias == nullptr && e.scale == nullptr && e.activation == simd::GemmActivation::kNone;
}

// Whether EpilogueVector can apply e (no activation, ReLU or ReLU6): a
// kernel then applies it to its sums in registers before it stores them.
HWY_INLINE bool EpilogueInRegisters(const simd::GemmEpilogue& e) {
  return e.activation == simd::GemmActivation::kNone ||
         e.activation == simd::GemmActivation::kRelu ||
         e.activation == simd::GemmActivation::kRelu6;
}

// Columns [j, j + Lanes(d)) of a row through e (EpilogueInRegisters(e)),
// with the operations of ApplyEpilogue below, so its bits.
template <class D, class V>
HWY_INLINE V EpilogueVector(D d, const simd::GemmEpilogue& e, V v, size_t j) {
  if (e.bias != nullptr) v = hn::Add(v, hn::LoadU(d, e.bias + j));
  if (e.scale != nullptr) v = BatchNormApplyVector(d, v, e.mean + j, e.scale + j, e.shift + j);
  if (e.activation == simd::GemmActivation::kRelu) v = ReluVector(d, v);
  if (e.activation == simd::GemmActivation::kRelu6) v = Relu6Vector(d, v);
  return v;
}

// Stores v, columns [j, j + Lanes(d)) of a row, at `out`: through e first
// unless e is null.
template <class D, class V>
HWY_INLINE void StoreThrough(D d, const simd::GemmEpilogue* e, V v, size_t j, float* out) {
  hn::StoreU(e != nullptr ? EpilogueVector(d, *e, v, j) : v, d, out);
}

// The rows of ApplyEpilogue below, for an epilogue that does something.
// One out-of-line copy per target: inlined, its body (~7 KB on AVX2, the
// sigmoid and tanh kernels included) was repeated at each of the GEMM's and
// the convolutions' call sites, ~42 KB of the firmware profile's
// c_finetune. A call per finished block is nothing next to the block's
// work.
// With no activation, ReLU or ReLU6, whole vectors of a row take every step
// at once, in registers: one pass, where a pass per step over rows of a few
// channels (a convolution's 16) cost a call and a loop per step and row.
// The steps are the same operations in the same order (bits unchanged);
// the other activations and the last columns short of a vector take a pass
// per step.
inline HWY_NOINLINE void ApplyEpilogueRows(const simd::GemmEpilogue& e, float* c, size_t ldc,
                                           size_t i0, size_t i1, size_t j0, size_t j1) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t vectors_end = EpilogueInRegisters(e) ? j0 + (j1 - j0) / N * N : j0;
  for (size_t i = i0; i < i1; ++i) {
    float* base = c + i * ldc;
    for (size_t j = j0; j < vectors_end; j += N) {
      hn::StoreU(EpilogueVector(d, e, hn::LoadU(d, base + j), j), d, base + j);
    }
    if (vectors_end == j1) continue;
    const size_t n = j1 - vectors_end;
    float* row = base + vectors_end;
    if (e.bias != nullptr) AddChunk(row, e.bias + vectors_end, row, n);
    if (e.scale != nullptr) {
      BatchNormApplyRows(row, 1, n, e.mean + vectors_end, e.scale + vectors_end,
                         e.shift + vectors_end, row);
    }
    switch (e.activation) {
      case simd::GemmActivation::kNone: break;
      case simd::GemmActivation::kRelu: ReluForwardChunk(row, row, n); break;
      case simd::GemmActivation::kRelu6: Relu6ForwardChunk(row, row, n); break;
      case simd::GemmActivation::kSigmoid: SigmoidForwardChunk(row, row, n); break;
      case simd::GemmActivation::kTanh: TanhForwardChunk(row, row, n); break;
    }
  }
}

// C[i, j] = f(((C[i, j] + bias[j]) - mean[j]) * scale[j] + shift[j]) on
// rows [i0, i1), columns [j0, j1) of C: the operations of simd::Add,
// simd::BatchNormApply and the activation, row by row, so the bits are
// theirs. The default epilogue touches nothing (and costs no call).
HWY_INLINE void ApplyEpilogue(const simd::GemmEpilogue& e, float* c, size_t ldc, size_t i0,
                              size_t i1, size_t j0, size_t j1) {
  if (EpilogueDoesNothing(e)) return;
  ApplyEpilogueRows(e, c, ldc, i0, i1, j0, j1);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_EPILOGUE_INL_H_ (toggle)
