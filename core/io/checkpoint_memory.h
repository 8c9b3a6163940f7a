// thaw/core/io/checkpoint_memory.h — a VariableSet as safetensors bytes in
// memory: part of the runtime (thaw_core), so firmware without files or a
// file system has it. The same format and checks as the files of
// core/io/checkpoint.h (thaw_io), which describes the format.
//
//   // Export what fine-tuning changed, e.g. to send it to a server:
//   thaw::SaveOptions trainable;
//   trainable.trainable_only = true;
//   size_t size = 0;
//   THAW_RETURN_IF_ERROR(thaw::CheckpointSize(vars, &size, trainable));
//   std::vector<unsigned char> bytes(size);
//   THAW_RETURN_IF_ERROR(thaw::SaveCheckpointToMemory(vars, bytes, &size, trainable));
//   ...
//   // And import it on a device with the same model and the same freeze set:
//   thaw::LoadOptions load;
//   load.trainable_only = true;
//   THAW_RETURN_IF_ERROR(thaw::LoadCheckpointFromMemory(bytes, &vars, load));
//
// The calls are setup-time: they allocate on the heap (the header, the
// matching of names; a save converts the variables thaw holds in another
// layout than the file through a copy) and must not run inside a training
// step. A failed allocation is a ResourceExhausted Status, never an exception.
// Neither call touches the trainable flags, the memory plan or optimizer
// state. The host must be little-endian (every target thaw runs on is); on a
// big-endian host they return FailedPrecondition. Messages name "checkpoint
// in memory" where the file calls name the path.
#ifndef THAW_CORE_IO_CHECKPOINT_MEMORY_H_
#define THAW_CORE_IO_CHECKPOINT_MEMORY_H_

#include <cstddef>

#include "core/vars/variables.h"
#include "platform/span.h"
#include "platform/status.h"

namespace thaw {

struct SaveOptions {
  // true: only the variables that are trainable now (what a fine-tuning
  // run changes, and what federated fine-tuning ships); frozen parameters
  // and statistics (BatchNorm's running mean and variance) are left out.
  bool trainable_only = false;
};

struct LoadOptions {
  // true: every variable must be in the file and every tensor in the file
  // must be a variable. false: variables the file lacks keep their values, and
  // tensors the model lacks are ignored (they are still checked for
  // corruption, but may have any dtype, e.g. BatchNorm's int64
  // num_batches_tracked). A tensor that is loaded must match its variable's
  // shape and be F32 in both modes.
  bool strict = true;
  // false: a tensor to be loaded that holds NaN or Inf is refused (a diverged
  // or corrupted model would poison every later step); true loads it as is.
  bool allow_non_finite = false;
  // true: only the model's trainable variables are loaded (the counterpart of
  // SaveOptions::trainable_only); `strict` then applies to them: strict, the
  // file holds exactly the trainable variables. Frozen variables and
  // statistics keep their values, and a tensor named after one is refused
  // (InvalidArgument) in both modes: the sender froze something else, so its
  // file does not describe this model's fine-tuning.
  bool trainable_only = false;
};

// The bytes SaveCheckpointToMemory writes for `vars` and `options`, into
// *size. InvalidArgument when a variable name cannot be a tensor name (see
// SaveCheckpoint). The size depends on the names and shapes only.
Status CheckpointSize(const VariableSet& vars, size_t* size, const SaveOptions& options = {});

// Writes the checkpoint of `vars` (the bytes SaveCheckpoint writes to a file)
// into buffer[0, *size) and sets *size to its length. *size is set to the
// length needed also when `buffer` is too small, which is ResourceExhausted
// and writes nothing. Returns InvalidArgument as SaveCheckpoint (a name that
// cannot be a tensor name, a count that is not a whole number >= 0); then the
// buffer holds no checkpoint (its length field is 0, so a load refuses it).
Status SaveCheckpointToMemory(const VariableSet& vars, Span<unsigned char> buffer, size_t* size,
                              const SaveOptions& options = {});

// Copies the tensors of the safetensors bytes into the variables of the same
// name (a flash region, an mmapped file, bytes received over the network):
// checked and copied in place, with no copy of the bytes. All or nothing,
// with the errors of LoadCheckpoint (core/io/checkpoint.h): DataLoss for
// bytes that are not a well-formed safetensors file, InvalidArgument for one
// that does not fit the model.
Status LoadCheckpointFromMemory(Span<const unsigned char> bytes, VariableSet* vars,
                                const LoadOptions& options = {});

}  // namespace thaw

#endif  // THAW_CORE_IO_CHECKPOINT_MEMORY_H_
