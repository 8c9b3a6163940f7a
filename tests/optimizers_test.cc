#include "core/train/optimizers.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/api/tape.h"
#include "gtest/gtest.h"
#include "tests/status_text.h"

namespace thaw {
namespace {

bool Contains(const Status& s, const std::string& text) { return MessageContains(s, text); }

std::vector<float> Values(size_t n, float offset) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = offset + 0.37f * std::sin(1.0f + 0.71f * i);
  return v;
}

// Loss sum((w - target)^2), whose gradient is 2 (w - target).
Status Step(VariableSet& vars, Optimizer& opt, Span<const Variable> ws,
            const std::vector<std::vector<float>>& targets) {
  GradientTape tape(&vars);
  Tensor loss = tape.Constant(0.0f);
  for (size_t i = 0; i < ws.size(); ++i) {
    Tensor t = tape.Constant(ws[i].shape(), targets[i]);
    loss = tape.Add(loss, tape.Sum(tape.Square(tape.Sub(ws[i], t))));
  }
  std::vector<TensorView> grads(ws.size());
  THAW_RETURN_IF_ERROR(tape.Gradient(loss, ws, grads));
  std::vector<GradientAndVariable> pairs;
  for (size_t i = 0; i < ws.size(); ++i) pairs.push_back({grads[i], ws[i]});
  return opt.ApplyGradients(pairs);
}

class OptimizerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Arena::Create(1 << 18, &arena_).ok()); }
  Arena arena_;
};

// PyTorch's torch.optim.SGD in double, for the quadratic loss above.
TEST_F(OptimizerTest, SgdMomentumNesterovWeightDecayFollowsPyTorch) {
  for (bool nesterov : {false, true}) {
    Arena arena;
    ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
    VariableSet vars(&arena);
    Variable w;
    const size_t n = 37;
    ASSERT_TRUE(vars.Create("w", {n}, true, &w).ok());
    const std::vector<float> init = Values(n, 0.5f), target = Values(n, -0.2f);
    ASSERT_TRUE(vars.Assign(w, init).ok());
    SgdOptions o;
    o.learning_rate = 0.05f;
    o.momentum = 0.9f;
    o.weight_decay = 0.01f;
    o.nesterov = nesterov;
    SGD sgd(&vars, o);
    std::vector<double> wd(init.begin(), init.end()), buf(n, 0.0);
    for (int step = 0; step < 6; ++step) {
      ASSERT_TRUE(Step(vars, sgd, {w}, {target}).ok());
      for (size_t i = 0; i < n; ++i) {
        double d = 2 * (wd[i] - target[i]) + o.weight_decay * wd[i];
        buf[i] = step == 0 ? d : o.momentum * buf[i] + d;
        d = nesterov ? d + o.momentum * buf[i] : buf[i];
        wd[i] -= o.learning_rate * d;
      }
      for (size_t i = 0; i < n; ++i) {
        ASSERT_NEAR(w.value().data()[i], wd[i], 1e-5 * (1 + std::fabs(wd[i])))
            << "nesterov " << nesterov << " step " << step << " element " << i;
      }
    }
  }
}

// torch.optim.Adam / AdamW in double.
TEST_F(OptimizerTest, AdamAndAdamWFollowPyTorch) {
  for (bool decoupled : {false, true}) {
    Arena arena;
    ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
    VariableSet vars(&arena);
    Variable w;
    const size_t n = 29;
    ASSERT_TRUE(vars.Create("w", {n}, true, &w).ok());
    const std::vector<float> init = Values(n, 0.3f), target = Values(n, 0.1f);
    ASSERT_TRUE(vars.Assign(w, init).ok());
    AdamOptions o;
    o.learning_rate = 0.01f;
    o.weight_decay = 0.1f;
    o.decoupled_weight_decay = decoupled;
    Adam adam(&vars, o);
    std::vector<double> wd(init.begin(), init.end()), m(n, 0.0), v(n, 0.0);
    for (int step = 1; step <= 8; ++step) {
      ASSERT_TRUE(Step(vars, adam, {w}, {target}).ok());
      const double c1 = 1 - std::pow(double{o.beta1}, step);
      const double c2 = 1 - std::pow(double{o.beta2}, step);
      for (size_t i = 0; i < n; ++i) {
        double g = 2 * (wd[i] - target[i]);
        if (decoupled) {
          wd[i] *= 1 - double{o.learning_rate} * o.weight_decay;
        } else {
          g += o.weight_decay * wd[i];
        }
        m[i] = o.beta1 * m[i] + (1 - double{o.beta1}) * g;
        v[i] = o.beta2 * v[i] + (1 - double{o.beta2}) * g * g;
        wd[i] -= o.learning_rate / c1 * m[i] / (std::sqrt(v[i]) / std::sqrt(c2) + o.epsilon);
      }
      for (size_t i = 0; i < n; ++i) {
        ASSERT_NEAR(w.value().data()[i], wd[i], 1e-5 * (1 + std::fabs(wd[i])))
            << "decoupled " << decoupled << " step " << step << " element " << i;
      }
    }
  }
}

// The frozen variable takes part in the loss but never moves, not even by
// weight decay or momentum; it has no state.
TEST_F(OptimizerTest, FrozenVariablesStayBitIdenticalUnderMomentumDecayAndAdamW) {
  for (int which = 0; which < 2; ++which) {
    Arena arena;
    ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
    VariableSet vars(&arena);
    Variable a, f;
    ASSERT_TRUE(vars.Create("a", {50}, true, &a).ok());
    ASSERT_TRUE(vars.Create("f", {50}, false, &f).ok());
    ASSERT_TRUE(vars.Assign(a, Values(50, 0.2f)).ok());
    ASSERT_TRUE(vars.Assign(f, Values(50, 1.5f)).ok());
    const std::vector<float> frozen_before(f.value().data(), f.value().data() + 50);
    SgdOptions so;
    so.learning_rate = 0.01f;
    so.momentum = 0.9f;
    so.weight_decay = 0.5f;
    AdamOptions ao;
    ao.weight_decay = 0.5f;
    std::unique_ptr<Optimizer> opt;
    if (which == 0) opt.reset(new SGD(&vars, so));
    if (which == 1) opt.reset(new AdamW(&vars, ao));
    const std::vector<float> target = Values(50, -1.0f);
    for (int step = 0; step < 100; ++step) {
      GradientTape tape(&vars);
      Tensor loss = tape.Sum(tape.Square(tape.Sub(tape.Mul(a, f), tape.Constant({50}, target))));
      TensorView g[2];
      ASSERT_TRUE(tape.Gradient(loss, {a, f}, g).ok());
      ASSERT_FALSE(g[1].present());
      ASSERT_TRUE(opt->ApplyGradients({{g[0], a}, {g[1], f}}).ok());
    }
    EXPECT_EQ(std::memcmp(f.value().data(), frozen_before.data(), 50 * sizeof(float)), 0);
    EXPECT_NE(a.value().data()[0], Values(50, 0.2f)[0]);
    EXPECT_EQ(vars.steps(1), 0u);
    EXPECT_EQ(vars.steps(0), 100u);
    EXPECT_EQ(arena.bytes(Region::kOptimizerState), which == 0 ? 256u : 512u);
  }
}

TEST_F(OptimizerTest, GradientForAFrozenVariableIsAnErrorAndChangesNothing) {
  VariableSet vars(&arena_);
  Variable a, f;
  ASSERT_TRUE(vars.CreateScalar("a", 1.0f, true, &a).ok());
  ASSERT_TRUE(vars.CreateScalar("f", 2.0f, false, &f).ok());
  SgdOptions o;
  o.momentum = 0.9f;
  SGD sgd(&vars, o);
  GradientTape tape(&vars);
  tape.Watch(f);
  TensorView g[2];
  ASSERT_TRUE(tape.Gradient(tape.Mul(a, f), {a, f}, g).ok());
  ASSERT_TRUE(g[1].present());
  Status s = sgd.ApplyGradients({{g[0], a}, {g[1], f}});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "f: a gradient was given for a frozen (trainable=false) variable")) << s.message();
  EXPECT_EQ(a.scalar(), 1.0f);  // checked before anything moved
  EXPECT_EQ(f.scalar(), 2.0f);
  EXPECT_EQ(vars.slot_data(0, 0)[0], 0.0f);
  EXPECT_EQ(vars.steps(0), 0u);
}

TEST_F(OptimizerTest, RejectsBadPairsBeforeChangingAnything) {
  VariableSet vars(&arena_), other(&arena_);
  Variable a, b;
  ASSERT_TRUE(vars.Create("a", {4}, true, &a).ok());
  ASSERT_TRUE(vars.Create("b", {2, 2}, true, &b).ok());
  SGD sgd(&vars, SgdOptions());
  GradientTape tape(&vars);
  TensorView g[2];
  ASSERT_TRUE(tape.Gradient(tape.Add(tape.Sum(a), tape.Sum(b)), {a, b}, g).ok());
  Status s = sgd.ApplyGradients({{g[0], a}, {g[0], b}});
  EXPECT_TRUE(Contains(s, "b: gradient of shape [4] does not match the variable's shape [2,2]")) << s.message();
  s = sgd.ApplyGradients({{g[0], a}, {g[0], a}});
  EXPECT_TRUE(Contains(s, "a: two gradients were given for this variable")) << s.message();
  s = sgd.ApplyGradients({{g[0], Variable()}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.value().at(0), 0.0f);
  EXPECT_EQ(vars.steps(0), 0u);
}

// An optimizer made directly with options out of range refuses every step
// (constructors cannot return a Status); nothing moves.
TEST_F(OptimizerTest, OptionsOutOfRangeRefuseEveryStep) {
  VariableSet vars(&arena_);
  Variable a;
  ASSERT_TRUE(vars.Create("a", {4}, true, &a).ok());
  AdamOptions bad;
  bad.beta2 = 1.5f;
  Adam adam(&vars, bad);
  Status s = Step(vars, adam, {a}, {{1, 2, 3, 4}});
  EXPECT_TRUE(Contains(s, "Adam: beta2 = 1.5 is out of range")) << s.message();
  EXPECT_EQ(adam.ApplyOwnGradients().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.value().at(0), 0.0f);
  EXPECT_EQ(vars.steps(0), 0u);
  SgdOptions negative;
  negative.momentum = -0.5f;
  EXPECT_TRUE(Contains(CheckOptions(negative), "SGD: momentum = -0.5 is out of range"));
  EXPECT_TRUE(CheckOptions(SgdOptions()).ok());
  EXPECT_TRUE(CheckOptions(AdamOptions()).ok());
}

// A NaN or Inf in any gradient (here the second pair's) is an error before
// anything moves: weights, Adam moments and step counts stay as they were.
TEST_F(OptimizerTest, NonFiniteGradientChangesNothing) {
  for (float poison : {std::nanf(""), INFINITY, -INFINITY}) {
    Arena arena;
    ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
    VariableSet vars(&arena);
    Variable a, b;
    ASSERT_TRUE(vars.Create("a", {5}, true, &a).ok());
    ASSERT_TRUE(vars.Create("layer.b", {40}, true, &b).ok());
    ASSERT_TRUE(vars.Assign(b, Values(40, 0.5f)).ok());
    Adam adam(&vars, AdamOptions());
    const std::vector<std::vector<float>> targets = {Values(5, 1.0f), Values(40, -1.0f)};
    const Variable ws[2] = {a, b};
    ASSERT_TRUE(Step(vars, adam, ws, targets).ok());  // some state to keep
    const std::vector<float> before_b(b.value().data(), b.value().data() + 40);
    const std::vector<float> m_b(vars.slot_data(b.index(), 0), vars.slot_data(b.index(), 0) + 40);
    const float a0 = a.value().at(0);

    GradientTape tape(&vars);
    TensorView g[2];
    ASSERT_TRUE(tape.Gradient(tape.Add(tape.Sum(tape.Square(a)), tape.Sum(tape.Square(b))),
                              {a, b}, g).ok());
    g[1].data()[33] = poison;
    g[1].data()[39] = poison;
    Status s = adam.ApplyGradients({{g[0], a}, {g[1], b}});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(s, "layer.b: the gradient holds 2 NaN or infinite values (of 40); "
                            "nothing was updated")) << s.message();
    EXPECT_EQ(a.value().at(0), a0);
    EXPECT_EQ(std::memcmp(b.value().data(), before_b.data(), 40 * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(vars.slot_data(b.index(), 0), m_b.data(), 40 * sizeof(float)), 0);
    EXPECT_EQ(vars.steps(a.index()), 1u);
    EXPECT_EQ(vars.steps(b.index()), 1u);
    g[1].data()[33] = g[1].data()[39] = 0.0f;  // repaired: the step goes through
    EXPECT_TRUE(adam.ApplyGradients({{g[0], a}, {g[1], b}}).ok());
    EXPECT_EQ(vars.steps(b.index()), 2u);
  }
}

TEST_F(OptimizerTest, VariableThawedAfterTheTapeBeganWaitsForTheNextTape) {
  VariableSet vars(&arena_);
  Variable a, f;
  ASSERT_TRUE(vars.CreateScalar("a", 1.0f, true, &a).ok());
  ASSERT_TRUE(vars.CreateScalar("f", 3.0f, false, &f).ok());
  SGD sgd(&vars, SgdOptions());
  GradientTape tape(&vars);
  tape.Watch(f);
  Tensor loss = tape.Mul(a, f);
  ASSERT_TRUE(f.set_trainable(true).ok());
  TensorView g[2];
  ASSERT_TRUE(tape.Gradient(loss, {a, f}, g).ok());
  Status s = sgd.ApplyGradients({{g[0], a}, {g[1], f}});
  EXPECT_TRUE(Contains(s, "f was made trainable after this step's tape began")) << s.message();
  EXPECT_EQ(f.scalar(), 3.0f);
}

TEST_F(OptimizerTest, OnlyTheLastAttachedOptimizerSteps) {
  VariableSet vars(&arena_);
  Variable a;
  ASSERT_TRUE(vars.CreateScalar("a", 1.0f, true, &a).ok());
  SGD first(&vars, SgdOptions());
  Adam second(&vars, AdamOptions());
  GradientTape tape(&vars);
  TensorView g[1];
  ASSERT_TRUE(tape.Gradient(tape.Square(a), {a}, g).ok());
  Status s = first.ApplyGradients({{g[0], a}});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(second.ApplyGradients({{g[0], a}}).ok());
}

// Re-compiling (a new optimizer with as many slots) starts from zero state,
// like a fresh Keras optimizer; SetLearningRate keeps the state.
TEST_F(OptimizerTest, ANewOptimizerStartsFromZeroState) {
  VariableSet vars(&arena_);
  Variable a;
  ASSERT_TRUE(vars.Create("a", {5}, true, &a).ok());
  const std::vector<float> target = Values(5, 1.0f);
  {
    Adam first(&vars, AdamOptions());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step(vars, first, {a}, {target}).ok());
    first.SetLearningRate(0.0f);  // state kept, no movement
    const std::vector<float> before(a.value().data(), a.value().data() + 5);
    ASSERT_TRUE(Step(vars, first, {a}, {target}).ok());
    EXPECT_EQ(std::memcmp(a.value().data(), before.data(), 5 * sizeof(float)), 0);
    EXPECT_EQ(vars.steps(0), 4u);
  }
  Adam second(&vars, AdamOptions());
  ASSERT_TRUE(Step(vars, second, {a}, {target}).ok());
  EXPECT_EQ(vars.steps(0), 1u);
  // A fresh first Adam step moves each weight by lr against sign(g) (here g < 0),
  // and m = (1 - beta1) g = 0.1 * 2 (w_before - target).
  EXPECT_NEAR(vars.slot_data(0, 0)[0], 0.1f * 2 * (a.value().data()[0] - 0.001f - target[0]), 1e-5);
}

TEST_F(OptimizerTest, OptimizerAttachedAfterTheTapeBeganWaits) {
  VariableSet vars(&arena_);
  Variable a;
  ASSERT_TRUE(vars.CreateScalar("a", 1.0f, true, &a).ok());
  GradientTape tape(&vars);
  TensorView g[1];
  ASSERT_TRUE(tape.Gradient(tape.Square(a), {a}, g).ok());
  Adam adam(&vars, AdamOptions());
  Status s = adam.ApplyGradients({{g[0], a}});
  EXPECT_TRUE(Contains(s, "attached after this step's tape began")) << s.message();
  EXPECT_EQ(a.scalar(), 1.0f);
}

// Keras-style freeze/unfreeze: state of a variable that stays trainable
// continues exactly; a re-thawed variable starts over from zero state and
// step 1, as a fresh optimizer would.
TEST_F(OptimizerTest, StateSurvivesAFreezeChangeAndThawedVariablesStartFresh) {
  const size_t n = 21;
  const std::vector<float> ta = Values(n, -0.5f), tb = Values(n, 0.8f);
  AdamOptions o;
  o.learning_rate = 0.05f;

  VariableSet vars(&arena_);
  Variable a, b;
  ASSERT_TRUE(vars.Create("a", {n}, true, &a).ok());
  ASSERT_TRUE(vars.Create("b", {n}, true, &b).ok());
  Adam adam(&vars, o);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step(vars, adam, {a, b}, {ta, tb}).ok());
  ASSERT_TRUE(b.set_trainable(false).ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Step(vars, adam, {a}, {ta}).ok());
  const std::vector<float> b_frozen(b.value().data(), b.value().data() + n);
  ASSERT_TRUE(b.set_trainable(true).ok());
  ASSERT_TRUE(Step(vars, adam, {a, b}, {ta, tb}).ok());
  EXPECT_EQ(vars.steps(0), 6u);
  EXPECT_EQ(vars.steps(1), 1u);

  // a alone for 6 steps, in its own arena.
  Arena arena_a;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena_a).ok());
  VariableSet ref_a(&arena_a);
  Variable ra;
  ASSERT_TRUE(ref_a.Create("a", {n}, true, &ra).ok());
  Adam adam_a(&ref_a, o);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(Step(ref_a, adam_a, {ra}, {ta}).ok());
  EXPECT_EQ(std::memcmp(a.value().data(), ra.value().data(), n * sizeof(float)), 0);

  // b: one fresh Adam step from where it was frozen.
  Arena arena_b;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena_b).ok());
  VariableSet ref_b(&arena_b);
  Variable rb;
  ASSERT_TRUE(ref_b.Create("b", {n}, true, &rb).ok());
  ASSERT_TRUE(ref_b.Assign(rb, b_frozen).ok());
  Adam adam_b(&ref_b, o);
  ASSERT_TRUE(Step(ref_b, adam_b, {rb}, {tb}).ok());
  EXPECT_EQ(std::memcmp(b.value().data(), rb.value().data(), n * sizeof(float)), 0);
}

}  // namespace
}  // namespace thaw

namespace thaw {
namespace {

// Clipping through ApplyGradients, computed by hand: plain SGD with lr 1
// moves each weight by exactly its clipped gradient.
TEST(GradientClippingTest, ClipsAsDocumentedAndRefusesBadSettings) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  VariableSet vars(&arena);
  Variable a, b;
  ASSERT_TRUE(vars.Create("a", {2}, true, &a).ok());
  ASSERT_TRUE(vars.Create("b", {1}, true, &b).ok());
  SgdOptions o;
  o.learning_rate = 1.0f;
  SGD sgd(&vars, o);
  auto step = [&](float ga0, float ga1, float gb) {
    GradientTape tape(&vars);  // lays out the optimizer state for the step
    float grad_a[2] = {ga0, ga1}, grad_b[1] = {gb};
    ASSERT_TRUE(vars.Assign(a, {0.0f, 0.0f}).ok());
    ASSERT_TRUE(vars.Assign(b, {0.0f}).ok());
    ASSERT_TRUE(sgd.ApplyGradients({{TensorView(grad_a, Shape{2}), a},
                                    {TensorView(grad_b, Shape{1}), b}})
                    .ok());
  };
  // Global norm: the gradients (3, 4) and (12) have norm 13; clip to 6.5.
  GradientClipping clip;
  clip.global_clipnorm = 6.5f;
  ASSERT_TRUE(sgd.SetClipping(clip).ok());
  step(3.0f, 4.0f, 12.0f);
  const float factor = static_cast<float>(6.5 / (13.0 + 1e-6));
  EXPECT_FLOAT_EQ(a.value().data()[0], -3.0f * factor);
  EXPECT_FLOAT_EQ(a.value().data()[1], -4.0f * factor);
  EXPECT_FLOAT_EQ(b.value().data()[0], -12.0f * factor);
  // Per variable: a's norm 5 is clipped to 1, b's 0.5 is under the limit.
  clip = GradientClipping();
  clip.clipnorm = 1.0f;
  ASSERT_TRUE(sgd.SetClipping(clip).ok());
  step(3.0f, 4.0f, 0.5f);
  EXPECT_FLOAT_EQ(a.value().data()[0], static_cast<float>(-3.0 / (5.0 + 1e-6)));
  EXPECT_FLOAT_EQ(b.value().data()[0], -0.5f);
  // Per element.
  clip = GradientClipping();
  clip.clipvalue = 0.25f;
  ASSERT_TRUE(sgd.SetClipping(clip).ok());
  step(3.0f, -0.1f, -4.0f);
  EXPECT_EQ(a.value().data()[0], -0.25f);
  EXPECT_EQ(a.value().data()[1], 0.1f);
  EXPECT_EQ(b.value().data()[0], 0.25f);

  // Refused, keeping the setting: negative, NaN, both norms.
  GradientClipping bad;
  bad.clipvalue = -1.0f;
  EXPECT_TRUE(Contains(sgd.SetClipping(bad), "gradient clipping: clipvalue = -1"));
  bad = GradientClipping();
  bad.clipnorm = NAN;
  EXPECT_TRUE(Contains(sgd.SetClipping(bad), "clipnorm = nan"));
  bad = GradientClipping();
  bad.clipnorm = bad.global_clipnorm = 1.0f;
  EXPECT_TRUE(Contains(sgd.SetClipping(bad), "clipnorm and global_clipnorm are both set"));
  EXPECT_EQ(sgd.clipping().clipvalue, 0.25f);
}

}  // namespace
}  // namespace thaw
