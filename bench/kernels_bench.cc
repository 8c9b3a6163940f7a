// Kernel microbenchmarks: each SIMD kernel against its scalar reference, in
// the same run. Cases are named <op>/<impl>/<size>/<threads>.
//
//   build/bench/thaw_bench --benchmark_repetitions=5 \
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <vector>

#include "platform/cpu.h"
#include "platform/threads.h"
#include "simd/elementwise.h"
#include "simd/optimizer.h"
#include "simd/reduce.h"
#include "simd/scalar.h"
#include "simd/targets.h"

namespace {

std::vector<float> Ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 7919) % 1000) / 1000.0f;
  return v;
}

thaw::ThreadPool& Pool(int threads) {
  static thaw::ThreadPool one(1), two(2);
  return threads == 1 ? one : two;
}

void SetBytes(benchmark::State& state, size_t bytes_per_iteration) {
  state.counters["bytes/s"] = benchmark::Counter(
      static_cast<double>(bytes_per_iteration), benchmark::Counter::kIsIterationInvariantRate,
      benchmark::Counter::kIs1024);
}

void BM_Axpy_Thaw(benchmark::State& state) {
  const size_t n = state.range(0);
  auto x = Ramp(n, 1.0f), y = Ramp(n, 2.0f);
  for (auto _ : state) {
    thaw::simd::Axpy(1e-6f, x.data(), y.data(), n, Pool(state.range(1)));
    benchmark::DoNotOptimize(y.data());
  }
  SetBytes(state, 3 * n * sizeof(float));
}

void BM_Axpy_Scalar(benchmark::State& state) {
  const size_t n = state.range(0);
  auto x = Ramp(n, 1.0f), y = Ramp(n, 2.0f);
  for (auto _ : state) {
    thaw::simd::ScalarAxpy(1e-6f, x.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  SetBytes(state, 3 * n * sizeof(float));
}

void BM_Sum_Thaw(benchmark::State& state) {
  const size_t n = state.range(0);
  auto x = Ramp(n, 1.0f);
  for (auto _ : state) {
    benchmark::DoNotOptimize(thaw::simd::Sum(x.data(), n, Pool(state.range(1))));
  }
  SetBytes(state, n * sizeof(float));
}

void BM_Sum_Scalar(benchmark::State& state) {
  const size_t n = state.range(0);
  auto x = Ramp(n, 1.0f);
  for (auto _ : state) benchmark::DoNotOptimize(thaw::simd::ScalarSum(x.data(), n));
  SetBytes(state, n * sizeof(float));
}

// Adam reads grad, weight, m, v and writes weight, m, v: 7 floats per element.
void BM_Adam_Thaw(benchmark::State& state) {
  const size_t n = state.range(0);
  auto g = Ramp(n, 1.0f), w = Ramp(n, 1.0f), m = Ramp(n, 0.0f), v = Ramp(n, 0.0f);
  thaw::simd::AdamParams params;
  for (auto _ : state) {
    thaw::simd::AdamStep(g.data(), w.data(), m.data(), v.data(), n, params, Pool(state.range(1)));
    benchmark::DoNotOptimize(w.data());
  }
  SetBytes(state, 7 * n * sizeof(float));
}

void BM_Adam_Scalar(benchmark::State& state) {
  const size_t n = state.range(0);
  auto g = Ramp(n, 1.0f), w = Ramp(n, 1.0f), m = Ramp(n, 0.0f), v = Ramp(n, 0.0f);
  thaw::simd::AdamParams params;
  for (auto _ : state) {
    thaw::simd::ScalarAdamStep(g.data(), w.data(), m.data(), v.data(), n, params);
    benchmark::DoNotOptimize(w.data());
  }
  SetBytes(state, 7 * n * sizeof(float));
}

void Sizes(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) {
    for (int n : {4096, 1 << 18}) b->Args({n, threads});
  }
  b->ArgNames({"n", "threads"});
}
void ScalarSizes(benchmark::internal::Benchmark* b) {
  for (int n : {4096, 1 << 18}) b->Args({n, 1});
  b->ArgNames({"n", "threads"});
}

BENCHMARK(BM_Axpy_Thaw)->Apply(Sizes);
BENCHMARK(BM_Axpy_Scalar)->Apply(ScalarSizes);
BENCHMARK(BM_Sum_Thaw)->Apply(Sizes);
BENCHMARK(BM_Sum_Scalar)->Apply(ScalarSizes);
BENCHMARK(BM_Adam_Thaw)->Apply(Sizes);
BENCHMARK(BM_Adam_Scalar)->Apply(ScalarSizes);

// Context printed once with the results: which target the kernels ran on.
const int kContext = [] {
  benchmark::AddCustomContext("thaw_target", thaw::simd::DispatchedTargetName());
  benchmark::AddCustomContext("cpu_targets", thaw::SupportedTargetNames());
  return 0;
}();

}  // namespace
