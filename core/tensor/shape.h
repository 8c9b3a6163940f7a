// thaw/core/tensor/shape.h — the dimensions of a tensor.
//
//   thaw::Shape image({28, 28, 1});         // one example, H x W x C
//   thaw::Shape batch = image.WithBatch(32);  // [32,28,28,1]
//   size_t n = batch.num_elements();         // 25088
//
// Up to kMaxRank dimensions, row-major (the last dimension is contiguous).
// A Shape is a small value type; it never allocates (ToString does, for
// messages only).
#ifndef THAW_CORE_TENSOR_SHAPE_H_
#define THAW_CORE_TENSOR_SHAPE_H_

#include <cstddef>
#include <initializer_list>
#include <string>

namespace thaw {

// Enough for an NHWC batch and a convolution kernel [out, in, kh, kw], with
// one to spare.
inline constexpr int kMaxRank = 5;

class Shape {
 public:
  Shape() = default;  // rank 0: a scalar with one element
  Shape(std::initializer_list<size_t> dims);  // aborts on more than kMaxRank dims
  Shape(const size_t* dims, int rank);

  int rank() const { return rank_; }
  size_t dim(int i) const { return dims_[i]; }
  size_t operator[](int i) const { return dims_[i]; }
  size_t num_elements() const;
  // The bytes of `count` elements of this shape each `element_size` bytes
  // (count = the batch for a batched value, 1 otherwise), or false when they
  // exceed kMaxBytes (platform/checked.h): num_elements() alone wraps around
  // for dimensions that large. Shapes from callers and files are checked
  // with this before they size anything.
  bool Bytes(size_t count, size_t element_size, size_t* bytes) const;
  // The shape with `batch` prepended ([H,W,C] -> [batch,H,W,C]).
  Shape WithBatch(size_t batch) const;
  // The shape without its first dimension.
  Shape WithoutBatch() const;
  bool operator==(const Shape& other) const;
  bool operator!=(const Shape& other) const { return !(*this == other); }
  // "[2,3]"; "[]" for a scalar. For messages only (allocates).
  std::string ToString() const;

 private:
  int rank_ = 0;
  size_t dims_[kMaxRank] = {};
};

}  // namespace thaw

#endif  // THAW_CORE_TENSOR_SHAPE_H_
