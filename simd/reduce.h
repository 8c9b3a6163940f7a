// thaw/simd/reduce.h — deterministic sums and dot products.
//
//   float total = thaw::simd::Sum(x, n, pool);
//
// The result is the same bits for any thread count and on every SIMD target
// (x86 and Arm alike), so a device and a workstation agree:
//  - x is cut into chunks whose size depends only on n (kReduceChunk floats, or
//    more when n exceeds kReduceChunk * kMaxReduceChunks);
//  - inside a chunk, 16 logical lanes accumulate (independent of the vector
//    width), their partial sums are combined in a fixed pairwise tree, then the
//    tail is added in order; products are not fused (no FMA);
//  - chunk results are added in chunk order on the calling thread.
#ifndef THAW_SIMD_REDUCE_H_
#define THAW_SIMD_REDUCE_H_

#include <cstddef>

#include "platform/threads.h"

namespace thaw {
namespace simd {

inline constexpr size_t kReduceChunk = 4096;
inline constexpr size_t kMaxReduceChunks = 256;  // partials live on the stack

// Returns sum(x[0..n)); 0 for n == 0.
float Sum(const float* x, size_t n, ThreadPool& pool);
// Returns sum(a[i] * b[i]); 0 for n == 0.
float Dot(const float* a, const float* b, size_t n, ThreadPool& pool);

// Returns how many of x[0..n) are NaN or infinite (exact for any thread
// count): the check an optimizer makes before it changes anything.
size_t CountNonFinite(const float* x, size_t n, ThreadPool& pool);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_REDUCE_H_
