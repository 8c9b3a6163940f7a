#include "platform/cpu.h"

#include <thread>

#if (defined(__arm__) || defined(__aarch64__)) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace thaw {

int HardwareThreads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

bool Arm32HasNeonAndVfpv4() {
#if defined(__arm__) && defined(__linux__) && defined(HWCAP_ARM_NEON) && defined(HWCAP_ARM_VFPv4)
  const unsigned long caps = getauxval(AT_HWCAP);
  return (caps & HWCAP_ARM_NEON) != 0 && (caps & HWCAP_ARM_VFPv4) != 0;
#else
  return false;
#endif
}

bool Arm64HasSve() {
#if defined(__aarch64__) && defined(__linux__) && defined(HWCAP_SVE)
  return (getauxval(AT_HWCAP) & HWCAP_SVE) != 0;
#else
  return false;
#endif
}

bool Arm64HasSve2() {
#if defined(__aarch64__) && defined(__linux__) && defined(HWCAP2_SVE2)
  return (getauxval(AT_HWCAP2) & HWCAP2_SVE2) != 0;
#else
  return false;
#endif
}

}  // namespace thaw
