#include "core/memory/plan.h"

#include <algorithm>

#include "platform/memory.h"
#include "platform/status.h"

namespace thaw {

void MemoryPlan::Reserve(size_t buffers) {
  buffers_.reserve(buffers);
  order_.reserve(buffers);
  placed_.reserve(buffers);
  offsets_.reserve(buffers);
  best_.reserve(buffers);
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

// Greedy placement in the order of order_: each buffer at the lowest offset
// that clashes with no placed buffer alive at the same time. Offsets go to
// offsets_; returns the block's size.
size_t MemoryPlan::PlaceGreedy() {
  placed_.clear();
  size_t total = 0;
  for (int i : order_) {
    const PlannedBuffer& b = buffers_[i];
    // Walk the placed buffers by offset; the candidate offset moves past
    // every one alive at the same time until the gap before the next one
    // is large enough.
    size_t candidate = 0;
    for (int j : placed_) {
      const PlannedBuffer& p = buffers_[j];
      if (p.last < b.first || b.last < p.first || p.bytes == 0) continue;
      if (candidate + b.bytes <= offsets_[j]) break;
      candidate = std::max(candidate, offsets_[j] + p.bytes);
    }
    offsets_[i] = candidate;
    total = std::max(total, candidate + b.bytes);
    auto at = std::upper_bound(placed_.begin(), placed_.end(), candidate,
                               [&](size_t offset, int j) { return offset < offsets_[j]; });
    placed_.insert(at, i);
  }
  return total;
}

// Greedy placement is not optimal for every list (the problem is NP-hard),
// and which order does best depends on the list: largest first (TensorFlow
// Lite Micro's order) suits many sizes; the buffers alive at the busiest
// time first, stacked longest-lived lowest, suits chains of activations
// around large short-lived scratch (a step's GEMM packing buffers). Each of
// five orders is tried and the smallest block kept; ties go to the earlier
// order, so the result is a function of the list alone. On random lists the
// best of the five is within 1% of the lower bound (the bytes alive at the
// busiest time) on average. Five placements of a few dozen buffers cost
// microseconds, and a model recompiles only when its step changes.
void MemoryPlan::PlaceByLifetime() {
  // The busiest time: some buffer's first time, where the most bytes live.
  auto alive = [&](const PlannedBuffer& b, int t) { return b.first <= t && t <= b.last; };
  int busiest = 0;
  size_t most = 0;
  for (const PlannedBuffer& candidate : buffers_) {
    size_t live = 0;
    for (const PlannedBuffer& b : buffers_) live += alive(b, candidate.first) ? b.bytes : 0;
    if (live > most) {
      most = live;
      busiest = candidate.first;
    }
  }
  auto length = [](const PlannedBuffer& b) { return b.last - b.first; };
  auto before = [&](int order, const PlannedBuffer& x, const PlannedBuffer& y) {
    switch (order) {
      case 0:  // largest first
        return x.bytes > y.bytes;
      case 1:  // longest-lived first
        return length(x) != length(y) ? length(x) > length(y) : x.bytes > y.bytes;
      case 2:  // most bytes x steps first
        return x.bytes * (length(x) + 1) > y.bytes * (length(y) + 1);
      case 3:  // in time order
        return x.first != y.first ? x.first < y.first : x.bytes > y.bytes;
      default: {  // the busiest time's buffers first, longest-lived lowest
        const bool ax = alive(x, busiest), ay = alive(y, busiest);
        if (ax != ay) return ax;
        if (ax && length(x) != length(y)) return length(x) > length(y);
        return x.bytes > y.bytes;
      }
    }
  };
  offsets_.resize(buffers_.size());
  best_.resize(buffers_.size());
  for (int order = 0; order < 5; ++order) {
    order_.clear();
    for (int i = 0; i < size(); ++i) order_.push_back(i);
    // Ties by list order, so each order is fully determined. (std::sort,
    // not stable_sort: that one may allocate.)
    std::sort(order_.begin(), order_.end(), [&](int a, int b) {
      if (before(order, buffers_[a], buffers_[b])) return true;
      if (before(order, buffers_[b], buffers_[a])) return false;
      return a < b;
    });
    const size_t total = PlaceGreedy();
    if (order == 0 || total < total_) {
      total_ = total;
      best_.swap(offsets_);
      offsets_.resize(buffers_.size());
    }
  }
  for (int i = 0; i < size(); ++i) buffers_[i].offset = best_[i];
}

size_t MemoryPlan::RegionBytes(Region region) const {
  size_t bytes = 0;
  for (const PlannedBuffer& b : buffers_) {
    if (b.region == region) bytes += b.bytes;
  }
  return bytes;
}

// The sum is largest at some buffer's first time: checking those is enough.
size_t MemoryPlan::PeakRegionBytes(Region region) const {
  size_t peak = 0;
  for (const PlannedBuffer& at : buffers_) {
    if (at.region != region) continue;
    size_t live = 0;
    for (const PlannedBuffer& b : buffers_) {
      if (b.region == region && b.first <= at.first && at.first <= b.last) live += b.bytes;
    }
    peak = std::max(peak, live);
  }
  return peak;
}

}  // namespace thaw
