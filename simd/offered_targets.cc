#include "simd/offered_targets.h"

#include <cstdint>

#include "hwy/highway.h"
#include "hwy/targets.h"
#include "platform/cpu.h"

namespace thaw {
namespace simd {
namespace internal {

bool OfferArm32Neon() {
#if HWY_ARCH_ARM_V7 && (HWY_TARGETS & HWY_NEON)
  const int64_t offered = hwy::SupportedTargets();
  if ((offered & HWY_NEON) == 0 && Arm32HasNeonAndVfpv4()) {
    // Highway 1.0.3 has one way to say what the CPU supports, its test hook:
    // SupportedTargets() returns this set from now on (DisableTargets still
    // applies), and the next dispatch chooses from it. A per-target test
    // (hwy::TestWithParamTarget) resets it after each case; later dispatches
    // in that process run on SCALAR, with the same bits.
    hwy::SetSupportedTargetsForTest(offered | HWY_NEON);
  }
#endif
  return true;
}

}  // namespace internal
}  // namespace simd
}  // namespace thaw
