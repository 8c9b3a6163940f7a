// thaw/platform/memory.h — aligned blocks and alignment arithmetic.
//
//   void* block = thaw::AlignedAlloc(1 << 20);   // 64-byte aligned, or nullptr
//   ...
//   thaw::AlignedFree(block);
#ifndef THAW_PLATFORM_MEMORY_H_
#define THAW_PLATFORM_MEMORY_H_

#include <cstddef>
#include <cstdint>

namespace thaw {

// Every buffer thaw places is aligned to a cache line, which is also the
// widest SIMD vector Highway uses on x86 (AVX-512) and covers SVE up to 512 bits.
inline constexpr size_t kAlignment = 64;

constexpr size_t AlignUp(size_t bytes, size_t alignment = kAlignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

inline bool IsAligned(const void* p, size_t alignment = kAlignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

// Returns a kAlignment-aligned block of at least `bytes` bytes, or nullptr when
// the system has no memory. Setup-time only: never called on a step.
void* AlignedAlloc(size_t bytes);
void AlignedFree(void* p);

// Under AddressSanitizer, marks [p, p + bytes) unreadable and unwritable
// (Poison) or usable again (Unpoison); without it, both do nothing. thaw
// poisons every planned buffer outside its lifetime, so a kernel that touches
// memory the plan gave to someone else stops the sanitizer build at once.
void PoisonMemory(const void* p, size_t bytes);
void UnpoisonMemory(const void* p, size_t bytes);

}  // namespace thaw

#endif  // THAW_PLATFORM_MEMORY_H_
