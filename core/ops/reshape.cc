#include "core/ops/reshape.h"

#include <cstring>

namespace thaw {
namespace ops {
namespace {

Status Infer(const Node& node, Value* out) {
  const Value& x = *node.in[0];
  const ReshapeAttrs attrs = node.attrs.As<ReshapeAttrs>();
  if (attrs.shape.num_elements() != x.shape.num_elements() ||
      (x.batched && attrs.shape.rank() >= kMaxRank)) {
    return InvalidArgument("cannot reshape %s (%zu elements) to %s", x.shape.ToString().c_str(),
                           x.shape.num_elements(), attrs.shape.ToString().c_str());
  }
  out->shape = attrs.shape;
  out->batched = x.batched;
  out->layout = attrs.layout;
  return Status::Ok();
}

// Runners bind the output to the input's bytes and skip this; it is here for
// a runner that cannot (the copy is then the whole op).
void Forward(const OpCall& c) {
  if (c.node->out->data != c.node->in[0]->data) {
    std::memcpy(c.node->out->data, c.node->in[0]->data, c.out_elements() * sizeof(float));
  }
}

void Backward(const OpCall& c) {
  if (c.din[0] != c.dout()) std::memcpy(c.din[0], c.dout(), c.out_elements() * sizeof(float));
}

}  // namespace

const OpDef kReshape = {
    "reshape", 1, 1, Infer, Forward, Backward, /*reads=*/nullptr, /*scratch_floats=*/nullptr,
    /*saved_floats=*/nullptr, /*aliases_input=*/true, /*final_activation=*/nullptr,
    /*check=*/nullptr, /*commit=*/nullptr, /*channel_affine=*/nullptr, /*takes_affine=*/false,
    /*training_differs=*/false, /*masks_input=*/false,
};

}  // namespace ops

Status Flatten::Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) {
  ReshapeAttrs attrs;
  if (inputs.size() == 1 && inputs[0] != nullptr) {
    attrs.shape = Shape{inputs[0]->shape.num_elements()};
  }
  return builder.AddNode(ops::kReshape, OpAttrs::Of(attrs), inputs, output);
}

Status Reshape::Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) {
  ReshapeAttrs attrs;
  attrs.shape = shape_;
  attrs.layout = layout_;
  return builder.AddNode(ops::kReshape, OpAttrs::Of(attrs), inputs, output);
}

}  // namespace thaw
