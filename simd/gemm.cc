// thaw/simd/gemm.cc — dispatch and row-block threading for simd/gemm.h.
// Compiled once per Highway target (foreach_target).
#include "simd/gemm.h"

#include <cstddef>

#include "platform/status.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/gemm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "simd/gemm-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

static void GemmRowsImpl(const float* a, size_t lda, bool trans_a,
                         const float* b, size_t ldb, bool trans_b, float* c,
                         size_t ldc, size_t row_begin, size_t row_end, size_t n,
                         size_t k, bool accumulate) {
  GemmRows(a, lda, trans_a, b, ldb, trans_b, c, ldc, row_begin, row_end, n, k,
           accumulate);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>

#include "simd/parallel_chunks.h"

namespace thaw {

HWY_EXPORT(GemmRowsImpl);

namespace simd {
namespace {

// Rows of C per task: a multiple of the 4-row register tile.
constexpr size_t kGemmRowBlock = 16;
// Below this many multiply-adds (~10 us at a few GFLOP/s even on the slowest
// vector target) the product runs on the calling thread: a task hand-off
// costs ~1 us. Blocks are the same either way, so the bits are too.
constexpr size_t kGemmSerialMacs = size_t{1} << 16;

}  // namespace

void Gemm(const float* a, size_t lda, bool trans_a, const float* b, size_t ldb,
          bool trans_b, float* c, size_t ldc, size_t m, size_t n, size_t k,
          bool accumulate, ThreadPool& pool) {
  if (m == 0 || n == 0) return;
  // Leading dimensions below a row's length mean overlapping rows: a bug.
  THAW_CHECK(ldc >= n);
  if (k == 0) {
    // op(A) * op(B) is an m x n zero matrix.
    if (!accumulate) {
      for (size_t i = 0; i < m; ++i)
        std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    }
    return;
  }
  THAW_CHECK(lda >= (trans_a ? m : k));
  THAW_CHECK(ldb >= (trans_b ? k : n));
  ThreadPool& run_on =
      m * n * k < kGemmSerialMacs ? ThreadPool::Serial() : pool;
  internal::ForEachChunk(m, kGemmRowBlock, run_on,
                         [&](size_t row_begin, size_t rows) {
                           HWY_DYNAMIC_DISPATCH(GemmRowsImpl)
                           (a, lda, trans_a, b, ldb, trans_b, c, ldc, row_begin,
                            row_begin + rows, n, k, accumulate);
                         });
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
