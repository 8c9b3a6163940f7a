// thaw/core/exec/executor.h — runs a compiled program over an arena.
//
//   unsigned char* block = arena.ClaimPlanned(token, program.plan().total(),
//                                             program.activation_bytes());
//   thaw::StepData data;
//   data.x = batch_inputs;
//   data.labels = batch_labels;
//   thaw::LossResult r = thaw::RunProgram(program, &graph, &vars, block, free_bytes,
//                                         data, thaw::Loss::kMeanSquaredError, pool, step);
//
// The executor binds every value of the graph to its bytes (planned buffers
// at `block` plus their offsets, variables, the caller's input and output),
// gathers the batch when the program copies it, runs the forward list, the
// loss and the backward list, and leaves trainable parameters' gradients in
// their persistent buffers for the optimizer. It allocates nothing and has
// no failure path of its own: everything that can fail was checked when the
// program was compiled and placed.
//
// A program that updates in the backward pass (Program::updates()) hands
// each parameter's complete gradient to an UpdateHook right after the
// backward call it was due at, and stops the step when the hook refuses.
// Its backward pass runs only after a finite loss: with a NaN or infinite
// loss nothing is updated (the caller sees the loss and refuses the step).
//
// Under AddressSanitizer every planned buffer is poisoned outside its
// lifetime (and everything past the block for the whole step): a kernel that
// reads or writes bytes the plan gave to another buffer at that time stops
// the sanitizer build at once.
#ifndef THAW_CORE_EXEC_EXECUTOR_H_
#define THAW_CORE_EXEC_EXECUTOR_H_

#include <cstddef>
#include <cstdint>

#include "core/exec/program.h"
#include "core/graph/op.h"
#include "core/ops/loss.h"
#include "core/vars/variables.h"
#include "platform/threads.h"

namespace thaw {

// The batch of one step, in the caller's memory.
struct StepData {
  const float* x = nullptr;        // input rows (per-example floats each)
  const size_t* index = nullptr;   // rows of the batch when gathered; null: 0..batch-1
  const int32_t* labels = nullptr; // per row (labels losses)
  const float* targets = nullptr;  // per row, one per output (other losses)
  float* out = nullptr;            // Predict: [batch, outputs]
  // The feature cache, for programs with a cut (core/exec/program.h): per
  // cut value, its array of [examples, the value's per-example elements]
  // in example order. A provide program reads rows index[r] (gathered) or
  // cache_row + r (in place); a produce program writes rows cache_row + r.
  float* const* cache = nullptr;
  size_t cache_row = 0;
};

// Where a program that updates in the backward pass applies its updates:
// the model supplies one that calls its optimizer, so the executor knows no
// optimizer. Called on the step's thread, between backward calls.
class UpdateHook {
 public:
  virtual ~UpdateHook() = default;
  // After `node`'s backward call: the complete gradients of `count`
  // parameters (variable indices, in increasing order; `count` is at most
  // kMaxNodeInputs, all inputs of `node`), which live until this returns.
  // false stops the step: no later backward call runs and no later update is
  // offered.
  virtual bool Update(const Node& node, const int* variables, float* const* grads,
                      int count) = 0;
};

// Runs one step. `block` holds program.plan().total() bytes, 64-byte aligned,
// followed by `free_bytes` - total() more that the step must not touch.
// `updates` is required when program.update_in_backward(), else unused.
LossResult RunProgram(const Program& program, Graph* graph, VariableSet* vars,
                      unsigned char* block, size_t free_bytes, const StepData& data,
                      Loss loss, ThreadPool& pool, uint64_t step,
                      UpdateHook* updates = nullptr);

// After a training step whose update was accepted: runs the commit of every
// node that has one, in training mode, with its forward call's saved state
// (still at `block`): BatchNormalization's moving statistics move here. A
// commit refuses state it must not take (non-finite statistics) with a
// Status, leaving its variables as they were; *failed is then its node.
Status CommitProgram(const Program& program, unsigned char* block, ThreadPool& pool,
                     uint64_t step, const Node** failed);

// One node's backward call, shared by programs and the tape: runs the op's
// backward (which writes call.din), then adds the term of every input in
// `accumulate` (written to call.din[i]) to that input's gradient.
void RunBackward(const OpCall& call, uint32_t accumulate);

}  // namespace thaw

#endif  // THAW_CORE_EXEC_EXECUTOR_H_
