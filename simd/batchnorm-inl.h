// thaw/simd/batchnorm-inl.h — per-target loops behind simd/batchnorm.h.
// Included once per Highway target (toggling guard below) by
// simd/batchnorm.cc.
//
// Columns are processed a vector at a time; the last cols % Lanes columns run
// the same operations in scalar code. Each lane only ever combines values of
// its own column, with Add/Sub/Mul/Div and no MulAdd, so the scalar columns
// and every target give the same bits.

#if defined(THAW_SIMD_BATCHNORM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_BATCHNORM_INL_H_
#undef THAW_SIMD_BATCHNORM_INL_H_
#else
#define THAW_SIMD_BATCHNORM_INL_H_
#endif

#include <cstddef>

#include "hwy/highway.h"
#include "simd/ieee-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Columns [0, len) of `rows` rows `stride` floats apart: per-column mean and
// biased variance, two passes over the rows in order.
HWY_INLINE void BatchNormStatisticsColumns(const float* HWY_RESTRICT x, size_t rows,
                                           size_t stride, float* HWY_RESTRICT mean,
                                           float* HWY_RESTRICT var, size_t len) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto count = hn::Set(d, static_cast<float>(rows));
  size_t j = 0;
  // Two vectors of columns per pass over the rows: two sums in flight (one
  // waited on its own add, row after row) and whole 128-byte rows read.
  for (; j + N <= len; j += 2 * N) {
    const bool two = j + 2 * N <= len;
    const float* col = x + j;
    auto sum0 = hn::Zero(d), sum1 = sum0;
    for (size_t r = 0; r < rows; ++r, col += stride) {
      sum0 = hn::Add(sum0, hn::LoadU(d, col));
      if (two) sum1 = hn::Add(sum1, hn::LoadU(d, col + N));
    }
    const auto m0 = IeeeDiv(d, sum0, count), m1 = IeeeDiv(d, sum1, count);
    auto squares0 = hn::Zero(d), squares1 = squares0;
    col = x + j;
    for (size_t r = 0; r < rows; ++r, col += stride) {
      const auto delta0 = hn::Sub(hn::LoadU(d, col), m0);
      squares0 = hn::Add(squares0, hn::Mul(delta0, delta0));
      if (two) {
        const auto delta1 = hn::Sub(hn::LoadU(d, col + N), m1);
        squares1 = hn::Add(squares1, hn::Mul(delta1, delta1));
      }
    }
    hn::StoreU(m0, d, mean + j);
    hn::StoreU(IeeeDiv(d, squares0, count), d, var + j);
    if (!two) {
      j += N;
      break;
    }
    hn::StoreU(m1, d, mean + j + N);
    hn::StoreU(IeeeDiv(d, squares1, count), d, var + j + N);
  }
  const float n = static_cast<float>(rows);
  for (; j < len; ++j) {
    float sum = 0.0f;
    for (size_t r = 0; r < rows; ++r) sum = sum + x[r * stride + j];
    const float m = sum / n;
    float squares = 0.0f;
    for (size_t r = 0; r < rows; ++r) {
      const float delta = x[r * stride + j] - m;
      squares = squares + delta * delta;
    }
    mean[j] = m;
    var[j] = squares / n;
  }
}

// One vector of columns [j, j + lanes): (x - mean) * scale + shift.
template <class D, class V>
HWY_INLINE V BatchNormApplyVector(D d, V x, const float* HWY_RESTRICT mean,
                                  const float* HWY_RESTRICT scale,
                                  const float* HWY_RESTRICT shift) {
  const V centred = hn::Sub(x, hn::LoadU(d, mean));
  return hn::Add(hn::Mul(centred, hn::LoadU(d, scale)), hn::LoadU(d, shift));
}

// Rows [0, rows) of `cols` columns: y = (x - mean) * scale + shift.
HWY_INLINE void BatchNormApplyRows(const float* x, size_t rows, size_t cols,
                                   const float* HWY_RESTRICT mean,
                                   const float* HWY_RESTRICT scale,
                                   const float* HWY_RESTRICT shift, float* y) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    size_t j = 0;
    for (; j + N <= cols; j += N) {
      hn::StoreU(BatchNormApplyVector(d, hn::LoadU(d, xr + j), mean + j, scale + j, shift + j),
                 d, yr + j);
    }
    for (; j < cols; ++j) yr[j] = (xr[j] - mean[j]) * scale[j] + shift[j];
  }
}

// Columns [0, len) of rows `stride` floats apart: the sums
//   dbeta = sum dy, dgamma = sum dy * xhat, xhat = (x - mean) * invstd,
// then, when dx is not null, a second pass over the rows:
//   dx = (dy - dbeta / n - xhat * dgamma / n) * (gamma * invstd).
// dx may be dy: each element of dy is read before its dx is written.
HWY_INLINE void BatchNormBackwardColumns(const float* x, const float* dy, size_t rows,
                                         size_t stride, const float* HWY_RESTRICT mean,
                                         const float* HWY_RESTRICT invstd,
                                         const float* HWY_RESTRICT gamma, float* dx,
                                         float* HWY_RESTRICT dgamma,
                                         float* HWY_RESTRICT dbeta, size_t len) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto count = hn::Set(d, static_cast<float>(rows));
  size_t j = 0;
  // Two vectors of columns per pass over the rows, as in the statistics.
  for (; j + N <= len; j += 2 * N) {
    const bool two = j + 2 * N <= len;
    const size_t j1 = two ? j + N : j;  // (one vector: the second repeats the first)
    const auto m0 = hn::LoadU(d, mean + j), m1 = hn::LoadU(d, mean + j1);
    const auto s0 = hn::LoadU(d, invstd + j), s1 = hn::LoadU(d, invstd + j1);
    auto sum_dy0 = hn::Zero(d), sum_dy_xhat0 = sum_dy0, sum_dy1 = sum_dy0, sum_dy_xhat1 = sum_dy0;
    for (size_t r = 0; r < rows; ++r) {
      const float* xr = x + r * stride;
      const float* gr = dy + r * stride;
      const auto g0 = hn::LoadU(d, gr + j), g1 = hn::LoadU(d, gr + j1);
      const auto xhat0 = hn::Mul(hn::Sub(hn::LoadU(d, xr + j), m0), s0);
      const auto xhat1 = hn::Mul(hn::Sub(hn::LoadU(d, xr + j1), m1), s1);
      sum_dy0 = hn::Add(sum_dy0, g0);
      sum_dy_xhat0 = hn::Add(sum_dy_xhat0, hn::Mul(g0, xhat0));
      sum_dy1 = hn::Add(sum_dy1, g1);
      sum_dy_xhat1 = hn::Add(sum_dy_xhat1, hn::Mul(g1, xhat1));
    }
    hn::StoreU(sum_dy0, d, dbeta + j);
    hn::StoreU(sum_dy_xhat0, d, dgamma + j);
    hn::StoreU(sum_dy1, d, dbeta + j1);
    hn::StoreU(sum_dy_xhat1, d, dgamma + j1);
    if (dx != nullptr) {
      const auto a0 = IeeeDiv(d, sum_dy0, count), a1 = IeeeDiv(d, sum_dy1, count);
      const auto b0 = IeeeDiv(d, sum_dy_xhat0, count), b1 = IeeeDiv(d, sum_dy_xhat1, count);
      const auto k0 = hn::Mul(hn::LoadU(d, gamma + j), s0);
      const auto k1 = hn::Mul(hn::LoadU(d, gamma + j1), s1);
      for (size_t r = 0; r < rows; ++r) {
        const float* xr = x + r * stride;
        const float* gr = dy + r * stride;
        const auto xhat0 = hn::Mul(hn::Sub(hn::LoadU(d, xr + j), m0), s0);
        const auto xhat1 = hn::Mul(hn::Sub(hn::LoadU(d, xr + j1), m1), s1);
        // Both computed before either is stored: dx may be dy.
        const auto t0 = hn::Mul(hn::Sub(hn::Sub(hn::LoadU(d, gr + j), a0), hn::Mul(xhat0, b0)), k0);
        const auto t1 = hn::Mul(hn::Sub(hn::Sub(hn::LoadU(d, gr + j1), a1), hn::Mul(xhat1, b1)), k1);
        hn::StoreU(t0, d, dx + r * stride + j);
        hn::StoreU(t1, d, dx + r * stride + j1);
      }
    }
    if (!two) {
      j += N;
      break;
    }
  }
  const float n = static_cast<float>(rows);
  for (; j < len; ++j) {
    float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
    for (size_t r = 0; r < rows; ++r) {
      const float g = dy[r * stride + j];
      const float xhat = (x[r * stride + j] - mean[j]) * invstd[j];
      sum_dy = sum_dy + g;
      sum_dy_xhat = sum_dy_xhat + g * xhat;
    }
    dbeta[j] = sum_dy;
    dgamma[j] = sum_dy_xhat;
    if (dx == nullptr) continue;
    const float a = sum_dy / n, b = sum_dy_xhat / n, k = gamma[j] * invstd[j];
    for (size_t r = 0; r < rows; ++r) {
      const float xhat = (x[r * stride + j] - mean[j]) * invstd[j];
      dx[r * stride + j] = ((dy[r * stride + j] - a) - xhat * b) * k;
    }
  }
}

// Rows [0, rows) of `cols` columns, from the finished sums' terms per
// column: a = dbeta / n, b = dgamma / n, k = gamma * invstd:
//   dx = ((dy - a) - xhat * b) * k,  xhat = (x - mean) * invstd,
// BatchNormBackwardColumns' second pass row by row (the same operations).
// dx may be dy.
HWY_INLINE void BatchNormBackwardRows(const float* x, const float* dy, size_t rows, size_t cols,
                                      const float* HWY_RESTRICT mean,
                                      const float* HWY_RESTRICT invstd,
                                      const float* HWY_RESTRICT a, const float* HWY_RESTRICT b,
                                      const float* HWY_RESTRICT k, float* dx) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* gr = dy + r * cols;
    float* out = dx + r * cols;
    size_t j = 0;
    for (; j + N <= cols; j += N) {
      const auto xhat = hn::Mul(hn::Sub(hn::LoadU(d, xr + j), hn::LoadU(d, mean + j)),
                                hn::LoadU(d, invstd + j));
      const auto t = hn::Sub(hn::Sub(hn::LoadU(d, gr + j), hn::LoadU(d, a + j)),
                             hn::Mul(xhat, hn::LoadU(d, b + j)));
      hn::StoreU(hn::Mul(t, hn::LoadU(d, k + j)), d, out + j);
    }
    for (; j < cols; ++j) {
      const float xhat = (xr[j] - mean[j]) * invstd[j];
      out[j] = ((gr[j] - a[j]) - xhat * b[j]) * k[j];
    }
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_BATCHNORM_INL_H_ (toggle)
