// thaw/simd/elementwise.h — elementwise kernels on raw float arrays.
//
//   thaw::simd::Axpy(-0.1f, grad, weight, n, pool);   // weight -= 0.1 * grad
//
// Contract for every kernel here: arrays hold n floats, need no alignment, and
// an output may be the very same array as an input (in place) but must not
// partially overlap one. Work is split into fixed chunks of kElementwiseChunk
// floats, so results are the same bits for any thread count. Each kernel has a
// plain reference Scalar<Op> in simd/scalar.h.
#ifndef THAW_SIMD_ELEMENTWISE_H_
#define THAW_SIMD_ELEMENTWISE_H_

#include <cstddef>

#include "platform/threads.h"

namespace thaw {
namespace simd {

// Below this many floats a kernel runs on the calling thread: 16K floats is
// 64 KB, about 2 us of work, where a task hand-off costs ~1 us.
inline constexpr size_t kElementwiseChunk = 16384;

// out = a + b
void Add(const float* a, const float* b, float* out, size_t n, ThreadPool& pool);
// out = a - b
void Sub(const float* a, const float* b, float* out, size_t n, ThreadPool& pool);
// out = a * b
void Mul(const float* a, const float* b, float* out, size_t n, ThreadPool& pool);
// out = x + c
void AddScalar(const float* x, float c, float* out, size_t n, ThreadPool& pool);
// out = alpha * x
void Scale(const float* x, float alpha, float* out, size_t n, ThreadPool& pool);
// out = min(max(x, -limit), limit) for limit > 0 and finite x
void ClampAbs(const float* x, float limit, float* out, size_t n, ThreadPool& pool);
// y += alpha * x
void Axpy(float alpha, const float* x, float* y, size_t n, ThreadPool& pool);
// out += a * b
void MulAcc(const float* a, const float* b, float* out, size_t n,
            ThreadPool& pool);
// y = x <= 0 ? 0 : x: NaN stays NaN, -0 becomes +0 (PyTorch's relu).
void ReluForward(const float* x, float* y, size_t n, ThreadPool& pool);
// dx = x <= 0 ? 0 : dy, where x is the forward input (or output: the same
// test); a NaN input passes its gradient, as PyTorch's threshold_backward.
void ReluBackward(const float* x, const float* dy, float* dx, size_t n,
                  ThreadPool& pool);
// y = min(max(x, 0), 6) (MobileNet's ReLU6); NaN stays NaN, as PyTorch's.
void Relu6Forward(const float* x, float* y, size_t n, ThreadPool& pool);
// dx = 0 < y < 6 ? dy : 0, where y is the forward output (or the input: the
// same test).
void Relu6Backward(const float* y, const float* dy, float* dx, size_t n, ThreadPool& pool);

// out[j] = the sum of column j of the row-major [rows, cols] matrix x (a bias
// gradient); zeros when rows is 0. out must not overlap x. The rows are cut
// into ColumnSumGroups(rows, cols) groups of consecutive rows (group g:
// rows [g * rows / G, (g + 1) * rows / G)), each summed in row order, and
// the groups' sums are added in group order; the columns into fixed chunks.
// Both depend only on the shape, so the bits never depend on the thread
// count. A few columns over many rows (a convolution's bias over every
// pixel) take several groups: their sums run side by side, on one thread
// or on several, where one column chain would wait on each add.
inline constexpr size_t kColumnSumMaxGroups = 8;
size_t ColumnSumGroups(size_t rows, size_t cols);
void ColumnSums(const float* x, size_t rows, size_t cols, float* out,
                ThreadPool& pool);
// out[j] = the sum over rows of (x[r, j] - centre[j])^2 (a variance's
// numerator), in the groups of ColumnSums (one group: one chain per column
// on the calling thread).
void ColumnSquareSums(const float* x, size_t rows, size_t cols, const float* centre, float* out,
                      ThreadPool& pool);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_ELEMENTWISE_H_
