#include "core/vars/variables.h"

#include <cstring>

#include "platform/memory.h"

namespace thaw {

// ---- Bitmap ----

void Bitmap::Set(size_t i, bool value) {
  const uint64_t bit = uint64_t{1} << (i % 64);
  if (value) {
    words_[i / 64] |= bit;
  } else {
    words_[i / 64] &= ~bit;
  }
}

size_t Bitmap::Count() const {
  size_t count = 0;
  for (uint64_t w : words_) count += static_cast<size_t>(__builtin_popcountll(w));
  return count;
}

void Bitmap::Resize(size_t size) {
  words_.resize((size + 63) / 64, 0);
  // Clear bits past the new end so that equal bitmaps compare equal.
  if (size % 64 != 0) words_[size / 64] &= (uint64_t{1} << (size % 64)) - 1;
  size_ = size;
}

bool Bitmap::operator==(const Bitmap& other) const {
  return size_ == other.size_ && words_ == other.words_;
}

// ---- Variable ----

const std::string& Variable::name() const { return set_->records_[index_].name; }
const Shape& Variable::shape() const { return set_->records_[index_].shape; }
VariableRole Variable::role() const { return set_->records_[index_].role; }

TensorView Variable::value() const {
  return TensorView(const_cast<float*>(set_->value_data(index_)), shape());
}

float Variable::scalar() const {
  THAW_CHECK(shape().num_elements() == 1);
  return value().data()[0];
}

bool Variable::trainable() const { return set_->trainable(index_); }

Status Variable::set_trainable(bool trainable) const {
  return set_->SetTrainable(*this, trainable);
}

TensorView Variable::gradient() const {
  if (!set_->trainable(index_) || !set_->planned_trainable(index_) ||
      !set_->planned_gradient_buffers()) {
    return {};
  }
  return TensorView(set_->gradient_data(index_), shape());
}

// ---- VariableSet ----

VariableSet::VariableSet(Arena* arena) : arena_(arena), token_(Arena::NewOwnerToken()) {
  THAW_CHECK(arena == nullptr || arena->data() != nullptr);
}

VariableSet::~VariableSet() {
  if (arena_ != nullptr) arena_->ReleasePersistent(token_);
}

size_t VariableSet::BufferBytes(int index) const {
  return AlignUp(records_[index].shape.num_elements() * sizeof(float));
}

size_t VariableSet::ValueBytes(int index, const Bitmap& trainable) const {
  return records_[index].in_place != nullptr && !trainable.Test(index) ? 0 : BufferBytes(index);
}

size_t VariableSet::WeightsEnd() const {
  for (int i = size() - 1; i >= 0; --i) {
    if (records_[i].value_offset != kNone) return records_[i].value_offset + BufferBytes(i);
  }
  return 0;
}

Status VariableSet::Create(const std::string& name, const Shape& shape,
                           bool trainable, Variable* out) {
  return ResourceExhaustedOnBadAlloc(name.c_str(), [&] {
    return Add(name, shape, VariableRole::kParameter, trainable, nullptr, out);
  });
}

Status VariableSet::CreateStatistic(const std::string& name, const Shape& shape,
                                    Variable* out) {
  return ResourceExhaustedOnBadAlloc(name.c_str(), [&] {
    return Add(name, shape, VariableRole::kStatistic, false, nullptr, out);
  });
}

Status VariableSet::CreateInPlace(const std::string& name, const Shape& shape,
                                  const float* values, Variable* out) {
  if (values == nullptr || reinterpret_cast<uintptr_t>(values) % alignof(float) != 0) {
    return InvalidArgument("%s: values read in place must be %zu-byte aligned floats", name.c_str(),
                           alignof(float));
  }
  return ResourceExhaustedOnBadAlloc(name.c_str(), [&] {
    return Add(name, shape, VariableRole::kParameter, false, values, out);
  });
}

Status VariableSet::Add(const std::string& name, const Shape& shape,
                        VariableRole role, bool trainable, const float* in_place,
                        Variable* out) {
  if (name.empty()) {
    return InvalidArgument("VariableSet::Create: a variable needs a name");
  }
  if (Find(name).valid()) {
    return InvalidArgument("%s: a variable with this name already exists",
                           name.c_str());
  }
  if (arena_ != nullptr && !arena_->ClaimPersistent(token_)) {
    return FailedPrecondition(
        "%s: the arena already holds another model's (variable set's) weights, which this one "
        "would overwrite; give each model its own arena",
        name.c_str());
  }
  size_t bytes;
  if (!shape.Bytes(1, sizeof(float), &bytes)) {
    return InvalidArgument("%s: shape %s has more elements than memory can hold", name.c_str(),
                           shape.ToString().c_str());
  }
  if (bytes == 0) {
    return InvalidArgument("%s: shape %s has no elements", name.c_str(),
                           shape.ToString().c_str());
  }
  bytes = AlignUp(bytes);
  const size_t weights_end = WeightsEnd();
  const size_t state_bytes = arena_ != nullptr ? arena_->persistent_end() - weights_end : 0;
  if (in_place != nullptr) bytes = 0;  // it takes no arena bytes
  if (arena_ != nullptr && weights_end + bytes + state_bytes > arena_->capacity()) {
    return ResourceExhausted(
        "%s: a variable of shape %s needs %zu bytes, but the arena has %zu of "
        "%zu bytes left for it",
        name.c_str(), shape.ToString().c_str(), bytes,
        arena_->capacity() - weights_end - state_bytes, arena_->capacity());
  }
  Record record;
  record.name = name;
  record.shape = shape;
  record.role = role;
  record.in_place = in_place;
  // Every heap allocation first, while the set is unchanged, so that one that
  // throws leaves the set as it was. Room for any plan of this many
  // variables, so that steps never allocate.
  const size_t count = records_.size() + 1;
  if (records_.capacity() < count) records_.reserve(2 * count);
  trainable_.Reserve(count);
  planned_.Reserve(count);
  plan_.Reserve(count * (2 + kMaxOptimizerSlots));
  records_.push_back(std::move(record));
  trainable_.Resize(count);
  planned_.Resize(count);
  trainable_.Set(records_.size() - 1, trainable);
  *out = Variable(this, size() - 1);
  if (arena_ == nullptr) return Status::Ok();  // sizing only
  // Places the new value after the others and moves any planned state up
  // past it; it fits (checked above).
  Status moved = Relayout(planned_, planned_slots_, planned_gradient_buffers_);
  THAW_CHECK(moved.ok());
  if (in_place == nullptr) std::memset(arena_->data() + records_.back().value_offset, 0, bytes);
  return Status::Ok();
}

Status VariableSet::CreateScalar(const std::string& name, float value,
                                 bool trainable, Variable* out) {
  THAW_RETURN_IF_ERROR(Create(name, Shape{1}, trainable, out));
  out->value().data()[0] = value;
  return Status::Ok();
}

Status VariableSet::Assign(Variable variable, Span<const float> values) {
  if (variable.set() != this) {
    return InvalidArgument("Assign: the variable belongs to another VariableSet");
  }
  if (in_place(variable.index())) {
    return FailedPrecondition("%s: its value is read in place from read-only bytes; thaw it "
                              "(and take a step) to give it a value of its own first",
                              variable.name().c_str());
  }
  const TensorView value = variable.value();
  if (values.size() != value.num_elements()) {
    return InvalidArgument("%s: got %zu values, shape %s holds %zu",
                           variable.name().c_str(), values.size(),
                           value.shape().ToString().c_str(), value.num_elements());
  }
  std::memcpy(value.data(), values.data(), values.size() * sizeof(float));
  NoteEdited(variable.index());
  return Status::Ok();
}

void VariableSet::SetFileFormat(Variable variable, const FileFormat& format) {
  THAW_CHECK(variable.set() == this);
  if (format.permuted) {  // a permutation of the held axes
    bool seen[kMaxRank] = {};
    const int rank = variable.shape().rank();
    for (int i = 0; i < rank; ++i) {
      THAW_CHECK(format.axes[i] >= 0 && format.axes[i] < rank && !seen[format.axes[i]]);
      seen[format.axes[i]] = true;
    }
  }
  records_[variable.index()].file = format;
}

const FileFormat& VariableSet::file_format(int index) const {
  THAW_CHECK(index >= 0 && index < size());
  return records_[index].file;
}

// File axis axes[i] has the held axis i's extent.
Shape VariableSet::FileShape(int index) const {
  const Record& r = records_[index];
  if (!r.file.permuted) return r.shape;
  size_t dims[kMaxRank] = {};
  for (int i = 0; i < r.shape.rank(); ++i) dims[r.file.axes[i]] = r.shape[i];
  return Shape(dims, r.shape.rank());
}

void VariableSet::CopyToFileOrder(int index, float* out) const {
  ToFileOrder(index, value_data(index), out);
}

void VariableSet::ToFileOrder(int index, const float* held, float* out) const {
  const Record& r = records_[index];
  if (!r.file.permuted) {
    std::memcpy(out, held, r.shape.num_elements() * sizeof(float));
    return;
  }
  // File axis j is held axis i where axes[i] == j.
  int8_t inverse[kMaxRank] = {};
  for (int i = 0; i < r.shape.rank(); ++i) inverse[r.file.axes[i]] = static_cast<int8_t>(i);
  PermuteAxes(held, r.shape, inverse, out);
}

Status VariableSet::AssignFromFileOrder(Variable variable, Span<const float> values) {
  if (variable.set() != this) {
    return InvalidArgument("AssignFromFileOrder: the variable belongs to another VariableSet");
  }
  const Record& r = records_[variable.index()];
  if (!r.file.permuted || r.in_place != nullptr) return Assign(variable, values);  // refuses in place
  if (values.size() != r.shape.num_elements()) {
    return InvalidArgument("%s: got %zu values, its file shape %s holds %zu", r.name.c_str(),
                           values.size(), FileShape(variable.index()).ToString().c_str(),
                           r.shape.num_elements());
  }
  FromFileOrder(variable.index(), values.data(), variable.value().data());
  NoteEdited(variable.index());
  return Status::Ok();
}

void VariableSet::FromFileOrder(int index, const float* file, float* held) const {
  const Record& r = records_[index];
  if (!r.file.permuted) {
    std::memcpy(held, file, r.shape.num_elements() * sizeof(float));
    return;
  }
  PermuteAxes(file, FileShape(index), r.file.axes, held);
}

Variable VariableSet::operator[](int index) {
  THAW_CHECK(index >= 0 && index < size());
  return Variable(this, index);
}

Variable VariableSet::Find(const std::string& name) {
  for (int i = 0; i < size(); ++i) {
    if (records_[i].name == name) return Variable(this, i);
  }
  return Variable();
}

const std::string& VariableSet::name(int index) const {
  THAW_CHECK(index >= 0 && index < size());
  return records_[index].name;
}

const Shape& VariableSet::shape(int index) const {
  THAW_CHECK(index >= 0 && index < size());
  return records_[index].shape;
}

VariableRole VariableSet::role(int index) const {
  THAW_CHECK(index >= 0 && index < size());
  return records_[index].role;
}

const float* VariableSet::value_data(int index) const {
  THAW_CHECK(index >= 0 && index < size());
  if (records_[index].in_place != nullptr) return records_[index].in_place;
  THAW_CHECK(arena_ != nullptr);  // a sizing set holds no values
  return reinterpret_cast<const float*>(arena_->data() + records_[index].value_offset);
}

Status VariableSet::SetTrainable(Variable variable, bool trainable) {
  if (variable.set() != this) {
    return InvalidArgument("SetTrainable: the variable belongs to another VariableSet");
  }
  if (trainable && variable.role() == VariableRole::kStatistic) {
    return FailedPrecondition(
        "%s is a statistic (its op updates it in training mode), never trainable",
        variable.name().c_str());
  }
  if (trainable && !trainable_.Test(variable.index())) NoteEdited(variable.index());
  trainable_.Set(variable.index(), trainable);
  return Status::Ok();
}

bool VariableSet::plan_stale() const {
  return trainable_ != planned_ || slots_ != planned_slots_ ||
         gradient_buffers_ != planned_gradient_buffers_ || optimizer_id_ != planned_optimizer_;
}

Status VariableSet::Prepare() {
  if (!plan_stale()) return Status::Ok();
  return Relayout(trainable_, slots_, gradient_buffers_);
}

// Without gradient buffers, each trainable parameter's gradient is a zero-byte
// entry: it still marks where the variable's state block starts.
void VariableSet::BuildPlan(const Bitmap& trainable, int slots, bool gradients,
                            MemoryPlan* plan) const {
  THAW_CHECK(trainable.size() == records_.size() && slots <= kMaxOptimizerSlots);
  plan->Clear();
  for (int i = 0; i < size(); ++i) {
    plan->Add(ValueBytes(i, trainable), Region::kWeights, 0, 0, "weight", i);
  }
  for (int i = 0; i < size(); ++i) {
    if (!trainable.Test(i) || records_[i].role != VariableRole::kParameter) continue;
    plan->Add(gradients ? BufferBytes(i) : 0, Region::kGradients, 0, 0, "gradient", i);
    for (int s = 0; s < slots; ++s) {
      plan->Add(BufferBytes(i), Region::kOptimizerState, 0, 0, "slot", i);
    }
  }
  plan->PlaceInOrder();
}

const MemoryPlan& VariableSet::PersistentPlan(const Bitmap& trainable) const {
  BuildPlan(trainable, slots_, gradient_buffers_, &plan_);
  return plan_;
}

MemoryReport VariableSet::PlannedBytes(const Bitmap& trainable) const {
  const MemoryPlan& plan = PersistentPlan(trainable);
  MemoryReport report;
  if (arena_ != nullptr) {
    report.capacity = arena_->capacity();
    report.high_water = arena_->high_water();
  }
  for (int r = 0; r < kNumPersistentRegions; ++r) {
    report.bytes[r] = plan.RegionBytes(static_cast<Region>(r));
  }
  return report;
}

uint64_t VariableSet::AttachOptimizer(int slots, bool gradient_buffers) {
  THAW_CHECK(slots >= 0);
  slots_ = slots;
  gradient_buffers_ = gradient_buffers;
  return ++optimizer_id_;
}

float* VariableSet::gradient_data(int index) const {
  THAW_CHECK(planned_.Test(index) && planned_gradient_buffers_);
  return reinterpret_cast<float*>(arena_->data() + records_[index].state_offset);
}

float* VariableSet::slot_data(int index, int slot) const {
  THAW_CHECK(planned_.Test(index) && slot >= 0 && slot < planned_slots_);
  const int gradient = planned_gradient_buffers_ ? 1 : 0;
  return reinterpret_cast<float*>(arena_->data() + records_[index].state_offset +
                                  (gradient + slot) * BufferBytes(index));
}

// The state of each trainable variable is one block, [gradient | slot 0 | ...]
// (without the gradient when the optimizer updates in the backward pass),
// laid out in variable order right after the values (BuildPlan). Re-planning
// computes the new offsets, checks the fit, then moves what survives: values
// (which move when a variable read in place before them is thawed into the
// arena) and state blocks. Both layouts keep one order, values in variable
// order then state blocks in variable order, so moving the blocks that go
// down in that order and then those that go up in reverse order never
// overwrites a block before it has moved. Values thawed out of place are
// copied in, and new state blocks zeroed, last.
Status VariableSet::Relayout(const Bitmap& trainable, int slots, bool gradients) {
  THAW_CHECK(arena_ != nullptr);  // a sizing set places nothing
  BuildPlan(trainable, slots, gradients, &plan_);
  const size_t top = plan_.total();
  if (top > arena_->capacity()) {
    return ResourceExhausted(
        "the freeze set with %zu trainable of %d variables needs %zu bytes of "
        "persistent memory (weights %zu + gradients %zu + optimizer state %zu), "
        "but the arena holds %zu bytes; nothing was changed: freeze more "
        "variables or give the arena more memory",
        trainable.Count(), size(), top, plan_.RegionBytes(Region::kWeights),
        plan_.RegionBytes(Region::kGradients),
        plan_.RegionBytes(Region::kOptimizerState), arena_->capacity());
  }
  for (Record& r : records_) r.new_value_offset = r.new_state_offset = kNone;
  for (int b = 0; b < plan_.size(); ++b) {
    const PlannedBuffer& buffer = plan_[b];
    Record& r = records_[buffer.owner];
    if (buffer.region == Region::kWeights) {
      if (buffer.bytes > 0) r.new_value_offset = buffer.offset;
    } else if (buffer.region == Region::kGradients) {
      r.new_state_offset = buffer.offset;  // the block starts with the gradient
    }
  }
  unsigned char* base = arena_->data();
  // A newly attached optimizer starts from zero state, even with as many
  // slots as the last one.
  const bool keep_state = slots == planned_slots_ && gradients == planned_gradient_buffers_ &&
                          optimizer_id_ == planned_optimizer_;
  const size_t block_buffers = (gradients ? 1 : 0) + static_cast<size_t>(slots);
  auto survives = [&](const Record& r) {
    return keep_state && r.state_offset != kNone && r.new_state_offset != kNone;
  };
  // Block k < n is variable k's value, block n + k its state.
  const int n = size();
  auto move = [&](int k, bool down) {
    Record& r = records_[k % n];
    size_t from = r.value_offset, to = r.new_value_offset, bytes = BufferBytes(k % n);
    if (k >= n) {
      if (!survives(r)) return;
      from = r.state_offset;
      to = r.new_state_offset;
      bytes *= block_buffers;
    }
    if (from == kNone || to == kNone || (down ? to >= from : to <= from)) return;
    std::memmove(base + to, base + from, bytes);
  };
  for (int k = 0; k < 2 * n; ++k) move(k, /*down=*/true);
  for (int k = 2 * n - 1; k >= 0; --k) move(k, /*down=*/false);
  for (int i = 0; i < n; ++i) {
    Record& r = records_[i];
    if (r.in_place != nullptr && r.new_value_offset != kNone) {  // thawed: now its own
      std::memcpy(base + r.new_value_offset, r.in_place,
                  r.shape.num_elements() * sizeof(float));
      r.in_place = nullptr;
    }
    r.value_offset = r.new_value_offset;
    if (r.new_state_offset != kNone && !survives(r)) {
      std::memset(base + r.new_state_offset, 0, block_buffers * BufferBytes(i));
      r.steps = 0;
    }
    r.state_offset = r.new_state_offset;
  }
  for (int i = 0; i < size(); ++i) planned_.Set(i, records_[i].state_offset != kNone);
  planned_slots_ = slots;
  planned_gradient_buffers_ = gradients;
  planned_optimizer_ = optimizer_id_;
  size_t bytes[kNumPersistentRegions];
  for (int r = 0; r < kNumPersistentRegions; ++r) {
    bytes[r] = plan_.RegionBytes(static_cast<Region>(r));
  }
  arena_->SetPersistent(top, bytes);
  return Status::Ok();
}

}  // namespace thaw
