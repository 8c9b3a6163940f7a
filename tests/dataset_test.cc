#include "core/io/dataset.h"

#include <stdlib.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace thaw {
namespace {

using Bytes = std::vector<uint8_t>;

// An IDX header: the magic number, then one big-endian uint32 per dimension.
Bytes IdxHeader(uint32_t magic, std::initializer_list<uint32_t> dims) {
  Bytes out;
  auto put = [&out](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back((v >> shift) & 0xff);
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  return out;
}

Bytes Concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Deterministic bytes that do not compress well, so a .gz of them is mostly
// deflate data (what the corruption tests flip).
Bytes NoiseBytes(size_t n, uint32_t seed) {
  Bytes out(n);
  uint32_t state = seed;
  for (size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    out[i] = static_cast<uint8_t>(state >> 24);
  }
  return out;
}

// The 3 images of 2 x 4 pixels used by most tests: every byte distinct,
// including both ends of the range.
Bytes SmallPixels() {
  Bytes p(24);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 11 + 3);
  p[5] = 0;
  p[17] = 255;
  return p;
}

// Each test gets its own directory: tests run in parallel, and other builds
// of this test may run on the same machine at the same time.
class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "thaw_dataset_test_XXXXXX";
    ASSERT_NE(mkdtemp(&pattern[0]), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Writes `bytes` gzip-compressed (zlib's gzwrite, as gzip(1) would).
  void WriteGz(const std::string& path, const Bytes& bytes) const {
    gzFile file = gzopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr) << path;
    if (!bytes.empty()) {
      ASSERT_EQ(
          gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
          static_cast<int>(bytes.size()));
    }
    ASSERT_EQ(gzclose(file), Z_OK);
  }

  void WritePlain(const std::string& path, const Bytes& bytes) const {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
  }

  Bytes ReadPlain(const std::string& path) const {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
  }

  std::string dir_;
};

// Sentinels: a failing load must leave its outputs exactly like this.
struct ImageOutputs {
  std::vector<float> images{-1.0f};
  size_t count = 77, rows = 78, cols = 79;

  Status Load(const std::string& path) {
    return LoadIdxImages(path, &images, &count, &rows, &cols);
  }
  bool Untouched() const {
    return images.size() == 1 && images[0] == -1.0f && count == 77 &&
           rows == 78 && cols == 79;
  }
};

bool Contains(const Status& s, const std::string& text) {
  return std::string(s.message()).find(text) != std::string::npos;
}

TEST_F(DatasetTest, LoadsGzipImagesAsBytesOver255) {
  const Bytes pixels = SmallPixels();
  WriteGz(Path("images.gz"), Concat(IdxHeader(0x803, {3, 2, 4}), pixels));
  std::vector<float> images;
  size_t count = 0, rows = 0, cols = 0;
  ASSERT_TRUE(
      LoadIdxImages(Path("images.gz"), &images, &count, &rows, &cols).ok());
  EXPECT_EQ(count, 3u);
  EXPECT_EQ(rows, 2u);
  EXPECT_EQ(cols, 4u);
  ASSERT_EQ(images.size(), 24u);
  for (size_t i = 0; i < 24; ++i) {
    EXPECT_EQ(images[i], static_cast<float>(pixels[i]) / 255.0f)
        << "pixel " << i;
  }
  EXPECT_EQ(images[0], 3.0f / 255.0f);
  EXPECT_EQ(images[5], 0.0f);
  EXPECT_EQ(images[17], 1.0f);
}

TEST_F(DatasetTest, LoadsGzipLabels) {
  WriteGz(Path("labels.gz"), Concat(IdxHeader(0x801, {5}), {7, 0, 9, 255, 3}));
  std::vector<uint8_t> labels;
  size_t count = 0;
  ASSERT_TRUE(LoadIdxLabels(Path("labels.gz"), &labels, &count).ok());
  EXPECT_EQ(count, 5u);
  EXPECT_EQ(labels, (Bytes{7, 0, 9, 255, 3}));
}

TEST_F(DatasetTest, AcceptsFilesThatAreNotCompressed) {
  const Bytes pixels = SmallPixels();
  WritePlain(Path("images"), Concat(IdxHeader(0x803, {3, 2, 4}), pixels));
  WritePlain(Path("labels"), Concat(IdxHeader(0x801, {3}), {1, 2, 3}));
  ImageOutputs out;
  ASSERT_TRUE(out.Load(Path("images")).ok());
  EXPECT_EQ(out.count, 3u);
  ASSERT_EQ(out.images.size(), 24u);
  EXPECT_EQ(out.images[1], static_cast<float>(pixels[1]) / 255.0f);
  EXPECT_EQ(out.images[17], 1.0f);
  std::vector<uint8_t> labels;
  size_t count = 0;
  ASSERT_TRUE(LoadIdxLabels(Path("labels"), &labels, &count).ok());
  EXPECT_EQ(labels, (Bytes{1, 2, 3}));
}

TEST_F(DatasetTest, LoadsDataLargerThanOneReadSlice) {
  // 3000 images of 28 x 28 = 2352000 bytes: several 1 MiB reads and two
  // buffer growths.
  const Bytes pixels = NoiseBytes(3000 * 28 * 28, 42);
  WriteGz(Path("big.gz"), Concat(IdxHeader(0x803, {3000, 28, 28}), pixels));
  ImageOutputs out;
  ASSERT_TRUE(out.Load(Path("big.gz")).ok());
  EXPECT_EQ(out.count, 3000u);
  ASSERT_EQ(out.images.size(), pixels.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < pixels.size(); ++i) {
    mismatches += out.images[i] != static_cast<float>(pixels[i]) / 255.0f;
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST_F(DatasetTest, LoadIdxDatasetPairsImagesWithLabels) {
  const Bytes pixels = SmallPixels();
  WriteGz(Path("t10k-images-idx3-ubyte.gz"),
          Concat(IdxHeader(0x803, {3, 2, 4}), pixels));
  WriteGz(Path("t10k-labels-idx1-ubyte.gz"),
          Concat(IdxHeader(0x801, {3}), {4, 1, 9}));
  Dataset data;
  ASSERT_TRUE(LoadIdxDataset(dir_, "t10k", &data).ok());
  EXPECT_EQ(data.count, 3u);
  EXPECT_EQ(data.rows, 2u);
  EXPECT_EQ(data.cols, 4u);
  EXPECT_EQ(data.features(), 8u);
  EXPECT_EQ(data.labels, (Bytes{4, 1, 9}));
  ASSERT_EQ(data.images.size(), 24u);
  // Example 2 starts at pixel 16.
  EXPECT_EQ(data.image(2), data.images.data() + 16);
  EXPECT_EQ(data.image(2)[0], static_cast<float>(pixels[16]) / 255.0f);
  EXPECT_EQ(data.image(2)[1], 1.0f);
}

TEST_F(DatasetTest, RejectsAFileThatIsNotIdx) {
  WriteGz(Path("text.gz"), Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r',
                                 'l', 'd', '!', '!', '!', '!', '!'});
  ImageOutputs out;
  Status s = out.Load(Path("text.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(std::string(s.message()),
            Path("text.gz") +
                ": not an IDX file: it starts with 0x68656c6c, and "
                "IDX files start with 0x0000 (an image file with 0x00000803)");
  EXPECT_TRUE(out.Untouched());
}

TEST_F(DatasetTest, RejectsALabelFileGivenAsImages) {
  WriteGz(Path("labels.gz"), Concat(IdxHeader(0x801, {3}), {1, 2, 3}));
  ImageOutputs out;
  Status s = out.Load(Path("labels.gz"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      Contains(s, "the IDX file has 1 dimension(s), but an image file has 3"))
      << s.message();
  EXPECT_TRUE(Contains(s, "found 0x00000801")) << s.message();
  EXPECT_TRUE(out.Untouched());

  // And the other way round.
  WriteGz(Path("images.gz"),
          Concat(IdxHeader(0x803, {3, 2, 4}), SmallPixels()));
  std::vector<uint8_t> labels{42};
  size_t count = 5;
  s = LoadIdxLabels(Path("images.gz"), &labels, &count);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "has 3 dimension(s), but a label file has 1"))
      << s.message();
  EXPECT_EQ(labels, Bytes{42});
  EXPECT_EQ(count, 5u);
}

TEST_F(DatasetTest, RejectsElementTypesOtherThanUnsignedByte) {
  // 0x0D is IDX's float32 type.
  WriteGz(Path("floats.gz"),
          Concat(IdxHeader(0x00000D03, {1, 1, 1}), {0, 0, 0, 0}));
  ImageOutputs out;
  Status s = out.Load(Path("floats.gz"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "IDX element type 0x0d is not supported"))
      << s.message();
  EXPECT_TRUE(out.Untouched());
}

TEST_F(DatasetTest, RejectsATruncatedHeader) {
  Bytes header = IdxHeader(0x803, {3, 2, 4});
  header.resize(10);
  WriteGz(Path("short.gz"), header);
  ImageOutputs out;
  Status s = out.Load(Path("short.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(
      std::string(s.message()),
      Path("short.gz") + ": expected a 16-byte IDX header, found 10 bytes");
  EXPECT_TRUE(out.Untouched());

  WriteGz(Path("empty.gz"), {});
  s = out.Load(Path("empty.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "expected a 16-byte IDX header, found 0 bytes"))
      << s.message();
}

TEST_F(DatasetTest, RejectsTooFewPixels) {
  Bytes pixels = SmallPixels();
  pixels.resize(20);
  WriteGz(Path("images.gz"), Concat(IdxHeader(0x803, {3, 2, 4}), pixels));
  ImageOutputs out;
  Status s = out.Load(Path("images.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(std::string(s.message()),
            Path("images.gz") +
                ": expected 24 bytes of pixels after the header, found 20");
  EXPECT_TRUE(out.Untouched());
}

TEST_F(DatasetTest, RejectsTooFewLabels) {
  WriteGz(Path("labels.gz"), Concat(IdxHeader(0x801, {4}), {1, 2, 3}));
  std::vector<uint8_t> labels{42};
  size_t count = 5;
  Status s = LoadIdxLabels(Path("labels.gz"), &labels, &count);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(std::string(s.message()),
            Path("labels.gz") +
                ": expected 4 bytes of labels after the header, found 3");
  EXPECT_EQ(labels, Bytes{42});
  EXPECT_EQ(count, 5u);
}

TEST_F(DatasetTest, RejectsTrailingBytes) {
  WriteGz(Path("images.gz"),
          Concat(IdxHeader(0x803, {3, 2, 4}), Concat(SmallPixels(), {0})));
  ImageOutputs out;
  Status s = out.Load(Path("images.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(
      std::string(s.message()),
      Path("images.gz") +
          ": expected 24 bytes of pixels after the header, found more: the "
          "file has trailing data");
  EXPECT_TRUE(out.Untouched());

  WritePlain(Path("labels"), Concat(IdxHeader(0x801, {2}), {1, 2, 3, 4}));
  std::vector<uint8_t> labels;
  size_t count = 0;
  s = LoadIdxLabels(Path("labels"), &labels, &count);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(
      Contains(s, "expected 2 bytes of labels after the header, found more"))
      << s.message();
}

TEST_F(DatasetTest, RejectsAbsurdDimensionsBeforeAllocating) {
  // Only the header: were the loader to believe it, it would allocate
  // 4294967295 * 784 bytes.
  WriteGz(Path("huge.gz"), IdxHeader(0x803, {0xFFFFFFFFu, 28, 28}));
  ImageOutputs out;
  Status s = out.Load(Path("huge.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(
      std::string(s.message()),
      Path("huge.gz") +
          ": the header announces 4294967295 images of 28 x 28 pixels, more "
          "than the 2147483648 bytes thaw reads; the header is corrupt or "
          "the file too large");
  EXPECT_TRUE(out.Untouched());

  // rows * cols * count would wrap around 64 bits without the checks.
  WriteGz(Path("wrap.gz"),
          IdxHeader(0x803, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}));
  s = out.Load(Path("wrap.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "more than the 2147483648 bytes")) << s.message();

  // Zero images of 2^32-1 x 2^32-1 pixels: no bytes, but no sane shape either.
  WriteGz(Path("wide.gz"), IdxHeader(0x803, {0, 0xFFFFFFFFu, 0xFFFFFFFFu}));
  s = out.Load(Path("wide.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "more than the 2147483648 bytes")) << s.message();

  WriteGz(Path("flat.gz"), IdxHeader(0x803, {5, 0, 28}));
  s = out.Load(Path("flat.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(std::string(s.message()),
            Path("flat.gz") + ": images of 0 x 28 pixels are empty");

  WriteGz(Path("labels.gz"), IdxHeader(0x801, {0x80000001u}));
  std::vector<uint8_t> labels;
  size_t count = 0;
  s = LoadIdxLabels(Path("labels.gz"), &labels, &count);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "announces 2147483649 labels")) << s.message();
  EXPECT_TRUE(out.Untouched());
}

TEST_F(DatasetTest, AcceptsAnEmptyButWellFormedFile) {
  WriteGz(Path("none.gz"), IdxHeader(0x803, {0, 28, 28}));
  ImageOutputs out;
  ASSERT_TRUE(out.Load(Path("none.gz")).ok());
  EXPECT_EQ(out.count, 0u);
  EXPECT_EQ(out.rows, 28u);
  EXPECT_EQ(out.cols, 28u);
  EXPECT_TRUE(out.images.empty());
}

TEST_F(DatasetTest, RejectsACorruptGzipStream) {
  // 16 grey levels: deflate codes them with Huffman tables and back
  // references, so flipped bytes break the code itself (random bytes would be
  // stored verbatim and only fail the CRC, which the next test covers).
  Bytes pixels = NoiseBytes(20 * 28 * 28, 7);
  for (uint8_t& p : pixels) p &= 0xF0;
  WriteGz(Path("images.gz"), Concat(IdxHeader(0x803, {20, 28, 28}), pixels));
  Bytes gz = ReadPlain(Path("images.gz"));
  ASSERT_GT(gz.size(), 1000u);
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 16; ++i) gz[i] ^= 0x5A;
  WritePlain(Path("images.gz"), gz);
  ImageOutputs out;
  Status s = out.Load(Path("images.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(
      Contains(s, Path("images.gz") + ": the gzip stream is corrupt (zlib: "))
      << s.message();
  EXPECT_TRUE(out.Untouched());
}

TEST_F(DatasetTest, ChecksTheGzipTrailerAfterTheLastPixel) {
  // Every pixel decompresses fine; only the CRC-32 in the trailer is wrong.
  WriteGz(Path("images.gz"),
          Concat(IdxHeader(0x803, {3, 2, 4}), SmallPixels()));
  Bytes gz = ReadPlain(Path("images.gz"));
  ASSERT_GT(gz.size(), 8u);
  gz[gz.size() - 8] ^=
      0xFF;  // the trailer is CRC-32, then length, 4 bytes each
  WritePlain(Path("images.gz"), gz);
  ImageOutputs out;
  Status s = out.Load(Path("images.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(std::string(s.message()),
            Path("images.gz") +
                ": the gzip stream is corrupt (zlib: incorrect data check)");
  EXPECT_TRUE(out.Untouched());
}

TEST_F(DatasetTest, RejectsATruncatedGzipFile) {
  const Bytes pixels = NoiseBytes(20 * 28 * 28, 9);
  WriteGz(Path("images.gz"), Concat(IdxHeader(0x803, {20, 28, 28}), pixels));
  Bytes gz = ReadPlain(Path("images.gz"));
  gz.resize(gz.size() / 2);
  WritePlain(Path("images.gz"), gz);
  ImageOutputs out;
  Status s = out.Load(Path("images.gz"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(
      s, Path("images.gz") +
             ": expected 15680 bytes of pixels after the header, found "))
      << s.message();
  EXPECT_TRUE(Contains(
      s, "; the gzip stream ends in the middle, so the file is truncated"))
      << s.message();
  EXPECT_TRUE(out.Untouched());

  // Cut inside the 8-byte trailer: all pixels arrive, the stream is still cut.
  WriteGz(Path("labels.gz"), Concat(IdxHeader(0x801, {3}), {1, 2, 3}));
  gz = ReadPlain(Path("labels.gz"));
  gz.resize(gz.size() - 3);
  WritePlain(Path("labels.gz"), gz);
  std::vector<uint8_t> labels;
  size_t count = 0;
  s = LoadIdxLabels(Path("labels.gz"), &labels, &count);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(std::string(s.message()),
            Path("labels.gz") +
                ": all 3 bytes of labels are there, but the gzip stream ends "
                "before its trailer, so the file is truncated");
  EXPECT_TRUE(labels.empty());
}

TEST_F(DatasetTest, MissingFileSaysHowToInstallFashionMnist) {
  ImageOutputs out;
  Status s = out.Load(Path("train-images-idx3-ubyte.gz"));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(
      std::string(s.message()),
      Path("train-images-idx3-ubyte.gz") +
          ": no such file; for Fashion-MNIST, install the Debian package "
          "dataset-fashion-mnist (apt-get install dataset-fashion-mnist), "
          "which puts it in /usr/share/datasets/fashion-mnist");
  EXPECT_TRUE(out.Untouched());

  // In the package's own directory (installed or not) the sentence is shorter.
  const std::string in_package =
      std::string(kFashionMnistDir) + "/no-such-file.gz";
  s = out.Load(in_package);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(
      std::string(s.message()),
      in_package +
          ": no such file; install the Debian package dataset-fashion-mnist "
          "(apt-get install dataset-fashion-mnist)");
}

TEST_F(DatasetTest, MissingLabelFileFailsTheWholeDataset) {
  WriteGz(Path("train-images-idx3-ubyte.gz"),
          Concat(IdxHeader(0x803, {3, 2, 4}), SmallPixels()));
  Dataset data;
  data.count = 12;
  Status s = LoadIdxDataset(dir_, "train", &data);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(
      Contains(s, Path("train-labels-idx1-ubyte.gz") + ": no such file"))
      << s.message();
  EXPECT_TRUE(Contains(s, "apt-get install dataset-fashion-mnist"))
      << s.message();
  EXPECT_EQ(data.count, 12u);
  EXPECT_TRUE(data.images.empty());
}

TEST_F(DatasetTest, ADirectoryIsAnIoError) {
  ImageOutputs out;
  Status s = out.Load(dir_);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, dir_ + ": read failed: ")) << s.message();
  EXPECT_TRUE(out.Untouched());
}

TEST_F(DatasetTest, RejectsMismatchedCounts) {
  WriteGz(Path("train-images-idx3-ubyte.gz"),
          Concat(IdxHeader(0x803, {3, 2, 4}), SmallPixels()));
  WriteGz(Path("train-labels-idx1-ubyte.gz"),
          Concat(IdxHeader(0x801, {2}), {1, 2}));
  Dataset data;
  data.count = 12;
  Status s = LoadIdxDataset(dir_, "train", &data);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(std::string(s.message()),
            Path("train-labels-idx1-ubyte.gz") + " holds 2 labels, but " +
                Path("train-images-idx3-ubyte.gz") +
                " holds 3 images; they must match one to one");
  EXPECT_EQ(data.count, 12u);
  EXPECT_TRUE(data.images.empty());
  EXPECT_TRUE(data.labels.empty());
}

TEST_F(DatasetTest, RejectsAnUnknownSplit) {
  Dataset data;
  Status s = LoadIdxDataset(dir_, "test", &data);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()),
            "split \"test\" is not an IDX split; use \"train\" or \"t10k\"");
}

// 8 examples of 2 pixels; example i holds {i, 10 + i}.
Dataset EightExamples() {
  Dataset d;
  d.count = 8;
  d.rows = 1;
  d.cols = 2;
  d.labels = {3, 5, 4, 3, 9, 4, 3, 5};
  for (int i = 0; i < 8; ++i) {
    d.images.push_back(static_cast<float>(i));
    d.images.push_back(static_cast<float>(10 + i));
  }
  return d;
}

TEST(FilterClassesTest, KeepsARangeRelabelledInFileOrder) {
  Dataset out;
  ASSERT_TRUE(FilterClasses(EightExamples(), 3, 4, /*per_class=*/0, &out).ok());
  EXPECT_EQ(out.count, 5u);
  EXPECT_EQ(out.rows, 1u);
  EXPECT_EQ(out.cols, 2u);
  // Examples 0, 2, 3, 5, 6.
  EXPECT_EQ(out.labels, (Bytes{0, 1, 0, 1, 0}));
  EXPECT_EQ(out.images,
            (std::vector<float>{0, 10, 2, 12, 3, 13, 5, 15, 6, 16}));
}

TEST(FilterClassesTest, KeepsTheFirstPerClassExamplesOfEachClass) {
  Dataset out;
  ASSERT_TRUE(FilterClasses(EightExamples(), 3, 5, /*per_class=*/1, &out).ok());
  // The first 3 (example 0), the first 5 (1), the first 4 (2).
  EXPECT_EQ(out.count, 3u);
  EXPECT_EQ(out.labels, (Bytes{0, 2, 1}));
  EXPECT_EQ(out.images, (std::vector<float>{0, 10, 1, 11, 2, 12}));

  ASSERT_TRUE(FilterClasses(EightExamples(), 3, 9, /*per_class=*/2, &out).ok());
  // 3: examples 0, 3; 5: 1, 7; 4: 2, 5; 9: 4.
  EXPECT_EQ(out.labels, (Bytes{0, 2, 1, 0, 6, 1, 2}));
  EXPECT_EQ(out.images, (std::vector<float>{0, 10, 1, 11, 2, 12, 3, 13, 4, 14,
                                            5, 15, 7, 17}));
}

TEST(FilterClassesTest, MayFilterInPlace) {
  Dataset d = EightExamples();
  ASSERT_TRUE(FilterClasses(d, 9, 9, /*per_class=*/0, &d).ok());
  EXPECT_EQ(d.count, 1u);
  EXPECT_EQ(d.labels, Bytes{0});
  EXPECT_EQ(d.images, (std::vector<float>{4, 14}));
}

TEST(FilterClassesTest, AnEmptySelectionKeepsTheImageSize) {
  Dataset out;
  ASSERT_TRUE(FilterClasses(EightExamples(), 6, 8, /*per_class=*/0, &out).ok());
  EXPECT_EQ(out.count, 0u);
  EXPECT_EQ(out.features(), 2u);
  EXPECT_TRUE(out.images.empty());
  EXPECT_TRUE(out.labels.empty());
}

TEST(FilterClassesTest, RejectsBadRangesAndInconsistentDatasets) {
  Dataset out;
  out.count = 99;
  Status s = FilterClasses(EightExamples(), -1, 3, 0, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()),
            "class range [-1, 3] is not valid; labels are bytes, so it needs "
            "0 <= first <= last <= 255");
  EXPECT_EQ(FilterClasses(EightExamples(), 5, 4, 0, &out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(FilterClasses(EightExamples(), 0, 256, 0, &out).code(),
            StatusCode::kInvalidArgument);

  Dataset broken = EightExamples();
  broken.labels.pop_back();
  s = FilterClasses(broken, 0, 9, 0, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "holds 7 labels and 16 floats; expected 8 and 16"))
      << s.message();
  EXPECT_EQ(out.count, 99u);

  // count * rows * cols wrapped around to the number of floats held: the
  // check passed and the copy ran far out of bounds.
  Dataset wrapped = EightExamples();
  wrapped.rows = SIZE_MAX / 16 + 2;
  wrapped.cols = 2;  // 8 * 2 * (SIZE_MAX / 16 + 2) wraps to 16
  s = FilterClasses(wrapped, 0, 9, 0, &out);
  EXPECT_TRUE(Contains(s, "larger than memory can hold")) << s.message();
  EXPECT_EQ(out.count, 99u);
}

// The real data, when the Debian package dataset-fashion-mnist is installed.
// The facts checked are published ones, not computed from the files here:
// 10000 test images of 28 x 28 in 10 balanced classes, the first an ankle
// boot (label 9, as in TensorFlow's basic classification tutorial), and a
// mean pixel near 0.286 (the commonly quoted normalization mean).
TEST(FashionMnistTest, LoadsTheTestSplit) {
  if (!std::filesystem::is_directory(kFashionMnistDir)) {
    GTEST_SKIP() << kFashionMnistDir
                 << " is missing; apt-get install dataset-fashion-mnist";
  }
  Dataset test;
  Status s = LoadIdxDataset(kFashionMnistDir, "t10k", &test);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(test.count, 10000u);
  EXPECT_EQ(test.rows, 28u);
  EXPECT_EQ(test.cols, 28u);
  ASSERT_EQ(test.images.size(), 10000u * 784u);
  ASSERT_EQ(test.labels.size(), 10000u);
  EXPECT_EQ(test.labels[0], 9);

  size_t per_class[256] = {};
  for (uint8_t label : test.labels) ++per_class[label];
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 1000u) << "class " << c;

  float lo = 1.0f, hi = 0.0f;
  double sum = 0.0;
  for (float p : test.images) {
    lo = std::min(lo, p);
    hi = std::max(hi, p);
    sum += p;
  }
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
  const double mean = sum / static_cast<double>(test.images.size());
  EXPECT_GT(mean, 0.28);
  EXPECT_LT(mean, 0.30);

  // Classes 5..9 (sandal .. ankle boot), 100 of each.
  Dataset last_five;
  ASSERT_TRUE(FilterClasses(test, 5, 9, /*per_class=*/100, &last_five).ok());
  EXPECT_EQ(last_five.count, 500u);
  EXPECT_EQ(last_five.labels[0], 4);  // the first ankle boot, 9 - 5
}

}  // namespace
}  // namespace thaw
