// thaw/core/c/thaw_c.cc — the C interface over thaw::Model.
//
// Every entry point turns a C call into one call of the C++ API and keeps its
// Status: the code is returned, the sentence stays in the handle. Heap
// failures in the wrapper itself (names, the tensor table) become
// RESOURCE_EXHAUSTED through ResourceExhaustedOnBadAlloc, so nothing throws
// across the C boundary.
#include "core/c/thaw_c.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/io/checkpoint_memory.h"
#include "core/thaw.h"

using thaw::Status;
using thaw::StatusCode;

static_assert(static_cast<int>(StatusCode::kInvalidArgument) == THAW_INVALID_ARGUMENT &&
                  static_cast<int>(StatusCode::kFailedPrecondition) == THAW_FAILED_PRECONDITION &&
                  static_cast<int>(StatusCode::kResourceExhausted) == THAW_RESOURCE_EXHAUSTED &&
                  static_cast<int>(StatusCode::kNotFound) == THAW_NOT_FOUND &&
                  static_cast<int>(StatusCode::kDataLoss) == THAW_DATA_LOSS &&
                  static_cast<int>(StatusCode::kIoError) == THAW_IO_ERROR &&
                  static_cast<int>(StatusCode::kInternal) == THAW_INTERNAL,
              "thaw_status mirrors thaw::StatusCode");

struct thaw_model {
  explicit thaw_model(int threads) : pool(threads), model(pool) {}

  // Declared in the order they must be made; destroyed the other way: the
  // model hands its arena back before the arena goes.
  thaw::ThreadPool pool;
  thaw::Arena arena;
  thaw::Model model;
  std::vector<thaw::Symbol> tensors;  // thaw_tensor i is tensors[i]
  thaw::Span<const unsigned char> weights;  // thaw_model_initial_weights'
  int64_t plan_target = 0;                  // thaw_model_plan_machine's
  size_t plan_vector_bits = 0;
  int plan_threads = 0;
  char message[512] = {};             // the last call's, cut to fit
};

namespace {

// Keeps `status`'s sentence in the model and returns its code.
thaw_status Keep(thaw_model* m, const Status& status) {
  std::snprintf(m->message, sizeof(m->message), "%s", status.message());
  return static_cast<thaw_status>(status.code());
}

// Runs `body` (returning a Status) on a model, with null checks and heap
// failures turned into a Status.
template <class Body>
thaw_status Run(thaw_model* m, const char* what, Body&& body) {
  if (m == nullptr) return THAW_INVALID_ARGUMENT;
  return Keep(m, thaw::ResourceExhaustedOnBadAlloc(what, body));
}

bool Flag(int value) { return value != 0; }

Status ToActivation(const char* what, thaw_activation in, thaw::Activation* out) {
  switch (in) {
    case THAW_ACTIVATION_LINEAR: *out = thaw::Activation::kLinear; return Status::Ok();
    case THAW_ACTIVATION_RELU: *out = thaw::Activation::kRelu; return Status::Ok();
    case THAW_ACTIVATION_RELU6: *out = thaw::Activation::kRelu6; return Status::Ok();
    case THAW_ACTIVATION_SIGMOID: *out = thaw::Activation::kSigmoid; return Status::Ok();
    case THAW_ACTIVATION_TANH: *out = thaw::Activation::kTanh; return Status::Ok();
    case THAW_ACTIVATION_SOFTMAX: *out = thaw::Activation::kSoftmax; return Status::Ok();
  }
  return thaw::InvalidArgument("%s: %d is not a thaw_activation", what, static_cast<int>(in));
}

Status ToPadding(const char* what, thaw_padding in, thaw::Padding* out) {
  switch (in) {
    case THAW_PADDING_VALID: *out = thaw::Padding::kValid; return Status::Ok();
    case THAW_PADDING_SAME: *out = thaw::Padding::kSame; return Status::Ok();
  }
  return thaw::InvalidArgument("%s: %d is not a thaw_padding", what, static_cast<int>(in));
}

Status ToLayout(const char* what, thaw_layout in, thaw::Layout* out) {
  switch (in) {
    case THAW_LAYOUT_ANY: *out = thaw::Layout::kAny; return Status::Ok();
    case THAW_LAYOUT_NHWC: *out = thaw::Layout::kNHWC; return Status::Ok();
  }
  return thaw::InvalidArgument("%s: %d is not a thaw_layout", what, static_cast<int>(in));
}

Status ToLoss(const char* what, thaw_loss in, thaw::Loss* out) {
  switch (in) {
    case THAW_LOSS_MEAN_SQUARED_ERROR:
      *out = thaw::Loss::kMeanSquaredError;
      return Status::Ok();
    case THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY:
      *out = thaw::Loss::kSparseCategoricalCrossentropy;
      return Status::Ok();
    case THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS:
      *out = thaw::Loss::kSparseCategoricalCrossentropyFromLogits;
      return Status::Ok();
    case THAW_LOSS_BINARY_CROSSENTROPY_FROM_LOGITS:
      *out = thaw::Loss::kBinaryCrossentropyFromLogits;
      return Status::Ok();
  }
  return thaw::InvalidArgument("%s: %d is not a thaw_loss", what, static_cast<int>(in));
}

Status ToOptimizer(const char* what, const thaw_optimizer& in, thaw::OptimizerConfig* out) {
  thaw::OptimizerConfig config;
  switch (in.kind) {
    case THAW_OPTIMIZER_SGD: {
      thaw::SgdOptions sgd;
      sgd.learning_rate = in.learning_rate;
      sgd.momentum = in.momentum;
      sgd.weight_decay = in.weight_decay;
      sgd.nesterov = Flag(in.nesterov);
      config = thaw::OptimizerConfig::Sgd(sgd);
      break;
    }
    case THAW_OPTIMIZER_ADAM:
    case THAW_OPTIMIZER_ADAMW: {
      thaw::AdamOptions adam;
      adam.learning_rate = in.learning_rate;
      adam.beta1 = in.beta1;
      adam.beta2 = in.beta2;
      adam.epsilon = in.epsilon;
      adam.weight_decay = in.weight_decay;
      config = in.kind == THAW_OPTIMIZER_ADAM ? thaw::OptimizerConfig::Adam(adam)
                                              : thaw::OptimizerConfig::AdamW(adam);
      break;
    }
    default:
      return thaw::InvalidArgument("%s: %d is not a thaw_optimizer_kind", what,
                                   static_cast<int>(in.kind));
  }
  config.clipping.clipnorm = in.clipnorm;
  config.clipping.global_clipnorm = in.global_clipnorm;
  config.clipping.clipvalue = in.clipvalue;
  config.update_in_backward = Flag(in.update_in_backward);
  *out = config;
  return thaw::CheckOptions(config);
}

// The symbol of C tensor `t`, or an error naming `what`.
Status Lookup(const thaw_model* m, const char* what, thaw_tensor t, thaw::Symbol* out) {
  if (t < 0 || static_cast<size_t>(t) >= m->tensors.size()) {
    return thaw::InvalidArgument("%s: %d is not a tensor of this model%s", what,
                                 static_cast<int>(t),
                                 t == THAW_NO_TENSOR ? " (it came from a failed call)" : "");
  }
  *out = m->tensors[static_cast<size_t>(t)];
  return Status::Ok();
}

Status ToShape(const char* what, const size_t* dims, size_t rank, thaw::Shape* out) {
  if (rank < 1 || rank > 4 || dims == nullptr) {
    return thaw::InvalidArgument("%s: a shape has 1 to 4 dimensions, got %zu%s", what, rank,
                                 dims == nullptr ? " (and no array)" : "");
  }
  *out = thaw::Shape(dims, static_cast<int>(rank));
  return Status::Ok();
}

// Calls `layer` on `inputs` and returns its output as a new C tensor. A
// failed call is also the model's status (Build returns it).
Status CallLayer(thaw_model* m, std::unique_ptr<thaw::Layer> layer, const thaw_tensor* inputs,
                 size_t count, const char* name, thaw_tensor* out) {
  if (out != nullptr) *out = THAW_NO_TENSOR;
  const char* what = layer->kind();
  if (out == nullptr) return thaw::InvalidArgument("%s: the output pointer is null", what);
  if (count == 0 || count > thaw::kMaxNodeInputs) {
    return thaw::InvalidArgument("%s: takes 1 to %d inputs, got %zu", what, thaw::kMaxNodeInputs,
                                 count);
  }
  thaw::Symbol symbols[thaw::kMaxNodeInputs];
  for (size_t i = 0; i < count; ++i) THAW_RETURN_IF_ERROR(Lookup(m, what, inputs[i], &symbols[i]));
  if (m->model.built()) {
    return thaw::FailedPrecondition("%s: the model is built; describe it before", what);
  }
  // The table's slot first, so that a failure to grow it leaves the graph as
  // it was.
  m->tensors.reserve(m->tensors.size() + 1);
  const thaw::Symbol y = m->model.Call(std::move(layer), thaw::Span<const thaw::Symbol>(symbols, count),
                                       name != nullptr ? name : "");
  if (!y.valid()) return m->model.status();
  m->tensors.push_back(y);
  *out = static_cast<thaw_tensor>(m->tensors.size() - 1);
  return Status::Ok();
}

Status CallLayer(thaw_model* m, std::unique_ptr<thaw::Layer> layer, thaw_tensor input,
                 const char* name, thaw_tensor* out) {
  return CallLayer(m, std::move(layer), &input, 1, name, out);
}

// Plans `options` (its mode, loss and optimizer set) at `batch` for `output`
// on the model's planning machine and initial weights, into *out.
Status Plan(thaw_model* m, thaw_tensor output, size_t batch, thaw::PlanOptions* options,
            thaw_memory_plan* out) {
  if (out == nullptr) return thaw::InvalidArgument("plan: the output pointer is null");
  THAW_RETURN_IF_ERROR(Lookup(m, "plan", output, &options->output));
  options->batch = batch;
  options->weights = m->weights;
  options->target = m->plan_target;
  options->vector_bits = m->plan_vector_bits;
  options->threads = m->plan_threads;
  thaw::ModelPlan plan;
  THAW_RETURN_IF_ERROR(m->model.PlanMemory(*options, &plan));
  out->total = plan.arena_bytes;
  out->step = plan.bytes.total();
  out->weights = plan.bytes[thaw::Region::kWeights];
  out->gradients = plan.bytes[thaw::Region::kGradients];
  out->optimizer_state = plan.bytes[thaw::Region::kOptimizerState];
  out->activations = plan.bytes[thaw::Region::kActivations];
  out->scratch = plan.bytes[thaw::Region::kScratch];
  return Status::Ok();
}

thaw::Examples ExamplesOf(const thaw_model* m, const float* x, const int32_t* labels,
                          const float* targets, size_t count) {
  thaw::Examples e;
  e.x = x;
  e.count = count;
  e.labels = labels;
  e.targets = targets;
  e.features = m->model.input_features();
  return e;
}

void FillMetrics(const thaw::Metrics& in, thaw_metrics* out) {
  if (out == nullptr) return;
  out->loss = in.loss;
  out->accuracy = in.accuracy;
  out->count = in.count;
}

Status CheckBuilt(const thaw_model* m, const char* what) {
  if (!m->model.built()) return thaw::FailedPrecondition("%s: build the model first", what);
  return Status::Ok();
}

Status CheckFlags(const char* what, unsigned flags, unsigned known) {
  if ((flags & ~known) != 0) {
    return thaw::InvalidArgument("%s: flags 0x%x are not known here", what, flags & ~known);
  }
  return Status::Ok();
}

}  // namespace

extern "C" {

const char* thaw_status_name(thaw_status status) {
  switch (status) {
    case THAW_OK: return "OK";
    case THAW_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case THAW_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case THAW_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case THAW_NOT_FOUND: return "NOT_FOUND";
    case THAW_DATA_LOSS: return "DATA_LOSS";
    case THAW_IO_ERROR: return "IO_ERROR";
    case THAW_INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

void thaw_optimizer_defaults(thaw_optimizer_kind kind, thaw_optimizer* out) {
  if (out == nullptr) return;
  *out = thaw_optimizer{};
  out->kind = kind;
  const thaw::SgdOptions sgd;
  const thaw::AdamOptions adam;
  out->learning_rate = kind == THAW_OPTIMIZER_SGD ? sgd.learning_rate : adam.learning_rate;
  out->momentum = sgd.momentum;
  out->beta1 = adam.beta1;
  out->beta2 = adam.beta2;
  out->epsilon = adam.epsilon;
  out->weight_decay = kind == THAW_OPTIMIZER_ADAMW ? 0.01f : 0.0f;  // torch.optim.AdamW's
}

thaw_status thaw_model_create(int threads, thaw_model** out) {
  if (out == nullptr) return THAW_INVALID_ARGUMENT;
  *out = nullptr;
  if (threads < 0) return THAW_INVALID_ARGUMENT;
  thaw_model* m = new (std::nothrow) thaw_model(threads);
  if (m == nullptr) return THAW_RESOURCE_EXHAUSTED;
  *out = m;
  return THAW_OK;
}

void thaw_model_destroy(thaw_model* model) { delete model; }

size_t thaw_model_message(const thaw_model* model, char* buffer, size_t size) {
  const char* message = model != nullptr ? model->message : "the model is null";
  if (buffer != nullptr && size > 0) std::snprintf(buffer, size, "%s", message);
  return std::strlen(message);
}

thaw_status thaw_input(thaw_model* model, const size_t* shape, size_t rank, thaw_layout layout,
                       thaw_tensor* out) {
  return Run(model, "input", [&] {
    if (out != nullptr) *out = THAW_NO_TENSOR;
    if (out == nullptr) return thaw::InvalidArgument("input: the output pointer is null");
    thaw::Shape s;
    thaw::Layout l = thaw::Layout::kAny;
    THAW_RETURN_IF_ERROR(ToShape("input", shape, rank, &s));
    THAW_RETURN_IF_ERROR(ToLayout("input", layout, &l));
    if (!model->tensors.empty()) {
      return thaw::FailedPrecondition("input: the model already has its input");
    }
    model->tensors.reserve(1);
    thaw::Symbol x = model->model.Input(s, l);
    if (!x.valid()) return model->model.status();
    model->tensors.push_back(x);
    *out = 0;
    return Status::Ok();
  });
}

thaw_status thaw_dense(thaw_model* model, thaw_tensor input, size_t units,
                       thaw_activation activation, int use_bias, const char* name,
                       thaw_tensor* out) {
  return Run(model, "dense", [&] {
    thaw::Activation a = thaw::Activation::kLinear;
    THAW_RETURN_IF_ERROR(ToActivation("dense", activation, &a));
    return CallLayer(model, thaw::Dense::Make(units, a, Flag(use_bias)), input, name, out);
  });
}

thaw_status thaw_conv2d(thaw_model* model, thaw_tensor input, size_t filters, size_t kernel_h,
                        size_t kernel_w, size_t stride_h, size_t stride_w, thaw_padding padding,
                        thaw_activation activation, int use_bias, const char* name,
                        thaw_tensor* out) {
  return Run(model, "conv2d", [&] {
    thaw::Activation a = thaw::Activation::kLinear;
    thaw::Padding p = thaw::Padding::kValid;
    THAW_RETURN_IF_ERROR(ToActivation("conv2d", activation, &a));
    THAW_RETURN_IF_ERROR(ToPadding("conv2d", padding, &p));
    return CallLayer(model,
                     thaw::Conv2D::Make(filters, {kernel_h, kernel_w}, {stride_h, stride_w}, p, a,
                                        Flag(use_bias)),
                     input, name, out);
  });
}

thaw_status thaw_depthwise_conv2d(thaw_model* model, thaw_tensor input, size_t kernel_h,
                                  size_t kernel_w, size_t stride_h, size_t stride_w,
                                  thaw_padding padding, thaw_activation activation, int use_bias,
                                  const char* name, thaw_tensor* out) {
  return Run(model, "depthwise_conv2d", [&] {
    thaw::Activation a = thaw::Activation::kLinear;
    thaw::Padding p = thaw::Padding::kValid;
    THAW_RETURN_IF_ERROR(ToActivation("depthwise_conv2d", activation, &a));
    THAW_RETURN_IF_ERROR(ToPadding("depthwise_conv2d", padding, &p));
    return CallLayer(model,
                     thaw::DepthwiseConv2D::Make({kernel_h, kernel_w}, {stride_h, stride_w}, p, a,
                                                 Flag(use_bias)),
                     input, name, out);
  });
}

thaw_status thaw_max_pool2d(thaw_model* model, thaw_tensor input, size_t pool_h, size_t pool_w,
                            size_t stride_h, size_t stride_w, thaw_padding padding,
                            const char* name, thaw_tensor* out) {
  return Run(model, "max_pool2d", [&] {
    thaw::Padding p = thaw::Padding::kValid;
    THAW_RETURN_IF_ERROR(ToPadding("max_pool2d", padding, &p));
    return CallLayer(model, thaw::MaxPool2D::Make({pool_h, pool_w}, {stride_h, stride_w}, p),
                     input, name, out);
  });
}

thaw_status thaw_average_pool2d(thaw_model* model, thaw_tensor input, size_t pool_h,
                                size_t pool_w, size_t stride_h, size_t stride_w,
                                thaw_padding padding, const char* name, thaw_tensor* out) {
  return Run(model, "average_pool2d", [&] {
    thaw::Padding p = thaw::Padding::kValid;
    THAW_RETURN_IF_ERROR(ToPadding("average_pool2d", padding, &p));
    return CallLayer(model,
                     thaw::AveragePooling2D::Make({pool_h, pool_w}, {stride_h, stride_w}, p),
                     input, name, out);
  });
}

thaw_status thaw_global_average_pool2d(thaw_model* model, thaw_tensor input, const char* name,
                                       thaw_tensor* out) {
  return Run(model, "global_average_pool2d", [&] {
    return CallLayer(model, thaw::GlobalAveragePooling2D::Make(), input, name, out);
  });
}

thaw_status thaw_batch_normalization(thaw_model* model, thaw_tensor input, float momentum,
                                     float epsilon, const char* name, thaw_tensor* out) {
  return Run(model, "batch_normalization", [&] {
    return CallLayer(model, thaw::BatchNormalization::Make(momentum, epsilon), input, name, out);
  });
}

thaw_status thaw_activation_layer(thaw_model* model, thaw_tensor input, thaw_activation activation,
                            const char* name, thaw_tensor* out) {
  return Run(model, "activation", [&] {
    thaw::Activation a = thaw::Activation::kLinear;
    THAW_RETURN_IF_ERROR(ToActivation("activation", activation, &a));
    return CallLayer(model, std::make_unique<thaw::ActivationLayer>(a), input, name, out);
  });
}

thaw_status thaw_dropout(thaw_model* model, thaw_tensor input, float rate, uint64_t seed,
                         const char* name, thaw_tensor* out) {
  return Run(model, "dropout", [&] {
    return CallLayer(model, thaw::Dropout::Make(rate, seed), input, name, out);
  });
}

thaw_status thaw_add(thaw_model* model, thaw_tensor a, thaw_tensor b, const char* name,
                     thaw_tensor* out) {
  return Run(model, "add", [&] {
    const thaw_tensor inputs[2] = {a, b};
    return CallLayer(model, thaw::Add::Make(), inputs, 2, name, out);
  });
}

thaw_status thaw_concatenate(thaw_model* model, const thaw_tensor* inputs, size_t count,
                             const char* name, thaw_tensor* out) {
  return Run(model, "concatenate", [&] {
    if (inputs == nullptr) {
      if (out != nullptr) *out = THAW_NO_TENSOR;
      return thaw::InvalidArgument("concatenate: the input array is null");
    }
    return CallLayer(model, thaw::Concatenate::Make(), inputs, count, name, out);
  });
}

thaw_status thaw_flatten(thaw_model* model, thaw_tensor input, const char* name,
                         thaw_tensor* out) {
  return Run(model, "flatten",
             [&] { return CallLayer(model, thaw::Flatten::Make(), input, name, out); });
}

thaw_status thaw_reshape(thaw_model* model, thaw_tensor input, const size_t* shape, size_t rank,
                         thaw_layout layout, const char* name, thaw_tensor* out) {
  return Run(model, "reshape", [&] {
    thaw::Shape s;
    thaw::Layout l = thaw::Layout::kAny;
    if (out != nullptr) *out = THAW_NO_TENSOR;
    THAW_RETURN_IF_ERROR(ToShape("reshape", shape, rank, &s));
    THAW_RETURN_IF_ERROR(ToLayout("reshape", layout, &l));
    return CallLayer(model, thaw::Reshape::Make(s, l), input, name, out);
  });
}

thaw_status thaw_model_plan_training(thaw_model* model, thaw_tensor output, size_t batch,
                                     const thaw_optimizer* optimizer, thaw_loss loss,
                                     thaw_memory_plan* out) {
  return Run(model, "plan", [&] {
    thaw::PlanOptions options;
    options.mode = thaw::StepMode::kTrain;
    thaw::Loss l = thaw::Loss::kMeanSquaredError;
    THAW_RETURN_IF_ERROR(ToLoss("plan", loss, &l));
    options.loss = &l;
    thaw::OptimizerConfig config;
    if (optimizer != nullptr) {
      THAW_RETURN_IF_ERROR(ToOptimizer("plan", *optimizer, &config));
      options.optimizer = &config;
    }
    return Plan(model, output, batch, &options, out);
  });
}

thaw_status thaw_model_plan_prediction(thaw_model* model, thaw_tensor output, size_t batch,
                                       thaw_memory_plan* out) {
  return Run(model, "plan", [&] {
    thaw::PlanOptions options;
    options.mode = thaw::StepMode::kPredict;
    return Plan(model, output, batch, &options, out);
  });
}

thaw_status thaw_model_plan_machine(thaw_model* model, const char* simd_target, int threads) {
  return Run(model, "plan_machine", [&] {
    thaw::simd::TargetDescription target;
    if (simd_target != nullptr) {
      const Status described = thaw::simd::DescribeTargetNamed(simd_target, &target);
      if (!described.ok()) {
        return thaw::InvalidArgument("plan_machine: %s", described.message());
      }
    }
    if (threads < 0) {
      return thaw::InvalidArgument("plan_machine: %d threads; give 0 for the model's, or more",
                                   threads);
    }
    model->plan_target = simd_target != nullptr ? target.shape->target : 0;
    // Named with a length, or a length this CPU gave: plans keep that one.
    model->plan_vector_bits =
        simd_target != nullptr && target.shape->vector_bytes == 0 ? target.lanes * 32 : 0;
    model->plan_threads = threads;
    return Status::Ok();
  });
}

thaw_status thaw_model_build(thaw_model* model, thaw_tensor output, size_t max_batch,
                             void* block, size_t bytes, uint64_t seed) {
  return Run(model, "build", [&] {
    thaw::Symbol y;
    THAW_RETURN_IF_ERROR(Lookup(model, "build", output, &y));
    if (model->model.built()) return thaw::FailedPrecondition("build: the model is already built");
    thaw::Arena arena;
    THAW_RETURN_IF_ERROR(block != nullptr ? thaw::Arena::Wrap(block, bytes, &arena)
                                          : thaw::Arena::Create(bytes, &arena));
    model->arena = std::move(arena);
    thaw::BuildOptions options;
    options.seed = seed;
    options.weights = model->weights;
    Status built = model->model.Build(y, max_batch, &model->arena, options);
    if (!built.ok()) model->arena = thaw::Arena();  // the caller's block is free again
    return built;
  });
}

thaw_status thaw_model_initial_weights(thaw_model* model, const void* bytes, size_t size) {
  return Run(model, "initial_weights", [&] {
    if (model->model.built()) {
      return thaw::FailedPrecondition("initial_weights: the model is already built");
    }
    if (bytes == nullptr && size != 0) {
      return thaw::InvalidArgument("initial_weights: %zu bytes at NULL", size);
    }
    model->weights =
        thaw::Span<const unsigned char>(static_cast<const unsigned char*>(bytes), size);
    return Status::Ok();
  });
}

thaw_status thaw_model_prefault(thaw_model* model) {
  return Run(model, "prefault", [&] {
    THAW_RETURN_IF_ERROR(CheckBuilt(model, "prefault"));
    model->arena.Prefault();
    return Status::Ok();
  });
}

thaw_status thaw_model_compile(thaw_model* model, const thaw_optimizer* optimizer,
                               thaw_loss loss) {
  return Run(model, "compile", [&] {
    if (optimizer == nullptr) return thaw::InvalidArgument("compile: the optimizer is null");
    thaw::OptimizerConfig config;
    thaw::Loss l = thaw::Loss::kMeanSquaredError;
    THAW_RETURN_IF_ERROR(ToOptimizer("compile", *optimizer, &config));
    THAW_RETURN_IF_ERROR(ToLoss("compile", loss, &l));
    return model->model.Compile(config, l);
  });
}

thaw_status thaw_model_set_learning_rate(thaw_model* model, float learning_rate) {
  return Run(model, "set_learning_rate",
             [&] { return model->model.SetLearningRate(learning_rate); });
}

thaw_status thaw_model_set_trainable(thaw_model* model, const char* layer, int trainable) {
  return Run(model, "set_trainable", [&] {
    if (layer == nullptr) return thaw::InvalidArgument("set_trainable: the layer name is null");
    return model->model.SetTrainable(layer, Flag(trainable));
  });
}

thaw_status thaw_model_set_trainable_index(thaw_model* model, size_t index, int trainable) {
  return Run(model, "set_trainable", [&] {
    if (index >= model->model.num_layers()) {
      return thaw::NotFound("set_trainable: layer %zu does not exist (the model has %zu)", index,
                            model->model.num_layers());
    }
    return model->model.SetTrainable(model->model.layer(index).name(), Flag(trainable));
  });
}

size_t thaw_model_num_layers(const thaw_model* model) {
  return model != nullptr ? model->model.num_layers() : 0;
}

const char* thaw_model_layer_name(const thaw_model* model, size_t index) {
  if (model == nullptr || index >= model->model.num_layers()) return nullptr;
  return model->model.layer(index).name().c_str();
}

size_t thaw_model_input_elements(const thaw_model* model) {
  return model != nullptr && model->model.built() ? model->model.input_features() : 0;
}

size_t thaw_model_output_elements(const thaw_model* model) {
  return model != nullptr && model->model.built() ? model->model.output_features() : 0;
}

thaw_status thaw_model_train_on_batch(thaw_model* model, const float* x, const int32_t* labels,
                                      const float* targets, size_t count, thaw_metrics* metrics) {
  return Run(model, "train_on_batch", [&] {
    thaw::Metrics m;
    THAW_RETURN_IF_ERROR(
        model->model.TrainOnBatch(ExamplesOf(model, x, labels, targets, count), &m));
    FillMetrics(m, metrics);
    return Status::Ok();
  });
}

thaw_status thaw_model_evaluate(thaw_model* model, const float* x, const int32_t* labels,
                                const float* targets, size_t count, size_t batch_size,
                                thaw_metrics* metrics) {
  return Run(model, "evaluate", [&] {
    if (metrics == nullptr) return thaw::InvalidArgument("evaluate: the metrics pointer is null");
    thaw::Metrics m;
    THAW_RETURN_IF_ERROR(
        model->model.Evaluate(ExamplesOf(model, x, labels, targets, count), batch_size, &m));
    FillMetrics(m, metrics);
    return Status::Ok();
  });
}

thaw_status thaw_model_predict(thaw_model* model, const float* x, size_t count, float* out) {
  return Run(model, "predict", [&] { return model->model.Predict(x, count, out); });
}

thaw_status thaw_model_save_weights(thaw_model* model, unsigned flags, void* buffer,
                                    size_t size, size_t* written) {
  return Run(model, "save_weights", [&] {
    if (written == nullptr) return thaw::InvalidArgument("save_weights: `written` is null");
    *written = 0;
    THAW_RETURN_IF_ERROR(CheckBuilt(model, "save_weights"));
    THAW_RETURN_IF_ERROR(CheckFlags("save_weights", flags, THAW_WEIGHTS_TRAINABLE_ONLY));
    thaw::SaveOptions options;
    options.trainable_only = (flags & THAW_WEIGHTS_TRAINABLE_ONLY) != 0;
    THAW_RETURN_IF_ERROR(thaw::CheckpointSize(model->model.variables(), written, options));
    if (buffer == nullptr) return Status::Ok();
    const size_t needed = *written;
    if (size < needed) {
      return thaw::ResourceExhausted("save_weights: the weights take %zu bytes; the buffer has %zu",
                                     needed, size);
    }
    return thaw::SaveCheckpointToMemory(
        model->model.variables(),
        thaw::Span<unsigned char>(static_cast<unsigned char*>(buffer), size), written, options);
  });
}

thaw_status thaw_model_load_weights(thaw_model* model, unsigned flags, const void* bytes,
                                    size_t size) {
  return Run(model, "load_weights", [&] {
    THAW_RETURN_IF_ERROR(CheckBuilt(model, "load_weights"));
    THAW_RETURN_IF_ERROR(CheckFlags("load_weights", flags,
                                    THAW_WEIGHTS_TRAINABLE_ONLY | THAW_WEIGHTS_PARTIAL |
                                        THAW_WEIGHTS_ALLOW_NON_FINITE));
    if (bytes == nullptr) return thaw::InvalidArgument("load_weights: the bytes are null");
    thaw::LoadOptions options;
    options.trainable_only = (flags & THAW_WEIGHTS_TRAINABLE_ONLY) != 0;
    options.strict = (flags & THAW_WEIGHTS_PARTIAL) == 0;
    options.allow_non_finite = (flags & THAW_WEIGHTS_ALLOW_NON_FINITE) != 0;
    return thaw::LoadCheckpointFromMemory(
        thaw::Span<const unsigned char>(static_cast<const unsigned char*>(bytes), size),
        &model->model.variables(), options);
  });
}

}  // extern "C"
