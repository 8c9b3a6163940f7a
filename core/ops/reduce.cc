#include "core/ops/reduce.h"

#include <algorithm>

#include "simd/reduce.h"

namespace thaw {
namespace ops {
namespace {

Status Infer(const Node&, Value* out) {
  out->shape = Shape{};
  out->batched = false;
  return Status::Ok();
}

void SumForward(const OpCall& c) {
  c.node->out->data[0] = simd::Sum(c.node->in[0]->data, c.in_elements(0), *c.pool);
}

void MeanForward(const OpCall& c) {
  const size_t n = c.in_elements(0);
  c.node->out->data[0] = simd::Sum(c.node->in[0]->data, n, *c.pool) / static_cast<float>(n);
}

void SumBackward(const OpCall& c) {
  std::fill_n(c.din[0], c.in_elements(0), c.dout()[0]);
}

void MeanBackward(const OpCall& c) {
  const size_t n = c.in_elements(0);
  std::fill_n(c.din[0], n, c.dout()[0] / static_cast<float>(n));
}

}  // namespace

// Fields as in core/ops/arithmetic.cc.
const OpDef kSum = {"sum", 1, 1, Infer, SumForward, SumBackward,
                    nullptr, nullptr, nullptr, false, nullptr, nullptr, nullptr, nullptr, false, false, false};
const OpDef kMean = {"mean", 1, 1, Infer, MeanForward, MeanBackward,
                     nullptr, nullptr, nullptr, false, nullptr, nullptr, nullptr, nullptr, false, false, false};

}  // namespace ops
}  // namespace thaw
