// Elementwise kernels against their scalar references, on every compiled and
// supported Highway target (test names end in the target, e.g. /AVX2).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "hwy/targets.h"
#include "hwy/tests/hwy_gtest.h"
#include "platform/threads.h"
#include "simd/elementwise.h"
#include "simd/scalar.h"
#include "simd/targets.h"
#include "tests/simd_test_util.h"

namespace thaw {
namespace simd {
namespace {

using BinaryKernel = void (*)(const float*, const float*, float*, size_t,
                              ThreadPool&);
using BinaryReference = void (*)(const float*, const float*, float*, size_t);

// Out of place, and in place on each input; aligned and misaligned.
void CheckBinaryExact(BinaryKernel kernel, BinaryReference reference) {
  std::mt19937 rng(12345);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      for (int in_place = 0; in_place < 3; ++in_place) {
        SCOPED_TRACE(Where("binary", n, offset) +
                     " in_place=" + std::to_string(in_place));
        Array a(n, offset), b(n, offset), out(n, offset);
        a.FillRandom(rng, -2.0f, 2.0f);
        b.FillRandom(rng, -2.0f, 2.0f);
        std::vector<float> expected(n);
        reference(a.data(), b.data(), expected.data(), n);
        Array& dest = in_place == 0 ? out : (in_place == 1 ? a : b);
        kernel(a.data(), b.data(), dest.data(), n, Pool());
        EXPECT_TRUE(SameBits(expected, dest.data()));
        EXPECT_TRUE(dest.GuardsIntact());
      }
    }
  }
}

using ScalarArgKernel = void (*)(const float*, float, float*, size_t,
                                 ThreadPool&);
using ScalarArgReference = void (*)(const float*, float, float*, size_t);

void CheckScalarArgExact(ScalarArgKernel kernel, ScalarArgReference reference) {
  std::mt19937 rng(777);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(Where("scalar-arg", n, offset) +
                     (in_place ? " in place" : ""));
        Array x(n, offset), out(n, offset);
        x.FillRandom(rng, -3.0f, 3.0f);
        const float c = -0.3f + 0.01f * static_cast<float>(n % 17);
        std::vector<float> expected(n);
        reference(x.data(), c, expected.data(), n);
        Array& dest = in_place ? x : out;
        kernel(x.data(), c, dest.data(), n, Pool());
        EXPECT_TRUE(SameBits(expected, dest.data()));
        EXPECT_TRUE(dest.GuardsIntact());
      }
    }
  }
}

HWY_BEFORE_TEST(ElementwiseTest);

// Guard: the mocked target is the one the kernels really dispatch to. If the
// library lacked a target, dispatch would silently fall back to SCALAR and
// every other test here would pass for the wrong reason.
TEST_P(ElementwiseTest, DispatchesToParamTarget) {
  EXPECT_EQ(GetParam(), DispatchedTarget());
  EXPECT_STREQ(hwy::TargetName(GetParam()), DispatchedTargetName());
  std::istringstream names(CompiledTargetNames());
  std::vector<std::string> compiled;
  for (std::string name; names >> name;) compiled.push_back(name);
  EXPECT_NE(
      std::find(compiled.begin(), compiled.end(), hwy::TargetName(GetParam())),
      compiled.end())
      << CompiledTargetNames();
}

TEST_P(ElementwiseTest, Add) { CheckBinaryExact(Add, ScalarAdd); }
TEST_P(ElementwiseTest, Sub) { CheckBinaryExact(Sub, ScalarSub); }
TEST_P(ElementwiseTest, Mul) { CheckBinaryExact(Mul, ScalarMul); }
TEST_P(ElementwiseTest, AddScalar) {
  CheckScalarArgExact(AddScalar, ScalarAddScalar);
}
TEST_P(ElementwiseTest, Scale) { CheckScalarArgExact(Scale, ScalarScale); }
// Limits inside and above the data's range [-3, 3].
TEST_P(ElementwiseTest, ClampAbs) {
  std::mt19937 rng(778);
  for (size_t n : TestSizes()) {
    for (float limit : {0.01f, 0.7f, 2.5f, 4.0f}) {
      SCOPED_TRACE(Where("clamp", n, 0) + " limit " + std::to_string(limit));
      Array x(n, 1), out(n, 1);
      x.FillRandom(rng, -3.0f, 3.0f);
      std::vector<float> expected(n);
      ScalarClampAbs(x.data(), limit, expected.data(), n);
      ClampAbs(x.data(), limit, out.data(), n, Pool());
      EXPECT_TRUE(SameBits(expected, out.data()));
      ClampAbs(x.data(), limit, x.data(), n, Pool());  // in place
      EXPECT_TRUE(SameBits(expected, x.data()));
      EXPECT_TRUE(out.GuardsIntact() && x.GuardsIntact());
    }
  }
}

// Axpy may be fused on FMA targets (one rounding instead of two), so it
// differs from the unfused reference by at most about one rounding of each
// term: 2 * FLT_EPSILON * (|alpha * x| + |y|) is tight but safe.
TEST_P(ElementwiseTest, Axpy) {
  std::mt19937 rng(4242);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      SCOPED_TRACE(Where("Axpy", n, offset));
      Array x(n, offset), y(n, offset);
      x.FillRandom(rng, -2.0f, 2.0f);
      y.FillRandom(rng, -2.0f, 2.0f);
      const float alpha = -0.37f;
      std::vector<float> expected = y.Copy();
      ScalarAxpy(alpha, x.data(), expected.data(), n);
      std::vector<float> tolerance(n);
      for (size_t i = 0; i < n; ++i) {
        tolerance[i] =
            2 * FLT_EPSILON *
            (std::fabs(alpha * x.data()[i]) + std::fabs(y.data()[i]));
      }
      Axpy(alpha, x.data(), y.data(), n, Pool());
      EXPECT_TRUE(Close(expected, y.data(), tolerance));
      EXPECT_TRUE(y.GuardsIntact());
    }
  }
}

// out += a * b, out of place and with out == a (exact aliasing is allowed).
TEST_P(ElementwiseTest, MulAcc) {
  std::mt19937 rng(99);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(Where("MulAcc", n, offset) + (in_place ? " out==a" : ""));
        Array a(n, offset), b(n, offset), out(n, offset);
        a.FillRandom(rng, -2.0f, 2.0f);
        b.FillRandom(rng, -2.0f, 2.0f);
        out.FillRandom(rng, -2.0f, 2.0f);
        Array& dest = in_place ? a : out;
        std::vector<float> expected = dest.Copy();
        std::vector<float> a_copy = a.Copy();
        ScalarMulAcc(a_copy.data(), b.data(), expected.data(), n);
        std::vector<float> tolerance(n);
        for (size_t i = 0; i < n; ++i) {
          tolerance[i] = 2 * FLT_EPSILON *
                         (std::fabs(a.data()[i] * b.data()[i]) +
                          std::fabs(dest.data()[i]));
        }
        MulAcc(a.data(), b.data(), dest.data(), n, Pool());
        EXPECT_TRUE(Close(expected, dest.data(), tolerance));
        EXPECT_TRUE(dest.GuardsIntact());
      }
    }
  }
}

TEST_P(ElementwiseTest, ReluForward) {
  std::mt19937 rng(5);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(Where("ReluForward", n, offset) +
                     (in_place ? " in place" : ""));
        Array x(n, offset), y(n, offset);
        x.FillRandom(rng, -1.0f, 1.0f);
        std::vector<float> expected(n);
        ScalarReluForward(x.data(), expected.data(), n);
        Array& dest = in_place ? x : y;
        ReluForward(x.data(), dest.data(), n, Pool());
        EXPECT_TRUE(SameBits(expected, dest.data()));
        EXPECT_TRUE(dest.GuardsIntact());
      }
    }
  }
}

// dx may be the same array as dy (in place) or as x.
TEST_P(ElementwiseTest, ReluBackward) {
  std::mt19937 rng(6);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      for (int in_place = 0; in_place < 3; ++in_place) {
        SCOPED_TRACE(Where("ReluBackward", n, offset) +
                     " in_place=" + std::to_string(in_place));
        Array x(n, offset), dy(n, offset), dx(n, offset);
        x.FillRandom(rng, -1.0f, 1.0f);
        dy.FillRandom(rng, -5.0f, 5.0f);
        std::vector<float> expected(n);
        ScalarReluBackward(x.data(), dy.data(), expected.data(), n);
        Array& dest = in_place == 0 ? dx : (in_place == 1 ? dy : x);
        ReluBackward(x.data(), dy.data(), dest.data(), n, Pool());
        EXPECT_TRUE(SameBits(expected, dest.data()));
        EXPECT_TRUE(dest.GuardsIntact());
      }
    }
  }
}

// NaN (either sign), infinities, signed zeros and denormals, placed both in
// the vector body and in the tail: as PyTorch's relu, NaN stays NaN and
// passes its gradient, -0 maps to +0, on every target.
TEST_P(ElementwiseTest, ReluSpecialValues) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  const float kInf = std::numeric_limits<float>::infinity();
  const float kDenorm = std::numeric_limits<float>::denorm_min();
  const float specials[] = {kNaN,  -kNaN,   kInf,     -kInf, 0.0f,
                            -0.0f, kDenorm, -kDenorm, 1.0f,  -1.0f};
  for (size_t n : {size_t{1}, size_t{7}, size_t{37}, size_t{100}}) {
    Array x(n, 1), dy(n, 1), y(n, 1), dx(n, 1);
    for (size_t i = 0; i < n; ++i) {
      x.data()[i] = specials[(i * 3 + n) % 10];
      dy.data()[i] = 0.5f + static_cast<float>(i);
    }
    std::vector<float> expected_y(n), expected_dx(n);
    ScalarReluForward(x.data(), expected_y.data(), n);
    ScalarReluBackward(x.data(), dy.data(), expected_dx.data(), n);
    ReluForward(x.data(), y.data(), n, Pool());
    ReluBackward(x.data(), dy.data(), dx.data(), n, Pool());
    EXPECT_TRUE(SameBits(expected_y, y.data())) << "n=" << n;
    EXPECT_TRUE(SameBits(expected_dx, dx.data())) << "n=" << n;
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(std::isnan(y.data()[i]), std::isnan(x.data()[i])) << "i=" << i;
      EXPECT_EQ(std::isnan(x.data()[i]) || x.data()[i] > 0.0f ? dy.data()[i] : 0.0f,
                dx.data()[i]) << "i=" << i;
      if (!std::isnan(y.data()[i])) {
        EXPECT_FALSE(std::signbit(y.data()[i])) << "i=" << i;
      }
    }
  }
}

TEST_P(ElementwiseTest, Relu6) {
  std::mt19937 rng(9);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      SCOPED_TRACE(Where("Relu6", n, offset));
      Array x(n, offset), y(n, offset), dy(n, offset), dx(n, offset);
      x.FillRandom(rng, -3.0f, 9.0f);  // below 0, inside, above 6
      dy.FillRandom(rng, -5.0f, 5.0f);
      std::vector<float> expected_y(n), expected_dx(n);
      ScalarRelu6Forward(x.data(), expected_y.data(), n);
      Relu6Forward(x.data(), y.data(), n, Pool());
      EXPECT_TRUE(SameBits(expected_y, y.data()));
      ScalarRelu6Backward(y.data(), dy.data(), expected_dx.data(), n);
      Relu6Backward(y.data(), dy.data(), dx.data(), n, Pool());
      EXPECT_TRUE(SameBits(expected_dx, dx.data()));
      Relu6Forward(x.data(), x.data(), n, Pool());  // in place
      EXPECT_TRUE(SameBits(expected_y, x.data()));
      EXPECT_TRUE(y.GuardsIntact() && dx.GuardsIntact() && x.GuardsIntact());
    }
  }
}

// NaN, infinities, the edges 0 and 6: as PyTorch's hardtanh(x, 0, 6), NaN
// stays NaN (and passes no gradient), -Inf maps to +0, +Inf to 6, and no
// gradient passes at either edge.
TEST_P(ElementwiseTest, Relu6SpecialValues) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  const float kInf = std::numeric_limits<float>::infinity();
  const float x[] = {kNaN, -kNaN, kInf, -kInf, 0.0f, -0.0f, 6.0f, 5.999999f, 6.000001f, 3.0f};
  const float want_y[] = {kNaN, -kNaN, 6, 0, 0, 0, 6, 5.999999f, 6, 3};
  const float want_dx[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 1};
  float y[10], dx[10];
  const float ones[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  Relu6Forward(x, y, 10, Pool());
  Relu6Backward(y, ones, dx, 10, Pool());
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(Array::SameBits(y[i], want_y[i])) << i << ": " << y[i];
    EXPECT_EQ(dx[i], want_dx[i]) << i;
  }
}

// ColumnSums and ColumnSquareSums against the reference, which sums the
// same groups of rows, on 1 and 2 threads bit for bit: a matrix wide enough
// for several column chunks at 3 rows, one chunk at 1000 rows (three
// groups), no rows at all (zeros); a convolution's bias gradients over many
// pixels, 25,088 x 16 and 6,272 x 32 (eight groups); 4,097 x 3 (eight
// groups of uneven length, columns short of a vector); 600 x 64 (two
// groups); 511 x 65 (one group, two chunks of columns).
TEST_P(ElementwiseTest, ColumnSums) {
  std::mt19937 rng(8);
  ThreadPool one(1);
  std::vector<std::pair<size_t, size_t>> shapes;
  for (size_t rows : {0, 1, 2, 3, 7, 64, 1000}) {
    for (size_t cols : {1, 3, 8, 17, 70, 256, 6000}) {
      if (rows * cols <= 400000) shapes.emplace_back(rows, cols);
    }
  }
  for (auto shape : {std::make_pair(25088, 16), std::make_pair(6272, 32),
                     std::make_pair(4097, 3), std::make_pair(600, 64), std::make_pair(511, 65)}) {
    shapes.emplace_back(shape);
  }
  for (const auto& [rows, cols] : shapes) {
    SCOPED_TRACE(Where("ColumnSums", cols, 0) + " rows=" + std::to_string(rows));
    Array x(rows * cols, 1), out(cols, 1), out1(cols, 1);
    x.FillRandom(rng, -3.0f, 3.0f);
    out.FillRandom(rng, -1.0f, 1.0f);  // overwritten, never read
    std::vector<float> expected(cols);
    ScalarColumnSums(x.data(), rows, cols, expected.data());
    ColumnSums(x.data(), rows, cols, out.data(), Pool());
    EXPECT_TRUE(SameBits(expected, out.data()));
    EXPECT_TRUE(out.GuardsIntact());
    ColumnSums(x.data(), rows, cols, out1.data(), one);
    EXPECT_TRUE(SameBits(expected, out1.data()));
    // The squares about a centre, in the same groups.
    std::vector<float> centre(cols);
    for (size_t j = 0; j < cols; ++j) centre[j] = 0.25f * static_cast<float>(j % 5) - 0.5f;
    ScalarColumnSquareSums(x.data(), rows, cols, centre.data(), expected.data());
    ColumnSquareSums(x.data(), rows, cols, centre.data(), out.data(), Pool());
    EXPECT_TRUE(SameBits(expected, out.data()));
    EXPECT_TRUE(out.GuardsIntact());
    ColumnSquareSums(x.data(), rows, cols, centre.data(), out1.data(), one);
    EXPECT_TRUE(SameBits(expected, out1.data()));
  }
  EXPECT_EQ(ColumnSumGroups(1000, 17), 3u);
  EXPECT_EQ(ColumnSumGroups(25088, 16), kColumnSumMaxGroups);
  EXPECT_EQ(ColumnSumGroups(600, 64), 2u);
  EXPECT_EQ(ColumnSumGroups(1000, 70), 1u);  // two chunks of columns
  EXPECT_EQ(ColumnSumGroups(64, 8), 1u);     // a dense layer's batch
}

// Chunks are fixed, so one thread and two threads give the same bits, and a
// fused kernel (Axpy) is no exception.
TEST_P(ElementwiseTest, SameBitsForAnyThreadCount) {
  const size_t n = 3 * kElementwiseChunk + 5;
  std::mt19937 rng(2024);
  Array x(n, 1), y1(n, 1), y2(n, 1);
  x.FillRandom(rng, -2.0f, 2.0f);
  y1.FillRandom(rng, -2.0f, 2.0f);
  std::memcpy(y2.data(), y1.data(), n * sizeof(float));
  ThreadPool one(1), three(3);
  Axpy(0.7f, x.data(), y1.data(), n, one);
  Axpy(0.7f, x.data(), y2.data(), n, three);
  EXPECT_TRUE(SameBits(y1.Copy(), y2.data()));
  Axpy(0.7f, x.data(), y2.data(), n, Pool());
  Axpy(0.7f, x.data(), y1.data(), n, one);
  EXPECT_TRUE(SameBits(y1.Copy(), y2.data()));
}

}  // namespace
}  // namespace simd
}  // namespace thaw
