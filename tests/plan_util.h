// Hand-made step plans for the model tests: a test lists, by hand, every
// buffer a step holds with the step times it lives (the liveness decisions
// under test), and Peak() gives the bytes they need when buffers alive at
// the same time never share: the largest sum over one step time. The
// planner must reach exactly that (its greedy placement does on these
// graphs), and its activations must be the hand-listed ones.
//
// Step times: forward node k at 1 + k, the loss at F + 1, backward node j
// at F + 2 + j (core/exec/program.h). GEMM packing scratch depends on the
// SIMD target, so tests ask the kernel (GemmFloats) for each product a step
// runs.
#ifndef THAW_TESTS_PLAN_UTIL_H_
#define THAW_TESTS_PLAN_UTIL_H_

#include <algorithm>
#include <cstddef>
#include <vector>

#include "platform/memory.h"
#include "platform/threads.h"
#include "simd/gemm.h"

namespace thaw {

struct Live {
  size_t bytes;  // before rounding up to 64
  int first, last;
};

inline size_t Peak(const std::vector<Live>& buffers) {
  int end = 0;
  for (const Live& b : buffers) end = std::max(end, b.last);
  size_t peak = 0;
  for (int t = 0; t <= end; ++t) {
    size_t live = 0;
    for (const Live& b : buffers) {
      if (b.first <= t && t <= b.last) live += AlignUp(b.bytes);
    }
    peak = std::max(peak, live);
  }
  return peak;
}

// Bytes of GEMM scratch for one product on the serial pool.
inline size_t GemmBytes(size_t m, size_t n, size_t k, bool trans_a, bool trans_b) {
  return simd::GemmScratchFloats(m, n, k, trans_a, trans_b, ThreadPool::Serial().num_threads()) *
         sizeof(float);
}
// A dense layer's products at `batch` rows, in -> out.
inline size_t DenseForwardScratch(size_t batch, size_t in, size_t out) {
  return GemmBytes(batch, out, in, false, true);
}
// Backward: the weight's gradient, and the input's when `input_gradient`.
inline size_t DenseBackwardScratch(size_t batch, size_t in, size_t out, bool input_gradient) {
  size_t bytes = GemmBytes(out, in, batch, true, false);
  if (input_gradient) bytes = std::max(bytes, GemmBytes(batch, in, out, false, false));
  return bytes;
}

}  // namespace thaw

#endif  // THAW_TESTS_PLAN_UTIL_H_
