// Sum and Dot against double-precision references on every compiled and
// supported Highway target, plus their determinism contract: the same bits
// for any thread count and on every target.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "hwy/targets.h"
#include "hwy/tests/hwy_gtest.h"
#include "platform/threads.h"
#include "simd/reduce.h"
#include "simd/scalar.h"
#include "simd/targets.h"

namespace thaw {
namespace simd {
namespace {

// 1 .. 70 covers 1, N-1, N, N+1, 3N, 8N+2 for N = 1, 4, 8 lanes and the
// 16-lane logical groups; then lane and chunk edges, several chunks
// (kReduceChunk = 4096), and more than kReduceChunk * kMaxReduceChunks (1M)
// floats, where chunks grow.
std::vector<size_t> TestSizes() {
  std::vector<size_t> sizes;
  for (size_t n = 0; n <= 70; ++n) sizes.push_back(n);
  for (size_t n : {127, 128, 129, 130, 255, 256, 257, 1000}) sizes.push_back(n);
  for (size_t n : {kReduceChunk - 1, kReduceChunk, kReduceChunk + 1,
                   3 * kReduceChunk + 5, size_t{100003}}) {
    sizes.push_back(n);
  }
  sizes.push_back(kReduceChunk * kMaxReduceChunks + 17);
  return sizes;
}

ThreadPool& Pool() {
  static ThreadPool* pool = new ThreadPool(2);
  return *pool;
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// n floats, `offset` floats past a 64-byte boundary.
struct Array {
  Array(size_t n, size_t offset)
      : mem(hwy::AllocateAligned<float>(n + offset + 1)),
        data(mem.get() + offset) {}
  hwy::AlignedFreeUniquePtr<float[]> mem;
  float* data;
};

void FillRandom(float* x, size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  for (size_t i = 0; i < n; ++i) x[i] = dist(rng);
}

// Small integers: every partial sum is an integer below 2^24, so any
// summation order is exact and the result must equal the reference exactly.
// This catches a dropped or doubled element at any size.
void FillIntegers(float* x, size_t n, std::mt19937& rng, int max_abs) {
  std::uniform_int_distribution<int> dist(-max_abs, max_abs);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(dist(rng));
}

// Worst-case (first-order) rounding bound for the documented order: an
// element passes through at most chunk/16 lane additions, 4 tree levels, 15
// tail additions and one addition per chunk (plus the product rounding for
// Dot), each off by at most FLT_EPSILON / 2 relative to a sum bounded by
// sum |terms|.
double ErrorBound(size_t n, double sum_abs) {
  const size_t chunk =
      n <= kReduceChunk * kMaxReduceChunks
          ? kReduceChunk
          : ((n + kMaxReduceChunks - 1) / kMaxReduceChunks + 15) / 16 * 16;
  const size_t num_chunks = (n + chunk - 1) / chunk;
  const double depth =
      static_cast<double>(chunk / 16 + 4 + 15 + num_chunks + 1);
  return depth * (FLT_EPSILON / 2) * sum_abs;
}

HWY_BEFORE_TEST(ReduceTest);

TEST_P(ReduceTest, DispatchesToParamTarget) {
  EXPECT_EQ(GetParam(), DispatchedTarget());
}

// Handled before dispatch, so not per target.
TEST(ReduceEmptyTest, EmptyIsZero) {
  float x = 1.0f;
  EXPECT_EQ(Bits(Sum(&x, 0, Pool())), Bits(0.0f));
  EXPECT_EQ(Bits(Dot(&x, &x, 0, Pool())), Bits(0.0f));
}

// NaN (quiet and signalling, either sign), +-Inf and their neighbours
// (FLT_MAX, denormals, -0) at every position class: body, lane edges, tail,
// several chunks; 1 and 2 threads.
TEST_P(ReduceTest, CountNonFinite) {
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::signaling_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  const float finite[] = {FLT_MAX, -FLT_MAX, FLT_MIN, 1e-40f, -0.0f, 0.0f};
  std::mt19937 rng(11);
  ThreadPool one(1);
  for (size_t n : TestSizes()) {
    if (n > 100003) continue;
    Array x(n, 1);
    FillRandom(x.data, n, rng, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i += 7) x.data[i] = finite[i % 6];
    EXPECT_EQ(CountNonFinite(x.data, n, Pool()), 0u) << "n=" << n;
    for (size_t i = 3; i < n; i += 11 + i % 5) x.data[i] = specials[i % 5];
    const size_t expected = ScalarCountNonFinite(x.data, n);
    EXPECT_EQ(CountNonFinite(x.data, n, Pool()), expected) << "n=" << n;
    EXPECT_EQ(CountNonFinite(x.data, n, one), expected) << "n=" << n;
    if (n > 0) {
      x.data[n - 1] = specials[n % 5];  // the very last element counts too
      EXPECT_EQ(CountNonFinite(x.data, n, Pool()), ScalarCountNonFinite(x.data, n));
    }
  }
}

TEST_P(ReduceTest, SumExactOnIntegers) {
  std::mt19937 rng(1);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      Array x(n, offset);
      FillIntegers(x.data, n, rng, 8);
      const double expected = ScalarSum(x.data, n);
      EXPECT_EQ(static_cast<double>(Sum(x.data, n, Pool())), expected)
          << "n=" << n << " offset=" << offset;
    }
  }
}

TEST_P(ReduceTest, DotExactOnIntegers) {
  std::mt19937 rng(2);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      Array a(n, offset), b(n, 0);
      FillIntegers(a.data, n, rng, 3);
      FillIntegers(b.data, n, rng, 3);
      const double expected = ScalarDot(a.data, b.data, n);
      EXPECT_EQ(static_cast<double>(Dot(a.data, b.data, n, Pool())), expected)
          << "n=" << n << " offset=" << offset;
    }
  }
}

TEST_P(ReduceTest, SumCloseToDoubleReference) {
  std::mt19937 rng(3);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      Array x(n, offset);
      // Mostly positive, so the sum is large and rounding accumulates.
      FillRandom(x.data, n, rng, -0.5f, 1.5f);
      double sum_abs = 0.0;
      for (size_t i = 0; i < n; ++i) sum_abs += std::fabs(x.data[i]);
      const double expected = ScalarSum(x.data, n);
      const double got = Sum(x.data, n, Pool());
      EXPECT_LE(std::fabs(got - expected), ErrorBound(n, sum_abs))
          << "n=" << n << " offset=" << offset << " expected=" << expected
          << " got=" << got;
    }
  }
}

TEST_P(ReduceTest, DotCloseToDoubleReference) {
  std::mt19937 rng(4);
  for (size_t n : TestSizes()) {
    for (size_t offset : {0, 1}) {
      Array a(n, offset), b(n, offset);
      FillRandom(a.data, n, rng, -1.0f, 1.0f);
      FillRandom(b.data, n, rng, -0.2f, 1.0f);
      double sum_abs = 0.0;
      for (size_t i = 0; i < n; ++i) {
        sum_abs += std::fabs(static_cast<double>(a.data[i]) * b.data[i]);
      }
      const double expected = ScalarDot(a.data, b.data, n);
      const double got = Dot(a.data, b.data, n, Pool());
      EXPECT_LE(std::fabs(got - expected), ErrorBound(n, sum_abs))
          << "n=" << n << " offset=" << offset << " expected=" << expected
          << " got=" << got;
    }
  }
}

// 1, 2 and 3 threads (an arena of 3 gets as many threads as the machine
// has cores), at a size with 245 chunks and one where chunks grow.
TEST_P(ReduceTest, SameBitsForAnyThreadCount) {
  ThreadPool one(1), two(2), three(3);
  std::mt19937 rng(5);
  for (size_t n : {size_t{1000003}, kReduceChunk * kMaxReduceChunks + 4099}) {
    Array a(n, 1), b(n, 0);
    FillRandom(a.data, n, rng, -1.0f, 1.0f);
    FillRandom(b.data, n, rng, -1.0f, 1.0f);
    const uint32_t sum1 = Bits(Sum(a.data, n, one));
    EXPECT_EQ(sum1, Bits(Sum(a.data, n, two))) << "n=" << n;
    EXPECT_EQ(sum1, Bits(Sum(a.data, n, three))) << "n=" << n;
    const uint32_t dot1 = Bits(Dot(a.data, b.data, n, one));
    EXPECT_EQ(dot1, Bits(Dot(a.data, b.data, n, two))) << "n=" << n;
    EXPECT_EQ(dot1, Bits(Dot(a.data, b.data, n, three))) << "n=" << n;
  }
}

// The same inputs give the same bits on every target. The first target to
// run records its results; the others must match them. (Running a single
// target, e.g. with --gtest_filter, compares it with itself only.)
TEST_P(ReduceTest, SameBitsOnEveryTarget) {
  static std::map<size_t, std::pair<uint32_t, uint32_t>>* first =
      new std::map<size_t, std::pair<uint32_t, uint32_t>>();
  static std::string* first_target = new std::string();
  const std::string target = hwy::TargetName(GetParam());
  if (first_target->empty()) *first_target = target;
  for (size_t n : {size_t{1}, size_t{15}, size_t{17}, size_t{63}, size_t{1001},
                   3 * kReduceChunk + 7, size_t{300007}}) {
    std::mt19937 rng(static_cast<uint32_t>(n));  // same data on every target
    Array a(n, 1), b(n, 1);
    FillRandom(a.data, n, rng, -1.0f, 1.0f);
    FillRandom(b.data, n, rng, -1.0f, 1.0f);
    const std::pair<uint32_t, uint32_t> bits(
        Bits(Sum(a.data, n, Pool())), Bits(Dot(a.data, b.data, n, Pool())));
    const auto inserted = first->emplace(n, bits);
    EXPECT_EQ(inserted.first->second.first, bits.first)
        << "Sum n=" << n << ": " << target << " differs from " << *first_target;
    EXPECT_EQ(inserted.first->second.second, bits.second)
        << "Dot n=" << n << ": " << target << " differs from " << *first_target;
  }
}

}  // namespace
}  // namespace simd
}  // namespace thaw
