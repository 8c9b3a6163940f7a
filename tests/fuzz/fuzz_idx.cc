// thaw/tests/fuzz/fuzz_idx.cc — LoadIdxImages and LoadIdxLabels on arbitrary
// files.
//
// Each input is loaded as an image file and as a label file, once as it is
// and once gzip-compressed (the loaders read both kinds through zlib). What
// must hold, beyond "no crash and no undefined behaviour" (ASan and UBSan):
//  - a failure has a message naming the file and leaves the outputs as they
//    were (dataset.h);
//  - a success agrees with the bytes: the header's count, rows and cols
//    (rows, cols >= 1), exactly that many data bytes after the header and
//    nothing more, each image value byte / 255.0f and each label its byte;
//  - the gzip copy gives the same Status code and the same outputs.
// The last two assume the input is read as plain bytes, i.e. does not itself
// start with gzip's magic 1f 8b; such an input is only loaded as it is (and
// so reaches zlib's inflate with arbitrary data).

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/io/dataset.h"
#include "tests/fuzz/fuzz_util.h"

namespace thaw {
namespace {

// What the outputs hold before a load, to see that a failed one left them.
constexpr size_t kUntouched = 12345;

struct Images {
  Status status;
  std::vector<float> values{-1.0f};
  size_t count = kUntouched, rows = kUntouched, cols = kUntouched;
  bool untouched() const {
    return values.size() == 1 && values[0] == -1.0f && count == kUntouched && rows == kUntouched &&
           cols == kUntouched;
  }
};

struct Labels {
  Status status;
  std::vector<uint8_t> values{7};
  size_t count = kUntouched;
  bool untouched() const { return values.size() == 1 && values[0] == 7 && count == kUntouched; }
};

void CheckFailure(const Status& status, bool untouched, const std::string& path) {
  if (status.ok()) return;
  THAW_FUZZ_CHECK(std::strstr(status.message(), path.c_str()) != nullptr,
                  "the message does not name the file: " + status.ToString());
  THAW_FUZZ_CHECK(untouched, "a failed load changed its outputs: " + status.ToString());
}

Images LoadImages(const std::string& path) {
  Images out;
  out.status = LoadIdxImages(path, &out.values, &out.count, &out.rows, &out.cols);
  CheckFailure(out.status, out.untouched(), path);
  return out;
}

Labels LoadLabels(const std::string& path) {
  Labels out;
  out.status = LoadIdxLabels(path, &out.values, &out.count);
  CheckFailure(out.status, out.untouched(), path);
  return out;
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// A successful load of the plain bytes `data` against the bytes themselves.
void CheckImages(const Images& images, const uint8_t* data, size_t size) {
  if (!images.status.ok()) return;
  THAW_FUZZ_CHECK(size >= 16 && BigEndian32(data) == 0x803 &&
                      BigEndian32(data + 4) == images.count &&
                      BigEndian32(data + 8) == images.rows && BigEndian32(data + 12) == images.cols,
                  "an image file loaded, but its header is not what the outputs say");
  THAW_FUZZ_CHECK(images.rows >= 1 && images.cols >= 1, "an image file of empty images loaded");
  size_t pixels = 0;
  const bool fits = !__builtin_mul_overflow(images.count, images.rows, &pixels) &&
                    !__builtin_mul_overflow(pixels, images.cols, &pixels);
  THAW_FUZZ_CHECK(fits && images.values.size() == pixels && size - 16 == pixels,
                  "an image file loaded with " + std::to_string(images.values.size()) +
                      " values from " + std::to_string(size - 16) +
                      " data bytes; its header announces " + std::to_string(pixels));
  for (size_t i = 0; i < pixels; ++i) {
    THAW_FUZZ_CHECK(images.values[i] == static_cast<float>(data[16 + i]) / 255.0f,
                    "pixel " + std::to_string(i) + " is not its byte / 255");
  }
}

void CheckLabels(const Labels& labels, const uint8_t* data, size_t size) {
  if (!labels.status.ok()) return;
  THAW_FUZZ_CHECK(size >= 8 && BigEndian32(data) == 0x801 && BigEndian32(data + 4) == labels.count,
                  "a label file loaded, but its header is not what the outputs say");
  THAW_FUZZ_CHECK(labels.values.size() == labels.count && size - 8 == labels.count &&
                      std::equal(labels.values.begin(), labels.values.end(), data + 8),
                  "a label file loaded, but the labels are not the bytes after the header");
}

// Writes `data` gzip-compressed (fastest level) as ScratchPath(name).
std::string WriteGzip(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = fuzz::ScratchPath(name);
  gzFile file = gzopen(path.c_str(), "wb1");
  const bool written =
      file != nullptr &&
      (size == 0 || gzwrite(file, data, static_cast<unsigned>(size)) == static_cast<int>(size));
  const bool closed = file != nullptr && gzclose(file) == Z_OK;
  THAW_FUZZ_CHECK(written && closed, path + ": zlib could not write the gzip copy");
  return path;
}

}  // namespace
}  // namespace thaw

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace thaw;
  const std::string plain = fuzz::WriteInput("input.idx", data, size);
  const Images images = LoadImages(plain);
  const Labels labels = LoadLabels(plain);
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return 0;  // read as gzip: see above
  CheckImages(images, data, size);
  CheckLabels(labels, data, size);

  const std::string gzip = WriteGzip("input.idx.gz", data, size);
  const Images gz_images = LoadImages(gzip);
  const Labels gz_labels = LoadLabels(gzip);
  THAW_FUZZ_CHECK(
      gz_images.status.code() == images.status.code() && gz_images.values == images.values &&
          gz_images.count == images.count && gz_images.rows == images.rows &&
          gz_images.cols == images.cols,
      "images: plain " + images.status.ToString() + ", gzip " + gz_images.status.ToString());
  THAW_FUZZ_CHECK(
      gz_labels.status.code() == labels.status.code() && gz_labels.values == labels.values &&
          gz_labels.count == labels.count,
      "labels: plain " + labels.status.ToString() + ", gzip " + gz_labels.status.ToString());
  return 0;
}
