// thaw/simd/activation.cc — dispatch and threading for simd/activation.h.
// Compiled once per Highway target (foreach_target).
#include "simd/activation.h"

#include <cstddef>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/activation.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "simd/activation-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

static void SigmoidForwardImpl(const float* z, float* y, size_t n) {
  SigmoidForwardChunk(z, y, n);
}
static void SigmoidBackwardImpl(const float* y, const float* dy, float* dz, size_t n) {
  SigmoidBackwardChunk(y, dy, dz, n);
}
static void TanhForwardImpl(const float* z, float* y, size_t n) { TanhForwardChunk(z, y, n); }
static void TanhBackwardImpl(const float* y, const float* dy, float* dz, size_t n) {
  TanhBackwardChunk(y, dy, dz, n);
}
static void SoftmaxForwardImpl(const float* z, float* y, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; ++r) SoftmaxRow(z + r * cols, y + r * cols, cols);
}
static void SoftmaxBackwardImpl(const float* y, const float* dy, float* dz,
                                size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; ++r) {
    SoftmaxBackwardRow(y + r * cols, dy + r * cols, dz + r * cols, cols);
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "simd/elementwise.h"
#include "simd/offered_targets.h"
#include "simd/parallel_chunks.h"

namespace thaw {

HWY_EXPORT(SigmoidForwardImpl);
HWY_EXPORT(SigmoidBackwardImpl);
HWY_EXPORT(TanhForwardImpl);
HWY_EXPORT(TanhBackwardImpl);
HWY_EXPORT(SoftmaxForwardImpl);
HWY_EXPORT(SoftmaxBackwardImpl);

namespace simd {

void SigmoidForward(const float* z, float* y, size_t n, ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(SigmoidForwardImpl)(z + i, y + i, len);
  });
}

void SigmoidBackward(const float* y, const float* dy, float* dz, size_t n,
                     ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(SigmoidBackwardImpl)(y + i, dy + i, dz + i, len);
  });
}

void TanhForward(const float* z, float* y, size_t n, ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(TanhForwardImpl)(z + i, y + i, len);
  });
}

void TanhBackward(const float* y, const float* dy, float* dz, size_t n,
                  ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(TanhBackwardImpl)(y + i, dy + i, dz + i, len);
  });
}

// Rows are split into blocks of about kElementwiseChunk floats; a row is
// always computed whole by one thread.
static size_t RowsPerTask(size_t cols) {
  return cols >= kElementwiseChunk ? 1 : kElementwiseChunk / (cols == 0 ? 1 : cols);
}

void SoftmaxForward(const float* z, float* y, size_t rows, size_t cols,
                    ThreadPool& pool) {
  if (cols == 0) return;
  internal::ForEachChunk(rows, RowsPerTask(cols), pool, [&](size_t r, size_t count) {
    HWY_DYNAMIC_DISPATCH(SoftmaxForwardImpl)(z + r * cols, y + r * cols, count, cols);
  });
}

void SoftmaxBackward(const float* y, const float* dy, float* dz, size_t rows,
                     size_t cols, ThreadPool& pool) {
  if (cols == 0) return;
  internal::ForEachChunk(rows, RowsPerTask(cols), pool, [&](size_t r, size_t count) {
    HWY_DYNAMIC_DISPATCH(SoftmaxBackwardImpl)(y + r * cols, dy + r * cols,
                                              dz + r * cols, count, cols);
  });
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
