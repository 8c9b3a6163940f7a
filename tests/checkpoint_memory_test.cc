// Checkpoints in memory (core/io/checkpoint_memory.h), which are part of the
// runtime: this test needs no file, no thaw_io and no JSON library, so it is
// built in the firmware profile too (THAW_BUILD_IO=OFF). Headers are written
// by hand here, to reach the corners of the JSON the header reader
// (core/io/safetensors_header.cc) must accept or refuse; tests/checkpoint_test.cc
// covers the format's own checks.
#include "core/io/checkpoint_memory.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/thaw.h"
#include "gtest/gtest.h"

namespace thaw {
namespace {

// Built with THAW_ERROR_STRINGS=0 a Status has a code and no sentence.
#if !defined(THAW_ERROR_STRINGS) || THAW_ERROR_STRINGS
constexpr bool kSentences = true;
#else
constexpr bool kSentences = false;
#endif

// [u64 length][header][data], the header as written (no padding added).
std::vector<unsigned char> Bytes(const std::string& header, const std::vector<float>& data) {
  std::vector<unsigned char> bytes;
  for (int b = 0; b < 8; ++b) bytes.push_back(static_cast<unsigned char>(header.size() >> (8 * b)));
  bytes.insert(bytes.end(), header.begin(), header.end());
  const size_t at = bytes.size();
  bytes.resize(at + 4 * data.size());
  std::memcpy(bytes.data() + at, data.data(), 4 * data.size());
  return bytes;
}

// Variables whose names need escapes or multi-byte UTF-8 in a header.
class HeaderJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Arena::Create(1 << 14, &arena_).ok());
    vars_ = std::make_unique<VariableSet>(&arena_);
    Variable v;
    ASSERT_TRUE(vars_->Create("a", {2}, true, &v).ok());
    ASSERT_TRUE(vars_->CreateScalar("caf\xc3\xa9", 0.0f, true, &v).ok());             // café
    ASSERT_TRUE(vars_->CreateScalar("\xf0\x9f\x98\x80", 0.0f, true, &v).ok());        // U+1F600
    ASSERT_TRUE(vars_->CreateScalar("q\"/\\\n\x7f", 0.0f, true, &v).ok());
  }

  // Loads a file around `header` (non-strict unless said), data 5 floats.
  Status Load(const std::string& header, bool strict = false) {
    LoadOptions options;
    options.strict = strict;
    return LoadCheckpointFromMemory(Bytes(header, {1, 2, 3, 4, 5}), vars_.get(), options);
  }

  // Expects DataLoss and, with sentences, `text` in the message.
  void ExpectRefused(const std::string& header, const std::string& text) {
    const Status s = Load(header);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << header;
    if (kSentences) {
      EXPECT_NE(std::string(s.message()).find(text), std::string::npos)
          << "missing \"" << text << "\" in: " << s.message() << "\nheader: " << header;
    }
  }
  void ExpectSyntaxError(const std::string& header, size_t offset) {
    ExpectRefused(header, "is not valid JSON: syntax error at byte offset " +
                              std::to_string(offset));
  }

  float Value(int i, int k = 0) const { return vars_->value_data(i)[k]; }

  Arena arena_;
  std::unique_ptr<VariableSet> vars_;
};

// One tensor entry of a header: F32, shape [n], bytes [4 begin, 4 end).
std::string F32(int n, int begin, int end) {
  return "{\"dtype\":\"F32\",\"shape\":[" + std::to_string(n) + "],\"data_offsets\":[" +
         std::to_string(4 * begin) + "," + std::to_string(4 * end) + "]}";
}

TEST_F(HeaderJsonTest, EscapesAndUtf8NamesReachTheirVariables) {
  // \u0061 is "a"; café raw and with \u00e9; U+1F600 as a surrogate pair;
  // the quote, solidus, backslash, newline and DEL as escapes or raw.
  const std::string header = "{\"\\u0061\":" + F32(2, 0, 2) + ",\"caf\\u00E9\":" +
                             F32(1, 2, 3) + ",\"\\ud83d\\ude00\":" + F32(1, 3, 4) +
                             ",\"q\\\"\\/\\\\\\n\x7f\":" + F32(1, 4, 5) + "}";
  const Status s = Load(header, /*strict=*/true);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Value(0, 1), 2.0f);
  EXPECT_EQ(Value(1), 3.0f);
  EXPECT_EQ(Value(2), 4.0f);
  EXPECT_EQ(Value(3), 5.0f);
  // Raw UTF-8 in the header matches too.
  ASSERT_TRUE(Load("{\"caf\xc3\xa9\":" + F32(1, 0, 1) + ",\"\xf0\x9f\x98\x80\":" + F32(1, 1, 5) +
                   "}")
                  .code() == StatusCode::kDataLoss);  // [1] is 4 bytes, not 16
  ASSERT_TRUE(Load("{\"caf\xc3\xa9\":" + F32(1, 0, 1) + ",\"\xf0\x9f\x98\x80\":" + F32(1, 1, 2) +
                   ",\"pad\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]}}")
                  .ok());
  EXPECT_EQ(Value(1), 1.0f);
  EXPECT_EQ(Value(2), 2.0f);
}

// Whitespace between any two tokens, and a header padded with it.
TEST_F(HeaderJsonTest, WhitespaceAnywhere) {
  const std::string ws = " \t\r\n";
  const std::string header = "{" + ws + "\"a\"" + ws + ":" + ws + "{" + ws + "\"dtype\"" + ws +
                             ":" + ws + "\"F32\"" + ws + "," + ws + "\"shape\"" + ws + ":" + ws +
                             "[" + ws + "2" + ws + "]" + ws + "," + ws + "\"data_offsets\"" + ws +
                             ":" + ws + "[" + ws + "0" + ws + "," + ws + "8" + ws + "]" + ws +
                             "}" + ws + "," + ws + "\"rest\"" + ws + ":" + F32(3, 2, 5) + ws +
                             "}" + ws + ws;
  const Status s = Load(header);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Value(0, 0), 1.0f);
}

// Unknown fields of an entry may hold any JSON up to the third level, and
// metadata strings any escapes; both are read and ignored.
TEST_F(HeaderJsonTest, UnknownFieldsAndMetadataAreReadAndIgnored) {
  const std::string extra =
      ",\"extra\":[-1.5e-3,1E+2,0.0,-0,true,false,null,\"s\\t\"],\"o\":{\"k\":1},\"x\":[]";
  const std::string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]" +
                             extra + "},\"rest\":" + F32(3, 2, 5) +
                             ",\"__metadata__\":{\"format\":\"pt\",\"note\":\"\\u00e9\\n\\\"\"}}";
  const Status s = Load(header);
  ASSERT_TRUE(s.ok()) << s.message();
  ExpectRefused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
                "\"extra\":{\"n\":[1]}}}",
                "deeper than the 3 levels");
}

TEST_F(HeaderJsonTest, InvalidUtf8IsASyntaxError) {
  // Each sequence inside the name of {"ab<bytes>":{}}; the error is at the
  // first byte that cannot continue (the sequence starts at offset 4).
  const struct {
    const char* bytes;
    size_t bad;  // offset within the bytes
  } kCases[] = {
      {"\xc0\xaf", 0},          // overlong '/'
      {"\xc1\xbf", 0},          // overlong
      {"\xe0\x80\x80", 1},      // overlong, 3 bytes
      {"\xed\xa0\x80", 1},      // a surrogate, U+D800
      {"\xf0\x80\x80\x80", 1},  // overlong, 4 bytes
      {"\xf4\x90\x80\x80", 1},  // past U+10FFFF
      {"\xf5\x80\x80\x80", 0},  // no such lead byte
      {"\x80", 0},              // a continuation byte alone
      {"\xc3(", 1},             // a lead byte without its continuation
      {"\xe2\x82", 2},          // cut short by the closing quote
  };
  for (const auto& c : kCases) {
    const std::string header = std::string("{\"ab") + c.bytes + "\":{}}";
    SCOPED_TRACE(header);
    ExpectSyntaxError(header, 4 + c.bad);
  }
}

TEST_F(HeaderJsonTest, BadEscapesAndControlCharactersAreSyntaxErrors) {
  ExpectSyntaxError("{\"a\\x\":{}}", 4);                  // no such escape
  ExpectSyntaxError("{\"a\\u00g0\":{}}", 7);              // not hex
  ExpectSyntaxError("{\"\\udc00\":{}}", 7);               // a low surrogate alone
  ExpectSyntaxError("{\"\\ud800x\":{}}", 8);              // a high one not followed by \u
  ExpectSyntaxError("{\"\\ud800\\u0041\":{}}", 13);       // ... nor by a low one
  ExpectSyntaxError(std::string("{\"a\nb\":{}}"), 3);     // a raw control character
  ExpectSyntaxError(std::string("{\"a\0b\":{}}", 10), 3);  // NUL inside a string
  ExpectSyntaxError("{\"a", 3);                           // cut short
}

TEST_F(HeaderJsonTest, NumbersAreJsonNumbersAndCountsAreWhole) {
  ExpectSyntaxError("{\"a\":-}", 6);
  ExpectSyntaxError("{\"a\":1.}", 7);
  ExpectSyntaxError("{\"a\":1e}", 7);
  ExpectSyntaxError("{\"a\":01}", 6);      // a leading zero: "0" then "1"
  ExpectSyntaxError("{\"a\":1e400}", 9);   // too large for a double
  ExpectSyntaxError("{\"a\":.5}", 5);
  ExpectSyntaxError("{\"a\":+1}", 5);
  // Valid numbers that are not whole numbers >= 0 below 2^64.
  for (const char* dim : {"2.0", "2e0", "-0", "-2", "18446744073709551616", "1E400"}) {
    const std::string header = std::string("{\"a\":{\"dtype\":\"F32\",\"shape\":[") + dim +
                               "],\"data_offsets\":[0,8]}}";
    SCOPED_TRACE(header);
    if (std::string(dim) == "1E400") {
      ExpectSyntaxError(header, header.find(dim) + 4);
    } else {
      ExpectRefused(header, std::string("dimension 0 is ") + dim);
    }
  }
  // 2^64 - 1 is whole: the entry is read, and the format refuses its size.
  ExpectRefused("{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551615],\"data_offsets\":[0,8]}}",
                "a: data_offsets [0,8] hold 8 bytes, but shape [18446744073709551615] of F32");
}

TEST_F(HeaderJsonTest, StructureErrors) {
  ExpectSyntaxError("", 0);
  ExpectSyntaxError("   ", 3);
  ExpectSyntaxError("{\"a\":1,}", 7);            // a trailing comma
  ExpectSyntaxError("{\"a\" {}}", 5);            // no colon
  ExpectSyntaxError("{\"a\":[1 2]}", 8);
  ExpectSyntaxError("{1:2}", 1);                 // keys are strings
  ExpectSyntaxError("{} {}", 3);                 // two values
  ExpectSyntaxError("{\"a\":tru}", 8);
  ExpectSyntaxError("\xef\xbb{}", 2);            // half a byte-order mark
  ExpectRefused("[{}]", "the header is a JSON array, not an object");
  ExpectRefused("true", "the header is a JSON boolean, not an object");
  ExpectRefused("\xef\xbb\xbf{}", "the header must start with '{', but its first byte is 0xEF");
  // "a" and "\u0061" are one name.
  ExpectRefused("{\"a\":" + F32(2, 0, 2) + ",\"\\u0061\":" + F32(2, 0, 2) + "}",
                "a: the header names this tensor twice");
  ExpectRefused("[[[[]]]]", "deeper than the 3 levels");
  ExpectRefused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "a: the entry has no data_offsets");
}

// nlohmann-json, which read headers before, ended the text at a NUL byte
// where a token may start; the reader keeps that, so files that loaded
// still load.
TEST_F(HeaderJsonTest, ANulByteAfterTheHeaderEndsIt) {
  const std::string header = "{\"a\":" + F32(2, 0, 2) + ",\"rest\":" + F32(3, 2, 5) + "}";
  ASSERT_TRUE(Load(header + std::string("\0\0 x", 4)).ok());
  ExpectSyntaxError(std::string("{\"a\":\0}", 7), 5);  // where a value must be
}

// The round trip federated fine-tuning makes, on the runtime alone: a device
// fine-tunes the head of a model, exports the head (trainable only), and
// another device with the same model takes it in; the frozen body stays as
// it was on each side.
TEST(CheckpointMemoryRoundTripTest, FineTunedHeadTravelsAsBytes) {
  struct Device {
    Arena arena;
    Sequential model;
    Device() {
      THAW_CHECK(Arena::Create(1 << 18, &arena).ok());
      THAW_CHECK(model.Add(Dense::Make(8, Activation::kRelu), "body").ok());
      THAW_CHECK(model.Add(Dense::Make(3), "head").ok());
      THAW_CHECK(model.Build(/*input_features=*/4, /*max_batch=*/8, &arena, /*seed=*/7).ok());
      THAW_CHECK(model.Compile(OptimizerConfig::Sgd(SgdOptions()),
                               Loss::kSparseCategoricalCrossentropyFromLogits)
                     .ok());
      THAW_CHECK(model.SetTrainable("body", false).ok());
    }
    std::vector<float> Values(const std::string& name) {
      const Variable v = model.variables().Find(name);
      return std::vector<float>(v.value().data(), v.value().data() + v.shape().num_elements());
    }
  };
  Device sender, receiver;
  // The receiver's body differs, to show that it is kept.
  float* body = receiver.model.variables().Find("body.weight").value().data();
  body[0] += 1.0f;
  const std::vector<float> receiver_body = receiver.Values("body.weight");

  std::vector<float> x(8 * 4);
  std::vector<int32_t> labels(8);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 3);
  for (int step = 0; step < 3; ++step) {
    ASSERT_TRUE(sender.model.TrainOnBatch(Examples{x.data(), 8, labels.data(), nullptr, 4}).ok());
  }
  ASSERT_NE(sender.Values("head.weight"), receiver.Values("head.weight"));

  SaveOptions head_only;
  head_only.trainable_only = true;
  size_t size = 0;
  ASSERT_TRUE(CheckpointSize(sender.model.variables(), &size, head_only).ok());
  std::vector<unsigned char> bytes(size);
  size_t written = 0;
  ASSERT_TRUE(SaveCheckpointToMemory(sender.model.variables(), bytes, &written, head_only).ok());
  ASSERT_EQ(written, size);
  // Two F32 tensors, 8 x 3 and 3, after the header.
  EXPECT_GT(size, (8 * 3 + 3) * sizeof(float));

  LoadOptions load;
  load.trainable_only = true;
  const Status loaded = LoadCheckpointFromMemory(bytes, &receiver.model.variables(), load);
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  EXPECT_EQ(receiver.Values("head.weight"), sender.Values("head.weight"));
  EXPECT_EQ(receiver.Values("head.bias"), sender.Values("head.bias"));
  EXPECT_EQ(receiver.Values("body.weight"), receiver_body);

  // A receiver that froze nothing expects the body too (strict), and one
  // that froze the head has nothing trainable to take the head into.
  ASSERT_TRUE(receiver.model.SetTrainable("body", true).ok());
  EXPECT_EQ(LoadCheckpointFromMemory(bytes, &receiver.model.variables(), load).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(receiver.model.SetTrainable("body", false).ok());
  ASSERT_TRUE(receiver.model.SetTrainable("head", false).ok());
  const Status frozen = LoadCheckpointFromMemory(bytes, &receiver.model.variables(), load);
  EXPECT_EQ(frozen.code(), StatusCode::kInvalidArgument);
  if (kSentences) {
    EXPECT_NE(std::string(frozen.message()).find("head.weight: the checkpoint has this tensor, "
                                                 "but the model's variable is not trainable"),
              std::string::npos)
        << frozen.message();
  }

  // The whole model goes the same way without the options.
  ASSERT_TRUE(CheckpointSize(sender.model.variables(), &size).ok());
  bytes.assign(size, 0);
  ASSERT_TRUE(SaveCheckpointToMemory(sender.model.variables(), bytes, &written).ok());
  ASSERT_TRUE(LoadCheckpointFromMemory(bytes, &receiver.model.variables()).ok());
  EXPECT_EQ(receiver.Values("body.weight"), sender.Values("body.weight"));
}

}  // namespace
}  // namespace thaw
