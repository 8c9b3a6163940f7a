// Counts heap allocations across a training step after the first, and
// asserts there are none: thaw's step runs entirely in the arena.
//
// operator new/delete are replaced for the whole binary
// (tests/replace_new.h). Under AddressSanitizer and ThreadSanitizer malloc
// belongs to the sanitizer, so there only C++ allocations are counted;
// otherwise malloc/calloc/realloc are counted too (glibc lets a program
// interpose them).
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "core/c/thaw_c.h"
#include "core/thaw.h"
#include "gtest/gtest.h"
#include "tests/replace_new.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
void Count() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
}
}  // namespace

void OnHeapAllocation() { Count(); }

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)  // ASan and TSan own malloc
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* malloc(size_t size) {
  Count();
  return __libc_malloc(size);
}
void* calloc(size_t n, size_t size) {
  Count();
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t size) {
  Count();
  return __libc_realloc(p, size);
}
}
#endif

namespace thaw {
namespace {

// An MLP-shaped set: a frozen first layer, a trainable second one.
struct MlpSet {
  Arena arena;
  std::unique_ptr<VariableSet> vars;
  Variable w0, w1, b1;
  std::vector<float> x, y;
};

void Build(MlpSet& s, size_t batch, size_t in, size_t hidden, size_t out) {
  // 16 MiB: far more than the step needs, and under the 64 MiB that a 32-bit
  // build's arena may hold (kMaxBytes, platform/checked.h).
  ASSERT_TRUE(Arena::Create(16 << 20, &s.arena).ok());
  s.vars.reset(new VariableSet(&s.arena));
  ASSERT_TRUE(s.vars->Create("w0", {in, hidden}, false, &s.w0).ok());
  ASSERT_TRUE(s.vars->Create("w1", {hidden, out}, true, &s.w1).ok());
  ASSERT_TRUE(s.vars->Create("b1", {1}, true, &s.b1).ok());
  std::vector<float> w0(in * hidden), w1(hidden * out);
  for (size_t i = 0; i < w0.size(); ++i) w0[i] = 0.01f * ((i * 37) % 17) - 0.08f;
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = 0.01f * ((i * 11) % 13) - 0.06f;
  ASSERT_TRUE(s.vars->Assign(s.w0, w0).ok());
  ASSERT_TRUE(s.vars->Assign(s.w1, w1).ok());
  s.x.resize(batch * in);
  s.y.resize(batch * out);
  for (size_t i = 0; i < s.x.size(); ++i) s.x[i] = 0.1f * ((i * 7) % 9) - 0.4f;
  for (size_t i = 0; i < s.y.size(); ++i) s.y[i] = 0.2f * ((i * 3) % 5) - 0.4f;
}

Status TrainStep(MlpSet& s, Optimizer& opt, ThreadPool& pool, size_t batch, size_t in, size_t out) {
  GradientTape tape(s.vars.get(), pool);
  Tensor x = tape.Constant({batch, in}, s.x);
  Tensor y = tape.Constant({batch, out}, s.y);
  Tensor h = tape.Relu(tape.MatMul(x, s.w0));
  Tensor pred = tape.Add(tape.MatMul(h, s.w1), s.b1);
  Tensor loss = tape.Mean(tape.Square(tape.Sub(pred, y)));
  TensorView g[3];
  THAW_RETURN_IF_ERROR(tape.Gradient(loss, {s.w0, s.w1, s.b1}, g));
  return opt.ApplyGradients({{g[0], s.w0}, {g[1], s.w1}, {g[2], s.b1}});
}

class NoAllocTest : public ::testing::TestWithParam<int> {};

TEST_P(NoAllocTest, StepAfterTheFirstTakesNothingFromTheHeap) {
  // Big enough that elementwise kernels split into several tasks.
  const size_t batch = 32, in = 64, hidden = 600, out = 40;
  MlpSet s;
  ASSERT_NO_FATAL_FAILURE(Build(s, batch, in, hidden, out));
  ThreadPool pool(GetParam());
  SgdOptions so;
  so.momentum = 0.9f;
  so.weight_decay = 1e-4f;
  for (int optimizer = 0; optimizer < 2; ++optimizer) {
    std::unique_ptr<Optimizer> opt;
    if (optimizer == 0) opt.reset(new SGD(s.vars.get(), so, pool));
    if (optimizer == 1) opt.reset(new Adam(s.vars.get(), AdamOptions(), pool));
    ASSERT_TRUE(TrainStep(s, *opt, pool, batch, in, out).ok());  // warm-up
    const float before = s.w1.value().data()[0];
    g_allocations = 0;
    g_counting = true;
    Status status = TrainStep(s, *opt, pool, batch, in, out);
    Status again = TrainStep(s, *opt, pool, batch, in, out);
    g_counting = false;
    ASSERT_TRUE(status.ok()) << status.message();
    ASSERT_TRUE(again.ok()) << again.message();
    EXPECT_EQ(g_allocations.load(), 0) << "optimizer " << optimizer;
    EXPECT_NE(s.w1.value().data()[0], before);  // the step did train
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, NoAllocTest, ::testing::Values(1, 2));

// The same for a Sequential model's training step, including a dropout
// layer and a frozen first layer, and for its inference step.
TEST_P(NoAllocTest, ModelStepsAfterTheFirstTakeNothingFromTheHeap) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(16 << 20, &arena).ok());
  ThreadPool pool(GetParam());
  Sequential model(pool);
  ASSERT_TRUE(model.Add(Dense::Make(300, Activation::kRelu)).ok());
  ASSERT_TRUE(model.Add(Dropout::Make(0.2f)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(100, Activation::kTanh)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(10, Activation::kSoftmax)).ok());
  ASSERT_TRUE(model.Build(64, 64, &arena).ok());
  ASSERT_TRUE(model.Compile(OptimizerConfig::Adam(AdamOptions()),
                            Loss::kSparseCategoricalCrossentropy).ok());
  model.layer(0).SetTrainable(false);
  std::vector<float> x(64 * 64, 0.5f), out(64 * 10);
  std::vector<int32_t> labels(64, 3);
  Examples batch{x.data(), 64, labels.data(), nullptr};
  ASSERT_TRUE(model.TrainOnBatch(batch).ok());
  ASSERT_TRUE(model.Predict(x.data(), 64, out.data()).ok());
  g_allocations = 0;
  g_counting = true;
  Status train = model.TrainOnBatch(batch);
  Status predict = model.Predict(x.data(), 64, out.data());
  g_counting = false;
  ASSERT_TRUE(train.ok()) << train.message();
  ASSERT_TRUE(predict.ok()) << predict.message();
  EXPECT_EQ(g_allocations.load(), 0);
}

// Through the C interface (core/c/thaw_c.h): its steps allocate nothing
// either (the message it keeps is a fixed buffer in the handle).
TEST_P(NoAllocTest, CInterfaceStepsTakeNothingFromTheHeap) {
  thaw_model* m = nullptr;
  ASSERT_EQ(thaw_model_create(GetParam(), &m), THAW_OK);
  const size_t shape[1] = {64};
  thaw_tensor x, h, y;
  ASSERT_EQ(thaw_input(m, shape, 1, THAW_LAYOUT_ANY, &x), THAW_OK);
  ASSERT_EQ(thaw_dense(m, x, 32, THAW_ACTIVATION_RELU, 1, "hidden", &h), THAW_OK);
  ASSERT_EQ(thaw_dense(m, h, 10, THAW_ACTIVATION_LINEAR, 1, "head", &y), THAW_OK);
  ASSERT_EQ(thaw_model_build(m, y, 8, nullptr, 1 << 20, 1), THAW_OK);
  thaw_optimizer adam;
  thaw_optimizer_defaults(THAW_OPTIMIZER_ADAM, &adam);
  ASSERT_EQ(thaw_model_compile(m, &adam, THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS),
            THAW_OK);
  ASSERT_EQ(thaw_model_set_trainable(m, "hidden", 0), THAW_OK);
  std::vector<float> in(8 * 64, 0.25f), out(8 * 10);
  std::vector<int32_t> labels(8, 2);
  thaw_metrics metrics;
  ASSERT_EQ(thaw_model_train_on_batch(m, in.data(), labels.data(), nullptr, 8, &metrics), THAW_OK);
  ASSERT_EQ(thaw_model_predict(m, in.data(), 8, out.data()), THAW_OK);
  g_allocations = 0;
  g_counting = true;
  const thaw_status train =
      thaw_model_train_on_batch(m, in.data(), labels.data(), nullptr, 8, &metrics);
  const thaw_status evaluate =
      thaw_model_evaluate(m, in.data(), labels.data(), nullptr, 8, 4, &metrics);
  const thaw_status predict = thaw_model_predict(m, in.data(), 8, out.data());
  g_counting = false;
  EXPECT_EQ(train, THAW_OK);
  EXPECT_EQ(evaluate, THAW_OK);
  EXPECT_EQ(predict, THAW_OK);
  EXPECT_EQ(g_allocations.load(), 0);
  thaw_model_destroy(m);
}

// A functional model with a residual Add and a Concatenate: training,
// evaluation and inference steps.
TEST_P(NoAllocTest, FunctionalModelStepsTakeNothingFromTheHeap) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(16 << 20, &arena).ok());
  ThreadPool pool(GetParam());
  Model model(pool);
  Symbol x = model.Input(Shape{64});
  Symbol h = model.Call(Dense::Make(300, Activation::kRelu), x);
  Symbol g = model.Call(Dense::Make(300, Activation::kRelu), h);
  Symbol r = model.Call(Add::Make(), {h, g});
  Symbol c = model.Call(Concatenate::Make(), {r, h});
  ASSERT_TRUE(model.Build(model.Call(Dense::Make(10, Activation::kSoftmax), c), 64, &arena).ok());
  ASSERT_TRUE(model.Compile(OptimizerConfig::Adam(AdamOptions()),
                            Loss::kSparseCategoricalCrossentropy).ok());
  std::vector<float> xs(64 * 64, 0.5f), out(64 * 10);
  std::vector<int32_t> labels(64, 3);
  Examples batch{xs.data(), 64, labels.data(), nullptr};
  Metrics metrics;
  ASSERT_TRUE(model.TrainOnBatch(batch).ok());
  ASSERT_TRUE(model.Predict(xs.data(), 64, out.data()).ok());
  ASSERT_TRUE(model.Evaluate(batch, 64, &metrics).ok());
  model.layer(0).SetTrainable(false);  // a new freeze set re-plans without allocating
  g_allocations = 0;
  g_counting = true;
  Status train = model.TrainOnBatch(batch);
  Status predict = model.Predict(xs.data(), 64, out.data());
  Status evaluate = model.Evaluate(batch, 64, &metrics);
  g_counting = false;
  ASSERT_TRUE(train.ok()) << train.message();
  ASSERT_TRUE(predict.ok()) << predict.message();
  ASSERT_TRUE(evaluate.ok()) << evaluate.message();
  EXPECT_EQ(g_allocations.load(), 0);
}

// A CNN with every convolutional layer kind: conv (direct, narrow input)
// - BN - ReLU6, conv (tiles) - BN, depthwise, residual Add, max and average
// pooling, global pooling, head. Training, inference and evaluation steps,
// then a frozen backbone (BatchNorms folded into their convolutions).
TEST_P(NoAllocTest, ConvolutionalModelStepsTakeNothingFromTheHeap) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(32 << 20, &arena).ok());
  ThreadPool pool(GetParam());
  Model model(pool);
  Symbol x = model.Input(Shape{16, 16, 3}, Layout::kNHWC);
  Symbol a = model.Call(Conv2D::Make(16, 3, 1, Padding::kSame, Activation::kLinear, false), x);
  a = model.Call(ReLU6(), model.Call(BatchNormalization::Make(), a));
  Symbol b = model.Call(Conv2D::Make(16, 3, 1, Padding::kSame, Activation::kLinear, false), a);
  b = model.Call(DepthwiseConv2D::Make(3, 1, Padding::kSame),
                 model.Call(BatchNormalization::Make(), b));
  Symbol p = model.Call(MaxPool2D::Make(2), model.Call(Add::Make(), {a, b}));
  p = model.Call(AveragePooling2D::Make(2), p);
  Symbol y = model.Call(Dense::Make(10), model.Call(GlobalAveragePooling2D::Make(), p), "head");
  ASSERT_TRUE(model.Build(y, 32, &arena).ok());
  ASSERT_TRUE(model.Compile(OptimizerConfig::Adam(AdamOptions()),
                            Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  std::vector<float> xs(32 * 16 * 16 * 3), out(32 * 10);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(i % 17) * 0.05f;
  std::vector<int32_t> labels(32);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 10);
  Examples batch{xs.data(), 32, labels.data(), nullptr};
  Metrics metrics;
  auto steps = [&] {
    Status train = model.TrainOnBatch(batch);
    Status predict = model.Predict(xs.data(), 32, out.data());
    Status evaluate = model.Evaluate(batch, 32, &metrics);
    EXPECT_TRUE(train.ok()) << train.message();
    EXPECT_TRUE(predict.ok()) << predict.message();
    EXPECT_TRUE(evaluate.ok()) << evaluate.message();
  };
  steps();
  for (size_t i = 0; i + 1 < model.num_layers(); ++i) model.layer(i).SetTrainable(false);
  g_allocations = 0;
  g_counting = true;
  steps();  // re-planned for the new freeze set
  steps();
  for (size_t i = 0; i + 1 < model.num_layers(); ++i) model.layer(i).SetTrainable(true);
  steps();
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0);
}

// Update in the backward pass (OptimizerConfig::update_in_backward): a
// CNN with BatchNorm and Adam with per-variable clipping, training steps
// with the updates handed out during the backward pass, a frozen backbone
// and a thaw between steps.
TEST_P(NoAllocTest, UpdateInBackwardStepsTakeNothingFromTheHeap) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(32 << 20, &arena).ok());
  ThreadPool pool(GetParam());
  Model model(pool);
  Symbol x = model.Input(Shape{12, 12, 3}, Layout::kNHWC);
  Symbol a = model.Call(Conv2D::Make(8, 3, 1, Padding::kSame, Activation::kLinear, false), x);
  a = model.Call(ReLU6(), model.Call(BatchNormalization::Make(), a));
  Symbol b = model.Call(DepthwiseConv2D::Make(3, 1, Padding::kSame), a);
  Symbol p = model.Call(MaxPool2D::Make(2), model.Call(Add::Make(), {a, b}));
  Symbol y = model.Call(Dense::Make(10), model.Call(GlobalAveragePooling2D::Make(), p), "head");
  ASSERT_TRUE(model.Build(y, 16, &arena).ok());
  OptimizerConfig config = OptimizerConfig::Adam(AdamOptions());
  config.update_in_backward = true;
  config.clipping.clipnorm = 1.0f;
  config.clipping.clipvalue = 0.5f;
  ASSERT_TRUE(model.Compile(config, Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  std::vector<float> xs(16 * 12 * 12 * 3);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(i % 13) * 0.05f;
  std::vector<int32_t> labels(16);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 10);
  Examples batch{xs.data(), 16, labels.data(), nullptr};
  auto train = [&] {
    Status s = model.TrainOnBatch(batch);
    EXPECT_TRUE(s.ok()) << s.message();
  };
  train();
  for (size_t i = 0; i + 1 < model.num_layers(); ++i) model.layer(i).SetTrainable(false);
  train();
  g_allocations = 0;
  g_counting = true;
  train();
  for (size_t i = 0; i + 1 < model.num_layers(); ++i) model.layer(i).SetTrainable(true);
  train();  // re-planned: the backbone's state starts from zero
  train();
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0);
}

// The Fit tests' model: 32 features, a 100-unit hidden layer and a 10-way
// softmax, built for batches of 16 and compiled with plain SGD.
Status BuildFitModel(Sequential* model, Arena* arena) {
  THAW_RETURN_IF_ERROR(model->Add(Dense::Make(100, Activation::kRelu)));
  THAW_RETURN_IF_ERROR(model->Add(Dense::Make(10, Activation::kSoftmax)));
  THAW_RETURN_IF_ERROR(model->Build(32, 16, arena));
  return model->Compile(OptimizerConfig::Sgd(SgdOptions()), Loss::kSparseCategoricalCrossentropy);
}

// Fit's steps, shuffled batches copied into the arena included: a callback
// reads the counter between steps, after Fit's own setup.
TEST_P(NoAllocTest, FitStepsTakeNothingFromTheHeap) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(16 << 20, &arena).ok());
  ThreadPool pool(GetParam());
  Sequential model(pool);
  ASSERT_TRUE(BuildFitModel(&model, &arena).ok());
  std::vector<float> xs(100 * 32, 0.25f);
  std::vector<int32_t> labels(100, 1);
  struct Counter : FitCallback {
    long at_second = -1, at_last = -1;
    void OnBatchEnd(size_t done, const Metrics&) override {
      if (done == 2) at_second = g_allocations.load();
      at_last = g_allocations.load();
    }
  } counter;
  FitOptions fit;
  fit.epochs = 1;
  fit.batch_size = 16;  // 7 steps, the last one of 4 examples
  fit.callback = &counter;
  g_allocations = 0;
  g_counting = true;
  Status s = model.Fit(Examples{xs.data(), 100, labels.data(), nullptr}, fit);
  g_counting = false;
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(counter.at_last, counter.at_second);
}

// Fit with the feature cache (core/api/model.h): choosing the cut, the fit
// check, the fingerprints and computing the cache allocate nothing, and
// neither do the steps that read it. A Fit in order, without history or
// callback, allocates nothing at all, so the whole call is counted.
// In both modes (the default and update in the backward pass).
TEST_P(NoAllocTest, FitWithTheFeatureCacheTakesNothingFromTheHeap) {
  for (bool in_backward : {false, true}) {  // OptimizerConfig::update_in_backward
    Arena arena;
    ASSERT_TRUE(Arena::Create(16 << 20, &arena).ok());
    ThreadPool pool(GetParam());
    Sequential model(pool);
    ASSERT_TRUE(BuildFitModel(&model, &arena).ok());
    OptimizerConfig config = OptimizerConfig::Sgd(SgdOptions());
    config.update_in_backward = in_backward;
    ASSERT_TRUE(model.Compile(config, Loss::kSparseCategoricalCrossentropy).ok());
    model.layer(0).SetTrainable(false);
    std::vector<float> xs(100 * 32, 0.25f);
    std::vector<int32_t> labels(100, 1);
    FitOptions fit;
    fit.epochs = 2;
    fit.batch_size = 16;  // 7 steps, the last one of 4 examples
    fit.shuffle = false;
    fit.feature_cache = CacheMode::kRequired;
    for (int round = 0; round < 3; ++round) {  // computed, reused, computed for new data
      if (round == 2) xs[5] = 0.5f;
      g_allocations = 0;
      g_counting = true;
      Status s = model.Fit(Examples{xs.data(), 100, labels.data(), nullptr}, fit);
      g_counting = false;
      ASSERT_TRUE(s.ok()) << s.message();
      EXPECT_EQ(g_allocations.load(), 0)
          << "round " << round << (in_backward ? ", in backward" : ", default");
    }
    EXPECT_EQ(arena.bytes(Region::kFeatureCache), AlignUp(100 * 100 * sizeof(float)));
  }
}

// An error costs the heap only its sentence: without error strings (the
// firmware profile's THAW_ERROR_STRINGS=OFF) nothing is formatted or copied,
// however long the sentence would have been; with them, the counter sees the
// sentence's allocation (so it would see one in the other build).
TEST(NoAllocCounterTest, AnErrorAllocatesOnlyForItsSentence) {
  const std::string name(100, 'x');  // too long for a short-string buffer
  g_allocations = 0;
  g_counting = true;
  Status s = InvalidArgument("%s: expected rank 2, got %d", name.c_str(), 3);
  Status copy = s;
  g_counting = false;
  EXPECT_EQ(copy.code(), StatusCode::kInvalidArgument);
#if THAW_ERROR_STRINGS
  EXPECT_GE(g_allocations.load(), 1);
#else
  EXPECT_EQ(g_allocations.load(), 0);
#endif
}

// The counter itself works: a vector push does count.
TEST(NoAllocCounterTest, CountsAnAllocation) {
  g_allocations = 0;
  g_counting = true;
  std::vector<int>* v = new std::vector<int>(10);
  g_counting = false;
  delete v;
  EXPECT_GE(g_allocations.load(), 1);
}

}  // namespace
}  // namespace thaw
