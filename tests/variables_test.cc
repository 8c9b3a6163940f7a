#include "core/vars/variables.h"

#include <cstring>
#include <string>
#include <vector>

#include "core/train/optimizers.h"
#include "core/api/tape.h"
#include "gtest/gtest.h"
#include "tests/status_text.h"

namespace thaw {
namespace {

bool Contains(const Status& s, const std::string& text) { return MessageContains(s, text); }

TEST(BitmapTest, SetTestCountCompare) {
  Bitmap a, b;
  a.Resize(130);
  b.Resize(130);
  a.Set(0, true);
  a.Set(64, true);
  a.Set(129, true);
  EXPECT_TRUE(a.Test(64));
  EXPECT_FALSE(a.Test(65));
  EXPECT_EQ(a.Count(), 3u);
  EXPECT_NE(a, b);
  b.Set(0, true);
  b.Set(64, true);
  b.Set(129, true);
  EXPECT_EQ(a, b);
  a.Set(64, false);
  EXPECT_EQ(a.Count(), 2u);
}

class VariablesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Arena::Create(1 << 16, &arena_).ok()); }
  Arena arena_;
};

TEST_F(VariablesTest, CreateZeroFillsAndNamesAreUnique) {
  VariableSet vars(&arena_);
  Variable w;
  ASSERT_TRUE(vars.Create("w", {3, 5}, true, &w).ok());
  EXPECT_EQ(w.name(), "w");
  EXPECT_EQ(w.shape(), Shape({3, 5}));
  for (size_t i = 0; i < 15; ++i) EXPECT_EQ(w.value().data()[i], 0.0f);
  Variable again;
  Status s = vars.Create("w", {2}, true, &again);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "w: a variable with this name already exists"));
  s = vars.Create("empty", {3, 0}, true, &again);
  EXPECT_TRUE(Contains(s, "empty: shape [3,0] has no elements")) << s.message();
  s = vars.Create("", {1}, true, &again);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(vars.size(), 1);
  EXPECT_EQ(vars.Find("w"), w);
  EXPECT_FALSE(vars.Find("nope").valid());
}

TEST_F(VariablesTest, AssignChecksTheLength) {
  VariableSet vars(&arena_);
  Variable w;
  ASSERT_TRUE(vars.Create("w", {2, 2}, true, &w).ok());
  ASSERT_TRUE(vars.Assign(w, {1, 2, 3, 4}).ok());
  EXPECT_EQ(w.value().at(1, 0), 3.0f);
  Status s = vars.Assign(w, {1, 2, 3});
  EXPECT_TRUE(Contains(s, "w: got 3 values, shape [2,2] holds 4")) << s.message();
  EXPECT_EQ(w.value().at(1, 1), 4.0f);  // unchanged
}

// The seed's Case 1 set: var1 trainable, var2 frozen, one float each. Every
// buffer takes one 64-byte line.
TEST_F(VariablesTest, Case1ArenaBytesMatchThePrediction) {
  for (int slots_case = 0; slots_case < 3; ++slots_case) {
    Arena arena;
    ASSERT_TRUE(Arena::Create(4096, &arena).ok());
    VariableSet vars(&arena);
    Variable var1, var2;
    ASSERT_TRUE(vars.CreateScalar("var1", 1.0f, true, &var1).ok());
    ASSERT_TRUE(vars.CreateScalar("var2", 2.0f, false, &var2).ok());
    SgdOptions plain;
    SgdOptions momentum;
    momentum.momentum = 0.9f;
    std::unique_ptr<Optimizer> opt;
    if (slots_case == 0) opt.reset(new SGD(&vars, plain));
    if (slots_case == 1) opt.reset(new SGD(&vars, momentum));
    if (slots_case == 2) opt.reset(new Adam(&vars, AdamOptions()));
    ASSERT_TRUE(vars.Prepare().ok());
    const MemoryReport r = arena.Report();
    EXPECT_EQ(r[Region::kWeights], 128u);    // var1 + var2
    EXPECT_EQ(r[Region::kGradients], 64u);   // var1 only
    EXPECT_EQ(r[Region::kOptimizerState], 64u * slots_case);  // var1 only
    EXPECT_EQ(arena.persistent_end(), 192u + 64u * slots_case);
    EXPECT_FALSE(var2.gradient().present());
    EXPECT_TRUE(var1.gradient().present());
  }
}

// A reference set with frozen members: sizes chosen so that some round up.
TEST_F(VariablesTest, ArenaBytesEqualThePredictedSumForAFreezeSet) {
  VariableSet vars(&arena_);
  Variable w0, b0, w1, b1;
  ASSERT_TRUE(vars.Create("dense_0.weight", {16, 10}, false, &w0).ok());  // 640 B
  ASSERT_TRUE(vars.Create("dense_0.bias", {16}, false, &b0).ok());        // 64 B
  ASSERT_TRUE(vars.Create("dense_1.weight", {3, 16}, true, &w1).ok());    // 192 B
  ASSERT_TRUE(vars.Create("dense_1.bias", {3}, true, &b1).ok());          // 12 -> 64 B
  Adam adam(&vars, AdamOptions());
  const MemoryReport planned = vars.PlannedBytes();
  EXPECT_EQ(planned[Region::kWeights], 640u + 64u + 192u + 64u);
  EXPECT_EQ(planned[Region::kGradients], 192u + 64u);
  EXPECT_EQ(planned[Region::kOptimizerState], 2u * (192u + 64u));
  ASSERT_TRUE(vars.Prepare().ok());
  const MemoryReport placed = arena_.Report();
  for (int r = 0; r < kNumPersistentRegions; ++r) EXPECT_EQ(placed.bytes[r], planned.bytes[r]) << r;
  EXPECT_EQ(arena_.persistent_end(), 960u + 256u + 512u);

  // Any freeze set can be asked about without placing anything.
  Bitmap all = vars.trainable_bits();
  for (int i = 0; i < vars.size(); ++i) all.Set(i, true);
  const MemoryReport everything = vars.PlannedBytes(all);
  EXPECT_EQ(everything[Region::kGradients], 960u);
  EXPECT_EQ(everything[Region::kOptimizerState], 1920u);
  EXPECT_EQ(arena_.persistent_end(), 1728u);  // unchanged
}

TEST_F(VariablesTest, FreezeIsABitFlipAndTheNextPrepareReplans) {
  VariableSet vars(&arena_);
  Variable a, b;
  ASSERT_TRUE(vars.Create("a", {20}, true, &a).ok());
  ASSERT_TRUE(vars.Create("b", {20}, true, &b).ok());
  ASSERT_TRUE(vars.Prepare().ok());
  EXPECT_FALSE(vars.plan_stale());
  EXPECT_EQ(arena_.bytes(Region::kGradients), 256u);
  ASSERT_TRUE(b.set_trainable(false).ok());
  EXPECT_TRUE(vars.plan_stale());
  EXPECT_FALSE(b.gradient().present());  // frozen now: absent at once
  EXPECT_EQ(arena_.bytes(Region::kGradients), 256u);  // nothing moved yet
  ASSERT_TRUE(vars.Prepare().ok());
  EXPECT_EQ(arena_.bytes(Region::kGradients), 128u);
  ASSERT_TRUE(b.set_trainable(true).ok());
  ASSERT_TRUE(b.set_trainable(false).ok());  // back where the plan is: not stale
  EXPECT_FALSE(vars.plan_stale());
}

// Fills each trainable variable's gradient and slots with a pattern that
// names the variable and the buffer, so moves can be checked exactly.
void FillState(VariableSet& vars) {
  for (int i = 0; i < vars.size(); ++i) {
    if (!vars.planned_trainable(i)) continue;
    const size_t n = vars[i].shape().num_elements();
    for (size_t j = 0; j < n; ++j) vars.gradient_data(i)[j] = 1000.0f * i + j;
    for (int s = 0; s < vars.planned_slots(); ++s) {
      for (size_t j = 0; j < n; ++j) vars.slot_data(i, s)[j] = 1000.0f * i + 100.0f * (s + 1) + j;
    }
  }
}

void ExpectSlots(VariableSet& vars, int i, bool pattern) {
  const size_t n = vars[i].shape().num_elements();
  for (int s = 0; s < vars.planned_slots(); ++s) {
    for (size_t j = 0; j < n; ++j) {
      const float want = pattern ? 1000.0f * i + 100.0f * (s + 1) + j : 0.0f;
      ASSERT_EQ(vars.slot_data(i, s)[j], want) << "variable " << i << " slot " << s << " at " << j;
    }
  }
}

TEST_F(VariablesTest, ReplanKeepsStateOfVariablesThatStayTrainable) {
  VariableSet vars(&arena_);
  Variable v[5];
  const Shape shapes[5] = {{7}, {33}, {16, 2}, {1}, {40}};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(vars.Create("v" + std::to_string(i), shapes[i], i != 2, &v[i]).ok());
  }
  Adam adam(&vars, AdamOptions());
  ASSERT_TRUE(vars.Prepare().ok());
  FillState(vars);
  for (int i = 0; i < 5; ++i) vars.steps(i) = 10 + i;
  // Freeze 1 (later blocks move down) and thaw 2 (later blocks move up).
  ASSERT_TRUE(v[1].set_trainable(false).ok());
  ASSERT_TRUE(v[2].set_trainable(true).ok());
  ASSERT_TRUE(vars.Prepare().ok());
  ExpectSlots(vars, 0, true);
  ExpectSlots(vars, 2, false);  // newly thawed: zero state
  ExpectSlots(vars, 3, true);
  ExpectSlots(vars, 4, true);
  EXPECT_EQ(vars.steps(2), 0u);
  EXPECT_EQ(vars.steps(4), 14u);
  // Thaw 1 again: it starts over, the others keep going.
  ASSERT_TRUE(v[1].set_trainable(true).ok());
  ASSERT_TRUE(vars.Prepare().ok());
  ExpectSlots(vars, 1, false);
  ExpectSlots(vars, 0, true);
  ExpectSlots(vars, 4, true);
  EXPECT_EQ(vars.steps(1), 0u);
}

// Update in the backward pass: no gradient buffers (the step plans them),
// so the state blocks hold the slots alone, and they move as the default's
// do: state of variables that stay trainable survives a freeze change and
// a variable created later. With no slots either (plain SGD) a trainable
// variable holds no persistent bytes but its weight, and is still planned.
TEST_F(VariablesTest, WithoutGradientBuffersStateBlocksHoldTheSlotsAlone) {
  VariableSet vars(&arena_);
  Variable v[5];
  const Shape shapes[5] = {{7}, {33}, {16, 2}, {1}, {40}};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(vars.Create("v" + std::to_string(i), shapes[i], i != 2, &v[i]).ok());
  }
  Adam adam(&vars, AdamOptions());
  adam.SetUpdateInBackward(true);
  EXPECT_EQ(vars.PlannedBytes()[Region::kGradients], 0u);
  ASSERT_TRUE(vars.Prepare().ok());
  EXPECT_FALSE(vars.planned_gradient_buffers());
  // Weights 64 + 192 + 128 + 64 + 192 = 640; Adam's two slots of the four trainable.
  EXPECT_EQ(arena_.persistent_end(), 640u + 2u * (64 + 192 + 64 + 192));
  EXPECT_EQ(arena_.bytes(Region::kGradients), 0u);
  EXPECT_FALSE(v[0].gradient().present());
  for (int i = 0; i < 5; ++i) {
    if (!vars.planned_trainable(i)) continue;
    const size_t n = vars[i].shape().num_elements();
    for (int s = 0; s < 2; ++s) {
      for (size_t j = 0; j < n; ++j) vars.slot_data(i, s)[j] = 1000.0f * i + 100.0f * (s + 1) + j;
    }
  }
  ASSERT_TRUE(v[1].set_trainable(false).ok());
  ASSERT_TRUE(v[2].set_trainable(true).ok());
  ASSERT_TRUE(vars.Prepare().ok());
  ExpectSlots(vars, 0, true);
  ExpectSlots(vars, 2, false);
  ExpectSlots(vars, 3, true);
  ExpectSlots(vars, 4, true);
  Variable late;
  ASSERT_TRUE(vars.Create("late", {20}, true, &late).ok());  // state moves up past it
  ExpectSlots(vars, 0, true);
  ExpectSlots(vars, 4, true);

  SGD sgd(&vars, SgdOptions());  // no momentum: no slots
  sgd.SetUpdateInBackward(true);
  ASSERT_TRUE(vars.Prepare().ok());
  EXPECT_TRUE(vars.planned_trainable(0));
  EXPECT_EQ(arena_.persistent_end(), arena_.bytes(Region::kWeights));
  sgd.SetUpdateInBackward(false);  // the default again: gradient buffers
  ASSERT_TRUE(vars.Prepare().ok());
  EXPECT_TRUE(v[0].gradient().present());
  EXPECT_EQ(arena_.bytes(Region::kGradients), 64u + 128 + 64 + 192 + 128);  // v0, v2-v4, late
}

TEST_F(VariablesTest, CreatingAfterPlanningMovesStateUp) {
  VariableSet vars(&arena_);
  Variable a, b;
  ASSERT_TRUE(vars.Create("a", {30}, true, &a).ok());
  Adam adam(&vars, AdamOptions());
  ASSERT_TRUE(vars.Prepare().ok());
  FillState(vars);
  ASSERT_TRUE(vars.Assign(a, std::vector<float>(30, 3.0f)).ok());
  ASSERT_TRUE(vars.Create("b", {100}, true, &b).ok());
  ExpectSlots(vars, 0, true);
  EXPECT_EQ(a.value().data()[29], 3.0f);
  for (size_t j = 0; j < 100; ++j) ASSERT_EQ(b.value().data()[j], 0.0f);
  EXPECT_TRUE(vars.plan_stale());  // b waits for the next step
}

TEST_F(VariablesTest, PlanThatDoesNotFitChangesNothing) {
  Arena arena;
  // Weights 2 x 256 B; all trainable with Adam would need 512 + 3 * 512.
  ASSERT_TRUE(Arena::Create(1536, &arena).ok());
  VariableSet vars(&arena);
  Variable a, b;
  ASSERT_TRUE(vars.Create("a", {64}, true, &a).ok());
  ASSERT_TRUE(vars.Create("b", {64}, false, &b).ok());
  Adam adam(&vars, AdamOptions());
  ASSERT_TRUE(vars.Prepare().ok());  // 512 + 768 = 1280 fits
  FillState(vars);
  ASSERT_TRUE(vars.Assign(b, std::vector<float>(64, 5.0f)).ok());
  const MemoryReport before = arena.Report();
  ASSERT_TRUE(b.set_trainable(true).ok());
  Status s = vars.Prepare();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(s, "needs 2048 bytes")) << s.message();
  EXPECT_TRUE(Contains(s, "holds 1536 bytes")) << s.message();
  EXPECT_TRUE(Contains(s, "nothing was changed")) << s.message();
  // The old plan, the weights and the state are intact and usable.
  EXPECT_EQ(arena.Report().total(), before.total());
  EXPECT_TRUE(vars.planned_trainable(0));
  EXPECT_FALSE(vars.planned_trainable(1));
  ExpectSlots(vars, 0, true);
  EXPECT_EQ(b.value().data()[63], 5.0f);
  ASSERT_TRUE(b.set_trainable(false).ok());  // revert: the plan matches again
  EXPECT_TRUE(vars.Prepare().ok());
  ExpectSlots(vars, 0, true);
}

TEST_F(VariablesTest, CreateThatDoesNotFitNamesTheBytes) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(256, &arena).ok());
  VariableSet vars(&arena);
  Variable a, b;
  ASSERT_TRUE(vars.Create("a", {32}, true, &a).ok());
  Status s = vars.Create("big", {100}, true, &b);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(s, "big: a variable of shape [100] needs 448 bytes, but the arena has 128 of 256")) << s.message();
  EXPECT_EQ(vars.size(), 1);
}

// A shape whose element count overflows size_t: num_elements() wraps
// ({SIZE_MAX / 4 + 2, 4} gives 4: 2^62 + 1 rows on 64-bit targets, 2^30 + 1 on
// 32-bit ones), so the size must be checked before it sizes anything.
TEST_F(VariablesTest, ShapesTooLargeForMemoryAreRefused) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(4096, &arena).ok());
  VariableSet vars(&arena);
  Variable v;
  const size_t rows = SIZE_MAX / 4 + 2;
  Status s = vars.Create("huge", {rows, 4}, true, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "huge: shape [" + std::to_string(rows) +
                              ",4] has more elements than memory can hold"))
      << s.message();
  EXPECT_EQ(vars.size(), 0);
  size_t bytes = 0;
  EXPECT_FALSE(Shape({SIZE_MAX}).Bytes(1, sizeof(float), &bytes));
  EXPECT_FALSE(Shape({8, 16}).Bytes(SIZE_MAX / 64, sizeof(float), &bytes));
  ASSERT_TRUE(Shape({8, 16}).Bytes(3, sizeof(float), &bytes));
  EXPECT_EQ(bytes, 3u * 8 * 16 * 4);
}

TEST(VariablesStaticArrayTest, RunsInACallersStaticArray) {
  alignas(64) static unsigned char block[2048];
  Arena arena;
  ASSERT_TRUE(Arena::Wrap(block, sizeof(block), &arena).ok());
  VariableSet vars(&arena);
  Variable w;
  ASSERT_TRUE(vars.CreateScalar("w", 4.0f, true, &w).ok());
  SgdOptions options;
  options.learning_rate = 0.25f;
  SGD sgd(&vars, options);
  GradientTape tape(&vars);
  Tensor loss = tape.Square(w);  // d/dw = 2w = 8
  TensorView g[1];
  ASSERT_TRUE(tape.Gradient(loss, {w}, g).ok());
  ASSERT_TRUE(sgd.ApplyGradients({{g[0], w}}).ok());
  EXPECT_EQ(w.scalar(), 2.0f);
  EXPECT_GE(reinterpret_cast<unsigned char*>(w.value().data()), block);
  EXPECT_LT(reinterpret_cast<unsigned char*>(w.value().data()), block + sizeof(block));
}

// A statistic (BatchNorm's running mean) is a variable like any other, but
// never trainable: no gradient, no optimizer state, and thawing it is an
// error; a freeze set that names it anyway is read without it.
TEST_F(VariablesTest, StatisticsAreNeverTrainable) {
  VariableSet vars(&arena_);
  Variable w, mean;
  ASSERT_TRUE(vars.Create("bn.weight", {16}, true, &w).ok());
  ASSERT_TRUE(vars.CreateStatistic("bn.running_mean", {16}, &mean).ok());
  EXPECT_EQ(w.role(), VariableRole::kParameter);
  EXPECT_EQ(mean.role(), VariableRole::kStatistic);
  EXPECT_FALSE(mean.trainable());
  Status s = mean.set_trainable(true);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "bn.running_mean is a statistic")) << s.message();
  EXPECT_TRUE(mean.set_trainable(false).ok());  // it is frozen already
  Adam adam(&vars, AdamOptions());
  ASSERT_TRUE(vars.Prepare().ok());
  EXPECT_FALSE(mean.gradient().present());
  EXPECT_EQ(arena_.bytes(Region::kWeights), 128u);
  EXPECT_EQ(arena_.bytes(Region::kGradients), 64u);
  EXPECT_EQ(arena_.bytes(Region::kOptimizerState), 128u);
  Bitmap both = vars.trainable_bits();
  both.Set(mean.index(), true);
  EXPECT_EQ(vars.PlannedBytes(both)[Region::kGradients], 64u);
}

// The persistent plan is one list: values in variable order, then each
// trainable parameter's gradient and slots; the arena's report is its sums.
TEST_F(VariablesTest, PersistentPlanListsEveryBuffer) {
  VariableSet vars(&arena_);
  Variable a, b, c;
  ASSERT_TRUE(vars.Create("a", {16}, true, &a).ok());
  ASSERT_TRUE(vars.Create("b", {40}, false, &b).ok());
  ASSERT_TRUE(vars.Create("c", {8}, true, &c).ok());
  SgdOptions momentum;
  momentum.momentum = 0.9f;
  SGD sgd(&vars, momentum);
  const MemoryPlan& plan = vars.PersistentPlan(vars.trainable_bits());
  ASSERT_EQ(plan.size(), 3 + 2 * 2);
  const char* what[] = {"weight", "weight", "weight", "gradient", "slot", "gradient", "slot"};
  const int owner[] = {0, 1, 2, 0, 0, 2, 2};
  const size_t offset[] = {0, 64, 256, 320, 384, 448, 512};
  for (int i = 0; i < plan.size(); ++i) {
    EXPECT_STREQ(plan[i].what, what[i]) << i;
    EXPECT_EQ(plan[i].owner, owner[i]) << i;
    EXPECT_EQ(plan[i].offset, offset[i]) << i;
  }
  EXPECT_EQ(plan.total(), 576u);
  ASSERT_TRUE(vars.Prepare().ok());
  EXPECT_EQ(arena_.persistent_end(), 576u);
  EXPECT_EQ(c.gradient().data(), reinterpret_cast<float*>(arena_.data() + 448));
}

TEST_F(VariablesTest, ConstAccessorsSeeNameShapeAndValue) {
  VariableSet vars(&arena_);
  Variable a, b;
  ASSERT_TRUE(vars.Create("a", {2, 3}, true, &a).ok());
  ASSERT_TRUE(vars.CreateScalar("b", 7.5f, false, &b).ok());
  ASSERT_TRUE(vars.Assign(a, {1, 2, 3, 4, 5, 6}).ok());
  const VariableSet& view = vars;
  EXPECT_EQ(view.name(0), "a");
  EXPECT_EQ(view.shape(0), Shape({2, 3}));
  EXPECT_EQ(view.value_data(0), a.value().data());
  EXPECT_EQ(view.value_data(0)[5], 6.0f);
  EXPECT_EQ(view.name(1), "b");
  EXPECT_EQ(view.shape(1), Shape({1}));
  EXPECT_EQ(view.value_data(1)[0], 7.5f);
}

}  // namespace
}  // namespace thaw
