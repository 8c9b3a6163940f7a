// Case 2 — thaw a frozen variable and train it.
//
// The TensorFlow original:
//
//   var3 = tf.Variable(2.0, trainable=False)
//   print(var3.trainable)                          # False
//   var3.trainable = True                          # takes effect at the next tape
//   optimizer = tf.keras.optimizers.SGD(learning_rate=0.1)
//   with tf.GradientTape() as tape:
//       loss = (var3 - 5.0) ** 2
//   grads = tape.gradient(loss, [var3])            # [-6.0]
//   optimizer.apply_gradients(zip(grads, [var3]))
//
// In thaw the flag is one bit. Flipping it moves no memory by itself; the next
// tape re-plans the arena and gives var3 a gradient buffer.
#include <cstdio>
#include <cstdlib>

#include "core/thaw.h"

namespace {

void Check(const thaw::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
  std::exit(1);
}

const char* PyBool(bool b) { return b ? "True" : "False"; }

}  // namespace

int main() {
  thaw::Arena arena;
  Check(thaw::Arena::Create(4096, &arena));
  thaw::VariableSet vars(&arena);
  thaw::Variable var3;
  Check(vars.CreateScalar("var3", 2.0f, /*trainable=*/false, &var3));
  std::printf("var3 initially trainable: %s\n", PyBool(var3.trainable()));
  std::printf("  gradient buffer: %zu bytes\n",
              vars.PlannedBytes()[thaw::Region::kGradients]);

  Check(var3.set_trainable(true));
  std::printf("var3 now trainable: %s\n", PyBool(var3.trainable()));
  std::printf("  gradient buffer at the next step: %zu bytes\n",
              vars.PlannedBytes()[thaw::Region::kGradients]);

  thaw::SgdOptions options;
  options.learning_rate = 0.1f;
  thaw::SGD sgd(&vars, options);

  thaw::GradientTape tape(&vars);  // the thaw takes effect here
  thaw::Tensor loss = tape.Square(tape.Sub(var3, 5.0f));
  thaw::TensorView grads[1];
  Check(tape.Gradient(loss, {var3}, grads));
  Check(sgd.ApplyGradients({{grads[0], var3}}));
  std::printf("var3 value after update: %g\n", var3.scalar());
  return 0;
}
