#include "core/api/tape.h"

#include <algorithm>
#include <cstring>

#include "simd/elementwise.h"
#include "simd/gemm.h"
#include "simd/reduce.h"

namespace thaw {

enum class TapeOp : uint8_t {
  kLeaf,      // a variable's value (not copied)
  kConstant,  // a copy of caller data
  kAdd,
  kSub,
  kMul,
  kSquare,
  kMatMul,
  kSum,
  kMean,
  kRelu,
};

// One recorded operation. Lives in the arena's transient part.
struct TapeNode {
  TapeOp op;
  bool requires_grad;  // some watched or trainable leaf reaches this node
  bool needed;         // on a path to the current Gradient() target
  int variable;        // kLeaf: the variable's index; otherwise -1
  TapeNode* prev;      // the node recorded just before this one
  TapeNode* in[2];
  Shape shape;
  float* value;
  float* adjoint;      // d target / d value, made by Gradient()
};

namespace {
size_t Elements(const TapeNode* n) { return n->shape.num_elements(); }
}  // namespace

// ---- Tensor ----

TensorView Tensor::value() const {
  if (node_ == nullptr) return {};
  return TensorView(node_->value, node_->shape);
}

float Tensor::scalar() const {
  THAW_CHECK(node_ != nullptr && node_->shape.num_elements() == 1);
  return node_->value[0];
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
  leaves_ = static_cast<TapeNode**>(vars_->arena().AllocateTransient(
      sizeof(TapeNode*) * static_cast<size_t>(num_leaves_ > 0 ? num_leaves_ : 1),
      Region::kScratch, alignof(TapeNode*)));
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

float* GradientTape::Allocate(size_t floats, Region region, const char* what) {
  Arena& arena = vars_->arena();
  void* p = arena.AllocateTransient(floats * sizeof(float), region);
  if (p == nullptr) {
    Fail(ResourceExhausted(
        "GradientTape: %s needs %zu bytes, but the arena has %zu bytes free "
        "(capacity %zu, of which weights, gradients and optimizer state take "
        "%zu); give the arena more memory",
        what, floats * sizeof(float), arena.free_bytes(), arena.capacity(),
        arena.persistent_end()));
  }
  return static_cast<float*>(p);
}

TapeNode* GradientTape::NewNode(TapeOp op, const Shape& shape, TapeNode* a,
                                TapeNode* b, const char* name) {
  if (!status_.ok()) return nullptr;
  if (vars_->arena().transient_owner() != epoch_) {
    Fail(FailedPrecondition(
        "GradientTape: %s: another tape or step has reset the arena since this "
        "tape began; its tensors are gone. Record one step at a time",
        name));
    return nullptr;
  }
  auto* node = static_cast<TapeNode*>(
      vars_->arena().AllocateTransient(sizeof(TapeNode), Region::kScratch,
                                       alignof(TapeNode)));
  if (node == nullptr) {
    Fail(ResourceExhausted(
        "GradientTape: %s needs %zu bytes for its record, but the arena has "
        "%zu bytes free of %zu; give the arena more memory",
        name, sizeof(TapeNode), vars_->arena().free_bytes(),
        vars_->arena().capacity()));
    return nullptr;
  }
  node->op = op;
  node->requires_grad = (a != nullptr && a->requires_grad) ||
                        (b != nullptr && b->requires_grad);
  node->needed = false;
  node->variable = -1;
  node->prev = last_;
  node->in[0] = a;
  node->in[1] = b;
  node->shape = shape;
  node->value = nullptr;
  node->adjoint = nullptr;
  if (op != TapeOp::kLeaf) {
    node->value = Allocate(shape.num_elements(), Region::kActivations, name);
    if (node->value == nullptr) return nullptr;
  }
  last_ = node;
  return node;
}

TapeNode* GradientTape::LeafFor(const Variable& variable, const char* op) {
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
  TapeNode* leaf = NewNode(TapeOp::kLeaf, variable.shape(), nullptr, nullptr, op);
  if (leaf == nullptr) return nullptr;
  leaf->variable = index;
  leaf->value = variable.value().data();
  // Watched when it has a gradient buffer in this step's plan.
  leaf->requires_grad = vars_->trainable(index) && vars_->planned_trainable(index);
  leaves_[index] = leaf;
  return leaf;
}

TapeNode* GradientTape::Resolve(const Operand& operand, const char* op) {
  if (!status_.ok()) return nullptr;
  switch (operand.kind_) {
    case Operand::kVariable:
      return LeafFor(operand.variable_, op);
    case Operand::kConstant:
      return Constant(operand.constant_).node_;
    case Operand::kTensor:
      break;
  }
  const Tensor& t = operand.tensor_;
  if (t.node_ == nullptr || t.epoch_ != epoch_) {
    Fail(InvalidArgument(
        "GradientTape: %s: the tensor operand %s", op,
        t.node_ == nullptr ? "is invalid (it came from a failed operation)"
                           : "was recorded on another tape or before Reset()"));
    return nullptr;
  }
  return t.node_;
}

void GradientTape::Watch(const Variable& variable) {
  TapeNode* leaf = LeafFor(variable, "Watch");
  if (leaf != nullptr) leaf->requires_grad = true;
}

void GradientTape::Watch(const Tensor& tensor) {
  TapeNode* node = Resolve(tensor, "Watch");
  if (node != nullptr) node->requires_grad = true;
}

Tensor GradientTape::Constant(const Shape& shape, Span<const float> values) {
  if (values.size() != shape.num_elements()) {
    Fail(InvalidArgument("GradientTape: Constant: got %zu values for shape %s (%zu elements)",
                         values.size(), shape.ToString().c_str(), shape.num_elements()));
    return Tensor();
  }
  TapeNode* node = NewNode(TapeOp::kConstant, shape, nullptr, nullptr, "Constant");
  if (node == nullptr) return Tensor();
  std::memcpy(node->value, values.data(), values.size() * sizeof(float));
  return Tensor(node, epoch_);
}

Tensor GradientTape::Constant(float value) { return Constant(Shape{}, {value}); }

Tensor GradientTape::Elementwise(TapeOp op, const Operand& a_operand,
                                 const Operand& b_operand, const char* name) {
  TapeNode* a = Resolve(a_operand, name);
  TapeNode* b = Resolve(b_operand, name);
  if (a == nullptr || b == nullptr) return Tensor();
  const size_t na = Elements(a), nb = Elements(b);
  if (a->shape != b->shape && na != 1 && nb != 1) {
    Fail(InvalidArgument(
        "GradientTape: %s: shapes %s and %s differ; operands must have equal "
        "shapes or one must have a single element",
        name, a->shape.ToString().c_str(), b->shape.ToString().c_str()));
    return Tensor();
  }
  const Shape shape = (na == 1 && nb != 1) ? b->shape : a->shape;
  TapeNode* y = NewNode(op, shape, a, b, name);
  if (y == nullptr) return Tensor();
  const size_t n = shape.num_elements();
  ThreadPool& pool = *pool_;
  const bool scalar_a = na == 1 && nb != 1;
  const bool scalar_b = nb == 1 && na != 1;
  switch (op) {
    case TapeOp::kAdd:
      if (scalar_a) {
        simd::AddScalar(b->value, a->value[0], y->value, n, pool);
      } else if (scalar_b) {
        simd::AddScalar(a->value, b->value[0], y->value, n, pool);
      } else {
        simd::Add(a->value, b->value, y->value, n, pool);
      }
      break;
    case TapeOp::kSub:
      if (scalar_a) {  // c - b == (-b) + c exactly
        simd::Scale(b->value, -1.0f, y->value, n, pool);
        simd::AddScalar(y->value, a->value[0], y->value, n, pool);
      } else if (scalar_b) {
        simd::AddScalar(a->value, -b->value[0], y->value, n, pool);
      } else {
        simd::Sub(a->value, b->value, y->value, n, pool);
      }
      break;
    case TapeOp::kMul:
      if (scalar_a) {
        simd::Scale(b->value, a->value[0], y->value, n, pool);
      } else if (scalar_b) {
        simd::Scale(a->value, b->value[0], y->value, n, pool);
      } else {
        simd::Mul(a->value, b->value, y->value, n, pool);
      }
      break;
    default:
      THAW_CHECK(false);
  }
  return Tensor(y, epoch_);
}

Tensor GradientTape::Add(Operand a, Operand b) { return Elementwise(TapeOp::kAdd, a, b, "Add"); }
Tensor GradientTape::Sub(Operand a, Operand b) { return Elementwise(TapeOp::kSub, a, b, "Sub"); }
Tensor GradientTape::Mul(Operand a, Operand b) { return Elementwise(TapeOp::kMul, a, b, "Mul"); }

Tensor GradientTape::Unary(TapeOp op, const Operand& a_operand, const char* name) {
  TapeNode* a = Resolve(a_operand, name);
  if (a == nullptr) return Tensor();
  const bool reduces = op == TapeOp::kSum || op == TapeOp::kMean;
  TapeNode* y = NewNode(op, reduces ? Shape{} : a->shape, a, nullptr, name);
  if (y == nullptr) return Tensor();
  const size_t n = Elements(a);
  ThreadPool& pool = *pool_;
  switch (op) {
    case TapeOp::kSquare:
      simd::Mul(a->value, a->value, y->value, n, pool);
      break;
    case TapeOp::kSum:
      y->value[0] = simd::Sum(a->value, n, pool);
      break;
    case TapeOp::kMean:
      y->value[0] = simd::Sum(a->value, n, pool) / static_cast<float>(n);
      break;
    case TapeOp::kRelu:
      simd::ReluForward(a->value, y->value, n, pool);
      break;
    default:
      THAW_CHECK(false);
  }
  return Tensor(y, epoch_);
}

Tensor GradientTape::Square(Operand a) { return Unary(TapeOp::kSquare, a, "Square"); }
Tensor GradientTape::Sum(Operand a) { return Unary(TapeOp::kSum, a, "Sum"); }
Tensor GradientTape::Mean(Operand a) { return Unary(TapeOp::kMean, a, "Mean"); }
Tensor GradientTape::Relu(Operand a) { return Unary(TapeOp::kRelu, a, "Relu"); }

Tensor GradientTape::MatMul(Operand a_operand, Operand b_operand) {
  TapeNode* a = Resolve(a_operand, "MatMul");
  TapeNode* b = Resolve(b_operand, "MatMul");
  if (a == nullptr || b == nullptr) return Tensor();
  if (a->shape.rank() != 2 || b->shape.rank() != 2 || a->shape[1] != b->shape[0]) {
    Fail(InvalidArgument(
        "GradientTape: MatMul: shapes %s and %s do not multiply; expected "
        "[m,k] x [k,n]",
        a->shape.ToString().c_str(), b->shape.ToString().c_str()));
    return Tensor();
  }
  const size_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
  TapeNode* y = NewNode(TapeOp::kMatMul, Shape{m, n}, a, b, "MatMul");
  if (y == nullptr) return Tensor();
  // Packing buffers: transient, released as soon as the product is done.
  Arena& arena = vars_->arena();
  const Arena::Mark mark = arena.mark();
  float* scratch = nullptr;
  const size_t scratch_floats =
      simd::GemmScratchFloats(m, n, k, pool_->num_threads());
  if (scratch_floats > 0) {
    scratch = Allocate(scratch_floats, Region::kScratch, "MatMul");
    if (scratch == nullptr) return Tensor();
  }
  simd::Gemm(a->value, k, false, b->value, n, false, y->value, n, m, n, k,
             /*accumulate=*/false, scratch, *pool_);
  arena.Release(mark);
  return Tensor(y, epoch_);
}

// ---- GradientTape: gradients ----

float* GradientTape::Scratch(size_t floats) {
  return Allocate(floats, Region::kScratch, "the backward pass");
}

// Adds this node's contribution to its inputs' adjoints.
void GradientTape::BackwardNode(TapeNode* y) {
  ThreadPool& pool = *pool_;
  TapeNode* a = y->in[0];
  TapeNode* b = y->in[1];
  const float* dy = y->adjoint;
  const size_t n = Elements(y);
  auto wants = [](const TapeNode* x) { return x != nullptr && x->adjoint != nullptr; };
  // dx += sign * dy, where x may be a broadcast scalar.
  auto accumulate = [&](TapeNode* x, float sign) {
    if (Elements(x) == n) {
      simd::Axpy(sign, dy, x->adjoint, n, pool);
    } else {
      x->adjoint[0] += sign * simd::Sum(dy, n, pool);
    }
  };
  const Arena::Mark mark = vars_->arena().mark();
  switch (y->op) {
    case TapeOp::kLeaf:
    case TapeOp::kConstant:
      break;
    case TapeOp::kAdd:
      if (wants(a)) accumulate(a, 1.0f);
      if (wants(b)) accumulate(b, 1.0f);
      break;
    case TapeOp::kSub:
      if (wants(a)) accumulate(a, 1.0f);
      if (wants(b)) accumulate(b, -1.0f);
      break;
    case TapeOp::kMul:
      for (int side = 0; side < 2; ++side) {
        TapeNode* x = y->in[side];
        TapeNode* other = y->in[1 - side];
        if (!wants(x)) continue;
        if (Elements(x) != n) {  // x is a broadcast scalar
          x->adjoint[0] += simd::Dot(dy, other->value, n, pool);
        } else if (Elements(other) != n) {  // the other is a scalar
          simd::Axpy(other->value[0], dy, x->adjoint, n, pool);
        } else {
          simd::MulAcc(dy, other->value, x->adjoint, n, pool);
        }
      }
      break;
    case TapeOp::kSquare:
      if (wants(a)) {
        float* twice_a = Scratch(n);
        if (twice_a == nullptr) break;
        simd::Scale(a->value, 2.0f, twice_a, n, pool);
        simd::MulAcc(twice_a, dy, a->adjoint, n, pool);
      }
      break;
    case TapeOp::kMatMul: {
      const size_t m = a->shape[0], k = a->shape[1], cols = b->shape[1];
      // One scratch block serves both products (released with `mark`).
      const int threads = pool.num_threads();
      const size_t scratch_floats =
          std::max(wants(a) ? simd::GemmScratchFloats(m, k, cols, threads)
                            : size_t{0},
                   wants(b) ? simd::GemmScratchFloats(k, cols, m, threads)
                            : size_t{0});
      float* scratch = nullptr;
      if (scratch_floats > 0) {
        scratch = Scratch(scratch_floats);
        if (scratch == nullptr) break;
      }
      if (wants(a)) {  // dA[m,k] += dY[m,n] · B^T
        simd::Gemm(dy, cols, false, b->value, cols, true, a->adjoint, k, m, k,
                   cols, /*accumulate=*/true, scratch, pool);
      }
      if (wants(b)) {  // dB[k,n] += A^T · dY
        simd::Gemm(a->value, k, true, dy, cols, false, b->adjoint, cols, k,
                   cols, m, /*accumulate=*/true, scratch, pool);
      }
      break;
    }
    case TapeOp::kSum:
      if (wants(a)) simd::AddScalar(a->adjoint, dy[0], a->adjoint, Elements(a), pool);
      break;
    case TapeOp::kMean:
      if (wants(a)) {
        simd::AddScalar(a->adjoint, dy[0] / static_cast<float>(Elements(a)),
                        a->adjoint, Elements(a), pool);
      }
      break;
    case TapeOp::kRelu:
      if (wants(a)) {
        float* da = Scratch(n);
        if (da == nullptr) break;
        simd::ReluBackward(a->value, dy, da, n, pool);
        simd::Add(a->adjoint, da, a->adjoint, n, pool);
      }
      break;
  }
  vars_->arena().Release(mark);
}

// Marks the nodes between the target and the watched leaves, gives each an
// adjoint (a trainable variable's is its gradient buffer), then walks back.
// Nodes no watched leaf reaches get no adjoint and no backward work.
Status GradientTape::Backward(TapeNode* target) {
  for (TapeNode* n = last_; n != nullptr; n = n->prev) {
    n->needed = false;
    n->adjoint = nullptr;
  }
  target->needed = target->requires_grad;
  for (TapeNode* n = target; n != nullptr; n = n->prev) {
    if (!n->needed) continue;
    for (TapeNode* x : n->in) {
      if (x != nullptr && x->requires_grad) x->needed = true;
    }
  }
  for (TapeNode* n = target; n != nullptr; n = n->prev) {
    if (!n->needed) continue;
    const size_t count = Elements(n);
    if (n->op == TapeOp::kLeaf && vars_->planned_trainable(n->variable) &&
        vars_->trainable(n->variable)) {
      n->adjoint = vars_->gradient_data(n->variable);
    } else {
      n->adjoint = Allocate(count, Region::kScratch, "a gradient");
      if (n->adjoint == nullptr) return status_;
    }
    if (n == target) {
      for (size_t i = 0; i < count; ++i) n->adjoint[i] = 1.0f;
    } else {
      std::memset(n->adjoint, 0, count * sizeof(float));
    }
  }
  for (TapeNode* n = target; n != nullptr; n = n->prev) {
    if (n->needed) BackwardNode(n);
    if (!status_.ok()) return status_;
  }
  return Status::Ok();
}

template <class NodeOf>
Status GradientTape::Differentiate(const Tensor& target, size_t num_sources,
                                   Span<TensorView> grads, const NodeOf& node_of) {
  if (grads.size() != num_sources) {
    return InvalidArgument("GradientTape::Gradient: %zu sources but room for %zu gradients",
                           num_sources, grads.size());
  }
  for (TensorView& g : grads) g = TensorView();
  TapeNode* t = Resolve(target, "Gradient");
  if (!status_.ok()) return status_;
  THAW_RETURN_IF_ERROR(Backward(t));
  for (size_t i = 0; i < num_sources; ++i) {
    const TapeNode* node = node_of(i);
    if (node != nullptr && node->adjoint != nullptr) {
      grads[i] = TensorView(node->adjoint, node->shape);
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
  return Differentiate(target, sources.size(), grads, [&](size_t i) -> const TapeNode* {
    const int index = sources[i].index();
    return index < num_leaves_ ? leaves_[index] : nullptr;
  });
}

Status GradientTape::Gradient(const Tensor& target, Span<const Tensor> sources,
                              Span<TensorView> grads) {
  for (const Tensor& s : sources) Resolve(s, "Gradient");  // records a bad source
  return Differentiate(target, sources.size(), grads,
                       [&](size_t i) -> const TapeNode* { return sources[i].node_; });
}

}  // namespace thaw
