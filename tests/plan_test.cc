// The memory planner: buffers alive at the same time never share a byte,
// buffers that are not may, and the result is a function of the list.
#include "core/memory/plan.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/plan_util.h"

namespace thaw {
namespace {

bool Overlap(const PlannedBuffer& a, const PlannedBuffer& b) {
  return !(a.last < b.first || b.last < a.first);
}

// Every pair alive at once occupies disjoint bytes; every buffer is aligned
// and inside total().
void ExpectValid(const MemoryPlan& plan) {
  size_t end = 0;
  for (int i = 0; i < plan.size(); ++i) {
    const PlannedBuffer& a = plan[i];
    EXPECT_EQ(a.offset % kAlignment, 0u) << i;
    EXPECT_EQ(a.bytes % kAlignment, 0u) << i;
    end = std::max(end, a.offset + a.bytes);
    for (int j = i + 1; j < plan.size(); ++j) {
      const PlannedBuffer& b = plan[j];
      if (!Overlap(a, b) || a.bytes == 0 || b.bytes == 0) continue;
      EXPECT_TRUE(a.offset + a.bytes <= b.offset || b.offset + b.bytes <= a.offset)
          << "buffers " << i << " and " << j << " share bytes while both alive";
    }
  }
  EXPECT_EQ(plan.total(), end);
}

TEST(MemoryPlanTest, DeadBuffersShareBytesLiveOnesDoNot) {
  MemoryPlan plan;
  plan.Reserve(3);
  const int a = plan.Add(4096, Region::kActivations, 1, 5);
  const int b = plan.Add(1000, Region::kScratch, 2, 2);  // rounds up to 1024
  const int c = plan.Add(1024, Region::kScratch, 6, 7);  // after b is dead
  plan.PlaceByLifetime();
  EXPECT_EQ(plan[b].bytes, 1024u);
  // a and b live together; c reuses bytes of one of them, dead by then.
  EXPECT_EQ(plan.total(), 5120u);
  EXPECT_TRUE(plan.offset(c) == plan.offset(a) || plan.offset(c) == plan.offset(b));
  EXPECT_EQ(plan.RegionBytes(Region::kActivations), 4096u);
  EXPECT_EQ(plan.RegionBytes(Region::kScratch), 2048u);  // shared bytes count for each
  ExpectValid(plan);
}

TEST(MemoryPlanTest, AGapBetweenPlacedBuffersIsReused) {
  MemoryPlan plan;
  plan.Reserve(4);
  plan.Add(256, Region::kScratch, 0, 9);  // [0, 256)
  plan.Add(192, Region::kScratch, 0, 3);  // [256, 448)
  plan.Add(128, Region::kScratch, 0, 9);  // [448, 576)
  const int late = plan.Add(128, Region::kScratch, 5, 9);  // fits where the second was
  plan.PlaceByLifetime();
  EXPECT_EQ(plan.offset(late), 256u);
  EXPECT_EQ(plan.total(), 576u);
  ExpectValid(plan);
}

TEST(MemoryPlanTest, InOrderPlacementFollowsTheList) {
  MemoryPlan plan;
  plan.Reserve(3);
  plan.Add(10, Region::kWeights, 0, 0);
  plan.Add(100, Region::kGradients, 0, 0);
  plan.Add(64, Region::kOptimizerState, 0, 0);
  plan.PlaceInOrder();
  EXPECT_EQ(plan.offset(0), 0u);
  EXPECT_EQ(plan.offset(1), 64u);
  EXPECT_EQ(plan.offset(2), 192u);
  EXPECT_EQ(plan.total(), 256u);
}

// A region's peak: the largest sum of its buffers alive at one time, other
// regions not counted (an update-in-backward step's gradients).
TEST(MemoryPlanTest, ARegionsPeakIsItsLargestSumAliveAtOnce) {
  MemoryPlan plan;
  plan.Reserve(5);
  plan.Add(128, Region::kGradients, 5, 5);
  plan.Add(64, Region::kGradients, 5, 6);
  plan.Add(1024, Region::kGradients, 7, 7);
  plan.Add(100, Region::kGradients, 6, 7);  // 128 bytes
  plan.Add(4096, Region::kScratch, 5, 7);   // another region
  EXPECT_EQ(plan.PeakRegionBytes(Region::kGradients), 1024u + 128u);
  EXPECT_EQ(plan.PeakRegionBytes(Region::kActivations), 0u);
  EXPECT_EQ(plan.RegionBytes(Region::kGradients), 128u + 64 + 1024 + 128);
}

TEST(MemoryPlanTest, EmptyBuffersTakeNoRoom) {
  MemoryPlan plan;
  plan.Reserve(2);
  plan.Add(0, Region::kScratch, 0, 4);
  plan.Add(64, Region::kScratch, 0, 4);
  plan.PlaceByLifetime();
  EXPECT_EQ(plan.total(), 64u);
}

// Random lists: always valid, never below the bytes alive at the busiest
// time, never above the sum, and the same offsets when placed again.
TEST(MemoryPlanTest, RandomListsArePlacedValidlyAndDeterministically) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 40);
    MemoryPlan plan;
    plan.Reserve(n);
    std::vector<Live> live;
    size_t sum = 0;
    for (int i = 0; i < n; ++i) {
      const size_t bytes = 1 + rng() % 5000;
      const int first = static_cast<int>(rng() % 30);
      const int last = first + static_cast<int>(rng() % 8);
      plan.Add(bytes, Region::kScratch, first, last);
      live.push_back({bytes, first, last});
      sum += AlignUp(bytes);
    }
    plan.PlaceByLifetime();
    ExpectValid(plan);
    EXPECT_GE(plan.total(), Peak(live));
    EXPECT_LE(plan.total(), sum);
    std::vector<size_t> offsets;
    for (int i = 0; i < n; ++i) offsets.push_back(plan.offset(i));
    plan.PlaceByLifetime();
    for (int i = 0; i < n; ++i) EXPECT_EQ(plan.offset(i), offsets[i]);
    if (HasFailure()) break;
  }
}

// A chain of activations (each alive from its producer to its consumer)
// needs only its two largest neighbours at a time.
TEST(MemoryPlanTest, AChainReachesTheLowerBound) {
  MemoryPlan plan;
  plan.Reserve(6);
  std::vector<Live> live;
  const size_t sizes[6] = {4096, 1024, 2048, 512, 3072, 256};
  for (int i = 0; i < 6; ++i) {
    plan.Add(sizes[i], Region::kScratch, i, i + 1);
    live.push_back({sizes[i], i, i + 1});
  }
  plan.PlaceByLifetime();
  ExpectValid(plan);
  EXPECT_EQ(plan.total(), Peak(live));  // 4096 + 1024
}

}  // namespace
}  // namespace thaw
