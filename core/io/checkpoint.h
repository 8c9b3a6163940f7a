// thaw/core/io/checkpoint.h — save and load a VariableSet as a safetensors file
// (the optional thaw_io library). The same in memory, without files, is part
// of the runtime: core/io/checkpoint_memory.h, which this header includes.
//
//   THAW_RETURN_IF_ERROR(thaw::SaveCheckpoint(vars, "head.safetensors"));
//   ...
//   thaw::Status s = thaw::LoadCheckpoint("head.safetensors", &vars);
//   if (!s.ok()) std::fprintf(stderr, "%s\n", s.message());  // weights unchanged
//
//   thaw::LoadOptions partial;
//   partial.strict = false;  // like PyTorch's load_state_dict(strict=False)
//   THAW_RETURN_IF_ERROR(thaw::LoadCheckpoint("backbone.safetensors", &vars, partial));
//
// The file is safetensors, the format PyTorch (through the safetensors
// package) and others read and write:
//   [u64 N, little-endian][N bytes of JSON header, space-padded][tensor data]
// with the header
//   {"dense_0.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
//    ..., "__metadata__": {"format": "pt"}}
// Tensor names are variable names ("<layer>.<variable>", shapes as PyTorch
// holds them: a dense layer's weight is [out, in] like nn.Linear's, a
// convolution's [out, in, kh, kw] although thaw holds it [kh, kw, in, out]:
// variables convert on the way in and out, see FileFormat in
// core/vars/variables.h), offsets are relative to the start of the data, and
// the data is float32 (int64 for BatchNorm's num_batches_tracked, as
// PyTorch), little-endian, row-major, one tensor after the other in
// variable order.
//
// The calls are setup-time: they allocate (the header, and for loading from a
// file the data section) and must not run inside a training step; a failed
// allocation is a ResourceExhausted Status, never an exception. Neither touches the
// trainable flags, the memory plan or optimizer state. The host must be
// little-endian (every target thaw runs on is); on a big-endian host both
// return FailedPrecondition. SaveOptions and LoadOptions are in
// core/io/checkpoint_memory.h.
#ifndef THAW_CORE_IO_CHECKPOINT_H_
#define THAW_CORE_IO_CHECKPOINT_H_

#include <string>

#include "core/io/checkpoint_memory.h"  // IWYU pragma: export
#include "core/vars/variables.h"
#include "platform/status.h"

namespace thaw {

// Writes every variable of `vars` to `path`, atomically: the file at `path` is
// either the old one, whole, or the new one, whole, even after a crash (see
// platform/files.h). Returns InvalidArgument when a variable name cannot be a
// safetensors tensor name (not UTF-8, or "__metadata__") and IoError when the
// file cannot be written; the old file is then unchanged. The bytes are a
// function of the names, shapes and values only, so saving the same set twice
// gives identical files (and the bytes SaveCheckpointToMemory writes).
// options.trainable_only writes the trainable variables only.
Status SaveCheckpoint(const VariableSet& vars, const std::string& path,
                      const SaveOptions& options = {});

// Copies the tensors of the safetensors file at `path` into the variables of
// the same name. All or nothing: the whole file is checked against itself and
// against the model first, and only then are values copied, so on any error no
// variable has changed. Errors name the file, the tensor and the problem:
//   NotFound         the file does not exist;
//   IoError          it cannot be read;
//   DataLoss         it is not a well-formed safetensors file (too short, bad
//                    header length, header not a JSON object starting at its
//                    first byte, a malformed entry, data offsets out of range
//                    or not matching the shape, tensors that do not tile the
//                    data section exactly: overlaps, gaps or trailing bytes, a
//                    name given twice, more than 65,536 tensors);
//   InvalidArgument  it is well-formed but does not fit the model, e.g.
//                    "<path>: dense_1.weight: checkpoint has shape [10,128],
//                    model expects [10,256]", a dtype other than F32, in
//                    strict mode a missing or unexpected tensor, NaN or Inf
//                    in a tensor to be loaded (unless allow_non_finite), and
//                    with trainable_only a tensor of a variable that is not
//                    trainable.
// The header is read and checked first; the data section is read only once
// the header is known good, and never past the file's size.
Status LoadCheckpoint(const std::string& path, VariableSet* vars,
                      const LoadOptions& options = {});

}  // namespace thaw

#endif  // THAW_CORE_IO_CHECKPOINT_H_
