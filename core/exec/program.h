// thaw/core/exec/program.h — what one step of a model runs, and its memory.
//
//   thaw::Program program;
//   program.Reserve(graph);                      // setup: the only allocation
//   thaw::ProgramSpec spec;                      // train, batch 64, ...
//   program.Compile(graph, vars, vars.trainable_bits(), spec);
//   size_t bytes = program.plan().total();       // the transient block a step needs
//
// Compile derives, from (graph, freeze set, batch, mode):
//  - the forward list: the nodes the loss (or the output) depends on, in
//    graph order; a softmax fused into the loss is not among them;
//  - the backward list, pruned to what reaches a trainable parameter: a node
//    runs backward only if its output depends on one, and asks only for the
//    gradients of inputs that do. A frozen prefix (any frozen part of a DAG
//    that no trainable parameter feeds) gets no backward pass and keeps no
//    activation, whatever the shape of the graph;
//  - one MemoryPlan of every buffer of the step (core/memory/plan.h): node
//    outputs, live from their producer to their last reader, forward or
//    backward (those read by the backward pass are the region "activations",
//    the rest "scratch"); saved state (dropout masks); each call's scratch;
//    gradients of intermediate values; terms of gradients with several
//    consumers; the gathered batch when it is copied in. The caller's input
//    read in place, variables, their gradients (persistent, see
//    core/vars/variables.h; planned when the step updates in the backward
//    pass, below) and Predict's output written into the caller's
//    buffer are not planned. Outputs of Flatten/Reshape share their input's
//    buffer; so do their gradients when nothing else writes them.
//
// Folds: a frozen BatchNormalization (any op whose channel_affine holds in
// its mode) whose input comes from a Conv2D, DepthwiseConv2D or Dense with no
// activation, read by it alone, runs inside that op's epilogue when neither
// runs backward: the frozen prefix of a CNN is convolutions with epilogues
// only, its BatchNorm outputs share their producers' buffers, and the bits
// are those of running them apart (core/graph/op.h).
//
// The feature cache (core/exec/feature_cut.h; Fit's cache, core/api/
// model.h): with CutUse::kProvide the values of spec.cut come from the cache
// (copied in at time 0 with the batch when gathered, else read in place from
// the cache's rows) and the nodes that only computed them do not run: the
// step is the rest of the graph. With CutUse::kProduce (mode kPredict) the
// program computes the cut's values instead of an output, keeps them to the
// end and the executor copies them into the cache's rows.
//
// Update in the backward pass: when the variable set keeps no gradient
// buffers (OptimizerConfig::update_in_backward, core/train/optimizers.h),
// the plan holds each trainable parameter's gradient too (region
// kGradients), alive from the backward call that first writes it to its
// update time: the later of its last write and the last backward call that
// reads the parameter's value, so that no backward call reads a value
// already updated. updates() lists, in time order, which parameters the
// executor hands to the optimizer after which backward call; gradients of
// different layers share bytes by lifetime.
//
// Step times: 0 gathers the batch, forward node k runs at 1 + k, the loss at
// L = F + 1 (F forward nodes), backward node j at L + 1 + j (with the
// updates due then), and the commit (core/graph/op.h) after the last
// backward node.
//
// A node's mode: in a training step, a node with parameters that are all
// frozen runs in inference mode (a frozen BatchNormalization uses its moving
// statistics and updates nothing), any other in training mode.
//
// Compile never allocates after Reserve (the vectors only refill), so a
// model recompiles freely between steps.
#ifndef THAW_CORE_EXEC_PROGRAM_H_
#define THAW_CORE_EXEC_PROGRAM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/graph/graph.h"
#include "core/graph/op.h"
#include "core/memory/plan.h"
#include "core/vars/variables.h"
#include "platform/span.h"

namespace thaw {

enum class StepMode { kTrain, kEvaluate, kPredict };

// How a program uses a feature cut (see above).
enum class CutUse { kNone, kProvide, kProduce };

struct ProgramSpec {
  StepMode mode = StepMode::kTrain;
  size_t batch = 1;
  int threads = 1;  // GEMM scratch depends on it
  // The batch (inputs, labels, targets) is copied into planned buffers
  // (Fit's shuffled batches); otherwise it is read where it is.
  bool gather = false;
  // Predict writes the output straight into the caller's buffer.
  bool output_to_caller = false;
  Value* input = nullptr;
  Value* output = nullptr;      // what Predict returns
  Value* loss_input = nullptr;  // what the loss reads (train, evaluate)
  size_t label_bytes = 0;       // per example, when gathered
  size_t target_floats = 0;     // per example, when gathered
  // The feature cut (value indices) and how this program uses it.
  CutUse cut_use = CutUse::kNone;
  Span<const int> cut;
};

class Program {
 public:
  struct ForwardStep {
    Node* node = nullptr;
    bool training = false;  // the node's mode (core/graph/op.h)
    int saved = -1;         // plan buffer, or -1
    int scratch = -1;
    // A fold (below): the step of the node whose affine map this node's
    // epilogue applies, or -1; the step this node runs inside, or -1.
    int affine_from = -1;
    int folded_into = -1;
  };
  // A parameter's update in the backward pass: after the backward call at
  // `time`, variable `variable` (graph value `value`) takes its gradient.
  struct Update {
    int time = 0;
    int variable = -1;
    int value = -1;
  };
  struct BackwardStep {
    Node* node = nullptr;
    int forward = -1;         // the node's forward step (its saved state)
    uint32_t wanted = 0;      // bit i: input i's gradient
    uint32_t accumulate = 0;  // bit i: added to a gradient another node wrote first
    int temp[kMaxNodeInputs] = {};  // plan buffer of such a term
    int scratch = -1;
    Activation mask = Activation::kLinear;  // OpCall::mask and dout_masked
    bool dout_masked = false;
  };

  // Setup: room for any program of `graph`.
  void Reserve(const Graph& graph);
  void Compile(const Graph& graph, const VariableSet& vars, const Bitmap& trainable,
               const ProgramSpec& spec);

  const ProgramSpec& spec() const { return spec_; }
  const std::vector<ForwardStep>& forward() const { return forward_; }
  const std::vector<BackwardStep>& backward() const { return backward_; }
  const MemoryPlan& plan() const { return plan_; }
  // Whether the step applies its parameters' updates in the backward pass
  // (their gradients are planned here), and those updates, by time.
  bool update_in_backward() const { return update_in_backward_; }
  const std::vector<Update>& updates() const { return updates_; }
  // The trainable parameters whose gradients the backward pass computes
  // (variable indices, increasing): the ones a step updates. A trainable
  // parameter the loss does not reach is not among them.
  const std::vector<int>& stepped() const { return stepped_; }
  int loss_time() const { return static_cast<int>(forward_.size()) + 1; }
  int commit_time() const { return loss_time() + 1 + static_cast<int>(backward_.size()); }
  // Bytes of the plan's activations (they never share bytes with each other:
  // all are alive at the loss), and the rest of the block, scratch.
  size_t activation_bytes() const { return plan_.RegionBytes(Region::kActivations); }
  // Bytes of the block counted as gradients: with update in the backward
  // pass, the most the parameters' gradients hold at once (bounded by the
  // block beyond the activations, as they may reuse activations' bytes);
  // otherwise 0. The rest of the block beyond both is scratch.
  size_t gradient_bytes() const { return gradient_bytes_; }

  // The value whose buffer holds value v (v itself unless v is a view).
  int data_root(int v) const { return data_root_[v]; }
  // The plan buffer holding value v's data / gradient, or -1.
  int data_buffer(int v) const { return data_buffer_[data_root_[v]]; }
  int grad_buffer(int v) const { return grad_buffer_[v]; }
  bool requires_grad(int v) const { return requires_grad_[v] != 0; }
  // Value v's position in spec().cut, or -1.
  int cut_slot(int v) const { return cut_slot_[v]; }
  int labels_buffer() const { return labels_buffer_; }
  int targets_buffer() const { return targets_buffer_; }
  // The smallest layer index with a backward node, or -1.
  int first_backward_layer() const { return first_backward_layer_; }

 private:
  ProgramSpec spec_;
  std::vector<ForwardStep> forward_;
  std::vector<BackwardStep> backward_;
  MemoryPlan plan_;
  // Per value (vectors of chars, not bools, for plain indexing).
  std::vector<char> needed_, requires_grad_, reaches_, written_;
  std::vector<int> data_root_, first_, last_, data_buffer_, cut_slot_;
  std::vector<int> grad_root_, grad_first_, grad_last_, grad_buffer_, writers_, readers_;
  std::vector<int> backward_time_;  // per node, -1 when it has no backward
  std::vector<Update> updates_;
  std::vector<int> stepped_;
  bool update_in_backward_ = false;
  size_t gradient_bytes_ = 0;
  int labels_buffer_ = -1, targets_buffer_ = -1;
  int first_backward_layer_ = -1;
};

}  // namespace thaw

#endif  // THAW_CORE_EXEC_PROGRAM_H_
