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

// The rows of ApplyEpilogue below, for an epilogue that does something.
// One out-of-line copy per target: inlined, its body (~7 KB on AVX2, the
// sigmoid and tanh kernels included) was repeated at each of the GEMM's and
// the convolutions' call sites, ~42 KB of the firmware profile's
// c_finetune. A call per finished block is nothing next to the block's
// work.
inline HWY_NOINLINE void ApplyEpilogueRows(const simd::GemmEpilogue& e, float* c, size_t ldc,
                                           size_t i0, size_t i1, size_t j0, size_t j1) {
  const size_t n = j1 - j0;
  for (size_t i = i0; i < i1; ++i) {
    float* row = c + i * ldc + j0;
    if (e.bias != nullptr) AddChunk(row, e.bias + j0, row, n);
    if (e.scale != nullptr) {
      BatchNormApplyRows(row, 1, n, e.mean + j0, e.scale + j0, e.shift + j0, row);
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
// rows [i0, i1), columns [j0, j1) of C: the chunk kernels of simd::Add,
// simd::BatchNormApply and the activation, row by row (a row is in L1 for
// the later passes), so the bits are theirs. The default epilogue touches
// nothing (and costs no call).
HWY_INLINE void ApplyEpilogue(const simd::GemmEpilogue& e, float* c, size_t ldc, size_t i0,
                              size_t i1, size_t j0, size_t j1) {
  if (e.bias == nullptr && e.scale == nullptr && e.activation == simd::GemmActivation::kNone) {
    return;
  }
  ApplyEpilogueRows(e, c, ldc, i0, i1, j0, j1);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_EPILOGUE_INL_H_ (toggle)
