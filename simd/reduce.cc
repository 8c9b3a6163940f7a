// thaw/simd/reduce.cc — dispatch and deterministic chunking for
// simd/reduce.h. Compiled once per Highway target (foreach_target).
#include "simd/reduce.h"

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

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "simd/parallel_chunks.h"

namespace thaw {

HWY_EXPORT(SumImpl);
HWY_EXPORT(DotImpl);

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

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
