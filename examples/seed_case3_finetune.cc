// Case 3 — Keras transfer learning: train, freeze the first layer, train the
// head, unfreeze, fine-tune. No recompile between the phases.
//
// The Keras original:
//
//   model = Sequential([Dense(5, activation='relu', input_shape=(10,)),
//                       Dense(2, activation='softmax')])
//   model.compile(optimizer=Adam(0.01), loss='sparse_categorical_crossentropy')
//   model.fit(x, y, epochs=5)
//   model.layers[0].trainable = False   # Keras needs model.compile() again here
//   model.fit(x, y, epochs=5)
//   model.layers[0].trainable = True
//   model.fit(x, y, epochs=5)
//
// thaw applies each flag change at the next step, re-planning memory: while
// the first layer is frozen it has no gradient and no Adam state, its
// activations are not kept, and no backward pass runs through it.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/io/io.h"
#include "core/thaw.h"

namespace {

void Check(const thaw::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
  std::exit(1);
}

const char* PyBool(bool b) { return b ? "True" : "False"; }

// A checksum of a variable's bytes (FNV-1a): equal means bit-identical.
unsigned Checksum(const thaw::Variable& v) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(v.value().data());
  unsigned hash = 2166136261u;
  for (size_t i = 0; i < v.value().num_elements() * sizeof(float); ++i) {
    hash = (hash ^ bytes[i]) * 16777619u;
  }
  return hash;
}

void PrintPhase(const char* title, thaw::Sequential& model) {
  std::printf("\n== %s\n", title);
  for (size_t i = 0; i < model.num_layers(); ++i) {
    std::printf("%s trainable: %s\n", model.layer(i).name().c_str(),
                PyBool(model.layer(i).trainable()));
  }
  thaw::ModelPlan plan;
  Check(model.PlanMemory(/*batch=*/32, /*training=*/true, &plan));
  std::printf("memory plan for a step of 32 examples:\n%s", plan.ToString().c_str());
}

}  // namespace

int main() {
  // Random data, as the seed: 100 examples of 10 features, 2 classes.
  thaw::Random rng(7);
  std::vector<float> x(100 * 10);
  std::vector<int32_t> y(100);
  for (float& v : x) v = rng.Uniform();
  for (int32_t& label : y) label = static_cast<int32_t>(rng.Below(2));
  thaw::Examples train{x.data(), y.size(), y.data(), nullptr};

  thaw::Arena arena;
  Check(thaw::Arena::Create(64 * 1024, &arena));
  thaw::Sequential model;
  Check(model.Add(thaw::Dense::Make(5, thaw::Activation::kRelu)));
  Check(model.Add(thaw::Dense::Make(2, thaw::Activation::kSoftmax)));
  Check(model.Build(/*input_features=*/10, /*max_batch=*/32, &arena, /*seed=*/1));
  thaw::AdamOptions adam;
  adam.learning_rate = 0.01f;
  Check(model.Compile(thaw::OptimizerConfig::Adam(adam),
                      thaw::Loss::kSparseCategoricalCrossentropy));
  std::printf("%s", model.Summary().c_str());

  thaw::ProgressBar progress(thaw::ProgressBar::Style::kEpochLines);
  thaw::FitOptions fit;
  fit.epochs = 5;
  fit.batch_size = 32;
  fit.callback = &progress;
  const thaw::Variable first = model.variables().Find("dense_0.weight");

  PrintPhase("phase 1: train everything", model);
  Check(model.Fit(train, fit));
  const unsigned after_phase1 = Checksum(first);

  model.layer(0).SetTrainable(false);
  PrintPhase("phase 2: first layer frozen", model);
  Check(model.Fit(train, fit));
  const unsigned after_phase2 = Checksum(first);
  std::printf("dense_0.weight checksum %08x -> %08x: %s\n", after_phase1, after_phase2,
              after_phase1 == after_phase2 ? "unchanged while frozen" : "CHANGED (bug)");

  model.layer(0).SetTrainable(true);
  PrintPhase("phase 3: unfrozen, fine-tune", model);
  Check(model.Fit(train, fit));
  const unsigned after_phase3 = Checksum(first);
  std::printf("dense_0.weight checksum %08x -> %08x: %s\n", after_phase2, after_phase3,
              after_phase2 != after_phase3 ? "changed after thawing" : "UNCHANGED (bug)");
  return after_phase1 == after_phase2 && after_phase2 != after_phase3 ? 0 : 1;
}
