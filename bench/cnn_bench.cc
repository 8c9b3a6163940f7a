// Convolutional networks: whole training and inference steps of the issue's
// reference CNN, and the convolution kernels alone.
//
// Reference CNN, batch 32 on 28x28x1: conv 3x3 (1 -> 16, same) ReLU, max pool
// 2, conv 3x3 (16 -> 32, same) ReLU, max pool 2, dense 1568 -> 10. Cases
// cnn_step/thaw/<trainable>_<optimizer>/<threads> (all, or head_only: the
// convolutions frozen) and cnn_infer/thaw/batch<b>/<threads>;
// The demo's MobileNet-style network (examples/mobilenet_style.h), batch 32,
// 10 classes: mobilenet_step/thaw/<all|head_only>_<optimizer>/<threads>
// (head_only: the backbone frozen, its BatchNorms folded) and
// mobilenet_infer/thaw/batch<b>/<threads>.
// bench/pytorch_cnn.py times the same in PyTorch and bench/run_cnn.sh prints
// the ratios. Kernels: conv/thaw/<shape>/<threads> with FLOP/s (compare with
// fma_probe/thaw in the same run), depthwise/thaw/<shape>/<threads> and
// maxpool/thaw/<shape>/<threads> with bytes/s (compare with stream_scale).
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "bench/model_bench.h"
#include "core/thaw.h"
#include "examples/mobilenet_style.h"
#include "hwy/aligned_allocator.h"
#include "simd/conv.h"
#include "simd/spatial.h"

namespace {

constexpr size_t kBatch = 32, kClasses = 10;

enum class Net { kReference, kMobileNet };

std::unique_ptr<bench::BenchModel> MakeCnn(Net net, int threads, bool adam, bool head_only) {
  auto m = bench::NewBenchModel(32 << 20, threads);
  if (net == Net::kReference) {
    auto model = std::make_unique<thaw::Sequential>(*m->pool);
    const auto relu = thaw::Activation::kRelu;
    THAW_CHECK(model->Add(thaw::Conv2D::Make(16, 3, 1, thaw::Padding::kSame, relu)).ok());
    THAW_CHECK(model->Add(thaw::MaxPool2D::Make(2)).ok());
    THAW_CHECK(model->Add(thaw::Conv2D::Make(32, 3, 1, thaw::Padding::kSame, relu)).ok());
    THAW_CHECK(model->Add(thaw::MaxPool2D::Make(2)).ok());
    THAW_CHECK(model->Add(thaw::Flatten::Make()).ok());
    THAW_CHECK(model->Add(thaw::Dense::Make(kClasses), "head").ok());
    THAW_CHECK(
        model->Build(thaw::Shape{28, 28, 1}, thaw::Layout::kNHWC, kBatch, &m->arena, 1).ok());
    m->model = std::move(model);
  } else {
    m->model = std::make_unique<thaw::Model>(*m->pool);
    thaw::Model& model = *m->model;
    THAW_CHECK(model.Build(demo::MobileNetStyle(model, kClasses, thaw::Activation::kLinear, "head"),
                           kBatch, &m->arena, 1).ok());
  }
  bench::CompileWithBatch(m.get(), adam, kBatch, 28 * 28, kClasses);
  if (head_only) demo::TrainOnly(m->model.get(), {"head"});
  return m;
}

void BM_CnnStep(benchmark::State& state, Net net, bool head_only, bool adam, int threads) {
  auto m = MakeCnn(net, threads, adam, head_only);
  bench::TimeTrainingSteps(state, *m);
}

void BM_CnnInfer(benchmark::State& state, Net net, size_t batch, int threads) {
  auto m = MakeCnn(net, threads, false, false);
  bench::TimePredict(state, *m, batch);
}

// One convolution, forward, on random data; FLOP/s counts 2 per multiply-add.
thaw::simd::ConvShape Same3x3(size_t batch, size_t hw, size_t cin, size_t cout) {
  thaw::simd::ConvShape s;
  s.batch = batch;
  s.in_h = s.in_w = s.out_h = s.out_w = hw;
  s.in_c = cin;
  s.out_c = cout;
  s.kernel_h = s.kernel_w = 3;
  s.pad_top = s.pad_left = 1;
  return s;
}

void BM_Conv(benchmark::State& state, thaw::simd::ConvShape s, int threads) {
  thaw::ThreadPool pool(threads);
  auto x = hwy::AllocateAligned<float>(s.batch * s.in_h * s.in_w * s.in_c);
  auto w = hwy::AllocateAligned<float>(s.patch() * s.out_c);
  auto y = hwy::AllocateAligned<float>(s.pixels() * s.out_c);
  auto scratch = hwy::AllocateAligned<float>(thaw::simd::ConvForwardScratchFloats(s, threads) + 1);
  for (size_t i = 0; i < s.batch * s.in_h * s.in_w * s.in_c; ++i) x[i] = 0.001f * (i % 997);
  for (size_t i = 0; i < s.patch() * s.out_c; ++i) w[i] = 0.01f * (i % 13);
  for (auto _ : state) {
    thaw::simd::ConvForward(x.get(), w.get(), y.get(), s, scratch.get(), pool);
    benchmark::DoNotOptimize(y.get());
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * s.pixels() * s.patch() * s.out_c,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Depthwise(benchmark::State& state, thaw::simd::ConvShape s, int threads) {
  thaw::ThreadPool pool(threads);
  const size_t in = s.batch * s.in_h * s.in_w * s.in_c, out = s.pixels() * s.in_c;
  auto x = hwy::AllocateAligned<float>(in);
  auto w = hwy::AllocateAligned<float>(9 * s.in_c);
  auto y = hwy::AllocateAligned<float>(out);
  for (size_t i = 0; i < in; ++i) x[i] = 0.001f * (i % 997);
  for (size_t i = 0; i < 9 * s.in_c; ++i) w[i] = 0.01f * (i % 13);
  for (auto _ : state) {
    thaw::simd::DepthwiseForward(x.get(), w.get(), y.get(), s, pool);
    benchmark::DoNotOptimize(y.get());
  }
  // Memory it must move: the input once and the output once.
  state.counters["bytes/s"] = benchmark::Counter(4.0 * (in + out),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// The reference CNN's first max pooling, 2 x 2 over 28 x 28 x 16 (its input,
// 1.6 MB, about fills a 2 MiB L2).
void BM_MaxPool(benchmark::State& state, int threads) {
  thaw::ThreadPool pool(threads);
  thaw::simd::ConvShape s;
  s.batch = kBatch;
  s.in_h = s.in_w = 28;
  s.out_h = s.out_w = 14;
  s.in_c = s.out_c = 16;
  s.kernel_h = s.kernel_w = s.stride_h = s.stride_w = 2;
  const size_t in = s.batch * s.in_h * s.in_w * s.in_c, out = s.pixels() * s.in_c;
  auto x = hwy::AllocateAligned<float>(in);
  auto y = hwy::AllocateAligned<float>(out);
  for (size_t i = 0; i < in; ++i) x[i] = 0.001f * (i * 7919 % 997);
  for (auto _ : state) {
    thaw::simd::MaxPoolForward(x.get(), y.get(), s, pool);
    benchmark::DoNotOptimize(y.get());
  }
  state.counters["bytes/s"] = benchmark::Counter(4.0 * (in + out),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

const int kRegistered = [] {
  for (int threads : {1, 2}) {
    const std::string t = "/" + std::to_string(threads);
    for (Net net : {Net::kReference, Net::kMobileNet}) {
      const std::string stem = net == Net::kReference ? "cnn" : "mobilenet";
      for (bool adam : {false, true}) {
        for (bool head_only : {false, true}) {
          const std::string name = stem + "_step/thaw/" + (head_only ? "head_only" : "all") +
                                   (adam ? "_adam" : "_sgd_momentum") + t;
          benchmark::RegisterBenchmark(name.c_str(), BM_CnnStep, net, head_only, adam, threads)
              ->UseRealTime();
        }
      }
      for (size_t batch : {size_t{1}, kBatch}) {
        const std::string name = stem + "_infer/thaw/batch" + std::to_string(batch) + t;
        benchmark::RegisterBenchmark(name.c_str(), BM_CnnInfer, net, batch, threads)
            ->UseRealTime();
      }
    }
    benchmark::RegisterBenchmark(("conv/thaw/3x3_32to32_14x14_b32" + t).c_str(), BM_Conv,
                                 Same3x3(32, 14, 32, 32), threads)->UseRealTime();
    benchmark::RegisterBenchmark(("conv/thaw/3x3_16to32_14x14_b32" + t).c_str(), BM_Conv,
                                 Same3x3(32, 14, 16, 32), threads)->UseRealTime();
    benchmark::RegisterBenchmark(("conv/thaw/3x3_1to16_28x28_b32" + t).c_str(), BM_Conv,
                                 Same3x3(32, 28, 1, 16), threads)->UseRealTime();
    benchmark::RegisterBenchmark(("depthwise/thaw/3x3_32_14x14_b32" + t).c_str(), BM_Depthwise,
                                 Same3x3(32, 14, 32, 32), threads)->UseRealTime();
    benchmark::RegisterBenchmark(("maxpool/thaw/2x2_16_28x28_b32" + t).c_str(), BM_MaxPool,
                                 threads)->UseRealTime();
  }
  return 0;
}();

}  // namespace
