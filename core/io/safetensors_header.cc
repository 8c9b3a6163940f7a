// The JSON header of a safetensors file, read by hand: a strict RFC 8259
// reader that knows where the format puts what, and builds nothing but the
// entries and the metadata. A header is untrusted input, so the reader
//  - accepts JSON only: string escapes (\uXXXX with surrogate pairs), RFC 3629
//    UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF),
//    numbers, whitespace; a UTF-8 byte-order mark before the value (the
//    format then refuses it: the header must start with '{');
//  - stops at the first syntax error, at nesting deeper than a header has
//    ({ entry: { shape: [ n ] } } is 3 levels), at a key repeated within one
//    object (JSON allows it, but a checkpoint naming a tensor twice is
//    ambiguous), at an entry closed without dtype, shape or data_offsets,
//    and past kMaxTensors entries or kMaxHeaderValues values; so a hostile
//    header (100 MB of "[[[[...", or of empty entries) is refused after
//    bounded work;
//  - recurses only as deep as the nesting limit allows (Elements checks the
//    depth before it descends), so no input drives the stack deep;
//  - notes a value of the wrong type (a shape that is a string, a dimension
//    that is negative, 4.0 or above 2^64 - 1, ...) and goes on, so that the
//    text is known to be valid JSON before the header is blamed for a type.
// Values inside unknown fields of an entry are read (they must be JSON, and
// count) and ignored, as readers of the format ignore them.
//
// What it accepts is what nlohmann-json, which parsed these headers before,
// accepted, quirks included: a number too large for a double (1e400) is a
// syntax error, and a NUL byte where a token may start ends the text (so
// "{...}" followed by NUL and anything is read as "{...}"). A syntax error
// names its byte offset as nlohmann-json did: the byte where a token went
// wrong, or the last byte of a well-formed token that may not stand there,
// or the length of the text when it ends early.
#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "core/io/safetensors.h"

namespace thaw {
namespace safetensors {
namespace {

// Bounds on what a header may hold, so that a hostile one costs little time
// and memory before it is refused: no model thaw runs has more tensors, and a
// tensor entry is a handful of JSON values (dtype, shape and its dimensions,
// two offsets).
constexpr size_t kMaxTensors = 65536;
constexpr size_t kMaxHeaderValues = 16 * kMaxTensors;
constexpr int kMaxDepth = 3;

enum class Token {
  kEnd,  // the end of the text
  kBeginObject,
  kEndObject,
  kBeginArray,
  kEndArray,
  kColon,
  kComma,
  kString,
  kNumber,
  kTrue,
  kFalse,
  kNull,
};

enum class Kind { kNull, kBoolean, kNumber, kString, kArray, kObject };

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kNull: return "null";
    case Kind::kBoolean: return "boolean";
    case Kind::kNumber: return "number";
    case Kind::kString: return "string";
    case Kind::kArray: return "array";
    case Kind::kObject: return "object";
  }
  return "value";
}

// A value that was read: what it is and where its text lies, to check its
// type and to show it in a message.
struct Value {
  Kind kind = Kind::kNull;
  size_t begin = 0;  // its text is [begin, end)
  size_t end = 0;
  size_t count = 0;     // array or object: its elements
  bool nested = false;  // array or object: an element is an array or object
  bool whole = false;   // a number that is an integer in [0, 2^64)
  uint64_t number = 0;  // its value, when whole
};

class HeaderReader {
 public:
  HeaderReader(const char* source, const unsigned char* text, size_t size)
      : source_(source), text_(text), size_(size) {}

  Status Read(std::vector<Entry>* entries, Metadata* metadata) {
    entries_ = entries;
    metadata_ = metadata;
    entries_->clear();
    metadata_->clear();
    // After the value, the end of the text (or a NUL byte) and nothing else.
    if (SkipByteOrderMark() && Next() && Header() && Next() &&
        (token_ == Token::kEnd || Unexpected())) {
      return wrong_type_;
    }
    return stop_;
  }

 private:
  // ---- Lexer: the next token from pos_ into token_, token_begin_,
  // token_end_ and, for a string, string_ (decoded) or, for a number,
  // whole_ and number_. False after a syntax error (stop_ says where).

  bool SkipByteOrderMark() {
    if (size_ == 0 || text_[0] != 0xEF) return true;
    for (pos_ = 1; pos_ < 3; ++pos_) {
      if (pos_ == size_ || text_[pos_] != (pos_ == 1 ? 0xBB : 0xBF)) return SyntaxError(pos_);
    }
    return true;
  }

  bool Next() {
    while (pos_ < size_ && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                            text_[pos_] == '\r')) {
      ++pos_;
    }
    token_begin_ = pos_;
    if (pos_ == size_) {
      token_ = Token::kEnd;
      token_end_ = pos_;
      return true;
    }
    if (text_[pos_] == '\0') {  // ends the text where a token may start (see the top)
      token_ = Token::kEnd;
      token_end_ = ++pos_;
      return true;
    }
    const unsigned char c = text_[pos_];
    switch (c) {
      case '{': return Single(Token::kBeginObject);
      case '}': return Single(Token::kEndObject);
      case '[': return Single(Token::kBeginArray);
      case ']': return Single(Token::kEndArray);
      case ':': return Single(Token::kColon);
      case ',': return Single(Token::kComma);
      case '"': return String();
      case 't': return Literal("true", Token::kTrue);
      case 'f': return Literal("false", Token::kFalse);
      case 'n': return Literal("null", Token::kNull);
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return Number();
        return SyntaxError(pos_);
    }
  }

  bool Single(Token token) {
    token_ = token;
    token_end_ = ++pos_;
    return true;
  }

  bool Literal(const char* word, Token token) {
    for (const char* w = word; *w != '\0'; ++w, ++pos_) {
      if (pos_ == size_ || text_[pos_] != static_cast<unsigned char>(*w)) return SyntaxError(pos_);
    }
    token_ = token;
    token_end_ = pos_;
    return true;
  }

  bool IsDigit(size_t at) const { return at < size_ && text_[at] >= '0' && text_[at] <= '9'; }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; whole when it has no
  // sign, fraction or exponent and fits 64 bits (4.0 and 1e2 are not whole,
  // as a JSON library types them).
  bool Number() {
    const bool negative = text_[pos_] == '-';
    if (negative) ++pos_;
    if (!IsDigit(pos_)) return SyntaxError(pos_);
    whole_ = !negative;
    number_ = 0;
    if (text_[pos_] == '0') {
      ++pos_;
    } else {
      for (; IsDigit(pos_); ++pos_) {
        const uint64_t digit = text_[pos_] - '0';
        if (__builtin_mul_overflow(number_, uint64_t{10}, &number_) ||
            __builtin_add_overflow(number_, digit, &number_)) {
          whole_ = false;
        }
      }
    }
    if (pos_ < size_ && text_[pos_] == '.') {
      whole_ = false;
      if (!IsDigit(++pos_)) return SyntaxError(pos_);
      while (IsDigit(pos_)) ++pos_;
    }
    if (pos_ < size_ && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      whole_ = false;
      ++pos_;
      if (pos_ < size_ && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (!IsDigit(pos_)) return SyntaxError(pos_);
      while (IsDigit(pos_)) ++pos_;
    }
    token_ = Token::kNumber;
    token_end_ = pos_;
    // A number that is not whole is a double to JSON libraries; one too
    // large for a double is refused, at its last byte.
    // (strtod reads the decimal point of the C locale in force.)
    if (!whole_) {
      std::string digits(reinterpret_cast<const char*>(text_) + token_begin_,
                         token_end_ - token_begin_);
      std::replace(digits.begin(), digits.end(), '.', *std::localeconv()->decimal_point);
      if (!std::isfinite(std::strtod(digits.c_str(), nullptr))) return SyntaxError(token_end_ - 1);
    }
    return true;
  }

  // The 4 hex digits of a \u escape at pos_ into *code.
  bool Hex4(uint32_t* code) {
    *code = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      if (pos_ == size_) return SyntaxError(pos_);
      const unsigned char c = text_[pos_];
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return SyntaxError(pos_);
      }
      *code = *code * 16 + digit;
    }
    return true;
  }

  void AppendUtf8(uint32_t code) {
    if (code < 0x80) {
      string_.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      string_.push_back(static_cast<char>(0xC0 | (code >> 6)));
      string_.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      string_.push_back(static_cast<char>(0xE0 | (code >> 12)));
      string_.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      string_.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      string_.push_back(static_cast<char>(0xF0 | (code >> 18)));
      string_.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      string_.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      string_.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  // A \ escape; pos_ is at the byte after the backslash.
  bool Escape() {
    if (pos_ == size_) return SyntaxError(pos_);
    const unsigned char c = text_[pos_++];
    switch (c) {
      case '"': string_.push_back('"'); return true;
      case '\\': string_.push_back('\\'); return true;
      case '/': string_.push_back('/'); return true;
      case 'b': string_.push_back('\b'); return true;
      case 'f': string_.push_back('\f'); return true;
      case 'n': string_.push_back('\n'); return true;
      case 'r': string_.push_back('\r'); return true;
      case 't': string_.push_back('\t'); return true;
      case 'u': break;
      default: return SyntaxError(pos_ - 1);
    }
    uint32_t code;
    if (!Hex4(&code)) return false;
    // A lone low surrogate is an error at its last digit; a high one must be
    // followed by \u and a low one.
    if (code >= 0xDC00 && code <= 0xDFFF) return SyntaxError(pos_ - 1);
    if (code >= 0xD800 && code <= 0xDBFF) {
      for (const char expected : {'\\', 'u'}) {
        if (pos_ == size_ || text_[pos_] != expected) return SyntaxError(pos_);
        ++pos_;
      }
      uint32_t low;
      if (!Hex4(&low)) return false;
      if (low < 0xDC00 || low > 0xDFFF) return SyntaxError(pos_ - 1);
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    AppendUtf8(code);
    return true;
  }

  bool String() {
    string_.clear();
    ++pos_;  // the opening quote
    for (;;) {
      if (pos_ == size_) return SyntaxError(pos_);
      const unsigned char c = text_[pos_];
      if (c == '"') break;
      if (c < 0x20) return SyntaxError(pos_);  // a control character must be escaped
      if (c == '\\') {
        ++pos_;
        if (!Escape()) return false;
      } else if (c < 0x80) {
        string_.push_back(static_cast<char>(c));
        ++pos_;
      } else {
        size_t bad = 0;
        const size_t length = Utf8Sequence(text_ + pos_, size_ - pos_, &bad);
        if (length == 0) return SyntaxError(pos_ + bad);
        string_.append(reinterpret_cast<const char*>(text_ + pos_), length);
        pos_ += length;
      }
    }
    token_ = Token::kString;
    token_end_ = ++pos_;
    return true;
  }

  // ---- Parser ----

  // The header: an object of entries and "__metadata__", or another value,
  // which is read (it must be JSON) and refused.
  bool Header() {
    Value header;
    if (token_ != Token::kBeginObject) {
      if (!ParseValue(0, &header)) return false;
      if (wrong_type_.ok()) {
        wrong_type_ = DataLoss("%s: the header is a JSON %s, not an object", source_,
                               KindName(header.kind));
      }
      return true;
    }
    return Elements(0, &header, [&](size_t, const std::string& key) {
      return key == kMetadataKey ? ReadMetadata() : ReadEntry(key);
    });
  }

  // "__metadata__": an object of strings.
  bool ReadMetadata() {
    Value metadata;
    if (token_ != Token::kBeginObject) {
      if (!ParseValue(1, &metadata)) return false;
      if (wrong_type_.ok()) {
        wrong_type_ = DataLoss("%s: %s must be an object of strings, found %s", source_,
                               kMetadataKey, Describe(metadata).c_str());
      }
      return true;
    }
    return Elements(1, &metadata, [&](size_t, const std::string& key) {
      Value value;
      if (!ParseValue(2, &value)) return false;
      if (value.kind == Kind::kString) {
        metadata_->emplace_back(key, string_);
      } else if (wrong_type_.ok()) {
        wrong_type_ = DataLoss("%s: %s: the value of \"%s\" must be a string, found %s", source_,
                               kMetadataKey, key.c_str(), Describe(value).c_str());
      }
      return true;
    });
  }

  // A tensor: an object with dtype (a string), shape (an array of whole
  // numbers) and data_offsets (two whole numbers); other fields are ignored.
  bool ReadEntry(const std::string& name) {
    if (++tensors_ > kMaxTensors) return TooLarge();
    const char* n = name.c_str();
    Value entry;
    if (token_ != Token::kBeginObject) {
      if (!ParseValue(1, &entry)) return false;
      if (wrong_type_.ok()) {
        wrong_type_ = DataLoss("%s: %s: the entry must be an object with dtype, shape and "
                               "data_offsets, found %s",
                               source_, n, Describe(entry).c_str());
      }
      return true;
    }
    entries_->emplace_back();
    Entry& e = entries_->back();  // stays in place: entries are added at depth 1 only
    e.name = name;
    bool has_dtype = false, has_shape = false, has_offsets = false;
    const bool read = Elements(1, &entry, [&](size_t, const std::string& key) {
      if (key == "dtype") {
        has_dtype = true;
        Value dtype;
        if (!ParseValue(2, &dtype)) return false;
        if (dtype.kind == Kind::kString) {
          e.dtype = string_;
        } else if (wrong_type_.ok()) {
          wrong_type_ = DataLoss("%s: %s: dtype must be a string, found %s", source_, n,
                                 Describe(dtype).c_str());
        }
        return true;
      }
      if (key == "shape") {
        has_shape = true;
        Value shape, bad;
        size_t bad_index = 0;
        if (!WholeNumbers(&shape, &e.dims, &bad_index, &bad)) return false;
        if (shape.kind != Kind::kArray) {
          if (wrong_type_.ok()) {
            wrong_type_ = DataLoss("%s: %s: shape must be an array of non-negative integers, "
                                   "found %s",
                                   source_, n, Describe(shape).c_str());
          }
        } else if (e.dims.size() != shape.count && wrong_type_.ok()) {
          wrong_type_ = DataLoss("%s: %s: shape %s must hold non-negative integers, but "
                                 "dimension %zu is %s",
                                 source_, n, Describe(shape).c_str(), bad_index,
                                 Describe(bad).c_str());
        }
        return true;
      }
      if (key == "data_offsets") {
        has_offsets = true;
        Value offsets, bad;
        size_t bad_index = 0;
        std::vector<uint64_t> numbers;
        if (!WholeNumbers(&offsets, &numbers, &bad_index, &bad)) return false;
        if (offsets.kind == Kind::kArray && offsets.count == 2 && numbers.size() == 2) {
          e.begin = numbers[0];
          e.end = numbers[1];
        } else if (wrong_type_.ok()) {
          wrong_type_ = DataLoss("%s: %s: data_offsets must be two non-negative integers "
                                 "[begin,end], found %s",
                                 source_, n, Describe(offsets).c_str());
        }
        return true;
      }
      Value ignored;
      return ParseValue(2, &ignored);
    });
    if (!read) return false;
    const char* missing = !has_dtype ? "dtype" : !has_shape ? "shape" : !has_offsets ? "data_offsets"
                                                                                      : nullptr;
    if (missing != nullptr) return Stop(DataLoss("%s: %s: the entry has no %s", source_, n, missing));
    return true;
  }

  // The value of shape or data_offsets (depth 2): when it is an array, its
  // elements while they are whole numbers go to *numbers, and the first that
  // is not to *bad_index and *bad.
  bool WholeNumbers(Value* array, std::vector<uint64_t>* numbers, size_t* bad_index, Value* bad) {
    if (token_ != Token::kBeginArray) return ParseValue(2, array);
    bool all_whole = true;
    return Elements(2, array, [&](size_t index, const std::string&) {
      Value element;
      if (!ParseValue(3, &element)) return false;
      if (all_whole && element.whole) {
        numbers->push_back(element.number);
      } else if (all_whole) {
        all_whole = false;
        *bad_index = index;
        *bad = element;
      }
      return true;
    });
  }

  // Any value at `depth` (the arrays and objects around it), read and
  // described in *v.
  bool ParseValue(int depth, Value* v) {
    switch (token_) {
      case Token::kBeginObject:
      case Token::kBeginArray:
        return Elements(depth, v, [&](size_t, const std::string&) {
          Value element;
          return ParseValue(depth + 1, &element);
        });
      case Token::kString: v->kind = Kind::kString; break;
      case Token::kNumber: v->kind = Kind::kNumber; break;
      case Token::kTrue:
      case Token::kFalse: v->kind = Kind::kBoolean; break;
      case Token::kNull: v->kind = Kind::kNull; break;
      default: return Unexpected();
    }
    v->begin = token_begin_;
    v->end = token_end_;
    v->whole = token_ == Token::kNumber && whole_;
    v->number = number_;
    return CountValue();
  }

  // The array or object that starts at the current token, at `depth`:
  // on_element(index, key) reads each element from its first token (key is
  // "" in an array). Keys must differ within the object.
  template <class OnElement>
  bool Elements(int depth, Value* v, OnElement&& on_element) {
    const bool object = token_ == Token::kBeginObject;
    v->kind = object ? Kind::kObject : Kind::kArray;
    v->begin = token_begin_;
    v->count = 0;
    v->nested = false;
    if (!CountValue()) return false;
    if (depth + 1 > kMaxDepth) {
      return Stop(DataLoss("%s: the header nests arrays or objects deeper than the %d levels a "
                           "safetensors header has",
                           source_, kMaxDepth));
    }
    std::set<std::string>& keys = keys_[depth];  // one object per depth is open at a time
    if (object) keys.clear();
    const Token close = object ? Token::kEndObject : Token::kEndArray;
    if (!Next()) return false;
    if (token_ != close) {
      for (;;) {
        const std::string* key = &no_key_;
        if (object) {
          if (token_ != Token::kString) return Unexpected();
          const auto inserted = keys.insert(string_);
          if (!inserted.second) return RepeatedKey(depth, string_);
          key = &*inserted.first;
          if (!Next()) return false;
          if (token_ != Token::kColon) return Unexpected();
          if (!Next()) return false;
        }
        v->nested |= token_ == Token::kBeginObject || token_ == Token::kBeginArray;
        if (!on_element(v->count++, *key) || !Next()) return false;
        if (token_ == close) break;
        if (token_ != Token::kComma) return Unexpected();
        if (!Next()) return false;
      }
    }
    v->end = token_end_;
    return true;
  }

  // ---- Problems ----

  bool CountValue() { return ++values_ <= kMaxHeaderValues || TooLarge(); }

  bool Stop(Status status) {
    stop_ = std::move(status);
    return false;
  }
  bool SyntaxError(size_t offset) {
    return Stop(DataLoss("%s: the header (%zu bytes) is not valid JSON: syntax error at byte "
                         "offset %zu",
                         source_, size_, offset));
  }
  // The current token may not stand here: the error is at its last byte, or
  // at the length of the text when the text ended.
  bool Unexpected() { return SyntaxError(token_end_ > token_begin_ ? token_end_ - 1 : size_); }
  bool TooLarge() {
    return Stop(DataLoss("%s: the header holds more than %zu tensors or %zu JSON values, more "
                         "than thaw reads",
                         source_, kMaxTensors, kMaxHeaderValues));
  }
  bool RepeatedKey(int depth, const std::string& key) {
    if (depth == 0) {
      return Stop(DataLoss("%s: %s: the header names this tensor twice", source_, key.c_str()));
    }
    return Stop(DataLoss("%s: the header repeats the key \"%s\" within one entry", source_,
                         key.c_str()));
  }

  // A value for a message, compact and short: its text without the spaces
  // between tokens, cut at 60 bytes; an array or object of more than 16
  // elements, or holding arrays or objects, as "[... 17 values]" or
  // "{... 3 keys}".
  std::string Describe(const Value& v) const {
    const bool container = v.kind == Kind::kArray || v.kind == Kind::kObject;
    if (container && (v.count > 16 || v.nested)) {
      return (v.kind == Kind::kArray ? "[... " : "{... ") + std::to_string(v.count) +
             (v.kind == Kind::kArray ? " values]" : " keys}");
    }
    constexpr size_t kShown = 60;
    std::string text;
    bool in_string = false, escaped = false;
    for (size_t i = v.begin; i < v.end && text.size() <= kShown; ++i) {
      const char c = static_cast<char>(text_[i]);
      if (in_string) {
        in_string = escaped || c != '"';
        escaped = !escaped && c == '\\';
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        continue;
      } else {
        in_string = c == '"';
      }
      text.push_back(c);
    }
    if (text.size() > kShown) text = text.substr(0, kShown - 3) + "...";
    return text;
  }

  const char* source_;
  const unsigned char* text_;
  size_t size_;
  std::vector<Entry>* entries_ = nullptr;
  Metadata* metadata_ = nullptr;

  size_t pos_ = 0;
  Token token_ = Token::kEnd;
  size_t token_begin_ = 0;
  size_t token_end_ = 0;
  std::string string_;
  bool whole_ = false;
  uint64_t number_ = 0;

  size_t values_ = 0;
  size_t tensors_ = 0;
  std::set<std::string> keys_[kMaxDepth];  // of the object open at each depth
  const std::string no_key_;                // the key of an array's elements
  Status stop_;        // what stopped the reader
  Status wrong_type_;  // the first value of the wrong type
};

}  // namespace

Status ReadHeaderJson(const char* source, const unsigned char* text, size_t text_bytes,
                      std::vector<Entry>* entries, Metadata* metadata) {
  HeaderReader reader(source, text, text_bytes);
  return reader.Read(entries, metadata);
}

}  // namespace safetensors
}  // namespace thaw
