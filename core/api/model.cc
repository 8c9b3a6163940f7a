#include "core/api/model.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "platform/memory.h"
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

OptimizerConfig OptimizerConfig::Sgd(const SgdOptions& options) {
  OptimizerConfig c;
  c.kind = Kind::kSgd;
  c.sgd = options;
  return c;
}

OptimizerConfig OptimizerConfig::Adam(const AdamOptions& options) {
  OptimizerConfig c;
  c.kind = Kind::kAdam;
  c.adam = options;
  return c;
}

OptimizerConfig OptimizerConfig::AdamW(const AdamOptions& options) {
  OptimizerConfig c = Adam(options);
  c.kind = Kind::kAdamW;
  return c;
}

namespace {

bool Classifies(Loss loss) { return loss != Loss::kMeanSquaredError; }
bool UsesLabels(Loss loss) {
  return loss == Loss::kSparseCategoricalCrossentropy ||
         loss == Loss::kSparseCategoricalCrossentropyFromLogits;
}
size_t Bytes(size_t floats) { return AlignUp(floats * sizeof(float)); }

// Whether the layer's last operation is a softmax.
bool EndsInSoftmax(const Layer& layer) {
  if (const auto* dense = dynamic_cast<const Dense*>(&layer)) {
    return dense->activation() == Activation::kSoftmax;
  }
  if (const auto* act = dynamic_cast<const ActivationLayer*>(&layer)) {
    return act->activation() == Activation::kSoftmax;
  }
  return false;
}

bool EndsInSigmoid(const Layer& layer) {
  if (const auto* dense = dynamic_cast<const Dense*>(&layer)) {
    return dense->activation() == Activation::kSigmoid;
  }
  if (const auto* act = dynamic_cast<const ActivationLayer*>(&layer)) {
    return act->activation() == Activation::kSigmoid;
  }
  return false;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

// Sizes (in floats, or bytes for labels) of every transient buffer of one
// step, in allocation order. Computed per step into vectors sized at Build.
struct Sequential::StepLayout {
  explicit StepLayout(size_t layers) : act(layers + 1), state(layers) {}
  Mode mode = Mode::kPredict;
  size_t batch = 0;
  size_t first_backward = 0;  // == num_layers() when no backward pass runs
  size_t input = 0;
  bool input_saved = false;
  std::vector<size_t> act;    // act[i], i in 1..n: floats of a saved a_i, else 0
  std::vector<size_t> state;  // state[i]: saved floats of layer i (dropout masks)
  // Activations nobody reads back alternate between two buffers by the
  // parity of i, as do the gradients da_i; each buffer is sized for its own
  // parity, so a lone unsaved activation costs one buffer, not two.
  size_t ping[2] = {0, 0};
  size_t prefix_state = 0;    // layer state of the frozen prefix (scratch)
  size_t grad[2] = {0, 0};
  size_t layer_scratch = 0;
  size_t label_bytes = 0;
  size_t targets = 0;

  size_t ActivationBytes() const {
    size_t bytes = input_saved ? Bytes(input) : 0;
    for (size_t a : act) bytes += a ? Bytes(a) : 0;
    for (size_t s : state) bytes += s ? Bytes(s) : 0;
    return bytes;
  }
  size_t ScratchBytes() const {
    return (input_saved ? 0 : Bytes(input)) + Bytes(ping[0]) + Bytes(ping[1]) +
           Bytes(prefix_state) + Bytes(grad[0]) + Bytes(grad[1]) + Bytes(layer_scratch) +
           AlignUp(label_bytes) + Bytes(targets);
  }
};

// Pointers into the arena for one step.
struct Sequential::StepBuffers {
  explicit StepBuffers(size_t layers) : act(layers + 1), state(layers) {}
  std::vector<float*> act;    // a_0 .. a_n
  std::vector<float*> state;  // per layer
  float* grad[2] = {nullptr, nullptr};
  float* scratch = nullptr;
  int32_t* labels = nullptr;
  float* targets = nullptr;
};

Sequential::Sequential(ThreadPool& pool) : pool_(&pool) {}
Sequential::~Sequential() = default;

Status Sequential::Add(std::unique_ptr<Layer> layer, const std::string& name) {
  if (built()) {
    return FailedPrecondition("Sequential::Add: the model is already built; add layers before Build");
  }
  if (layer == nullptr) return InvalidArgument("Sequential::Add: the layer is null");
  std::string chosen = name;
  if (chosen.empty()) {
    int same_kind = 0;
    for (const auto& l : layers_) same_kind += std::strcmp(l->kind(), layer->kind()) == 0;
    chosen = std::string(layer->kind()) + "_" + std::to_string(same_kind);
  }
  if (FindLayer(chosen) != nullptr || chosen.find('.') != std::string::npos) {
    return InvalidArgument("%s: a layer name must be unique and contain no '.'", chosen.c_str());
  }
  // The name is set by Build; keep it until then.
  layers_.push_back(std::move(layer));
  pending_names_.push_back(chosen);
  return Status::Ok();
}

Layer* Sequential::FindLayer(const std::string& name) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string& n = built() ? layers_[i]->name() : pending_names_[i];
    if (n == name) return layers_[i].get();
  }
  return nullptr;
}

size_t Sequential::output_features() const {
  return layers_.empty() ? input_features_ : layers_.back()->output_features();
}

Status Sequential::Build(size_t input_features, size_t max_batch, Arena* arena,
                         uint64_t seed) {
  if (built()) return FailedPrecondition("Sequential::Build: the model is already built");
  if (layers_.empty()) return InvalidArgument("Sequential::Build: the model has no layers");
  if (input_features == 0 || max_batch == 0) {
    return InvalidArgument("Sequential::Build: input_features (%zu) and max_batch (%zu) must be positive",
                           input_features, max_batch);
  }
  if (arena == nullptr || arena->data() == nullptr) {
    return InvalidArgument("Sequential::Build: the arena is empty");
  }
  auto vars = std::make_unique<VariableSet>(arena);
  Random rng(seed);
  size_t features = input_features;
  for (size_t i = 0; i < layers_.size(); ++i) {
    THAW_RETURN_IF_ERROR(layers_[i]->Build(pending_names_[i], features, vars.get(), rng));
    features = layers_[i]->output_features();
  }
  arena_ = arena;
  vars_ = std::move(vars);
  input_features_ = input_features;
  max_batch_ = max_batch;
  arena_token_ = Arena::NewOwnerToken();
  // Size the per-step bookkeeping once, so a step never allocates.
  layout_ = std::make_unique<StepLayout>(layers_.size());
  buffers_ = std::make_unique<StepBuffers>(layers_.size());
  return Status::Ok();
}

Status Sequential::Compile(const OptimizerConfig& config, Loss loss) {
  if (!built()) return FailedPrecondition("Sequential::Compile: build the model first");
  const Layer& last = *layers_.back();
  const size_t outputs = output_features();
  if (loss == Loss::kSparseCategoricalCrossentropy && !EndsInSoftmax(last)) {
    return InvalidArgument(
        "loss %s takes probabilities from a final softmax, but the model ends in "
        "'%s'; end the model in softmax or use the from-logits loss",
        LossName(loss), last.name().c_str());
  }
  if (loss == Loss::kSparseCategoricalCrossentropyFromLogits && EndsInSoftmax(last)) {
    return InvalidArgument(
        "loss %s takes logits, but the model ends in a softmax ('%s'); use "
        "kSparseCategoricalCrossentropy, which fuses the softmax into the loss",
        LossName(loss), last.name().c_str());
  }
  if (loss == Loss::kBinaryCrossentropyFromLogits && EndsInSigmoid(last)) {
    return InvalidArgument(
        "loss %s takes logits, but the model ends in a sigmoid ('%s'); remove "
        "the sigmoid (the loss applies it, stably)",
        LossName(loss), last.name().c_str());
  }
  if (UsesLabels(loss) && outputs < 2) {
    return InvalidArgument("loss %s needs at least 2 output classes; the model has %zu",
                           LossName(loss), outputs);
  }
  optimizer_.reset();  // detach the old one before the new one attaches
  switch (config.kind) {
    case OptimizerConfig::Kind::kSgd:
      optimizer_ = std::make_unique<SGD>(vars_.get(), config.sgd, *pool_);
      break;
    case OptimizerConfig::Kind::kAdam:
      optimizer_ = std::make_unique<Adam>(vars_.get(), config.adam, *pool_);
      break;
    case OptimizerConfig::Kind::kAdamW:
      optimizer_ = std::make_unique<AdamW>(vars_.get(), config.adam, *pool_);
      break;
  }
  loss_ = loss;
  fused_softmax_ = loss == Loss::kSparseCategoricalCrossentropy;
  compiled_ = true;
  return Status::Ok();
}

Status Sequential::SetLearningRate(float learning_rate) {
  THAW_RETURN_IF_ERROR(CheckReady("SetLearningRate", true));
  if (!(learning_rate >= 0.0f) || !std::isfinite(learning_rate)) {
    return InvalidArgument("SetLearningRate: %g is not a finite, non-negative rate", learning_rate);
  }
  optimizer_->SetLearningRate(learning_rate);
  return Status::Ok();
}

Status Sequential::CheckReady(const char* what, bool needs_compile) const {
  if (!built()) return FailedPrecondition("%s: build the model first", what);
  if (needs_compile && !compiled_) return FailedPrecondition("%s: compile the model first", what);
  return Status::Ok();
}

Status Sequential::CheckExamples(const char* what, const Examples& e) const {
  if (e.count == 0) return Status::Ok();
  if (e.x == nullptr) return InvalidArgument("%s: the examples have no inputs (x is null)", what);
  if (UsesLabels(loss_)) {
    if (e.labels == nullptr) {
      return InvalidArgument("%s: loss %s needs integer labels (Examples::labels)", what, LossName(loss_));
    }
    const size_t classes = output_features();
    for (size_t i = 0; i < e.count; ++i) {
      if (e.labels[i] < 0 || static_cast<size_t>(e.labels[i]) >= classes) {
        return InvalidArgument("%s: label %d of example %zu is outside [0, %zu)", what,
                               e.labels[i], i, classes);
      }
    }
  } else if (e.targets == nullptr) {
    return InvalidArgument("%s: loss %s needs targets (Examples::targets)", what, LossName(loss_));
  }
  return Status::Ok();
}

size_t Sequential::FirstBackwardLayer(const Bitmap& trainable) const {
  for (size_t i = 0; i < layers_.size(); ++i) {
    for (const Variable& v : layers_[i]->variables()) {
      if (trainable.Test(v.index())) return i;
    }
  }
  return layers_.size();
}

// The buffers of one step. a_i is the input of layer i (a_0 the batch, a_n
// the output). Training keeps a_i only when the backward pass reads it:
// layer i needs its input, or layer i-1 its output, and that layer is at or
// after the first trainable one. Every other a_i lives in one of two
// ping-pong buffers. The backward pass passes gradients through two more.
void Sequential::Layout(size_t batch, Mode mode, size_t first_backward,
                        const Bitmap& trainable, StepLayout* out) const {
  const size_t n = layers_.size();
  const bool training = mode == Mode::kTrain;
  const size_t f = training ? first_backward : n;
  out->mode = mode;
  out->batch = batch;
  out->first_backward = f;
  out->input = batch * input_features_;
  out->input_saved = training && f == 0 && n > 0 && layers_[0]->BackwardNeedsInput(trainable);
  out->ping[0] = out->ping[1] = 0;
  out->prefix_state = 0;
  out->grad[0] = out->grad[1] = 0;
  out->layer_scratch = 0;
  out->act[0] = 0;
  for (size_t i = 1; i <= n; ++i) {
    const size_t floats = batch * layers_[i - 1]->output_features();
    const bool read_as_input = i < n && i >= f && layers_[i]->BackwardNeedsInput(trainable);
    // A final softmax fused into the loss is not differentiated: its output
    // is not read.
    const bool fused_last = fused_softmax_ && i == n;
    const bool read_as_output =
        i - 1 >= f && f < n && !fused_last && layers_[i - 1]->BackwardNeedsOutput();
    const bool saved = training && (read_as_input || read_as_output);
    out->act[i] = saved ? floats : 0;
    if (!saved) out->ping[i % 2] = std::max(out->ping[i % 2], floats);
    if (training && i > f) out->grad[i % 2] = std::max(out->grad[i % 2], floats);
  }
  for (size_t i = 0; i < n; ++i) {
    const Layer& layer = *layers_[i];
    const size_t state = training ? layer.SavedFloats(batch) : 0;
    out->state[i] = i >= f ? state : 0;
    if (i < f) out->prefix_state = std::max(out->prefix_state, state);
    out->layer_scratch = std::max(
        out->layer_scratch, layer.ScratchFloats(batch, pool_->num_threads(), training && i >= f));
  }
  out->label_bytes = 0;
  out->targets = 0;
  if (mode != Mode::kPredict) {
    if (UsesLabels(loss_)) {
      out->label_bytes = batch * sizeof(int32_t);
    } else {
      out->targets = batch * output_features();
    }
  }
}

Status Sequential::PlanMemory(size_t batch, bool training, ModelPlan* plan) const {
  THAW_RETURN_IF_ERROR(CheckReady("PlanMemory", false));
  if (training) return PlanMemory(batch, vars_->trainable_bits(), plan);
  // Inference: weights, the input and two ping-pong buffers; no gradients.
  StepLayout layout(layers_.size());
  Layout(batch, Mode::kPredict, layers_.size(), vars_->trainable_bits(), &layout);
  FillPlan(layout, vars_->trainable_bits(), plan);
  return Status::Ok();
}

Status Sequential::PlanMemory(size_t batch, const Bitmap& trainable, ModelPlan* plan) const {
  THAW_RETURN_IF_ERROR(CheckReady("PlanMemory", false));
  if (trainable.size() != static_cast<size_t>(vars_->size())) {
    return InvalidArgument("PlanMemory: the freeze set has %zu bits; the model has %d variables",
                           trainable.size(), vars_->size());
  }
  StepLayout layout(layers_.size());
  Layout(batch, Mode::kTrain, FirstBackwardLayer(trainable), trainable, &layout);
  FillPlan(layout, trainable, plan);
  return Status::Ok();
}

void Sequential::FillPlan(const StepLayout& layout, const Bitmap& trainable, ModelPlan* plan) const {
  plan->batch = layout.batch;
  plan->training = layout.mode == Mode::kTrain;
  plan->first_backward_layer = layout.first_backward;
  plan->bytes = vars_->PlannedBytes(trainable);
  if (!plan->training) {
    plan->bytes.bytes[static_cast<int>(Region::kGradients)] = 0;
    plan->bytes.bytes[static_cast<int>(Region::kOptimizerState)] = 0;
  }
  plan->bytes.bytes[static_cast<int>(Region::kActivations)] = layout.ActivationBytes();
  plan->bytes.bytes[static_cast<int>(Region::kScratch)] = layout.ScratchBytes();
  plan->layers.clear();
  LayerMemory input;
  input.name = "input";
  input.activations = layout.input_saved ? Bytes(layout.input) : 0;
  plan->layers.push_back(input);
  const int slots = vars_->optimizer_slots();
  for (size_t i = 0; i < layers_.size(); ++i) {
    LayerMemory m;
    m.name = layers_[i]->name();
    for (const Variable& v : layers_[i]->variables()) {
      const size_t bytes = Bytes(v.shape().num_elements());
      m.weights += bytes;
      if (plan->training && trainable.Test(v.index())) {
        m.gradients += bytes;
        m.optimizer_state += bytes * slots;
      }
    }
    m.activations = (layout.act[i + 1] ? Bytes(layout.act[i + 1]) : 0) +
                    (layout.state[i] ? Bytes(layout.state[i]) : 0);
    plan->layers.push_back(m);
  }
}

std::string ModelPlan::ToString() const {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof(line), "%-16s %12s %12s %12s %12s\n", "layer", "weights",
                "gradients", "opt. state", "activations");
  out += line;
  for (const LayerMemory& m : layers) {
    std::snprintf(line, sizeof(line), "%-16s %12zu %12zu %12zu %12zu\n", m.name.c_str(),
                  m.weights, m.gradients, m.optimizer_state, m.activations);
    out += line;
  }
  std::snprintf(line, sizeof(line), "%-16s %12zu %12zu %12zu %12zu   scratch %zu, total %zu bytes\n",
                "total", bytes[Region::kWeights], bytes[Region::kGradients],
                bytes[Region::kOptimizerState], bytes[Region::kActivations],
                bytes[Region::kScratch], bytes.total());
  return out + line;
}

std::string Sequential::Summary() const {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof(line), "%-16s %-10s %8s %10s  %s\n", "layer", "kind", "outputs",
                "params", "trainable");
  out += line;
  size_t total = 0, trainable = 0;
  for (const auto& layer : layers_) {
    size_t params = 0, layer_trainable = 0;
    for (const Variable& v : layer->variables()) {
      params += v.shape().num_elements();
      if (v.trainable()) layer_trainable += v.shape().num_elements();
    }
    total += params;
    trainable += layer_trainable;
    std::snprintf(line, sizeof(line), "%-16s %-10s %8zu %10zu  %s\n", layer->name().c_str(),
                  layer->kind(), layer->output_features(), params,
                  layer->variables().empty() ? "-" : layer->trainable() ? "yes" : "no");
    out += line;
  }
  std::snprintf(line, sizeof(line), "parameters: %zu (trainable %zu, frozen %zu)\n", total,
                trainable, total - trainable);
  return out + line;
}

Status Sequential::Step(const Examples& examples, const size_t* index, size_t batch,
                        Mode mode, Metrics* metrics, float* out) {
  const size_t n = layers_.size();
  const Bitmap& trainable = vars_->trainable_bits();
  StepLayout& layout = *layout_;
  Layout(batch, mode, FirstBackwardLayer(trainable), trainable, &layout);
  const size_t f = layout.first_backward;
  const bool training = mode == Mode::kTrain;

  // 1. Check that the whole step fits before anything moves.
  const MemoryReport persistent = vars_->PlannedBytes(trainable);
  const size_t transient = layout.ActivationBytes() + layout.ScratchBytes();
  const size_t needed = persistent.total() + transient;
  if (needed > arena_->capacity()) {
    return ResourceExhausted(
        "a %s step for %zu examples with this freeze set needs %zu bytes (weights %zu, "
        "gradients %zu, optimizer state %zu, activations %zu, scratch %zu), but the arena "
        "holds %zu; nothing was changed: use a smaller batch, freeze more layers, or give "
        "the arena more memory",
        training ? "training" : "inference", batch, needed, persistent[Region::kWeights],
        persistent[Region::kGradients], persistent[Region::kOptimizerState],
        layout.ActivationBytes(), layout.ScratchBytes(), arena_->capacity());
  }
  // 2. Freeze changes take effect here.
  THAW_RETURN_IF_ERROR(vars_->Prepare());

  // 3. Point every buffer into the transient part, in plan order.
  Arena& arena = *arena_;
  arena.ClaimTransient(arena_token_);
  StepBuffers& buf = *buffers_;
  auto take = [&](size_t floats, Region region) -> float* {
    if (floats == 0) return nullptr;
    float* p = static_cast<float*>(arena.AllocateTransient(floats * sizeof(float), region));
    THAW_CHECK(p != nullptr);  // the fit was checked above
    return p;
  };
  buf.act[0] = take(layout.input, layout.input_saved ? Region::kActivations : Region::kScratch);
  for (size_t i = 1; i <= n; ++i) buf.act[i] = take(layout.act[i], Region::kActivations);
  for (size_t i = 0; i < n; ++i) buf.state[i] = take(layout.state[i], Region::kActivations);
  float* ping[2] = {take(layout.ping[0], Region::kScratch),
                    take(layout.ping[1], Region::kScratch)};
  float* prefix_state = take(layout.prefix_state, Region::kScratch);
  buf.grad[0] = take(layout.grad[0], Region::kScratch);
  buf.grad[1] = take(layout.grad[1], Region::kScratch);
  buf.scratch = take(layout.layer_scratch, Region::kScratch);
  buf.labels = layout.label_bytes ? static_cast<int32_t*>(arena.AllocateTransient(
                                        layout.label_bytes, Region::kScratch))
                                  : nullptr;
  buf.targets = take(layout.targets, Region::kScratch);
  for (size_t i = 1; i <= n; ++i) {
    if (buf.act[i] == nullptr) buf.act[i] = ping[i % 2];
  }

  // 4. Gather the batch. Consecutive examples are read where they are (the
  // step only reads its input); a shuffled batch is copied into the arena.
  const size_t in = input_features_, outputs = output_features();
  const float* input = index != nullptr ? buf.act[0] : examples.x;
  for (size_t r = 0; r < batch; ++r) {
    const size_t row = index != nullptr ? index[r] : r;
    if (index != nullptr) {
      std::memcpy(buf.act[0] + r * in, examples.x + row * in, in * sizeof(float));
    }
    if (buf.labels != nullptr) buf.labels[r] = examples.labels[row];
    if (buf.targets != nullptr) {
      std::memcpy(buf.targets + r * outputs, examples.targets + row * outputs,
                  outputs * sizeof(float));
    }
  }

  // 5. Forward.
  LayerContext ctx;
  ctx.pool = pool_;
  ctx.training = training;
  ctx.step = steps_;
  ctx.scratch = buf.scratch;
  const bool fuse = fused_softmax_ && mode != Mode::kPredict;
  for (size_t i = 0; i < n; ++i) {
    ctx.saved = buf.state[i] != nullptr ? buf.state[i] : prefix_state;
    ctx.skip_softmax = fuse && i == n - 1;
    layers_[i]->Forward(i == 0 ? input : buf.act[i], buf.act[i + 1], batch, ctx);
  }
  float* output = buf.act[n];
  if (mode == Mode::kPredict) {
    std::memcpy(out, output, batch * outputs * sizeof(float));
    return Status::Ok();
  }

  // 6. Loss, accuracy and the output gradient.
  float* doutput = training && f < n ? buf.grad[n % 2] : nullptr;
  const float scale = 1.0f / static_cast<float>(UsesLabels(loss_) ? batch : batch * outputs);
  double loss_sum = 0.0;
  size_t correct = 0;
  switch (loss_) {
    case Loss::kSparseCategoricalCrossentropy:
    case Loss::kSparseCategoricalCrossentropyFromLogits:
      loss_sum = simd::SoftmaxCrossEntropy(output, buf.labels, batch, outputs, nullptr,
                                           doutput, 1.0f / static_cast<float>(batch));
      for (size_t r = 0; r < batch; ++r) {
        const float* row = output + r * outputs;
        correct += static_cast<size_t>(std::max_element(row, row + outputs) - row) ==
                   static_cast<size_t>(buf.labels[r]);
      }
      break;
    case Loss::kBinaryCrossentropyFromLogits:
      loss_sum = simd::BinaryCrossEntropyWithLogits(output, buf.targets, batch * outputs,
                                                    doutput, scale) / outputs;
      for (size_t i = 0; i < batch * outputs; ++i) {
        correct += (output[i] > 0.0f) == (buf.targets[i] > 0.5f);
      }
      break;
    case Loss::kMeanSquaredError:
      loss_sum = simd::SquaredError(output, buf.targets, batch * outputs, doutput, scale) / outputs;
      break;
  }
  if (metrics != nullptr) {
    metrics->count = batch;
    metrics->loss = loss_sum / static_cast<double>(batch);
    metrics->accuracy = !Classifies(loss_) ? std::numeric_limits<double>::quiet_NaN()
                        : loss_ == Loss::kBinaryCrossentropyFromLogits
                            ? static_cast<double>(correct) / static_cast<double>(batch * outputs)
                            : static_cast<double>(correct) / static_cast<double>(batch);
  }
  if (!training) return Status::Ok();

  // 7. Backward down to the first trainable layer, then the update.
  for (size_t i = n; i-- > f;) {
    ctx.saved = buf.state[i];
    ctx.skip_softmax = fuse && i == n - 1;
    float* dx = i > f ? buf.grad[i % 2] : nullptr;
    layers_[i]->Backward(i == 0 ? input : buf.act[i], buf.act[i + 1], buf.grad[(i + 1) % 2], dx,
                         batch, ctx);
  }
  ++steps_;
  if (f == n) return Status::Ok();  // nothing is trainable
  return optimizer_->ApplyOwnGradients();
}

Status Sequential::TrainOnBatch(const Examples& batch, Metrics* metrics) {
  THAW_RETURN_IF_ERROR(CheckReady("TrainOnBatch", true));
  if (batch.count == 0 || batch.count > max_batch_) {
    return InvalidArgument("TrainOnBatch: %zu examples; a batch holds 1 to %zu (max_batch)",
                           batch.count, max_batch_);
  }
  THAW_RETURN_IF_ERROR(CheckExamples("TrainOnBatch", batch));
  return Step(batch, nullptr, batch.count, Mode::kTrain, metrics, nullptr);
}

Status Sequential::Evaluate(const Examples& examples, size_t batch_size, Metrics* metrics) {
  THAW_RETURN_IF_ERROR(CheckReady("Evaluate", true));
  if (batch_size == 0 || batch_size > max_batch_) {
    return InvalidArgument("Evaluate: batch size %zu is outside [1, %zu] (max_batch)", batch_size,
                           max_batch_);
  }
  THAW_RETURN_IF_ERROR(CheckExamples("Evaluate", examples));
  double loss = 0.0, accuracy = 0.0;
  for (size_t begin = 0; begin < examples.count; begin += batch_size) {
    const size_t count = std::min(batch_size, examples.count - begin);
    Examples part = examples;
    part.x += begin * input_features_;
    if (part.labels != nullptr) part.labels += begin;
    if (part.targets != nullptr) part.targets += begin * output_features();
    Metrics m;
    THAW_RETURN_IF_ERROR(Step(part, nullptr, count, Mode::kEvaluate, &m, nullptr));
    loss += m.loss * count;
    accuracy += m.accuracy * count;
  }
  const double count = static_cast<double>(examples.count);
  metrics->count = examples.count;
  metrics->loss = examples.count ? loss / count : 0.0;
  metrics->accuracy = examples.count ? accuracy / count : 0.0;
  return Status::Ok();
}

Status Sequential::Predict(const float* x, size_t count, float* out) {
  THAW_RETURN_IF_ERROR(CheckReady("Predict", false));
  if (count > 0 && (x == nullptr || out == nullptr)) {
    return InvalidArgument("Predict: x and out must not be null");
  }
  Examples examples;
  examples.x = x;
  examples.count = count;
  for (size_t begin = 0; begin < count; begin += max_batch_) {
    const size_t rows = std::min(max_batch_, count - begin);
    Examples part = examples;
    part.x += begin * input_features_;
    THAW_RETURN_IF_ERROR(
        Step(part, nullptr, rows, Mode::kPredict, nullptr, out + begin * output_features()));
  }
  return Status::Ok();
}

namespace {

// Keras-like progress: a bar redrawn in place, or one line per epoch.
class Progress {
 public:
  Progress(Verbosity verbosity, int epochs, size_t steps)
      : epochs_(epochs), steps_(steps) {
    bar_ = verbosity == Verbosity::kProgressBar ||
           (verbosity == Verbosity::kAuto && isatty(STDOUT_FILENO));
    silent_ = verbosity == Verbosity::kSilent;
  }
  void StartEpoch(int epoch) {
    if (bar_) std::printf("Epoch %d/%d\n", epoch + 1, epochs_);
    start_ = std::chrono::steady_clock::now();
  }
  void Step(size_t done, const Metrics& running, bool accuracy) {
    if (!bar_ || (done != steps_ && Seconds(last_draw_) < 0.1)) return;
    last_draw_ = std::chrono::steady_clock::now();
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / steps_);
    char bar[kWidth + 1];
    for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '=' : '.';
    if (filled > 0 && filled < kWidth) bar[filled - 1] = '>';
    bar[kWidth] = '\0';
    std::printf("\r%zu/%zu [%s] - %.1fs - loss: %.4f", done, steps_, bar, Seconds(start_),
                running.loss);
    if (accuracy) std::printf(" - accuracy: %.4f", running.accuracy);
    std::fflush(stdout);
  }
  void EndEpoch(int epoch, const EpochResult& r, bool accuracy) {
    if (silent_) return;
    if (bar_) {
      std::printf("\r%zu/%zu [==============================] - %.1fs %.3gms/step - loss: %.4f",
                  steps_, steps_, r.seconds, 1e3 * r.step_seconds / r.steps, r.train.loss);
    } else {
      std::printf("Epoch %d/%d - %zu steps - %.2fs - loss: %.4f", epoch + 1, epochs_, steps_,
                  r.seconds, r.train.loss);
    }
    if (accuracy) std::printf(" - accuracy: %.4f", r.train.accuracy);
    if (r.validation.count > 0) {
      std::printf(" - val_loss: %.4f", r.validation.loss);
      if (accuracy) std::printf(" - val_accuracy: %.4f", r.validation.accuracy);
    }
    std::printf("\n");
    std::fflush(stdout);
  }

 private:
  int epochs_;
  size_t steps_;
  bool bar_ = false, silent_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace

Status Sequential::Fit(const Examples& train, const FitOptions& options,
                       std::vector<EpochResult>* history) {
  THAW_RETURN_IF_ERROR(CheckReady("Fit", true));
  if (options.batch_size == 0 || options.batch_size > max_batch_) {
    return InvalidArgument("Fit: batch size %zu is outside [1, %zu] (max_batch)",
                           options.batch_size, max_batch_);
  }
  if (options.epochs < 0) return InvalidArgument("Fit: %d epochs", options.epochs);
  THAW_RETURN_IF_ERROR(CheckExamples("Fit", train));
  if (options.validation != nullptr) {
    THAW_RETURN_IF_ERROR(CheckExamples("Fit (validation)", *options.validation));
  }
  if (train.count == 0) return InvalidArgument("Fit: no training examples");
  // Set up everything that allocates before the first step.
  std::vector<size_t> order(train.count);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Random rng(options.seed);
  const size_t steps = (train.count + options.batch_size - 1) / options.batch_size;
  Progress progress(options.verbose, options.epochs, steps);
  if (history != nullptr) history->reserve(history->size() + options.epochs);
  const bool accuracy = Classifies(loss_);

  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    progress.StartEpoch(epoch);
    const auto epoch_start = std::chrono::steady_clock::now();
    if (options.shuffle) {
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
    }
    EpochResult result;
    Metrics running;
    double loss = 0.0, correct = 0.0;
    for (size_t s = 0; s < steps; ++s) {
      const size_t begin = s * options.batch_size;
      const size_t count = std::min(options.batch_size, train.count - begin);
      Metrics m;
      const auto step_start = std::chrono::steady_clock::now();
      THAW_RETURN_IF_ERROR(Step(train, order.data() + begin, count, Mode::kTrain, &m, nullptr));
      result.step_seconds += Seconds(step_start);
      loss += m.loss * count;
      correct += m.accuracy * count;
      running.loss = loss / (begin + count);
      running.accuracy = correct / (begin + count);
      progress.Step(s + 1, running, accuracy);
    }
    result.steps = steps;
    result.train.count = train.count;
    result.train.loss = loss / train.count;
    result.train.accuracy =
        accuracy ? correct / train.count : std::numeric_limits<double>::quiet_NaN();
    if (options.validation != nullptr && options.validation->count > 0) {
      THAW_RETURN_IF_ERROR(Evaluate(*options.validation, max_batch_, &result.validation));
    }
    result.seconds = Seconds(epoch_start);
    progress.EndEpoch(epoch, result, accuracy);
    if (history != nullptr) history->push_back(result);
  }
  return Status::Ok();
}

}  // namespace thaw
