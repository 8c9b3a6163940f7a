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

#include "examples/transfer_demo.h"

namespace {

constexpr size_t kBatch = 32;
constexpr size_t kShotsPerClass = 100;
// Adam learning rates, chosen on this demo's data (head 3e-3/1e-2 and
// fine-tuning 1e-4/3e-4 were tried; these were best).
constexpr float kHeadRate = 1e-2f;
constexpr float kFineTuneRate = 3e-4f;

using demo::Check;

// The MLP. The backbone layers are named as in the checkpoint; the head is
// named by the caller, so that a new head does not load the old one.
void BuildModel(thaw::Sequential* model, thaw::Arena* arena, const char* head, uint64_t seed) {
  Check(model->Add(thaw::Dense::Make(256, thaw::Activation::kRelu), "dense_0"));
  Check(model->Add(thaw::Dense::Make(128, thaw::Activation::kRelu), "dense_1"));
  Check(model->Add(thaw::Dense::Make(5, thaw::Activation::kSoftmax), head));
  Check(model->Build(784, kBatch, arena, seed));
}

}  // namespace

int main(int argc, char** argv) {
  const auto demo_start = std::chrono::steady_clock::now();
  const std::string dir = argc > 1 ? argv[1] : thaw::kFashionMnistDir;
  thaw::ThreadPool pool(argc > 2 ? std::atoi(argv[2]) : 0);
  demo::PrintBanner("Fashion-MNIST transfer demo", pool);
  const demo::Splits data = demo::LoadSplits(dir, kShotsPerClass);

  // ---- 1. In the lab: pretrain on classes 0-4 and save. ----
  const std::string checkpoint = demo::CheckpointPath("thaw_fashion_backbone.safetensors");
  {
    thaw::Arena lab_arena;
    Check(thaw::Arena::Create(8 << 20, &lab_arena));
    thaw::Sequential lab(pool);
    BuildModel(&lab, &lab_arena, "dense_2", /*seed=*/1);
    demo::CompileAdam(&lab, 1e-3f);
    demo::Pretrain(&lab, data, 3, kBatch, checkpoint);
  }

  // ---- 2. On the device: one fixed arena, 100 images per new class. ----
  constexpr size_t kDeviceArena = 6 << 20;
  std::vector<demo::Row> rows;
  {
    thaw::Arena arena;
    Check(thaw::Arena::Create(kDeviceArena, &arena));
    thaw::Sequential scratch(pool);
    BuildModel(&scratch, &arena, "head", /*seed=*/2);
    demo::CompileAdam(&scratch, 1e-3f);
    rows.push_back(demo::Train("(a) from scratch, all trainable", &scratch, data.device_train,
                             data.device_test, 20, kBatch));
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
  demo::CompileAdam(&model, kHeadRate);
  rows.push_back(demo::Train("(b) backbone frozen, new head", &model, data.device_train,
                             data.device_test, 20, kBatch));
  model.layer(0).SetTrainable(true);
  model.layer(1).SetTrainable(true);
  // A smaller learning rate for fine-tuning; the head's Adam state carries on.
  Check(model.SetLearningRate(kFineTuneRate));
  rows.push_back(demo::Train("(c) then all thawed, smaller lr", &model, data.device_train,
                             data.device_test, 10, kBatch));

  // ---- 3. The table. ----
  demo::PrintTable(rows, kDeviceArena, kBatch, arena);
  std::printf("\n");
  demo::PrintSavings("With the backbone frozen", rows[1], rows[0]);
  std::printf(
      "Whether the transferred features beat training from scratch depends on how close\n"
      "the tasks are: shoes and bags share less with tops and trousers than one might hope.\n");
  std::printf("total time: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - demo_start).count());
  return 0;
}
