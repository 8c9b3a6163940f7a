// thaw/core/io/safetensors_file.h — safetensors files (thaw_io), on top of the
// in-memory format of core/io/safetensors.h. Internal: not part of the API.
#ifndef THAW_CORE_IO_SAFETENSORS_FILE_H_
#define THAW_CORE_IO_SAFETENSORS_FILE_H_

#include <string>

#include "core/io/safetensors.h"
#include "core/vars/variables.h"
#include "platform/span.h"
#include "platform/status.h"

namespace thaw {
namespace safetensors {

// Reads the file at `path`: the header first, checked, then the data section
// into out->storage (never past the file's size). Errors name the path (see
// LoadCheckpoint).
Status Read(const std::string& path, Contents* out);

// Writes `tensors` and `metadata` (see Prefix) to `path`, atomically
// (platform/files.h): the bytes WriteToMemory would write. Tensors held as
// the file holds them are written from where they are, the others through a
// converted copy.
Status Write(const std::string& path, const VariableSet& vars, Span<const OutTensor> tensors,
             const Metadata& metadata);

}  // namespace safetensors
}  // namespace thaw

#endif  // THAW_CORE_IO_SAFETENSORS_FILE_H_
