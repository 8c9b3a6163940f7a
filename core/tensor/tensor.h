// thaw/core/tensor/tensor.h — non-owning views of tensors.
//
//   float data[6] = {1, 2, 3, 4, 5, 6};
//   thaw::TensorView m(data, {2, 3});   // row-major 2 x 3 float32, contiguous
//   float x = m.at(1, 2);               // 6
//
// A TensorView never owns memory: it points into an Arena (weights, gradients,
// activations) or into a caller's buffer, and is valid as long as that memory
// is. It carries the element type and layout (core/tensor/dtype.h) and
// strides in elements, so a view can skip rows or pick a column.
#ifndef THAW_CORE_TENSOR_TENSOR_H_
#define THAW_CORE_TENSOR_TENSOR_H_

#include <cstddef>
#include <cstdint>

#include "core/tensor/dtype.h"
#include "core/tensor/shape.h"

namespace thaw {

class TensorView {
 public:
  TensorView() = default;  // empty: raw() == nullptr, "absent"
  // Contiguous row-major float32 view.
  TensorView(float* data, const Shape& shape, Layout layout = Layout::kAny);
  // Strided float32 view: element (i0, i1, ...) at
  // data[i0*strides[0] + i1*strides[1] + ...].
  TensorView(float* data, const Shape& shape, const size_t* strides);
  // Contiguous view of any element type.
  TensorView(void* data, DType dtype, const Shape& shape, Layout layout = Layout::kAny);

  // The float32 elements; aborts on a view of another type.
  float* data() const;
  void* raw() const { return data_; }
  DType dtype() const { return dtype_; }
  Layout layout() const { return layout_; }
  const Shape& shape() const { return shape_; }
  size_t stride(int i) const { return strides_[i]; }
  size_t num_elements() const { return shape_.num_elements(); }
  // False for the empty view, which stands for an absent gradient.
  bool present() const { return data_ != nullptr; }
  explicit operator bool() const { return present(); }
  bool is_contiguous() const;

  float& at(size_t i0) const { return data()[i0 * strides_[0]]; }
  float& at(size_t i0, size_t i1) const {
    return data()[i0 * strides_[0] + i1 * strides_[1]];
  }
  float& at(size_t i0, size_t i1, size_t i2) const {
    return data()[i0 * strides_[0] + i1 * strides_[1] + i2 * strides_[2]];
  }
  float& at(size_t i0, size_t i1, size_t i2, size_t i3) const {
    return data()[i0 * strides_[0] + i1 * strides_[1] + i2 * strides_[2] +
                  i3 * strides_[3]];
  }

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::kFloat32;
  Layout layout_ = Layout::kAny;
  Shape shape_;
  size_t strides_[kMaxRank] = {};
};

// dst = src with its axes permuted: axis i of dst is axis axes[i] of src
// (src has shape `src_shape`, both contiguous row-major). An identity
// permutation copies.
void PermuteAxes(const float* src, const Shape& src_shape, const int8_t* axes, float* dst);

}  // namespace thaw

#endif  // THAW_CORE_TENSOR_TENSOR_H_
