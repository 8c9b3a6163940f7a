// thaw/tests/replace_new.h — replaces the global operator new and delete for
// the whole test binary that includes it (in one source file), so that a test
// can watch every C++ heap allocation: each one first calls
// OnHeapAllocation(), which the including test defines (to count it, or to
// throw std::bad_alloc and see what the code under test does with that).
#ifndef THAW_TESTS_REPLACE_NEW_H_
#define THAW_TESTS_REPLACE_NEW_H_

#include <cstdlib>
#include <new>

void OnHeapAllocation();

// What a failed malloc does: throw, as the standard operator new does, or
// abort in a build without exceptions (the firmware profile), as its does.
[[noreturn]] inline void HeapExhausted() {
#if defined(__cpp_exceptions)
  throw std::bad_alloc();
#else
  std::abort();
#endif
}

void* operator new(size_t size) {
  OnHeapAllocation();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  HeapExhausted();
}
void* operator new[](size_t size) { return operator new(size); }
void* operator new(size_t size, std::align_val_t align) {
  OnHeapAllocation();
  void* p = nullptr;
  if (posix_memalign(&p, static_cast<size_t>(align), size == 0 ? 1 : size) != 0) {
    HeapExhausted();
  }
  return p;
}
void* operator new[](size_t size, std::align_val_t align) { return operator new(size, align); }
// The nothrow forms (thaw_model_create uses one): null where the others throw.
void* operator new(size_t size, const std::nothrow_t&) noexcept {
#if defined(__cpp_exceptions)
  try {
    OnHeapAllocation();
  } catch (...) {
    return nullptr;
  }
#else
  OnHeapAllocation();
#endif
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](size_t size, const std::nothrow_t& tag) noexcept {
  return operator new(size, tag);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }

#endif  // THAW_TESTS_REPLACE_NEW_H_
