// thaw/core/ops/reshape.h — Flatten and Reshape: the same bytes, another shape.
//
//   model.Add(thaw::Flatten::Make());                     // [28,28,1] -> [784] per example
//   model.Add(thaw::Reshape::Make(thaw::Shape{7, 7, 16}));  // [784] -> [7,7,16]
//
// Neither copies: the output is a view of the input's buffer (a runner binds
// it to the same bytes), so they cost no memory and no time.
#ifndef THAW_CORE_OPS_RESHAPE_H_
#define THAW_CORE_OPS_RESHAPE_H_

#include <memory>

#include "core/graph/layer.h"
#include "core/graph/op.h"

namespace thaw {

struct ReshapeAttrs {
  Shape shape;  // per example (batched input) or whole
  Layout layout = Layout::kAny;
};

namespace ops {
extern const OpDef kReshape;
}  // namespace ops

// Keras Flatten: one feature axis per example.
class Flatten : public Layer {
 public:
  static std::unique_ptr<Layer> Make() { return std::make_unique<Flatten>(); }
  const char* kind() const override { return "flatten"; }
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;
};

// Keras Reshape: a new per-example shape with as many elements.
class Reshape : public Layer {
 public:
  explicit Reshape(const Shape& shape, Layout layout = Layout::kAny)
      : shape_(shape), layout_(layout) {}
  static std::unique_ptr<Layer> Make(const Shape& shape, Layout layout = Layout::kAny) {
    return std::make_unique<Reshape>(shape, layout);
  }
  const char* kind() const override { return "reshape"; }
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;

 private:
  Shape shape_;
  Layout layout_;
};

}  // namespace thaw

#endif  // THAW_CORE_OPS_RESHAPE_H_
