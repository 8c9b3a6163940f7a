#include "core/memory/arena.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <utility>

#include "platform/checked.h"
#include "platform/memory.h"

namespace thaw {

const char* RegionName(Region region) {
  switch (region) {
    case Region::kWeights: return "weights";
    case Region::kGradients: return "gradients";
    case Region::kOptimizerState: return "optimizer state";
    case Region::kActivations: return "activations";
    case Region::kScratch: return "scratch";
    case Region::kFeatureCache: return "feature cache";
  }
  return "?";
}

size_t MemoryReport::total() const {
  size_t sum = 0;
  for (size_t b : bytes) sum += b;
  return sum;
}

std::string MemoryReport::ToString() const {
  std::string out;
  char line[96];
  for (int r = 0; r < kNumRegions; ++r) {
    std::snprintf(line, sizeof(line), "  %-16s %10zu bytes\n",
                  RegionName(static_cast<Region>(r)), bytes[r]);
    out += line;
  }
  std::snprintf(line, sizeof(line), "  %-16s %10zu bytes (high-water %zu of %zu)\n",
                "total", total(), high_water, capacity);
  return out + line;
}

Arena::~Arena() { Free(); }

Arena::Arena(Arena&& other) noexcept { *this = std::move(other); }

Arena& Arena::operator=(Arena&& other) noexcept {
  if (this == &other) return *this;
  Free();
  data_ = std::exchange(other.data_, nullptr);
  capacity_ = std::exchange(other.capacity_, 0);
  owned_ = std::exchange(other.owned_, false);
  persistent_end_ = std::exchange(other.persistent_end_, 0);
  persistent_gradients_ = std::exchange(other.persistent_gradients_, 0);
  transient_top_ = std::exchange(other.transient_top_, 0);
  high_water_ = std::exchange(other.high_water_, 0);
  transient_owner_ = std::exchange(other.transient_owner_, 0);
  persistent_owner_ = std::exchange(other.persistent_owner_, 0);
  tail_bytes_ = std::exchange(other.tail_bytes_, 0);
  tail_claim_ = std::exchange(other.tail_claim_, 0);
  std::copy(other.bytes_, other.bytes_ + kNumRegions, bytes_);
  std::fill(other.bytes_, other.bytes_ + kNumRegions, 0);
  return *this;
}

void Arena::Free() {
  if (owned_) AlignedFree(data_);
  data_ = nullptr;
  capacity_ = 0;
  owned_ = false;
}

Status Arena::Create(size_t capacity, Arena* out) {
  return Create(capacity, ArenaOptions(), out);
}

Status Arena::Create(size_t capacity, const ArenaOptions& options, Arena* out) {
  if (capacity == 0) {
    return InvalidArgument("Arena::Create: capacity is 0 bytes; an arena needs at least one byte");
  }
  void* block = AlignedAlloc(capacity);
  if (block == nullptr) {
    return ResourceExhausted("Arena::Create: the system could not provide %zu bytes", capacity);
  }
  Arena arena;
  arena.data_ = static_cast<unsigned char*>(block);
  arena.capacity_ = capacity;
  arena.owned_ = true;
  if (options.prefault) arena.Prefault();
  *out = std::move(arena);
  return Status::Ok();
}

Status Arena::Wrap(void* block, size_t capacity, Arena* out) {
  if (block == nullptr || capacity == 0) {
    return InvalidArgument("Arena::Wrap: the block is empty (%p, %zu bytes)", block, capacity);
  }
  if (capacity > kMaxBytes) {
    return InvalidArgument("Arena::Wrap: %zu bytes is more than any block can hold", capacity);
  }
  if (!IsAligned(block)) {
    return InvalidArgument(
        "Arena::Wrap: the block at %p is not %zu-byte aligned; declare it alignas(%zu)",
        block, kAlignment, kAlignment);
  }
  Arena arena;
  arena.data_ = static_cast<unsigned char*>(block);
  arena.capacity_ = capacity;
  *out = std::move(arena);
  return Status::Ok();
}

void Arena::Prefault() { PrefaultMemory(data_, capacity_); }

MemoryReport Arena::Report() const {
  MemoryReport report;
  std::copy(bytes_, bytes_ + kNumRegions, report.bytes);
  report.capacity = capacity_;
  report.high_water = high_water_;
  return report;
}

void Arena::SetPersistent(size_t end, const size_t (&bytes)[kNumPersistentRegions]) {
  THAW_CHECK(end <= capacity_ && end % kAlignment == 0);
  MakeRoom(end);
  persistent_end_ = end;
  std::copy(bytes, bytes + kNumPersistentRegions, bytes_);
  persistent_gradients_ = bytes[static_cast<int>(Region::kGradients)];
  ResetTransient();
  high_water_ = std::max(high_water_, end + tail_bytes_);
}

bool Arena::ClaimPersistent(uint64_t owner) {
  if (persistent_owner_ != 0 && persistent_owner_ != owner) return false;
  persistent_owner_ = owner;
  return true;
}

void Arena::ReleasePersistent(uint64_t owner) {
  if (owner == 0 || persistent_owner_ != owner) return;
  persistent_owner_ = 0;
  persistent_end_ = 0;
  persistent_gradients_ = 0;
  std::fill(bytes_, bytes_ + kNumPersistentRegions, 0);
}

Arena::Mark Arena::mark() const {
  return Mark{transient_top_, bytes(Region::kActivations), bytes(Region::kScratch)};
}

void Arena::Release(const Mark& mark) {
  THAW_CHECK(mark.top >= persistent_end_ && mark.top <= transient_top_);
  transient_top_ = mark.top;
  bytes_[static_cast<int>(Region::kActivations)] = mark.activations;
  bytes_[static_cast<int>(Region::kScratch)] = mark.scratch;
}

void Arena::ResetTransient() { ClaimTransient(0); }

void Arena::ClaimTransient(uint64_t owner) {
  transient_top_ = persistent_end_;
  bytes_[static_cast<int>(Region::kActivations)] = 0;
  bytes_[static_cast<int>(Region::kScratch)] = 0;
  bytes_[static_cast<int>(Region::kGradients)] = persistent_gradients_;
  transient_owner_ = owner;
}

uint64_t Arena::NewOwnerToken() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void* Arena::AllocateTransient(size_t bytes, Region region, size_t alignment) {
  THAW_CHECK(region == Region::kActivations || region == Region::kScratch);
  THAW_CHECK(alignment > 0 && (alignment & (alignment - 1)) == 0 && alignment <= kAlignment);
  if (bytes > capacity_) return nullptr;  // before AlignUp, which would wrap
  const size_t start = AlignUp(transient_top_, alignment);
  const size_t size = AlignUp(bytes, alignment);
  if (start > capacity_ || size > capacity_ - start) return nullptr;
  MakeRoom(start + size);
  void* p = data_ + start;
  bytes_[static_cast<int>(region)] += start + size - transient_top_;
  transient_top_ = start + size;
  high_water_ = std::max(high_water_, transient_top_ + tail_bytes_);
  return p;
}

unsigned char* Arena::ClaimPlanned(uint64_t owner, size_t bytes, size_t activation_bytes,
                                   size_t gradient_bytes) {
  THAW_CHECK(activation_bytes <= bytes && gradient_bytes <= bytes - activation_bytes);
  if (bytes > capacity_ - persistent_end_) return nullptr;
  ClaimTransient(owner);
  MakeRoom(persistent_end_ + bytes);
  transient_top_ = persistent_end_ + bytes;
  bytes_[static_cast<int>(Region::kActivations)] = activation_bytes;
  bytes_[static_cast<int>(Region::kGradients)] = persistent_gradients_ + gradient_bytes;
  bytes_[static_cast<int>(Region::kScratch)] = bytes - activation_bytes - gradient_bytes;
  high_water_ = std::max(high_water_, transient_top_ + tail_bytes_);
  return data_ + persistent_end_;
}

void Arena::MakeRoom(size_t end) {
  if (tail_bytes_ > 0 && end > capacity_ - tail_bytes_) ReleaseTail();
}

uint64_t Arena::ClaimTail(size_t bytes) {
  THAW_CHECK(bytes % kAlignment == 0);
  if (data_ == nullptr || bytes > capacity_ || capacity_ - bytes < transient_top_ ||
      capacity_ - bytes < persistent_end_) {
    return 0;
  }
  tail_bytes_ = bytes;
  bytes_[static_cast<int>(Region::kFeatureCache)] = bytes;
  tail_claim_ = NewOwnerToken();
  high_water_ = std::max(high_water_, transient_top_ + tail_bytes_);
  return tail_claim_;
}

void Arena::ReleaseTail() {
  tail_bytes_ = 0;
  bytes_[static_cast<int>(Region::kFeatureCache)] = 0;
  tail_claim_ = NewOwnerToken();
}

}  // namespace thaw
