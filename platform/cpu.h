// thaw/platform/cpu.h — how many threads the machine runs.
//
//   thaw::ThreadPool pool(thaw::HardwareThreads());
//
// Which SIMD targets the CPU offers and which one thaw's kernels dispatch to
// belong to simd/targets.h: Highway's dispatch state is simd/'s alone.
#ifndef THAW_PLATFORM_CPU_H_
#define THAW_PLATFORM_CPU_H_

namespace thaw {

// Number of hardware threads the OS reports (at least 1).
int HardwareThreads();

// On 32-bit Arm Linux: whether the CPU has NEON and VFPv4 (fused multiply-add),
// the two features Highway's NEON target needs there. False everywhere else.
bool Arm32HasNeonAndVfpv4();

// On 64-bit Arm Linux: whether the CPU has SVE, and SVE2. False elsewhere.
bool Arm64HasSve();
bool Arm64HasSve2();

}  // namespace thaw

#endif  // THAW_PLATFORM_CPU_H_
