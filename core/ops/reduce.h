// thaw/core/ops/reduce.h — sum and mean of all elements (GradientTape).
#ifndef THAW_CORE_OPS_REDUCE_H_
#define THAW_CORE_OPS_REDUCE_H_

#include "core/graph/op.h"

namespace thaw {
namespace ops {
// A scalar: the sum (kSum) or mean (kMean) of every element of the input, in
// the deterministic order of simd::Sum.
extern const OpDef kSum;
extern const OpDef kMean;
}  // namespace ops
}  // namespace thaw

#endif  // THAW_CORE_OPS_REDUCE_H_
