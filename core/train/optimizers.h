// thaw/core/train/optimizers.h — SGD (momentum, Nesterov, weight decay), Adam, AdamW.
//
//   thaw::SgdOptions options;
//   options.learning_rate = 0.1f;
//   options.momentum = 0.9f;
//   thaw::SGD sgd(&vars, options);
//   THAW_RETURN_IF_ERROR(sgd.ApplyGradients({{grads[0], var1}, {grads[1], var2}}));
//
// Like optimizer.apply_gradients, made strict about freezing:
//  - an absent gradient (a frozen or unreached variable) is skipped, as
//    TensorFlow drops None gradients;
//  - a gradient handed to a frozen variable is an error (FailedPrecondition),
//    not a silent update; so is one for a variable thawed after this step's
//    tape began (the thaw takes effect at the next tape);
//  - the call checks every pair before it changes anything: on error no
//    weight and no optimizer state has moved;
//  - only trainable variables have state (velocity, Adam moments) and a step
//    count; frozen ones get no update, no momentum and no weight decay.
// State lives in the variable set's arena (optimizer state region). Update
// rules and hyper-parameters match torch.optim.SGD / Adam / AdamW.
// One optimizer is attached to a variable set at a time; attaching another
// resets the state (and the first one then refuses to step).
//
// Two ways to apply a step's own gradients (the gradients a model's backward
// pass computes):
//  - after the backward pass (the default): ApplyOwnGradients, from one
//    persistent gradient buffer per trainable variable. All or nothing: every
//    gradient is checked finite before any variable changes, so a NaN or Inf
//    anywhere leaves every weight and all optimizer state as they were;
//  - in the backward pass (OptimizerConfig::update_in_backward, opt-in):
//    each variable is updated as soon as its gradient is complete and no
//    later backward call reads its value (ApplyGradientsOf), and its
//    gradient's bytes are given back. Gradients then take the largest
//    layer's gradients' bytes instead of all of them, but the guarantee is
//    per backward call, not per step: a NaN found at a layer stops the step
//    there, after the layers nearer the loss have been updated. Those keep
//    their update; the layer and those below it, and BatchNorm statistics,
//    do not change; the Status says which layers were updated (Model::Step).
//    Global clipping (global_clipnorm), which needs every gradient before
//    the first update, is refused in this mode.
#ifndef THAW_CORE_TRAIN_OPTIMIZERS_H_
#define THAW_CORE_TRAIN_OPTIMIZERS_H_

#include <cstdint>
#include <memory>

#include "core/tensor/tensor.h"
#include "core/vars/variables.h"
#include "platform/span.h"
#include "platform/status.h"
#include "platform/threads.h"

namespace thaw {

// Gradient clipping, as Keras' optimizer arguments (0 = off), applied after
// every gradient is checked and before any update, in this order:
//  - clipnorm: each variable's gradient alone is scaled by
//    clipnorm / (norm + 1e-6) when that is below 1, norm its L2 norm: what
//    torch.nn.utils.clip_grad_norm_ does to one parameter (Keras' clip_by_norm
//    has no 1e-6);
//  - global_clipnorm: all the step's gradients together, likewise, norm the
//    L2 norm of all of them: torch.nn.utils.clip_grad_norm_ over the
//    parameters; with clipnorm it is refused, as Keras refuses both;
//  - clipvalue: each element is clamped to [-clipvalue, clipvalue]
//    (torch.nn.utils.clip_grad_value_).
// Norms are the deterministic sums of simd/reduce.h: the same bits for any
// thread count and target. Clipping rewrites the gradient buffers in place,
// as PyTorch's functions do.
struct GradientClipping {
  float clipnorm = 0.0f;
  float global_clipnorm = 0.0f;
  float clipvalue = 0.0f;
};

struct GradientAndVariable {
  TensorView gradient;  // may be absent (empty): the pair is skipped
  Variable variable;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Applies one step to each variable of `pairs` whose gradient is present.
  // Every pair is checked first (set, trainable, shape, no duplicates, no
  // NaN or Inf in the gradient); on any error nothing changes, not even the
  // step counts.
  Status ApplyGradients(Span<const GradientAndVariable> pairs);
  // Applies every trainable variable's own gradient buffer, for models whose
  // backward pass has just written all of them. Frozen variables are skipped.
  // A NaN or Inf in any gradient is an error that changes nothing.
  // FailedPrecondition when the optimizer updates in the backward pass (the
  // variables keep no gradient buffers).
  Status ApplyOwnGradients();
  // The same for `variables` alone (increasing indices, each trainable in the
  // current plan, else FailedPrecondition and nothing changes): those a
  // backward pass reached. A trainable variable it did not reach (a layer the
  // loss does not read) has no gradient this step, and no step touches it, as
  // TensorFlow drops a None gradient.
  Status ApplyOwnGradients(Span<const int> variables);
  // Applies one step to `count` trainable variables of the current plan
  // (variable indices; no duplicates) from `grads` (each its variable's
  // size, contiguous; clipping rewrites them in place): what a backward pass
  // that updates as it goes calls once its gradients are complete. All of
  // them or none: each gradient is checked finite first, then clipped on
  // its own (clipnorm, clipvalue), its step counted and its variable
  // updated, with the same code as ApplyOwnGradients. FailedPrecondition
  // with global_clipnorm (it needs every gradient of the step at once).
  Status ApplyGradientsOf(const int* variables, float* const* grads, size_t count);
  // Makes the variable set keep no gradient buffers from the next step on
  // (update in the backward pass), or keep them again (the default). Re-
  // attaches the optimizer: state starts from zero. MakeOptimizer calls it
  // for OptimizerConfig::update_in_backward, before any step.
  void SetUpdateInBackward(bool on);
  bool update_in_backward() const { return !vars_->gradient_buffers(); }

  VariableSet& variables() { return *vars_; }
  // Changes the learning rate from the next step on; state is kept (Keras:
  // optimizer.learning_rate.assign(...)).
  virtual void SetLearningRate(float learning_rate) = 0;
  virtual float learning_rate() const = 0;
  // "sgd", "adam" or "adamw", and the PyTorch name of state buffer `slot`
  // ("momentum_buffer"; "exp_avg", "exp_avg_sq"), for training states.
  virtual const char* kind() const = 0;
  virtual const char* slot_name(int slot) const = 0;
  int slots() const { return slots_; }
  // Clips every later step's gradients (see GradientClipping). Returns
  // InvalidArgument, keeping the previous setting, for a negative or
  // non-finite value, or clipnorm with global_clipnorm.
  Status SetClipping(const GradientClipping& clipping);
  const GradientClipping& clipping() const { return clipping_; }
  // Options out of range (see CheckOptions): every later step returns `why`.
  void Refuse(Status why) { refused_ = std::move(why); }

 protected:
  Optimizer(VariableSet* vars, int slots, ThreadPool& pool);
  // One step for variable `index`, whose step count has just been increased
  // to `step`; `slots` points at this optimizer's state buffers.
  virtual void Update(const float* grad, float* weight, float* const* slots,
                      size_t n, uint64_t step) = 0;

  ThreadPool& pool() { return *pool_; }

 private:
  Status CheckAttached(const char* what) const;
  // InvalidArgument naming v when `grad` (v's size) holds a NaN or Inf; the
  // message ends with `unchanged` (what was not updated).
  Status CheckFinite(const Variable& v, const float* grad,
                     const char* unchanged = "nothing was updated") const;
  // Variables one clipped step takes: the lists live on the stack (a step
  // does not allocate).
  static constexpr size_t kMaxClipped = 1024;
  bool Clipping() const {
    return clipping_.clipnorm > 0.0f || clipping_.global_clipnorm > 0.0f ||
           clipping_.clipvalue > 0.0f;
  }
  // Counts a step for variable `index` and updates it from `grad`.
  void StepVariable(int index, const float* grad);
  // Clips the gradients of `count` variables (index[k], grads[k]), all
  // checked finite.
  void Clip(const int* index, float* const* grads, size_t count);
  // Clips, when clipping is on, the gradients each_gradient(f) hands to
  // f(variable index, gradient); `what` names the caller in the error for
  // more than kMaxClipped of them (nothing has changed then).
  template <class EachGradient>
  Status ClipAll(const char* what, EachGradient&& each_gradient);
  // Checks every gradient each_gradient(f) hands over finite, then clips
  // them and steps their variables: ApplyOwnGradients and ApplyGradientsOf.
  template <class EachGradient>
  Status ApplyEach(const char* what, const char* unchanged, EachGradient&& each_gradient);
  // Whether `index` names a variable trainable in the current plan.
  bool PlannedTrainable(int index) const {
    return index >= 0 && index < vars_->size() && vars_->planned_trainable(index);
  }
  // ApplyOwnGradients' checks of the plan, then ApplyEach.
  template <class EachGradient>
  Status ApplyOwn(EachGradient&& each_gradient);

  VariableSet* vars_;
  ThreadPool* pool_;
  Status refused_;
  GradientClipping clipping_;
  int slots_;
  uint64_t id_;
};

struct SgdOptions {
  float learning_rate = 0.01f;
  float momentum = 0.0f;  // 0: plain SGD, no state
  float weight_decay = 0.0f;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(VariableSet* vars, const SgdOptions& options,
      ThreadPool& pool = ThreadPool::Serial());
  const SgdOptions& options() const { return options_; }
  void SetLearningRate(float learning_rate) override;
  float learning_rate() const override { return options_.learning_rate; }
  const char* kind() const override { return "sgd"; }
  const char* slot_name(int) const override { return "momentum_buffer"; }

 private:
  void Update(const float* grad, float* weight, float* const* slots, size_t n,
              uint64_t step) override;
  SgdOptions options_;
};

struct AdamOptions {
  float learning_rate = 0.001f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  float weight_decay = 0.0f;
  // false: Adam with L2 (grad += wd * w); true: AdamW (w *= 1 - lr * wd).
  bool decoupled_weight_decay = false;
};

// Bias correction counts each variable's own steps since it was last thawed,
// as PyTorch does for a parameter that first receives a gradient later.
class Adam : public Optimizer {
 public:
  Adam(VariableSet* vars, const AdamOptions& options,
       ThreadPool& pool = ThreadPool::Serial());
  const AdamOptions& options() const { return options_; }
  void SetLearningRate(float learning_rate) override;
  float learning_rate() const override { return options_.learning_rate; }
  const char* kind() const override {
    return options_.decoupled_weight_decay ? "adamw" : "adam";
  }
  const char* slot_name(int slot) const override { return slot == 0 ? "exp_avg" : "exp_avg_sq"; }

 private:
  void Update(const float* grad, float* weight, float* const* slots, size_t n,
              uint64_t step) override;
  AdamOptions options_;
};

// Adam with decoupled weight decay, as torch.optim.AdamW.
class AdamW : public Adam {
 public:
  AdamW(VariableSet* vars, AdamOptions options,
        ThreadPool& pool = ThreadPool::Serial());
};

// An optimizer to be made by a model (Compile).
struct OptimizerConfig {
  enum class Kind { kSgd, kAdam, kAdamW };
  Kind kind = Kind::kSgd;
  SgdOptions sgd;
  AdamOptions adam;
  GradientClipping clipping;
  // Update each variable in the backward pass, as soon as its gradient is
  // complete, instead of after it (see Optimizer above for the trade-off):
  // a model's gradients then take the bytes of the largest layer's instead
  // of all of them. The weights, state and losses are bit for bit those of
  // the default. Refused with global_clipnorm.
  bool update_in_backward = false;

  static OptimizerConfig Sgd(const SgdOptions& options);
  static OptimizerConfig Adam(const AdamOptions& options);
  static OptimizerConfig AdamW(const AdamOptions& options);
};

// InvalidArgument naming the first option out of range, as torch.optim
// refuses them: learning rate, momentum, weight decay and epsilon finite and
// >= 0, betas in [0, 1), Nesterov only with momentum; and update_in_backward
// with global_clipnorm. An optimizer made with
// such options refuses every step with this Status; Compile refuses them.
Status CheckOptions(const SgdOptions& options);
Status CheckOptions(const AdamOptions& options);
Status CheckOptions(const GradientClipping& clipping);
Status CheckOptions(const OptimizerConfig& config);

// Attaches a new optimizer of `config` to `vars` (its state starts from zero).
std::unique_ptr<Optimizer> MakeOptimizer(const OptimizerConfig& config, VariableSet* vars,
                                         ThreadPool& pool);

}  // namespace thaw

#endif  // THAW_CORE_TRAIN_OPTIMIZERS_H_
