#include "core/io/safetensors_file.h"

#include <cstdint>
#include <string>
#include <vector>

#include "platform/files.h"

namespace thaw {
namespace safetensors {

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
  THAW_RETURN_IF_ERROR(ParseHeader(p, header.data(), header_bytes, data_bytes, out));
  if (data_bytes > SIZE_MAX) {
    return ResourceExhausted("%s: the data section's %llu bytes do not fit in memory", p,
                             static_cast<unsigned long long>(data_bytes));
  }
  out->storage.resize(data_bytes);
  THAW_RETURN_IF_ERROR(file.ReadAt(8 + header_bytes, out->storage.size(), out->storage.data()));
  out->data = out->storage.data();
  out->data_bytes = data_bytes;
  return Status::Ok();
}

Status Write(const std::string& path, const VariableSet& vars, Span<const OutTensor> tensors,
             const Metadata& metadata) {
  const char* p = path.c_str();
  std::string prefix;
  THAW_RETURN_IF_ERROR(Prefix(p, tensors, metadata, &prefix));
  std::vector<Span<const unsigned char>> pieces;
  pieces.reserve(1 + tensors.size());
  pieces.emplace_back(reinterpret_cast<const unsigned char*>(prefix.data()), prefix.size());
  std::vector<std::vector<unsigned char>> converted;
  for (const OutTensor& t : tensors) {
    Span<const unsigned char> bytes;
    if (!Unconverted(vars, t, &bytes)) {
      converted.emplace_back(t.bytes);
      THAW_RETURN_IF_ERROR(TensorBytes(p, vars, t, converted.back().data()));
      bytes = converted.back();
    }
    pieces.push_back(bytes);
  }
  return WriteFileAtomically(path, pieces);
}

}  // namespace safetensors
}  // namespace thaw
