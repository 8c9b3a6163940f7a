// The C interface (core/c/thaw_c.h), driven as a C program would: every code
// and message, sizing a block before building, training with a freeze set,
// weights through memory, and agreement with the C++ API it wraps.
#include "core/c/thaw_c.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/io/checkpoint_memory.h"
#include "core/thaw.h"
#include "gtest/gtest.h"
#include "tests/status_text.h"

// tests/c_api_header_check.c: the header compiled as strict C99.
extern "C" int thaw_c_header_check(void);

namespace {

std::string Message(const thaw_model* m) {
  char buffer[512];
  thaw_model_message(m, buffer, sizeof(buffer));
  return buffer;
}

// A piece of a sentence; without error strings, that there is one.
bool Contains(const std::string& s, const std::string& part) {
  return thaw::TextContains(s.c_str(), part);
}

// A 64-byte aligned block that frees itself.
struct Block {
  explicit Block(size_t n) : bytes(n), data(std::aligned_alloc(64, (n + 63) / 64 * 64)) {}
  ~Block() { std::free(data); }
  size_t bytes;
  void* data;
};

// 64 -> hidden (32, relu) -> head (10 logits), described through C.
struct Mlp {
  Mlp() {
    EXPECT_EQ(thaw_model_create(1, &m), THAW_OK);
    const size_t shape[1] = {64};
    thaw_tensor x, h;
    EXPECT_EQ(thaw_input(m, shape, 1, THAW_LAYOUT_ANY, &x), THAW_OK);
    EXPECT_EQ(thaw_dense(m, x, 32, THAW_ACTIVATION_RELU, 1, "hidden", &h), THAW_OK);
    EXPECT_EQ(thaw_dense(m, h, 10, THAW_ACTIVATION_LINEAR, 1, "head", &y), THAW_OK);
    thaw_optimizer_defaults(THAW_OPTIMIZER_SGD, &sgd);
    sgd.learning_rate = 0.1f;
    sgd.momentum = 0.9f;
  }
  ~Mlp() { thaw_model_destroy(m); }
  // Builds into a block of exactly the training plan at batch 8.
  void Build(uint64_t seed = 5) {
    thaw_memory_plan plan;
    ASSERT_EQ(thaw_model_plan_training(m, y, 8, &sgd, kLoss, &plan), THAW_OK) << Message(m);
    block = std::make_unique<Block>(plan.total);
    ASSERT_EQ(thaw_model_build(m, y, 8, block->data, plan.total, seed), THAW_OK) << Message(m);
    ASSERT_EQ(thaw_model_compile(m, &sgd, kLoss), THAW_OK) << Message(m);
  }
  std::vector<unsigned char> Weights(unsigned flags = 0) {
    size_t size = 0;
    EXPECT_EQ(thaw_model_save_weights(m, flags, nullptr, 0, &size), THAW_OK) << Message(m);
    std::vector<unsigned char> bytes(size);
    EXPECT_EQ(thaw_model_save_weights(m, flags, bytes.data(), size, &size), THAW_OK);
    EXPECT_EQ(size, bytes.size());
    return bytes;
  }
  static constexpr thaw_loss kLoss = THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS;
  thaw_model* m = nullptr;
  thaw_tensor y = THAW_NO_TENSOR;
  thaw_optimizer sgd;
  std::unique_ptr<Block> block;
};

std::vector<float> Inputs(size_t n, float phase = 0.1f) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i) + phase);
  return x;
}

const int32_t kLabels[8] = {0, 1, 2, 3, 4, 5, 6, 7};

TEST(CApiTest, TheHeaderIsStrictC99) { EXPECT_EQ(thaw_c_header_check(), 0); }

TEST(CApiTest, CreateRefusesBadArguments) {
  thaw_model* m = reinterpret_cast<thaw_model*>(1);
  EXPECT_EQ(thaw_model_create(-1, &m), THAW_INVALID_ARGUMENT);
  EXPECT_EQ(m, nullptr);
  EXPECT_EQ(thaw_model_create(1, nullptr), THAW_INVALID_ARGUMENT);
  thaw_model_destroy(nullptr);  // allowed
  EXPECT_STREQ(thaw_status_name(THAW_DATA_LOSS), "DATA_LOSS");
  EXPECT_STREQ(thaw_status_name(static_cast<thaw_status>(99)), "UNKNOWN");
}

TEST(CApiTest, NullModelsAreRefusedNotDereferenced) {
  thaw_tensor t;
  const size_t shape[1] = {4};
  EXPECT_EQ(thaw_input(nullptr, shape, 1, THAW_LAYOUT_ANY, &t), THAW_INVALID_ARGUMENT);
  EXPECT_EQ(thaw_model_train_on_batch(nullptr, nullptr, nullptr, nullptr, 1, nullptr),
            THAW_INVALID_ARGUMENT);
  EXPECT_EQ(thaw_model_num_layers(nullptr), 0u);
  EXPECT_EQ(thaw_model_layer_name(nullptr, 0), nullptr);
  char buffer[64];
  EXPECT_GT(thaw_model_message(nullptr, buffer, sizeof(buffer)), 0u);
}

TEST(CApiTest, MessagesAreCopiedCutAndClearedBySuccess) {
  Mlp net;
  thaw_tensor bad;
  EXPECT_EQ(thaw_dense(net.m, 42, 3, THAW_ACTIVATION_RELU, 1, nullptr, &bad),
            THAW_INVALID_ARGUMENT);
  EXPECT_EQ(bad, THAW_NO_TENSOR);
  const std::string whole = Message(net.m);
  EXPECT_TRUE(Contains(whole, "42 is not a tensor of this model")) << whole;
  char small[8];
  EXPECT_EQ(thaw_model_message(net.m, small, sizeof(small)), whole.size());
  EXPECT_EQ(std::string(small), whole.substr(0, 7));  // cut, NUL-terminated
  EXPECT_EQ(thaw_model_message(net.m, nullptr, 0), whole.size());
  EXPECT_EQ(thaw_model_num_layers(net.m), 2u);
  thaw_memory_plan plan;
  EXPECT_EQ(thaw_model_plan_prediction(net.m, net.y, 1, &plan), THAW_OK);
  EXPECT_EQ(Message(net.m), "");
}

TEST(CApiTest, BadEnumsAndShapesAreInvalidArguments) {
  thaw_model* m;
  ASSERT_EQ(thaw_model_create(1, &m), THAW_OK);
  thaw_tensor x, y;
  const size_t shape[5] = {2, 2, 2, 2, 2};
  EXPECT_EQ(thaw_input(m, shape, 5, THAW_LAYOUT_ANY, &x), THAW_INVALID_ARGUMENT);
  EXPECT_EQ(thaw_input(m, nullptr, 1, THAW_LAYOUT_ANY, &x), THAW_INVALID_ARGUMENT);
  EXPECT_EQ(thaw_input(m, shape, 1, static_cast<thaw_layout>(7), &x), THAW_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(Message(m), "7 is not a thaw_layout")) << Message(m);
  ASSERT_EQ(thaw_input(m, shape, 1, THAW_LAYOUT_ANY, &x), THAW_OK);
  thaw_tensor again;
  EXPECT_EQ(thaw_input(m, shape, 1, THAW_LAYOUT_ANY, &again), THAW_FAILED_PRECONDITION);
  EXPECT_EQ(again, THAW_NO_TENSOR);
  EXPECT_EQ(thaw_dense(m, x, 3, static_cast<thaw_activation>(99), 1, nullptr, &y),
            THAW_INVALID_ARGUMENT);
  EXPECT_EQ(thaw_dense(m, x, 3, THAW_ACTIVATION_RELU, 1, nullptr, nullptr),
            THAW_INVALID_ARGUMENT);
  thaw_optimizer o;
  thaw_optimizer_defaults(THAW_OPTIMIZER_ADAM, &o);
  o.kind = static_cast<thaw_optimizer_kind>(9);
  ASSERT_EQ(thaw_dense(m, x, 3, THAW_ACTIVATION_LINEAR, 1, nullptr, &y), THAW_OK) << Message(m);
  thaw_memory_plan plan;
  EXPECT_EQ(thaw_model_plan_training(m, y, 2, &o, THAW_LOSS_MEAN_SQUARED_ERROR, &plan),
            THAW_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(Message(m), "9 is not a thaw_optimizer_kind")) << Message(m);
  thaw_optimizer_defaults(THAW_OPTIMIZER_ADAM, &o);
  o.beta1 = 1.5f;  // torch.optim refuses it too
  EXPECT_EQ(thaw_model_plan_training(m, y, 2, &o, THAW_LOSS_MEAN_SQUARED_ERROR, &plan),
            THAW_INVALID_ARGUMENT);
  EXPECT_EQ(thaw_model_plan_training(m, y, 2, nullptr, static_cast<thaw_loss>(-3), &plan),
            THAW_INVALID_ARGUMENT);
  thaw_model_destroy(m);
}

TEST(CApiTest, ADescriptionErrorIsKeptAndBuildReturnsIt) {
  Mlp net;
  thaw_tensor wrong, z;
  // 10 + 64 elements do not add.
  thaw_tensor x = 0;
  EXPECT_NE(thaw_add(net.m, net.y, x, "bad_add", &wrong), THAW_OK);
  const std::string first = Message(net.m);
  EXPECT_NE(thaw_dense(net.m, net.y, 3, THAW_ACTIVATION_LINEAR, 1, nullptr, &z), THAW_OK);
  Block block(1 << 16);
  EXPECT_NE(thaw_model_build(net.m, net.y, 8, block.data, block.bytes, 0), THAW_OK);
  EXPECT_EQ(Message(net.m), first);
}

TEST(CApiTest, CallsOutOfOrderAreFailedPreconditions) {
  Mlp net;
  const std::vector<float> x = Inputs(64);
  float out[10];
  EXPECT_EQ(thaw_model_predict(net.m, x.data(), 1, out), THAW_FAILED_PRECONDITION);
  EXPECT_EQ(thaw_model_compile(net.m, &net.sgd, Mlp::kLoss), THAW_FAILED_PRECONDITION);
  size_t size;
  EXPECT_EQ(thaw_model_save_weights(net.m, 0, nullptr, 0, &size), THAW_FAILED_PRECONDITION);
  EXPECT_EQ(thaw_model_input_elements(net.m), 0u);
  net.Build();
  EXPECT_EQ(thaw_model_input_elements(net.m), 64u);
  EXPECT_EQ(thaw_model_output_elements(net.m), 10u);
  thaw_tensor more;
  EXPECT_EQ(thaw_dense(net.m, net.y, 3, THAW_ACTIVATION_LINEAR, 1, nullptr, &more),
            THAW_FAILED_PRECONDITION);
  Block other(1 << 16);
  EXPECT_EQ(thaw_model_build(net.m, net.y, 8, other.data, other.bytes, 0),
            THAW_FAILED_PRECONDITION);
}

// The step the plan describes before building is the step training runs: a
// block 64 bytes short of it is refused and the weights stay.
TEST(CApiTest, APlanMadeBeforeBuildingSizesTheBlockExactly) {
  Mlp net;
  thaw_memory_plan plan;
  ASSERT_EQ(thaw_model_plan_training(net.m, net.y, 8, &net.sgd, Mlp::kLoss, &plan), THAW_OK);
  EXPECT_EQ(plan.step, plan.weights + plan.gradients + plan.optimizer_state + plan.activations +
                           plan.scratch);
  EXPECT_GE(plan.total, plan.step);
  EXPECT_EQ(plan.weights, 32u * 64 * 4 + 128 + 1280 + 64);
  EXPECT_EQ(plan.gradients, plan.weights);
  EXPECT_EQ(plan.optimizer_state, plan.weights);  // momentum: one slot

  Block short_block(plan.step - 64);
  ASSERT_EQ(thaw_model_build(net.m, net.y, 8, short_block.data, short_block.bytes, 1), THAW_OK);
  ASSERT_EQ(thaw_model_compile(net.m, &net.sgd, Mlp::kLoss), THAW_OK);
  const std::vector<unsigned char> before = net.Weights();
  const std::vector<float> x = Inputs(8 * 64);
  EXPECT_EQ(thaw_model_train_on_batch(net.m, x.data(), kLabels, nullptr, 8, nullptr),
            THAW_RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Contains(Message(net.m), "bytes")) << Message(net.m);
  EXPECT_EQ(net.Weights(), before);

  Mlp exact;
  exact.Build(1);
  thaw_metrics metrics;
  EXPECT_EQ(thaw_model_train_on_batch(exact.m, x.data(), kLabels, nullptr, 8, &metrics), THAW_OK)
      << Message(exact.m);
  EXPECT_EQ(metrics.count, 8u);
  EXPECT_TRUE(std::isfinite(metrics.loss));
}

// thaw_optimizer.update_in_backward reaches the model: the plan's gradients
// are the hidden layer's alone (the largest: 32 x 64 + 32 floats), training
// gives the default's weights bit for bit, and global_clipnorm is refused.
TEST(CApiTest, UpdateInBackwardPlansTrainsAndRefusesGlobalClipping) {
  thaw_optimizer defaults;
  thaw_optimizer_defaults(THAW_OPTIMIZER_SGD, &defaults);
  EXPECT_EQ(defaults.update_in_backward, 0);
  Mlp plain, in_backward;
  in_backward.sgd.update_in_backward = 1;
  in_backward.sgd.global_clipnorm = 1.0f;
  thaw_memory_plan plan;
  EXPECT_EQ(thaw_model_plan_training(in_backward.m, in_backward.y, 8, &in_backward.sgd, Mlp::kLoss,
                                     &plan),
            THAW_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(Message(in_backward.m), "global_clipnorm")) << Message(in_backward.m);
  in_backward.sgd.global_clipnorm = 0.0f;
  in_backward.sgd.clipnorm = 1.0f;  // per variable: fine
  plain.sgd.clipnorm = 1.0f;
  ASSERT_EQ(thaw_model_plan_training(in_backward.m, in_backward.y, 8, &in_backward.sgd, Mlp::kLoss,
                                     &plan),
            THAW_OK);
  EXPECT_EQ(plan.gradients, 32u * 64 * 4 + 128);
  EXPECT_EQ(plan.optimizer_state, 32u * 64 * 4 + 128 + 1280 + 64);
  EXPECT_EQ(plan.step, plan.weights + plan.gradients + plan.optimizer_state + plan.activations +
                           plan.scratch);
  plain.Build(2);
  in_backward.Build(2);
  in_backward.sgd.global_clipnorm = 1.0f;
  EXPECT_EQ(thaw_model_compile(in_backward.m, &in_backward.sgd, Mlp::kLoss), THAW_INVALID_ARGUMENT);
  in_backward.sgd.global_clipnorm = 0.0f;
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> x = Inputs(8 * 64, 0.3f * static_cast<float>(step));
    ASSERT_EQ(thaw_model_train_on_batch(plain.m, x.data(), kLabels, nullptr, 8, nullptr), THAW_OK);
    ASSERT_EQ(thaw_model_train_on_batch(in_backward.m, x.data(), kLabels, nullptr, 8, nullptr),
              THAW_OK)
        << Message(in_backward.m);
  }
  EXPECT_EQ(plain.Weights(), in_backward.Weights());
}

TEST(CApiTest, ANullBlockIsAllocatedByThaw) {
  Mlp net;
  EXPECT_EQ(thaw_model_prefault(net.m), THAW_FAILED_PRECONDITION);  // no block yet
  ASSERT_EQ(thaw_model_build(net.m, net.y, 8, nullptr, 1 << 16, 1), THAW_OK) << Message(net.m);
  EXPECT_EQ(thaw_model_prefault(net.m), THAW_OK);
  ASSERT_EQ(thaw_model_compile(net.m, &net.sgd, Mlp::kLoss), THAW_OK);
  const std::vector<float> x = Inputs(8 * 64);
  EXPECT_EQ(thaw_model_train_on_batch(net.m, x.data(), kLabels, nullptr, 8, nullptr), THAW_OK);
}

TEST(CApiTest, AFailedBuildLeavesTheModelBuildable) {
  Mlp net;
  Block tiny(64);
  EXPECT_EQ(thaw_model_build(net.m, net.y, 8, tiny.data, tiny.bytes, 1), THAW_RESOURCE_EXHAUSTED);
  char unaligned_storage[256];
  EXPECT_EQ(thaw_model_build(net.m, net.y, 8, unaligned_storage + 1, 128, 1),
            THAW_INVALID_ARGUMENT);
  net.Build();
  const std::vector<float> x = Inputs(8 * 64);
  EXPECT_EQ(thaw_model_train_on_batch(net.m, x.data(), kLabels, nullptr, 8, nullptr), THAW_OK);
}

// The same model, seed and steps through C and through C++: the same bits.
TEST(CApiTest, TrainsAndPredictsAsTheCppApi) {
  Mlp net;
  net.Build(/*seed=*/11);
  ASSERT_EQ(thaw_model_set_trainable(net.m, "hidden", 0), THAW_OK);

  thaw::Arena arena;
  ASSERT_TRUE(thaw::Arena::Create(1 << 18, &arena).ok());
  thaw::Model cpp;
  thaw::Symbol x = cpp.Input(thaw::Shape{64});
  thaw::Symbol h = cpp.Call(thaw::Dense::Make(32, thaw::Activation::kRelu), x, "hidden");
  thaw::Symbol y = cpp.Call(thaw::Dense::Make(10), h, "head");
  ASSERT_TRUE(cpp.Build(y, 8, &arena, 11).ok());
  thaw::SgdOptions sgd;
  sgd.learning_rate = 0.1f;
  sgd.momentum = 0.9f;
  ASSERT_TRUE(cpp.Compile(thaw::OptimizerConfig::Sgd(sgd),
                          thaw::Loss::kSparseCategoricalCrossentropyFromLogits)
                  .ok());
  cpp.FindLayer("hidden")->SetTrainable(false);

  for (int step = 0; step < 5; ++step) {
    const std::vector<float> batch = Inputs(8 * 64, 0.3f * step);
    thaw_metrics c_metrics;
    thaw::Metrics cpp_metrics;
    ASSERT_EQ(thaw_model_train_on_batch(net.m, batch.data(), kLabels, nullptr, 8, &c_metrics),
              THAW_OK);
    ASSERT_TRUE(cpp.TrainOnBatch({batch.data(), 8, kLabels, nullptr, 64}, &cpp_metrics).ok());
    EXPECT_EQ(c_metrics.loss, cpp_metrics.loss) << step;
    EXPECT_EQ(c_metrics.accuracy, cpp_metrics.accuracy) << step;
  }
  const std::vector<float> probe = Inputs(3 * 64, 2.0f);
  float c_out[30], cpp_out[30];
  ASSERT_EQ(thaw_model_predict(net.m, probe.data(), 3, c_out), THAW_OK);
  ASSERT_TRUE(cpp.Predict(probe.data(), 3, cpp_out).ok());
  EXPECT_EQ(std::memcmp(c_out, cpp_out, sizeof(c_out)), 0);
  thaw_metrics c_eval;
  thaw::Metrics cpp_eval;
  ASSERT_EQ(thaw_model_evaluate(net.m, probe.data(), kLabels, nullptr, 3, 2, &c_eval), THAW_OK);
  ASSERT_TRUE(cpp.Evaluate({probe.data(), 3, kLabels, nullptr, 64}, 2, &cpp_eval).ok());
  EXPECT_EQ(c_eval.loss, cpp_eval.loss);
}

TEST(CApiTest, FreezingByNameOrIndexKeepsThoseWeights) {
  Mlp net;
  net.Build();
  EXPECT_EQ(thaw_model_set_trainable(net.m, "nope", 0), THAW_NOT_FOUND);
  EXPECT_TRUE(Contains(Message(net.m), "hidden, head")) << Message(net.m);
  EXPECT_EQ(thaw_model_set_trainable(net.m, nullptr, 0), THAW_INVALID_ARGUMENT);
  EXPECT_EQ(thaw_model_set_trainable_index(net.m, 2, 0), THAW_NOT_FOUND);
  EXPECT_STREQ(thaw_model_layer_name(net.m, 1), "head");
  EXPECT_EQ(thaw_model_layer_name(net.m, 2), nullptr);
  ASSERT_EQ(thaw_model_set_trainable_index(net.m, 0, 0), THAW_OK);
  // Only the head is trainable, so the trainable-only export holds it alone.
  const std::vector<unsigned char> before = net.Weights();
  const std::vector<float> x = Inputs(8 * 64);
  for (int step = 0; step < 3; ++step) {
    ASSERT_EQ(thaw_model_train_on_batch(net.m, x.data(), kLabels, nullptr, 8, nullptr), THAW_OK);
  }
  const std::vector<unsigned char> after = net.Weights();
  ASSERT_EQ(before.size(), after.size());
  // The data section holds hidden.weight, hidden.bias, head.weight, head.bias
  // in that order, after the 8-byte length and the header.
  uint64_t header = 0;
  std::memcpy(&header, before.data(), 8);
  const size_t hidden = (32 * 64 + 32) * 4;
  const size_t data = 8 + header;
  EXPECT_EQ(std::memcmp(before.data() + data, after.data() + data, hidden), 0);
  EXPECT_NE(std::memcmp(before.data() + data + hidden, after.data() + data + hidden,
                        after.size() - data - hidden),
            0);
}

TEST(CApiTest, WeightsGoThroughMemoryAllOrNothing) {
  Mlp a, b;
  a.Build(1);
  b.Build(2);
  size_t size = 0;
  ASSERT_EQ(thaw_model_save_weights(a.m, 0, nullptr, 0, &size), THAW_OK);
  std::vector<unsigned char> small(size - 1);
  EXPECT_EQ(thaw_model_save_weights(a.m, 0, small.data(), small.size(), &size),
            THAW_RESOURCE_EXHAUSTED);
  EXPECT_EQ(size, small.size() + 1);  // still says what is needed
  EXPECT_EQ(thaw_model_save_weights(a.m, 0, nullptr, 0, nullptr), THAW_INVALID_ARGUMENT);
  EXPECT_EQ(thaw_model_save_weights(a.m, 8, nullptr, 0, &size), THAW_INVALID_ARGUMENT);

  const std::vector<unsigned char> weights = a.Weights();
  ASSERT_EQ(thaw_model_load_weights(b.m, 0, weights.data(), weights.size()), THAW_OK)
      << Message(b.m);
  EXPECT_EQ(b.Weights(), weights);

  // Corrupt bytes: refused, nothing changes.
  Mlp c;
  c.Build(3);
  const std::vector<unsigned char> c_before = c.Weights();
  std::vector<unsigned char> truncated(weights.begin(), weights.end() - 4);
  EXPECT_EQ(thaw_model_load_weights(c.m, 0, truncated.data(), truncated.size()), THAW_DATA_LOSS);
  EXPECT_TRUE(Contains(Message(c.m), "checkpoint in memory")) << Message(c.m);
  EXPECT_EQ(thaw_model_load_weights(c.m, 0, nullptr, 10), THAW_INVALID_ARGUMENT);
  EXPECT_EQ(thaw_model_load_weights(c.m, 64, weights.data(), weights.size()),
            THAW_INVALID_ARGUMENT);
  EXPECT_EQ(c.Weights(), c_before);
}

// Federated fine-tuning: the device ships its trainable variables only; a
// model with the same freeze set takes them, one with another refuses them.
TEST(CApiTest, TrainableOnlyUpdatesMoveTheFineTuning) {
  Mlp device, server, mismatched;
  device.Build(1);
  server.Build(1);
  mismatched.Build(1);
  ASSERT_EQ(thaw_model_set_trainable(device.m, "hidden", 0), THAW_OK);
  ASSERT_EQ(thaw_model_set_trainable(server.m, "hidden", 0), THAW_OK);
  const std::vector<float> x = Inputs(8 * 64);
  for (int step = 0; step < 3; ++step) {
    ASSERT_EQ(thaw_model_train_on_batch(device.m, x.data(), kLabels, nullptr, 8, nullptr),
              THAW_OK);
  }
  const std::vector<unsigned char> update = device.Weights(THAW_WEIGHTS_TRAINABLE_ONLY);
  EXPECT_LT(update.size(), device.Weights().size() / 4);
  ASSERT_EQ(thaw_model_load_weights(server.m, THAW_WEIGHTS_TRAINABLE_ONLY, update.data(),
                                    update.size()),
            THAW_OK)
      << Message(server.m);
  EXPECT_EQ(server.Weights(), device.Weights());

  // All trainable: the update lacks the hidden layer, which strict refuses.
  const std::vector<unsigned char> before = mismatched.Weights();
  EXPECT_EQ(thaw_model_load_weights(mismatched.m, THAW_WEIGHTS_TRAINABLE_ONLY, update.data(),
                                    update.size()),
            THAW_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(Message(mismatched.m), "hidden")) << Message(mismatched.m);
  EXPECT_EQ(mismatched.Weights(), before);
  // Partial: it takes the head and keeps its hidden layer.
  EXPECT_EQ(thaw_model_load_weights(mismatched.m,
                                    THAW_WEIGHTS_TRAINABLE_ONLY | THAW_WEIGHTS_PARTIAL,
                                    update.data(), update.size()),
            THAW_OK)
      << Message(mismatched.m);
}

// Every layer the C interface names, in one network: it plans, builds in the
// planned block and trains.
TEST(CApiTest, EveryLayerKindBuildsAndTrains) {
  thaw_model* m;
  ASSERT_EQ(thaw_model_create(0, &m), THAW_OK);
  const size_t image[3] = {8, 8, 2};
  thaw_tensor x, c, b, r, d, s, p, a, g, f, cat, drop, flat, shaped, out;
  ASSERT_EQ(thaw_input(m, image, 3, THAW_LAYOUT_NHWC, &x), THAW_OK);
  ASSERT_EQ(thaw_conv2d(m, x, 4, 3, 3, 1, 1, THAW_PADDING_SAME, THAW_ACTIVATION_LINEAR, 0, "conv",
                        &c),
            THAW_OK)
      << Message(m);
  ASSERT_EQ(thaw_batch_normalization(m, c, 0.99f, 1e-3f, "bn", &b), THAW_OK) << Message(m);
  ASSERT_EQ(thaw_activation_layer(m, b, THAW_ACTIVATION_RELU6, nullptr, &r), THAW_OK);
  ASSERT_EQ(thaw_depthwise_conv2d(m, r, 3, 3, 1, 1, THAW_PADDING_SAME, THAW_ACTIVATION_RELU, 1,
                                  "dw", &d),
            THAW_OK);
  ASSERT_EQ(thaw_add(m, r, d, nullptr, &s), THAW_OK) << Message(m);
  ASSERT_EQ(thaw_max_pool2d(m, s, 2, 2, 0, 0, THAW_PADDING_VALID, nullptr, &p), THAW_OK);
  ASSERT_EQ(thaw_average_pool2d(m, p, 2, 2, 1, 1, THAW_PADDING_SAME, nullptr, &a), THAW_OK);
  ASSERT_EQ(thaw_global_average_pool2d(m, a, nullptr, &g), THAW_OK);
  ASSERT_EQ(thaw_flatten(m, p, nullptr, &flat), THAW_OK);
  const size_t back[1] = {4 * 4 * 4};
  ASSERT_EQ(thaw_reshape(m, flat, back, 1, THAW_LAYOUT_ANY, nullptr, &shaped), THAW_OK);
  ASSERT_EQ(thaw_dense(m, shaped, 4, THAW_ACTIVATION_TANH, 1, nullptr, &f), THAW_OK);
  const thaw_tensor parts[3] = {g, f, g};
  ASSERT_EQ(thaw_concatenate(m, parts, 3, nullptr, &cat), THAW_OK) << Message(m);
  ASSERT_EQ(thaw_dropout(m, cat, 0.25f, 7, nullptr, &drop), THAW_OK);
  ASSERT_EQ(thaw_dense(m, drop, 3, THAW_ACTIVATION_LINEAR, 1, "head", &out), THAW_OK);
  EXPECT_EQ(thaw_model_num_layers(m), 14u);

  thaw_optimizer adam;
  thaw_optimizer_defaults(THAW_OPTIMIZER_ADAMW, &adam);
  EXPECT_EQ(adam.weight_decay, 0.01f);
  adam.learning_rate = 0.01f;
  thaw_memory_plan plan;
  const thaw_loss loss = THAW_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS;
  ASSERT_EQ(thaw_model_plan_training(m, out, 4, &adam, loss, &plan), THAW_OK) << Message(m);
  Block block(plan.total);
  ASSERT_EQ(thaw_model_build(m, out, 4, block.data, block.bytes, 3), THAW_OK) << Message(m);
  ASSERT_EQ(thaw_model_compile(m, &adam, loss), THAW_OK);
  const std::vector<float> batch = Inputs(4 * 8 * 8 * 2);
  const int32_t labels[4] = {0, 1, 2, 1};
  // Dropout makes single steps noisy: compare the mean loss of the first
  // and the last ten steps on the same batch.
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 60; ++step) {
    thaw_metrics metrics;
    ASSERT_EQ(thaw_model_train_on_batch(m, batch.data(), labels, nullptr, 4, &metrics), THAW_OK)
        << Message(m);
    if (step < 10) first += metrics.loss;
    if (step >= 50) last += metrics.loss;
  }
  EXPECT_LT(last, 0.5 * first);
  thaw_metrics metrics;
  ASSERT_EQ(thaw_model_set_learning_rate(m, 0.0f), THAW_OK);
  EXPECT_EQ(thaw_model_set_learning_rate(m, -1.0f), THAW_INVALID_ARGUMENT);
  EXPECT_EQ(thaw_model_set_trainable(m, "bn", 0), THAW_OK);
  EXPECT_EQ(thaw_model_train_on_batch(m, batch.data(), labels, nullptr, 4, &metrics), THAW_OK);
  // Labels out of range are refused with the example named.
  const int32_t wrong[4] = {0, 1, 9, 1};
  EXPECT_EQ(thaw_model_train_on_batch(m, batch.data(), wrong, nullptr, 4, nullptr),
            THAW_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(Message(m), "label 9 of example 2")) << Message(m);
  thaw_model_destroy(m);
}

}  // namespace

namespace {

// A model built from weights in memory: frozen layers read them in place,
// and the plan made before building knows.
TEST(CApiTest, InitialWeightsAreReadInPlaceForFrozenLayers) {
  Mlp factory;
  factory.Build(9);
  const std::vector<unsigned char> bytes = factory.Weights();

  Mlp device;
  thaw_memory_plan copied, in_place;
  ASSERT_EQ(thaw_model_set_trainable(device.m, "hidden", 0), THAW_OK);
  ASSERT_EQ(thaw_model_plan_training(device.m, device.y, 8, &device.sgd, Mlp::kLoss, &copied),
            THAW_OK);
  EXPECT_EQ(thaw_model_initial_weights(device.m, nullptr, 5), THAW_INVALID_ARGUMENT);
  ASSERT_EQ(thaw_model_initial_weights(device.m, bytes.data(), bytes.size()), THAW_OK);
  ASSERT_EQ(thaw_model_plan_training(device.m, device.y, 8, &device.sgd, Mlp::kLoss, &in_place),
            THAW_OK);
  EXPECT_EQ(copied.weights - in_place.weights, 32u * 64 * 4 + 128);  // the hidden layer's
  Block block(in_place.total);
  ASSERT_EQ(thaw_model_build(device.m, device.y, 8, block.data, block.bytes, 0), THAW_OK)
      << Message(device.m);
  EXPECT_EQ(thaw_model_initial_weights(device.m, bytes.data(), bytes.size()),
            THAW_FAILED_PRECONDITION);
  EXPECT_EQ(device.Weights(), bytes);  // every value from the bytes, none drawn
  ASSERT_EQ(thaw_model_compile(device.m, &device.sgd, Mlp::kLoss), THAW_OK);
  const std::vector<float> x = Inputs(8 * 64);
  EXPECT_EQ(thaw_model_train_on_batch(device.m, x.data(), kLabels, nullptr, 8, nullptr), THAW_OK)
      << Message(device.m);
  // Loading into the layer that reads in place is refused, and says why.
  EXPECT_EQ(thaw_model_load_weights(device.m, 0, bytes.data(), bytes.size()),
            THAW_FAILED_PRECONDITION);
  EXPECT_TRUE(Contains(Message(device.m), "hidden.weight")) << Message(device.m);

  // Bytes that do not fit the description: build says so and stays unbuilt.
  thaw_model* other;
  ASSERT_EQ(thaw_model_create(1, &other), THAW_OK);
  const size_t shape[1] = {64};
  thaw_tensor in, out;
  ASSERT_EQ(thaw_input(other, shape, 1, THAW_LAYOUT_ANY, &in), THAW_OK);
  ASSERT_EQ(thaw_dense(other, in, 3, THAW_ACTIVATION_LINEAR, 1, "hidden", &out), THAW_OK);
  ASSERT_EQ(thaw_model_initial_weights(other, bytes.data(), bytes.size()), THAW_OK);
  Block small(1 << 16);
  EXPECT_EQ(thaw_model_build(other, out, 8, small.data, small.bytes, 0), THAW_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(Message(other), "Build: the weights")) << Message(other);
  thaw_model_destroy(other);
}

}  // namespace

namespace {

TEST(CApiTest, PlansCanDescribeAnotherTargetAndThreadCount) {
  Mlp net;
  ASSERT_EQ(thaw_model_set_trainable(net.m, "hidden", 0), THAW_OK);
  thaw_memory_plan here, scalar, again;
  ASSERT_EQ(thaw_model_plan_training(net.m, net.y, 8, &net.sgd, Mlp::kLoss, &here), THAW_OK);
  EXPECT_EQ(thaw_model_plan_machine(net.m, "NO_SUCH_TARGET", 1), THAW_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(Message(net.m), thaw::simd::DispatchedTargetName()))
      << Message(net.m);  // lists what there is
  EXPECT_EQ(thaw_model_plan_machine(net.m, nullptr, -2), THAW_INVALID_ARGUMENT);
  // SCALAR where the build has it (the firmware profile compiles one target).
  const char* other = thaw::simd::IsCompiledTarget(thaw::simd::CompiledTargetNamed("SCALAR"))
                          ? "SCALAR"
                          : thaw::simd::DispatchedTargetName();
  ASSERT_EQ(thaw_model_plan_machine(net.m, other, 2), THAW_OK);
  ASSERT_EQ(thaw_model_plan_training(net.m, net.y, 8, &net.sgd, Mlp::kLoss, &scalar), THAW_OK);
  // The same as the C++ planner's for that machine.
  thaw::ThreadPool one(1);
  thaw::Model cpp(one);
  thaw::Symbol x = cpp.Input(thaw::Shape{64});
  thaw::Symbol h = cpp.Call(thaw::Dense::Make(32, thaw::Activation::kRelu), x, "hidden");
  thaw::Symbol y = cpp.Call(thaw::Dense::Make(10), h, "head");
  cpp.FindLayer("hidden")->SetTrainable(false);
  thaw::SgdOptions sgd;
  sgd.learning_rate = 0.1f;
  sgd.momentum = 0.9f;
  const thaw::OptimizerConfig config = thaw::OptimizerConfig::Sgd(sgd);
  const thaw::Loss loss = thaw::Loss::kSparseCategoricalCrossentropyFromLogits;
  thaw::PlanOptions options;
  options.batch = 8;
  options.output = y;
  options.optimizer = &config;
  options.loss = &loss;
  options.target = thaw::simd::CompiledTargetNamed(other);
  options.threads = 2;
  thaw::ModelPlan plan;
  ASSERT_TRUE(cpp.PlanMemory(options, &plan).ok());
  EXPECT_EQ(scalar.total, plan.arena_bytes);
  EXPECT_EQ(scalar.scratch, plan.bytes[thaw::Region::kScratch]);
  EXPECT_EQ(scalar.weights, here.weights);
  ASSERT_EQ(thaw_model_plan_machine(net.m, nullptr, 0), THAW_OK);
  ASSERT_EQ(thaw_model_plan_training(net.m, net.y, 8, &net.sgd, Mlp::kLoss, &again), THAW_OK);
  EXPECT_EQ(again.total, here.total);

  // Any target, whether or not this build has it or this CPU runs it (AVX3
  // on an AVX2 machine, NEON or SVE from x86, AVX3 from Arm): planned from
  // data, as the C++ planner plans it.
  struct Named {
    const char* name;
    int64_t target;
    size_t vector_bits;
  };
  for (const Named& n : {Named{"AVX3", HWY_AVX3, 0}, Named{"NEON", HWY_NEON, 0},
                         Named{"SVE2:512", HWY_SVE2, 512}, Named{"SVE_256", HWY_SVE_256, 0}}) {
    thaw_memory_plan planned, twice;
    ASSERT_EQ(thaw_model_plan_machine(net.m, n.name, 1), THAW_OK) << n.name << ": "
                                                                   << Message(net.m);
    ASSERT_EQ(thaw_model_plan_training(net.m, net.y, 8, &net.sgd, Mlp::kLoss, &planned), THAW_OK)
        << n.name << ": " << Message(net.m);
    ASSERT_EQ(thaw_model_plan_training(net.m, net.y, 8, &net.sgd, Mlp::kLoss, &twice), THAW_OK);
    EXPECT_EQ(planned.total, twice.total) << n.name;
    options.target = n.target;
    options.vector_bits = n.vector_bits;
    options.threads = 1;
    ASSERT_TRUE(cpp.PlanMemory(options, &plan).ok()) << n.name;
    EXPECT_EQ(planned.total, plan.arena_bytes) << n.name;
    EXPECT_EQ(planned.scratch, plan.bytes[thaw::Region::kScratch]) << n.name;
    EXPECT_EQ(planned.weights, here.weights) << n.name;
  }
  // A vector length the target does not have, or none where the CPU
  // chooses it and this one cannot tell: refused, with the way out.
  EXPECT_EQ(thaw_model_plan_machine(net.m, "AVX2:512", 1), THAW_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(Message(net.m), "256-bit vectors")) << Message(net.m);
  EXPECT_EQ(thaw_model_plan_machine(net.m, "SVE2:100", 1), THAW_INVALID_ARGUMENT);
  if (!thaw::simd::IsCompiledTarget(HWY_SVE2) ||
      (thaw::simd::SupportedTargets() & HWY_SVE2) == 0) {
    EXPECT_EQ(thaw_model_plan_machine(net.m, "SVE2", 1), THAW_INVALID_ARGUMENT);
    EXPECT_TRUE(Contains(Message(net.m), "SVE2:512")) << Message(net.m);
  }
  ASSERT_EQ(thaw_model_plan_machine(net.m, nullptr, 0), THAW_OK);
}

}  // namespace
