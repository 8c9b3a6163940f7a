// Whole training steps and inference of the MLP 784-256-128-10 at batch 64,
// for the freeze sets that on-device fine-tuning uses. Cases are named
// mlp_step/thaw/<trainable>_<optimizer>/<threads> and
// mlp_infer/thaw/batch<b>/<threads>; bench/pytorch_mlp.py times the same
// steps in PyTorch, and bench/run_mlp.sh prints the ratios.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "bench/model_bench.h"
#include "core/thaw.h"

namespace {

constexpr size_t kIn = 784, kBatch = 64, kClasses = 10;

// Layers frozen from the front: none, the first, the first two (head only).
enum Trainable { kAll = 0, kFirstFrozen = 1, kHeadOnly = 2 };
const char* kTrainableNames[] = {"all", "first_frozen", "head_only"};

std::unique_ptr<bench::BenchModel> MakeMlp(int threads, bool adam, int trainable) {
  auto m = bench::NewBenchModel(16 << 20, threads);
  auto model = std::make_unique<thaw::Sequential>(*m->pool);
  THAW_CHECK(model->Add(thaw::Dense::Make(256, thaw::Activation::kRelu)).ok());
  THAW_CHECK(model->Add(thaw::Dense::Make(128, thaw::Activation::kRelu)).ok());
  THAW_CHECK(model->Add(thaw::Dense::Make(kClasses)).ok());
  THAW_CHECK(model->Build(kIn, kBatch, &m->arena, 1).ok());
  m->model = std::move(model);
  bench::CompileWithBatch(m.get(), adam, kBatch, kIn, kClasses);
  if (trainable >= 1) m->model->layer(0).SetTrainable(false);
  if (trainable >= 2) m->model->layer(1).SetTrainable(false);
  return m;
}

// Training FLOPs of one step: forward 2*b*(in*out) per layer; backward the
// weight gradient of every trainable layer and the input gradient of every
// layer after the first trainable one.
double StepFlops(int trainable) {
  const size_t dims[4] = {kIn, 256, 128, kClasses};
  double flops = 0;
  for (int l = 0; l < 3; ++l) {
    const double mm = 2.0 * kBatch * dims[l] * dims[l + 1];
    flops += mm;                       // forward
    if (l >= trainable) flops += mm;   // weight gradient
    if (l > trainable) flops += mm;    // input gradient
  }
  return flops;
}

void BM_MlpStep(benchmark::State& state, int trainable, bool adam, int threads) {
  auto m = MakeMlp(threads, adam, trainable);
  bench::TimeTrainingSteps(state, *m);
  state.counters["FLOP/s"] = benchmark::Counter(StepFlops(trainable),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void BM_MlpInfer(benchmark::State& state, size_t batch, int threads) {
  auto m = MakeMlp(threads, false, kAll);
  bench::TimePredict(state, *m, batch);
}

const int kRegistered = [] {
  for (int threads : {1, 2}) {
    for (bool adam : {false, true}) {
      for (int trainable : {kAll, kFirstFrozen, kHeadOnly}) {
        const std::string name = std::string("mlp_step/thaw/") + kTrainableNames[trainable] +
                                 (adam ? "_adam/" : "_sgd_momentum/") + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), BM_MlpStep, trainable, adam, threads)
            ->UseRealTime();
      }
    }
    for (size_t batch : {size_t{1}, kBatch}) {
      const std::string name =
          "mlp_infer/thaw/batch" + std::to_string(batch) + "/" + std::to_string(threads);
      benchmark::RegisterBenchmark(name.c_str(), BM_MlpInfer, batch, threads)->UseRealTime();
    }
  }
  return 0;
}();

}  // namespace
