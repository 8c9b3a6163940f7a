// thaw/simd/targets.h — which SIMD targets the CPU offers, which ones this
// build compiled, and which one thaw's kernels run on.
//
//   std::printf("kernels run on %s (CPU: %s)\n", thaw::simd::DispatchedTargetName(),
//               thaw::simd::SupportedTargetNames().c_str());
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
// Highway's bitfield of targets this CPU can run, and their names, best first.
int64_t SupportedTargets();
std::string SupportedTargetNames();
// Names of the targets in a Highway bitfield, space-separated, best first.
std::string TargetNames(int64_t targets);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_TARGETS_H_
