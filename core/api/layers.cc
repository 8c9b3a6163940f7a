#include "core/api/layers.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "simd/activation.h"
#include "simd/elementwise.h"
#include "simd/gemm.h"

namespace thaw {

const char* ActivationName(Activation activation) {
  switch (activation) {
    case Activation::kLinear: return "linear";
    case Activation::kRelu: return "relu";
    case Activation::kSigmoid: return "sigmoid";
    case Activation::kTanh: return "tanh";
    case Activation::kSoftmax: return "softmax";
  }
  return "?";
}

namespace {

// y = f(z) over [batch, features], in place allowed.
void ActivationForward(Activation activation, const float* z, float* y,
                       size_t batch, size_t features, ThreadPool& pool) {
  const size_t n = batch * features;
  switch (activation) {
    case Activation::kLinear:
      if (y != z) std::memcpy(y, z, n * sizeof(float));
      break;
    case Activation::kRelu: simd::ReluForward(z, y, n, pool); break;
    case Activation::kSigmoid: simd::SigmoidForward(z, y, n, pool); break;
    case Activation::kTanh: simd::TanhForward(z, y, n, pool); break;
    case Activation::kSoftmax: simd::SoftmaxForward(z, y, batch, features, pool); break;
  }
}

// dz = dy * f'(z), in place over dy, from the activation's output y
// (ReLU: z > 0 exactly where y > 0).
void ActivationBackward(Activation activation, const float* y, float* dy,
                        size_t batch, size_t features, ThreadPool& pool) {
  const size_t n = batch * features;
  switch (activation) {
    case Activation::kLinear: break;
    case Activation::kRelu: simd::ReluBackward(y, dy, dy, n, pool); break;
    case Activation::kSigmoid: simd::SigmoidBackward(y, dy, dy, n, pool); break;
    case Activation::kTanh: simd::TanhBackward(y, dy, dy, n, pool); break;
    case Activation::kSoftmax: simd::SoftmaxBackward(y, dy, dy, batch, features, pool); break;
  }
}

}  // namespace

// ---- Layer ----

void Layer::SetTrainable(bool trainable) {
  for (const Variable& v : variables_) v.set_trainable(trainable);
}

bool Layer::trainable() const {
  for (const Variable& v : variables_) {
    if (v.trainable()) return true;
  }
  return false;
}

Status Layer::Build(const std::string& name, size_t input_features,
                    VariableSet* vars, Random& rng) {
  if (input_features == 0) {
    return InvalidArgument("%s: the input has 0 features", name.c_str());
  }
  name_ = name;
  input_features_ = input_features;
  output_features_ = OutputFeatures(input_features);
  return CreateVariables(vars, rng);
}

Status Layer::AddVariable(VariableSet* vars, const char* suffix,
                          const Shape& shape, Variable* out) {
  THAW_RETURN_IF_ERROR(vars->Create(name_ + "." + suffix, shape, /*trainable=*/true, out));
  variables_.push_back(*out);
  return Status::Ok();
}

// ---- Dense ----

Dense::Dense(size_t units, Activation activation, bool use_bias)
    : units_(units), activation_(activation), use_bias_(use_bias) {}

Status Dense::CreateVariables(VariableSet* vars, Random& rng) {
  if (units_ == 0) return InvalidArgument("%s: a Dense layer needs at least 1 unit", name().c_str());
  THAW_RETURN_IF_ERROR(AddVariable(vars, "weight", Shape{units_, input_features()}, &weight_));
  if (use_bias_) THAW_RETURN_IF_ERROR(AddVariable(vars, "bias", Shape{units_}, &bias_));
  ResetParameters(rng);
  return Status::Ok();
}

// Glorot (Xavier) uniform, Keras's default for Dense kernels; zero bias.
void Dense::ResetParameters(Random& rng) {
  const float limit = std::sqrt(6.0f / static_cast<float>(input_features() + units_));
  const TensorView w = weight_.value();
  for (size_t i = 0; i < w.num_elements(); ++i) w.data()[i] = rng.Uniform(-limit, limit);
  if (use_bias_) std::memset(bias_.value().data(), 0, units_ * sizeof(float));
}

// The packing buffers of the forward product, or of the largest of the three.
size_t Dense::ScratchFloats(size_t batch, int threads, bool backward) const {
  const size_t in = input_features();
  const size_t forward = simd::GemmScratchFloats(batch, units_, in, threads);
  if (!backward) return forward;
  return std::max({forward,
                   simd::GemmScratchFloats(units_, in, batch, threads),
                   simd::GemmScratchFloats(batch, in, units_, threads)});
}

void Dense::Forward(const float* x, float* y, size_t batch, const LayerContext& ctx) {
  ThreadPool& pool = *ctx.pool;
  const size_t in = input_features();
  // y[batch, units] = f(x[batch, in] · W[units, in]^T + b), bias and
  // elementwise activations applied by the product itself; softmax (whole
  // rows) after it.
  simd::GemmEpilogue epilogue;
  if (use_bias_) epilogue.bias = bias_.value().data();
  switch (activation_) {
    case Activation::kLinear:
    case Activation::kSoftmax: break;
    case Activation::kRelu: epilogue.activation = simd::GemmActivation::kRelu; break;
    case Activation::kSigmoid: epilogue.activation = simd::GemmActivation::kSigmoid; break;
    case Activation::kTanh: epilogue.activation = simd::GemmActivation::kTanh; break;
  }
  simd::Gemm(x, in, false, weight_.value().data(), in, true, y, units_, batch,
             units_, in, /*accumulate=*/false, ctx.scratch, pool, epilogue);
  if (activation_ == Activation::kSoftmax && !ctx.skip_softmax) {
    simd::SoftmaxForward(y, y, batch, units_, pool);
  }
}

void Dense::Backward(const float* x, const float* y, float* dy, float* dx,
                     size_t batch, const LayerContext& ctx) {
  ThreadPool& pool = *ctx.pool;
  const size_t in = input_features();
  if (!(activation_ == Activation::kSoftmax && ctx.skip_softmax)) {
    ActivationBackward(activation_, y, dy, batch, units_, pool);
  }
  float* dz = dy;
  const TensorView dw = weight_.gradient();
  if (dw.present()) {
    // dW[units, in] = dz^T[units, batch] · x[batch, in]
    simd::Gemm(dz, units_, true, x, in, false, dw.data(), in, units_, in, batch,
               /*accumulate=*/false, ctx.scratch, pool);
  }
  const TensorView db = use_bias_ ? bias_.gradient() : TensorView();
  if (db.present()) simd::ColumnSums(dz, batch, units_, db.data(), pool);
  if (dx != nullptr) {
    // dx[batch, in] = dz[batch, units] · W[units, in]
    simd::Gemm(dz, units_, false, weight_.value().data(), in, false, dx, in,
               batch, in, units_, /*accumulate=*/false, ctx.scratch, pool);
  }
}

// ---- ActivationLayer ----

const char* ActivationLayer::kind() const { return ActivationName(activation_); }

void ActivationLayer::Forward(const float* x, float* y, size_t batch, const LayerContext& ctx) {
  if (activation_ == Activation::kSoftmax && ctx.skip_softmax) {
    std::memcpy(y, x, batch * input_features() * sizeof(float));
    return;
  }
  ActivationForward(activation_, x, y, batch, input_features(), *ctx.pool);
}

void ActivationLayer::Backward(const float* x, const float* y, float* dy, float* dx,
                               size_t batch, const LayerContext& ctx) {
  if (dx == nullptr) return;  // no variables: only dx matters
  if (!(activation_ == Activation::kSoftmax && ctx.skip_softmax)) {
    ActivationBackward(activation_, y, dy, batch, input_features(), *ctx.pool);
  }
  std::memcpy(dx, dy, batch * input_features() * sizeof(float));
}

// ---- Flatten ----

void Flatten::Forward(const float* x, float* y, size_t batch, const LayerContext&) {
  std::memcpy(y, x, batch * input_features() * sizeof(float));
}

void Flatten::Backward(const float*, const float*, float* dy, float* dx, size_t batch,
                       const LayerContext&) {
  if (dx != nullptr) std::memcpy(dx, dy, batch * input_features() * sizeof(float));
}

// ---- Dropout ----

Status Dropout::CreateVariables(VariableSet*, Random&) {
  if (!(rate_ >= 0.0f && rate_ < 1.0f)) {
    return InvalidArgument("%s: rate %g is outside [0, 1)", name().c_str(), rate_);
  }
  return Status::Ok();
}

void Dropout::Forward(const float* x, float* y, size_t batch, const LayerContext& ctx) {
  const size_t n = batch * input_features();
  if (!ctx.training || rate_ == 0.0f) {
    std::memcpy(y, x, n * sizeof(float));
    return;
  }
  // The mask holds 0 or 1 / (1 - rate) per element.
  const float keep_scale = 1.0f / (1.0f - rate_);
  float* mask = ctx.saved;
  for (size_t i = 0; i < n; ++i) {
    mask[i] = HashUniform(seed_, ctx.step, i) >= rate_ ? keep_scale : 0.0f;
  }
  simd::Mul(x, mask, y, n, *ctx.pool);
}

void Dropout::Backward(const float*, const float*, float* dy, float* dx, size_t batch,
                       const LayerContext& ctx) {
  if (dx == nullptr) return;
  const size_t n = batch * input_features();
  if (rate_ == 0.0f) {
    std::memcpy(dx, dy, n * sizeof(float));
    return;
  }
  simd::Mul(dy, ctx.saved, dx, n, *ctx.pool);
}

}  // namespace thaw
