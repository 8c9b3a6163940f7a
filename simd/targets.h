// thaw/simd/targets.h — which SIMD targets the CPU offers, which ones this
// build compiled, and which one thaw's kernels run on.
//
//   std::printf("kernels run on %s (CPU: %s)\n", thaw::simd::DispatchedTargetName(),
//               thaw::simd::SupportedTargetNames().c_str());
#ifndef THAW_SIMD_TARGETS_H_
#define THAW_SIMD_TARGETS_H_

#include <cstdint>
#include <string>

#include "simd/offered_targets.h"  // what SupportedTargets() reports includes the fix

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
// The compiled target called `name` ("AVX2", "SCALAR", "NEON", ...; as
// TargetNames spells them), or 0.
int64_t CompiledTargetNamed(const char* name);
bool IsCompiledTarget(int64_t target);

// Planning for another machine: while one lives, the scratch queries of
// this thread (GemmScratchFloats, ConvForwardScratchFloats, ...) answer for
// `target`, a compiled target (IsCompiledTarget), instead of the one this
// CPU dispatches to; 0 changes nothing. Kernels are not affected: only
// planners use it (core's PlanOptions::target).
class ScopedPlanningTarget {
 public:
  explicit ScopedPlanningTarget(int64_t target);
  ~ScopedPlanningTarget();
  ScopedPlanningTarget(const ScopedPlanningTarget&) = delete;
  ScopedPlanningTarget& operator=(const ScopedPlanningTarget&) = delete;

 private:
  int64_t previous_;
};

namespace internal {
// The target scratch queries answer for on this thread (0: the dispatched
// one), and its index in a dispatch table of this build (-1 if not compiled).
int64_t PlanningTarget();
int DispatchIndex(int64_t target);
}  // namespace internal

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_TARGETS_H_
