// Heap allocation failure in setup calls: every allocation a call makes is
// made to fail in turn (std::bad_alloc from operator new), and the call must
// return ResourceExhausted, never let the exception out, and leave the
// object usable. operator new is replaced for the whole binary
// (tests/replace_new.h).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/io/checkpoint.h"
#include "core/thaw.h"
#include "gtest/gtest.h"
#include "tests/replace_new.h"
#include "tests/scratch_dir.h"

namespace {
// >= 0: that many allocations succeed, then one throws (once).
std::atomic<long> g_countdown{-1};
bool ShouldFail() {
  return g_countdown.load(std::memory_order_relaxed) >= 0 && g_countdown.fetch_sub(1) == 0;
}
}  // namespace

void OnHeapAllocation() {
  if (ShouldFail()) throw std::bad_alloc();
}

namespace thaw {
namespace {

// Runs call() with allocation n (0-based, counted from here) failing. *hit
// says whether the call made that many allocations.
template <class Call>
Status WithAllocationFailing(long n, Call&& call, bool* hit) {
  g_countdown.store(n);
  Status s = call();
  *hit = g_countdown.load() < 0;
  g_countdown.store(-1);
  return s;
}

// A small CNN: conv-BN-ReLU, pooling, dense head; Adam, sparse CE.
struct Cnn {
  Arena arena;
  Sequential model;
  std::vector<float> x = std::vector<float>(8 * 6 * 6 * 2);
  std::vector<int32_t> labels = std::vector<int32_t>(8);
  Cnn() {
    THAW_CHECK(Arena::Create(4 << 20, &arena).ok());
    THAW_CHECK(model.Add(Conv2D::Make(4, 3)).ok());
    THAW_CHECK(model.Add(BatchNormalization::Make()).ok());
    THAW_CHECK(model.Add(ReLU()).ok());
    THAW_CHECK(model.Add(GlobalAveragePooling2D::Make()).ok());
    THAW_CHECK(model.Add(Dense::Make(3)).ok());
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(i % 97);
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 3);
  }
  Status Build() { return model.Build(Shape{6, 6, 2}, Layout::kNHWC, 8, &arena, 1); }
  Status Compile() {
    return model.Compile(OptimizerConfig::Adam(AdamOptions()),
                         Loss::kSparseCategoricalCrossentropyFromLogits);
  }
  Examples examples() const { return Examples{x.data(), 8, labels.data(), nullptr, 6 * 6 * 2}; }
  Status Train() { return model.TrainOnBatch(examples()); }
};

// Every allocation of Build fails in turn. A failure while the layers add
// their nodes to the graph leaves a model that says so (status()) and cannot
// be built; one while variables and plans are made leaves an unbuilt model
// that builds and trains on retry.
TEST(AllocationFailureTest, BuildReturnsResourceExhausted) {
  int retried = 0, dead = 0;
  for (long n = 0;; ++n) {
    Cnn cnn;
    bool hit = false;
    const Status s = WithAllocationFailing(n, [&] { return cnn.Build(); }, &hit);
    if (!hit) {
      ASSERT_TRUE(s.ok()) << s.message();
      break;
    }
    ASSERT_EQ(s.code(), StatusCode::kResourceExhausted) << "allocation " << n << ": " << s.message();
    EXPECT_NE(std::string(s.message()).find("out of memory"), std::string::npos) << s.message();
    ASSERT_FALSE(cnn.model.built());
    const Status again = cnn.Build();
    if (again.ok()) {
      ++retried;
      ASSERT_TRUE(cnn.Compile().ok());
      ASSERT_TRUE(cnn.Train().ok()) << "allocation " << n;
    } else {
      ++dead;
      EXPECT_EQ(again.code(), StatusCode::kResourceExhausted);
      EXPECT_FALSE(cnn.model.status().ok()) << "allocation " << n;
    }
  }
  EXPECT_GT(retried, 0);
  std::printf("Build: %d failing allocations retried, %d left the graph unusable\n", retried, dead);
}

TEST(AllocationFailureTest, CompileFitPlanSaveAndLoadReturnResourceExhausted) {
  ScratchDir dir;
  const std::string path = dir.Path("cnn.safetensors");
  {
    Cnn saved;
    ASSERT_TRUE(saved.Build().ok());
    ASSERT_TRUE(SaveCheckpoint(saved.model.variables(), path).ok());
  }
  Cnn cnn;
  ASSERT_TRUE(cnn.Build().ok());
  ASSERT_TRUE(cnn.Compile().ok());
  FitOptions fit;
  fit.batch_size = 4;
  fit.epochs = 1;
  ModelPlan plan;
  const std::string saved_path = dir.Path("out.safetensors");
  struct Case {
    const char* name;
    std::function<Status()> call;
  } cases[] = {
      {"Compile", [&] { return cnn.Compile(); }},
      {"Fit", [&] { return cnn.model.Fit(cnn.examples(), fit); }},
      {"PlanMemory", [&] { return cnn.model.PlanMemory(PlanOptions(), &plan); }},
      {"SaveCheckpoint", [&] { return SaveCheckpoint(cnn.model.variables(), saved_path); }},
      {"LoadCheckpoint", [&] { return LoadCheckpoint(path, &cnn.model.variables()); }},
  };
  for (const Case& c : cases) {
    long failures = 0;
    for (long n = 0;; ++n) {
      bool hit = false;
      const Status s = WithAllocationFailing(n, c.call, &hit);
      if (!hit) {
        ASSERT_TRUE(s.ok()) << c.name << ": " << s.message();
        break;
      }
      ++failures;
      ASSERT_EQ(s.code(), StatusCode::kResourceExhausted)
          << c.name << ", allocation " << n << ": " << s.message();
      // Usable afterwards: the call succeeds on retry, and the model trains.
      ASSERT_TRUE(c.call().ok()) << c.name << ", allocation " << n;
      ASSERT_TRUE(cnn.Train().ok()) << c.name << ", allocation " << n;
    }
    EXPECT_GT(failures, 0) << c.name << " allocated nothing, so the test showed nothing";
    std::printf("%s: %ld failing allocations, each a ResourceExhausted Status\n", c.name,
                failures);
  }
}

// The functional API records the failure in the model's status. (The
// layers are the caller's objects, made before.)
TEST(AllocationFailureTest, FunctionalCallsRecordResourceExhausted) {
  for (long n = 0;; ++n) {
    Model model;
    std::unique_ptr<Layer> hidden = Dense::Make(5, Activation::kRelu), head = Dense::Make(2);
    const std::string name = "hidden_layer_with_a_long_name";
    Symbol out;
    bool hit = false;
    const Status s = WithAllocationFailing(n, [&] {
      Symbol x = model.Input(Shape{12});
      out = model.Call(std::move(hidden), x, name);
      out = model.Call(std::move(head), out);
      return model.status();
    }, &hit);
    if (!hit) {
      ASSERT_TRUE(s.ok()) << s.message();
      break;
    }
    ASSERT_EQ(s.code(), StatusCode::kResourceExhausted) << "allocation " << n << ": " << s.message();
    EXPECT_FALSE(out.valid());
  }
}

}  // namespace
}  // namespace thaw
