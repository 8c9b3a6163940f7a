// thaw/core/api/model.h — Keras-style models, functional and Sequential, with
// freeze-aware memory.
//
//   thaw::Model model(pool);                               // functional
//   thaw::Symbol x = model.Input(thaw::Shape{20});
//   thaw::Symbol h = model.Call(thaw::Dense::Make(16, thaw::Activation::kRelu), x);
//   thaw::Symbol g = model.Call(thaw::Dense::Make(16, thaw::Activation::kRelu), h);
//   thaw::Symbol r = model.Call(thaw::Add::Make(), {h, g});  // the residual skip
//   thaw::Symbol y = model.Call(thaw::Dense::Make(3), r, "head");
//   THAW_RETURN_IF_ERROR(model.Build(y, /*max_batch=*/64, &arena));
//
//   thaw::Sequential seq(pool);                            // a chain
//   seq.Add(thaw::Dense::Make(256, thaw::Activation::kRelu));
//   seq.Add(thaw::Dense::Make(10, thaw::Activation::kSoftmax));
//   THAW_RETURN_IF_ERROR(seq.Build(/*input_features=*/784, /*max_batch=*/64, &arena));
//
//   THAW_RETURN_IF_ERROR(model.Compile(thaw::OptimizerConfig::Adam(adam_options),
//                                      thaw::Loss::kSparseCategoricalCrossentropyFromLogits));
//   THAW_RETURN_IF_ERROR(model.Fit(train, fit_options));
//   model.layer(0).SetTrainable(false);                  // freeze the first layer...
//   THAW_RETURN_IF_ERROR(model.Fit(train, fit_options));  // ...no recompile needed
//
// The model is a static graph (core/graph) built once. Each step:
//  1. compiles its program for the batch size, the mode and the current
//     freeze set when one of them changed (core/exec/program.h: the forward
//     list, the backward list pruned to what reaches a trainable parameter,
//     one memory plan), without allocating;
//  2. checks that the persistent plan and the step's plan fit the arena
//     before anything moves (ResourceExhausted with bytes needed and
//     available otherwise; the model stays usable);
//  3. re-plans gradients and optimizer state when flags changed since the
//     last step (VariableSet::Prepare): state of variables that stay
//     trainable is kept, newly thawed ones start from zero;
//  4. runs forward, the loss, backward, and the optimizer on trainable
//     parameters only: after the backward pass, all or nothing (the
//     default), or, with OptimizerConfig::update_in_backward, each layer's
//     parameters during it, as soon as their gradients are complete (the
//     gradients then take the bytes of the largest layer's instead of all
//     of them; see core/train/optimizers.h for the trade-off: a NaN found at
//     a layer leaves the layers updated before it updated, and the Status
//     lists them; Variable::gradient() is absent after such a step).
// Nothing on a step allocates from the heap. PlanMemory reports the same
// numbers for any batch size and freeze set without running anything.
//
// Losses: a final softmax is fused with sparse categorical cross-entropy
// (computed from logits, numerically stable); binary cross-entropy takes
// logits and applies the sigmoid itself.
//
// Fit reports through a FitCallback and prints nothing itself; the Keras
// progress bar is core/io/progress.h.
#ifndef THAW_CORE_API_MODEL_H_
#define THAW_CORE_API_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/exec/program.h"
#include "core/graph/graph.h"
#include "core/graph/layer.h"
#include "core/memory/arena.h"
#include "core/memory/plan.h"
#include "core/ops/loss.h"
#include "core/train/optimizers.h"
#include "core/vars/variables.h"
#include "platform/status.h"
#include "platform/threads.h"

namespace thaw {

// A set of examples; non-owning views of the caller's arrays.
struct Examples {
  const float* x = nullptr;         // [count, input elements]
  size_t count = 0;
  const int32_t* labels = nullptr;  // [count]: sparse categorical losses
  const float* targets = nullptr;   // [count, outputs]: MSE and binary CE
  // Elements of one example in x, checked against the model's input: give it
  // (a dataset's row width) so a mismatch is refused instead of read past.
  // 0: not given, the caller vouches that rows are input_features() long.
  size_t features = 0;
};

// Loss (mean over examples) and accuracy (NaN when the loss has none).
struct Metrics {
  double loss = 0.0;
  double accuracy = 0.0;
  size_t count = 0;
};

struct EpochResult {
  Metrics train;
  Metrics validation;  // count == 0 without validation data
  size_t steps = 0;
  double seconds = 0.0;       // whole epoch, including validation
  double step_seconds = 0.0;  // training steps only
};

// Fit's frozen-prefix feature cache (FitOptions::feature_cache).
//
// When the training step begins with a part of the graph that depends only
// on the input and on frozen, deterministic layers (core/exec/feature_cut.h:
// frozen Dense and convolutions, BatchNormalization in inference mode,
// activations, pooling, views; not a Dropout in training mode), Fit computes
// that part's output for every training example once, into the arena's
// feature-cache region (the top of the arena), and every step after that
// runs only the rest of the graph, gathering each batch's rows from the
// cache. Weights, losses and metrics are bit for bit those of running
// without it. The values cached are the cheapest cut between the frozen
// part and the trainable one (core/exec/feature_cut.h); PlanOptions::
// cache_examples plans them (ModelPlan::cached_values, the region
// bytes[Region::kFeatureCache]). Fit checks that the cache, the steps and
// computing it (in chunks of the batch size, or fewer examples when only
// that fits) fit the arena together before it starts; the region then gives
// way to whatever later needs its bytes (a thaw's gradients, a larger
// Predict), and the next Fit computes it again.
//
// The cached values are those of one freeze set, one set of frozen values
// and one set of examples, and are recomputed (never read stale) when any
// of them changes. At every Fit the cache compares: the freeze set; a
// fingerprint (platform/fingerprint.h) of every variable the cached part
// reads, so any load, Assign, thaw or direct write of one is seen; and the
// examples: the same pointer and count and a fingerprint of their inputs,
// so data rewritten in place is seen too. Inside a Fit, a callback that
// changes the freeze set or sets a prefix variable through the API
// (VariableSet::edits) makes the following steps run without the cache;
// the examples must not change during a Fit.
enum class CacheMode {
  kOff,       // never cache
  kAuto,      // cache when there is something to cache and the arena has room
  kRequired,  // as kAuto, but Fit fails (with a sentence saying why) instead
              // of running without the cache
};

// What happened to the cache in a Fit (FitInfo::cache).
enum class CacheState {
  kOff,             // FitOptions::feature_cache is kOff
  kNothingToCache,  // no frozen, deterministic part feeds the trainable one
  kNoRoom,          // the arena cannot hold the cache next to the steps
  kComputed,        // computed for this Fit
  kReused,          // valid from an earlier Fit: not recomputed
};
const char* CacheStateName(CacheState state);

// What Fit tells its callback about the run ahead.
struct FitInfo {
  int epochs = 0;
  size_t steps = 0;       // per epoch
  bool accuracy = false;  // the loss has an accuracy metric
  CacheState cache = CacheState::kOff;
  size_t cache_bytes = 0;  // the feature-cache region (kComputed, kReused)
};

// Keras callbacks: Fit calls these between steps (never inside one).
// Where a Fit is: the step it runs next and the running sums of that epoch so
// far. Fit gives it to FitCallback::OnStepEnd after every accepted step, and
// FitOptions::resume continues from one; a training state
// (core/io/training_state.h) saves and loads it with everything else a run
// needs.
struct FitPosition {
  int epoch = 0;    // 0-based; `epochs` when training is over
  size_t step = 0;  // 0-based step of `epoch` that runs next
  double loss_sum = 0.0;     // sum of the epoch's per-example losses so far
  double correct_sum = 0.0;  // and of its correct predictions
};

class FitCallback {
 public:
  virtual ~FitCallback() = default;
  virtual void OnTrainBegin(const FitInfo& info) {}
  virtual void OnEpochBegin(int epoch) {}
  // After step `done` (1-based) of the epoch, with the epoch's running means.
  virtual void OnBatchEnd(size_t done, const Metrics& running) {}
  virtual void OnEpochEnd(int epoch, const EpochResult& result) {}
  // After every accepted step (after OnBatchEnd), with the position of the
  // next one: the moment to save a training state. A Status that is not ok
  // stops Fit with it (the step's update stays).
  virtual Status OnStepEnd(const FitPosition& next) { return Status::Ok(); }
};

struct FitOptions {
  int epochs = 1;
  size_t batch_size = 32;   // at most the max_batch given to Build
  bool shuffle = true;      // shuffled batches are copied into the arena
  uint64_t seed = 0;        // shuffling order (and nothing else)
  const Examples* validation = nullptr;  // evaluated after each epoch
  FitCallback* callback = nullptr;       // e.g. thaw::ProgressBar
  // Continue a Fit that stopped (a crash, a power cut) from the position a
  // training state saved, on the same examples with the same options: the
  // shuffles of the epochs before it are replayed, so the batches, and with
  // the training state the weights, are bit for bit those of a run that
  // never stopped. Epochs before resume->epoch are not run or reported.
  const FitPosition* resume = nullptr;
  // The frozen-prefix feature cache (CacheMode above). Costs, when used:
  // the region (examples x the cut's floats per example, 64-byte aligned
  // per cut value; ModelPlan reports it), one pass of the frozen part over
  // the examples, and at each Fit a fingerprint of the examples' inputs and
  // of the frozen variables it reads.
  CacheMode feature_cache = CacheMode::kAuto;
};

// Bytes of one layer in a memory plan.
struct LayerMemory {
  std::string name;
  size_t weights = 0, gradients = 0, optimizer_state = 0, activations = 0;
};

// What a step will hold, before anything is placed.
struct ModelPlan {
  size_t batch = 0;
  StepMode mode = StepMode::kTrain;
  bool gather = false;             // the batch is copied into the arena
  size_t first_backward_layer = 0; // layers before it run no backward pass
  // A training step that updates in the backward pass (OptimizerConfig::
  // update_in_backward): bytes[Region::kGradients] is then the most the
  // parameters' gradients hold at once in the step's block, and a layer's
  // row its gradients' bytes, each alive only until its update.
  bool update_in_backward = false;
  // A training plan gives this step's gradients region and total (as
  // bytes.total()) in both modes, the optimizer updating after the backward
  // pass and in it, so that one plan shows what the option saves; one of
  // them is this plan's (update_in_backward says which). Zero otherwise.
  struct ModeBytes {
    size_t gradients = 0;
    size_t total = 0;
  };
  ModeBytes after_backward, in_backward;
  MemoryReport bytes;              // per region; total() is the arena this step needs
  // The arena that runs every step of this freeze set with up to `batch`
  // examples: any smaller batch and, for a training plan, evaluation and
  // prediction too (a kernel's scratch need not grow with the batch, so
  // this can exceed bytes.total()). Size arenas with this.
  size_t arena_bytes = 0;
  std::vector<LayerMemory> layers; // an "input" row comes first
  std::vector<PlannedBuffer> step_buffers;  // the step's plan, placed
  // With PlanOptions::cache_examples: the values the feature cache holds
  // ("<layer> output [shape]"), empty when nothing can be cached (the plan
  // is then that of Fit without the cache), and the floats per example.
  // bytes[Region::kFeatureCache] is the cache region.
  std::vector<std::string> cached_values;
  size_t cache_example_floats = 0;
  std::string ToString() const;
};

class Model;

// A symbolic tensor of a functional model: its input or a layer's output.
// Cheap to copy; valid while its model lives.
class Symbol {
 public:
  Symbol() = default;
  bool valid() const { return value_ != nullptr; }
  // The per-example shape.
  Shape shape() const { return value_ != nullptr ? value_->shape : Shape(); }

 private:
  friend class Model;
  Symbol(const Model* model, Value* value) : model_(model), value_(value) {}
  const Model* model_ = nullptr;
  Value* value_ = nullptr;
};

// Which step PlanMemory describes.
struct PlanOptions {
  size_t batch = 1;
  StepMode mode = StepMode::kTrain;
  // Train: the freeze set (one bit per variable, as trainable_bits()), or
  // null for the current one (before Build: the layers' SetTrainable flags).
  const Bitmap* trainable = nullptr;
  // The batch is copied into the arena: Fit with shuffle (TrainOnBatch,
  // Evaluate and Predict read it where it is).
  bool gather = false;
  // Train: a Fit on this many examples with the feature cache (FitOptions::
  // feature_cache): the step runs the part after the cached values, and
  // the plan holds the cache region; arena_bytes covers computing the cache
  // too. 0: no cache.
  size_t cache_examples = 0;
  // Before Build, to size the arena: the output the model will be built
  // with (required), and the optimizer and loss Compile will get (null: the
  // compiled ones; before Compile, plain SGD without state and mean squared
  // error). After Build, the output may be left out.
  Symbol output;
  const OptimizerConfig* optimizer = nullptr;
  const Loss* loss = nullptr;
  // Before Build: the checkpoint Build will take its weights from
  // (BuildOptions::weights); frozen parameters it holds in place take no
  // arena bytes.
  Span<const unsigned char> weights;
  // The machine, when it is not this one: a SIMD target (one Highway bit,
  // HWY_AVX3, HWY_NEON, ...) of this build's architecture, or of x86 or
  // 64-bit Arm from any CPU: it need not be compiled in nor run here (plans
  // read the target's lanes and tiles from simd/target_shapes.h, the data
  // the kernels take theirs from); and a thread count. For SVE and SVE2,
  // whose vector length the CPU chooses, give vector_bits (128 to 2048), or
  // 0 for this CPU's when it runs the target. 0: the target this CPU
  // dispatches to, the model's pool.
  int64_t target = 0;
  size_t vector_bits = 0;
  int threads = 0;
};

// How Build makes the variables' first values.
struct BuildOptions {
  uint64_t seed = 0;  // draws the initial values (Glorot, zeros, ones)
  // Or: every value from a safetensors checkpoint in memory, checked first
  // as LoadCheckpointFromMemory checks (strict), and nothing is drawn.
  // Frozen parameters (SetTrainable(false) before Build) whose tensor the
  // bytes hold as thaw does (F32 in thaw's layout, 4-byte aligned: dense
  // kernels, biases, BatchNorm's gamma and beta; not the kernels of
  // convolutions, which files hold transposed) read them in place: no copy
  // and no arena bytes. The bytes (a checkpoint in flash, an mmapped file) must
  // then stay valid and unchanged while the model lives, or until such a
  // variable is thawed: its next training step copies it into the arena
  // first (ResourceExhausted, nothing changed, if it does not fit).
  Span<const unsigned char> weights;
};

class Model {
 public:
  explicit Model(ThreadPool& pool = ThreadPool::Serial());
  virtual ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // ---- The functional API: describe, then Build. ----
  // The model's input, with a per-example shape (one input per model).
  Symbol Input(const Shape& shape, Layout layout = Layout::kAny);
  // Applies `layer` (named `name`, or "<kind>_<k>") to the inputs and returns
  // its output. An error (bad shapes, a bad name, an invalid input) returns
  // an invalid Symbol and becomes the model's status(), which Build returns.
  Symbol Call(std::unique_ptr<Layer> layer, Symbol input, const std::string& name = "");
  Symbol Call(std::unique_ptr<Layer> layer, Span<const Symbol> inputs,
              const std::string& name = "");  // {a, b} or an array
  // The first error met while describing the model, or ok.
  const Status& status() const { return status_; }
  // Creates every variable in `arena` (which must outlive the model and is
  // used by it alone), drawing initial values from `seed`, with `output` as
  // the model's output. max_batch bounds the batch sizes of Fit, Evaluate
  // and Predict.
  Status Build(Symbol output, size_t max_batch, Arena* arena, uint64_t seed = 0);
  Status Build(Symbol output, size_t max_batch, Arena* arena, const BuildOptions& options);

  // Chooses the optimizer and the loss. May be called again (a new
  // optimizer, its state starts from zero).
  Status Compile(const OptimizerConfig& optimizer, Loss loss);
  // Changes the optimizer's learning rate, keeping its state.
  Status SetLearningRate(float learning_rate);

  Status Fit(const Examples& train, const FitOptions& options,
             std::vector<EpochResult>* history = nullptr);
  // One training step on examples.count <= max_batch examples, read in place.
  Status TrainOnBatch(const Examples& batch, Metrics* metrics = nullptr);
  Status Evaluate(const Examples& examples, size_t batch_size, Metrics* metrics);
  // out[count, output elements]: probabilities after a final softmax. The
  // output is written straight into `out`.
  Status Predict(const float* x, size_t count, float* out);

  // The plan of one step. Runs nothing, places nothing; before Build it
  // needs no arena (give PlanOptions::output), so a caller can size one.
  Status PlanMemory(const PlanOptions& options, ModelPlan* plan) const;
  // A training step (TrainOnBatch, input read in place) for the current
  // freeze set, or an inference step (Predict: weights and the buffers the
  // forward pass needs; what an inference-only deployment needs).
  Status PlanMemory(size_t batch, bool training, ModelPlan* plan) const;
  // A training step for any freeze set (one bit per variable).
  Status PlanMemory(size_t batch, const Bitmap& trainable, ModelPlan* plan) const;

  size_t num_layers() const { return layers_.size(); }
  Layer& layer(size_t i) { return *layers_[i]; }
  const Layer& layer(size_t i) const { return *layers_[i]; }
  Layer* FindLayer(const std::string& name);
  // layer(i).SetTrainable for the layer called `name`, checked: NotFound
  // when there is none, InvalidArgument when the layer has no parameters
  // (a ReLU or pooling layer: the call would change nothing, so it is
  // likely a mistake). Layer::SetTrainable itself accepts any layer, as
  // Keras does, so that a loop may freeze every layer.
  Status SetTrainable(const std::string& name, bool trainable);
  VariableSet& variables() { return *vars_; }
  const VariableSet& variables() const { return *vars_; }
  // Elements of one example's input and output.
  size_t input_features() const;
  size_t output_features() const;
  size_t max_batch() const { return max_batch_; }
  bool built() const { return vars_ != nullptr; }
  // Keras-style table: layer, kind, output shape, parameters, trainable.
  std::string Summary() const;

  // ---- For training states (core/io/training_state.h) ----
  // The compiled optimizer, or null.
  Optimizer* optimizer() { return optimizer_.get(); }
  // Training steps taken (they seed dropout masks), and restoring it.
  uint64_t step_count() const { return steps_; }
  void set_step_count(uint64_t steps) { steps_ = steps; }

 protected:
  // Appends a layer, named, without calling it (Sequential calls it at Build).
  Status AddLayer(std::unique_ptr<Layer> layer, const std::string& name);
  // Calls layer `index` on `inputs`.
  Symbol CallLayer(size_t index, Span<const Symbol> inputs);
  Value* input_value() const { return input_; }

 private:
  struct Programs;

  // InvalidArgument when `batch` makes the graph's tensors too large to size.
  Status CheckBatch(const char* what, size_t batch) const;
  Status CheckReady(const char* what, bool needs_compile) const;
  Status CheckExamples(const char* what, const Examples& examples) const;
  void Fail(Status status);
  Status BuildIn(Value* output, size_t max_batch, Arena* arena, const BuildOptions& options);
  Status FitIn(const Examples& train, const FitOptions& options,
               std::vector<EpochResult>* history);
  struct Cache;
  // Fit's feature cache: chooses, checks, reuses or computes it for `train`.
  Status SetUpCache(const Examples& train, const FitOptions& options, FitInfo* info);
  // Whether the cache may feed the next step (nothing changed since it was
  // computed: its arena bytes, the freeze set, edits of its variables).
  bool CacheHolds() const;
  // The transient bytes of the programs a cached Fit runs: its steps, the
  // cache computed in chunks of `chunk` examples, validation.
  size_t CachedFitTransient(size_t batch_size, size_t chunk, size_t count, bool gather,
                            const Examples* validation);
  struct Initial;
  // Checks `weights` against the declared variables into *initial: what to
  // copy, and what frozen parameters read in place.
  Status ReadInitial(Span<const unsigned char> weights, Initial* initial) const;
  // Creates the declared variables in `vars` (those with an in-place value
  // in `initial`, when given, over it), with each layer's handles.
  Status CreateVariables(VariableSet* vars, const Initial* initial,
                         std::vector<std::vector<Variable>>* handles) const;
  ProgramSpec SpecFor(StepMode mode, size_t batch, bool gather) const;
  // The Status of a step that updates in the backward pass and stopped at
  // `failed`'s updates (refused with `why`): names the layers updated before.
  Status StoppedInBackward(const Program& program, const Node& failed, const Status& why) const;
  ProgramSpec SpecFor(StepMode mode, size_t batch, bool gather, Value* output, Loss loss) const;
  void FillPlan(const Program& program, const VariableSet& vars, const Bitmap& trainable,
                ModelPlan* plan) const;
  // Runs one step on the batch at rows [index[0..count)] of `examples`
  // (rows in order, read in place, when index is null); fills `out`
  // (Predict) or metrics.
  // With `cut` not kNone, the step provides (reads) or produces (writes)
  // the feature cache's rows; cache_row: the first row when index is null.
  Status Step(const Examples& examples, const size_t* index, size_t count, StepMode mode,
              Metrics* metrics, float* out, CutUse cut = CutUse::kNone, size_t cache_row = 0);

  ThreadPool* pool_;
  Status status_;
  Graph graph_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<DeclaredVariable> declared_;
  Value* input_ = nullptr;
  Value* output_ = nullptr;
  Arena* arena_ = nullptr;
  std::unique_ptr<VariableSet> vars_;
  std::unique_ptr<Optimizer> optimizer_;
  Loss loss_ = Loss::kMeanSquaredError;
  bool compiled_ = false;
  size_t max_batch_ = 0;
  uint64_t steps_ = 0;
  uint64_t arena_token_ = 0;
  // One program per mode, recompiled when its batch, gathering or freeze
  // set changes; sized at Build so that a step never allocates.
  std::unique_ptr<Programs> programs_;
  std::unique_ptr<Cache> cache_;  // Fit's feature cache, sized at Build
};

// A chain of layers, each taking the previous one's output (Keras
// Sequential).
class Sequential : public Model {
 public:
  explicit Sequential(ThreadPool& pool = ThreadPool::Serial());

  // Appends a layer named `name`, or "<kind>_<k>" (dense_0, dense_1, relu_0).
  // Before Build only.
  Status Add(std::unique_ptr<Layer> layer, const std::string& name = "");
  // Builds the chain on inputs of `input_features` per example, or of a
  // per-example shape (NHWC images: {28, 28, 1}, Layout::kNHWC).
  Status Build(size_t input_features, size_t max_batch, Arena* arena, uint64_t seed = 0);
  Status Build(const Shape& input_shape, Layout layout, size_t max_batch, Arena* arena,
               uint64_t seed = 0);

 private:
  Symbol last_;  // the chain's output, once called
};

}  // namespace thaw

#endif  // THAW_CORE_API_MODEL_H_
