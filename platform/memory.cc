#include "platform/memory.h"

#include <cstdlib>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

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

size_t PageBytes() {
#if defined(_SC_PAGESIZE)
  const long page = sysconf(_SC_PAGESIZE);
  if (page > 0) return static_cast<size_t>(page);
#endif
  return 4096;
}

// One atomic OR with 0 per page: a single write access, so one page fault
// per page, where reading the byte and writing it back faults twice (the
// read maps the shared zero page, the write then copies it: 2046 faults and
// twice the time for 4 MiB). Not instrumented: a wrapped arena's planned
// buffers may be poisoned (PoisonMemory) when it is touched, and the OR
// changes no byte.
__attribute__((no_sanitize("address"))) void TouchPages(void* p, size_t bytes) {
  if (p == nullptr || bytes == 0) return;
  unsigned char* const bytes_at = static_cast<unsigned char*>(p);
  const size_t page = PageBytes();
  // The first byte of every page the range reaches, the first one included
  // when p is not at a page start.
  const size_t first = reinterpret_cast<uintptr_t>(p) % page;
  __atomic_fetch_or(bytes_at, 0, __ATOMIC_RELAXED);
  for (size_t i = page - first; i < bytes; i += page) {
    __atomic_fetch_or(bytes_at + i, 0, __ATOMIC_RELAXED);
  }
}

void PrefaultMemory(void* p, size_t bytes) {
  if (p == nullptr || bytes == 0) return;
#if defined(MADV_POPULATE_WRITE)
  // madvise wants a page-aligned start; the partial pages at either end are
  // touched. EINVAL (a kernel before 5.14, or memory it will not populate)
  // falls back to touching the rest.
  const uintptr_t page = PageBytes();
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t begin = (start + page - 1) / page * page;
  const uintptr_t end = (start + bytes) / page * page;
  if (begin < end &&
      madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE) == 0) {
    TouchPages(p, begin - start);
    TouchPages(reinterpret_cast<void*>(end), start + bytes - end);
    return;
  }
#endif
  TouchPages(p, bytes);
}

#if defined(__SANITIZE_ADDRESS__)
void PoisonMemory(const void* p, size_t bytes) { ASAN_POISON_MEMORY_REGION(p, bytes); }
void UnpoisonMemory(const void* p, size_t bytes) { ASAN_UNPOISON_MEMORY_REGION(p, bytes); }
#else
void PoisonMemory(const void*, size_t) {}
void UnpoisonMemory(const void*, size_t) {}
#endif

}  // namespace thaw
