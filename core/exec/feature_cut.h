// thaw/core/exec/feature_cut.h — where Fit's feature cache cuts a training
// step's graph: the values computed once per example and kept.
//
//   thaw::FeatureCut cut;
//   cut.Reserve(graph);                                       // setup
//   cut.Choose(graph, vars, vars.trainable_bits(), input, loss_input);
//   if (!cut.empty()) {
//     // cut.values(): graph values a "produce" program computes for every
//     // example once (core/exec/program.h, CutUse::kProduce), and a
//     // "provide" program reads from the cache instead of computing.
//   }
//
// The frozen prefix, made general: a value is *cacheable* when it is the
// model's input, or a batched output of a node the training step runs whose
// inputs are cacheable values and variables that no step changes (frozen
// parameters, statistics of a node in inference mode), and whose result for
// an example depends on that example alone, with the same bits whichever
// batch it is in and in either mode: a node in inference mode (a frozen
// BatchNormalization, Dropout outside training), or one whose op is the
// same function in both (OpDef::training_differs false). A Dropout in
// training mode, a BatchNormalization on batch statistics, anything
// downstream of a trainable parameter is not cacheable.
//
// The *frontier* is every cacheable value (not the input) that the rest of
// the step reads: a node that is not cacheable, or the loss. Any set of
// cacheable values that every path from the input to the frontier crosses
// separates the frozen part from the trainable part; the cut is the one
// that holds the fewest bytes per example (a minimum vertex cut, by max-flow
// over the cacheable subgraph, each value split into an edge whose capacity
// is its bytes), and among equal ones the latest in graph order, so that the
// step recomputes as little as possible (a BatchNorm's output rather than
// its convolution's, a view rather than its input: same bytes). Nodes between
// the cut and the frontier run every step, forward only. For the chains of
// the demos the cut is the frontier: the backbone's last output.
//
// Everything is sized by Reserve; Choose never allocates.
#ifndef THAW_CORE_EXEC_FEATURE_CUT_H_
#define THAW_CORE_EXEC_FEATURE_CUT_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/graph/graph.h"
#include "core/vars/variables.h"

namespace thaw {

class FeatureCut {
 public:
  void Reserve(const Graph& graph);
  // Chooses the cut for a training step whose loss reads `loss_input`.
  void Choose(const Graph& graph, const VariableSet& vars, const Bitmap& trainable,
              const Value* input, const Value* loss_input);

  bool empty() const { return values_.empty(); }
  // The cut: value indices, in graph order.
  const std::vector<int>& values() const { return values_; }
  // Variables the cut values are computed from (the prefix's), in order.
  const std::vector<int>& variables() const { return variables_; }
  // Floats of one example over all cut values.
  size_t example_floats() const { return example_floats_; }
  // Whether value v is cacheable (valid after Choose).
  bool cacheable(int v) const { return cacheable_[v] != 0; }

 private:
  void AddEdge(int from, int to, uint64_t capacity);
  uint64_t MaxFlow(int source, int sink);

  std::vector<int> values_, variables_;
  size_t example_floats_ = 0;
  std::vector<char> needed_, cacheable_, frontier_, uses_variable_;
  // The flow network: vertex 2v is value v's entry, 2v + 1 its exit.
  std::vector<int> head_, next_, to_, parent_edge_, queue_;
  std::vector<uint64_t> capacity_;
};

}  // namespace thaw

#endif  // THAW_CORE_EXEC_FEATURE_CUT_H_
