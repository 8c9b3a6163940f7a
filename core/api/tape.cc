#include "core/api/tape.h"

#include <cstring>
#include <new>
#include <type_traits>

#include "core/exec/executor.h"
#include "core/graph/graph.h"
#include "core/graph/op.h"
#include "core/ops/activation.h"
#include "core/ops/arithmetic.h"
#include "core/ops/matmul.h"
#include "core/ops/reduce.h"

namespace thaw {

// One recorded value: a variable's leaf, a constant, or an op's output (then
// `node` is the op). Lives in the arena's transient part. `value` comes
// first, so the entry of a graph Value* is a cast away.
struct TapeEntry {
  Value value;
  Node node;
  TapeEntry* prev;       // the entry recorded just before this one
  float* saved;          // the node's forward-to-backward state, if any
  uint32_t wanted;       // inputs that required a gradient when it was recorded
  bool requires_grad;    // a watched or trainable leaf reaches it
  bool needed;           // Gradient(): on a path to the target
  bool written;          // Gradient(): its gradient holds a first contribution
};
static_assert(std::is_standard_layout<TapeEntry>::value, "Value must be first");

namespace {
TapeEntry* EntryOf(Value* v) { return reinterpret_cast<TapeEntry*>(v); }
size_t Elements(const TapeEntry* e) { return e->value.shape.num_elements(); }
}  // namespace

// ---- Tensor ----

TensorView Tensor::value() const {
  if (entry_ == nullptr) return {};
  return TensorView(entry_->value.data, entry_->value.shape);
}

float Tensor::scalar() const {
  THAW_CHECK(entry_ != nullptr && Elements(entry_) == 1);
  return entry_->value.data[0];
}

// ---- GradientTape: recording ----

GradientTape::GradientTape(VariableSet* vars, ThreadPool& pool)
    : vars_(vars), pool_(&pool) {
  Reset();
}

void GradientTape::Reset() {
  status_ = Status::Ok();
  last_ = nullptr;
  leaves_ = nullptr;
  num_leaves_ = 0;
  epoch_ = Arena::NewOwnerToken();
  // A step begins: freeze changes take effect here.
  Status planned = vars_->Prepare();
  vars_->arena().ClaimTransient(epoch_);
  if (!planned.ok()) {
    status_ = planned;
    return;
  }
  num_leaves_ = vars_->size();
  leaves_ = static_cast<TapeEntry**>(vars_->arena().AllocateTransient(
      sizeof(TapeEntry*) * static_cast<size_t>(num_leaves_ > 0 ? num_leaves_ : 1),
      Region::kScratch, alignof(TapeEntry*)));
  if (leaves_ == nullptr) {
    Fail(ResourceExhausted(
        "GradientTape: the arena has no room for the tape's index of %d "
        "variables (%zu bytes free)",
        num_leaves_, vars_->arena().free_bytes()));
    return;
  }
  for (int i = 0; i < num_leaves_; ++i) leaves_[i] = nullptr;
}

void GradientTape::Fail(Status status) {
  if (status_.ok()) status_ = std::move(status);
}

Status GradientTape::OutOfArena(const char* what, size_t bytes) const {
  const Arena& arena = vars_->arena();
  return ResourceExhausted(
      "GradientTape: %s needs %zu bytes, but the arena has %zu bytes free "
      "(capacity %zu, of which weights, gradients and optimizer state take "
      "%zu); give the arena more memory",
      what, bytes, arena.free_bytes(), arena.capacity(), arena.persistent_end());
}

float* GradientTape::Allocate(size_t floats, Region region, const char* what) {
  if (floats == 0) return nullptr;
  void* p = vars_->arena().AllocateTransient(floats * sizeof(float), region);
  if (p == nullptr) Fail(OutOfArena(what, floats * sizeof(float)));
  return static_cast<float*>(p);
}

TapeEntry* GradientTape::NewEntry(const char* name) {
  if (!status_.ok()) return nullptr;
  if (vars_->arena().transient_owner() != epoch_) {
    Fail(FailedPrecondition(
        "GradientTape: %s: another tape or step has reset the arena since this "
        "tape began; its tensors are gone. Record one step at a time",
        name));
    return nullptr;
  }
  void* memory = vars_->arena().AllocateTransient(sizeof(TapeEntry), Region::kScratch,
                                                  alignof(TapeEntry));
  if (memory == nullptr) {
    Fail(OutOfArena(name, sizeof(TapeEntry)));
    return nullptr;
  }
  TapeEntry* e = new (memory) TapeEntry();
  e->prev = last_;
  last_ = e;
  return e;
}

TapeEntry* GradientTape::LeafFor(const Variable& variable, const char* op) {
  if (!status_.ok()) return nullptr;
  if (variable.set() != vars_) {
    Fail(InvalidArgument("GradientTape: %s: variable '%s' belongs to another VariableSet",
                         op, variable.valid() ? variable.name().c_str() : "(invalid)"));
    return nullptr;
  }
  const int index = variable.index();
  if (index >= num_leaves_) {
    Fail(FailedPrecondition(
        "GradientTape: %s: variable '%s' was created after this tape began; "
        "start a new tape",
        op, variable.name().c_str()));
    return nullptr;
  }
  if (leaves_[index] != nullptr) return leaves_[index];
  TapeEntry* leaf = NewEntry(op);
  if (leaf == nullptr) return nullptr;
  leaf->value.shape = variable.shape();
  leaf->value.variable = index;
  leaf->value.data = variable.value().data();
  // Watched when it has a gradient buffer in this step's plan.
  leaf->requires_grad = vars_->trainable(index) && vars_->planned_trainable(index);
  leaves_[index] = leaf;
  return leaf;
}

TapeEntry* GradientTape::Resolve(const Operand& operand, const char* op) {
  if (!status_.ok()) return nullptr;
  switch (operand.kind_) {
    case Operand::kVariable:
      return LeafFor(operand.variable_, op);
    case Operand::kConstant:
      return Constant(operand.constant_).entry_;
    case Operand::kTensor:
      break;
  }
  const Tensor& t = operand.tensor_;
  if (t.entry_ == nullptr || t.epoch_ != epoch_) {
    Fail(InvalidArgument(
        "GradientTape: %s: the tensor operand %s", op,
        t.entry_ == nullptr ? "is invalid (it came from a failed operation)"
                            : "was recorded on another tape or before Reset()"));
    return nullptr;
  }
  return t.entry_;
}

void GradientTape::Watch(const Variable& variable) {
  TapeEntry* leaf = LeafFor(variable, "Watch");
  if (leaf != nullptr) leaf->requires_grad = true;
}

void GradientTape::Watch(const Tensor& tensor) {
  TapeEntry* entry = Resolve(tensor, "Watch");
  if (entry != nullptr) entry->requires_grad = true;
}

Tensor GradientTape::Constant(const Shape& shape, Span<const float> values) {
  size_t bytes;
  if (!shape.Bytes(1, sizeof(float), &bytes)) {
    Fail(InvalidArgument("GradientTape: Constant: shape %s has more elements than memory can hold",
                         shape.ToString().c_str()));
    return Tensor();
  }
  if (values.size() != shape.num_elements()) {
    Fail(InvalidArgument("GradientTape: Constant: got %zu values for shape %s (%zu elements)",
                         values.size(), shape.ToString().c_str(), shape.num_elements()));
    return Tensor();
  }
  TapeEntry* e = NewEntry("Constant");
  if (e == nullptr) return Tensor();
  e->value.shape = shape;
  e->value.data = Allocate(shape.num_elements(), Region::kActivations, "Constant");
  if (e->value.data == nullptr) return Tensor();
  std::memcpy(e->value.data, values.data(), values.size() * sizeof(float));
  return Tensor(e, epoch_);
}

Tensor GradientTape::Constant(float value) { return Constant(Shape{}, {value}); }

OpCall GradientTape::CallOf(TapeEntry* e, Pass pass, const char* what) {
  OpCall call;
  call.node = &e->node;
  call.pool = pool_;
  call.training = true;
  call.saved = e->saved;
  const uint32_t wanted = pass == Pass::kBackward ? e->wanted : 0;
  call.scratch = Allocate(ScratchFloatsOf(e->node, 1, pool_->num_threads(), pass, wanted),
                          Region::kScratch, what);
  return call;
}

Tensor GradientTape::Record(const OpDef& op, const OpAttrs& attrs,
                            std::initializer_list<Operand> operands, const char* name) {
  TapeEntry* inputs[kMaxNodeInputs];
  Value* values[kMaxNodeInputs];
  int count = 0;
  for (const Operand& operand : operands) {
    inputs[count] = Resolve(operand, name);
    if (inputs[count] == nullptr) return Tensor();
    values[count] = &inputs[count]->value;
    ++count;
  }
  TapeEntry* e = NewEntry(name);
  if (e == nullptr) return Tensor();
  Status inferred = InitNode(op, attrs, Span<Value* const>(values, count), &e->node, &e->value);
  if (!inferred.ok()) {
    Fail(Status(inferred.code(), std::string("GradientTape: ") + name + ": " + inferred.message()));
    return Tensor();
  }
  // Which inputs the node differentiates is decided now, as TensorFlow's
  // tape does: a later Watch does not reach back.
  if (op.backward != nullptr) {
    for (int i = 0; i < count; ++i) {
      if (inputs[i]->requires_grad) e->wanted |= 1u << i;
    }
  }
  e->requires_grad = e->wanted != 0;
  Value& out = e->value;
  if (op.aliases_input) {
    out.data = values[0]->data;
  } else {
    out.data = Allocate(out.shape.num_elements(), Region::kActivations, name);
    if (out.data == nullptr) return Tensor();
  }
  e->saved = Allocate(SavedFloatsOf(e->node, 1, true), Region::kActivations, name);
  if (!status_.ok()) return Tensor();
  // The op's scratch lives for this call only.
  Arena& arena = vars_->arena();
  const Arena::Mark mark = arena.mark();
  const OpCall call = CallOf(e, Pass::kForward, name);
  if (!status_.ok()) return Tensor();
  if (!op.aliases_input) op.forward(call);
  arena.Release(mark);
  return Tensor(e, epoch_);
}

namespace {
OpAttrs ReluAttrs() {
  ActivationAttrs attrs;
  attrs.activation = Activation::kRelu;
  return OpAttrs::Of(attrs);
}
}  // namespace

Tensor GradientTape::Add(Operand a, Operand b) { return Record(ops::kAdd, OpAttrs(), {a, b}, "Add"); }
Tensor GradientTape::Sub(Operand a, Operand b) { return Record(ops::kSub, OpAttrs(), {a, b}, "Sub"); }
Tensor GradientTape::Mul(Operand a, Operand b) { return Record(ops::kMul, OpAttrs(), {a, b}, "Mul"); }
Tensor GradientTape::Square(Operand a) { return Record(ops::kSquare, OpAttrs(), {a}, "Square"); }
Tensor GradientTape::MatMul(Operand a, Operand b) {
  return Record(ops::kMatMul, OpAttrs(), {a, b}, "MatMul");
}
Tensor GradientTape::Sum(Operand a) { return Record(ops::kSum, OpAttrs(), {a}, "Sum"); }
Tensor GradientTape::Mean(Operand a) { return Record(ops::kMean, OpAttrs(), {a}, "Mean"); }
Tensor GradientTape::Relu(Operand a) { return Record(ops::kActivation, ReluAttrs(), {a}, "Relu"); }

// ---- GradientTape: gradients ----

// Marks the entries between the target and the watched leaves, gives each a
// gradient buffer (a trainable variable's is its own), then runs the
// recorded nodes' backward passes in reverse, as a model's program does:
// the first contribution to a gradient is written in place, later ones are
// added. Entries no watched leaf reaches get nothing.
Status GradientTape::Backward(TapeEntry* target) {
  for (TapeEntry* e = last_; e != nullptr; e = e->prev) {
    e->needed = false;
    e->written = false;
    e->value.grad = nullptr;
  }
  target->needed = target->requires_grad;
  for (TapeEntry* e = target; e != nullptr; e = e->prev) {
    if (!e->needed) continue;
    for (int i = 0; i < e->node.num_inputs; ++i) {
      if (e->wanted & (1u << i)) EntryOf(e->node.in[i])->needed = true;
    }
  }
  for (TapeEntry* e = target; e != nullptr; e = e->prev) {
    if (!e->needed) continue;
    const int var = e->value.variable;
    if (var >= 0 && vars_->planned_trainable(var) && vars_->trainable(var) &&
        vars_->planned_gradient_buffers()) {  // not when updating in a backward pass
      e->value.grad = vars_->gradient_data(var);
    } else {
      e->value.grad = Allocate(Elements(e), Region::kScratch, "a gradient");
      if (e->value.grad == nullptr) return status_;
    }
  }
  if (!target->needed) return Status::Ok();
  for (size_t i = 0; i < Elements(target); ++i) target->value.grad[i] = 1.0f;
  target->written = true;
  Arena& arena = vars_->arena();
  for (TapeEntry* e = target; e != nullptr; e = e->prev) {
    if (!e->needed || e->wanted == 0) continue;
    const Arena::Mark mark = arena.mark();
    OpCall call = CallOf(e, Pass::kBackward, "the backward pass");
    uint32_t accumulate = 0;
    for (int i = 0; i < e->node.num_inputs; ++i) {
      if (!(e->wanted & (1u << i))) continue;
      TapeEntry* input = EntryOf(e->node.in[i]);
      if (!input->written) {
        input->written = true;
        call.din[i] = input->value.grad;
      } else {
        accumulate |= 1u << i;
        call.din[i] = Allocate(Elements(input), Region::kScratch, "a gradient term");
      }
    }
    if (!status_.ok()) return status_;
    RunBackward(call, accumulate);
    arena.Release(mark);
  }
  return Status::Ok();
}

template <class EntryOf>
Status GradientTape::Differentiate(const Tensor& target, size_t num_sources,
                                   Span<TensorView> grads, const EntryOf& entry_of) {
  if (grads.size() != num_sources) {
    return InvalidArgument("GradientTape::Gradient: %zu sources but room for %zu gradients",
                           num_sources, grads.size());
  }
  for (TensorView& g : grads) g = TensorView();
  TapeEntry* t = Resolve(target, "Gradient");
  if (!status_.ok()) return status_;
  THAW_RETURN_IF_ERROR(Backward(t));
  for (size_t i = 0; i < num_sources; ++i) {
    const TapeEntry* e = entry_of(i);
    if (e != nullptr && e->needed && e->written) {
      grads[i] = TensorView(e->value.grad, e->value.shape);
    }
  }
  return Status::Ok();
}

Status GradientTape::Gradient(const Tensor& target, Span<const Variable> sources,
                              Span<TensorView> grads) {
  for (const Variable& v : sources) {
    if (v.set() != vars_) {
      return InvalidArgument("GradientTape::Gradient: a source variable belongs to another VariableSet");
    }
  }
  // A variable never read on this tape has no leaf: its gradient is absent.
  return Differentiate(target, sources.size(), grads, [&](size_t i) -> const TapeEntry* {
    const int index = sources[i].index();
    return index < num_leaves_ ? leaves_[index] : nullptr;
  });
}

Status GradientTape::Gradient(const Tensor& target, Span<const Tensor> sources,
                              Span<TensorView> grads) {
  for (const Tensor& s : sources) Resolve(s, "Gradient");  // records a bad source
  return Differentiate(target, sources.size(), grads,
                       [&](size_t i) -> const TapeEntry* { return sources[i].entry_; });
}

}  // namespace thaw
