#include "core/tensor/tensor.h"

#include "platform/status.h"

namespace thaw {

namespace {
void RowMajorStrides(const Shape& shape, size_t* strides) {
  size_t stride = 1;
  for (int i = shape.rank() - 1; i >= 0; --i) {
    strides[i] = stride;
    stride *= shape.dim(i);
  }
}
}  // namespace

TensorView::TensorView(float* data, const Shape& shape, Layout layout)
    : data_(data), layout_(layout), shape_(shape) {
  RowMajorStrides(shape, strides_);
}

TensorView::TensorView(float* data, const Shape& shape, const size_t* strides)
    : data_(data), shape_(shape) {
  for (int i = 0; i < shape.rank(); ++i) strides_[i] = strides[i];
}

TensorView::TensorView(void* data, DType dtype, const Shape& shape, Layout layout)
    : data_(data), dtype_(dtype), layout_(layout), shape_(shape) {
  RowMajorStrides(shape, strides_);
}

float* TensorView::data() const {
  THAW_CHECK(dtype_ == DType::kFloat32);  // int views are read through raw()
  return static_cast<float*>(data_);
}

bool TensorView::is_contiguous() const {
  size_t stride = 1;
  for (int i = shape_.rank() - 1; i >= 0; --i) {
    if (shape_.dim(i) != 1 && strides_[i] != stride) return false;
    stride *= shape_.dim(i);
  }
  return true;
}

void PermuteAxes(const float* src, const Shape& src_shape, const int8_t* axes, float* dst) {
  const int rank = src_shape.rank();
  size_t src_strides[kMaxRank] = {};
  RowMajorStrides(src_shape, src_strides);
  size_t dims[kMaxRank] = {}, strides[kMaxRank] = {};
  for (int i = 0; i < rank; ++i) {
    dims[i] = src_shape[axes[i]];
    strides[i] = src_strides[axes[i]];  // where dst's axis i steps in src
  }
  size_t index[kMaxRank] = {};
  const size_t n = src_shape.num_elements();
  for (size_t k = 0; k < n; ++k) {
    size_t from = 0;
    for (int i = 0; i < rank; ++i) from += index[i] * strides[i];
    dst[k] = src[from];
    for (int i = rank - 1; i >= 0; --i) {  // the next dst index, last axis fastest
      if (++index[i] < dims[i]) break;
      index[i] = 0;
    }
  }
}

}  // namespace thaw
