// thaw/core/ops/activation.h — ReLU, sigmoid, tanh and softmax, as layers and
// as one op.
//
//   model.Add(thaw::Dense::Make(128));
//   model.Add(thaw::ReLU());             // Keras ReLU(); ReLU6(), Sigmoid(), Tanh(), Softmax()
//
// Softmax works along the last axis. Every backward pass reads the forward
// output (ReLU: y > 0 exactly where x > 0), so the input need not be kept.
#ifndef THAW_CORE_OPS_ACTIVATION_H_
#define THAW_CORE_OPS_ACTIVATION_H_

#include <cstddef>
#include <memory>

#include "core/graph/layer.h"
#include "core/graph/op.h"
#include "platform/threads.h"

namespace thaw {

struct ActivationAttrs {
  Activation activation = Activation::kLinear;
};

namespace ops {

// y = f(x); attrs ActivationAttrs. One input, any shape.
extern const OpDef kActivation;

// y = f(x) over `rows` rows of `cols` (softmax normalises each row); y may be x.
void ActivationForward(Activation activation, const float* x, float* y, size_t rows,
                       size_t cols, ThreadPool& pool);
// dx = dy * f'(x), computed from the output y; dx may be dy.
void ActivationBackward(Activation activation, const float* y, const float* dy, float* dx,
                        size_t rows, size_t cols, ThreadPool& pool);

}  // namespace ops

// An activation as a layer of its own (Keras ReLU(), Activation('sigmoid')...).
class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(Activation activation) : activation_(activation) {}
  const char* kind() const override { return ActivationName(activation_); }
  Activation activation() const { return activation_; }
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;

 private:
  Activation activation_;
};

inline std::unique_ptr<Layer> ReLU() { return std::make_unique<ActivationLayer>(Activation::kRelu); }
// MobileNet's min(max(x, 0), 6): Keras ReLU(max_value=6), PyTorch ReLU6.
inline std::unique_ptr<Layer> ReLU6() { return std::make_unique<ActivationLayer>(Activation::kRelu6); }
inline std::unique_ptr<Layer> Sigmoid() { return std::make_unique<ActivationLayer>(Activation::kSigmoid); }
inline std::unique_ptr<Layer> Tanh() { return std::make_unique<ActivationLayer>(Activation::kTanh); }
inline std::unique_ptr<Layer> Softmax() { return std::make_unique<ActivationLayer>(Activation::kSoftmax); }

}  // namespace thaw

#endif  // THAW_CORE_OPS_ACTIVATION_H_
