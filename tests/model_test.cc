#include "core/api/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/thaw.h"
#include "platform/memory.h"
#include "simd/gemm.h"
#include "gtest/gtest.h"
#include "tests/plan_util.h"
#include "tests/status_text.h"

namespace thaw {
namespace {

bool Contains(const Status& s, const std::string& text) { return MessageContains(s, text); }

// Reference model: 20 -> dense_0 (16, relu) -> dense_1 (8, relu) -> dense_2 (3
// logits), Adam, sparse categorical cross-entropy from logits.
struct Reference {
  Arena arena;
  Sequential model;
  Status Make(size_t arena_bytes) {
    THAW_RETURN_IF_ERROR(Arena::Create(arena_bytes, &arena));
    THAW_RETURN_IF_ERROR(model.Add(Dense::Make(16, Activation::kRelu)));
    THAW_RETURN_IF_ERROR(model.Add(Dense::Make(8, Activation::kRelu)));
    THAW_RETURN_IF_ERROR(model.Add(Dense::Make(3)));
    THAW_RETURN_IF_ERROR(model.Build(20, 4, &arena, /*seed=*/3));
    return model.Compile(OptimizerConfig::Adam(AdamOptions()),
                         Loss::kSparseCategoricalCrossentropyFromLogits);
  }
};

std::vector<float> Inputs(size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * i + 0.1f);
  return x;
}

// Hand-computed, batch 4 (every buffer is rounded up to 64 bytes):
//   weights: dense_0 1280 + 64, dense_1 512 + 64, dense_2 128 + 64 = 2112;
//   Adam keeps 2 slots per trainable buffer.
// The step (tests/plan_util.h): dense_0..2 forward at t = 1..3, the loss at
// 4, backward dense_2, dense_1, dense_0 at 5, 6, 7 (those that run). The
// batch is read in place (TrainOnBatch), as are the labels: neither is
// planned. a_i is layer i-1's output: a1 256 B, a2 128 B, logits a3 64 B.
// A ReLU layer's backward reads its output; a layer's weight gradient reads
// its input; the input gradient runs only when something before the layer
// trains.
struct Expected {
  const char* name;
  int frozen_layers;  // layers 0..frozen_layers-1 frozen
  size_t gradients, state, activations, first_backward;
  std::vector<Live> step;
};

std::vector<Expected> Plans() {
  const size_t f0 = DenseForwardScratch(4, 20, 16), f1 = DenseForwardScratch(4, 16, 8),
               f2 = DenseForwardScratch(4, 8, 3);
  const std::vector<Live> forward = {{f0, 1, 1}, {f1, 2, 2}, {f2, 3, 3}, {48, 3, 4}};
  auto with = [&](std::vector<Live> more) {
    more.insert(more.end(), forward.begin(), forward.end());
    return more;
  };
  return {
      // a1 until dense_0's backward (its ReLU), a2 until dense_1's (the same);
      // gradients da3 [4,5], da2 [5,6], da1 [6,7].
      {"all trainable", 0, 2112, 4224, 256 + 128, 0,
       with({{256, 1, 7}, {128, 2, 6}, {DenseBackwardScratch(4, 8, 3, true), 5, 5},
             {DenseBackwardScratch(4, 16, 8, true), 6, 6},
             {DenseBackwardScratch(4, 20, 16, false), 7, 7},
             {48, 4, 5}, {128, 5, 6}, {256, 6, 7}})},
      // a1 until dense_1's weight gradient, a2 until its ReLU.
      {"first layer frozen", 1, 768, 1536, 256 + 128, 1,
       with({{256, 1, 6}, {128, 2, 6}, {DenseBackwardScratch(4, 8, 3, true), 5, 5},
             {DenseBackwardScratch(4, 16, 8, false), 6, 6}, {48, 4, 5}, {128, 5, 6}})},
      // a1 dies after dense_1's forward; a2 lives for dense_2's weight gradient.
      {"head only", 2, 192, 384, 128, 2,
       with({{256, 1, 2}, {128, 2, 5}, {DenseBackwardScratch(4, 8, 3, false), 5, 5},
             {48, 4, 5}})},
      {"all frozen", 3, 0, 0, 0, 3, with({{256, 1, 2}, {128, 2, 3}})},
  };
}

TEST(ModelPlanTest, PlannedBytesMatchHandComputedNumbers) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  for (const Expected& e : Plans()) {
    for (int i = 0; i < 3; ++i) ref.model.layer(i).SetTrainable(i >= e.frozen_layers);
    ModelPlan plan;
    ASSERT_TRUE(ref.model.PlanMemory(4, /*training=*/true, &plan).ok());
    EXPECT_EQ(plan.bytes[Region::kWeights], 2112u) << e.name;
    EXPECT_EQ(plan.bytes[Region::kGradients], e.gradients) << e.name;
    EXPECT_EQ(plan.bytes[Region::kOptimizerState], e.state) << e.name;
    EXPECT_EQ(plan.bytes[Region::kActivations], e.activations) << e.name;
    EXPECT_EQ(plan.bytes[Region::kActivations] + plan.bytes[Region::kScratch], Peak(e.step))
        << e.name;
    EXPECT_EQ(plan.first_backward_layer, e.first_backward) << e.name;
    size_t layer_sum = 0;
    for (const LayerMemory& m : plan.layers) layer_sum += m.weights + m.gradients + m.optimizer_state + m.activations;
    EXPECT_EQ(layer_sum, plan.bytes.total() - plan.bytes[Region::kScratch]) << e.name;
    for (const PlannedBuffer& b : plan.step_buffers) {
      EXPECT_STRNE(b.what, "input") << e.name << ": the batch is read in place";
    }
  }
}

TEST(ModelPlanTest, MeasuredHighWaterEqualsThePlan) {
  for (const Expected& e : Plans()) {
    Reference ref;  // a fresh arena per freeze set
    ASSERT_TRUE(ref.Make(1 << 16).ok());
    for (int i = 0; i < 3; ++i) ref.model.layer(i).SetTrainable(i >= e.frozen_layers);
    ModelPlan plan;
    ASSERT_TRUE(ref.model.PlanMemory(4, true, &plan).ok());
    const std::vector<float> x = Inputs(4 * 20);
    const int32_t labels[4] = {0, 1, 2, 1};
    Examples batch{x.data(), 4, labels, nullptr};
    ASSERT_TRUE(ref.model.TrainOnBatch(batch).ok());
    EXPECT_EQ(ref.arena.high_water(), plan.bytes.total()) << e.name;
    const MemoryReport measured = ref.arena.Report();
    for (int r = 0; r < kNumRegions; ++r) EXPECT_EQ(measured.bytes[r], plan.bytes.bytes[r]) << e.name << " region " << r;
  }
}

// Predict at batch 1: weights, and a1, a2 while the forward pass needs them;
// the output goes straight to the caller. No gradients, no activations kept.
TEST(ModelPlanTest, InferencePlanHoldsWeightsAndLiveBuffers) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  ModelPlan plan;
  ASSERT_TRUE(ref.model.PlanMemory(1, /*training=*/false, &plan).ok());
  EXPECT_EQ(plan.bytes[Region::kGradients], 0u);
  EXPECT_EQ(plan.bytes[Region::kOptimizerState], 0u);
  EXPECT_EQ(plan.bytes[Region::kActivations], 0u);
  const std::vector<Live> step = {{64, 1, 2}, {64, 2, 3},
                                  {DenseForwardScratch(1, 20, 16), 1, 1},
                                  {DenseForwardScratch(1, 16, 8), 2, 2},
                                  {DenseForwardScratch(1, 8, 3), 3, 3}};
  EXPECT_EQ(plan.bytes[Region::kScratch], Peak(step));
  EXPECT_NE(plan.ToString().find("dense_2"), std::string::npos);
}

// Fit with shuffling copies each batch into the arena: the plan then holds
// the input (and the labels) too, while a layer reads them.
TEST(ModelPlanTest, GatheredBatchesArePlannedInPlaceOnesAreNot) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  PlanOptions options;
  options.batch = 4;
  options.gather = true;
  ModelPlan plan;
  ASSERT_TRUE(ref.model.PlanMemory(options, &plan).ok());
  size_t input = 0, labels = 0;
  for (const PlannedBuffer& b : plan.step_buffers) {
    if (std::string(b.what) == "input") input = b.bytes;
    if (std::string(b.what) == "labels") labels = b.bytes;
  }
  EXPECT_EQ(input, 320u);  // 4 x 20 floats, saved for dense_0's weight gradient
  EXPECT_EQ(labels, 64u);
  EXPECT_EQ(plan.bytes[Region::kActivations], 320u + 256u + 128u);
}

// The README's MLP: 784-256-128-10 at batch 64, every layer trainable. Its
// TrainOnBatch step reads the batch in place and plans no input buffer;
// Fit's shuffled batches are copied in, and then the input is planned (and
// kept for dense_0's weight gradient).
TEST(ModelPlanTest, TheMlpStepDoesNotReserveAnInputItReadsInPlace) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(8 << 20, &arena).ok());
  Sequential model;
  ASSERT_TRUE(model.Add(Dense::Make(256, Activation::kRelu)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(128, Activation::kRelu)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(10)).ok());
  ASSERT_TRUE(model.Build(784, 64, &arena).ok());
  ASSERT_TRUE(model.Compile(OptimizerConfig::Adam(AdamOptions()),
                            Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  ModelPlan in_place, gathered;
  ASSERT_TRUE(model.PlanMemory(64, /*training=*/true, &in_place).ok());
  PlanOptions fit;
  fit.batch = 64;
  fit.gather = true;
  ASSERT_TRUE(model.PlanMemory(fit, &gathered).ok());
  auto input_bytes = [](const ModelPlan& plan) {
    size_t bytes = 0;
    for (const PlannedBuffer& b : plan.step_buffers) {
      if (std::string(b.what) == "input") bytes += b.bytes;
    }
    return bytes;
  };
  EXPECT_EQ(input_bytes(in_place), 0u);
  EXPECT_EQ(in_place.layers[0].activations, 0u);
  EXPECT_EQ(input_bytes(gathered), 64u * 784 * 4);
  // a1 (64 x 256) and a2 (64 x 128) are kept for the backward pass.
  EXPECT_EQ(in_place.bytes[Region::kActivations], 65536u + 32768u);
  EXPECT_EQ(gathered.bytes[Region::kActivations], 200704u + 65536u + 32768u);
}

// Seed semantics at the model level: frozen layers keep their weights bit for
// bit, get no gradient buffer and no optimizer state; thawing needs no
// recompile; Adam counts a thawed layer's steps from the thaw.
TEST(ModelTest, FreezeAndThawBetweenFitsWithoutRecompiling) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  Sequential& model = ref.model;
  const std::vector<float> x = Inputs(40 * 20);
  std::vector<int32_t> labels(40);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>((i * 7) % 3);
  Examples train{x.data(), 40, labels.data(), nullptr};
  FitOptions fit;
  fit.epochs = 2;
  fit.batch_size = 4;
  ASSERT_TRUE(model.Fit(train, fit).ok());

  model.layer(0).SetTrainable(false);
  const Variable w0 = model.variables().Find("dense_0.weight");
  const std::vector<float> before(w0.value().data(), w0.value().data() + 320);
  const Variable w2 = model.variables().Find("dense_2.weight");
  const std::vector<float> head_before(w2.value().data(), w2.value().data() + 24);
  std::vector<EpochResult> history;
  ASSERT_TRUE(model.Fit(train, fit, &history).ok());
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(std::memcmp(w0.value().data(), before.data(), before.size() * sizeof(float)), 0);
  EXPECT_NE(std::memcmp(w2.value().data(), head_before.data(), head_before.size() * sizeof(float)), 0);
  EXPECT_FALSE(w0.gradient().present());
  EXPECT_EQ(ref.arena.bytes(Region::kOptimizerState), 1536u);
  EXPECT_EQ(model.variables().steps(w0.index()), 20u);  // 2 epochs x 10 steps before the freeze
  EXPECT_EQ(model.variables().steps(w2.index()), 40u);

  model.layer(0).SetTrainable(true);
  Examples one{x.data(), 4, labels.data(), nullptr};
  ASSERT_TRUE(model.TrainOnBatch(one).ok());
  EXPECT_EQ(model.variables().steps(w0.index()), 1u);  // fresh state after the thaw
  EXPECT_EQ(model.variables().steps(w2.index()), 41u);
  EXPECT_EQ(ref.arena.bytes(Region::kOptimizerState), 4224u);
}

TEST(ModelTest, AThawThatDoesNotFitIsAStatusAndTheModelStaysUsable) {
  Reference ref;
  // Head-only training: weights, the head's gradients and Adam state, and
  // the step of Plans()'s "head only". Thawing dense_0 too (dense_1 stays
  // frozen but is differentiated through) needs 2112 + 1536 gradients + 3072
  // state, and a step where a1 lives until dense_0's backward, dense_1
  // computes only its input's gradient (reading W and its output).
  const size_t head_only = 2112 + 192 + 384 + Peak(Plans()[2].step);
  const size_t f0 = DenseForwardScratch(4, 20, 16), f1 = DenseForwardScratch(4, 16, 8),
               f2 = DenseForwardScratch(4, 8, 3);
  const size_t thawed =
      2112 + 1536 + 3072 +
      Peak({{f0, 1, 1}, {f1, 2, 2}, {f2, 3, 3}, {48, 3, 4}, {256, 1, 7}, {128, 2, 6},
            {DenseBackwardScratch(4, 8, 3, true), 5, 5},
            {GemmBytes(4, 16, 8, false, false), 6, 6},
            {DenseBackwardScratch(4, 20, 16, false), 7, 7},
            {48, 4, 5}, {128, 5, 6}, {256, 6, 7}});
  ASSERT_TRUE(ref.Make(head_only + 256).ok());
  Sequential& model = ref.model;
  model.layer(0).SetTrainable(false);
  model.layer(1).SetTrainable(false);
  const std::vector<float> x = Inputs(4 * 20);
  const int32_t labels[4] = {2, 0, 1, 1};
  Examples batch{x.data(), 4, labels, nullptr};
  ASSERT_TRUE(model.TrainOnBatch(batch).ok());
  const Variable w2 = model.variables().Find("dense_2.weight");
  const std::vector<float> head(w2.value().data(), w2.value().data() + 24);
  const std::vector<float> state(model.variables().slot_data(w2.index(), 0),
                                 model.variables().slot_data(w2.index(), 0) + 24);
  model.layer(0).SetTrainable(true);
  Status s = model.TrainOnBatch(batch);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(s, "needs " + std::to_string(thawed) + " bytes")) << s.message();
  EXPECT_TRUE(Contains(s, "holds " + std::to_string(head_only + 256))) << s.message();
  EXPECT_EQ(std::memcmp(w2.value().data(), head.data(), head.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(model.variables().slot_data(w2.index(), 0), state.data(), 24 * sizeof(float)), 0);
  model.layer(0).SetTrainable(false);  // revert: training goes on
  ASSERT_TRUE(model.TrainOnBatch(batch).ok());
  EXPECT_EQ(model.variables().steps(w2.index()), 2u);
}

TEST(ModelTest, CompileRejectsMismatchedLossAndOutput) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  Sequential softmax_model;
  ASSERT_TRUE(softmax_model.Add(Dense::Make(3, Activation::kSoftmax)).ok());
  ASSERT_TRUE(softmax_model.Build(4, 2, &arena).ok());
  Status s = softmax_model.Compile(OptimizerConfig::Sgd(SgdOptions()),
                                   Loss::kSparseCategoricalCrossentropyFromLogits);
  EXPECT_TRUE(Contains(s, "ends in a softmax ('dense_0')")) << s.message();
  EXPECT_TRUE(softmax_model.Compile(OptimizerConfig::Sgd(SgdOptions()),
                                    Loss::kSparseCategoricalCrossentropy).ok());

  Arena arena2;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena2).ok());
  Sequential logits_model;
  ASSERT_TRUE(logits_model.Add(Dense::Make(3)).ok());
  ASSERT_TRUE(logits_model.Build(4, 2, &arena2).ok());
  s = logits_model.Compile(OptimizerConfig::Sgd(SgdOptions()), Loss::kSparseCategoricalCrossentropy);
  EXPECT_TRUE(Contains(s, "takes probabilities from a final softmax")) << s.message();
}

TEST(ModelTest, BadInputsGetClearStatuses) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  const std::vector<float> x = Inputs(8 * 20);
  const int32_t bad_labels[8] = {0, 1, 2, 3, 0, 1, 2, 0};
  Examples batch{x.data(), 4, bad_labels, nullptr};
  Status s = ref.model.TrainOnBatch(batch);
  EXPECT_TRUE(Contains(s, "label 3 of example 3 is outside [0, 3)")) << s.message();
  batch.count = 8;
  s = ref.model.TrainOnBatch(batch);
  EXPECT_TRUE(Contains(s, "8 examples; a batch holds 1 to 4")) << s.message();
  FitOptions fit;
  fit.batch_size = 16;
  s = ref.model.Fit(batch, fit);
  EXPECT_TRUE(Contains(s, "batch size 16 is outside [1, 4]")) << s.message();
  s = ref.model.Add(Dense::Make(2));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  Sequential unbuilt;
  EXPECT_EQ(unbuilt.Predict(x.data(), 1, nullptr).code(), StatusCode::kFailedPrecondition);
}

// Sizes that would wrap around: a layer of SIZE_MAX units overflowed the heap
// when its weights were initialised; a huge batch planned a few bytes.
TEST(ModelTest, SizesTooLargeForMemoryAreStatusesNotOverflows) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  {
    Sequential model;
    ASSERT_TRUE(model.Add(Dense::Make(SIZE_MAX)).ok());
    Status s = model.Build(8, 4, &arena, 1);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(s, "output shape [" + std::to_string(SIZE_MAX) +
                                "] has more elements than memory"))
        << s.message();
  }
  {
    Sequential model;
    ASSERT_TRUE(model.Add(Dense::Make(4)).ok());
    Status s = model.Build(8, SIZE_MAX / 16, &arena, 1);
    EXPECT_TRUE(Contains(s, "Build: a batch of " + std::to_string(SIZE_MAX / 16) +
                                " makes the model's tensors larger"))
        << s.message();
    ASSERT_TRUE(model.Build(8, 4, &arena, 1).ok());
    ModelPlan plan;
    s = model.PlanMemory(SIZE_MAX / 2, /*training=*/false, &plan);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
    ASSERT_TRUE(model.PlanMemory(4, /*training=*/false, &plan).ok());
  }
  {
    Model model;
    Symbol x = model.Input(Shape{SIZE_MAX / 2, 4}, Layout::kAny);
    EXPECT_FALSE(x.valid());
    EXPECT_TRUE(Contains(model.status(), "must have elements, fit in memory")) << model.status().message();
  }
}

// Two models on one arena placed their weights over each other; a model
// built after another one was destroyed found the dead one's bytes still
// counted. One variable set per arena now, released when it dies.
TEST(ModelTest, OneModelPerArenaAndADeadModelsBytesAreFree) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(4096, &arena).ok());
  {
    Sequential first;
    ASSERT_TRUE(first.Add(Dense::Make(16)).ok());
    ASSERT_TRUE(first.Build(8, 1, &arena, 1).ok());
    const float w = first.variables()[0].value().at(0);
    Sequential second;
    ASSERT_TRUE(second.Add(Dense::Make(16)).ok());
    Status s = second.Build(8, 1, &arena, 2);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE(Contains(s, "the arena already holds another model's")) << s.message();
    EXPECT_EQ(first.variables()[0].value().at(0), w);
  }
  // 100 x 8 weights (3,200 bytes) fit only if the dead model's are free.
  Sequential third;
  ASSERT_TRUE(third.Add(Dense::Make(100)).ok());
  Status s = third.Build(8, 1, &arena, 3);
  EXPECT_TRUE(s.ok()) << s.message();
}

// A Build that fails (the arena too small) leaves the model able to build
// again: no layer keeps a handle into the failed variable set (once a
// use-after-free), and the parameters are counted once.
TEST(ModelTest, BuildCanBeRetriedAfterItFailed) {
  Arena small, big;
  ASSERT_TRUE(Arena::Create(4096, &small).ok());
  ASSERT_TRUE(Arena::Create(1 << 20, &big).ok());
  Sequential model;
  ASSERT_TRUE(model.Add(Dense::Make(256, Activation::kRelu)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(3)).ok());
  Status s = model.Build(784, 4, &small, 1);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.message();
  EXPECT_FALSE(model.built());
  ASSERT_TRUE(model.Build(784, 4, &big, 1).ok());
  model.layer(0).SetTrainable(false);
  EXPECT_FALSE(model.variables()[0].trainable());
  const std::string summary = model.Summary();
  EXPECT_NE(summary.find("parameters: 201731 (trainable 771, frozen 200960)"), std::string::npos)
      << summary;
}

// Keras: `layer.trainable = False` before the model is built holds; it used
// to be dropped silently (the layer had no variables yet).
TEST(ModelTest, SetTrainableBeforeBuildIsKept) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  Sequential model;
  ASSERT_TRUE(model.Add(Dense::Make(8, Activation::kRelu)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(3)).ok());
  model.layer(0).SetTrainable(false);
  EXPECT_FALSE(model.layer(0).trainable());
  ASSERT_TRUE(model.Build(5, 4, &arena, 1).ok());
  EXPECT_FALSE(model.variables()[0].trainable());
  EXPECT_FALSE(model.variables()[1].trainable());
  EXPECT_TRUE(model.variables()[2].trainable());
  EXPECT_FALSE(model.layer(0).trainable());
}

// By name, checked: an unknown name or a layer without parameters is an
// error (Layer::SetTrainable accepts any layer, as Keras does).
TEST(ModelTest, SetTrainableByNameIsChecked) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  Sequential model;
  ASSERT_TRUE(model.Add(Dense::Make(8)).ok());
  ASSERT_TRUE(model.Add(ReLU()).ok());
  ASSERT_TRUE(model.Add(Dense::Make(3)).ok());
  ASSERT_TRUE(model.SetTrainable("dense_0", false).ok());  // before Build: kept
  Status s = model.SetTrainable("dense_9", false);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(s, "no layer named \"dense_9\" (its layers: dense_0, relu_0, dense_1)"))
      << s.message();
  ASSERT_TRUE(model.Build(5, 4, &arena, 1).ok());
  EXPECT_FALSE(model.variables()[0].trainable());
  s = model.SetTrainable("relu_0", false);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "SetTrainable: relu_0 has no parameters to freeze or thaw"))
      << s.message();
  ASSERT_TRUE(model.SetTrainable("dense_0", true).ok());
  EXPECT_TRUE(model.variables()[0].trainable());
}

// A row width given with the examples is checked against the model's input,
// instead of reading past the caller's rows.
TEST(ModelTest, ExamplesOfTheWrongWidthAreRefused) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  const std::vector<float> x = Inputs(4 * 16);  // rows of 16, the model takes 20
  const int32_t labels[4] = {0, 1, 2, 0};
  const TensorView w = ref.model.variables()[0].value();
  const std::vector<float> before(w.data(), w.data() + w.num_elements());
  Status s = ref.model.TrainOnBatch(Examples{x.data(), 4, labels, nullptr, 16});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "TrainOnBatch: the examples have 16 elements each, the model's input "
                          "takes 20"))
      << s.message();
  EXPECT_EQ(std::memcmp(w.data(), before.data(), before.size() * sizeof(float)), 0);
  FitOptions fit;
  fit.batch_size = 4;
  EXPECT_TRUE(Contains(ref.model.Fit(Examples{x.data(), 4, labels, nullptr, 16}, fit),
                       "Fit: the examples have 16 elements each"));
}

// A negative thread count is the caller's error, reported by the model built
// on the pool (a constructor cannot return a Status), not an abort.
TEST(ModelTest, ANegativeThreadCountIsAStatus) {
  ThreadPool pool(-1);
  EXPECT_EQ(pool.num_threads(), 1);
  EXPECT_EQ(pool.status().code(), StatusCode::kInvalidArgument);
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  Sequential model(pool);
  ASSERT_TRUE(model.Add(Dense::Make(3)).ok());
  const Status s = model.Build(5, 4, &arena);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "ThreadPool: num_threads must be 0 (one per core) or positive, got -1"))
      << s.message();
  EXPECT_FALSE(model.built());
}

// Hyper-parameters out of range are refused by Compile, as torch.optim's
// constructors refuse them; the model keeps its previous optimizer.
TEST(ModelTest, CompileRefusesHyperParametersOutOfRange) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  const Loss loss = Loss::kSparseCategoricalCrossentropyFromLogits;
  SgdOptions sgd;
  sgd.learning_rate = NAN;
  Status s = ref.model.Compile(OptimizerConfig::Sgd(sgd), loss);
  EXPECT_TRUE(Contains(s, "SGD: learning_rate = nan is out of range")) << s.message();
  sgd = SgdOptions();
  sgd.nesterov = true;
  EXPECT_TRUE(Contains(ref.model.Compile(OptimizerConfig::Sgd(sgd), loss), "nesterov needs a momentum"));
  AdamOptions adam;
  adam.beta1 = 1.0f;
  s = ref.model.Compile(OptimizerConfig::Adam(adam), loss);
  EXPECT_TRUE(Contains(s, "Adam: beta1 = 1 is out of range; it must be in [0, 1)")) << s.message();
  adam = AdamOptions();
  adam.beta2 = 1.5f;
  EXPECT_EQ(ref.model.Compile(OptimizerConfig::AdamW(adam), loss).code(), StatusCode::kInvalidArgument);
  adam = AdamOptions();
  adam.learning_rate = -1.0f;
  EXPECT_EQ(ref.model.Compile(OptimizerConfig::Adam(adam), loss).code(), StatusCode::kInvalidArgument);
  // The model still trains with the optimizer it had.
  const std::vector<float> x = Inputs(4 * 20);
  const int32_t labels[4] = {0, 1, 2, 0};
  EXPECT_TRUE(ref.model.TrainOnBatch(Examples{x.data(), 4, labels, nullptr}).ok());
}

// A NaN in the input poisons the loss and every gradient of the step; the
// update is refused with a sentence and the weights and optimizer state are
// untouched, so training can go on with clean data.
TEST(ModelTest, NonFiniteGradientsLeaveTheModelIntact) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  Sequential& model = ref.model;
  std::vector<float> x = Inputs(4 * 20);
  const int32_t labels[4] = {2, 0, 1, 1};
  Examples batch{x.data(), 4, labels, nullptr};
  ASSERT_TRUE(model.TrainOnBatch(batch).ok());
  VariableSet& vars = model.variables();
  std::vector<std::vector<float>> weights, moments;
  for (int i = 0; i < vars.size(); ++i) {
    const TensorView v = vars[i].value();
    weights.emplace_back(v.data(), v.data() + v.num_elements());
    moments.emplace_back(vars.slot_data(i, 1), vars.slot_data(i, 1) + v.num_elements());
  }
  x[25] = std::nanf("");
  Status s = model.TrainOnBatch(batch);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "the loss is nan; nothing was updated")) << s.message();
  for (int i = 0; i < vars.size(); ++i) {
    const TensorView v = vars[i].value();
    EXPECT_EQ(std::memcmp(v.data(), weights[i].data(), weights[i].size() * sizeof(float)), 0)
        << vars[i].name();
    EXPECT_EQ(std::memcmp(vars.slot_data(i, 1), moments[i].data(),
                          moments[i].size() * sizeof(float)), 0)
        << vars[i].name();
    EXPECT_EQ(vars.steps(i), 1u);
  }
  x[25] = 0.0f;
  EXPECT_TRUE(model.TrainOnBatch(batch).ok());
  EXPECT_EQ(vars.steps(0), 2u);
}

// NaN flows through ReLU as in PyTorch: with the backbone frozen, a NaN
// input used to become 0 in the first ReLU, so the head trained on it with
// status OK and Predict answered with finite numbers. Now the loss is NaN
// and the step is refused.
TEST(ModelTest, NaNInputsReachTheHeadAndPredictions) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  Sequential& model = ref.model;
  model.layer(0).SetTrainable(false);
  model.layer(1).SetTrainable(false);
  std::vector<float> x = Inputs(4 * 20);
  for (size_t i = 0; i < 20; ++i) x[i] = std::nanf("");  // the whole first example
  const int32_t labels[4] = {2, 0, 1, 1};
  const float before = model.variables()[4].value().at(0);  // the head's weight
  Status s = model.TrainOnBatch(Examples{x.data(), 4, labels, nullptr});
  EXPECT_TRUE(Contains(s, "the loss is nan")) << s.message();
  EXPECT_EQ(model.variables()[4].value().at(0), before);
  float out[4 * 3];
  ASSERT_TRUE(model.Predict(x.data(), 4, out).ok());
  for (int j = 0; j < 3; ++j) EXPECT_TRUE(std::isnan(out[j])) << j;
  for (int j = 3; j < 12; ++j) EXPECT_FALSE(std::isnan(out[j])) << j;
}

// A NaN weight in the head made the loss NaN while the fused softmax
// cross-entropy dropped the NaN logit, so the step went on with status OK.
// A non-finite loss now refuses the step: no weight, moment or step count
// moves.
TEST(ModelTest, ANonFiniteLossRefusesTheStep) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  Sequential& model = ref.model;
  const std::vector<float> x = Inputs(4 * 20);
  const int32_t labels[4] = {2, 0, 1, 1};
  const Examples batch{x.data(), 4, labels, nullptr};
  ASSERT_TRUE(model.TrainOnBatch(batch).ok());
  VariableSet& vars = model.variables();
  vars[4].value().data()[0] = std::nanf("");  // dense_2.weight
  std::vector<std::vector<float>> weights;
  for (int i = 0; i < vars.size(); ++i) {
    const TensorView v = vars[i].value();
    weights.emplace_back(v.data(), v.data() + v.num_elements());
  }
  Metrics metrics;
  Status s = model.TrainOnBatch(batch, &metrics);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "the loss is nan; nothing was updated")) << s.message();
  EXPECT_TRUE(std::isnan(metrics.loss));
  for (int i = 0; i < vars.size(); ++i) {
    const TensorView v = vars[i].value();
    EXPECT_EQ(std::memcmp(v.data(), weights[i].data(), weights[i].size() * sizeof(float)), 0)
        << vars[i].name();
    EXPECT_EQ(vars.steps(i), 1u) << vars[i].name();
  }
}

// Fit stops at the first refused step and says where; the weights are those
// of the last accepted step.
TEST(ModelTest, FitStopsAtARefusedStepAndSaysWhere) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  std::vector<float> x = Inputs(12 * 20);
  x[5 * 20 + 3] = std::nanf("");  // example 5: the second batch of 4
  std::vector<int32_t> labels(12, 1);
  FitOptions fit;
  fit.epochs = 2;
  fit.batch_size = 4;
  fit.shuffle = false;
  Status s = ref.model.Fit(Examples{x.data(), 12, labels.data(), nullptr}, fit);
  EXPECT_TRUE(Contains(s, "Fit: epoch 1, step 2 of 3: the loss is nan; nothing was updated"))
      << s.message();
  VariableSet& vars = ref.model.variables();
  for (int i = 0; i < vars.size(); ++i) EXPECT_EQ(vars.steps(i), 1u) << vars[i].name();
}

TEST(ModelTest, LayerNamesAreAutomaticOrChosen) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  Sequential model;
  ASSERT_TRUE(model.Add(Flatten::Make()).ok());
  ASSERT_TRUE(model.Add(Dense::Make(4, Activation::kTanh)).ok());
  ASSERT_TRUE(model.Add(ReLU()).ok());
  ASSERT_TRUE(model.Add(Dense::Make(2), "head").ok());
  EXPECT_EQ(model.Add(Dense::Make(2), "head").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(model.Build(3, 2, &arena).ok());
  EXPECT_EQ(model.layer(0).name(), "flatten_0");
  EXPECT_EQ(model.layer(1).name(), "dense_0");
  EXPECT_EQ(model.layer(2).name(), "relu_0");
  EXPECT_EQ(model.layer(3).name(), "head");
  EXPECT_TRUE(model.variables().Find("head.weight").valid());
  EXPECT_EQ(model.variables().Find("head.weight").shape(), Shape({2, 4}));
  EXPECT_NE(model.Summary().find("parameters: 26 (trainable 26, frozen 0)"), std::string::npos)
      << model.Summary();
}

// Predict works at batch 1 and agrees with a batch of many; probabilities
// after a final softmax sum to 1.
TEST(ModelTest, PredictAtBatchOneMatchesBigBatches) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 18, &arena).ok());
  Sequential model;
  ASSERT_TRUE(model.Add(Dense::Make(12, Activation::kSigmoid)).ok());
  ASSERT_TRUE(model.Add(Dropout::Make(0.5f)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(5, Activation::kSoftmax)).ok());
  ASSERT_TRUE(model.Build(7, 16, &arena, 9).ok());
  const std::vector<float> x = Inputs(10 * 7);
  std::vector<float> all(10 * 5), one(5);
  ASSERT_TRUE(model.Predict(x.data(), 10, all.data()).ok());
  for (size_t r = 0; r < 10; ++r) {
    ASSERT_TRUE(model.Predict(x.data() + r * 7, 1, one.data()).ok());
    float sum = 0;
    for (size_t j = 0; j < 5; ++j) {
      EXPECT_EQ(one[j], all[r * 5 + j]);  // dropout is off in inference
      sum += one[j];
    }
    EXPECT_NEAR(sum, 1.0f, 1e-6f);
  }
}

// Every loss and layer kind learns something: the loss goes down.
TEST(ModelTest, LossesDecreaseOnSimpleProblems) {
  struct Case {
    Loss loss;
    Activation last;
  };
  for (Case c : {Case{Loss::kMeanSquaredError, Activation::kLinear},
                 Case{Loss::kBinaryCrossentropyFromLogits, Activation::kLinear},
                 Case{Loss::kSparseCategoricalCrossentropy, Activation::kSoftmax}}) {
    Arena arena;
    ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
    Sequential model;
    ASSERT_TRUE(model.Add(Dense::Make(16, Activation::kTanh)).ok());
    ASSERT_TRUE(model.Add(Dropout::Make(0.1f, 5)).ok());
    ASSERT_TRUE(model.Add(Dense::Make(2, c.last)).ok());
    ASSERT_TRUE(model.Build(2, 16, &arena, 1).ok());
    AdamOptions adam;
    adam.learning_rate = 0.02f;
    ASSERT_TRUE(model.Compile(OptimizerConfig::Adam(adam), c.loss).ok());
    // Two classes split by the line x0 + x1 = 0.
    const size_t n = 128;
    std::vector<float> x(2 * n), targets(2 * n);
    std::vector<int32_t> labels(n);
    Random rng(4);
    for (size_t i = 0; i < n; ++i) {
      x[2 * i] = rng.Uniform(-1, 1);
      x[2 * i + 1] = rng.Uniform(-1, 1);
      labels[i] = x[2 * i] + x[2 * i + 1] > 0;
      targets[2 * i] = static_cast<float>(labels[i]);
      targets[2 * i + 1] = 1.0f - labels[i];
    }
    Examples train{x.data(), n, labels.data(), targets.data()};
    Metrics before, after;
    ASSERT_TRUE(model.Evaluate(train, 16, &before).ok());
    FitOptions fit;
    fit.epochs = 30;
    fit.batch_size = 16;
    ASSERT_TRUE(model.Fit(train, fit).ok());
    ASSERT_TRUE(model.Evaluate(train, 16, &after).ok());
    EXPECT_LT(after.loss, 0.5 * before.loss) << LossName(c.loss);
    if (c.loss != Loss::kMeanSquaredError) {
      EXPECT_GT(after.accuracy, 0.9) << LossName(c.loss);
    }
  }
}

TEST(ModelTest, DropoutIsReproducibleAndScalesKeptUnits) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 18, &arena).ok());
  Sequential model;
  ASSERT_TRUE(model.Add(Dropout::Make(0.25f, 11)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(1)).ok());
  ASSERT_TRUE(model.Build(1000, 1, &arena).ok());
  // Weight = 1, bias 0: the output is the sum of the dropped-out inputs.
  std::vector<float> ones(1000, 1.0f);
  ASSERT_TRUE(model.variables().Assign(model.variables().Find("dense_0.weight"), ones).ok());
  ASSERT_TRUE(model.Compile(OptimizerConfig::Sgd(SgdOptions()), Loss::kMeanSquaredError).ok());
  model.layer(1).SetTrainable(false);  // no update: only the forward pass matters
  const float target[1] = {0.0f};
  Examples batch{ones.data(), 1, nullptr, target};
  Metrics a, b;
  ASSERT_TRUE(model.TrainOnBatch(batch, &a).ok());
  // loss = (kept * 4/3)^2: about 750 kept of 1000.
  const double kept = std::sqrt(a.loss) * 0.75;
  EXPECT_NEAR(kept, 750.0, 60.0);
  EXPECT_NEAR(kept, std::round(kept), 1e-2);
  ASSERT_TRUE(model.TrainOnBatch(batch, &b).ok());
  EXPECT_NE(a.loss, b.loss);  // a new mask per step
}

}  // namespace
}  // namespace thaw
