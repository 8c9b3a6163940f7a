// thaw/core/tensor/dtype.h — element types and memory layouts of tensors.
//
//   thaw::DTypeSize(thaw::DType::kFloat32)   // 4
//   thaw::LayoutName(thaw::Layout::kNHWC)    // "NHWC"
//
// Every variable and activation is float32 today; labels are int32, and int8
// is reserved for quantised weights. The layout says what the axes mean:
// kAny is a plain row-major array ([batch, features], a matrix), kNHWC an
// image batch [batch, height, width, channels] (per example [H, W, C]).
#ifndef THAW_CORE_TENSOR_DTYPE_H_
#define THAW_CORE_TENSOR_DTYPE_H_

#include <cstddef>
#include <cstdint>

namespace thaw {

enum class DType : uint8_t { kFloat32, kInt32, kInt8 };

constexpr size_t DTypeSize(DType dtype) {
  return dtype == DType::kInt8 ? 1 : 4;
}
const char* DTypeName(DType dtype);  // "float32", "int32", "int8"

enum class Layout : uint8_t { kAny, kNHWC };
const char* LayoutName(Layout layout);  // "any", "NHWC"

}  // namespace thaw

#endif  // THAW_CORE_TENSOR_DTYPE_H_
