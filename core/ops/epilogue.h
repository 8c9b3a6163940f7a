// thaw/core/ops/epilogue.h — the GEMM epilogue of an op's forward call: its
// bias, the affine map of a consumer folded into it (OpCall::affine, a frozen
// BatchNormalization), and its activation, in that order.
#ifndef THAW_CORE_OPS_EPILOGUE_H_
#define THAW_CORE_OPS_EPILOGUE_H_

#include "core/graph/op.h"
#include "simd/gemm.h"

namespace thaw {
namespace ops {

// Softmax is never fused (ops refuse it; it is a node of its own).
inline simd::GemmEpilogue EpilogueOf(const OpCall& c, const float* bias, Activation activation) {
  simd::GemmEpilogue e;
  e.bias = bias;
  if (c.affine != nullptr) {
    e.mean = c.affine->mean;
    e.scale = c.affine->scale;
    e.shift = c.affine->shift;
  }
  switch (activation) {
    case Activation::kLinear:
    case Activation::kSoftmax: break;
    case Activation::kRelu: e.activation = simd::GemmActivation::kRelu; break;
    case Activation::kRelu6: e.activation = simd::GemmActivation::kRelu6; break;
    case Activation::kSigmoid: e.activation = simd::GemmActivation::kSigmoid; break;
    case Activation::kTanh: e.activation = simd::GemmActivation::kTanh; break;
  }
  return e;
}

}  // namespace ops
}  // namespace thaw

#endif  // THAW_CORE_OPS_EPILOGUE_H_
