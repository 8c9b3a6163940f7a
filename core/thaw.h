// thaw/core/thaw.h — the one header a user of the runtime includes.
//
//   #include "core/thaw.h"
//
//   thaw::Arena arena;
//   THAW_CHECK(thaw::Arena::Create(1 << 16, &arena).ok());
//   thaw::VariableSet vars(&arena);
//   thaw::Variable w;
//   THAW_CHECK(vars.CreateScalar("w", 1.0f, /*trainable=*/true, &w).ok());
//   thaw::SgdOptions sgd_options;
//   sgd_options.learning_rate = 0.1f;
//   thaw::SGD sgd(&vars, sgd_options);
//   for (int step = 0; step < 10; ++step) {
//     thaw::GradientTape tape(&vars);                  // a step begins
//     thaw::Tensor loss = tape.Square(tape.Sub(w, 3.0f));
//     thaw::TensorView grad[1];
//     THAW_CHECK(tape.Gradient(loss, {w}, grad).ok());
//     THAW_CHECK(sgd.ApplyGradients({{grad[0], w}}).ok());
//   }
//
// Checkpoints in memory (safetensors bytes: core/io/checkpoint_memory.h) are
// part of the runtime and included here; checkpoint and training-state files,
// datasets and the progress bar are the optional thaw_io library:
// core/io/io.h.
#ifndef THAW_CORE_THAW_H_
#define THAW_CORE_THAW_H_

#include "core/api/model.h"         // IWYU pragma: export
#include "core/api/tape.h"          // IWYU pragma: export
#include "core/io/checkpoint_memory.h"  // IWYU pragma: export
#include "core/memory/arena.h"      // IWYU pragma: export
#include "core/ops/activation.h"    // IWYU pragma: export
#include "core/ops/arithmetic.h"    // IWYU pragma: export
#include "core/ops/batch_norm.h"    // IWYU pragma: export
#include "core/ops/concat.h"        // IWYU pragma: export
#include "core/ops/conv.h"          // IWYU pragma: export
#include "core/ops/dense.h"         // IWYU pragma: export
#include "core/ops/dropout.h"       // IWYU pragma: export
#include "core/ops/loss.h"          // IWYU pragma: export
#include "core/ops/pool.h"          // IWYU pragma: export
#include "core/ops/reshape.h"       // IWYU pragma: export
#include "core/tensor/tensor.h"     // IWYU pragma: export
#include "core/train/optimizers.h"  // IWYU pragma: export
#include "core/vars/variables.h"    // IWYU pragma: export
#include "platform/cpu.h"           // IWYU pragma: export
#include "platform/status.h"        // IWYU pragma: export
#include "platform/threads.h"       // IWYU pragma: export
#include "simd/targets.h"           // IWYU pragma: export

#endif  // THAW_CORE_THAW_H_
