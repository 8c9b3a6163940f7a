#include "core/io/checkpoint.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/api/model.h"
#include "core/memory/arena.h"
#include "core/ops/activation.h"
#include "core/ops/batch_norm.h"
#include "core/ops/conv.h"
#include "core/ops/dense.h"
#include "core/ops/pool.h"
#include "core/vars/variables.h"
#include "gtest/gtest.h"
#include "tests/scratch_dir.h"

namespace thaw {
namespace {

using OrderedJson = nlohmann::ordered_json;

// ---- Building safetensors files byte by byte ----

void AppendU64(uint64_t v, std::vector<unsigned char>* out) {
  for (int b = 0; b < 8; ++b) out->push_back(static_cast<unsigned char>(v >> (8 * b)));
}

void AppendFloats(const std::vector<float>& values, std::vector<unsigned char>* out) {
  for (float f : values) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    for (int b = 0; b < 4; ++b) out->push_back(static_cast<unsigned char>(bits >> (8 * b)));
  }
}

// [u64 length][header text][data], with the length field given explicitly.
std::vector<unsigned char> RawFile(uint64_t length_field, const std::string& header,
                                   const std::vector<float>& data = {}) {
  std::vector<unsigned char> bytes;
  AppendU64(length_field, &bytes);
  bytes.insert(bytes.end(), header.begin(), header.end());
  AppendFloats(data, &bytes);
  return bytes;
}

// A well-formed file around `header` (padded with spaces to 8 bytes).
std::vector<unsigned char> TextFile(std::string header, const std::vector<float>& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return RawFile(header.size(), header, data);
}

std::vector<unsigned char> File(const OrderedJson& header, const std::vector<float>& data) {
  return TextFile(header.dump(), data);
}

OrderedJson Tensor(const std::string& dtype, const std::vector<int64_t>& shape, int64_t begin,
                   int64_t end) {
  OrderedJson t;
  t["dtype"] = dtype;
  t["shape"] = shape;
  t["data_offsets"] = {begin, end};
  return t;
}

uint32_t Bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

bool Contains(const Status& s, const std::string& text) {
  return std::string(s.message()).find(text) != std::string::npos;
}

// ---- The model the corruption tests load into ----
//
// A two-layer MLP like nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)),
// with the first layer trainable and the second frozen, 23 floats in all.
struct TinyModel {
  explicit TinyModel(size_t arena_bytes = 1 << 16) {
    THAW_CHECK(Arena::Create(arena_bytes, &arena).ok());
    vars = std::make_unique<VariableSet>(&arena);
    Variable v;
    THAW_CHECK(vars->Create("dense_0.weight", {3, 4}, true, &v).ok());
    THAW_CHECK(vars->Create("dense_0.bias", {3}, true, &v).ok());
    THAW_CHECK(vars->Create("dense_1.weight", {2, 3}, false, &v).ok());
    THAW_CHECK(vars->Create("dense_1.bias", {2}, false, &v).ok());
  }
  // Fills element k (counting across variables in order) with f(k).
  template <class F>
  void Fill(F f) {
    size_t k = 0;
    for (int i = 0; i < vars->size(); ++i) {
      const TensorView value = (*vars)[i].value();
      for (size_t j = 0; j < value.num_elements(); ++j) value.data()[j] = f(k++);
    }
  }
  Arena arena;
  std::unique_ptr<VariableSet> vars;
};

// The values and flags of a set, to show that a failed load changed nothing.
struct Snapshot {
  explicit Snapshot(VariableSet& vars) {
    for (int i = 0; i < vars.size(); ++i) {
      const TensorView v = vars[i].value();
      std::vector<uint32_t> b;
      for (size_t j = 0; j < v.num_elements(); ++j) b.push_back(Bits(v.data()[j]));
      bits.push_back(b);
      trainable.push_back(vars[i].trainable());
    }
  }
  bool operator==(const Snapshot& o) const { return bits == o.bits && trainable == o.trainable; }
  std::vector<std::vector<uint32_t>> bits;
  std::vector<bool> trainable;
};

// A header that fits TinyModel exactly: tensors back to back, 92 data bytes.
OrderedJson ValidHeader() {
  OrderedJson h;
  h["dense_0.weight"] = Tensor("F32", {3, 4}, 0, 48);
  h["dense_0.bias"] = Tensor("F32", {3}, 48, 60);
  h["dense_1.weight"] = Tensor("F32", {2, 3}, 60, 84);
  h["dense_1.bias"] = Tensor("F32", {2}, 84, 92);
  h["__metadata__"] = {{"format", "pt"}};
  return h;
}

// 23 values, none equal to what the model holds, so a load would show.
std::vector<float> ValidData() {
  std::vector<float> data;
  for (int k = 0; k < 23; ++k) data.push_back(-1.0f - k);
  return data;
}

class CheckpointLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_.Fill([](size_t k) { return 100.5f + k; });
    path_ = dir_.Path("c.safetensors");
  }

  Status Load(const std::vector<unsigned char>& bytes, bool strict = true) {
    WriteBytes(path_, bytes);
    LoadOptions options;
    options.strict = strict;
    return LoadCheckpoint(path_, model_.vars.get(), options);
  }

  // Loads `bytes` and expects failure with `code`, a message that starts with
  // the file's path and contains every piece of `expected`, and no change to
  // any value or flag.
  void ExpectFailure(const std::vector<unsigned char>& bytes, StatusCode code,
                     const std::vector<std::string>& expected, bool strict = true) {
    const Snapshot before(*model_.vars);
    const Status s = Load(bytes, strict);
    EXPECT_EQ(s.code(), code) << s.ToString();
    EXPECT_EQ(std::string(s.message()).rfind(path_ + ": ", 0), 0u) << s.message();
    for (const std::string& piece : expected) {
      EXPECT_TRUE(Contains(s, piece)) << "missing \"" << piece << "\" in: " << s.message();
    }
    EXPECT_TRUE(Snapshot(*model_.vars) == before) << "a failed load changed the model";
  }

  // The message of a failing load, for tests that want to show it whole.
  std::string Message(const std::vector<unsigned char>& bytes, bool strict = true) {
    return Load(bytes, strict).message();
  }

  ScratchDir dir_;
  TinyModel model_;
  std::string path_;
};

TEST_F(CheckpointLoadTest, AValidFileLoadsEveryValue) {
  ASSERT_TRUE(Load(File(ValidHeader(), ValidData())).ok());
  const std::vector<float> data = ValidData();
  size_t k = 0;
  for (int i = 0; i < model_.vars->size(); ++i) {
    const TensorView v = (*model_.vars)[i].value();
    for (size_t j = 0; j < v.num_elements(); ++j) EXPECT_EQ(v.data()[j], data[k++]);
  }
  EXPECT_TRUE((*model_.vars)[0].trainable());
  EXPECT_FALSE((*model_.vars)[2].trainable());
}

// Readers need not care about padding or where the data lies, as long as each
// range is right and no two overlap.
TEST_F(CheckpointLoadTest, UnpaddedHeaderAndReorderedDataLoad) {
  OrderedJson h;
  h["dense_1.bias"] = Tensor("F32", {2}, 0, 8);
  h["dense_1.weight"] = Tensor("F32", {2, 3}, 8, 32);
  h["dense_0.bias"] = Tensor("F32", {3}, 32, 44);
  h["dense_0.weight"] = Tensor("F32", {3, 4}, 44, 92);
  const std::string text = h.dump() + " ";  // 1 byte of padding, not 8-aligned
  ASSERT_NE(text.size() % 8, 0u);
  std::vector<float> data = {7, 8, 1, 2, 3, 4, 5, 6, -1, -2, -3};
  for (int k = 0; k < 12; ++k) data.push_back(0.25f * k);
  ASSERT_TRUE(Load(RawFile(text.size(), text, data)).ok());
  EXPECT_EQ((*model_.vars)[3].value().data()[1], 8.0f);
  EXPECT_EQ((*model_.vars)[2].value().at(1, 2), 6.0f);
  EXPECT_EQ((*model_.vars)[1].value().data()[2], -3.0f);
  EXPECT_EQ((*model_.vars)[0].value().at(2, 3), 0.25f * 11);
}

TEST_F(CheckpointLoadTest, MissingFileIsNotFound) {
  const Snapshot before(*model_.vars);
  const std::string missing = dir_.Path("nope.safetensors");
  const Status s = LoadCheckpoint(missing, model_.vars.get());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(s, missing + ": cannot open the file for reading: No such file"))
      << s.message();
  EXPECT_TRUE(Snapshot(*model_.vars) == before);
}

TEST_F(CheckpointLoadTest, EmptyFile) {
  ExpectFailure({}, StatusCode::kDataLoss,
                {"the file is 0 bytes long, too short for a safetensors header length"});
}

TEST_F(CheckpointLoadTest, SevenBytes) {
  ExpectFailure({16, 0, 0, 0, 0, 0, 0}, StatusCode::kDataLoss, {"the file is 7 bytes long"});
}

TEST_F(CheckpointLoadTest, HeaderLengthLargerThanTheFile) {
  ExpectFailure(RawFile(1000, "{}", {1, 2}), StatusCode::kDataLoss,
                {"the header length field says 1000 bytes, but only 10 bytes follow it"});
}

TEST_F(CheckpointLoadTest, HeaderLengthAbsurd) {
  ExpectFailure(RawFile(200000000, "{}"), StatusCode::kDataLoss,
                {"the header length field says 200000000 bytes, more than the "
                 "100000000-byte limit"});
  ExpectFailure(RawFile(~uint64_t{0}, "{}"), StatusCode::kDataLoss,
                {"says 18446744073709551615 bytes, more than the 100000000-byte limit"});
}

TEST_F(CheckpointLoadTest, HeaderIsNotJson) {
  ExpectFailure(TextFile("{not json}", {}), StatusCode::kDataLoss,
                {"the header (16 bytes) is not valid JSON: syntax error at byte offset 2"});
  ExpectFailure(RawFile(0, ""), StatusCode::kDataLoss,
                {"the header (0 bytes) is not valid JSON: syntax error at byte offset 0"});
  // Cut off mid-way, and valid JSON followed by something that is not padding.
  ExpectFailure(TextFile(R"({"dense_0.bias": {"dtype": "F32")", {}), StatusCode::kDataLoss,
                {"is not valid JSON"});
  ExpectFailure(TextFile(ValidHeader().dump() + "x", ValidData()), StatusCode::kDataLoss,
                {"is not valid JSON"});
  // A name that is not UTF-8.
  ExpectFailure(TextFile("{\"\xff\xfe\": {}}", {}), StatusCode::kDataLoss, {"is not valid JSON"});
}

// A hostile header may nest as deep as its length allows; the scan stops at
// the fourth level (no safetensors header has one), before building anything.
TEST_F(CheckpointLoadTest, DeeplyNestedHeaderIsRejected) {
  const size_t depth = 1000000;
  ExpectFailure(TextFile(std::string(depth, '[') + std::string(depth, ']'), {}),
                StatusCode::kDataLoss,
                {"the header nests arrays or objects deeper than the 3 levels a safetensors "
                 "header has"});
  std::string nested;
  for (size_t i = 0; i < depth; ++i) nested += "{\"a\":";
  nested += "1" + std::string(depth, '}');
  ExpectFailure(TextFile(nested, {}), StatusCode::kDataLoss, {"deeper than the 3 levels"});
  // Inside an entry: shape [[3], 4] is 4 levels.
  OrderedJson h = ValidHeader();
  h["dense_0.weight"]["shape"] = OrderedJson::array({OrderedJson::array({3}), 4});
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss, {"deeper than the 3 levels"},
                /*strict=*/false);
  // Three levels are fine, and unknown fields of an entry are ignored.
  h["dense_0.weight"]["shape"] = {3, 4};
  h["dense_0.weight"]["extra"] = {{"k", "v"}};
  ASSERT_TRUE(Load(File(h, ValidData())).ok());
}

TEST_F(CheckpointLoadTest, HeaderIsNotAnObject) {
  ExpectFailure(TextFile("[1, 2, 3]", {}), StatusCode::kDataLoss,
                {"the header is a JSON array, not an object"});
  ExpectFailure(TextFile("42", {}), StatusCode::kDataLoss, {"the header is a JSON number"});
  ExpectFailure(TextFile("\"F32\"", {}), StatusCode::kDataLoss, {"the header is a JSON string"});
  ExpectFailure(TextFile("null", {}), StatusCode::kDataLoss, {"the header is a JSON null"});
}

TEST_F(CheckpointLoadTest, EntryIsNotAnObject) {
  OrderedJson h = ValidHeader();
  h["dense_0.bias"] = {48, 60};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.bias: the entry must be an object with dtype, shape and data_offsets, "
                 "found [48,60]"});
}

TEST_F(CheckpointLoadTest, MissingOrNonStringDtype) {
  OrderedJson h = ValidHeader();
  h["dense_0.weight"].erase("dtype");
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.weight: the entry has no dtype"});
  h["dense_0.weight"]["dtype"] = 32;
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.weight: dtype must be a string, found 32"});
}

TEST_F(CheckpointLoadTest, DtypeOtherThanF32IsRejected) {
  // Consistent F16 offsets (2 bytes per element): the file is well-formed, the
  // model cannot take it.
  OrderedJson h = ValidHeader();
  h["dense_1.bias"] = Tensor("F16", {2}, 84, 88);
  std::vector<float> data = ValidData();
  data.pop_back();  // the F16 pair takes one float's room
  ExpectFailure(File(h, data), StatusCode::kInvalidArgument,
                {"dense_1.bias: checkpoint has dtype F16, model expects F32"});
  ExpectFailure(File(h, data), StatusCode::kInvalidArgument,
                {"dense_1.bias: checkpoint has dtype F16"}, /*strict=*/false);
  // A dtype thaw has never heard of.
  h["dense_1.bias"] = Tensor("Q7", {2}, 84, 92);
  ExpectFailure(File(h, ValidData()), StatusCode::kInvalidArgument,
                {"dense_1.bias: checkpoint has dtype Q7, model expects F32"});
  // F16 with F32-sized offsets is corrupt, whatever the model.
  h["dense_1.bias"] = Tensor("F16", {2}, 84, 92);
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_1.bias: data_offsets [84,92] hold 8 bytes, but shape [2] of F16 needs "
                 "2 x 2 bytes"});
}

TEST_F(CheckpointLoadTest, ShapeMismatchNamesTheTensorAndBothShapes) {
  OrderedJson h = ValidHeader();
  h["dense_1.weight"]["shape"] = {3, 2};  // same bytes, transposed
  ExpectFailure(File(h, ValidData()), StatusCode::kInvalidArgument,
                {"dense_1.weight: checkpoint has shape [3,2], model expects [2,3]"});
  h["dense_1.weight"]["shape"] = {6};
  ExpectFailure(File(h, ValidData()), StatusCode::kInvalidArgument,
                {"dense_1.weight: checkpoint has shape [6], model expects [2,3]"},
                /*strict=*/false);
  h["dense_1.weight"]["shape"] = {2, 3, 1};
  ExpectFailure(File(h, ValidData()), StatusCode::kInvalidArgument,
                {"dense_1.weight: checkpoint has shape [2,3,1], model expects [2,3]"});
}

// The example from the design notes, whole.
TEST(CheckpointShapeMessageTest, ReadsAsInTheStyleGuide) {
  ScratchDir dir;
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  VariableSet vars(&arena);
  Variable w;
  ASSERT_TRUE(vars.Create("dense_1.weight", {10, 256}, true, &w).ok());
  OrderedJson h;
  h["dense_1.weight"] = Tensor("F32", {10, 128}, 0, 5120);
  const std::string path = dir.Path("head.safetensors");
  WriteBytes(path, File(h, std::vector<float>(1280, 1.0f)));
  const Status s = LoadCheckpoint(path, &vars);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()),
            path + ": dense_1.weight: checkpoint has shape [10,128], model expects [10,256]");
  EXPECT_EQ(w.value().at(9, 255), 0.0f);
}

TEST_F(CheckpointLoadTest, MalformedShapes) {
  OrderedJson h = ValidHeader();
  h["dense_0.weight"].erase("shape");
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.weight: the entry has no shape"});
  h["dense_0.weight"]["shape"] = "3x4";
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.weight: shape must be an array of non-negative integers, found \"3x4\""});
  h["dense_0.weight"]["shape"] = {-3, 4};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.weight: shape [-3,4] must hold non-negative integers, but dimension 0 "
                 "is -3"});
  h["dense_0.weight"]["shape"] = {3, 4.0};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"shape [3,4.0] must hold non-negative integers, but dimension 1 is 4.0"});
  h["dense_0.weight"]["shape"] = {3.5, 4};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss, {"dimension 0 is 3.5"});
  h["dense_0.weight"]["shape"] = {"3", 4};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss, {"dimension 0 is \"3\""});
  h["dense_0.weight"]["shape"] = std::vector<int>(16, 1);
  h["dense_0.weight"]["shape"].push_back(-1);
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.weight: shape [... 17 values] must hold non-negative integers, but "
                 "dimension 16 is -1"});
  // 2^32 cubed does not fit 64 bits; an unchecked product would wrap to 0.
  h["dense_0.weight"]["shape"] = {4294967296ull, 4294967296ull, 4294967296ull};
  h["dense_0.weight"]["data_offsets"] = {0, 0};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.weight: shape [4294967296,4294967296,4294967296] has more elements "
                 "than fit in 64 bits"});
}

TEST_F(CheckpointLoadTest, MalformedDataOffsets) {
  OrderedJson h = ValidHeader();
  h["dense_0.bias"].erase("data_offsets");
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.bias: the entry has no data_offsets"});
  const char* kTwoIntegers = "dense_0.bias: data_offsets must be two non-negative integers";
  h["dense_0.bias"]["data_offsets"] = {48};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss, {kTwoIntegers, "found [48]"});
  h["dense_0.bias"]["data_offsets"] = {48, 60, 72};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss, {kTwoIntegers});
  h["dense_0.bias"]["data_offsets"] = {-12, 0};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss, {kTwoIntegers, "found [-12,0]"});
  h["dense_0.bias"]["data_offsets"] = {48.0, 60};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss, {kTwoIntegers});
  h["dense_0.bias"]["data_offsets"] = {60, 48};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.bias: data_offsets [60,48] end before they begin"});
}

TEST_F(CheckpointLoadTest, DataOffsetsOutOfRange) {
  OrderedJson h = ValidHeader();
  h["dense_1.bias"]["data_offsets"] = {88, 96};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_1.bias: data_offsets [88,96] run past the end of the data section, which "
                 "holds 92 bytes"});
  // Far out, where begin + length would overflow if computed carelessly.
  h["dense_1.bias"]["data_offsets"] = {18446744073709551608ull, 18446744073709551615ull};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss, {"run past the end"});
  // The file is one float short.
  std::vector<float> short_data = ValidData();
  short_data.pop_back();
  ExpectFailure(File(ValidHeader(), short_data), StatusCode::kDataLoss,
                {"dense_1.bias: data_offsets [84,92] run past the end of the data section, which "
                 "holds 88 bytes"});
}

TEST_F(CheckpointLoadTest, DataOffsetsNotMatchingTheShape) {
  OrderedJson h = ValidHeader();
  h["dense_0.weight"]["data_offsets"] = {0, 44};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"dense_0.weight: data_offsets [0,44] hold 44 bytes, but shape [3,4] of F32 needs "
                 "12 x 4 bytes"});
  h["dense_0.weight"]["data_offsets"] = {0, 52};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss, {"hold 52 bytes"});
}

TEST_F(CheckpointLoadTest, OverlappingRanges) {
  OrderedJson h = ValidHeader();
  h["dense_0.bias"]["data_offsets"] = {40, 52};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"tensors dense_0.weight [0,48] and dense_0.bias [40,52] overlap in the data "
                 "section"});
  // The same bytes given to two tensors, one of which the model does not have:
  // ignored tensors are checked too.
  h = ValidHeader();
  h["other.bias"] = Tensor("F32", {3}, 48, 60);
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss, {"overlap"}, /*strict=*/false);
  // Ranges nested inside another.
  h = ValidHeader();
  h["dense_0.weight"]["data_offsets"] = {0, 48};
  h["dense_0.bias"]["data_offsets"] = {4, 16};
  h["dense_1.weight"]["data_offsets"] = {20, 44};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"tensors dense_0.weight [0,48] and dense_0.bias [4,16] overlap"});
}

// As the reference implementation: the tensors cover the data section
// exactly. Bytes between tensors or after the last one mean the header and the
// data disagree (a truncated header, a file glued to another).
TEST_F(CheckpointLoadTest, GapsAndTrailingBytesAreRejected) {
  std::vector<float> data = ValidData();
  data.push_back(0.0f);
  ExpectFailure(File(ValidHeader(), data), StatusCode::kDataLoss,
                {"the last 4 bytes of the file (from data offset 92) belong to no tensor"});
  ExpectFailure(File(ValidHeader(), data), StatusCode::kDataLoss, {"belong to no tensor"},
                /*strict=*/false);
  OrderedJson h = ValidHeader();
  h["dense_0.bias"]["data_offsets"] = {52, 64};
  h["dense_1.weight"]["data_offsets"] = {64, 88};
  h["dense_1.bias"]["data_offsets"] = {88, 96};
  ExpectFailure(File(h, data), StatusCode::kDataLoss,
                {"bytes [48,52) of the data section, before tensor dense_0.bias, belong to no "
                 "tensor"});
  // A tensor of no bytes inside another's range.
  h = ValidHeader();
  h["empty"] = Tensor("F32", {0}, 4, 4);
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"tensors dense_0.weight [0,48] and empty [4,4] overlap"}, /*strict=*/false);
}

// A byte-order mark (which the JSON parser would skip) or a leading space:
// the reference implementation refuses both.
TEST_F(CheckpointLoadTest, HeaderMustStartWithABrace) {
  ExpectFailure(TextFile("\xEF\xBB\xBF" + ValidHeader().dump(), ValidData()),
                StatusCode::kDataLoss,
                {"the header must start with '{', but its first byte is 0xEF"});
  ExpectFailure(TextFile(" " + ValidHeader().dump(), ValidData()), StatusCode::kDataLoss,
                {"its first byte is 0x20"});
}

// A header of 99 MB of empty entries used to cost 1.4 GB and half a minute
// before it was refused; the scan stops at the first entry's end. Past
// 65,536 tensors (none of them faulty) it stops too.
TEST_F(CheckpointLoadTest, HostileHeadersAreRefusedEarly) {
  std::string empties = "{";
  for (int i = 0; empties.size() < 99000000; ++i) {
    if (i > 0) empties += ',';
    empties += "\"" + std::to_string(i) + "\":{}";
  }
  empties += "}";
  ExpectFailure(TextFile(empties, {}), StatusCode::kDataLoss, {"0: the entry has no dtype"});

  std::string many = "{";
  for (int i = 0; i <= 65536; ++i) {
    if (i > 0) many += ',';
    many += "\"t" + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}";
  }
  many += "}";
  ExpectFailure(TextFile(many, {}), StatusCode::kDataLoss,
                {"the header holds more than 65536 tensors or 1048576 JSON values"},
                /*strict=*/false);
}

// The header is read and checked before the data: a 16 GiB file (sparse)
// with a bad header is refused at once, without reading or allocating it.
TEST_F(CheckpointLoadTest, TheHeaderIsCheckedBeforeTheDataIsRead) {
  std::vector<unsigned char> bytes = TextFile("{not json}", {});
  WriteBytes(path_, bytes);
  std::filesystem::resize_file(path_, uint64_t{16} << 30);
  const Snapshot before(*model_.vars);
  const Status s = LoadCheckpoint(path_, model_.vars.get());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
  EXPECT_TRUE(Contains(s, "is not valid JSON")) << s.message();
  EXPECT_TRUE(Snapshot(*model_.vars) == before);
}

// From memory: the same checks and results, no file.
TEST_F(CheckpointLoadTest, LoadsFromMemory) {
  const std::vector<unsigned char> bytes = File(ValidHeader(), ValidData());
  ASSERT_TRUE(LoadCheckpointFromMemory(bytes, model_.vars.get()).ok());
  EXPECT_EQ((*model_.vars)[3].value().data()[1], -23.0f);

  model_.Fill([](size_t k) { return 100.5f + k; });
  const Snapshot before(*model_.vars);
  std::vector<unsigned char> cut(bytes.begin(), bytes.end() - 4);
  Status s = LoadCheckpointFromMemory(cut, model_.vars.get());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(std::string(s.message()),
            "checkpoint in memory: dense_1.bias: data_offsets [84,92] run past the end of the "
            "data section, which holds 88 bytes");
  s = LoadCheckpointFromMemory(Span<const unsigned char>(bytes.data(), 5), model_.vars.get());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "checkpoint in memory: the file is 5 bytes long")) << s.message();
  EXPECT_TRUE(Snapshot(*model_.vars) == before);
}

// JSON allows a repeated key and nlohmann::json would keep the last value
// silently; thaw notices, so a file that names a tensor twice is rejected as
// ambiguous rather than half-read.
TEST_F(CheckpointLoadTest, DuplicateTensorsAreRejected) {
  const std::string header =
      R"({"dense_0.weight":{"dtype":"F32","shape":[3,4],"data_offsets":[0,48]},)"
      R"("dense_0.bias":{"dtype":"F32","shape":[3],"data_offsets":[48,60]},)"
      R"("dense_1.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[60,84]},)"
      R"("dense_1.bias":{"dtype":"F32","shape":[2],"data_offsets":[84,92]},)"
      R"("dense_0.bias":{"dtype":"F32","shape":[3],"data_offsets":[48,60]}})";
  ExpectFailure(TextFile(header, ValidData()), StatusCode::kDataLoss,
                {"dense_0.bias: the header names this tensor twice"});
  ExpectFailure(TextFile(header, ValidData()), StatusCode::kDataLoss, {"twice"}, /*strict=*/false);
  const std::string repeated_field =
      R"({"dense_0.bias":{"dtype":"F32","dtype":"F16","shape":[3],"data_offsets":[48,60]}})";
  ExpectFailure(TextFile(repeated_field, ValidData()), StatusCode::kDataLoss,
                {"the header repeats the key \"dtype\" within one entry"}, /*strict=*/false);
}

TEST_F(CheckpointLoadTest, Metadata) {
  OrderedJson h = ValidHeader();
  h["__metadata__"] = {{"format", "pt"}, {"epoch", "3"}, {"note", ""}};
  ASSERT_TRUE(Load(File(h, ValidData())).ok());  // any strings, ignored
  EXPECT_EQ((*model_.vars)[0].value().data()[0], -1.0f);

  model_.Fill([](size_t k) { return 100.5f + k; });
  h["__metadata__"] = "pt";
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"__metadata__ must be an object of strings, found \"pt\""});
  h["__metadata__"] = {{"format", "pt"}, {"epoch", 3}};
  ExpectFailure(File(h, ValidData()), StatusCode::kDataLoss,
                {"__metadata__: the value of \"epoch\" must be a string, found 3"});
}

TEST_F(CheckpointLoadTest, StrictLoadNeedsEveryVariable) {
  OrderedJson h = ValidHeader();
  h.erase("dense_1.bias");
  std::vector<float> data = ValidData();
  data.resize(21);
  ExpectFailure(File(h, data), StatusCode::kInvalidArgument,
                {"dense_1.bias: the model has this variable but the checkpoint does not (strict "
                 "load; 1 of 4 variables missing)"});
}

TEST_F(CheckpointLoadTest, StrictLoadRejectsUnexpectedTensors) {
  OrderedJson h = ValidHeader();
  h["dense_2.weight"] = Tensor("F32", {1}, 92, 96);
  std::vector<float> data = ValidData();
  data.push_back(5.0f);
  ExpectFailure(File(h, data), StatusCode::kInvalidArgument,
                {"dense_2.weight: the checkpoint has this tensor but the model has no variable of "
                 "that name (strict load)"});
}

// Like load_state_dict(strict=False): what is there loads, missing variables
// keep their values, extra tensors (of any dtype) are ignored.
TEST_F(CheckpointLoadTest, NonStrictLoadIsPartial) {
  OrderedJson h;
  h["dense_0.weight"] = Tensor("F32", {3, 4}, 0, 48);
  h["dense_0.bias"] = Tensor("F32", {3}, 48, 60);
  h["bn.num_batches_tracked"] = Tensor("I64", {}, 60, 68);  // as PyTorch's BatchNorm has
  h["empty"] = Tensor("F32", {0, 5}, 60, 60);  // no bytes, where the next tensor starts
  std::vector<float> data;
  for (int k = 0; k < 15; ++k) data.push_back(-0.5f * k);
  data.push_back(0.0f);  // the int64 takes two floats' room
  data.push_back(0.0f);
  const Snapshot before(*model_.vars);
  ASSERT_TRUE(Load(File(h, data), /*strict=*/false).ok());
  const Snapshot after(*model_.vars);
  for (int j = 0; j < 12; ++j) EXPECT_EQ((*model_.vars)[0].value().data()[j], -0.5f * j);
  for (int j = 0; j < 3; ++j) EXPECT_EQ((*model_.vars)[1].value().data()[j], -0.5f * (12 + j));
  EXPECT_EQ(after.bits[2], before.bits[2]);  // not in the file: kept
  EXPECT_EQ(after.bits[3], before.bits[3]);
  EXPECT_EQ(after.trainable, before.trainable);
  // The same file loaded strictly fails on the first missing variable.
  ExpectFailure(File(h, data), StatusCode::kInvalidArgument,
                {"dense_1.weight: the model has this variable but the checkpoint does not (strict "
                 "load; 2 of 4 variables missing)"});
}

// Variables of a rank-0 tensor: thaw's scalars are [1], PyTorch's may be [].
TEST_F(CheckpointLoadTest, RankZeroIsNotRankOne) {
  OrderedJson h = ValidHeader();
  h["dense_1.bias"] = Tensor("F32", {}, 84, 88);
  std::vector<float> data = ValidData();
  data.pop_back();
  ExpectFailure(File(h, data), StatusCode::kInvalidArgument,
                {"dense_1.bias: checkpoint has shape [], model expects [2]"});
}

// ---- Saving ----

class CheckpointSaveTest : public ::testing::Test {
 protected:
  ScratchDir dir_;
};

TEST_F(CheckpointSaveTest, RoundTripIsBitIdenticalAndLeavesFlagsAlone) {
  TinyModel a;
  a.Fill([](size_t k) {
    return std::ldexp(1.0f + k, static_cast<int>(k) - 11) * (k % 2 ? -1.0f : 1.0f);
  });
  // Values a text format would mangle: signed zero, subnormal, infinities, NaN
  // with a payload, extremes.
  float* w = (*a.vars)[0].value().data();
  w[0] = -0.0f;
  w[1] = std::numeric_limits<float>::denorm_min();
  w[2] = std::numeric_limits<float>::infinity();
  w[3] = -std::numeric_limits<float>::infinity();
  const uint32_t nan_bits = 0x7FC01234u;
  std::memcpy(&w[4], &nan_bits, 4);
  w[5] = std::numeric_limits<float>::max();
  w[6] = std::numeric_limits<float>::lowest();
  const Snapshot saved(*a.vars);
  const std::string path = dir_.Path("a.safetensors");
  ASSERT_TRUE(SaveCheckpoint(*a.vars, path).ok());
  EXPECT_TRUE(Snapshot(*a.vars) == saved);

  TinyModel b;  // zeros, and different flags
  ASSERT_TRUE((*b.vars)[0].set_trainable(false).ok());
  ASSERT_TRUE((*b.vars)[3].set_trainable(true).ok());
  const Snapshot b_before(*b.vars);
  // NaN and Inf are refused by default (nothing changes), loaded on request.
  const Status refused = LoadCheckpoint(path, b.vars.get());
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(refused, "dense_0.weight: the checkpoint holds 3 NaN or infinite values "
                                "(the first at element 2); nothing was loaded"))
      << refused.message();
  EXPECT_TRUE(Snapshot(*b.vars) == b_before);
  LoadOptions anything;
  anything.allow_non_finite = true;
  ASSERT_TRUE(LoadCheckpoint(path, b.vars.get(), anything).ok());
  const Snapshot b_after(*b.vars);
  EXPECT_EQ(b_after.bits, saved.bits);
  EXPECT_EQ(b_after.trainable, b_before.trainable);
  EXPECT_EQ(b_after.trainable, (std::vector<bool>{false, true, false, true}));

  // And back into the set it came from, after it drifted.
  a.Fill([](size_t) { return 3.0f; });
  ASSERT_TRUE(LoadCheckpoint(path, a.vars.get(), anything).ok());
  EXPECT_TRUE(Snapshot(*a.vars) == saved);
}

// Statistics (BatchNorm's running statistics) are saved and loaded like
// parameters, and a load leaves their role alone.
TEST_F(CheckpointSaveTest, StatisticsRoundTrip) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 14, &arena).ok());
  VariableSet vars(&arena);
  Variable gamma, mean;
  ASSERT_TRUE(vars.Create("bn.weight", {3}, true, &gamma).ok());
  ASSERT_TRUE(vars.CreateStatistic("bn.running_mean", {3}, &mean).ok());
  ASSERT_TRUE(vars.Assign(gamma, {1, 2, 3}).ok());
  ASSERT_TRUE(vars.Assign(mean, {0.5f, -0.25f, 4}).ok());
  const std::string path = dir_.Path("bn.safetensors");
  ASSERT_TRUE(SaveCheckpoint(vars, path).ok());
  ASSERT_TRUE(vars.Assign(mean, {0, 0, 0}).ok());
  ASSERT_TRUE(LoadCheckpoint(path, &vars).ok());
  EXPECT_EQ(mean.value().data()[0], 0.5f);
  EXPECT_EQ(mean.value().data()[2], 4.0f);
  EXPECT_EQ(mean.role(), VariableRole::kStatistic);
}

// The exact bytes: the header thaw writes, its padding, and the data after it.
TEST_F(CheckpointSaveTest, FileLayoutIsSafetensors) {
  TinyModel m;
  m.Fill([](size_t k) { return 0.5f * k; });
  const std::string path = dir_.Path("m.safetensors");
  ASSERT_TRUE(SaveCheckpoint(*m.vars, path).ok());
  const std::vector<unsigned char> bytes = ReadBytes(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int b = 0; b < 8; ++b) n |= uint64_t{bytes[b]} << (8 * b);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 92);
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + n);
  const std::string expected =
      R"({"dense_0.weight":{"dtype":"F32","shape":[3,4],"data_offsets":[0,48]},)"
      R"("dense_0.bias":{"dtype":"F32","shape":[3],"data_offsets":[48,60]},)"
      R"("dense_1.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[60,84]},)"
      R"("dense_1.bias":{"dtype":"F32","shape":[2],"data_offsets":[84,92]},)"
      R"("__metadata__":{"format":"pt"}})";
  EXPECT_EQ(header.substr(0, expected.size()), expected);
  EXPECT_EQ(header.substr(expected.size()), std::string(n - expected.size(), ' '));
  EXPECT_LT(n - expected.size(), 8u);
  for (size_t k = 0; k < 23; ++k) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) bits |= uint32_t{bytes[8 + n + 4 * k + b]} << (8 * b);
    EXPECT_EQ(bits, Bits(0.5f * k)) << k;
  }
}

TEST_F(CheckpointSaveTest, NamesAreEscapedAndReadBack) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 14, &arena).ok());
  VariableSet vars(&arena);
  Variable quote, accent;
  ASSERT_TRUE(vars.CreateScalar("layer \"q\"\\x\n.w", 1.5f, true, &quote).ok());
  ASSERT_TRUE(vars.CreateScalar("couche_\xc3\xa9.\xe2\x88\x82", -2.5f, true, &accent).ok());
  const std::string path = dir_.Path("names.safetensors");
  ASSERT_TRUE(SaveCheckpoint(vars, path).ok());
  const std::vector<unsigned char> bytes = ReadBytes(path);
  const std::string text(bytes.begin(), bytes.end());
  EXPECT_NE(text.find(R"("layer \"q\"\\x\n.w")"), std::string::npos);
  quote.value().data()[0] = 0.0f;
  accent.value().data()[0] = 0.0f;
  ASSERT_TRUE(LoadCheckpoint(path, &vars).ok());
  EXPECT_EQ(quote.scalar(), 1.5f);
  EXPECT_EQ(accent.scalar(), -2.5f);
}

TEST_F(CheckpointSaveTest, NamesThatCannotBeTensorNamesAreRejected) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 14, &arena).ok());
  VariableSet reserved(&arena);
  Variable v;
  ASSERT_TRUE(reserved.CreateScalar("__metadata__", 1.0f, true, &v).ok());
  const std::string path = dir_.Path("bad.safetensors");
  Status s = SaveCheckpoint(reserved, path);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "variable 0 is named __metadata__, which safetensors reserves"))
      << s.message();

  Arena arena2;
  ASSERT_TRUE(Arena::Create(1 << 14, &arena2).ok());
  VariableSet latin1(&arena2);
  ASSERT_TRUE(latin1.CreateScalar("ok", 1.0f, true, &v).ok());
  ASSERT_TRUE(latin1.CreateScalar("caf\xe9", 1.0f, true, &v).ok());  // Latin-1, not UTF-8
  s = SaveCheckpoint(latin1, path);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, path + ": variable 1: its name is not valid UTF-8")) << s.message();
  EXPECT_TRUE(dir_.List().empty());  // nothing written
}

// A save that fails must leave the previous checkpoint byte-identical.
TEST_F(CheckpointSaveTest, FailedSaveLeavesTheOldCheckpointWhole) {
  TinyModel old_model;
  old_model.Fill([](size_t k) { return 1.0f + k; });
  const std::string path = dir_.Path("ckpt.safetensors");
  ASSERT_TRUE(SaveCheckpoint(*old_model.vars, path).ok());
  const std::vector<unsigned char> old_bytes = ReadBytes(path);

  // A bigger model whose file does not fit under a file-size limit set between
  // the two sizes: the write fails halfway (EFBIG), even when run as root.
  TinyModel big(1 << 20);
  Variable extra;
  ASSERT_TRUE(big.vars->Create("dense_2.weight", {64, 64}, true, &extra).ok());
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit limit = saved;
  limit.rlim_cur = old_bytes.size() + 100;
  void (*saved_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  const Status s = SaveCheckpoint(*big.vars, path);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, saved_handler);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, path + ": write failed")) << s.message();
  EXPECT_TRUE(Contains(s, "File too large")) << s.message();
  EXPECT_EQ(ReadBytes(path), old_bytes);
  EXPECT_EQ(dir_.List(), std::vector<std::string>{"ckpt.safetensors"});

  // The old checkpoint still loads, whole.
  TinyModel reload;
  ASSERT_TRUE(LoadCheckpoint(path, reload.vars.get()).ok());
  EXPECT_EQ(Snapshot(*reload.vars).bits, Snapshot(*old_model.vars).bits);
}

TEST_F(CheckpointSaveTest, SaveIntoAMissingDirectoryOrOverADirectoryIsAnIoError) {
  TinyModel m;
  const std::string missing = dir_.Path("no_such_dir/m.safetensors");
  Status s = SaveCheckpoint(*m.vars, missing);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, missing + ": cannot create a temporary file")) << s.message();

  const std::string directory = dir_.Path("d.safetensors");
  std::filesystem::create_directory(directory);
  s = SaveCheckpoint(*m.vars, directory);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, directory + ": cannot write over it: it is a directory")) << s.message();
  EXPECT_TRUE(std::filesystem::is_directory(directory));
  EXPECT_EQ(dir_.List(), std::vector<std::string>{"d.safetensors"});
}

// BatchNorm's num_batches_tracked is held as a float and written as int64:
// only whole numbers >= 0 that a float holds exactly survive that, so others
// are refused both ways. (Found by tests/fuzz/fuzz_checkpoint: 2.5 came back
// as 2, and 1e30 was undefined behaviour in the cast to int64.)
TEST_F(CheckpointSaveTest, CountsMustBeCounts) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 16, &arena).ok());
  VariableSet vars(&arena);
  Variable count;
  ASSERT_TRUE(vars.CreateStatistic("bn.num_batches_tracked", Shape{}, &count).ok());
  FileFormat format;
  format.int64 = true;
  vars.SetFileFormat(count, format);
  const std::string path = dir_.Path("bn.safetensors");
  for (float bad : {2.5f, -1.0f, 1e30f, std::numeric_limits<float>::quiet_NaN()}) {
    ASSERT_TRUE(vars.Assign(count, {bad}).ok());
    const Status s = SaveCheckpoint(vars, path);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(Contains(s, "bn.num_batches_tracked: element 0 is")) << s.message();
    EXPECT_TRUE(Contains(s, "not a count (a whole number >= 0); nothing was written")) << s.message();
  }
  EXPECT_TRUE(dir_.List().empty());
  ASSERT_TRUE(vars.Assign(count, {16777216.0f}).ok());  // 2^24: whole, exact
  ASSERT_TRUE(SaveCheckpoint(vars, path).ok());
  ASSERT_TRUE(vars.Assign(count, {0.0f}).ok());
  ASSERT_TRUE(LoadCheckpoint(path, &vars).ok());
  EXPECT_EQ(count.value().data()[0], 16777216.0f);

  auto load_count = [&](const std::string& dtype, const std::vector<unsigned char>& value) {
    OrderedJson h;
    h["bn.num_batches_tracked"] = Tensor(dtype, {}, 0, static_cast<int64_t>(value.size()));
    std::string text = h.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::vector<unsigned char> bytes = RawFile(text.size(), text);
    bytes.insert(bytes.end(), value.begin(), value.end());
    WriteBytes(path, bytes);
    LoadOptions options;
    options.allow_non_finite = true;  // counts are checked regardless
    return LoadCheckpoint(path, &vars, options);
  };
  auto f32 = [](float v) {
    std::vector<unsigned char> b;
    AppendFloats({v}, &b);
    return b;
  };
  auto i64 = [](int64_t v) {
    std::vector<unsigned char> b;
    AppendU64(static_cast<uint64_t>(v), &b);
    return b;
  };
  Status s = load_count("F32", f32(3.0039f));
  EXPECT_TRUE(Contains(s, "bn.num_batches_tracked: element 0 is 3.003900, not a count")) << s.message();
  s = load_count("F32", f32(-7.625f));
  EXPECT_TRUE(Contains(s, "element 0 is -7.625000, not a count")) << s.message();
  s = load_count("F32", f32(std::numeric_limits<float>::infinity()));
  EXPECT_TRUE(Contains(s, "not a count")) << s.message();
  s = load_count("I64", i64((int64_t{1} << 40) + 1));  // no float holds it
  EXPECT_TRUE(Contains(s, "element 0 is 1099511627777, not a count")) << s.message();
  EXPECT_EQ(count.value().data()[0], 16777216.0f);  // nothing was loaded
  ASSERT_TRUE(load_count("I64", i64(int64_t{1} << 40)).ok());
  EXPECT_EQ(count.value().data()[0], 1099511627776.0f);
  ASSERT_TRUE(load_count("F32", f32(7.0f)).ok());
  EXPECT_EQ(count.value().data()[0], 7.0f);
}

// ---- In memory (core/io/checkpoint_memory.h) ----

// The names of the tensors in a checkpoint's header, in file order.
std::vector<std::string> TensorNames(const std::vector<unsigned char>& bytes) {
  uint64_t n = 0;
  for (int b = 0; b < 8; ++b) n |= uint64_t{bytes[b]} << (8 * b);
  const OrderedJson header =
      OrderedJson::parse(bytes.begin() + 8, bytes.begin() + 8 + n, nullptr, false);
  std::vector<std::string> names;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() != "__metadata__") names.push_back(it.key());
  }
  return names;
}

// Saves `vars` to memory through a buffer of exactly the size asked for.
std::vector<unsigned char> SaveToMemory(const VariableSet& vars, const SaveOptions& options = {}) {
  size_t size = 0;
  EXPECT_TRUE(CheckpointSize(vars, &size, options).ok());
  std::vector<unsigned char> bytes(size);
  size_t written = 0;
  const Status s = SaveCheckpointToMemory(vars, bytes, &written, options);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(written, size);
  return bytes;
}

class CheckpointMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Values a text format would mangle: signed zero, subnormal, infinity, a
    // NaN with a payload.
    model_.Fill([](size_t k) { return std::ldexp(1.0f + k, static_cast<int>(k) - 11); });
    float* w = (*model_.vars)[0].value().data();
    w[0] = -0.0f;
    w[1] = std::numeric_limits<float>::denorm_min();
    w[2] = -std::numeric_limits<float>::infinity();
    const uint32_t nan_bits = 0x7FC01234u;
    std::memcpy(&w[3], &nan_bits, 4);
    allow_.allow_non_finite = true;
  }
  ScratchDir dir_;
  TinyModel model_;  // dense_0 trainable, dense_1 frozen
  LoadOptions allow_;
};

// The size query, the bytes written and the file SaveCheckpoint writes agree,
// and the bytes load back bit for bit.
TEST_F(CheckpointMemoryTest, SizeQueryBytesAndFileAgreeAndRoundTripBitExact) {
  size_t size = 0;
  ASSERT_TRUE(CheckpointSize(*model_.vars, &size).ok());
  const std::string path = dir_.Path("m.safetensors");
  ASSERT_TRUE(SaveCheckpoint(*model_.vars, path).ok());
  const std::vector<unsigned char> file = ReadBytes(path);
  EXPECT_EQ(size, file.size());
  const std::vector<unsigned char> bytes = SaveToMemory(*model_.vars);
  EXPECT_TRUE(bytes == file) << "SaveCheckpointToMemory and SaveCheckpoint wrote different bytes";

  // A bigger buffer: the checkpoint at its start, the rest untouched.
  std::vector<unsigned char> big(size + 100, 0xAB);
  size_t written = 0;
  ASSERT_TRUE(SaveCheckpointToMemory(*model_.vars, big, &written).ok());
  EXPECT_EQ(written, size);
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), big.begin()));
  EXPECT_EQ(std::count(big.begin() + size, big.end(), 0xAB), 100);

  TinyModel other;
  const Status refused = LoadCheckpointFromMemory(bytes, other.vars.get());
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);  // the NaN and the infinity
  ASSERT_TRUE(LoadCheckpointFromMemory(
                  Span<const unsigned char>(big.data(), written), other.vars.get(), allow_)
                  .ok());
  EXPECT_EQ(Snapshot(*other.vars).bits, Snapshot(*model_.vars).bits);
}

// A buffer too small (by one byte, or none at all) is ResourceExhausted, says
// the size needed, and is left as it was.
TEST_F(CheckpointMemoryTest, TooSmallBufferWritesNothingAndSaysTheSizeNeeded) {
  size_t size = 0;
  ASSERT_TRUE(CheckpointSize(*model_.vars, &size).ok());
  std::vector<unsigned char> small(size - 1, 0xAB);
  size_t needed = 0;
  Status s = SaveCheckpointToMemory(*model_.vars, small, &needed);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(needed, size);
  EXPECT_EQ(std::string(s.message()),
            "checkpoint in memory: the checkpoint takes " + std::to_string(size) +
                " bytes, but the buffer holds " + std::to_string(size - 1) +
                "; nothing was written");
  EXPECT_EQ(std::count(small.begin(), small.end(), 0xAB), static_cast<long>(size - 1));

  needed = 0;
  s = SaveCheckpointToMemory(*model_.vars, Span<unsigned char>(), &needed);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(needed, size);
}

// A count that cannot be written fails the save; the buffer then holds no
// checkpoint (its length field is 0), even over an earlier good one.
TEST_F(CheckpointMemoryTest, AFailedSaveLeavesNoLoadableCheckpoint) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 14, &arena).ok());
  VariableSet vars(&arena);
  Variable w, count;
  ASSERT_TRUE(vars.Create("bn.weight", {2}, true, &w).ok());
  ASSERT_TRUE(vars.CreateStatistic("bn.num_batches_tracked", Shape{}, &count).ok());
  FileFormat format;
  format.int64 = true;
  vars.SetFileFormat(count, format);
  ASSERT_TRUE(vars.Assign(count, {3.0f}).ok());
  std::vector<unsigned char> bytes = SaveToMemory(vars);
  ASSERT_TRUE(LoadCheckpointFromMemory(bytes, &vars).ok());

  ASSERT_TRUE(vars.Assign(count, {2.5f}).ok());
  size_t size = 0;
  const Status s = SaveCheckpointToMemory(vars, bytes, &size);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "checkpoint in memory: bn.num_batches_tracked: element 0 is 2.5, not "
                          "a count"))
      << s.message();
  EXPECT_EQ(size, bytes.size());
  const Status load = LoadCheckpointFromMemory(bytes, &vars);
  EXPECT_EQ(load.code(), StatusCode::kDataLoss) << load.message();

  // Names are checked before anything is written, as for files.
  Arena arena2;
  ASSERT_TRUE(Arena::Create(1 << 14, &arena2).ok());
  VariableSet reserved(&arena2);
  ASSERT_TRUE(reserved.CreateScalar("__metadata__", 1.0f, true, &w).ok());
  EXPECT_EQ(CheckpointSize(reserved, &size).code(), StatusCode::kInvalidArgument);
  const Status named = SaveCheckpointToMemory(reserved, bytes, &size);
  EXPECT_EQ(named.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(named, "variable 0 is named __metadata__")) << named.message();
}

// What federated fine-tuning ships: only the trainable variables go out, and
// a model frozen the same way takes them in, its frozen variables untouched.
TEST_F(CheckpointMemoryTest, TrainableOnlyExportAndImport) {
  SaveOptions trainable;
  trainable.trainable_only = true;
  const std::vector<unsigned char> bytes = SaveToMemory(*model_.vars, trainable);
  EXPECT_EQ(TensorNames(bytes), (std::vector<std::string>{"dense_0.weight", "dense_0.bias"}));
  // The same bytes as the file form of the option.
  const std::string path = dir_.Path("trainable.safetensors");
  ASSERT_TRUE(SaveCheckpoint(*model_.vars, path, trainable).ok());
  EXPECT_TRUE(ReadBytes(path) == bytes);

  TinyModel device;
  device.Fill([](size_t k) { return 7.0f + k; });
  const Snapshot before(*device.vars);
  // A plain strict load refuses the file: the frozen variables are missing.
  const Status strict = LoadCheckpointFromMemory(bytes, device.vars.get(), allow_);
  EXPECT_EQ(strict.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(strict, "dense_1.weight: the model has this variable but the checkpoint "
                               "does not (strict load; 2 of 4 variables missing)"))
      << strict.message();
  LoadOptions load = allow_;
  load.trainable_only = true;
  ASSERT_TRUE(LoadCheckpointFromMemory(bytes, device.vars.get(), load).ok());
  const Snapshot after(*device.vars);
  const Snapshot sent(*model_.vars);
  EXPECT_EQ(after.bits[0], sent.bits[0]);
  EXPECT_EQ(after.bits[1], sent.bits[1]);
  EXPECT_EQ(after.bits[2], before.bits[2]);  // frozen: untouched
  EXPECT_EQ(after.bits[3], before.bits[3]);
  EXPECT_EQ(after.trainable, before.trainable);
  // From a file too.
  device.Fill([](size_t k) { return 7.0f + k; });
  ASSERT_TRUE(LoadCheckpoint(path, device.vars.get(), load).ok());
  EXPECT_EQ(Snapshot(*device.vars).bits, after.bits);
}

// Statistics are not trainable: a trainable-only save leaves them out.
TEST_F(CheckpointMemoryTest, TrainableOnlyLeavesStatisticsOut) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 14, &arena).ok());
  VariableSet vars(&arena);
  Variable gamma, mean, beta;
  ASSERT_TRUE(vars.Create("bn.weight", {3}, true, &gamma).ok());
  ASSERT_TRUE(vars.Create("bn.bias", {3}, false, &beta).ok());
  ASSERT_TRUE(vars.CreateStatistic("bn.running_mean", {3}, &mean).ok());
  SaveOptions trainable;
  trainable.trainable_only = true;
  EXPECT_EQ(TensorNames(SaveToMemory(vars, trainable)), std::vector<std::string>{"bn.weight"});
  EXPECT_EQ(TensorNames(SaveToMemory(vars)),
            (std::vector<std::string>{"bn.weight", "bn.bias", "bn.running_mean"}));
}

// Under trainable_only the file must hold exactly the trainable variables:
// a tensor of a frozen variable, a missing trainable one (strict) or a tensor
// the model lacks (strict) is refused, and nothing changes.
TEST_F(CheckpointMemoryTest, TrainableOnlyLoadRefusals) {
  TinyModel device;
  device.Fill([](size_t k) { return 7.0f + k; });
  const Snapshot before(*device.vars);
  LoadOptions load;
  load.trainable_only = true;
  auto expect_refused = [&](const std::vector<unsigned char>& bytes, const LoadOptions& options,
                            const std::string& expected) {
    const Status s = LoadCheckpointFromMemory(bytes, device.vars.get(), options);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
    EXPECT_TRUE(Contains(s, expected)) << "missing \"" << expected << "\" in: " << s.message();
    EXPECT_TRUE(Snapshot(*device.vars) == before) << "a refused load changed the model";
  };

  // Every variable, frozen ones included.
  const std::vector<unsigned char> all = File(ValidHeader(), ValidData());
  const std::string frozen =
      "checkpoint in memory: dense_1.weight: the checkpoint has this tensor, but the model's "
      "variable is not trainable (frozen, or a statistic) and a trainable-only load changes "
      "trainable variables only; nothing was loaded";
  expect_refused(all, load, frozen);
  LoadOptions partial = load;
  partial.strict = false;
  expect_refused(all, partial, frozen);  // in both modes

  // A trainable variable missing: refused when strict, kept when not.
  OrderedJson h;
  h["dense_0.weight"] = Tensor("F32", {3, 4}, 0, 48);
  std::vector<float> weights(12, -2.0f);
  expect_refused(File(h, weights), load,
                 "dense_0.bias: the model has this variable but the checkpoint does not (strict "
                 "trainable-only load; 1 of 2 trainable variables missing)");
  ASSERT_TRUE(LoadCheckpointFromMemory(File(h, weights), device.vars.get(), partial).ok());
  EXPECT_EQ((*device.vars)[0].value().data()[11], -2.0f);
  EXPECT_EQ(Snapshot(*device.vars).bits[1], before.bits[1]);
  device.Fill([](size_t k) { return 7.0f + k; });

  // A tensor the model does not have: refused when strict, ignored when not.
  h["dense_0.bias"] = Tensor("F32", {3}, 48, 60);
  h["head.weight"] = Tensor("F32", {1}, 60, 64);
  std::vector<float> data(16, -3.0f);
  expect_refused(File(h, data), load,
                 "head.weight: the checkpoint has this tensor but the model has no variable of "
                 "that name (strict load)");
  ASSERT_TRUE(LoadCheckpointFromMemory(File(h, data), device.vars.get(), partial).ok());
  EXPECT_EQ((*device.vars)[1].value().data()[2], -3.0f);
}

// ---- PyTorch interop (fixtures made by tests/pytorch/checkpoint_interop.py) ----

std::string Fixture(const std::string& name) { return std::string(THAW_FIXTURES_DIR) + "/" + name; }

// torch.manual_seed(0); nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)),
// saved by the script in safetensors with thaw's names; every value must
// arrive exactly.
TEST(CheckpointInteropTest, LoadsWhatPyTorchWrote) {
  TinyModel m;
  ASSERT_TRUE(LoadCheckpoint(Fixture("torch_tiny.safetensors"), m.vars.get()).ok());
  const std::vector<unsigned char> text = ReadBytes(Fixture("torch_tiny_expected.json"));
  const nlohmann::json expected = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  ASSERT_TRUE(expected.is_object());
  ASSERT_EQ(expected.size(), 4u);
  size_t checked = 0;
  for (int i = 0; i < m.vars->size(); ++i) {
    const Variable v = (*m.vars)[i];
    SCOPED_TRACE(v.name());
    const auto e = expected.find(v.name());
    ASSERT_NE(e, expected.end());
    std::vector<size_t> shape;
    for (const auto& d : e->at("shape")) shape.push_back(d.get<size_t>());
    EXPECT_EQ(Shape(shape.data(), static_cast<int>(shape.size())), v.shape());
    const auto& values = e->at("values");
    ASSERT_EQ(values.size(), v.shape().num_elements());
    for (size_t j = 0; j < values.size(); ++j) {
      // The JSON holds each float32 as the shortest decimal of its exact double
      // value, so the conversion back is exact.
      const float want = static_cast<float>(values[j].get<double>());
      EXPECT_EQ(Bits(v.value().data()[j]), Bits(want)) << "element " << j;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 23u);
  // Not all zero or all equal: the load really brought PyTorch's init.
  EXPECT_NE(Bits((*m.vars)[0].value().data()[0]), Bits((*m.vars)[0].value().data()[1]));
}

// thaw_written.safetensors is what thaw writes for this set; the script loads
// it into PyTorch with load_state_dict(strict=True) and checks every value.
// This test pins the bytes, so the file PyTorch checked is what thaw writes.
TEST(CheckpointInteropTest, WritesTheFilePyTorchChecked) {
  TinyModel m;
  m.Fill([](size_t k) { return static_cast<float>(k) * 0.25f - 1.0f; });
  ScratchDir dir;
  const std::string path = dir.Path("thaw_written.safetensors");
  ASSERT_TRUE(SaveCheckpoint(*m.vars, path).ok());
  const std::vector<unsigned char> produced = ReadBytes(path);
  const std::vector<unsigned char> committed = ReadBytes(Fixture("thaw_written.safetensors"));
  if (produced != committed) {
    // Keep the new file for inspection; if the change is intended, copy it over
    // the fixture and rerun tests/pytorch/checkpoint_interop.py.
    const std::string kept = ::testing::TempDir() + "thaw_written.produced.safetensors";
    std::filesystem::copy_file(path, kept, std::filesystem::copy_options::overwrite_existing);
    ADD_FAILURE() << "thaw now writes different bytes than " << Fixture("thaw_written.safetensors")
                  << "; the new file is at " << kept;
  }
  EXPECT_EQ(produced.size(), committed.size());
}

// A CNN PyTorch trained three steps (script part (c)): conv without bias,
// BatchNorm with its running statistics and num_batches_tracked (I64),
// depthwise with bias, the head. thaw reads PyTorch's layouts into its own,
// predicts PyTorch's eval-mode output, and writes back the very file
// PyTorch wrote: every tensor returns to PyTorch's layout and dtype.
TEST(CheckpointInteropTest, ACnnFromPyTorchPredictsTheSameAndSavesBackByteForByte) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 18, &arena).ok());
  Model model;
  Symbol x = model.Input(Shape{5, 5, 2}, Layout::kNHWC);
  Symbol a = model.Call(Conv2D::Make(3, 3, 1, Padding::kSame, Activation::kLinear, false), x);
  a = model.Call(ReLU6(), model.Call(BatchNormalization::Make(0.5f, 1e-3f), a));
  Symbol d = model.Call(DepthwiseConv2D::Make(3, 1, Padding::kSame), a);
  Symbol y = model.Call(Dense::Make(2), model.Call(GlobalAveragePooling2D::Make(), d), "head");
  ASSERT_TRUE(model.Build(y, 2, &arena).ok());
  ASSERT_TRUE(LoadCheckpoint(Fixture("torch_cnn.safetensors"), &model.variables()).ok());
  EXPECT_EQ(model.variables().Find("batch_normalization_0.num_batches_tracked").value().data()[0], 3.0f);

  const std::vector<unsigned char> text = ReadBytes(Fixture("torch_cnn_expected.json"));
  const nlohmann::json expected = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  ASSERT_TRUE(expected.is_object());
  const std::vector<float> images = expected.at("x_nhwc").get<std::vector<float>>();
  const std::vector<float> logits = expected.at("logits").get<std::vector<float>>();
  ASSERT_EQ(images.size(), 2u * 5 * 5 * 2);
  ASSERT_EQ(logits.size(), 4u);
  std::vector<float> out(4);
  ASSERT_TRUE(model.Predict(images.data(), 2, out.data()).ok());
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(out[i], logits[i], 1e-5 * std::max(1.0f, std::fabs(logits[i]))) << "logit " << i;
  }

  ScratchDir dir;
  const std::string path = dir.Path("cnn.safetensors");
  ASSERT_TRUE(SaveCheckpoint(model.variables(), path).ok());
  EXPECT_TRUE(ReadBytes(path) == ReadBytes(Fixture("torch_cnn.safetensors")))
      << "thaw's file for the CNN differs from PyTorch's";
  // In memory, through the same conversions (permuted kernels, the int64 count).
  EXPECT_TRUE(SaveToMemory(model.variables()) == ReadBytes(Fixture("torch_cnn.safetensors")))
      << "thaw's bytes in memory for the CNN differ from PyTorch's file";
}

}  // namespace
}  // namespace thaw
