// thaw/simd/spatial.h — direct spatial kernels over NHWC batches: depthwise
// convolution, pooling and narrow-input convolution, vectorised over
// channels (contiguous in NHWC).
//
//   simd::ConvShape s;  // in_c == out_c; kernel_* the filter or pool size
//   simd::DepthwiseForward(x, w, y, s, pool, epilogue);   // w [KH, KW, C]
//   simd::MaxPoolForward(x, y, s, pool);
//
// Shapes use simd::ConvShape (simd/conv.h) with in_c == out_c; taps that fall
// in the padding are skipped (pooling never sees them; average pooling
// divides by the taps inside the input, as TensorFlow's "same" pooling).
//
// Threads and bits: forward passes split output rows, backward passes
// gather each input pixel's contributions in a fixed (kh, kw) order and split
// input rows, and the depthwise weight gradient splits channel groups: the
// bits never depend on the thread count. Depthwise sums use MulAdd (fused on
// FMA targets), so they differ between targets like GEMM; pooling gives the
// same bits everywhere. Each kernel has a reference in simd/scalar.h.
#ifndef THAW_SIMD_SPATIAL_H_
#define THAW_SIMD_SPATIAL_H_

#include <cstddef>

#include "platform/threads.h"
#include "simd/conv.h"
#include "simd/gemm.h"

namespace thaw {
namespace simd {

// A convolution with few input channels (an image network's first layer;
// simd/conv.h's shape and layouts), computed directly: per output pixel and
// vector of output channels, the taps inside the image in (kh, kw, ci)
// order, then the epilogue. simd::ConvForward and ConvBackward use these
// for in_c <= 4, where patches of a few floats starve the packed GEMM.
void DirectConvForward(const float* x, const float* w, float* y, const ConvShape& s,
                       ThreadPool& pool, const GemmEpilogue& epilogue = GemmEpilogue());
// dw (overwritten) = patches^T dy: sums over up to 8 groups of consecutive
// output pixels (pixel order within a group, fixed by the shape), added in
// group order. Scratch: DirectConvWeightScratchFloats floats, 64-byte aligned.
size_t DirectConvWeightScratchFloats(const ConvShape& s);
void DirectConvWeightGradient(const float* x, const float* dy, float* dw, const ConvShape& s,
                              float* scratch, ThreadPool& pool);

// y[n, oh, ow, c] = f(sum over taps of x[n, ih, iw, c] w[kh, kw, c] + bias[c])
// with the epilogue's bias and activation.
void DepthwiseForward(const float* x, const float* w, float* y, const ConvShape& s,
                      ThreadPool& pool, const GemmEpilogue& epilogue = GemmEpilogue());
// dx (when not null, overwritten) and dw (when not null, overwritten) from
// dy, for the depthwise convolution above without its epilogue. dw sums
// every image in order, in chunks of kDepthwiseChannelChunk channels; with
// one chunk (up to 64 channels), in DepthwiseWeightGroups(s) groups of
// consecutive images, added in group order (fixed by the shape: the bits do
// not depend on the thread count). Scratch: DepthwiseBackwardScratchFloats.
inline constexpr size_t kDepthwiseChannelChunk = 64;
inline constexpr size_t kDepthwiseMaxImageGroups = 4;
size_t DepthwiseWeightGroups(const ConvShape& s);
size_t DepthwiseBackwardScratchFloats(const ConvShape& s, bool dw);
void DepthwiseBackward(const float* x, const float* w, const float* dy, float* dx, float* dw,
                       const ConvShape& s, float* scratch, ThreadPool& pool);

// y = the largest tap of each window.
void MaxPoolForward(const float* x, float* y, const ConvShape& s, ThreadPool& pool);
// The activation that produced a max pooling's input x, when MaxPoolBackward
// is to apply its derivative too (ReLU and ReLU6: a function of x, the same
// for every tap that holds a window's maximum).
enum class PoolMask { kNone, kRelu, kRelu6 };
// dx (overwritten): each window's dy goes to its first largest tap (the
// first in (kh, kw) order equal to y); with a mask, times the activation's
// derivative there: the gradient at the activation's input, with the bits
// of ReluBackward / Relu6Backward applied to dx afterwards.
void MaxPoolBackward(const float* x, const float* y, const float* dy, float* dx,
                     const ConvShape& s, ThreadPool& pool, PoolMask mask = PoolMask::kNone);
// y = the mean of each window's taps inside the input.
void AvgPoolForward(const float* x, float* y, const ConvShape& s, ThreadPool& pool);
// dx (overwritten): each window's dy / taps to each of its taps.
void AvgPoolBackward(const float* dy, float* dx, const ConvShape& s, ThreadPool& pool);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_SPATIAL_H_
