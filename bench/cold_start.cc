// thaw_cold_start: the MLP 784-256-128-10 from a fresh process to the end of
// its first training step (Adam, batch 32) or of its first Predict (batch 32
// or 1), then steady-state steps for comparison. bench/run_cold_start.sh
// launches it many times; it prints one JSON line with, at the end of each
// phase, the CLOCK_MONOTONIC time (ns; the launcher subtracts the time it
// took just before the launch, bench/cold_start_report.py), the minor page
// faults and the process's CPU time (ns) so far. bench/pytorch_cold_start.py
// and bench/libtorch_cold_start.cc do the same for the peers.
//
// Usage: thaw_cold_start MODE [--batch N] [--threads N] [--prefault | --touch]
//                             [--arena-mib N] [--steps N] [--probe]
//   MODE         train | predict | empty (return at main: what comes before it)
//   --batch      examples per step (default 32)
//   --threads    the pool's threads (default 1)
//   --prefault   ArenaOptions::prefault (madvise(MADV_POPULATE_WRITE) here)
//   --touch      instead, the arena's pages touched by TouchPages (the
//                portable fallback), to compare the two ways
//   --arena-mib  the arena's size instead of the one sized for the run (an
//                arena with room to spare, to show what pre-faulting it costs)
//   --steps      steady-state steps timed after the second (default 50)
//   --probe      first time the first SIMD dispatch and the first ParallelFor
//                (TBB's workers start), so their cost is not in a later phase
//
// Phases, each ending at its timestamp: main (dynamic loading, relocations,
// static constructors of every library: libstdc++, libhwy, libtbb, thaw's),
// [dispatch, tbb with --probe], pool (ThreadPool: TBB arena), data (the input
// batch), arena (Create, with the pre-fault when asked), build (graph and
// weight initialisation), compile (train: optimizer), first (the first step
// or Predict: planning, page faults of the arena's first use, first dispatch
// of each kernel, TBB workers' start with 2 threads), second.
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/thaw.h"
#include "platform/memory.h"
#include "platform/random.h"

namespace {

constexpr size_t kIn = 784, kClasses = 10;
// The arenas, sized for the runs with 6% to spare: training with Adam at
// batch 32 reaches 3,946,752 bytes (weights, gradients and two moments,
// 3.76 MB, and the step's block), Predict at batch 32 989,760 (weights and
// the step's block). An arena sized loosely would make the pre-fault map
// pages no step uses (--arena-mib shows what that costs); each run checks
// its high-water mark against its arena (CheckSizing).
constexpr size_t kTrainArenaBytes = 4 << 20;
constexpr size_t kPredictArenaBytes = 1 << 20;

struct Args {
  std::string mode;
  size_t batch = 32;
  int threads = 1;
  bool prefault = false, touch = false, probe = false;
  size_t arena_bytes = 0;  // 0: kTrainArenaBytes or kPredictArenaBytes
  int steps = 50;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "thaw_cold_start: %s\nusage: thaw_cold_start train|predict|empty [--batch N] "
               "[--threads N] [--prefault | --touch] [--arena-mib N] [--steps N] [--probe]\n",
               why);
  std::exit(2);
}

Args Parse(int argc, char** argv) {
  Args a;
  if (argc < 2) Usage("no mode");
  a.mode = argv[1];
  if (a.mode != "train" && a.mode != "predict" && a.mode != "empty") Usage("unknown mode");
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> long {
      if (i + 1 >= argc) Usage("a flag lacks its value");
      return std::strtol(argv[++i], nullptr, 10);
    };
    if (flag == "--batch") {
      a.batch = static_cast<size_t>(std::max(1L, value()));
    } else if (flag == "--threads") {
      a.threads = static_cast<int>(std::max(1L, value()));
    } else if (flag == "--arena-mib") {
      a.arena_bytes = static_cast<size_t>(std::max(1L, value())) << 20;
    } else if (flag == "--steps") {
      a.steps = static_cast<int>(std::max(1L, value()));
    } else if (flag == "--prefault") {
      a.prefault = true;
    } else if (flag == "--touch") {
      a.touch = true;
    } else if (flag == "--probe") {
      a.probe = true;
    } else {
      Usage("unknown flag");
    }
  }
  if (a.prefault && a.touch) Usage("--prefault and --touch are two ways of one thing");
  return a;
}

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

// CPU time of all the process's threads since it started (exec, loading and
// static constructors included): unlike the clock, it does not count the
// time others hold the CPU, so it tells a shared machine's noise apart.
long long CpuNs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// The timestamp, minor page faults and CPU time at the end of each phase,
// printed in order as one JSON object.
class Phases {
 public:
  void End(const char* name) { phases_.push_back({name, NowNs(), MinorFaults(), CpuNs()}); }
  void Print(const std::string& more) const {
    std::printf("{\"phases\": [");
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& p = phases_[i];
      std::printf("%s[\"%s\", %lld, %ld, %lld]", i ? ", " : "", p.name, p.ns, p.faults, p.cpu_ns);
    }
    std::printf("]%s}\n", more.c_str());
  }

 private:
  struct Phase {
    const char* name;
    long long ns;
    long faults;
    long long cpu_ns;
  };
  std::vector<Phase> phases_;
};

void Check(const thaw::Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "thaw_cold_start: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

// The arena's high-water mark must be within 25% of its capacity, so that a
// pre-fault maps about the bytes the steps use (see kTrainArenaBytes).
void CheckSizing(const thaw::Arena& arena) {
  if (arena.high_water() * 4 < arena.capacity() * 3) {
    std::fprintf(stderr,
                 "thaw_cold_start: the arena holds %zu bytes but the run used %zu; size it "
                 "closer (kTrainArenaBytes, kPredictArenaBytes)\n",
                 arena.capacity(), arena.high_water());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Phases phases;
  phases.End("main");
  const Args args = Parse(argc, argv);
  if (args.mode == "empty") {
    phases.Print("");
    return 0;
  }
  const bool train = args.mode == "train";

  if (args.probe) {
    // Highway picks the target on the first call through HWY_DYNAMIC_DISPATCH.
    std::string target = thaw::simd::DispatchedTargetName();
    phases.End("dispatch");
  }
  thaw::ThreadPool pool(args.threads);
  Check(pool.status(), "ThreadPool");
  phases.End("pool");
  if (args.probe) {
    pool.ParallelFor(static_cast<size_t>(pool.num_threads()), [](size_t) {});
    phases.End("tbb");
  }

  std::vector<float> x(args.batch * kIn);
  std::vector<int32_t> labels(args.batch);
  thaw::Random rng(3);
  for (float& v : x) v = rng.Uniform();
  for (int32_t& l : labels) l = static_cast<int32_t>(rng.Below(kClasses));
  std::vector<float> out(args.batch * kClasses);
  phases.End("data");

  thaw::Arena arena;
  thaw::ArenaOptions options;
  options.prefault = args.prefault;
  const size_t arena_bytes =
      args.arena_bytes != 0 ? args.arena_bytes : train ? kTrainArenaBytes : kPredictArenaBytes;
  Check(thaw::Arena::Create(arena_bytes, options, &arena), "Arena::Create");
  if (args.touch) thaw::TouchPages(arena.data(), arena.capacity());
  phases.End("arena");

  thaw::Sequential model(pool);
  Check(model.Add(thaw::Dense::Make(256, thaw::Activation::kRelu)), "Add");
  Check(model.Add(thaw::Dense::Make(128, thaw::Activation::kRelu)), "Add");
  Check(model.Add(thaw::Dense::Make(kClasses)), "Add");
  Check(model.Build(kIn, args.batch, &arena, /*seed=*/1), "Build");
  phases.End("build");
  if (train) {
    Check(model.Compile(thaw::OptimizerConfig::Adam(thaw::AdamOptions()),
                        thaw::Loss::kSparseCategoricalCrossentropyFromLogits),
          "Compile");
    phases.End("compile");
  }

  const thaw::Examples batch{x.data(), args.batch, labels.data(), nullptr};
  auto step = [&] {
    Check(train ? model.TrainOnBatch(batch) : model.Predict(x.data(), args.batch, out.data()),
          train ? "TrainOnBatch" : "Predict");
  };
  step();
  phases.End("first");
  step();
  phases.End("second");

  std::vector<long long> times(static_cast<size_t>(args.steps));
  for (long long& t : times) {
    const long long start = NowNs();
    step();
    t = NowNs() - start;
  }
  std::sort(times.begin(), times.end());
  if (args.arena_bytes == 0) CheckSizing(arena);

  char more[256];
  std::snprintf(more, sizeof(more),
                ", \"steady_ns\": %lld, \"arena_bytes\": %zu, \"high_water\": %zu, "
                "\"threads\": %d, \"target\": \"%s\"",
                times[times.size() / 2], arena.capacity(), arena.high_water(), pool.num_threads(),
                thaw::simd::DispatchedTargetName());
  phases.Print(more);
  return 0;
}
