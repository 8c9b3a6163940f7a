#include "core/ops/arithmetic.h"

#include <cstring>

#include "simd/elementwise.h"
#include "simd/reduce.h"

namespace thaw {
namespace ops {
namespace {

enum : uint32_t { kA = 1u << 0, kB = 1u << 1 };

bool IsScalar(const Value& v) { return !v.batched && v.shape.num_elements() == 1; }

Status InferBinary(const Node& node, Value* out) {
  const Value& a = *node.in[0];
  const Value& b = *node.in[1];
  const bool same = a.shape == b.shape && a.batched == b.batched;
  if (!same && !IsScalar(a) && !IsScalar(b)) {
    return InvalidArgument(
        "shapes %s%s and %s%s differ; operands must have equal shapes or one must "
        "have a single element",
        a.batched ? "[batch]+" : "", a.shape.ToString().c_str(), b.batched ? "[batch]+" : "",
        b.shape.ToString().c_str());
  }
  const Value& wide = same || IsScalar(b) ? a : b;
  out->shape = wide.shape;
  out->batched = wide.batched;
  out->layout = wide.layout;
  return Status::Ok();
}

// Which operand, if any, is a single element broadcast over the other.
struct Broadcast {
  bool a, b;
};
Broadcast BroadcastOf(const OpCall& c) {
  const size_t na = c.in_elements(0), nb = c.in_elements(1);
  return Broadcast{na == 1 && nb != 1, nb == 1 && na != 1};
}

// din = sign * dy, or the sum of sign * dy for a broadcast scalar.
void PassThrough(const OpCall& c, int i, bool broadcast, float sign) {
  float* dx = c.din[i];
  if (dx == nullptr) return;
  const size_t n = c.out_elements();
  if (broadcast) {
    dx[0] = sign * simd::Sum(c.dout(), n, *c.pool);
  } else if (sign == 1.0f) {
    if (dx != c.dout()) std::memcpy(dx, c.dout(), n * sizeof(float));
  } else {
    simd::Scale(c.dout(), sign, dx, n, *c.pool);
  }
}

void AddForward(const OpCall& c) {
  const Broadcast s = BroadcastOf(c);
  const float *a = c.node->in[0]->data, *b = c.node->in[1]->data;
  float* y = c.node->out->data;
  const size_t n = c.out_elements();
  if (s.a) {
    simd::AddScalar(b, a[0], y, n, *c.pool);
  } else if (s.b) {
    simd::AddScalar(a, b[0], y, n, *c.pool);
  } else {
    simd::Add(a, b, y, n, *c.pool);
  }
}

void AddBackward(const OpCall& c) {
  const Broadcast s = BroadcastOf(c);
  PassThrough(c, 0, s.a, 1.0f);
  PassThrough(c, 1, s.b, 1.0f);
}

void SubForward(const OpCall& c) {
  const Broadcast s = BroadcastOf(c);
  const float *a = c.node->in[0]->data, *b = c.node->in[1]->data;
  float* y = c.node->out->data;
  const size_t n = c.out_elements();
  if (s.a) {  // c - b == (-b) + c exactly
    simd::Scale(b, -1.0f, y, n, *c.pool);
    simd::AddScalar(y, a[0], y, n, *c.pool);
  } else if (s.b) {
    simd::AddScalar(a, -b[0], y, n, *c.pool);
  } else {
    simd::Sub(a, b, y, n, *c.pool);
  }
}

void SubBackward(const OpCall& c) {
  const Broadcast s = BroadcastOf(c);
  PassThrough(c, 0, s.a, 1.0f);
  PassThrough(c, 1, s.b, -1.0f);
}

void MulForward(const OpCall& c) {
  const Broadcast s = BroadcastOf(c);
  const float *a = c.node->in[0]->data, *b = c.node->in[1]->data;
  float* y = c.node->out->data;
  const size_t n = c.out_elements();
  if (s.a) {
    simd::Scale(b, a[0], y, n, *c.pool);
  } else if (s.b) {
    simd::Scale(a, b[0], y, n, *c.pool);
  } else {
    simd::Mul(a, b, y, n, *c.pool);
  }
}

// d(a*b)/da = b: din[a] = dy * b, or their dot when a is a broadcast scalar.
void MulBackward(const OpCall& c) {
  const Broadcast s = BroadcastOf(c);
  const size_t n = c.out_elements();
  const float* dy = c.dout();
  for (int side = 0; side < 2; ++side) {
    float* dx = c.din[side];
    if (dx == nullptr) continue;
    const float* other = c.node->in[1 - side]->data;
    const bool self_broadcast = side == 0 ? s.a : s.b;
    const bool other_broadcast = side == 0 ? s.b : s.a;
    if (self_broadcast) {
      dx[0] = simd::Dot(dy, other, n, *c.pool);
    } else if (other_broadcast) {
      simd::Scale(dy, other[0], dx, n, *c.pool);
    } else {
      simd::Mul(dy, other, dx, n, *c.pool);
    }
  }
}

BackwardReads MulReads(const Node&, uint32_t wanted, bool) {
  BackwardReads r;
  if (wanted & kA) r.inputs |= kB;
  if (wanted & kB) r.inputs |= kA;
  return r;
}

Status InferUnary(const Node& node, Value* out) {
  out->shape = node.in[0]->shape;
  out->batched = node.in[0]->batched;
  out->layout = node.in[0]->layout;
  return Status::Ok();
}

void SquareForward(const OpCall& c) {
  const float* a = c.node->in[0]->data;
  simd::Mul(a, a, c.node->out->data, c.out_elements(), *c.pool);
}

// din = (2a) * dy; 2a is exact, so this rounds once, as 2 a dy would.
void SquareBackward(const OpCall& c) {
  const size_t n = c.out_elements();
  simd::Scale(c.node->in[0]->data, 2.0f, c.din[0], n, *c.pool);
  simd::Mul(c.din[0], c.dout(), c.din[0], n, *c.pool);
}

BackwardReads SquareReads(const Node&, uint32_t, bool) {
  BackwardReads r;
  r.inputs = kA;
  return r;
}

}  // namespace

// Fields: name, inputs (min, max), infer, forward, backward, reads,
// scratch_floats, saved_floats, aliases_input, final_activation, check, commit,
// channel_affine, takes_affine, training_differs.
const OpDef kAdd = {"add", 2, 2, InferBinary, AddForward, AddBackward, nullptr, nullptr,
                    nullptr, false, nullptr, nullptr, nullptr, nullptr, false, false, false};
const OpDef kSub = {"sub", 2, 2, InferBinary, SubForward, SubBackward, nullptr, nullptr,
                    nullptr, false, nullptr, nullptr, nullptr, nullptr, false, false, false};
const OpDef kMul = {"mul", 2, 2, InferBinary, MulForward, MulBackward, MulReads, nullptr,
                    nullptr, false, nullptr, nullptr, nullptr, nullptr, false, false, false};
const OpDef kSquare = {"square", 1, 1, InferUnary, SquareForward, SquareBackward, SquareReads,
                       nullptr, nullptr, false, nullptr, nullptr, nullptr, nullptr, false, false, false};

}  // namespace ops

// Two or more inputs of one shape: a chain of adds, in input order.
Status Add::Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) {
  if (inputs.size() < 2) {
    return InvalidArgument("%s: an Add layer takes two or more inputs, got %zu",
                           builder.layer_name().c_str(), inputs.size());
  }
  Value* sum = inputs[0];
  for (size_t i = 1; i < inputs.size(); ++i) {
    THAW_RETURN_IF_ERROR(builder.AddNode(ops::kAdd, OpAttrs(), {sum, inputs[i]}, &sum));
  }
  *output = sum;
  return Status::Ok();
}

}  // namespace thaw
