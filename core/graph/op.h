// thaw/core/graph/op.h — an op definition: the one place an op's maths lives.
//
//   // core/ops/arithmetic.cc: a + b; the backward reads nothing but dy
//   const OpDef kAdd = {"add", 2, 2, InferBinary, AddForward, AddBackward,
//                       /*reads=*/nullptr, /*scratch_floats=*/nullptr,
//                       /*saved_floats=*/nullptr, /*aliases_input=*/false,
//                       /*final_activation=*/nullptr, /*check=*/nullptr,
//                       /*commit=*/nullptr, /*channel_affine=*/nullptr,
//                       /*takes_affine=*/false, /*training_differs=*/false,
//                       /*masks_input=*/false};
//
// An OpDef is a table of plain functions: shape inference, forward, backward
// (every wanted input's gradient), what the backward pass reads, and the
// scratch and saved memory it needs. Models (through core/exec) and the
// GradientTape run the same functions: an op's backward exists once.
//
// Contract of the functions, for the runners:
//  - infer: checks node.in (count, shapes, dtypes) and fills out's shape,
//    batched flag and layout; errors are sentences without the node's name.
//  - forward: reads in[i]->data, writes out->data (never reads it first).
//    Runs on call.pool; must give the same bits for any thread count.
//  - backward: given out->grad (dy, which it may overwrite), writes
//    call.din[i] for every input i whose din[i] is non-null, overwriting it
//    (runners add contributions of several consumers). It reads only what
//    `reads` declared for this `wanted` set (bit i: din[i] is wanted), and
//    call.saved. Null: no gradient flows through the op.
//  - reads: which input values and whether the output a backward pass for
//    `wanted` reads (in the node's mode, see `training` below); a runner
//    keeps exactly those alive from the forward pass. Null: none.
//  - scratch_floats: floats of scratch one call needs (forward, or backward
//    for `wanted`), 64-byte aligned, contents undefined. Null: none.
//  - saved_floats: floats that live from a node's forward call to its
//    backward call (a dropout mask), in training or inference. Null: none.
//  - aliases_input: the output is input 0's bytes under another shape
//    (Flatten, Reshape): runners bind out->data = in[0]->data and skip
//    forward; backward copies dy to din[0] unless they are the same buffer.
//  - final_activation: what the op applies last (Dense's fused activation,
//    an activation op's), so that a model can check a loss against it.
//    Null: none (kLinear). An op that has one applies its derivative to dy
//    in backward unless call.dout_masked says a reader of its output did
//    (OpCall::ToUndo).
//  - check: refuses a step the op cannot run (BatchNormalization in training
//    mode on one value per channel), with a sentence. Null: any step.
//  - commit: runs after a training step was accepted (the optimizer took
//    its gradients), with the forward call's saved state: where an op
//    updates its statistics (BatchNormalization's moving mean), so that a
//    refused step changes nothing. Null: nothing to commit.
//  - channel_affine: when the op, in the call's mode, is a per-channel
//    affine map y = (x - mean) * scale + shift of its input 0 (a frozen
//    BatchNormalization), fills `affine` (scale and shift in call.saved) and
//    returns true; a runner may then skip the op's forward and have the op
//    producing its input apply the map instead. Null: never affine.
//  - takes_affine: forward applies call.affine, when set, to its output
//    after its bias and before its activation, with the bits of applying it
//    afterwards (Conv2D, DepthwiseConv2D, Dense: the GEMM epilogue).
//  - training_differs: in training mode the op's output is not a function of
//    each example's own inputs and the variables alone, with inference
//    mode's bits: it draws per step (Dropout's mask) or mixes the examples of
//    a batch (BatchNormalization's batch statistics). A node of such an op in
//    training mode is never computed once and reused (Fit's feature cache,
//    core/exec/feature_cut.h); in inference mode it may be. False (the
//    default of a table that leaves it out): the same function of each
//    example in both modes.
//  - masks_input: backward can multiply din[0] by the derivative of
//    call.mask (ReLU or ReLU6), the activation that produced input 0, at
//    input 0's values (max pooling: its gradient goes to taps that hold a
//    window's maximum, so the derivative is the maximum's). A runner asks it
//    of the only reader of a ReLU or ReLU6 output and tells the producer
//    (OpCall::dout_masked), which saves a pass over the gradient.
//
// A node's mode: OpCall::training is true in a training step for a node
// that has no parameters or has a trainable one; a node whose parameters
// are all frozen runs in inference mode (Keras' rule for a frozen
// BatchNormalization; for other ops it changes nothing).
#ifndef THAW_CORE_GRAPH_OP_H_
#define THAW_CORE_GRAPH_OP_H_

#include <cstddef>
#include <cstdint>

#include "core/graph/graph.h"
#include "core/tensor/tensor.h"
#include "platform/status.h"
#include "platform/threads.h"

namespace thaw {

enum class Pass { kForward, kBackward };

enum class Activation { kLinear, kRelu, kRelu6, kSigmoid, kTanh, kSoftmax };
const char* ActivationName(Activation activation);

// y[..., c] = (x[..., c] - mean[c]) * scale[c] + shift[c].
struct ChannelAffine {
  const float* mean = nullptr;
  const float* scale = nullptr;
  const float* shift = nullptr;
};

struct BackwardReads {
  uint32_t inputs = 0;  // bit i: the value of input i
  bool output = false;  // the node's output
};

// One call of a node's forward or backward function.
struct OpCall {
  const Node* node = nullptr;
  size_t batch = 1;           // prepended to batched values' shapes
  ThreadPool* pool = nullptr;
  bool training = false;      // the node's mode in this step (see above)
  uint64_t step = 0;          // training steps so far (dropout masks)
  float* saved = nullptr;     // saved_floats floats, forward to backward
  float* scratch = nullptr;   // scratch_floats floats, this call only
  float* din[kMaxNodeInputs] = {};  // backward: where input i's gradient goes
  const ChannelAffine* affine = nullptr;  // forward: a folded consumer's map
  // Backward: the derivative din[0] takes (OpDef::masks_input), and whether
  // dy already has the node's final activation's derivative applied.
  Activation mask = Activation::kLinear;
  bool dout_masked = false;

  template <class A>
  A attrs() const { return node->attrs.As<A>(); }
  // Input i's value and the output, with this call's batch.
  TensorView in(int i) const;
  TensorView out() const;
  // Elements of input i / of the output at this call's batch.
  size_t in_elements(int i) const { return node->in[i]->ElementsAt(batch); }
  size_t out_elements() const { return node->out->ElementsAt(batch); }
  float* dout() const { return node->out->grad; }
  // The activation whose derivative backward applies to dy: the op's final
  // one, or none when dy comes masked.
  Activation ToUndo(Activation final) const {
    return dout_masked ? Activation::kLinear : final;
  }
};

struct OpDef {
  const char* name;
  int min_inputs;
  int max_inputs;
  Status (*infer)(const Node& node, Value* out);
  void (*forward)(const OpCall& call);
  void (*backward)(const OpCall& call);
  BackwardReads (*reads)(const Node& node, uint32_t wanted, bool training);
  size_t (*scratch_floats)(const Node& node, size_t batch, int threads, Pass pass,
                           uint32_t wanted);
  size_t (*saved_floats)(const Node& node, size_t batch, bool training);
  bool aliases_input;
  Activation (*final_activation)(const Node& node);
  Status (*check)(const Node& node, size_t batch, bool training);
  Status (*commit)(const OpCall& call);
  bool (*channel_affine)(const OpCall& call, ChannelAffine* affine);
  bool takes_affine;
  bool training_differs;
  bool masks_input;
};

// The op-table lookups with their defaults for null entries.
BackwardReads ReadsOf(const Node& node, uint32_t wanted, bool training);
size_t ScratchFloatsOf(const Node& node, size_t batch, int threads, Pass pass,
                       uint32_t wanted);
size_t SavedFloatsOf(const Node& node, size_t batch, bool training);
Activation FinalActivationOf(const Node& node);
Status CheckOf(const Node& node, size_t batch, bool training);

}  // namespace thaw

#endif  // THAW_CORE_GRAPH_OP_H_
