// What the whole-model benchmarks (mlp_bench.cc, cnn_bench.cc) share: a
// model in its own arena and pool with one fixed random batch, compiled with
// SGD-momentum or Adam, and the timed loops of a training step and of Predict.
#ifndef THAW_BENCH_MODEL_BENCH_H_
#define THAW_BENCH_MODEL_BENCH_H_

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/thaw.h"

namespace bench {

struct BenchModel {
  thaw::Arena arena;
  std::unique_ptr<thaw::ThreadPool> pool;
  std::unique_ptr<thaw::Model> model;
  std::vector<float> x;  // batch rows of `features` floats
  std::vector<int32_t> labels;
  size_t batch = 0, classes = 0;
};

// An arena of `arena_bytes` and a pool of `threads`; the model is the caller's.
inline std::unique_ptr<BenchModel> NewBenchModel(size_t arena_bytes, int threads) {
  auto m = std::make_unique<BenchModel>();
  THAW_CHECK(thaw::Arena::Create(arena_bytes, &m->arena).ok());
  m->pool = std::make_unique<thaw::ThreadPool>(threads);
  return m;
}

// Compiles the built model (SGD lr 0.01 momentum 0.9, or Adam's defaults;
// cross-entropy from logits) and draws a batch of uniform inputs and labels.
inline void CompileWithBatch(BenchModel* m, bool adam, size_t batch, size_t features,
                             size_t classes) {
  thaw::SgdOptions sgd;
  sgd.learning_rate = 0.01f;
  sgd.momentum = 0.9f;
  THAW_CHECK(m->model->Compile(adam ? thaw::OptimizerConfig::Adam(thaw::AdamOptions())
                                    : thaw::OptimizerConfig::Sgd(sgd),
                               thaw::Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  thaw::Random rng(3);
  m->x.resize(batch * features);
  for (float& v : m->x) v = rng.Uniform();
  m->labels.resize(batch);
  for (int32_t& l : m->labels) l = static_cast<int32_t>(rng.Below(classes));
  m->batch = batch;
  m->classes = classes;
}

// Training steps on the batch (one untimed first, which plans and warms up).
inline void TimeTrainingSteps(benchmark::State& state, BenchModel& m) {
  const thaw::Examples batch{m.x.data(), m.batch, m.labels.data(), nullptr};
  THAW_CHECK(m.model->TrainOnBatch(batch).ok());
  for (auto _ : state) {
    thaw::Status s = m.model->TrainOnBatch(batch);
    benchmark::DoNotOptimize(s);
  }
}

// Predict on the first `batch` examples (one untimed first).
inline void TimePredict(benchmark::State& state, BenchModel& m, size_t batch) {
  std::vector<float> out(batch * m.classes);
  THAW_CHECK(m.model->Predict(m.x.data(), batch, out.data()).ok());
  for (auto _ : state) {
    thaw::Status s = m.model->Predict(m.x.data(), batch, out.data());
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(out.data());
  }
}

}  // namespace bench

#endif  // THAW_BENCH_MODEL_BENCH_H_
