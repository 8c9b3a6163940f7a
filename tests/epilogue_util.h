// The GEMM epilogue (simd/gemm.h) applied by hand, step by step with the
// separate kernels, as the reference the fused epilogues of Gemm, ConvForward
// and DepthwiseForward must equal bit for bit.
#ifndef THAW_TESTS_EPILOGUE_UTIL_H_
#define THAW_TESTS_EPILOGUE_UTIL_H_

#include <cstddef>

#include "platform/threads.h"
#include "simd/activation.h"
#include "simd/batchnorm.h"
#include "simd/elementwise.h"
#include "simd/gemm.h"

namespace thaw {
namespace simd {

// Each of `rows` rows of `cols` floats at y (rows `stride` floats apart):
// + bias, then the affine map, then the activation, each only when set.
inline void ApplyEpilogueByHand(const GemmEpilogue& e, float* y, size_t rows, size_t cols,
                                size_t stride) {
  ThreadPool& one = ThreadPool::Serial();
  for (size_t i = 0; i < rows; ++i) {
    float* row = y + i * stride;
    if (e.bias != nullptr) Add(row, e.bias, row, cols, one);
    if (e.mean != nullptr) BatchNormApply(row, 1, cols, e.mean, e.scale, e.shift, row, one);
    switch (e.activation) {
      case GemmActivation::kNone: break;
      case GemmActivation::kRelu: ReluForward(row, row, cols, one); break;
      case GemmActivation::kRelu6: Relu6Forward(row, row, cols, one); break;
      case GemmActivation::kSigmoid: SigmoidForward(row, row, cols, one); break;
      case GemmActivation::kTanh: TanhForward(row, row, cols, one); break;
    }
  }
}

}  // namespace simd
}  // namespace thaw

#endif  // THAW_TESTS_EPILOGUE_UTIL_H_
