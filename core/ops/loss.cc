#include "core/ops/loss.h"

#include <algorithm>

#include "simd/loss.h"

namespace thaw {

const char* LossName(Loss loss) {
  switch (loss) {
    case Loss::kMeanSquaredError: return "mean_squared_error";
    case Loss::kSparseCategoricalCrossentropy: return "sparse_categorical_crossentropy";
    case Loss::kSparseCategoricalCrossentropyFromLogits:
      return "sparse_categorical_crossentropy(from_logits)";
    case Loss::kBinaryCrossentropyFromLogits: return "binary_crossentropy(from_logits)";
  }
  return "?";
}

bool UsesLabels(Loss loss) {
  return loss == Loss::kSparseCategoricalCrossentropy ||
         loss == Loss::kSparseCategoricalCrossentropyFromLogits;
}

bool Classifies(Loss loss) { return loss != Loss::kMeanSquaredError; }

namespace ops {

LossResult ComputeLoss(Loss loss, const float* output, const int32_t* labels,
                       const float* targets, size_t batch, size_t outputs, float* d_output) {
  LossResult r;
  const float scale = 1.0f / static_cast<float>(UsesLabels(loss) ? batch : batch * outputs);
  switch (loss) {
    case Loss::kSparseCategoricalCrossentropy:
    case Loss::kSparseCategoricalCrossentropyFromLogits:
      r.sum = simd::SoftmaxCrossEntropy(output, labels, batch, outputs, nullptr, d_output, scale);
      for (size_t row = 0; row < batch; ++row) {
        const float* z = output + row * outputs;
        r.correct += static_cast<size_t>(std::max_element(z, z + outputs) - z) ==
                     static_cast<size_t>(labels[row]);
      }
      break;
    case Loss::kBinaryCrossentropyFromLogits:
      r.sum = simd::BinaryCrossEntropyWithLogits(output, targets, batch * outputs, d_output,
                                                 scale) / outputs;
      for (size_t i = 0; i < batch * outputs; ++i) {
        r.correct += (output[i] > 0.0f) == (targets[i] > 0.5f);
      }
      break;
    case Loss::kMeanSquaredError:
      r.sum = simd::SquaredError(output, targets, batch * outputs, d_output, scale) / outputs;
      break;
  }
  return r;
}

}  // namespace ops
}  // namespace thaw
