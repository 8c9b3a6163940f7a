// thaw against PyTorch: the 20-16-8-3 MLP of tests/pytorch/mlp_agreement.py,
// trained with the first layer frozen for 5 steps and thawed for 5 more, with
// SGD (momentum, weight decay) and with Adam. Every loss and every weight
// after every step must match to a relative 1e-5.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/thaw.h"
#include "gtest/gtest.h"
#include "tests/agreement_util.h"

namespace thaw {
namespace {

const Fixture& Golden() {
  static const Fixture* fixture =
      new Fixture(ReadFixture(std::string(THAW_FIXTURES_DIR) + "/mlp_agreement.txt"));
  return *fixture;
}

const char* kNames[] = {"dense_0.weight", "dense_0.bias", "dense_1.weight",
                        "dense_1.bias", "dense_2.weight", "dense_2.bias"};

void Replay(const std::string& label, const OptimizerConfig& optimizer, int threads) {
  const Fixture& golden = Golden();
  ASSERT_EQ(golden.count("x"), 1u) << "fixture missing: run tests/pytorch/mlp_agreement.py";
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 20, &arena).ok());
  ThreadPool pool(threads);
  Sequential model(pool);
  ASSERT_TRUE(model.Add(Dense::Make(16, Activation::kRelu)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(8, Activation::kRelu)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(3)).ok());
  ASSERT_TRUE(model.Build(20, 8, &arena).ok());
  ASSERT_TRUE(model.Compile(optimizer, Loss::kSparseCategoricalCrossentropyFromLogits).ok());
  for (const char* name : kNames) {
    ASSERT_TRUE(model.variables().Assign(model.variables().Find(name),
                                         golden.at(label + "/initial/" + name)).ok());
  }
  const std::vector<float>& x = golden.at("x");
  std::vector<int32_t> labels;
  for (float l : golden.at("labels")) labels.push_back(static_cast<int32_t>(l));
  Examples batch;
  batch.x = x.data();
  batch.count = 8;
  batch.labels = labels.data();
  const std::vector<float> frozen_weight = golden.at(label + "/initial/dense_0.weight");
  for (int step = 0; step < 10; ++step) {
    model.layer(0).SetTrainable(step >= 5);
    Metrics metrics;
    ASSERT_TRUE(model.TrainOnBatch(batch, &metrics).ok());
    const std::string prefix = label + "/step" + std::to_string(step) + "/";
    EXPECT_NEAR(metrics.loss, golden.at(prefix + "loss")[0], 1e-5 * golden.at(prefix + "loss")[0])
        << prefix;
    for (const char* name : kNames) {
      ExpectClose(golden.at(prefix + name), model.variables().Find(name).value(), prefix + name);
    }
    if (step < 5) {  // frozen: bit-identical, not just close
      const TensorView w = model.variables().Find("dense_0.weight").value();
      ASSERT_EQ(std::memcmp(w.data(), frozen_weight.data(), frozen_weight.size() * sizeof(float)), 0);
    }
  }
}

TEST(ModelAgreementTest, SgdMomentumWeightDecayFreezeThenThawMatchesPyTorch) {
  SgdOptions o;
  o.learning_rate = 0.1f;
  o.momentum = 0.9f;
  o.weight_decay = 0.01f;
  Replay("sgd", OptimizerConfig::Sgd(o), 1);
}

TEST(ModelAgreementTest, AdamFreezeThenThawMatchesPyTorch) {
  AdamOptions o;
  o.learning_rate = 0.01f;
  Replay("adam", OptimizerConfig::Adam(o), 1);
}

TEST(ModelAgreementTest, TwoThreadsMatchPyTorchToo) {
  AdamOptions o;
  o.learning_rate = 0.01f;
  Replay("adam", OptimizerConfig::Adam(o), 2);
}

// Gradient clipping through the freeze and thaw, against
// torch.nn.utils.clip_grad_norm_ / clip_grad_value_ (every step clips).
TEST(ModelAgreementTest, GlobalClipNormMatchesPyTorch) {
  AdamOptions o;
  o.learning_rate = 0.01f;
  OptimizerConfig config = OptimizerConfig::Adam(o);
  config.clipping.global_clipnorm = 0.05f;
  Replay("clip_global", config, 1);
  Replay("clip_global", config, 2);
}

TEST(ModelAgreementTest, PerVariableClipNormMatchesPyTorch) {
  SgdOptions o;
  o.learning_rate = 0.1f;
  o.momentum = 0.9f;
  OptimizerConfig config = OptimizerConfig::Sgd(o);
  config.clipping.clipnorm = 0.02f;
  Replay("clip_each", config, 1);
}

TEST(ModelAgreementTest, ClipValueMatchesPyTorch) {
  SgdOptions o;
  o.learning_rate = 0.1f;
  o.momentum = 0.9f;
  o.weight_decay = 0.01f;
  OptimizerConfig config = OptimizerConfig::Sgd(o);
  config.clipping.clipvalue = 0.01f;
  Replay("clip_value", config, 1);
}

// Tanh, sigmoid and a softmax layer; MSE, binary and categorical
// cross-entropy; Nesterov SGD, AdamW and Adam (tests/pytorch/mlp_agreement.py,
// run_layers).
void ReplayLayers(const std::string& label, bool softmax_layer, Loss loss,
                  const OptimizerConfig& optimizer) {
  const Fixture& golden = Golden();
  Arena arena;
  ASSERT_TRUE(Arena::Create(1 << 18, &arena).ok());
  Sequential model;
  ASSERT_TRUE(model.Add(Dense::Make(5, Activation::kTanh)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(4, Activation::kSigmoid)).ok());
  ASSERT_TRUE(model.Add(Dense::Make(3)).ok());
  if (softmax_layer) {
    ASSERT_TRUE(model.Add(Softmax()).ok());
  }
  ASSERT_TRUE(model.Build(6, 5, &arena).ok());
  ASSERT_TRUE(model.Compile(optimizer, loss).ok());
  for (const char* name : kNames) {
    ASSERT_TRUE(model.variables().Assign(model.variables().Find(name),
                                         golden.at(label + "/initial/" + name)).ok());
  }
  std::vector<int32_t> classes;
  for (float c : golden.at("classes")) classes.push_back(static_cast<int32_t>(c));
  Examples batch{golden.at("x6").data(), 5, classes.data(), golden.at("soft_targets").data()};
  for (int step = 0; step < 4; ++step) {
    Metrics metrics;
    ASSERT_TRUE(model.TrainOnBatch(batch, &metrics).ok());
    const std::string prefix = label + "/step" + std::to_string(step) + "/";
    EXPECT_NEAR(metrics.loss, golden.at(prefix + "loss")[0], 1e-5 * golden.at(prefix + "loss")[0])
        << prefix;
    for (const char* name : kNames) {
      ExpectClose(golden.at(prefix + name), model.variables().Find(name).value(), prefix + name);
    }
  }
}

TEST(ModelAgreementTest, TanhSigmoidMseNesterovMatchesPyTorch) {
  SgdOptions o;
  o.learning_rate = 0.5f;
  o.momentum = 0.5f;
  o.nesterov = true;
  ReplayLayers("mse", false, Loss::kMeanSquaredError, OptimizerConfig::Sgd(o));
}

TEST(ModelAgreementTest, BinaryCrossEntropyAdamWMatchesPyTorch) {
  AdamOptions o;
  o.learning_rate = 0.05f;
  o.weight_decay = 0.1f;
  ReplayLayers("bce", false, Loss::kBinaryCrossentropyFromLogits, OptimizerConfig::AdamW(o));
}

TEST(ModelAgreementTest, SoftmaxLayerWithCrossEntropyMatchesPyTorch) {
  AdamOptions o;
  o.learning_rate = 0.05f;
  ReplayLayers("softmax", true, Loss::kSparseCategoricalCrossentropy, OptimizerConfig::Adam(o));
}

}  // namespace
}  // namespace thaw
