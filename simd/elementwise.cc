// thaw/simd/elementwise.cc — dispatch and threading for simd/elementwise.h.
//
// This file is compiled once per Highway target (foreach_target re-includes
// it); everything outside HWY_NAMESPACE and HWY_ONCE must stay declarations.
#include "simd/elementwise.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/elementwise.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "simd/elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

// One exported entry point per operation over one chunk. `static`: these
// names live in thaw::N_<TARGET>, which core/ code may share.
static void AddImpl(const float* a, const float* b, float* out, size_t n) {
  AddChunk(a, b, out, n);
}
static void SubImpl(const float* a, const float* b, float* out, size_t n) {
  SubChunk(a, b, out, n);
}
static void MulImpl(const float* a, const float* b, float* out, size_t n) {
  MulChunk(a, b, out, n);
}
static void AddScalarImpl(const float* x, float c, float* out, size_t n) {
  AddScalarChunk(x, c, out, n);
}
static void ScaleImpl(const float* x, float alpha, float* out, size_t n) {
  ScaleChunk(x, alpha, out, n);
}
static void ClampAbsImpl(const float* x, float limit, float* out, size_t n) {
  ClampAbsChunk(x, limit, out, n);
}
static void AxpyImpl(float alpha, const float* x, float* y, size_t n) {
  AxpyChunk(alpha, x, y, n);
}
static void MulAccImpl(const float* a, const float* b, float* out, size_t n) {
  MulAccChunk(a, b, out, n);
}
static void ReluForwardImpl(const float* x, float* y, size_t n) {
  ReluForwardChunk(x, y, n);
}
static void ReluBackwardImpl(const float* x, const float* dy, float* dx,
                             size_t n) {
  ReluBackwardChunk(x, dy, dx, n);
}
static void Relu6ForwardImpl(const float* x, float* y, size_t n) {
  Relu6ForwardChunk(x, y, n);
}
static void Relu6BackwardImpl(const float* y, const float* dy, float* dx, size_t n) {
  Relu6BackwardChunk(y, dy, dx, n);
}
// Columns [0, n) of rows of `stride` floats; rows > 0. Four vectors of
// columns at a time keep their sums in registers down all the rows (added
// into `out` row by row instead, each add waited on the previous row's
// store: a convolution's 16-channel bias gradient over 25,088 pixels took
// ~0.1 ms on AVX3); the last columns short of a vector one at a time.
static void ColumnSumsImpl(const float* x, size_t rows, size_t stride,
                           float* out, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  size_t j = 0;
  while (j + N <= n) {
    const size_t vectors = std::min<size_t>(4, (n - j) / N);
    const float* col = x + j;
    auto s0 = hn::LoadU(d, col), s1 = s0, s2 = s0, s3 = s0;
    if (vectors > 1) s1 = hn::LoadU(d, col + N);
    if (vectors > 2) s2 = hn::LoadU(d, col + 2 * N);
    if (vectors > 3) s3 = hn::LoadU(d, col + 3 * N);
    for (size_t r = 1; r < rows; ++r) {
      col += stride;
      s0 = hn::Add(s0, hn::LoadU(d, col));
      if (vectors > 1) s1 = hn::Add(s1, hn::LoadU(d, col + N));
      if (vectors > 2) s2 = hn::Add(s2, hn::LoadU(d, col + 2 * N));
      if (vectors > 3) s3 = hn::Add(s3, hn::LoadU(d, col + 3 * N));
    }
    hn::StoreU(s0, d, out + j);
    if (vectors > 1) hn::StoreU(s1, d, out + j + N);
    if (vectors > 2) hn::StoreU(s2, d, out + j + 2 * N);
    if (vectors > 3) hn::StoreU(s3, d, out + j + 3 * N);
    j += vectors * N;
  }
  for (; j < n; ++j) {
    float sum = x[j];
    for (size_t r = 1; r < rows; ++r) sum += x[r * stride + j];
    out[j] = sum;
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>

#include "simd/offered_targets.h"
#include "simd/parallel_chunks.h"

namespace thaw {

HWY_EXPORT(AddImpl);
HWY_EXPORT(SubImpl);
HWY_EXPORT(MulImpl);
HWY_EXPORT(AddScalarImpl);
HWY_EXPORT(ScaleImpl);
HWY_EXPORT(ClampAbsImpl);
HWY_EXPORT(AxpyImpl);
HWY_EXPORT(MulAccImpl);
HWY_EXPORT(ReluForwardImpl);
HWY_EXPORT(ReluBackwardImpl);
HWY_EXPORT(Relu6ForwardImpl);
HWY_EXPORT(Relu6BackwardImpl);
HWY_EXPORT(ColumnSumsImpl);

namespace simd {

// Each wrapper cuts [0, n) into kElementwiseChunk pieces (one piece, on the
// caller, when n is small) and dispatches once per piece: ~4 ns against ~2 us
// of work per 16K-float chunk.

void Add(const float* a, const float* b, float* out, size_t n,
         ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(AddImpl)(a + i, b + i, out + i, len);
  });
}

void Sub(const float* a, const float* b, float* out, size_t n,
         ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(SubImpl)(a + i, b + i, out + i, len);
  });
}

void Mul(const float* a, const float* b, float* out, size_t n,
         ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(MulImpl)(a + i, b + i, out + i, len);
  });
}

void AddScalar(const float* x, float c, float* out, size_t n,
               ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(AddScalarImpl)(x + i, c, out + i, len);
  });
}

void Scale(const float* x, float alpha, float* out, size_t n,
           ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(ScaleImpl)(x + i, alpha, out + i, len);
  });
}

void ClampAbs(const float* x, float limit, float* out, size_t n, ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(ClampAbsImpl)(x + i, limit, out + i, len);
  });
}

void Axpy(float alpha, const float* x, float* y, size_t n, ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(AxpyImpl)(alpha, x + i, y + i, len);
  });
}

void MulAcc(const float* a, const float* b, float* out, size_t n,
            ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(MulAccImpl)(a + i, b + i, out + i, len);
  });
}

void ReluForward(const float* x, float* y, size_t n, ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(ReluForwardImpl)(x + i, y + i, len);
  });
}

void ReluBackward(const float* x, const float* dy, float* dx, size_t n,
                  ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(ReluBackwardImpl)(x + i, dy + i, dx + i, len);
  });
}

void Relu6Forward(const float* x, float* y, size_t n, ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(Relu6ForwardImpl)(x + i, y + i, len);
  });
}

void Relu6Backward(const float* y, const float* dy, float* dx, size_t n, ThreadPool& pool) {
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t i, size_t len) {
    HWY_DYNAMIC_DISPATCH(Relu6BackwardImpl)(y + i, dy + i, dx + i, len);
  });
}

void ColumnSums(const float* x, size_t rows, size_t cols, float* out,
                ThreadPool& pool) {
  if (rows == 0) {
    std::memset(out, 0, cols * sizeof(float));
    return;
  }
  // About kElementwiseChunk floats of x per chunk, whole vectors of columns.
  const size_t chunk = std::max<size_t>(64, kElementwiseChunk / rows / 64 * 64);
  internal::ForEachChunk(cols, chunk, pool, [&](size_t j, size_t len) {
    HWY_DYNAMIC_DISPATCH(ColumnSumsImpl)(x + j, rows, cols, out + j, len);
  });
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
