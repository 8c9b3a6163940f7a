// thaw/simd/optimizer.h — one optimizer step over one variable's floats.
//
//   thaw::simd::AdamStep(grad, weight, m, v, n, params, pool);
//
// The update rules are PyTorch's (torch.optim.SGD, Adam, AdamW), so results
// agree with it to float rounding. Hyper-parameters that depend on the step
// count (bias corrections) are computed by the caller in double and passed in.
// grad is read only; weight and state arrays are updated in place; no array
// may overlap another. Results are the same bits for any thread count.
#ifndef THAW_SIMD_OPTIMIZER_H_
#define THAW_SIMD_OPTIMIZER_H_

#include <cstddef>

#include "platform/threads.h"

namespace thaw {
namespace simd {

struct SgdParams {
  float learning_rate = 0.01f;
  float momentum = 0.0f;      // 0 disables the velocity buffer
  float weight_decay = 0.0f;  // L2: grad += weight_decay * weight
  bool nesterov = false;
};

// d = g + wd*w;  if momentum: vel = momentum*vel + d, d = nesterov ? d + momentum*vel : vel;
// w -= lr * d.  velocity may be nullptr only when momentum == 0.
void SgdStep(const float* grad, float* weight, float* velocity, size_t n,
             const SgdParams& params, ThreadPool& pool);

struct AdamParams {
  float learning_rate = 0.001f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  float weight_decay = 0.0f;
  bool decoupled_weight_decay = false;  // true: AdamW
  // For this variable's step t (1-based): lr / (1 - beta1^t) and sqrt(1 - beta2^t).
  float step_size = 0.001f / 0.1f;
  float bias_correction2_sqrt = 0.0316227766f;
};

// Adam:  g += wd*w.   AdamW: w *= 1 - lr*wd.
// m += (1-beta1)*(g - m);  v = beta2*v + (1-beta2)*g*g;
// w -= step_size * m / (sqrt(v) / bias_correction2_sqrt + epsilon).
void AdamStep(const float* grad, float* weight, float* m, float* v, size_t n,
              const AdamParams& params, ThreadPool& pool);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_OPTIMIZER_H_
