// thaw/simd/spatial.cc — dispatch and threading for simd/spatial.h.
// Compiled once per Highway target (foreach_target).
#include "simd/spatial.h"

#include <cstddef>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/spatial.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "simd/epilogue-inl.h"
#include "simd/spatial-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

static void DirectConvForwardImpl(const float* x, const float* w, float* y,
                                  const simd::ConvShape& s, size_t q0, size_t q1,
                                  const simd::GemmEpilogue& epilogue) {
  const bool fused = EpilogueInRegisters(epilogue);
  DirectConvForwardRows(x, w, y, s, q0, q1, fused ? &epilogue : nullptr);
  if (!fused) ApplyEpilogue(epilogue, y, s.out_c, q0 * s.out_w, q1 * s.out_w, 0, s.out_c);
}
static void DirectConvWeightImpl(const float* x, const float* dy, float* dw,
                                 const simd::ConvShape& s, size_t p0, size_t p1) {
  DirectConvWeightPixels(x, dy, dw, s, p0, p1);
}
static void DepthwiseForwardImpl(const float* x, const float* w, float* y,
                                 const simd::ConvShape& s, size_t q0, size_t q1,
                                 const simd::GemmEpilogue& epilogue) {
  const bool fused = EpilogueInRegisters(epilogue);
  DepthwiseForwardRows(x, w, y, s, q0, q1, fused ? &epilogue : nullptr);
  if (!fused) ApplyEpilogue(epilogue, y, s.in_c, q0 * s.out_w, q1 * s.out_w, 0, s.in_c);
}
static void DepthwiseInputImpl(const float* w, const float* dy, float* dx,
                               const simd::ConvShape& s, size_t q0, size_t q1) {
  DepthwiseBackwardInputRows(w, dy, dx, s, q0, q1);
}
static void DepthwiseWeightImpl(const float* x, const float* dy, float* dw,
                                const simd::ConvShape& s, size_t j0, size_t j1) {
  DepthwiseBackwardWeightChannels(x, dy, dw, s, j0, j1);
}
static void MaxPoolForwardImpl(const float* x, float* y, const simd::ConvShape& s, size_t q0,
                               size_t q1) {
  MaxPoolForwardRows(x, y, s, q0, q1);
}
static void MaxPoolInputImpl(const float* x, const float* y, const float* dy, float* dx,
                             const simd::ConvShape& s, simd::PoolMask mask, size_t q0, size_t q1) {
  MaxPoolBackwardInputRows(x, y, dy, dx, s, mask, q0, q1);
}
static void MaxPoolDisjointImpl(const float* x, const float* y, const float* dy, float* dx,
                                const simd::ConvShape& s, simd::PoolMask mask, size_t q0, size_t q1) {
  MaxPoolBackwardDisjointRows(x, y, dy, dx, s, mask, q0, q1);
}
static void AvgPoolForwardImpl(const float* x, float* y, const simd::ConvShape& s, size_t q0,
                               size_t q1) {
  AvgPoolForwardRows(x, y, s, q0, q1);
}
static void AvgPoolInputImpl(const float* dy, float* dx, const simd::ConvShape& s, size_t q0,
                             size_t q1) {
  AvgPoolBackwardInputRows(dy, dx, s, q0, q1);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>

#include "platform/memory.h"
#include "simd/elementwise.h"
#include "simd/offered_targets.h"
#include "simd/parallel_chunks.h"

namespace thaw {

HWY_EXPORT(DirectConvForwardImpl);
HWY_EXPORT(DirectConvWeightImpl);
HWY_EXPORT(DepthwiseForwardImpl);
HWY_EXPORT(DepthwiseInputImpl);
HWY_EXPORT(DepthwiseWeightImpl);
HWY_EXPORT(MaxPoolForwardImpl);
HWY_EXPORT(MaxPoolInputImpl);
HWY_EXPORT(MaxPoolDisjointImpl);
HWY_EXPORT(AvgPoolForwardImpl);
HWY_EXPORT(AvgPoolInputImpl);

namespace simd {
namespace {

// Runs fn(q0, q1) over [0, rows) in chunks of about kElementwiseChunk
// multiply-adds (`work` per row); chunks depend only on the shape.
template <class Fn>
void ForRows(size_t rows, size_t work, ThreadPool& pool, const Fn& fn) {
  const size_t per_chunk = std::max<size_t>(1, kElementwiseChunk / std::max<size_t>(1, work));
  internal::ForEachChunk(rows, per_chunk, pool, [&](size_t q, size_t count) { fn(q, q + count); });
}

size_t Taps(const ConvShape& s) { return s.kernel_h * s.kernel_w; }

// The direct weight gradient's groups: at most 8, of at least 2048 output
// pixels, fixed by the shape.
size_t DirectGroups(const ConvShape& s) {
  return std::min<size_t>(8, internal::DivCeil(s.pixels(), 2048));
}
size_t Lines(size_t floats) { return AlignUp(floats * sizeof(float)) / sizeof(float); }

}  // namespace

void DirectConvForward(const float* x, const float* w, float* y, const ConvShape& s,
                       ThreadPool& pool, const GemmEpilogue& epilogue) {
  ForRows(s.batch * s.out_h, s.out_w * s.out_c * s.patch(), pool, [&](size_t q0, size_t q1) {
    HWY_DYNAMIC_DISPATCH(DirectConvForwardImpl)(x, w, y, s, q0, q1, epilogue);
  });
}

size_t DirectConvWeightScratchFloats(const ConvShape& s) {
  return (DirectGroups(s) - 1) * Lines(s.patch() * s.out_c);
}

void DirectConvWeightGradient(const float* x, const float* dy, float* dw, const ConvShape& s,
                              float* scratch, ThreadPool& pool) {
  const size_t groups = DirectGroups(s), pixels = s.pixels(), size = s.patch() * s.out_c;
  pool.ParallelFor(groups, [&](size_t g) {
    float* sum = g == 0 ? dw : scratch + (g - 1) * Lines(size);
    std::fill(sum, sum + size, 0.0f);
    HWY_DYNAMIC_DISPATCH(DirectConvWeightImpl)(x, dy, sum, s, g * pixels / groups,
                                               (g + 1) * pixels / groups);
  });
  for (size_t g = 1; g < groups; ++g) Add(dw, scratch + (g - 1) * Lines(size), dw, size, pool);
}

void DepthwiseForward(const float* x, const float* w, float* y, const ConvShape& s,
                      ThreadPool& pool, const GemmEpilogue& epilogue) {
  ForRows(s.batch * s.out_h, s.out_w * s.in_c * Taps(s), pool, [&](size_t q0, size_t q1) {
    HWY_DYNAMIC_DISPATCH(DepthwiseForwardImpl)(x, w, y, s, q0, q1, epilogue);
  });
}

void DepthwiseBackward(const float* x, const float* w, const float* dy, float* dx, float* dw,
                       const ConvShape& s, float* scratch, ThreadPool& pool) {
  if (dx != nullptr) {
    ForRows(s.batch * s.in_h, s.in_w * s.in_c * Taps(s), pool, [&](size_t q0, size_t q1) {
      HWY_DYNAMIC_DISPATCH(DepthwiseInputImpl)(w, dy, dx, s, q0, q1);
    });
  }
  if (dw == nullptr) return;
  const size_t groups = DepthwiseWeightGroups(s);
  if (groups == 1) {
    // Channel groups of 64: each channel's sum runs over every pixel in order.
    internal::ForEachChunk(s.in_c, kDepthwiseChannelChunk, pool, [&](size_t j, size_t len) {
      HWY_DYNAMIC_DISPATCH(DepthwiseWeightImpl)(x, dy, dw, s, j, j + len);
    });
    return;
  }
  // One chunk of channels: groups of images, group 0 into dw, the others
  // into scratch, added in group order.
  const size_t weights = s.kernel_h * s.kernel_w * s.in_c;
  pool.ParallelFor(groups, [&](size_t g) {
    const size_t n0 = g * s.batch / groups, n1 = (g + 1) * s.batch / groups;
    ConvShape part = s;
    part.batch = n1 - n0;
    HWY_DYNAMIC_DISPATCH(DepthwiseWeightImpl)(x + n0 * s.in_h * s.in_w * s.in_c,
                                              dy + n0 * s.out_h * s.out_w * s.in_c,
                                              g == 0 ? dw : scratch + (g - 1) * weights, part, 0,
                                              s.in_c);
  });
  for (size_t g = 1; g < groups; ++g) Add(dw, scratch + (g - 1) * weights, dw, weights, pool);
}

size_t DepthwiseWeightGroups(const ConvShape& s) {
  return s.in_c > kDepthwiseChannelChunk ? 1 : std::min(kDepthwiseMaxImageGroups, s.batch);
}

size_t DepthwiseBackwardScratchFloats(const ConvShape& s, bool dw) {
  return dw ? (DepthwiseWeightGroups(s) - 1) * s.kernel_h * s.kernel_w * s.in_c : 0;
}

void MaxPoolForward(const float* x, float* y, const ConvShape& s, ThreadPool& pool) {
  ForRows(s.batch * s.out_h, s.out_w * s.in_c * Taps(s), pool, [&](size_t q0, size_t q1) {
    HWY_DYNAMIC_DISPATCH(MaxPoolForwardImpl)(x, y, s, q0, q1);
  });
}

void MaxPoolBackward(const float* x, const float* y, const float* dy, float* dx,
                     const ConvShape& s, ThreadPool& pool, PoolMask mask) {
  if (s.stride_h >= s.kernel_h && s.stride_w >= s.kernel_w) {
    ForRows(s.batch * s.out_h, s.out_w * s.in_c * Taps(s), pool, [&](size_t q0, size_t q1) {
      HWY_DYNAMIC_DISPATCH(MaxPoolDisjointImpl)(x, y, dy, dx, s, mask, q0, q1);
    });
    return;
  }
  ForRows(s.batch * s.in_h, s.in_w * s.in_c * Taps(s) * Taps(s), pool, [&](size_t q0, size_t q1) {
    HWY_DYNAMIC_DISPATCH(MaxPoolInputImpl)(x, y, dy, dx, s, mask, q0, q1);
  });
}

void AvgPoolForward(const float* x, float* y, const ConvShape& s, ThreadPool& pool) {
  ForRows(s.batch * s.out_h, s.out_w * s.in_c * Taps(s), pool, [&](size_t q0, size_t q1) {
    HWY_DYNAMIC_DISPATCH(AvgPoolForwardImpl)(x, y, s, q0, q1);
  });
}

void AvgPoolBackward(const float* dy, float* dx, const ConvShape& s, ThreadPool& pool) {
  ForRows(s.batch * s.in_h, s.in_w * s.in_c * Taps(s), pool, [&](size_t q0, size_t q1) {
    HWY_DYNAMIC_DISPATCH(AvgPoolInputImpl)(dy, dx, s, q0, q1);
  });
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
