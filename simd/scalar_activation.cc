// Scalar references for simd/activation.h and simd/loss.h: plain loops in
// double, rounded to float once per output.
#include <cmath>
#include <cstdint>

#include "simd/scalar.h"

namespace thaw {
namespace simd {
namespace {

// The max of a row and the sum of exp(z - max), in double.
void RowMaxAndExpSum(const float* z, size_t cols, double* max, double* sum) {
  // The max is taken in float and widened once: the same value as a max in
  // double, but an fmax reduction that widens float to double makes the
  // aarch64 GCC 12.2 vectorizer crash (ICE in vect_transform_reduction, -O3).
  float row_max = z[0];
  for (size_t j = 1; j < cols; ++j) row_max = std::fmax(row_max, z[j]);
  *max = row_max;
  *sum = 0;
  for (size_t j = 0; j < cols; ++j) *sum += std::exp(z[j] - *max);
}

}  // namespace

void ScalarSigmoidForward(const float* z, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(1.0 / (1.0 + std::exp(-double{z[i]})));
}

void ScalarSigmoidBackward(const float* y, const float* dy, float* dz, size_t n) {
  for (size_t i = 0; i < n; ++i) dz[i] = static_cast<float>(double{dy[i]} * y[i] * (1.0 - y[i]));
}

void ScalarTanhForward(const float* z, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::tanh(double{z[i]}));
}

void ScalarTanhBackward(const float* y, const float* dy, float* dz, size_t n) {
  for (size_t i = 0; i < n; ++i) dz[i] = static_cast<float>(double{dy[i]} * (1.0 - double{y[i]} * y[i]));
}

void ScalarSoftmaxForward(const float* z, float* y, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; ++r) {
    const float* zr = z + r * cols;
    double max, sum;
    RowMaxAndExpSum(zr, cols, &max, &sum);
    for (size_t j = 0; j < cols; ++j) y[r * cols + j] = static_cast<float>(std::exp(zr[j] - max) / sum);
  }
}

void ScalarSoftmaxBackward(const float* y, const float* dy, float* dz,
                           size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; ++r) {
    double dot = 0;
    for (size_t j = 0; j < cols; ++j) dot += double{dy[r * cols + j]} * y[r * cols + j];
    for (size_t j = 0; j < cols; ++j) {
      dz[r * cols + j] = static_cast<float>(y[r * cols + j] * (dy[r * cols + j] - dot));
    }
  }
}

double ScalarSoftmaxCrossEntropy(const float* z, const int32_t* labels,
                                 size_t rows, size_t cols, float* probs,
                                 float* dz, float grad_scale) {
  double total = 0;
  for (size_t r = 0; r < rows; ++r) {
    const float* zr = z + r * cols;
    double max, sum;
    RowMaxAndExpSum(zr, cols, &max, &sum);
    const double lse = std::log(sum) + max;
    const int32_t label = labels[r];
    total += lse - zr[label];
    for (size_t j = 0; j < cols; ++j) {
      const double p = std::exp(zr[j] - lse);
      if (probs != nullptr) probs[r * cols + j] = static_cast<float>(p);
      if (dz != nullptr) {
        dz[r * cols + j] = static_cast<float>(grad_scale * (p - (static_cast<int32_t>(j) == label ? 1.0 : 0.0)));
      }
    }
  }
  return total;
}

double ScalarBinaryCrossEntropyWithLogits(const float* z, const float* t,
                                          size_t n, float* dz, float grad_scale) {
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    const double x = z[i];
    total += std::fmax(x, 0.0) - x * t[i] + std::log1p(std::exp(-std::fabs(x)));
    if (dz != nullptr) dz[i] = static_cast<float>(grad_scale * (1.0 / (1.0 + std::exp(-x)) - t[i]));
  }
  return total;
}

double ScalarSquaredError(const float* y, const float* t, size_t n, float* dy,
                          float grad_scale) {
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    const double diff = double{y[i]} - t[i];
    total += diff * diff;
    if (dy != nullptr) dy[i] = static_cast<float>(2.0 * grad_scale * diff);
  }
  return total;
}

}  // namespace simd
}  // namespace thaw
