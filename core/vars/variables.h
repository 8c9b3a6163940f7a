// thaw/core/vars/variables.h — variables, their freeze bitmap, and the
// persistent memory plan.
//
//   thaw::VariableSet vars(&arena);
//   thaw::Variable w;
//   THAW_RETURN_IF_ERROR(vars.Create("dense_0.weight", {128, 784}, /*trainable=*/true, &w));
//   THAW_RETURN_IF_ERROR(w.set_trainable(false));  // freeze: a bit flip
//   thaw::MemoryReport plan = vars.PlannedBytes();  // what the next step will hold
//
// Like tf.Variable(trainable=...), with TensorFlow's semantics made exact:
//  - a frozen variable has no gradient buffer and no optimizer state at all;
//    its gradient() is absent (an empty view), never a zero tensor;
//  - set_trainable() takes effect at the next step (the next GradientTape):
//    the memory plan is rebuilt then, automatically; no recompile;
//  - optimizer state of variables that stay trainable survives the re-plan,
//    newly thawed variables start from zero state and step count 0.
//
// Two roles: a parameter has a trainable bit and is what optimizers learn; a
// statistic (BatchNormalization's running mean and variance) is never
// trainable, is updated by its op in training mode, and is saved in
// checkpoints like any variable.
//
// One bit per variable says trainable or frozen. The planner reads the bitmap
// and lists, for the arena's persistent part, every value (weights region)
// and, for trainable parameters only, one gradient buffer (gradients region;
// none when the attached optimizer updates in the backward pass, whose step
// plans its gradients: core/exec/program.h) and the optimizer's state
// buffers (optimizer state region): one MemoryPlan
// (core/memory/plan.h) that sizes, checks, places and reports them. Buffers
// are 64-byte aligned, so a variable of n floats takes AlignUp(4 n, 64) bytes
// per buffer.
#ifndef THAW_CORE_VARS_VARIABLES_H_
#define THAW_CORE_VARS_VARIABLES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/memory/arena.h"
#include "core/memory/plan.h"
#include "core/tensor/tensor.h"
#include "platform/span.h"
#include "platform/status.h"

namespace thaw {

class VariableSet;

// One bit per variable.
class Bitmap {
 public:
  size_t size() const { return size_; }
  bool Test(size_t i) const { return (words_[i / 64] >> (i % 64)) & 1; }
  void Set(size_t i, bool value);
  size_t Count() const;
  void Resize(size_t size);  // new bits are 0
  void Reserve(size_t size) { words_.reserve((size + 63) / 64); }
  bool operator==(const Bitmap& other) const;
  bool operator!=(const Bitmap& other) const { return !(*this == other); }

 private:
  std::vector<uint64_t> words_;
  size_t size_ = 0;
};

enum class VariableRole : uint8_t {
  kParameter,  // learned when trainable
  kStatistic,  // never trainable; its op updates it in training mode
};

// Optimizer state buffers per trainable variable, at most (Adam: 2).
inline constexpr int kMaxOptimizerSlots = 2;

// How a variable is written to files when not as it is held: checkpoints
// follow PyTorch's state_dict, while thaw holds some tensors in the layout
// its kernels want (a convolution's kernel [KH, KW, Cin, Cout] is PyTorch's
// [Cout, Cin, KH, KW]), and BatchNorm's count is an int64 there.
struct FileFormat {
  bool permuted = false;
  // Held axis i is file axis axes[i]; the file's shape has the same rank.
  int8_t axes[kMaxRank] = {0, 1, 2, 3, 4};
  bool int64 = false;  // the file holds int64 (the values are small counts)
};

// A cheap handle to one variable of a VariableSet, valid while the set lives.
class Variable {
 public:
  Variable() = default;
  bool valid() const { return set_ != nullptr; }
  VariableSet* set() const { return set_; }
  int index() const { return index_; }

  const std::string& name() const;
  const Shape& shape() const;
  VariableRole role() const;
  // The value, in the arena's weights region.
  TensorView value() const;
  // The value of a one-element variable.
  float scalar() const;
  bool trainable() const;
  // Takes effect at the next step; see VariableSet::SetTrainable.
  Status set_trainable(bool trainable) const;
  // The gradient buffer, which exists only while the variable is trainable in
  // the current plan; absent (empty view) for a frozen variable, and for
  // every variable while the attached optimizer updates in the backward pass
  // (its gradients live in the step's plan and are gone after the step).
  TensorView gradient() const;

  bool operator==(const Variable& o) const { return set_ == o.set_ && index_ == o.index_; }
  bool operator!=(const Variable& o) const { return !(*this == o); }

 private:
  friend class VariableSet;
  Variable(VariableSet* set, int index) : set_(set), index_(index) {}
  VariableSet* set_ = nullptr;
  int index_ = -1;
};

class VariableSet {
 public:
  // The set lays out its persistent memory in `arena`, which must outlive it
  // and which it uses alone: while it holds variables, creating one in
  // another set on the same arena is refused (FailedPrecondition). A set
  // made without an arena (nullptr) only sizes: it records variables and
  // plans them (PersistentPlan, PlannedBytes) but holds no values and never
  // prepares a step (Model::PlanMemory uses one before Build).
  explicit VariableSet(Arena* arena);
  ~VariableSet();  // hands the arena's persistent part back
  VariableSet(const VariableSet&) = delete;
  VariableSet& operator=(const VariableSet&) = delete;

  // Creates a zero-filled parameter. Names are unique. Fails, changing
  // nothing, when the name is taken or empty, the shape has a zero dimension,
  // or the arena cannot hold the value (the message names bytes needed and
  // free).
  Status Create(const std::string& name, const Shape& shape, bool trainable,
                Variable* out);
  // Creates a zero-filled statistic (never trainable), as Create.
  Status CreateStatistic(const std::string& name, const Shape& shape,
                         Variable* out);
  // Creates a frozen parameter that reads its value in place from `values`
  // (shape.num_elements() floats, 4-byte aligned, e.g. a checkpoint in flash
  // or an mmapped file), which must stay valid and unchanged while the set
  // lives or until the variable is thawed. It takes no arena bytes and is
  // never written: Assign refuses it, and thawing it copies the value into
  // the arena at the next Prepare (ResourceExhausted, changing nothing, when
  // it does not fit), after which it is an ordinary variable.
  Status CreateInPlace(const std::string& name, const Shape& shape, const float* values,
                       Variable* out);
  // Whether variable `index` reads its value in place (CreateInPlace, not
  // thawed since).
  bool in_place(int index) const { return records_[index].in_place != nullptr; }
  // Creates a one-element variable holding `value`, like tf.Variable(2.0).
  Status CreateScalar(const std::string& name, float value, bool trainable,
                      Variable* out);
  // Copies values into the variable; the length must match.
  // FailedPrecondition for a variable read in place.
  Status Assign(Variable variable, Span<const float> values);

  // The file format (default: as held). Set by the layer that declares the
  // variable, before anything is saved or loaded.
  void SetFileFormat(Variable variable, const FileFormat& format);
  const FileFormat& file_format(int index) const;
  // The variable's shape in files.
  Shape FileShape(int index) const;
  // The values in file order (as floats), and back: `values` holds the
  // variable's elements in file order.
  void CopyToFileOrder(int index, float* out) const;
  // The same for any buffer shaped like variable `index` (an optimizer slot):
  // held layout to file layout, and back.
  void ToFileOrder(int index, const float* held, float* out) const;
  void FromFileOrder(int index, const float* file, float* held) const;
  Status AssignFromFileOrder(Variable variable, Span<const float> values);

  int size() const { return static_cast<int>(records_.size()); }
  Variable operator[](int index);
  // The variable called `name`, or an invalid handle.
  Variable Find(const std::string& name);
  // Read-only access by index in [0, size()), for code that holds a const set
  // (saving a checkpoint). The value is contiguous, shape(index).num_elements()
  // floats.
  const std::string& name(int index) const;
  const Shape& shape(int index) const;
  VariableRole role(int index) const;
  const float* value_data(int index) const;

  // Freeze (false) or thaw (true) a parameter. A bit flip; the plan follows
  // at the next step (Prepare); never moves memory by itself. Thawing a
  // statistic is FailedPrecondition (it is never trainable), freezing one
  // is a no-op.
  Status SetTrainable(Variable variable, bool trainable);
  bool trainable(int index) const { return trainable_.Test(index); }

  // How many times variable `index`'s value was set from outside training:
  // Assign, AssignFromFileOrder, a checkpoint or training-state load
  // (NoteEdited), a thaw (training may change it from then on). Optimizer
  // updates and statistics commits do not count. What is computed from
  // frozen values once and kept (Fit's feature cache) compares it between
  // steps; writing a value through value().data() is not seen here (the
  // cache also compares a fingerprint of the values at each Fit).
  uint64_t edits(int index) const { return records_[index].edits; }
  // For code that writes values directly (checkpoint loaders): counts an edit.
  void NoteEdited(int index) { ++records_[index].edits; }
  const Bitmap& trainable_bits() const { return trainable_; }

  // Whether the flags differ from what the current plan holds.
  bool plan_stale() const;
  // Lays out gradient and optimizer-state buffers for the current freeze set,
  // keeping the state of variables that stay trainable. Called at the start of
  // every step; cheap when nothing changed. When the new plan does not fit the
  // arena it returns ResourceExhausted (bytes needed and available) and
  // changes nothing: the old plan, weights and state stay as they were.
  Status Prepare();

  // The persistent plan for `trainable` (one bit per variable; bits of
  // statistics are ignored) with the attached optimizer: every value, in
  // variable order, then for each trainable parameter its gradient and the
  // optimizer's slots (owner = variable index; what = "weight", "gradient",
  // "slot"). Places nothing; valid until the next call. Allocation-free.
  const MemoryPlan& PersistentPlan(const Bitmap& trainable) const;
  // Persistent bytes per region of that plan, and its total.
  MemoryReport PlannedBytes(const Bitmap& trainable) const;
  // The same for the current flags.
  MemoryReport PlannedBytes() const { return PlannedBytes(trainable_); }

  Arena& arena() { return *arena_; }
  const Arena& arena() const { return *arena_; }

  // ---- For optimizers and the tape ----

  // Attaches an optimizer that keeps `slots` state buffers per trainable
  // variable and, unless it updates in the backward pass (gradient_buffers
  // false), a gradient buffer; the next Prepare re-plans, with zero state.
  // Returns an id the optimizer keeps to learn whether it is still the
  // attached one.
  uint64_t AttachOptimizer(int slots, bool gradient_buffers = true);
  uint64_t attached_optimizer() const { return optimizer_id_; }
  int optimizer_slots() const { return slots_; }
  // Whether trainable parameters get persistent gradient buffers with the
  // attached optimizer, and in the current plan.
  bool gradient_buffers() const { return gradient_buffers_; }
  bool planned_gradient_buffers() const { return planned_gradient_buffers_; }
  // The slots the current plan holds (differs until the next Prepare).
  int planned_slots() const { return planned_slots_; }
  // The optimizer (AttachOptimizer id) whose state the current plan holds.
  uint64_t planned_optimizer() const { return planned_optimizer_; }
  // Whether variable `index` has state buffers (and a gradient buffer, with
  // planned_gradient_buffers()) in the current plan.
  bool planned_trainable(int index) const { return planned_.Test(index); }
  float* gradient_data(int index) const;  // with planned_gradient_buffers() only
  float* slot_data(int index, int slot) const;
  // Optimizer steps taken by the variable since it was last thawed.
  uint64_t& steps(int index) { return records_[index].steps; }

 private:
  friend class Variable;
  static constexpr size_t kNone = ~size_t{0};

  struct Record {
    std::string name;
    Shape shape;
    VariableRole role = VariableRole::kParameter;
    FileFormat file;
    size_t value_offset = kNone;  // in the weights region; kNone: not in the arena
    size_t new_value_offset = kNone;  // used while re-planning
    const float* in_place = nullptr;  // the caller's read-only value (CreateInPlace)
    size_t state_offset = kNone;  // gradient (when kept) then the optimizer's slots
    size_t new_state_offset = kNone;  // used while re-planning
    uint64_t steps = 0;
    uint64_t edits = 0;  // see edits()
  };

  Status Add(const std::string& name, const Shape& shape, VariableRole role,
             bool trainable, const float* in_place, Variable* out);
  // The value's bytes in the weights region for `trainable`: none for a
  // variable read in place that stays frozen.
  size_t ValueBytes(int index, const Bitmap& trainable) const;
  size_t BufferBytes(int index) const;
  size_t WeightsEnd() const;
  // Lists the persistent buffers for (trainable, slots, gradient buffers)
  // into *plan, placed.
  void BuildPlan(const Bitmap& trainable, int slots, bool gradients, MemoryPlan* plan) const;
  // Moves to the layout for (trainable, slots, gradient buffers), or fails
  // changing nothing.
  Status Relayout(const Bitmap& trainable, int slots, bool gradients);

  Arena* arena_;
  uint64_t token_;  // this set's claim on the arena's persistent part
  std::vector<Record> records_;
  mutable MemoryPlan plan_;  // PersistentPlan's result, and Relayout's
  Bitmap trainable_;  // what the user asked for
  Bitmap planned_;    // what the arena holds
  int slots_ = 0;
  int planned_slots_ = 0;
  bool gradient_buffers_ = true;
  bool planned_gradient_buffers_ = true;
  uint64_t optimizer_id_ = 0;
  uint64_t planned_optimizer_ = 0;  // the optimizer whose state the arena holds
};

}  // namespace thaw

#endif  // THAW_CORE_VARS_VARIABLES_H_
