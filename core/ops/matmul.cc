#include "core/ops/matmul.h"

#include <algorithm>

#include "simd/gemm.h"

namespace thaw {
namespace ops {
namespace {

enum : uint32_t { kA = 1u << 0, kB = 1u << 1 };

struct Dims {
  size_t m, k, n;
};
Dims DimsOf(const Node& node, size_t batch) {
  const Value& b = *node.in[1];
  return Dims{node.in[0]->ElementsAt(batch) / b.shape[0], b.shape[0], b.shape[1]};
}

Status Infer(const Node& node, Value* out) {
  const Value& a = *node.in[0];
  const Value& b = *node.in[1];
  const bool ok = a.shape.rank() == (a.batched ? 1 : 2) && !b.batched && b.shape.rank() == 2 &&
                  a.shape[a.shape.rank() - 1] == b.shape[0];
  if (!ok) {
    return InvalidArgument("shapes %s and %s do not multiply; expected [m,k] x [k,n]",
                           a.shape.ToString().c_str(), b.shape.ToString().c_str());
  }
  out->batched = a.batched;
  out->shape = a.batched ? Shape{b.shape[1]} : Shape{a.shape[0], b.shape[1]};
  return Status::Ok();
}

void Forward(const OpCall& c) {
  const Dims d = DimsOf(*c.node, c.batch);
  simd::Gemm(c.node->in[0]->data, d.k, false, c.node->in[1]->data, d.n, false,
             c.node->out->data, d.n, d.m, d.n, d.k, /*accumulate=*/false, c.scratch, *c.pool);
}

void Backward(const OpCall& c) {
  const Dims d = DimsOf(*c.node, c.batch);
  const float* dy = c.dout();
  if (c.din[0] != nullptr) {  // dA[m,k] = dY[m,n] B^T
    simd::Gemm(dy, d.n, false, c.node->in[1]->data, d.n, true, c.din[0], d.k, d.m, d.k, d.n,
               /*accumulate=*/false, c.scratch, *c.pool);
  }
  if (c.din[1] != nullptr) {  // dB[k,n] = A^T dY
    simd::Gemm(c.node->in[0]->data, d.k, true, dy, d.n, false, c.din[1], d.n, d.k, d.n, d.m,
               /*accumulate=*/false, c.scratch, *c.pool);
  }
}

BackwardReads Reads(const Node&, uint32_t wanted, bool) {
  BackwardReads r;
  if (wanted & kA) r.inputs |= kB;
  if (wanted & kB) r.inputs |= kA;
  return r;
}

size_t ScratchFloats(const Node& node, size_t batch, int threads, Pass pass, uint32_t wanted) {
  const Dims d = DimsOf(node, batch);
  if (pass == Pass::kForward) {
    return simd::GemmScratchFloats(d.m, d.n, d.k, false, false, threads);
  }
  size_t floats = 0;
  if (wanted & kA) floats = simd::GemmScratchFloats(d.m, d.k, d.n, false, true, threads);
  if (wanted & kB) {
    floats = std::max(floats, simd::GemmScratchFloats(d.k, d.n, d.m, true, false, threads));
  }
  return floats;
}

}  // namespace

const OpDef kMatMul = {
    "matmul", 2, 2, Infer, Forward, Backward, Reads, ScratchFloats,
    /*saved_floats=*/nullptr, /*aliases_input=*/false, /*final_activation=*/nullptr,
    /*check=*/nullptr, /*commit=*/nullptr, /*channel_affine=*/nullptr, /*takes_affine=*/false,
    /*training_differs=*/false, /*masks_input=*/false,
};

}  // namespace ops
}  // namespace thaw
