// thaw/core/ops/loss.h — the losses a model is compiled with, and their
// gradients.
//
//   thaw::LossResult r = thaw::ops::ComputeLoss(thaw::Loss::kMeanSquaredError,
//                                               y, nullptr, targets, batch, outputs, dy);
//   double mean = r.sum / batch;
//
// A loss is not a graph node: it ends a step. It reads the model's output
// (logits when a softmax is fused into it) and writes the output's gradient
// in the same pass.
#ifndef THAW_CORE_OPS_LOSS_H_
#define THAW_CORE_OPS_LOSS_H_

#include <cstddef>
#include <cstdint>

namespace thaw {

enum class Loss {
  kMeanSquaredError,
  // Integer labels; the model ends in softmax (fused into the loss).
  kSparseCategoricalCrossentropy,
  // Integer labels; the model's output is logits (no final softmax).
  kSparseCategoricalCrossentropyFromLogits,
  // Targets in [0, 1]; the model's output is logits (no final sigmoid).
  kBinaryCrossentropyFromLogits,
};
const char* LossName(Loss loss);
// Whether the loss reads integer labels (else float targets, one per output).
bool UsesLabels(Loss loss);
// Whether it has an accuracy metric.
bool Classifies(Loss loss);
// Whether it takes logits from a final softmax, which it computes itself.
inline bool FusesSoftmax(Loss loss) { return loss == Loss::kSparseCategoricalCrossentropy; }

struct LossResult {
  double sum = 0.0;    // the loss summed over the batch (mean over outputs per example)
  size_t correct = 0;  // correct predictions (elements for binary cross-entropy)
};

namespace ops {

// The loss of `output` [batch, outputs] against labels [batch] or targets
// [batch, outputs]; when d_output is not null, writes the gradient of the
// batch's mean loss into it ([batch, outputs]).
LossResult ComputeLoss(Loss loss, const float* output, const int32_t* labels,
                       const float* targets, size_t batch, size_t outputs, float* d_output);

}  // namespace ops
}  // namespace thaw

#endif  // THAW_CORE_OPS_LOSS_H_
