// What it costs one core to read memory another core wrote last: a machine
// probe, like the FMA probe, for reading the 2-thread results (Linux). A
// helper thread pinned to CPU 1 writes a buffer, then the timed thread (CPU 0)
// reads one float per cache line of it (counter other_us); own_us is the same
// read after the timed thread wrote the buffer itself. One case,
// cross_core/read/<KiB>/2 (2: both cores busy).
//
//   thaw_bench --benchmark_filter='^cross_core/' --benchmark_repetitions=5
//
// Measured on the development VM (2 vCPUs, AMD EPYC) at 2400 KiB, the size of
// the first layer's weight, gradient and velocity in bench/mlp_bench.cc:
// ~65 us own, ~180 us other at some times, ~46 / ~48 us at others (the
// host's placement of the two vCPUs changes). A 2-thread training step pays
// the difference wherever a phase reads what the other thread wrote.
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

// Reads one float per 64-byte line; returns the sum and adds the time to *us.
float TimedRead(const std::vector<float>& buf, double* us) {
  const auto start = std::chrono::steady_clock::now();
  float sum = 0.0f;
  for (size_t i = 0; i < buf.size(); i += 16) sum += buf[i];
  *us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  return sum;
}

void Fill(std::vector<float>& buf, int round) {
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<float>(round) - static_cast<float>(i);
}

// Each iteration: this thread writes the buffer and reads it (own), then the
// helper writes it and this thread reads it (other). Alternating within an
// iteration keeps both under the same conditions.
void BM_CrossCoreRead(benchmark::State& state, size_t bytes) {
  std::vector<float> buf(bytes / sizeof(float), 1.0f);
  std::atomic<int> turn{0};  // odd: the helper's turn to write; -1: stop
  cpu_set_t saved;
  pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
  PinTo(0);
  std::thread helper([&] {
    PinTo(1);
    for (;;) {
      const int t = turn.load(std::memory_order_acquire);
      if (t < 0) return;
      if (t % 2 == 1) {
        Fill(buf, t);
        turn.store(t + 1, std::memory_order_release);
      }
    }
  });
  double own_us = 0.0, other_us = 0.0;
  float sink = 0.0f;
  int t = 0;
  for (auto _ : state) {
    Fill(buf, t);
    sink += TimedRead(buf, &own_us);
    turn.store(++t, std::memory_order_release);
    while (turn.load(std::memory_order_acquire) != t + 1) {
    }
    ++t;
    sink += TimedRead(buf, &other_us);
  }
  turn.store(-1, std::memory_order_release);
  helper.join();
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  benchmark::DoNotOptimize(sink);
  const double n = static_cast<double>(state.iterations());
  state.counters["own_us"] = own_us / n;
  state.counters["other_us"] = other_us / n;
}

const int kRegistered = [] {
  benchmark::RegisterBenchmark("cross_core/read/2400/2", BM_CrossCoreRead, size_t{2400} << 10)
      ->UseRealTime();
  return 0;
}();

}  // namespace
