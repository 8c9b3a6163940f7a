#include "core/ops/conv.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/ops/activation.h"
#include "core/ops/epilogue.h"
#include "simd/elementwise.h"
#include "simd/spatial.h"

namespace thaw {
namespace ops {

Status WindowShape(const Shape& image, const WindowAttrs& a, simd::ConvShape* s) {
  if (image.rank() != 3) {
    return InvalidArgument("takes images, [height, width, channels] per example; got %s",
                           image.ToString().c_str());
  }
  if (a.kernel_h == 0 || a.kernel_w == 0 || a.stride_h == 0 || a.stride_w == 0) {
    return InvalidArgument("kernel %ux%u and stride %ux%u must be positive", a.kernel_h,
                           a.kernel_w, a.stride_h, a.stride_w);
  }
  s->in_h = image[0];
  s->in_w = image[1];
  s->in_c = image[2];
  s->kernel_h = a.kernel_h;
  s->kernel_w = a.kernel_w;
  s->stride_h = a.stride_h;
  s->stride_w = a.stride_w;
  if (a.padding == Padding::kValid) {
    if (s->in_h < a.kernel_h || s->in_w < a.kernel_w) {
      return InvalidArgument("a %ux%u window does not fit a %zux%zu image without padding",
                             a.kernel_h, a.kernel_w, s->in_h, s->in_w);
    }
    s->out_h = (s->in_h - a.kernel_h) / a.stride_h + 1;
    s->out_w = (s->in_w - a.kernel_w) / a.stride_w + 1;
    s->pad_top = s->pad_left = 0;
    return Status::Ok();
  }
  // "same": ceil(in / stride) outputs; the odd padding row goes at the end.
  auto same = [](size_t in, size_t kernel, size_t stride, size_t* out, size_t* pad) {
    *out = (in + stride - 1) / stride;
    const size_t needed = (*out - 1) * stride + kernel;
    *pad = needed > in ? (needed - in) / 2 : 0;
  };
  same(s->in_h, a.kernel_h, a.stride_h, &s->out_h, &s->pad_top);
  same(s->in_w, a.kernel_w, a.stride_w, &s->out_w, &s->pad_left);
  return Status::Ok();
}

simd::ConvShape ConvShapeOf(const Node& node, size_t batch) {
  simd::ConvShape s;
  const Status ok = WindowShape(node.in[0]->shape, node.attrs.As<WindowAttrs>(), &s);
  THAW_CHECK(ok.ok());  // checked when the node was added
  s.batch = batch;
  s.out_c = node.out->shape[2];
  return s;
}

namespace {

enum : uint32_t { kX = 1u << 0, kW = 1u << 1, kB = 1u << 2 };

// Checks the input image, the weight and the bias; out = [OH, OW, cout].
Status InferWindowed(const Node& node, Value* out, const Shape& weight, size_t cout) {
  const WindowAttrs a = node.attrs.As<WindowAttrs>();
  const Value& x = *node.in[0];
  if (!x.batched) return InvalidArgument("takes a batch of images");
  simd::ConvShape s;
  THAW_RETURN_IF_ERROR(WindowShape(x.shape, a, &s));
  if (a.activation == Activation::kSoftmax) {
    return InvalidArgument("softmax cannot be fused into a convolution; add a Softmax layer");
  }
  if (node.in[1]->shape != weight) {
    return InvalidArgument("weight shape %s, expected %s", node.in[1]->shape.ToString().c_str(),
                           weight.ToString().c_str());
  }
  if (a.has_bias != (node.num_inputs == 3) ||
      (a.has_bias && node.in[2]->shape != Shape{cout})) {
    return InvalidArgument("the bias must have shape [%zu]", cout);
  }
  out->shape = Shape{s.out_h, s.out_w, cout};
  out->batched = true;
  out->layout = Layout::kNHWC;
  return Status::Ok();
}

simd::GemmEpilogue WindowEpilogue(const OpCall& c) {
  const WindowAttrs a = c.attrs<WindowAttrs>();
  return EpilogueOf(c, a.has_bias ? c.node->in[2]->data : nullptr, a.activation);
}

// dz = dy * f'(z) in place, then the bias gradient; returns dz.
float* ActivationAndBias(const OpCall& c, const simd::ConvShape& s) {
  const WindowAttrs a = c.attrs<WindowAttrs>();
  float* dz = c.dout();
  ActivationBackward(c.ToUndo(a.activation), c.node->out->data, dz, dz, s.pixels(), s.out_c,
                     *c.pool);
  if (a.has_bias && c.din[2] != nullptr) {
    simd::ColumnSums(dz, s.pixels(), s.out_c, c.din[2], *c.pool);
  }
  return dz;
}

BackwardReads Reads(const Node& node, uint32_t wanted, bool) {
  BackwardReads r;
  if (wanted & kW) r.inputs |= kX;  // x for the weight's gradient
  if (wanted & kX) r.inputs |= kW;  // w for the input's
  r.output = node.attrs.As<WindowAttrs>().activation != Activation::kLinear;
  return r;
}

Activation Final(const Node& node) { return node.attrs.As<WindowAttrs>().activation; }

// ---- Conv2D ----

Status InferConv(const Node& node, Value* out) {
  const WindowAttrs a = node.attrs.As<WindowAttrs>();
  const Shape& w = node.in[1]->shape;
  const Shape& x = node.in[0]->shape;
  if (w.rank() != 4 || x.rank() != 3) {
    return InvalidArgument("takes images [height, width, channels] and a weight [k, k, in, out]; "
                           "got %s and %s", x.ToString().c_str(), w.ToString().c_str());
  }
  return InferWindowed(node, out, Shape{a.kernel_h, a.kernel_w, x[2], w[3]}, w[3]);
}

void ConvForward(const OpCall& c) {
  const simd::ConvShape s = ConvShapeOf(*c.node, c.batch);
  simd::ConvForward(c.node->in[0]->data, c.node->in[1]->data, c.node->out->data, s, c.scratch,
                    *c.pool, WindowEpilogue(c));
}

void ConvBackward(const OpCall& c) {
  const simd::ConvShape s = ConvShapeOf(*c.node, c.batch);
  const float* dz = ActivationAndBias(c, s);
  if (c.din[0] == nullptr && c.din[1] == nullptr) return;
  simd::ConvBackward(c.node->in[0]->data, c.node->in[1]->data, dz, c.din[0], c.din[1], s,
                     c.scratch, *c.pool);
}

size_t ConvScratch(const Node& node, size_t batch, int threads, Pass pass, uint32_t wanted) {
  const simd::ConvShape s = ConvShapeOf(node, batch);
  if (pass == Pass::kForward) return simd::ConvForwardScratchFloats(s, threads);
  return simd::ConvBackwardScratchFloats(s, (wanted & kX) != 0, (wanted & kW) != 0, threads);
}

// ---- DepthwiseConv2D ----

Status InferDepthwise(const Node& node, Value* out) {
  const WindowAttrs a = node.attrs.As<WindowAttrs>();
  const Shape& x = node.in[0]->shape;
  if (x.rank() != 3) {
    return InvalidArgument("takes images [height, width, channels]; got %s", x.ToString().c_str());
  }
  return InferWindowed(node, out, Shape{a.kernel_h, a.kernel_w, x[2], 1}, x[2]);
}

void DepthwiseForward(const OpCall& c) {
  const simd::ConvShape s = ConvShapeOf(*c.node, c.batch);
  simd::DepthwiseForward(c.node->in[0]->data, c.node->in[1]->data, c.node->out->data, s,
                         *c.pool, WindowEpilogue(c));
}

void DepthwiseBackward(const OpCall& c) {
  const simd::ConvShape s = ConvShapeOf(*c.node, c.batch);
  const float* dz = ActivationAndBias(c, s);
  if (c.din[0] == nullptr && c.din[1] == nullptr) return;
  simd::DepthwiseBackward(c.node->in[0]->data, c.node->in[1]->data, dz, c.din[0], c.din[1], s,
                          c.scratch, *c.pool);
}

size_t DepthwiseScratch(const Node& node, size_t batch, int, Pass pass, uint32_t wanted) {
  if (pass == Pass::kForward) return 0;
  return simd::DepthwiseBackwardScratchFloats(ConvShapeOf(node, batch), (wanted & kW) != 0);
}

}  // namespace

const OpDef kConv2D = {
    "conv2d", 2, 3, InferConv, ConvForward, ConvBackward, Reads, ConvScratch,
    /*saved_floats=*/nullptr, /*aliases_input=*/false, Final, /*check=*/nullptr,
    /*commit=*/nullptr, /*channel_affine=*/nullptr, /*takes_affine=*/true,
    /*training_differs=*/false, /*masks_input=*/false,
};

const OpDef kDepthwiseConv2D = {
    "depthwise_conv2d", 2, 3, InferDepthwise, DepthwiseForward, DepthwiseBackward, Reads,
    DepthwiseScratch, /*saved_floats=*/nullptr, /*aliases_input=*/false, Final,
    /*check=*/nullptr, /*commit=*/nullptr, /*channel_affine=*/nullptr, /*takes_affine=*/true,
    /*training_differs=*/false, /*masks_input=*/false,
};

}  // namespace ops

namespace {

WindowAttrs Attrs(Extent2D kernel, Extent2D stride, Padding padding, Activation activation,
                  bool use_bias) {
  WindowAttrs a;
  a.kernel_h = static_cast<uint32_t>(kernel.h);
  a.kernel_w = static_cast<uint32_t>(kernel.w);
  a.stride_h = static_cast<uint32_t>(stride.h);
  a.stride_w = static_cast<uint32_t>(stride.w);
  a.padding = padding;
  a.activation = activation;
  a.has_bias = use_bias;
  return a;
}

// Glorot uniform over the kernel's fans, as Keras: limit sqrt(6 / (fan_in +
// fan_out)); zero bias.
void GlorotAndZero(const std::vector<Variable>& v, size_t fan_in, size_t fan_out, Random& rng) {
  const float limit = std::sqrt(6.0f / static_cast<float>(fan_in + fan_out));
  const TensorView w = v[0].value();
  for (size_t i = 0; i < w.num_elements(); ++i) w.data()[i] = rng.Uniform(-limit, limit);
  if (v.size() > 1) std::memset(v[1].value().data(), 0, v[1].value().num_elements() * sizeof(float));
}

Status CheckOne(LayerBuilder& b, Span<Value* const> inputs, const char* what) {
  if (inputs.size() != 1 || inputs[0] == nullptr || inputs[0]->shape.rank() != 3) {
    return InvalidArgument("%s: a %s takes one batch of images [height, width, channels]%s",
                           b.layer_name().c_str(), what,
                           inputs.size() == 1 && inputs[0] != nullptr
                               ? (", got " + inputs[0]->shape.ToString()).c_str()
                               : "");
  }
  return Status::Ok();
}

}  // namespace

Conv2D::Conv2D(size_t filters, Extent2D kernel, Extent2D stride, Padding padding,
               Activation activation, bool use_bias)
    : filters_(filters), attrs_(Attrs(kernel, stride, padding, activation, use_bias)) {}

Status Conv2D::Call(LayerBuilder& b, Span<Value* const> inputs, Value** output) {
  if (filters_ == 0) return InvalidArgument("%s: a Conv2D needs at least 1 filter", b.layer_name().c_str());
  THAW_RETURN_IF_ERROR(CheckOne(b, inputs, "Conv2D"));
  const size_t kh = attrs_.kernel_h, kw = attrs_.kernel_w, cin = inputs[0]->shape[2];
  // Held [KH, KW, Cin, Cout]; PyTorch's file order is [Cout, Cin, KH, KW].
  FileFormat pytorch;
  pytorch.permuted = true;
  const int8_t axes[4] = {2, 3, 1, 0};
  std::copy(axes, axes + 4, pytorch.axes);
  Value* args[3] = {inputs[0], b.Parameter("weight", Shape{kh, kw, cin, filters_}, pytorch),
                    nullptr};
  if (attrs_.has_bias) args[2] = b.Parameter("bias", Shape{filters_});
  return b.AddNode(ops::kConv2D, OpAttrs::Of(attrs_), Span<Value* const>(args, attrs_.has_bias ? 3 : 2),
                   output);
}

void Conv2D::ResetParameters(Random& rng) {
  const Shape& w = variables()[0].shape();
  const size_t field = w[0] * w[1];
  GlorotAndZero(variables(), field * w[2], field * w[3], rng);
}

DepthwiseConv2D::DepthwiseConv2D(Extent2D kernel, Extent2D stride, Padding padding,
                                 Activation activation, bool use_bias)
    : attrs_(Attrs(kernel, stride, padding, activation, use_bias)) {}

Status DepthwiseConv2D::Call(LayerBuilder& b, Span<Value* const> inputs, Value** output) {
  THAW_RETURN_IF_ERROR(CheckOne(b, inputs, "DepthwiseConv2D"));
  const size_t kh = attrs_.kernel_h, kw = attrs_.kernel_w, c = inputs[0]->shape[2];
  // Held [KH, KW, C, 1] (Keras, depth multiplier 1); PyTorch's [C, 1, KH, KW].
  FileFormat pytorch;
  pytorch.permuted = true;
  const int8_t axes[4] = {2, 3, 0, 1};
  std::copy(axes, axes + 4, pytorch.axes);
  Value* args[3] = {inputs[0], b.Parameter("weight", Shape{kh, kw, c, 1}, pytorch), nullptr};
  if (attrs_.has_bias) args[2] = b.Parameter("bias", Shape{c});
  return b.AddNode(ops::kDepthwiseConv2D, OpAttrs::Of(attrs_),
                   Span<Value* const>(args, attrs_.has_bias ? 3 : 2), output);
}

// Keras' fans for a depthwise kernel [k, k, C, multiplier 1]: the receptive
// field times C in, times 1 out.
void DepthwiseConv2D::ResetParameters(Random& rng) {
  const Shape& w = variables()[0].shape();
  const size_t field = w[0] * w[1];
  GlorotAndZero(variables(), field * w[2], field, rng);
}

}  // namespace thaw
