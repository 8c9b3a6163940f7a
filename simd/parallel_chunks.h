// thaw/simd/parallel_chunks.h — internal to simd/: fixed-size chunks on a pool.
//
//   internal::ForEachChunk(n, kElementwiseChunk, pool,
//                          [&](size_t begin, size_t count) { ... });
//
// Chunk boundaries depend only on n and the chunk size, never on the pool, so
// a kernel whose per-chunk result depends only on the chunk's data gives the
// same bits for any thread count. Not part of the public API.
#ifndef THAW_SIMD_PARALLEL_CHUNKS_H_
#define THAW_SIMD_PARALLEL_CHUNKS_H_

#include <algorithm>
#include <cstddef>

#include "platform/threads.h"
#include "simd/elementwise.h"  // kElementwiseChunk

namespace thaw {
namespace simd {
namespace internal {

constexpr size_t DivCeil(size_t a, size_t b) { return (a + b - 1) / b; }

// Calls fn(begin, count) for the consecutive chunks [begin, begin + count)
// that cover [0, n), each chunk `chunk` elements except possibly the last.
// One chunk (n <= chunk) runs on the calling thread without touching the
// pool; n == 0 calls nothing. fn must be safe to run concurrently.
template <class Fn>
void ForEachChunk(size_t n, size_t chunk, ThreadPool& pool, const Fn& fn) {
  if (n == 0) return;
  if (n <= chunk) {
    fn(size_t{0}, n);
    return;
  }
  pool.ParallelFor(DivCeil(n, chunk), [&](size_t index) {
    const size_t begin = index * chunk;
    fn(begin, std::min(chunk, n - begin));
  });
}

// Columns per chunk of a reduction down `rows` rows (column sums,
// BatchNorm): about kElementwiseChunk floats of x, whole 64-column groups,
// at least one. It depends only on the shape, so a column's sum never
// depends on the thread count.
inline size_t ColumnChunk(size_t rows) {
  return std::max<size_t>(64, kElementwiseChunk / std::max<size_t>(rows, 1) / 64 * 64);
}

}  // namespace internal
}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_PARALLEL_CHUNKS_H_
