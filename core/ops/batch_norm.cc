#include "core/ops/batch_norm.h"

#include <cmath>
#include <cstring>

#include "simd/batchnorm.h"
#include "simd/reduce.h"

namespace thaw {
namespace ops {
namespace {

enum Input { kX = 0, kMean, kVar, kCount, kFirstParameter };

int GammaInput(const BatchNormAttrs& a) { return a.has_gamma ? kFirstParameter : -1; }
int BetaInput(const BatchNormAttrs& a) {
  return a.has_beta ? kFirstParameter + (a.has_gamma ? 1 : 0) : -1;
}
size_t Channels(const Node& node) { return node.in[kMean]->shape.num_elements(); }
size_t Rows(const Node& node, size_t batch) { return node.in[kX]->ElementsAt(batch) / Channels(node); }

// Saved state, C floats each. Training: the batch's mean, invstd = 1 /
// sqrt(var + eps), biased variance (for the commit), then what the affine
// pass used: scale = gamma * invstd, shift = beta, and gamma (1 without
// one). Inference: scale and shift (from the moving variance).
enum Saved { kSavedMean = 0, kSavedInvstd, kSavedVar, kSavedScale, kSavedShift, kSavedGamma };
constexpr size_t kTrainingSaved = 6, kInferenceSaved = 2;

Status Infer(const Node& node, Value* out) {
  const BatchNormAttrs attrs = node.attrs.As<BatchNormAttrs>();
  const Value& x = *node.in[kX];
  if (x.shape.rank() == 0) return InvalidArgument("cannot normalise a scalar");
  const size_t channels = x.shape[x.shape.rank() - 1];
  const int expected = kFirstParameter + attrs.has_gamma + attrs.has_beta;
  if (node.num_inputs != expected) {
    return InvalidArgument("expects %d inputs, got %d", expected, node.num_inputs);
  }
  for (int i = kMean; i < node.num_inputs; ++i) {
    const Shape want = i == kCount ? Shape{} : Shape{channels};
    if (node.in[i]->shape != want) {
      return InvalidArgument("input %d has shape %s, expected %s for %zu channels", i,
                             node.in[i]->shape.ToString().c_str(), want.ToString().c_str(),
                             channels);
    }
  }
  if (!(attrs.momentum >= 0.0f && attrs.momentum <= 1.0f) || !(attrs.epsilon > 0.0f)) {
    return InvalidArgument("momentum %g must be in [0, 1] and epsilon %g positive",
                           attrs.momentum, attrs.epsilon);
  }
  out->shape = x.shape;
  out->batched = x.batched;
  out->layout = x.layout;
  return Status::Ok();
}

// scale = gamma / sqrt(var + eps), shift = beta, per channel; invstd too
// when asked.
void AffineOf(const OpCall& c, const float* var, float* invstd, float* scale, float* shift,
              float* gamma_out) {
  const BatchNormAttrs attrs = c.attrs<BatchNormAttrs>();
  const Node& n = *c.node;
  const int g = GammaInput(attrs), b = BetaInput(attrs);
  for (size_t ch = 0; ch < Channels(n); ++ch) {
    const float inv = 1.0f / std::sqrt(var[ch] + attrs.epsilon);
    const float gamma = g >= 0 ? n.in[g]->data[ch] : 1.0f;
    if (invstd != nullptr) invstd[ch] = inv;
    if (gamma_out != nullptr) gamma_out[ch] = gamma;
    scale[ch] = gamma * inv;
    shift[ch] = b >= 0 ? n.in[b]->data[ch] : 0.0f;
  }
}

// Inference mode is (x - moving mean) * scale + shift; scale and shift go
// to the saved state, where the backward pass finds scale.
bool InferenceAffine(const OpCall& c, ChannelAffine* affine) {
  if (c.training) return false;
  if (affine == nullptr) return true;
  const size_t channels = Channels(*c.node);
  AffineOf(c, c.node->in[kVar]->data, nullptr, c.saved, c.saved + channels, nullptr);
  affine->mean = c.node->in[kMean]->data;
  affine->scale = c.saved;
  affine->shift = c.saved + channels;
  return true;
}

void Forward(const OpCall& c) {
  const Node& n = *c.node;
  const size_t channels = Channels(n), rows = Rows(n, c.batch);
  float* s = c.saved;
  auto part = [&](int k) { return s + k * channels; };
  if (c.training) {
    simd::BatchNormStatistics(n.in[kX]->data, rows, channels, part(kSavedMean),
                              part(kSavedVar), *c.pool);
    AffineOf(c, part(kSavedVar), part(kSavedInvstd), part(kSavedScale), part(kSavedShift),
             part(kSavedGamma));
    simd::BatchNormApply(n.in[kX]->data, rows, channels, part(kSavedMean), part(kSavedScale),
                         part(kSavedShift), n.out->data, *c.pool);
  } else {
    ChannelAffine affine;
    InferenceAffine(c, &affine);
    simd::BatchNormApply(n.in[kX]->data, rows, channels, affine.mean, affine.scale, affine.shift,
                         n.out->data, *c.pool);
  }
}

void Backward(const OpCall& c) {
  const BatchNormAttrs attrs = c.attrs<BatchNormAttrs>();
  const Node& n = *c.node;
  const size_t channels = Channels(n), rows = Rows(n, c.batch);
  float* s = c.saved;
  if (c.training) {
    const int g = GammaInput(attrs), b = BetaInput(attrs);
    float* dgamma = g >= 0 && c.din[g] != nullptr ? c.din[g] : c.scratch;
    float* dbeta = b >= 0 && c.din[b] != nullptr ? c.din[b] : c.scratch + channels;
    simd::BatchNormBackward(n.in[kX]->data, c.dout(), rows, channels, s + kSavedMean * channels,
                            s + kSavedInvstd * channels, s + kSavedGamma * channels,
                            c.din[kX], dgamma, dbeta, c.scratch + 2 * channels, *c.pool);
    return;
  }
  // Inference mode (frozen): the layer is x * scale + constant, so
  // dx = dy * scale; gamma and beta are frozen and get nothing.
  if (c.din[kX] == nullptr) return;
  float* zeros = c.scratch;
  std::memset(zeros, 0, channels * sizeof(float));
  simd::BatchNormApply(c.dout(), rows, channels, zeros, s, zeros, c.din[kX], *c.pool);
}

BackwardReads Reads(const Node&, uint32_t, bool training) {
  BackwardReads r;
  if (training) r.inputs = 1u << kX;  // xhat is recomputed from x
  return r;
}

// Backward: dgamma and dbeta when they are not wanted, then the kernel's.
size_t ScratchFloats(const Node& node, size_t batch, int, Pass pass, uint32_t) {
  if (pass != Pass::kBackward) return 0;
  const size_t channels = Channels(node);
  return 2 * channels + simd::BatchNormBackwardScratchFloats(Rows(node, batch), channels);
}

size_t SavedFloats(const Node& node, size_t, bool training) {
  return (training ? kTrainingSaved : kInferenceSaved) * Channels(node);
}

Status Check(const Node& node, size_t batch, bool training) {
  const size_t rows = Rows(node, batch);
  if (training && rows < 2) {
    return InvalidArgument(
        "a BatchNormalization in training mode needs more than one value per channel to "
        "normalise, and this step has %zu (batch %zu); train on larger batches or freeze "
        "the layer (inference mode)",
        rows, batch);
  }
  return Status::Ok();
}

// Moves the statistics: moving = m * batch + (1 - m) * moving with PyTorch's
// m = 1 - momentum, in double (as PyTorch does), the variance unbiased.
Status Commit(const OpCall& c) {
  const BatchNormAttrs attrs = c.attrs<BatchNormAttrs>();
  const Node& n = *c.node;
  const size_t channels = Channels(n), rows = Rows(n, c.batch);
  const float* mean = c.saved + kSavedMean * channels;
  const float* var = c.saved + kSavedVar * channels;
  if (simd::CountNonFinite(mean, channels, *c.pool) + simd::CountNonFinite(var, channels, *c.pool) > 0) {
    return InvalidArgument(
        "the batch statistics hold NaN or infinite values; the moving mean and variance were "
        "left as they were. The inputs held them, or training diverged");
  }
  const double m = 1.0 - static_cast<double>(attrs.momentum);
  const double bessel = static_cast<double>(rows) / static_cast<double>(rows - 1);
  float* moving_mean = n.in[kMean]->data;
  float* moving_var = n.in[kVar]->data;
  for (size_t ch = 0; ch < channels; ++ch) {
    moving_mean[ch] = static_cast<float>(m * mean[ch] + (1.0 - m) * moving_mean[ch]);
    moving_var[ch] = static_cast<float>(m * (var[ch] * bessel) + (1.0 - m) * moving_var[ch]);
  }
  n.in[kCount]->data[0] += 1.0f;
  return Status::Ok();
}

}  // namespace

const OpDef kBatchNorm = {
    "batch_normalization", kFirstParameter, kFirstParameter + 2, Infer, Forward, Backward, Reads,
    ScratchFloats, SavedFloats, /*aliases_input=*/false, /*final_activation=*/nullptr, Check,
    Commit, InferenceAffine, /*takes_affine=*/false,
    /*training_differs=*/true, /*masks_input=*/false,
};

}  // namespace ops

BatchNormalization::BatchNormalization(float momentum, float epsilon, bool center, bool scale) {
  attrs_.momentum = momentum;
  attrs_.epsilon = epsilon;
  attrs_.has_gamma = scale;
  attrs_.has_beta = center;
}

Status BatchNormalization::Call(LayerBuilder& b, Span<Value* const> inputs, Value** output) {
  if (inputs.size() != 1 || inputs[0] == nullptr || inputs[0]->shape.rank() == 0) {
    return InvalidArgument("%s: a BatchNormalization takes one input with a channel axis",
                           b.layer_name().c_str());
  }
  const Shape channels{inputs[0]->shape[inputs[0]->shape.rank() - 1]};
  // PyTorch's state_dict order: weight, bias, running_mean, running_var,
  // num_batches_tracked.
  Value* gamma = attrs_.has_gamma ? b.Parameter("weight", channels) : nullptr;
  Value* beta = attrs_.has_beta ? b.Parameter("bias", channels) : nullptr;
  FileFormat int64;
  int64.int64 = true;  // PyTorch's num_batches_tracked is an int64
  Value* args[6] = {inputs[0], b.Statistic("running_mean", channels),
                    b.Statistic("running_var", channels),
                    b.Statistic("num_batches_tracked", Shape{}, int64)};
  int count = ops::kFirstParameter;
  if (gamma != nullptr) args[count++] = gamma;
  if (beta != nullptr) args[count++] = beta;
  return b.AddNode(ops::kBatchNorm, OpAttrs::Of(attrs_), Span<Value* const>(args, count), output);
}

void BatchNormalization::ResetParameters(Random&) {
  // Variables in declaration order: [weight], [bias], running_mean,
  // running_var, num_batches_tracked.
  const std::vector<Variable>& v = variables();
  size_t i = 0;
  auto fill = [&](float value) {
    const TensorView t = v[i++].value();
    for (size_t k = 0; k < t.num_elements(); ++k) t.data()[k] = value;
  };
  if (attrs_.has_gamma) fill(1.0f);
  if (attrs_.has_beta) fill(0.0f);
  fill(0.0f);  // running_mean
  fill(1.0f);  // running_var
  fill(0.0f);  // num_batches_tracked
}

}  // namespace thaw
