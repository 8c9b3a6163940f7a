// thaw/simd/gemm.h — single-precision matrix products, row-major.
//
//   // Y[batch x out] = X[batch x in] · W[out x in]^T
//   std::vector<float, ...> scratch(GemmScratchFloats(batch, out, in,
//                                                     pool.num_threads()));
//   thaw::simd::Gemm(x, in, false, w, in, true, y, out, batch, out, in,
//                    /*accumulate=*/false, scratch.data(), pool);
//
// C[m x n] (+)= op(A) · op(B), where op(A) is m x k and op(B) is k x n:
//   trans_a == false: A is m x k, element (i, p) at a[i * lda + p];
//   trans_a == true:  A is k x m, element (i, p) at a[p * lda + i];
//   trans_b == false: B is k x n, element (p, j) at b[p * ldb + j];
//   trans_b == true:  B is n x k, element (p, j) at b[j * ldb + p].
// accumulate == false overwrites C without reading it (C may hold NaN);
// true adds to it. C must not overlap A, B or the scratch.
//
// Memory: Gemm allocates nothing. The packing buffers come from the caller:
// `scratch` must be 64-byte aligned and hold GemmScratchFloats(m, n, k,
// pool.num_threads()) floats (any transposes); its contents are clobbered
// and need no initialisation. The size depends on the SIMD target the
// kernels dispatch to, so query it under the target that will run Gemm.
//
// Threads and bits: C is split into blocks of whole register tiles and K is
// never split, so results are the same bits for any thread count (they do
// differ between SIMD targets: FMA or not). Small products run on the
// calling thread.
#ifndef THAW_SIMD_GEMM_H_
#define THAW_SIMD_GEMM_H_

#include <cstddef>

#include "platform/threads.h"

namespace thaw {
namespace simd {

// Floats of scratch Gemm needs for an m x n x k product on `num_threads`
// threads; 0 when m, n or k is 0.
size_t GemmScratchFloats(size_t m, size_t n, size_t k, int num_threads);

void Gemm(const float* a, size_t lda, bool trans_a, const float* b, size_t ldb,
          bool trans_b, float* c, size_t ldc, size_t m, size_t n, size_t k,
          bool accumulate, float* scratch, ThreadPool& pool);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_GEMM_H_
