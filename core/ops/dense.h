// thaw/core/ops/dense.h — fully connected layers: y = f(x W^T + b).
//
//   model.Add(thaw::Dense::Make(256, thaw::Activation::kRelu));   // "dense_0"
//   model.Add(thaw::Dense::Make(10, thaw::Activation::kSoftmax), "head");
//
// Variables "<layer>.weight" [units, in] and "<layer>.bias" [units], as
// PyTorch's nn.Linear (so checkpoints load in both directions). The input is
// rows of features, [batch, in]. ReLU, sigmoid and tanh run inside the
// product (the GEMM epilogue); softmax, which needs whole rows, is a second
// node, which a model fuses into a cross-entropy loss.
#ifndef THAW_CORE_OPS_DENSE_H_
#define THAW_CORE_OPS_DENSE_H_

#include <cstddef>
#include <memory>

#include "core/graph/layer.h"
#include "core/graph/op.h"

namespace thaw {

struct DenseAttrs {
  Activation activation = Activation::kLinear;  // linear, relu, sigmoid or tanh
  bool has_bias = true;
};

namespace ops {
// y[rows, units] = f(x[rows, in] W[units, in]^T + b[units]); inputs (x, W[, b]).
extern const OpDef kDense;
}  // namespace ops

class Dense : public Layer {
 public:
  explicit Dense(size_t units, Activation activation = Activation::kLinear,
                 bool use_bias = true);
  static std::unique_ptr<Layer> Make(size_t units,
                                     Activation activation = Activation::kLinear,
                                     bool use_bias = true) {
    return std::make_unique<Dense>(units, activation, use_bias);
  }
  const char* kind() const override { return "dense"; }
  size_t units() const { return units_; }
  Activation activation() const { return activation_; }
  // After Build; bias() is invalid without a bias.
  Variable weight() const;
  Variable bias() const;

  // Glorot (Xavier) uniform weight, Keras's default; zero bias.
  void ResetParameters(Random& rng) override;
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;

 private:
  size_t units_;
  Activation activation_;
  bool use_bias_;
};

}  // namespace thaw

#endif  // THAW_CORE_OPS_DENSE_H_
