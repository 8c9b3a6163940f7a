// thaw/platform/checked.h — size arithmetic that says when it overflows.
//
//   size_t bytes;
//   if (!thaw::CheckedMul(rows, cols, &bytes) || !thaw::CheckedMul(bytes, 4, &bytes)) {
//     return thaw::InvalidArgument("%zu x %zu floats do not fit in memory", rows, cols);
//   }
//
// Every size that comes from a caller or a file (a shape, a batch, an arena's
// capacity) goes through these before it sizes anything, so that a huge
// value gives a Status instead of a small wrapped-around size.
#ifndef THAW_PLATFORM_CHECKED_H_
#define THAW_PLATFORM_CHECKED_H_

#include <cstddef>
#include <cstdint>

namespace thaw {

// The largest number of bytes thaw sizes a block or a plan for: a sixty-fourth
// of the address space (2^58 bytes on 64-bit machines, 64 MiB on 32-bit
// ones). No real buffer comes near it, and sums of up to 64 such sizes, or
// rounding one up to an alignment, cannot wrap.
inline constexpr size_t kMaxBytes = SIZE_MAX / 64;

// *out = a * b, or false (and *out untouched) when the product overflows.
inline bool CheckedMul(size_t a, size_t b, size_t* out) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r)) return false;
  *out = r;
  return true;
}

// *out = a + b, or false (and *out untouched) when the sum overflows.
inline bool CheckedAdd(size_t a, size_t b, size_t* out) {
  size_t r;
  if (__builtin_add_overflow(a, b, &r)) return false;
  *out = r;
  return true;
}

}  // namespace thaw

#endif  // THAW_PLATFORM_CHECKED_H_
