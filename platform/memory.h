// thaw/platform/memory.h — aligned blocks, alignment arithmetic, pre-faulting.
//
//   void* block = thaw::AlignedAlloc(1 << 20);   // 64-byte aligned, or nullptr
//   ...
//   thaw::PrefaultMemory(block, 1 << 20);        // optional: map its pages now
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

// Faults in every page of [p, p + bytes) for writing now, keeping the
// contents, so that a step does not fault them in one by one later. Fresh
// memory (a block from AlignedAlloc, a static array) is only mapped when it
// is first written, one page fault per 4 KiB page. On Linux 5.14 and later
// one madvise(MADV_POPULATE_WRITE) maps the whole range; elsewhere, or when
// the kernel refuses that advice, TouchPages does, entering the kernel once
// per page instead of once in all (4 MiB on the measured 2-vCPU VM: 2.1 ms
// of CPU time against 2.7; bench/results/cold_start.md). Setup-time only,
// and not while another thread uses the block.
void PrefaultMemory(void* p, size_t bytes);
// The portable way: one write per page of [p, p + bytes) that changes no
// byte (an atomic OR with 0).
void TouchPages(void* p, size_t bytes);
// The size of a virtual memory page (4096 where the system does not say).
size_t PageBytes();

// Under AddressSanitizer, marks [p, p + bytes) unreadable and unwritable
// (Poison) or usable again (Unpoison); without it, both do nothing. thaw
// poisons every planned buffer outside its lifetime, so a kernel that touches
// memory the plan gave to someone else stops the sanitizer build at once.
void PoisonMemory(const void* p, size_t bytes);
void UnpoisonMemory(const void* p, size_t bytes);

}  // namespace thaw

#endif  // THAW_PLATFORM_MEMORY_H_
