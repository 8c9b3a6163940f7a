// thaw/core/ops/conv.h — Keras Conv2D and DepthwiseConv2D over NHWC images.
//
//   thaw::Sequential model;
//   model.Add(thaw::Conv2D::Make(16, /*kernel=*/3, /*stride=*/1, thaw::Padding::kSame,
//                                thaw::Activation::kRelu));
//   model.Add(thaw::DepthwiseConv2D::Make(3, 2, thaw::Padding::kSame));
//   model.Build(thaw::Shape{28, 28, 1}, thaw::Layout::kNHWC, /*max_batch=*/32, &arena);
//
// Kernels and strides as Keras' "an integer or a tuple of 2 integers"
// (Extent2D: {height, width}, or one number for both); padding as Keras:
// kValid (no padding) or kSame
// (the output is ceil(input / stride); when the padding is odd, the extra
// row and column go at the bottom and right, as TensorFlow). Weights are
// held [KH, KW, Cin, Cout] (Conv2D) and [KH, KW, C, 1] (depthwise, depth
// multiplier 1), Keras' layouts, and written to checkpoints as PyTorch's
// [Cout, Cin, KH, KW] and [C, 1, KH, KW]; the bias is [Cout]. ReLU, ReLU6, sigmoid and
// tanh run fused on each finished tile of the output.
#ifndef THAW_CORE_OPS_CONV_H_
#define THAW_CORE_OPS_CONV_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/graph/layer.h"
#include "core/graph/op.h"
#include "simd/conv.h"

namespace thaw {

enum class Padding : uint8_t { kValid, kSame };

// A window's or a stride's extent, Keras' "an integer or a tuple of 2
// integers": Extent2D(3) is 3 x 3, Extent2D(3, 1) or {3, 1} is 3 high, 1 wide.
struct Extent2D {
  Extent2D(size_t both) : h(both), w(both) {}  // NOLINT: implicit, as Keras' int
  Extent2D(size_t height, size_t width) : h(height), w(width) {}
  size_t h, w;
};

// A window over an image: a convolution's kernel or a pool.
struct WindowAttrs {
  uint32_t kernel_h = 1, kernel_w = 1;
  uint32_t stride_h = 1, stride_w = 1;
  Padding padding = Padding::kValid;
  Activation activation = Activation::kLinear;  // not for pools
  bool has_bias = false;
};

namespace ops {
// y = f(conv(x, w) + b); inputs (x [H, W, Cin], w [K, K, Cin, Cout][, b]).
extern const OpDef kConv2D;
// y = f(depthwise(x, w) + b); inputs (x [H, W, C], w [K, K, C, 1][, b]).
extern const OpDef kDepthwiseConv2D;

// The window's output size and padding for an input image [h, w, c]: fills
// everything of `shape` but the batch and the output channels. An error
// when the window does not fit (valid padding on a smaller image).
Status WindowShape(const Shape& image, const WindowAttrs& attrs, simd::ConvShape* shape);
// The simd shape of a windowed node (a convolution, depthwise convolution
// or pooling; x its input 0, its output [h, w, c]) at `batch`.
simd::ConvShape ConvShapeOf(const Node& node, size_t batch);
}  // namespace ops

class Conv2D : public Layer {
 public:
  Conv2D(size_t filters, Extent2D kernel, Extent2D stride, Padding padding, Activation activation,
         bool use_bias);
  static std::unique_ptr<Layer> Make(size_t filters, Extent2D kernel, Extent2D stride = 1,
                                     Padding padding = Padding::kValid,
                                     Activation activation = Activation::kLinear,
                                     bool use_bias = true) {
    return std::make_unique<Conv2D>(filters, kernel, stride, padding, activation, use_bias);
  }
  const char* kind() const override { return "conv2d"; }
  // Glorot-uniform kernel (fans over the receptive field), zero bias.
  void ResetParameters(Random& rng) override;
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;

 private:
  size_t filters_;
  WindowAttrs attrs_;
};

class DepthwiseConv2D : public Layer {
 public:
  DepthwiseConv2D(Extent2D kernel, Extent2D stride, Padding padding, Activation activation,
                  bool use_bias);
  static std::unique_ptr<Layer> Make(Extent2D kernel, Extent2D stride = 1,
                                     Padding padding = Padding::kValid,
                                     Activation activation = Activation::kLinear,
                                     bool use_bias = true) {
    return std::make_unique<DepthwiseConv2D>(kernel, stride, padding, activation, use_bias);
  }
  const char* kind() const override { return "depthwise_conv2d"; }
  void ResetParameters(Random& rng) override;
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;

 private:
  WindowAttrs attrs_;
};

}  // namespace thaw

#endif  // THAW_CORE_OPS_CONV_H_
