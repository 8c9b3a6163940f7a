// thaw/core/io/safetensors.h — the safetensors format on bytes in memory,
// for checkpoints (core/io/checkpoint_memory.h, core/io/checkpoint.h) and
// training states. Internal: not part of the API. Part of thaw_core: nothing
// here touches a file (core/io/safetensors_file.h, in thaw_io, reads and
// writes files with it).
//
// A file is [u64 N, little-endian][N bytes of JSON header][tensor data]; see
// core/io/checkpoint.h for the header. Reading checks the whole header against
// itself and the data section's size before anything uses it; writing lays
// tensors out back to back in the order given.
#ifndef THAW_CORE_IO_SAFETENSORS_H_
#define THAW_CORE_IO_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/io/checkpoint_memory.h"
#include "core/vars/variables.h"
#include "platform/span.h"
#include "platform/status.h"

namespace thaw {
namespace safetensors {

inline constexpr bool kHostIsLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
// FailedPrecondition naming `source`: thaw does not byte-swap.
Status BigEndianHost(const char* source);

// The reference implementation (huggingface/safetensors) refuses larger
// headers; so does thaw, before allocating anything for one.
inline constexpr uint64_t kMaxHeaderBytes = 100000000;
inline constexpr char kMetadataKey[] = "__metadata__";

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

// ---- Reading ----

// Checks bytes in memory in place into *out (data points into `bytes`);
// messages name `source`.
Status Parse(const char* source, Span<const unsigned char> bytes, Contents* out);

// The parts of Parse, for a reader that has the bytes piece by piece
// (core/io/safetensors_file.cc). The header length field of a file of
// `file_bytes` bytes; `first8` holds its first 8 bytes when it has them.
Status ReadHeaderLength(const char* source, const unsigned char* first8, uint64_t file_bytes,
                        uint64_t* header_bytes);
// Reads the header text into out->entries and out->metadata and checks them
// against a data section of `data_bytes` bytes (offsets in range and as long
// as shape and dtype say, tensors tiling it exactly).
Status ParseHeader(const char* source, const unsigned char* text, uint64_t text_bytes,
                   uint64_t data_bytes, Contents* out);
// The JSON part of ParseHeader (core/io/safetensors_header.cc): the syntax,
// and every value where the format puts one of the type it gives it.
Status ReadHeaderJson(const char* source, const unsigned char* text, size_t text_bytes,
                      std::vector<Entry>* entries, Metadata* metadata);

// The length (1 to 4) of the RFC 3629 UTF-8 sequence that starts text[0,
// size), size >= 1: no overlong form, no surrogate, nothing past U+10FFFF.
// 0 when there is none; *bad is then the offset of the first byte that
// breaks it (size when the text ends first).
size_t Utf8Sequence(const unsigned char* text, size_t size, size_t* bad);

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
// options.allow_non_finite) into *copies, under `options` (strict,
// trainable_only: see LoadOptions). Tensors whose names start with
// `other_prefix` (which belong to something else; may be null) are left to
// the caller. Changes nothing; the errors are those of LoadCheckpoint, naming
// `source`.
Status MatchVariables(const char* source, const Contents& contents, const VariableSet& vars,
                      const LoadOptions& options, const char* other_prefix,
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
// A checkpoint load: MatchVariables (no other prefix), then CopyVariables.
Status LoadVariables(const char* source, const Contents& contents, VariableSet* vars,
                     const LoadOptions& options);

// ---- Writing ----

// A tensor to write, and where its bytes come from: a buffer `held` shaped
// like variable `variable` (its value or an optimizer slot), converted to
// the file's layout and dtype; or, when `raw` is set, those bytes as they are
// (`variable` then names the variable it belongs to, for messages).
struct OutTensor {
  std::string name;
  bool int64 = false;  // I64, else F32
  std::vector<uint64_t> dims;
  size_t bytes = 0;  // its length in the file
  int variable = -1;
  const float* held = nullptr;
  const unsigned char* raw = nullptr;
};

// The tensor of buffer `held`, shaped like variable `index` of `vars`.
OutTensor VariableTensor(const VariableSet& vars, int index, std::string name, const float* held);
// The tensors of a checkpoint: every variable's value, in variable order, or
// only the trainable ones.
std::vector<OutTensor> CheckpointTensors(const VariableSet& vars, const SaveOptions& options);

// The file's first bytes: the length field and the header (tensors in the
// order given, then "__metadata__" with "format": "pt" and `metadata`),
// padded with spaces so that the data starts 8-byte aligned. InvalidArgument
// naming `source` when a tensor name cannot be one (not UTF-8, or
// "__metadata__") or the header would pass kMaxHeaderBytes.
Status Prefix(const char* source, Span<const OutTensor> tensors, const Metadata& metadata,
              std::string* prefix);
// The bytes of `tensor` as the file holds them, when its source holds them
// so (no conversion): true and *bytes. Else false.
bool Unconverted(const VariableSet& vars, const OutTensor& tensor, Span<const unsigned char>* bytes);
// Writes the bytes of `tensor` to out[0, tensor.bytes). InvalidArgument
// naming `source` when an int64 tensor's value is not a count (a whole
// number >= 0).
Status TensorBytes(const char* source, const VariableSet& vars, const OutTensor& tensor,
                   unsigned char* out);
// The length of the file: `prefix` and every tensor's bytes.
Status FileSize(const char* source, const std::string& prefix, Span<const OutTensor> tensors,
                size_t* size);
// Writes the file into buffer[0, *size); *size is its length, also when the
// buffer is too small (ResourceExhausted, nothing written). On another error
// the length field is 0.
Status WriteToMemory(const char* source, const VariableSet& vars, Span<const OutTensor> tensors,
                     const Metadata& metadata, Span<unsigned char> buffer, size_t* size);

}  // namespace safetensors
}  // namespace thaw

#endif  // THAW_CORE_IO_SAFETENSORS_H_
