#include "platform/cpu.h"

#include <thread>

#include "hwy/targets.h"

namespace thaw {

int64_t SupportedTargets() {
  const int64_t targets = hwy::SupportedTargets();
  // Highway 1.0.3 on Arm: a direct SupportedTargets() call leaves the chosen
  // target computed from the unadjusted CPU mask (SVE2 instead of SVE2_128).
  // Re-running the update restores the choice dispatch would make.
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  return targets;
}

std::string SupportedTargetNames() { return TargetNames(SupportedTargets()); }

std::string TargetNames(int64_t targets) {
  const uint64_t bits = static_cast<uint64_t>(targets);
  std::string names;
  // Highway numbers better targets with lower bits, so this lists best first.
  for (int shift = 0; shift < 64; ++shift) {
    const uint64_t bit = uint64_t{1} << shift;
    if ((bits & bit) == 0) continue;
    if (!names.empty()) names += ' ';
    names += hwy::TargetName(static_cast<int64_t>(bit));
  }
  return names;
}

int HardwareThreads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace thaw
