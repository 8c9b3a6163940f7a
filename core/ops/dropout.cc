#include "core/ops/dropout.h"

#include <cstring>

#include "platform/random.h"
#include "simd/elementwise.h"

namespace thaw {
namespace ops {
namespace {

Status Infer(const Node& node, Value* out) {
  const DropoutAttrs attrs = node.attrs.As<DropoutAttrs>();
  if (!(attrs.rate >= 0.0f && attrs.rate < 1.0f)) {
    return InvalidArgument("rate %g is outside [0, 1)", attrs.rate);
  }
  out->shape = node.in[0]->shape;
  out->batched = node.in[0]->batched;
  out->layout = node.in[0]->layout;
  return Status::Ok();
}

bool Drops(const DropoutAttrs& attrs, bool training) { return training && attrs.rate > 0.0f; }

void Forward(const OpCall& c) {
  const DropoutAttrs attrs = c.attrs<DropoutAttrs>();
  const size_t n = c.out_elements();
  const float* x = c.node->in[0]->data;
  float* y = c.node->out->data;
  if (!Drops(attrs, c.training)) {
    std::memcpy(y, x, n * sizeof(float));
    return;
  }
  // The mask holds 0 or 1 / (1 - rate) per element.
  const float keep_scale = 1.0f / (1.0f - attrs.rate);
  float* mask = c.saved;
  for (size_t i = 0; i < n; ++i) {
    mask[i] = HashUniform(attrs.seed, c.step, i) >= attrs.rate ? keep_scale : 0.0f;
  }
  simd::Mul(x, mask, y, n, *c.pool);
}

void Backward(const OpCall& c) {
  const size_t n = c.out_elements();
  if (!Drops(c.attrs<DropoutAttrs>(), c.training)) {
    std::memcpy(c.din[0], c.dout(), n * sizeof(float));
    return;
  }
  simd::Mul(c.dout(), c.saved, c.din[0], n, *c.pool);
}

size_t SavedFloats(const Node& node, size_t batch, bool training) {
  return Drops(node.attrs.As<DropoutAttrs>(), training) ? node.out->ElementsAt(batch) : 0;
}

}  // namespace

const OpDef kDropout = {
    "dropout", 1, 1, Infer, Forward, Backward, /*reads=*/nullptr, /*scratch_floats=*/nullptr,
    SavedFloats, /*aliases_input=*/false, /*final_activation=*/nullptr, /*check=*/nullptr,
    /*commit=*/nullptr, /*channel_affine=*/nullptr, /*takes_affine=*/false,
    /*training_differs=*/true, /*masks_input=*/false,
};

}  // namespace ops

Status Dropout::Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) {
  DropoutAttrs attrs;
  attrs.rate = rate_;
  attrs.seed = seed_;
  return builder.AddNode(ops::kDropout, OpAttrs::Of(attrs), inputs, output);
}

}  // namespace thaw
