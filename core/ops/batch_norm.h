// thaw/core/ops/batch_norm.h — Keras BatchNormalization, with its freeze
// semantics, over the last axis (channels of NHWC images, features of rows).
//
//   model.Add(thaw::Dense::Make(64));
//   model.Add(thaw::BatchNormalization::Make());   // momentum 0.99, epsilon 1e-3
//   model.Add(thaw::ReLU());
//   ...
//   model.layer(1).SetTrainable(false);  // inference mode from the next step on
//
// Training mode (Fit, TrainOnBatch, with the layer trainable): normalises
// with the batch's mean and biased variance, y = gamma (x - mean) /
// sqrt(var + epsilon) + beta, and, once the step's update is accepted, moves
// the statistics: moving = momentum * moving + (1 - momentum) * batch, with
// the unbiased batch variance (n / (n - 1) var) for the moving variance, as
// PyTorch stores it. Keras' momentum m is PyTorch's 1 - m (0.99 = 0.01).
// Inference mode (Evaluate, Predict, and any step while the layer is frozen,
// as Keras >= 2.1.3 / TF2): normalises with the moving statistics and updates
// nothing; frozen, gamma and beta get no gradient, but the layer still passes
// gradients to what precedes it. Where nothing runs backward through it, an
// inference-mode layer after a Conv2D, DepthwiseConv2D or Dense without
// activation runs inside that op's epilogue, with the same bits
// (core/exec/program.h).
//
// Variables, named as PyTorch's state_dict: "<layer>.weight" (gamma, [C]),
// "<layer>.bias" (beta, [C]), and the statistics "<layer>.running_mean",
// "<layer>.running_var" and "<layer>.num_batches_tracked" ([], a float here,
// int64 in PyTorch). Statistics are never trainable.
#ifndef THAW_CORE_OPS_BATCH_NORM_H_
#define THAW_CORE_OPS_BATCH_NORM_H_

#include <memory>

#include "core/graph/layer.h"
#include "core/graph/op.h"

namespace thaw {

struct BatchNormAttrs {
  float momentum = 0.99f;  // Keras convention
  float epsilon = 1e-3f;
  bool has_gamma = true;
  bool has_beta = true;
};

namespace ops {
// Inputs: x, running_mean, running_var, num_batches_tracked, then gamma
// (has_gamma), then beta (has_beta).
extern const OpDef kBatchNorm;
}  // namespace ops

class BatchNormalization : public Layer {
 public:
  // Keras' arguments and defaults; center: beta, scale: gamma.
  explicit BatchNormalization(float momentum = 0.99f, float epsilon = 1e-3f, bool center = true,
                              bool scale = true);
  static std::unique_ptr<Layer> Make(float momentum = 0.99f, float epsilon = 1e-3f,
                                     bool center = true, bool scale = true) {
    return std::make_unique<BatchNormalization>(momentum, epsilon, center, scale);
  }
  const char* kind() const override { return "batch_normalization"; }
  // gamma 1, beta 0, moving mean 0, moving variance 1, no batches tracked.
  void ResetParameters(Random& rng) override;
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;

 private:
  BatchNormAttrs attrs_;
};

}  // namespace thaw

#endif  // THAW_CORE_OPS_BATCH_NORM_H_
