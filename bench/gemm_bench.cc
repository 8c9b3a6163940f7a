// GEMM benchmarks: thaw's simd::Gemm against OpenBLAS's cblas_sgemm in the
// same process, plus a peak-FMA probe, so ratios (thaw / OpenBLAS, thaw /
// peak) come from one run. Cases are named <op>/<impl>/<shape>/<threads>:
//
//   gemm/thaw/512x512x512/1        C[512x512] = A[512x512] · B[512x512]
//   gemm/openblas/64x10x128_nt/2   m x n x k with the transposes (n: plain,
//                                  t: transposed) of A then B
//   fma_probe/hwy/AVX2/1           12 independent FMA chains on registers
//
// Shapes: squares 32..1024, and the three products of each dense layer of a
// 784-256-128-10 MLP at batch 32 and 64 and of the reference CNN's head
// (1568 -> 10 at batch 32; bench/cnn_bench.cc) (suffix says which):
//   _fwd  Y[b,out]  = X[b,in] · W[out,in]^T   m=b,   n=out, k=in   (nt)
//   _dx   dX[b,in]  = dY[b,out] · W[out,in]   m=b,   n=in,  k=out  (nn)
//   _dw   dW[out,in] += dY^T · X[b,in]        m=out, n=in,  k=b    (tn, accumulating)
// Counter FLOP/s = 2 m n k per iteration. bench/run_gemm.sh runs these the
// recommended way (interleaved repetitions, medians).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench/fma_probe.h"
#include "hwy/aligned_allocator.h"
#include "platform/threads.h"
#include "simd/gemm.h"
#include "simd/targets.h"

#if THAW_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace {

struct GemmShape {
  size_t m, n, k;
  bool trans_a, trans_b, accumulate;
  std::string suffix;  // "" for squares, "_fwd" / "_dx" / "_dw"
};

std::string Name(const GemmShape& s) {
  std::string name = std::to_string(s.m) + "x" + std::to_string(s.n) + "x" +
                     std::to_string(s.k);
  if (s.trans_a || s.trans_b) {
    name += std::string("_") + (s.trans_a ? "t" : "n") + (s.trans_b ? "t" : "n");
  }
  return name + s.suffix;
}

std::vector<GemmShape> Shapes() {
  std::vector<GemmShape> shapes;
  for (size_t n : {32, 64, 128, 256, 512, 1024}) {
    shapes.push_back({n, n, n, false, false, false, ""});
  }
  const size_t layers[][2] = {{784, 256}, {256, 128}, {128, 10}};  // in, out
  for (size_t batch : {32, 64}) {
    for (const auto& layer : layers) {
      const size_t in = layer[0], out = layer[1];
      shapes.push_back({batch, out, in, false, true, false, "_fwd"});
      shapes.push_back({batch, in, out, false, false, false, "_dx"});
      shapes.push_back({out, in, batch, true, false, true, "_dw"});
    }
  }
  shapes.push_back({32, 10, 1568, false, true, false, "_fwd"});  // the CNN's head
  shapes.push_back({32, 1568, 10, false, false, false, "_dx"});
  shapes.push_back({10, 1568, 32, true, false, true, "_dw"});
  return shapes;
}

thaw::ThreadPool& Pool(int threads) {
  static thaw::ThreadPool one(1), two(2);
  return threads == 1 ? one : two;
}

// Operands for one shape: stored A, B, C with minimal leading dimensions,
// 64-byte aligned, filled with small values.
struct Operands {
  explicit Operands(const GemmShape& s)
      : lda(s.trans_a ? s.m : s.k),
        ldb(s.trans_b ? s.k : s.n),
        ldc(s.n),
        a(hwy::AllocateAligned<float>(s.m * s.k)),
        b(hwy::AllocateAligned<float>(s.k * s.n)),
        c(hwy::AllocateAligned<float>(s.m * s.n)) {
    for (size_t i = 0; i < s.m * s.k; ++i) a[i] = 0.001f * static_cast<float>(i % 97);
    for (size_t i = 0; i < s.k * s.n; ++i) b[i] = 0.002f * static_cast<float>(i % 89);
    for (size_t i = 0; i < s.m * s.n; ++i) c[i] = 0.0f;
  }
  size_t lda, ldb, ldc;
  hwy::AlignedFreeUniquePtr<float[]> a, b, c;
};

void SetFlops(benchmark::State& state, const GemmShape& s) {
  state.counters["FLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) *
          static_cast<double>(s.k),
      benchmark::Counter::kIsIterationInvariantRate);
}

void BM_GemmThaw(benchmark::State& state, GemmShape s, int threads) {
  Operands x(s);
  thaw::ThreadPool& pool = Pool(threads);
  // The scratch a thaw arena would provide, allocated once outside the loop.
  auto scratch = hwy::AllocateAligned<float>(
      thaw::simd::GemmScratchFloats(s.m, s.n, s.k, pool.num_threads()) + 1);
  for (auto _ : state) {
    thaw::simd::Gemm(x.a.get(), x.lda, s.trans_a, x.b.get(), x.ldb, s.trans_b,
                     x.c.get(), x.ldc, s.m, s.n, s.k, s.accumulate,
                     scratch.get(), pool);
    benchmark::DoNotOptimize(x.c.get());
    benchmark::ClobberMemory();
  }
  SetFlops(state, s);
}

#if THAW_BENCH_OPENBLAS
void BM_GemmOpenBlas(benchmark::State& state, GemmShape s, int threads) {
  Operands x(s);
  openblas_set_num_threads(threads);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans,
                s.trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(s.m),
                static_cast<int>(s.n), static_cast<int>(s.k), 1.0f, x.a.get(),
                static_cast<int>(x.lda), x.b.get(), static_cast<int>(x.ldb),
                s.accumulate ? 1.0f : 0.0f, x.c.get(), static_cast<int>(x.ldc));
    benchmark::DoNotOptimize(x.c.get());
    benchmark::ClobberMemory();
  }
  SetFlops(state, s);
}
#endif

void BM_FmaProbe(benchmark::State& state) {
  constexpr size_t kIterations = 1 << 16;
  for (auto _ : state) {
    benchmark::DoNotOptimize(thaw::bench::FmaProbe(kIterations));
  }
  state.counters["FLOP/s"] = benchmark::Counter(
      thaw::bench::FmaProbeFlops(kIterations),
      benchmark::Counter::kIsIterationInvariantRate);
}

const int kRegistered = [] {
  for (const GemmShape& s : Shapes()) {
    for (int threads : {1, 2}) {
      const std::string tail = "/" + Name(s) + "/" + std::to_string(threads);
      benchmark::RegisterBenchmark(("gemm/thaw" + tail).c_str(), BM_GemmThaw,
                                   s, threads)
          ->UseRealTime();
#if THAW_BENCH_OPENBLAS
      benchmark::RegisterBenchmark(("gemm/openblas" + tail).c_str(),
                                   BM_GemmOpenBlas, s, threads)
          ->UseRealTime();
#endif
    }
  }
  benchmark::RegisterBenchmark(
      (std::string("fma_probe/hwy/") + thaw::simd::DispatchedTargetName() + "/1")
          .c_str(),
      BM_FmaProbe)
      ->UseRealTime();
  benchmark::AddCustomContext("thaw_target", thaw::simd::DispatchedTargetName());
#if THAW_BENCH_OPENBLAS
  // Debian's OpenBLAS 0.3.21 picks its kernels from the CPU model and falls
  // back to weak ones (Prescott) on models it does not know: always log it,
  // and set OPENBLAS_CORETYPE when it is wrong (bench/run_gemm.sh does).
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("openblas_config", openblas_get_config());
#endif
  return 0;
}();

}  // namespace
