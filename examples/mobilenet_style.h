// The MobileNet-style network of examples/fashion_mnist_cnn_transfer.cc,
// also timed by bench/cnn_bench.cc (and, built the same way in PyTorch, by
// bench/pytorch_cnn.py). On 28 x 28 x 1 images:
//   stem  conv 3x3 stride 2 (16) - BN - ReLU6                          14x14x16
//   b1    depthwise 3x3 - BN - ReLU6 - conv 1x1 (32) - BN - ReLU6       14x14x32
//   b2    depthwise 3x3 stride 2 - BN - ReLU6 - 1x1 (48) - BN - ReLU6     7x7x48
//   b3    inverted residual: 1x1 (96) - BN - ReLU6 - depthwise 3x3 - BN -
//         ReLU6 - 1x1 (48) - BN, added to its input                      7x7x48
//   global average pool - head
// Convolutions have no bias (the BatchNorm's beta is one). Layers are named
// stem, stem_bn, b1_dw, b1_dw_bn, ..., b3_project_bn, b3_add; the head is
// named by the caller, so that a new head does not load an old one.
#ifndef THAW_EXAMPLES_MOBILENET_STYLE_H_
#define THAW_EXAMPLES_MOBILENET_STYLE_H_

#include <memory>
#include <string>
#include <utility>

#include "core/thaw.h"

namespace demo {

// Convolution - BN - ReLU6, named <name> and <name>_bn. BatchNorm momentum
// 0.9 (PyTorch's 0.1): with Keras' 0.99 the moving statistics of a model
// trained for a few hundred steps still lag the batch statistics, and the
// demo's 500-image model trained from scratch predicts at chance in
// inference mode although it fits its batches.
inline thaw::Symbol ConvBn(thaw::Model& m, thaw::Symbol x, std::unique_ptr<thaw::Layer> conv,
                           const std::string& name, bool relu6 = true) {
  thaw::Symbol y = m.Call(thaw::BatchNormalization::Make(0.9f),
                          m.Call(std::move(conv), x, name), name + "_bn");
  return relu6 ? m.Call(thaw::ReLU6(), y) : y;
}

// The network's output: `classes` units with `head_activation`, named `head`.
inline thaw::Symbol MobileNetStyle(thaw::Model& m, size_t classes,
                                   thaw::Activation head_activation, const std::string& head) {
  using thaw::Activation;
  using thaw::Padding;
  auto pointwise = [](size_t filters) {
    return thaw::Conv2D::Make(filters, 1, 1, Padding::kValid, Activation::kLinear, false);
  };
  auto depthwise = [](size_t stride) {
    return thaw::DepthwiseConv2D::Make(3, stride, Padding::kSame, Activation::kLinear, false);
  };
  thaw::Symbol x = m.Input(thaw::Shape{28, 28, 1}, thaw::Layout::kNHWC);
  x = ConvBn(m, x, thaw::Conv2D::Make(16, 3, 2, Padding::kSame, Activation::kLinear, false),
             "stem");
  x = ConvBn(m, ConvBn(m, x, depthwise(1), "b1_dw"), pointwise(32), "b1_pw");
  x = ConvBn(m, ConvBn(m, x, depthwise(2), "b2_dw"), pointwise(48), "b2_pw");
  thaw::Symbol e = ConvBn(m, x, pointwise(96), "b3_expand");
  e = ConvBn(m, ConvBn(m, e, depthwise(1), "b3_dw"), pointwise(48), "b3_project",
             /*relu6=*/false);
  x = m.Call(thaw::Add::Make(), {x, e}, "b3_add");
  return m.Call(thaw::Dense::Make(classes, head_activation),
                m.Call(thaw::GlobalAveragePooling2D::Make(), x), head);
}

// Trainable: the layers whose names start with one of `prefixes`.
inline void TrainOnly(thaw::Model* model, std::initializer_list<const char*> prefixes) {
  for (size_t i = 0; i < model->num_layers(); ++i) {
    thaw::Layer& layer = model->layer(i);
    bool trainable = false;
    for (const char* p : prefixes) trainable = trainable || layer.name().rfind(p, 0) == 0;
    layer.SetTrainable(trainable);
  }
}

}  // namespace demo

#endif  // THAW_EXAMPLES_MOBILENET_STYLE_H_
