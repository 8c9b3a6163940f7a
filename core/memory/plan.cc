#include "core/memory/plan.h"

#include <algorithm>

#include "platform/memory.h"
#include "platform/status.h"

namespace thaw {

void MemoryPlan::Reserve(size_t buffers) {
  buffers_.reserve(buffers);
  order_.reserve(buffers);
  placed_.reserve(buffers);
}

void MemoryPlan::Clear() {
  buffers_.clear();
  total_ = 0;
}

int MemoryPlan::Add(size_t bytes, Region region, int first, int last,
                    const char* what, int owner) {
  THAW_CHECK(first <= last);
  // Growing past the reserve would allocate inside a step: the caller
  // reserved too little, a bug.
  THAW_CHECK(buffers_.size() < buffers_.capacity());
  PlannedBuffer b;
  b.bytes = AlignUp(bytes);
  b.region = region;
  b.first = first;
  b.last = last;
  b.what = what;
  b.owner = owner;
  buffers_.push_back(b);
  return size() - 1;
}

void MemoryPlan::PlaceInOrder() {
  total_ = 0;
  for (PlannedBuffer& b : buffers_) {
    b.offset = total_;
    total_ += b.bytes;
  }
}

void MemoryPlan::PlaceByLifetime() {
  order_.clear();
  for (int i = 0; i < size(); ++i) order_.push_back(i);
  // Largest first; ties by first use, then by list order, so the result is
  // a function of the list alone.
  std::sort(order_.begin(), order_.end(), [&](int a, int b) {
    const PlannedBuffer &x = buffers_[a], &y = buffers_[b];
    if (x.bytes != y.bytes) return x.bytes > y.bytes;
    if (x.first != y.first) return x.first < y.first;
    return a < b;
  });
  placed_.clear();
  total_ = 0;
  for (int i : order_) {
    PlannedBuffer& b = buffers_[i];
    // Walk the placed buffers by offset; the candidate offset moves past
    // every one alive at the same time until the gap before the next one
    // is large enough.
    size_t candidate = 0;
    for (int j : placed_) {
      const PlannedBuffer& p = buffers_[j];
      if (p.last < b.first || b.last < p.first || p.bytes == 0) continue;
      if (candidate + b.bytes <= p.offset) break;
      candidate = std::max(candidate, p.offset + p.bytes);
    }
    b.offset = candidate;
    total_ = std::max(total_, candidate + b.bytes);
    auto at = std::upper_bound(placed_.begin(), placed_.end(), candidate,
                               [&](size_t offset, int j) { return offset < buffers_[j].offset; });
    placed_.insert(at, i);
  }
}

size_t MemoryPlan::RegionBytes(Region region) const {
  size_t bytes = 0;
  for (const PlannedBuffer& b : buffers_) {
    if (b.region == region) bytes += b.bytes;
  }
  return bytes;
}

}  // namespace thaw
