// Shared helpers for the per-target SIMD kernel tests: guarded, optionally
// misaligned arrays, sizes around lane and chunk edges, comparisons.
#ifndef THAW_TESTS_SIMD_TEST_UTIL_H_
#define THAW_TESTS_SIMD_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/aligned_allocator.h"
#include "platform/threads.h"
#include "simd/conv.h"
#include "simd/elementwise.h"

namespace thaw {
namespace simd {
namespace {

// Written around every output; a kernel that writes past n changes it.
constexpr float kGuard = -1234.5f;
constexpr size_t kGuardFloats = 16;

// Every n up to 70 covers 1, N-1, N, N+1, 3N and 8N+2 for N = 1, 4 and 8
// lanes (SCALAR, SSE4, AVX2); 130 = 8*16+2 and the 16k±1 sizes cover AVX3.
// The largest sizes split into several kElementwiseChunk chunks.
inline std::vector<size_t> TestSizes() {
  std::vector<size_t> sizes;
  for (size_t n = 0; n <= 70; ++n) sizes.push_back(n);
  for (size_t n : {127, 128, 129, 130, 255, 256, 257, 1000}) sizes.push_back(n);
  sizes.push_back(kElementwiseChunk - 1);
  sizes.push_back(kElementwiseChunk);
  sizes.push_back(kElementwiseChunk + 1);
  sizes.push_back(3 * kElementwiseChunk + 5);
  return sizes;
}

inline ThreadPool& Pool() {
  static ThreadPool* pool = new ThreadPool(2);
  return *pool;
}

// n floats starting `offset` floats past a 64-byte boundary (offset 1 makes
// them misaligned for every vector width), framed by guard floats.
class Array {
 public:
  Array(size_t n, size_t offset)
      : n_(n),
        offset_(offset),
        mem_(hwy::AllocateAligned<float>(2 * kGuardFloats + offset + n)) {
    for (size_t i = 0; i < 2 * kGuardFloats + offset + n; ++i) {
      mem_[i] = kGuard;
    }
  }
  float* data() { return mem_.get() + kGuardFloats + offset_; }
  const float* data() const { return mem_.get() + kGuardFloats + offset_; }
  size_t size() const { return n_; }

  void FillRandom(std::mt19937& rng, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    for (size_t i = 0; i < n_; ++i) data()[i] = dist(rng);
  }
  std::vector<float> Copy() const {
    return std::vector<float>(data(), data() + n_);
  }
  bool GuardsIntact() const {
    const float* mem = mem_.get();
    const size_t end = kGuardFloats + offset_ + n_;
    for (size_t i = 0; i < kGuardFloats + offset_; ++i) {
      if (!SameBits(mem[i], kGuard)) return false;
    }
    for (size_t i = end; i < end + kGuardFloats; ++i) {
      if (!SameBits(mem[i], kGuard)) return false;
    }
    return true;
  }

  static bool SameBits(float a, float b) {
    uint32_t ua, ub;
    std::memcpy(&ua, &a, 4);
    std::memcpy(&ub, &b, 4);
    return ua == ub;
  }

 private:
  size_t n_;
  size_t offset_;
  hwy::AlignedFreeUniquePtr<float[]> mem_;
};

inline std::string Where(const char* what, size_t n, size_t offset) {
  std::ostringstream os;
  os << what << " n=" << n << " offset=" << offset;
  return os.str();
}

// Bit-exact equality (also distinguishes -0 from +0, and requires NaN where
// the reference has NaN).
// "32x14x14x16 -> 14x14x32 k3x3 s1x1 pad 1,1", for traces of window kernels.
inline std::string Describe(const ConvShape& s) {
  std::ostringstream os;
  os << s.batch << "x" << s.in_h << "x" << s.in_w << "x" << s.in_c << " -> " << s.out_h << "x"
     << s.out_w << "x" << s.out_c << " k" << s.kernel_h << "x" << s.kernel_w << " s" << s.stride_h
     << "x" << s.stride_w << " pad " << s.pad_top << "," << s.pad_left
     << (s.pointwise() ? " (pointwise)" : "");
  return os.str();
}

// n floats uniform in [-1, 1).
inline std::vector<float> RandomFloats(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Shape s with another window width and stride along w ("same": TensorFlow's
// padding, the odd column on the right; otherwise none).
inline ConvShape Wide(ConvShape s, size_t kernel_w, size_t stride_w, bool same) {
  s.kernel_w = kernel_w;
  s.stride_w = stride_w;
  if (same) {
    s.out_w = (s.in_w + stride_w - 1) / stride_w;
    const long pad =
        static_cast<long>((s.out_w - 1) * stride_w + kernel_w) - static_cast<long>(s.in_w);
    s.pad_left = pad > 0 ? static_cast<size_t>(pad) / 2 : 0;
  } else {
    s.out_w = (s.in_w - kernel_w) / stride_w + 1;
    s.pad_left = 0;
  }
  return s;
}

inline ::testing::AssertionResult SameBits(const std::vector<float>& expected,
                                    const float* actual) {
  for (size_t i = 0; i < expected.size(); ++i) {
    if (!Array::SameBits(expected[i], actual[i])) {
      return ::testing::AssertionFailure()
             << "at " << i << ": expected " << expected[i] << ", got "
             << actual[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// |actual - expected| <= tolerance[i] element by element.
inline ::testing::AssertionResult Close(const std::vector<float>& expected,
                                 const float* actual,
                                 const std::vector<float>& tolerance) {
  for (size_t i = 0; i < expected.size(); ++i) {
    if (!(std::fabs(actual[i] - expected[i]) <= tolerance[i])) {
      return ::testing::AssertionFailure()
             << "at " << i << ": expected " << expected[i] << ", got "
             << actual[i] << " (tolerance " << tolerance[i] << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace
}  // namespace simd
}  // namespace thaw

#endif  // THAW_TESTS_SIMD_TEST_UTIL_H_
