// thaw/tests/sample_data.h — deterministic inputs and labels for model tests.
//
//   std::vector<float> x = Wave(64 * 784, 0.1f);   // 64 examples of 784 floats
//   std::vector<int32_t> y = Labels(64, 10);
#ifndef THAW_TESTS_SAMPLE_DATA_H_
#define THAW_TESTS_SAMPLE_DATA_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace thaw {

// n floats of a sine wave in [-1, 1], shifted by `phase`.
inline std::vector<float> Wave(size_t n, float phase) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i) + phase);
  return x;
}

// n labels in [0, classes), cycling through them in a scrambled order.
inline std::vector<int32_t> Labels(size_t n, int classes) {
  std::vector<int32_t> y(n);
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<int32_t>((i * 7 + i / 3) % classes);
  return y;
}

}  // namespace thaw

#endif  // THAW_TESTS_SAMPLE_DATA_H_
