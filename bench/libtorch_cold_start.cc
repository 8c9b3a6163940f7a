// LibTorch's cold start on the MLP 784-256-128-10, as bench/cold_start.cc
// times thaw's: from a fresh process, the model (torch::nn::Sequential of
// Linear and ReLU, default initialisation), for training Adam (lr 1e-3) and
// cross-entropy, then the first training step at the batch or the first
// prediction (under torch::InferenceMode), a second one, and the median of
// STEPS more. Prints the JSON line of bench/cold_start.cc (time, minor page
// faults and CPU time at the end of each phase) for bench/cold_start_report.py.
// Threads: at::set_num_threads(THREADS) (its OpenMP pool); the launcher
// (bench/cold_start_report.py) also sets OMP_NUM_THREADS and
// OPENBLAS_NUM_THREADS to 1.
//
// Built by bench/run_cold_start.sh against Debian's libtorch-dev, outside
// CMake (thaw's build never depends on LibTorch):
//   g++ -O2 -std=c++17 bench/libtorch_cold_start.cc -I/usr/include/torch/csrc/api/include
//       -ltorch -ltorch_cpu -lc10 -o libtorch_cold_start
// Usage: libtorch_cold_start train|predict BATCH THREADS [STEPS]
#include <sys/resource.h>
#include <time.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

long long NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

long MinorFaults() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

long long CpuNs() {  // all threads, since the process started
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct Phase {
  const char* name;
  long long ns;
  long faults;
  long long cpu_ns;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<Phase> phases;
  auto end = [&](const char* name) { phases.push_back({name, NowNs(), MinorFaults(), CpuNs()}); };
  end("main");
  if (argc < 4) {
    std::fprintf(stderr, "usage: libtorch_cold_start train|predict BATCH THREADS [STEPS]\n");
    return 2;
  }
  const bool train = std::string(argv[1]) == "train";
  const int64_t batch = std::atoll(argv[2]);
  const int threads = std::atoi(argv[3]);
  const int steps = argc > 4 ? std::atoi(argv[4]) : 50;
  at::set_num_threads(threads);
  end("pool");

  torch::Tensor x = torch::rand({batch, 784});
  torch::Tensor y = torch::randint(0, 10, {batch}, torch::kLong);
  end("data");
  torch::nn::Sequential model(torch::nn::Linear(784, 256), torch::nn::ReLU(),
                              torch::nn::Linear(256, 128), torch::nn::ReLU(),
                              torch::nn::Linear(128, 10));
  end("build");
  std::unique_ptr<torch::optim::Adam> opt;
  if (train) {
    opt = std::make_unique<torch::optim::Adam>(model->parameters(),
                                               torch::optim::AdamOptions(1e-3));
    end("compile");
  }

  auto step = [&] {
    if (train) {
      opt->zero_grad();  // LibTorch 1.13 zeroes gradients in place
      torch::nn::functional::cross_entropy(model->forward(x), y).backward();
      opt->step();
    } else {
      torch::InferenceMode guard;
      model->forward(x);
    }
  };
  step();
  end("first");
  step();
  end("second");
  std::vector<long long> times(static_cast<size_t>(std::max(1, steps)));
  for (long long& t : times) {
    const long long start = NowNs();
    step();
    t = NowNs() - start;
  }
  std::sort(times.begin(), times.end());

  std::printf("{\"phases\": [");
  for (size_t i = 0; i < phases.size(); ++i) {
    std::printf("%s[\"%s\", %lld, %ld, %lld]", i ? ", " : "", phases[i].name, phases[i].ns,
                phases[i].faults, phases[i].cpu_ns);
  }
  std::printf("], \"steady_ns\": %lld, \"threads\": %d, \"torch\": \"%s\"}\n",
              times[times.size() / 2], at::get_num_threads(), TORCH_VERSION);
  return 0;
}
