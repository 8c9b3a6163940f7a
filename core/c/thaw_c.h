/* thaw/core/c/thaw_c.h — the C interface of thaw (C99; opaque handles, no
 * C++ type crosses it, no exception, no abort on bad input).
 *
 *   thaw_model* m;
 *   if (thaw_model_create(1, &m) != THAW_OK) return 1;   // 1 thread
 *   thaw_tensor x, h, y;
 *   size_t shape[1] = {64};
 *   thaw_input(m, shape, 1, THAW_LAYOUT_ANY, &x);
 *   thaw_dense(m, x, 32, THAW_ACTIVATION_RELU, 1, "hidden", &h);
 *   thaw_dense(m, h, 10, THAW_ACTIVATION_LINEAR, 1, "head", &y);
 *   thaw_memory_plan plan;
 *   thaw_model_plan_training(m, y, 8, NULL, THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS,
 *                            &plan);                    // before any memory exists
 *   void* block = aligned_alloc(64, plan.total);        // or a static buffer
 *   thaw_model_build(m, y, 8, block, plan.total, 0);
 *   thaw_optimizer sgd;
 *   thaw_optimizer_defaults(THAW_OPTIMIZER_SGD, &sgd);
 *   sgd.learning_rate = 0.05f;
 *   thaw_model_compile(m, &sgd, THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS);
 *   thaw_model_set_trainable(m, "hidden", 0);           // freeze: only the head learns
 *   if (thaw_model_train_on_batch(m, x_batch, labels, NULL, 8, NULL) != THAW_OK) {
 *     char why[256];
 *     thaw_model_message(m, why, sizeof(why));
 *     fprintf(stderr, "%s\n", why);
 *   }
 *   thaw_model_destroy(m);                              // then free(block)
 *
 * Every call returns a thaw_status; THAW_OK is 0. The sentence saying what
 * went wrong is kept in the model and copied out by thaw_model_message. A
 * failed call changes nothing (a failed step leaves the weights as they were;
 * with thaw_optimizer.update_in_backward, see there).
 * The description calls (thaw_input, thaw_dense, ...) also record their
 * error in the model, and thaw_model_build returns the first one, so a model
 * may be described without checking every call.
 *
 * Memory: thaw_model_build places everything the model holds (weights,
 * gradients, optimizer state, the activations and scratch of a step) in the
 * caller's block; training and prediction allocate nothing else. Creating,
 * describing, building, compiling and the weight calls may use the heap
 * (RESOURCE_EXHAUSTED when it is exhausted).
 *
 * Arrays are row-major float32: x is [count, input elements] (an image
 * input's elements in NHWC order), predictions [count, output elements].
 * Labels are int32 class indices; targets are [count, output elements]
 * (mean squared error, binary cross-entropy).
 *
 * A model is used by one thread at a time. */
#ifndef THAW_CORE_C_THAW_C_H_
#define THAW_CORE_C_THAW_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
/* In C++ the enums get int as their fixed type (what C gives them), so that
 * any int a C caller passes is a value of the type, checked by thaw rather
 * than undefined. */
#define THAW_ENUM(name) enum name : int
#else
#define THAW_ENUM(name) enum name
#endif

typedef THAW_ENUM(thaw_status) {
  THAW_OK = 0,
  THAW_INVALID_ARGUMENT = 1,     /* the caller passed something malformed */
  THAW_FAILED_PRECONDITION = 2,  /* the call is not valid in the model's state */
  THAW_RESOURCE_EXHAUSTED = 3,   /* the block (or the heap, or a buffer) is too small */
  THAW_NOT_FOUND = 4,            /* a layer or tensor name does not exist */
  THAW_DATA_LOSS = 5,            /* weight bytes are not a well-formed checkpoint */
  THAW_IO_ERROR = 6,
  THAW_INTERNAL = 7
} thaw_status;

/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" for a value that is none. */
const char* thaw_status_name(thaw_status status);

typedef struct thaw_model thaw_model;

/* A symbolic tensor of a model being described: its input or a layer's
 * output. THAW_NO_TENSOR after a failed call. */
typedef int32_t thaw_tensor;
#define THAW_NO_TENSOR ((thaw_tensor)-1)

typedef THAW_ENUM(thaw_activation) {
  THAW_ACTIVATION_LINEAR = 0,
  THAW_ACTIVATION_RELU,
  THAW_ACTIVATION_RELU6,
  THAW_ACTIVATION_SIGMOID,
  THAW_ACTIVATION_TANH,
  THAW_ACTIVATION_SOFTMAX
} thaw_activation;

typedef THAW_ENUM(thaw_padding) { THAW_PADDING_VALID = 0, THAW_PADDING_SAME } thaw_padding;

/* THAW_LAYOUT_NHWC marks an input [height, width, channels] as an image. */
typedef THAW_ENUM(thaw_layout) { THAW_LAYOUT_ANY = 0, THAW_LAYOUT_NHWC } thaw_layout;

typedef THAW_ENUM(thaw_loss) {
  THAW_LOSS_MEAN_SQUARED_ERROR = 0,
  /* labels; the model ends in a softmax (fused into the loss) */
  THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
  /* labels; the model's output is logits */
  THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS,
  /* targets in [0, 1]; the model's output is logits */
  THAW_LOSS_BINARY_CROSSENTROPY_FROM_LOGITS
} thaw_loss;

typedef THAW_ENUM(thaw_optimizer_kind) {
  THAW_OPTIMIZER_SGD = 0,
  THAW_OPTIMIZER_ADAM,
  THAW_OPTIMIZER_ADAMW
} thaw_optimizer_kind;
#undef THAW_ENUM

/* PyTorch's meaning for every field (torch.optim.SGD, Adam, AdamW). */
typedef struct thaw_optimizer {
  thaw_optimizer_kind kind;
  float learning_rate;
  float weight_decay;     /* SGD and Adam: L2 added to the gradient; AdamW: decoupled */
  float momentum;         /* SGD */
  int nesterov;           /* SGD */
  float beta1, beta2;     /* Adam, AdamW */
  float epsilon;          /* Adam, AdamW */
  float clipnorm;         /* each gradient's norm at most this; 0: off */
  float global_clipnorm;  /* all gradients' joint norm at most this; 0: off */
  float clipvalue;        /* each element in [-clipvalue, clipvalue]; 0: off */
  /* 1: update each layer in the backward pass, as soon as its gradients are
   * complete: the gradients then take the largest layer's bytes instead of
   * all layers', but a NaN or Inf gradient found at a layer leaves the
   * layers updated before it updated (the message names them). Not with
   * global_clipnorm. 0: after the backward pass, all or nothing. */
  int update_in_backward;
} thaw_optimizer;

/* The defaults of `kind` (PyTorch's: SGD lr 0.01, Adam lr 0.001, betas 0.9,
 * 0.999, epsilon 1e-8, AdamW weight decay 0.01; no clipping). */
void thaw_optimizer_defaults(thaw_optimizer_kind kind, thaw_optimizer* out);

typedef struct thaw_metrics {
  double loss;      /* mean over the examples */
  double accuracy;  /* NaN when the loss has none */
  size_t count;
} thaw_metrics;

/* `total` is the block that runs every step of the plan: its batch and every
 * smaller one, and for a training plan evaluation and prediction too. The
 * rest describe the step at exactly that batch: its bytes by region, which
 * add up to `step` (<= total: a kernel's scratch need not grow with the batch). */
typedef struct thaw_memory_plan {
  size_t total;
  size_t step;
  size_t weights;
  size_t gradients;
  size_t optimizer_state;
  size_t activations;
  size_t scratch;
} thaw_memory_plan;

/* ---- Lifetime and errors ---- */

/* A new, empty model running its kernels on `threads` threads (1: the
 * caller's thread only; 0: one per core; a build without threads always uses
 * 1). INVALID_ARGUMENT for a negative count or a null `out`,
 * RESOURCE_EXHAUSTED when the heap is exhausted; *out is then NULL. */
thaw_status thaw_model_create(int threads, thaw_model** out);
/* Frees the model; the caller's block may be freed after. NULL is allowed. */
void thaw_model_destroy(thaw_model* model);

/* Copies the message of the model's last failed call (or "" after a call
 * that succeeded) into buffer[0, size), always NUL-terminated when size > 0,
 * cut to fit, and returns the message's whole length, as snprintf does. */
size_t thaw_model_message(const thaw_model* model, char* buffer, size_t size);

/* ---- Describing a model (Keras' functional API) ----
 * Each takes the input tensor(s) and writes the layer's output to *out. `name`
 * may be NULL or "" for "<kind>_<k>" (dense_0, conv2d_1, ...); names are what
 * checkpoints and thaw_model_set_trainable use. Keras' arguments and defaults. */

/* The model's one input, per example: [features], or [height, width,
 * channels] with THAW_LAYOUT_NHWC; rank 1 to 4. */
thaw_status thaw_input(thaw_model* model, const size_t* shape, size_t rank, thaw_layout layout,
                       thaw_tensor* out);
thaw_status thaw_dense(thaw_model* model, thaw_tensor input, size_t units,
                       thaw_activation activation, int use_bias, const char* name,
                       thaw_tensor* out);
thaw_status thaw_conv2d(thaw_model* model, thaw_tensor input, size_t filters, size_t kernel_h,
                        size_t kernel_w, size_t stride_h, size_t stride_w, thaw_padding padding,
                        thaw_activation activation, int use_bias, const char* name,
                        thaw_tensor* out);
/* Depth multiplier 1. */
thaw_status thaw_depthwise_conv2d(thaw_model* model, thaw_tensor input, size_t kernel_h,
                                  size_t kernel_w, size_t stride_h, size_t stride_w,
                                  thaw_padding padding, thaw_activation activation, int use_bias,
                                  const char* name, thaw_tensor* out);
/* A stride of 0 on an axis is the pool's size there (Keras' strides=None). */
thaw_status thaw_max_pool2d(thaw_model* model, thaw_tensor input, size_t pool_h, size_t pool_w,
                            size_t stride_h, size_t stride_w, thaw_padding padding,
                            const char* name, thaw_tensor* out);
thaw_status thaw_average_pool2d(thaw_model* model, thaw_tensor input, size_t pool_h,
                                size_t pool_w, size_t stride_h, size_t stride_w,
                                thaw_padding padding, const char* name, thaw_tensor* out);
thaw_status thaw_global_average_pool2d(thaw_model* model, thaw_tensor input, const char* name,
                                       thaw_tensor* out);
/* Keras' momentum (0.99 = PyTorch's 0.1) and epsilon (1e-3); center and scale. */
thaw_status thaw_batch_normalization(thaw_model* model, thaw_tensor input, float momentum,
                                     float epsilon, const char* name, thaw_tensor* out);
/* An activation on its own (Keras' Activation / ReLU layers). */
thaw_status thaw_activation_layer(thaw_model* model, thaw_tensor input, thaw_activation activation,
                            const char* name, thaw_tensor* out);
/* Drops a fraction `rate` of the elements in training; `seed` picks the masks. */
thaw_status thaw_dropout(thaw_model* model, thaw_tensor input, float rate, uint64_t seed,
                         const char* name, thaw_tensor* out);
thaw_status thaw_add(thaw_model* model, thaw_tensor a, thaw_tensor b, const char* name,
                     thaw_tensor* out);
/* Joins `count` inputs along their last axis. */
thaw_status thaw_concatenate(thaw_model* model, const thaw_tensor* inputs, size_t count,
                             const char* name, thaw_tensor* out);
thaw_status thaw_flatten(thaw_model* model, thaw_tensor input, const char* name,
                         thaw_tensor* out);
/* A new per-example shape (rank 1 to 4) with as many elements. */
thaw_status thaw_reshape(thaw_model* model, thaw_tensor input, const size_t* shape, size_t rank,
                         thaw_layout layout, const char* name, thaw_tensor* out);

/* ---- Memory, before and after building ---- */

/* The block a training step at `batch` needs with `output` as the model's
 * output, for the layers' current trainable flags, with `optimizer` (NULL:
 * the compiled one; before thaw_model_compile, plain SGD without state) and
 * `loss`, on the model's threads and this CPU's SIMD target (see
 * thaw_model_plan_machine). Runs nothing and
 * needs no memory: call it before thaw_model_build to size the block. */
thaw_status thaw_model_plan_training(thaw_model* model, thaw_tensor output, size_t batch,
                                     const thaw_optimizer* optimizer, thaw_loss loss,
                                     thaw_memory_plan* out);
/* The block prediction at `batch` needs (the weights and a forward pass). */
thaw_status thaw_model_plan_prediction(thaw_model* model, thaw_tensor output, size_t batch,
                                       thaw_memory_plan* out);
/* Makes later plans describe another machine: the SIMD target `simd_target`
 * on `threads` threads (0: the model's). Any target of this build's
 * architecture, or of x86 or 64-bit Arm from any CPU, compiled in or not
 * and whether or not this CPU runs it ("AVX3", "AVX2", "SSE4", "SCALAR",
 * "NEON", "SVE_256", ...; NULL: the one this CPU uses). SVE and SVE2, whose
 * vector length the CPU chooses, take it in bits after a colon ("SVE2:512";
 * without it, this CPU's, if it runs the target). */
thaw_status thaw_model_plan_machine(thaw_model* model, const char* simd_target, int threads);

/* ---- Building and training ---- */

/* Makes the model's first values come from safetensors bytes (a checkpoint
 * in flash, an mmapped file) instead of being drawn: thaw_model_build checks
 * them against the model (every variable must be there, nothing else; all or
 * nothing) and copies them, except that parameters frozen before building
 * whose tensor the bytes hold in thaw's own layout (dense kernels, biases,
 * BatchNorm's scale and shift; 4-byte aligned) read the bytes in place and
 * take no room in the block; plans made after this call count that. The
 * bytes must then stay valid and unchanged while the model lives (thawing
 * such a layer copies it into the block at its next training step). NULL
 * goes back to drawn values. Before thaw_model_build only. */
thaw_status thaw_model_initial_weights(thaw_model* model, const void* bytes, size_t size);

/* Creates the model's variables in the caller's block of `bytes` bytes,
 * 64-byte aligned, which must outlive the model (thaw never frees it; NULL:
 * thaw allocates `bytes` itself), with `output` as the model's output and
 * initial values drawn from `seed` (or thaw_model_initial_weights'). max_batch bounds the batches of every
 * later call. Returns the first error of the description, if any. */
thaw_status thaw_model_build(thaw_model* model, thaw_tensor output, size_t max_batch,
                             void* block, size_t bytes, uint64_t seed);
/* Maps every page of the model's block now (after thaw_model_build), so the
 * first step runs about as fast as the later ones instead of paying a page
 * fault per page it first writes. */
thaw_status thaw_model_prefault(thaw_model* model);
/* Chooses the optimizer and the loss; again: a new optimizer, from zero. */
thaw_status thaw_model_compile(thaw_model* model, const thaw_optimizer* optimizer,
                               thaw_loss loss);
/* The learning rate from now on; the optimizer's state stays. */
thaw_status thaw_model_set_learning_rate(thaw_model* model, float learning_rate);

/* Freezes (0) or thaws (1) the parameters of the layer called `layer`, from the
 * next step on (before build: at build). NOT_FOUND for no such layer,
 * INVALID_ARGUMENT for a layer without parameters. */
thaw_status thaw_model_set_trainable(thaw_model* model, const char* layer, int trainable);
/* The same for the layer described `index`-th (0-based). */
thaw_status thaw_model_set_trainable_index(thaw_model* model, size_t index, int trainable);

size_t thaw_model_num_layers(const thaw_model* model);
/* The layer's name, valid while the model lives; NULL out of range. */
const char* thaw_model_layer_name(const thaw_model* model, size_t index);
/* Elements of one example's input and output (0 before build). */
size_t thaw_model_input_elements(const thaw_model* model);
size_t thaw_model_output_elements(const thaw_model* model);

/* One training step on `count` (1 to max_batch) examples: labels for the
 * sparse categorical losses, targets for the others (the other NULL).
 * `metrics` may be NULL. */
thaw_status thaw_model_train_on_batch(thaw_model* model, const float* x, const int32_t* labels,
                                      const float* targets, size_t count, thaw_metrics* metrics);
/* Loss and accuracy over `count` examples, in batches of `batch_size`. */
thaw_status thaw_model_evaluate(thaw_model* model, const float* x, const int32_t* labels,
                                const float* targets, size_t count, size_t batch_size,
                                thaw_metrics* metrics);
/* out[count, output elements]; probabilities after a final softmax. */
thaw_status thaw_model_predict(thaw_model* model, const float* x, size_t count, float* out);

/* ---- Weights as safetensors bytes (PyTorch's state_dict names and layouts) ---- */

/* Save only the trainable variables (what federated fine-tuning ships). */
#define THAW_WEIGHTS_TRAINABLE_ONLY 1u
/* Load: variables the bytes lack keep their values, extra tensors are ignored. */
#define THAW_WEIGHTS_PARTIAL 2u
/* Load: accept NaN and infinity (refused by default). */
#define THAW_WEIGHTS_ALLOW_NON_FINITE 4u

/* Writes the model's variables into buffer[0, size) and the byte count to
 * *written. A NULL buffer (or one too small: RESOURCE_EXHAUSTED) still sets
 * *written to the size needed. */
thaw_status thaw_model_save_weights(thaw_model* model, unsigned flags, void* buffer,
                                    size_t size, size_t* written);
/* Copies the tensors of bytes[0, size) into the variables of the same name,
 * checked first: all or nothing. By default every variable must be there and
 * nothing else; with THAW_WEIGHTS_TRAINABLE_ONLY exactly the trainable ones. */
thaw_status thaw_model_load_weights(thaw_model* model, unsigned flags, const void* bytes,
                                    size_t size);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* THAW_CORE_C_THAW_C_H_ */
