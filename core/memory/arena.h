// thaw/core/memory/arena.h — the one fixed block of memory thaw runs in.
//
//   alignas(64) static unsigned char block[256 * 1024];   // firmware: a static array
//   thaw::Arena arena;
//   thaw::Status s = thaw::Arena::Wrap(block, sizeof(block), &arena);
//   // ... or thaw::Arena::Create(256 * 1024, &arena) to let thaw own the block.
//   arena.Prefault();   // optional: map its pages now rather than in the first step
//   std::printf("%s", arena.Report().ToString().c_str());
//
// Layout, bottom to top:
//   [ persistent: weights | gradients + optimizer state ][ transient: activations, scratch -> ]  [ <- tail ]
// The persistent part is laid out by the variable set's plan
// (core/vars/variables.h), which knows the freeze set. The transient part
// holds one step: a model's step claims it whole for its planned buffers
// (ClaimPlanned, core/exec/program.h); a GradientTape, which cannot plan
// ahead, fills it as a bump region. The next step resets it. Every buffer is
// 64-byte aligned. The tail, at the top of the block, holds bytes that
// outlive steps but may be given up (a model's feature cache: core/api/
// model.h): whoever needs them for weights, state or a step takes them, and
// the tail's claim number changes, so its owner can tell its bytes are gone
// (a cache is then recomputed or not used; never read stale). The arena
// never touches the heap after Create, and never moves or frees what it holds
// on its own: a request that does not fit returns nullptr (and the caller a
// Status naming bytes needed and free), leaving everything in place.
#ifndef THAW_CORE_MEMORY_ARENA_H_
#define THAW_CORE_MEMORY_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "platform/memory.h"
#include "platform/status.h"

namespace thaw {

enum class Region : int {
  kWeights = 0,     // every variable's value (persistent)
  kGradients,       // one buffer per trainable variable (persistent), or, when
                    // the optimizer updates in the backward pass, the step's
                    // parameter gradients alive at once (transient)
  kOptimizerState,  // momentum / Adam moments per trainable variable (persistent)
  kActivations,     // forward values kept for the backward pass (transient)
  kScratch,         // temporaries of the backward pass and kernels (transient)
  kFeatureCache,    // Fit's frozen-prefix features, kept across steps (the tail)
};
inline constexpr int kNumRegions = 6;
inline constexpr int kNumPersistentRegions = 3;
const char* RegionName(Region region);

// Bytes per region at one moment, plus the arena's size and high-water mark.
struct MemoryReport {
  size_t bytes[kNumRegions] = {};
  size_t capacity = 0;
  size_t high_water = 0;

  size_t operator[](Region r) const { return bytes[static_cast<int>(r)]; }
  size_t total() const;
  // A small table, one line per region, for logs and examples.
  std::string ToString() const;
};

struct ArenaOptions {
  // Fault every page of the block in at Create (Arena::Prefault) instead of
  // one at a time when a step first writes it, so that the first step runs
  // about as fast as the later ones. Measured (bench/results/cold_start.md,
  // MLP 784-256-128-10, Adam, batch 32, a 4 MiB arena for its 3.9 MB): the
  // first step's CPU time falls from 3.4 to 1.3 ms and Create's rises from
  // 0.02 to 2.1 ms; to the end of the first step, 0.6 ms less in all. Off
  // by default because that is a move more than a saving, and because it
  // maps every page of the block: with 16 MiB for the same model it costs
  // 5.8 ms more than it saves.
  bool prefault = false;
};

class Arena {
 public:
  Arena() = default;  // no memory: capacity() == 0
  ~Arena();
  Arena(Arena&& other) noexcept;
  Arena& operator=(Arena&& other) noexcept;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // An arena that owns a new block of `capacity` bytes.
  static Status Create(size_t capacity, Arena* out);
  static Status Create(size_t capacity, const ArenaOptions& options, Arena* out);
  // An arena over the caller's block, which must be 64-byte aligned and outlive
  // the arena. thaw never frees it.
  static Status Wrap(void* block, size_t capacity, Arena* out);

  unsigned char* data() const { return data_; }
  size_t capacity() const { return capacity_; }
  size_t used() const { return transient_top_; }
  size_t free_bytes() const { return capacity_ - transient_top_; }
  size_t high_water() const { return high_water_; }
  size_t bytes(Region region) const { return bytes_[static_cast<int>(region)]; }
  MemoryReport Report() const;
  // Faults in every page of the block now, keeping what it holds
  // (PrefaultMemory, platform/memory.h): for a block given to Wrap (a static
  // array is mapped on first write too), or an arena created without
  // ArenaOptions::prefault. Setup-time only, like Create.
  void Prefault();

  // ---- For thaw's planners; users do not need these. ----

  // Declares [0, end) persistent, holding the given bytes of weights,
  // gradients and optimizer state (for the report), and empties the transient
  // part. The caller has checked that end <= capacity().
  void SetPersistent(size_t end, const size_t (&bytes)[kNumPersistentRegions]);
  size_t persistent_end() const { return persistent_end_; }
  // One variable set per arena: a second one would place its weights over
  // the first one's. ClaimPersistent is true when the persistent part is
  // free or already `owner`'s (it then belongs to `owner`); the owner's
  // ReleasePersistent (when it is destroyed) empties it for the next one.
  bool ClaimPersistent(uint64_t owner);
  void ReleasePersistent(uint64_t owner);

  // A position in the transient part to return to.
  struct Mark {
    size_t top = 0;
    size_t activations = 0;
    size_t scratch = 0;
  };
  Mark mark() const;
  void Release(const Mark& mark);  // frees everything allocated after `mark`
  void ResetTransient();           // frees the whole transient part
  // Frees the transient part and records who fills it now, so that a user of
  // transient memory (a tape) can tell when someone else has taken it over.
  void ClaimTransient(uint64_t owner);
  uint64_t transient_owner() const { return transient_owner_; }
  // A process-unique, non-zero owner token.
  static uint64_t NewOwnerToken();

  // `bytes` from the transient part, counted under `region` (kActivations or
  // kScratch), aligned to `alignment` (a power of two; 64 for anything a
  // kernel reads). nullptr when it does not fit. (The tape's bump
  // allocation: it cannot plan ahead.)
  void* AllocateTransient(size_t bytes, Region region,
                          size_t alignment = kAlignment);
  // Claims the transient part for `owner` (as ClaimTransient) and hands out
  // one planned block of `bytes` at its bottom, of which `activation_bytes`
  // are counted as activations, `gradient_bytes` as gradients (added to the
  // persistent ones: a step that updates in the backward pass plans its
  // parameters' gradients, core/exec/program.h) and the rest as scratch
  // (see core/memory/plan.h). nullptr, changing nothing, when it does not fit.
  unsigned char* ClaimPlanned(uint64_t owner, size_t bytes, size_t activation_bytes,
                              size_t gradient_bytes = 0);

  // The tail: `bytes` (a multiple of kAlignment) at the top of the block,
  // counted as the feature cache, kept until released or taken: a
  // SetPersistent, AllocateTransient or ClaimPlanned that needs them gets
  // them (the tail is then empty). Returns the claim's number (tail_claim()
  // stays equal to it while the bytes are the claimant's), or 0, changing
  // nothing, when the bytes do not fit above the persistent part and the
  // transient part as it is now. The tail starts at capacity() - tail_bytes().
  uint64_t ClaimTail(size_t bytes);
  void ReleaseTail();
  size_t tail_bytes() const { return tail_bytes_; }
  unsigned char* tail() const { return data_ + capacity_ - tail_bytes_; }
  uint64_t tail_claim() const { return tail_claim_; }

 private:
  void Free();
  // Gives the tail up when [0, end) reaches into it.
  void MakeRoom(size_t end);

  unsigned char* data_ = nullptr;
  size_t capacity_ = 0;
  bool owned_ = false;
  size_t persistent_end_ = 0;
  size_t persistent_gradients_ = 0;  // bytes_[kGradients] without a step's
  size_t transient_top_ = 0;
  size_t high_water_ = 0;
  uint64_t transient_owner_ = 0;
  uint64_t persistent_owner_ = 0;
  size_t tail_bytes_ = 0;
  uint64_t tail_claim_ = 0;  // changes on every claim and release
  size_t bytes_[kNumRegions] = {};
};

}  // namespace thaw

#endif  // THAW_CORE_MEMORY_ARENA_H_
