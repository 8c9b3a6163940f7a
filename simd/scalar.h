// thaw/simd/scalar.h — plain scalar references for every SIMD kernel.
//
// Readable loops with the same contract as the kernels they mirror; the tests
// compare each kernel with its reference on every compiled SIMD target. Sums
// and dots accumulate in double, so they are the "true" value a kernel's float
// result is measured against.
#ifndef THAW_SIMD_SCALAR_H_
#define THAW_SIMD_SCALAR_H_

#include <cstddef>
#include <cstdint>

#include "simd/optimizer.h"

namespace thaw {
namespace simd {

void ScalarAdd(const float* a, const float* b, float* out, size_t n);
void ScalarSub(const float* a, const float* b, float* out, size_t n);
void ScalarMul(const float* a, const float* b, float* out, size_t n);
void ScalarAddScalar(const float* x, float c, float* out, size_t n);
void ScalarScale(const float* x, float alpha, float* out, size_t n);
void ScalarClampAbs(const float* x, float limit, float* out, size_t n);
void ScalarAxpy(float alpha, const float* x, float* y, size_t n);
void ScalarMulAcc(const float* a, const float* b, float* out, size_t n);
void ScalarReluForward(const float* x, float* y, size_t n);
void ScalarReluBackward(const float* x, const float* dy, float* dx, size_t n);
void ScalarRelu6Forward(const float* x, float* y, size_t n);
void ScalarRelu6Backward(const float* y, const float* dy, float* dx, size_t n);
size_t ScalarCountNonFinite(const float* x, size_t n);
void ScalarColumnSums(const float* x, size_t rows, size_t cols, float* out);
void ScalarColumnSquareSums(const float* x, size_t rows, size_t cols, const float* centre,
                            float* out);
double ScalarSum(const float* x, size_t n);
double ScalarDot(const float* a, const float* b, size_t n);
void ScalarSgdStep(const float* grad, float* weight, float* velocity, size_t n,
                   const SgdParams& params);
void ScalarAdamStep(const float* grad, float* weight, float* m, float* v,
                    size_t n, const AdamParams& params);
void ScalarGemm(const float* a, size_t lda, bool trans_a, const float* b,
                size_t ldb, bool trans_b, float* c, size_t ldc, size_t m,
                size_t n, size_t k, bool accumulate);

// Batch normalization (simd/batchnorm.h): in float, in the kernels' order
// (rows in order per column, no fused multiply-add), so results are equal
// bit for bit; tests also check them against double.
void ScalarBatchNormStatistics(const float* x, size_t rows, size_t cols, float* mean,
                               float* var);
void ScalarBatchNormApply(const float* x, size_t rows, size_t cols, const float* mean,
                          const float* scale, const float* shift, float* y);
void ScalarBatchNormBackward(const float* x, const float* dy, size_t rows, size_t cols,
                             const float* mean, const float* invstd, const float* gamma,
                             float* dx, float* dgamma, float* dbeta);

// Convolution (simd/conv.h), in double: y = conv(x, w) with the weight
// [KH, KW, Cin, Cout]; the backward pass as the plain sums over taps.
struct ConvShape;
void ScalarConvForward(const float* x, const float* w, float* y, const ConvShape& s);
void ScalarConvBackward(const float* x, const float* w, const float* dy, float* dx, float* dw,
                        const ConvShape& s);

// Depthwise convolution and pooling (simd/spatial.h). Depthwise in double;
// pooling in float in the kernels' order (each input pixel gathers its
// windows in (kh, kw) order), so its bits are the kernels'.
void ScalarDepthwiseForward(const float* x, const float* w, float* y, const ConvShape& s);
void ScalarDepthwiseBackward(const float* x, const float* w, const float* dy, float* dx,
                             float* dw, const ConvShape& s);
void ScalarMaxPoolForward(const float* x, float* y, const ConvShape& s);
void ScalarMaxPoolBackward(const float* x, const float* y, const float* dy, float* dx,
                           const ConvShape& s);
void ScalarAvgPoolForward(const float* x, float* y, const ConvShape& s);
void ScalarAvgPoolBackward(const float* dy, float* dx, const ConvShape& s);

// Activations and losses (simd/activation.h, simd/loss.h), computed in double.
void ScalarSigmoidForward(const float* z, float* y, size_t n);
void ScalarSigmoidBackward(const float* y, const float* dy, float* dz, size_t n);
void ScalarTanhForward(const float* z, float* y, size_t n);
void ScalarTanhBackward(const float* y, const float* dy, float* dz, size_t n);
void ScalarSoftmaxForward(const float* z, float* y, size_t rows, size_t cols);
void ScalarSoftmaxBackward(const float* y, const float* dy, float* dz,
                           size_t rows, size_t cols);
double ScalarSoftmaxCrossEntropy(const float* z, const int32_t* labels,
                                 size_t rows, size_t cols, float* probs,
                                 float* dz, float grad_scale);
double ScalarBinaryCrossEntropyWithLogits(const float* z, const float* t,
                                          size_t n, float* dz, float grad_scale);
double ScalarSquaredError(const float* y, const float* t, size_t n, float* dy,
                          float grad_scale);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_SCALAR_H_
