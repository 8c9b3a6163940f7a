#include "core/api/tape.h"

#include <cmath>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "core/train/optimizers.h"
#include "gtest/gtest.h"
#include "tests/status_text.h"

namespace thaw {
namespace {

bool Contains(const Status& s, const std::string& text) { return MessageContains(s, text); }

// Deterministic values in [-1, 1), away from 0 so that ReLU's kink is never
// within a finite-difference step.
std::vector<float> Values(size_t n, int seed) {
  std::vector<float> v(n);
  uint32_t state = 2463534242u + 977u * static_cast<uint32_t>(seed);
  for (size_t i = 0; i < n; ++i) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    float x = static_cast<float>(state % 2000) / 1000.0f - 1.0f;
    if (std::fabs(x) < 0.05f) x += 0.1f;
    v[i] = x;
  }
  return v;
}

using Doubles = std::vector<std::vector<double>>;

// One gradient check: `build` records a scalar loss on the tape from the
// variables; `reference` computes the same loss in double from their values.
// The tape's gradient of every variable must match central differences of
// the double reference.
struct GradCase {
  std::string name;
  std::vector<Shape> shapes;
  std::function<Tensor(GradientTape&, std::vector<Variable>&)> build;
  std::function<double(const Doubles&)> reference;
};

// Test names show the case's name, not its bytes.
void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }

// A fixed random weighting turns any output into a scalar loss whose
// gradient differs per element.
double WeightedSum(const std::vector<double>& y, int seed) {
  const std::vector<float> r = Values(y.size(), seed);
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += r[i] * y[i];
  return s;
}

Tensor WeightedSum(GradientTape& tape, const Tensor& y, int seed) {
  const std::vector<float> r = Values(y.value().num_elements(), seed);
  return tape.Sum(tape.Mul(y, tape.Constant(y.shape(), r)));
}

std::vector<double> MatMulD(const std::vector<double>& a, const std::vector<double>& b,
                            size_t m, size_t k, size_t n) {
  std::vector<double> c(m * n, 0.0);
  for (size_t i = 0; i < m; ++i)
    for (size_t p = 0; p < k; ++p)
      for (size_t j = 0; j < n; ++j) c[i * n + j] += a[i * k + p] * b[p * n + j];
  return c;
}

std::vector<GradCase> Cases() {
  std::vector<GradCase> cases;
  auto elementwise = [](std::string name, std::function<double(double, double)> f,
                        Tensor (GradientTape::*op)(Operand, Operand), Shape sa, Shape sb) {
    GradCase c;
    c.name = name;
    c.shapes = {sa, sb};
    c.build = [op](GradientTape& t, std::vector<Variable>& v) {
      return WeightedSum(t, (t.*op)(v[0], v[1]), 7);
    };
    c.reference = [f](const Doubles& x) {
      const size_t n = std::max(x[0].size(), x[1].size());
      std::vector<double> y(n);
      for (size_t i = 0; i < n; ++i) {
        y[i] = f(x[0][x[0].size() == 1 ? 0 : i], x[1][x[1].size() == 1 ? 0 : i]);
      }
      return WeightedSum(y, 7);
    };
    return c;
  };
  auto add = [](double a, double b) { return a + b; };
  auto sub = [](double a, double b) { return a - b; };
  auto mul = [](double a, double b) { return a * b; };
  cases.push_back(elementwise("Add", add, &GradientTape::Add, {5, 7}, {5, 7}));
  cases.push_back(elementwise("AddScalarLeft", add, &GradientTape::Add, {1}, {37}));
  cases.push_back(elementwise("Sub", sub, &GradientTape::Sub, {41}, {41}));
  cases.push_back(elementwise("SubScalarLeft", sub, &GradientTape::Sub, {1}, {9}));
  cases.push_back(elementwise("SubScalarRight", sub, &GradientTape::Sub, {3, 3}, {1}));
  cases.push_back(elementwise("Mul", mul, &GradientTape::Mul, {2, 3, 4}, {2, 3, 4}));
  cases.push_back(elementwise("MulScalarLeft", mul, &GradientTape::Mul, {1}, {19}));
  cases.push_back(elementwise("MulScalarRight", mul, &GradientTape::Mul, {19}, {1}));
  auto unary = [](std::string name, std::function<double(double)> f,
                  Tensor (GradientTape::*op)(Operand)) {
    GradCase c;
    c.name = name;
    c.shapes = {{6, 11}};
    c.build = [op](GradientTape& t, std::vector<Variable>& v) {
      return WeightedSum(t, (t.*op)(v[0]), 3);
    };
    c.reference = [f](const Doubles& x) {
      std::vector<double> y(x[0].size());
      for (size_t i = 0; i < y.size(); ++i) y[i] = f(x[0][i]);
      return WeightedSum(y, 3);
    };
    return c;
  };
  cases.push_back(unary("Square", [](double a) { return a * a; }, &GradientTape::Square));
  cases.push_back(unary("Relu", [](double a) { return a > 0 ? a : 0.0; }, &GradientTape::Relu));
  {
    GradCase c;
    c.name = "SumTimesMean";  // Sum(a) * Mean(b): both reductions, broadcast back
    c.shapes = {{13}, {4, 5}};
    c.build = [](GradientTape& t, std::vector<Variable>& v) {
      return t.Mul(t.Sum(v[0]), t.Mean(v[1]));
    };
    c.reference = [](const Doubles& x) {
      double s = 0, m = 0;
      for (double a : x[0]) s += a;
      for (double b : x[1]) m += b;
      return s * (m / x[1].size());
    };
    cases.push_back(c);
  }
  {
    GradCase c;
    c.name = "MatMul";
    c.shapes = {{5, 7}, {7, 3}};
    c.build = [](GradientTape& t, std::vector<Variable>& v) {
      return WeightedSum(t, t.MatMul(v[0], v[1]), 11);
    };
    c.reference = [](const Doubles& x) { return WeightedSum(MatMulD(x[0], x[1], 5, 7, 3), 11); };
    cases.push_back(c);
  }
  {
    GradCase c;
    c.name = "TwoLayerMlpMse";  // mean((relu(x W1) W2 - y)^2), x and y constants
    c.shapes = {{6, 8}, {8, 3}};
    c.build = [](GradientTape& t, std::vector<Variable>& v) {
      Tensor x = t.Constant({4, 6}, Values(24, 21));
      Tensor y = t.Constant({4, 3}, Values(12, 22));
      Tensor h = t.Relu(t.MatMul(x, v[0]));
      return t.Mean(t.Square(t.Sub(t.MatMul(h, v[1]), y)));
    };
    c.reference = [](const Doubles& w) {
      const std::vector<float> xf = Values(24, 21), yf = Values(12, 22);
      std::vector<double> x(xf.begin(), xf.end());
      std::vector<double> h = MatMulD(x, w[0], 4, 6, 8);
      for (double& a : h) a = a > 0 ? a : 0;
      std::vector<double> out = MatMulD(h, w[1], 4, 8, 3);
      double loss = 0;
      for (size_t i = 0; i < out.size(); ++i) loss += (out[i] - yf[i]) * (out[i] - yf[i]);
      return loss / out.size();
    };
    cases.push_back(c);
  }
  return cases;
}

class GradientCheckTest : public ::testing::TestWithParam<GradCase> {};

TEST_P(GradientCheckTest, MatchesCentralDifferencesInDouble) {
  const GradCase& c = GetParam();
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  VariableSet vars(&arena);
  std::vector<Variable> v(c.shapes.size());
  Doubles x(c.shapes.size());
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_TRUE(vars.Create("v" + std::to_string(i), c.shapes[i], true, &v[i]).ok());
    const std::vector<float> init = Values(c.shapes[i].num_elements(), 100 + static_cast<int>(i));
    ASSERT_TRUE(vars.Assign(v[i], init).ok());
    x[i].assign(init.begin(), init.end());
  }
  GradientTape tape(&vars);
  Tensor loss = c.build(tape, v);
  ASSERT_TRUE(tape.status().ok()) << tape.status().message();
  EXPECT_NEAR(loss.scalar(), c.reference(x), 1e-4 * (1 + std::fabs(c.reference(x))));
  std::vector<TensorView> grads(v.size());
  ASSERT_TRUE(tape.Gradient(loss, v, grads).ok());
  const double h = 1e-6;
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_TRUE(grads[i].present()) << i;
    EXPECT_EQ(grads[i].data(), v[i].gradient().data());  // written in place
    for (size_t j = 0; j < x[i].size(); ++j) {
      Doubles plus = x, minus = x;
      plus[i][j] += h;
      minus[i][j] -= h;
      const double numeric = (c.reference(plus) - c.reference(minus)) / (2 * h);
      EXPECT_NEAR(grads[i].data()[j], numeric, 2e-4 * (1 + std::fabs(numeric)))
          << "variable " << i << " element " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, GradientCheckTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

class TapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Arena::Create(1 << 16, &arena_).ok());
    vars_.reset(new VariableSet(&arena_));
    ASSERT_TRUE(vars_->CreateScalar("var1", 1.0f, true, &var1_).ok());
    ASSERT_TRUE(vars_->CreateScalar("var2", 2.0f, false, &var2_).ok());
  }
  Arena arena_;
  std::unique_ptr<VariableSet> vars_;
  Variable var1_, var2_;
};

TEST_F(TapeTest, FrozenVariableGradientIsAbsentNotZero) {
  GradientTape tape(vars_.get());
  Tensor loss = tape.Square(tape.Sub(tape.Add(var1_, var2_), 5.0f));
  EXPECT_EQ(loss.scalar(), 4.0f);
  TensorView g[2];
  ASSERT_TRUE(tape.Gradient(loss, {var1_, var2_}, g).ok());
  ASSERT_TRUE(g[0].present());
  EXPECT_EQ(g[0].at(0), -4.0f);
  EXPECT_FALSE(g[1].present());
  EXPECT_FALSE(var2_.gradient().present());
  EXPECT_EQ(arena_.bytes(Region::kGradients), 64u);  // var1's buffer only
}

TEST_F(TapeTest, WatchGivesAFrozenVariableAGradientForThisTapeOnly) {
  {
    GradientTape tape(vars_.get());
    tape.Watch(var2_);
    Tensor loss = tape.Mul(var1_, var2_);
    TensorView g[2];
    ASSERT_TRUE(tape.Gradient(loss, {var1_, var2_}, g).ok());
    ASSERT_TRUE(g[1].present());
    EXPECT_EQ(g[1].at(0), 1.0f);  // d(var1 * var2)/d var2 = var1
    EXPECT_EQ(g[0].at(0), 2.0f);
    EXPECT_FALSE(var2_.gradient().present());  // still no buffer of its own
  }
  GradientTape tape(vars_.get());
  TensorView g[1];
  ASSERT_TRUE(tape.Gradient(tape.Mul(var1_, var2_), {var2_}, g).ok());
  EXPECT_FALSE(g[0].present());
}

// As TensorFlow's tape: watching a variable after an operation on it was
// recorded does not make that operation differentiable.
TEST_F(TapeTest, WatchDoesNotReachBackToRecordedOperations) {
  GradientTape tape(vars_.get());
  Tensor before = tape.Mul(var2_, 3.0f);  // var2 is frozen, not watched yet
  tape.Watch(var2_);
  Tensor after = tape.Mul(var2_, 5.0f);
  TensorView g[1];
  ASSERT_TRUE(tape.Gradient(before, {var2_}, g).ok());
  EXPECT_FALSE(g[0].present());
  ASSERT_TRUE(tape.Gradient(tape.Add(before, after), {var2_}, g).ok());
  ASSERT_TRUE(g[0].present());
  EXPECT_EQ(g[0].at(0), 5.0f);  // only the operation recorded after Watch
}

TEST_F(TapeTest, WatchedConstantGetsAGradient) {
  GradientTape tape(vars_.get());
  Tensor x = tape.Constant({3}, {1.0f, -2.0f, 3.0f});
  tape.Watch(x);
  Tensor loss = tape.Sum(tape.Square(x));
  TensorView g[1];
  ASSERT_TRUE(tape.Gradient(loss, {x}, g).ok());
  ASSERT_TRUE(g[0].present());
  EXPECT_EQ(g[0].at(0), 2.0f);
  EXPECT_EQ(g[0].at(1), -4.0f);
  EXPECT_EQ(g[0].at(2), 6.0f);
}

TEST_F(TapeTest, UnreachedTrainableVariableIsAbsent) {
  GradientTape tape(vars_.get());
  Tensor loss = tape.Square(var2_);
  TensorView g[1];
  ASSERT_TRUE(tape.Gradient(loss, {var1_}, g).ok());
  EXPECT_FALSE(g[0].present());
}

TEST_F(TapeTest, NonScalarTargetIsSummed) {
  Variable w;
  ASSERT_TRUE(vars_->Create("w", {4}, true, &w).ok());
  ASSERT_TRUE(vars_->Assign(w, {1, 2, 3, 4}).ok());
  GradientTape tape(vars_.get());
  TensorView g[1];
  ASSERT_TRUE(tape.Gradient(tape.Mul(w, 3.0f), {w}, g).ok());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(g[0].at(i), 3.0f);
}

TEST_F(TapeTest, GradientTwiceGivesTheSameResult) {
  GradientTape tape(vars_.get());
  Tensor loss = tape.Square(tape.Mul(var1_, 3.0f));
  TensorView g[1];
  ASSERT_TRUE(tape.Gradient(loss, {var1_}, g).ok());
  EXPECT_EQ(g[0].at(0), 18.0f);
  ASSERT_TRUE(tape.Gradient(loss, {var1_}, g).ok());
  EXPECT_EQ(g[0].at(0), 18.0f);
}

TEST_F(TapeTest, BadShapesBecomeTheTapesStickyStatus) {
  Variable a, b;
  ASSERT_TRUE(vars_->Create("a", {2, 3}, true, &a).ok());
  ASSERT_TRUE(vars_->Create("b", {3, 2}, true, &b).ok());
  GradientTape tape(vars_.get());
  Tensor bad = tape.Add(a, b);
  EXPECT_FALSE(bad.valid());
  EXPECT_EQ(tape.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(tape.status(), "Add: shapes [2,3] and [3,2] differ")) << tape.status().message();
  Tensor later = tape.Sum(tape.MatMul(a, b));  // valid shapes, but the tape has failed
  EXPECT_FALSE(later.valid());
  TensorView g[1];
  Status s = tape.Gradient(later, {a}, g);
  EXPECT_TRUE(Contains(s, "shapes [2,3] and [3,2] differ"));
  tape.Reset();
  EXPECT_TRUE(tape.status().ok());
  Tensor mm = tape.MatMul(a, a);
  EXPECT_TRUE(Contains(tape.status(), "MatMul: shapes [2,3] and [2,3] do not multiply"));
  EXPECT_FALSE(mm.valid());
}

TEST_F(TapeTest, ArenaTooSmallIsAStatusNotACrash) {
  Arena small;
  ASSERT_TRUE(Arena::Create(2048, &small).ok());
  VariableSet vars(&small);
  Variable w;
  ASSERT_TRUE(vars.Create("w", {64}, true, &w).ok());  // 256 B + 256 B gradient
  GradientTape tape(&vars);
  Tensor y = tape.Square(w);
  for (int i = 0; i < 20 && tape.status().ok(); ++i) y = tape.Square(y);
  EXPECT_EQ(tape.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(tape.status(), "Square needs")) << tape.status().message();
  EXPECT_TRUE(Contains(tape.status(), "capacity 2048")) << tape.status().message();
  EXPECT_EQ(w.value().data()[0], 0.0f);
}

TEST_F(TapeTest, ThawTakesEffectAtTheNextTape) {
  GradientTape tape(vars_.get());
  ASSERT_TRUE(var2_.set_trainable(true).ok());  // while recording: not this tape
  Tensor loss = tape.Mul(var1_, var2_);
  TensorView g[2];
  ASSERT_TRUE(tape.Gradient(loss, {var1_, var2_}, g).ok());
  EXPECT_FALSE(g[1].present());
  tape.Reset();  // the next step
  loss = tape.Mul(var1_, var2_);
  ASSERT_TRUE(tape.Gradient(loss, {var1_, var2_}, g).ok());
  ASSERT_TRUE(g[1].present());
  EXPECT_EQ(g[1].at(0), 1.0f);
  EXPECT_EQ(arena_.bytes(Region::kGradients), 128u);
}

TEST_F(TapeTest, TensorsFromBeforeResetAreRejected) {
  GradientTape tape(vars_.get());
  Tensor old = tape.Square(var1_);
  tape.Reset();
  Tensor y = tape.Add(old, 1.0f);
  EXPECT_FALSE(y.valid());
  EXPECT_TRUE(Contains(tape.status(), "recorded on another tape or before Reset()"));
}

TEST_F(TapeTest, ASecondTapeTakesTheArenaAndTheFirstSaysSo) {
  GradientTape first(vars_.get());
  Tensor a = first.Square(var1_);
  GradientTape second(vars_.get());
  Tensor b = first.Add(a, 1.0f);
  EXPECT_FALSE(b.valid());
  EXPECT_EQ(first.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(second.status().ok());
}

TEST_F(TapeTest, ConstantChecksItsLength) {
  GradientTape tape(vars_.get());
  Tensor c = tape.Constant({2, 2}, {1, 2, 3});
  EXPECT_FALSE(c.valid());
  EXPECT_TRUE(Contains(tape.status(), "Constant: got 3 values for shape [2,2]"));
}

TEST_F(TapeTest, ConstantRefusesAShapeTooLargeForMemory) {
  GradientTape tape(vars_.get());
  // (SIZE_MAX / 4 + 2) by 4 elements wraps to 4: the length check alone would
  // pass.
  Tensor c = tape.Constant({SIZE_MAX / 4 + 2, 4}, {1, 2, 3, 4});
  EXPECT_FALSE(c.valid());
  EXPECT_TRUE(Contains(tape.status(), "has more elements than memory can hold")) << tape.status().message();
}

TEST_F(TapeTest, ActivationsAreCountedInTheArena) {
  Variable w;
  ASSERT_TRUE(vars_->Create("w", {100}, true, &w).ok());
  GradientTape tape(vars_.get());
  // Values are 64-byte aligned; the padding before one counts with it.
  Tensor y = tape.Relu(w);  // 400 B -> 448
  EXPECT_GE(arena_.bytes(Region::kActivations), 448u);
  EXPECT_LT(arena_.bytes(Region::kActivations), 448u + 64u);
  const size_t after_relu = arena_.bytes(Region::kActivations);
  (void)tape.Sum(y);        // 4 B -> 64
  EXPECT_GE(arena_.bytes(Region::kActivations), after_relu + 64u);
  EXPECT_LT(arena_.bytes(Region::kActivations), after_relu + 128u);
  EXPECT_GT(arena_.bytes(Region::kScratch), 0u);  // tape records
  EXPECT_EQ(arena_.used(), arena_.persistent_end() +
                               arena_.bytes(Region::kActivations) +
                               arena_.bytes(Region::kScratch));
}

}  // namespace
}  // namespace thaw
