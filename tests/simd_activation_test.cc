// Activation and loss kernels against their double-precision scalar
// references, on every compiled and supported Highway target.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "hwy/targets.h"
#include "hwy/tests/hwy_gtest.h"
#include "simd/activation.h"
#include "simd/loss.h"
#include "simd/scalar.h"
#include "simd/targets.h"
#include "tests/simd_test_util.h"

namespace thaw {
namespace simd {
namespace {

// Highway's Exp/Tanh/Log1p are within a few ulp; outputs here are O(1).
constexpr float kTol = 8 * FLT_EPSILON;

std::vector<float> Tolerances(const std::vector<float>& expected, float rel, float abs) {
  std::vector<float> tol(expected.size());
  for (size_t i = 0; i < tol.size(); ++i) tol[i] = abs + rel * std::fabs(expected[i]);
  return tol;
}

using Unary = void (*)(const float*, float*, size_t, ThreadPool&);
using UnaryRef = void (*)(const float*, float*, size_t);
using Backward = void (*)(const float*, const float*, float*, size_t, ThreadPool&);
using BackwardRef = void (*)(const float*, const float*, float*, size_t);

// Inputs span the saturating range of sigmoid and tanh, beyond Exp's +104.
void CheckUnary(Unary kernel, UnaryRef reference, float lo, float hi) {
  std::mt19937 rng(7);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      for (bool in_place : {false, true}) {
        Array x(n, offset), y(n, offset);
        x.FillRandom(rng, lo, hi);
        std::vector<float> expected(n);
        reference(x.data(), expected.data(), n);
        float* out = in_place ? x.data() : y.data();
        kernel(x.data(), out, n, Pool());
        ASSERT_TRUE(Close(expected, out, Tolerances(expected, kTol, 1e-7f)))
            << Where("", n, offset) << " in place " << in_place;
        ASSERT_TRUE(x.GuardsIntact() && y.GuardsIntact()) << Where("", n, offset);
      }
    }
  }
}

void CheckBackward(Backward kernel, BackwardRef reference) {
  std::mt19937 rng(8);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      Array y(n, offset), dy(n, offset), dz(n, offset);
      y.FillRandom(rng, -1.0f, 1.0f);
      dy.FillRandom(rng, -2.0f, 2.0f);
      std::vector<float> expected(n);
      reference(y.data(), dy.data(), expected.data(), n);
      kernel(y.data(), dy.data(), dz.data(), n, Pool());
      ASSERT_TRUE(Close(expected, dz.data(), Tolerances(expected, kTol, 1e-7f))) << Where("", n, offset);
      kernel(y.data(), dy.data(), dy.data(), n, Pool());  // in place on dy
      ASSERT_TRUE(Close(expected, dy.data(), Tolerances(expected, kTol, 1e-7f))) << Where("in place", n, offset);
      ASSERT_TRUE(dz.GuardsIntact() && dy.GuardsIntact());
    }
  }
}

HWY_BEFORE_TEST(ActivationTest);

TEST_P(ActivationTest, DispatchesToParamTarget) { EXPECT_EQ(GetParam(), DispatchedTarget()); }

TEST_P(ActivationTest, SigmoidForward) { CheckUnary(SigmoidForward, ScalarSigmoidForward, -120.0f, 120.0f); }
TEST_P(ActivationTest, SigmoidBackward) { CheckBackward(SigmoidBackward, ScalarSigmoidBackward); }
TEST_P(ActivationTest, TanhForward) { CheckUnary(TanhForward, ScalarTanhForward, -12.0f, 12.0f); }
TEST_P(ActivationTest, TanhBackward) { CheckBackward(TanhBackward, ScalarTanhBackward); }

// NaN stays NaN, as in PyTorch (Highway's Exp and Tanh alone do not keep it).
TEST_P(ActivationTest, SigmoidAndTanhPropagateNaN) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  for (size_t n : {size_t{1}, size_t{5}, size_t{19}}) {
    std::vector<float> z(n, 0.5f), y(n);
    z[n / 2] = kNaN;
    SigmoidForward(z.data(), y.data(), n, Pool());
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(std::isnan(y[i]), i == n / 2) << "sigmoid " << i;
    TanhForward(z.data(), y.data(), n, Pool());
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(std::isnan(y[i]), i == n / 2) << "tanh " << i;
  }
}

// A NaN logit makes its row NaN: softmax, loss and gradient, as in PyTorch
// (it used to get probability 0, and the step trained on). Other rows stay
// finite; -inf (a masked logit) is not NaN.
TEST_P(ActivationTest, SoftmaxAndCrossEntropyPropagateNaN) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  const float kInf = std::numeric_limits<float>::infinity();
  for (size_t cols : {size_t{2}, size_t{5}, size_t{19}}) {
    const size_t rows = 3;
    std::vector<float> z(rows * cols, 0.25f), y(rows * cols), dz(rows * cols);
    z[cols + cols / 2] = kNaN;  // row 1
    z[2 * cols] = -kInf;        // row 2
    const std::vector<int32_t> labels = {0, 1, 1};
    SoftmaxForward(z.data(), y.data(), rows, cols, Pool());
    const double loss = SoftmaxCrossEntropy(z.data(), labels.data(), rows, cols, nullptr,
                                            dz.data(), 1.0f);
    EXPECT_TRUE(std::isnan(loss)) << cols;
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < cols; ++c) {
        const size_t i = r * cols + c;
        EXPECT_EQ(std::isnan(y[i]), r == 1) << "softmax row " << r << " col " << c;
        EXPECT_EQ(std::isnan(dz[i]), r == 1) << "gradient row " << r << " col " << c;
      }
    }
    EXPECT_EQ(y[2 * cols], 0.0f);
  }
}

TEST_P(ActivationTest, SigmoidSaturatesWithoutNaN) {
  const float z[4] = {-1000.0f, -104.5f, 104.5f, 1000.0f};
  float y[4];
  SigmoidForward(z, y, 4, Pool());
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_GE(y[1], 0.0f);
  EXPECT_LT(y[1], 1e-30f);
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_EQ(y[3], 1.0f);
}

// Rows of widths around the lane count, with logits up to +-50 (the max is
// subtracted, so nothing overflows).
TEST_P(ActivationTest, SoftmaxForwardAndBackward) {
  std::mt19937 rng(9);
  for (size_t cols : {1, 2, 3, 5, 10, 15, 16, 17, 31, 33, 100}) {
    for (size_t rows : {1, 3, 64}) {
      const size_t n = rows * cols;
      Array z(n, 1), y(n, 1), dy(n, 1), dz(n, 1);
      z.FillRandom(rng, -50.0f, 50.0f);
      dy.FillRandom(rng, -1.0f, 1.0f);
      std::vector<float> expected(n);
      ScalarSoftmaxForward(z.data(), expected.data(), rows, cols);
      SoftmaxForward(z.data(), y.data(), rows, cols, Pool());
      ASSERT_TRUE(Close(expected, y.data(), Tolerances(expected, 4 * kTol, 1e-7f))) << rows << "x" << cols;
      for (size_t r = 0; r < rows; ++r) {
        double sum = 0;
        for (size_t j = 0; j < cols; ++j) sum += y.data()[r * cols + j];
        ASSERT_NEAR(sum, 1.0, 1e-5);
      }
      ScalarSoftmaxBackward(y.data(), dy.data(), expected.data(), rows, cols);
      SoftmaxBackward(y.data(), dy.data(), dz.data(), rows, cols, Pool());
      ASSERT_TRUE(Close(expected, dz.data(), Tolerances(expected, 4 * kTol, 1e-6f))) << rows << "x" << cols;
      SoftmaxForward(z.data(), z.data(), rows, cols, Pool());  // in place
      ASSERT_TRUE(SameBits(std::vector<float>(y.data(), y.data() + n), z.data()));
      ASSERT_TRUE(z.GuardsIntact() && y.GuardsIntact() && dz.GuardsIntact());
    }
  }
}

TEST_P(ActivationTest, SoftmaxCrossEntropyMatchesReference) {
  std::mt19937 rng(10);
  for (size_t cols : {2, 3, 5, 10, 17, 40}) {
    for (size_t rows : {1, 7, 64}) {
      const size_t n = rows * cols;
      Array z(n, 1), probs(n, 1), dz(n, 1);
      z.FillRandom(rng, -30.0f, 30.0f);
      std::vector<int32_t> labels(rows);
      for (size_t r = 0; r < rows; ++r) labels[r] = static_cast<int32_t>(rng() % cols);
      std::vector<float> p_ref(n), dz_ref(n);
      const float scale = 1.0f / rows;
      const double loss_ref = ScalarSoftmaxCrossEntropy(z.data(), labels.data(), rows, cols,
                                                        p_ref.data(), dz_ref.data(), scale);
      const double loss = SoftmaxCrossEntropy(z.data(), labels.data(), rows, cols,
                                              probs.data(), dz.data(), scale);
      ASSERT_NEAR(loss, loss_ref, 1e-5 * (1 + loss_ref)) << rows << "x" << cols;
      ASSERT_TRUE(Close(p_ref, probs.data(), Tolerances(p_ref, 8 * kTol, 1e-7f)));
      ASSERT_TRUE(Close(dz_ref, dz.data(), Tolerances(dz_ref, 8 * kTol, 1e-7f)));
      // Loss only, then the gradient in place over the logits.
      ASSERT_EQ(SoftmaxCrossEntropy(z.data(), labels.data(), rows, cols, nullptr, nullptr, scale), loss);
      SoftmaxCrossEntropy(z.data(), labels.data(), rows, cols, nullptr, z.data(), scale);
      ASSERT_TRUE(SameBits(std::vector<float>(dz.data(), dz.data() + n), z.data()));
      ASSERT_TRUE(z.GuardsIntact() && probs.GuardsIntact() && dz.GuardsIntact());
    }
  }
}

TEST_P(ActivationTest, CrossEntropyOfConfidentWrongLogitIsLargeNotInf) {
  const float z[2] = {100.0f, -100.0f};
  const int32_t label[1] = {1};
  EXPECT_NEAR(SoftmaxCrossEntropy(z, label, 1, 2, nullptr, nullptr, 1.0f), 200.0, 1e-3);
}

TEST_P(ActivationTest, BinaryCrossEntropyAndSquaredError) {
  std::mt19937 rng(11);
  for (size_t n : TestSizes()) {
    Array z(n, 1), t(n, 1), dz(n, 1);
    z.FillRandom(rng, -40.0f, 40.0f);
    t.FillRandom(rng, 0.0f, 1.0f);
    std::vector<float> ref(n);
    const float scale = n == 0 ? 1.0f : 1.0f / n;
    double expected = ScalarBinaryCrossEntropyWithLogits(z.data(), t.data(), n, ref.data(), scale);
    double got = BinaryCrossEntropyWithLogits(z.data(), t.data(), n, dz.data(), scale);
    ASSERT_NEAR(got, expected, 1e-5 * (1 + expected)) << n;
    ASSERT_TRUE(Close(ref, dz.data(), Tolerances(ref, 8 * kTol, 1e-9f))) << n;
    expected = ScalarSquaredError(z.data(), t.data(), n, ref.data(), scale);
    got = SquaredError(z.data(), t.data(), n, dz.data(), scale);
    ASSERT_NEAR(got, expected, 1e-6 * (1 + expected)) << n;
    ASSERT_TRUE(Close(ref, dz.data(), Tolerances(ref, 2 * FLT_EPSILON, 0.0f))) << n;
    ASSERT_TRUE(dz.GuardsIntact());
  }
}

TEST_P(ActivationTest, OneAndTwoThreadsGiveTheSameBits) {
  ThreadPool one(1), two(2);
  const size_t rows = 3000, cols = 17;  // several row blocks
  std::vector<float> z(rows * cols), a(z.size()), b(z.size());
  std::mt19937 rng(12);
  for (float& v : z) v = std::uniform_real_distribution<float>(-5, 5)(rng);
  SoftmaxForward(z.data(), a.data(), rows, cols, one);
  SoftmaxForward(z.data(), b.data(), rows, cols, two);
  ASSERT_TRUE(SameBits(a, b.data()));
  SigmoidForward(z.data(), a.data(), z.size(), one);
  SigmoidForward(z.data(), b.data(), z.size(), two);
  ASSERT_TRUE(SameBits(a, b.data()));
}


}  // namespace
}  // namespace simd
}  // namespace thaw
