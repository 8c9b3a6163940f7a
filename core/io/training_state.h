// thaw/core/io/training_state.h — everything a training run needs to go on
// after a crash or a power cut, in one atomically written file.
//
//   thaw::TrainingStateSaver saver(&model, "run.state");  // after every step
//   thaw::FitOptions options;
//   options.callback = &saver;
//   thaw::FitPosition position;
//   if (thaw::LoadTrainingState("run.state", &model, &position).ok()) {
//     options.resume = &position;  // a restart: go on where the run stopped
//   }
//   THAW_RETURN_IF_ERROR(model.Fit(train, options));
//
// A training state holds the variables (weights and statistics, as a
// checkpoint holds them), the freeze set, each trainable variable's
// optimizer state and step count, the learning rate, the model's step count
// (dropout masks follow it) and the Fit position. Resuming from it on the
// same examples with the same FitOptions gives, bit for bit, the weights of a
// run that never stopped (tests/training_state_test.cc kills a training
// process at random moments and checks that).
//
// The file is safetensors: the variables under their names, the optimizer
// state under PyTorch's names, "optimizer/<variable>/exp_avg" and
// "exp_avg_sq" (Adam, AdamW) or "momentum_buffer" (SGD), in the variable's
// file layout, and "optimizer/<variable>/step" (int64); the rest is metadata
// ("thaw.training_state": "1", "thaw.optimizer", "thaw.learning_rate",
// "thaw.trainable" one '0' or '1' per variable, "thaw.model_steps",
// "thaw.fit.epoch", "thaw.fit.step", "thaw.fit.loss_sum",
// "thaw.fit.correct_sum").
#ifndef THAW_CORE_IO_TRAINING_STATE_H_
#define THAW_CORE_IO_TRAINING_STATE_H_

#include <string>

#include "core/api/model.h"
#include "platform/status.h"

namespace thaw {

// Writes the training state of the compiled `model`, at `position`, to
// `path`, atomically as SaveCheckpoint. FailedPrecondition before Compile.
// Setup-time: allocates.
Status SaveTrainingState(Model& model, const FitPosition& position, const std::string& path);

// Restores the training state at `path` into `model`, which must be built
// and compiled as when it was saved (the same layers and names, the same
// optimizer kind), and sets *position for FitOptions::resume. All or
// nothing: the file is checked whole first (as LoadCheckpoint checks, plus
// its optimizer state and metadata), and on any error the model is as it
// was. A freeze set whose state does not fit the arena is ResourceExhausted.
Status LoadTrainingState(const std::string& path, Model* model, FitPosition* position);

// A Fit callback that saves the training state to `path` after every
// `every_steps` steps (and after the last step of every epoch). A failed
// save stops Fit with its Status; the state saved before stays whole.
class TrainingStateSaver : public FitCallback {
 public:
  TrainingStateSaver(Model* model, std::string path, size_t every_steps = 1)
      : model_(model), path_(std::move(path)), every_steps_(every_steps == 0 ? 1 : every_steps) {}
  Status OnStepEnd(const FitPosition& next) override;
  // Saves made so far.
  size_t saves() const { return saves_; }

 private:
  Model* model_;
  std::string path_;
  size_t every_steps_;
  size_t steps_ = 0;
  size_t saves_ = 0;
};

}  // namespace thaw

#endif  // THAW_CORE_IO_TRAINING_STATE_H_
