// thaw/core/graph/graph.h — values and nodes: the one graph that models and
// the GradientTape record.
//
//   thaw::Graph graph;
//   thaw::Value* x = graph.AddInput({784}, thaw::Layout::kAny);  // per example
//   thaw::Value* w = graph.AddVariable({256, 784});
//   thaw::DenseAttrs no_bias;
//   no_bias.has_bias = false;
//   thaw::Value* y = nullptr;
//   THAW_RETURN_IF_ERROR(graph.AddNode(thaw::ops::kDense, thaw::OpAttrs::Of(no_bias),
//                                      {x, w}, /*layer=*/0, &y));
//   // y->shape == [256], y->batched
//
// A Value is a tensor: the model's input, a variable, a constant, or the
// output of a Node. A Node is one op (core/graph/op.h) applied to values; its
// inputs were all added before it, so the order of addition is a topological
// order. Shapes are checked and inferred when a node is added (the op's
// `infer`), so a bad model fails where it is described, with the layer's name.
//
// Batched values (a model's activations) hold a per-example shape; the batch
// is prepended when a step runs (ShapeAt). Unbatched values (variables, a
// tape's tensors) hold their whole shape.
//
// Whoever runs the graph (core/exec, the tape) binds each value's `data` and
// `grad` before an op reads them; the graph itself owns no tensor memory.
#ifndef THAW_CORE_GRAPH_GRAPH_H_
#define THAW_CORE_GRAPH_GRAPH_H_

#include <cstddef>
#include <cstring>
#include <deque>
#include <type_traits>

#include "core/tensor/dtype.h"
#include "core/tensor/shape.h"
#include "platform/span.h"
#include "platform/status.h"

namespace thaw {

struct OpDef;
struct Node;

// Inputs a node can take (Concatenate of more needs a chain).
inline constexpr int kMaxNodeInputs = 8;

// An op's attributes (activation, rate, target shape...), stored in the node
// as bytes: each op defines its own trivially copyable struct.
class OpAttrs {
 public:
  template <class A>
  static OpAttrs Of(const A& attrs) {
    static_assert(std::is_trivially_copyable<A>::value && sizeof(A) <= kBytes,
                  "op attributes must be small, trivially copyable structs");
    OpAttrs o;
    std::memcpy(o.bytes_, &attrs, sizeof(A));
    return o;
  }
  template <class A>
  A As() const {
    static_assert(std::is_trivially_copyable<A>::value && sizeof(A) <= kBytes,
                  "op attributes must be small, trivially copyable structs");
    A attrs;
    std::memcpy(&attrs, bytes_, sizeof(A));
    return attrs;
  }

 private:
  static constexpr size_t kBytes = 64;
  alignas(8) unsigned char bytes_[kBytes] = {};
};

struct Value {
  Shape shape;               // per example when batched, else the whole shape
  bool batched = false;      // a batch dimension is prepended at run time
  DType dtype = DType::kFloat32;
  Layout layout = Layout::kAny;
  Node* producer = nullptr;  // the node computing it; null for leaves
  int variable = -1;         // a variable's index in its VariableSet, or -1
  int index = -1;            // position among the graph's values

  // Bound by whoever runs the graph, before an op reads them.
  float* data = nullptr;     // the value
  float* grad = nullptr;     // its gradient, or null

  Shape ShapeAt(size_t batch) const { return batched ? shape.WithBatch(batch) : shape; }
  size_t ElementsAt(size_t batch) const {
    return shape.num_elements() * (batched ? batch : 1);
  }
};

struct Node {
  const OpDef* op = nullptr;
  OpAttrs attrs;
  int num_inputs = 0;
  Value* in[kMaxNodeInputs] = {};
  Value* out = nullptr;
  int index = -1;  // position among the graph's nodes
  int layer = -1;  // the model layer that added it (-1 on a tape)
};

// Sets up `node` (op, attrs, inputs, output) and runs the op's shape
// inference, which fills node->out's shape. The message of an error names
// the problem only; callers prefix the node's name.
Status InitNode(const OpDef& op, const OpAttrs& attrs, Span<Value* const> inputs,
                Node* node, Value* out);

// A model's graph. Setup-time only: adding allocates.
class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // A batched float32 input with a per-example shape.
  Value* AddInput(const Shape& shape, Layout layout);
  // An unbatched float32 variable; the caller sets its index in the variable
  // set (Value::variable).
  Value* AddVariable(const Shape& shape);
  // Appends a node of `op` on `inputs`; *out is its output. On error (the
  // op's shape inference refuses the inputs) nothing is added.
  Status AddNode(const OpDef& op, const OpAttrs& attrs, Span<Value* const> inputs,
                 int layer, Value** out);

  // The bytes of every value at `batch` (a bound on any step's buffers), or
  // false when they exceed kMaxBytes: a batch too large for any machine.
  bool ValueBytes(size_t batch, size_t* bytes) const;

  int num_values() const { return static_cast<int>(values_.size()); }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  Value* value(int i) { return &values_[i]; }
  const Value* value(int i) const { return &values_[i]; }
  Node* node(int i) { return &nodes_[i]; }
  const Node* node(int i) const { return &nodes_[i]; }

 private:
  Value* NewValue();
  std::deque<Value> values_;  // deques keep addresses stable
  std::deque<Node> nodes_;
};

}  // namespace thaw

#endif  // THAW_CORE_GRAPH_GRAPH_H_
