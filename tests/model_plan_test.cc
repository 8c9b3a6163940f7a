// Plans made before Build, from a model's description alone: they equal the
// plans of the built model and the arena's measured high-water, on every
// compiled SIMD target and thread count, and a block sized for training at
// the largest batch runs every smaller batch and prediction.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/thaw.h"
#include "gtest/gtest.h"
#include "tests/status_text.h"
#include "hwy/targets.h"
#include "simd/targets.h"

namespace thaw {
namespace {

constexpr size_t kBatch = 8;

// A functional model being described: an MLP 64-32-10, or a small CNN with
// every kind of layer a device fine-tunes (conv + BatchNorm, depthwise,
// pooling, a residual add).
struct Described {
  explicit Described(ThreadPool& pool) : model(pool) {}
  Model model;
  Symbol output;
  std::string prefix;  // the layer frozen for "prefix frozen"
  size_t inputs = 0;

  void Mlp() {
    Symbol x = model.Input(Shape{64});
    Symbol h = model.Call(Dense::Make(32, Activation::kRelu), x, "hidden");
    output = model.Call(Dense::Make(10), h, "head");
    prefix = "hidden";
    inputs = 64;
  }
  void Cnn() {
    Symbol x = model.Input(Shape{12, 12, 3}, Layout::kNHWC);
    Symbol c = model.Call(Conv2D::Make(8, 3, 1, Padding::kSame, Activation::kLinear, false), x,
                          "conv");
    Symbol b = model.Call(BatchNormalization::Make(), c, "bn");
    Symbol r = model.Call(ReLU6(), b);
    Symbol d = model.Call(DepthwiseConv2D::Make(3, 1, Padding::kSame), r, "dw");
    Symbol s = model.Call(Add::Make(), {r, d});
    Symbol p = model.Call(MaxPool2D::Make(2), s);
    Symbol q = model.Call(Conv2D::Make(16, 1, 1, Padding::kValid, Activation::kRelu), p, "pw");
    Symbol g = model.Call(GlobalAveragePooling2D::Make(), q);
    output = model.Call(Dense::Make(5), g, "head");
    prefix = "conv";
    inputs = 12 * 12 * 3;
  }
};

struct Case {
  const char* model;
  bool freeze_prefix;
  OptimizerConfig optimizer;
  Loss loss;
};

std::vector<Case> Cases() {
  SgdOptions momentum;
  momentum.momentum = 0.9f;
  std::vector<Case> cases;
  for (const char* model : {"mlp", "cnn"}) {
    for (bool freeze : {false, true}) {
      cases.push_back({model, freeze, OptimizerConfig::Sgd(momentum),
                       Loss::kSparseCategoricalCrossentropyFromLogits});
      cases.push_back({model, freeze, OptimizerConfig::Adam(AdamOptions()),
                       Loss::kSparseCategoricalCrossentropyFromLogits});
    }
  }
  return cases;
}

void Describe(const Case& c, Described* d) {
  if (std::strcmp(c.model, "mlp") == 0) {
    d->Mlp();
  } else {
    d->Cnn();
  }
  if (c.freeze_prefix) d->model.FindLayer(d->prefix)->SetTrainable(false);
}

// A training plan of `c` at kBatch, before Build.
PlanOptions TrainingPlan(const Case& c, const Described& d) {
  PlanOptions options;
  options.batch = kBatch;
  options.output = d.output;
  options.optimizer = &c.optimizer;
  options.loss = &c.loss;
  return options;
}

std::string Name(const Case& c, int threads) {
  return std::string(c.model) + (c.freeze_prefix ? ", prefix frozen" : ", all trainable") +
         ", " + (c.optimizer.kind == OptimizerConfig::Kind::kSgd ? "SGD" : "Adam") + ", " +
         std::to_string(threads) + " thread(s), " + simd::DispatchedTargetName();
}

std::vector<float> Inputs(size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i) + 0.1f);
  return x;
}

void ExpectSameBytes(const MemoryReport& a, const MemoryReport& b, const std::string& what) {
  for (int r = 0; r < kNumRegions; ++r) {
    EXPECT_EQ(a.bytes[r], b.bytes[r]) << what << ": region " << RegionName(static_cast<Region>(r));
  }
}

// Runs `body` once on every SIMD target this build compiled and this CPU
// runs, with dynamic dispatch pinned to it.
template <class Body>
void OnEveryTarget(Body&& body) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

std::vector<int> ThreadCounts() {
  return ThreadsEnabled() ? std::vector<int>{1, 2} : std::vector<int>{1};
}

TEST(PlanBeforeBuildTest, EqualsThePlanOfTheBuiltModelAndItsHighWater) {
  OnEveryTarget([] {
    for (int threads : ThreadCounts()) {
      ThreadPool pool(threads);
      for (const Case& c : Cases()) {
        const std::string name = Name(c, threads);
        Described d(pool);
        Describe(c, &d);
        const PlanOptions options = TrainingPlan(c, d);
        ModelPlan before, predict_before;
        ASSERT_TRUE(d.model.PlanMemory(options, &before).ok()) << name;
        PlanOptions predict = options;
        predict.batch = 1;
        predict.mode = StepMode::kPredict;
        ASSERT_TRUE(d.model.PlanMemory(predict, &predict_before).ok()) << name;
        EXPECT_EQ(before.bytes.capacity, 0u) << name << ": no arena yet";

        // Built into exactly that many bytes, the model trains, and its
        // plans and the measured high-water are the ones made before.
        Arena arena;
        ASSERT_TRUE(Arena::Create(before.bytes.total(), &arena).ok()) << name;
        ASSERT_TRUE(d.model.Build(d.output, kBatch, &arena, 1).ok()) << name;
        ASSERT_TRUE(d.model.Compile(c.optimizer, c.loss).ok()) << name;
        ModelPlan after, predict_after;
        ASSERT_TRUE(d.model.PlanMemory(kBatch, /*training=*/true, &after).ok()) << name;
        ASSERT_TRUE(d.model.PlanMemory(1, /*training=*/false, &predict_after).ok()) << name;
        ExpectSameBytes(before.bytes, after.bytes, name);
        ExpectSameBytes(predict_before.bytes, predict_after.bytes, name + ", predict");
        EXPECT_EQ(before.first_backward_layer, after.first_backward_layer) << name;

        const std::vector<float> x = Inputs(kBatch * d.inputs);
        std::vector<int32_t> labels(kBatch);
        for (size_t i = 0; i < kBatch; ++i) labels[i] = static_cast<int32_t>(i % 5);
        Examples batch{x.data(), kBatch, labels.data(), nullptr, d.inputs};
        Status trained = d.model.TrainOnBatch(batch);
        ASSERT_TRUE(trained.ok()) << name << ": " << trained.message();
        EXPECT_EQ(arena.high_water(), before.bytes.total()) << name;
      }
    }
  });
}

// An arena of the training plan's arena_bytes at the largest batch holds
// every smaller batch's training step, evaluation and prediction.
TEST(PlanBeforeBuildTest, TheLargestBatchCoversEverySmallerOne) {
  OnEveryTarget([] {
    for (int threads : ThreadCounts()) {
      ThreadPool pool(threads);
      for (const Case& c : Cases()) {
        const std::string name = Name(c, threads);
        Described d(pool);
        Describe(c, &d);
        const PlanOptions options = TrainingPlan(c, d);
        ModelPlan plan;
        ASSERT_TRUE(d.model.PlanMemory(options, &plan).ok()) << name;
        Arena arena;
        ASSERT_GE(plan.arena_bytes, plan.bytes.total()) << name;
        ASSERT_TRUE(Arena::Create(plan.arena_bytes, &arena).ok()) << name;
        ASSERT_TRUE(d.model.Build(d.output, kBatch, &arena, 1).ok()) << name;
        ASSERT_TRUE(d.model.Compile(c.optimizer, c.loss).ok()) << name;
        const std::vector<float> x = Inputs(kBatch * d.inputs);
        std::vector<int32_t> labels(kBatch, 1);
        std::vector<float> out(kBatch * d.model.output_features());
        for (size_t b = 1; b <= kBatch; ++b) {
          Examples batch{x.data(), b, labels.data(), nullptr, d.inputs};
          Metrics metrics;
          Status s = d.model.TrainOnBatch(batch);
          EXPECT_TRUE(s.ok()) << name << ", train at batch " << b << ": " << s.message();
          s = d.model.Evaluate(batch, b, &metrics);
          EXPECT_TRUE(s.ok()) << name << ", evaluate at batch " << b << ": " << s.message();
          s = d.model.Predict(x.data(), b, out.data());
          EXPECT_TRUE(s.ok()) << name << ", predict at batch " << b << ": " << s.message();
        }
      }
    }
  });
}

// A plan for a named target and thread count is the plan made on that
// target with that many threads. Targets this CPU lacks (AVX3 on an AVX2
// machine) are refused: their planning code may use their instructions.
TEST(PlanBeforeBuildTest, PlansForANamedMachineAreThatMachinesPlans) {
  std::vector<int64_t> compiled;
  for (int shift = 0; shift < 63; ++shift) {
    const int64_t bit = int64_t{1} << shift;
    if (simd::IsCompiledTarget(bit)) compiled.push_back(bit);
  }
  ASSERT_FALSE(compiled.empty());
  for (const Case& c : Cases()) {
    for (int threads : {1, 2, 4}) {
      ThreadPool one(1);
      Described d(one);
      Describe(c, &d);
      const PlanOptions options = TrainingPlan(c, d);
      for (int64_t target : compiled) {
        PlanOptions named = options;
        named.target = target;
        named.threads = threads;
        ModelPlan plan;
        Status s = d.model.PlanMemory(named, &plan);
        if ((hwy::SupportedTargets() & target) == 0) {
          EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << hwy::TargetName(target);
          EXPECT_TRUE(MessageContains(s, "this CPU cannot run"));
          continue;
        }
        ASSERT_TRUE(s.ok()) << hwy::TargetName(target) << ": " << s.message();
        // The same plan, made on that target with that many threads.
        hwy::SetSupportedTargetsForTest(target);
        PlanOptions here = options;
        here.threads = threads;
        ModelPlan local;
        ASSERT_TRUE(d.model.PlanMemory(here, &local).ok());
        hwy::SetSupportedTargetsForTest(0);
        const std::string name = std::string(c.model) + ", " + hwy::TargetName(target) + ", " +
                                 std::to_string(threads) + " threads";
        ExpectSameBytes(plan.bytes, local.bytes, name);
        EXPECT_EQ(plan.arena_bytes, local.arena_bytes) << name;
      }
    }
  }
  ThreadPool one(1);
  Described d(one);
  d.Mlp();
  PlanOptions options;
  options.output = d.output;
  int64_t absent = 1;
  while (simd::IsCompiledTarget(absent)) absent <<= 1;
  options.target = absent;  // a target this build did not compile
  ModelPlan plan;
  Status s = d.model.PlanMemory(options, &plan);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(s, "not compiled into this build"))
      << s.message();
  options.target = 0;
  options.threads = -1;
  EXPECT_EQ(d.model.PlanMemory(options, &plan).code(), StatusCode::kInvalidArgument);
}

TEST(PlanBeforeBuildTest, FollowsTheFreezeSetAskedBeforeBuild) {
  ThreadPool pool(1);
  Described all(pool), head(pool);
  all.Mlp();
  head.Mlp();
  head.model.FindLayer("hidden")->SetTrainable(false);
  PlanOptions options;
  options.batch = kBatch;
  ModelPlan a, h;
  options.output = all.output;
  ASSERT_TRUE(all.model.PlanMemory(options, &a).ok());
  options.output = head.output;
  ASSERT_TRUE(head.model.PlanMemory(options, &h).ok());
  // Plain SGD (no optimizer given): gradients only, of the head's 10 x 32 + 10.
  EXPECT_EQ(h.bytes[Region::kGradients], 1280u + 64u);
  EXPECT_EQ(h.bytes[Region::kOptimizerState], 0u);
  EXPECT_EQ(a.bytes[Region::kGradients], 32u * 64 * 4 + 128 + 1280 + 64);
  EXPECT_EQ(h.bytes[Region::kWeights], a.bytes[Region::kWeights]);
  EXPECT_EQ(h.first_backward_layer, 1u);
}

TEST(PlanBeforeBuildTest, RefusesWhatCouldNotBuild) {
  ThreadPool pool(1);
  Described d(pool);
  d.Mlp();
  PlanOptions options;
  ModelPlan plan;
  Status s = d.model.PlanMemory(options, &plan);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(s, "PlanOptions::output"))
      << s.message();

  Described other(pool);
  other.Mlp();
  options.output = other.output;
  EXPECT_EQ(d.model.PlanMemory(options, &plan).code(), StatusCode::kInvalidArgument);

  options.output = d.output;
  SgdOptions bad;
  bad.learning_rate = -1.0f;
  const OptimizerConfig config = OptimizerConfig::Sgd(bad);
  options.optimizer = &config;
  EXPECT_EQ(d.model.PlanMemory(options, &plan).code(), StatusCode::kInvalidArgument);
  options.optimizer = nullptr;
  options.batch = 0;
  EXPECT_EQ(d.model.PlanMemory(options, &plan).code(), StatusCode::kInvalidArgument);

  // A description that failed cannot be planned: its error comes back.
  Symbol wrong = d.model.Call(Add::Make(), {d.output, d.model.Input(Shape{3})});
  EXPECT_FALSE(wrong.valid());
  options.batch = 1;
  EXPECT_EQ(d.model.PlanMemory(options, &plan).code(), d.model.status().code());
  EXPECT_FALSE(d.model.status().ok());
}

}  // namespace
}  // namespace thaw
