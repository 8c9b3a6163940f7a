// thaw/core/tensor/tensor.h — shapes and non-owning float32 tensor views.
//
//   float data[6] = {1, 2, 3, 4, 5, 6};
//   thaw::TensorView m(data, {2, 3});   // row-major 2 x 3, contiguous
//   float x = m.at(1, 2);               // 6
//
// A TensorView never owns memory: it points into an Arena (weights, gradients,
// activations) or into a caller's buffer, and is valid as long as that memory
// is. Up to 4 dimensions; strides are in elements.
#ifndef THAW_CORE_TENSOR_TENSOR_H_
#define THAW_CORE_TENSOR_TENSOR_H_

#include <cstddef>
#include <initializer_list>
#include <string>

namespace thaw {

inline constexpr int kMaxRank = 4;

class Shape {
 public:
  Shape() = default;  // rank 0: a scalar with one element
  Shape(std::initializer_list<size_t> dims);  // aborts on more than kMaxRank dims
  Shape(const size_t* dims, int rank);

  int rank() const { return rank_; }
  size_t dim(int i) const { return dims_[i]; }
  size_t operator[](int i) const { return dims_[i]; }
  size_t num_elements() const;
  bool operator==(const Shape& other) const;
  bool operator!=(const Shape& other) const { return !(*this == other); }
  // "[2,3]"; "[]" for a scalar. For messages only (allocates).
  std::string ToString() const;

 private:
  int rank_ = 0;
  size_t dims_[kMaxRank] = {1, 1, 1, 1};
};

class TensorView {
 public:
  TensorView() = default;  // empty: data() == nullptr, "absent"
  // Contiguous row-major view.
  TensorView(float* data, const Shape& shape);
  // Strided view: element (i0, i1, ...) at data[i0*strides[0] + i1*strides[1] + ...].
  TensorView(float* data, const Shape& shape, const size_t* strides);

  float* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  size_t stride(int i) const { return strides_[i]; }
  size_t num_elements() const { return shape_.num_elements(); }
  // False for the empty view, which stands for an absent gradient.
  bool present() const { return data_ != nullptr; }
  explicit operator bool() const { return present(); }
  bool is_contiguous() const;

  float& at(size_t i0) const { return data_[i0 * strides_[0]]; }
  float& at(size_t i0, size_t i1) const {
    return data_[i0 * strides_[0] + i1 * strides_[1]];
  }
  float& at(size_t i0, size_t i1, size_t i2) const {
    return data_[i0 * strides_[0] + i1 * strides_[1] + i2 * strides_[2]];
  }
  float& at(size_t i0, size_t i1, size_t i2, size_t i3) const {
    return data_[i0 * strides_[0] + i1 * strides_[1] + i2 * strides_[2] +
                 i3 * strides_[3]];
  }

 private:
  float* data_ = nullptr;
  Shape shape_;
  size_t strides_[kMaxRank] = {0, 0, 0, 0};
};

}  // namespace thaw

#endif  // THAW_CORE_TENSOR_TENSOR_H_
