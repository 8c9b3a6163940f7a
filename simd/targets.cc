// thaw/simd/targets.cc — which Highway target thaw's kernels dispatch to.
// Compiled once per Highway target (foreach_target), with the same HWY_*
// defines as the kernel TUs (thaw_build_flags), so the dispatch below picks
// exactly what the kernels pick.
#include "simd/targets.h"

#include <cstdint>
#include <string>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/targets.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

static int64_t DispatchedTargetImpl() { return HWY_TARGET; }

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "hwy/targets.h"
#include "platform/cpu.h"

namespace thaw {

HWY_EXPORT(DispatchedTargetImpl);

namespace simd {

int64_t DispatchedTarget() {
  return HWY_DYNAMIC_DISPATCH(DispatchedTargetImpl)();
}

const char* DispatchedTargetName() {
  return hwy::TargetName(DispatchedTarget());
}

std::string CompiledTargetNames() { return TargetNames(HWY_TARGETS); }

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
