// thaw/core/io/io.h — the optional parts of thaw (library thaw_io): files and
// the terminal, none of which the runtime needs.
//
//   #include "core/io/io.h"
//   THAW_RETURN_IF_ERROR(thaw::SaveCheckpoint(model.variables(), "tuned.safetensors"));
#ifndef THAW_CORE_IO_IO_H_
#define THAW_CORE_IO_IO_H_

#include "core/io/checkpoint.h"  // IWYU pragma: export
#include "core/io/dataset.h"     // IWYU pragma: export
#include "core/io/progress.h"    // IWYU pragma: export
#include "core/io/training_state.h"  // IWYU pragma: export

#endif  // THAW_CORE_IO_IO_H_
