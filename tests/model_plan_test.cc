// Plans made before Build, from a model's description alone: they equal the
// plans of the built model and the arena's measured high-water, on every
// compiled SIMD target and thread count, and a block sized for training at
// the largest batch runs every smaller batch and prediction. Plans for a
// named target come from data (simd/target_shapes.h), for any target on any
// CPU: they equal the plans made on that target where this CPU runs it, a
// hand computation for AVX3, and a table for the reference MLP.
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
// target with that many threads, for every compiled target this CPU runs.
// Targets this CPU lacks (AVX3 on an AVX2 machine) are planned from data
// too: the plan comes back, the same each time.
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
        const std::string name = std::string(c.model) + ", " + simd::TargetNames(target) + ", " +
                                 std::to_string(threads) + " threads";
        PlanOptions named = options;
        named.target = target;
        named.threads = threads;
        // A CPU-chosen vector length (SVE, SVE2) this CPU cannot tell.
        const simd::TargetShape* shape = simd::FindTargetShape(target, simd::kBuildArch);
        ASSERT_NE(shape, nullptr) << name;
        const bool runs = (simd::SupportedTargets() & target) != 0;
        if (shape->vector_bytes == 0 && !runs) named.vector_bits = 512;
        ModelPlan plan, again;
        Status s = d.model.PlanMemory(named, &plan);
        ASSERT_TRUE(s.ok()) << name << ": " << s.message();
        ASSERT_TRUE(d.model.PlanMemory(named, &again).ok()) << name;
        ExpectSameBytes(plan.bytes, again.bytes, name + ", twice");
        EXPECT_EQ(plan.arena_bytes, again.arena_bytes) << name;
        if (!runs) continue;
        // The same plan, made on that target with that many threads.
        hwy::SetSupportedTargetsForTest(target);
        PlanOptions here = options;
        here.threads = threads;
        ModelPlan local;
        ASSERT_TRUE(d.model.PlanMemory(here, &local).ok());
        hwy::SetSupportedTargetsForTest(0);
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
  options.target = 1;  // no SIMD target has bit 0
  ModelPlan plan;
  Status s = d.model.PlanMemory(options, &plan);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(s, "not one thaw can plan for")) << s.message();
  options.target = HWY_AVX2;
  options.vector_bits = 512;  // AVX2's are 256 bits
  s = d.model.PlanMemory(options, &plan);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(s, "256-bit vectors")) << s.message();
  options.target = 0;
  options.vector_bits = 0;
  options.threads = -1;
  EXPECT_EQ(d.model.PlanMemory(options, &plan).code(), StatusCode::kInvalidArgument);
}

// The kernels' scratch buffers of a step's plan (one per call that needs
// one), in step order; or (kernels == false) the step's other buffers.
std::vector<size_t> ScratchBuffers(const ModelPlan& plan, bool kernels = true) {
  std::vector<size_t> bytes;
  for (const PlannedBuffer& b : plan.step_buffers) {
    if ((std::strcmp(b.what, "scratch") == 0) == kernels) bytes.push_back(b.bytes);
  }
  return bytes;
}

// AVX3 planned on any CPU (this one need not have AVX-512), against the
// packed GEMM's rules worked by hand (simd/gemm_plan.cc). The MLP 64-32-10,
// batch 8, plain SGD, all trainable; its products (m x n x k):
//  - hidden forward, X W^T 8 x 32 x 64: the dot path (k >= 64, m <= 64),
//    no scratch;
//  - head forward, 8 x 10 x 32 (k < 64: packed). C = C' with R = W^T read
//    across rows, so R is packed: kc = 32, NR = 2 x 16 = 32 on AVX3, R area
//    32 x RoundUp(10, 32) = 1024 floats = 4096 B. (C^T instead: 2 tiles of
//    8 x 32 for 512 cycles + 154 + 200, against 256 + 192 + 24.) L = X
//    (rows contiguous) in place, M = 8 a whole tile: no edge;
//  - head backward: dW = dY^T X, 10 x 32 x 8: R = X rows in place, L
//    strided, not packed (N = 32 <= 4 NR), M = 10 not a multiple of MR = 8:
//    an edge tile of kc x MR = 8 x 8 = 64 floats = 256 B; dX = dY W,
//    8 x 32 x 10: everything in place, whole tiles: 0; the call's block is
//    the larger, 256 B;
//  - hidden backward: dW only (the input has no gradient), 32 x 64 x 8:
//    in place, M = 32 and N = 64 whole tiles and panels: no scratch.
// So two scratch buffers, 4096 B and 256 B. On AVX2 (NR = 16, MR = 6): the
// head's R area 32 x 16 = 512 floats plus an L edge (8 % 6 rows) of
// 32 x 6 -> 192: 2816 B; head backward max(Align16(8 x 6) = 48,
// Align16(10 x 6) = 64) floats = 256 B; hidden backward an L edge (32 % 6)
// of Align16(8 x 6) = 48 floats = 192 B.
TEST(PlanForAnyTargetTest, Avx3AndAvx2ScratchAsWorkedByHand) {
  for (int threads : {1, 2}) {
    ThreadPool pool(1);
    Described d(pool);
    d.Mlp();
    PlanOptions options;
    options.batch = kBatch;
    options.output = d.output;
    options.threads = threads;
    ModelPlan avx3, avx3_again, avx2, scalar;
    options.target = HWY_AVX3;
    Status s = d.model.PlanMemory(options, &avx3);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_TRUE(d.model.PlanMemory(options, &avx3_again).ok());
    EXPECT_EQ(ScratchBuffers(avx3), (std::vector<size_t>{4096, 256}));
    ExpectSameBytes(avx3.bytes, avx3_again.bytes, "AVX3 twice");
    EXPECT_EQ(avx3.arena_bytes, avx3_again.arena_bytes);
    options.target = HWY_AVX2;
    ASSERT_TRUE(d.model.PlanMemory(options, &avx2).ok());
    EXPECT_EQ(ScratchBuffers(avx2), (std::vector<size_t>{2816, 256, 192}));
    // Everything else does not depend on the target.
    options.target = HWY_SCALAR;
    ASSERT_TRUE(d.model.PlanMemory(options, &scalar).ok());
    for (Region r : {Region::kWeights, Region::kGradients, Region::kOptimizerState,
                     Region::kActivations}) {
      EXPECT_EQ(avx3.bytes[r], scalar.bytes[r]) << RegionName(r);
      EXPECT_EQ(avx2.bytes[r], scalar.bytes[r]) << RegionName(r);
    }
    EXPECT_EQ(ScratchBuffers(avx3, false), ScratchBuffers(scalar, false));
    EXPECT_EQ(ScratchBuffers(avx2, false), ScratchBuffers(scalar, false));
  }
}

// The reference MLP 784-256-128-10 at batch 8, trained with Adam, all
// layers trainable, 1 thread: the arena for every target thaw plans for,
// from data, on any CPU (so x86 and Arm runs of this test check the same
// numbers). Where this CPU runs the target, the plan made there (dispatch
// pinned to it) and a training step's measured high-water agree.
TEST(PlanForAnyTargetTest, TheReferenceMlpOnEveryTarget) {
  struct Golden {
    const char* target;
    size_t step;   // ModelPlan::bytes.total(): the high-water of a step at batch 8
    size_t arena;  // ModelPlan::arena_bytes: every batch up to 8
  };
  // x86: NR = 32 (AVX3), 16 (AVX2), 8 (SSE4), 3 (SCALAR); 64-bit Arm:
  // 8 x 3 vectors of 4 to 64 lanes (SVE and SVE2 alike at one length).
  // Only the GEMMs' packing scratch differs; the rest (weights, Adam's
  // state, activations) is 3.8 MB.
  const Golden goldens[] = {
      {"AVX3_DL", 3809024, 3809024},   {"AVX3", 3809024, 3809024},
      {"AVX2", 3808512, 3808512},      {"SSE4", 3808512, 3808512},
      {"SSSE3", 3808512, 3808512},     {"SVE2_128", 3808768, 3808768},
      {"SVE_256", 3808768, 3808768},   {"SVE:128", 3808768, 3808768},
      {"SVE:256", 3808768, 3808768},   {"SVE2:128", 3808768, 3808768},
      {"SVE:512", 3812224, 3812608},   {"SVE2:512", 3812224, 3812608},
      {"SVE2:2048", 3885312, 3886336},
      {"NEON", 3808768, 3808768},      {"SCALAR", 3808576, 3808576},
  };
  const OptimizerConfig adam = OptimizerConfig::Adam(AdamOptions());
  const Loss loss = Loss::kSparseCategoricalCrossentropyFromLogits;
  std::string measured;  // the targets measured here
  for (const Golden& g : goldens) {
    simd::TargetDescription target;
    Status s = simd::DescribeTargetNamed(g.target, &target);
    ASSERT_TRUE(s.ok()) << g.target << ": " << s.message();
    // 32-bit Arm's NEON has other tiles (16 registers): not this table's.
    // (SCALAR's tiles are the same everywhere: a 32-bit build checks it.)
    if (target.shape->arch == simd::TargetArch::kArm32 && target.shape->target != HWY_SCALAR) {
      continue;
    }
    ThreadPool pool(1);
    Model model(pool);
    Symbol x = model.Input(Shape{784});
    Symbol h = model.Call(Dense::Make(256, Activation::kRelu), x, "dense_0");
    h = model.Call(Dense::Make(128, Activation::kRelu), h, "dense_1");
    Symbol y = model.Call(Dense::Make(10), h, "head");
    PlanOptions options;
    options.batch = kBatch;
    options.output = y;
    options.optimizer = &adam;
    options.loss = &loss;
    options.target = target.shape->target;
    options.vector_bits = target.shape->vector_bytes == 0 ? target.lanes * 32 : 0;
    options.threads = 1;
    ModelPlan plan;
    s = model.PlanMemory(options, &plan);
    ASSERT_TRUE(s.ok()) << g.target << ": " << s.message();
    EXPECT_EQ(plan.bytes.total(), g.step) << g.target;
    EXPECT_EQ(plan.arena_bytes, g.arena) << g.target;

    const int64_t t = target.shape->target;
    if (!simd::IsCompiledTarget(t) || (simd::SupportedTargets() & t) == 0 ||
        simd::internal::LanesByRunning(t) != target.lanes) {
      continue;
    }
    hwy::SetSupportedTargetsForTest(t);
    PlanOptions here = options;
    here.target = 0;
    here.vector_bits = 0;
    ModelPlan local;
    ASSERT_TRUE(model.PlanMemory(here, &local).ok()) << g.target;
    EXPECT_EQ(local.bytes.total(), plan.bytes.total()) << g.target << " planned here";
    Arena arena;
    ASSERT_TRUE(Arena::Create(plan.bytes.total(), &arena).ok()) << g.target;
    ASSERT_TRUE(model.Build(y, kBatch, &arena, 1).ok()) << g.target;
    ASSERT_TRUE(model.Compile(adam, loss).ok()) << g.target;
    const std::vector<float> inputs = Inputs(kBatch * 784);
    std::vector<int32_t> labels(kBatch, 3);
    s = model.TrainOnBatch(Examples{inputs.data(), kBatch, labels.data(), nullptr, 784});
    hwy::SetSupportedTargetsForTest(0);
    ASSERT_TRUE(s.ok()) << g.target << ": " << s.message();
    EXPECT_EQ(arena.high_water(), plan.bytes.total()) << g.target << " measured";
    measured += std::string(measured.empty() ? "" : " ") + g.target;
  }
  // The target this CPU dispatches to is always among them.
  EXPECT_FALSE(measured.empty());
  RecordProperty("measured", measured);
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
