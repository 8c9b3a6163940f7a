// thaw/tests/resident_pages.h — which pages of a range the OS has mapped,
// for the tests of pre-faulting (platform_test, arena_test).
//
//   FreshPages block(8);                    // 8 pages, none resident yet
//   std::vector<bool> resident;
//   if (!ResidentPages(block.data(), block.bytes(), &resident)) GTEST_SKIP();
//
// Linux only (mincore); elsewhere ResidentPages returns false and the tests
// that need it skip.
#ifndef THAW_TESTS_RESIDENT_PAGES_H_
#define THAW_TESTS_RESIDENT_PAGES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "platform/memory.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace thaw {

// One entry per page that [p, p + bytes) reaches, true where the page is
// resident; false (nothing filled) where the system cannot say.
inline bool ResidentPages(const void* p, size_t bytes, std::vector<bool>* resident) {
#if defined(__linux__)
  const uintptr_t page = PageBytes();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes + page - 1) / page * page;
  std::vector<unsigned char> flags((end - begin) / page);
  if (mincore(reinterpret_cast<void*>(begin), end - begin, flags.data()) != 0) return false;
  resident->assign(flags.size(), false);
  for (size_t i = 0; i < flags.size(); ++i) (*resident)[i] = (flags[i] & 1) != 0;
  return true;
#else
  (void)p;
  (void)bytes;
  (void)resident;
  return false;
#endif
}

inline size_t CountResident(const std::vector<bool>& resident) {
  size_t n = 0;
  for (bool r : resident) n += r ? 1 : 0;
  return n;
}

// `pages` pages of a fresh private anonymous mapping: none of them is
// resident until it is first touched (too small for a transparent huge
// page). data() is null where there is no mmap.
class FreshPages {
 public:
  explicit FreshPages(size_t pages) : bytes_(pages * PageBytes()) {
#if defined(__linux__)
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) data_ = static_cast<unsigned char*>(p);
#endif
  }
  ~FreshPages() {
#if defined(__linux__)
    if (data_ != nullptr) munmap(data_, bytes_);
#endif
  }
  FreshPages(const FreshPages&) = delete;
  FreshPages& operator=(const FreshPages&) = delete;

  unsigned char* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_;
  unsigned char* data_ = nullptr;
};

}  // namespace thaw

#endif  // THAW_TESTS_RESIDENT_PAGES_H_
