#include "platform/memory.h"

#include <cstdlib>

namespace thaw {

void* AlignedAlloc(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, kAlignment, AlignUp(bytes == 0 ? 1 : bytes)) != 0) {
    return nullptr;
  }
  return p;
}

void AlignedFree(void* p) { std::free(p); }

}  // namespace thaw
