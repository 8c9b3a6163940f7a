#include "core/io/checkpoint.h"

#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "core/io/safetensors_file.h"

namespace thaw {

Status SaveCheckpoint(const VariableSet& vars, const std::string& path,
                      const SaveOptions& options) {
  if (!safetensors::kHostIsLittleEndian) return safetensors::BigEndianHost(path.c_str());
  return ResourceExhaustedOnBadAlloc(path.c_str(), [&]() -> Status {
    return safetensors::Write(path, vars, safetensors::CheckpointTensors(vars, options), {});
  });
}

Status LoadCheckpoint(const std::string& path, VariableSet* vars, const LoadOptions& options) {
  THAW_CHECK(vars != nullptr);
  const char* p = path.c_str();
  if (!safetensors::kHostIsLittleEndian) return safetensors::BigEndianHost(p);
  return ResourceExhaustedOnBadAlloc(p, [&]() -> Status {
    safetensors::Contents contents;
    THAW_RETURN_IF_ERROR(safetensors::Read(path, &contents));
    return safetensors::LoadVariables(p, contents, vars, options);
  });
}

}  // namespace thaw
