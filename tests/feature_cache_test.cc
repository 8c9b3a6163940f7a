// Fit's frozen-prefix feature cache (FitOptions::feature_cache, core/exec/
// feature_cut.h): the same bits as training without it, recomputed on every
// kind of change, planned bytes against a hand computation, and what an
// arena too small for it does.
#include <cmath>
#include <cstring>
#include <functional>
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

// Records what Fit says about the cache.
struct Info : FitCallback {
  FitInfo info;
  std::function<Status(const FitPosition&)> on_step;
  void OnTrainBegin(const FitInfo& i) override { info = i; }
  Status OnStepEnd(const FitPosition& next) override {
    return on_step ? on_step(next) : Status::Ok();
  }
};

// Bit-exact comparison of every variable of two models.
void ExpectSameVariables(const Model& a, const Model& b, const std::string& what) {
  ASSERT_EQ(a.variables().size(), b.variables().size());
  for (int i = 0; i < a.variables().size(); ++i) {
    const size_t n = a.variables().shape(i).num_elements();
    EXPECT_EQ(0, std::memcmp(a.variables().value_data(i), b.variables().value_data(i),
                             n * sizeof(float)))
        << what << ": " << a.variables().name(i);
  }
}

void ExpectSameHistory(const std::vector<EpochResult>& a, const std::vector<EpochResult>& b,
                       const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t e = 0; e < a.size(); ++e) {
    EXPECT_EQ(0, std::memcmp(&a[e].train.loss, &b[e].train.loss, sizeof(double)))
        << what << ", epoch " << e << ": " << a[e].train.loss << " vs " << b[e].train.loss;
    EXPECT_EQ(a[e].train.accuracy, b[e].train.accuracy) << what << ", epoch " << e;
    EXPECT_EQ(0, std::memcmp(&a[e].validation.loss, &b[e].validation.loss, sizeof(double)))
        << what << ", epoch " << e;
  }
}

// A model to build twice: with and without the cache.
using Builder = std::function<Status(Model* model, Arena* arena)>;

struct Twin {
  ThreadPool pool;
  Arena arena;
  std::unique_ptr<Model> model;
  explicit Twin(int threads) : pool(threads) {}
};

// MLP 20 -> 16 relu -> 8 relu -> 3 logits, Adam; the first two layers frozen.
Status Mlp(Model* model, Arena* arena) {
  Symbol x = model->Input(Shape{20});
  Symbol h = model->Call(Dense::Make(16, Activation::kRelu), x, "d0");
  Symbol g = model->Call(Dense::Make(8, Activation::kRelu), h, "d1");
  Symbol y = model->Call(Dense::Make(3), g, "head");
  THAW_RETURN_IF_ERROR(model->Build(y, 16, arena, /*seed=*/5));
  THAW_RETURN_IF_ERROR(model->Compile(OptimizerConfig::Adam(AdamOptions()),
                                      Loss::kSparseCategoricalCrossentropyFromLogits));
  model->FindLayer("d0")->SetTrainable(false);
  model->FindLayer("d1")->SetTrainable(false);
  return Status::Ok();
}

// tests/sample_data.h's small CNN with BatchNorm, trained whole for a few
// steps first (moving statistics away from 0 and 1), then frozen up to (not
// including) `first_trainable`.
Status FrozenCnn(Model* model, Arena* arena, const std::string& first_trainable,
                 bool warm = true) {
  THAW_RETURN_IF_ERROR(model->Build(SmallCnn(model), 8, arena, /*seed=*/9));
  THAW_RETURN_IF_ERROR(model->Compile(OptimizerConfig::Adam(AdamOptions()),
                                      Loss::kSparseCategoricalCrossentropyFromLogits));
  const std::vector<float> xs = Wave(24 * 64, 0.3f);
  const std::vector<int32_t> ys = Labels(24, 3);
  FitOptions options;
  options.batch_size = 8;
  options.epochs = 2;
  options.feature_cache = CacheMode::kOff;
  if (warm) {
    THAW_RETURN_IF_ERROR(model->Fit(Examples{xs.data(), 24, ys.data(), nullptr, 64}, options));
  }
  bool frozen = true;
  for (size_t i = 0; i < model->num_layers(); ++i) {
    if (model->layer(i).name() == first_trainable) frozen = false;
    model->layer(i).SetTrainable(!frozen);
  }
  return Status::Ok();
}

Status HeadOnlyCnn(Model* model, Arena* arena) { return FrozenCnn(model, arena, "head"); }
Status LastBlockCnn(Model* model, Arena* arena) { return FrozenCnn(model, arena, "dw"); }

// Makes the twins, runs `fits` Fits on both (with the cache kRequired and
// kOff) and compares every loss and weight bit.
struct Scenario {
  Builder build;
  size_t features = 20;
  size_t examples = 50;  // with batch 16: a last batch of 2
  size_t batch = 16;
  int classes = 3;
};

void ExpectBitIdentical(const Scenario& s, int threads, bool shuffle) {
  const std::string what = std::string(shuffle ? "shuffled" : "in order") + ", " +
                           std::to_string(threads) + " thread(s)";
  Twin cached(threads), plain(threads);
  for (Twin* t : {&cached, &plain}) {
    ASSERT_TRUE(Arena::Create(4 << 20, &t->arena).ok());
    t->model = std::make_unique<Model>(t->pool);
    const Status built = s.build(t->model.get(), &t->arena);
    ASSERT_TRUE(built.ok()) << built.message();
  }
  const std::vector<float> xs = Wave(s.examples * s.features, 0.1f);
  const std::vector<int32_t> ys = Labels(s.examples, s.classes);
  const Examples train{xs.data(), s.examples, ys.data(), nullptr, s.features};
  // Validation after each epoch runs whole, beside the cache.
  const std::vector<float> val_x = Wave(11 * s.features, 0.7f);
  const std::vector<int32_t> val_y = Labels(11, s.classes);
  const Examples validation{val_x.data(), 11, val_y.data(), nullptr, s.features};
  for (int fit = 0; fit < 2; ++fit) {  // the second Fit reuses the cache
    std::vector<EpochResult> history[2];
    Info info[2];
    for (int k = 0; k < 2; ++k) {
      FitOptions options;
      options.epochs = 3;
      options.batch_size = s.batch;
      options.shuffle = shuffle;
      options.seed = 17 + fit;
      options.callback = &info[k];
      options.validation = fit == 1 ? &validation : nullptr;
      options.feature_cache = k == 0 ? CacheMode::kRequired : CacheMode::kOff;
      Model& m = *(k == 0 ? cached : plain).model;
      const Status fitted = m.Fit(train, options, &history[k]);
      ASSERT_TRUE(fitted.ok()) << fitted.message();
    }
    EXPECT_EQ(info[0].info.cache, fit == 0 ? CacheState::kComputed : CacheState::kReused) << what;
    EXPECT_EQ(info[1].info.cache, CacheState::kOff);
    EXPECT_GT(info[0].info.cache_bytes, 0u);
    EXPECT_EQ(cached.arena.bytes(Region::kFeatureCache), info[0].info.cache_bytes);
    ExpectSameHistory(history[0], history[1], what + ", Fit " + std::to_string(fit));
    ExpectSameVariables(*cached.model, *plain.model, what + ", Fit " + std::to_string(fit));
  }
  // Evaluation and prediction after it agree too.
  std::vector<float> p0(s.examples * s.classes), p1(s.examples * s.classes);
  ASSERT_TRUE(cached.model->Predict(xs.data(), s.examples, p0.data()).ok());
  ASSERT_TRUE(plain.model->Predict(xs.data(), s.examples, p1.data()).ok());
  EXPECT_EQ(0, std::memcmp(p0.data(), p1.data(), p0.size() * sizeof(float)));
}

class FeatureCacheTest : public ::testing::TestWithParam<int> {};  // threads

TEST_P(FeatureCacheTest, MlpHeadTrainsBitForBitAsWithoutTheCache) {
  for (bool shuffle : {true, false}) ExpectBitIdentical(Scenario{Mlp}, GetParam(), shuffle);
}

TEST_P(FeatureCacheTest, CnnWithBatchNormHeadTrainsBitForBitAsWithoutTheCache) {
  Scenario s{HeadOnlyCnn, 64, 20, 8, 3};  // a last batch of 4
  for (bool shuffle : {true, false}) ExpectBitIdentical(s, GetParam(), shuffle);
}

// The cut inside the network: the stem's ReLU6 output (8x8x4 per example),
// with BatchNorms after it training on batch statistics.
TEST_P(FeatureCacheTest, CnnWithItsLastBlocksTrainingTrainsBitForBit) {
  Scenario s{LastBlockCnn, 64, 20, 8, 3};
  for (bool shuffle : {true, false}) ExpectBitIdentical(s, GetParam(), shuffle);
}

// A DAG: the trainable part reads the input itself and a frozen feature.
//   x -> frozen (4), x -> trainable (5); both -> concatenate -> head
Status Branches(Model* model, Arena* arena) {
  Symbol x = model->Input(Shape{20});
  Symbol f = model->Call(Dense::Make(4, Activation::kTanh), x, "frozen");
  Symbol t = model->Call(Dense::Make(5, Activation::kRelu), x, "trainable");
  Symbol y = model->Call(Dense::Make(3), model->Call(Concatenate::Make(), {f, t}), "head");
  THAW_RETURN_IF_ERROR(model->Build(y, 16, arena, 2));
  THAW_RETURN_IF_ERROR(model->Compile(OptimizerConfig::Sgd(SgdOptions()),
                                      Loss::kSparseCategoricalCrossentropyFromLogits));
  return model->SetTrainable("frozen", false);
}

TEST_P(FeatureCacheTest, ABranchBesideTheInputTrainsBitForBit) {
  for (bool shuffle : {true, false}) ExpectBitIdentical(Scenario{Branches}, GetParam(), shuffle);
}

// Dropout after the frozen part: it draws a new mask every step, so the cut
// comes before it, and it still runs every step.
Status DropoutAfterFrozen(Model* model, Arena* arena) {
  Symbol x = model->Input(Shape{20});
  Symbol h = model->Call(Dense::Make(16, Activation::kRelu), x, "d0");
  Symbol y = model->Call(Dense::Make(3), model->Call(Dropout::Make(0.5f, 4), h), "head");
  THAW_RETURN_IF_ERROR(model->Build(y, 16, arena, 2));
  THAW_RETURN_IF_ERROR(model->Compile(OptimizerConfig::Adam(AdamOptions()),
                                      Loss::kSparseCategoricalCrossentropyFromLogits));
  return model->SetTrainable("d0", false);
}

TEST_P(FeatureCacheTest, DropoutAfterTheFrozenPartStillDrawsEveryStep) {
  for (bool shuffle : {true, false}) {
    ExpectBitIdentical(Scenario{DropoutAfterFrozen}, GetParam(), shuffle);
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, FeatureCacheTest, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return std::to_string(p.param) + "threads";
                         });

// ---- What is cached ----

TEST(FeatureCutTest, TheCutHoldsTheFewestBytesPerExample) {
  // x (20) -> narrow (4) -> wide (32, relu) -> head: caching "narrow" holds
  // 4 floats per example; "wide" runs (forward only) every step.
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  Model model;
  Symbol x = model.Input(Shape{20});
  Symbol n = model.Call(Dense::Make(4), x, "narrow");
  Symbol w = model.Call(Dense::Make(32, Activation::kRelu), n, "wide");
  Symbol y = model.Call(Dense::Make(3), w, "head");
  ASSERT_TRUE(model.Build(y, 8, &arena).ok());
  ASSERT_TRUE(model.Compile(OptimizerConfig::Sgd(SgdOptions()),
                            Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  ASSERT_TRUE(model.SetTrainable("narrow", false).ok());
  ASSERT_TRUE(model.SetTrainable("wide", false).ok());
  PlanOptions options;
  options.batch = 8;
  options.gather = true;
  options.cache_examples = 100;
  ModelPlan plan;
  ASSERT_TRUE(model.PlanMemory(options, &plan).ok());
  ASSERT_EQ(plan.cached_values.size(), 1u);
  EXPECT_EQ(plan.cached_values[0], "narrow output [4]");
  EXPECT_EQ(plan.cache_example_floats, 4u);
  EXPECT_EQ(plan.bytes[Region::kFeatureCache], AlignUp(100 * 4 * sizeof(float)));
  // Among equal sizes, the latest: the ReLU6 after the BatchNorm after the
  // convolution, not either of them.
  Arena cnn_arena;
  ASSERT_TRUE(Arena::Create(4 << 20, &cnn_arena).ok());
  Model cnn;
  ASSERT_TRUE(LastBlockCnn(&cnn, &cnn_arena).ok());
  ASSERT_TRUE(cnn.PlanMemory(options, &plan).ok());
  ASSERT_EQ(plan.cached_values.size(), 1u);
  EXPECT_EQ(plan.cached_values[0], "relu6_0 output [8,8,4]");
}

TEST(FeatureCutTest, NothingToCacheIsSaidAndRequiredFails) {
  // A Dropout (training mode) before the frozen layer: nothing before the
  // trainable part is the same function of an example at every step.
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  Model model;
  Symbol x = model.Input(Shape{20});
  Symbol h = model.Call(Dense::Make(16), model.Call(Dropout::Make(0.2f), x), "d0");
  ASSERT_TRUE(model.Build(model.Call(Dense::Make(3), h, "head"), 8, &arena).ok());
  ASSERT_TRUE(model.Compile(OptimizerConfig::Sgd(SgdOptions()),
                            Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  ASSERT_TRUE(model.SetTrainable("d0", false).ok());
  const std::vector<float> xs = Wave(20 * 20, 0.0f);
  const std::vector<int32_t> ys = Labels(20, 3);
  Info info;
  FitOptions options;
  options.batch_size = 8;
  options.callback = &info;
  ASSERT_TRUE(model.Fit(Examples{xs.data(), 20, ys.data(), nullptr, 20}, options).ok());
  EXPECT_EQ(info.info.cache, CacheState::kNothingToCache);
  EXPECT_STREQ(CacheStateName(info.info.cache), "nothing to cache");
  options.feature_cache = CacheMode::kRequired;
  const Status s = model.Fit(Examples{xs.data(), 20, ys.data(), nullptr, 20}, options);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(MessageContains(s, "nothing can be cached")) << s.message();
  // Everything trainable: nothing frozen to cache either.
  ASSERT_TRUE(model.SetTrainable("d0", true).ok());
  options.feature_cache = CacheMode::kAuto;
  ASSERT_TRUE(model.Fit(Examples{xs.data(), 20, ys.data(), nullptr, 20}, options).ok());
  EXPECT_EQ(info.info.cache, CacheState::kNothingToCache);
}

// ---- Invalidation ----

// Runs the same sequence of changes and Fits on two MLPs, one with the
// cache: after each Fit every bit agrees, and the cache says whether it
// was recomputed.
class Invalidation : public ::testing::Test {
 protected:
  void SetUp() override {
    for (Twin* t : {&cached_, &plain_}) {
      ASSERT_TRUE(Arena::Create(1 << 20, &t->arena).ok());
      t->model = std::make_unique<Model>(t->pool);
      ASSERT_TRUE(Mlp(t->model.get(), &t->arena).ok());
    }
    xs_ = Wave(50 * 20, 0.1f);
    ys_ = Labels(50, 3);
  }
  // Applies `change` to both models, fits both, and checks the state.
  void FitBoth(const std::function<void(Model&)>& change, CacheState expected,
               const std::string& what, size_t count = 50, size_t batch = 16) {
    for (Twin* t : {&cached_, &plain_}) change(*t->model);
    Info info;
    const uint64_t seed = ++seed_;
    for (Twin* t : {&cached_, &plain_}) {
      FitOptions options;
      options.epochs = 2;
      options.batch_size = batch;
      options.seed = seed;
      options.callback = &info;
      options.feature_cache = t == &cached_ ? CacheMode::kAuto : CacheMode::kOff;
      const Status s = t->model->Fit(Examples{xs_.data(), count, ys_.data(), nullptr, 20}, options);
      ASSERT_TRUE(s.ok()) << what << ": " << s.message();
      if (t == &cached_) {
        EXPECT_EQ(info.info.cache, expected) << what;
      }
    }
    ExpectSameVariables(*cached_.model, *plain_.model, what);
  }

  Twin cached_{1}, plain_{1};
  std::vector<float> xs_;
  std::vector<int32_t> ys_;
  uint64_t seed_ = 0;
};

TEST_F(Invalidation, EveryKindOfChangeRecomputesTheCache) {
  auto nothing = [](Model&) {};
  FitBoth(nothing, CacheState::kComputed, "first Fit");
  FitBoth(nothing, CacheState::kReused, "nothing changed");
  // Another batch size: the rows of an example do not depend on the batch
  // it was computed in.
  FitBoth(nothing, CacheState::kReused, "batches of 5", 50, 5);
  // Assign to a frozen variable the cut reads.
  FitBoth([](Model& m) {
            VariableSet& v = m.variables();
            std::vector<float> b(v.Find("d1.bias").shape().num_elements(), 0.25f);
            ASSERT_TRUE(v.Assign(v.Find("d1.bias"), b).ok());
          },
          CacheState::kComputed, "Assign");
  FitBoth(nothing, CacheState::kReused, "nothing changed after Assign");
  // A direct write through value(), which no counter sees: the fingerprint
  // does.
  FitBoth([](Model& m) { m.variables().Find("d0.weight").value().data()[7] += 0.5f; },
          CacheState::kComputed, "a direct write");
  // A checkpoint load.
  std::vector<unsigned char> checkpoint;
  FitBoth([&](Model& m) {
            size_t size = 0;
            ASSERT_FALSE(SaveCheckpointToMemory(m.variables(), Span<unsigned char>(), &size).ok());
            checkpoint.resize(size);
            ASSERT_TRUE(SaveCheckpointToMemory(m.variables(),
                                               Span<unsigned char>(checkpoint.data(), size), &size)
                            .ok());
            m.variables().Find("d0.bias").value().data()[0] += 1.0f;  // then loaded back
            ASSERT_TRUE(LoadCheckpointFromMemory(
                            Span<const unsigned char>(checkpoint.data(), checkpoint.size()),
                            &m.variables())
                            .ok());
          },
          CacheState::kComputed, "a checkpoint load");
  // A thaw: the cut moves to d0's output; training changes d1.
  FitBoth([](Model& m) { ASSERT_TRUE(m.SetTrainable("d1", true).ok()); }, CacheState::kComputed,
          "d1 thawed");
  FitBoth(nothing, CacheState::kReused, "d1 still thawed");
  // Frozen again: the freeze set is the first one's, d1's values are new.
  FitBoth([](Model& m) { ASSERT_TRUE(m.SetTrainable("d1", false).ok()); }, CacheState::kComputed,
          "d1 frozen again");
  // New data in the same buffer, and fewer examples.
  FitBoth([&](Model&) { xs_[33] += 1.0f; }, CacheState::kComputed, "an input changed in place");
  FitBoth(nothing, CacheState::kComputed, "fewer examples", 40);
  // The same examples in another buffer: the same bytes, reused.
  std::vector<float> moved = xs_;
  xs_.swap(moved);
  FitBoth(nothing, CacheState::kComputed, "back to 50 examples");
  FitBoth(nothing, CacheState::kReused, "the same examples moved");
  // A new loss (Compile): the cut is chosen again.
  FitBoth([](Model& m) {
            ASSERT_TRUE(m.Compile(OptimizerConfig::Sgd(SgdOptions()),
                                  Loss::kSparseCategoricalCrossentropyFromLogits).ok());
          },
          CacheState::kComputed, "Compile");
  // Turned off, then on: still valid.
  FitBoth(nothing, CacheState::kReused, "after Compile");
}

// A callback that changes the frozen part in the middle of a Fit: the steps
// after it run without the cache, and the bits still agree.
TEST_F(Invalidation, AChangeFromACallbackInsideAFitStopsUsingTheCache) {
  for (int k = 0; k < 2; ++k) {
    // k == 0: Assign to a prefix variable; k == 1: thaw d1.
    Info info[2];
    for (int t = 0; t < 2; ++t) {
      Model& m = *(t == 0 ? cached_ : plain_).model;
      info[t].on_step = [&m, k](const FitPosition& next) {
        if (next.epoch == 1 && next.step == 1) {
          VariableSet& v = m.variables();
          if (k == 0) {
            std::vector<float> b(v.Find("d1.bias").shape().num_elements(), -0.125f);
            return v.Assign(v.Find("d1.bias"), b);
          }
          return m.SetTrainable("d1", true);
        }
        return Status::Ok();
      };
      FitOptions options;
      options.epochs = 3;
      options.batch_size = 16;
      options.callback = &info[t];
      options.feature_cache = t == 0 ? CacheMode::kAuto : CacheMode::kOff;
      std::vector<EpochResult> history;
      ASSERT_TRUE(m.Fit(Examples{xs_.data(), 50, ys_.data(), nullptr, 20}, options, &history).ok());
    }
    EXPECT_EQ(info[0].info.cache, CacheState::kComputed);
    ExpectSameVariables(*cached_.model, *plain_.model, k == 0 ? "Assign" : "thaw");
    for (Twin* t : {&cached_, &plain_}) ASSERT_TRUE(t->model->SetTrainable("d1", false).ok());
  }
}

// ---- The plan ----

// The Reference MLP of model_test (20 -> 16 relu -> 8 relu -> 3), head only,
// Adam, batch 4, shuffled (gathered), 10 examples cached:
//   cache: d1's output, 10 x 8 floats = 320 bytes;
//   the step: the cached rows gathered at t = 0 (4 x 8 floats = 128 B,
//   read by the head's weight gradient at t = 3: an activation), the labels
//   (16 B) until the loss at t = 2, the head's forward at t = 1 (its GEMM
//   scratch, the logits 48 B until the loss), the logits' gradient (48 B)
//   from the loss to the head's backward at t = 3, with its scratch.
// Without the cache the step also gathers the input (4 x 20 floats) and runs
// d0 and d1 forward (their outputs and scratch).
TEST(FeatureCachePlanTest, PlannedBytesMatchAHandComputation) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  Sequential model;
  ASSERT_TRUE(model.Add(Dense::Make(16, Activation::kRelu)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(8, Activation::kRelu)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(3)).ok());
  ASSERT_TRUE(model.Build(20, 4, &arena, 3).ok());
  ASSERT_TRUE(model.Compile(OptimizerConfig::Adam(AdamOptions()),
                            Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  model.layer(0).SetTrainable(false);
  model.layer(1).SetTrainable(false);
  PlanOptions options;
  options.batch = 4;
  options.gather = true;
  options.cache_examples = 10;
  ModelPlan cached, plain;
  ASSERT_TRUE(model.PlanMemory(options, &cached).ok());
  options.cache_examples = 0;
  ASSERT_TRUE(model.PlanMemory(options, &plain).ok());

  const size_t weights = 1280 + 64 + 512 + 64 + 128 + 64;
  const size_t head = 128 + 64;  // gradient buffers of the head
  for (const ModelPlan* p : {&cached, &plain}) {
    EXPECT_EQ(p->bytes[Region::kWeights], weights);
    EXPECT_EQ(p->bytes[Region::kGradients], head);
    EXPECT_EQ(p->bytes[Region::kOptimizerState], 2 * head);
  }
  const size_t f0 = DenseForwardScratch(4, 20, 16), f1 = DenseForwardScratch(4, 16, 8);
  const size_t f2 = DenseForwardScratch(4, 8, 3), b2 = DenseBackwardScratch(4, 8, 3, false);
  // With the cache: t = 0 gather, 1 head, 2 loss, 3 head backward.
  const std::vector<Live> with_cache = {{128, 0, 3}, {16, 0, 2}, {f2, 1, 1}, {48, 1, 2},
                                        {48, 2, 3}, {b2, 3, 3}};
  EXPECT_EQ(cached.bytes[Region::kFeatureCache], 320u);
  EXPECT_EQ(cached.bytes[Region::kActivations], 128u);
  EXPECT_EQ(cached.bytes.total(), weights + 3 * head + 320 + Peak(with_cache));
  EXPECT_EQ(cached.cached_values, std::vector<std::string>{"dense_1 output [8]"});
  // Without: t = 0 gather, 1..3 d0, d1, head, 4 loss, 5 head backward.
  const std::vector<Live> without = {{320, 0, 1},  {16, 0, 4},  {f0, 1, 1}, {256, 1, 2},
                                     {f1, 2, 2},   {128, 2, 5}, {f2, 3, 3}, {48, 3, 4},
                                     {48, 4, 5},   {b2, 5, 5}};
  EXPECT_EQ(plain.bytes[Region::kFeatureCache], 0u);
  EXPECT_TRUE(plain.cached_values.empty());
  EXPECT_EQ(plain.bytes.total(), weights + 3 * head + Peak(without));

  // A Fit of 10 examples holds exactly the planned cache.
  const std::vector<float> xs = Wave(10 * 20, 0.2f);
  const std::vector<int32_t> ys = Labels(10, 3);
  FitOptions fit;
  fit.batch_size = 4;
  fit.feature_cache = CacheMode::kRequired;
  ASSERT_TRUE(model.Fit(Examples{xs.data(), 10, ys.data(), nullptr, 20}, fit).ok());
  EXPECT_EQ(arena.bytes(Region::kFeatureCache), 320u);
  EXPECT_LE(arena.high_water(), cached.arena_bytes);
}

// ---- An arena too small for the cache ----

TEST(FeatureCachePlanTest, AnArenaWithoutRoomTrainsWithoutTheCacheOrSaysWhy) {
  // 2000 examples: a cache of 2000 x 8 floats = 64,000 bytes, more than the
  // arena sized for the uncached plan has to spare.
  const size_t count = 2000;
  const std::vector<float> xs = Wave(count * 20, 0.4f);
  const std::vector<int32_t> ys = Labels(count, 3);
  Arena sizing_arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &sizing_arena).ok());
  Model sizing;
  ASSERT_TRUE(Mlp(&sizing, &sizing_arena).ok());
  PlanOptions options;
  options.batch = 16;
  options.gather = true;
  ModelPlan plain, cached;
  ASSERT_TRUE(sizing.PlanMemory(options, &plain).ok());
  options.cache_examples = count;
  ASSERT_TRUE(sizing.PlanMemory(options, &cached).ok());
  ASSERT_EQ(cached.bytes[Region::kFeatureCache], AlignUp(count * 8 * sizeof(float)));
  ASSERT_LT(plain.arena_bytes, cached.arena_bytes);

  Twin small(1), plain_twin(1);
  ASSERT_TRUE(Arena::Create(plain.arena_bytes, &small.arena).ok());
  ASSERT_TRUE(Arena::Create(1 << 20, &plain_twin.arena).ok());
  for (Twin* t : {&small, &plain_twin}) {
    t->model = std::make_unique<Model>(t->pool);
    ASSERT_TRUE(Mlp(t->model.get(), &t->arena).ok());
  }
  const Examples train{xs.data(), count, ys.data(), nullptr, 20};
  FitOptions fit;
  fit.batch_size = 16;
  fit.epochs = 2;
  fit.feature_cache = CacheMode::kRequired;
  const Status refused = small.model->Fit(train, fit);
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(MessageContains(refused, "the feature cache needs 64000 bytes")) << refused.message();
  // kAuto: it says so and trains without it, as kOff does.
  Info info;
  fit.callback = &info;
  fit.feature_cache = CacheMode::kAuto;
  ASSERT_TRUE(small.model->Fit(train, fit).ok());
  EXPECT_EQ(info.info.cache, CacheState::kNoRoom);
  EXPECT_EQ(small.arena.bytes(Region::kFeatureCache), 0u);
  fit.callback = nullptr;
  fit.feature_cache = CacheMode::kOff;
  ASSERT_TRUE(plain_twin.model->Fit(train, fit).ok());
  ExpectSameVariables(*small.model, *plain_twin.model, "no room");

  // An arena of the cached plan's arena_bytes holds it.
  Twin exact(1);
  ASSERT_TRUE(Arena::Create(cached.arena_bytes, &exact.arena).ok());
  exact.model = std::make_unique<Model>(exact.pool);
  ASSERT_TRUE(Mlp(exact.model.get(), &exact.arena).ok());
  fit.feature_cache = CacheMode::kRequired;
  fit.callback = &info;
  const Status fitted = exact.model->Fit(train, fit);
  ASSERT_TRUE(fitted.ok()) << fitted.message();
  EXPECT_EQ(info.info.cache, CacheState::kComputed);
  EXPECT_LE(exact.arena.high_water(), cached.arena_bytes);
}

// When the frozen part's forward pass at the full batch and the cache do
// not fit together, the cache is computed a few examples at a time: the
// head-only CNN's cached step is small, its backbone's forward pass at batch
// 8 is not.
TEST(FeatureCachePlanTest, TheCacheIsComputedInSmallerChunksWhenThatFits) {
  Arena sizing_arena;
  ASSERT_TRUE(Arena::Create(4 << 20, &sizing_arena).ok());
  Model sizing;
  ASSERT_TRUE(HeadOnlyCnn(&sizing, &sizing_arena).ok());
  PlanOptions options;
  options.batch = 1;
  options.gather = true;
  options.cache_examples = 20;
  ModelPlan one, eight;
  ASSERT_TRUE(sizing.PlanMemory(options, &one).ok());  // everything at batch 1
  options.batch = 8;
  ASSERT_TRUE(sizing.PlanMemory(options, &eight).ok());
  // Room for the cached step at 8 and for everything at 1, not for the
  // backbone at 8.
  const size_t capacity = std::max(one.arena_bytes, eight.bytes.total());
  ASSERT_LT(capacity, eight.arena_bytes);

  Twin small(1), plain(1);
  ASSERT_TRUE(Arena::Create(capacity, &small.arena).ok());
  ASSERT_TRUE(Arena::Create(4 << 20, &plain.arena).ok());
  // Both take the warmed-up values of `sizing` (the small arena could not
  // warm up: that trains every layer at batch 8).
  size_t size = 0;
  ASSERT_FALSE(SaveCheckpointToMemory(sizing.variables(), Span<unsigned char>(), &size).ok());
  std::vector<unsigned char> values(size);
  ASSERT_TRUE(
      SaveCheckpointToMemory(sizing.variables(), Span<unsigned char>(values.data(), size), &size)
          .ok());
  for (Twin* t : {&small, &plain}) {
    t->model = std::make_unique<Model>(t->pool);
    ASSERT_TRUE(FrozenCnn(t->model.get(), &t->arena, "head", /*warm=*/false).ok());
    ASSERT_TRUE(LoadCheckpointFromMemory(Span<const unsigned char>(values.data(), size),
                                         &t->model->variables())
                    .ok());
  }
  const std::vector<float> xs = Wave(20 * 64, 0.9f);
  const std::vector<int32_t> ys = Labels(20, 3);
  const Examples train{xs.data(), 20, ys.data(), nullptr, 64};
  Info info;
  FitOptions fit;
  fit.batch_size = 8;
  fit.epochs = 2;
  fit.callback = &info;
  fit.feature_cache = CacheMode::kRequired;
  const Status fitted = small.model->Fit(train, fit);
  ASSERT_TRUE(fitted.ok()) << fitted.message();
  EXPECT_EQ(info.info.cache, CacheState::kComputed);
  EXPECT_LE(small.arena.high_water(), capacity);
  fit.feature_cache = CacheMode::kOff;
  ASSERT_TRUE(plain.model->Fit(train, fit).ok());
  ExpectSameVariables(*small.model, *plain.model, "computed in chunks");
}

// The cache's bytes are given up to whoever needs them (a step of another
// kind, a larger batch), and the next Fit computes it again.
TEST(FeatureCachePlanTest, ABiggerStepTakesTheCachesBytesAndTheNextFitRecomputes) {
  Twin t(1);
  Model sizing;
  Arena sizing_arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &sizing_arena).ok());
  ASSERT_TRUE(Mlp(&sizing, &sizing_arena).ok());
  PlanOptions options;
  options.batch = 4;
  options.gather = true;
  options.cache_examples = 50;
  ModelPlan cached, predict;
  ASSERT_TRUE(sizing.PlanMemory(options, &cached).ok());
  ASSERT_TRUE(sizing.PlanMemory(16, /*training=*/false, &predict).ok());
  // Room for the training layout and predicting 16, but not also the cache.
  // The step at 16 exactly (bytes.total()), not arena_bytes: that is the
  // largest over every batch up to 16, and scratch is not monotone in the
  // batch (on 64-bit Arm a smaller batch needs more).
  const size_t persistent = cached.bytes[Region::kWeights] + cached.bytes[Region::kGradients] +
                            cached.bytes[Region::kOptimizerState];
  const size_t capacity = persistent + predict.bytes.total() - predict.bytes[Region::kWeights] +
                          cached.bytes[Region::kFeatureCache] - 64;
  ASSERT_GE(capacity, cached.arena_bytes);  // the cached Fit fits
  ASSERT_TRUE(Arena::Create(capacity, &t.arena).ok());
  t.model = std::make_unique<Model>(t.pool);
  ASSERT_TRUE(Mlp(t.model.get(), &t.arena).ok());
  const std::vector<float> xs = Wave(50 * 20, 0.5f);
  const std::vector<int32_t> ys = Labels(50, 3);
  const Examples train{xs.data(), 50, ys.data(), nullptr, 20};
  Info info;
  FitOptions fit;
  fit.batch_size = 4;
  fit.callback = &info;
  ASSERT_TRUE(t.model->Fit(train, fit).ok());
  EXPECT_EQ(info.info.cache, CacheState::kComputed);
  // Predicting 16 at once needs more than the cache leaves free.
  std::vector<float> out(16 * 3);
  ASSERT_TRUE(t.model->Predict(xs.data(), 16, out.data()).ok());
  EXPECT_EQ(t.arena.bytes(Region::kFeatureCache), 0u);
  ASSERT_TRUE(t.model->Fit(train, fit).ok());
  EXPECT_EQ(info.info.cache, CacheState::kComputed);
  ASSERT_TRUE(t.model->Fit(train, fit).ok());
  EXPECT_EQ(info.info.cache, CacheState::kReused);
}

}  // namespace
}  // namespace thaw
