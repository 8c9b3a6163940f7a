// Loads Fashion-MNIST and describes it: how many images, how big, how many
// of each class, and how long loading took.
//
// The data comes with the Debian package dataset-fashion-mnist:
//   apt-get install dataset-fashion-mnist
//   build/release/examples/dataset_info
// A different directory holding the same four IDX files can be given:
//   dataset_info /path/to/fashion-mnist
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "core/io/dataset.h"
#include "core/thaw.h"

namespace {

// Examples stop at the first error and print thaw's sentence about it.
void Check(const thaw::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
  std::exit(1);
}

const char* const kClassNames[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

void Describe(const char* split, const thaw::Dataset& data, double seconds) {
  std::printf("%s: %zu images of %zu x %zu pixels (%zu floats each), ", split,
              data.count, data.rows, data.cols, data.features());
  std::printf("loaded in %.2f s\n", seconds);
  size_t per_class[256] = {};
  for (uint8_t label : data.labels) ++per_class[label];
  for (int c = 0; c < 256; ++c) {
    if (per_class[c] == 0) continue;
    std::printf("  class %d %-12s %zu\n", c, c < 10 ? kClassNames[c] : "",
                per_class[c]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* dir = argc > 1 ? argv[1] : thaw::kFashionMnistDir;
  for (const char* split : {"train", "t10k"}) {
    const auto start = std::chrono::steady_clock::now();
    thaw::Dataset data;
    Check(thaw::LoadIdxDataset(dir, split, &data));
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - start;
    Describe(split, data, took.count());
  }
  return 0;
}
