// Update in the backward pass (OptimizerConfig::update_in_backward): the
// same bits as the default mode (weights, optimizer state, step counts,
// losses) for MLPs and CNNs with BatchNorm, every optimizer, per-variable
// clipping, frozen prefixes, freeze changes, Fit with the feature cache and
// 1 or 2 threads; the plan's bytes in both modes against a hand computation
// and the measured high-water mark; what a non-finite gradient found at a
// middle layer does (and that the default mode keeps its all-or-nothing
// guarantee on the same input).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/thaw.h"
#include "gtest/gtest.h"
#include "tests/plan_util.h"
#include "tests/sample_data.h"
#include "tests/status_text.h"

namespace thaw {
namespace {

OptimizerConfig InBackward(OptimizerConfig config) {
  config.update_in_backward = true;
  return config;
}

// Every variable's value, and every trainable one's optimizer state and step
// count, bit for bit; the models' step counts.
void ExpectSameState(Model& a, Model& b, const std::string& what) {
  VariableSet& va = a.variables();
  VariableSet& vb = b.variables();
  ASSERT_EQ(va.size(), vb.size());
  ASSERT_EQ(va.planned_slots(), vb.planned_slots()) << what;
  for (int i = 0; i < va.size(); ++i) {
    const size_t n = va.shape(i).num_elements();
    EXPECT_EQ(0, std::memcmp(va.value_data(i), vb.value_data(i), n * sizeof(float)))
        << what << ": " << va.name(i);
    ASSERT_EQ(va.planned_trainable(i), vb.planned_trainable(i)) << what << ": " << va.name(i);
    if (!va.planned_trainable(i)) continue;
    for (int s = 0; s < va.planned_slots(); ++s) {
      EXPECT_EQ(0, std::memcmp(va.slot_data(i, s), vb.slot_data(i, s), n * sizeof(float)))
          << what << ": " << va.name(i) << " slot " << s;
    }
    EXPECT_EQ(va.steps(i), vb.steps(i)) << what << ": " << va.name(i);
  }
  EXPECT_EQ(a.step_count(), b.step_count()) << what;
}

// A model built twice, in its own arena and pool: once per mode.
using Builder = std::function<Status(Model* model, Arena* arena)>;

struct Twin {
  explicit Twin(int threads) : pool(threads), model(pool) {}
  ThreadPool pool;
  Arena arena;  // outlives the model
  Model model;
};

// MLP 20 -> d0 (16, relu) -> d1 (8, relu) -> head (3 logits).
Status Mlp(Model* model, Arena* arena) {
  Symbol x = model->Input(Shape{20});
  Symbol h = model->Call(Dense::Make(16, Activation::kRelu), x, "d0");
  Symbol g = model->Call(Dense::Make(8, Activation::kRelu), h, "d1");
  Symbol y = model->Call(Dense::Make(3), g, "head");
  THAW_RETURN_IF_ERROR(Arena::Create(1 << 20, arena));
  return model->Build(y, 8, arena, /*seed=*/5);
}

// tests/sample_data.h's small CNN with BatchNorm.
Status Cnn(Model* model, Arena* arena) {
  Symbol y = SmallCnn(model);
  THAW_RETURN_IF_ERROR(Arena::Create(4 << 20, arena));
  return model->Build(y, 8, arena, /*seed=*/9);
}

// Layers from `first_trainable` on train; those before it are frozen.
void TrainFrom(Model& model, const std::string& first_trainable) {
  bool frozen = !first_trainable.empty();
  for (size_t i = 0; i < model.num_layers(); ++i) {
    if (model.layer(i).name() == first_trainable) frozen = false;
    model.layer(i).SetTrainable(!frozen);
  }
}

class UpdateInBackwardTest : public ::testing::TestWithParam<int> {};

struct Case {
  const char* name;
  OptimizerConfig config;
};

std::vector<Case> Optimizers() {
  SgdOptions momentum;
  momentum.learning_rate = 0.05f;
  momentum.momentum = 0.9f;
  SgdOptions nesterov = momentum;
  nesterov.nesterov = true;
  nesterov.weight_decay = 0.01f;
  AdamOptions adam;
  adam.learning_rate = 0.01f;
  AdamOptions adamw = adam;
  adamw.weight_decay = 0.05f;
  std::vector<Case> cases = {{"sgd momentum", OptimizerConfig::Sgd(momentum)},
                             {"sgd nesterov + weight decay", OptimizerConfig::Sgd(nesterov)},
                             {"adam", OptimizerConfig::Adam(adam)},
                             {"adamw", OptimizerConfig::AdamW(adamw)},
                             {"sgd momentum + clipnorm", OptimizerConfig::Sgd(momentum)},
                             {"adam + clipvalue", OptimizerConfig::Adam(adam)}};
  cases[4].config.clipping.clipnorm = 0.05f;   // clips every step here
  cases[5].config.clipping.clipvalue = 0.002f;
  return cases;
}

// Steps `twins` (default, in the backward pass) on the same batches, and
// checks every loss and the state after each step bit for bit.
void StepBoth(Twin* twins, size_t steps, size_t batch, size_t features, const std::string& what,
              float phase = 0.0f) {
  for (size_t s = 0; s < steps; ++s) {
    const std::vector<float> x = Wave(batch * features, phase + 0.7f * static_cast<float>(s));
    const std::vector<int32_t> y = Labels(batch + s, 3);
    const Examples examples{x.data(), batch, y.data() + s, nullptr, features};
    Metrics m[2];
    for (int k = 0; k < 2; ++k) {
      const Status ok = twins[k].model.TrainOnBatch(examples, &m[k]);
      ASSERT_TRUE(ok.ok()) << what << ": " << ok.message();
    }
    EXPECT_EQ(0, std::memcmp(&m[0].loss, &m[1].loss, sizeof(double)))
        << what << ", step " << s << ": " << m[0].loss << " vs " << m[1].loss;
    ExpectSameState(twins[0].model, twins[1].model, what + ", step " + std::to_string(s));
  }
}

TEST_P(UpdateInBackwardTest, MlpMatchesTheDefaultBitForBit) {
  for (const Case& c : Optimizers()) {
    Twin twins[2] = {Twin(GetParam()), Twin(GetParam())};
    for (int k = 0; k < 2; ++k) {
      ASSERT_TRUE(Mlp(&twins[k].model, &twins[k].arena).ok());
      const Status compiled =
          twins[k].model.Compile(k == 0 ? c.config : InBackward(c.config),
                                 Loss::kSparseCategoricalCrossentropyFromLogits);
      ASSERT_TRUE(compiled.ok()) << c.name << ": " << compiled.message();
    }
    StepBoth(twins, 6, 8, 20, c.name);
    // The gradient buffers: the default keeps them, this mode has none.
    Variable w = twins[0].model.FindLayer("d1")->variables()[0];
    EXPECT_TRUE(w.gradient().present()) << c.name;
    w = twins[1].model.FindLayer("d1")->variables()[0];
    EXPECT_FALSE(w.gradient().present()) << c.name;
    // The arena's report holds the last step's block: dense d0's gradients
    // at their peak (16 x 20 + 16 floats), nothing persistent.
    EXPECT_EQ(twins[1].arena.bytes(Region::kGradients), 1280u + 64u) << c.name;
  }
}

// All trainable, a frozen backbone (head only) and a partly thawed one, with
// a freeze change between steps (state of what stays trainable survives,
// the rest starts from zero) and back.
TEST_P(UpdateInBackwardTest, CnnWithBatchNormMatchesTheDefault) {
  struct Variant {
    const char* name;
    std::string first_trainable, then;
  };
  const Variant variants[] = {{"all trainable", "", "dw"},
                              {"frozen backbone", "head", "pw"},
                              {"partly thawed", "pw", "head"}};
  AdamOptions adam;
  adam.learning_rate = 0.01f;
  for (const Variant& v : variants) {
    Twin twins[2] = {Twin(GetParam()), Twin(GetParam())};
    for (int k = 0; k < 2; ++k) {
      ASSERT_TRUE(Cnn(&twins[k].model, &twins[k].arena).ok());
      OptimizerConfig config = OptimizerConfig::Adam(adam);
      config.clipping.clipnorm = 0.5f;
      ASSERT_TRUE(twins[k]
                      .model.Compile(k == 0 ? config : InBackward(config),
                                     Loss::kSparseCategoricalCrossentropyFromLogits)
                      .ok());
      TrainFrom(twins[k].model, v.first_trainable);
    }
    StepBoth(twins, 3, 8, 64, v.name);
    for (Twin& t : twins) TrainFrom(t.model, v.then);
    StepBoth(twins, 2, 8, 64, std::string(v.name) + ", then from " + v.then, 1.0f);
    for (Twin& t : twins) TrainFrom(t.model, v.first_trainable);
    StepBoth(twins, 2, 6, 64, std::string(v.name) + ", and back at batch 6", 2.0f);
  }
}

// Fit with the feature cache on (the frozen backbone's features computed
// once), shuffled batches, a partial last batch, validation.
TEST_P(UpdateInBackwardTest, FitWithTheFeatureCacheMatchesTheDefault) {
  const std::vector<float> x = Wave(28 * 64, 0.3f), vx = Wave(8 * 64, 1.3f);
  const std::vector<int32_t> y = Labels(28, 3), vy = Labels(8, 3);
  const Examples train{x.data(), 28, y.data(), nullptr, 64};
  const Examples validation{vx.data(), 8, vy.data(), nullptr, 64};
  SgdOptions sgd;
  sgd.learning_rate = 0.05f;
  sgd.momentum = 0.9f;
  Twin twins[2] = {Twin(GetParam()), Twin(GetParam())};
  std::vector<EpochResult> history[2];
  for (int k = 0; k < 2; ++k) {
    ASSERT_TRUE(Cnn(&twins[k].model, &twins[k].arena).ok());
    const OptimizerConfig config = OptimizerConfig::Sgd(sgd);
    ASSERT_TRUE(twins[k]
                    .model.Compile(k == 0 ? config : InBackward(config),
                                   Loss::kSparseCategoricalCrossentropyFromLogits)
                    .ok());
    TrainFrom(twins[k].model, "pw");
  }
  // Each plan of the cached Fit gives both modes; they agree with each
  // other's plan.
  ModelPlan plans[2];
  for (int k = 0; k < 2; ++k) {
    PlanOptions options;
    options.batch = 8;
    options.gather = true;
    options.cache_examples = 28;
    ASSERT_TRUE(twins[k].model.PlanMemory(options, &plans[k]).ok());
    EXPECT_GT(plans[k].bytes[Region::kFeatureCache], 0u);
  }
  for (const ModelPlan& p : plans) {
    EXPECT_EQ(p.after_backward.gradients, plans[0].bytes[Region::kGradients]);
    EXPECT_EQ(p.after_backward.total, plans[0].bytes.total());
    EXPECT_EQ(p.in_backward.gradients, plans[1].bytes[Region::kGradients]);
    EXPECT_EQ(p.in_backward.total, plans[1].bytes.total());
  }
  EXPECT_LT(plans[1].bytes[Region::kGradients], plans[0].bytes[Region::kGradients]);
  for (int k = 0; k < 2; ++k) {
    struct : FitCallback {
      FitInfo info;
      void OnTrainBegin(const FitInfo& i) override { info = i; }
    } info;
    FitOptions options;
    options.epochs = 3;
    options.batch_size = 8;
    options.validation = &validation;
    options.feature_cache = CacheMode::kRequired;
    options.callback = &info;
    const Status fit = twins[k].model.Fit(train, options, &history[k]);
    ASSERT_TRUE(fit.ok()) << fit.message();
    EXPECT_EQ(info.info.cache, CacheState::kComputed) << k;
  }
  ASSERT_EQ(history[0].size(), history[1].size());
  for (size_t e = 0; e < history[0].size(); ++e) {
    EXPECT_EQ(0, std::memcmp(&history[0][e].train.loss, &history[1][e].train.loss, sizeof(double)))
        << "epoch " << e;
    EXPECT_EQ(0, std::memcmp(&history[0][e].validation.loss, &history[1][e].validation.loss,
                             sizeof(double)))
        << "epoch " << e;
  }
  ExpectSameState(twins[0].model, twins[1].model, "Fit with the feature cache");
}

INSTANTIATE_TEST_SUITE_P(Threads, UpdateInBackwardTest, ::testing::Values(1, 2));

// ---- Plans ----

// The reference MLP of tests/model_test.cc: 20 -> dense_0 (16, relu) ->
// dense_1 (8, relu) -> dense_2 (3 logits), batch 4, here with SGD momentum
// (one slot per trainable buffer).
//   weights: dense_0 1280 + 64, dense_1 512 + 64, dense_2 128 + 64 = 2112.
//   Default: gradients = the persistent sum over trainable layers.
//   In the backward pass: no persistent gradients; each layer's kernel and
//   bias gradients live at its backward call alone (the call writes them
//   and is the last to read the kernel), so the gradients region's peak is
//   the largest layer's: dense_0's 1280 + 64 = 1344 (16 x 20 and 16 floats).
// The step (tests/plan_util.h): forward at t = 1..3, the loss at 4,
// backward dense_2, dense_1, dense_0 at 5, 6, 7 (those that run).
struct PlanCase {
  const char* name;
  int frozen_layers;
  size_t gradients_default, gradients_in_backward, state, activations;
  std::vector<Live> step;       // the default step's buffers
  std::vector<Live> gradients;  // parameters' gradients, in the backward pass
};

std::vector<PlanCase> PlanCases() {
  const size_t f0 = DenseForwardScratch(4, 20, 16), f1 = DenseForwardScratch(4, 16, 8),
               f2 = DenseForwardScratch(4, 8, 3);
  const std::vector<Live> forward = {{f0, 1, 1}, {f1, 2, 2}, {f2, 3, 3}, {48, 3, 4}};
  auto with = [&](std::vector<Live> more) {
    more.insert(more.end(), forward.begin(), forward.end());
    return more;
  };
  return {
      {"all trainable", 0, 2112, 1344, 2112, 256 + 128,
       with({{256, 1, 7}, {128, 2, 6}, {DenseBackwardScratch(4, 8, 3, true), 5, 5},
             {DenseBackwardScratch(4, 16, 8, true), 6, 6},
             {DenseBackwardScratch(4, 20, 16, false), 7, 7},
             {48, 4, 5}, {128, 5, 6}, {256, 6, 7}}),
       {{3 * 8 * 4, 5, 5}, {3 * 4, 5, 5}, {8 * 16 * 4, 6, 6}, {8 * 4, 6, 6},
        {16 * 20 * 4, 7, 7}, {16 * 4, 7, 7}}},
      {"first layer frozen", 1, 768, 576, 768, 256 + 128,
       with({{256, 1, 6}, {128, 2, 6}, {DenseBackwardScratch(4, 8, 3, true), 5, 5},
             {DenseBackwardScratch(4, 16, 8, false), 6, 6}, {48, 4, 5}, {128, 5, 6}}),
       {{3 * 8 * 4, 5, 5}, {3 * 4, 5, 5}, {8 * 16 * 4, 6, 6}, {8 * 4, 6, 6}}},
  };
}

struct Reference {
  Arena arena;
  Sequential model;
  Status Make(bool in_backward) {
    THAW_RETURN_IF_ERROR(Arena::Create(1 << 16, &arena));
    THAW_RETURN_IF_ERROR(model.Add(Dense::Make(16, Activation::kRelu)));
    THAW_RETURN_IF_ERROR(model.Add(Dense::Make(8, Activation::kRelu)));
    THAW_RETURN_IF_ERROR(model.Add(Dense::Make(3)));
    THAW_RETURN_IF_ERROR(model.Build(20, 4, &arena, /*seed=*/3));
    SgdOptions sgd;
    sgd.momentum = 0.9f;
    OptimizerConfig config = OptimizerConfig::Sgd(sgd);
    config.update_in_backward = in_backward;
    return model.Compile(config, Loss::kSparseCategoricalCrossentropyFromLogits);
  }
};

TEST(UpdateInBackwardPlanTest, BothModesMatchAHandComputationAndTheHighWater) {
  for (const PlanCase& c : PlanCases()) {
    for (bool in_backward : {false, true}) {
      const std::string what = std::string(c.name) + (in_backward ? ", in backward" : ", default");
      Reference ref;
      ASSERT_TRUE(ref.Make(in_backward).ok());
      for (int i = 0; i < 3; ++i) ref.model.layer(i).SetTrainable(i >= c.frozen_layers);
      ModelPlan plan;
      ASSERT_TRUE(ref.model.PlanMemory(4, /*training=*/true, &plan).ok());
      std::vector<Live> step = c.step;
      if (in_backward) step.insert(step.end(), c.gradients.begin(), c.gradients.end());
      const size_t transient = Peak(step);
      EXPECT_EQ(plan.update_in_backward, in_backward) << what;
      EXPECT_EQ(Peak(c.gradients), c.gradients_in_backward) << what << ": the table's own sum";
      EXPECT_EQ(plan.bytes[Region::kWeights], 2112u) << what;
      EXPECT_EQ(plan.bytes[Region::kGradients],
                in_backward ? c.gradients_in_backward : c.gradients_default)
          << what;
      EXPECT_EQ(plan.bytes[Region::kOptimizerState], c.state) << what;
      EXPECT_EQ(plan.bytes[Region::kActivations], c.activations) << what;
      const size_t persistent = 2112 + c.state + (in_backward ? 0 : c.gradients_default);
      EXPECT_EQ(plan.bytes.total(), persistent + transient) << what;
      // Both modes in one plan.
      std::vector<Live> with_gradients = c.step;
      with_gradients.insert(with_gradients.end(), c.gradients.begin(), c.gradients.end());
      EXPECT_EQ(plan.after_backward.gradients, c.gradients_default) << what;
      EXPECT_EQ(plan.after_backward.total, 2112 + c.state + c.gradients_default + Peak(c.step))
          << what;
      EXPECT_EQ(plan.in_backward.gradients, c.gradients_in_backward) << what;
      EXPECT_EQ(plan.in_backward.total, 2112 + c.state + Peak(with_gradients)) << what;
      const std::string text = plan.ToString();
      EXPECT_NE(text.find(in_backward ? "update in the backward pass (this plan)"
                                      : "update after the backward pass (this plan)"),
                std::string::npos)
          << text;
      // Measured: a step reaches exactly the plan, region by region.
      const std::vector<float> x = Wave(4 * 20, 0.1f);
      const int32_t labels[4] = {0, 1, 2, 1};
      const Status ok = ref.model.TrainOnBatch(Examples{x.data(), 4, labels, nullptr});
      ASSERT_TRUE(ok.ok()) << ok.message();
      EXPECT_EQ(ref.arena.high_water(), plan.bytes.total()) << what;
      const MemoryReport measured = ref.arena.Report();
      for (int r = 0; r < kNumRegions; ++r) {
        EXPECT_EQ(measured.bytes[r], plan.bytes.bytes[r]) << what << ", region " << r;
      }
    }
  }
}

// MLP 784-256-128-10 at batch 64 with SGD momentum, planned before Build:
// gradients 784x256 + 256, 256x128 + 128, 128x10 + 10 floats (each buffer
// rounded up to 64 bytes) = 802816 + 1024 + 131072 + 512 + 5120 + 64 = 940608
// bytes in the default mode; dense_0's 803840 alone in the backward pass.
TEST(UpdateInBackwardPlanTest, TheMnistMlpInBothModes) {
  Model model;
  Symbol x = model.Input(Shape{784});
  Symbol h = model.Call(Dense::Make(256, Activation::kRelu), x);
  Symbol g = model.Call(Dense::Make(128, Activation::kRelu), h);
  Symbol y = model.Call(Dense::Make(10), g);
  SgdOptions sgd;
  sgd.momentum = 0.9f;
  const Loss loss = Loss::kSparseCategoricalCrossentropyFromLogits;
  ModelPlan plans[2];
  for (int k = 0; k < 2; ++k) {
    OptimizerConfig config = OptimizerConfig::Sgd(sgd);
    config.update_in_backward = k == 1;
    PlanOptions options;
    options.batch = 64;
    options.output = y;
    options.optimizer = &config;
    options.loss = &loss;
    ASSERT_TRUE(model.PlanMemory(options, &plans[k]).ok());
    std::printf("%s mode:\n%s", k == 0 ? "default" : "update_in_backward",
                plans[k].ToString().c_str());
  }
  EXPECT_EQ(plans[0].bytes[Region::kGradients], 940608u);
  EXPECT_EQ(plans[1].bytes[Region::kGradients], 803840u);
  for (const ModelPlan& p : plans) {  // each plan reports both modes
    EXPECT_EQ(p.after_backward.gradients, 940608u);
    EXPECT_EQ(p.after_backward.total, plans[0].bytes.total());
    EXPECT_EQ(p.in_backward.gradients, 803840u);
    EXPECT_EQ(p.in_backward.total, plans[1].bytes.total());
  }
  EXPECT_EQ(plans[0].bytes[Region::kOptimizerState], 940608u);
  EXPECT_EQ(plans[1].bytes[Region::kOptimizerState], 940608u);
  EXPECT_LT(plans[1].bytes.total(), plans[0].bytes.total());
}

// ---- Non-finite values ----

// 20 -> d0 (16, relu) -> d1 (8, relu) -> head (3) -> bn (BatchNorm of the
// logits), batch 4, set by hand so that the forward pass and the loss are
// finite and d1's kernel gradient overflows: d0's unit 0 outputs 3.4e38 for
// example 0 (input 1 times a weight of 3.4e38; 0 for the others), which d1
// reads through weights of 1e-38 (3.4 each: finite), while d1's kernel
// gradient for that input is 3.4e38 times a back-propagated error well above
// 1 in magnitude (bn's gamma is 100): Inf. The backward pass runs bn, head,
// d1, d0.
struct Overflowing {
  explicit Overflowing(bool in_backward) {
    Symbol x = model.Input(Shape{20});
    Symbol h = model.Call(Dense::Make(16, Activation::kRelu), x, "d0");
    Symbol g = model.Call(Dense::Make(8, Activation::kRelu), h, "d1");
    Symbol l = model.Call(Dense::Make(3), g, "head");
    Symbol y = model.Call(BatchNormalization::Make(0.9f), l, "bn");
    EXPECT_TRUE(Arena::Create(1 << 20, &arena).ok());
    EXPECT_TRUE(model.Build(y, 4, &arena, /*seed=*/1).ok());
    SgdOptions sgd;
    sgd.learning_rate = 0.01f;
    sgd.momentum = 0.9f;
    OptimizerConfig config = OptimizerConfig::Sgd(sgd);
    config.update_in_backward = in_backward;
    EXPECT_TRUE(model.Compile(config, Loss::kSparseCategoricalCrossentropyFromLogits).ok());
    std::vector<float> w0(16 * 20), w1(8 * 16), w2(3 * 8);  // [units, inputs]
    for (size_t i = 0; i < w0.size(); ++i) w0[i] = i / 20 == 0 ? 0.0f : 0.1f * std::sin(0.3f * i);
    w0[0] = 3.4e38f;
    for (size_t i = 0; i < w1.size(); ++i) w1[i] = i % 16 == 0 ? 1e-38f : 0.2f * std::sin(0.7f * i);
    for (size_t i = 0; i < w2.size(); ++i) w2[i] = 2.0f * std::sin(1.1f * i + 0.5f);
    EXPECT_TRUE(model.variables().Assign(model.FindLayer("d0")->variables()[0], w0).ok());
    EXPECT_TRUE(model.variables().Assign(model.FindLayer("d1")->variables()[0], w1).ok());
    EXPECT_TRUE(model.variables().Assign(model.FindLayer("head")->variables()[0], w2).ok());
    const std::vector<float> gamma(3, 100.0f);
    EXPECT_TRUE(model.variables().Assign(model.variables().Find("bn.weight"), gamma).ok());
    x_ = Wave(4 * 20, 0.2f);
    for (size_t b = 0; b < 4; ++b) x_[b * 20] = 0.0f;  // finite until Overflow()
  }
  void Overflow() { x_[0] = 1.0f; }
  // A copy of every value, slot and step count.
  struct Snapshot {
    std::vector<std::vector<float>> values, slots;
    std::vector<uint64_t> steps;
  };
  Snapshot Take() {
    Snapshot s;
    VariableSet& vars = model.variables();
    for (int i = 0; i < vars.size(); ++i) {
      const float* v = vars.value_data(i);
      s.values.emplace_back(v, v + vars.shape(i).num_elements());
      if (vars.planned_trainable(i)) {
        const float* m = vars.slot_data(i, 0);
        s.slots.emplace_back(m, m + vars.shape(i).num_elements());
      } else {
        s.slots.emplace_back();
      }
      s.steps.push_back(vars.planned_trainable(i) ? vars.steps(i) : 0);
    }
    return s;
  }
  Status Step() { return model.TrainOnBatch(Examples{x_.data(), 4, labels_, nullptr}); }

  Arena arena;  // outlives the model
  Model model;
  std::vector<float> x_;
  const int32_t labels_[4] = {0, 1, 2, 1};
};

// Variable i's value (bit for bit), momentum and step count are as before.
void ExpectUnchanged(const Overflowing::Snapshot& before, const Overflowing::Snapshot& after,
                     int i, const std::string& name) {
  EXPECT_EQ(0, std::memcmp(after.values[i].data(), before.values[i].data(),
                           after.values[i].size() * sizeof(float)))
      << name;
  EXPECT_EQ(after.slots[i], before.slots[i]) << name;
  EXPECT_EQ(after.steps[i], before.steps[i]) << name;
}

// d1's gradient overflows: bn and head are updated (they keep it), d1 and
// d0 are not, nor bn's moving statistics; the Status names d1 and the
// updated layers. The model trains on afterwards.
TEST(UpdateInBackwardNonFiniteTest, AGradientOverflowingAtAMiddleLayerStopsTheStepThere) {
  Overflowing o(/*in_backward=*/true);
  const Status first = o.Step();  // a first step: every layer has state
  ASSERT_TRUE(first.ok()) << first.message();
  const Overflowing::Snapshot before = o.Take();
  const uint64_t model_steps = o.model.step_count();
  o.Overflow();
  const Status s = o.Step();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(s, "d1: d1.weight: the gradient holds")) << s.message();
  EXPECT_TRUE(MessageContains(s, "lower the learning rate. The optimizer updates in the "
                                 "backward pass, so the step stopped at this layer"))
      << s.message();
  EXPECT_TRUE(MessageContains(s, "'bn', 'head' were updated in this step")) << s.message();
  EXPECT_TRUE(MessageContains(s, "'d1', the layers whose backward pass comes after it"))
      << s.message();
  const Overflowing::Snapshot after = o.Take();
  VariableSet& vars = o.model.variables();
  for (int i = 0; i < vars.size(); ++i) {
    const std::string& name = vars.name(i);
    const bool updated = name.rfind("head.", 0) == 0 || name == "bn.weight" || name == "bn.bias";
    if (updated) {
      EXPECT_NE(after.values[i], before.values[i]) << name;
      EXPECT_NE(after.slots[i], before.slots[i]) << name;
      EXPECT_EQ(after.steps[i], before.steps[i] + 1) << name;
    } else {  // d0, d1 and bn's moving statistics, bit for bit
      ExpectUnchanged(before, after, i, name);
    }
  }
  EXPECT_EQ(o.model.step_count(), model_steps + 1);  // as the default counts a refused update
  // The next step on finite data is an ordinary one.
  o.x_[0] = 0.0f;
  const Status next = o.Step();
  EXPECT_TRUE(next.ok()) << next.message();
}

// The default mode on the same input: all or nothing.
TEST(UpdateInBackwardNonFiniteTest, TheDefaultModeChangesNothingOnTheSameInput) {
  Overflowing o(/*in_backward=*/false);
  ASSERT_TRUE(o.Step().ok());
  const Overflowing::Snapshot before = o.Take();
  o.Overflow();
  const Status s = o.Step();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(MessageContains(s, "d1.weight: the gradient holds")) << s.message();
  EXPECT_TRUE(MessageContains(s, "nothing was updated")) << s.message();
  const Overflowing::Snapshot after = o.Take();
  for (int i = 0; i < o.model.variables().size(); ++i) {
    ExpectUnchanged(before, after, i, o.model.variables().name(i));
  }
}

// A NaN loss: the backward pass does not run, nothing changes.
TEST(UpdateInBackwardNonFiniteTest, ANanLossChangesNothing) {
  Overflowing o(/*in_backward=*/true);
  ASSERT_TRUE(o.Step().ok());
  const Overflowing::Snapshot before = o.Take();
  const uint64_t model_steps = o.model.step_count();
  o.x_[5] = std::numeric_limits<float>::quiet_NaN();
  const Status s = o.Step();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(MessageContains(s, "the loss is nan; nothing was updated")) << s.message();
  const Overflowing::Snapshot after = o.Take();
  for (int i = 0; i < o.model.variables().size(); ++i) {
    ExpectUnchanged(before, after, i, o.model.variables().name(i));
  }
  EXPECT_EQ(o.model.step_count(), model_steps);
}

// ---- Options ----

TEST(UpdateInBackwardOptionsTest, GlobalClipnormIsRefused) {
  Arena arena;
  Model model;
  ASSERT_TRUE(Mlp(&model, &arena).ok());
  OptimizerConfig config = InBackward(OptimizerConfig::Adam(AdamOptions()));
  config.clipping.global_clipnorm = 1.0f;
  const Loss loss = Loss::kSparseCategoricalCrossentropyFromLogits;
  const Status s = model.Compile(config, loss);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(s, "update_in_backward with global_clipnorm = 1")) << s.message();
  PlanOptions options;
  options.optimizer = &config;
  options.loss = &loss;
  ModelPlan plan;
  EXPECT_EQ(model.PlanMemory(options, &plan).code(), StatusCode::kInvalidArgument);
  config.clipping.global_clipnorm = 0.0f;
  config.clipping.clipnorm = 1.0f;  // per variable: fine
  EXPECT_TRUE(model.Compile(config, loss).ok());
}

// The optimizer's entry for a few variables: all or none, and not with
// global clipping.
TEST(UpdateInBackwardOptionsTest, ApplyGradientsOfIsAllOrNone) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  VariableSet vars(&arena);
  Variable a, b, frozen;
  ASSERT_TRUE(vars.Create("a", {4}, true, &a).ok());
  ASSERT_TRUE(vars.Create("b", {3}, true, &b).ok());
  ASSERT_TRUE(vars.Create("frozen", {2}, false, &frozen).ok());
  SgdOptions options;
  options.learning_rate = 0.5f;
  options.momentum = 0.9f;
  SGD sgd(&vars, options);
  sgd.SetUpdateInBackward(true);
  ASSERT_TRUE(vars.Prepare().ok());
  EXPECT_EQ(arena.bytes(Region::kGradients), 0u);
  EXPECT_EQ(arena.bytes(Region::kOptimizerState), 128u);
  EXPECT_FALSE(a.gradient().present());
  EXPECT_EQ(sgd.ApplyOwnGradients().code(), StatusCode::kFailedPrecondition);
  float ga[4] = {1, 2, 3, 4}, gb[3] = {1, std::nanf(""), 1};
  float* grads[2] = {ga, gb};
  const int both[2] = {a.index(), b.index()};
  const Status nan = sgd.ApplyGradientsOf(both, grads, 2);
  EXPECT_TRUE(MessageContains(nan, "b: the gradient holds 1 NaN or infinite value (of 3); none of "
                                   "the variables given with it was updated"))
      << nan.message();
  EXPECT_EQ(a.value().data()[0], 0.0f);
  EXPECT_EQ(vars.steps(a.index()), 0u);
  gb[1] = 2.0f;
  ASSERT_TRUE(sgd.ApplyGradientsOf(both, grads, 2).ok());
  EXPECT_EQ(a.value().data()[3], -2.0f);
  EXPECT_EQ(b.value().data()[1], -1.0f);
  EXPECT_EQ(vars.steps(b.index()), 1u);
  const int to_frozen[1] = {frozen.index()};
  EXPECT_EQ(sgd.ApplyGradientsOf(to_frozen, grads, 1).code(), StatusCode::kFailedPrecondition);
  GradientClipping global;
  global.global_clipnorm = 1.0f;
  ASSERT_TRUE(sgd.SetClipping(global).ok());
  EXPECT_EQ(sgd.ApplyGradientsOf(both, grads, 2).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(vars.steps(b.index()), 1u);
}

}  // namespace
}  // namespace thaw
