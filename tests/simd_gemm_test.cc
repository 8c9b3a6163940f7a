// Gemm against the double-precision ScalarGemm on every compiled and
// supported Highway target: all four transpose combinations, padded leading
// dimensions, misaligned pointers, accumulate on and off.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "hwy/tests/hwy_gtest.h"
#include "platform/threads.h"
#include "simd/gemm.h"
#include "simd/scalar.h"
#include "simd/targets.h"

namespace thaw {
namespace simd {
namespace {

constexpr float kSentinel = -4321.0f;

ThreadPool& Pool() {
  static ThreadPool* pool = new ThreadPool(2);
  return *pool;
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// Each of m, n, k takes every value of {1, 3, 7, 17, 63, 65, 129} with the
// other two fixed, plus mixed shapes: lane edges for N = 1, 4, 8, 16, the
// 4-row and 16-row blocks, and k shorter and longer than a vector.
std::vector<std::tuple<size_t, size_t, size_t>> Shapes() {
  std::vector<std::tuple<size_t, size_t, size_t>> shapes;
  for (size_t v : {1, 3, 7, 17, 63, 65, 129}) {
    shapes.emplace_back(v, 17, 7);
    shapes.emplace_back(7, v, 17);
    shapes.emplace_back(17, 7, v);
  }
  shapes.emplace_back(1, 1, 1);
  shapes.emplace_back(63, 65, 129);
  shapes.emplace_back(129, 63, 65);
  shapes.emplace_back(65, 129, 63);
  shapes.emplace_back(3, 129, 1);
  shapes.emplace_back(129, 1, 3);
  shapes.emplace_back(33, 31, 16);
  return shapes;
}

// A rows x cols matrix with leading dimension ld >= cols, `offset` floats past
// a 64-byte boundary. Padding columns hold `pad`.
struct Matrix {
  Matrix(size_t rows, size_t cols, size_t ld, size_t offset, float pad)
      : rows(rows),
        cols(cols),
        ld(ld),
        mem(hwy::AllocateAligned<float>(rows * ld + offset + 1)),
        data(mem.get() + offset) {
    for (size_t i = 0; i < rows * ld + offset + 1; ++i) mem[i] = pad;
  }
  float& at(size_t r, size_t c) { return data[r * ld + c]; }
  void FillRandom(std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < cols; ++c) at(r, c) = dist(rng);
    }
  }
  void Fill(float value) {
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < cols; ++c) at(r, c) = value;
    }
  }
  std::vector<float> Abs() const {
    std::vector<float> out(data, data + rows * ld);
    for (float& x : out) x = std::fabs(x);
    return out;
  }
  size_t rows, cols, ld;
  hwy::AlignedFreeUniquePtr<float[]> mem;
  float* data;
};

// One Gemm call checked against ScalarGemm. A and B padding holds NaN, so a
// kernel that reads outside op(A) / op(B) is caught; with accumulate off, C
// starts as NaN, so a kernel that reads C is caught; C's padding columns
// must keep their sentinel.
void CheckGemm(size_t m, size_t n, size_t k, bool trans_a, bool trans_b,
               bool accumulate, size_t offset, std::mt19937& rng) {
  std::ostringstream where;
  where << "m=" << m << " n=" << n << " k=" << k << " trans_a=" << trans_a
        << " trans_b=" << trans_b << " accumulate=" << accumulate
        << " offset=" << offset;
  SCOPED_TRACE(where.str());
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  // Stored shapes: A is m x k (k x m when transposed), B is k x n (n x k).
  const size_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
  const size_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
  Matrix a(a_rows, a_cols, a_cols + 3, offset, kNaN);
  Matrix b(b_rows, b_cols, b_cols + 5, offset, kNaN);
  Matrix c(m, n, n + 2, offset, kSentinel);
  a.FillRandom(rng);
  b.FillRandom(rng);
  if (accumulate) {
    c.FillRandom(rng);
  } else {
    c.Fill(kNaN);
  }
  // Reference, and sum |a||b| + |c| for the error bound (padding as 0).
  std::vector<float> expected(c.data, c.data + m * c.ld);
  ScalarGemm(a.data, a.ld, trans_a, b.data, b.ld, trans_b, expected.data(),
             c.ld, m, n, k, accumulate);
  std::vector<float> abs_a = a.Abs(), abs_b = b.Abs(), bound = c.Abs();
  for (float& x : abs_a) x = std::isnan(x) ? 0.0f : x;
  for (float& x : abs_b) x = std::isnan(x) ? 0.0f : x;
  ScalarGemm(abs_a.data(), a.ld, trans_a, abs_b.data(), b.ld, trans_b,
             bound.data(), c.ld, m, n, k, accumulate);

  Gemm(a.data, a.ld, trans_a, b.data, b.ld, trans_b, c.data, c.ld, m, n, k,
       accumulate, Pool());

  size_t failures = 0;
  for (size_t i = 0; i < m && failures < 5; ++i) {
    for (size_t j = 0; j < n && failures < 5; ++j) {
      const float e = expected[i * c.ld + j];
      const float got = c.at(i, j);
      // Any summation order, fused or not: within (k + 2) roundings of the
      // sum of magnitudes.
      const float tol =
          static_cast<float>(k + 2) * FLT_EPSILON * bound[i * c.ld + j];
      if (!(std::fabs(got - e) <= tol)) {
        ADD_FAILURE() << "C(" << i << ", " << j << "): expected " << e
                      << ", got " << got << ", tolerance " << tol;
        ++failures;
      }
    }
    for (size_t j = n; j < c.ld; ++j) {
      if (Bits(c.at(i, j)) != Bits(kSentinel)) {
        ADD_FAILURE() << "padding C(" << i << ", " << j << ") was written";
        ++failures;
      }
    }
  }
}

HWY_BEFORE_TEST(GemmTest);

TEST_P(GemmTest, DispatchesToParamTarget) {
  EXPECT_EQ(GetParam(), DispatchedTarget());
}

TEST_P(GemmTest, MatchesReferenceNN) {
  std::mt19937 rng(1);
  for (const auto& [m, n, k] : Shapes()) {
    for (bool accumulate : {false, true}) {
      CheckGemm(m, n, k, false, false, accumulate, accumulate ? 1 : 0, rng);
    }
  }
}

TEST_P(GemmTest, MatchesReferenceTN) {
  std::mt19937 rng(2);
  for (const auto& [m, n, k] : Shapes()) {
    for (bool accumulate : {false, true}) {
      CheckGemm(m, n, k, true, false, accumulate, accumulate ? 0 : 1, rng);
    }
  }
}

TEST_P(GemmTest, MatchesReferenceNT) {
  std::mt19937 rng(3);
  for (const auto& [m, n, k] : Shapes()) {
    for (bool accumulate : {false, true}) {
      CheckGemm(m, n, k, false, true, accumulate, accumulate ? 1 : 0, rng);
    }
  }
}

TEST_P(GemmTest, MatchesReferenceTT) {
  std::mt19937 rng(4);
  for (const auto& [m, n, k] : Shapes()) {
    for (bool accumulate : {false, true}) {
      CheckGemm(m, n, k, true, true, accumulate, accumulate ? 0 : 1, rng);
    }
  }
}

// [1 2 3; 4 5 6] * [1 0; 0 1; 1 1] = [4 5; 10 11], then += the same again.
TEST_P(GemmTest, KnownValues) {
  const float a[] = {1, 2, 3, 4, 5, 6};
  const float b[] = {1, 0, 0, 1, 1, 1};
  float c[4] = {-1, -1, -1, -1};
  Gemm(a, 3, false, b, 2, false, c, 2, 2, 2, 3, false, Pool());
  EXPECT_EQ(c[0], 4.0f);
  EXPECT_EQ(c[1], 5.0f);
  EXPECT_EQ(c[2], 10.0f);
  EXPECT_EQ(c[3], 11.0f);
  // Same product with B given transposed (2 x 3 storage), accumulating.
  const float bt[] = {1, 0, 1, 0, 1, 1};
  Gemm(a, 3, false, bt, 3, true, c, 2, 2, 2, 3, true, Pool());
  EXPECT_EQ(c[0], 8.0f);
  EXPECT_EQ(c[1], 10.0f);
  EXPECT_EQ(c[2], 20.0f);
  EXPECT_EQ(c[3], 22.0f);
}

// k == 0: op(A) * op(B) is zero, so C becomes 0 (even from NaN) or is left
// alone when accumulating. m == 0 or n == 0 touch nothing. Handled before
// dispatch, so not per target.
TEST(GemmEmptyTest, EmptyDimensions) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  const float dummy[1] = {kNaN};
  std::vector<float> c(3 * 5, kNaN);
  for (size_t i = 0; i < 3; ++i) c[i * 5 + 4] = kSentinel;  // ldc = 5, n = 4
  Gemm(dummy, 1, false, dummy, 4, false, c.data(), 5, 3, 4, 0, false, Pool());
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = 0; j < 4; ++j) EXPECT_EQ(Bits(c[i * 5 + j]), Bits(0.0f));
    EXPECT_EQ(Bits(c[i * 5 + 4]), Bits(kSentinel));
  }
  for (float& x : c) x = 2.5f;
  Gemm(dummy, 1, true, dummy, 1, true, c.data(), 5, 3, 4, 0, true, Pool());
  for (float x : c) EXPECT_EQ(x, 2.5f);
  Gemm(dummy, 1, false, dummy, 1, false, c.data(), 5, 0, 4, 7, false, Pool());
  Gemm(dummy, 1, false, dummy, 1, false, c.data(), 5, 3, 0, 7, false, Pool());
  for (float x : c) EXPECT_EQ(x, 2.5f);
}

// Row blocks are fixed, so 1, 2 and 3 threads give the same bits.
TEST_P(GemmTest, SameBitsForAnyThreadCount) {
  ThreadPool one(1), three(3);
  std::mt19937 rng(5);
  const size_t m = 129, n = 65, k = 63;
  for (bool trans_a : {false, true}) {
    for (bool trans_b : {false, true}) {
      const size_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
      Matrix a(trans_a ? k : m, lda, lda, 1, 0.0f);
      Matrix b(trans_b ? n : k, ldb, ldb, 0, 0.0f);
      a.FillRandom(rng);
      b.FillRandom(rng);
      std::vector<float> c1(m * n), c2(m * n), c3(m * n);
      Gemm(a.data, lda, trans_a, b.data, ldb, trans_b, c1.data(), n, m, n, k,
           false, one);
      Gemm(a.data, lda, trans_a, b.data, ldb, trans_b, c2.data(), n, m, n, k,
           false, Pool());
      Gemm(a.data, lda, trans_a, b.data, ldb, trans_b, c3.data(), n, m, n, k,
           false, three);
      for (size_t i = 0; i < m * n; ++i) {
        ASSERT_EQ(Bits(c1[i]), Bits(c2[i]))
            << "trans_a=" << trans_a << " trans_b=" << trans_b << " i=" << i;
        ASSERT_EQ(Bits(c1[i]), Bits(c3[i]))
            << "trans_a=" << trans_a << " trans_b=" << trans_b << " i=" << i;
      }
    }
  }
}

}  // namespace
}  // namespace simd
}  // namespace thaw
