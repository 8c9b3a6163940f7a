#include "core/ops/concat.h"

#include <cstring>

namespace thaw {
namespace ops {
namespace {

size_t Last(const Value& v) { return v.shape[v.shape.rank() - 1]; }

Status Infer(const Node& node, Value* out) {
  const Value& first = *node.in[0];
  if (first.shape.rank() == 0) return InvalidArgument("cannot concatenate scalars");
  size_t last = 0;
  for (int i = 0; i < node.num_inputs; ++i) {
    const Value& v = *node.in[i];
    bool same = v.batched == first.batched && v.shape.rank() == first.shape.rank();
    for (int d = 0; same && d + 1 < v.shape.rank(); ++d) same = v.shape[d] == first.shape[d];
    if (!same) {
      return InvalidArgument("input %d has shape %s, input 0 %s; they may differ in the last "
                             "dimension only",
                             i, v.shape.ToString().c_str(), first.shape.ToString().c_str());
    }
    last += Last(v);
  }
  size_t dims[kMaxRank];
  for (int d = 0; d < first.shape.rank(); ++d) dims[d] = first.shape[d];
  dims[first.shape.rank() - 1] = last;
  out->shape = Shape(dims, first.shape.rank());
  out->batched = first.batched;
  out->layout = first.layout;
  return Status::Ok();
}

// Each row of the output is the inputs' rows side by side; forward copies
// them in, backward copies the gradient's pieces out.
template <bool kForward>
void Copy(const OpCall& c) {
  const size_t width = Last(*c.node->out);
  const size_t rows = c.out_elements() / width;
  size_t column = 0;
  for (int i = 0; i < c.node->num_inputs; ++i) {
    const size_t w = Last(*c.node->in[i]);
    float* part = kForward ? c.node->in[i]->data : c.din[i];
    if (part != nullptr) {
      float* whole = kForward ? c.node->out->data : c.dout();
      for (size_t r = 0; r < rows; ++r) {
        float* a = whole + r * width + column;
        float* b = part + r * w;
        if (kForward) {
          std::memcpy(a, b, w * sizeof(float));
        } else {
          std::memcpy(b, a, w * sizeof(float));
        }
      }
    }
    column += w;
  }
}

}  // namespace

const OpDef kConcat = {
    "concatenate", 1, kMaxNodeInputs, Infer, Copy<true>, Copy<false>, /*reads=*/nullptr,
    /*scratch_floats=*/nullptr, /*saved_floats=*/nullptr, /*aliases_input=*/false,
    /*final_activation=*/nullptr, /*check=*/nullptr, /*commit=*/nullptr,
    /*channel_affine=*/nullptr, /*takes_affine=*/false,
    /*training_differs=*/false, /*masks_input=*/false,
};

}  // namespace ops

Status Concatenate::Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) {
  return builder.AddNode(ops::kConcat, OpAttrs(), inputs, output);
}

}  // namespace thaw
