// thaw/core/memory/plan.h — a memory plan: one list of buffers, each with its
// size, region and lifetime, and the offsets that place them.
//
//   thaw::MemoryPlan plan;
//   int a = plan.Add(4096, thaw::Region::kActivations, /*first=*/1, /*last=*/5);
//   int b = plan.Add(1024, thaw::Region::kScratch, 2, 2);
//   int c = plan.Add(1024, thaw::Region::kScratch, 6, 7);  // after a and b
//   plan.PlaceByLifetime();
//   // c reuses bytes of a or b, dead by then: plan.total() == 5120, not 6144
//
// Everything a step or a variable set holds is described here once: sizes,
// the fit check (total()), placement (offset()), the per-region report
// (RegionBytes()) and the high-water mark all read the same list.
//
// Lifetimes are inclusive ranges of step times (the position of the op that
// first writes and last reads the buffer). Two buffers whose lifetimes
// overlap never share a byte; buffers whose lifetimes do not overlap may.
// Placement is greedy, as TensorFlow Lite Micro's planner: in a fixed order
// (largest first, and four others; the best result is kept), each buffer at
// the lowest offset that clashes with nothing placed. Every
// buffer starts on a kAlignment (64-byte) boundary and takes a whole number
// of 64-byte lines.
//
// Allocation: Reserve() once at setup; afterwards Clear, Add and Place never
// touch the heap while the list stays within the reserve (a bug otherwise,
// caught by THAW_CHECK).
#ifndef THAW_CORE_MEMORY_PLAN_H_
#define THAW_CORE_MEMORY_PLAN_H_

#include <cstddef>
#include <vector>

#include "core/memory/arena.h"

namespace thaw {

struct PlannedBuffer {
  size_t bytes = 0;   // a multiple of kAlignment
  Region region = Region::kScratch;
  int first = 0;      // step times, inclusive
  int last = 0;
  size_t offset = 0;  // from the start of the planned block, once placed
  // Who the buffer belongs to, for reports: `what` is a static string
  // ("output", "gradient", "scratch", ...) and `owner` an index whose meaning
  // the planner's user defines (a graph value, a node, a variable).
  const char* what = "";
  int owner = -1;
};

class MemoryPlan {
 public:
  // Makes room for `buffers` entries, so that later calls never allocate.
  void Reserve(size_t buffers);
  void Clear();

  // Appends a buffer of `bytes` (rounded up to kAlignment) alive from step
  // `first` to step `last`; returns its index. A zero-byte buffer is allowed
  // and takes no room.
  int Add(size_t bytes, Region region, int first, int last,
          const char* what = "", int owner = -1);

  // Places every buffer so that buffers with overlapping lifetimes never
  // share bytes; the others may.
  void PlaceByLifetime();
  // Places the buffers one after the other, in list order (for memory that
  // lives for good, whose order matters: see VariableSet).
  void PlaceInOrder();

  int size() const { return static_cast<int>(buffers_.size()); }
  const PlannedBuffer& operator[](int i) const { return buffers_[i]; }
  size_t offset(int i) const { return buffers_[i].offset; }
  // Bytes from the block's start to the end of the highest placed buffer:
  // the block a placement needs, and its high-water mark.
  size_t total() const { return total_; }
  // Sum of the sizes of the region's buffers (shared bytes counted for each).
  size_t RegionBytes(Region region) const;
  // The largest sum of the region's buffers alive at one step time: what
  // the region holds at its peak when its buffers share bytes by lifetime.
  size_t PeakRegionBytes(Region region) const;

 private:
  size_t PlaceGreedy();

  std::vector<PlannedBuffer> buffers_;
  std::vector<int> order_;      // placement order
  std::vector<int> placed_;     // placed buffers, by offset
  std::vector<size_t> offsets_; // one placement
  std::vector<size_t> best_;    // the best so far
  size_t total_ = 0;
};

}  // namespace thaw

#endif  // THAW_CORE_MEMORY_PLAN_H_
