// thaw/tests/sample_data.h — deterministic inputs, labels and a small CNN for
// model tests.
//
//   std::vector<float> x = Wave(64 * 784, 0.1f);   // 64 examples of 784 floats
//   std::vector<int32_t> y = Labels(64, 10);
//   Symbol y = SmallCnn(&model);                   // then model.Build(y, ...)
#ifndef THAW_TESTS_SAMPLE_DATA_H_
#define THAW_TESTS_SAMPLE_DATA_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/thaw.h"

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

// A small CNN with BatchNorm on 8 x 8 x 1 inputs: conv 3x3 (4) - BN - ReLU6
// - depthwise 3x3 - BN - ReLU6 - conv 1x1 (6) - BN - ReLU6 - max pool -
// global average pool - dense 3. Layers "stem", "stem_bn", "dw", "dw_bn",
// "pw", "pw_bn", "pool", "head" (the ReLU6 and global pooling layers unnamed).
// Returns the output to build with.
inline Symbol SmallCnn(Model* model) {
  Symbol x = model->Input(Shape{8, 8, 1}, Layout::kNHWC);
  auto conv_bn = [&](Symbol in, std::unique_ptr<Layer> conv, const std::string& name) {
    Symbol c = model->Call(std::move(conv), in, name);
    return model->Call(ReLU6(), model->Call(BatchNormalization::Make(0.9f), c, name + "_bn"));
  };
  Symbol a = conv_bn(x, Conv2D::Make(4, 3, 1, Padding::kSame, Activation::kLinear, false), "stem");
  Symbol b = conv_bn(a, DepthwiseConv2D::Make(3, 1, Padding::kSame, Activation::kLinear, false),
                     "dw");
  Symbol c = conv_bn(b, Conv2D::Make(6, 1, 1, Padding::kValid, Activation::kLinear, false), "pw");
  Symbol p = model->Call(MaxPool2D::Make(2, 2, Padding::kValid), c, "pool");
  return model->Call(Dense::Make(3), model->Call(GlobalAveragePooling2D::Make(), p), "head");
}

}  // namespace thaw

#endif  // THAW_TESTS_SAMPLE_DATA_H_
