#include "core/api/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/exec/executor.h"
#include "core/exec/feature_cut.h"
#include "core/graph/op.h"
#include "core/io/safetensors.h"
#include "platform/checked.h"
#include "platform/clock.h"
#include "platform/fingerprint.h"
#include "platform/random.h"
#include "simd/targets.h"

namespace thaw {

// A compiled program and what it was compiled for.
struct CachedProgram {
  Program program;
  bool valid = false;
  size_t batch = 0;
  bool gather = false;
  Bitmap trainable;  // training programs
};

// Two programs per kind of step, so that Fit's last, smaller batch (and
// Evaluate's) does not make the full batch's program recompile every epoch:
// a step takes the slot compiled for it, or recompiles the one it used less
// recently. (Measured on the feature cache's MLP epoch, bench/
// fit_epoch_bench.cc, 16 steps of which the last has 20 examples: 0.53 ms per
// epoch with one slot, 0.47 ms with two; 0.43 ms with 512 examples, no
// partial batch; one compile of that program is ~40 us.)
struct ProgramSlots {
  CachedProgram slot[2];
  int recent = 0;  // the slot the last step of this kind used
  void Invalidate() { slot[0].valid = slot[1].valid = false; }
};

struct Model::Programs {
  ProgramSlots train, evaluate, predict;
  // Fit with the feature cache: the training step after the cut, and the
  // program that computes the cut's values.
  ProgramSlots train_cached, fill;
  Program sizing;  // for fit checks: compiled, never run
  ProgramSlots& For(StepMode mode, CutUse cut) {
    if (cut == CutUse::kProvide) return train_cached;
    if (cut == CutUse::kProduce) return fill;
    return mode == StepMode::kTrain ? train : mode == StepMode::kEvaluate ? evaluate : predict;
  }
};

// Fit's feature cache: the cut, and what its rows were computed from.
struct Model::Cache {
  FeatureCut cut;
  Bitmap trainable;  // the freeze set the cut was chosen for
  bool chosen = false;
  // The rows: valid while `filled` and the arena's tail is still `claim`.
  bool filled = false;
  uint64_t claim = 0;
  size_t count = 0, features = 0;
  uint64_t data_fingerprint = 0, weights_fingerprint = 0;
  int64_t target = 0;           // the SIMD target that computed them
  std::vector<uint64_t> edits;  // per cut.variables(), when filled
  std::vector<float*> arrays;   // per cut value: [count, its floats]
};

// Hands each parameter's gradient to the optimizer in the backward pass
// (OptimizerConfig::update_in_backward), and keeps why and where one was
// refused. Lives on the step's stack.
class BackwardUpdates final : public UpdateHook {
 public:
  explicit BackwardUpdates(Optimizer* optimizer) : optimizer_(optimizer) {}
  bool Update(const Node& node, const int* variables, float* const* grads, int count) override {
    status = optimizer_->ApplyGradientsOf(variables, grads, static_cast<size_t>(count));
    if (status.ok()) return true;
    failed = &node;
    return false;
  }
  Status status;
  const Node* failed = nullptr;

 private:
  Optimizer* optimizer_;
};

const char* CacheStateName(CacheState state) {
  switch (state) {
    case CacheState::kOff: return "off";
    case CacheState::kNothingToCache: return "nothing to cache";
    case CacheState::kNoRoom: return "no room";
    case CacheState::kComputed: return "computed";
    case CacheState::kReused: return "reused";
  }
  return "?";
}

Model::Model(ThreadPool& pool) : pool_(&pool) {}

Model::~Model() {
  // The cache's bytes go back to the arena (the arena outlives the model).
  if (cache_ != nullptr && cache_->claim != 0 && arena_ != nullptr &&
      arena_->tail_claim() == cache_->claim) {
    arena_->ReleaseTail();
  }
}

void Model::Fail(Status status) {
  if (status_.ok()) status_ = std::move(status);
}

// ---- Describing the model ----

Symbol Model::Input(const Shape& shape, Layout layout) {
  if (built() || input_ != nullptr) {
    Fail(FailedPrecondition("Input: the model has its input already; a model takes one"));
    return Symbol();
  }
  size_t bytes = 0;
  if (!shape.Bytes(1, sizeof(float), &bytes) || bytes == 0 || shape.rank() >= kMaxRank) {
    Fail(InvalidArgument("Input: shape %s must have elements, fit in memory and have at most %d "
                         "dimensions", shape.ToString().c_str(), kMaxRank - 1));
    return Symbol();
  }
  Status added = ResourceExhaustedOnBadAlloc("Input", [&] {
    input_ = graph_.AddInput(shape, layout);
    return Status::Ok();
  });
  if (!added.ok()) {
    Fail(added);
    return Symbol();
  }
  return Symbol(this, input_);
}

Status Model::AddLayer(std::unique_ptr<Layer> layer, const std::string& name) {
  if (built()) {
    return FailedPrecondition("the model is already built; add layers before Build");
  }
  if (layer == nullptr) return InvalidArgument("the layer is null");
  return ResourceExhaustedOnBadAlloc("adding a layer", [&] {
    std::string chosen = name;
    if (chosen.empty()) {
      int same_kind = 0;
      for (const auto& l : layers_) same_kind += std::strcmp(l->kind(), layer->kind()) == 0;
      chosen = std::string(layer->kind()) + "_" + std::to_string(same_kind);
    }
    if (FindLayer(chosen) != nullptr || chosen.find('.') != std::string::npos) {
      return InvalidArgument("%s: a layer name must be unique and contain no '.'", chosen.c_str());
    }
    layers_.reserve(layers_.size() + 1);
    layer->name_ = std::move(chosen);
    layers_.push_back(std::move(layer));
    return Status::Ok();
  });
}

Symbol Model::CallLayer(size_t index, Span<const Symbol> inputs) {
  Layer& layer = *layers_[index];
  Value* values[kMaxNodeInputs];
  if (inputs.size() == 0 || inputs.size() > static_cast<size_t>(kMaxNodeInputs)) {
    Fail(InvalidArgument("%s: a layer takes 1 to %d inputs, got %zu", layer.name().c_str(),
                         kMaxNodeInputs, inputs.size()));
    return Symbol();
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].valid() || inputs[i].model_ != this) {
      Fail(InvalidArgument("%s: input %zu %s", layer.name().c_str(), i,
                           inputs[i].valid() ? "belongs to another model"
                                             : "is invalid (it came from a failed call)"));
      return Symbol();
    }
    values[i] = inputs[i].value_;
  }
  Value* out = nullptr;
  // A heap allocation failing part-way leaves the graph half-extended: the
  // model records the error (status()) and cannot be built.
  Status s = ResourceExhaustedOnBadAlloc(layer.name().c_str(), [&] {
    LayerBuilder builder(&graph_, &declared_, layer.name(), static_cast<int>(index));
    return layer.Call(builder, Span<Value* const>(values, inputs.size()), &out);
  });
  if (!s.ok()) {
    Fail(s);
    return Symbol();
  }
  layer.output_ = out;
  return Symbol(this, out);
}

Symbol Model::Call(std::unique_ptr<Layer> layer, Symbol input, const std::string& name) {
  return Call(std::move(layer), Span<const Symbol>(&input, 1), name);
}

Symbol Model::Call(std::unique_ptr<Layer> layer, Span<const Symbol> inputs,
                   const std::string& name) {
  if (!status_.ok()) return Symbol();
  Status added = AddLayer(std::move(layer), name);
  if (!added.ok()) {
    Fail(Status(added.code(), std::string("Call: ") + added.message()));
    return Symbol();
  }
  return CallLayer(layers_.size() - 1, inputs);
}

Layer* Model::FindLayer(const std::string& name) {
  for (const auto& layer : layers_) {
    if (layer->name() == name) return layer.get();
  }
  return nullptr;
}

Status Model::SetTrainable(const std::string& name, bool trainable) {
  Layer* layer = FindLayer(name);
  if (layer == nullptr) {
    std::string names;
    for (const auto& l : layers_) names += (names.empty() ? "" : ", ") + l->name();
    return NotFound("SetTrainable: the model has no layer named \"%s\" (its layers: %s)",
                    name.c_str(), names.c_str());
  }
  // A layer's variables are declared when it is called: at Build for a
  // Sequential model, when added for a functional one.
  if (layer->output() != nullptr) {
    bool parameters = false;
    for (const DeclaredVariable& d : declared_) {
      parameters |= layers_[d.layer].get() == layer && d.role == VariableRole::kParameter;
    }
    if (!parameters) {
      return InvalidArgument("SetTrainable: %s has no parameters to freeze or thaw", name.c_str());
    }
  }
  layer->SetTrainable(trainable);
  return Status::Ok();
}

size_t Model::input_features() const {
  return input_ != nullptr ? input_->shape.num_elements() : 0;
}

size_t Model::output_features() const {
  return output_ != nullptr ? output_->shape.num_elements() : 0;
}

Status Model::Build(Symbol output, size_t max_batch, Arena* arena, uint64_t seed) {
  BuildOptions options;
  options.seed = seed;
  return Build(output, max_batch, arena, options);
}

Status Model::Build(Symbol output, size_t max_batch, Arena* arena, const BuildOptions& options) {
  if (built()) return FailedPrecondition("Build: the model is already built");
  THAW_RETURN_IF_ERROR(status_);
  if (!output.valid() || output.model_ != this) {
    return InvalidArgument("Build: the output is not a tensor of this model");
  }
  if (output.value_ == input_) {
    return InvalidArgument("Build: the output is the input; the model has no layers");
  }
  if (max_batch == 0) return InvalidArgument("Build: max_batch must be positive");
  THAW_RETURN_IF_ERROR(CheckBatch("Build", max_batch));
  if (arena == nullptr || arena->data() == nullptr) {
    return InvalidArgument("Build: the arena is empty");
  }
  THAW_RETURN_IF_ERROR(pool_->status());
  return ResourceExhaustedOnBadAlloc(
      "Build", [&] { return BuildIn(output.value_, max_batch, arena, options); });
}

// A checkpoint's values for the declared variables: what to copy, and the
// bytes each frozen parameter reads in place (null: none).
struct Model::Initial {
  safetensors::Contents contents;
  std::vector<safetensors::VariableCopy> copies;
  std::vector<const float*> in_place;
};

Status Model::ReadInitial(Span<const unsigned char> weights, Initial* initial) const {
  static const char kSource[] = "Build: the weights";
  THAW_RETURN_IF_ERROR(safetensors::Parse(kSource, weights, &initial->contents));
  // Matched against variables sized like the ones Build makes.
  VariableSet sizing(nullptr);
  std::vector<std::vector<Variable>> handles;
  THAW_RETURN_IF_ERROR(CreateVariables(&sizing, nullptr, &handles));
  THAW_RETURN_IF_ERROR(safetensors::MatchVariables(kSource, initial->contents, sizing,
                                                   LoadOptions(), nullptr, &initial->copies));
  initial->in_place.assign(declared_.size(), nullptr);
  for (const safetensors::VariableCopy& copy : initial->copies) {
    const int i = copy.variable;
    const FileFormat& file = sizing.file_format(i);
    const unsigned char* bytes = initial->contents.data + copy.entry->begin;
    if (sizing.role(i) == VariableRole::kParameter && !sizing.trainable(i) && !file.permuted &&
        !file.int64 && copy.entry->dtype == "F32" &&
        reinterpret_cast<uintptr_t>(bytes) % alignof(float) == 0) {
      initial->in_place[i] = reinterpret_cast<const float*>(bytes);
    }
  }
  return Status::Ok();
}

// Build's allocating part. Everything is made in locals first and the model
// takes them only when all are made, with moves and swaps that cannot throw:
// a failure (an arena too small, a heap allocation that throws) leaves the
// model unbuilt and Build can be called again.
Status Model::CreateVariables(VariableSet* vars, const Initial* initial,
                              std::vector<std::vector<Variable>>* handles) const {
  handles->assign(layers_.size(), {});
  for (size_t i = 0; i < declared_.size(); ++i) {
    const DeclaredVariable& d = declared_[i];
    const float* in_place = initial != nullptr ? initial->in_place[i] : nullptr;
    Variable v;
    if (d.role == VariableRole::kStatistic) {
      THAW_RETURN_IF_ERROR(vars->CreateStatistic(d.name, d.shape, &v));
    } else if (in_place != nullptr) {
      THAW_RETURN_IF_ERROR(vars->CreateInPlace(d.name, d.shape, in_place, &v));
    } else {
      THAW_RETURN_IF_ERROR(vars->Create(d.name, d.shape, layers_[d.layer]->trainable_, &v));
    }
    vars->SetFileFormat(v, d.file);
    (*handles)[d.layer].push_back(v);
  }
  return Status::Ok();
}

Status Model::BuildIn(Value* output, size_t max_batch, Arena* arena, const BuildOptions& options) {
  const bool from_weights = options.weights.data() != nullptr;
  Initial initial;
  if (from_weights) THAW_RETURN_IF_ERROR(ReadInitial(options.weights, &initial));
  auto vars = std::make_unique<VariableSet>(arena);
  std::vector<std::vector<Variable>> handles;
  THAW_RETURN_IF_ERROR(CreateVariables(vars.get(), from_weights ? &initial : nullptr, &handles));
  // Size every per-step structure now, so that a step never allocates.
  auto programs = std::make_unique<Programs>();
  for (ProgramSlots* slots : {&programs->train, &programs->evaluate, &programs->predict,
                               &programs->train_cached, &programs->fill}) {
    for (CachedProgram& p : slots->slot) {
      p.program.Reserve(graph_);
      p.trainable = vars->trainable_bits();
    }
  }
  programs->sizing.Reserve(graph_);
  auto cache = std::make_unique<Cache>();
  cache->cut.Reserve(graph_);
  cache->trainable = vars->trainable_bits();
  cache->edits.reserve(graph_.num_values());
  cache->arrays.reserve(graph_.num_values());
  if (from_weights) {
    // The copies; variables in place already have their values.
    auto copied = std::remove_if(initial.copies.begin(), initial.copies.end(),
                                 [&](const safetensors::VariableCopy& c) {
                                   return initial.in_place[c.variable] != nullptr;
                                 });
    initial.copies.erase(copied, initial.copies.end());
    safetensors::CopyVariables(initial.contents, initial.copies, vars.get());
  }
  // ---- Nothing below allocates or fails. ----
  for (size_t l = 0; l < layers_.size(); ++l) layers_[l]->variables_.swap(handles[l]);
  vars_ = std::move(vars);
  programs_ = std::move(programs);
  cache_ = std::move(cache);
  if (!from_weights) {
    Random rng(options.seed);
    for (const auto& layer : layers_) layer->ResetParameters(rng);
  }
  arena_ = arena;
  output_ = output;
  max_batch_ = max_batch;
  arena_token_ = Arena::NewOwnerToken();
  return Status::Ok();
}

// ---- Compiling ----

Status Model::Compile(const OptimizerConfig& config, Loss loss) {
  if (!built()) return FailedPrecondition("Compile: build the model first");
  THAW_RETURN_IF_ERROR(CheckOptions(config));
  const Node* last = output_->producer;
  const char* last_name = layers_[last->layer]->name().c_str();
  const Activation final = FinalActivationOf(*last);
  const size_t outputs = output_features();
  if (loss == Loss::kSparseCategoricalCrossentropy && final != Activation::kSoftmax) {
    return InvalidArgument(
        "loss %s takes probabilities from a final softmax, but the model ends in "
        "'%s'; end the model in softmax or use the from-logits loss",
        LossName(loss), last_name);
  }
  if (loss == Loss::kSparseCategoricalCrossentropyFromLogits && final == Activation::kSoftmax) {
    return InvalidArgument(
        "loss %s takes logits, but the model ends in a softmax ('%s'); use "
        "kSparseCategoricalCrossentropy, which fuses the softmax into the loss",
        LossName(loss), last_name);
  }
  if (loss == Loss::kBinaryCrossentropyFromLogits && final == Activation::kSigmoid) {
    return InvalidArgument(
        "loss %s takes logits, but the model ends in a sigmoid ('%s'); remove "
        "the sigmoid (the loss applies it, stably)",
        LossName(loss), last_name);
  }
  if (UsesLabels(loss) && outputs < 2) {
    return InvalidArgument("loss %s needs at least 2 output classes; the model has %zu",
                           LossName(loss), outputs);
  }
  compiled_ = false;  // until the new optimizer is in place
  optimizer_.reset();  // detach the old one before the new one attaches
  THAW_RETURN_IF_ERROR(ResourceExhaustedOnBadAlloc("Compile", [&] {
    optimizer_ = MakeOptimizer(config, vars_.get(), *pool_);
    return Status::Ok();
  }));
  loss_ = loss;
  for (ProgramSlots* slots : {&programs_->train, &programs_->evaluate, &programs_->train_cached,
                               &programs_->fill}) {
    slots->Invalidate();
  }
  cache_->chosen = cache_->filled = false;  // the loss may read another value
  compiled_ = true;
  return Status::Ok();
}

Status Model::SetLearningRate(float learning_rate) {
  THAW_RETURN_IF_ERROR(CheckReady("SetLearningRate", true));
  if (!(learning_rate >= 0.0f) || !std::isfinite(learning_rate)) {
    return InvalidArgument("SetLearningRate: %g is not a finite, non-negative rate", learning_rate);
  }
  optimizer_->SetLearningRate(learning_rate);
  return Status::Ok();
}

Status Model::CheckBatch(const char* what, size_t batch) const {
  size_t bytes;
  if (!graph_.ValueBytes(batch, &bytes)) {
    return InvalidArgument("%s: a batch of %zu makes the model's tensors larger than memory can hold",
                           what, batch);
  }
  return Status::Ok();
}

Status Model::CheckReady(const char* what, bool needs_compile) const {
  if (!built()) return FailedPrecondition("%s: build the model first", what);
  if (needs_compile && !compiled_) return FailedPrecondition("%s: compile the model first", what);
  return Status::Ok();
}

Status Model::CheckExamples(const char* what, const Examples& e) const {
  if (e.count == 0) return Status::Ok();
  if (e.x == nullptr) return InvalidArgument("%s: the examples have no inputs (x is null)", what);
  if (e.features != 0 && e.features != input_features()) {
    return InvalidArgument("%s: the examples have %zu elements each, the model's input takes %zu",
                           what, e.features, input_features());
  }
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

// ---- Plans ----

ProgramSpec Model::SpecFor(StepMode mode, size_t batch, bool gather) const {
  return SpecFor(mode, batch, gather, output_, loss_);
}

ProgramSpec Model::SpecFor(StepMode mode, size_t batch, bool gather, Value* output,
                           Loss loss) const {
  ProgramSpec spec;
  spec.mode = mode;
  spec.batch = batch;
  spec.threads = pool_->num_threads();
  spec.gather = gather;
  spec.output_to_caller = mode == StepMode::kPredict;
  spec.input = input_;
  spec.output = output;
  // A softmax fused into the loss: the loss reads the logits, and the
  // softmax node runs only in Predict.
  spec.loss_input = FusesSoftmax(loss) ? output->producer->in[0] : output;
  if (gather && mode != StepMode::kPredict) {
    if (UsesLabels(loss)) {
      spec.label_bytes = sizeof(int32_t);
    } else {
      spec.target_floats = output->shape.num_elements();
    }
  }
  return spec;
}

Status Model::PlanMemory(const PlanOptions& options, ModelPlan* plan) const {
  Value* output = output_;
  if (!built()) {
    // Planning a model being described: it must be one that would build.
    THAW_RETURN_IF_ERROR(status_);
    if (!options.output.valid() || options.output.model_ != this) {
      return InvalidArgument(
          "PlanMemory: before Build, give the output the model will be built with "
          "(PlanOptions::output)");
    }
    if (options.output.value_ == input_) {
      return InvalidArgument("PlanMemory: the output is the input; the model has no layers");
    }
    output = options.output.value_;
  } else if (options.output.valid() && options.output.value_ != output_) {
    return InvalidArgument("PlanMemory: the model is built with another output");
  }
  if (options.batch == 0) return InvalidArgument("PlanMemory: the batch is empty");
  THAW_RETURN_IF_ERROR(CheckBatch("PlanMemory", options.batch));
  if (options.optimizer != nullptr) THAW_RETURN_IF_ERROR(CheckOptions(*options.optimizer));
  // The machine: a target described by data (simd/target_shapes.h), so any
  // target can be planned for on this CPU.
  simd::TargetDescription target;
  const bool other_target = options.target != 0 || options.vector_bits != 0;
  if (other_target) {
    const Status described = simd::DescribeTarget(
        options.target != 0 ? options.target : simd::DispatchedTarget(), options.vector_bits,
        &target);
    if (!described.ok()) return InvalidArgument("PlanMemory: %s", described.message());
  }
  if (options.threads < 0) {
    return InvalidArgument("PlanMemory: %d threads; give 0 for the model's pool, or more",
                           options.threads);
  }
  const Loss loss = options.loss != nullptr ? *options.loss
                    : compiled_                ? loss_
                                               : Loss::kMeanSquaredError;
  return ResourceExhaustedOnBadAlloc("PlanMemory", [&] {
    // Before Build, or for another optimizer, the variables are sized in a
    // set that holds no memory.
    std::unique_ptr<VariableSet> sizing;
    std::unique_ptr<Optimizer> optimizer;
    const VariableSet* vars = vars_.get();
    // Variables read in place take no bytes: those of the built model, or
    // those Build will make from options.weights.
    Initial initial;
    const Initial* values = nullptr;
    if (built()) {
      initial.in_place.assign(declared_.size(), nullptr);
      for (int i = 0; i < vars_->size(); ++i) {
        if (vars_->in_place(i)) initial.in_place[i] = vars_->value_data(i);
      }
      values = &initial;
    } else if (options.weights.data() != nullptr) {
      THAW_RETURN_IF_ERROR(ReadInitial(options.weights, &initial));
      values = &initial;
    }
    std::vector<std::vector<Variable>> handles;
    auto size_variables = [&](VariableSet* set) { return CreateVariables(set, values, &handles); };
    if (!built() || options.optimizer != nullptr) {
      sizing = std::make_unique<VariableSet>(nullptr);
      THAW_RETURN_IF_ERROR(size_variables(sizing.get()));
      if (options.optimizer != nullptr) {
        optimizer = MakeOptimizer(*options.optimizer, sizing.get(), *pool_);
      }
      vars = sizing.get();
    }
    const Bitmap& trainable = options.trainable != nullptr ? *options.trainable
                                                           : vars->trainable_bits();
    if (trainable.size() != static_cast<size_t>(vars->size())) {
      return InvalidArgument("PlanMemory: the freeze set has %zu bits; the model has %d variables",
                             trainable.size(), vars->size());
    }
    // The machine the plan is for.
    simd::ScopedPlanningTarget machine(other_target ? &target : nullptr);
    // A Fit with the feature cache: the cut for this freeze set.
    FeatureCut cut;
    if (options.cache_examples > 0 && options.mode == StepMode::kTrain) {
      cut.Reserve(graph_);
      cut.Choose(graph_, *vars, trainable, input_,
                 SpecFor(StepMode::kTrain, 1, false, output, loss).loss_input);
    }
    const bool cached = !cut.empty();
    size_t cache_bytes = 0;
    for (int v : cut.values()) {
      size_t array = 0;
      if (!CheckedMul(options.cache_examples,
                      graph_.value(v)->shape.num_elements() * sizeof(float), &array) ||
          array > kMaxBytes || !CheckedAdd(cache_bytes, AlignUp(array), &cache_bytes) ||
          cache_bytes > kMaxBytes) {
        return InvalidArgument("PlanMemory: a feature cache of %zu examples (%zu floats each) is "
                               "larger than memory can hold",
                               options.cache_examples, cut.example_floats());
      }
    }
    auto spec = [&](StepMode mode, size_t batch, bool gather, CutUse use) {
      ProgramSpec s = SpecFor(mode, batch, gather, output, loss);
      if (options.threads > 0) s.threads = options.threads;
      s.cut_use = use;
      if (use != CutUse::kNone) s.cut = Span<const int>(cut.values().data(), cut.values().size());
      return s;
    };
    Program program;
    program.Reserve(graph_);
    // The largest transient part of any step this plan covers.
    size_t most = 0;
    auto cover = [&](StepMode mode, size_t batch, bool gather, CutUse use) {
      program.Compile(graph_, *vars, trainable, spec(mode, batch, gather, use));
      most = std::max(most, program.plan().total());
    };
    const CutUse train_use = cached ? CutUse::kProvide : CutUse::kNone;
    for (size_t batch = 1; batch <= options.batch; ++batch) {
      if (options.mode == StepMode::kTrain) cover(StepMode::kTrain, batch, options.gather, train_use);
      if (cached) cover(StepMode::kPredict, batch, false, CutUse::kProduce);  // computing the cache
      if (options.mode != StepMode::kPredict) cover(StepMode::kEvaluate, batch, false, CutUse::kNone);
      cover(StepMode::kPredict, batch, false, CutUse::kNone);
    }
    program.Compile(graph_, *vars, trainable,
                    spec(options.mode, options.batch, options.gather,
                         options.mode == StepMode::kTrain ? train_use : CutUse::kNone));
    FillPlan(program, *vars, trainable, plan);
    plan->cached_values.clear();
    plan->cache_example_floats = cut.example_floats();
    for (int v : cut.values()) {
      const Value& value = *graph_.value(v);
      plan->cached_values.push_back(layers_[value.producer->layer]->name() + " output " +
                                    value.shape.ToString());
    }
    plan->bytes.bytes[static_cast<int>(Region::kFeatureCache)] = cache_bytes;
    plan->bytes.high_water = plan->bytes.total();
    plan->arena_bytes = plan->bytes.total() - program.plan().total() + most;
    plan->after_backward = plan->in_backward = ModelPlan::ModeBytes();
    if (options.mode == StepMode::kTrain) {
      // This step in both modes: the plan's own, and the same step with the
      // optimizer's update the other side of the backward pass (what
      // differs is only whether the variables keep gradient buffers),
      // planned as this one.
      VariableSet other(nullptr);
      THAW_RETURN_IF_ERROR(size_variables(&other));
      other.AttachOptimizer(vars->optimizer_slots(), !vars->gradient_buffers());
      Program flipped;
      flipped.Reserve(graph_);
      flipped.Compile(graph_, other, trainable,
                      spec(StepMode::kTrain, options.batch, options.gather, train_use));
      ModelPlan flipped_plan;
      FillPlan(flipped, other, trainable, &flipped_plan);
      const bool in_backward = plan->update_in_backward;
      ModelPlan::ModeBytes& mine = in_backward ? plan->in_backward : plan->after_backward;
      ModelPlan::ModeBytes& theirs = in_backward ? plan->after_backward : plan->in_backward;
      mine.gradients = plan->bytes[Region::kGradients];
      mine.total = plan->bytes.total();
      theirs.gradients = flipped_plan.bytes[Region::kGradients];
      theirs.total = flipped_plan.bytes.total() + cache_bytes;
    }
    return Status::Ok();
  });
}

Status Model::PlanMemory(size_t batch, bool training, ModelPlan* plan) const {
  PlanOptions options;
  options.batch = batch;
  options.mode = training ? StepMode::kTrain : StepMode::kPredict;
  return PlanMemory(options, plan);
}

Status Model::PlanMemory(size_t batch, const Bitmap& trainable, ModelPlan* plan) const {
  PlanOptions options;
  options.batch = batch;
  options.trainable = &trainable;
  return PlanMemory(options, plan);
}

// Regions and per-layer rows from the two plans: the persistent one (weights
// and, in training, gradients and optimizer state) and the step's.
void Model::FillPlan(const Program& program, const VariableSet& vars, const Bitmap& trainable,
                     ModelPlan* plan) const {
  const ProgramSpec& spec = program.spec();
  const bool training = spec.mode == StepMode::kTrain;
  plan->batch = spec.batch;
  plan->mode = spec.mode;
  plan->gather = spec.gather;
  plan->first_backward_layer = program.first_backward_layer() >= 0
                                   ? static_cast<size_t>(program.first_backward_layer())
                                   : layers_.size();
  plan->layers.assign(layers_.size() + 1, LayerMemory());
  plan->layers[0].name = "input";
  for (size_t i = 0; i < layers_.size(); ++i) plan->layers[i + 1].name = layers_[i]->name();
  MemoryReport& bytes = plan->bytes;
  bytes = MemoryReport();
  const MemoryPlan& persistent = vars.PersistentPlan(trainable);
  for (int b = 0; b < persistent.size(); ++b) {
    const PlannedBuffer& buffer = persistent[b];
    if (!training && buffer.region != Region::kWeights) continue;
    bytes.bytes[static_cast<int>(buffer.region)] += buffer.bytes;
    LayerMemory& row = plan->layers[declared_[buffer.owner].layer + 1];
    (buffer.region == Region::kWeights     ? row.weights
     : buffer.region == Region::kGradients ? row.gradients
                                           : row.optimizer_state) += buffer.bytes;
  }
  const MemoryPlan& step = program.plan();
  const size_t activations = program.activation_bytes();
  plan->update_in_backward = program.update_in_backward();
  bytes.bytes[static_cast<int>(Region::kActivations)] = activations;
  bytes.bytes[static_cast<int>(Region::kGradients)] += program.gradient_bytes();
  bytes.bytes[static_cast<int>(Region::kScratch)] =
      step.total() - activations - program.gradient_bytes();
  plan->step_buffers.clear();
  for (int b = 0; b < step.size(); ++b) {
    const PlannedBuffer& buffer = step[b];
    plan->step_buffers.push_back(buffer);
    if (buffer.region == Region::kGradients) {  // a parameter's, in the backward pass
      plan->layers[declared_[graph_.value(buffer.owner)->variable].layer + 1].gradients +=
          buffer.bytes;
      continue;
    }
    if (buffer.region != Region::kActivations) continue;
    // An activation is a value (its producer's layer; the input) or a node's
    // saved state.
    int layer = -1;
    if (std::strcmp(buffer.what, "saved") == 0) {
      layer = graph_.node(buffer.owner)->layer;
    } else if (const Node* producer = graph_.value(buffer.owner)->producer) {
      layer = producer->layer;
    }
    plan->layers[layer + 1].activations += buffer.bytes;
  }
  bytes.capacity = arena_ != nullptr ? arena_->capacity() : 0;
  bytes.high_water = bytes.total();
}

std::string ModelPlan::ToString() const {
  std::string out;
  char line[160];
  if (mode == StepMode::kTrain) {
    std::snprintf(line, sizeof(line),
                  "update after the backward pass%s: gradients %zu, total %zu bytes\n",
                  update_in_backward ? "" : " (this plan)", after_backward.gradients,
                  after_backward.total);
    out += line;
    std::snprintf(line, sizeof(line),
                  "update in the backward pass%s: gradients %zu (their peak), total %zu bytes\n",
                  update_in_backward ? " (this plan)" : "", in_backward.gradients,
                  in_backward.total);
    out += line;
  }
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
  out += line;
  if (bytes[Region::kFeatureCache] > 0) {
    std::snprintf(line, sizeof(line), "feature cache    %12zu bytes (%zu floats per example):",
                  bytes[Region::kFeatureCache], cache_example_floats);
    out += line;
    for (const std::string& v : cached_values) out += " " + v;
    out += "\n";
  }
  return out;
}

std::string Model::Summary() const {
  std::string out;
  char line[200];
  std::snprintf(line, sizeof(line), "%-16s %-12s %-14s %10s  %s\n", "layer", "kind", "output",
                "params", "trainable");
  out += line;
  size_t total = 0, trainable = 0;
  for (const auto& layer : layers_) {
    size_t params = 0;
    for (const Variable& v : layer->variables()) {
      params += v.shape().num_elements();
      if (v.trainable()) trainable += v.shape().num_elements();
    }
    total += params;
    const std::string shape = layer->output() != nullptr ? layer->output()->shape.ToString() : "?";
    std::snprintf(line, sizeof(line), "%-16s %-12s %-14s %10zu  %s\n", layer->name().c_str(),
                  layer->kind(), shape.c_str(), params,
                  layer->variables().empty() ? "-" : layer->trainable() ? "yes" : "no");
    out += line;
  }
  std::snprintf(line, sizeof(line), "parameters: %zu (trainable %zu, frozen %zu)\n", total,
                trainable, total - trainable);
  return out + line;
}

// ---- Steps ----

Status Model::Step(const Examples& examples, const size_t* index, size_t batch, StepMode mode,
                   Metrics* metrics, float* out, CutUse cut, size_t cache_row) {
  const Bitmap& trainable = vars_->trainable_bits();
  const bool gather = index != nullptr;
  ProgramSlots& slots = programs_->For(mode, cut);
  auto fits = [&](const CachedProgram& c) {
    return c.valid && c.batch == batch && c.gather == gather &&
           ((mode != StepMode::kTrain && cut == CutUse::kNone) || c.trainable == trainable);
  };
  const int k = fits(slots.slot[slots.recent])       ? slots.recent
                : fits(slots.slot[1 - slots.recent]) ? 1 - slots.recent
                                                     : -1;
  slots.recent = k >= 0 ? k : 1 - slots.recent;
  CachedProgram& cached = slots.slot[slots.recent];
  if (k < 0) {
    ProgramSpec spec = SpecFor(mode, batch, gather);
    if (cut != CutUse::kNone) {
      // The cut was chosen for this freeze set (CacheHolds).
      THAW_CHECK(cache_->chosen && cache_->trainable == trainable);
      spec.cut_use = cut;
      spec.cut = Span<const int>(cache_->cut.values().data(), cache_->cut.values().size());
    }
    cached.program.Compile(graph_, *vars_, trainable, spec);
    cached.valid = true;
    cached.batch = batch;
    cached.gather = gather;
    cached.trainable = trainable;  // same size: no allocation
  }
  const Program& program = cached.program;
  for (const Program::ForwardStep& f : program.forward()) {
    Status ok = CheckOf(*f.node, batch, f.training);
    if (!ok.ok()) {
      return Status(ok.code(), layers_[f.node->layer]->name() + ": " + ok.message());
    }
  }

  // 1. Check that the whole step fits before anything moves. Training lays
  // out gradients and optimizer state for the freeze set first; the other
  // steps use what the arena holds now.
  const bool training = mode == StepMode::kTrain;
  MemoryReport persistent;
  if (training) {
    persistent = vars_->PlannedBytes(trainable);
  } else {
    for (int r = 0; r < kNumPersistentRegions; ++r) {
      persistent.bytes[r] = arena_->bytes(static_cast<Region>(r));
    }
  }
  const size_t transient = program.plan().total();
  const size_t activations = program.activation_bytes();
  const size_t gradients = program.gradient_bytes();  // in the backward pass; else 0
  const size_t needed = persistent.total() + transient;
  // A step that uses the cache fits below it: SetUpCache checked these
  // programs; taking its bytes would read (or write) rows no longer there.
  THAW_CHECK(cut == CutUse::kNone || needed + arena_->tail_bytes() <= arena_->capacity());
  if (needed > arena_->capacity()) {
    return ResourceExhausted(
        "%s step for %zu examples with this freeze set needs %zu bytes (weights %zu, "
        "gradients %zu, optimizer state %zu, activations %zu, scratch %zu), but the arena "
        "holds %zu; nothing was changed: use a smaller batch, freeze more layers, or give "
        "the arena more memory",
        training ? "a training" : "an inference", batch, needed,
        persistent[Region::kWeights], persistent[Region::kGradients] + gradients,
        persistent[Region::kOptimizerState], activations, transient - activations - gradients,
        arena_->capacity());
  }
  // 2. Freeze changes take effect here.
  if (training) THAW_RETURN_IF_ERROR(vars_->Prepare());

  // 3. Place the step and run it.
  unsigned char* block = arena_->ClaimPlanned(arena_token_, transient, activations, gradients);
  THAW_CHECK(block != nullptr);  // the fit was checked above
  StepData data;
  data.x = examples.x;
  data.index = index;
  data.labels = examples.labels;
  data.targets = examples.targets;
  data.out = out;
  if (cut != CutUse::kNone) {
    data.cache = cache_->arrays.data();
    data.cache_row = cache_row;
  }
  BackwardUpdates updates(optimizer_.get());  // when the program updates in the backward pass
  const LossResult result =
      RunProgram(program, &graph_, vars_.get(), block,
                 // up to the cache: under ASan the rest of the block is poisoned
                 arena_->capacity() - arena_->tail_bytes() - arena_->persistent_end(), data,
                 loss_, *pool_, steps_, &updates);
  if (mode == StepMode::kPredict) return Status::Ok();
  if (metrics != nullptr) {
    const size_t outputs = output_features();
    metrics->count = batch;
    metrics->loss = result.sum / static_cast<double>(batch);
    metrics->accuracy =
        !Classifies(loss_) ? std::numeric_limits<double>::quiet_NaN()
        : loss_ == Loss::kBinaryCrossentropyFromLogits
            ? static_cast<double>(result.correct) / static_cast<double>(batch * outputs)
            : static_cast<double>(result.correct) / static_cast<double>(batch);
  }
  if (mode != StepMode::kTrain) return Status::Ok();
  // A NaN or infinite loss refuses the step as a non-finite gradient does: a
  // NaN weight or input can leave the gradients finite (a softmax row that
  // drops its NaN logit) while the model is already broken.
  if (!std::isfinite(result.sum)) {
    return InvalidArgument("the loss is %g; nothing was updated. A weight or the inputs hold NaN or "
                           "Inf, or training diverged: check the data, lower the learning rate",
                           result.sum);
  }
  ++steps_;
  if (program.update_in_backward()) {
    if (!updates.status.ok()) return StoppedInBackward(program, *updates.failed, updates.status);
  } else if (!program.stepped().empty()) {  // the loss reaches something trainable
    const std::vector<int>& stepped = program.stepped();
    THAW_RETURN_IF_ERROR(
        optimizer_->ApplyOwnGradients(Span<const int>(stepped.data(), stepped.size())));
  }
  // Only an accepted step moves statistics (BatchNormalization's).
  const Node* failed = nullptr;
  Status committed = CommitProgram(program, block, *pool_, steps_, &failed);
  if (!committed.ok()) {
    return Status(committed.code(), layers_[failed->layer]->name() + ": " + committed.message());
  }
  return Status::Ok();
}

// Runs on the error path only: it may allocate (for the sentence alone).
Status Model::StoppedInBackward(const Program& program, const Node& failed,
                                const Status& why) const {
  if (!THAW_ERROR_STRINGS) return why;  // no sentence to build
  int failed_at = -1;
  for (size_t j = 0; j < program.backward().size(); ++j) {
    if (program.backward()[j].node == &failed) {
      failed_at = program.loss_time() + 1 + static_cast<int>(j);
    }
  }
  THAW_CHECK(failed_at >= 0);  // the hook's node is one of the program's
  std::vector<int> updated;  // layers, in the order of their updates
  for (const Program::Update& u : program.updates()) {
    if (u.time >= failed_at) break;
    const int layer = declared_[u.variable].layer;
    if (std::find(updated.begin(), updated.end(), layer) == updated.end()) updated.push_back(layer);
  }
  const std::string& layer = layers_[failed.layer]->name();
  std::string message = layer + ": " + why.message() +
                        ". The optimizer updates in the backward pass, so the step stopped at "
                        "this layer: ";
  if (updated.empty()) {
    message += "no layer had been updated yet; nothing was changed.";
  } else {
    for (size_t i = 0; i < updated.size(); ++i) {
      message += (i > 0 ? ", '" : "'") + layers_[updated[i]]->name() + "'";
    }
    message += updated.size() > 1 ? " were updated in this step and keep the update; '"
                                  : " was updated in this step and keeps the update; '";
    message += layer +
               "', the layers whose backward pass comes after it and the BatchNorm statistics "
               "were not changed.";
  }
  return Status(why.code(), message);
}

Status Model::TrainOnBatch(const Examples& batch, Metrics* metrics) {
  THAW_RETURN_IF_ERROR(CheckReady("TrainOnBatch", true));
  if (batch.count == 0 || batch.count > max_batch_) {
    return InvalidArgument("TrainOnBatch: %zu examples; a batch holds 1 to %zu (max_batch)",
                           batch.count, max_batch_);
  }
  THAW_RETURN_IF_ERROR(CheckExamples("TrainOnBatch", batch));
  return Step(batch, nullptr, batch.count, StepMode::kTrain, metrics, nullptr);
}

Status Model::Evaluate(const Examples& examples, size_t batch_size, Metrics* metrics) {
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
    part.x += begin * input_features();
    if (part.labels != nullptr) part.labels += begin;
    if (part.targets != nullptr) part.targets += begin * output_features();
    Metrics m;
    THAW_RETURN_IF_ERROR(Step(part, nullptr, count, StepMode::kEvaluate, &m, nullptr));
    loss += m.loss * count;
    accuracy += m.accuracy * count;
  }
  const double count = static_cast<double>(examples.count);
  metrics->count = examples.count;
  metrics->loss = examples.count ? loss / count : 0.0;
  metrics->accuracy = examples.count ? accuracy / count : 0.0;
  return Status::Ok();
}

Status Model::Predict(const float* x, size_t count, float* out) {
  THAW_RETURN_IF_ERROR(CheckReady("Predict", false));
  if (count > 0 && (x == nullptr || out == nullptr)) {
    return InvalidArgument("Predict: x and out must not be null");
  }
  for (size_t begin = 0; begin < count; begin += max_batch_) {
    const size_t rows = std::min(max_batch_, count - begin);
    Examples part;
    part.x = x + begin * input_features();
    part.count = rows;
    THAW_RETURN_IF_ERROR(Step(part, nullptr, rows, StepMode::kPredict, nullptr,
                              out + begin * output_features()));
  }
  return Status::Ok();
}

// ---- The feature cache ----

size_t Model::CachedFitTransient(size_t batch_size, size_t chunk, size_t count, bool gather,
                                 const Examples* validation) {
  Program& sizing = programs_->sizing;
  const Bitmap& trainable = vars_->trainable_bits();
  const Span<const int> cut(cache_->cut.values().data(), cache_->cut.values().size());
  size_t most = 0;
  auto cover = [&](StepMode mode, size_t batch, bool gathered, CutUse use) {
    if (batch == 0) return;
    ProgramSpec spec = SpecFor(mode, batch, gathered);
    spec.cut_use = use;
    if (use != CutUse::kNone) spec.cut = cut;
    sizing.Compile(graph_, *vars_, trainable, spec);
    most = std::max(most, sizing.plan().total());
  };
  // Fit's steps: full batches and the last partial one; the cache is
  // computed in chunks, read in place, and the last chunk may be smaller.
  for (size_t batch : {std::min(batch_size, count), count % batch_size}) {
    cover(StepMode::kTrain, batch, gather, CutUse::kProvide);
  }
  for (size_t batch : {std::min(chunk, count), count % chunk}) {
    cover(StepMode::kPredict, batch, false, CutUse::kProduce);
  }
  if (validation != nullptr && validation->count > 0) {
    const size_t n = validation->count;
    for (size_t batch : {std::min(max_batch_, n), n % max_batch_}) {
      cover(StepMode::kEvaluate, batch, false, CutUse::kNone);
    }
  }
  return most;
}

bool Model::CacheHolds() const {
  const Cache& c = *cache_;
  if (!c.filled || c.claim != arena_->tail_claim() || c.trainable != vars_->trainable_bits()) {
    return false;
  }
  const std::vector<int>& variables = c.cut.variables();
  for (size_t i = 0; i < variables.size(); ++i) {
    if (vars_->edits(variables[i]) != c.edits[i]) return false;
  }
  return true;
}

Status Model::SetUpCache(const Examples& train, const FitOptions& options, FitInfo* info) {
  info->cache = CacheState::kOff;
  info->cache_bytes = 0;
  if (options.feature_cache == CacheMode::kOff) return Status::Ok();
  const bool required = options.feature_cache == CacheMode::kRequired;
  Cache& c = *cache_;
  const Bitmap& trainable = vars_->trainable_bits();
  if (!c.chosen || c.trainable != trainable) {
    c.cut.Choose(graph_, *vars_, trainable, input_, SpecFor(StepMode::kTrain, 1, false).loss_input);
    c.trainable = trainable;  // same size: no allocation
    c.chosen = true;
    c.filled = false;  // rows of another cut
  }
  if (c.cut.empty()) {
    info->cache = CacheState::kNothingToCache;
    if (!required) return Status::Ok();
    return FailedPrecondition(
        "Fit: the feature cache is required, but nothing can be cached: no value computed from the "
        "input by frozen, deterministic layers alone feeds the trainable part (the first trainable "
        "layer reads the input itself, or a layer in training mode such as a Dropout comes first)");
  }
  // The region: per cut value, [examples, its floats], 64-byte aligned.
  const size_t features = input_features();
  size_t bytes = 0;
  bool sized = true;
  for (int v : c.cut.values()) {
    size_t array = 0;
    sized = sized && CheckedMul(train.count, graph_.value(v)->shape.num_elements() * sizeof(float),
                                &array) &&
            array <= kMaxBytes && CheckedAdd(bytes, AlignUp(array), &bytes);
  }
  const size_t persistent = vars_->PlannedBytes(trainable).total();
  // The cache is computed in chunks of the batch size, or of fewer examples
  // when that is what makes it fit: a frozen backbone's forward pass at the
  // full batch can need far more scratch than the steps after the cut (the
  // MobileNet-style demo: 1.6 MB at batch 32, the cached step 12 KB). The
  // rows are the same bits in any chunk.
  size_t chunk = options.batch_size, transient = 0, needed = 0;
  for (;;) {
    transient = CachedFitTransient(options.batch_size, chunk, train.count, options.shuffle,
                                   options.validation);
    const bool fits = sized && CheckedAdd(persistent, transient, &needed) &&
                      CheckedAdd(needed, bytes, &needed) && needed <= arena_->capacity();
    if (fits || chunk == 1 || !sized) break;
    chunk = (chunk + 1) / 2;
  }
  sized = sized && CheckedAdd(persistent, transient, &needed) && CheckedAdd(needed, bytes, &needed);
  if (!sized || needed > arena_->capacity()) {
    info->cache = CacheState::kNoRoom;
    if (!required) return Status::Ok();
    if (!sized) {
      return ResourceExhausted("Fit: the feature cache of %zu examples (%zu floats each) is larger "
                               "than memory can hold",
                               train.count, c.cut.example_floats());
    }
    return ResourceExhausted(
        "Fit: the feature cache needs %zu bytes (%zu examples x %zu floats) next to %zu bytes of "
        "weights, gradients and optimizer state and %zu bytes for the largest step (computing the "
        "cache one example at a time), %zu in all, "
        "but the arena holds %zu; give the arena more memory, or use CacheMode::kAuto to train "
        "without the cache",
        bytes, train.count, c.cut.example_floats(), persistent, transient, needed,
        arena_->capacity());
  }
  // What the rows would be computed from: the examples' inputs and the
  // values of the variables the cut reads.
  const uint64_t data_fingerprint = Fingerprint(train.x, train.count * features * sizeof(float));
  uint64_t weights_fingerprint = 0;
  for (int var : c.cut.variables()) {
    weights_fingerprint = Fingerprint(vars_->value_data(var),
                                      vars_->shape(var).num_elements() * sizeof(float),
                                      weights_fingerprint);
  }
  const int64_t target = simd::DispatchedTarget();
  info->cache_bytes = bytes;
  if (CacheHolds() && arena_->tail_bytes() == bytes && c.count == train.count &&
      c.features == features && c.data_fingerprint == data_fingerprint &&
      c.weights_fingerprint == weights_fingerprint && c.target == target) {
    info->cache = CacheState::kReused;
    return Status::Ok();
  }
  // Compute it. The persistent part first takes its training layout, so
  // that no step moves it into the cache's bytes.
  c.filled = false;
  Status prepared = vars_->Prepare();
  if (!prepared.ok()) {
    info->cache = CacheState::kNoRoom;
    info->cache_bytes = 0;
    return required ? prepared : Status::Ok();  // the first step says it again
  }
  arena_->ClaimTransient(arena_token_);  // between steps the transient part is the model's
  if (c.claim == 0 || c.claim != arena_->tail_claim() || arena_->tail_bytes() != bytes) {
    if (c.claim != 0 && c.claim == arena_->tail_claim()) arena_->ReleaseTail();
    c.claim = arena_->ClaimTail(bytes);
    THAW_CHECK(c.claim != 0);  // the fit was checked above
  }
  c.arrays.clear();
  unsigned char* at = arena_->tail();
  for (int v : c.cut.values()) {
    c.arrays.push_back(reinterpret_cast<float*>(at));
    at += AlignUp(train.count * graph_.value(v)->shape.num_elements() * sizeof(float));
  }
  for (size_t begin = 0; begin < train.count; begin += chunk) {
    const size_t count = std::min(chunk, train.count - begin);
    Examples part = train;
    part.x += begin * features;
    THAW_RETURN_IF_ERROR(
        Step(part, nullptr, count, StepMode::kPredict, nullptr, nullptr, CutUse::kProduce, begin));
  }
  c.count = train.count;
  c.features = features;
  c.data_fingerprint = data_fingerprint;
  c.weights_fingerprint = weights_fingerprint;
  c.target = target;
  c.edits.clear();
  for (int var : c.cut.variables()) c.edits.push_back(vars_->edits(var));
  c.filled = true;
  info->cache = CacheState::kComputed;
  return Status::Ok();
}

Status Model::Fit(const Examples& train, const FitOptions& options,
                  std::vector<EpochResult>* history) {
  return ResourceExhaustedOnBadAlloc("Fit", [&] { return FitIn(train, options, history); });
}

Status Model::FitIn(const Examples& train, const FitOptions& options,
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
  FitInfo info;
  info.epochs = options.epochs;
  info.steps = (train.count + options.batch_size - 1) / options.batch_size;
  info.accuracy = Classifies(loss_);
  if (options.feature_cache != CacheMode::kOff && options.feature_cache != CacheMode::kAuto &&
      options.feature_cache != CacheMode::kRequired) {
    return InvalidArgument("Fit: feature_cache %d is not a CacheMode",
                           static_cast<int>(options.feature_cache));
  }
  FitPosition start;
  if (options.resume != nullptr) {
    start = *options.resume;
    if (start.epoch < 0 || start.epoch > options.epochs || start.step >= info.steps) {
      return InvalidArgument("Fit: cannot resume at epoch %d, step %zu: the run has %d epochs of "
                             "%zu steps (the same examples and options as the stopped run?)",
                             start.epoch + 1, start.step + 1, options.epochs, info.steps);
    }
  }
  // The feature cache: checked, reused or computed before the first step.
  THAW_RETURN_IF_ERROR(SetUpCache(train, options, &info));
  const bool cache_on = info.cache == CacheState::kComputed || info.cache == CacheState::kReused;
  // Set up everything that allocates before the first step.
  std::vector<size_t> order;
  if (options.shuffle) {
    order.resize(train.count);
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  }
  Random rng(options.seed);
  // Each epoch shuffles the order the one before left.
  auto shuffle = [&] {
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
  };
  // Resuming: the shuffles of the epochs before replay, so the order is the
  // stopped run's.
  for (int epoch = 0; options.shuffle && epoch < start.epoch; ++epoch) shuffle();
  if (history != nullptr) history->reserve(history->size() + options.epochs);
  FitCallback* callback = options.callback;
  if (callback != nullptr) callback->OnTrainBegin(info);

  for (int epoch = start.epoch; epoch < options.epochs; ++epoch) {
    if (callback != nullptr) callback->OnEpochBegin(epoch);
    const double epoch_start = MonotonicSeconds();
    if (options.shuffle) shuffle();
    EpochResult result;
    Metrics running;
    const bool resumed = epoch == start.epoch;
    double loss = resumed ? start.loss_sum : 0.0, correct = resumed ? start.correct_sum : 0.0;
    for (size_t s = resumed ? start.step : 0; s < info.steps; ++s) {
      const size_t begin = s * options.batch_size;
      const size_t count = std::min(options.batch_size, train.count - begin);
      Metrics m;
      const double step_start = MonotonicSeconds();
      Status stepped;
      // The bits are the same either way: a step that cannot use the cache
      // (a callback changed the freeze set or a prefix variable) runs whole.
      const CutUse cut = cache_on && CacheHolds() ? CutUse::kProvide : CutUse::kNone;
      if (options.shuffle) {
        stepped = Step(train, order.data() + begin, count, StepMode::kTrain, &m, nullptr, cut);
      } else {
        Examples part = train;
        part.x += begin * input_features();
        if (part.labels != nullptr) part.labels += begin;
        if (part.targets != nullptr) part.targets += begin * output_features();
        stepped = Step(part, nullptr, count, StepMode::kTrain, &m, nullptr, cut, begin);
      }
      auto stopped = [&](const Status& why) {
        char where[96];
        std::snprintf(where, sizeof(where), "Fit: epoch %d, step %zu of %zu: ", epoch + 1, s + 1,
                      info.steps);
        return Status(why.code(), std::string(where) + why.message());
      };
      if (!stepped.ok()) return stopped(stepped);  // the weights: the last accepted step's
      result.step_seconds += MonotonicSeconds() - step_start;
      loss += m.loss * count;
      correct += m.accuracy * count;
      running.count = begin + count;
      running.loss = loss / (begin + count);
      running.accuracy = correct / (begin + count);
      if (callback != nullptr) {
        callback->OnBatchEnd(s + 1, running);
        FitPosition next;
        next.epoch = s + 1 < info.steps ? epoch : epoch + 1;
        next.step = s + 1 < info.steps ? s + 1 : 0;
        next.loss_sum = s + 1 < info.steps ? loss : 0.0;
        next.correct_sum = s + 1 < info.steps ? correct : 0.0;
        const Status saved = callback->OnStepEnd(next);
        if (!saved.ok()) return stopped(saved);
      }
    }
    result.steps = info.steps;
    result.train.count = train.count;
    result.train.loss = loss / train.count;
    result.train.accuracy =
        info.accuracy ? correct / train.count : std::numeric_limits<double>::quiet_NaN();
    if (options.validation != nullptr && options.validation->count > 0) {
      THAW_RETURN_IF_ERROR(Evaluate(*options.validation, max_batch_, &result.validation));
    }
    result.seconds = MonotonicSeconds() - epoch_start;
    if (callback != nullptr) callback->OnEpochEnd(epoch, result);
    if (history != nullptr) history->push_back(result);
  }
  return Status::Ok();
}

// ---- Sequential ----

Sequential::Sequential(ThreadPool& pool) : Model(pool) {}

Status Sequential::Add(std::unique_ptr<Layer> layer, const std::string& name) {
  Status s = AddLayer(std::move(layer), name);
  if (!s.ok()) return Status(s.code(), std::string("Sequential::Add: ") + s.message());
  return Status::Ok();
}

Status Sequential::Build(size_t input_features, size_t max_batch, Arena* arena, uint64_t seed) {
  return Build(Shape{input_features}, Layout::kAny, max_batch, arena, seed);
}

Status Sequential::Build(const Shape& input_shape, Layout layout, size_t max_batch, Arena* arena,
                         uint64_t seed) {
  if (built()) return FailedPrecondition("Sequential::Build: the model is already built");
  if (num_layers() == 0) return InvalidArgument("Sequential::Build: the model has no layers");
  if (input_value() == nullptr) {  // a failed Build keeps the chain for a retry
    if (max_batch == 0 || input_shape.num_elements() == 0) {
      return InvalidArgument(
          "Sequential::Build: the input shape (%s) and max_batch (%zu) must be positive",
          input_shape.ToString().c_str(), max_batch);
    }
    Symbol x = Input(input_shape, layout);
    for (size_t i = 0; i < num_layers() && x.valid(); ++i) x = CallLayer(i, {x});
    last_ = x;
  }
  THAW_RETURN_IF_ERROR(status());
  return Model::Build(last_, max_batch, arena, seed);
}

}  // namespace thaw
