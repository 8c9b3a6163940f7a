#include "core/graph/layer.h"

namespace thaw {

Value* LayerBuilder::Declare(const char* suffix, const Shape& shape, VariableRole role,
                             const FileFormat& file) {
  Value* v = graph_->AddVariable(shape);
  v->variable = static_cast<int>(variables_->size());  // its index once created
  DeclaredVariable d;
  d.name = name_ + "." + suffix;
  d.shape = shape;
  d.role = role;
  d.file = file;
  d.value = v;
  d.layer = layer_;
  variables_->push_back(d);
  return v;
}

Value* LayerBuilder::Parameter(const char* suffix, const Shape& shape, const FileFormat& file) {
  return Declare(suffix, shape, VariableRole::kParameter, file);
}

Value* LayerBuilder::Statistic(const char* suffix, const Shape& shape, const FileFormat& file) {
  return Declare(suffix, shape, VariableRole::kStatistic, file);
}

Status LayerBuilder::AddNode(const OpDef& op, const OpAttrs& attrs, Span<Value* const> inputs,
                             Value** out) {
  Status s = graph_->AddNode(op, attrs, inputs, layer_, out);
  if (!s.ok()) return Status(s.code(), name_ + ": " + s.message());
  return Status::Ok();
}

void Layer::SetTrainable(bool trainable) {
  trainable_ = trainable;
  for (const Variable& v : variables_) {
    if (v.role() == VariableRole::kParameter) {
      Status s = v.set_trainable(trainable);
      THAW_CHECK(s.ok());  // a parameter of the layer's own set
    }
  }
}

bool Layer::trainable() const {
  if (variables_.empty()) return trainable_;
  for (const Variable& v : variables_) {
    if (v.trainable()) return true;
  }
  return false;
}

}  // namespace thaw
