#include "platform/memory.h"

#include <cstdlib>

#include "platform/checked.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace thaw {

void* AlignedAlloc(size_t bytes) {
  if (bytes > kMaxBytes) return nullptr;  // AlignUp would wrap to a tiny block
  void* p = nullptr;
  if (posix_memalign(&p, kAlignment, AlignUp(bytes == 0 ? 1 : bytes)) != 0) {
    return nullptr;
  }
  return p;
}

void AlignedFree(void* p) { std::free(p); }

#if defined(__SANITIZE_ADDRESS__)
void PoisonMemory(const void* p, size_t bytes) { ASAN_POISON_MEMORY_REGION(p, bytes); }
void UnpoisonMemory(const void* p, size_t bytes) { ASAN_UNPOISON_MEMORY_REGION(p, bytes); }
#else
void PoisonMemory(const void*, size_t) {}
void UnpoisonMemory(const void*, size_t) {}
#endif

}  // namespace thaw
