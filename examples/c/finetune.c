/* examples/c/finetune.c — on-device fine-tuning through thaw's C interface.
 *
 * A 64-32-10 MLP is sized before any memory exists, built in one block of
 * exactly that size, trained on a synthetic task at the "factory", and its
 * weights are kept as safetensors bytes. On the "device" its hidden layer is
 * frozen and the head is fine-tuned on 100 examples of a new labelling; only
 * the head's weights are exported (what federated fine-tuning ships) and a
 * second model, whose frozen layer reads the factory bytes in place, takes
 * that update and predicts exactly as the device does. Last, corrupt bytes are refused and change
 * nothing. Plain C11; every call's status is checked. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/c/thaw_c.h"

enum { kFeatures = 64, kHidden = 32, kClasses = 10, kBatch = 8 };

/* Stops the program with the model's message when a call fails. */
static void check(thaw_model* model, thaw_status status, const char* what) {
  if (status == THAW_OK) return;
  char message[512];
  thaw_model_message(model, message, sizeof(message));
  fprintf(stderr, "%s failed: %s: %s\n", what, thaw_status_name(status), message);
  exit(1);
}

/* A small deterministic generator (xorshift64*), so every run is the same. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static float uniform(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (float)((rng_state * 0x2545F4914F6CDD1Du) >> 40) / 16777216.0f;
}

/* Ten class prototypes; an example is its prototype plus noise. The device's
 * task keeps the inputs and relabels them (class k is called (3k + 1) mod 10). */
static float prototypes[kClasses][kFeatures];
static void make_examples(float* x, int32_t* labels, size_t count, int relabel) {
  for (size_t i = 0; i < count; ++i) {
    const int k = (int)(uniform() * kClasses) % kClasses;
    for (int f = 0; f < kFeatures; ++f) {
      x[i * kFeatures + f] = prototypes[k][f] + 3.0f * (uniform() - 0.5f);
    }
    labels[i] = relabel ? (3 * k + 1) % kClasses : k;
  }
}

/* The model's description; the factory and the server describe the same. */
static thaw_tensor describe(thaw_model* model) {
  const size_t shape[1] = {kFeatures};
  thaw_tensor x, h, y;
  check(model, thaw_input(model, shape, 1, THAW_LAYOUT_ANY, &x), "input");
  check(model, thaw_dense(model, x, kHidden, THAW_ACTIVATION_RELU, 1, "hidden", &h), "dense");
  check(model, thaw_dense(model, h, kClasses, THAW_ACTIVATION_LINEAR, 1, "head", &y), "dense");
  return y;
}

static void print_plan(const char* what, const thaw_memory_plan* p) {
  printf("  %-26s %6zu bytes (the step at the batch: weights %zu, gradients %zu, optimizer %zu,"
         " activations %zu, scratch %zu)\n",
         what, p->total, p->weights, p->gradients, p->optimizer_state, p->activations,
         p->scratch);
}

/* A block of `bytes`, 64-byte aligned, as thaw wants it. */
static void* block_of(size_t bytes) {
  void* block = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (block == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return block;
}

int main(void) {
  for (int k = 0; k < kClasses; ++k) {
    for (int f = 0; f < kFeatures; ++f) prototypes[k][f] = uniform() < 0.3f ? 1.0f : 0.0f;
  }
  static float x[200 * kFeatures], test_x[500 * kFeatures];
  static int32_t labels[200], test_labels[500];
  const thaw_loss loss = THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS;
  thaw_optimizer sgd;
  thaw_optimizer_defaults(THAW_OPTIMIZER_SGD, &sgd);
  sgd.learning_rate = 0.05f;
  sgd.momentum = 0.9f;

  /* ---- Size the device before building anything ---- */
  thaw_model* model;
  if (thaw_model_create(1, &model) != THAW_OK) return 1;
  const thaw_tensor y = describe(model);
  thaw_memory_plan all, head, predict;
  check(model, thaw_model_plan_training(model, y, kBatch, &sgd, loss, &all), "plan");
  check(model, thaw_model_set_trainable(model, "hidden", 0), "set_trainable");
  check(model, thaw_model_plan_training(model, y, kBatch, &sgd, loss, &head), "plan");
  check(model, thaw_model_set_trainable(model, "hidden", 1), "set_trainable");
  check(model, thaw_model_plan_prediction(model, y, 1, &predict), "plan");
  printf("memory plans (batch %d, SGD with momentum):\n", kBatch);
  print_plan("all layers trainable", &all);
  print_plan("hidden frozen (head only)", &head);
  print_plan("prediction, batch 1", &predict);

  /* ---- The factory: train every layer, keep the weights as bytes ---- */
  void* block = block_of(all.total);
  check(model, thaw_model_build(model, y, kBatch, block, all.total, 42), "build");
  check(model, thaw_model_compile(model, &sgd, loss), "compile");
  for (int step = 0; step < 300; ++step) {
    make_examples(x, labels, kBatch, 0);
    check(model, thaw_model_train_on_batch(model, x, labels, NULL, kBatch, NULL), "train");
  }
  thaw_metrics m;
  make_examples(test_x, test_labels, 500, 0);
  check(model, thaw_model_evaluate(model, test_x, test_labels, NULL, 500, kBatch, &m), "evaluate");
  printf("factory task: accuracy %.3f after 300 steps\n", m.accuracy);
  size_t factory_bytes;
  check(model, thaw_model_save_weights(model, 0, NULL, 0, &factory_bytes), "save_weights");
  unsigned char* factory = malloc(factory_bytes);
  if (factory == NULL) return 1;
  check(model, thaw_model_save_weights(model, 0, factory, factory_bytes, &factory_bytes),
        "save_weights");

  /* ---- The device: freeze the hidden layer, fine-tune the head ---- */
  make_examples(x, labels, 100, 1);
  make_examples(test_x, test_labels, 500, 1);
  check(model, thaw_model_evaluate(model, test_x, test_labels, NULL, 500, kBatch, &m), "evaluate");
  printf("device task before fine-tuning: accuracy %.3f\n", m.accuracy);
  check(model, thaw_model_set_trainable(model, "hidden", 0), "set_trainable");
  for (int epoch = 0; epoch < 20; ++epoch) {
    for (size_t i = 0; i + kBatch <= 100; i += kBatch) {
      check(model,
            thaw_model_train_on_batch(model, x + i * kFeatures, labels + i, NULL, kBatch, NULL),
            "train");
    }
  }
  check(model, thaw_model_evaluate(model, test_x, test_labels, NULL, 500, kBatch, &m), "evaluate");
  printf("device task after 20 epochs of the head alone on 100 examples: accuracy %.3f\n",
         m.accuracy);

  /* ---- Ship the update: the trainable variables only ---- */
  size_t update_bytes;
  check(model, thaw_model_save_weights(model, THAW_WEIGHTS_TRAINABLE_ONLY, NULL, 0, &update_bytes),
        "save_weights");
  unsigned char* update = malloc(update_bytes);
  if (update == NULL) return 1;
  check(model,
        thaw_model_save_weights(model, THAW_WEIGHTS_TRAINABLE_ONLY, update, update_bytes,
                                &update_bytes),
        "save_weights");
  printf("weights: %zu bytes in all, the fine-tuning update %zu bytes\n", factory_bytes,
         update_bytes);

  /* ---- The server: factory bytes + update = the device's model ---- */
  /* Its frozen hidden layer reads the factory bytes in place (as firmware
   * would read them from flash): the block holds the head and the scratch. */
  thaw_model* server;
  if (thaw_model_create(1, &server) != THAW_OK) return 1;
  const thaw_tensor server_y = describe(server);
  check(server, thaw_model_set_trainable(server, "hidden", 0), "set_trainable");
  check(server, thaw_model_initial_weights(server, factory, factory_bytes), "initial_weights");
  thaw_memory_plan server_plan;
  check(server, thaw_model_plan_prediction(server, server_y, 1, &server_plan), "plan");
  void* server_block = block_of(server_plan.total);
  check(server, thaw_model_build(server, server_y, 1, server_block, server_plan.total, 0), "build");
  check(server, thaw_model_load_weights(server, THAW_WEIGHTS_TRAINABLE_ONLY, update, update_bytes),
        "load_weights");
  int same = 1;
  for (int i = 0; i < 20; ++i) {
    float a[kClasses], b[kClasses];
    check(model, thaw_model_predict(model, test_x + i * kFeatures, 1, a), "predict");
    check(server, thaw_model_predict(server, test_x + i * kFeatures, 1, b), "predict");
    same = same && memcmp(a, b, sizeof(a)) == 0;
  }
  printf("server (factory bytes read in place + update, in a %zu-byte block; prediction alone "
         "with everything copied: %zu) predicts as the device: %s\n",
         server_plan.total, predict.total, same ? "bit for bit" : "NO");

  /* ---- Bad bytes are refused and change nothing ---- */
  /* An update cut short in transfer. */
  const thaw_status bad =
      thaw_model_load_weights(server, THAW_WEIGHTS_TRAINABLE_ONLY, update, update_bytes - 3);
  char message[512];
  thaw_model_message(server, message, sizeof(message));
  printf("an update cut short: %s: %s\n", thaw_status_name(bad), message);
  float a[kClasses], b[kClasses];
  check(model, thaw_model_predict(model, test_x, 1, a), "predict");
  check(server, thaw_model_predict(server, test_x, 1, b), "predict");
  const int unchanged = memcmp(a, b, sizeof(a)) == 0;
  printf("server weights after the refused load: %s\n", unchanged ? "unchanged" : "CHANGED");

  thaw_model_destroy(server);
  thaw_model_destroy(model);
  free(server_block);
  free(block);
  free(update);
  free(factory);
  return same && unchanged && bad != THAW_OK ? 0 : 1;
}
