// thaw/core/io/dataset.h — IDX datasets (MNIST, Fashion-MNIST), gzip or plain.
//
//   thaw::Dataset train;
//   THAW_RETURN_IF_ERROR(
//       thaw::LoadIdxDataset(thaw::kFashionMnistDir, "train", &train));
//   // train.count == 60000, train.rows == train.cols == 28
//   const float* first = train.image(0);  // 784 floats in [0, 1]
//   uint8_t label = train.labels[0];      // 0..9
//
//   thaw::Dataset last_five;  // classes 5..9, relabelled 0..4, 100 of each
//   THAW_RETURN_IF_ERROR(thaw::FilterClasses(train, 5, 9, 100, &last_five));
//
// The IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian header,
// then the data. The header is the magic number 0x0000 TT RR (TT = element
// type, 0x08 for unsigned bytes; RR = number of dimensions), then one uint32
// per dimension. Images are 0x00000803 [count, rows, cols], labels 0x00000801
// [count]. Files are read through zlib, so both .gz files and plain files work.
//
// Errors, as Status codes: a missing file is kNotFound (the message says how to
// install Fashion-MNIST); an IDX file of the wrong kind (a label file given as
// images, an element type other than unsigned byte) is kInvalidArgument; a file
// whose bytes are wrong (not IDX at all, a corrupt or truncated gzip stream,
// fewer or more data bytes than the header announces, dimensions beyond the
// 2 GiB limit below) is kDataLoss; a failing read is kIoError. On any error
// the outputs are left untouched.
//
// Loading allocates (the result lives on the heap, not in an Arena): do it
// before training, not inside a step. Peak memory is the float result plus
// the raw bytes, 5 bytes per pixel. Not thread-safe on the same outputs;
// loads into different outputs may run concurrently.
#ifndef THAW_CORE_IO_DATASET_H_
#define THAW_CORE_IO_DATASET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "platform/status.h"

namespace thaw {

// Where the Debian package dataset-fashion-mnist installs the four files
// {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz.
inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// The largest data section a loader accepts, in bytes (pixels or labels).
// A header announcing more is rejected before anything is allocated.
inline constexpr uint64_t kMaxIdxDataBytes = uint64_t{1} << 31;

// Images and their labels, example i at images[i * features()] and labels[i].
struct Dataset {
  std::vector<float> images;    // [count, rows * cols] row-major, byte / 255.0f
  std::vector<uint8_t> labels;  // [count]
  size_t count = 0;
  size_t rows = 0;
  size_t cols = 0;

  size_t features() const { return rows * cols; }
  // Example i's rows * cols pixels; i < count.
  const float* image(size_t i) const { return images.data() + i * features(); }
};

// Reads an IDX3 unsigned-byte image file (magic 0x00000803). On success,
// *images holds count * rows * cols floats, pixel byte b becoming b / 255.0f
// (so exactly 0 and 1 at the ends). The data section must be exactly
// count * rows * cols bytes long; rows and cols must be at least 1.
Status LoadIdxImages(const std::string& path, std::vector<float>* images,
                     size_t* count, size_t* rows, size_t* cols);

// Reads an IDX1 unsigned-byte label file (magic 0x00000801): `count` bytes.
Status LoadIdxLabels(const std::string& path, std::vector<uint8_t>* labels,
                     size_t* count);

// Loads "<dir>/<split>-images-idx3-ubyte.gz" and
// "<dir>/<split>-labels-idx1-ubyte.gz" (split is "train" or "t10k") and checks
// that they hold as many labels as images. `out` is written only when both
// files load and agree.
Status LoadIdxDataset(const std::string& dir, const std::string& split,
                      Dataset* out);

// Keeps the examples whose label is in [first, last], in file order,
// relabelled to label - first; with per_class > 0, keeps only the first
// per_class examples of each kept class (0 keeps them all). Requires
// 0 <= first <= last <= 255 and a consistent `in` (InvalidArgument otherwise).
// rows and cols carry over. `out` may be `&in`.
Status FilterClasses(const Dataset& in, int first, int last, size_t per_class,
                     Dataset* out);

}  // namespace thaw

#endif  // THAW_CORE_IO_DATASET_H_
