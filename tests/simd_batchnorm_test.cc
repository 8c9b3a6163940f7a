// Batch normalization kernels against their scalar references (equal bits:
// same order, no fused multiply-add) and against double, on every compiled
// and supported target, with odd column counts, rows across chunk edges,
// misaligned and in-place arrays, 1 and 2 threads; the backward pass against
// central differences of the forward pass in double.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "hwy/tests/hwy_gtest.h"
#include "simd/batchnorm.h"
#include "simd/elementwise.h"
#include "simd/scalar.h"
#include "simd/targets.h"
#include "tests/simd_test_util.h"

namespace thaw {
namespace simd {
namespace {

struct Case {
  size_t rows, cols;
};
// Columns around lane counts (1, 4, 8, 16) and the 64-column chunks; rows
// from 1 to several elementwise chunks of work.
const Case kCases[] = {{1, 1}, {2, 3}, {7, 4}, {9, 15}, {16, 16}, {5, 17}, {33, 31},
                       {100, 65}, {300, 130}, {2, 200}, {1000, 16}, {4097, 3}, {1568, 48}};

void Random(std::vector<float>* v, size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  v->resize(n);
  for (float& x : *v) x = dist(rng);
}

HWY_BEFORE_TEST(BatchNormTest);

TEST_P(BatchNormTest, DispatchesToParamTarget) { EXPECT_EQ(GetParam(), DispatchedTarget()); }

TEST_P(BatchNormTest, StatisticsEqualTheReferenceAndDouble) {
  std::mt19937 rng(1);
  for (const Case& c : kCases) {
    SCOPED_TRACE(::testing::Message() << "rows=" << c.rows << " cols=" << c.cols);
    Array x(c.rows * c.cols, 1), mean(c.cols, 3), var(c.cols, 2);
    x.FillRandom(rng, 2.0f, 5.0f);  // an offset mean: the two passes matter
    std::vector<float> ref_mean(c.cols), ref_var(c.cols);
    ScalarBatchNormStatistics(x.data(), c.rows, c.cols, ref_mean.data(), ref_var.data());
    // Few columns over many rows sum in ColumnSums' groups of rows (the
    // reference too).
    if (c.rows >= 1000) {
      EXPECT_GT(ColumnSumGroups(c.rows, c.cols), 1u);
    }
    for (ThreadPool* pool : {&ThreadPool::Serial(), &Pool()}) {
      BatchNormStatistics(x.data(), c.rows, c.cols, mean.data(), var.data(), *pool);
      EXPECT_TRUE(SameBits(ref_mean, mean.data()));
      EXPECT_TRUE(SameBits(ref_var, var.data()));
      EXPECT_TRUE(mean.GuardsIntact() && var.GuardsIntact());
    }
    for (size_t j = 0; j < c.cols; ++j) {
      double sum = 0, squares = 0;
      for (size_t r = 0; r < c.rows; ++r) sum += x.data()[r * c.cols + j];
      const double m = sum / c.rows;
      for (size_t r = 0; r < c.rows; ++r) {
        squares += (x.data()[r * c.cols + j] - m) * (x.data()[r * c.cols + j] - m);
      }
      EXPECT_NEAR(mean.data()[j], m, 1e-6 * c.rows * std::fabs(m));
      EXPECT_NEAR(var.data()[j], squares / c.rows, 1e-5 * c.rows * (squares / c.rows) + 1e-7);
    }
  }
}

TEST_P(BatchNormTest, ApplyEqualsTheReferenceInPlaceToo) {
  std::mt19937 rng(2);
  for (const Case& c : kCases) {
    SCOPED_TRACE(::testing::Message() << "rows=" << c.rows << " cols=" << c.cols);
    const size_t n = c.rows * c.cols;
    Array x(n, 1), y(n, 5);
    x.FillRandom(rng, -3.0f, 3.0f);
    std::vector<float> mean, scale, shift, ref(n);
    Random(&mean, c.cols, rng, -1, 1);
    Random(&scale, c.cols, rng, 0.1f, 2);
    Random(&shift, c.cols, rng, -1, 1);
    ScalarBatchNormApply(x.data(), c.rows, c.cols, mean.data(), scale.data(), shift.data(),
                         ref.data());
    for (ThreadPool* pool : {&ThreadPool::Serial(), &Pool()}) {
      BatchNormApply(x.data(), c.rows, c.cols, mean.data(), scale.data(), shift.data(),
                     y.data(), *pool);
      EXPECT_TRUE(SameBits(ref, y.data()));
      EXPECT_TRUE(y.GuardsIntact());
    }
    BatchNormApply(x.data(), c.rows, c.cols, mean.data(), scale.data(), shift.data(),
                   x.data(), Pool());
    EXPECT_TRUE(SameBits(ref, x.data()));
  }
}

TEST_P(BatchNormTest, BackwardEqualsTheReferenceInPlaceToo) {
  std::mt19937 rng(3);
  for (const Case& c : kCases) {
    SCOPED_TRACE(::testing::Message() << "rows=" << c.rows << " cols=" << c.cols);
    const size_t n = c.rows * c.cols;
    Array x(n, 1), dy(n, 2), dx(n, 3), dgamma(c.cols, 1), dbeta(c.cols, 0);
    x.FillRandom(rng, -2.0f, 2.0f);
    dy.FillRandom(rng, -1.0f, 1.0f);
    std::vector<float> mean, invstd, gamma;
    Random(&mean, c.cols, rng, -0.5f, 0.5f);
    Random(&invstd, c.cols, rng, 0.5f, 2);
    Random(&gamma, c.cols, rng, -2, 2);
    std::vector<float> ref_dx(n), ref_dgamma(c.cols), ref_dbeta(c.cols);
    ScalarBatchNormBackward(x.data(), dy.data(), c.rows, c.cols, mean.data(), invstd.data(),
                            gamma.data(), ref_dx.data(), ref_dgamma.data(), ref_dbeta.data());
    // Few columns over many rows sum in groups of rows (the reference too).
    if (c.rows >= 1000) {
      EXPECT_GT(BatchNormRowGroups(c.rows, c.cols), 1u);
    }
    Array scratch(BatchNormBackwardScratchFloats(c.rows, c.cols), 4);
    for (ThreadPool* pool : {&ThreadPool::Serial(), &Pool()}) {
      BatchNormBackward(x.data(), dy.data(), c.rows, c.cols, mean.data(), invstd.data(),
                        gamma.data(), dx.data(), dgamma.data(), dbeta.data(), scratch.data(),
                        *pool);
      EXPECT_TRUE(SameBits(ref_dx, dx.data()));
      EXPECT_TRUE(SameBits(ref_dgamma, dgamma.data()));
      EXPECT_TRUE(SameBits(ref_dbeta, dbeta.data()));
      EXPECT_TRUE(dx.GuardsIntact() && dgamma.GuardsIntact() && dbeta.GuardsIntact() &&
                  scratch.GuardsIntact());
    }
    // Without dx: the sums alone. In place over dy: the same dx.
    BatchNormBackward(x.data(), dy.data(), c.rows, c.cols, mean.data(), invstd.data(),
                      gamma.data(), nullptr, dgamma.data(), dbeta.data(), scratch.data(), Pool());
    EXPECT_TRUE(SameBits(ref_dgamma, dgamma.data()));
    BatchNormBackward(x.data(), dy.data(), c.rows, c.cols, mean.data(), invstd.data(),
                      gamma.data(), dy.data(), dgamma.data(), dbeta.data(), scratch.data(),
                      Pool());
    EXPECT_TRUE(SameBits(ref_dx, dy.data()));
  }
}

// The whole training-mode layer in double: y = gamma * (x - mean) / sqrt(var
// + eps) + beta with batch statistics; the loss sum(w * y). The kernels'
// gradients (statistics, then the backward pass) must match central
// differences for x, gamma and beta.
TEST_P(BatchNormTest, BackwardMatchesFiniteDifferences) {
  const size_t rows = 6, cols = 5;
  const double eps = 1e-3;
  std::mt19937 rng(4);
  std::vector<float> x, gamma, beta, w;
  Random(&x, rows * cols, rng, -2, 2);
  Random(&gamma, cols, rng, 0.5f, 1.5f);
  Random(&beta, cols, rng, -1, 1);
  Random(&w, rows * cols, rng, -1, 1);
  auto loss = [&](const std::vector<double>& xs, const std::vector<double>& g,
                  const std::vector<double>& b) {
    double total = 0;
    for (size_t j = 0; j < cols; ++j) {
      double m = 0, v = 0;
      for (size_t r = 0; r < rows; ++r) m += xs[r * cols + j];
      m /= rows;
      for (size_t r = 0; r < rows; ++r) v += (xs[r * cols + j] - m) * (xs[r * cols + j] - m);
      v /= rows;
      for (size_t r = 0; r < rows; ++r) {
        total += w[r * cols + j] * (g[j] * (xs[r * cols + j] - m) / std::sqrt(v + eps) + b[j]);
      }
    }
    return total;
  };
  std::vector<float> mean(cols), var(cols), invstd(cols), dx(rows * cols), dgamma(cols),
      dbeta(cols);
  BatchNormStatistics(x.data(), rows, cols, mean.data(), var.data(), Pool());
  for (size_t j = 0; j < cols; ++j) invstd[j] = 1.0f / std::sqrt(var[j] + static_cast<float>(eps));
  BatchNormBackward(x.data(), w.data(), rows, cols, mean.data(), invstd.data(), gamma.data(),
                    dx.data(), dgamma.data(), dbeta.data(), /*scratch=*/nullptr, Pool());
  std::vector<double> xs(x.begin(), x.end()), g(gamma.begin(), gamma.end()),
      b(beta.begin(), beta.end());
  const double h = 1e-6;
  auto check = [&](std::vector<double>& v, const std::vector<float>& grad, const char* what) {
    for (size_t i = 0; i < v.size(); ++i) {
      const double saved = v[i];
      v[i] = saved + h;
      const double plus = loss(xs, g, b);
      v[i] = saved - h;
      const double minus = loss(xs, g, b);
      v[i] = saved;
      EXPECT_NEAR(grad[i], (plus - minus) / (2 * h), 1e-4) << what << " " << i;
    }
  };
  check(xs, dx, "dx");
  check(g, dgamma, "dgamma");
  check(b, dbeta, "dbeta");
}

// No fused multiply-add and the same order everywhere: every target gives
// the first target's bits.
TEST_P(BatchNormTest, SameBitsOnEveryTarget) {
  static std::vector<float>* first = new std::vector<float>();
  const size_t rows = 600, cols = 21;  // two groups of rows
  std::mt19937 rng(5);
  std::vector<float> x, dy;
  Random(&x, rows * cols, rng, -2, 2);
  Random(&dy, rows * cols, rng, -1, 1);
  std::vector<float> out(2 * cols + rows * cols + 2 * cols);
  float* mean = out.data();
  float* var = mean + cols;
  float* dx = var + cols;
  float* dgamma = dx + rows * cols;
  float* dbeta = dgamma + cols;
  BatchNormStatistics(x.data(), rows, cols, mean, var, Pool());
  std::vector<float> gamma(cols, 1.5f);
  std::vector<float> scratch(BatchNormBackwardScratchFloats(rows, cols));
  BatchNormBackward(x.data(), dy.data(), rows, cols, mean, var, gamma.data(), dx, dgamma,
                    dbeta, scratch.data(), Pool());
  if (first->empty()) *first = out;
  EXPECT_TRUE(SameBits(*first, out.data())) << hwy::TargetName(GetParam());
}

}  // namespace
}  // namespace simd
}  // namespace thaw
