// thaw/tests/fuzz/fuzz_training_state.cc — LoadTrainingState on arbitrary
// files.
//
// Each input is written as a file and loaded into a small compiled model
// (dense, BatchNorm, dense; Adam; the first layer frozen). What must hold,
// beyond "no crash and no undefined behaviour" (ASan and UBSan):
//  - a failed load returns a message naming the file and has changed nothing:
//    no value, optimizer slot, step count, trainable flag, learning rate or
//    model step count (training_state.h: all or nothing);
//  - after a successful load, SaveTrainingState writes the state and loading
//    that file gives back the same bits and the same position.
// Seeds: THAW_FUZZ_WRITE_SEEDS=<dir> fuzz_training_state writes valid states
// of this model (after 0, 1 and 5 steps) into <dir> and exits; the committed
// ones in corpus/fuzz_training_state/ were made so.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/api/model.h"
#include "core/io/training_state.h"
#include "core/memory/arena.h"
#include "core/ops/batch_norm.h"
#include "core/ops/dense.h"
#include "tests/fuzz/fuzz_util.h"

namespace thaw {
namespace {

struct Net {
  Net() {
    THAW_CHECK(Arena::Create(1 << 18, &arena).ok());
    THAW_CHECK(model.Add(Dense::Make(4)).ok());
    THAW_CHECK(model.Add(BatchNormalization::Make()).ok());
    THAW_CHECK(model.Add(Dense::Make(3)).ok());
    THAW_CHECK(model.Build(5, 4, &arena, 1).ok());
    model.layer(0).SetTrainable(false);
    THAW_CHECK(model.Compile(OptimizerConfig::Adam(AdamOptions()),
                             Loss::kSparseCategoricalCrossentropyFromLogits)
                   .ok());
    // Lays out the optimizer state.
    THAW_CHECK(model.variables().Prepare().ok());
  }
  // Trains `steps` steps on a fixed batch.
  void Train(int steps) {
    const float x[20] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f, 0.9f, 1.0f,
                         -1.1f, 1.2f, 1.3f, -1.4f, 1.5f, 1.6f, 1.7f, -1.8f, 1.9f, 2.0f};
    const int32_t labels[4] = {0, 1, 2, 1};
    for (int s = 0; s < steps; ++s) {
      THAW_CHECK(model.TrainOnBatch(Examples{x, 4, labels, nullptr, 5}).ok());
    }
  }
  Arena arena;  // declared first: the model's variables live in it
  Sequential model;
};

// Everything a load may change, as bytes.
std::vector<unsigned char> State(Model& model) {
  std::vector<unsigned char> bytes;
  auto add = [&](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    bytes.insert(bytes.end(), b, b + n);
  };
  VariableSet& vars = model.variables();
  for (int i = 0; i < vars.size(); ++i) {
    const size_t n = vars.shape(i).num_elements() * sizeof(float);
    add(vars.value_data(i), n);
    const bool trainable = vars.trainable(i), planned = vars.planned_trainable(i);
    add(&trainable, 1);
    add(&planned, 1);
    if (!planned) continue;
    for (int s = 0; s < vars.optimizer_slots(); ++s) add(vars.slot_data(i, s), n);
    add(&vars.steps(i), sizeof(uint64_t));
  }
  const float rate = model.optimizer()->learning_rate();
  const uint64_t steps = model.step_count();
  add(&rate, sizeof(rate));
  add(&steps, sizeof(steps));
  return bytes;
}

void WriteSeeds(const char* dir) {
  for (int steps : {0, 1, 5}) {
    Net net;
    net.Train(steps);
    FitPosition position;
    position.epoch = steps;
    position.step = 1;
    position.loss_sum = 0.5 * steps;
    const std::string path = std::string(dir) + "/after_" + std::to_string(steps) + ".state";
    THAW_CHECK(SaveTrainingState(net.model, position, path).ok());
  }
}

}  // namespace
}  // namespace thaw

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("THAW_FUZZ_WRITE_SEEDS")) {
    thaw::WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static thaw::Net net;  // built once; every load starts from the state it leaves
  const std::string path = thaw::fuzz::WriteInput("input.state", data, size);
  const std::vector<unsigned char> before = thaw::State(net.model);
  thaw::FitPosition position;
  const thaw::Status loaded = thaw::LoadTrainingState(path, &net.model, &position);
  if (!loaded.ok()) {
    THAW_FUZZ_CHECK(std::strstr(loaded.message(), path.c_str()) != nullptr,
                    "the message does not name the file: " + loaded.ToString());
    THAW_FUZZ_CHECK(thaw::State(net.model) == before,
                    "a failed load changed the model: " + loaded.ToString());
    return 0;
  }
  const std::vector<unsigned char> after = thaw::State(net.model);
  const std::string saved = thaw::fuzz::ScratchPath("saved.state");
  const thaw::Status save = thaw::SaveTrainingState(net.model, position, saved);
  THAW_FUZZ_CHECK(save.ok(), "saving what was loaded failed: " + save.ToString());
  thaw::FitPosition again;
  const thaw::Status reloaded = thaw::LoadTrainingState(saved, &net.model, &again);
  THAW_FUZZ_CHECK(reloaded.ok(), "reloading the saved state failed: " + reloaded.ToString());
  THAW_FUZZ_CHECK(thaw::State(net.model) == after, "load, save, load is not the identity");
  THAW_FUZZ_CHECK(again.epoch == position.epoch && again.step == position.step &&
                      std::memcmp(&again.loss_sum, &position.loss_sum, sizeof(double)) == 0 &&
                      std::memcmp(&again.correct_sum, &position.correct_sum, sizeof(double)) == 0,
                  "the position changed on the way");
  return 0;
}
