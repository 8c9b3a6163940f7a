// Gemm against the double-precision ScalarGemm on every compiled and
// supported Highway target: all four transpose combinations, padded leading
// dimensions, misaligned pointers, accumulate on and off, shapes that cross
// register-tile edges and cache blocks, guard floats around C and after the
// scratch, and the same bits for 1 and 2 threads.
#include <algorithm>
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
#include "platform/memory.h"
#include "platform/threads.h"
#include "simd/gemm.h"
#include "simd/gemm_plan.h"
#include "simd/scalar.h"
#include "simd/targets.h"
#include "tests/epilogue_util.h"

namespace thaw {
namespace simd {
namespace {

constexpr float kSentinel = -4321.0f;
// Guard floats before and after C's storage and after the scratch.
constexpr size_t kGuardFloats = 64;

ThreadPool& Pool() {
  static ThreadPool* pool = new ThreadPool(2);
  return *pool;
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

using Shape = std::tuple<size_t, size_t, size_t>;  // m, n, k

// The blocking constants these shapes are meant to cross (simd/gemm-inl.h):
// register tiles of MR = 4, 6 or 8 rows and NR = 3 to 32 columns; k blocks
// of at most 256 (300 needs two); row blocks of MC = 144 (300 needs three);
// R blocks of NC = 2048 columns (2100 needs two, in either orientation).
// With trans_a == false and trans_b == true, shapes with k >= 64 and n <= 16,
// or 64 <= k <= 1024 and m <= 64, take the dot-product path (tiles of 2-4 x 4 rows, k in
// vectors plus a tail), the others the packed one.
// Each of m, n, k takes every value of {1, 3, 7, 17, 63, 65, 129, 300} with
// the other two fixed at odd sizes, plus all-odd mixed shapes, the skinny
// shapes of a dense layer's training step, and very wide products.
std::vector<Shape> Shapes() {
  std::vector<Shape> shapes;
  for (size_t v : {1, 3, 7, 17, 63, 65, 129, 300}) {
    shapes.emplace_back(v, 17, 33);
    shapes.emplace_back(33, v, 17);
    shapes.emplace_back(17, 33, v);
  }
  shapes.emplace_back(1, 1, 1);
  shapes.emplace_back(1, 300, 1);
  shapes.emplace_back(300, 1, 300);
  shapes.emplace_back(63, 65, 129);
  shapes.emplace_back(129, 63, 65);
  shapes.emplace_back(65, 129, 63);
  shapes.emplace_back(7, 129, 300);
  shapes.emplace_back(300, 65, 17);
  shapes.emplace_back(129, 300, 65);
  shapes.emplace_back(300, 129, 300);
  // Dense layers with batch 32 / 64: forward, input and weight gradients.
  shapes.emplace_back(64, 10, 128);
  shapes.emplace_back(10, 128, 64);
  shapes.emplace_back(32, 128, 10);
  shapes.emplace_back(64, 128, 256);
  shapes.emplace_back(1200, 7, 129);  // as A B^T: dot path, split by rows
  // As A B^T, few columns over a long k: the dot path beyond k = 1024, on
  // two tasks (a CNN's classifier at a larger batch).
  shapes.emplace_back(130, 10, 1100);
  shapes.emplace_back(65, 16, 2100);
  // More than one R block of columns in either orientation.
  shapes.emplace_back(3, 2100, 5);
  shapes.emplace_back(2100, 3, 5);
  // A last panel of exactly one vector (4, 8 or 16 lanes, panels of 2 or 3
  // vectors), which the one-vector tile computes: a 16- or 48-channel
  // convolution on AVX3, 8 or 24 on AVX2.
  for (size_t v : {8, 16, 24, 48}) {
    shapes.emplace_back(37, v, 65);
    shapes.emplace_back(v, 300, 33);
  }
  shapes.emplace_back(300, 48, 300);
  // One row: a batch of one through a classifier, several k blocks; with B
  // transposed, up to 16 outputs take the dot-product path, more the
  // one-row path (outputs in groups of 4 and a partial group), as does a
  // short k.
  for (size_t n : {2, 10, 16, 33}) shapes.emplace_back(1, n, 1568);
  shapes.emplace_back(1, 24, 7);
  shapes.emplace_back(1, 2, 40);
  return shapes;
}

// A rows x cols matrix with leading dimension ld >= cols, `offset` floats past
// a 64-byte boundary, framed by kGuardFloats guard floats on each side.
// Padding columns and guards hold `pad`.
struct Matrix {
  Matrix(size_t rows, size_t cols, size_t ld, size_t offset, float pad)
      : rows(rows),
        cols(cols),
        ld(ld),
        size(2 * kGuardFloats + offset + rows * ld),
        mem(hwy::AllocateAligned<float>(size)),
        data(mem.get() + kGuardFloats + offset),
        pad(pad) {
    for (size_t i = 0; i < size; ++i) mem[i] = pad;
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
  // Padding (incl. guards) unchanged, outside rows x cols.
  bool PaddingIntact() const {
    const float* first = data;
    for (size_t i = 0; i < size; ++i) {
      const float* p = mem.get() + i;
      const ptrdiff_t off = p - first;
      const bool inside = off >= 0 && static_cast<size_t>(off) < rows * ld &&
                          static_cast<size_t>(off) % ld < cols;
      if (!inside && Bits(*p) != Bits(pad)) return false;
    }
    return true;
  }
  std::vector<float> Abs() const {
    std::vector<float> out(data, data + rows * ld);
    for (float& x : out) x = std::fabs(x);
    return out;
  }
  size_t rows, cols, ld, size;
  hwy::AlignedFreeUniquePtr<float[]> mem;
  float* data;
  float pad;
};

// Exactly the scratch the layout asks for (GemmScratchFloats with the
// transposes), 64-byte aligned, NaN (the kernel must not depend on its
// contents), then guard floats.
struct Scratch {
  Scratch(size_t m, size_t n, size_t k, bool trans_a, bool trans_b, int threads)
      : floats(GemmScratchFloats(m, n, k, trans_a, trans_b, threads)),
        mem(hwy::AllocateAligned<float>(floats + kGuardFloats)) {
    std::fill(mem.get(), mem.get() + floats,
              std::numeric_limits<float>::quiet_NaN());
    std::fill(mem.get() + floats, mem.get() + floats + kGuardFloats,
              kSentinel);
  }
  float* data() { return mem.get(); }
  bool GuardIntact() const {
    for (size_t i = 0; i < kGuardFloats; ++i) {
      if (Bits(mem[floats + i]) != Bits(kSentinel)) return false;
    }
    return true;
  }
  size_t floats;
  hwy::AlignedFreeUniquePtr<float[]> mem;
};

// One Gemm call checked against ScalarGemm. A and B padding holds NaN, so a
// kernel that reads outside op(A) / op(B) is caught; with accumulate off, C
// starts as NaN, so a kernel that reads C is caught; C's padding columns and
// the guards around C and after the scratch must keep their sentinel.
void CheckGemm(size_t m, size_t n, size_t k, bool trans_a, bool trans_b,
               bool accumulate, size_t offset, std::mt19937& rng,
               ThreadPool& pool) {
  std::ostringstream where;
  where << "m=" << m << " n=" << n << " k=" << k << " trans_a=" << trans_a
        << " trans_b=" << trans_b << " accumulate=" << accumulate
        << " offset=" << offset << " threads=" << pool.num_threads();
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
  if (!accumulate) std::fill(bound.begin(), bound.end(), 0.0f);
  ScalarGemm(abs_a.data(), a.ld, trans_a, abs_b.data(), b.ld, trans_b,
             bound.data(), c.ld, m, n, k, accumulate);

  Scratch scratch(m, n, k, trans_a, trans_b, pool.num_threads());
  Gemm(a.data, a.ld, trans_a, b.data, b.ld, trans_b, c.data, c.ld, m, n, k,
       accumulate, scratch.data(), pool);

  EXPECT_TRUE(scratch.GuardIntact()) << "wrote past the scratch";
  EXPECT_TRUE(c.PaddingIntact()) << "wrote outside C";
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
  }
}

void CheckAllShapes(bool trans_a, bool trans_b, unsigned seed) {
  std::mt19937 rng(seed);
  for (const auto& [m, n, k] : Shapes()) {
    for (bool accumulate : {false, true}) {
      CheckGemm(m, n, k, trans_a, trans_b, accumulate,
                accumulate == trans_a ? 1 : 0, rng, Pool());
    }
  }
}

HWY_BEFORE_TEST(GemmTest);

TEST_P(GemmTest, DispatchesToParamTarget) {
  EXPECT_EQ(GetParam(), DispatchedTarget());
}

TEST_P(GemmTest, MatchesReferenceNN) { CheckAllShapes(false, false, 1); }
TEST_P(GemmTest, MatchesReferenceTN) { CheckAllShapes(true, false, 2); }
TEST_P(GemmTest, MatchesReferenceNT) { CheckAllShapes(false, true, 3); }
TEST_P(GemmTest, MatchesReferenceTT) { CheckAllShapes(true, true, 4); }

// The same checks on one thread (the 2-thread pool splits the larger shapes
// into tasks; this runs every shape on the serial path).
TEST_P(GemmTest, MatchesReferenceOneThread) {
  ThreadPool one(1);
  std::mt19937 rng(6);
  for (const Shape& shape : {Shape{300, 65, 63}, Shape{65, 300, 129},
                             Shape{17, 129, 300}, Shape{129, 17, 7}}) {
    const auto& [m, n, k] = shape;
    for (int t = 0; t < 4; ++t) {
      CheckGemm(m, n, k, t & 1, t & 2, t == 1, t & 1, rng, one);
    }
  }
}

// A large enough for the packed path to pack its contiguous rows too (L of
// 2^20 floats or more, simd/gemm-inl.h): the 4 x 4 transposing pack.
TEST_P(GemmTest, MatchesReferenceLargeA) {
  std::mt19937 rng(7);
  CheckGemm(2100, 70, 500, false, false, false, 0, rng, Pool());
}

// One row of A gives the bits of the same row inside a product of 9 rows:
// a batch of one predicts what a larger batch does. With B transposed, 10
// outputs take the dot-product path for both; 64 outputs at k = 1100 take
// the packed path for 9 rows and the one-row path for one, as do k = 7 and
// k = 40 (the dot path needs k >= 64); as stored, the packed path.
TEST_P(GemmTest, OneRowHasTheBitsOfTheSameRowInAMatrix) {
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const Shape& shape : {Shape{9, 10, 1568}, Shape{9, 64, 1100}, Shape{9, 33, 7},
                             Shape{9, 130, 40}}) {
    const auto& [m, n, k] = shape;
    for (bool trans_b : {false, true}) {
      SCOPED_TRACE(testing::Message() << "n=" << n << " k=" << k << " trans_b=" << trans_b);
      std::vector<float> a(m * k), b(k * n), all(m * n), one(n);
      for (float& x : a) x = dist(rng);
      for (float& x : b) x = dist(rng);
      const size_t ldb = trans_b ? k : n;
      Scratch many(m, n, k, false, trans_b, Pool().num_threads());
      Gemm(a.data(), k, false, b.data(), ldb, trans_b, all.data(), n, m, n, k, false,
           many.data(), Pool());
      for (size_t r = 0; r < m; ++r) {
        Scratch single(1, n, k, false, trans_b, Pool().num_threads());
        Gemm(a.data() + r * k, k, false, b.data(), ldb, trans_b, one.data(), n, 1, n, k, false,
             single.data(), Pool());
        for (size_t j = 0; j < n; ++j) ASSERT_EQ(Bits(one[j]), Bits(all[r * n + j])) << r << ", " << j;
      }
    }
  }
}

// [1 2 3; 4 5 6] * [1 0; 0 1; 1 1] = [4 5; 10 11], then += the same again.
TEST_P(GemmTest, KnownValues) {
  const float a[] = {1, 2, 3, 4, 5, 6};
  const float b[] = {1, 0, 0, 1, 1, 1};
  float c[4] = {-1, -1, -1, -1};
  Scratch scratch(2, 2, 3, false, false, Pool().num_threads());
  Gemm(a, 3, false, b, 2, false, c, 2, 2, 2, 3, false, scratch.data(), Pool());
  EXPECT_EQ(c[0], 4.0f);
  EXPECT_EQ(c[1], 5.0f);
  EXPECT_EQ(c[2], 10.0f);
  EXPECT_EQ(c[3], 11.0f);
  // Same product with B given transposed (2 x 3 storage), accumulating.
  const float bt[] = {1, 0, 1, 0, 1, 1};
  Gemm(a, 3, false, bt, 3, true, c, 2, 2, 2, 3, true, scratch.data(), Pool());
  EXPECT_EQ(c[0], 8.0f);
  EXPECT_EQ(c[1], 10.0f);
  EXPECT_EQ(c[2], 20.0f);
  EXPECT_EQ(c[3], 22.0f);
  EXPECT_TRUE(scratch.GuardIntact());
}

// Tiles and k blocks are fixed by the shape, never by the pool, so 1 and 2
// threads give the same bits. Shapes big enough to be split, in all four
// transposes: by rows (M > MC, few panels), by columns from the queue (one
// block) and in fixed shares (two k blocks of unequal length at k = 257,
// 129 + 128, or L packed), a
// skinny training product, and (as A B^T) the dot-product path split by
// columns and by rows. The test checks that the packed shapes meet all
// three splits on the target at hand (simd/gemm_plan.h decides them).
TEST_P(GemmTest, SameBitsForOneAndTwoThreads) {
  ThreadPool one(1), two(2);
  std::mt19937 rng(5);
  const TargetDescription target = DispatchedTargetDescription();
  const gemm_plan::Tile tile{target.shape->gemm_rows, target.shape->gemm_vectors, target.lanes};
  bool by_rows = false, from_queue = false, fixed_shares = false;
  for (const Shape& shape :
       {Shape{300, 65, 63}, Shape{300, 33, 129}, Shape{65, 300, 129}, Shape{129, 129, 257},
        Shape{64, 256, 784}, Shape{1200, 7, 129}}) {
    const auto& [m, n, k] = shape;
    // Smaller products run on one thread (kSerialMacs in simd/gemm_plan.h).
    ASSERT_GE(m * n * k, size_t{1} << 20);
    for (bool trans_a : {false, true}) {
      for (bool trans_b : {false, true}) {
        const gemm_plan::Decision d = gemm_plan::Decide(tile, m, n, k, trans_a, trans_b, 2);
        by_rows = by_rows || d.split == gemm_plan::Split::kRows;
        from_queue = from_queue || (d.split == gemm_plan::Split::kCols && !d.fixed_shares);
        fixed_shares = fixed_shares || d.fixed_shares;
        const size_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
        Matrix a(trans_a ? k : m, lda, lda, 1, 0.0f);
        Matrix b(trans_b ? n : k, ldb, ldb, 0, 0.0f);
        a.FillRandom(rng);
        b.FillRandom(rng);
        std::vector<float> c1(m * n), c2(m * n);
        Scratch s1(m, n, k, trans_a, trans_b, one.num_threads()),
            s2(m, n, k, trans_a, trans_b, two.num_threads());
        Gemm(a.data, lda, trans_a, b.data, ldb, trans_b, c1.data(), n, m, n, k,
             false, s1.data(), one);
        Gemm(a.data, lda, trans_a, b.data, ldb, trans_b, c2.data(), n, m, n, k,
             false, s2.data(), two);
        for (size_t i = 0; i < m * n; ++i) {
          ASSERT_EQ(Bits(c1[i]), Bits(c2[i]))
              << "m=" << m << " n=" << n << " k=" << k
              << " trans_a=" << trans_a << " trans_b=" << trans_b
              << " i=" << i;
        }
      }
    }
  }
  EXPECT_TRUE(by_rows && from_queue && fixed_shares)
      << "rows " << by_rows << ", queue " << from_queue << ", fixed shares " << fixed_shares;
}

// The epilogue gives the same bits as the product followed by simd::Add of
// the bias to every row, simd::BatchNormApply (a folded map) and the
// activation kernel, on the dot path (split by
// columns and by rows) and the packed one (both orientations, several k
// blocks, row and column splits), accumulating or not, 1 and 2 threads, and
// leaves C's padding columns alone. Each (shape, layout, accumulate, threads)
// runs two of the 15 epilogues (5 activations x {nothing, bias, bias and an
// affine map}), taken in turn, so every shape meets all 15 and every epilogue
// meets several layouts; the full cross product was 5x the products for no
// path more (and minutes under qemu).
TEST_P(GemmTest, EpilogueMatchesSeparateKernels) {
  ThreadPool one(1);
  std::mt19937 rng(9);
  const GemmActivation activations[] = {GemmActivation::kNone, GemmActivation::kRelu,
                                        GemmActivation::kRelu6, GemmActivation::kSigmoid,
                                        GemmActivation::kTanh};
  constexpr int kActivations = 5, kExtras = 3, kEpiloguesPerProduct = 2;
  int next_epilogue = 0;
  for (const Shape& shape : {Shape{64, 256, 784}, Shape{1200, 7, 129}, Shape{300, 65, 300},
                             Shape{65, 300, 129}, Shape{10, 128, 64}, Shape{17, 33, 0}}) {
    const auto& [m, n, k] = shape;
    for (int t = 0; t < 4; ++t) {
      const bool trans_a = (t & 1) != 0, trans_b = (t & 2) != 0;
      const size_t lda = (trans_a ? m : k) + 1, ldb = (trans_b ? k : n) + 1;
      Matrix a(trans_a ? k : m, lda, lda, 1, 0.0f);
      Matrix b(trans_b ? n : k, ldb, ldb, 0, 0.0f);
      a.FillRandom(rng);
      b.FillRandom(rng);
      std::vector<float> bias(n), mean(n), scale(n), shift(n);
      for (std::vector<float>* v : {&bias, &mean, &scale, &shift}) {
        for (float& x : *v) x = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
      }
      // The product alone once per (accumulate, threads); then every
      // epilogue against it (the product is the expensive part, under
      // emulation above all).
      for (bool accumulate : {false, true}) {
        for (ThreadPool* pool : {&one, &Pool()}) {
          const size_t ldc = n + 3;
          Matrix start(m, n, ldc, 0, kSentinel), product(m, n, ldc, 0, kSentinel);
          start.FillRandom(rng);
          auto copy_rows = [&](Matrix& from, Matrix* to) {
            for (size_t i = 0; i < m; ++i) {
              std::memcpy(&to->at(i, 0), &from.at(i, 0), n * sizeof(float));
            }
          };
          copy_rows(start, &product);
          Scratch scratch(m, n, k, trans_a, trans_b, pool->num_threads());
          Gemm(a.data, lda, trans_a, b.data, ldb, trans_b, product.data, ldc, m, n, k,
               accumulate, scratch.data(), *pool);
          for (int turn = 0; turn < kEpiloguesPerProduct; ++turn) {
            const int epilogue_index = next_epilogue++ % (kActivations * kExtras);
            const GemmActivation activation = activations[epilogue_index % kActivations];
            // Nothing, a bias, a bias and an affine map.
            const int extras = epilogue_index / kActivations;
            const bool with_bias = extras >= 1, with_affine = extras == 2;
            SCOPED_TRACE(::testing::Message()
                         << "m=" << m << " n=" << n << " k=" << k << " trans_a=" << trans_a
                         << " trans_b=" << trans_b << " activation="
                         << static_cast<int>(activation) << " bias=" << with_bias
                         << " affine=" << with_affine
                         << " accumulate=" << accumulate
                         << " threads=" << pool->num_threads());
            Matrix expected(m, n, ldc, 0, kSentinel), c(m, n, ldc, 0, kSentinel);
            copy_rows(product, &expected);
            copy_rows(start, &c);
            GemmEpilogue epilogue;
            epilogue.bias = with_bias ? bias.data() : nullptr;
            if (with_affine) {
              epilogue.mean = mean.data();
              epilogue.scale = scale.data();
              epilogue.shift = shift.data();
            }
            epilogue.activation = activation;
            ApplyEpilogueByHand(epilogue, expected.data, m, n, ldc);
            Gemm(a.data, lda, trans_a, b.data, ldb, trans_b, c.data, ldc, m, n, k,
                 accumulate, scratch.data(), *pool, epilogue);
            ASSERT_TRUE(c.PaddingIntact());
            ASSERT_TRUE(scratch.GuardIntact());
            for (size_t i = 0; i < m; ++i) {
              for (size_t j = 0; j < n; ++j) {
                ASSERT_EQ(Bits(expected.at(i, j)), Bits(c.at(i, j))) << i << ", " << j;
              }
            }
          }
        }
      }
    }
  }
}

// The scratch query: nothing for empty products, the largest of the four
// layouts when the transposes are not given, and never less for more threads.
// (That each layout's own size suffices is checked by every CheckGemm.)
TEST_P(GemmTest, ScratchFloats) {
  EXPECT_EQ(GemmScratchFloats(0, 5, 5, 2), 0u);
  EXPECT_EQ(GemmScratchFloats(5, 0, 5, 2), 0u);
  EXPECT_EQ(GemmScratchFloats(5, 5, 0, 2), 0u);
  for (const auto& [m, n, k] : Shapes()) {
    EXPECT_GE(GemmScratchFloats(m, n, k, 2), GemmScratchFloats(m, n, k, 1));
    size_t largest = 0;
    for (int t = 0; t < 4; ++t) {
      const size_t layout = GemmScratchFloats(m, n, k, t & 1, t & 2, 2);
      EXPECT_GE(layout, GemmScratchFloats(m, n, k, t & 1, t & 2, 1));
      largest = std::max(largest, layout);
    }
    EXPECT_EQ(GemmScratchFloats(m, n, k, 2), largest);
  }
}

// k == 0: op(A) * op(B) is zero, so C becomes 0 (even from NaN) or is left
// alone when accumulating. m == 0 or n == 0 touch nothing. No scratch is
// needed. (Per target for k == 0 with an epilogue: see
// EpilogueMatchesSeparateKernels.)
TEST(GemmEmptyTest, EmptyDimensions) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  const float dummy[1] = {kNaN};
  std::vector<float> c(3 * 5, kNaN);
  for (size_t i = 0; i < 3; ++i) c[i * 5 + 4] = kSentinel;  // ldc = 5, n = 4
  Gemm(dummy, 1, false, dummy, 4, false, c.data(), 5, 3, 4, 0, false, nullptr,
       Pool());
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = 0; j < 4; ++j) EXPECT_EQ(Bits(c[i * 5 + j]), Bits(0.0f));
    EXPECT_EQ(Bits(c[i * 5 + 4]), Bits(kSentinel));
  }
  for (float& x : c) x = 2.5f;
  Gemm(dummy, 1, true, dummy, 1, true, c.data(), 5, 3, 4, 0, true, nullptr,
       Pool());
  for (float x : c) EXPECT_EQ(x, 2.5f);
  Gemm(dummy, 1, false, dummy, 1, false, c.data(), 5, 0, 4, 7, false, nullptr,
       Pool());
  Gemm(dummy, 1, false, dummy, 1, false, c.data(), 5, 3, 0, 7, false, nullptr,
       Pool());
  for (float x : c) EXPECT_EQ(x, 2.5f);
}

}  // namespace
}  // namespace simd
}  // namespace thaw
