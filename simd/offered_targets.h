// thaw/simd/offered_targets.h — makes Highway offer every target this CPU has
// before the first kernel dispatch. Each kernel TU (simd/<op>.cc) includes it;
// nothing else needs to.
//
// Highway 1.0.3's library looks for NEON on 32-bit Arm under the hwcap names
// HWCAP_NEON and HWCAP_VFPv4, which glibc does not define there (it names them
// HWCAP_ARM_NEON and HWCAP_ARM_VFPv4). Built against glibc, as Debian's
// libhwy1:armhf is, it never offers NEON, and every kernel ran on SCALAR on
// NEON CPUs. thaw asks the kernel for the two features itself
// (platform/cpu.h) and adds NEON to the targets Highway offers.
#ifndef THAW_SIMD_OFFERED_TARGETS_H_
#define THAW_SIMD_OFFERED_TARGETS_H_

namespace thaw {
namespace simd {
namespace internal {

// On 32-bit Arm with NEON and VFPv4: adds HWY_NEON to what
// hwy::SupportedTargets() returns when it is missing. Elsewhere, or once
// Highway sees NEON itself, it changes nothing. Returns true.
bool OfferArm32Neon();

#if defined(__arm__)
// Runs before main in every program that links a kernel, so the first
// dispatch (and a test's list of targets) already sees NEON. One copy per
// kernel TU: the call is idempotent and costs one getauxval.
[[maybe_unused]] static const bool kArm32NeonOffered = OfferArm32Neon();
#endif

}  // namespace internal
}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_OFFERED_TARGETS_H_
