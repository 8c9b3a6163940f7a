// What it costs one core to read memory another core wrote last: a machine
// probe, like the FMA probe, for reading the 2-thread results (Linux). A
// helper thread pinned to CPU 1 (the timed thread is on CPU 0) writes a buffer, then the timed thread reads one float per cache line of
// it. cross_core/read_own writes on the reading thread instead, with the
// helper still spinning, so only the writer differs. Cases are named
// cross_core/<read_own|read_other>/<KiB>/2 (2: both cores busy).
//
//   thaw_bench --benchmark_filter='^cross_core/' --benchmark_repetitions=5
//
// Measured on the development VM (2 vCPUs, AMD EPYC) at 2400 KiB, the size of
// the first layer's weight, gradient and velocity in bench/mlp_bench.cc:
// ~70 us own, ~180 us other. A 2-thread training step pays this wherever a
// phase reads what the other thread produced in the phase before.
#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

// Pins the calling thread to one CPU (best effort: a container may refuse).
void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void BM_CrossCoreRead(benchmark::State& state, size_t bytes, bool other_writes) {
  const size_t n = bytes / sizeof(float);
  std::vector<float> buf(n, 1.0f);
  std::atomic<int> turn{0};  // odd: the helper writes; even: the timed thread's turn
  std::atomic<bool> done{false};
  cpu_set_t saved;
  pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
  PinTo(0);
  std::thread helper([&] {
    PinTo(1);
    for (int seen = 0;;) {
      int t = turn.load(std::memory_order_acquire);
      if (done.load(std::memory_order_relaxed)) return;
      if (t == seen || t % 2 == 0) continue;
      for (size_t i = 0; i < n; ++i) buf[i] = static_cast<float>(t + i);
      seen = t;
      turn.store(t + 1, std::memory_order_release);
    }
  });
  float sink = 0.0f;
  int t = 0;
  for (auto _ : state) {
    if (other_writes) {
      turn.store(++t, std::memory_order_release);
      while (turn.load(std::memory_order_acquire) != t + 1) {
      }
      ++t;
    } else {
      for (size_t i = 0; i < n; ++i) buf[i] = static_cast<float>(t + i);
    }
    const auto start = std::chrono::steady_clock::now();
    float sum = 0.0f;
    for (size_t i = 0; i < n; i += 16) sum += buf[i];
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    sink += sum;
  }
  done.store(true);
  turn.store(-1, std::memory_order_release);
  helper.join();
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  benchmark::DoNotOptimize(sink);
}

const int kRegistered = [] {
  for (bool other : {false, true}) {
    const std::string name =
        std::string("cross_core/") + (other ? "read_other" : "read_own") + "/2400/2";
    benchmark::RegisterBenchmark(name.c_str(), BM_CrossCoreRead, size_t{2400} << 10, other)
        ->UseManualTime();
  }
  return 0;
}();

}  // namespace
