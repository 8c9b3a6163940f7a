// Pre-faulting: PrefaultMemory and TouchPages (platform/memory.h) map every
// page of a range and only those, keeping its bytes; an arena created with
// ArenaOptions::prefault, or a wrapped block after Arena::Prefault, has every
// page resident and works as before. Residency is read with mincore (Linux);
// elsewhere these tests skip. No timing here: bench/run_cold_start.sh
// measures what pre-faulting saves.
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/memory/arena.h"
#include "gtest/gtest.h"
#include "platform/memory.h"
#include "tests/resident_pages.h"

namespace thaw {
namespace {

// A range that starts 100 bytes into page 1 of 8 fresh pages and ends 17
// bytes into page 4: pages 1-4 become resident, the others stay untouched,
// and what the range held is kept.
void ExpectFaultsInExactlyTheRange(void (*fault_in)(void*, size_t)) {
  FreshPages block(8);
  std::vector<bool> resident;
  if (block.data() == nullptr || !ResidentPages(block.data(), block.bytes(), &resident)) {
    GTEST_SKIP() << "no mmap/mincore on this system";
  }
  const size_t page = PageBytes();
  unsigned char* const start = block.data() + page + 100;
  const size_t bytes = 3 * page - 100 + 17;
  start[0] = 0x5a;         // page 1
  start[2 * page] = 0xc3;  // page 3
  ASSERT_TRUE(ResidentPages(block.data(), block.bytes(), &resident));
  EXPECT_EQ(resident, std::vector<bool>({false, true, false, true, false, false, false, false}));

  fault_in(start, bytes);
  ASSERT_TRUE(ResidentPages(block.data(), block.bytes(), &resident));
  EXPECT_EQ(resident, std::vector<bool>({false, true, true, true, true, false, false, false}));
  EXPECT_EQ(start[0], 0x5a);
  EXPECT_EQ(start[2 * page], 0xc3);
  size_t nonzero = 0;
  for (size_t i = 0; i < block.bytes(); ++i) nonzero += block.data()[i] != 0;
  EXPECT_EQ(nonzero, 2u);
}

TEST(PrefaultTest, PrefaultMemoryMapsEveryPageOfTheRangeAndKeepsItsBytes) {
  ExpectFaultsInExactlyTheRange(PrefaultMemory);
}

TEST(PrefaultTest, TouchPagesMapsEveryPageOfTheRangeAndKeepsItsBytes) {
  ExpectFaultsInExactlyTheRange(TouchPages);
}

TEST(PrefaultTest, EmptyAndTinyRangesAreHarmless) {
  PrefaultMemory(nullptr, 0);
  TouchPages(nullptr, 0);
  unsigned char bytes[3] = {7, 8, 9};
  PrefaultMemory(bytes + 1, 1);  // on the stack, inside one page
  TouchPages(bytes + 1, 1);
  EXPECT_EQ(bytes[0], 7);
  EXPECT_EQ(bytes[1], 8);
  EXPECT_EQ(bytes[2], 9);
  EXPECT_GE(PageBytes(), 1024u);
  EXPECT_EQ(PageBytes() & (PageBytes() - 1), 0u);
}

// 4 MiB: the arena the MLP 784-256-128-10 trains in (Adam, batch 32).
TEST(PrefaultTest, CreateWithPrefaultHasEveryPageResidentAndWorks) {
  constexpr size_t kBytes = 4 << 20;
  ArenaOptions options;
  options.prefault = true;
  Arena arena;
  ASSERT_TRUE(Arena::Create(kBytes, options, &arena).ok());
  EXPECT_EQ(arena.capacity(), kBytes);
  EXPECT_TRUE(IsAligned(arena.data()));
  EXPECT_EQ(arena.used(), 0u);
  std::vector<bool> resident;
  if (ResidentPages(arena.data(), arena.capacity(), &resident)) {
    EXPECT_EQ(CountResident(resident), resident.size());
    EXPECT_GE(resident.size(), kBytes / PageBytes());
  }
  // It behaves as any arena: the whole block can be handed out and written.
  void* p = arena.AllocateTransient(kBytes, Region::kScratch);
  ASSERT_EQ(p, arena.data());
  std::memset(p, 0x11, kBytes);
  EXPECT_EQ(arena.AllocateTransient(1, Region::kScratch), nullptr);
  EXPECT_EQ(arena.high_water(), kBytes);
  arena.ResetTransient();
  EXPECT_EQ(arena.used(), 0u);
}

TEST(PrefaultTest, OffByDefaultAndBadSizesAreStillRefused) {
  EXPECT_FALSE(ArenaOptions().prefault);
  ArenaOptions options;
  Arena arena;
  EXPECT_EQ(Arena::Create(0, options, &arena).code(), StatusCode::kInvalidArgument);
  options.prefault = true;
  EXPECT_EQ(Arena::Create(0, options, &arena).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Arena::Create(SIZE_MAX, options, &arena).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(arena.capacity(), 0u);
  arena.Prefault();  // an arena without memory: nothing to do
}

// A caller's block (here fresh pages standing in for a static array, which is
// mapped on first write too) becomes resident on Prefault and keeps its bytes.
TEST(PrefaultTest, PrefaultMapsAWrappedBlockAndKeepsItsContents) {
  FreshPages block(32);
  std::vector<bool> resident;
  if (block.data() == nullptr || !ResidentPages(block.data(), block.bytes(), &resident)) {
    GTEST_SKIP() << "no mmap/mincore on this system";
  }
  EXPECT_EQ(CountResident(resident), 0u);
  block.data()[5 * PageBytes() + 3] = 42;
  Arena arena;
  ASSERT_TRUE(Arena::Wrap(block.data(), block.bytes(), &arena).ok());
  ASSERT_TRUE(ResidentPages(block.data(), block.bytes(), &resident));
  EXPECT_EQ(CountResident(resident), 1u);

  arena.Prefault();
  ASSERT_TRUE(ResidentPages(block.data(), block.bytes(), &resident));
  EXPECT_EQ(CountResident(resident), 32u);
  EXPECT_EQ(block.data()[5 * PageBytes() + 3], 42);
  EXPECT_EQ(block.data()[0], 0);
  EXPECT_NE(arena.AllocateTransient(block.bytes(), Region::kActivations), nullptr);
}

// The planner poisons buffers outside their lifetimes in the sanitizer build
// (PoisonMemory); faulting pages in may happen over them and must not stop
// the sanitizer, since it changes no byte.
TEST(PrefaultTest, PoisonedBytesMayBeFaultedIn) {
  alignas(64) static unsigned char block[3 * 4096 + 64];
  block[100] = 9;
  PoisonMemory(block, sizeof(block));
  TouchPages(block, sizeof(block));
  PrefaultMemory(block, sizeof(block));
  UnpoisonMemory(block, sizeof(block));
  EXPECT_EQ(block[100], 9);
}

}  // namespace
}  // namespace thaw
