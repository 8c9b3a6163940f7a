// Head-only fine-tuning epochs with and without Fit's frozen-prefix feature
// cache (FitOptions::feature_cache): the time of an epoch after the first,
// on 500 examples in shuffled batches of 32 (the demos' setting), Adam.
// Cases fit_epoch/thaw/<net>_head_only_<cached|uncached>/<threads>:
//  - mlp: 784-256-128-10 (bench/mlp_bench.cc's), the first two layers frozen;
//  - mobilenet: the demo's MobileNet-style network (examples/
//    mobilenet_style.h), the backbone frozen (BatchNorms in inference mode).
// Each iteration is a Fit of two epochs whose second epoch is timed (manual
// time: EpochResult::seconds), so the cache is always one computed before
// (a Fit before the loop computes it; each Fit then reuses it after
// checking its fingerprints, in its first, untimed epoch).
// bench/pytorch_fit_epoch.py times the same epochs in PyTorch (the backbone
// with requires_grad=False), bench/run_fit_epoch.sh prints the ratios.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "core/thaw.h"
#include "examples/mobilenet_style.h"

namespace {

constexpr size_t kExamples = 500, kBatch = 32, kClasses = 10, kFeatures = 784;

enum class Net { kMlp, kMobileNet };

struct SecondEpoch : thaw::FitCallback {
  double seconds = 0;
  thaw::CacheState cache = thaw::CacheState::kOff;
  void OnTrainBegin(const thaw::FitInfo& info) override { cache = info.cache; }
  void OnEpochEnd(int epoch, const thaw::EpochResult& result) override {
    if (epoch == 1) seconds = result.seconds;
  }
};

void BM_FitEpoch(benchmark::State& state, Net net, bool cached, int threads) {
  thaw::ThreadPool pool(threads);
  thaw::Arena arena;
  THAW_CHECK(thaw::Arena::Create(32 << 20, &arena).ok());
  std::unique_ptr<thaw::Model> model;
  if (net == Net::kMlp) {
    auto seq = std::make_unique<thaw::Sequential>(pool);
    THAW_CHECK(seq->Add(thaw::Dense::Make(256, thaw::Activation::kRelu)).ok());
    THAW_CHECK(seq->Add(thaw::Dense::Make(128, thaw::Activation::kRelu)).ok());
    THAW_CHECK(seq->Add(thaw::Dense::Make(kClasses), "head").ok());
    THAW_CHECK(seq->Build(kFeatures, kBatch, &arena, 1).ok());
    model = std::move(seq);
  } else {
    model = std::make_unique<thaw::Model>(pool);
    THAW_CHECK(model->Build(demo::MobileNetStyle(*model, kClasses, thaw::Activation::kLinear,
                                                 "head"),
                            kBatch, &arena, 1).ok());
  }
  THAW_CHECK(model->Compile(thaw::OptimizerConfig::Adam(thaw::AdamOptions()),
                            thaw::Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  demo::TrainOnly(model.get(), {"head"});
  thaw::Random rng(3);
  std::vector<float> x(kExamples * kFeatures);
  for (float& v : x) v = rng.Uniform();
  std::vector<int32_t> labels(kExamples);
  for (int32_t& l : labels) l = static_cast<int32_t>(rng.Below(kClasses));
  const thaw::Examples train{x.data(), kExamples, labels.data(), nullptr, kFeatures};
  SecondEpoch timer;
  thaw::FitOptions options;
  options.epochs = 2;
  options.batch_size = kBatch;
  options.callback = &timer;
  options.feature_cache = cached ? thaw::CacheMode::kRequired : thaw::CacheMode::kOff;
  THAW_CHECK(model->Fit(train, options).ok());  // computes the cache
  for (auto _ : state) {
    THAW_CHECK(model->Fit(train, options).ok());
    state.SetIterationTime(timer.seconds);
  }
  THAW_CHECK(timer.cache == (cached ? thaw::CacheState::kReused : thaw::CacheState::kOff));
  state.counters["examples/s"] =
      benchmark::Counter(kExamples, benchmark::Counter::kIsIterationInvariantRate);
}

const int kRegistered = [] {
  for (int threads : {1, 2}) {
    for (Net net : {Net::kMlp, Net::kMobileNet}) {
      for (bool cached : {true, false}) {
        const std::string name = std::string("fit_epoch/thaw/") +
                                 (net == Net::kMlp ? "mlp" : "mobilenet") + "_head_only_" +
                                 (cached ? "cached" : "uncached") + "/" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), BM_FitEpoch, net, cached, threads)
            ->UseManualTime();
      }
    }
  }
  return 0;
}();

}  // namespace
