#include "core/io/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

// The safetensors format on bytes in memory; the JSON reader of the header is
// in safetensors_header.cc, the file calls in safetensors_file.cc (thaw_io).

namespace thaw {
namespace safetensors {
namespace {

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

// What a JSON reader accepts in a string, so a name that passes can be read back.
bool IsValidUtf8(const std::string& s) {
  const auto* text = reinterpret_cast<const unsigned char*>(s.data());
  size_t bad = 0;
  for (size_t at = 0; at < s.size();) {
    const size_t length = Utf8Sequence(text + at, s.size() - at, &bad);
    if (length == 0) return false;
    at += length;
  }
  return true;
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
Status CheckEntry(const char* p, uint64_t data_bytes, const Entry& e) {
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

// As the reference implementation: the tensors tile the data section,
// sorted by offsets, each starts where the ones before it end (no shared
// bytes, no gaps), and the last ends at the end of the data.
Status CheckTiling(const char* p, const std::vector<Entry>& entries, uint64_t data_bytes) {
  std::vector<const Entry*> sorted;
  sorted.reserve(entries.size());
  for (const Entry& e : entries) sorted.push_back(&e);
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

size_t Utf8Sequence(const unsigned char* text, size_t size, size_t* bad) {
  const unsigned char c = text[0];
  if (c < 0x80) return 1;
  int extra;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the 2nd byte
  if (c >= 0xC2 && c <= 0xDF) {
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
    *bad = 0;  // a continuation byte, C0, C1 or F5..FF
    return 0;
  }
  for (int i = 1; i <= extra; ++i) {
    if (static_cast<size_t>(i) == size) {
      *bad = size;
      return 0;
    }
    const unsigned char b = text[i];
    if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) {
      *bad = i;
      return 0;
    }
  }
  return 1 + extra;
}

Status BigEndianHost(const char* source) {
  return FailedPrecondition(
      "%s: safetensors data is little-endian and this host is big-endian; thaw does "
      "not byte-swap checkpoints",
      source);
}

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

Status ParseHeader(const char* p, const unsigned char* text, uint64_t text_bytes,
                   uint64_t data_bytes, Contents* out) {
  THAW_RETURN_IF_ERROR(ReadHeaderJson(p, text, text_bytes, &out->entries, &out->metadata));
  for (const Entry& e : out->entries) THAW_RETURN_IF_ERROR(CheckEntry(p, data_bytes, e));
  // As the reference implementation: the object starts at the first byte (no
  // byte-order mark, which JSON readers skip, nor leading spaces).
  if (text[0] != '{') {
    return DataLoss("%s: the header must start with '{', but its first byte is 0x%02X (a "
                    "byte-order mark or leading space is not allowed)",
                    p, text[0]);
  }
  return CheckTiling(p, out->entries, data_bytes);
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
                      const LoadOptions& options, const char* other_prefix,
                      std::vector<VariableCopy>* copies) {
  std::unordered_map<std::string, size_t> by_name;
  for (size_t k = 0; k < contents.entries.size(); ++k) by_name.emplace(contents.entries[k].name, k);
  std::vector<bool> matched(contents.entries.size(), false);
  copies->clear();
  int wanted = 0;  // the variables to load: all, or the trainable ones
  int missing = 0;
  int first_missing = -1;
  for (int i = 0; i < vars.size(); ++i) {
    const auto found = by_name.find(vars.name(i));
    if (options.trainable_only && !vars.trainable(i)) {
      if (found == by_name.end()) continue;
      return InvalidArgument("%s: %s: the checkpoint has this tensor, but the model's variable "
                             "is not trainable (frozen, or a statistic) and a trainable-only "
                             "load changes trainable variables only; nothing was loaded (freeze "
                             "the model as the sender did, or load without trainable_only)",
                             p, vars.name(i).c_str());
    }
    ++wanted;
    if (found == by_name.end()) {
      if (missing++ == 0) first_missing = i;
      continue;
    }
    const Entry& e = contents.entries[found->second];
    matched[found->second] = true;
    if (vars.in_place(i)) {
      return FailedPrecondition("%s: %s: the model's variable reads its value in place from "
                                "read-only bytes, which a load cannot change; nothing was loaded "
                                "(load without this tensor, or thaw the variable and take a step "
                                "first)",
                                p, vars.name(i).c_str());
    }
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
  if (options.strict) {
    if (missing > 0) {
      return InvalidArgument("%s: %s: the model has this variable but the checkpoint does not "
                             "(strict%s load; %d of %d %svariables missing)",
                             p, vars.name(first_missing).c_str(),
                             options.trainable_only ? " trainable-only" : "", missing, wanted,
                             options.trainable_only ? "trainable " : "");
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
  if (!options.allow_non_finite) {
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
    vars->NoteEdited(copy.variable);
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

Status LoadVariables(const char* source, const Contents& contents, VariableSet* vars,
                     const LoadOptions& options) {
  std::vector<VariableCopy> copies;
  THAW_RETURN_IF_ERROR(MatchVariables(source, contents, *vars, options, nullptr, &copies));
  CopyVariables(contents, copies, vars);
  return Status::Ok();
}

OutTensor VariableTensor(const VariableSet& vars, int index, std::string name, const float* held) {
  OutTensor t;
  t.name = std::move(name);
  t.int64 = vars.file_format(index).int64;
  t.dims = DimsOf(vars.FileShape(index));
  t.bytes = vars.shape(index).num_elements() * (t.int64 ? 8 : sizeof(float));
  t.variable = index;
  t.held = held;
  return t;
}

std::vector<OutTensor> CheckpointTensors(const VariableSet& vars, const SaveOptions& options) {
  std::vector<OutTensor> tensors;
  for (int i = 0; i < vars.size(); ++i) {
    if (options.trainable_only && !vars.trainable(i)) continue;
    tensors.push_back(VariableTensor(vars, i, vars.name(i), vars.value_data(i)));
  }
  return tensors;
}

Status Prefix(const char* p, Span<const OutTensor> tensors, const Metadata& metadata,
              std::string* prefix) {
  for (const OutTensor& t : tensors) {
    if (t.name == kMetadataKey) {
      return InvalidArgument("%s: variable %d is named %s, which safetensors reserves for "
                             "metadata; nothing was written",
                             p, t.variable, kMetadataKey);
    }
    if (!IsValidUtf8(t.name)) {
      return InvalidArgument("%s: variable %d: its name is not valid UTF-8, which a "
                             "safetensors header requires; nothing was written",
                             p, t.variable);
    }
  }
  // The length field first, filled in below. The header lists tensors in the
  // order given, so the bytes depend only on them, and the data follows in
  // the same order without gaps.
  std::string& text = *prefix;
  text.assign(8, '\0');
  text += '{';
  uint64_t offset = 0;
  for (const OutTensor& t : tensors) {
    AppendJsonString(t.name, &text);
    text += t.int64 ? ":{\"dtype\":\"I64\",\"shape\":[" : ":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t d = 0; d < t.dims.size(); ++d) {
      if (d > 0) text += ',';
      text += std::to_string(t.dims[d]);
    }
    text += "],\"data_offsets\":[" + std::to_string(offset) + "," +
            std::to_string(offset + t.bytes) + "]},";
    offset += t.bytes;
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
  const size_t header_bytes = text.size() - 8;
  if (header_bytes > kMaxHeaderBytes) {
    return InvalidArgument("%s: the header would take %zu bytes, more than safetensors' limit "
                           "of %llu; nothing was written",
                           p, header_bytes, U(kMaxHeaderBytes));
  }
  for (int b = 0; b < 8; ++b) text[b] = static_cast<char>(uint64_t{header_bytes} >> (8 * b));
  return Status::Ok();
}

bool Unconverted(const VariableSet& vars, const OutTensor& t, Span<const unsigned char>* bytes) {
  const FileFormat& format = vars.file_format(t.variable);
  if (t.raw == nullptr && (format.permuted || format.int64)) return false;
  const auto* source = t.raw != nullptr ? t.raw : reinterpret_cast<const unsigned char*>(t.held);
  *bytes = Span<const unsigned char>(source, t.bytes);
  return true;
}

Status TensorBytes(const char* p, const VariableSet& vars, const OutTensor& t, unsigned char* out) {
  Span<const unsigned char> as_held;
  if (Unconverted(vars, t, &as_held)) {
    if (!as_held.empty()) std::memcpy(out, as_held.data(), as_held.size());
    return Status::Ok();
  }
  const size_t n = vars.shape(t.variable).num_elements();
  std::vector<float> file_order(n);
  vars.ToFileOrder(t.variable, t.held, file_order.data());
  for (size_t k = 0; k < n; ++k) {
    if (!t.int64) {
      std::memcpy(out + 4 * k, &file_order[k], 4);
      continue;
    }
    if (!IsCount(file_order[k])) {
      return InvalidArgument("%s: %s: element %zu is %g, not a count (a whole number >= 0); "
                             "nothing was written",
                             p, t.name.c_str(), k, file_order[k]);
    }
    const int64_t count = static_cast<int64_t>(file_order[k]);
    std::memcpy(out + 8 * k, &count, 8);
  }
  return Status::Ok();
}

Status FileSize(const char* p, const std::string& prefix, Span<const OutTensor> tensors,
                size_t* size) {
  size_t total = prefix.size();
  for (const OutTensor& t : tensors) {
    if (__builtin_add_overflow(total, t.bytes, &total)) {
      return InvalidArgument("%s: the checkpoint would take more than %zu bytes", p, SIZE_MAX);
    }
  }
  *size = total;
  return Status::Ok();
}

Status WriteToMemory(const char* p, const VariableSet& vars, Span<const OutTensor> tensors,
                     const Metadata& metadata, Span<unsigned char> buffer, size_t* size) {
  std::string prefix;
  THAW_RETURN_IF_ERROR(Prefix(p, tensors, metadata, &prefix));
  THAW_RETURN_IF_ERROR(FileSize(p, prefix, tensors, size));
  if (buffer.size() < *size) {
    return ResourceExhausted("%s: the checkpoint takes %zu bytes, but the buffer holds %zu; "
                             "nothing was written",
                             p, *size, buffer.size());
  }
  // The length field stays 0 until every tensor is in place, so a save that
  // fails half-way leaves bytes that no load accepts.
  std::memset(buffer.data(), 0, 8);
  size_t offset = prefix.size();
  for (const OutTensor& t : tensors) {
    THAW_RETURN_IF_ERROR(TensorBytes(p, vars, t, buffer.data() + offset));
    offset += t.bytes;
  }
  std::memcpy(buffer.data(), prefix.data(), prefix.size());
  return Status::Ok();
}

}  // namespace safetensors
}  // namespace thaw
