// thaw/core/api/tape.h — record operations, then ask for gradients (tf.GradientTape).
//
//   thaw::GradientTape tape(&vars);                    // a step begins here
//   thaw::Tensor loss = tape.Square(tape.Sub(tape.Add(var1, var2), 5.0f));
//   thaw::TensorView grads[2];
//   THAW_RETURN_IF_ERROR(tape.Gradient(loss, {var1, var2}, grads));
//   if (!grads[1].present()) { /* var2 is frozen: no gradient, not a zero */ }
//
// Semantics follow TensorFlow:
//  - Trainable variables are watched automatically; a frozen variable is not
//    watched, so its gradient is absent (an empty view) and no buffer is made
//    for it. Watch() makes a frozen variable or a constant tensor watched for
//    this tape only, as tape.watch() does, from the next recorded operation
//    on: operations recorded before the call stay undifferentiable in it.
//  - Creating a tape starts a step: trainable flags changed since the last
//    step take effect now (the variable set re-plans its memory). A flag
//    changed while a tape records takes effect at the next tape.
//  - Operations run eagerly: Tensor::value() holds the result at once.
//
// Operations are the graph ops of core/ops (the same forward and backward
// code models run); the tape records each as a node whose inputs and output
// live in the arena.
//
// Memory: values and tape records live in the arena's transient part, which
// the next tape (or Reset) empties; the gradient of a trainable variable is
// written into its gradient buffer (Variable::gradient()). Nothing is taken
// from the heap. When the arena runs out, or an operation gets bad shapes,
// the tape keeps the first error as its status(); later operations do nothing
// and Gradient() returns that error. Check once, at the end.
//
// Shapes: Add, Sub and Mul take equal shapes, or one operand with a single
// element (a scalar, broadcast). MatMul takes [m,k] x [k,n]. Sum and Mean give
// a scalar. A non-scalar target is differentiated as the sum of its elements.
#ifndef THAW_CORE_API_TAPE_H_
#define THAW_CORE_API_TAPE_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "core/tensor/tensor.h"
#include "core/vars/variables.h"
#include "platform/span.h"
#include "platform/status.h"
#include "platform/threads.h"

namespace thaw {

class GradientTape;
class OpAttrs;
struct OpCall;
struct OpDef;
struct TapeEntry;
enum class Pass;

// A value recorded on a tape; valid until that tape is reset or destroyed.
class Tensor {
 public:
  Tensor() = default;
  // False after a failed operation.
  bool valid() const { return entry_ != nullptr; }
  TensorView value() const;
  Shape shape() const { return value().shape(); }
  float scalar() const;  // the value of a one-element tensor

 private:
  friend class GradientTape;
  Tensor(TapeEntry* entry, uint64_t epoch) : entry_(entry), epoch_(epoch) {}
  TapeEntry* entry_ = nullptr;
  uint64_t epoch_ = 0;
};

// What an operation accepts: a variable, a tensor on the tape, or a float
// (recorded as a scalar constant).
class Operand {
 public:
  Operand(const Variable& variable) : variable_(variable) {}  // NOLINT
  Operand(const Tensor& tensor) : kind_(kTensor), tensor_(tensor) {}  // NOLINT
  Operand(float constant) : kind_(kConstant), constant_(constant) {}  // NOLINT

 private:
  friend class GradientTape;
  enum Kind { kVariable, kTensor, kConstant };
  Kind kind_ = kVariable;
  Variable variable_;
  Tensor tensor_;
  float constant_ = 0.0f;
};

class GradientTape {
 public:
  // Begins recording a step on `vars`. Kernels run on `pool`.
  explicit GradientTape(VariableSet* vars,
                        ThreadPool& pool = ThreadPool::Serial());
  GradientTape(const GradientTape&) = delete;
  GradientTape& operator=(const GradientTape&) = delete;

  // Forgets every recorded operation and begins a new step, like leaving and
  // re-entering `with tf.GradientTape()`. Tensors from before become invalid.
  void Reset();

  // The first error met while recording, or ok.
  const Status& status() const { return status_; }

  // Watches a frozen variable, or a constant, for this tape. Operations
  // recorded before the call are not affected (as in TensorFlow).
  void Watch(const Variable& variable);
  void Watch(const Tensor& tensor);

  // A constant tensor holding a copy of `values`.
  Tensor Constant(const Shape& shape, Span<const float> values);
  Tensor Constant(float value);

  Tensor Add(Operand a, Operand b);
  Tensor Sub(Operand a, Operand b);
  Tensor Mul(Operand a, Operand b);
  Tensor Square(Operand a);
  Tensor MatMul(Operand a, Operand b);
  Tensor Sum(Operand a);
  Tensor Mean(Operand a);
  Tensor Relu(Operand a);

  // grads[i] receives d(sum of target) / d(sources[i]), or an absent (empty)
  // view when sources[i] is not watched (a frozen variable) or does not
  // influence target. A trainable variable's gradient is its gradient buffer;
  // other gradients stay valid until the next Reset. May be called more than
  // once per tape.
  Status Gradient(const Tensor& target, Span<const Variable> sources,
                  Span<TensorView> grads);
  Status Gradient(const Tensor& target, Span<const Tensor> sources,
                  Span<TensorView> grads);

 private:
  TapeEntry* Resolve(const Operand& operand, const char* op);
  TapeEntry* LeafFor(const Variable& variable, const char* op);
  TapeEntry* NewEntry(const char* name);
  float* Allocate(size_t floats, Region region, const char* what);
  Status OutOfArena(const char* what, size_t bytes) const;
  void Fail(Status status);
  // Records `op` on the operands and runs its forward pass.
  Tensor Record(const OpDef& op, const OpAttrs& attrs, std::initializer_list<Operand> operands,
                const char* name);
  // A call of e's node with this tape's pool and the pass's scratch (from
  // the arena; release it after the call).
  OpCall CallOf(TapeEntry* e, Pass pass, const char* what);
  Status Backward(TapeEntry* target);
  // Both Gradient overloads: entry_of(i) is source i's entry, or null.
  template <class EntryOf>
  Status Differentiate(const Tensor& target, size_t num_sources,
                       Span<TensorView> grads, const EntryOf& entry_of);

  VariableSet* vars_;
  ThreadPool* pool_;
  Status status_;
  uint64_t epoch_ = 0;
  TapeEntry* last_ = nullptr;     // most recent entry; entries link to their predecessor
  TapeEntry** leaves_ = nullptr;  // one leaf per variable, made on first use
  int num_leaves_ = 0;
};

}  // namespace thaw

#endif  // THAW_CORE_API_TAPE_H_
