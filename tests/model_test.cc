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

namespace thaw {
namespace {

bool Contains(const Status& s, const std::string& text) {
  return std::string(s.message()).find(text) != std::string::npos;
}

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

// Hand-computed (every buffer is rounded up to 64 bytes), batch 4:
//   weights: dense_0 1280 + 64, dense_1 512 + 64, dense_2 128 + 64 = 2112.
//   Adam keeps 2 slots per trainable buffer.
// a_i is the input of layer i; unsaved a_i and the gradients da_i go to two
// buffers by parity of i, each sized for its largest occupant.
//   all trainable:  saved input 320, a1 256, a2 128 = 704 activations;
//                   ping a3 64; gradients da1|da3 256 + da2 128; labels 64 = 512 scratch.
//   dense_0 frozen: a1 256 + a2 128 = 384 activations;
//                   input 320 + ping a3 64 + da2 128 + da3 64 + 64 = 640 scratch.
//   head only:      a2 128 activations;
//                   input 320 + ping a1|a3 256 + da3 64 + 64 = 704 scratch.
//   all frozen:     no activations; input 320 + a1|a3 256 + a2 128 + 64 = 768 scratch.
struct Expected {
  const char* name;
  int frozen_layers;  // layers 0..frozen_layers-1 frozen
  size_t gradients, state, activations, scratch, first_backward;
};
const Expected kPlans[] = {
    {"all trainable", 0, 2112, 4224, 704, 512, 0},
    {"first layer frozen", 1, 768, 1536, 384, 640, 1},
    {"head only", 2, 192, 384, 128, 704, 2},
    {"all frozen", 3, 0, 0, 0, 768, 3},
};

// The GEMM packing scratch on top of the hand-computed buffers: its size
// depends on the SIMD target's tile shape, so it is asked of the kernel
// (simd::GemmScratchFloats) for every product the step runs: the forward
// product of each layer, and the two backward products from the first
// trainable layer on.
size_t GemmScratchBytes(size_t first_backward, bool training) {
  const size_t dims[4] = {20, 16, 8, 3};
  const int threads = ThreadPool::Serial().num_threads();
  size_t floats = 0;
  for (size_t l = 0; l < 3; ++l) {
    const size_t in = dims[l], out = dims[l + 1];
    floats = std::max(floats, simd::GemmScratchFloats(4, out, in, threads));
    if (training && l >= first_backward) {
      floats = std::max({floats, simd::GemmScratchFloats(out, in, 4, threads),
                         simd::GemmScratchFloats(4, in, out, threads)});
    }
  }
  return AlignUp(floats * sizeof(float));
}

TEST(ModelPlanTest, PlannedBytesMatchHandComputedNumbers) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  for (const Expected& e : kPlans) {
    for (int i = 0; i < 3; ++i) ref.model.layer(i).SetTrainable(i >= e.frozen_layers);
    ModelPlan plan;
    ASSERT_TRUE(ref.model.PlanMemory(4, /*training=*/true, &plan).ok());
    EXPECT_EQ(plan.bytes[Region::kWeights], 2112u) << e.name;
    EXPECT_EQ(plan.bytes[Region::kGradients], e.gradients) << e.name;
    EXPECT_EQ(plan.bytes[Region::kOptimizerState], e.state) << e.name;
    EXPECT_EQ(plan.bytes[Region::kActivations], e.activations) << e.name;
    EXPECT_EQ(plan.bytes[Region::kScratch], e.scratch + GemmScratchBytes(e.first_backward, true))
        << e.name;
    EXPECT_EQ(plan.first_backward_layer, e.first_backward) << e.name;
    size_t layer_sum = 0;
    for (const LayerMemory& m : plan.layers) layer_sum += m.weights + m.gradients + m.optimizer_state + m.activations;
    EXPECT_EQ(layer_sum, plan.bytes.total() - plan.bytes[Region::kScratch]) << e.name;
  }
}

TEST(ModelPlanTest, MeasuredHighWaterEqualsThePlan) {
  for (const Expected& e : kPlans) {
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

TEST(ModelPlanTest, InferencePlanHoldsWeightsAndTwoBuffers) {
  Reference ref;
  ASSERT_TRUE(ref.Make(1 << 16).ok());
  ModelPlan plan;
  ASSERT_TRUE(ref.model.PlanMemory(1, /*training=*/false, &plan).ok());
  EXPECT_EQ(plan.bytes[Region::kGradients], 0u);
  EXPECT_EQ(plan.bytes[Region::kOptimizerState], 0u);
  EXPECT_EQ(plan.bytes[Region::kActivations], 0u);
  // input 80 B; a1|a3, a2 64 B each
  EXPECT_EQ(plan.bytes[Region::kScratch], 128u + 2 * 64u + GemmScratchBytes(3, false));
  EXPECT_NE(plan.ToString().find("dense_2"), std::string::npos);
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
  fit.verbose = Verbosity::kSilent;
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
  // Head-only training needs 3520 bytes; thawing dense_0 too needs
  // 2112 + 1536 gradients + 3072 state + 704 + 512 = 7936, plus GEMM scratch.
  const size_t head_only = 3520 + GemmScratchBytes(2, true);
  const size_t thawed = 7936 + GemmScratchBytes(0, true);
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

// A NaN in the input poisons every gradient of the step; the update is
// refused with a sentence and the weights and optimizer state are untouched,
// so training can go on with clean data.
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
  EXPECT_TRUE(Contains(s, "NaN or infinite")) << s.message();
  EXPECT_TRUE(Contains(s, "nothing was updated")) << s.message();
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
    fit.verbose = Verbosity::kSilent;
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
