// The GEMM code with AVX3's tile shapes (8 x 2 vectors, 4-row dot tiles),
// compiled and run for every target this machine has. A build machine
// without AVX-512 cannot run the AVX3 target itself; this checks that the
// shape-generic code (8 accumulator rows, 8-row packed panels, 4-row dot
// tiles, MR not a multiple of 6) is right, against ScalarGemm, so that
// AVX3 differs from the tested targets only in its lane count, which the
// SCALAR (1), SSE4 (4) and AVX2 (8) runs already vary. The packing routines
// are checked here directly, element by element, in that shape.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "platform/threads.h"
#include "simd/scalar.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tests/simd_gemm_tiles_test.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"

// A second copy of the kernels, in its own namespace, with AVX3's shapes.
#define THAW_GEMM_NAMESPACE gemm_avx3_tiles
#define THAW_GEMM_TEST_MR 8
#define THAW_GEMM_TEST_NV 2
#define THAW_GEMM_TEST_DR 4
#include "simd/gemm-inl.h"

#include "hwy/aligned_allocator.h"
#include "hwy/tests/hwy_gtest.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

// One product against ScalarGemm, with padded leading dimensions, NaN in
// the padding of A and B and in C when overwriting, a sentinel in C's
// padding and guard floats after the scratch.
static void CheckTiles(size_t m, size_t n, size_t k, bool trans_a,
                       bool trans_b, bool accumulate, ThreadPool& pool,
                       std::mt19937& rng) {
  namespace g = gemm_avx3_tiles;
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  const float kSentinel = -4321.0f;
  const size_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
  const size_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
  const size_t lda = a_cols + 3, ldb = b_cols + 1, ldc = n + 2;
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(a_rows * lda, kNaN), b(b_rows * ldb, kNaN);
  std::vector<float> c(m * ldc, kSentinel);
  std::vector<float> abs_a(a.size(), 0.0f), abs_b(b.size(), 0.0f);
  for (size_t i = 0; i < a_rows; ++i) {
    for (size_t j = 0; j < a_cols; ++j) {
      a[i * lda + j] = dist(rng);
      abs_a[i * lda + j] = std::fabs(a[i * lda + j]);
    }
  }
  for (size_t i = 0; i < b_rows; ++i) {
    for (size_t j = 0; j < b_cols; ++j) {
      b[i * ldb + j] = dist(rng);
      abs_b[i * ldb + j] = std::fabs(b[i * ldb + j]);
    }
  }
  std::vector<float> bound(c.size(), 0.0f);
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      c[i * ldc + j] = accumulate ? dist(rng) : kNaN;
      bound[i * ldc + j] = accumulate ? std::fabs(c[i * ldc + j]) : 0.0f;
    }
  }
  std::vector<float> expected = c;
  simd::ScalarGemm(a.data(), lda, trans_a, b.data(), ldb, trans_b,
                   expected.data(), ldc, m, n, k, accumulate);
  simd::ScalarGemm(abs_a.data(), lda, trans_a, abs_b.data(), ldb, trans_b,
                   bound.data(), ldc, m, n, k, accumulate);

  const size_t scratch_floats =
      g::GemmScratchFloatsT(m, n, k, pool.num_threads());
  constexpr size_t kGuard = 64;
  auto scratch = hwy::AllocateAligned<float>(scratch_floats + kGuard);
  for (size_t i = 0; i < scratch_floats + kGuard; ++i) {
    scratch[i] = i < scratch_floats ? kNaN : kSentinel;
  }
  g::GemmT(a.data(), lda, trans_a, b.data(), ldb, trans_b, c.data(), ldc, m,
           n, k, accumulate, scratch.get(), pool, simd::GemmEpilogue());

  for (size_t i = 0; i < kGuard; ++i) {
    EXPECT_EQ(scratch[scratch_floats + i], kSentinel) << "wrote past the scratch";
  }
  size_t failures = 0;
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < ldc; ++j) {
      const float got = c[i * ldc + j];
      bool ok;
      if (j >= n) {
        ok = got == kSentinel;
      } else {
        const float tol = static_cast<float>(k + 2) * FLT_EPSILON *
                          bound[i * ldc + j];
        ok = std::fabs(got - expected[i * ldc + j]) <= tol;
      }
      if (!ok && ++failures <= 5) {
        ADD_FAILURE() << "m=" << m << " n=" << n << " k=" << k
                      << " trans_a=" << trans_a << " trans_b=" << trans_b
                      << " accumulate=" << accumulate
                      << " threads=" << pool.num_threads() << ": C(" << i
                      << ", " << j << ") = " << got << ", expected "
                      << (j < n ? expected[i * ldc + j] : kSentinel);
      }
    }
  }
}

// PackLeft / PackRight against the panel layout they document, for every
// stride pattern (rows or columns contiguous), partial panels and tiles,
// and a k offset; the padding must be zero.
HWY_NOINLINE void TestAvx3TilePacking() {
  namespace g = gemm_avx3_tiles;
  const size_t nr = g::TileCols(), mr = g::kMR;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (size_t rows : {size_t{1}, mr - 1, mr, 2 * mr + 3, size_t{37}}) {
    for (size_t kc : {size_t{1}, size_t{3}, size_t{4}, size_t{9}, size_t{33}}) {
      for (bool contiguous_k : {false, true}) {
        // Source: rows x (kc + 2) values at k offset 2, both layouts.
        const size_t k0 = 2, depth = kc + k0, pad = 3;
        const size_t ld = (contiguous_k ? depth : rows) + pad;
        std::vector<float> src((contiguous_k ? rows : depth) * ld);
        for (float& x : src) x = dist(rng);
        auto at = [&](size_t i, size_t p) {
          return contiguous_k ? src[i * ld + p] : src[p * ld + i];
        };
        g::Operands o{};
        // As L: L(i, p) = l[i * l_rs + p * l_ks].
        o.l = src.data();
        o.l_rs = contiguous_k ? ld : 1;
        o.l_ks = contiguous_k ? 1 : ld;
        const size_t panels = (rows + mr - 1) / mr;
        // Packed panels are 64-byte aligned in the scratch; so here.
        auto left = hwy::AllocateAligned<float>(panels * kc * mr);
        std::fill(left.get(), left.get() + panels * kc * mr, -1.0f);
        g::PackLeft(o, k0, kc, 0, rows, left.get());
        for (size_t q = 0; q < panels; ++q) {
          for (size_t p = 0; p < kc; ++p) {
            for (size_t r = 0; r < mr; ++r) {
              const size_t i = q * mr + r;
              const float want = i < rows ? at(i, k0 + p) : 0.0f;
              EXPECT_EQ(left[(q * kc + p) * mr + r], want)
                  << "PackLeft rows=" << rows << " kc=" << kc
                  << " contiguous_k=" << contiguous_k << " i=" << i
                  << " p=" << p;
            }
          }
        }
        // As R, the same storage read with rows as columns: R(p, j) =
        // r[p * r_ks + j * r_js].
        o.r = src.data();
        o.r_ks = contiguous_k ? 1 : ld;
        o.r_js = contiguous_k ? ld : 1;
        const size_t rpanels = (rows + nr - 1) / nr;
        auto right = hwy::AllocateAligned<float>(rpanels * kc * nr);
        std::fill(right.get(), right.get() + rpanels * kc * nr, -1.0f);
        g::PackRight(o, k0, kc, 0, rows, right.get());
        for (size_t q = 0; q < rpanels; ++q) {
          for (size_t p = 0; p < kc; ++p) {
            for (size_t c = 0; c < nr; ++c) {
              const size_t j = q * nr + c;
              const float want = j < rows ? at(j, k0 + p) : 0.0f;
              EXPECT_EQ(right[(q * kc + p) * nr + c], want)
                  << "PackRight cols=" << rows << " kc=" << kc
                  << " contiguous_k=" << contiguous_k << " j=" << j
                  << " p=" << p;
            }
          }
        }
      }
    }
  }
}

HWY_NOINLINE void TestAvx3TileShapes() {
  static ThreadPool one(1), two(2);
  std::mt19937 rng(7);
  struct Shape {
    size_t m, n, k;
  };
  // Tile edges for 8 rows, k blocks (300), row blocks (MC = 144), R blocks
  // (2100 columns), and A B^T shapes that take the dot path (k >= 64 with
  // m <= 64 or n <= 16: 4-row tiles plus 1-3 leftover rows).
  const Shape shapes[] = {{1, 1, 1},     {7, 33, 17},    {9, 17, 65},
                          {17, 65, 300}, {300, 17, 65},  {65, 129, 63},
                          {129, 63, 65}, {3, 2100, 5},   {2100, 3, 5},
                          {64, 10, 128}, {33, 17, 65},   {63, 129, 257},
                          {1200, 7, 129}, {300, 129, 33},
                          // a last panel of one vector (8 lanes, NR = 16)
                          {37, 24, 65},  {300, 40, 300}};
  for (const Shape& s : shapes) {
    for (int t = 0; t < 4; ++t) {
      const bool trans_a = (t & 1) != 0, trans_b = (t & 2) != 0;
      CheckTiles(s.m, s.n, s.k, trans_a, trans_b, t == 1 || t == 2, two, rng);
    }
    CheckTiles(s.m, s.n, s.k, false, true, true, one, rng);
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thaw {
HWY_BEFORE_TEST(GemmTilesTest);
HWY_EXPORT_AND_TEST_P(GemmTilesTest, TestAvx3TileShapes);
HWY_EXPORT_AND_TEST_P(GemmTilesTest, TestAvx3TilePacking);
}  // namespace thaw
#endif
