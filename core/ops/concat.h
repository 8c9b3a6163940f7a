// thaw/core/ops/concat.h — Keras Concatenate, along the last axis.
//
//   thaw::Symbol both = model.Call(thaw::Concatenate::Make(), {a, b});  // [.., fa + fb]
//
// Inputs agree on every dimension but the last (channels, for NHWC images).
#ifndef THAW_CORE_OPS_CONCAT_H_
#define THAW_CORE_OPS_CONCAT_H_

#include <memory>

#include "core/graph/layer.h"
#include "core/graph/op.h"

namespace thaw {
namespace ops {
// y[..., a | b | ...] from inputs that differ in their last dimension only.
extern const OpDef kConcat;
}  // namespace ops

class Concatenate : public Layer {
 public:
  static std::unique_ptr<Layer> Make() { return std::make_unique<Concatenate>(); }
  const char* kind() const override { return "concatenate"; }
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;
};

}  // namespace thaw

#endif  // THAW_CORE_OPS_CONCAT_H_
