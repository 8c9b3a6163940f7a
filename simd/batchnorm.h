// thaw/simd/batchnorm.h — batch normalization over the rows of a row-major
// [rows, cols] matrix: one column per channel (NHWC activations flattened to
// [N*H*W, C], or a dense layer's [batch, features]).
//
//   simd::BatchNormStatistics(x, rows, cols, mean, var, pool);   // training
//   for (c...) scale[c] = gamma[c] / sqrt(var[c] + eps);
//   simd::BatchNormApply(x, rows, cols, mean, scale, beta, y, pool);
//   ...
//   simd::BatchNormBackward(x, dy, rows, cols, mean, invstd, gamma, dx,
//                           dgamma, dbeta, pool);
//
// Sums run over the rows in order, column by column, and every formula is
// written with separate multiplies and adds (no FMA): the bits are the same
// for any thread count and on every SIMD target, and equal those of the
// references in simd/scalar.h. Columns are split into fixed chunks for the
// sums and rows for the elementwise passes. Pointers need no alignment;
// outputs must not overlap inputs unless said.
#ifndef THAW_SIMD_BATCHNORM_H_
#define THAW_SIMD_BATCHNORM_H_

#include <cstddef>

#include "platform/threads.h"

namespace thaw {
namespace simd {

// mean[c] = (sum over r of x[r, c]) / rows;
// var[c] = (sum over r of (x[r, c] - mean[c])^2) / rows (the biased variance).
// rows > 0. The sums run over the rows in order, except where ColumnSums
// would group the rows (few columns over many rows, ColumnSumGroups in
// simd/elementwise.h): then both sums are ColumnSums' and ColumnSquareSums'.
void BatchNormStatistics(const float* x, size_t rows, size_t cols, float* mean,
                         float* var, ThreadPool& pool);

// y[r, c] = (x[r, c] - mean[c]) * scale[c] + shift[c]; y may be x. Training
// uses the batch mean and scale = gamma / sqrt(var + eps); inference the
// moving mean and variance.
void BatchNormApply(const float* x, size_t rows, size_t cols, const float* mean,
                    const float* scale, const float* shift, float* y,
                    ThreadPool& pool);

// The backward pass of a training-mode batch normalization
// y = gamma * xhat + beta, xhat = (x - mean) * invstd, from its input x:
//   dbeta[c]  = sum over r of dy[r, c]
//   dgamma[c] = sum over r of dy[r, c] * xhat[r, c]
//   dx[r, c]  = (dy[r, c] - dbeta[c] / rows - xhat[r, c] * dgamma[c] / rows)
//               * (gamma[c] * invstd[c])          (only when dx is not null)
// dx may be dy. rows > 0. `scratch` holds BatchNormBackwardScratchFloats
// floats (none: may be null).
//
// The sums run over the rows in order, except for few columns (one column
// chunk) over many rows: then over BatchNormRowGroups(rows, cols) groups
// of consecutive rows (group g: rows [g * rows / G, (g + 1) * rows / G)),
// each in order, and the groups' sums are added in group order, so that
// both threads have work; the grouping depends on the shape alone.
inline constexpr size_t kBatchNormRowsPerGroup = 256;
inline constexpr size_t kBatchNormMaxRowGroups = 4;
size_t BatchNormRowGroups(size_t rows, size_t cols);
size_t BatchNormBackwardScratchFloats(size_t rows, size_t cols);
void BatchNormBackward(const float* x, const float* dy, size_t rows, size_t cols,
                       const float* mean, const float* invstd, const float* gamma,
                       float* dx, float* dgamma, float* dbeta, float* scratch,
                       ThreadPool& pool);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_BATCHNORM_H_
