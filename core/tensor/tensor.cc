#include "core/tensor/tensor.h"

#include "platform/status.h"

namespace thaw {

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

TensorView::TensorView(float* data, const Shape& shape)
    : data_(data), shape_(shape) {
  size_t stride = 1;
  for (int i = shape.rank() - 1; i >= 0; --i) {
    strides_[i] = stride;
    stride *= shape.dim(i);
  }
}

TensorView::TensorView(float* data, const Shape& shape, const size_t* strides)
    : data_(data), shape_(shape) {
  for (int i = 0; i < shape.rank(); ++i) strides_[i] = strides[i];
}

bool TensorView::is_contiguous() const {
  size_t stride = 1;
  for (int i = shape_.rank() - 1; i >= 0; --i) {
    if (shape_.dim(i) != 1 && strides_[i] != stride) return false;
    stride *= shape_.dim(i);
  }
  return true;
}

}  // namespace thaw
