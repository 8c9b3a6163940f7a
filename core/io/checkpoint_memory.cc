#include "core/io/checkpoint_memory.h"

#include <string>
#include <vector>

#include "core/io/safetensors.h"

namespace thaw {
namespace {

constexpr char kSource[] = "checkpoint in memory";

}  // namespace

Status CheckpointSize(const VariableSet& vars, size_t* size, const SaveOptions& options) {
  THAW_CHECK(size != nullptr);
  *size = 0;
  if (!safetensors::kHostIsLittleEndian) return safetensors::BigEndianHost(kSource);
  return ResourceExhaustedOnBadAlloc(kSource, [&]() -> Status {
    const std::vector<safetensors::OutTensor> tensors =
        safetensors::CheckpointTensors(vars, options);
    std::string prefix;
    THAW_RETURN_IF_ERROR(safetensors::Prefix(kSource, tensors, {}, &prefix));
    return safetensors::FileSize(kSource, prefix, tensors, size);
  });
}

Status SaveCheckpointToMemory(const VariableSet& vars, Span<unsigned char> buffer, size_t* size,
                              const SaveOptions& options) {
  THAW_CHECK(size != nullptr);
  *size = 0;
  if (!safetensors::kHostIsLittleEndian) return safetensors::BigEndianHost(kSource);
  return ResourceExhaustedOnBadAlloc(kSource, [&]() -> Status {
    return safetensors::WriteToMemory(kSource, vars, safetensors::CheckpointTensors(vars, options),
                                      {}, buffer, size);
  });
}

Status LoadCheckpointFromMemory(Span<const unsigned char> bytes, VariableSet* vars,
                                const LoadOptions& options) {
  THAW_CHECK(vars != nullptr);
  if (!safetensors::kHostIsLittleEndian) return safetensors::BigEndianHost(kSource);
  return ResourceExhaustedOnBadAlloc(kSource, [&]() -> Status {
    safetensors::Contents contents;
    THAW_RETURN_IF_ERROR(safetensors::Parse(kSource, bytes, &contents));
    return safetensors::LoadVariables(kSource, contents, vars, options);
  });
}

}  // namespace thaw
