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

namespace simd {

namespace {
// Column chunks of whole 64-column groups holding about kElementwiseChunk
// floats of x: the sums of a column never depend on the thread count.
size_t ColumnChunk(size_t rows) {
  return std::max<size_t>(64, kElementwiseChunk / rows / 64 * 64);
}
}  // namespace

void BatchNormStatistics(const float* x, size_t rows, size_t cols, float* mean,
                         float* var, ThreadPool& pool) {
  THAW_CHECK(rows > 0);
  internal::ForEachChunk(cols, ColumnChunk(rows), pool, [&](size_t j, size_t len) {
    HWY_DYNAMIC_DISPATCH(StatisticsImpl)(x + j, rows, cols, mean + j, var + j, len);
  });
}

void BatchNormApply(const float* x, size_t rows, size_t cols, const float* mean,
                    const float* scale, const float* shift, float* y, ThreadPool& pool) {
  if (cols == 0) return;
  const size_t rows_per_chunk = std::max<size_t>(1, kElementwiseChunk / cols);
  internal::ForEachChunk(rows, rows_per_chunk, pool, [&](size_t r, size_t count) {
    HWY_DYNAMIC_DISPATCH(ApplyImpl)(x + r * cols, count, cols, mean, scale, shift,
                                    y + r * cols);
  });
}

void BatchNormBackward(const float* x, const float* dy, size_t rows, size_t cols,
                       const float* mean, const float* invstd, const float* gamma,
                       float* dx, float* dgamma, float* dbeta, ThreadPool& pool) {
  THAW_CHECK(rows > 0);
  internal::ForEachChunk(cols, ColumnChunk(rows), pool, [&](size_t j, size_t len) {
    HWY_DYNAMIC_DISPATCH(BackwardImpl)(x + j, dy + j, rows, cols, mean + j, invstd + j,
                                       gamma + j, dx != nullptr ? dx + j : nullptr,
                                       dgamma + j, dbeta + j, len);
  });
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
