#include "core/tensor/shape.h"

#include "core/tensor/dtype.h"
#include "platform/checked.h"
#include "platform/status.h"

namespace thaw {

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kInt32: return "int32";
    case DType::kInt8: return "int8";
  }
  return "?";
}

const char* LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kAny: return "any";
    case Layout::kNHWC: return "NHWC";
  }
  return "?";
}

Shape::Shape(std::initializer_list<size_t> dims) : Shape(dims.begin(), static_cast<int>(dims.size())) {}

Shape::Shape(const size_t* dims, int rank) : rank_(rank) {
  THAW_CHECK(rank >= 0 && rank <= kMaxRank);
  for (int i = 0; i < rank; ++i) dims_[i] = dims[i];
}

size_t Shape::num_elements() const {
  size_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

bool Shape::Bytes(size_t count, size_t element_size, size_t* bytes) const {
  size_t n = element_size;
  if (!CheckedMul(n, count, &n)) return false;
  for (int i = 0; i < rank_; ++i) {
    if (!CheckedMul(n, dims_[i], &n)) return false;
  }
  if (n > kMaxBytes) return false;
  *bytes = n;
  return true;
}

Shape Shape::WithBatch(size_t batch) const {
  THAW_CHECK(rank_ < kMaxRank);  // callers check ranks when shapes are inferred
  size_t dims[kMaxRank] = {batch};
  for (int i = 0; i < rank_; ++i) dims[i + 1] = dims_[i];
  return Shape(dims, rank_ + 1);
}

Shape Shape::WithoutBatch() const {
  THAW_CHECK(rank_ > 0);
  return Shape(dims_ + 1, rank_ - 1);
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i) {
    if (dims_[i] != other.dims_[i]) return false;
  }
  return true;
}

std::string Shape::ToString() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i) {
    if (i > 0) s += ',';
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

}  // namespace thaw
