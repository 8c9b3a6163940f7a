// Case 1 — freeze one variable, train the other.
//
// The TensorFlow original:
//
//   var1 = tf.Variable(1.0, trainable=True)
//   var2 = tf.Variable(2.0, trainable=False)
//   optimizer = tf.keras.optimizers.SGD(learning_rate=0.1)
//   with tf.GradientTape() as tape:
//       loss = (var1 + var2 - 5.0) ** 2
//   grads = tape.gradient(loss, [var1, var2])      # [-4.0, None]
//   optimizer.apply_gradients(zip(grads, [var1, var2]))
//
// thaw does the same inside one fixed block of memory. var2 is frozen, so it
// has no gradient buffer at all: its gradient comes back absent (TensorFlow's
// None), and the optimizer leaves it alone.
#include <cstdio>
#include <cstdlib>

#include "core/thaw.h"

namespace {

// Examples stop at the first error and print thaw's sentence about it.
void Check(const thaw::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
  std::exit(1);
}

const char* PyBool(bool b) { return b ? "True" : "False"; }

}  // namespace

int main() {
  // 1. One arena for everything: 4 KB is plenty for two scalars.
  thaw::Arena arena;
  Check(thaw::Arena::Create(4096, &arena));

  // 2. Two variables; var2 is frozen from the start.
  thaw::VariableSet vars(&arena);
  thaw::Variable var1, var2;
  Check(vars.CreateScalar("var1", 1.0f, /*trainable=*/true, &var1));
  Check(vars.CreateScalar("var2", 2.0f, /*trainable=*/false, &var2));
  std::printf("var1 is trainable: %s\n", PyBool(var1.trainable()));
  std::printf("var2 is trainable: %s\n", PyBool(var2.trainable()));

  // 3. Plain SGD with learning rate 0.1.
  thaw::SgdOptions options;
  options.learning_rate = 0.1f;
  thaw::SGD sgd(&vars, options);

  // 4. Record the loss on a tape, then ask for both gradients.
  thaw::GradientTape tape(&vars);
  thaw::Tensor loss = tape.Square(tape.Sub(tape.Add(var1, var2), 5.0f));
  thaw::TensorView grads[2];
  Check(tape.Gradient(loss, {var1, var2}, grads));
  std::printf("loss: %g, gradient of var1: %g, gradient of var2: %s\n",
              loss.scalar(), grads[0].at(0),
              grads[1].present() ? "present" : "absent (frozen: no buffer)");

  // 5. Apply. The absent gradient is skipped, as TensorFlow skips None.
  Check(sgd.ApplyGradients({{grads[0], var1}, {grads[1], var2}}));
  std::printf("var1 value after update: %g\n", var1.scalar());
  std::printf("var2 value after update: %g\n", var2.scalar());

  // 6. Where the bytes went: no gradient or optimizer state for var2.
  std::printf("arena:\n%s", arena.Report().ToString().c_str());
  return 0;
}
