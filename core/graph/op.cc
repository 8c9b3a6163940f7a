#include "core/graph/op.h"

namespace thaw {

const char* ActivationName(Activation activation) {
  switch (activation) {
    case Activation::kLinear: return "linear";
    case Activation::kRelu: return "relu";
    case Activation::kRelu6: return "relu6";
    case Activation::kSigmoid: return "sigmoid";
    case Activation::kTanh: return "tanh";
    case Activation::kSoftmax: return "softmax";
  }
  return "?";
}

TensorView OpCall::in(int i) const {
  const Value& v = *node->in[i];
  return TensorView(v.data, v.ShapeAt(batch), v.layout);
}

TensorView OpCall::out() const {
  const Value& v = *node->out;
  return TensorView(v.data, v.ShapeAt(batch), v.layout);
}

BackwardReads ReadsOf(const Node& node, uint32_t wanted, bool training) {
  return node.op->reads != nullptr ? node.op->reads(node, wanted, training) : BackwardReads();
}

size_t ScratchFloatsOf(const Node& node, size_t batch, int threads, Pass pass,
                       uint32_t wanted) {
  if (node.op->scratch_floats == nullptr) return 0;
  return node.op->scratch_floats(node, batch, threads, pass, wanted);
}

size_t SavedFloatsOf(const Node& node, size_t batch, bool training) {
  if (node.op->saved_floats == nullptr) return 0;
  return node.op->saved_floats(node, batch, training);
}

Activation FinalActivationOf(const Node& node) {
  if (node.op->final_activation == nullptr) return Activation::kLinear;
  return node.op->final_activation(node);
}

Status CheckOf(const Node& node, size_t batch, bool training) {
  return node.op->check != nullptr ? node.op->check(node, batch, training) : Status::Ok();
}

}  // namespace thaw
