// Training states: save, load, resume bit for bit, also across SIGKILLs.
#include "core/io/training_state.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/io/checkpoint.h"
#include "core/thaw.h"
#include "gtest/gtest.h"
#include "tests/scratch_dir.h"

namespace thaw {
namespace {

bool Contains(const Status& s, const std::string& text) {
  return std::string(s.message()).find(text) != std::string::npos;
}

constexpr size_t kExamples = 96, kFeatures = 12, kClasses = 4;

// A model with every kind of state: BatchNorm statistics and count, dropout
// (masks follow the model's step count), a frozen first layer, Adam.
struct TrainingRun {
  Arena arena;
  Sequential model;
  std::vector<float> x = std::vector<float>(kExamples * kFeatures);
  std::vector<int32_t> labels = std::vector<int32_t>(kExamples);
  FitOptions options;

  // in_backward: OptimizerConfig::update_in_backward (no gradient buffers).
  explicit TrainingRun(bool adam = true, bool in_backward = false) {
    THAW_CHECK(Arena::Create(1 << 20, &arena).ok());
    THAW_CHECK(model.Add(Dense::Make(16)).ok());
    THAW_CHECK(model.Add(BatchNormalization::Make()).ok());
    THAW_CHECK(model.Add(ReLU()).ok());
    THAW_CHECK(model.Add(Dropout::Make(0.25f, 7)).ok());
    THAW_CHECK(model.Add(Dense::Make(16, Activation::kRelu)).ok());
    THAW_CHECK(model.Add(Dense::Make(kClasses)).ok());
    THAW_CHECK(model.Build(kFeatures, 8, &arena, 5).ok());
    model.layer(0).SetTrainable(false);
    AdamOptions a;
    a.learning_rate = 0.01f;
    SgdOptions s;
    s.learning_rate = 0.05f;
    s.momentum = 0.9f;
    OptimizerConfig config = adam ? OptimizerConfig::Adam(a) : OptimizerConfig::Sgd(s);
    config.update_in_backward = in_backward;
    THAW_CHECK(model.Compile(config, Loss::kSparseCategoricalCrossentropyFromLogits).ok());
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * i) + 0.1f * (i % 7);
    for (size_t i = 0; i < kExamples; ++i) labels[i] = static_cast<int32_t>((i * 7 + i / 5) % kClasses);
    options.epochs = 3;
    options.batch_size = 8;
    options.seed = 11;
  }
  Examples examples() const {
    return Examples{x.data(), kExamples, labels.data(), nullptr, kFeatures};
  }
  // Every variable's bits, and every optimizer slot and step count.
  std::vector<uint32_t> Bits() {
    std::vector<uint32_t> bits;
    VariableSet& vars = model.variables();
    auto add = [&](const float* p, size_t n) {
      for (size_t k = 0; k < n; ++k) {
        uint32_t b;
        std::memcpy(&b, p + k, 4);
        bits.push_back(b);
      }
    };
    for (int i = 0; i < vars.size(); ++i) {
      const size_t n = vars.shape(i).num_elements();
      add(vars.value_data(i), n);
      if (!vars.planned_trainable(i)) continue;
      for (int s = 0; s < vars.optimizer_slots(); ++s) add(vars.slot_data(i, s), n);
      bits.push_back(static_cast<uint32_t>(vars.steps(i)));
    }
    bits.push_back(static_cast<uint32_t>(model.step_count()));
    return bits;
  }
};

// Stops Fit after `stop_after` steps, having saved the state.
class StopAfter : public TrainingStateSaver {
 public:
  StopAfter(Model* model, std::string path, size_t stop_after)
      : TrainingStateSaver(model, std::move(path)), left_(stop_after) {}
  Status OnStepEnd(const FitPosition& next) override {
    THAW_RETURN_IF_ERROR(TrainingStateSaver::OnStepEnd(next));
    return --left_ == 0 ? Status(StatusCode::kInternal, "stopped for the test") : Status::Ok();
  }

 private:
  size_t left_;
};

TEST(TrainingStateTest, ResumingIsBitIdenticalToNeverStopping) {
  for (bool adam : {true, false}) {
    SCOPED_TRACE(adam ? "adam" : "sgd momentum");
    TrainingRun straight(adam);
    ASSERT_TRUE(straight.model.Fit(straight.examples(), straight.options).ok());
    const std::vector<uint32_t> expected = straight.Bits();

    ScratchDir dir;
    const std::string path = dir.Path("run.state");
    for (size_t stop : {size_t{1}, size_t{5}, size_t{12}, size_t{13}, size_t{30}}) {
      SCOPED_TRACE("stopped after step " + std::to_string(stop));
      TrainingRun first(adam);
      StopAfter stopper(&first.model, path, stop);
      first.options.callback = &stopper;
      const Status s = first.model.Fit(first.examples(), first.options);
      ASSERT_TRUE(Contains(s, "stopped for the test")) << s.message();

      TrainingRun resumed(adam);
      FitPosition position;
      ASSERT_TRUE(LoadTrainingState(path, &resumed.model, &position).ok());
      EXPECT_EQ(position.epoch, static_cast<int>(stop / 12));
      EXPECT_EQ(position.step, stop % 12);
      EXPECT_FALSE(resumed.model.layer(0).trainable());  // the freeze set came back
      resumed.options.resume = &position;
      ASSERT_TRUE(resumed.model.Fit(resumed.examples(), resumed.options).ok());
      EXPECT_TRUE(resumed.Bits() == expected);
    }
  }
}

// A state saved with update in the backward pass resumes bit for bit, and
// is the default mode's state: either mode resumes the other's.
TEST(TrainingStateTest, UpdateInBackwardSavesAndResumesTheSameState) {
  for (bool adam : {true, false}) {
    SCOPED_TRACE(adam ? "adam" : "sgd momentum");
    TrainingRun straight(adam);
    ASSERT_TRUE(straight.model.Fit(straight.examples(), straight.options).ok());
    const std::vector<uint32_t> expected = straight.Bits();
    ScratchDir dir;
    const std::string path = dir.Path("run.state");
    for (bool saved_in_backward : {true, false}) {
      SCOPED_TRACE(saved_in_backward ? "saved in backward, resumed in backward and default"
                                     : "saved by default, resumed in backward");
      TrainingRun first(adam, saved_in_backward);
      StopAfter stopper(&first.model, path, 13);
      first.options.callback = &stopper;
      const Status s = first.model.Fit(first.examples(), first.options);
      ASSERT_TRUE(Contains(s, "stopped for the test")) << s.message();
      for (bool resumed_in_backward : {true, false}) {
        if (!saved_in_backward && !resumed_in_backward) continue;  // the test above
        TrainingRun resumed(adam, resumed_in_backward);
        FitPosition position;
        ASSERT_TRUE(LoadTrainingState(path, &resumed.model, &position).ok());
        resumed.options.resume = &position;
        ASSERT_TRUE(resumed.model.Fit(resumed.examples(), resumed.options).ok());
        EXPECT_TRUE(resumed.Bits() == expected) << "resumed in backward: " << resumed_in_backward;
      }
    }
  }
}

TEST(TrainingStateTest, NamesAreReadableAndBadStatesChangeNothing) {
  ScratchDir dir;
  const std::string path = dir.Path("run.state");
  TrainingRun run;
  StopAfter stopper(&run.model, path, 3);
  run.options.callback = &stopper;
  ASSERT_FALSE(run.model.Fit(run.examples(), run.options).ok());
  // PyTorch's names for the optimizer state; a checkpoint load ignores none
  // of it strictly, but takes the weights non-strictly.
  {
    TrainingRun other;
    LoadOptions partial;
    partial.strict = false;
    ASSERT_TRUE(LoadCheckpoint(path, &other.model.variables(), partial).ok());
    const Status strict = LoadCheckpoint(path, &other.model.variables());
    EXPECT_TRUE(Contains(strict, "optimizer/batch_normalization_0.weight/exp_avg: the checkpoint has this tensor"))
        << strict.message();
  }
  // The wrong optimizer: refused, the model untouched.
  TrainingRun sgd(/*adam=*/false);
  const std::vector<uint32_t> before = sgd.Bits();
  FitPosition position;
  Status s = LoadTrainingState(path, &sgd.model, &position);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "the training state holds the state of adam, but the model is compiled "
                          "with sgd"))
      << s.message();
  EXPECT_TRUE(sgd.Bits() == before);
  EXPECT_TRUE(sgd.model.layer(0).trainable() == false);  // as built, not as the file says

  // A plain checkpoint is not a training state.
  const std::string plain = dir.Path("plain.safetensors");
  ASSERT_TRUE(SaveCheckpoint(run.model.variables(), plain).ok());
  TrainingRun fresh;
  const std::vector<uint32_t> fresh_before = fresh.Bits();
  s = LoadTrainingState(plain, &fresh.model, &position);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "the training state has no \"thaw.training_state\" in its metadata"))
      << s.message();
  EXPECT_TRUE(fresh.Bits() == fresh_before);
  // Not compiled.
  Sequential bare;
  EXPECT_EQ(LoadTrainingState(path, &bare, &position).code(), StatusCode::kFailedPrecondition);
}

// The test: a training process is killed with SIGKILL at random
// moments, during steps and during saves, at least 50 times; each restart
// resumes from the training state, and the final weights must equal, bit for
// bit, those of a run that was never interrupted.
TEST(TrainingStateTest, SurvivesFiftyKillsBitForBit) {
  ScratchDir dir;
  const std::string state = dir.Path("run.state");
  const std::string done = dir.Path("done.state");
  TrainingRun straight;
  straight.options.epochs = 6;
  ASSERT_TRUE(straight.model.Fit(straight.examples(), straight.options).ok());
  const std::vector<uint32_t> expected = straight.Bits();

  // One attempt: resume when a state exists, train to the end, save the
  // final state to `done`.
  auto attempt = [&]() -> int {
    TrainingRun run;
    run.options.epochs = 6;
    FitPosition position;
    if (std::filesystem::exists(state)) {
      if (!LoadTrainingState(state, &run.model, &position).ok()) return 2;
      run.options.resume = &position;
    }
    TrainingStateSaver saver(&run.model, state);
    run.options.callback = &saver;
    if (!run.model.Fit(run.examples(), run.options).ok()) return 3;
    FitPosition end;
    end.epoch = run.options.epochs;
    return SaveTrainingState(run.model, end, done).ok() ? 0 : 4;
  };

  // How long one whole run takes in this build (a sanitizer slows it down
  // many times): kills land anywhere in [2%, 42%] of that, so each attempt
  // gets some steps done before it dies, and a restart with little work left
  // can finish.
  const auto started = std::chrono::steady_clock::now();
  {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) ::_exit(attempt());
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const long run_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();

  // Campaigns of killed attempts, each until a run completes, until 50
  // kills in all; every completed run must end where the straight one did.
  std::mt19937 rng(2026);
  int kills = 0, during_save = 0, attempts = 0, campaigns = 0;
  while (kills < 50) {
    ++campaigns;
    std::filesystem::remove(state);
    std::filesystem::remove(done);
    for (;;) {
      ++attempts;
      ASSERT_LT(attempts, 5000) << "the runs never finished";
      const pid_t child = ::fork();
      ASSERT_GE(child, 0);
      if (child == 0) ::_exit(attempt());
      ::usleep(static_cast<useconds_t>(run_us / 50 + rng() % (run_us * 2 / 5 + 1)));
      ::kill(child, SIGKILL);
      int status = 0;
      ASSERT_EQ(::waitpid(child, &status, 0), child);
      if (WIFSIGNALED(status)) {
        ++kills;
        const std::string tag = ".tmp." + std::to_string(child) + ".";
        for (const std::string& name : dir.List()) during_save += name.find(tag) != std::string::npos;
        continue;
      }
      ASSERT_TRUE(WIFEXITED(status));
      ASSERT_EQ(WEXITSTATUS(status), 0) << "attempt " << attempts << " failed";
      ASSERT_TRUE(std::filesystem::exists(done));
      break;
    }
    TrainingRun final_run;
    final_run.options.epochs = 6;
    FitPosition position;
    ASSERT_TRUE(LoadTrainingState(done, &final_run.model, &position).ok());
    ASSERT_TRUE(final_run.Bits() == expected) << "campaign " << campaigns;
  }
  std::printf("%d SIGKILLs (%d of them during a save) over %d runs (one takes %ld us here), %d "
              "attempts in all; every run's final weights, optimizer state and step counts "
              "bit-identical to the uninterrupted run\n",
              kills, during_save, campaigns, run_us, attempts);
  EXPECT_GT(during_save, 0) << "no kill landed in a save";
}

}  // namespace
}  // namespace thaw
