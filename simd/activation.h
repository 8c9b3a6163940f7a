// thaw/simd/activation.h — activation functions, forward and backward.
//
//   thaw::simd::SigmoidForward(z, y, n, pool);
//   thaw::simd::SigmoidBackward(y, dy, dz, n, pool);   // from the saved output
//   thaw::simd::SoftmaxForward(logits, probs, rows, cols);
//
// Backward kernels take the forward *output* y (what a layer saves), and
// compute dz = dy * f'(z) expressed through y. Elementwise kernels follow the
// contract of simd/elementwise.h (unaligned, in place allowed, fixed chunks).
// Softmax works on rows of a row-major [rows, cols] matrix; each row is
// computed by one thread in a fixed order, so results never depend on the
// thread count. Each kernel has a reference Scalar<Op> in simd/scalar.h.
#ifndef THAW_SIMD_ACTIVATION_H_
#define THAW_SIMD_ACTIVATION_H_

#include <cstddef>

#include "platform/threads.h"

namespace thaw {
namespace simd {

// y = 1 / (1 + exp(-z))
void SigmoidForward(const float* z, float* y, size_t n, ThreadPool& pool);
// dz = dy * y * (1 - y)
void SigmoidBackward(const float* y, const float* dy, float* dz, size_t n,
                     ThreadPool& pool);
// y = tanh(z)
void TanhForward(const float* z, float* y, size_t n, ThreadPool& pool);
// dz = dy * (1 - y * y)
void TanhBackward(const float* y, const float* dy, float* dz, size_t n,
                  ThreadPool& pool);
// Row-wise softmax, max-subtracted: y[r, j] = exp(z[r, j] - max_r) / sum_r.
// y may be z (in place).
void SoftmaxForward(const float* z, float* y, size_t rows, size_t cols,
                    ThreadPool& pool);
// dz[r, j] = y[r, j] * (dy[r, j] - sum_k dy[r, k] * y[r, k]). dz may be dy.
void SoftmaxBackward(const float* y, const float* dy, float* dz, size_t rows,
                     size_t cols, ThreadPool& pool);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_ACTIVATION_H_
