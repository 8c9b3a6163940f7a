// Frozen weights read in place from read-only bytes (BuildOptions::weights):
// no arena bytes, never written (the bytes sit on pages the test makes
// read-only, so a write would crash it), the same numbers as a model that
// copied them, thawed into the arena on demand, and refused by loads.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/io/checkpoint_memory.h"
#include "core/thaw.h"
#include "gtest/gtest.h"
#include "tests/status_text.h"

namespace thaw {
namespace {

bool Contains(const Status& s, const std::string& text) { return MessageContains(s, text); }

// Bytes on pages of their own, read-only once sealed.
class ReadOnlyBytes {
 public:
  explicit ReadOnlyBytes(const std::vector<unsigned char>& bytes, size_t shift = 0) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_ = (bytes.size() + shift + page - 1) / page * page;
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    base_ = static_cast<unsigned char*>(p);
    std::memcpy(base_ + shift, bytes.data(), bytes.size());
    EXPECT_EQ(mprotect(base_, size_, PROT_READ), 0);
    span_ = Span<const unsigned char>(base_ + shift, bytes.size());
  }
  ~ReadOnlyBytes() { munmap(base_, size_); }
  Span<const unsigned char> span() const { return span_; }
  bool Holds(const float* p) const {
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    return b >= span_.data() && b < span_.data() + span_.size();
  }

 private:
  unsigned char* base_ = nullptr;
  size_t size_ = 0;
  Span<const unsigned char> span_;
};

// 64 -> hidden (32, relu) -> bn -> head (10), or with a convolution and a
// depthwise convolution in front.
struct Net {
  Model model;
  Symbol output;
  void Describe(bool cnn) {
    Symbol x, h;
    if (cnn) {
      x = model.Input(Shape{4, 4, 4}, Layout::kNHWC);
      Symbol c = model.Call(Conv2D::Make(4, 3, 1, Padding::kSame), x, "conv");
      Symbol d = model.Call(DepthwiseConv2D::Make(3, 1, Padding::kSame), c, "dw");
      h = model.Call(Flatten::Make(), d);
    } else {
      x = model.Input(Shape{64});
      h = x;
    }
    h = model.Call(Dense::Make(32, Activation::kRelu), h, "hidden");
    h = model.Call(BatchNormalization::Make(), h, "bn");
    output = model.Call(Dense::Make(10), h, "head");
  }
  void FreezeBackbone() {
    for (const char* name : {"conv", "dw", "hidden", "bn"}) {
      if (Layer* layer = model.FindLayer(name)) layer->SetTrainable(false);
    }
  }
};

std::vector<unsigned char> Pretrained(bool cnn) {
  Arena arena;
  EXPECT_TRUE(Arena::Create(1 << 20, &arena).ok());
  Net net;
  net.Describe(cnn);
  EXPECT_TRUE(net.model.Build(net.output, 8, &arena, 3).ok());
  size_t size = 0;
  EXPECT_TRUE(CheckpointSize(net.model.variables(), &size).ok());
  std::vector<unsigned char> bytes(size);
  EXPECT_TRUE(
      SaveCheckpointToMemory(net.model.variables(), Span<unsigned char>(bytes), &size).ok());
  return bytes;
}

std::vector<float> Inputs(size_t n, float phase) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i) + phase);
  return x;
}

const int32_t kLabels[8] = {0, 1, 2, 3, 4, 5, 6, 7};

OptimizerConfig Sgd() {
  SgdOptions sgd;
  sgd.learning_rate = 0.05f;
  sgd.momentum = 0.9f;
  return OptimizerConfig::Sgd(sgd);
}

std::vector<float> Values(Model& m, const char* name) {
  const TensorView v = m.variables().Find(name).value();
  return std::vector<float>(v.data(), v.data() + v.num_elements());
}

// Read in place vs copied: the same training, bit for bit, and the bytes of
// in-place variables are never written (they are read-only pages).
TEST(InPlaceWeightsTest, FrozenWeightsReadTheBytesAndTrainAsCopiedOnes) {
  for (bool cnn : {false, true}) {
    const std::vector<unsigned char> pretrained = Pretrained(cnn);
    ReadOnlyBytes flash(pretrained);
    Net in_place, copied;
    in_place.Describe(cnn);
    copied.Describe(cnn);
    in_place.FreezeBackbone();  // before Build: read in place

    const Loss loss = Loss::kSparseCategoricalCrossentropyFromLogits;
    const OptimizerConfig sgd = Sgd();
    PlanOptions options;
    options.batch = 8;
    options.output = in_place.output;
    options.optimizer = &sgd;
    options.loss = &loss;
    ModelPlan without, with;
    ASSERT_TRUE(in_place.model.PlanMemory(options, &without).ok());
    options.weights = flash.span();
    ASSERT_TRUE(in_place.model.PlanMemory(options, &with).ok());
    // In place: the frozen dense kernel, the biases, gamma and beta. Copied:
    // the convolution's and the depthwise convolution's kernels (files hold
    // them transposed), the statistics and the trainable head.
    EXPECT_LT(with.bytes[Region::kWeights], without.bytes[Region::kWeights]);
    EXPECT_EQ(without.bytes[Region::kWeights] - with.bytes[Region::kWeights],
              without.arena_bytes - with.arena_bytes);

    Arena a, b;
    ASSERT_TRUE(Arena::Create(with.arena_bytes, &a).ok());
    ASSERT_TRUE(Arena::Create(without.arena_bytes, &b).ok());
    BuildOptions from_flash;
    from_flash.weights = flash.span();
    Status built = in_place.model.Build(in_place.output, 8, &a, from_flash);
    ASSERT_TRUE(built.ok()) << built.message();
    ASSERT_TRUE(copied.model.Build(copied.output, 8, &b, from_flash).ok());
    copied.FreezeBackbone();  // after Build: everything was copied
    for (Net* n : {&in_place, &copied}) ASSERT_TRUE(n->model.Compile(sgd, loss).ok());

    const VariableSet& vars = in_place.model.variables();
    int reading = 0;
    for (int i = 0; i < vars.size(); ++i) {
      const std::string& name = vars.name(i);
      const bool expect = (name == "hidden.weight" || name == "hidden.bias" ||
                           name == "bn.weight" || name == "bn.bias" || name == "dw.bias" ||
                           name == "conv.bias");
      EXPECT_EQ(vars.in_place(i), expect) << name;
      EXPECT_EQ(flash.Holds(vars.value_data(i)), expect) << name;
      reading += expect;
    }
    EXPECT_EQ(reading, cnn ? 6 : 4);
    for (int i = 0; i < vars.size(); ++i) EXPECT_FALSE(copied.model.variables().in_place(i));

    const size_t features = 64;  // 4 x 4 x 4 images, or 64 features
    for (int step = 0; step < 4; ++step) {
      const std::vector<float> x = Inputs(8 * features, 0.2f * step);
      Metrics ma, mb;
      Status s = in_place.model.TrainOnBatch({x.data(), 8, kLabels, nullptr, features}, &ma);
      ASSERT_TRUE(s.ok()) << s.message();
      ASSERT_TRUE(copied.model.TrainOnBatch({x.data(), 8, kLabels, nullptr, features}, &mb).ok());
      EXPECT_EQ(ma.loss, mb.loss) << cnn << " step " << step;
    }
    EXPECT_LE(a.high_water(), with.arena_bytes);
    EXPECT_EQ(Values(in_place.model, "head.weight"), Values(copied.model, "head.weight"));
    // A checkpoint of the model holds the in-place values.
    size_t size = 0;
    ASSERT_TRUE(CheckpointSize(vars, &size).ok());
    std::vector<unsigned char> saved(size);
    ASSERT_TRUE(SaveCheckpointToMemory(vars, Span<unsigned char>(saved), &size).ok());
    Net check;
    check.Describe(cnn);
    Arena c;
    ASSERT_TRUE(Arena::Create(1 << 20, &c).ok());
    BuildOptions reload;
    reload.weights = Span<const unsigned char>(saved);
    ASSERT_TRUE(check.model.Build(check.output, 8, &c, reload).ok());
    EXPECT_EQ(Values(check.model, "hidden.weight"), Values(in_place.model, "hidden.weight"));
    EXPECT_EQ(Values(check.model, "head.weight"), Values(in_place.model, "head.weight"));
  }
}

// Thawing copies the value into the arena at the next step, when it fits;
// when it does not, the step is refused and nothing changes.
TEST(InPlaceWeightsTest, ThawingCopiesIntoTheArenaOrIsRefused) {
  const std::vector<unsigned char> pretrained = Pretrained(false);
  ReadOnlyBytes flash(pretrained);
  const OptimizerConfig sgd = Sgd();
  const Loss loss = Loss::kSparseCategoricalCrossentropyFromLogits;
  const std::vector<float> x = Inputs(8 * 64, 0.5f);
  const Examples batch{x.data(), 8, kLabels, nullptr, 64};

  Net net;
  net.Describe(false);
  net.FreezeBackbone();
  PlanOptions options;
  options.batch = 8;
  options.output = net.output;
  options.optimizer = &sgd;
  options.loss = &loss;
  options.weights = flash.span();
  ModelPlan frozen;
  ASSERT_TRUE(net.model.PlanMemory(options, &frozen).ok());
  Arena small;
  ASSERT_TRUE(Arena::Create(frozen.arena_bytes, &small).ok());
  BuildOptions from_flash;
  from_flash.weights = flash.span();
  ASSERT_TRUE(net.model.Build(net.output, 8, &small, from_flash).ok());
  ASSERT_TRUE(net.model.Compile(sgd, loss).ok());
  ASSERT_TRUE(net.model.TrainOnBatch(batch).ok());
  const std::vector<float> head = Values(net.model, "head.weight");

  net.model.FindLayer("hidden")->SetTrainable(true);
  Status s = net.model.TrainOnBatch(batch);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(s, "nothing was changed")) << s.message();
  const int hidden = net.model.variables().Find("hidden.weight").index();
  EXPECT_TRUE(net.model.variables().in_place(hidden));
  EXPECT_EQ(Values(net.model, "head.weight"), head);
  net.model.FindLayer("hidden")->SetTrainable(false);  // frozen again, it trains
  ASSERT_TRUE(net.model.TrainOnBatch(batch).ok());

  // With room, thawing takes a copy and trains it; the bytes stay as they were.
  Net roomy, reference;
  for (Net* n : {&roomy, &reference}) {
    n->Describe(false);
    n->FreezeBackbone();
  }
  Arena big, ref_arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &big).ok());
  ASSERT_TRUE(Arena::Create(1 << 20, &ref_arena).ok());
  ASSERT_TRUE(roomy.model.Build(roomy.output, 8, &big, from_flash).ok());
  const std::vector<unsigned char> copy(pretrained);
  BuildOptions from_copy;
  from_copy.weights = Span<const unsigned char>(copy);
  ASSERT_TRUE(reference.model.Build(reference.output, 8, &ref_arena, from_copy).ok());
  for (Net* n : {&roomy, &reference}) {
    ASSERT_TRUE(n->model.Compile(sgd, loss).ok());
    ASSERT_TRUE(n->model.TrainOnBatch(batch).ok());
    n->model.FindLayer("hidden")->SetTrainable(true);
  }
  const std::vector<float> before = Values(roomy.model, "hidden.weight");
  for (int step = 0; step < 3; ++step) {
    Metrics ma, mb;
    ASSERT_TRUE(roomy.model.TrainOnBatch(batch, &ma).ok());
    ASSERT_TRUE(reference.model.TrainOnBatch(batch, &mb).ok());
    EXPECT_EQ(ma.loss, mb.loss) << step;
  }
  EXPECT_FALSE(roomy.model.variables().in_place(hidden));
  EXPECT_FALSE(flash.Holds(roomy.model.variables().value_data(hidden)));
  EXPECT_NE(Values(roomy.model, "hidden.weight"), before);
  EXPECT_EQ(Values(roomy.model, "hidden.weight"), Values(reference.model, "hidden.weight"));
  EXPECT_EQ(std::memcmp(flash.span().data(), pretrained.data(), pretrained.size()), 0);
}

TEST(InPlaceWeightsTest, LoadsAndAssignsRefuseInPlaceVariables) {
  const std::vector<unsigned char> pretrained = Pretrained(false);
  ReadOnlyBytes flash(pretrained);
  Net net;
  net.Describe(false);
  net.FreezeBackbone();
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  BuildOptions from_flash;
  from_flash.weights = flash.span();
  ASSERT_TRUE(net.model.Build(net.output, 8, &arena, from_flash).ok());
  Status s = LoadCheckpointFromMemory(Span<const unsigned char>(pretrained), &net.model.variables());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "hidden.weight: the model's variable reads its value in place"))
      << s.message();
  const std::vector<float> zeros(32 * 64, 0.0f);
  s = net.model.variables().Assign(net.model.variables().Find("hidden.weight"), zeros);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  // The trainable head alone loads.
  LoadOptions head_only;
  head_only.trainable_only = true;
  size_t size = 0;
  SaveOptions trainable;
  trainable.trainable_only = true;
  ASSERT_TRUE(CheckpointSize(net.model.variables(), &size, trainable).ok());
  std::vector<unsigned char> head(size);
  ASSERT_TRUE(
      SaveCheckpointToMemory(net.model.variables(), Span<unsigned char>(head), &size, trainable)
          .ok());
  s = LoadCheckpointFromMemory(Span<const unsigned char>(head), &net.model.variables(), head_only);
  EXPECT_TRUE(s.ok()) << s.message();
}

// Bytes that cannot be read in place (not 4-byte aligned) are copied; bytes
// that do not fit the model are refused with the checkpoint's message.
TEST(InPlaceWeightsTest, UnalignedBytesAreCopiedAndBadOnesRefused) {
  const std::vector<unsigned char> pretrained = Pretrained(false);
  ReadOnlyBytes shifted(pretrained, /*shift=*/2);
  Net net;
  net.Describe(false);
  net.FreezeBackbone();
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  BuildOptions options;
  options.weights = shifted.span();
  ASSERT_TRUE(net.model.Build(net.output, 8, &arena, options).ok());
  for (int i = 0; i < net.model.variables().size(); ++i) {
    EXPECT_FALSE(net.model.variables().in_place(i)) << net.model.variables().name(i);
  }

  Net other;
  Symbol x = other.model.Input(Shape{64});
  Symbol y = other.model.Call(Dense::Make(5), x, "head");
  Arena arena2;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena2).ok());
  options.weights = Span<const unsigned char>(pretrained);
  Status s = other.model.Build(y, 8, &arena2, options);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "Build: the weights")) << s.message();
  EXPECT_FALSE(other.model.built());
  std::vector<unsigned char> cut(pretrained.begin(), pretrained.end() - 5);
  options.weights = Span<const unsigned char>(cut);
  EXPECT_EQ(other.model.Build(y, 8, &arena2, options).code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace thaw
