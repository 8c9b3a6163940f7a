// thaw/simd/gemm.h — single-precision matrix products, row-major.
//
//   // Y[batch x out] = X[batch x in] · W[out x in]^T
//   thaw::simd::Gemm(x, in, false, w, in, true, y, out, batch, out, in, false, pool);
//
// C[m x n] (+)= op(A) · op(B), where op(A) is m x k and op(B) is k x n:
//   trans_a == false: A is m x k, element (i, p) at a[i * lda + p];
//   trans_a == true:  A is k x m, element (i, p) at a[p * lda + i];
//   trans_b == false: B is k x n, element (p, j) at b[p * ldb + j];
//   trans_b == true:  B is n x k, element (p, j) at b[j * ldb + p].
// accumulate == false overwrites C, true adds to it. C must not overlap A or B.
// Rows of C are split into fixed blocks, so results are the same bits for any
// thread count. This is the plain vectorised version; the packed, cache-blocked
// kernel replaces it behind the same signature.
#ifndef THAW_SIMD_GEMM_H_
#define THAW_SIMD_GEMM_H_

#include <cstddef>

#include "platform/threads.h"

namespace thaw {
namespace simd {

void Gemm(const float* a, size_t lda, bool trans_a, const float* b, size_t ldb,
          bool trans_b, float* c, size_t ldc, size_t m, size_t n, size_t k,
          bool accumulate, ThreadPool& pool);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_GEMM_H_
