#include "core/ops/dense.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/ops/activation.h"
#include "core/ops/epilogue.h"
#include "simd/elementwise.h"
#include "simd/gemm.h"

namespace thaw {
namespace ops {
namespace {

enum : uint32_t { kX = 1u << 0, kW = 1u << 1, kB = 1u << 2 };

struct Dims {
  size_t rows, in, units;
};
Dims DimsOf(const Node& node, size_t batch) {
  const Value& w = *node.in[1];
  const size_t in = w.shape[1];
  return Dims{node.in[0]->ElementsAt(batch) / in, in, w.shape[0]};
}

Status Infer(const Node& node, Value* out) {
  const Value& x = *node.in[0];
  const Value& w = *node.in[1];
  const DenseAttrs attrs = node.attrs.As<DenseAttrs>();
  if (attrs.activation == Activation::kSoftmax) {
    return InvalidArgument("the dense op's fused activation cannot be softmax (a node of its own)");
  }
  if (x.shape.rank() != (x.batched ? 1 : 2)) {
    return InvalidArgument(
        "a dense layer takes rows of features ([batch, features]), but its input has %s "
        "shape %s; add a Flatten first",
        x.batched ? "per-example" : "the", x.shape.ToString().c_str());
  }
  const size_t in = x.shape[x.shape.rank() - 1];
  if (w.shape.rank() != 2 || w.shape[1] != in) {
    return InvalidArgument("weight shape %s does not take %zu input features",
                           w.shape.ToString().c_str(), in);
  }
  if (attrs.has_bias != (node.num_inputs == 3) ||
      (attrs.has_bias && node.in[2]->shape != Shape{w.shape[0]})) {
    return InvalidArgument("the bias must have shape [%zu]", w.shape[0]);
  }
  out->batched = x.batched;
  out->shape = x.batched ? Shape{w.shape[0]} : Shape{x.shape[0], w.shape[0]};
  return Status::Ok();
}

void Forward(const OpCall& c) {
  const Node& n = *c.node;
  const Dims d = DimsOf(n, c.batch);
  const DenseAttrs attrs = c.attrs<DenseAttrs>();
  // y = f(x W^T + b): bias (any folded map) and activation applied by the
  // product itself.
  const simd::GemmEpilogue epilogue =
      EpilogueOf(c, attrs.has_bias ? n.in[2]->data : nullptr, attrs.activation);
  simd::Gemm(n.in[0]->data, d.in, false, n.in[1]->data, d.in, true, n.out->data, d.units,
             d.rows, d.units, d.in, /*accumulate=*/false, c.scratch, *c.pool, epilogue);
}

void Backward(const OpCall& c) {
  const Node& n = *c.node;
  const Dims d = DimsOf(n, c.batch);
  // dz = dy * f'(z), in place over dy.
  float* dz = c.dout();
  ActivationBackward(c.ToUndo(c.attrs<DenseAttrs>().activation), n.out->data, dz, dz, d.rows,
                     d.units, *c.pool);
  if (c.din[1] != nullptr) {  // dW[units, in] = dz^T[units, rows] x[rows, in]
    simd::Gemm(dz, d.units, true, n.in[0]->data, d.in, false, c.din[1], d.in, d.units, d.in,
               d.rows, /*accumulate=*/false, c.scratch, *c.pool);
  }
  if (n.num_inputs == 3 && c.din[2] != nullptr) {
    simd::ColumnSums(dz, d.rows, d.units, c.din[2], *c.pool);
  }
  if (c.din[0] != nullptr) {  // dx[rows, in] = dz[rows, units] W[units, in]
    simd::Gemm(dz, d.units, false, n.in[1]->data, d.in, false, c.din[0], d.in, d.rows, d.in,
               d.units, /*accumulate=*/false, c.scratch, *c.pool);
  }
}

BackwardReads Reads(const Node& node, uint32_t wanted, bool) {
  BackwardReads r;
  if (wanted & kW) r.inputs |= kX;  // x for the weight's gradient
  if (wanted & kX) r.inputs |= kW;  // W for the input's
  r.output = node.attrs.As<DenseAttrs>().activation != Activation::kLinear;
  return r;
}

// The packing buffers of the products a call runs (one block serves both
// products of a backward call, which run one after the other).
size_t ScratchFloats(const Node& node, size_t batch, int threads, Pass pass, uint32_t wanted) {
  const Dims d = DimsOf(node, batch);
  if (pass == Pass::kForward) {
    return simd::GemmScratchFloats(d.rows, d.units, d.in, false, true, threads);
  }
  size_t floats = 0;
  if (wanted & kW) {
    floats = simd::GemmScratchFloats(d.units, d.in, d.rows, true, false, threads);
  }
  if (wanted & kX) {
    floats = std::max(floats, simd::GemmScratchFloats(d.rows, d.in, d.units, false, false, threads));
  }
  return floats;
}

Activation Final(const Node& node) { return node.attrs.As<DenseAttrs>().activation; }

}  // namespace

const OpDef kDense = {
    "dense", 2, 3, Infer, Forward, Backward, Reads, ScratchFloats,
    /*saved_floats=*/nullptr, /*aliases_input=*/false, Final, /*check=*/nullptr,
    /*commit=*/nullptr, /*channel_affine=*/nullptr, /*takes_affine=*/true,
    /*training_differs=*/false, /*masks_input=*/false,
};

}  // namespace ops

Dense::Dense(size_t units, Activation activation, bool use_bias)
    : units_(units), activation_(activation), use_bias_(use_bias) {}

Variable Dense::weight() const { return variables().empty() ? Variable() : variables()[0]; }
Variable Dense::bias() const { return use_bias_ && variables().size() > 1 ? variables()[1] : Variable(); }

Status Dense::Call(LayerBuilder& b, Span<Value* const> inputs, Value** output) {
  if (units_ == 0) {
    return InvalidArgument("%s: a Dense layer needs at least 1 unit", b.layer_name().c_str());
  }
  if (inputs.size() != 1 || inputs[0] == nullptr) {
    return InvalidArgument("%s: a Dense layer takes one input", b.layer_name().c_str());
  }
  const Value& x = *inputs[0];
  const size_t in = x.shape.rank() > 0 ? x.shape[x.shape.rank() - 1] : 1;
  Value* args[3] = {inputs[0], b.Parameter("weight", Shape{units_, in}), nullptr};
  if (use_bias_) args[2] = b.Parameter("bias", Shape{units_});
  DenseAttrs attrs;
  attrs.has_bias = use_bias_;
  attrs.activation = activation_ == Activation::kSoftmax ? Activation::kLinear : activation_;
  Value* z = nullptr;
  THAW_RETURN_IF_ERROR(b.AddNode(ops::kDense, OpAttrs::Of(attrs), Span<Value* const>(args, use_bias_ ? 3 : 2), &z));
  if (activation_ != Activation::kSoftmax) {
    *output = z;
    return Status::Ok();
  }
  ActivationAttrs softmax;
  softmax.activation = Activation::kSoftmax;
  return b.AddNode(ops::kActivation, OpAttrs::Of(softmax), {z}, output);
}

void Dense::ResetParameters(Random& rng) {
  const TensorView w = weight().value();
  const size_t in = w.shape()[1];
  const float limit = std::sqrt(6.0f / static_cast<float>(in + units_));
  for (size_t i = 0; i < w.num_elements(); ++i) w.data()[i] = rng.Uniform(-limit, limit);
  if (use_bias_) std::memset(bias().value().data(), 0, units_ * sizeof(float));
}

}  // namespace thaw
