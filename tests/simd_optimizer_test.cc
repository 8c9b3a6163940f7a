// SgdStep and AdamStep against their scalar references, over several steps,
// on every compiled and supported Highway target.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "hwy/tests/hwy_gtest.h"
#include "platform/threads.h"
#include "simd/elementwise.h"  // kElementwiseChunk
#include "simd/optimizer.h"
#include "simd/scalar.h"
#include "simd/targets.h"

namespace thaw {
namespace simd {
namespace {

constexpr int kSteps = 5;

// Tail and lane edges for N = 1, 4, 8, 16, and sizes that split into
// several kElementwiseChunk chunks.
std::vector<size_t> TestSizes() {
  return {1,
          2,
          3,
          4,
          5,
          7,
          8,
          9,
          15,
          16,
          17,
          31,
          33,
          34,
          48,
          63,
          65,
          130,
          1000,
          kElementwiseChunk + 1,
          3 * kElementwiseChunk + 5};
}

ThreadPool& Pool() {
  static ThreadPool* pool = new ThreadPool(2);
  return *pool;
}

// n floats `offset` floats past a 64-byte boundary.
struct Array {
  Array(size_t n, size_t offset)
      : mem(hwy::AllocateAligned<float>(n + offset + 1)),
        data(mem.get() + offset),
        size(n) {}
  std::vector<float> Copy() const {
    return std::vector<float>(data, data + size);
  }
  hwy::AlignedFreeUniquePtr<float[]> mem;
  float* data;
  size_t size;
};

void FillRandom(float* x, size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  for (size_t i = 0; i < n; ++i) x[i] = dist(rng);
}

// The kernels round every product and never fuse (see optimizer-inl.h), so
// they must match the scalar reference bit for bit; the relative check
// reports how far off a mismatch is.
::testing::AssertionResult Matches(const std::vector<float>& expected,
                                   const float* actual, const char* what) {
  for (size_t i = 0; i < expected.size(); ++i) {
    const float e = expected[i];
    const float a = actual[i];
    uint32_t ue, ua;
    std::memcpy(&ue, &e, 4);
    std::memcpy(&ua, &a, 4);
    if (ue == ua) continue;
    const float rel = std::fabs(a - e) / std::fmax(std::fabs(e), 1e-30f);
    return ::testing::AssertionFailure()
           << what << "[" << i << "]: expected " << e << ", got " << a
           << " (relative error " << rel
           << (rel <= 1e-6f ? ", within 1e-6 but not bit-exact)" : ")");
  }
  return ::testing::AssertionSuccess();
}

struct SgdCase {
  const char* name;
  SgdParams params;
};

std::vector<SgdCase> SgdCases() {
  std::vector<SgdCase> cases;
  SgdParams p;
  p.learning_rate = 0.05f;
  cases.push_back({"plain", p});
  p.weight_decay = 0.01f;
  cases.push_back({"weight_decay", p});
  p.momentum = 0.9f;
  cases.push_back({"momentum+wd", p});
  p.nesterov = true;
  cases.push_back({"nesterov+wd", p});
  p.weight_decay = 0.0f;
  cases.push_back({"nesterov", p});
  return cases;
}

HWY_BEFORE_TEST(OptimizerTest);

TEST_P(OptimizerTest, DispatchesToParamTarget) {
  EXPECT_EQ(GetParam(), DispatchedTarget());
}

TEST_P(OptimizerTest, SgdMatchesReference) {
  for (const SgdCase& c : SgdCases()) {
    for (size_t n : TestSizes()) {
      for (size_t offset : {0, 1}) {
        std::ostringstream where;
        where << c.name << " n=" << n << " offset=" << offset;
        SCOPED_TRACE(where.str());
        std::mt19937 rng(static_cast<uint32_t>(n * 7 + offset));
        Array grad(n, offset), weight(n, offset), velocity(n, 0);
        FillRandom(weight.data, n, rng, -1.0f, 1.0f);
        const float initial_weight = weight.data[0];
        std::memset(velocity.data, 0, n * sizeof(float));
        std::vector<float> ref_weight = weight.Copy();
        std::vector<float> ref_velocity = velocity.Copy();
        const bool uses_velocity = c.params.momentum != 0.0f;
        for (int step = 0; step < kSteps; ++step) {
          FillRandom(grad.data, n, rng, -1.0f, 1.0f);
          SgdStep(grad.data, weight.data,
                  uses_velocity ? velocity.data : nullptr, n, c.params, Pool());
          ScalarSgdStep(grad.data, ref_weight.data(),
                        uses_velocity ? ref_velocity.data() : nullptr, n,
                        c.params);
        }
        EXPECT_TRUE(Matches(ref_weight, weight.data, "weight"));
        if (uses_velocity) {
          EXPECT_TRUE(Matches(ref_velocity, velocity.data, "velocity"));
        }
        // The weights did move: the test is not comparing two no-ops.
        EXPECT_NE(weight.data[0], initial_weight);
      }
    }
  }
}

// A concrete hand-computed value: momentum 0.9 over two steps with g = 1:
// v1 = 1, w1 = 1 - 0.1; v2 = 0.9 + 1 = 1.9, w2 = w1 - 0.1 * 1.9.
TEST_P(OptimizerTest, SgdMomentumKnownValues) {
  SgdParams p;
  p.learning_rate = 0.1f;
  p.momentum = 0.9f;
  const size_t n = 37;  // body and tail on every target
  std::vector<float> grad(n, 1.0f), weight(n, 1.0f), velocity(n, 0.0f);
  SgdStep(grad.data(), weight.data(), velocity.data(), n, p, Pool());
  SgdStep(grad.data(), weight.data(), velocity.data(), n, p, Pool());
  for (size_t i = 0; i < n; ++i) {
    EXPECT_FLOAT_EQ(velocity[i], 1.9f) << i;
    EXPECT_FLOAT_EQ(weight[i], 1.0f - 0.1f - 0.19f) << i;
  }
}

// momentum == 0 needs no velocity buffer: nullptr must be accepted.
TEST_P(OptimizerTest, SgdWithoutMomentumAcceptsNullVelocity) {
  SgdParams p;
  p.learning_rate = 0.5f;
  p.weight_decay = 0.1f;
  for (size_t n : TestSizes()) {
    std::vector<float> grad(n, 2.0f), weight(n, 1.0f);
    SgdStep(grad.data(), weight.data(), nullptr, n, p, Pool());
    for (size_t i = 0; i < n; i += 1 + n / 64) {
      // w - lr * (g + wd * w) = 1 - 0.5 * 2.1
      ASSERT_FLOAT_EQ(weight[i], 1.0f - 0.5f * (2.0f + 0.1f)) << "n=" << n;
    }
  }
}

struct AdamCase {
  const char* name;
  float weight_decay;
  bool decoupled;
};

TEST_P(OptimizerTest, AdamMatchesReference) {
  const AdamCase cases[] = {
      {"adam", 0.0f, false}, {"adam+wd", 0.01f, false}, {"adamw", 0.01f, true}};
  for (const AdamCase& c : cases) {
    for (size_t n : TestSizes()) {
      for (size_t offset : {0, 1}) {
        std::ostringstream where;
        where << c.name << " n=" << n << " offset=" << offset;
        SCOPED_TRACE(where.str());
        std::mt19937 rng(static_cast<uint32_t>(n * 13 + offset));
        Array grad(n, offset), weight(n, offset), m(n, 0), v(n, offset);
        FillRandom(weight.data, n, rng, -1.0f, 1.0f);
        std::memset(m.data, 0, n * sizeof(float));
        std::memset(v.data, 0, n * sizeof(float));
        std::vector<float> ref_w = weight.Copy(), ref_m = m.Copy(),
                           ref_v = v.Copy();
        AdamParams p;
        p.learning_rate = 0.01f;
        p.weight_decay = c.weight_decay;
        p.decoupled_weight_decay = c.decoupled;
        for (int t = 1; t <= kSteps; ++t) {
          // Bias corrections as a caller computes them (double, step t).
          p.step_size = static_cast<float>(
              p.learning_rate / (1.0 - std::pow(double{p.beta1}, t)));
          p.bias_correction2_sqrt =
              static_cast<float>(std::sqrt(1.0 - std::pow(double{p.beta2}, t)));
          FillRandom(grad.data, n, rng, -1.0f, 1.0f);
          AdamStep(grad.data, weight.data, m.data, v.data, n, p, Pool());
          ScalarAdamStep(grad.data, ref_w.data(), ref_m.data(), ref_v.data(), n,
                         p);
        }
        EXPECT_TRUE(Matches(ref_w, weight.data, "weight"));
        EXPECT_TRUE(Matches(ref_m, m.data, "m"));
        EXPECT_TRUE(Matches(ref_v, v.data, "v"));
      }
    }
  }
}

// First Adam step from zero state moves every weight by about lr against the
// gradient's sign (m/sqrt(v) = sign(g) after bias correction).
TEST_P(OptimizerTest, AdamFirstStepMovesByLearningRate) {
  AdamParams p;
  p.learning_rate = 0.01f;
  p.step_size = static_cast<float>(0.01 / (1.0 - 0.9f));
  p.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - 0.999f));
  const size_t n = 21;
  std::vector<float> grad(n), weight(n, 0.5f), m(n, 0.0f), v(n, 0.0f);
  for (size_t i = 0; i < n; ++i)
    grad[i] = (i % 2 == 0 ? 1.0f : -1.0f) * (1 + i);
  AdamStep(grad.data(), weight.data(), m.data(), v.data(), n, p, Pool());
  for (size_t i = 0; i < n; ++i) {
    const float expected = 0.5f - (i % 2 == 0 ? 0.01f : -0.01f);
    EXPECT_NEAR(weight[i], expected, 1e-6f) << i;
  }
}

// Per-element updates on fixed chunks: any thread count gives the same bits.
TEST_P(OptimizerTest, SameBitsForAnyThreadCount) {
  const size_t n = 3 * kElementwiseChunk + 5;
  std::mt19937 rng(8);
  Array grad(n, 1), w1(n, 1), m1(n, 1), v1(n, 1);
  FillRandom(grad.data, n, rng, -1.0f, 1.0f);
  FillRandom(w1.data, n, rng, -1.0f, 1.0f);
  std::memset(m1.data, 0, n * sizeof(float));
  std::memset(v1.data, 0, n * sizeof(float));
  std::vector<float> w2 = w1.Copy(), m2 = m1.Copy(), v2 = v1.Copy();
  AdamParams p;
  p.weight_decay = 0.01f;
  p.decoupled_weight_decay = true;
  ThreadPool one(1), three(3);
  AdamStep(grad.data, w1.data, m1.data, v1.data, n, p, one);
  AdamStep(grad.data, w2.data(), m2.data(), v2.data(), n, p, three);
  EXPECT_TRUE(Matches(w1.Copy(), w2.data(), "weight"));
  EXPECT_TRUE(Matches(m1.Copy(), m2.data(), "m"));
  EXPECT_TRUE(Matches(v1.Copy(), v2.data(), "v"));
}

}  // namespace
}  // namespace simd
}  // namespace thaw
