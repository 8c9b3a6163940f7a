#include "core/train/optimizers.h"

#include <cmath>
#include <initializer_list>
#include <utility>

#include "simd/elementwise.h"
#include "simd/optimizer.h"
#include "simd/reduce.h"

namespace thaw {

Optimizer::Optimizer(VariableSet* vars, int slots, ThreadPool& pool)
    : vars_(vars), pool_(&pool), slots_(slots), id_(vars->AttachOptimizer(slots)) {}

Status Optimizer::CheckAttached(const char* what) const {
  if (vars_->attached_optimizer() != id_) {
    return FailedPrecondition(
        "%s: another optimizer has been attached to this variable set since "
        "this one; only the most recent one may step",
        what);
  }
  return Status::Ok();
}

Status Optimizer::CheckFinite(const Variable& v, const float* grad, const char* unchanged) const {
  const size_t n = v.shape().num_elements();
  const size_t bad = simd::CountNonFinite(grad, n, *pool_);
  if (bad == 0) return Status::Ok();
  return InvalidArgument(
      "%s: the gradient holds %zu NaN or infinite value%s (of %zu); %s. "
      "The inputs held them, or training diverged: check the data, lower the learning rate",
      v.name().c_str(), bad, bad == 1 ? "" : "s", n, unchanged);
}

void Optimizer::SetUpdateInBackward(bool on) { id_ = vars_->AttachOptimizer(slots_, !on); }

Status Optimizer::SetClipping(const GradientClipping& clipping) {
  THAW_RETURN_IF_ERROR(CheckOptions(clipping));
  clipping_ = clipping;
  return Status::Ok();
}

void Optimizer::Clip(const int* index, float* const* grads, size_t count) {
  // clip_grad_norm_'s factor: max_norm / (norm + 1e-6), applied below 1.
  auto scale_to = [&](float max_norm, double norm, float* grad, size_t n) {
    const double factor = max_norm / (norm + 1e-6);
    if (factor < 1.0) simd::Scale(grad, static_cast<float>(factor), grad, n, *pool_);
  };
  auto size_of = [&](size_t k) { return (*vars_)[index[k]].shape().num_elements(); };
  if (clipping_.clipnorm > 0.0f) {
    for (size_t k = 0; k < count; ++k) {
      const float squares = simd::Dot(grads[k], grads[k], size_of(k), *pool_);
      scale_to(clipping_.clipnorm, std::sqrt(static_cast<double>(squares)), grads[k], size_of(k));
    }
  }
  if (clipping_.global_clipnorm > 0.0f) {
    double squares = 0.0;  // variable by variable, in order: deterministic
    for (size_t k = 0; k < count; ++k) squares += simd::Dot(grads[k], grads[k], size_of(k), *pool_);
    const double norm = std::sqrt(squares);
    for (size_t k = 0; k < count; ++k) scale_to(clipping_.global_clipnorm, norm, grads[k], size_of(k));
  }
  if (clipping_.clipvalue > 0.0f) {
    for (size_t k = 0; k < count; ++k) {
      simd::ClampAbs(grads[k], clipping_.clipvalue, grads[k], size_of(k), *pool_);
    }
  }
}

template <class EachGradient>
Status Optimizer::ClipAll(const char* what, EachGradient&& each_gradient) {
  if (!Clipping()) return Status::Ok();
  int index[kMaxClipped];
  float* grads[kMaxClipped];
  size_t count = 0;
  bool too_many = false;
  each_gradient([&](int i, float* grad) {
    if (count == kMaxClipped) {
      too_many = true;
      return;
    }
    index[count] = i;
    grads[count++] = grad;
  });
  if (too_many) {
    return InvalidArgument("%s: clipping takes at most %zu gradients per step, got more; nothing "
                           "was updated",
                           what, kMaxClipped);
  }
  Clip(index, grads, count);
  return Status::Ok();
}

void Optimizer::StepVariable(int index, const float* grad) {
  float* slots[2] = {nullptr, nullptr};
  for (int s = 0; s < slots_; ++s) slots[s] = vars_->slot_data(index, s);
  const uint64_t step = ++vars_->steps(index);
  const Variable v = (*vars_)[index];
  Update(grad, v.value().data(), slots, v.shape().num_elements(), step);
}

Status Optimizer::ApplyGradients(Span<const GradientAndVariable> pairs) {
  THAW_RETURN_IF_ERROR(refused_);
  THAW_RETURN_IF_ERROR(CheckAttached("ApplyGradients"));
  if (vars_->planned_optimizer() != id_) {
    return FailedPrecondition(
        "ApplyGradients: the optimizer was attached after this step's tape "
        "began; its state is laid out when the next tape begins");
  }
  // Check everything first, so that an error changes nothing.
  for (size_t i = 0; i < pairs.size(); ++i) {
    const GradientAndVariable& p = pairs[i];
    if (p.variable.set() != vars_) {
      return InvalidArgument("ApplyGradients: pair %zu: the variable %s", i,
                             p.variable.valid() ? "belongs to another VariableSet"
                                                : "is invalid");
    }
    if (!p.gradient.present()) continue;
    const char* name = p.variable.name().c_str();
    const int index = p.variable.index();
    if (!p.variable.trainable()) {
      return FailedPrecondition(
          "%s: a gradient was given for a frozen (trainable=false) variable; "
          "frozen variables are never updated. Drop the pair, or set the "
          "variable trainable and record a new tape",
          name);
    }
    if (!vars_->planned_trainable(index)) {
      return FailedPrecondition(
          "%s was made trainable after this step's tape began; the change "
          "takes effect at the next tape, which gives it optimizer state",
          name);
    }
    if (p.gradient.shape() != p.variable.shape() || !p.gradient.is_contiguous()) {
      return InvalidArgument(
          "%s: gradient of shape %s%s does not match the variable's shape %s",
          name, p.gradient.shape().ToString().c_str(),
          p.gradient.is_contiguous() ? "" : " (strided)",
          p.variable.shape().ToString().c_str());
    }
    for (size_t j = 0; j < i; ++j) {
      if (pairs[j].gradient.present() && pairs[j].variable == p.variable) {
        return InvalidArgument("%s: two gradients were given for this variable",
                               name);
      }
    }
    THAW_RETURN_IF_ERROR(CheckFinite(p.variable, p.gradient.data()));
  }
  auto each_gradient = [&](auto&& f) {
    for (const GradientAndVariable& p : pairs) {
      if (p.gradient.present()) f(p.variable.index(), p.gradient.data());
    }
  };
  THAW_RETURN_IF_ERROR(ClipAll("ApplyGradients", each_gradient));
  each_gradient([&](int index, const float* grad) { StepVariable(index, grad); });
  return Status::Ok();
}

template <class EachGradient>
Status Optimizer::ApplyEach(const char* what, const char* unchanged,
                            EachGradient&& each_gradient) {
  // Every gradient is checked before any variable changes.
  Status finite;
  each_gradient([&](int index, const float* grad) {
    if (finite.ok()) finite = CheckFinite((*vars_)[index], grad, unchanged);
  });
  THAW_RETURN_IF_ERROR(finite);
  THAW_RETURN_IF_ERROR(ClipAll(what, each_gradient));
  each_gradient([&](int index, const float* grad) { StepVariable(index, grad); });
  return Status::Ok();
}

Status Optimizer::ApplyOwnGradients() {
  return ApplyOwn([&](auto&& f) {
    for (int i = 0; i < vars_->size(); ++i) {
      if (vars_->planned_trainable(i)) f(i, vars_->gradient_data(i));
    }
  });
}

Status Optimizer::ApplyOwnGradients(Span<const int> variables) {
  for (size_t k = 0; k < variables.size(); ++k) {
    const int index = variables[k];
    if (!PlannedTrainable(index) || (k > 0 && index <= variables[k - 1])) {
      return FailedPrecondition(
          "ApplyOwnGradients: variable %d is not trainable in the current plan, or the indices "
          "do not increase",
          index);
    }
  }
  return ApplyOwn([&](auto&& f) {
    for (int index : variables) f(index, vars_->gradient_data(index));
  });
}

template <class EachGradient>
Status Optimizer::ApplyOwn(EachGradient&& each_gradient) {
  THAW_RETURN_IF_ERROR(refused_);
  THAW_RETURN_IF_ERROR(CheckAttached("ApplyOwnGradients"));
  if (vars_->plan_stale()) {
    return FailedPrecondition(
        "ApplyOwnGradients: the freeze set or the optimizer changed since the "
        "gradients were computed; run a new step");
  }
  if (!vars_->planned_gradient_buffers()) {
    return FailedPrecondition(
        "ApplyOwnGradients: this optimizer updates in the backward pass, so the variables keep "
        "no gradient buffers; the backward pass applies each gradient (ApplyGradientsOf)");
  }
  return ApplyEach("ApplyOwnGradients", "nothing was updated", each_gradient);
}

Status Optimizer::ApplyGradientsOf(const int* variables, float* const* grads, size_t count) {
  THAW_RETURN_IF_ERROR(refused_);
  THAW_RETURN_IF_ERROR(CheckAttached("ApplyGradientsOf"));
  if (clipping_.global_clipnorm > 0.0f) {
    return FailedPrecondition(
        "ApplyGradientsOf: global_clipnorm = %g needs every gradient of the step before the "
        "first update; it cannot clip a few variables' gradients at a time",
        static_cast<double>(clipping_.global_clipnorm));
  }
  for (size_t k = 0; k < count; ++k) {
    const int index = variables[k];
    if (!PlannedTrainable(index)) {
      return FailedPrecondition(
          "ApplyGradientsOf: variable %d has no optimizer state in the current plan (it is "
          "frozen, unknown, or was thawed since the last step began)",
          index);
    }
    for (size_t j = 0; j < k; ++j) {
      if (variables[j] == index) {
        return InvalidArgument("%s: two gradients were given for this variable",
                               vars_->name(index).c_str());
      }
    }
  }
  return ApplyEach("ApplyGradientsOf", "none of the variables given with it was updated",
                   [&](auto&& f) {
                     for (size_t k = 0; k < count; ++k) f(variables[k], grads[k]);
                   });
}

SGD::SGD(VariableSet* vars, const SgdOptions& options, ThreadPool& pool)
    : Optimizer(vars, options.momentum != 0.0f ? 1 : 0, pool), options_(options) {
  Refuse(CheckOptions(options));
}

void SGD::SetLearningRate(float learning_rate) { options_.learning_rate = learning_rate; }
void Adam::SetLearningRate(float learning_rate) { options_.learning_rate = learning_rate; }

void SGD::Update(const float* grad, float* weight, float* const* slots,
                 size_t n, uint64_t /*step*/) {
  simd::SgdParams params;
  params.learning_rate = options_.learning_rate;
  params.momentum = options_.momentum;
  params.weight_decay = options_.weight_decay;
  params.nesterov = options_.nesterov;
  simd::SgdStep(grad, weight, slots[0], n, params, pool());
}

Adam::Adam(VariableSet* vars, const AdamOptions& options, ThreadPool& pool)
    : Optimizer(vars, 2, pool), options_(options) {
  Refuse(CheckOptions(options));
}

void Adam::Update(const float* grad, float* weight, float* const* slots,
                  size_t n, uint64_t step) {
  // Bias corrections in double, as PyTorch computes them in Python floats.
  const double t = static_cast<double>(step);
  const double correction1 = 1.0 - std::pow(static_cast<double>(options_.beta1), t);
  const double correction2 = 1.0 - std::pow(static_cast<double>(options_.beta2), t);
  simd::AdamParams params;
  params.learning_rate = options_.learning_rate;
  params.beta1 = options_.beta1;
  params.beta2 = options_.beta2;
  params.epsilon = options_.epsilon;
  params.weight_decay = options_.weight_decay;
  params.decoupled_weight_decay = options_.decoupled_weight_decay;
  params.step_size = static_cast<float>(options_.learning_rate / correction1);
  params.bias_correction2_sqrt = static_cast<float>(std::sqrt(correction2));
  simd::AdamStep(grad, weight, slots[0], slots[1], n, params, pool());
}

AdamW::AdamW(VariableSet* vars, AdamOptions options, ThreadPool& pool)
    : Adam(vars, [&] {
        options.decoupled_weight_decay = true;
        return options;
      }(), pool) {}

OptimizerConfig OptimizerConfig::Sgd(const SgdOptions& options) {
  OptimizerConfig c;
  c.kind = Kind::kSgd;
  c.sgd = options;
  return c;
}

OptimizerConfig OptimizerConfig::Adam(const AdamOptions& options) {
  OptimizerConfig c;
  c.kind = Kind::kAdam;
  c.adam = options;
  return c;
}

OptimizerConfig OptimizerConfig::AdamW(const AdamOptions& options) {
  OptimizerConfig c = Adam(options);
  c.kind = Kind::kAdamW;
  return c;
}

namespace {

Status OutOfRange(const char* optimizer, const char* option, float value, const char* range) {
  return InvalidArgument("%s: %s = %g is out of range; it must be %s", optimizer, option,
                         static_cast<double>(value), range);
}

// The first of `options` that is not a finite number >= 0 (NaN included).
Status CheckNonNegative(const char* optimizer,
                        std::initializer_list<std::pair<const char*, float>> options) {
  for (const auto& [name, value] : options) {
    if (!(value >= 0.0f && std::isfinite(value))) {
      return OutOfRange(optimizer, name, value, "a finite number >= 0");
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckOptions(const SgdOptions& o) {
  THAW_RETURN_IF_ERROR(CheckNonNegative("SGD", {{"learning_rate", o.learning_rate},
                                                {"momentum", o.momentum},
                                                {"weight_decay", o.weight_decay}}));
  if (o.nesterov && o.momentum == 0.0f) {
    return InvalidArgument("SGD: nesterov needs a momentum above 0");
  }
  return Status::Ok();
}

Status CheckOptions(const AdamOptions& o) {
  THAW_RETURN_IF_ERROR(CheckNonNegative("Adam", {{"learning_rate", o.learning_rate},
                                                 {"beta1", o.beta1},
                                                 {"beta2", o.beta2},
                                                 {"epsilon", o.epsilon},
                                                 {"weight_decay", o.weight_decay}}));
  if (o.beta1 >= 1.0f) return OutOfRange("Adam", "beta1", o.beta1, "in [0, 1)");
  if (o.beta2 >= 1.0f) return OutOfRange("Adam", "beta2", o.beta2, "in [0, 1)");
  return Status::Ok();
}

Status CheckOptions(const GradientClipping& c) {
  THAW_RETURN_IF_ERROR(CheckNonNegative("gradient clipping", {{"clipnorm", c.clipnorm},
                                                               {"global_clipnorm", c.global_clipnorm},
                                                               {"clipvalue", c.clipvalue}}));
  if (c.clipnorm > 0.0f && c.global_clipnorm > 0.0f) {
    return InvalidArgument("gradient clipping: clipnorm and global_clipnorm are both set; choose "
                           "one (Keras refuses both too)");
  }
  return Status::Ok();
}

Status CheckOptions(const OptimizerConfig& config) {
  THAW_RETURN_IF_ERROR(CheckOptions(config.clipping));
  if (config.update_in_backward && config.clipping.global_clipnorm > 0.0f) {
    return InvalidArgument(
        "update_in_backward with global_clipnorm = %g: global clipping scales every gradient by "
        "the norm of all of them, which is known only after the backward pass, while this mode "
        "updates each variable during it; use clipnorm (per variable) or the default mode",
        static_cast<double>(config.clipping.global_clipnorm));
  }
  return config.kind == OptimizerConfig::Kind::kSgd ? CheckOptions(config.sgd)
                                                    : CheckOptions(config.adam);
}

std::unique_ptr<Optimizer> MakeOptimizer(const OptimizerConfig& config, VariableSet* vars,
                                         ThreadPool& pool) {
  std::unique_ptr<Optimizer> optimizer;
  switch (config.kind) {
    case OptimizerConfig::Kind::kSgd:
      optimizer = std::make_unique<SGD>(vars, config.sgd, pool);
      break;
    case OptimizerConfig::Kind::kAdam:
      optimizer = std::make_unique<Adam>(vars, config.adam, pool);
      break;
    case OptimizerConfig::Kind::kAdamW:
      optimizer = std::make_unique<AdamW>(vars, config.adam, pool);
      break;
  }
  optimizer->Refuse(optimizer->SetClipping(config.clipping));
  if (config.update_in_backward) optimizer->SetUpdateInBackward(true);
  return optimizer;
}

}  // namespace thaw
