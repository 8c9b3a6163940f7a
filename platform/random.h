// thaw/platform/random.h — a small, seedable, reproducible random generator.
//
//   thaw::Random rng(42);
//   float u = rng.Uniform();          // [0, 1)
//   size_t k = rng.Below(10);         // [0, 10)
//
// SplitMix64: the same sequence on every platform and compiler, which is what
// seeded initialisation, shuffling and dropout need (std:: distributions are
// implementation-defined). Not for cryptography.
#ifndef THAW_PLATFORM_RANDOM_H_
#define THAW_PLATFORM_RANDOM_H_

#include <cstddef>
#include <cstdint>

namespace thaw {

class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1), with 24 random bits (every float step in [0.5, 1)).
  float Uniform() { return static_cast<float>(Next() >> 40) * (1.0f / 16777216.0f); }
  // Uniform in [lo, hi).
  float Uniform(float lo, float hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n), n > 0 (multiply-shift; bias below 2^-32 for n < 2^32):
  // the high 64 bits of the 128-bit product Next() * n.
  size_t Below(size_t n) { return static_cast<size_t>(MulHigh(Next(), n)); }

  // The high half of the 128-bit product a * b, from 32-bit halves, so that
  // 32-bit targets (no unsigned __int128) draw the same numbers.
  static uint64_t MulHigh(uint64_t a, uint64_t b) {
    const uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32;
    const uint64_t b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
    const uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi;
    const uint64_t middle = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFFu) + (lo_hi & 0xFFFFFFFFu);
    return a_hi * b_hi + (hi_lo >> 32) + (lo_hi >> 32) + (middle >> 32);
  }

 private:
  uint64_t state_;
};

// A stateless hash of (seed, a, b) to [0, 1): the same value however the
// calls are ordered or split across threads (used for dropout masks).
inline float HashUniform(uint64_t seed, uint64_t a, uint64_t b) {
  Random r(seed ^ (a * 0xD1B54A32D192ED03ull) ^ (b * 0xABC98388FB8FAC03ull));
  return r.Uniform();
}

}  // namespace thaw

#endif  // THAW_PLATFORM_RANDOM_H_
