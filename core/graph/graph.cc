#include "core/graph/graph.h"

#include "core/graph/op.h"
#include "platform/checked.h"

namespace thaw {

Status InitNode(const OpDef& op, const OpAttrs& attrs, Span<Value* const> inputs,
                Node* node, Value* out) {
  const int count = static_cast<int>(inputs.size());
  if (count < op.min_inputs || count > op.max_inputs) {
    if (op.min_inputs == op.max_inputs) {
      return InvalidArgument("%s takes %d input%s, got %d", op.name, op.min_inputs,
                             op.min_inputs == 1 ? "" : "s", count);
    }
    return InvalidArgument("%s takes %d to %d inputs, got %d", op.name, op.min_inputs,
                           op.max_inputs, count);
  }
  for (int i = 0; i < count; ++i) {
    if (inputs[i] == nullptr) {
      return InvalidArgument("input %d is missing (it came from a failed call)", i);
    }
    if (inputs[i]->dtype != DType::kFloat32) {
      return InvalidArgument("input %d is %s; %s takes float32", i,
                             DTypeName(inputs[i]->dtype), op.name);
    }
  }
  node->op = &op;
  node->attrs = attrs;
  node->num_inputs = count;
  for (int i = 0; i < count; ++i) node->in[i] = inputs[i];
  node->out = out;
  out->producer = node;
  out->dtype = DType::kFloat32;
  THAW_RETURN_IF_ERROR(op.infer(*node, out));
  size_t bytes;
  if (!out->shape.Bytes(1, sizeof(float), &bytes)) {
    return InvalidArgument("%s: the output shape %s has more elements than memory can hold",
                           op.name, out->shape.ToString().c_str());
  }
  return Status::Ok();
}

bool Graph::ValueBytes(size_t batch, size_t* bytes) const {
  size_t total = 0;
  for (const Value& v : values_) {
    size_t b;
    if (!v.shape.Bytes(v.batched ? batch : 1, sizeof(float), &b) || !CheckedAdd(total, b, &total)) {
      return false;
    }
  }
  if (total > kMaxBytes) return false;
  *bytes = total;
  return true;
}

Value* Graph::NewValue() {
  values_.emplace_back();
  Value* v = &values_.back();
  v->index = num_values() - 1;
  return v;
}

Value* Graph::AddInput(const Shape& shape, Layout layout) {
  Value* v = NewValue();
  v->shape = shape;
  v->batched = true;
  v->layout = layout;
  return v;
}

Value* Graph::AddVariable(const Shape& shape) {
  Value* v = NewValue();
  v->shape = shape;
  return v;
}

Status Graph::AddNode(const OpDef& op, const OpAttrs& attrs, Span<Value* const> inputs,
                      int layer, Value** out) {
  Node node;
  Value value;
  THAW_RETURN_IF_ERROR(InitNode(op, attrs, inputs, &node, &value));
  nodes_.push_back(node);
  Node* n = &nodes_.back();
  n->index = num_nodes() - 1;
  n->layer = layer;
  Value* v = NewValue();
  const int index = v->index;
  *v = value;
  v->index = index;
  v->producer = n;
  n->out = v;
  *out = v;
  return Status::Ok();
}

}  // namespace thaw
