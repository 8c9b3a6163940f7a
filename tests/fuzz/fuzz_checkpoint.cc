// thaw/tests/fuzz/fuzz_checkpoint.cc — LoadCheckpoint on arbitrary files.
//
// Each input is written as a file and loaded four times, strict or not, with
// or without allow_non_finite, into a small CNN whose variables take every
// path a load can: plain F32 tensors, kernels stored in PyTorch's layout and
// permuted into thaw's (conv2d, depthwise), and BatchNorm's
// num_batches_tracked (I64 or F32 in the file). What must hold, beyond "no
// crash and no undefined behaviour" (the build has ASan and UBSan):
//  - a failed load returns a message naming the file, and has changed no
//    variable byte and no trainable flag (checkpoint.h: all or nothing);
//  - after any successful load, SaveCheckpoint writes the variables and a
//    strict load of that file gives back the same bits. (Checked after
//    non-strict loads too: then a small file that holds one tensor, such as
//    corpus/fuzz_checkpoint/count_only.safetensors, reaches the save, and
//    mutations land in its data far more often than in a whole model's.)
//  - the same bytes loaded from memory (LoadCheckpointFromMemory) give the
//    same result, the same message after the source's name, and the same
//    values;
//  - after a successful load, SaveCheckpointToMemory writes the bytes
//    SaveCheckpoint wrote, and a trainable-only save loaded back with
//    trainable_only restores the trainable variables and leaves the frozen
//    one alone.
// The seeds (corpus/fuzz_checkpoint/) come from make_corpus.py, which knows
// this model's names and shapes; change the two together.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/api/model.h"
#include "core/io/checkpoint.h"
#include "core/io/checkpoint_memory.h"
#include "core/memory/arena.h"
#include "core/ops/batch_norm.h"
#include "core/ops/conv.h"
#include "core/ops/dense.h"
#include "core/ops/pool.h"
#include "core/vars/variables.h"
#include "tests/fuzz/fuzz_util.h"

namespace thaw {
namespace {

// conv2d_0 (no bias) -> batch_normalization_0 -> depthwise_conv2d_0 ->
// global_average_pooling2d_0 -> dense_0, on 4 x 4 x 2 images: 10 variables
// (the last one frozen), 105 values.
struct Net {
  Net() {
    THAW_CHECK(Arena::Create(1 << 18, &arena).ok());
    THAW_CHECK(model.Add(Conv2D::Make(3, 3, 1, Padding::kSame, Activation::kLinear, false)).ok());
    THAW_CHECK(model.Add(BatchNormalization::Make(0.5f, 1e-3f)).ok());
    THAW_CHECK(model.Add(DepthwiseConv2D::Make(3, 1, Padding::kSame)).ok());
    THAW_CHECK(model.Add(GlobalAveragePooling2D::Make()).ok());
    THAW_CHECK(model.Add(Dense::Make(2)).ok());
    THAW_CHECK(model.Build(Shape{4, 4, 2}, Layout::kNHWC, /*max_batch=*/1, &arena).ok());
    // A frozen parameter too, so that a load can be seen to leave flags alone.
    THAW_CHECK(model.variables().Find("dense_0.bias").set_trainable(false).ok());
  }
  Arena arena;  // declared first: the model's variables live in it
  Sequential model;
};

// Every variable's value bytes and trainable flag.
struct Snapshot {
  explicit Snapshot(const VariableSet& vars) {
    for (int i = 0; i < vars.size(); ++i) {
      const auto* bytes = reinterpret_cast<const unsigned char*>(vars.value_data(i));
      values.emplace_back(bytes, bytes + vars.shape(i).num_elements() * sizeof(float));
      trainable.push_back(vars.trainable(i));
    }
  }
  // "" when equal, else the first variable that differs.
  std::string Difference(const Snapshot& other, const VariableSet& vars) const {
    for (int i = 0; i < vars.size(); ++i) {
      if (values[i] != other.values[i]) return vars.name(i) + ": the values differ";
      if (trainable[i] != other.trainable[i]) return vars.name(i) + ": the trainable flag differs";
    }
    return "";
  }
  std::vector<std::vector<unsigned char>> values;
  std::vector<bool> trainable;
};

// The same values before every load (whole numbers, as a count must be), so
// that an input reproduces a failure on its own.
void Reset(VariableSet& vars) {
  for (int i = 0; i < vars.size(); ++i) {
    const TensorView value = vars[i].value();
    for (size_t k = 0; k < value.num_elements(); ++k) {
      value.data()[k] = static_cast<float>((i * 31 + static_cast<int>(k)) % 17);
    }
  }
}

// The message after "<source>: ".
std::string AfterSource(const Status& s, const std::string& source) {
  const std::string message = s.message();
  return message.rfind(source + ": ", 0) == 0 ? message.substr(source.size() + 2) : message;
}

std::vector<unsigned char> SaveToMemory(const VariableSet& vars, const SaveOptions& options,
                                        const std::string& mode) {
  size_t size = 0;
  const Status sized = CheckpointSize(vars, &size, options);
  THAW_FUZZ_CHECK(sized.ok(), mode + "CheckpointSize failed: " + sized.ToString());
  std::vector<unsigned char> bytes(size);
  size_t written = 0;
  const Status saved = SaveCheckpointToMemory(vars, bytes, &written, options);
  THAW_FUZZ_CHECK(saved.ok() && written == size,
                  mode + "SaveCheckpointToMemory failed or wrote another size: " + saved.ToString());
  return bytes;
}

void LoadAndCheck(const std::string& path, const std::vector<unsigned char>& input,
                  const LoadOptions& options, VariableSet& vars) {
  const std::string mode = std::string(options.strict ? "strict" : "non-strict") +
                           (options.allow_non_finite ? ", allow_non_finite: " : ": ");
  Reset(vars);
  const Snapshot before(vars);
  const Status from_memory = LoadCheckpointFromMemory(input, &vars, options);
  const Snapshot after_memory(vars);
  Reset(vars);
  const Status loaded = LoadCheckpoint(path, &vars, options);
  THAW_FUZZ_CHECK(from_memory.code() == loaded.code() &&
                      AfterSource(from_memory, "checkpoint in memory") ==
                          AfterSource(loaded, path),
                  mode + "the file and the same bytes in memory load differently: " +
                      loaded.ToString() + " | " + from_memory.ToString());
  const std::string memory_differs = after_memory.Difference(Snapshot(vars), vars);
  THAW_FUZZ_CHECK(memory_differs.empty(),
                  mode + "the file and the same bytes in memory load other values: " +
                      memory_differs);
  if (!loaded.ok()) {
    THAW_FUZZ_CHECK(std::strstr(loaded.message(), path.c_str()) != nullptr,
                    mode + "the message does not name the file: " + loaded.ToString());
    const std::string changed = before.Difference(Snapshot(vars), vars);
    THAW_FUZZ_CHECK(changed.empty(),
                    mode + "a failed load changed " + changed + " (" + loaded.ToString() + ")");
    return;
  }

  const Snapshot after_load(vars);
  const std::string saved = fuzz::ScratchPath("saved.safetensors");
  const Status save = SaveCheckpoint(vars, saved);
  THAW_FUZZ_CHECK(save.ok(), mode + "saving what was loaded failed: " + save.ToString());
  Reset(vars);
  LoadOptions all = options;  // the saved file holds every variable
  all.strict = true;
  const Status reloaded = LoadCheckpoint(saved, &vars, all);
  THAW_FUZZ_CHECK(reloaded.ok(), mode + "reloading the saved file failed: " + reloaded.ToString());
  const std::string changed = after_load.Difference(Snapshot(vars), vars);
  THAW_FUZZ_CHECK(changed.empty(), mode + "load, save, load is not the identity: " + changed);

  // In memory: the bytes of the file, and a trainable-only round trip.
  THAW_FUZZ_CHECK(SaveToMemory(vars, SaveOptions(), mode) == fuzz::ReadFile(saved),
                  mode + "SaveCheckpointToMemory and SaveCheckpoint wrote different bytes");
  SaveOptions trainable;
  trainable.trainable_only = true;
  const std::vector<unsigned char> head = SaveToMemory(vars, trainable, mode);
  Reset(vars);
  const Snapshot reset(vars);
  LoadOptions only = all;
  only.trainable_only = true;
  const Status restored = LoadCheckpointFromMemory(head, &vars, only);
  THAW_FUZZ_CHECK(restored.ok(), mode + "a trainable-only round trip failed: " + restored.ToString());
  const Snapshot now(vars);
  for (int i = 0; i < vars.size(); ++i) {
    const auto& want = vars.trainable(i) ? after_load.values[i] : reset.values[i];
    THAW_FUZZ_CHECK(now.values[i] == want,
                    mode + vars.name(i) + ": a trainable-only round trip " +
                        (vars.trainable(i) ? "lost its values" : "changed a frozen variable"));
  }
}

}  // namespace
}  // namespace thaw

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static thaw::Net net;  // built once
  const std::string path = thaw::fuzz::WriteInput("input.safetensors", data, size);
  const std::vector<unsigned char> input(data, data + size);
  for (const bool strict : {true, false}) {
    for (const bool allow_non_finite : {false, true}) {
      thaw::LoadOptions options;
      options.strict = strict;
      options.allow_non_finite = allow_non_finite;
      thaw::LoadAndCheck(path, input, options, net.model.variables());
    }
  }
  return 0;
}
