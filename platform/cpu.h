// thaw/platform/cpu.h — what the CPU offers, as Highway sees it.
//
//   std::printf("%s\n", thaw::SupportedTargetNames().c_str());  // "AVX3 AVX2 SSE4 ..."
//
// The target thaw's kernels actually dispatch to is reported by simd/targets.h,
// which knows which targets this build compiled.
#ifndef THAW_PLATFORM_CPU_H_
#define THAW_PLATFORM_CPU_H_

#include <cstdint>
#include <string>

namespace thaw {

// Highway's bitfield of targets this CPU can run (HWY_AVX3, HWY_NEON, ...).
int64_t SupportedTargets();
// The same as space-separated names, best first.
std::string SupportedTargetNames();
// Names of the targets in a Highway bitfield, space-separated, best first.
std::string TargetNames(int64_t targets);
// Number of hardware threads the OS reports (at least 1).
int HardwareThreads();

}  // namespace thaw

#endif  // THAW_PLATFORM_CPU_H_
