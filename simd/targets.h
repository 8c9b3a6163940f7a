// thaw/simd/targets.h — which SIMD target thaw's kernels run on.
//
//   std::printf("kernels run on %s\n", thaw::simd::DispatchedTargetName());
#ifndef THAW_SIMD_TARGETS_H_
#define THAW_SIMD_TARGETS_H_

#include <cstdint>
#include <string>

namespace thaw {
namespace simd {

// The Highway target (HWY_AVX3, HWY_NEON, ...) that dynamic dispatch picks now.
int64_t DispatchedTarget();
const char* DispatchedTargetName();
// Targets this build compiled kernels for, best first ("AVX3 AVX2 SSE4 ...").
std::string CompiledTargetNames();

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_TARGETS_H_
