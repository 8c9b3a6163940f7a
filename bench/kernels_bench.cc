// Elementwise, reduction and optimizer microbenchmarks: each SIMD kernel
// against its scalar reference, in the same run, with a bytes/s counter.
// Cases are named <op>/<impl>/<floats>/<threads>, e.g. adam/thaw/262144/2.
//
//   bench/run_kernels.sh     (medians, and each case against a STREAM-style
//                             bandwidth probe at the same size)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "hwy/base.h"
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

void BM_Axpy_Thaw(benchmark::State& state, size_t n, int threads) {
  auto x = Ramp(n, 1.0f), y = Ramp(n, 2.0f);
  for (auto _ : state) {
    thaw::simd::Axpy(1e-6f, x.data(), y.data(), n, Pool(threads));
    benchmark::DoNotOptimize(y.data());
  }
  SetBytes(state, 3 * n * sizeof(float));
}

void BM_Axpy_Scalar(benchmark::State& state, size_t n, int threads) {
  auto x = Ramp(n, 1.0f), y = Ramp(n, 2.0f);
  for (auto _ : state) {
    thaw::simd::ScalarAxpy(1e-6f, x.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  SetBytes(state, 3 * n * sizeof(float));
}

void BM_Sum_Thaw(benchmark::State& state, size_t n, int threads) {
  auto x = Ramp(n, 1.0f);
  for (auto _ : state) {
    benchmark::DoNotOptimize(thaw::simd::Sum(x.data(), n, Pool(threads)));
  }
  SetBytes(state, n * sizeof(float));
}

void BM_Sum_Scalar(benchmark::State& state, size_t n, int threads) {
  auto x = Ramp(n, 1.0f);
  for (auto _ : state) benchmark::DoNotOptimize(thaw::simd::ScalarSum(x.data(), n));
  SetBytes(state, n * sizeof(float));
}

// The optimizers' check for NaN and Inf reads every gradient once.
void BM_NonFinite_Thaw(benchmark::State& state, size_t n, int threads) {
  auto x = Ramp(n, 1.0f);
  for (auto _ : state) {
    benchmark::DoNotOptimize(thaw::simd::CountNonFinite(x.data(), n, Pool(threads)));
  }
  SetBytes(state, n * sizeof(float));
}

void BM_NonFinite_Scalar(benchmark::State& state, size_t n, int) {
  auto x = Ramp(n, 1.0f);
  for (auto _ : state) benchmark::DoNotOptimize(thaw::simd::ScalarCountNonFinite(x.data(), n));
  SetBytes(state, n * sizeof(float));
}

// SGD with momentum reads grad, weight, velocity and writes weight, velocity:
// 5 floats per element.
thaw::simd::SgdParams Momentum() {
  thaw::simd::SgdParams params;
  params.momentum = 0.9f;
  return params;
}

void BM_Sgd_Thaw(benchmark::State& state, size_t n, int threads) {
  auto g = Ramp(n, 1.0f), w = Ramp(n, 1.0f), vel = Ramp(n, 0.0f);
  const thaw::simd::SgdParams params = Momentum();
  for (auto _ : state) {
    thaw::simd::SgdStep(g.data(), w.data(), vel.data(), n, params, Pool(threads));
    benchmark::DoNotOptimize(w.data());
  }
  SetBytes(state, 5 * n * sizeof(float));
}

void BM_Sgd_Scalar(benchmark::State& state, size_t n, int) {
  auto g = Ramp(n, 1.0f), w = Ramp(n, 1.0f), vel = Ramp(n, 0.0f);
  const thaw::simd::SgdParams params = Momentum();
  for (auto _ : state) {
    thaw::simd::ScalarSgdStep(g.data(), w.data(), vel.data(), n, params);
    benchmark::DoNotOptimize(w.data());
  }
  SetBytes(state, 5 * n * sizeof(float));
}

// The DRAM bandwidth peer: STREAM's "scale" (y = a * x, one float read and
// one written per element) as a plain loop, on arrays of 2^22 floats (16 MiB
// each, past the caches), where any code that streams runs at the memory's
// pace. (In cache it says nothing: whether the compiler vectorises the loop
// decides its speed. glibc's memcpy was no better a peer: ~5 GiB/s on 16 KiB
// on this VM.)
void BM_Stream_Plain(benchmark::State& state, size_t n, int) {
  auto x = Ramp(n, 1.0f), y = Ramp(n, 2.0f);
  const float* HWY_RESTRICT in = x.data();
  float* HWY_RESTRICT out = y.data();
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) out[i] = 1.0001f * in[i];
    benchmark::DoNotOptimize(out);
    benchmark::ClobberMemory();
  }
  SetBytes(state, 2 * n * sizeof(float));
}

// Adam reads grad, weight, m, v and writes weight, m, v: 7 floats per element.
void BM_Adam_Thaw(benchmark::State& state, size_t n, int threads) {
  auto g = Ramp(n, 1.0f), w = Ramp(n, 1.0f), m = Ramp(n, 0.0f), v = Ramp(n, 0.0f);
  thaw::simd::AdamParams params;
  for (auto _ : state) {
    thaw::simd::AdamStep(g.data(), w.data(), m.data(), v.data(), n, params, Pool(threads));
    benchmark::DoNotOptimize(w.data());
  }
  SetBytes(state, 7 * n * sizeof(float));
}

void BM_Adam_Scalar(benchmark::State& state, size_t n, int threads) {
  auto g = Ramp(n, 1.0f), w = Ramp(n, 1.0f), m = Ramp(n, 0.0f), v = Ramp(n, 0.0f);
  thaw::simd::AdamParams params;
  for (auto _ : state) {
    thaw::simd::ScalarAdamStep(g.data(), w.data(), m.data(), v.data(), n, params);
    benchmark::DoNotOptimize(w.data());
  }
  SetBytes(state, 7 * n * sizeof(float));
}

// Names follow <op>/<impl>/<floats>/<threads>, like the GEMM cases.
using Kernel = void (*)(benchmark::State&, size_t, int);
const int kRegistered = [] {
  struct Case {
    const char* op;
    Kernel thaw;
    Kernel scalar;
  };
  const Case cases[] = {{"axpy", BM_Axpy_Thaw, BM_Axpy_Scalar},
                        {"sum", BM_Sum_Thaw, BM_Sum_Scalar},
                        {"non_finite", BM_NonFinite_Thaw, BM_NonFinite_Scalar},
                        {"sgd_momentum", BM_Sgd_Thaw, BM_Sgd_Scalar},
                        {"adam", BM_Adam_Thaw, BM_Adam_Scalar}};
  benchmark::RegisterBenchmark("stream_scale/plain/4194304/1", BM_Stream_Plain, size_t{1} << 22, 1)
      ->UseRealTime();
  for (const Case& c : cases) {
    for (int n : {4096, 1 << 18, 1 << 22}) {
      const std::string size = "/" + std::to_string(n) + "/";
      for (int threads : {1, 2}) {
        benchmark::RegisterBenchmark(
            (std::string(c.op) + "/thaw" + size + std::to_string(threads)).c_str(), c.thaw,
            static_cast<size_t>(n), threads)
            ->UseRealTime();
      }
      benchmark::RegisterBenchmark((std::string(c.op) + "/scalar" + size + "1").c_str(),
                                   c.scalar, static_cast<size_t>(n), 1)
          ->UseRealTime();
    }
  }
  return 0;
}();

// Context printed once with the results: which target the kernels ran on.
const int kContext = [] {
  benchmark::AddCustomContext("cpu_targets", thaw::simd::SupportedTargetNames());
  return 0;
}();

}  // namespace
