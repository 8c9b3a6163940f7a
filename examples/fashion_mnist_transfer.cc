// Fashion-MNIST transfer learning — thaw's main demo.
//
// The story of on-device fine-tuning:
//  1. In the lab: pretrain an MLP 784-256-128-5 on classes 0-4 (t-shirt,
//     trouser, pullover, dress, coat) and save a safetensors checkpoint.
//  2. On the device: classes 5-9 (sandal, shirt, sneaker, bag, ankle boot)
//     appear, with only 100 labelled images each. Load the backbone, put a new
//     5-way head on it, and train in one fixed arena:
//       (a) from scratch on the 500 images, for comparison;
//       (b) backbone frozen, new head trained: no gradients, no optimizer
//           state, no saved activations and no backward pass for the backbone;
//       (c) then everything thawed with a small learning rate (no recompile:
//           the arena is re-planned at the next step).
//  3. Print test accuracy on classes 5-9, the arena's bytes by region, and
//     time per step.
//
// Usage: fashion_mnist_transfer [dataset_dir] [threads]
// The data comes from the Debian package dataset-fashion-mnist.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/io/io.h"
#include "core/thaw.h"

namespace {

constexpr size_t kBatch = 32;
constexpr size_t kShotsPerClass = 100;
// Adam learning rates, chosen on this demo's data (head 3e-3/1e-2 and
// fine-tuning 1e-4/3e-4 were tried; these were best).
constexpr float kHeadRate = 1e-2f;
constexpr float kFineTuneRate = 3e-4f;

void Check(const thaw::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
  std::exit(1);
}

struct Split {
  thaw::Dataset data;
  std::vector<int32_t> labels;
  thaw::Examples examples() const {
    return thaw::Examples{data.images.data(), data.count, labels.data(), nullptr};
  }
};

Split Classes(const thaw::Dataset& all, int first, int last, size_t per_class) {
  Split split;
  Check(thaw::FilterClasses(all, first, last, per_class, &split.data));
  split.labels.assign(split.data.labels.begin(), split.data.labels.end());
  return split;
}

// The MLP. The backbone layers are named as in the checkpoint; the head is
// named by the caller, so that a new head does not load the old one.
void BuildModel(thaw::Sequential* model, thaw::Arena* arena, const char* head, uint64_t seed) {
  Check(model->Add(thaw::Dense::Make(256, thaw::Activation::kRelu), "dense_0"));
  Check(model->Add(thaw::Dense::Make(128, thaw::Activation::kRelu), "dense_1"));
  Check(model->Add(thaw::Dense::Make(5, thaw::Activation::kSoftmax), head));
  Check(model->Build(784, kBatch, arena, seed));
}

void Compile(thaw::Sequential* model, float learning_rate) {
  thaw::AdamOptions adam;
  adam.learning_rate = learning_rate;
  Check(model->Compile(thaw::OptimizerConfig::Adam(adam),
                       thaw::Loss::kSparseCategoricalCrossentropy));
}

struct Row {
  std::string name;
  double accuracy = 0;
  thaw::MemoryReport memory;
  double ms_per_step = 0;
  double seconds = 0;
};

Row Train(const char* name, thaw::Sequential* model, const Split& train, const Split& test, int epochs) {
  const auto start = std::chrono::steady_clock::now();
  thaw::FitOptions fit;
  fit.epochs = epochs;
  fit.batch_size = kBatch;
  fit.seed = 5;
  std::vector<thaw::EpochResult> history;
  Check(model->Fit(train.examples(), fit, &history));
  Row row;
  row.name = name;
  thaw::Metrics metrics;
  Check(model->Evaluate(test.examples(), kBatch, &metrics));
  row.accuracy = metrics.accuracy;
  // The plan of the steps Fit ran: shuffled batches are copied into the arena.
  thaw::PlanOptions step;
  step.batch = kBatch;
  step.gather = true;
  thaw::ModelPlan plan;
  Check(model->PlanMemory(step, &plan));
  row.memory = plan.bytes;
  double step_seconds = 0;
  size_t steps = 0;
  for (const auto& e : history) {
    step_seconds += e.step_seconds;
    steps += e.steps;
  }
  row.ms_per_step = steps ? 1e3 * step_seconds / steps : 0;
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("  %-34s test accuracy %.4f after %d epochs (%.1f s)\n", name, row.accuracy,
              epochs, row.seconds);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  const auto demo_start = std::chrono::steady_clock::now();
  const std::string dir = argc > 1 ? argv[1] : thaw::kFashionMnistDir;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  thaw::ThreadPool pool(threads);
  std::printf("thaw Fashion-MNIST transfer demo: kernels on %s (CPU: %s), %d thread(s)\n",
              thaw::simd::DispatchedTargetName(), thaw::simd::SupportedTargetNames().c_str(),
              pool.num_threads());

  thaw::Dataset train_all, test_all;
  Check(thaw::LoadIdxDataset(dir, "train", &train_all));
  Check(thaw::LoadIdxDataset(dir, "t10k", &test_all));
  const Split lab_train = Classes(train_all, 0, 4, 0);
  const Split lab_test = Classes(test_all, 0, 4, 0);
  const Split device_train = Classes(train_all, 5, 9, kShotsPerClass);
  const Split device_test = Classes(test_all, 5, 9, 0);

  // ---- 1. In the lab: pretrain on classes 0-4 and save. ----
  const std::string checkpoint =
      (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : std::string("/tmp")) +
      "/thaw_fashion_backbone.safetensors";
  {
    thaw::Arena lab_arena;
    Check(thaw::Arena::Create(8 << 20, &lab_arena));
    thaw::Sequential lab(pool);
    BuildModel(&lab, &lab_arena, "dense_2", /*seed=*/1);
    Compile(&lab, 1e-3f);
    std::printf("\n1. pretraining on classes 0-4 (%zu images)\n", lab_train.data.count);
    thaw::ProgressBar progress(thaw::ProgressBar::Style::kEpochLines);
    thaw::FitOptions fit;
    fit.epochs = 3;
    fit.batch_size = kBatch;
    fit.seed = 1;
    fit.validation = nullptr;
    fit.callback = &progress;
    Check(lab.Fit(lab_train.examples(), fit));
    thaw::Metrics m;
    Check(lab.Evaluate(lab_test.examples(), kBatch, &m));
    std::printf("  test accuracy on classes 0-4: %.4f\n", m.accuracy);
    Check(thaw::SaveCheckpoint(lab.variables(), checkpoint));
    std::printf("  saved %s\n", checkpoint.c_str());
  }

  // ---- 2. On the device: one fixed arena, 100 images per new class. ----
  std::printf("\n2. on the device: classes 5-9, %zu labelled images, %zu test images\n",
              device_train.data.count, device_test.data.count);
  constexpr size_t kDeviceArena = 6 << 20;
  std::vector<Row> rows;
  {
    thaw::Arena arena;
    Check(thaw::Arena::Create(kDeviceArena, &arena));
    thaw::Sequential scratch(pool);
    BuildModel(&scratch, &arena, "head", /*seed=*/2);
    Compile(&scratch, 1e-3f);
    rows.push_back(Train("(a) from scratch, all trainable", &scratch, device_train,
                         device_test, 20));
  }
  thaw::Arena arena;
  Check(thaw::Arena::Create(kDeviceArena, &arena));
  thaw::Sequential model(pool);
  BuildModel(&model, &arena, "head", /*seed=*/2);
  thaw::LoadOptions load;
  load.strict = false;  // the checkpoint's old head (dense_2.*) is not loaded
  Check(thaw::LoadCheckpoint(checkpoint, &model.variables(), load));
  model.layer(0).SetTrainable(false);
  model.layer(1).SetTrainable(false);
  Compile(&model, kHeadRate);
  rows.push_back(Train("(b) backbone frozen, new head", &model, device_train,
                       device_test, 20));
  model.layer(0).SetTrainable(true);
  model.layer(1).SetTrainable(true);
  // A smaller learning rate for fine-tuning; the head's Adam state carries on.
  Check(model.SetLearningRate(kFineTuneRate));
  rows.push_back(Train("(c) then all thawed, smaller lr", &model, device_train,
                       device_test, 10));

  // ---- 3. The table. ----
  std::printf("\n3. results (arena %zu bytes; plan of one step of %zu examples)\n",
              kDeviceArena, kBatch);
  std::printf("%-34s %9s %10s %10s %10s %11s %9s %9s\n", "", "accuracy", "weights",
              "gradients", "opt.state", "activations", "scratch", "ms/step");
  for (const Row& r : rows) {
    std::printf("%-34s %9.4f %10zu %10zu %10zu %11zu %9zu %9.3f\n", r.name.c_str(),
                r.accuracy, r.memory[thaw::Region::kWeights],
                r.memory[thaw::Region::kGradients], r.memory[thaw::Region::kOptimizerState],
                r.memory[thaw::Region::kActivations], r.memory[thaw::Region::kScratch],
                r.ms_per_step);
  }
  std::printf("arena high-water mark: %zu bytes of %zu\n", arena.high_water(), kDeviceArena);
  std::printf(
      "\nWith the backbone frozen, a step keeps %.1f%% of the gradient and optimizer bytes\n"
      "and %.1f%% of the saved activations of a full step. Whether the transferred\n"
      "features beat training from scratch depends on how close the tasks are: shoes\n"
      "and bags share less with tops and trousers than one might hope.\n",
      100.0 * (rows[1].memory[thaw::Region::kGradients] + rows[1].memory[thaw::Region::kOptimizerState]) /
          (rows[0].memory[thaw::Region::kGradients] + rows[0].memory[thaw::Region::kOptimizerState]),
      100.0 * rows[1].memory[thaw::Region::kActivations] / rows[0].memory[thaw::Region::kActivations]);
  std::printf("total time: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - demo_start).count());
  return 0;
}
