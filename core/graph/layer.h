// thaw/core/graph/layer.h — a layer: the user's name for ops and their
// variables (Keras layers).
//
//   class Scale : public thaw::Layer {          // y = x * s, s a learned scalar
//    public:
//     const char* kind() const override { return "scale"; }
//     thaw::Status Call(thaw::LayerBuilder& b, thaw::Span<thaw::Value* const> in,
//                       thaw::Value** out) override {
//       thaw::Value* s = b.Parameter("scale", thaw::Shape{1});
//       return b.AddNode(thaw::ops::kMul, thaw::OpAttrs(), {in[0], s}, out);
//     }
//   };
//
// A model calls each layer once, when the layer is added (functional models)
// or built (Sequential): Call declares the layer's variables and adds its
// nodes to the model's graph. The model creates the variables in its arena
// at Build, named "<layer>.<suffix>", then asks every layer, in order, to
// ResetParameters. SetTrainable(false) freezes the layer's parameters, as
// Keras `layer.trainable = False`; it takes effect at the next step, and
// before Build it is remembered: Build creates the parameters frozen.
#ifndef THAW_CORE_GRAPH_LAYER_H_
#define THAW_CORE_GRAPH_LAYER_H_

#include <string>
#include <vector>

#include "core/graph/graph.h"
#include "core/graph/op.h"
#include "core/vars/variables.h"
#include "platform/random.h"
#include "platform/span.h"
#include "platform/status.h"

namespace thaw {

// A variable a layer declared, created at Build.
struct DeclaredVariable {
  std::string name;  // "<layer>.<suffix>"
  Shape shape;
  VariableRole role = VariableRole::kParameter;
  FileFormat file;         // how checkpoints hold it
  Value* value = nullptr;  // its value in the graph
  int layer = -1;
};

// What a layer's Call sees of the model it joins.
class LayerBuilder {
 public:
  LayerBuilder(Graph* graph, std::vector<DeclaredVariable>* variables,
               const std::string& layer_name, int layer_index)
      : graph_(graph), variables_(variables), name_(layer_name), layer_(layer_index) {}

  const std::string& layer_name() const { return name_; }
  // Declares "<layer>.<suffix>", a learned parameter (trainable when built)
  // or a statistic (never trainable), held in `shape` and written to files as
  // `file` says (core/vars/variables.h).
  Value* Parameter(const char* suffix, const Shape& shape, const FileFormat& file = {});
  Value* Statistic(const char* suffix, const Shape& shape, const FileFormat& file = {});
  // Adds a node of the layer; an error names the layer.
  Status AddNode(const OpDef& op, const OpAttrs& attrs, Span<Value* const> inputs,
                 Value** out);

 private:
  Value* Declare(const char* suffix, const Shape& shape, VariableRole role,
                 const FileFormat& file);
  Graph* graph_;
  std::vector<DeclaredVariable>* variables_;
  std::string name_;
  int layer_;
};

class Layer {
 public:
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  // "dense", "relu", ...: the stem of automatic names.
  virtual const char* kind() const = 0;
  // The layer's variables, in declaration order; empty before Build.
  const std::vector<Variable>& variables() const { return variables_; }
  // The layer's output in the model's graph (its per-example shape).
  const Value* output() const { return output_; }

  // Freezes (false) or thaws (true) the layer's parameters; statistics stay
  // frozen. Takes effect at the next step; before Build, at Build. A layer
  // without parameters (ReLU, pooling) has nothing to freeze: as in Keras,
  // the call is allowed and changes nothing, so a loop may freeze them all.
  void SetTrainable(bool trainable);
  // True when any parameter of the layer is trainable; before Build, what
  // SetTrainable last asked for (true by default).
  bool trainable() const;
  // Draws new initial values (Dense: Glorot-uniform weight, zero bias).
  virtual void ResetParameters(Random& rng) {}

  // ---- For models ----
  // Declares the layer's variables and adds its nodes on `inputs`.
  virtual Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) = 0;

 protected:
  Layer() = default;

 private:
  friend class Model;
  std::string name_;
  std::vector<Variable> variables_;
  Value* output_ = nullptr;
  bool trainable_ = true;  // the last SetTrainable, applied at Build
};

}  // namespace thaw

#endif  // THAW_CORE_GRAPH_LAYER_H_
