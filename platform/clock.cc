#include "platform/clock.h"

#include <chrono>

namespace thaw {

double MonotonicSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace thaw
