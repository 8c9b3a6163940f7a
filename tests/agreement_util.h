// Reading the PyTorch agreement fixtures (tests/pytorch/agreement.py writes
// them) and comparing thaw's tensors with them.
#ifndef THAW_TESTS_AGREEMENT_UTIL_H_
#define THAW_TESTS_AGREEMENT_UTIL_H_

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"
#include "gtest/gtest.h"

namespace thaw {

using Fixture = std::map<std::string, std::vector<float>>;

// Lines of "<name> <count> <values...>"; '#' starts a comment line.
inline Fixture ReadFixture(const std::string& path) {
  Fixture fixture;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name;
    size_t count = 0;
    fields >> name >> count;
    std::vector<float> values(count);
    for (float& v : values) fields >> v;
    fixture[name] = values;
  }
  return fixture;
}

// Every element within a relative 1e-5 (absolute below 1).
inline void ExpectClose(const std::vector<float>& expected, const TensorView& actual,
                        const std::string& what) {
  ASSERT_EQ(expected.size(), actual.num_elements()) << what;
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_NEAR(actual.data()[i], expected[i], 1e-5 * std::max(1.0f, std::fabs(expected[i])))
        << what << " element " << i;
  }
}

}  // namespace thaw

#endif  // THAW_TESTS_AGREEMENT_UTIL_H_
