/* bench/step_time.c — the time of one training step of a small MLP through
 * the C API, for builds without Google Benchmark (the firmware profile).
 *
 *   build/<dir>/bench/thaw_step_time [repetitions]
 *
 * For each model (64-32-10, the shape of examples/c/finetune.c, and
 * 784-128-10), ReLU hidden layer, softmax cross-entropy from logits, SGD with
 * momentum, batch 32, one thread: 50 warm-up steps, then `repetitions`
 * (default 15) rounds of a fixed number of steps. It prints the median, the
 * lowest and the highest per-step CPU time of the rounds in microseconds,
 * and the median wall-clock time. The data are fixed pseudo-random
 * examples, so every build trains the same task; the final loss is printed
 * so that a build that computes something else shows. CPU time, because
 * on a shared machine the time spent waiting for a core is not the step's.
 * Plain C11, linked as an application links the runtime. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/c/thaw_c.h"

enum { kBatch = 32, kMaxRepetitions = 101 };

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static float uniform(void) { /* xorshift64*, in [0, 1) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (float)((rng_state * 0x2545F4914F6CDD1Du) >> 40) / 16777216.0f;
}

static double cpu_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}
static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int compare_doubles(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static void check(thaw_model* model, thaw_status status, const char* what) {
  if (status == THAW_OK) return;
  char message[512];
  thaw_model_message(model, message, sizeof(message));
  fprintf(stderr, "%s failed: %s: %s\n", what, thaw_status_name(status), message);
  exit(1);
}

/* Times `steps` training steps per round of an inputs-hidden-classes MLP. */
static void run(size_t inputs, size_t hidden, size_t classes, int steps, int repetitions) {
  float* x = malloc(sizeof(float) * inputs * kBatch);
  int32_t labels[kBatch];
  if (x == NULL) exit(1);
  for (size_t i = 0; i < inputs * kBatch; ++i) x[i] = uniform() - 0.5f;
  for (int i = 0; i < kBatch; ++i) labels[i] = (int32_t)(uniform() * (float)classes);

  thaw_model* model;
  if (thaw_model_create(1, &model) != THAW_OK) exit(1);
  const size_t shape[1] = {inputs};
  thaw_tensor in, h, y;
  check(model, thaw_input(model, shape, 1, THAW_LAYOUT_ANY, &in), "input");
  check(model, thaw_dense(model, in, hidden, THAW_ACTIVATION_RELU, 1, "hidden", &h), "dense");
  check(model, thaw_dense(model, h, classes, THAW_ACTIVATION_LINEAR, 1, "head", &y), "dense");
  const thaw_loss loss = THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS;
  thaw_optimizer sgd;
  thaw_optimizer_defaults(THAW_OPTIMIZER_SGD, &sgd);
  sgd.learning_rate = 0.01f;
  sgd.momentum = 0.9f;
  thaw_memory_plan plan;
  check(model, thaw_model_plan_training(model, y, kBatch, &sgd, loss, &plan), "plan");
  check(model, thaw_model_build(model, y, kBatch, NULL, plan.total, 1), "build");
  check(model, thaw_model_compile(model, &sgd, loss), "compile");
  check(model, thaw_model_prefault(model), "prefault");

  for (int s = 0; s < 50; ++s) {
    check(model, thaw_model_train_on_batch(model, x, labels, NULL, kBatch, NULL), "train");
  }
  double per_step[kMaxRepetitions], wall[kMaxRepetitions];
  for (int r = 0; r < repetitions; ++r) {
    const double start = cpu_us(), wall_start = now_us();
    for (int s = 0; s < steps; ++s) {
      check(model, thaw_model_train_on_batch(model, x, labels, NULL, kBatch, NULL), "train");
    }
    per_step[r] = (cpu_us() - start) / steps;
    wall[r] = (now_us() - wall_start) / steps;
  }
  thaw_metrics m;
  check(model, thaw_model_evaluate(model, x, labels, NULL, kBatch, kBatch, &m), "evaluate");
  qsort(per_step, (size_t)repetitions, sizeof(double), compare_doubles);
  qsort(wall, (size_t)repetitions, sizeof(double), compare_doubles);
  printf("%zu-%zu-%zu batch %d: %8.2f us/step CPU time, median of %d rounds of %d steps (min "
         "%.2f, max %.2f; wall-clock median %.2f); loss after %.5f\n",
         inputs, hidden, classes, kBatch, per_step[repetitions / 2], repetitions, steps,
         per_step[0], per_step[repetitions - 1], wall[repetitions / 2], m.loss);
  thaw_model_destroy(model);
  free(x);
}

int main(int argc, char** argv) {
  int repetitions = argc > 1 ? atoi(argv[1]) : 15;
  if (repetitions < 1) repetitions = 1;
  if (repetitions > kMaxRepetitions) repetitions = kMaxRepetitions;
  run(64, 32, 10, 2000, repetitions);
  run(784, 128, 10, 200, repetitions);
  return 0;
}
