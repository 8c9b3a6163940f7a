#include "core/io/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "platform/files.h"

// nlohmann::json is used only through calls that cannot throw on bad input:
// sax_parse() with a handler of ours (the parser itself never throws; the
// handler decides), parse(..., allow_exceptions=false) + is_discarded(), type
// tests (is_object(), is_number_unsigned(), ...), find(), get_ptr() and dump()
// with the `replace` error handler; and a JSON tree is built only for a header
// that is already known to be wrong (its destructor allocates). Allocation
// failures (std::bad_alloc) become a Status at the API's entry points.

namespace thaw {
namespace safetensors {
namespace {

using Json = nlohmann::json;

// The reference implementation (huggingface/safetensors) refuses larger
// headers; so does thaw, before allocating anything for one.
constexpr uint64_t kMaxHeaderBytes = 100000000;
constexpr const char kMetadataKey[] = "__metadata__";
// Bounds on what a header may hold, so that a hostile one costs little time
// and memory before it is refused: no model thaw runs has more tensors, and a
// tensor entry is a handful of JSON values (dtype, shape and its dimensions,
// two offsets).
constexpr size_t kMaxTensors = 65536;
constexpr size_t kMaxHeaderValues = 16 * kMaxTensors;

unsigned long long U(uint64_t v) { return static_cast<unsigned long long>(v); }


// Bytes per element of the safetensors dtypes; 0 for names thaw does not know
// (newer or sub-byte types), whose byte length it then cannot check.
size_t DtypeBytes(const std::string& dtype) {
  static const struct {
    const char* name;
    size_t bytes;
  } kDtypes[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
                 {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
                 {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  for (const auto& d : kDtypes) {
    if (dtype == d.name) return d.bytes;
  }
  return 0;
}

// RFC 3629 UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF):
// what a JSON parser accepts in a string, so a name that passes can be read back.
bool IsValidUtf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    int extra;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the 2nd byte
    if (c < 0x80) {
      extra = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      const unsigned char b = p[i];
      if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    p += 1 + extra;
  }
  return true;
}

// A JSON value for a message: compact and short. Only scalars and flat
// arrays/objects are printed (the scan below bounds the depth anyway).
std::string Describe(const Json& value) {
  if (value.is_structured()) {
    bool flat = value.size() <= 16;
    for (auto it = value.begin(); flat && it != value.end(); ++it) flat = !it->is_structured();
    if (!flat) {  // "[... 17 values]", "{... 3 keys}"
      return value.is_array() ? "[... " + std::to_string(value.size()) + " values]"
                              : "{... " + std::to_string(value.size()) + " keys}";
    }
  }
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

// A count (BatchNorm's num_batches_tracked) as thaw keeps it: a float holding
// a whole number >= 0 below 2^63, so that it saves as the same int64.
bool IsCount(float v) {
  return v >= 0.0f && v < 9.2233720368547758e18f && v == std::trunc(v);
}
// An int64 count from a file that a float holds exactly.
bool IsCount(int64_t v) {
  const float f = static_cast<float>(v);
  return v >= 0 && f < 9.2233720368547758e18f && static_cast<int64_t>(f) == v;
}

std::string DimsToString(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

// Appends `s` (valid UTF-8) as a JSON string, escaped as nlohmann::json's
// dump() escapes: the quote and the backslash, the short forms \b \f \n \r \t,
// other control characters as \u00xx, nothing else; so the bytes match the
// files earlier versions wrote.
void AppendJsonString(const std::string& s, std::string* out) {
  out->push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
          *out += escaped;
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}


// The checks of a parsed entry that concern its numbers: the shape's size,
// and offsets in order, inside the data section and as long as the shape
// and dtype say. `data_bytes` is the size of the data section.
Status CheckEntry(const std::string& path, uint64_t data_bytes, const Entry& e) {
  const char* p = path.c_str();
  const char* n = e.name.c_str();
  uint64_t elements = 1;
  for (const uint64_t d : e.dims) {
    if (__builtin_mul_overflow(elements, d, &elements)) {
      return DataLoss("%s: %s: shape %s has more elements than fit in 64 bits", p, n,
                      DimsToString(e.dims).c_str());
    }
  }
  if (e.begin > e.end) {
    return DataLoss("%s: %s: data_offsets [%llu,%llu] end before they begin", p, n,
                    U(e.begin), U(e.end));
  }
  if (e.end > data_bytes) {
    return DataLoss("%s: %s: data_offsets [%llu,%llu] run past the end of the data section, "
                    "which holds %llu bytes",
                    p, n, U(e.begin), U(e.end), U(data_bytes));
  }
  const size_t element_bytes = DtypeBytes(e.dtype);
  uint64_t bytes = 0;
  if (element_bytes != 0 &&
      (__builtin_mul_overflow(elements, element_bytes, &bytes) ||
       bytes != e.end - e.begin)) {
    return DataLoss("%s: %s: data_offsets [%llu,%llu] hold %llu bytes, but shape %s of %s "
                    "needs %llu x %zu bytes",
                    p, n, U(e.begin), U(e.end), U(e.end - e.begin),
                    DimsToString(e.dims).c_str(), e.dtype.c_str(), U(elements),
                    element_bytes);
  }
  return Status::Ok();
}

// Checks one header entry (everything that does not depend on the model) and
// fills *entry. `data_bytes` is the size of the data section.
Status ParseEntry(const std::string& path, const std::string& name, const Json& value,
                  uint64_t data_bytes, Entry* entry) {
  const char* p = path.c_str();
  const char* n = name.c_str();
  if (!value.is_object()) {
    return DataLoss("%s: %s: the entry must be an object with dtype, shape and data_offsets, "
                    "found %s",
                    p, n, Describe(value).c_str());
  }
  entry->name = name;

  const auto dtype = value.find("dtype");
  if (dtype == value.end()) return DataLoss("%s: %s: the entry has no dtype", p, n);
  if (!dtype->is_string()) {
    return DataLoss("%s: %s: dtype must be a string, found %s", p, n, Describe(*dtype).c_str());
  }
  entry->dtype = *dtype->get_ptr<const Json::string_t*>();

  const auto shape = value.find("shape");
  if (shape == value.end()) return DataLoss("%s: %s: the entry has no shape", p, n);
  if (!shape->is_array()) {
    return DataLoss("%s: %s: shape must be an array of non-negative integers, found %s", p, n,
                    Describe(*shape).c_str());
  }
  for (size_t i = 0; i < shape->size(); ++i) {
    const Json& dim = (*shape)[i];
    if (!dim.is_number_unsigned()) {
      return DataLoss("%s: %s: shape %s must hold non-negative integers, but dimension %zu is %s",
                      p, n, Describe(*shape).c_str(), i, Describe(dim).c_str());
    }
    entry->dims.push_back(*dim.get_ptr<const Json::number_unsigned_t*>());
  }

  const auto offsets = value.find("data_offsets");
  if (offsets == value.end()) return DataLoss("%s: %s: the entry has no data_offsets", p, n);
  if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    return DataLoss("%s: %s: data_offsets must be two non-negative integers [begin,end], "
                    "found %s",
                    p, n, Describe(*offsets).c_str());
  }
  entry->begin = *(*offsets)[0].get_ptr<const Json::number_unsigned_t*>();
  entry->end = *(*offsets)[1].get_ptr<const Json::number_unsigned_t*>();
  return CheckEntry(path, data_bytes, *entry);
}

Status CheckMetadata(const std::string& path, const Json& value) {
  if (!value.is_object()) {
    return DataLoss("%s: %s must be an object of strings, found %s", path.c_str(), kMetadataKey,
                    Describe(value).c_str());
  }
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!it->is_string()) {
      return DataLoss("%s: %s: the value of \"%s\" must be a string, found %s", path.c_str(),
                      kMetadataKey, it.key().c_str(), Describe(*it).c_str());
    }
  }
  return Status::Ok();
}

// The pass over the header text: a SAX handler that builds no JSON tree. It
// stops at the first syntax error, at a key repeated within one object, at
// nesting deeper than a safetensors header has ({ entry: { shape: [ n ] } } is
// 3 levels), at a tensor entry without dtype, shape or data_offsets, and past
// kMaxTensors entries or kMaxHeaderValues values; so a hostile header (100 MB
// of "[[[[...", or of empty entries) is refused after bounded work. Along the
// way it collects the entries. When every value has the type safetensors
// gives it (conforming()), those entries are the header's; otherwise the
// header is parsed again into a tree, only to say what is wrong (a JSON tree
// may allocate even when it is destroyed, so a good header never makes one).
//
// JSON allows a key twice and nlohmann::json would keep the last value; a
// checkpoint that names a tensor twice is ambiguous, so it is rejected.
class HeaderScan final : public nlohmann::json_sax<Json> {
 public:
  static constexpr int kMaxDepth = 3;

  // What stopped the scan, or kNone.
  enum class Problem { kNone, kSyntax, kTooDeep, kRepeatedKey, kMissingField, kTooLarge };
  Problem problem() const { return problem_; }
  // Offset in the text of the byte where the syntax error showed.
  size_t error_offset() const { return error_position_ > 0 ? error_position_ - 1 : 0; }
  // kRepeatedKey: the key and the depth of its object; kMissingField: the
  // tensor and the field it lacks.
  const std::string& key() const { return key_; }
  int repeated_depth() const { return repeated_depth_; }
  const char* missing_field() const { return missing_field_; }
  // Every value where safetensors puts one of its type: the entries are whole.
  bool conforming() const { return conforming_; }
  std::vector<Entry>& entries() { return entries_; }
  Metadata& metadata() { return metadata_; }

  bool null() override { return Scalar(); }
  bool boolean(bool) override { return Scalar(); }
  bool number_integer(number_integer_t) override { return Scalar(); }
  bool number_unsigned(number_unsigned_t value) override {
    if (!Value()) return false;
    if (depth_ == 3 && field_ == Field::kShape) {
      entries_.back().dims.push_back(value);
    } else if (depth_ == 3 && field_ == Field::kOffsets) {
      uint64_t* slot = offsets_ == 0 ? &entries_.back().begin : &entries_.back().end;
      if (offsets_++ < 2) *slot = value;
    } else {
      Unexpected();
    }
    return true;
  }
  bool number_float(number_float_t, const string_t&) override { return Scalar(); }
  bool string(string_t& value) override {
    if (!Value()) return false;
    if (depth_ == 2 && field_ == Field::kDtype) {
      entries_.back().dtype = value;
    } else if (depth_ == 2 && in_metadata_) {
      metadata_.emplace_back(metadata_key_, value);
    } else {
      Unexpected();
    }
    return true;
  }
  bool binary(binary_t&) override { return Scalar(); }
  bool start_object(std::size_t) override {
    if (!Value() || !Enter()) return false;
    keys_.emplace_back();
    if (depth_ == 2) {
      fields_ = 0;
      if (!in_metadata_) {
        entries_.emplace_back();
        entries_.back().name = entry_;
      }
    } else if (depth_ != 1) {
      Unexpected();
    }
    return true;
  }
  bool key(string_t& key) override {
    if (!keys_.back().insert(key).second) {
      problem_ = Problem::kRepeatedKey;
      key_ = key;
      repeated_depth_ = depth_;
      return false;
    }
    if (depth_ == 1) {
      entry_ = key;
      field_ = Field::kNone;
      in_metadata_ = key == kMetadataKey;
      if (!in_metadata_ && ++tensors_ > kMaxTensors) {
        problem_ = Problem::kTooLarge;
        return false;
      }
    } else if (depth_ == 2 && in_metadata_) {
      metadata_key_ = key;
    } else if (depth_ == 2 && !in_metadata_) {
      field_ = key == "dtype" ? Field::kDtype
               : key == "shape" ? Field::kShape
               : key == "data_offsets" ? Field::kOffsets
                                       : Field::kOther;
      fields_ |= key == "dtype" ? 1 : key == "shape" ? 2 : key == "data_offsets" ? 4 : 0;
    }
    return true;
  }
  bool end_object() override {
    keys_.pop_back();
    if (depth_ == 2) field_ = Field::kNone;
    if (depth_-- == 2 && !in_metadata_ && fields_ != 7) {
      problem_ = Problem::kMissingField;
      key_ = entry_;
      missing_field_ = (fields_ & 1) == 0 ? "dtype" : (fields_ & 2) == 0 ? "shape" : "data_offsets";
      return false;
    }
    return true;
  }
  bool start_array(std::size_t) override {
    if (!Value() || !Enter()) return false;
    offsets_ = 0;
    if (depth_ != 3 || (field_ != Field::kShape && field_ != Field::kOffsets)) Unexpected();
    return true;
  }
  bool end_array() override {
    if (depth_-- == 3 && field_ == Field::kOffsets && offsets_ != 2) Unexpected();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    problem_ = Problem::kSyntax;
    error_position_ = position;  // bytes read, the bad one included
    return false;
  }

 private:
  enum class Field { kNone, kDtype, kShape, kOffsets, kOther };

  bool Value() {
    if (++values_ <= kMaxHeaderValues) return true;
    problem_ = Problem::kTooLarge;
    return false;
  }
  bool Enter() {
    if (++depth_ <= kMaxDepth) return true;
    problem_ = Problem::kTooDeep;
    return false;
  }
  // A scalar other than a string or a non-negative integer: only an unknown
  // field of an entry may hold one.
  bool Scalar() {
    if (!Value()) return false;
    Unexpected();
    return true;
  }
  // A value of a type safetensors does not put there, unless it is inside an
  // unknown field of an entry (which readers ignore).
  void Unexpected() {
    if (!(depth_ >= 2 && !in_metadata_ && field_ == Field::kOther)) conforming_ = false;
  }

  int depth_ = 0;
  size_t values_ = 0;
  size_t tensors_ = 0;
  std::vector<std::set<std::string>> keys_;  // per open object
  std::string entry_;                        // the current depth-1 key
  bool in_metadata_ = false;                 // inside "__metadata__"
  Field field_ = Field::kNone;               // the current key of an entry
  unsigned fields_ = 0;                      // dtype 1, shape 2, data_offsets 4 seen
  size_t offsets_ = 0;                       // values in the current array
  bool conforming_ = true;
  std::vector<Entry> entries_;
  Metadata metadata_;
  std::string metadata_key_;  // the current key inside "__metadata__"
  Problem problem_ = Problem::kNone;
  size_t error_position_ = 0;
  std::string key_;
  int repeated_depth_ = 0;
  const char* missing_field_ = "";
};

// The header of a scan that was not conforming(), parsed into a JSON tree to
// say what is wrong with it: the entries in name order, each checked.
Status ParseHeaderTree(const std::string& path, const unsigned char* text, uint64_t text_bytes,
                       uint64_t data_bytes, std::vector<Entry>* entries) {
  const char* p = path.c_str();
  // Known to be valid and shallow (the scan).
  const Json header = Json::parse(text, text + text_bytes, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    return DataLoss("%s: the header (%llu bytes) is not valid JSON", p, U(text_bytes));
  }
  if (!header.is_object()) {
    return DataLoss("%s: the header is a JSON %s, not an object", p, header.type_name());
  }

  entries->clear();
  entries->reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == kMetadataKey) {
      THAW_RETURN_IF_ERROR(CheckMetadata(path, *it));
      continue;
    }
    entries->emplace_back();
    THAW_RETURN_IF_ERROR(ParseEntry(path, it.key(), *it, data_bytes, &entries->back()));
  }
  return Status::Ok();
}

// Parses the header text into entries and checks each, and that they tile
// the data section.
Status ParseHeader(const std::string& path, const unsigned char* text, uint64_t text_bytes,
                   uint64_t data_bytes, Contents* out) {
  std::vector<Entry>* entries = &out->entries;
  const char* p = path.c_str();
  HeaderScan scan;
  Json::sax_parse(text, text + text_bytes, &scan);
  switch (scan.problem()) {
    case HeaderScan::Problem::kNone:
      break;
    case HeaderScan::Problem::kSyntax:
      return DataLoss("%s: the header (%llu bytes) is not valid JSON: syntax error at byte "
                      "offset %zu",
                      p, U(text_bytes), scan.error_offset());
    case HeaderScan::Problem::kTooDeep:
      return DataLoss("%s: the header nests arrays or objects deeper than the %d levels a "
                      "safetensors header has",
                      p, HeaderScan::kMaxDepth);
    case HeaderScan::Problem::kRepeatedKey:
      if (scan.repeated_depth() == 1) {
        return DataLoss("%s: %s: the header names this tensor twice", p, scan.key().c_str());
      }
      return DataLoss("%s: the header repeats the key \"%s\" within one entry", p,
                      scan.key().c_str());
    case HeaderScan::Problem::kMissingField:
      return DataLoss("%s: %s: the entry has no %s", p, scan.key().c_str(),
                      scan.missing_field());
    case HeaderScan::Problem::kTooLarge:
      return DataLoss("%s: the header holds more than %zu tensors or %zu JSON values, more than "
                      "thaw reads",
                      p, kMaxTensors, kMaxHeaderValues);
  }
  if (scan.conforming()) {
    *entries = std::move(scan.entries());
    out->metadata = std::move(scan.metadata());
    for (const Entry& e : *entries) THAW_RETURN_IF_ERROR(CheckEntry(path, data_bytes, e));
  } else {
    // Something in it has the wrong type: the tree says what.
    THAW_RETURN_IF_ERROR(ParseHeaderTree(path, text, text_bytes, data_bytes, entries));
    return DataLoss("%s: the header holds a value of the wrong type", path.c_str());
  }
  // As the reference implementation: the object starts at the first byte (no
  // byte-order mark, which the JSON parser would skip, nor leading spaces).
  if (text[0] != '{') {
    return DataLoss("%s: the header must start with '{', but its first byte is 0x%02X (a "
                    "byte-order mark or leading space is not allowed)",
                    p, text[0]);
  }

  // The tensors tile the data section, as the reference implementation
  // requires: sorted by offsets, each starts where the ones before it end (no
  // shared bytes, no gaps), and the last ends at the end of the file.
  std::vector<const Entry*> sorted;
  sorted.reserve(entries->size());
  for (const Entry& e : *entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const Entry* previous = nullptr;
  uint64_t covered = 0;  // where the tensors so far end
  for (const Entry* e : sorted) {
    if (e->begin < covered) {
      return DataLoss("%s: tensors %s [%llu,%llu] and %s [%llu,%llu] overlap in the data section",
                      p, previous->name.c_str(), U(previous->begin), U(previous->end),
                      e->name.c_str(), U(e->begin), U(e->end));
    }
    if (e->begin > covered) {
      return DataLoss("%s: bytes [%llu,%llu) of the data section, before tensor %s, belong to no "
                      "tensor",
                      p, U(covered), U(e->begin), e->name.c_str());
    }
    previous = e;
    covered = e->end;
  }
  if (covered < data_bytes) {
    return DataLoss("%s: the last %llu bytes of the file (from data offset %llu) belong to no "
                    "tensor",
                    p, U(data_bytes - covered), U(covered));
  }
  return Status::Ok();
}

std::vector<uint64_t> DimsOf(const Shape& shape) {
  std::vector<uint64_t> dims;
  for (int i = 0; i < shape.rank(); ++i) dims.push_back(shape.dim(i));
  return dims;
}

// The header length field at the start of a file of `file_bytes` bytes.
Status ReadHeaderLength(const char* p, const unsigned char* first8, uint64_t file_bytes,
                        uint64_t* header_bytes) {
  if (file_bytes < 8) {
    return DataLoss("%s: the file is %llu bytes long, too short for a safetensors header length "
                    "(8 bytes)",
                    p, U(file_bytes));
  }
  *header_bytes = 0;
  for (int b = 0; b < 8; ++b) *header_bytes |= uint64_t{first8[b]} << (8 * b);
  if (*header_bytes > kMaxHeaderBytes) {
    return DataLoss("%s: the header length field says %llu bytes, more than the %llu-byte limit",
                    p, U(*header_bytes), U(kMaxHeaderBytes));
  }
  if (*header_bytes > file_bytes - 8) {
    return DataLoss("%s: the header length field says %llu bytes, but only %llu bytes follow it",
                    p, U(*header_bytes), U(file_bytes - 8));
  }
  return Status::Ok();
}

// InvalidArgument unless `e` has the file shape of variable `index`.
Status CheckShape(const char* p, const Entry& e, const VariableSet& vars, int index) {
  const std::vector<uint64_t> model_dims = DimsOf(vars.FileShape(index));
  if (e.dims == model_dims) return Status::Ok();
  return InvalidArgument("%s: %s: checkpoint has shape %s, model expects %s", p, e.name.c_str(),
                         DimsToString(e.dims).c_str(), DimsToString(model_dims).c_str());
}

Status CheckFinite(const char* p, const Contents& contents, const Entry& e) {
  size_t bad = 0, first = 0;
  for (size_t k = 0; k < (e.end - e.begin) / 4; ++k) {
    float value;  // through memcpy: tensor data need not be 4-byte aligned
    std::memcpy(&value, contents.data + e.begin + 4 * k, 4);
    if (!std::isfinite(value) && bad++ == 0) first = k;
  }
  if (bad == 0) return Status::Ok();
  return InvalidArgument("%s: %s: the checkpoint holds %zu NaN or infinite value%s (the first "
                         "at element %zu); nothing was loaded (LoadOptions::allow_non_finite "
                         "loads them anyway)",
                         p, e.name.c_str(), bad, bad == 1 ? "" : "s", first);
}

}  // namespace

Status BigEndianHost(const std::string& source) {
  return FailedPrecondition(
      "%s: safetensors data is little-endian and this host is big-endian; thaw does "
      "not byte-swap checkpoints",
      source.c_str());
}

Status Read(const std::string& path, Contents* out) {
  const char* p = path.c_str();
  // The header first, and never more than the file holds: a bad file is
  // refused before its data is read.
  FileReader file;
  THAW_RETURN_IF_ERROR(file.Open(path));
  unsigned char first8[8] = {};
  if (file.size() >= 8) THAW_RETURN_IF_ERROR(file.ReadAt(0, 8, first8));
  uint64_t header_bytes = 0;
  THAW_RETURN_IF_ERROR(ReadHeaderLength(p, first8, file.size(), &header_bytes));
  std::vector<unsigned char> header(header_bytes);
  THAW_RETURN_IF_ERROR(file.ReadAt(8, header.size(), header.data()));
  const uint64_t data_bytes = file.size() - 8 - header_bytes;
  THAW_RETURN_IF_ERROR(ParseHeader(path, header.data(), header_bytes, data_bytes, out));
  if (data_bytes > SIZE_MAX) {
    return ResourceExhausted("%s: the data section's %llu bytes do not fit in memory", p,
                             U(data_bytes));
  }
  out->storage.resize(data_bytes);
  THAW_RETURN_IF_ERROR(file.ReadAt(8 + header_bytes, out->storage.size(), out->storage.data()));
  out->data = out->storage.data();
  out->data_bytes = data_bytes;
  return Status::Ok();
}

Status Parse(const char* source, Span<const unsigned char> bytes, Contents* out) {
  uint64_t header_bytes = 0;
  THAW_RETURN_IF_ERROR(ReadHeaderLength(source, bytes.data(), bytes.size(), &header_bytes));
  const unsigned char* header = bytes.data() + 8;
  const uint64_t data_bytes = bytes.size() - 8 - header_bytes;
  THAW_RETURN_IF_ERROR(ParseHeader(source, header, header_bytes, data_bytes, out));
  out->data = header + header_bytes;
  out->data_bytes = data_bytes;
  return Status::Ok();
}

const std::string* Find(const Metadata& metadata, const std::string& key) {
  for (const auto& [k, v] : metadata) {
    if (k == key) return &v;
  }
  return nullptr;
}

Status MatchVariables(const char* p, const Contents& contents, const VariableSet& vars,
                      bool strict, bool allow_non_finite, const char* other_prefix,
                      std::vector<VariableCopy>* copies) {
  std::unordered_map<std::string, size_t> by_name;
  for (size_t k = 0; k < contents.entries.size(); ++k) by_name.emplace(contents.entries[k].name, k);
  std::vector<bool> matched(contents.entries.size(), false);
  copies->clear();
  int missing = 0;
  int first_missing = -1;
  for (int i = 0; i < vars.size(); ++i) {
    const auto found = by_name.find(vars.name(i));
    if (found == by_name.end()) {
      if (missing++ == 0) first_missing = i;
      continue;
    }
    const Entry& e = contents.entries[found->second];
    matched[found->second] = true;
    // Counts (BatchNorm's num_batches_tracked) come as PyTorch's int64, or
    // as a float from older files.
    const bool count = vars.file_format(i).int64;
    if (e.dtype != "F32" && !(count && e.dtype == "I64")) {
      return InvalidArgument("%s: %s: checkpoint has dtype %s, model expects %s", p,
                             e.name.c_str(), e.dtype.c_str(), count ? "I64 or F32" : "F32");
    }
    THAW_RETURN_IF_ERROR(CheckShape(p, e, vars, i));
    copies->push_back({i, &e});
  }
  if (strict) {
    if (missing > 0) {
      return InvalidArgument("%s: %s: the model has this variable but the checkpoint does not "
                             "(strict load; %d of %d variables missing)",
                             p, vars.name(first_missing).c_str(), missing, vars.size());
    }
    for (size_t k = 0; k < contents.entries.size(); ++k) {
      const std::string& name = contents.entries[k].name;
      if (!matched[k] && (other_prefix == nullptr || name.rfind(other_prefix, 0) != 0)) {
        return InvalidArgument("%s: %s: the checkpoint has this tensor but the model has no "
                               "variable of that name (strict load)",
                               p, name.c_str());
      }
    }
  }
  // Counts must be counts, whatever the options: thaw holds them as floats
  // and writes them back as int64.
  for (const VariableCopy& copy : *copies) {
    const Entry& e = *copy.entry;
    if (!vars.file_format(copy.variable).int64) continue;
    const bool whole = e.dtype == "I64";
    const size_t bytes = whole ? 8 : 4;
    for (size_t k = 0; k < (e.end - e.begin) / bytes; ++k) {
      int64_t as_int = 0;
      float as_float = 0.0f;
      std::memcpy(whole ? static_cast<void*>(&as_int) : static_cast<void*>(&as_float),
                  contents.data + e.begin + bytes * k, bytes);
      if (whole ? IsCount(as_int) : IsCount(as_float)) continue;
      const std::string shown = whole ? std::to_string(as_int) : std::to_string(as_float);
      return InvalidArgument("%s: %s: element %zu is %s, not a count (a whole number >= 0 "
                             "that a float holds exactly, as thaw keeps counts); nothing was "
                             "loaded",
                             p, e.name.c_str(), k, shown.c_str());
    }
  }
  if (!allow_non_finite) {
    for (const VariableCopy& copy : *copies) {
      if (copy.entry->dtype == "F32") THAW_RETURN_IF_ERROR(CheckFinite(p, contents, *copy.entry));
    }
  }
  return Status::Ok();
}

Status CheckBuffer(const char* p, const Contents& contents, const Entry& e,
                   const VariableSet& vars, int index, bool allow_non_finite) {
  if (e.dtype != "F32") {
    return InvalidArgument("%s: %s: checkpoint has dtype %s, model expects F32", p,
                           e.name.c_str(), e.dtype.c_str());
  }
  THAW_RETURN_IF_ERROR(CheckShape(p, e, vars, index));
  return allow_non_finite ? Status::Ok() : CheckFinite(p, contents, e);
}

void CopyBuffer(const Contents& contents, const Entry& e, const VariableSet& vars, int index,
                float* held) {
  const size_t n = vars.shape(index).num_elements();
  if (!vars.file_format(index).permuted) {  // held as the file holds it
    std::memcpy(held, contents.data + e.begin, n * sizeof(float));
    return;
  }
  // Through an aligned copy: tensor data need not be 4-byte aligned.
  std::vector<float> file_order(n);
  std::memcpy(file_order.data(), contents.data + e.begin, n * sizeof(float));
  vars.FromFileOrder(index, file_order.data(), held);
}

void CopyVariables(const Contents& contents, Span<const VariableCopy> copies, VariableSet* vars) {
  std::vector<float> file_order;
  for (const VariableCopy& copy : copies) {
    const Entry& e = *copy.entry;
    float* held = (*vars)[copy.variable].value().data();
    const size_t n = vars->shape(copy.variable).num_elements();
    if (e.dtype != "I64") {
      CopyBuffer(contents, e, *vars, copy.variable, held);
      continue;
    }
    file_order.resize(n);
    for (size_t k = 0; k < n; ++k) {
      int64_t value;
      std::memcpy(&value, contents.data + e.begin + 8 * k, 8);
      file_order[k] = static_cast<float>(value);
    }
    vars->FromFileOrder(copy.variable, file_order.data(), held);
  }
}

Status CheckNames(const std::string& path, const VariableSet& vars) {
  for (int i = 0; i < vars.size(); ++i) {
    const std::string& name = vars.name(i);
    if (name == kMetadataKey) {
      return InvalidArgument("%s: variable %d is named %s, which safetensors reserves for "
                             "metadata; nothing was written",
                             path.c_str(), i, kMetadataKey);
    }
    if (!IsValidUtf8(name)) {
      return InvalidArgument("%s: variable %d: its name is not valid UTF-8, which a "
                             "safetensors header requires; nothing was written",
                             path.c_str(), i);
    }
  }
  return Status::Ok();
}

Status VariableTensor(const std::string& path, const VariableSet& vars, int index,
                      const std::string& name, const float* held,
                      std::vector<std::vector<unsigned char>>* storage, OutTensor* out) {
  const FileFormat& format = vars.file_format(index);
  const size_t n = vars.shape(index).num_elements();
  out->name = name;
  out->int64 = format.int64;
  out->dims = DimsOf(vars.FileShape(index));
  if (!format.permuted && !format.int64) {
    out->bytes = Span<const unsigned char>(reinterpret_cast<const unsigned char*>(held),
                                           n * sizeof(float));
    return Status::Ok();
  }
  std::vector<float> file_order(n);
  vars.ToFileOrder(index, held, file_order.data());
  storage->emplace_back(n * (format.int64 ? 8 : sizeof(float)));
  unsigned char* bytes = storage->back().data();
  for (size_t k = 0; k < n; ++k) {
    if (!format.int64) {
      std::memcpy(bytes + 4 * k, &file_order[k], 4);
      continue;
    }
    if (!IsCount(file_order[k])) {
      return InvalidArgument("%s: %s: element %zu is %g, not a count (a whole number >= 0); "
                             "nothing was written",
                             path.c_str(), name.c_str(), k, file_order[k]);
    }
    const int64_t count = static_cast<int64_t>(file_order[k]);
    std::memcpy(bytes + 8 * k, &count, 8);
  }
  out->bytes = Span<const unsigned char>(bytes, storage->back().size());
  return Status::Ok();
}

Status Write(const std::string& path, const std::vector<OutTensor>& tensors,
             const Metadata& metadata) {
  // The header lists tensors in the order given, so the bytes depend only on
  // them, and the data follows in the same order without gaps. Written by
  // hand rather than through nlohmann::json, whose destructor allocates (an
  // allocation failure there would terminate the process).
  std::string text = "{";
  uint64_t offset = 0;
  for (const OutTensor& t : tensors) {
    AppendJsonString(t.name, &text);
    text += t.int64 ? ":{\"dtype\":\"I64\",\"shape\":[" : ":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t d = 0; d < t.dims.size(); ++d) {
      if (d > 0) text += ',';
      text += std::to_string(t.dims[d]);
    }
    text += "],\"data_offsets\":[" + std::to_string(offset) + "," +
            std::to_string(offset + t.bytes.size()) + "]},";
    offset += t.bytes.size();
  }
  text += "\"__metadata__\":{\"format\":\"pt\"";  // what torch-saved safetensors carry
  for (const auto& [key, value] : metadata) {
    text += ',';
    AppendJsonString(key, &text);
    text += ':';
    AppendJsonString(value, &text);
  }
  text += "}}";
  // Pad with spaces so the data starts 8-byte aligned, as the reference does.
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeaderBytes) {
    return InvalidArgument("%s: the header would take %zu bytes, more than safetensors' limit "
                           "of %llu; nothing was written",
                           path.c_str(), text.size(), U(kMaxHeaderBytes));
  }
  std::vector<unsigned char> prefix(8 + text.size());
  for (int b = 0; b < 8; ++b) prefix[b] = static_cast<unsigned char>(text.size() >> (8 * b));
  std::memcpy(prefix.data() + 8, text.data(), text.size());
  std::vector<Span<const unsigned char>> pieces;
  pieces.reserve(1 + tensors.size());
  pieces.emplace_back(prefix.data(), prefix.size());
  for (const OutTensor& t : tensors) pieces.push_back(t.bytes);
  return WriteFileAtomically(path, pieces);
}

}  // namespace safetensors
}  // namespace thaw
