// thaw/simd/loss.h — losses fused with their gradients.
//
//   double total = thaw::simd::SoftmaxCrossEntropy(logits, labels, rows, cols,
//                                                  probs, dlogits, 1.0f / rows);
//
// Each kernel returns the *sum* of the per-example (or per-element) losses,
// accumulated in double in a fixed order, and optionally writes the gradient
// of `grad_scale * sum` (pass grad_scale = 1/count for a mean loss; nullptr to
// skip the gradient, as evaluation does). Losses see one batch of outputs
// (batch x classes, a few thousand floats at most), so they run on the calling
// thread. References: Scalar<Op> in simd/scalar.h.
#ifndef THAW_SIMD_LOSS_H_
#define THAW_SIMD_LOSS_H_

#include <cstddef>
#include <cstdint>


namespace thaw {
namespace simd {

// Sparse categorical cross-entropy on logits z [rows, cols] with integer
// labels in [0, cols): loss_r = logsumexp(z_r) - z_r[label_r], computed
// stably. probs (may be nullptr) receives softmax(z); dz (may be nullptr,
// may be z) receives grad_scale * (softmax(z) - onehot(label)).
double SoftmaxCrossEntropy(const float* z, const int32_t* labels, size_t rows,
                           size_t cols, float* probs, float* dz,
                           float grad_scale);

// Binary cross-entropy on logits z with targets t in [0, 1], elementwise:
// loss = max(z, 0) - z * t + log(1 + exp(-|z|)). dz (may be nullptr, may be
// z) receives grad_scale * (sigmoid(z) - t).
double BinaryCrossEntropyWithLogits(const float* z, const float* t, size_t n,
                                    float* dz, float grad_scale);

// Squared error: loss = (y - t)^2 summed. dy (may be nullptr, may be y)
// receives grad_scale * 2 * (y - t).
double SquaredError(const float* y, const float* t, size_t n, float* dy,
                    float grad_scale);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_LOSS_H_
