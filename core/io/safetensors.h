// thaw/core/io/safetensors.h — the safetensors format, for the files of
// thaw_io (checkpoints, training states). Internal: not part of the API.
//
// A file is [u64 N, little-endian][N bytes of JSON header][tensor data]; see
// core/io/checkpoint.h for the header. Reading checks the whole header against
// itself and the data section's size before anything uses it; writing lays
// tensors out back to back in the order given.
#ifndef THAW_CORE_IO_SAFETENSORS_H_
#define THAW_CORE_IO_SAFETENSORS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/vars/variables.h"
#include "platform/span.h"
#include "platform/status.h"

namespace thaw {
namespace safetensors {

inline constexpr bool kHostIsLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
// FailedPrecondition naming `source`: thaw does not byte-swap.
Status BigEndianHost(const std::string& source);

// One tensor entry of a header, checked against the file.
struct Entry {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> dims;
  uint64_t begin = 0;  // byte offsets in the data section
  uint64_t end = 0;
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

// A checked file: its entries, its "__metadata__" strings, and its data
// section (in `storage` when read from a file, else where the bytes are).
struct Contents {
  std::vector<Entry> entries;
  Metadata metadata;
  const unsigned char* data = nullptr;
  uint64_t data_bytes = 0;
  std::vector<unsigned char> storage;
};

// Reads the file at `path`: the header first, checked, then the data section
// (never past the file's size). Errors name the path (see LoadCheckpoint).
Status Read(const std::string& path, Contents* out);
// The same for bytes in memory, checked in place; messages name `source`.
Status Parse(const char* source, Span<const unsigned char> bytes, Contents* out);

// The value of metadata `key`, or null.
const std::string* Find(const Metadata& metadata, const std::string& key);

// ---- Tensors and variables ----

// A variable (or a buffer shaped like it) matched with a file's tensor.
struct VariableCopy {
  int variable;
  const Entry* entry;
};

// Matches the variables of `vars` with the tensors of `contents` by name and
// checks each pair (dtype, shape, counts whole, finite values unless
// allow_non_finite) into *copies. strict: every variable must have a tensor
// and every tensor a variable, except tensors whose names start with
// `other_prefix` (which belong to something else; may be null). Changes
// nothing; the errors are those of LoadCheckpoint, naming `source`.
Status MatchVariables(const char* source, const Contents& contents, const VariableSet& vars,
                      bool strict, bool allow_non_finite, const char* other_prefix,
                      std::vector<VariableCopy>* copies);
// Checks that `entry` can fill a buffer shaped like variable `index`: F32,
// its file shape, and finite unless allow_non_finite.
Status CheckBuffer(const char* source, const Contents& contents, const Entry& entry,
                   const VariableSet& vars, int index, bool allow_non_finite);
// Copies the tensor of each match into its variable's value.
void CopyVariables(const Contents& contents, Span<const VariableCopy> copies, VariableSet* vars);
// Copies an F32 tensor into a buffer shaped like variable `index`, converting
// from the file's layout.
void CopyBuffer(const Contents& contents, const Entry& entry, const VariableSet& vars, int index,
                float* held);

// A tensor to write: its bytes as the file holds them.
struct OutTensor {
  std::string name;
  bool int64 = false;  // I64, else F32
  std::vector<uint64_t> dims;
  Span<const unsigned char> bytes;
};

// The file form of buffer `held`, shaped like variable `index` of `vars`
// (its value, or an optimizer slot): *out points at `held` when the file
// holds it as thaw does, else at a converted copy in *storage. A count that
// is not a whole number >= 0 is InvalidArgument naming `path`.
Status VariableTensor(const std::string& path, const VariableSet& vars, int index,
                      const std::string& name, const float* held,
                      std::vector<std::vector<unsigned char>>* storage, OutTensor* out);

// InvalidArgument naming `path` and the variable when a variable's name
// cannot be a tensor name (not UTF-8, or "__metadata__").
Status CheckNames(const std::string& path, const VariableSet& vars);

// Writes `tensors` and `metadata` (after "format": "pt") to `path`,
// atomically (platform/files.h). Names must be valid UTF-8 and not
// "__metadata__" (see CheckNames).
Status Write(const std::string& path, const std::vector<OutTensor>& tensors,
             const Metadata& metadata);

}  // namespace safetensors
}  // namespace thaw

#endif  // THAW_CORE_IO_SAFETENSORS_H_
