// thaw/core/ops/matmul.h — the matrix product a[m,k] b[k,n] (GradientTape).
#ifndef THAW_CORE_OPS_MATMUL_H_
#define THAW_CORE_OPS_MATMUL_H_

#include "core/graph/op.h"

namespace thaw {
namespace ops {
// c[m,n] = a[m,k] b[k,n]; a may be batched rows of k (m = batch).
extern const OpDef kMatMul;
}  // namespace ops
}  // namespace thaw

#endif  // THAW_CORE_OPS_MATMUL_H_
