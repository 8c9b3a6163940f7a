// thaw/simd/batchnorm.cc — dispatch and threading for simd/batchnorm.h.
// Compiled once per Highway target (foreach_target).
#include "simd/batchnorm.h"

#include <cstddef>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/batchnorm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "simd/batchnorm-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

static void StatisticsImpl(const float* x, size_t rows, size_t stride, float* mean,
                           float* var, size_t len) {
  BatchNormStatisticsColumns(x, rows, stride, mean, var, len);
}
static void ApplyImpl(const float* x, size_t rows, size_t cols, const float* mean,
                      const float* scale, const float* shift, float* y) {
  BatchNormApplyRows(x, rows, cols, mean, scale, shift, y);
}
static void BackwardRowsImpl(const float* x, const float* dy, size_t rows, size_t cols,
                             const float* mean, const float* invstd, const float* a,
                             const float* b, const float* k, float* dx) {
  BatchNormBackwardRows(x, dy, rows, cols, mean, invstd, a, b, k, dx);
}
static void BackwardImpl(const float* x, const float* dy, size_t rows, size_t stride,
                         const float* mean, const float* invstd, const float* gamma,
                         float* dx, float* dgamma, float* dbeta, size_t len) {
  BatchNormBackwardColumns(x, dy, rows, stride, mean, invstd, gamma, dx, dgamma, dbeta,
                           len);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>

#include "platform/status.h"
#include "simd/elementwise.h"
#include "simd/offered_targets.h"
#include "simd/parallel_chunks.h"

namespace thaw {

HWY_EXPORT(StatisticsImpl);
HWY_EXPORT(ApplyImpl);
HWY_EXPORT(BackwardImpl);
HWY_EXPORT(BackwardRowsImpl);

namespace simd {

namespace {
// Row chunks of about kElementwiseChunk floats, for the passes by rows.
size_t RowChunk(size_t cols) { return std::max<size_t>(1, kElementwiseChunk / cols); }
}  // namespace

void BatchNormStatistics(const float* x, size_t rows, size_t cols, float* mean,
                         float* var, ThreadPool& pool) {
  THAW_CHECK(rows > 0);
  if (ColumnSumGroups(rows, cols) > 1) {
    // Few columns over many rows: both sums in ColumnSums' groups of rows.
    const float n = static_cast<float>(rows);
    ColumnSums(x, rows, cols, mean, pool);
    for (size_t j = 0; j < cols; ++j) mean[j] = mean[j] / n;
    ColumnSquareSums(x, rows, cols, mean, var, pool);
    for (size_t j = 0; j < cols; ++j) var[j] = var[j] / n;
    return;
  }
  internal::ForEachChunk(cols, internal::ColumnChunk(rows), pool, [&](size_t j, size_t len) {
    HWY_DYNAMIC_DISPATCH(StatisticsImpl)(x + j, rows, cols, mean + j, var + j, len);
  });
}

void BatchNormApply(const float* x, size_t rows, size_t cols, const float* mean,
                    const float* scale, const float* shift, float* y, ThreadPool& pool) {
  if (cols == 0) return;
  internal::ForEachChunk(rows, RowChunk(cols), pool, [&](size_t r, size_t count) {
    HWY_DYNAMIC_DISPATCH(ApplyImpl)(x + r * cols, count, cols, mean, scale, shift,
                                    y + r * cols);
  });
}

size_t BatchNormRowGroups(size_t rows, size_t cols) {
  if (cols > internal::ColumnChunk(rows)) return 1;  // column chunks split the work
  return std::min(kBatchNormMaxRowGroups, std::max<size_t>(1, rows / kBatchNormRowsPerGroup));
}

size_t BatchNormBackwardScratchFloats(size_t rows, size_t cols) {
  const size_t groups = BatchNormRowGroups(rows, cols);
  // The groups' partial sums, then (over them) a, b and k for dx.
  return groups == 1 ? 0 : std::max<size_t>(2 * (groups - 1), 3) * cols;
}

void BatchNormBackward(const float* x, const float* dy, size_t rows, size_t cols,
                       const float* mean, const float* invstd, const float* gamma,
                       float* dx, float* dgamma, float* dbeta, float* scratch,
                       ThreadPool& pool) {
  THAW_CHECK(rows > 0);
  const size_t groups = BatchNormRowGroups(rows, cols);
  if (groups == 1) {
    internal::ForEachChunk(cols, internal::ColumnChunk(rows), pool, [&](size_t j, size_t len) {
      HWY_DYNAMIC_DISPATCH(BackwardImpl)(x + j, dy + j, rows, cols, mean + j, invstd + j,
                                         gamma + j, dx != nullptr ? dx + j : nullptr,
                                         dgamma + j, dbeta + j, len);
    });
    return;
  }
  // Few columns (one chunk) over many rows: the sums in row groups, group 0
  // into dbeta and dgamma, the others into scratch, added in group order;
  // then dx row by row, from a, b and k per column.
  pool.ParallelFor(groups, [&](size_t g) {
    const size_t r0 = g * rows / groups, r1 = (g + 1) * rows / groups;
    float* sum_dy = g == 0 ? dbeta : scratch + 2 * (g - 1) * cols;
    float* sum_dy_xhat = g == 0 ? dgamma : sum_dy + cols;
    HWY_DYNAMIC_DISPATCH(BackwardImpl)(x + r0 * cols, dy + r0 * cols, r1 - r0, cols, mean,
                                       invstd, gamma, nullptr, sum_dy_xhat, sum_dy, cols);
  });
  for (size_t g = 1; g < groups; ++g) {
    const float* partial = scratch + 2 * (g - 1) * cols;
    Add(dbeta, partial, dbeta, cols, pool);
    Add(dgamma, partial + cols, dgamma, cols, pool);
  }
  if (dx == nullptr) return;
  float* const a = scratch;  // the partials are added: their floats are free
  float* const b = a + cols;
  float* const k = b + cols;
  const float n = static_cast<float>(rows);
  for (size_t j = 0; j < cols; ++j) {
    a[j] = dbeta[j] / n;
    b[j] = dgamma[j] / n;
    k[j] = gamma[j] * invstd[j];
  }
  internal::ForEachChunk(rows, RowChunk(cols), pool, [&](size_t r, size_t count) {
    HWY_DYNAMIC_DISPATCH(BackwardRowsImpl)(x + r * cols, dy + r * cols, count, cols, mean,
                                           invstd, a, b, k, dx + r * cols);
  });
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
