#include "core/io/checkpoint.h"

#include <string>
#include <vector>

#include "core/io/safetensors.h"

namespace thaw {

Status SaveCheckpoint(const VariableSet& vars, const std::string& path) {
  if (!safetensors::kHostIsLittleEndian) return safetensors::BigEndianHost(path);
  return ResourceExhaustedOnBadAlloc(path.c_str(), [&]() -> Status {
    THAW_RETURN_IF_ERROR(safetensors::CheckNames(path, vars));
    // A variable held as it is written goes out from the arena; the others
    // (transposed, or counts written as int64) through a converted copy.
    std::vector<safetensors::OutTensor> tensors(vars.size());
    std::vector<std::vector<unsigned char>> converted;
    converted.reserve(vars.size());
    for (int i = 0; i < vars.size(); ++i) {
      THAW_RETURN_IF_ERROR(safetensors::VariableTensor(path, vars, i, vars.name(i),
                                                       vars.value_data(i), &converted,
                                                       &tensors[i]));
    }
    return safetensors::Write(path, tensors, {});
  });
}

namespace {

// Checks `contents` against `vars`, then copies: all or nothing.
Status LoadContents(const char* source, const safetensors::Contents& contents, VariableSet* vars,
                    const LoadOptions& options) {
  std::vector<safetensors::VariableCopy> copies;
  THAW_RETURN_IF_ERROR(safetensors::MatchVariables(source, contents, *vars, options.strict,
                                                   options.allow_non_finite, nullptr, &copies));
  safetensors::CopyVariables(contents, copies, vars);
  return Status::Ok();
}

}  // namespace

Status LoadCheckpoint(const std::string& path, VariableSet* vars, const LoadOptions& options) {
  THAW_CHECK(vars != nullptr);
  if (!safetensors::kHostIsLittleEndian) return safetensors::BigEndianHost(path);
  return ResourceExhaustedOnBadAlloc(path.c_str(), [&]() -> Status {
    safetensors::Contents contents;
    THAW_RETURN_IF_ERROR(safetensors::Read(path, &contents));
    return LoadContents(path.c_str(), contents, vars, options);
  });
}

Status LoadCheckpointFromMemory(Span<const unsigned char> bytes, VariableSet* vars,
                                const LoadOptions& options) {
  THAW_CHECK(vars != nullptr);
  const char* source = "checkpoint in memory";
  if (!safetensors::kHostIsLittleEndian) return safetensors::BigEndianHost(source);
  return ResourceExhaustedOnBadAlloc(source, [&]() -> Status {
    safetensors::Contents contents;
    THAW_RETURN_IF_ERROR(safetensors::Parse(source, bytes, &contents));
    return LoadContents(source, contents, vars, options);
  });
}

}  // namespace thaw
