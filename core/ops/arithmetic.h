// thaw/core/ops/arithmetic.h — add, subtract, multiply, square: the tape's
// arithmetic, and Keras's Add layer (residual connections).
//
//   thaw::Symbol h = model.Call(thaw::Dense::Make(64, thaw::Activation::kRelu), x);
//   thaw::Symbol g = model.Call(thaw::Dense::Make(64), h);
//   thaw::Symbol r = model.Call(thaw::Add::Make(), {h, g});   // h + g, the skip
//
// The binary ops take equal shapes, or one operand with a single element
// that is not batched (a scalar, broadcast over the other).
#ifndef THAW_CORE_OPS_ARITHMETIC_H_
#define THAW_CORE_OPS_ARITHMETIC_H_

#include <memory>

#include "core/graph/layer.h"
#include "core/graph/op.h"

namespace thaw {
namespace ops {
extern const OpDef kAdd;     // a + b
extern const OpDef kSub;     // a - b
extern const OpDef kMul;     // a * b
extern const OpDef kSquare;  // a * a
}  // namespace ops

// Keras Add: the sum of two or more inputs of one shape.
class Add : public Layer {
 public:
  static std::unique_ptr<Layer> Make() { return std::make_unique<Add>(); }
  const char* kind() const override { return "add"; }
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;
};

}  // namespace thaw

#endif  // THAW_CORE_OPS_ARITHMETIC_H_
