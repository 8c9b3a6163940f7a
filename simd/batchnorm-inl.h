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
  for (; j + N <= len; j += N) {
    auto sum = hn::Zero(d);
    for (size_t r = 0; r < rows; ++r) sum = hn::Add(sum, hn::LoadU(d, x + r * stride + j));
    const auto m = IeeeDiv(d, sum, count);
    auto squares = hn::Zero(d);
    for (size_t r = 0; r < rows; ++r) {
      const auto delta = hn::Sub(hn::LoadU(d, x + r * stride + j), m);
      squares = hn::Add(squares, hn::Mul(delta, delta));
    }
    hn::StoreU(m, d, mean + j);
    hn::StoreU(IeeeDiv(d, squares, count), d, var + j);
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

// Rows [0, rows) of `cols` columns: y = (x - mean) * scale + shift.
// One vector of columns [j, j + lanes): (x - mean) * scale + shift.
template <class D, class V>
HWY_INLINE V BatchNormApplyVector(D d, V x, const float* HWY_RESTRICT mean,
                                  const float* HWY_RESTRICT scale,
                                  const float* HWY_RESTRICT shift) {
  const V centred = hn::Sub(x, hn::LoadU(d, mean));
  return hn::Add(hn::Mul(centred, hn::LoadU(d, scale)), hn::LoadU(d, shift));
}

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
  for (; j + N <= len; j += N) {
    const auto m = hn::LoadU(d, mean + j);
    const auto s = hn::LoadU(d, invstd + j);
    auto sum_dy = hn::Zero(d), sum_dy_xhat = hn::Zero(d);
    for (size_t r = 0; r < rows; ++r) {
      const auto g = hn::LoadU(d, dy + r * stride + j);
      const auto xhat = hn::Mul(hn::Sub(hn::LoadU(d, x + r * stride + j), m), s);
      sum_dy = hn::Add(sum_dy, g);
      sum_dy_xhat = hn::Add(sum_dy_xhat, hn::Mul(g, xhat));
    }
    hn::StoreU(sum_dy, d, dbeta + j);
    hn::StoreU(sum_dy_xhat, d, dgamma + j);
    if (dx == nullptr) continue;
    const auto a = IeeeDiv(d, sum_dy, count);
    const auto b = IeeeDiv(d, sum_dy_xhat, count);
    const auto k = hn::Mul(hn::LoadU(d, gamma + j), s);
    for (size_t r = 0; r < rows; ++r) {
      const auto xhat = hn::Mul(hn::Sub(hn::LoadU(d, x + r * stride + j), m), s);
      auto t = hn::Sub(hn::LoadU(d, dy + r * stride + j), a);
      t = hn::Sub(t, hn::Mul(xhat, b));
      hn::StoreU(hn::Mul(t, k), d, dx + r * stride + j);
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

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_BATCHNORM_INL_H_ (toggle)
