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

}  // namespace thaw

#endif  // THAW_PLATFORM_CPU_H_
