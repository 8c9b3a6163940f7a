// Fashion-MNIST transfer learning with a MobileNet-style CNN — the second
// main demo, the first one's story told with convolutions and BatchNorm.
//
//  1. In the lab: pretrain on classes 0-4 (t-shirt, trouser, pullover, dress,
//     coat) and save a safetensors checkpoint (PyTorch's names and layouts).
//     The network (examples/mobilenet_style.h), on 28 x 28 x 1 images: a
//     stride-2 stem, two depthwise-separable blocks, an inverted residual
//     block (b3), global average pooling, the head; BatchNorm after every
//     convolution.
//  2. On the device: classes 5-9 (sandal, shirt, sneaker, bag, ankle boot),
//     100 labelled images each, one fixed arena:
//       (a) from scratch on the 500 images, for comparison;
//       (b) the pretrained backbone frozen, a new head: the BatchNorms run in
//           inference mode (Keras' rule), folded into their convolutions,
//           and the backbone keeps nothing for a backward pass it never runs;
//       (c) then the last block (b3) thawed with a smaller learning rate:
//           its BatchNorms train again (batch statistics, moving averages).
//  3. Print test accuracy on classes 5-9, the arena's bytes by region, and
//     time per step.
//
// Usage: fashion_mnist_cnn_transfer [dataset_dir] [threads]
// The data comes from the Debian package dataset-fashion-mnist.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "examples/mobilenet_style.h"
#include "examples/transfer_demo.h"

namespace {

constexpr size_t kBatch = 32;
constexpr size_t kShotsPerClass = 100;
constexpr float kHeadRate = 1e-2f;
constexpr float kFineTuneRate = 1e-3f;

void BuildModel(thaw::Model* m, thaw::Arena* arena, const char* head, uint64_t seed) {
  demo::Check(m->Build(demo::MobileNetStyle(*m, 5, thaw::Activation::kSoftmax, head), kBatch,
                       arena, seed));
}

}  // namespace

int main(int argc, char** argv) {
  const auto demo_start = std::chrono::steady_clock::now();
  const std::string dir = argc > 1 ? argv[1] : thaw::kFashionMnistDir;
  thaw::ThreadPool pool(argc > 2 ? std::atoi(argv[2]) : 0);
  demo::PrintBanner("Fashion-MNIST CNN transfer demo", pool);
  const demo::Splits data = demo::LoadSplits(dir, kShotsPerClass);

  // ---- 1. In the lab: pretrain on classes 0-4 and save. ----
  const std::string checkpoint = demo::CheckpointPath("thaw_fashion_cnn_backbone.safetensors");
  {
    thaw::Arena lab_arena;
    demo::Check(thaw::Arena::Create(16 << 20, &lab_arena));
    thaw::Model lab(pool);
    BuildModel(&lab, &lab_arena, "lab_head", /*seed=*/1);
    demo::CompileAdam(&lab, 2e-3f);
    demo::Pretrain(&lab, data, 2, kBatch, checkpoint);
  }

  // ---- 2. On the device: one fixed arena, 100 images per new class. ----
  constexpr size_t kDeviceArena = 12 << 20;
  std::vector<demo::Row> rows;
  {
    thaw::Arena arena;
    demo::Check(thaw::Arena::Create(kDeviceArena, &arena));
    thaw::Model scratch(pool);
    BuildModel(&scratch, &arena, "head", /*seed=*/2);
    demo::CompileAdam(&scratch, 2e-3f);
    rows.push_back(demo::Train("(a) from scratch, all trainable", &scratch, data.device_train,
                               data.device_test, 20, kBatch));
  }
  thaw::Arena arena;
  demo::Check(thaw::Arena::Create(kDeviceArena, &arena));
  thaw::Model model(pool);
  BuildModel(&model, &arena, "head", /*seed=*/2);
  thaw::LoadOptions load;
  load.strict = false;  // the checkpoint's old head (lab_head.*) is not loaded
  demo::Check(thaw::LoadCheckpoint(checkpoint, &model.variables(), load));
  demo::TrainOnly(&model, {"head"});
  demo::CompileAdam(&model, kHeadRate);
  rows.push_back(demo::Train("(b) backbone frozen, new head", &model, data.device_train,
                               data.device_test, 20, kBatch));
  demo::TrainOnly(&model, {"head", "b3_"});
  // A smaller learning rate for fine-tuning; the head's Adam state carries on.
  demo::Check(model.SetLearningRate(kFineTuneRate));
  rows.push_back(demo::Train("(c) then the last block thawed", &model, data.device_train,
                               data.device_test, 10, kBatch));

  // ---- 3. The table. ----
  demo::PrintTable(rows, kDeviceArena, kBatch, arena);
  std::printf("\n");
  demo::PrintSavings("With the backbone frozen", rows[1], rows[0]);
  demo::PrintSavings("With the last block thawed", rows[2], rows[0]);
  std::printf("total time: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - demo_start).count());
  return 0;
}
