// thaw/core/api/layers.h — the layers a Sequential model is made of.
//
//   thaw::Sequential model;
//   model.Add(thaw::Dense::Make(256, thaw::Activation::kRelu));
//   model.Add(thaw::Dropout::Make(0.2f));
//   model.Add(thaw::Dense::Make(10), "head");       // logits
//
// A layer maps a batch of row-major [batch, in] floats to [batch, out]. Its
// variables live in the model's VariableSet, named "<layer>.<variable>"
// ("dense_0.weight" [out, in] and "dense_0.bias" [out], as PyTorch's
// nn.Linear). SetTrainable(false) freezes all of a layer's variables, like
// Keras `layer.trainable = False`; the change takes effect at the next step.
//
// Layers are driven by Sequential, which plans their memory: the model gives
// each call its buffers (saved activations, gradient buffers, scratch); layers
// never allocate. Users normally only construct layers and flip trainable.
#ifndef THAW_CORE_API_LAYERS_H_
#define THAW_CORE_API_LAYERS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/vars/variables.h"
#include "platform/random.h"
#include "platform/status.h"
#include "platform/threads.h"

namespace thaw {

enum class Activation { kLinear, kRelu, kSigmoid, kTanh, kSoftmax };
const char* ActivationName(Activation activation);

// What a layer call gets from the model.
struct LayerContext {
  ThreadPool* pool = nullptr;
  bool training = false;
  // The model fuses a final softmax into the cross-entropy loss: the last
  // layer then computes and takes gradients of logits, not probabilities.
  bool skip_softmax = false;
  uint64_t step = 0;        // training steps so far (dropout masks)
  float* saved = nullptr;   // SavedFloats(batch) floats that live from Forward to Backward
  float* scratch = nullptr; // ScratchFloats(batch) floats for this call only
};

class Layer {
 public:
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  // "dense", "relu", ...: the stem of automatic names.
  virtual const char* kind() const = 0;
  size_t input_features() const { return input_features_; }
  size_t output_features() const { return output_features_; }
  const std::vector<Variable>& variables() const { return variables_; }

  // Freezes (false) or thaws (true) every variable of the layer.
  void SetTrainable(bool trainable);
  // True when any variable of the layer is trainable.
  bool trainable() const;
  // Draws new initial values (Dense: Glorot-uniform weight, zero bias).
  virtual void ResetParameters(Random& rng) {}

  // ---- For Sequential ----

  // Creates the layer's variables for `input_features` inputs per example.
  Status Build(const std::string& name, size_t input_features,
               VariableSet* vars, Random& rng);
  // What Backward reads besides dy, for a freeze set (one bit per variable
  // of the VariableSet): the forward input, the forward output.
  virtual bool BackwardNeedsInput(const Bitmap& trainable) const { return false; }
  virtual bool BackwardNeedsOutput() const { return false; }
  // Floats that must live from Forward to Backward (a dropout mask).
  virtual size_t SavedFloats(size_t batch) const { return 0; }
  // Floats of scratch for one Forward call, or one Forward or Backward call
  // when `backward`, on `threads` threads (GEMM packing buffers).
  virtual size_t ScratchFloats(size_t batch, int threads, bool backward) const { return 0; }

  // y[batch, out] = f(x[batch, in]).
  virtual void Forward(const float* x, float* y, size_t batch,
                       const LayerContext& ctx) = 0;
  // Given dy (which may be overwritten), writes the gradient of every
  // variable that has a gradient buffer, and dx when dx != nullptr.
  virtual void Backward(const float* x, const float* y, float* dy, float* dx,
                        size_t batch, const LayerContext& ctx) = 0;

 protected:
  Layer() = default;
  virtual size_t OutputFeatures(size_t input_features) const { return input_features; }
  virtual Status CreateVariables(VariableSet* vars, Random& rng) { return Status::Ok(); }
  // Creates "<name>.<suffix>" and records it.
  Status AddVariable(VariableSet* vars, const char* suffix, const Shape& shape,
                     Variable* out);

 private:
  std::string name_;
  size_t input_features_ = 0;
  size_t output_features_ = 0;
  std::vector<Variable> variables_;
};

// y = activation(x W^T + b), W [units, in], b [units].
class Dense : public Layer {
 public:
  explicit Dense(size_t units, Activation activation = Activation::kLinear,
                 bool use_bias = true);
  static std::unique_ptr<Layer> Make(size_t units,
                                     Activation activation = Activation::kLinear,
                                     bool use_bias = true) {
    return std::unique_ptr<Layer>(new Dense(units, activation, use_bias));
  }
  const char* kind() const override { return "dense"; }
  Activation activation() const { return activation_; }
  Variable weight() const { return weight_; }
  Variable bias() const { return bias_; }  // invalid without bias

  void ResetParameters(Random& rng) override;
  // x is read for the weight's gradient only.
  bool BackwardNeedsInput(const Bitmap& trainable) const override {
    return trainable.Test(weight_.index());
  }
  bool BackwardNeedsOutput() const override { return activation_ != Activation::kLinear; }
  size_t ScratchFloats(size_t batch, int threads, bool backward) const override;
  void Forward(const float* x, float* y, size_t batch, const LayerContext& ctx) override;
  void Backward(const float* x, const float* y, float* dy, float* dx, size_t batch,
                const LayerContext& ctx) override;

 protected:
  size_t OutputFeatures(size_t) const override { return units_; }
  Status CreateVariables(VariableSet* vars, Random& rng) override;

 private:
  size_t units_;
  Activation activation_;
  bool use_bias_;
  Variable weight_, bias_;
};

// An activation as a layer of its own (Keras ReLU(), Activation('sigmoid')...).
class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(Activation activation) : activation_(activation) {}
  const char* kind() const override;
  Activation activation() const { return activation_; }
  // Every activation's derivative is read from its output (ReLU: y > 0).
  bool BackwardNeedsOutput() const override { return true; }
  void Forward(const float* x, float* y, size_t batch, const LayerContext& ctx) override;
  void Backward(const float* x, const float* y, float* dy, float* dx, size_t batch,
                const LayerContext& ctx) override;

 private:
  Activation activation_;
};

inline std::unique_ptr<Layer> ReLU() { return std::unique_ptr<Layer>(new ActivationLayer(Activation::kRelu)); }
inline std::unique_ptr<Layer> Sigmoid() { return std::unique_ptr<Layer>(new ActivationLayer(Activation::kSigmoid)); }
inline std::unique_ptr<Layer> Tanh() { return std::unique_ptr<Layer>(new ActivationLayer(Activation::kTanh)); }
inline std::unique_ptr<Layer> Softmax() { return std::unique_ptr<Layer>(new ActivationLayer(Activation::kSoftmax)); }

// Inputs are already flat rows ([batch, features]); Flatten keeps Keras
// models readable and copies its input.
class Flatten : public Layer {
 public:
  static std::unique_ptr<Layer> Make() { return std::unique_ptr<Layer>(new Flatten()); }
  const char* kind() const override { return "flatten"; }
  void Forward(const float* x, float* y, size_t batch, const LayerContext& ctx) override;
  void Backward(const float* x, const float* y, float* dy, float* dx, size_t batch,
                const LayerContext& ctx) override;
};

// Training: zeroes each input with probability `rate` and scales the rest by
// 1 / (1 - rate); inference: identity. The mask is a hash of (seed, step,
// element), so a run is reproducible for any thread count.
class Dropout : public Layer {
 public:
  explicit Dropout(float rate, uint64_t seed = 0) : rate_(rate), seed_(seed) {}
  static std::unique_ptr<Layer> Make(float rate, uint64_t seed = 0) {
    return std::unique_ptr<Layer>(new Dropout(rate, seed));
  }
  const char* kind() const override { return "dropout"; }
  float rate() const { return rate_; }
  // The mask; the model gives it scratch when no backward pass will read it.
  size_t SavedFloats(size_t batch) const override { return batch * input_features(); }
  void Forward(const float* x, float* y, size_t batch, const LayerContext& ctx) override;
  void Backward(const float* x, const float* y, float* dy, float* dx, size_t batch,
                const LayerContext& ctx) override;

 protected:
  Status CreateVariables(VariableSet* vars, Random& rng) override;

 private:
  float rate_;
  uint64_t seed_;
};

}  // namespace thaw

#endif  // THAW_CORE_API_LAYERS_H_
