#include "core/ops/pool.h"

#include "simd/spatial.h"

namespace thaw {
namespace ops {
namespace {

// The window over an image; a global pool's is the whole image.
Status InferPool(const Node& node, Value* out) {
  const WindowAttrs a = node.attrs.As<WindowAttrs>();
  const Value& x = *node.in[0];
  if (!x.batched) return InvalidArgument("takes a batch of images");
  simd::ConvShape s;
  THAW_RETURN_IF_ERROR(WindowShape(x.shape, a, &s));
  if (a.padding == Padding::kSame && (s.pad_top >= a.kernel_h || s.pad_left >= a.kernel_w)) {
    return InvalidArgument("a window would hold padding only");
  }
  out->batched = true;
  out->shape = Shape{s.out_h, s.out_w, s.in_c};
  out->layout = Layout::kNHWC;
  return Status::Ok();
}

void MaxForward(const OpCall& c) {
  simd::MaxPoolForward(c.node->in[0]->data, c.node->out->data, ConvShapeOf(*c.node, c.batch),
                       *c.pool);
}
void MaxBackward(const OpCall& c) {
  const simd::PoolMask mask = c.mask == Activation::kRelu    ? simd::PoolMask::kRelu
                              : c.mask == Activation::kRelu6 ? simd::PoolMask::kRelu6
                                                             : simd::PoolMask::kNone;
  simd::MaxPoolBackward(c.node->in[0]->data, c.node->out->data, c.dout(), c.din[0],
                        ConvShapeOf(*c.node, c.batch), *c.pool, mask);
}
BackwardReads MaxReads(const Node&, uint32_t, bool) {
  BackwardReads r;  // where the maximum was: the input against the output
  r.inputs = 1u;
  r.output = true;
  return r;
}

void AvgForward(const OpCall& c) {
  simd::AvgPoolForward(c.node->in[0]->data, c.node->out->data, ConvShapeOf(*c.node, c.batch),
                       *c.pool);
}
void AvgBackward(const OpCall& c) {
  simd::AvgPoolBackward(c.dout(), c.din[0], ConvShapeOf(*c.node, c.batch), *c.pool);
}

}  // namespace

const OpDef kMaxPool2D = {
    "max_pool2d", 1, 1, InferPool, MaxForward, MaxBackward, MaxReads,
    /*scratch_floats=*/nullptr, /*saved_floats=*/nullptr, /*aliases_input=*/false,
    /*final_activation=*/nullptr, /*check=*/nullptr, /*commit=*/nullptr,
    /*channel_affine=*/nullptr, /*takes_affine=*/false,
    /*training_differs=*/false, /*masks_input=*/true,
};

const OpDef kAvgPool2D = {
    "average_pooling2d", 1, 1, InferPool, AvgForward, AvgBackward, /*reads=*/nullptr,
    /*scratch_floats=*/nullptr, /*saved_floats=*/nullptr, /*aliases_input=*/false,
    /*final_activation=*/nullptr, /*check=*/nullptr, /*commit=*/nullptr,
    /*channel_affine=*/nullptr, /*takes_affine=*/false,
    /*training_differs=*/false, /*masks_input=*/false,
};

}  // namespace ops

Pool2D::Pool2D(Kind kind, Extent2D pool, Extent2D stride, Padding padding) : kind_(kind) {
  attrs_.kernel_h = static_cast<uint32_t>(pool.h);
  attrs_.kernel_w = static_cast<uint32_t>(pool.w);
  // Stride 0 (Keras' None): the pool size.
  attrs_.stride_h = static_cast<uint32_t>(stride.h != 0 ? stride.h : pool.h);
  attrs_.stride_w = static_cast<uint32_t>(stride.w != 0 ? stride.w : pool.w);
  attrs_.padding = padding;
}

const char* Pool2D::kind() const {
  switch (kind_) {
    case Kind::kMax: return "max_pooling2d";
    case Kind::kAverage: return "average_pooling2d";
    case Kind::kGlobalAverage: return "global_average_pooling2d";
  }
  return "?";
}

Status Pool2D::Call(LayerBuilder& b, Span<Value* const> inputs, Value** output) {
  if (inputs.size() != 1 || inputs[0] == nullptr || inputs[0]->shape.rank() != 3) {
    return InvalidArgument("%s: a pooling layer takes one batch of images [height, width, channels]",
                           b.layer_name().c_str());
  }
  if (kind_ != Kind::kGlobalAverage) {
    return b.AddNode(kind_ == Kind::kMax ? ops::kMaxPool2D : ops::kAvgPool2D, OpAttrs::Of(attrs_),
                     inputs, output);
  }
  // The mean of every pixel: one window the size of the image, then the
  // 1 x 1 x C result seen as [C].
  const Shape& image = inputs[0]->shape;
  WindowAttrs whole = attrs_;
  whole.kernel_h = static_cast<uint32_t>(image[0]);
  whole.kernel_w = static_cast<uint32_t>(image[1]);
  Value* pooled = nullptr;
  THAW_RETURN_IF_ERROR(b.AddNode(ops::kAvgPool2D, OpAttrs::Of(whole), inputs, &pooled));
  ReshapeAttrs flat;
  flat.shape = Shape{image[2]};
  return b.AddNode(ops::kReshape, OpAttrs::Of(flat), {pooled}, output);
}

}  // namespace thaw
