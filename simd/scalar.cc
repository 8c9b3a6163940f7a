// thaw/simd/scalar.cc — the plain references of simd/scalar.h.
//
// Deliberately simple loops. Floating-point expressions are written in the
// order the kernels document (the build uses -ffp-contract=off, so a * b + c
// is a multiply then an add here); sums, dots and GEMM accumulate in double.
#include "simd/scalar.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "simd/batchnorm.h"
#include "simd/conv.h"
#include "simd/elementwise.h"

namespace thaw {
namespace simd {

void ScalarAdd(const float* a, const float* b, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void ScalarSub(const float* a, const float* b, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] - b[i];
}

void ScalarMul(const float* a, const float* b, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

void ScalarAddScalar(const float* x, float c, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = x[i] + c;
}

void ScalarClampAbs(const float* x, float limit, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = x[i] < -limit ? -limit : x[i] > limit ? limit : x[i];
}

void ScalarScale(const float* x, float alpha, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = alpha * x[i];
}

void ScalarAxpy(float alpha, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = alpha * x[i] + y[i];
}

void ScalarMulAcc(const float* a, const float* b, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] * b[i] + out[i];
}

void ScalarReluForward(const float* x, float* y, size_t n) {
  // `x <= 0` is false for NaN, so NaN stays NaN (PyTorch's relu).
  for (size_t i = 0; i < n; ++i) y[i] = x[i] <= 0.0f ? 0.0f : x[i];
}

size_t ScalarCountNonFinite(const float* x, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) count += std::isfinite(x[i]) ? 0 : 1;
  return count;
}

namespace {

// Column j's sum of term(x[r, j]) over ColumnSumGroups(rows, cols) groups of
// rows, each in order, the groups added in order (simd::ColumnSums).
template <class Term>
float GroupedColumnSum(const float* x, size_t rows, size_t cols, size_t j, const Term& term) {
  const size_t groups = ColumnSumGroups(rows, cols);
  float total = 0.0f;
  for (size_t g = 0; g < groups && rows > 0; ++g) {
    const size_t r0 = g * rows / groups, r1 = (g + 1) * rows / groups;
    float sum = term(x[r0 * cols + j]);
    for (size_t r = r0 + 1; r < r1; ++r) sum += term(x[r * cols + j]);
    total = g == 0 ? sum : total + sum;
  }
  return total;
}

}  // namespace

void ScalarColumnSums(const float* x, size_t rows, size_t cols, float* out) {
  for (size_t j = 0; j < cols; ++j) {
    out[j] = GroupedColumnSum(x, rows, cols, j, [](float v) { return v; });
  }
}

void ScalarColumnSquareSums(const float* x, size_t rows, size_t cols, const float* centre,
                            float* out) {
  for (size_t j = 0; j < cols; ++j) {
    out[j] = GroupedColumnSum(x, rows, cols, j, [&](float v) {
      const float delta = v - centre[j];
      return delta * delta;
    });
  }
}

void ScalarReluBackward(const float* x, const float* dy, float* dx, size_t n) {
  for (size_t i = 0; i < n; ++i) dx[i] = x[i] <= 0.0f ? 0.0f : dy[i];
}

void ScalarBatchNormStatistics(const float* x, size_t rows, size_t cols, float* mean,
                               float* var) {
  const float n = static_cast<float>(rows);
  if (ColumnSumGroups(rows, cols) > 1) {  // simd::BatchNormStatistics' grouped sums
    ScalarColumnSums(x, rows, cols, mean);
    for (size_t j = 0; j < cols; ++j) mean[j] = mean[j] / n;
    ScalarColumnSquareSums(x, rows, cols, mean, var);
    for (size_t j = 0; j < cols; ++j) var[j] = var[j] / n;
    return;
  }
  for (size_t j = 0; j < cols; ++j) {
    float sum = 0.0f;
    for (size_t r = 0; r < rows; ++r) sum = sum + x[r * cols + j];
    mean[j] = sum / n;
    float squares = 0.0f;
    for (size_t r = 0; r < rows; ++r) {
      const float delta = x[r * cols + j] - mean[j];
      squares = squares + delta * delta;
    }
    var[j] = squares / n;
  }
}

void ScalarBatchNormApply(const float* x, size_t rows, size_t cols, const float* mean,
                          const float* scale, const float* shift, float* y) {
  for (size_t r = 0; r < rows; ++r) {
    for (size_t j = 0; j < cols; ++j) {
      y[r * cols + j] = (x[r * cols + j] - mean[j]) * scale[j] + shift[j];
    }
  }
}

void ScalarBatchNormBackward(const float* x, const float* dy, size_t rows, size_t cols,
                             const float* mean, const float* invstd, const float* gamma,
                             float* dx, float* dgamma, float* dbeta) {
  const float n = static_cast<float>(rows);
  const size_t groups = BatchNormRowGroups(rows, cols);
  for (size_t j = 0; j < cols; ++j) {
    // Each group of rows in order, the groups' sums added in order.
    float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
    for (size_t g = 0; g < groups; ++g) {
      float group_dy = 0.0f, group_dy_xhat = 0.0f;
      for (size_t r = g * rows / groups; r < (g + 1) * rows / groups; ++r) {
        const float xhat = (x[r * cols + j] - mean[j]) * invstd[j];
        group_dy = group_dy + dy[r * cols + j];
        group_dy_xhat = group_dy_xhat + dy[r * cols + j] * xhat;
      }
      sum_dy = g == 0 ? group_dy : sum_dy + group_dy;
      sum_dy_xhat = g == 0 ? group_dy_xhat : sum_dy_xhat + group_dy_xhat;
    }
    dbeta[j] = sum_dy;
    dgamma[j] = sum_dy_xhat;
    if (dx == nullptr) continue;
    const float a = sum_dy / n, b = sum_dy_xhat / n, k = gamma[j] * invstd[j];
    for (size_t r = 0; r < rows; ++r) {
      const float xhat = (x[r * cols + j] - mean[j]) * invstd[j];
      dx[r * cols + j] = ((dy[r * cols + j] - a) - xhat * b) * k;
    }
  }
}

void ScalarRelu6Forward(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float relu = x[i] <= 0.0f ? 0.0f : x[i];
    y[i] = relu > 6.0f ? 6.0f : relu;
  }
}

void ScalarRelu6Backward(const float* y, const float* dy, float* dx, size_t n) {
  for (size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f && y[i] < 6.0f ? dy[i] : 0.0f;
}

namespace {
// Calls f(n, oh, ow, kh, kw, ih, iw) for every tap of every output pixel that
// falls inside the input.
template <class F>
void ForEachTap(const ConvShape& s, const F& f) {
  for (size_t n = 0; n < s.batch; ++n) {
    for (size_t oh = 0; oh < s.out_h; ++oh) {
      for (size_t ow = 0; ow < s.out_w; ++ow) {
        for (size_t kh = 0; kh < s.kernel_h; ++kh) {
          for (size_t kw = 0; kw < s.kernel_w; ++kw) {
            const long ih = static_cast<long>(oh * s.stride_h + kh) - static_cast<long>(s.pad_top);
            const long iw = static_cast<long>(ow * s.stride_w + kw) - static_cast<long>(s.pad_left);
            if (ih < 0 || iw < 0 || ih >= static_cast<long>(s.in_h) ||
                iw >= static_cast<long>(s.in_w)) {
              continue;
            }
            f(n, oh, ow, kh, kw, static_cast<size_t>(ih), static_cast<size_t>(iw));
          }
        }
      }
    }
  }
}
}  // namespace

void ScalarConvForward(const float* x, const float* w, float* y, const ConvShape& s) {
  std::vector<double> acc(s.batch * s.out_h * s.out_w * s.out_c, 0.0);
  ForEachTap(s, [&](size_t n, size_t oh, size_t ow, size_t kh, size_t kw, size_t ih, size_t iw) {
    const float* in = x + ((n * s.in_h + ih) * s.in_w + iw) * s.in_c;
    double* out = acc.data() + ((n * s.out_h + oh) * s.out_w + ow) * s.out_c;
    for (size_t ci = 0; ci < s.in_c; ++ci) {
      const float* wr = w + ((kh * s.kernel_w + kw) * s.in_c + ci) * s.out_c;
      for (size_t co = 0; co < s.out_c; ++co) out[co] += static_cast<double>(in[ci]) * wr[co];
    }
  });
  for (size_t i = 0; i < acc.size(); ++i) y[i] = static_cast<float>(acc[i]);
}

void ScalarConvBackward(const float* x, const float* w, const float* dy, float* dx, float* dw,
                        const ConvShape& s) {
  std::vector<double> gx(s.batch * s.in_h * s.in_w * s.in_c, 0.0);
  std::vector<double> gw(s.kernel_h * s.kernel_w * s.in_c * s.out_c, 0.0);
  ForEachTap(s, [&](size_t n, size_t oh, size_t ow, size_t kh, size_t kw, size_t ih, size_t iw) {
    const float* in = x + ((n * s.in_h + ih) * s.in_w + iw) * s.in_c;
    const float* g = dy + ((n * s.out_h + oh) * s.out_w + ow) * s.out_c;
    for (size_t ci = 0; ci < s.in_c; ++ci) {
      const size_t wi = ((kh * s.kernel_w + kw) * s.in_c + ci) * s.out_c;
      for (size_t co = 0; co < s.out_c; ++co) {
        gx[((n * s.in_h + ih) * s.in_w + iw) * s.in_c + ci] += static_cast<double>(g[co]) * w[wi + co];
        gw[wi + co] += static_cast<double>(g[co]) * in[ci];
      }
    }
  });
  if (dx != nullptr) {
    for (size_t i = 0; i < gx.size(); ++i) dx[i] = static_cast<float>(gx[i]);
  }
  if (dw != nullptr) {
    for (size_t i = 0; i < gw.size(); ++i) dw[i] = static_cast<float>(gw[i]);
  }
}

namespace {
size_t In(const ConvShape& s, size_t n, size_t h, size_t w, size_t c) {
  return ((n * s.in_h + h) * s.in_w + w) * s.in_c + c;
}
size_t Out(const ConvShape& s, size_t n, size_t h, size_t w, size_t c) {
  return ((n * s.out_h + h) * s.out_w + w) * s.in_c + c;
}
// Input pixel of tap (kh, kw) of window (oh, ow), if inside.
bool TapOf(const ConvShape& s, size_t oh, size_t ow, size_t kh, size_t kw, size_t* ih,
           size_t* iw) {
  const long h = static_cast<long>(oh * s.stride_h + kh) - static_cast<long>(s.pad_top);
  const long w = static_cast<long>(ow * s.stride_w + kw) - static_cast<long>(s.pad_left);
  if (h < 0 || w < 0 || h >= static_cast<long>(s.in_h) || w >= static_cast<long>(s.in_w)) {
    return false;
  }
  *ih = static_cast<size_t>(h);
  *iw = static_cast<size_t>(w);
  return true;
}
// Calls f(oh, ow) for every window whose tap (kh, kw) is input pixel (ih, iw),
// in (kh, kw) order.
template <class F>
void ForWindows(const ConvShape& s, size_t ih, size_t iw, const F& f) {
  for (size_t kh = 0; kh < s.kernel_h; ++kh) {
    for (size_t kw = 0; kw < s.kernel_w; ++kw) {
      const long h = static_cast<long>(ih + s.pad_top) - static_cast<long>(kh);
      const long w = static_cast<long>(iw + s.pad_left) - static_cast<long>(kw);
      if (h < 0 || w < 0 || h % static_cast<long>(s.stride_h) || w % static_cast<long>(s.stride_w)) {
        continue;
      }
      const size_t oh = static_cast<size_t>(h) / s.stride_h, ow = static_cast<size_t>(w) / s.stride_w;
      if (oh < s.out_h && ow < s.out_w) f(oh, ow, kh, kw);
    }
  }
}
size_t TapsOf(const ConvShape& s, size_t oh, size_t ow) {
  size_t taps = 0, ih, iw;
  for (size_t kh = 0; kh < s.kernel_h; ++kh) {
    for (size_t kw = 0; kw < s.kernel_w; ++kw) taps += TapOf(s, oh, ow, kh, kw, &ih, &iw);
  }
  return taps;
}
}  // namespace

void ScalarDepthwiseForward(const float* x, const float* w, float* y, const ConvShape& s) {
  for (size_t n = 0; n < s.batch; ++n)
    for (size_t oh = 0; oh < s.out_h; ++oh)
      for (size_t ow = 0; ow < s.out_w; ++ow)
        for (size_t c = 0; c < s.in_c; ++c) {
          double acc = 0;
          size_t ih, iw;
          for (size_t kh = 0; kh < s.kernel_h; ++kh)
            for (size_t kw = 0; kw < s.kernel_w; ++kw)
              if (TapOf(s, oh, ow, kh, kw, &ih, &iw)) {
                acc += static_cast<double>(x[In(s, n, ih, iw, c)]) * w[(kh * s.kernel_w + kw) * s.in_c + c];
              }
          y[Out(s, n, oh, ow, c)] = static_cast<float>(acc);
        }
}

void ScalarDepthwiseBackward(const float* x, const float* w, const float* dy, float* dx,
                             float* dw, const ConvShape& s) {
  std::vector<double> gx(s.batch * s.in_h * s.in_w * s.in_c, 0.0);
  std::vector<double> gw(s.kernel_h * s.kernel_w * s.in_c, 0.0);
  for (size_t n = 0; n < s.batch; ++n)
    for (size_t oh = 0; oh < s.out_h; ++oh)
      for (size_t ow = 0; ow < s.out_w; ++ow)
        for (size_t kh = 0; kh < s.kernel_h; ++kh)
          for (size_t kw = 0; kw < s.kernel_w; ++kw) {
            size_t ih, iw;
            if (!TapOf(s, oh, ow, kh, kw, &ih, &iw)) continue;
            for (size_t c = 0; c < s.in_c; ++c) {
              const double g = dy[Out(s, n, oh, ow, c)];
              const size_t k = (kh * s.kernel_w + kw) * s.in_c + c;
              gx[In(s, n, ih, iw, c)] += g * w[k];
              gw[k] += g * x[In(s, n, ih, iw, c)];
            }
          }
  if (dx != nullptr) {
    for (size_t i = 0; i < gx.size(); ++i) dx[i] = static_cast<float>(gx[i]);
  }
  if (dw != nullptr) {
    for (size_t i = 0; i < gw.size(); ++i) dw[i] = static_cast<float>(gw[i]);
  }
}

void ScalarMaxPoolForward(const float* x, float* y, const ConvShape& s) {
  for (size_t n = 0; n < s.batch; ++n)
    for (size_t oh = 0; oh < s.out_h; ++oh)
      for (size_t ow = 0; ow < s.out_w; ++ow)
        for (size_t c = 0; c < s.in_c; ++c) {
          bool first = true;
          float best = 0.0f;
          size_t ih, iw;
          for (size_t kh = 0; kh < s.kernel_h; ++kh)
            for (size_t kw = 0; kw < s.kernel_w; ++kw)
              if (TapOf(s, oh, ow, kh, kw, &ih, &iw)) {
                const float v = x[In(s, n, ih, iw, c)];
                if (first || v > best || std::isnan(v)) best = v;
                first = false;
              }
          y[Out(s, n, oh, ow, c)] = best;
        }
}

void ScalarMaxPoolBackward(const float* x, const float* y, const float* dy, float* dx,
                           const ConvShape& s) {
  for (size_t n = 0; n < s.batch; ++n)
    for (size_t ih = 0; ih < s.in_h; ++ih)
      for (size_t iw = 0; iw < s.in_w; ++iw)
        for (size_t c = 0; c < s.in_c; ++c) {
          float acc = 0.0f;
          ForWindows(s, ih, iw, [&](size_t oh, size_t ow, size_t kh, size_t kw) {
            const float top = y[Out(s, n, oh, ow, c)];
            if (x[In(s, n, ih, iw, c)] != top) return;
            for (size_t k = 0; k < kh * s.kernel_w + kw; ++k) {  // an earlier tap wins
              size_t eh, ew;
              if (TapOf(s, oh, ow, k / s.kernel_w, k % s.kernel_w, &eh, &ew) &&
                  x[In(s, n, eh, ew, c)] == top) {
                return;
              }
            }
            acc = acc + dy[Out(s, n, oh, ow, c)];
          });
          dx[In(s, n, ih, iw, c)] = acc;
        }
}

void ScalarAvgPoolForward(const float* x, float* y, const ConvShape& s) {
  for (size_t n = 0; n < s.batch; ++n)
    for (size_t oh = 0; oh < s.out_h; ++oh)
      for (size_t ow = 0; ow < s.out_w; ++ow)
        for (size_t c = 0; c < s.in_c; ++c) {
          float sum = 0.0f;
          size_t ih, iw;
          for (size_t kh = 0; kh < s.kernel_h; ++kh)
            for (size_t kw = 0; kw < s.kernel_w; ++kw)
              if (TapOf(s, oh, ow, kh, kw, &ih, &iw)) sum = sum + x[In(s, n, ih, iw, c)];
          y[Out(s, n, oh, ow, c)] = sum / static_cast<float>(TapsOf(s, oh, ow));
        }
}

void ScalarAvgPoolBackward(const float* dy, float* dx, const ConvShape& s) {
  for (size_t n = 0; n < s.batch; ++n)
    for (size_t ih = 0; ih < s.in_h; ++ih)
      for (size_t iw = 0; iw < s.in_w; ++iw)
        for (size_t c = 0; c < s.in_c; ++c) {
          float acc = 0.0f;
          ForWindows(s, ih, iw, [&](size_t oh, size_t ow, size_t, size_t) {
            acc = acc + dy[Out(s, n, oh, ow, c)] / static_cast<float>(TapsOf(s, oh, ow));
          });
          dx[In(s, n, ih, iw, c)] = acc;
        }
}

double ScalarSum(const float* x, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += x[i];
  return sum;
}

double ScalarDot(const float* a, const float* b, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  }
  return sum;
}

void ScalarSgdStep(const float* grad, float* weight, float* velocity, size_t n,
                   const SgdParams& params) {
  for (size_t i = 0; i < n; ++i) {
    float d = grad[i];
    if (params.weight_decay != 0.0f) d = d + params.weight_decay * weight[i];
    if (params.momentum != 0.0f) {
      velocity[i] = params.momentum * velocity[i] + d;
      d = params.nesterov ? d + params.momentum * velocity[i] : velocity[i];
    }
    weight[i] = weight[i] - params.learning_rate * d;
  }
}

void ScalarAdamStep(const float* grad, float* weight, float* m, float* v,
                    size_t n, const AdamParams& params) {
  // Formed in double and rounded once, like PyTorch's Python-float factors.
  const float decay =
      static_cast<float>(1.0 - static_cast<double>(params.learning_rate) *
                                   static_cast<double>(params.weight_decay));
  const float one_minus_beta1 =
      static_cast<float>(1.0 - static_cast<double>(params.beta1));
  const float one_minus_beta2 =
      static_cast<float>(1.0 - static_cast<double>(params.beta2));
  for (size_t i = 0; i < n; ++i) {
    float g = grad[i];
    float w = weight[i];
    if (params.weight_decay != 0.0f) {
      if (params.decoupled_weight_decay) {
        w = w * decay;
      } else {
        g = g + params.weight_decay * w;
      }
    }
    m[i] = m[i] + one_minus_beta1 * (g - m[i]);
    v[i] = params.beta2 * v[i] + one_minus_beta2 * g * g;
    const float denom =
        std::sqrt(v[i]) / params.bias_correction2_sqrt + params.epsilon;
    weight[i] = w - params.step_size * m[i] / denom;
  }
}

void ScalarGemm(const float* a, size_t lda, bool trans_a, const float* b,
                size_t ldb, bool trans_b, float* c, size_t ldc, size_t m,
                size_t n, size_t k, bool accumulate) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (size_t p = 0; p < k; ++p) {
        const float a_ip = trans_a ? a[p * lda + i] : a[i * lda + p];
        const float b_pj = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        sum += static_cast<double>(a_ip) * static_cast<double>(b_pj);
      }
      float& out = c[i * ldc + j];
      out = accumulate ? static_cast<float>(static_cast<double>(out) + sum)
                       : static_cast<float>(sum);
    }
  }
}

}  // namespace simd
}  // namespace thaw
