#include "core/ops/activation.h"

#include <cstring>

#include "simd/activation.h"
#include "simd/elementwise.h"

namespace thaw {
namespace ops {

void ActivationForward(Activation activation, const float* x, float* y, size_t rows,
                       size_t cols, ThreadPool& pool) {
  const size_t n = rows * cols;
  switch (activation) {
    case Activation::kLinear:
      if (y != x) std::memcpy(y, x, n * sizeof(float));
      break;
    case Activation::kRelu: simd::ReluForward(x, y, n, pool); break;
    case Activation::kRelu6: simd::Relu6Forward(x, y, n, pool); break;
    case Activation::kSigmoid: simd::SigmoidForward(x, y, n, pool); break;
    case Activation::kTanh: simd::TanhForward(x, y, n, pool); break;
    case Activation::kSoftmax: simd::SoftmaxForward(x, y, rows, cols, pool); break;
  }
}

void ActivationBackward(Activation activation, const float* y, const float* dy, float* dx,
                        size_t rows, size_t cols, ThreadPool& pool) {
  const size_t n = rows * cols;
  switch (activation) {
    case Activation::kLinear:
      if (dx != dy) std::memcpy(dx, dy, n * sizeof(float));
      break;
    case Activation::kRelu: simd::ReluBackward(y, dy, dx, n, pool); break;
    case Activation::kRelu6: simd::Relu6Backward(y, dy, dx, n, pool); break;
    case Activation::kSigmoid: simd::SigmoidBackward(y, dy, dx, n, pool); break;
    case Activation::kTanh: simd::TanhBackward(y, dy, dx, n, pool); break;
    case Activation::kSoftmax: simd::SoftmaxBackward(y, dy, dx, rows, cols, pool); break;
  }
}

namespace {

// Softmax normalises along the last axis: rows are everything before it.
size_t Columns(const Value& v) { return v.shape.rank() == 0 ? 1 : v.shape[v.shape.rank() - 1]; }

Status Infer(const Node& node, Value* out) {
  const Value& x = *node.in[0];
  out->shape = x.shape;
  out->batched = x.batched;
  out->layout = x.layout;
  return Status::Ok();
}

void Forward(const OpCall& c) {
  const size_t cols = Columns(*c.node->in[0]);
  ActivationForward(c.attrs<ActivationAttrs>().activation, c.node->in[0]->data,
                    c.node->out->data, c.out_elements() / cols, cols, *c.pool);
}

void Backward(const OpCall& c) {
  const size_t cols = Columns(*c.node->in[0]);
  ActivationBackward(c.ToUndo(c.attrs<ActivationAttrs>().activation), c.node->out->data,
                     c.dout(), c.din[0], c.out_elements() / cols, cols, *c.pool);
}

BackwardReads Reads(const Node&, uint32_t, bool) {
  BackwardReads r;
  r.output = true;
  return r;
}

Activation Final(const Node& node) { return node.attrs.As<ActivationAttrs>().activation; }

}  // namespace

const OpDef kActivation = {
    "activation", 1, 1, Infer, Forward, Backward, Reads,
    /*scratch_floats=*/nullptr, /*saved_floats=*/nullptr, /*aliases_input=*/false, Final,
    /*check=*/nullptr, /*commit=*/nullptr, /*channel_affine=*/nullptr, /*takes_affine=*/false,
    /*training_differs=*/false, /*masks_input=*/false,
};

}  // namespace ops

Status ActivationLayer::Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) {
  ActivationAttrs attrs;
  attrs.activation = activation_;
  return builder.AddNode(ops::kActivation, OpAttrs::Of(attrs), inputs, output);
}

}  // namespace thaw
