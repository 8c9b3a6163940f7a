// thaw/simd/targets.h — which SIMD targets the CPU offers, which ones this
// build compiled, and which one thaw's kernels run on.
//
//   std::printf("kernels run on %s (CPU: %s)\n", thaw::simd::DispatchedTargetName(),
//               thaw::simd::SupportedTargetNames().c_str());
#ifndef THAW_SIMD_TARGETS_H_
#define THAW_SIMD_TARGETS_H_

#include <cstdint>
#include <string>

#include "platform/status.h"
#include "simd/offered_targets.h"  // what SupportedTargets() reports includes the fix
#include "simd/target_shapes.h"

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

// ---- Planning for another machine ----
//
//   simd::TargetDescription avx3;
//   Status s = simd::DescribeTargetNamed("AVX3", &avx3);   // or "NEON", "SVE2:512"
//   simd::ScopedPlanningTarget machine(&avx3);             // on any CPU
//   size_t floats = simd::GemmScratchFloats(8, 10, 32, false, true, 1);
//
// A target as planners see it: simd/target_shapes.h's row (plain data:
// nothing of the target's code runs, so any target Highway knows can be
// planned for on any CPU) with its float lanes fixed.
struct TargetDescription {
  const TargetShape* shape = nullptr;
  size_t lanes = 0;  // float32 lanes of a full vector
};

// Describes `target` (one Highway bit: HWY_AVX3, HWY_NEON, ...): a target of
// this build's architecture, or of x86 or 64-bit Arm from anywhere (NEON
// from x86 is 64-bit Arm's; from 32-bit Arm, its own). `vector_bits` is
// for targets whose vector length the CPU chooses (SVE, SVE2, RVV): a
// multiple of 128 up to 2048; Highway uses the largest power of two that
// fits (384 -> 256). 0 takes this CPU's length when it runs the target. For
// a fixed-length target, 0 or its own length. InvalidArgument, with a
// sentence naming the target, otherwise.
Status DescribeTarget(int64_t target, size_t vector_bits, TargetDescription* out);
// The same from a name: Highway's ("AVX3", "NEON", "SVE_256", ...), with an
// optional ":<vector bits>" ("SVE2:512").
Status DescribeTargetNamed(const char* name, TargetDescription* out);
// The target this CPU dispatches to, described the same way.
TargetDescription DispatchedTargetDescription();
// Names of the targets DescribeTarget knows on this build, best first per
// architecture ("AVX3_DL AVX3 ... SCALAR SVE2_128 ... NEON").
std::string PlannableTargetNames();

// While one lives, the scratch queries of this thread (GemmScratchFloats,
// ConvForwardScratchFloats, ...) answer for `target` instead of the target
// this CPU dispatches to; null changes nothing. The description must
// outlive it. Kernels are not affected: only planners use it (core's
// PlanOptions::target).
class ScopedPlanningTarget {
 public:
  explicit ScopedPlanningTarget(const TargetDescription* target);
  ~ScopedPlanningTarget();
  ScopedPlanningTarget(const ScopedPlanningTarget&) = delete;
  ScopedPlanningTarget& operator=(const ScopedPlanningTarget&) = delete;

 private:
  const TargetDescription* previous_;
};

namespace internal {
// The target scratch queries answer for on this thread: the planning
// target, else the dispatched one.
TargetDescription PlanningTarget();
// Float lanes of `target`'s full vector, from running its code: for
// targets this build compiled and this CPU runs (0 otherwise). Tests
// compare it with the table.
size_t LanesByRunning(int64_t target);
// `target`'s index in a dispatch table of this build (-1 if not compiled).
int DispatchIndex(int64_t target);
}  // namespace internal

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_TARGETS_H_
