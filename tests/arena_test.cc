#include "core/memory/arena.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "platform/memory.h"
#include "tests/status_text.h"

namespace thaw {
namespace {

TEST(ArenaTest, CreateOwnsAnAlignedBlock) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1000, &arena).ok());
  EXPECT_EQ(arena.capacity(), 1000u);
  EXPECT_TRUE(IsAligned(arena.data()));
  EXPECT_EQ(arena.used(), 0u);
  EXPECT_EQ(arena.free_bytes(), 1000u);
}

TEST(ArenaTest, CreateRejectsZeroBytes) {
  Arena arena;
  Status s = Arena::Create(0, &arena);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

// Sizes near SIZE_MAX used to wrap when rounded up to the alignment: Create
// then "succeeded" with a tiny block and a huge capacity.
TEST(ArenaTest, SizesBeyondAnyMachineAreRefusedNotWrapped) {
  Arena arena;
  Status s = Arena::Create(SIZE_MAX, &arena);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.message();
  EXPECT_EQ(arena.capacity(), 0u);
  EXPECT_EQ(AlignedAlloc(SIZE_MAX - 1), nullptr);
  alignas(64) static unsigned char block[256];
  s = Arena::Wrap(block, SIZE_MAX, &arena);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
  ASSERT_TRUE(Arena::Create(1024, &arena).ok());
  EXPECT_EQ(arena.AllocateTransient(SIZE_MAX - 8, Region::kScratch), nullptr);
  EXPECT_EQ(arena.used(), 0u);
}

TEST(ArenaTest, WrapsAStaticArray) {
  alignas(64) static unsigned char block[4096];
  Arena arena;
  ASSERT_TRUE(Arena::Wrap(block, sizeof(block), &arena).ok());
  EXPECT_EQ(arena.data(), block);
  void* p = arena.AllocateTransient(100, Region::kScratch);
  EXPECT_EQ(p, block);
}

TEST(ArenaTest, WrapRejectsAMisalignedBlock) {
  alignas(64) static unsigned char block[256];
  Arena arena;
  Status s = Arena::Wrap(block + 4, 128, &arena);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(s, "not 64-byte aligned")) << s.message();
}

TEST(ArenaTest, TransientAllocationsAreAlignedAndCounted) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1024, &arena).ok());
  void* a = arena.AllocateTransient(10, Region::kActivations);
  void* b = arena.AllocateTransient(70, Region::kScratch);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(IsAligned(a));
  EXPECT_TRUE(IsAligned(b));
  EXPECT_EQ(arena.bytes(Region::kActivations), 64u);
  EXPECT_EQ(arena.bytes(Region::kScratch), 128u);
  EXPECT_EQ(arena.used(), 192u);
  EXPECT_EQ(arena.high_water(), 192u);
}

TEST(ArenaTest, FullArenaReturnsNullAndKeepsWhatItHolds) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(256, &arena).ok());
  auto* a = static_cast<unsigned char*>(arena.AllocateTransient(192, Region::kActivations));
  ASSERT_NE(a, nullptr);
  a[0] = 7;
  EXPECT_EQ(arena.AllocateTransient(65, Region::kScratch), nullptr);
  EXPECT_EQ(arena.used(), 192u);
  EXPECT_EQ(a[0], 7);
  EXPECT_NE(arena.AllocateTransient(64, Region::kScratch), nullptr);
  EXPECT_EQ(arena.free_bytes(), 0u);
}

TEST(ArenaTest, ReleaseReturnsToAMarkAndHighWaterStays) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1024, &arena).ok());
  ASSERT_NE(arena.AllocateTransient(64, Region::kActivations), nullptr);
  const Arena::Mark mark = arena.mark();
  ASSERT_NE(arena.AllocateTransient(256, Region::kScratch), nullptr);
  ASSERT_NE(arena.AllocateTransient(64, Region::kActivations), nullptr);
  arena.Release(mark);
  EXPECT_EQ(arena.used(), 64u);
  EXPECT_EQ(arena.bytes(Region::kActivations), 64u);
  EXPECT_EQ(arena.bytes(Region::kScratch), 0u);
  EXPECT_EQ(arena.high_water(), 384u);
}

TEST(ArenaTest, PersistentPartSitsBelowTransient) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1024, &arena).ok());
  ASSERT_NE(arena.AllocateTransient(64, Region::kActivations), nullptr);
  arena.SetPersistent(256, {128, 64, 64});
  EXPECT_EQ(arena.persistent_end(), 256u);
  EXPECT_EQ(arena.bytes(Region::kActivations), 0u);  // transient was emptied
  EXPECT_EQ(arena.AllocateTransient(1, Region::kScratch), arena.data() + 256);
  MemoryReport r = arena.Report();
  EXPECT_EQ(r[Region::kWeights], 128u);
  EXPECT_EQ(r[Region::kGradients], 64u);
  EXPECT_EQ(r[Region::kOptimizerState], 64u);
  EXPECT_EQ(r.total(), 256u + 64u);
  EXPECT_NE(r.ToString().find("optimizer state"), std::string::npos);
}

// The tail (a model's feature cache): claimed at the top, counted, and
// given up to whatever needs its bytes, with a new claim number each time.
TEST(ArenaTest, TheTailSitsAtTheTopAndGivesWay) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(1024, &arena).ok());
  arena.SetPersistent(256, {256, 0, 0});
  ASSERT_NE(arena.AllocateTransient(128, Region::kScratch), nullptr);
  EXPECT_EQ(arena.ClaimTail(704), 0u);  // over the transient part: refused, nothing changed
  EXPECT_EQ(arena.tail_bytes(), 0u);
  const uint64_t claim = arena.ClaimTail(512);
  ASSERT_NE(claim, 0u);
  EXPECT_EQ(arena.tail_claim(), claim);
  EXPECT_EQ(arena.tail(), arena.data() + 512);
  EXPECT_EQ(arena.bytes(Region::kFeatureCache), 512u);
  EXPECT_EQ(arena.Report().total(), 256u + 128u + 512u);
  EXPECT_EQ(arena.high_water(), 256u + 128u + 512u);
  EXPECT_NE(arena.Report().ToString().find("feature cache"), std::string::npos);
  // Below it, allocations leave it alone ...
  ASSERT_NE(arena.AllocateTransient(128, Region::kScratch), nullptr);
  EXPECT_EQ(arena.tail_claim(), claim);
  // ... one that reaches into it takes it.
  ASSERT_NE(arena.AllocateTransient(64, Region::kScratch), nullptr);
  EXPECT_NE(arena.tail_claim(), claim);
  EXPECT_EQ(arena.tail_bytes(), 0u);
  EXPECT_EQ(arena.bytes(Region::kFeatureCache), 0u);
  // So do a planned step and a persistent part that need it.
  arena.ResetTransient();
  uint64_t again = arena.ClaimTail(512);
  ASSERT_NE(again, 0u);
  EXPECT_NE(arena.ClaimPlanned(1, 256, 0), nullptr);
  EXPECT_EQ(arena.tail_claim(), again);  // 256 + 256 <= 512: it fits below
  EXPECT_NE(arena.ClaimPlanned(1, 320, 0), nullptr);
  EXPECT_NE(arena.tail_claim(), again);
  arena.ResetTransient();
  again = arena.ClaimTail(512);
  ASSERT_NE(again, 0u);
  arena.SetPersistent(576, {576, 0, 0});
  EXPECT_NE(arena.tail_claim(), again);
  EXPECT_EQ(arena.tail_bytes(), 0u);
  // Released by its owner.
  again = arena.ClaimTail(448);
  ASSERT_NE(again, 0u);
  arena.ReleaseTail();
  EXPECT_NE(arena.tail_claim(), again);
  EXPECT_EQ(arena.tail_bytes(), 0u);
}

TEST(ArenaTest, ClaimTransientRecordsTheOwner) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(512, &arena).ok());
  const uint64_t a = Arena::NewOwnerToken(), b = Arena::NewOwnerToken();
  EXPECT_NE(a, b);
  arena.ClaimTransient(a);
  ASSERT_NE(arena.AllocateTransient(64, Region::kScratch), nullptr);
  EXPECT_EQ(arena.transient_owner(), a);
  arena.ClaimTransient(b);
  EXPECT_EQ(arena.transient_owner(), b);
  EXPECT_EQ(arena.used(), 0u);
}

TEST(ArenaTest, MoveTransfersOwnership) {
  Arena a;
  ASSERT_TRUE(Arena::Create(128, &a).ok());
  unsigned char* data = a.data();
  Arena b = std::move(a);
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(b.capacity(), 128u);
  EXPECT_EQ(a.capacity(), 0u);  // NOLINT(bugprone-use-after-move)
}

// A step that plans its parameters' gradients (update in the backward pass)
// counts them next to the persistent ones until the transient part is
// reset; scratch is the rest of the block.
TEST(ArenaTest, APlannedStepsGradientsAreCountedWithThePersistentOnes) {
  Arena arena;
  ASSERT_TRUE(Arena::Create(4096, &arena).ok());
  arena.SetPersistent(640, {512, 64, 64});
  ASSERT_NE(arena.ClaimPlanned(1, 1024, 256, 512), nullptr);
  EXPECT_EQ(arena.bytes(Region::kGradients), 64u + 512u);
  EXPECT_EQ(arena.bytes(Region::kActivations), 256u);
  EXPECT_EQ(arena.bytes(Region::kScratch), 256u);
  EXPECT_EQ(arena.Report().total(), 640u + 1024u);
  arena.ResetTransient();
  EXPECT_EQ(arena.bytes(Region::kGradients), 64u);
  EXPECT_EQ(arena.bytes(Region::kScratch), 0u);
}

}  // namespace
}  // namespace thaw
