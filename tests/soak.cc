// thaw_soak — hours of unattended fine-tuning in spirit, minutes in practice
// (tests/soak.sh runs it). A small CNN trains step after step while, every
// few steps, a layer is frozen or thawed, checkpoints and training states are
// saved, saves fail (into a directory, into a missing one), hostile files are
// loaded (truncated, random, NaN) and must change nothing, and the training
// state is loaded back. Every few seconds it prints the arena's high-water
// mark and the process's resident memory; after a warm-up both must stay
// flat, or it exits with status 1.
//
// Usage: thaw_soak SECONDS DIRECTORY
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/io/io.h"
#include "core/thaw.h"
#include "platform/random.h"

namespace {

// Resident set size in KiB, from /proc/self/statm.
long ResidentKiB() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

void WriteFile(const std::string& path, const std::vector<unsigned char>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return;
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

std::vector<unsigned char> ReadAll(const std::string& path) {
  std::vector<unsigned char> bytes;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return bytes;
  unsigned char chunk[65536];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
  std::fclose(f);
  return bytes;
}

std::vector<unsigned char> Weights(thaw::VariableSet& vars) {
  std::vector<unsigned char> bytes;
  for (int i = 0; i < vars.size(); ++i) {
    const auto* p = reinterpret_cast<const unsigned char*>(vars.value_data(i));
    bytes.insert(bytes.end(), p, p + vars.shape(i).num_elements() * sizeof(float));
  }
  return bytes;
}

int Fail(const char* what, const thaw::Status& s) {
  std::fprintf(stderr, "thaw_soak: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: thaw_soak SECONDS DIRECTORY\n");
    return 2;
  }
  const double seconds = std::atof(argv[1]);
  const std::string dir = argv[2];
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };

  thaw::ThreadPool pool(2);
  thaw::Arena arena;
  thaw::Status s = thaw::Arena::Create(4 << 20, &arena);
  if (!s.ok()) return Fail("arena", s);
  thaw::Sequential model(pool);
  (void)model.Add(thaw::Conv2D::Make(8, 3, 1, thaw::Padding::kSame));
  (void)model.Add(thaw::BatchNormalization::Make());
  (void)model.Add(thaw::ReLU());
  (void)model.Add(thaw::MaxPool2D::Make(2));
  (void)model.Add(thaw::Flatten::Make());
  (void)model.Add(thaw::Dropout::Make(0.2f, 3));
  (void)model.Add(thaw::Dense::Make(16, thaw::Activation::kRelu));
  (void)model.Add(thaw::Dense::Make(4));
  s = model.Build(thaw::Shape{12, 12, 1}, thaw::Layout::kNHWC, 16, &arena, 1);
  if (!s.ok()) return Fail("build", s);
  thaw::OptimizerConfig config = thaw::OptimizerConfig::Adam(thaw::AdamOptions());
  config.clipping.global_clipnorm = 1.0f;
  s = model.Compile(config, thaw::Loss::kSparseCategoricalCrossentropyFromLogits);
  if (!s.ok()) return Fail("compile", s);

  const size_t examples = 256, features = 12 * 12;
  std::vector<float> x(examples * features);
  std::vector<int32_t> labels(examples);
  thaw::Random rng(42);
  for (size_t i = 0; i < examples; ++i) {
    labels[i] = static_cast<int32_t>(i % 4);
    for (size_t k = 0; k < features; ++k) {
      x[i * features + k] = 0.3f * std::sin(0.1f * k * (labels[i] + 1)) + 0.2f * rng.Uniform() - 0.1f;
    }
  }
  const std::string ckpt = dir + "/soak.safetensors", state = dir + "/soak.state";
  const std::string bad = dir + "/hostile.safetensors";
  long steps = 0, saves = 0, failed_saves = 0, hostile = 0, freezes = 0;
  size_t warm_high_water = 0;
  long warm_rss = 0, max_rss = 0;
  double next_report = 0.0;
  std::printf("%8s %9s %7s %8s %8s %14s %12s\n", "seconds", "steps", "saves", "hostile", "freezes",
              "arena high", "rss KiB");
  for (;;) {
    const double t = elapsed();
    if (t >= next_report || t >= seconds) {
      const long rss = ResidentKiB();
      std::printf("%8.1f %9ld %7ld %8ld %8ld %14zu %12ld\n", t, steps, saves, hostile, freezes,
                  arena.high_water(), rss);
      std::fflush(stdout);
      if (warm_rss == 0 && t >= seconds * 0.2) {  // after the warm-up
        warm_rss = rss;
        warm_high_water = arena.high_water();
      }
      if (warm_rss != 0 && rss > max_rss) max_rss = rss;
      next_report += seconds / 10;
      if (t >= seconds) break;
    }
    const size_t first = (steps * 16) % (examples - 16);
    s = model.TrainOnBatch(
        thaw::Examples{x.data() + first * features, 16, labels.data() + first, nullptr, features});
    if (!s.ok()) return Fail("step", s);
    ++steps;
    if (steps % 7 == 0) {  // freeze or thaw the convolution and its BatchNorm
      const bool frozen = !model.layer(0).trainable();
      model.layer(0).SetTrainable(frozen);
      model.layer(1).SetTrainable(frozen);
      ++freezes;
    }
    if (steps % 25 == 0) {
      s = thaw::SaveCheckpoint(model.variables(), ckpt);
      if (!s.ok()) return Fail("save", s);
      thaw::FitPosition position;
      s = thaw::SaveTrainingState(model, position, state);
      if (!s.ok()) return Fail("save state", s);
      saves += 2;
      // Saves that must fail: over a directory, into a missing one.
      failed_saves += !thaw::SaveCheckpoint(model.variables(), dir).ok();
      failed_saves += !thaw::SaveCheckpoint(model.variables(), dir + "/missing/x").ok();
    }
    if (steps % 30 == 0 && saves > 0) {  // hostile loads change nothing
      const std::vector<unsigned char> before = Weights(model.variables());
      std::vector<unsigned char> file = ReadAll(ckpt);
      std::vector<std::vector<unsigned char>> attacks;
      attacks.emplace_back(file.begin(), file.begin() + file.size() / 2);  // truncated
      attacks.emplace_back(file.size());
      for (unsigned char& b : attacks.back()) b = static_cast<unsigned char>(rng.Next());
      attacks.push_back(file);  // a NaN in the last tensor
      std::memset(attacks.back().data() + attacks.back().size() - 4, 0xFF, 4);
      for (const auto& attack : attacks) {
        WriteFile(bad, attack);
        if (thaw::LoadCheckpoint(bad, &model.variables()).ok()) {
          std::fprintf(stderr, "thaw_soak: a hostile file loaded\n");
          return 1;
        }
        thaw::FitPosition position;
        if (thaw::LoadTrainingState(bad, &model, &position).ok()) {
          std::fprintf(stderr, "thaw_soak: a hostile training state loaded\n");
          return 1;
        }
        ++hostile;
      }
      if (Weights(model.variables()) != before) {
        std::fprintf(stderr, "thaw_soak: a failed load changed the weights\n");
        return 1;
      }
    }
    if (steps % 100 == 0 && saves > 0) {
      thaw::FitPosition position;
      s = thaw::LoadTrainingState(state, &model, &position);
      if (!s.ok()) return Fail("load state", s);
    }
  }
  std::printf("%ld steps, %ld saves, %ld failed saves, %ld hostile loads, %ld freeze flips; arena "
              "high-water %zu bytes (after warm-up %zu), resident memory %ld KiB after warm-up, at "
              "most %ld KiB later\n",
              steps, saves, failed_saves, hostile, freezes, arena.high_water(), warm_high_water,
              warm_rss, max_rss);
  if (arena.high_water() != warm_high_water || max_rss > warm_rss + 1024) {
    std::fprintf(stderr, "thaw_soak: memory grew after the warm-up\n");
    return 1;
  }
  return 0;
}
