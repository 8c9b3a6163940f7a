// thaw/core/ops/pool.h — Keras MaxPool2D, AveragePooling2D and
// GlobalAveragePooling2D over NHWC images.
//
//   model.Add(thaw::MaxPool2D::Make(2));                // 2x2, stride 2
//   model.Add(thaw::GlobalAveragePooling2D::Make());    // [H, W, C] -> [C]
//
// As Keras: the stride defaults to the pool size, padding kValid or kSame;
// with kSame, padding taps are left out (the maximum of what is inside; the
// mean divides by the taps inside, as TensorFlow). Max pooling sends each
// window's gradient to its first largest tap.
#ifndef THAW_CORE_OPS_POOL_H_
#define THAW_CORE_OPS_POOL_H_

#include <cstddef>
#include <memory>

#include "core/graph/layer.h"
#include "core/ops/conv.h"
#include "core/ops/reshape.h"

namespace thaw {

namespace ops {
extern const OpDef kMaxPool2D;  // attrs WindowAttrs
extern const OpDef kAvgPool2D;  // attrs WindowAttrs; output [C] when global
}  // namespace ops

class Pool2D : public Layer {
 public:
  enum class Kind { kMax, kAverage, kGlobalAverage };
  Pool2D(Kind kind, Extent2D pool, Extent2D stride, Padding padding);
  const char* kind() const override;
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;

 private:
  Kind kind_;
  WindowAttrs attrs_;
};

struct MaxPool2D {
  // stride 0 (on an axis): the pool size.
  static std::unique_ptr<Layer> Make(Extent2D pool = 2, Extent2D stride = 0,
                                     Padding padding = Padding::kValid) {
    return std::make_unique<Pool2D>(Pool2D::Kind::kMax, pool, stride, padding);
  }
};
struct AveragePooling2D {
  static std::unique_ptr<Layer> Make(Extent2D pool = 2, Extent2D stride = 0,
                                     Padding padding = Padding::kValid) {
    return std::make_unique<Pool2D>(Pool2D::Kind::kAverage, pool, stride, padding);
  }
};
struct GlobalAveragePooling2D {
  static std::unique_ptr<Layer> Make() {
    return std::make_unique<Pool2D>(Pool2D::Kind::kGlobalAverage, 1, 1, Padding::kValid);
  }
};

}  // namespace thaw

#endif  // THAW_CORE_OPS_POOL_H_
