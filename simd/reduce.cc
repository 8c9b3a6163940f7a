// thaw/simd/reduce.cc — dispatch and deterministic chunking for
// simd/reduce.h. Compiled once per Highway target (foreach_target).
#include "simd/reduce.h"

#include <cmath>
#include <cstddef>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/reduce.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "simd/reduce-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

static float SumImpl(const float* x, size_t n) { return SumChunk(x, n); }
static float DotImpl(const float* a, const float* b, size_t n) {
  return DotChunk(a, b, n);
}
static size_t CountNonFiniteImpl(const float* x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  // Fast pass: x * 0 is (+-)0 for finite x and NaN for NaN or Inf, and a NaN
  // stays in a sum; one multiply-add per vector into 8 independent sums (the
  // multiply-add's latency), so it runs at the speed of the loads. Only a
  // chunk that has one is counted element by element.
  const auto zero = hn::Zero(d);
  auto a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero;
  size_t i = 0;
  for (; i + 8 * N <= n; i += 8 * N) {
    a0 = hn::MulAdd(hn::LoadU(d, x + i), zero, a0);
    a1 = hn::MulAdd(hn::LoadU(d, x + i + N), zero, a1);
    a2 = hn::MulAdd(hn::LoadU(d, x + i + 2 * N), zero, a2);
    a3 = hn::MulAdd(hn::LoadU(d, x + i + 3 * N), zero, a3);
    a4 = hn::MulAdd(hn::LoadU(d, x + i + 4 * N), zero, a4);
    a5 = hn::MulAdd(hn::LoadU(d, x + i + 5 * N), zero, a5);
    a6 = hn::MulAdd(hn::LoadU(d, x + i + 6 * N), zero, a6);
    a7 = hn::MulAdd(hn::LoadU(d, x + i + 7 * N), zero, a7);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(hn::LoadU(d, x + i), zero, a0);
  const auto sum = hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)),
                           hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)));
  bool any = !hn::AllTrue(d, hn::Eq(sum, zero));
  for (size_t j = i; j < n; ++j) any = any || !std::isfinite(x[j]);
  if (!any) return 0;
  size_t count = 0;
  for (size_t j = 0; j < n; ++j) count += std::isfinite(x[j]) ? 0 : 1;
  return count;
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <atomic>

#include "simd/elementwise.h"  // kElementwiseChunk
#include "simd/offered_targets.h"
#include "simd/parallel_chunks.h"

namespace thaw {

HWY_EXPORT(SumImpl);
HWY_EXPORT(DotImpl);
HWY_EXPORT(CountNonFiniteImpl);

namespace simd {
namespace {

// The chunk size is part of the numerical contract: it depends only on n.
// Up to kReduceChunk * kMaxReduceChunks (1M) floats, chunks are kReduceChunk;
// beyond, they grow to ceil(n / kMaxReduceChunks) rounded up to a multiple of
// 16 (whole logical-lane rows), so there are never more than kMaxReduceChunks.
size_t ReduceChunkSize(size_t n) {
  if (n <= kReduceChunk * kMaxReduceChunks) return kReduceChunk;
  return internal::DivCeil(internal::DivCeil(n, kMaxReduceChunks), 16) * 16;
}

// Runs chunk_sum(begin, count) for every chunk of [0, n) on the pool, then
// adds the partial sums in chunk order on the calling thread.
template <class ChunkSum>
float ReduceChunks(size_t n, ThreadPool& pool, const ChunkSum& chunk_sum) {
  if (n == 0) return 0.0f;
  const size_t chunk = ReduceChunkSize(n);
  float partials[kMaxReduceChunks];
  internal::ForEachChunk(n, chunk, pool, [&](size_t begin, size_t count) {
    partials[begin / chunk] = chunk_sum(begin, count);
  });
  const size_t num_chunks = internal::DivCeil(n, chunk);
  float total = partials[0];
  for (size_t c = 1; c < num_chunks; ++c) total += partials[c];
  return total;
}

}  // namespace

float Sum(const float* x, size_t n, ThreadPool& pool) {
  return ReduceChunks(n, pool, [&](size_t begin, size_t count) {
    return HWY_DYNAMIC_DISPATCH(SumImpl)(x + begin, count);
  });
}

float Dot(const float* a, const float* b, size_t n, ThreadPool& pool) {
  return ReduceChunks(n, pool, [&](size_t begin, size_t count) {
    return HWY_DYNAMIC_DISPATCH(DotImpl)(a + begin, b + begin, count);
  });
}

size_t CountNonFinite(const float* x, size_t n, ThreadPool& pool) {
  std::atomic<size_t> total{0};
  internal::ForEachChunk(n, kElementwiseChunk, pool, [&](size_t begin, size_t count) {
    total.fetch_add(HWY_DYNAMIC_DISPATCH(CountNonFiniteImpl)(x + begin, count),
                    std::memory_order_relaxed);
  });
  return total.load();
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
