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

// Columns [0, n) of rows of `stride` floats over up to four groups of rows
// [bounds[g], bounds[g + 1]), g < groups (lengths differing by at most one):
// group g's sums into sums + g * n, each in row order, of x (kSquares
// false) or of (x - centre)^2 (true). The groups' chains run side by side (a
// chain per group and vector of columns), so one thread does not wait on
// each add; chains past `groups` repeat the last group and are not stored.
template <bool kSquares>
HWY_INLINE void ColumnGroupSums(const float* x, size_t stride, size_t n, const size_t* bounds,
                                size_t groups, const float* centre, float* sums) {
  auto scalar_term = [&](float v, size_t j) {
    const float delta = kSquares ? v - centre[j] : v;
    return kSquares ? delta * delta : v;
  };
  // Group g's sums of columns [j0, n), one column at a time.
  auto scalar_sums = [&](size_t g, size_t j0) {
    const float* first = x + bounds[g] * stride;
    for (size_t j = j0; j < n; ++j) {
      float sum = scalar_term(first[j], j);
      for (size_t r = 1; r < bounds[g + 1] - bounds[g]; ++r) {
        sum += scalar_term(first[r * stride + j], j);
      }
      sums[g * n + j] = sum;
    }
  };
#if THAW_COMPACT_KERNELS
  // The firmware profile (size over speed): one group and one column at a
  // time, the same sums.
  for (size_t g = 0; g < groups; ++g) scalar_sums(g, 0);
#else
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const float* p[4];
  size_t shortest = bounds[1] - bounds[0];
  for (size_t g = 0; g < 4; ++g) {
    const size_t h = std::min(g, groups - 1);
    p[g] = x + bounds[h] * stride;
    shortest = std::min(shortest, bounds[h + 1] - bounds[h]);
  }
  size_t j = 0;
  for (; j + N <= n; j += N) {
    const auto c = kSquares ? hn::LoadU(d, centre + j) : hn::Zero(d);
    auto term = [&](const float* at) HWY_ATTR {
      const auto v = hn::LoadU(d, at);
      if (!kSquares) return v;
      const auto delta = hn::Sub(v, c);
      return hn::Mul(delta, delta);
    };
    auto s0 = term(p[0] + j), s1 = term(p[1] + j), s2 = term(p[2] + j), s3 = term(p[3] + j);
    for (size_t r = 1; r < shortest; ++r) {
      const size_t at = r * stride + j;
      s0 = hn::Add(s0, term(p[0] + at));
      s1 = hn::Add(s1, term(p[1] + at));
      s2 = hn::Add(s2, term(p[2] + at));
      s3 = hn::Add(s3, term(p[3] + at));
    }
    auto finish = [&](size_t g, decltype(s0) sum) HWY_ATTR {
      if (g >= groups) return;
      if (bounds[g + 1] - bounds[g] > shortest) {
        sum = hn::Add(sum, term(p[g] + shortest * stride + j));
      }
      hn::StoreU(sum, d, sums + g * n + j);
    };
    finish(0, s0);
    finish(1, s1);
    finish(2, s2);
    finish(3, s3);
  }
  for (size_t g = 0; g < groups; ++g) scalar_sums(g, j);  // the last columns short of a vector
#endif
}
static void ColumnGroupSumsImpl(const float* x, size_t stride, size_t n, const size_t* bounds,
                                size_t groups, float* sums) {
  ColumnGroupSums<false>(x, stride, n, bounds, groups, nullptr, sums);
}
static void ColumnGroupSquaresImpl(const float* x, size_t stride, size_t n,
                                   const size_t* bounds, size_t groups, const float* centre,
                                   float* sums) {
  ColumnGroupSums<true>(x, stride, n, bounds, groups, centre, sums);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>

#include "platform/status.h"
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
HWY_EXPORT(ColumnGroupSumsImpl);
HWY_EXPORT(ColumnGroupSquaresImpl);

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

namespace {

// Rows per column-sum group, at least.
constexpr size_t kColumnSumGroupRows = 256;

}  // namespace

size_t ColumnSumGroups(size_t rows, size_t cols) {
  if (cols > internal::ColumnChunk(rows)) return 1;  // several chunks of columns share the work
  return std::min(kColumnSumMaxGroups, std::max<size_t>(1, rows / kColumnSumGroupRows));
}

namespace {

// The sums of `groups` (> 1) groups of rows, four groups to a task, with
// group(bounds, count, sums) writing `count` groups' sums of `cols` (at most
// 64) columns; into `partial` on the stack, then added in group order.
template <class Group>
void SumGroups(size_t rows, size_t cols, size_t groups, float* out, ThreadPool& pool,
               const Group& group) {
  THAW_CHECK(cols <= 64 && groups <= kColumnSumMaxGroups);
  alignas(64) float partial[kColumnSumMaxGroups * 64];
  size_t bounds[kColumnSumMaxGroups + 1];
  for (size_t g = 0; g <= groups; ++g) bounds[g] = g * rows / groups;
  pool.ParallelFor(internal::DivCeil(groups, 4), [&](size_t task) {
    const size_t g0 = 4 * task;
    group(bounds + g0, std::min<size_t>(4, groups - g0), partial + g0 * cols);
  });
  std::memcpy(out, partial, cols * sizeof(float));
  for (size_t g = 1; g < groups; ++g) {
    Add(out, partial + g * cols, out, cols, ThreadPool::Serial());
  }
}

}  // namespace

void ColumnSums(const float* x, size_t rows, size_t cols, float* out,
                ThreadPool& pool) {
  if (rows == 0) {
    std::memset(out, 0, cols * sizeof(float));
    return;
  }
  const size_t groups = ColumnSumGroups(rows, cols);
  if (groups == 1) {
    internal::ForEachChunk(cols, internal::ColumnChunk(rows), pool, [&](size_t j, size_t len) {
      HWY_DYNAMIC_DISPATCH(ColumnSumsImpl)(x + j, rows, cols, out + j, len);
    });
    return;
  }
  SumGroups(rows, cols, groups, out, pool, [&](const size_t* bounds, size_t count, float* sums) {
    HWY_DYNAMIC_DISPATCH(ColumnGroupSumsImpl)(x, cols, cols, bounds, count, sums);
  });
}

void ColumnSquareSums(const float* x, size_t rows, size_t cols, const float* centre, float* out,
                      ThreadPool& pool) {
  if (rows == 0) {
    std::memset(out, 0, cols * sizeof(float));
    return;
  }
  const size_t groups = ColumnSumGroups(rows, cols);
  if (groups == 1) {  // one chain per column, on the caller
    const size_t bounds[2] = {0, rows};
    HWY_DYNAMIC_DISPATCH(ColumnGroupSquaresImpl)(x, cols, cols, bounds, 1, centre, out);
    return;
  }
  SumGroups(rows, cols, groups, out, pool, [&](const size_t* bounds, size_t count, float* sums) {
    HWY_DYNAMIC_DISPATCH(ColumnGroupSquaresImpl)(x, cols, cols, bounds, count, centre, sums);
  });
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
