// Functional models: branches, residual Add and Concatenate; pruned backward
// passes and lifetime plans for DAGs; agreement with PyTorch
// (tests/pytorch/graph_agreement.py); gradients against finite differences.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/thaw.h"
#include "gtest/gtest.h"
#include "platform/memory.h"
#include "simd/batchnorm.h"
#include "simd/conv.h"
#include "tests/agreement_util.h"
#include "tests/plan_util.h"
#include "tests/status_text.h"

namespace thaw {
namespace {

bool Contains(const Status& s, const std::string& text) { return MessageContains(s, text); }

std::vector<float> Inputs(size_t n, float phase = 0.1f) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * i + phase);
  return x;
}

// x[12] -> dense_0 (16, relu) = h -> dense_1 (16, relu) = g -> h + g -> head (3).
Symbol Residual(Model& model) {
  Symbol x = model.Input(Shape{12});
  Symbol h = model.Call(Dense::Make(16, Activation::kRelu), x);
  Symbol g = model.Call(Dense::Make(16, Activation::kRelu), h);
  Symbol r = model.Call(Add::Make(), {h, g});
  return model.Call(Dense::Make(3), r, "head");
}

// x[12] -> dense_0 (8, tanh) = h -> [dense_1 (6, relu), dense_2 (5, sigmoid)]
// -> concatenated [11] -> head (3).
Symbol Branches(Model& model) {
  Symbol x = model.Input(Shape{12});
  Symbol h = model.Call(Dense::Make(8, Activation::kTanh), x);
  Symbol a = model.Call(Dense::Make(6, Activation::kRelu), h);
  Symbol b = model.Call(Dense::Make(5, Activation::kSigmoid), h);
  Symbol both = model.Call(Concatenate::Make(), {a, b});
  return model.Call(Dense::Make(3), both, "head");
}

TEST(FunctionalTest, BuildsNamesAndShapes) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  Model model;
  Symbol y = Branches(model);
  ASSERT_TRUE(model.status().ok()) << model.status().message();
  EXPECT_EQ(y.shape(), Shape({3}));
  ASSERT_TRUE(model.Build(y, 8, &arena).ok());
  EXPECT_EQ(model.num_layers(), 5u);
  EXPECT_EQ(model.layer(3).name(), "concatenate_0");
  EXPECT_EQ(model.layer(3).output()->shape, Shape({11}));
  EXPECT_EQ(model.variables().Find("head.weight").shape(), Shape({3, 11}));
  EXPECT_NE(model.Summary().find("parameters: 239 (trainable 239, frozen 0)"), std::string::npos)
      << model.Summary();
}

// A bad call fails where the model is described, naming the layer; the
// first error sticks and Build returns it.
TEST(FunctionalTest, ErrorsNameTheLayerAndStick) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  Model model;
  Symbol x = model.Input(Shape{12});
  Symbol h = model.Call(Dense::Make(16), x);
  Symbol g = model.Call(Dense::Make(8), x);
  Symbol bad = model.Call(Add::Make(), {h, g}, "skip");
  EXPECT_FALSE(bad.valid());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(model.status(), "skip: shapes [batch]+[16] and [batch]+[8] differ"))
      << model.status().message();
  Symbol later = model.Call(Dense::Make(3), h);
  EXPECT_FALSE(later.valid());
  Status s = model.Build(h, 8, &arena);
  EXPECT_TRUE(Contains(s, "skip: shapes")) << s.message();
  EXPECT_FALSE(model.built());

  Model other;
  Symbol foreign = other.Input(Shape{4});
  Model model2;
  model2.Input(Shape{4});
  EXPECT_FALSE(model2.Call(Dense::Make(2), foreign).valid());
  EXPECT_TRUE(Contains(model2.status(), "belongs to another model")) << model2.status().message();

  Model images;
  Symbol pixels = images.Input(Shape{4, 4, 2}, Layout::kNHWC);
  EXPECT_FALSE(images.Call(Dense::Make(2), pixels).valid());
  EXPECT_TRUE(Contains(images.status(), "add a Flatten first")) << images.status().message();
  Model flat;
  Symbol p = flat.Input(Shape{4, 4, 2}, Layout::kNHWC);
  Symbol f = flat.Call(Flatten::Make(), p);
  EXPECT_EQ(f.shape(), Shape({32}));
  EXPECT_TRUE(flat.Call(Dense::Make(2), f).valid());
}

// A layer's statistics (declared with LayerBuilder::Statistic) are
// variables of the model that SetTrainable never thaws.
TEST(FunctionalTest, LayerStatisticsStayFrozen) {
  class Counter final : public Layer {  // y = x; counts nothing, holds a statistic
   public:
    const char* kind() const override { return "counter"; }
    Status Call(LayerBuilder& b, Span<Value* const> in, Value** out) override {
      b.Statistic("seen", Shape{1});
      *out = in[0];
      return Status::Ok();
    }
  };
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  Model model;
  Symbol x = model.Input(Shape{4});
  Symbol y = model.Call(Dense::Make(2), model.Call(std::make_unique<Counter>(), x));
  ASSERT_TRUE(model.Build(y, 2, &arena).ok());
  const Variable seen = model.variables().Find("counter_0.seen");
  ASSERT_TRUE(seen.valid());
  EXPECT_EQ(seen.role(), VariableRole::kStatistic);
  model.layer(0).SetTrainable(true);
  EXPECT_FALSE(seen.trainable());
  EXPECT_FALSE(model.layer(0).trainable());
}

// ---- BatchNormalization's modes ----

struct NormalizedModel {
  Arena arena;
  Model model;
  std::vector<float> x = Inputs(8 * 12);
  std::vector<int32_t> labels = {0, 1, 2, 1, 0, 2, 2, 1};
  Examples batch() const { return Examples{x.data(), 8, labels.data(), nullptr}; }
  Variable var(const char* name) { return model.variables().Find(name); }
  std::vector<float> values(const char* name) {
    const TensorView v = var(name).value();
    return std::vector<float>(v.data(), v.data() + v.num_elements());
  }
  Status Make(bool center_and_scale = true) {
    THAW_RETURN_IF_ERROR(Arena::Create(1 << 18, &arena));
    Symbol in = model.Input(Shape{12});
    Symbol h = model.Call(Dense::Make(16, Activation::kLinear, false), in);
    Symbol n = model.Call(BatchNormalization::Make(0.9f, 1e-3f, center_and_scale,
                                                   center_and_scale), h, "bn");
    THAW_RETURN_IF_ERROR(model.Build(model.Call(Dense::Make(3), n, "head"), 8, &arena));
    return model.Compile(OptimizerConfig::Sgd(SgdOptions()),
                         Loss::kSparseCategoricalCrossentropyFromLogits);
  }
};

// Training steps move the statistics; Evaluate and Predict use them and
// move nothing; a frozen layer uses them and moves nothing either.
TEST(BatchNormTest, OnlyTrainableTrainingStepsMoveTheStatistics) {
  NormalizedModel m;
  ASSERT_TRUE(m.Make().ok());
  const std::vector<float> mean0 = m.values("bn.running_mean");
  ASSERT_TRUE(m.model.TrainOnBatch(m.batch()).ok());
  const std::vector<float> mean1 = m.values("bn.running_mean");
  EXPECT_NE(mean1, mean0);
  EXPECT_EQ(m.values("bn.num_batches_tracked"), std::vector<float>{1.0f});
  Metrics metrics;
  std::vector<float> out(8 * 3);
  ASSERT_TRUE(m.model.Evaluate(m.batch(), 8, &metrics).ok());
  ASSERT_TRUE(m.model.Predict(m.x.data(), 8, out.data()).ok());
  EXPECT_EQ(m.values("bn.running_mean"), mean1);
  m.model.FindLayer("bn")->SetTrainable(false);
  const std::vector<float> gamma = m.values("bn.weight");
  ASSERT_TRUE(m.model.TrainOnBatch(m.batch()).ok());  // the head still trains
  EXPECT_EQ(m.values("bn.running_mean"), mean1);
  EXPECT_EQ(m.values("bn.num_batches_tracked"), std::vector<float>{1.0f});
  EXPECT_EQ(m.values("bn.weight"), gamma);
  EXPECT_FALSE(m.var("bn.weight").gradient().present());
  EXPECT_FALSE(m.var("bn.running_mean").trainable());
}

// One value per channel cannot be normalised in training mode: a Status
// naming the layer; a frozen layer (inference mode) takes batch 1.
TEST(BatchNormTest, TrainingOnOneValuePerChannelIsRefused) {
  NormalizedModel m;
  ASSERT_TRUE(m.Make().ok());
  Examples one = m.batch();
  one.count = 1;
  Status s = m.model.TrainOnBatch(one);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "bn: a BatchNormalization in training mode needs more than one value"))
      << s.message();
  m.model.FindLayer("bn")->SetTrainable(false);
  EXPECT_TRUE(m.model.TrainOnBatch(one).ok());
}

// A NaN in the batch: its loss is NaN and the step is refused before the
// optimizer or the statistics move, with trainable parameters or without
// (then the statistics alone would move). The BatchNorm's own refusal to
// commit non-finite statistics stays as a second line; a non-finite batch
// always makes the loss non-finite first.
TEST(BatchNormTest, NonFiniteBatchesMoveNoStatistics) {
  for (bool with_parameters : {true, false}) {
    NormalizedModel m;
    ASSERT_TRUE(m.Make(with_parameters).ok());
    if (!with_parameters) {
      m.model.layer(0).SetTrainable(false);
      m.model.FindLayer("head")->SetTrainable(false);
    }
    ASSERT_TRUE(m.model.TrainOnBatch(m.batch()).ok());
    const std::vector<float> mean = m.values("bn.running_mean");
    const std::vector<float> var = m.values("bn.running_var");
    m.x[5] = std::nanf("");
    Status s = m.model.TrainOnBatch(m.batch());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << with_parameters;
    EXPECT_TRUE(Contains(s, "the loss is nan; nothing was updated")) << s.message();
    EXPECT_EQ(m.values("bn.running_mean"), mean) << with_parameters;
    EXPECT_EQ(m.values("bn.running_var"), var) << with_parameters;
    EXPECT_EQ(m.values("bn.num_batches_tracked"), std::vector<float>{1.0f});
  }
}

// Plans: a trainable BatchNorm keeps its input (for xhat) and 6 x 16 floats
// of batch statistics until the step commits; frozen with everything before
// it, it keeps nothing and runs in dense_0's epilogue.
TEST(BatchNormTest, AFrozenPrefixWithBatchNormKeepsNothing) {
  NormalizedModel m;
  ASSERT_TRUE(m.Make().ok());
  ModelPlan plan;
  ASSERT_TRUE(m.model.PlanMemory(8, true, &plan).ok());
  EXPECT_EQ(plan.layers[1].activations, 512u);  // dense_0's output, read by bn's backward
  EXPECT_EQ(plan.layers[2].activations, 512u + 384u);  // bn's output (head's input) + stats
  m.model.layer(0).SetTrainable(false);
  m.model.FindLayer("bn")->SetTrainable(false);
  ASSERT_TRUE(m.model.PlanMemory(8, true, &plan).ok());
  // Frozen, it folds into dense_0's epilogue: its output is dense_0's
  // buffer (kept for the head's weight gradient), and it keeps nothing.
  EXPECT_EQ(plan.layers[1].activations, 512u);
  EXPECT_EQ(plan.layers[2].activations, 0u);
  EXPECT_EQ(plan.bytes[Region::kActivations], 512u);
}

// A frozen BatchNormalization after a convolution runs in the convolution's
// epilogue, with the bits of running the two apart: the model's output
// against simd::ConvForward then simd::BatchNormApply with the layer's
// inference formula (scale = gamma * (1 / sqrt(var + eps))).
TEST(BatchNormTest, FoldedIntoAConvolutionItGivesTheSameBits) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 18, &arena).ok());
  Model model;
  Symbol x = model.Input(Shape{6, 6, 2}, Layout::kNHWC);
  Symbol c = model.Call(Conv2D::Make(4, 3, 1, Padding::kSame), x, "conv");
  ASSERT_TRUE(model.Build(model.Call(BatchNormalization::Make(0.9f, 1e-3f), c, "bn"), 2, &arena).ok());
  auto values = [&](const char* name) { return model.variables().Find(name).value().data(); };
  const char* names[] = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "conv.bias"};
  for (int v = 0; v < 5; ++v) {
    for (size_t i = 0; i < 4; ++i) values(names[v])[i] = 0.5f + 0.3f * std::sin(1.7f * i + v);
  }
  const std::vector<float> images = Inputs(2 * 6 * 6 * 2);
  std::vector<float> out(2 * 6 * 6 * 4);
  ASSERT_TRUE(model.Predict(images.data(), 2, out.data()).ok());

  simd::ConvShape s;
  s.batch = 2;
  s.in_h = s.in_w = s.out_h = s.out_w = 6;
  s.in_c = 2;
  s.out_c = 4;
  s.kernel_h = s.kernel_w = 3;
  s.pad_top = s.pad_left = 1;
  const size_t scratch_bytes = AlignUp(simd::ConvForwardScratchFloats(s, 1) * sizeof(float));
  std::unique_ptr<float, void (*)(void*)> scratch(
      static_cast<float*>(AlignedAlloc(std::max<size_t>(scratch_bytes, 64))), AlignedFree);
  simd::GemmEpilogue bias;
  bias.bias = values("conv.bias");
  std::vector<float> apart(out.size());
  simd::ConvForward(images.data(), values("conv.weight"), apart.data(), s, scratch.get(),
                    ThreadPool::Serial(), bias);
  float scale[4];
  for (size_t i = 0; i < 4; ++i) {
    scale[i] = values("bn.weight")[i] * (1.0f / std::sqrt(values("bn.running_var")[i] + 1e-3f));
  }
  simd::BatchNormApply(apart.data(), 2 * 6 * 6, 4, values("bn.running_mean"), scale,
                       values("bn.bias"), apart.data(), ThreadPool::Serial());
  EXPECT_EQ(std::memcmp(apart.data(), out.data(), out.size() * sizeof(float)), 0);
}

// ---- Plans of a CNN ----

// Layers 0..frozen_layers-1 frozen, the rest trainable.
void Freeze(Model& model, int frozen_layers) {
  for (size_t i = 0; i < model.num_layers(); ++i) {
    model.layer(i).SetTrainable(static_cast<int>(i) >= frozen_layers);
  }
}


// Batch 2 of 8 x 8 x 1 images (read in place): conv_a 3x3 (1 -> 4, same, no
// bias) -> bn_a -> ReLU6 -> conv_b 3x3 stride 2 (4 -> 8) -> bn_b -> ReLU6 ->
// global average pool -> head (3). Forward: conv_a 1, bn_a 2, relu 3,
// conv_b 4, bn_b 5, relu 6, pool 7, head 8 (the pool's reshape to [8] is a
// view); the loss at 9; backward in reverse from 10 (the nodes that run),
// then the commit. Outputs: a 2048 B per node of block a, b 1024 B per node
// of block b, the pool's 64 B, logits 24 B. A training BatchNorm saves 6 C
// floats until the commit (96 B, 192 B), reads its input backward and needs
// 2 C floats of backward scratch; a frozen one folds into its convolution:
// no pass, no buffer of its own, 2 C floats saved (scale, shift) while the
// convolution runs. ReLU6 reads its output backward; the pool reads nothing.
simd::ConvShape CnnBlock(size_t in, size_t cin, size_t cout, size_t stride) {
  simd::ConvShape s;
  s.batch = 2;
  s.in_h = s.in_w = in;
  s.in_c = cin;
  s.out_h = s.out_w = in / stride;
  s.out_c = cout;
  s.kernel_h = s.kernel_w = 3;
  s.stride_h = s.stride_w = stride;
  s.pad_top = s.pad_left = stride == 1 ? 1 : 0;  // TensorFlow's "same"
  return s;
}

Symbol PlannedCnn(Model& model) {
  Symbol x = model.Input(Shape{8, 8, 1}, Layout::kNHWC);
  auto block = [&](Symbol in, size_t filters, size_t stride, const std::string& name) {
    Symbol c = model.Call(Conv2D::Make(filters, 3, stride, Padding::kSame, Activation::kLinear,
                                       false), in, "conv_" + name);
    return model.Call(ReLU6(), model.Call(BatchNormalization::Make(), c, "bn_" + name));
  };
  Symbol b = block(block(x, 4, 1, "a"), 8, 2, "b");
  return model.Call(Dense::Make(3), model.Call(GlobalAveragePooling2D::Make(), b), "head");
}

struct CnnPlan {
  const char* name;
  int frozen_layers;  // layers 0..frozen_layers-1 (conv_a, bn_a, relu, conv_b, bn_b, ...)
  size_t gradients, activations;
  std::vector<Live> step;
};

std::vector<CnnPlan> CnnPlans() {
  const simd::ConvShape a = CnnBlock(8, 1, 4, 1), b = CnnBlock(8, 4, 8, 2);
  auto forward = [](const simd::ConvShape& s) {
    return simd::ConvForwardScratchFloats(s, 1) * sizeof(float);
  };
  auto backward = [](const simd::ConvShape& s, bool dx) {
    return simd::ConvBackwardScratchFloats(s, dx, true, 1) * sizeof(float);
  };
  const std::vector<Live> always = {{forward(a), 1, 1}, {forward(b), 4, 4},
                                    {DenseForwardScratch(2, 8, 3), 8, 8}, {24, 8, 9}};
  auto with = [&](std::vector<Live> more) {
    more.insert(more.end(), always.begin(), always.end());
    return more;
  };
  // Gradients of the parameters (persistent): conv_a 144 B, each BatchNorm's
  // gamma and beta 64 + 64 B, conv_b 1152 B, the head 96 + 12 B.
  return {
      // Backward: head 10, pool 11, relu 12, bn_b 13, conv_b 14 (dx, dw),
      // relu 15, bn_a 16, conv_a 17 (dw only); the commit at 18. Kept: conv_a's
      // output for bn_a, relu_a's for itself and conv_b's weight gradient,
      // conv_b's for bn_b, relu_b's for itself, the pool's for the head, both
      // saved statistics. Gradients: logits, pool, b x 3, a x 3.
      {"all trainable", 0, 192 + 128 + 1152 + 128 + 128 + 64,
       2048 + 2048 + 1024 + 1024 + 64 + 128 + 192,
       with({{2048, 1, 16}, {2048, 2, 3}, {2048, 3, 15}, {1024, 4, 13}, {1024, 5, 6},
             {1024, 6, 12}, {64, 7, 10}, {96, 2, 18}, {192, 5, 18},
             {DenseBackwardScratch(2, 8, 3, true), 10, 10}, {64, 13, 13}, {backward(b, true), 14, 14},
             {64, 16, 16}, {backward(a, false), 17, 17},
             {24, 9, 10}, {64, 10, 11}, {1024, 11, 12}, {1024, 12, 13}, {1024, 13, 14},
             {2048, 14, 15}, {2048, 15, 16}, {2048, 16, 17}})},
      // Backbone frozen: both BatchNorms fold (conv_a's buffer is bn_a's
      // output, read by the ReLU; conv_b's likewise); only the head trains,
      // keeping the pool's output. Backward: the head at 10.
      {"frozen backbone", 6, 128 + 64, 64,
       with({{2048, 1, 3}, {32, 1, 1}, {2048, 3, 4}, {1024, 4, 6}, {64, 4, 4}, {1024, 6, 7},
             {64, 7, 10}, {DenseBackwardScratch(2, 8, 3, false), 10, 10}, {24, 9, 10}})},
      // The last block thawed: bn_a still folds into conv_a; conv_b wants no
      // input gradient. Backward: head 10, pool 11, relu 12, bn_b 13, conv_b
      // 14 (dw); the commit at 15.
      {"last block thawed", 3, 1152 + 128 + 128 + 64, 2048 + 1024 + 1024 + 64 + 192,
       with({{2048, 1, 3}, {32, 1, 1}, {2048, 3, 14}, {1024, 4, 13}, {1024, 5, 6},
             {1024, 6, 12}, {64, 7, 10}, {192, 5, 15},
             {DenseBackwardScratch(2, 8, 3, true), 10, 10}, {64, 13, 13},
             {backward(b, false), 14, 14},
             {24, 9, 10}, {64, 10, 11}, {1024, 11, 12}, {1024, 12, 13}, {1024, 13, 14}})},
  };
}

// The plan of each freeze set equals the hand listing, and a training step's
// measured high-water mark equals the plan. Weights: conv_a 192 B, each
// BatchNorm 5 x 64 B, conv_b 1152 B, the head 128 + 64 B; Adam keeps two
// slots per parameter gradient. A frozen conv + BN prefix saves nothing and
// has no gradient.
TEST(CnnPlanTest, PlansMatchHandComputedBytesAndTheHighWaterMark) {
  for (const CnnPlan& e : CnnPlans()) {
    Arena arena;
    ASSERT_TRUE(Arena::Create(1 << 18, &arena).ok());
    Model model;
    ASSERT_TRUE(model.Build(PlannedCnn(model), 2, &arena).ok());
    ASSERT_TRUE(model.Compile(OptimizerConfig::Adam(AdamOptions()),
                              Loss::kSparseCategoricalCrossentropyFromLogits).ok());
    Freeze(model, e.frozen_layers);
    ModelPlan plan;
    ASSERT_TRUE(model.PlanMemory(2, /*training=*/true, &plan).ok());
    EXPECT_EQ(plan.bytes[Region::kWeights], 192u + 320 + 1152 + 320 + 128 + 64) << e.name;
    EXPECT_EQ(plan.bytes[Region::kGradients], e.gradients) << e.name;
    EXPECT_EQ(plan.bytes[Region::kOptimizerState], 2 * e.gradients) << e.name;
    EXPECT_EQ(plan.bytes[Region::kActivations], e.activations) << e.name << "\n" << plan.ToString();
    EXPECT_EQ(plan.bytes[Region::kActivations] + plan.bytes[Region::kScratch], Peak(e.step))
        << e.name << "\n" << plan.ToString();
    const std::vector<float> x = Inputs(2 * 8 * 8);
    const int32_t labels[2] = {0, 2};
    ASSERT_TRUE(model.TrainOnBatch(Examples{x.data(), 2, labels, nullptr}).ok());
    EXPECT_EQ(arena.high_water(), plan.bytes.total()) << e.name;
    const MemoryReport measured = arena.Report();
    for (int r = 0; r < kNumRegions; ++r) {
      EXPECT_EQ(measured.bytes[r], plan.bytes.bytes[r]) << e.name << " region " << r;
    }
  }
}

// ---- Plans of a residual model ----

// Batch 8: h, g, r 512 B each, logits 96 B. Forward: dense_0 1, dense_1 2,
// add 3, head 4; the loss at 5; backward head 6, add 7, dense_1 8, dense_0 9
// (those that run). The add's gradient passes to h and g; when dense_1 also
// sends a gradient to h (h feeds both), its term is added in.
struct ResidualPlan {
  const char* name;
  int frozen_layers;
  size_t activations;
  std::vector<Live> step;
};

std::vector<ResidualPlan> ResidualPlans() {
  const std::vector<Live> forward = {{DenseForwardScratch(8, 12, 16), 1, 1},
                                     {DenseForwardScratch(8, 16, 16), 2, 2},
                                     {DenseForwardScratch(8, 16, 3), 4, 4},
                                     {96, 4, 5}};
  auto with = [&](std::vector<Live> more) {
    more.insert(more.end(), forward.begin(), forward.end());
    return more;
  };
  return {
      // h until dense_0's ReLU backward, g until dense_1's, r until the
      // head's weight gradient; dlogits, dr, dg, dh, and dense_1's term of dh.
      {"all trainable", 0, 3 * 512,
       with({{512, 1, 9}, {512, 2, 8}, {512, 3, 6},
             {DenseBackwardScratch(8, 16, 3, true), 6, 6},
             {DenseBackwardScratch(8, 16, 16, true), 8, 8},
             {DenseBackwardScratch(8, 12, 16, false), 9, 9},
             {96, 5, 6}, {512, 6, 7}, {512, 7, 8}, {512, 7, 9}, {512, 8, 8}})},
      // dense_0 frozen: no dh at all; h lives for dense_1's weight gradient.
      {"frozen prefix", 1, 3 * 512,
       with({{512, 1, 8}, {512, 2, 8}, {512, 3, 6},
             {DenseBackwardScratch(8, 16, 3, true), 6, 6},
             {DenseBackwardScratch(8, 16, 16, false), 8, 8},
             {96, 5, 6}, {512, 6, 7}, {512, 7, 8}})},
      // Only the head: h and g die after the add.
      {"head only", 2, 512,
       with({{512, 1, 3}, {512, 2, 3}, {512, 3, 6},
             {DenseBackwardScratch(8, 16, 3, false), 6, 6}, {96, 5, 6}})},
  };
}

TEST(FunctionalPlanTest, ResidualPlanMatchesHandComputedBytesAndHighWater) {
  for (const ResidualPlan& e : ResidualPlans()) {
    Arena arena;
    ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
    Model model;
    ASSERT_TRUE(model.Build(Residual(model), 8, &arena).ok());
    ASSERT_TRUE(model.Compile(OptimizerConfig::Adam(AdamOptions()),
                              Loss::kSparseCategoricalCrossentropyFromLogits).ok());
    Freeze(model, e.frozen_layers);
    ModelPlan plan;
    ASSERT_TRUE(model.PlanMemory(8, /*training=*/true, &plan).ok());
    EXPECT_EQ(plan.bytes[Region::kActivations], e.activations) << e.name;
    EXPECT_EQ(plan.bytes[Region::kActivations] + plan.bytes[Region::kScratch], Peak(e.step))
        << e.name << "\n" << plan.ToString();
    const std::vector<float> x = Inputs(8 * 12);
    const int32_t labels[8] = {0, 1, 2, 1, 0, 2, 2, 1};
    ASSERT_TRUE(model.TrainOnBatch(Examples{x.data(), 8, labels, nullptr}).ok());
    EXPECT_EQ(arena.high_water(), plan.bytes.total()) << e.name;
    const MemoryReport measured = arena.Report();
    for (int r = 0; r < kNumRegions; ++r) {
      EXPECT_EQ(measured.bytes[r], plan.bytes.bytes[r]) << e.name << " region " << r;
    }
  }
}

// A frozen branch that nothing trainable feeds gets no backward pass, keeps
// nothing for one and has no gradient buffer, although the trainable head
// reads it: here dense_0 (frozen) and dense_1 (trainable) both read x and
// are concatenated before the head.
TEST(FunctionalPlanTest, AFrozenBranchOfADagGetsNoBackward) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  Model model;
  Symbol x = model.Input(Shape{12});
  Symbol a = model.Call(Dense::Make(8, Activation::kRelu), x);
  Symbol b = model.Call(Dense::Make(8, Activation::kRelu), x);
  Symbol y = model.Call(Dense::Make(3), model.Call(Concatenate::Make(), {a, b}), "head");
  ASSERT_TRUE(model.Build(y, 8, &arena).ok());
  ASSERT_TRUE(model.Compile(OptimizerConfig::Sgd(SgdOptions()),
                            Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  model.layer(0).SetTrainable(false);
  ModelPlan plan;
  ASSERT_TRUE(model.PlanMemory(8, true, &plan).ok());
  EXPECT_EQ(plan.layers[1].activations, 0u);    // dense_0: nothing kept
  EXPECT_EQ(plan.layers[2].activations, 256u);  // dense_1: its output, for its ReLU
  EXPECT_EQ(plan.layers[3].activations, 512u);  // the concatenation, for the head
  int gradients = 0;
  for (const PlannedBuffer& buffer : plan.step_buffers) {
    gradients += std::string(buffer.what) == "gradient";
  }
  EXPECT_EQ(gradients, 3);  // dlogits, dconcat, and dense_1's half; none for dense_0
  const std::vector<float> xs = Inputs(8 * 12);
  const int32_t labels[8] = {0, 1, 2, 1, 0, 2, 2, 1};
  const Variable w0 = model.variables().Find("dense_0.weight");
  const Variable w1 = model.variables().Find("dense_1.weight");
  const std::vector<float> frozen(w0.value().data(), w0.value().data() + 96);
  const std::vector<float> before(w1.value().data(), w1.value().data() + 96);
  ASSERT_TRUE(model.TrainOnBatch(Examples{xs.data(), 8, labels, nullptr}).ok());
  EXPECT_EQ(std::memcmp(w0.value().data(), frozen.data(), 96 * sizeof(float)), 0);
  EXPECT_NE(std::memcmp(w1.value().data(), before.data(), 96 * sizeof(float)), 0);
  EXPECT_FALSE(w0.gradient().present());
}

// Flatten and Reshape are views: they add no buffer and no bytes.
TEST(FunctionalPlanTest, ReshapesCostNothing) {
  auto plan_of = [](bool reshape) {
    Arena arena;
    EXPECT_TRUE(Arena::Create(1 << 16, &arena).ok());
    Model model;
    Symbol x = model.Input(Shape{12});
    Symbol h = model.Call(Dense::Make(16, Activation::kTanh), x);
    if (reshape) h = model.Call(Flatten::Make(), model.Call(Reshape::Make(Shape{4, 4}), h));
    EXPECT_TRUE(model.Build(model.Call(Dense::Make(3), h), 8, &arena).ok());
    EXPECT_TRUE(model.Compile(OptimizerConfig::Sgd(SgdOptions()), Loss::kMeanSquaredError).ok());
    ModelPlan plan;
    EXPECT_TRUE(model.PlanMemory(8, true, &plan).ok());
    return plan;
  };
  const ModelPlan plain = plan_of(false), viewed = plan_of(true);
  EXPECT_EQ(viewed.bytes.total(), plain.bytes.total());
  EXPECT_EQ(viewed.step_buffers.size(), plain.step_buffers.size());
}

// ---- Agreement with PyTorch ----

const Fixture& Golden() {
  static const Fixture* fixture =
      new Fixture(ReadFixture(std::string(THAW_FIXTURES_DIR) + "/graph_agreement.txt"));
  return *fixture;
}

// Which layers are frozen when: layers [0, layers) during steps [from, to);
// and the batch: the fixture's inputs and labels, and its size.
struct FreezeSchedule {
  int steps, layers, from, to;
  const char* x = "x";
  const char* labels = "labels";
  size_t batch = 8;
};
constexpr FreezeSchedule kFirstLayerThenThaw = {10, 1, 0, 5};

// Tensors are compared in the fixture's (PyTorch's) order, which thaw
// converts to and from (a convolution's kernel) as checkpoints do.
void ExpectCloseInFileOrder(const VariableSet& vars, int i, const std::vector<float>& expected,
                            const std::string& what) {
  std::vector<float> file_order(vars.shape(i).num_elements());
  vars.CopyToFileOrder(i, file_order.data());
  float* data = file_order.data();
  ExpectClose(expected, TensorView(data, vars.FileShape(i)), what);
}

void Replay(const std::string& label, Symbol (*describe)(Model&), const OptimizerConfig& optimizer,
            int threads, FreezeSchedule freeze = kFirstLayerThenThaw) {
  const Fixture& golden = Golden();
  ASSERT_EQ(golden.count(freeze.x), 1u) << "fixture missing: run tests/pytorch/graph_agreement.py";
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  ThreadPool pool(threads);
  Model model(pool);
  ASSERT_TRUE(model.Build(describe(model), freeze.batch, &arena).ok());
  ASSERT_TRUE(model.Compile(optimizer, Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  VariableSet& vars = model.variables();
  for (int i = 0; i < vars.size(); ++i) {
    ASSERT_TRUE(vars.AssignFromFileOrder(vars[i], golden.at(label + "/initial/" + vars.name(i))).ok())
        << vars.name(i);
  }
  std::vector<int32_t> labels;
  for (float l : golden.at(freeze.labels)) labels.push_back(static_cast<int32_t>(l));
  const Examples batch{golden.at(freeze.x).data(), freeze.batch, labels.data(), nullptr};
  std::vector<std::vector<float>> at_freeze;  // the frozen layers' variables
  for (int step = 0; step < freeze.steps; ++step) {
    const bool frozen = freeze.from <= step && step < freeze.to;
    if (step == freeze.from) {
      at_freeze.clear();
      for (int l = 0; l < freeze.layers; ++l) {
        for (const Variable& v : model.layer(l).variables()) {
          at_freeze.emplace_back(v.value().data(), v.value().data() + v.value().num_elements());
        }
      }
    }
    for (int l = 0; l < freeze.layers; ++l) model.layer(l).SetTrainable(!frozen);
    Metrics metrics;
    ASSERT_TRUE(model.TrainOnBatch(batch, &metrics).ok());
    const std::string prefix = label + "/step" + std::to_string(step) + "/";
    const float loss = golden.at(prefix + "loss")[0];
    EXPECT_NEAR(metrics.loss, loss, 1e-5 * loss) << prefix;
    for (int i = 0; i < vars.size(); ++i) {
      ExpectCloseInFileOrder(vars, i, golden.at(prefix + vars.name(i)), prefix + vars.name(i));
    }
    if (frozen) {  // bit-identical, not just close: weights and statistics
      size_t k = 0;
      for (int l = 0; l < freeze.layers; ++l) {
        for (const Variable& v : model.layer(l).variables()) {
          ASSERT_EQ(std::memcmp(v.value().data(), at_freeze[k++].data(),
                                v.value().num_elements() * sizeof(float)),
                    0)
              << prefix << v.name();
        }
      }
    }
  }
}

// A trainable layer whose output the loss never reads (a branch left out of
// the model's output) gets no gradient: as TensorFlow drops a None gradient
// and PyTorch skips a parameter whose grad is None, no step touches it: no
// weight decay, no moments, no step count; and both update modes agree.
TEST(FunctionalTest, ATrainableLayerTheLossDoesNotReachIsNotStepped) {
  for (bool in_backward : {false, true}) {
    SCOPED_TRACE(in_backward ? "update in the backward pass" : "update after it");
    Arena arena;
    ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
    Model model;
    Symbol x = model.Input(Shape{6});
    Symbol h = model.Call(Dense::Make(4, Activation::kRelu), x);
    model.Call(Dense::Make(5), x, "unused");
    Symbol y = model.Call(Dense::Make(3), h, "head");
    ASSERT_TRUE(model.Build(y, 4, &arena).ok());
    AdamOptions adam;
    adam.learning_rate = 0.01f;
    adam.weight_decay = 0.1f;
    OptimizerConfig config = OptimizerConfig::AdamW(adam);
    config.update_in_backward = in_backward;
    ASSERT_TRUE(model.Compile(config, Loss::kSparseCategoricalCrossentropyFromLogits).ok());
    const Layer& unused = model.layer(1);
    ASSERT_EQ(unused.name(), "unused");
    std::vector<std::vector<float>> before;
    for (const Variable& v : unused.variables()) {
      before.emplace_back(v.value().data(), v.value().data() + v.value().num_elements());
    }
    const std::vector<float> inputs = Inputs(4 * 6);
    const int32_t labels[4] = {0, 2, 1, 2};
    for (int step = 0; step < 3; ++step) {
      ASSERT_TRUE(model.TrainOnBatch(Examples{inputs.data(), 4, labels, nullptr}).ok());
    }
    for (size_t k = 0; k < before.size(); ++k) {
      const Variable& v = unused.variables()[k];
      EXPECT_EQ(std::memcmp(v.value().data(), before[k].data(), before[k].size() * sizeof(float)),
                0)
          << v.name();
      EXPECT_EQ(model.variables().steps(v.index()), 0u) << v.name();
    }
    EXPECT_EQ(model.variables().steps(model.layer(2).variables()[0].index()), 3u);
  }
}

OptimizerConfig Sgd() {
  SgdOptions o;
  o.learning_rate = 0.1f;
  o.momentum = 0.9f;
  o.weight_decay = 0.01f;
  return OptimizerConfig::Sgd(o);
}

OptimizerConfig Adam() {
  AdamOptions o;
  o.learning_rate = 0.01f;
  return OptimizerConfig::Adam(o);
}

TEST(FunctionalAgreementTest, ResidualFreezeThenThawMatchesPyTorch) {
  Replay("residual/sgd", Residual, Sgd(), 1);
  Replay("residual/adam", Residual, Adam(), 1);
}

TEST(FunctionalAgreementTest, BranchesWithConcatenateMatchPyTorch) {
  Replay("branches/sgd", Branches, Sgd(), 1);
  Replay("branches/adam", Branches, Adam(), 1);
}

// dense_0 (no bias) -> BatchNormalization (momentum 0.9 = PyTorch's 0.1) ->
// ReLU -> head: all trainable, then dense_0 and the BatchNorm frozen (inference
// mode: moving statistics, no updates), then thawed; the moving statistics
// and the count match PyTorch's after every step.
Symbol Normalized(Model& model) {
  Symbol x = model.Input(Shape{12});
  Symbol h = model.Call(Dense::Make(16, Activation::kLinear, /*use_bias=*/false), x);
  Symbol n = model.Call(BatchNormalization::Make(/*momentum=*/0.9f, /*epsilon=*/1e-3f), h);
  return model.Call(Dense::Make(3), model.Call(ReLU(), n), "head");
}

TEST(FunctionalAgreementTest, BatchNormalizationFrozenThenThawedMatchesPyTorch) {
  const FreezeSchedule middle = {12, 2, 4, 8};
  Replay("batchnorm/sgd", Normalized, Sgd(), 1, middle);
  Replay("batchnorm/adam", Normalized, Adam(), 1, middle);
  Replay("batchnorm/adam", Normalized, Adam(), 2, middle);
}

// A MobileNet-style block on 9 x 9 x 3 images: conv (stride 2) -> BN ->
// ReLU6 = a, depthwise -> BN -> ReLU6 -> pointwise -> BN = c, a + c, max
// pool, global average pool, head. All trainable, the backbone frozen (its
// BatchNorms in inference mode), then thawed.
Symbol Cnn(Model& model) {
  Symbol x = model.Input(Shape{9, 9, 3}, Layout::kNHWC);
  auto bn = [] { return BatchNormalization::Make(0.9f, 1e-3f); };
  Symbol a = model.Call(ReLU6(), model.Call(bn(), model.Call(Conv2D::Make(8, 3, 2, Padding::kSame,
                                                                          Activation::kLinear, false), x)));
  Symbol b = model.Call(ReLU6(), model.Call(bn(), model.Call(DepthwiseConv2D::Make(3, 1, Padding::kSame,
                                                                                   Activation::kLinear, false), a)));
  Symbol c = model.Call(bn(), model.Call(Conv2D::Make(8, 1, 1, Padding::kValid, Activation::kLinear,
                                                      false), b));
  Symbol p = model.Call(MaxPool2D::Make(2), model.Call(Add::Make(), {a, c}));
  return model.Call(Dense::Make(3), model.Call(GlobalAveragePooling2D::Make(), p), "head");
}

TEST(FunctionalAgreementTest, ConvolutionsWithBatchNormFrozenThenThawedMatchPyTorch) {
  FreezeSchedule backbone = {9, 11, 3, 6};
  backbone.x = "cnn_x";
  backbone.labels = "cnn_labels";
  backbone.batch = 4;
  Replay("cnn/sgd", Cnn, Sgd(), 1, backbone);
  Replay("cnn/adam", Cnn, Adam(), 1, backbone);
  Replay("cnn/adam", Cnn, Adam(), 2, backbone);
}

TEST(FunctionalAgreementTest, TwoThreadsMatchPyTorchToo) {
  Replay("residual/adam", Residual, Adam(), 2);
  Replay("branches/sgd", Branches, Sgd(), 2);
}

// ---- Gradients against finite differences ----

// Every model op on one graph: dense with tanh, sigmoid and softmax, an
// activation layer, Add, Concatenate, Reshape and Flatten; MSE. After a
// step with learning rate 0, each parameter's gradient buffer must match
// central differences of the evaluated loss.
// After one step with learning rate 0, every trainable parameter's gradient
// buffer must match central differences of the evaluated loss (frozen
// parameters have none).
void ExpectGradientsMatchFiniteDifferences(Model& model, const Examples& batch) {
  ASSERT_TRUE(model.TrainOnBatch(batch).ok());
  VariableSet& vars = model.variables();
  auto loss = [&] {
    Metrics m;
    EXPECT_TRUE(model.Evaluate(batch, batch.count, &m).ok());
    return m.loss;
  };
  const double h_step = 1e-2;
  int checked = 0;
  for (int i = 0; i < vars.size(); ++i) {
    if (vars.role(i) != VariableRole::kParameter || !vars[i].trainable()) continue;
    const TensorView w = vars[i].value(), g = vars[i].gradient();
    ASSERT_TRUE(g.present()) << vars.name(i);
    ++checked;
    for (size_t j = 0; j < w.num_elements(); ++j) {
      const float saved = w.data()[j];
      w.data()[j] = saved + static_cast<float>(h_step);
      const double plus = loss();
      w.data()[j] = saved - static_cast<float>(h_step);
      const double minus = loss();
      w.data()[j] = saved;
      const double numeric = (plus - minus) / (2 * h_step);
      EXPECT_NEAR(g.data()[j], numeric, 2e-4 + 2e-3 * std::fabs(numeric))
          << vars.name(i) << " element " << j;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(FunctionalGradientTest, ParameterGradientsMatchFiniteDifferences) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 18, &arena).ok());
  Model model;
  Symbol x = model.Input(Shape{6});
  Symbol h = model.Call(Dense::Make(8, Activation::kTanh), x);
  Symbol a = model.Call(Dense::Make(8, Activation::kSigmoid), h);
  Symbol s = model.Call(Add::Make(), {h, a});
  Symbol t = model.Call(Tanh(), model.Call(Reshape::Make(Shape{2, 4}), s));
  Symbol both = model.Call(Concatenate::Make(), {model.Call(Flatten::Make(), t), h});
  Symbol y = model.Call(Dense::Make(4, Activation::kSoftmax), both);
  ASSERT_TRUE(model.Build(y, 5, &arena, /*seed=*/2).ok());
  SgdOptions sgd;
  sgd.learning_rate = 0.0f;
  ASSERT_TRUE(model.Compile(OptimizerConfig::Sgd(sgd), Loss::kMeanSquaredError).ok());
  const std::vector<float> xs = Inputs(5 * 6), targets = Inputs(5 * 4, 1.3f);
  ExpectGradientsMatchFiniteDifferences(model, Examples{xs.data(), 5, nullptr, targets.data()});
}

// The convolutional ops with windows that are not square: a 3x2 conv with
// strides (2, 1) and tanh, a 1x3 depthwise with sigmoid, a frozen
// BatchNorm (inference mode, passing gradients through), a 2x1 max pool,
// a (2, 3) average pool with "same" padding, global pooling of a non-square
// image, a softmax head; MSE.
TEST(FunctionalGradientTest, ConvolutionalGradientsMatchFiniteDifferences) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  Model model;
  Symbol x = model.Input(Shape{9, 7, 2}, Layout::kNHWC);
  Symbol c = model.Call(Conv2D::Make(4, {3, 2}, {2, 1}, Padding::kSame, Activation::kTanh), x);
  Symbol d = model.Call(DepthwiseConv2D::Make({1, 3}, 1, Padding::kValid, Activation::kSigmoid), c);
  Symbol n = model.Call(BatchNormalization::Make(), d, "bn");
  Symbol p = model.Call(MaxPool2D::Make({2, 1}), n);
  p = model.Call(AveragePooling2D::Make({2, 3}, 1, Padding::kSame), p);
  EXPECT_EQ(p.shape(), (Shape{2, 5, 4}));
  Symbol y = model.Call(Dense::Make(3, Activation::kSoftmax),
                        model.Call(GlobalAveragePooling2D::Make(), p));
  ASSERT_TRUE(model.Build(y, 3, &arena, /*seed=*/4).ok());
  model.FindLayer("bn")->SetTrainable(false);
  for (const char* name : {"bn.running_mean", "bn.running_var", "bn.weight", "bn.bias"}) {
    float* v = model.variables().Find(name).value().data();
    for (size_t i = 0; i < 4; ++i) v[i] = 0.6f + 0.2f * std::sin(2.1f * i + name[3]);
  }
  SgdOptions sgd;
  sgd.learning_rate = 0.0f;
  ASSERT_TRUE(model.Compile(OptimizerConfig::Sgd(sgd), Loss::kMeanSquaredError).ok());
  const std::vector<float> xs = Inputs(3 * 9 * 7 * 2), targets = Inputs(3 * 3, 1.3f);
  ExpectGradientsMatchFiniteDifferences(model, Examples{xs.data(), 3, nullptr, targets.data()});
}

// Max pooling applies the derivative of the ReLU or ReLU6 before it when it
// is that output's only reader, and the convolution skips its own pass
// (core/exec/program.cc, 3c). Two poolings of one output turn that off:
// pool(r) + pool(r) must train exactly as p + p with p = pool(r) (routing a
// window's dy is a selection, so the sums have the same bits either way).
// A 2x2 pooling (windows apart) after a conv, a 3x3 stride-1 one
// (overlapping) after a depthwise conv and after a ReLU6 layer.
Symbol PooledTwice(Model& model, Activation f, bool apart) {
  auto pooled = [&](Symbol r, Extent2D size, Extent2D stride) {
    auto pool = [&] { return model.Call(MaxPool2D::Make(size, stride, Padding::kSame), r); };
    if (apart) return model.Call(Add::Make(), {pool(), pool()});
    const Symbol p = pool();
    return model.Call(Add::Make(), {p, p});
  };
  Symbol x = model.Input(Shape{8, 8, 2}, Layout::kNHWC);
  Symbol a = pooled(model.Call(Conv2D::Make(4, 3, 1, Padding::kSame, f), x), 2, 2);
  Symbol b = pooled(model.Call(DepthwiseConv2D::Make(3, 1, Padding::kSame, f), a), 3, 1);
  Symbol c = pooled(model.Call(ReLU6(), model.Call(Conv2D::Make(4, 1), b)), 3, 1);
  return model.Call(Dense::Make(3), model.Call(GlobalAveragePooling2D::Make(), c));
}

TEST(FunctionalGradientTest, PoolingThatMasksTheGradientTrainsWithTheSameBits) {
  const size_t n = 4;
  std::vector<float> xs = Inputs(n * 8 * 8 * 2);
  for (float& v : xs) v *= 6.0f;  // ReLU6 clips at both ends
  const int32_t labels[n] = {0, 2, 1, 2};
  for (Activation f : {Activation::kRelu, Activation::kRelu6}) {
    std::vector<std::vector<float>> weights[2];
    for (bool apart : {false, true}) {
      Arena arena;
      ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
      Model model;
      ASSERT_TRUE(model.Build(PooledTwice(model, f, apart), n, &arena, /*seed=*/5).ok());
      SgdOptions sgd;
      sgd.learning_rate = 0.2f;
      sgd.momentum = 0.9f;
      ASSERT_TRUE(model.Compile(OptimizerConfig::Sgd(sgd),
                                Loss::kSparseCategoricalCrossentropyFromLogits).ok());
      for (int step = 0; step < 4; ++step) {
        ASSERT_TRUE(model.TrainOnBatch(Examples{xs.data(), n, labels, nullptr}).ok());
      }
      VariableSet& vars = model.variables();
      for (int i = 0; i < vars.size(); ++i) {
        const TensorView v = vars[i].value();
        weights[apart].emplace_back(v.data(), v.data() + v.num_elements());
      }
    }
    ASSERT_EQ(weights[0].size(), weights[1].size());
    for (size_t i = 0; i < weights[0].size(); ++i) {
      EXPECT_EQ(weights[0][i], weights[1][i]) << ActivationName(f) << " variable " << i;
    }
  }
}

// ---- The sanitizer build checks lifetimes ----

// An op that reads its input in the backward pass but does not declare it:
// the plan lets the input die after the forward pass, and under
// AddressSanitizer the executor poisons it then, so the read is caught.
namespace lying {
Status Infer(const Node& node, Value* out) {
  out->shape = node.in[0]->shape;
  out->batched = node.in[0]->batched;
  return Status::Ok();
}
void Forward(const OpCall& c) {
  for (size_t i = 0; i < c.out_elements(); ++i) c.node->out->data[i] = 2 * c.node->in[0]->data[i];
}
void Backward(const OpCall& c) {
  float sum = 0;  // the undeclared read
  for (size_t i = 0; i < c.in_elements(0); ++i) sum += c.node->in[0]->data[i];
  for (size_t i = 0; i < c.out_elements(); ++i) c.din[0][i] = 2 * c.dout()[i] + 0 * sum;
}
const OpDef kOp = {"lying", 1, 1, Infer, Forward, Backward, nullptr, nullptr, nullptr, false,
                   nullptr, nullptr, nullptr, nullptr, false, false, false};
class Layer final : public thaw::Layer {
 public:
  const char* kind() const override { return "lying"; }
  Status Call(LayerBuilder& b, Span<Value* const> in, Value** out) override {
    return b.AddNode(kOp, OpAttrs(), in, out);
  }
};
}  // namespace lying

TEST(LifetimeDeathTest, AnUndeclaredReadOfADeadBufferIsCaught) {
#if !defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "lifetimes are enforced in the AddressSanitizer build (THAW_SANITIZE=ON)";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  Model model;
  Symbol x = model.Input(Shape{4});
  Symbol h = model.Call(Dense::Make(4, Activation::kTanh), x);
  Symbol y = model.Call(std::make_unique<lying::Layer>(), model.Call(Dense::Make(4), h));
  ASSERT_TRUE(model.Build(y, 2, &arena).ok());
  ASSERT_TRUE(model.Compile(OptimizerConfig::Sgd(SgdOptions()), Loss::kMeanSquaredError).ok());
  const std::vector<float> xs = Inputs(8), targets = Inputs(8, 0.5f);
  EXPECT_DEATH((void)model.TrainOnBatch(Examples{xs.data(), 2, nullptr, targets.data()}),
               "use-after-poison");
#endif
}

}  // namespace
}  // namespace thaw
