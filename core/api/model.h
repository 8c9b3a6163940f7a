// thaw/core/api/model.h — Keras-style Sequential models with freeze-aware memory.
//
//   thaw::Sequential model(pool);
//   model.Add(thaw::Dense::Make(256, thaw::Activation::kRelu));
//   model.Add(thaw::Dense::Make(10, thaw::Activation::kSoftmax));
//   THAW_RETURN_IF_ERROR(model.Build(/*input_features=*/784, /*max_batch=*/64, &arena));
//   THAW_RETURN_IF_ERROR(model.Compile(thaw::OptimizerConfig::Adam(adam_options),
//                                      thaw::Loss::kSparseCategoricalCrossentropy));
//   THAW_RETURN_IF_ERROR(model.Fit(train, fit_options));
//   model.layer(0).SetTrainable(false);      // freeze the first layer...
//   THAW_RETURN_IF_ERROR(model.Fit(train, fit_options));  // ...no recompile needed
//
// The model is a static graph built once. Each training step:
//  1. plans its memory for the batch size and the current freeze set, and
//     checks that it fits the arena before anything moves (ResourceExhausted
//     with bytes needed and available otherwise; the model stays usable);
//  2. re-plans gradients and optimizer state when flags changed since the
//     last step (VariableSet::Prepare): state of variables that stay
//     trainable is kept, newly thawed ones start from zero;
//  3. runs forward, keeping only the activations the backward pass reads:
//     the frozen prefix (layers before the first trainable one) saves none
//     and gets no backward pass;
//  4. runs backward down to the first trainable layer and applies the
//     optimizer to trainable variables only.
// Nothing on a step allocates from the heap. PlanMemory reports the same
// numbers for any batch size and freeze set without running anything.
//
// Losses: a final softmax is fused with sparse categorical cross-entropy
// (computed from logits, numerically stable), as is sigmoid with binary
// cross-entropy when you use the *FromLogits loss on a linear output.
#ifndef THAW_CORE_API_MODEL_H_
#define THAW_CORE_API_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/memory/arena.h"
#include "core/api/layers.h"
#include "core/train/optimizers.h"
#include "core/vars/variables.h"
#include "platform/status.h"
#include "platform/threads.h"

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

struct OptimizerConfig {
  enum class Kind { kSgd, kAdam, kAdamW };
  Kind kind = Kind::kSgd;
  SgdOptions sgd;
  AdamOptions adam;

  static OptimizerConfig Sgd(const SgdOptions& options);
  static OptimizerConfig Adam(const AdamOptions& options);
  static OptimizerConfig AdamW(const AdamOptions& options);
};

// A set of examples; non-owning views of the caller's arrays.
struct Examples {
  const float* x = nullptr;         // [count, input_features]
  size_t count = 0;
  const int32_t* labels = nullptr;  // [count]: sparse categorical losses
  const float* targets = nullptr;   // [count, outputs]: MSE and binary CE
};

// Loss (mean over examples) and accuracy (NaN when the loss has none).
struct Metrics {
  double loss = 0.0;
  double accuracy = 0.0;
  size_t count = 0;
};

enum class Verbosity {
  kAuto,         // a live progress bar on a terminal, one line per epoch otherwise
  kSilent,
  kEpochLines,   // one line per epoch
  kProgressBar,  // Keras's bar, redrawn in place
};

struct FitOptions {
  int epochs = 1;
  size_t batch_size = 32;   // at most the max_batch given to Build
  bool shuffle = true;
  uint64_t seed = 0;        // shuffling order (and nothing else)
  const Examples* validation = nullptr;  // evaluated after each epoch
  Verbosity verbose = Verbosity::kAuto;
};

struct EpochResult {
  Metrics train;
  Metrics validation;  // count == 0 without validation data
  size_t steps = 0;
  double seconds = 0.0;     // whole epoch, including validation
  double step_seconds = 0.0;  // training steps only
};

// Bytes of one layer in a memory plan.
struct LayerMemory {
  std::string name;
  size_t weights = 0, gradients = 0, optimizer_state = 0, activations = 0;
};

struct ModelPlan {
  size_t batch = 0;
  bool training = false;
  size_t first_backward_layer = 0;  // layers before it form the frozen prefix
  MemoryReport bytes;               // per region, for the whole arena
  std::vector<LayerMemory> layers;  // activations row "input" comes first
  std::string ToString() const;
};

class Sequential {
 public:
  explicit Sequential(ThreadPool& pool = ThreadPool::Serial());
  ~Sequential();
  Sequential(const Sequential&) = delete;
  Sequential& operator=(const Sequential&) = delete;

  // Appends a layer named `name`, or "<kind>_<k>" (dense_0, dense_1, relu_0).
  // Before Build only.
  Status Add(std::unique_ptr<Layer> layer, const std::string& name = "");

  // Creates every variable in `arena` (which must outlive the model and is
  // used by it alone), drawing initial values from `seed`. max_batch bounds
  // the batch sizes of Fit, Evaluate and Predict.
  Status Build(size_t input_features, size_t max_batch, Arena* arena,
               uint64_t seed = 0);
  // Chooses the optimizer and the loss. May be called again (a new
  // optimizer, its state starts from zero).
  Status Compile(const OptimizerConfig& optimizer, Loss loss);
  // Changes the optimizer's learning rate, keeping its state.
  Status SetLearningRate(float learning_rate);

  Status Fit(const Examples& train, const FitOptions& options,
             std::vector<EpochResult>* history = nullptr);
  // One training step on examples.count <= max_batch examples.
  Status TrainOnBatch(const Examples& batch, Metrics* metrics = nullptr);
  Status Evaluate(const Examples& examples, size_t batch_size, Metrics* metrics);
  // out[count, output_features()]: probabilities after a final softmax.
  Status Predict(const float* x, size_t count, float* out);

  // The plan of one step for `batch` examples and the current freeze set
  // (training), or of Predict (inference: weights, input and two ping-pong
  // buffers; what an inference-only deployment needs). Runs nothing, places
  // nothing.
  Status PlanMemory(size_t batch, bool training, ModelPlan* plan) const;
  // The same for any freeze set (one bit per variable, as trainable_bits()).
  Status PlanMemory(size_t batch, const Bitmap& trainable, ModelPlan* plan) const;

  size_t num_layers() const { return layers_.size(); }
  Layer& layer(size_t i) { return *layers_[i]; }
  const Layer& layer(size_t i) const { return *layers_[i]; }
  Layer* FindLayer(const std::string& name);
  VariableSet& variables() { return *vars_; }
  const VariableSet& variables() const { return *vars_; }
  size_t input_features() const { return input_features_; }
  size_t output_features() const;
  size_t max_batch() const { return max_batch_; }
  bool built() const { return vars_ != nullptr; }
  // Keras-style table: layer, output width, parameters, trainable.
  std::string Summary() const;

 private:
  struct StepBuffers;
  struct StepLayout;
  enum class Mode { kTrain, kEvaluate, kPredict };

  Status CheckReady(const char* what, bool needs_compile) const;
  Status CheckExamples(const char* what, const Examples& examples) const;
  size_t FirstBackwardLayer(const Bitmap& trainable) const;
  void Layout(size_t batch, Mode mode, size_t first_backward,
              const Bitmap& trainable, StepLayout* out) const;
  void FillPlan(const StepLayout& layout, const Bitmap& trainable, ModelPlan* plan) const;
  // Runs one step on the batch at rows [index[0..count)] of `examples`
  // (rows in order when index is null); fills `out` (Predict) or metrics.
  Status Step(const Examples& examples, const size_t* index, size_t count,
              Mode mode, Metrics* metrics, float* out);

  ThreadPool* pool_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::string> pending_names_;  // names given to Add, used by Build
  Arena* arena_ = nullptr;
  std::unique_ptr<VariableSet> vars_;
  std::unique_ptr<Optimizer> optimizer_;
  Loss loss_ = Loss::kMeanSquaredError;
  bool compiled_ = false;
  bool fused_softmax_ = false;  // the final softmax is fused into the loss
  size_t input_features_ = 0;
  size_t max_batch_ = 0;
  uint64_t steps_ = 0;
  uint64_t arena_token_ = 0;
  // Per-step bookkeeping, sized at Build so that a step never allocates.
  std::unique_ptr<StepLayout> layout_;
  std::unique_ptr<StepBuffers> buffers_;
};

}  // namespace thaw

#endif  // THAW_CORE_API_MODEL_H_
