// What the two Fashion-MNIST transfer demos share: the class splits, a
// training run measured as a table row (accuracy, bytes per region, time per
// step), and the table.
#ifndef THAW_EXAMPLES_TRANSFER_DEMO_H_
#define THAW_EXAMPLES_TRANSFER_DEMO_H_

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/io/io.h"
#include "core/thaw.h"

namespace demo {

inline void Check(const thaw::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
  std::exit(1);
}

struct Split {
  thaw::Dataset data;
  std::vector<int32_t> labels;
  thaw::Examples examples() const {
    return thaw::Examples{data.images.data(), data.count, labels.data(), nullptr, data.features()};
  }
};

// Classes first..last of `all`, at most per_class images of each (0: all).
inline Split Classes(const thaw::Dataset& all, int first, int last, size_t per_class) {
  Split split;
  Check(thaw::FilterClasses(all, first, last, per_class, &split.data));
  split.labels.assign(split.data.labels.begin(), split.data.labels.end());
  return split;
}

// Fashion-MNIST as the demos split it: the lab's classes 0-4 (every image)
// and the device's classes 5-9 (`shots` labelled images per class to train
// on, every test image).
struct Splits {
  Split lab_train, lab_test, device_train, device_test;
};

inline Splits LoadSplits(const std::string& dir, size_t shots) {
  thaw::Dataset train, test;
  Check(thaw::LoadIdxDataset(dir, "train", &train));
  Check(thaw::LoadIdxDataset(dir, "t10k", &test));
  return Splits{Classes(train, 0, 4, 0), Classes(test, 0, 4, 0), Classes(train, 5, 9, shots),
                Classes(test, 5, 9, 0)};
}

inline void PrintBanner(const char* demo, const thaw::ThreadPool& pool) {
  std::printf("thaw %s: kernels on %s (CPU: %s), %d thread(s)\n", demo,
              thaw::simd::DispatchedTargetName(), thaw::simd::SupportedTargetNames().c_str(),
              pool.num_threads());
}

// Adam with this learning rate, sparse categorical cross-entropy (the models
// end in softmax).
inline void CompileAdam(thaw::Model* model, float learning_rate) {
  thaw::AdamOptions adam;
  adam.learning_rate = learning_rate;
  Check(model->Compile(thaw::OptimizerConfig::Adam(adam),
                       thaw::Loss::kSparseCategoricalCrossentropy));
}

// In the lab: fits `lab` (built and compiled) on classes 0-4 with a
// progress line per epoch, reports its test accuracy there, and saves its
// variables to `checkpoint`.
inline void Pretrain(thaw::Model* lab, const Splits& data, int epochs, size_t batch,
                     const std::string& checkpoint) {
  std::printf("\n1. pretraining on classes 0-4 (%zu images)\n", data.lab_train.data.count);
  thaw::ProgressBar progress(thaw::ProgressBar::Style::kEpochLines);
  thaw::FitOptions fit;
  fit.epochs = epochs;
  fit.batch_size = batch;
  fit.seed = 1;
  fit.callback = &progress;
  Check(lab->Fit(data.lab_train.examples(), fit));
  thaw::Metrics m;
  Check(lab->Evaluate(data.lab_test.examples(), batch, &m));
  std::printf("  test accuracy on classes 0-4: %.4f\n", m.accuracy);
  Check(thaw::SaveCheckpoint(lab->variables(), checkpoint));
  std::printf("  saved %s\n", checkpoint.c_str());
  std::printf("\n2. on the device: classes 5-9, %zu labelled images, %zu test images\n",
              data.device_train.data.count, data.device_test.data.count);
}

// The checkpoint the lab writes and the device reads, in $TMPDIR or /tmp.
inline std::string CheckpointPath(const char* file) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp != nullptr ? tmp : "/tmp") + "/" + file;
}

struct Row {
  std::string name;
  double accuracy = 0;
  thaw::MemoryReport memory;
  double ms_per_step = 0;
};

// Fits `model` (compiled) for `epochs` on shuffled batches, evaluates it on
// `test`, and reports the plan of the steps Fit ran (shuffled batches are
// copied into the arena) and the mean time of a step.
inline Row Train(const char* name, thaw::Model* model, const Split& train, const Split& test,
                 int epochs, size_t batch) {
  const auto start = std::chrono::steady_clock::now();
  thaw::FitOptions fit;
  fit.epochs = epochs;
  fit.batch_size = batch;
  fit.seed = 5;
  std::vector<thaw::EpochResult> history;
  Check(model->Fit(train.examples(), fit, &history));
  Row row;
  row.name = name;
  thaw::Metrics metrics;
  Check(model->Evaluate(test.examples(), batch, &metrics));
  row.accuracy = metrics.accuracy;
  thaw::PlanOptions step;
  step.batch = batch;
  step.gather = true;
  thaw::ModelPlan plan;
  Check(model->PlanMemory(step, &plan));
  row.memory = plan.bytes;
  double step_seconds = 0;
  size_t steps = 0;
  for (const thaw::EpochResult& e : history) {
    step_seconds += e.step_seconds;
    steps += e.steps;
  }
  row.ms_per_step = steps ? 1e3 * step_seconds / steps : 0;
  std::printf("  %-34s test accuracy %.4f after %d epochs (%.1f s)\n", name, row.accuracy, epochs,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return row;
}

inline void PrintTable(const std::vector<Row>& rows, size_t arena_bytes, size_t batch,
                       const thaw::Arena& arena) {
  std::printf("\n3. results (arena %zu bytes; plan of one step of %zu examples)\n", arena_bytes,
              batch);
  std::printf("%-34s %9s %10s %10s %10s %11s %9s %9s\n", "", "accuracy", "weights",
              "gradients", "opt.state", "activations", "scratch", "ms/step");
  for (const Row& r : rows) {
    std::printf("%-34s %9.4f %10zu %10zu %10zu %11zu %9zu %9.3f\n", r.name.c_str(), r.accuracy,
                r.memory[thaw::Region::kWeights], r.memory[thaw::Region::kGradients],
                r.memory[thaw::Region::kOptimizerState], r.memory[thaw::Region::kActivations],
                r.memory[thaw::Region::kScratch], r.ms_per_step);
  }
  std::printf("arena high-water mark: %zu bytes of %zu\n", arena.high_water(), arena_bytes);
}

// Percent of the gradient and optimizer bytes, and of the saved
// activations, that row `part` keeps compared with row `full`.
inline void PrintSavings(const char* what, const Row& part, const Row& full) {
  auto training = [](const Row& r) {
    return r.memory[thaw::Region::kGradients] + r.memory[thaw::Region::kOptimizerState];
  };
  std::printf("%s, a step keeps %.1f%% of the gradient and optimizer bytes and %.1f%% of the\n"
              "saved activations of a full step.\n",
              what, 100.0 * training(part) / training(full),
              100.0 * part.memory[thaw::Region::kActivations] /
                  full.memory[thaw::Region::kActivations]);
}

}  // namespace demo

#endif  // THAW_EXAMPLES_TRANSFER_DEMO_H_
