// thaw/simd/conv.h — 2-D convolution of NHWC batches through the packed GEMM.
//
//   simd::ConvShape s;                 // 32 x 28 x 28 x 1 -> 32 x 28 x 28 x 16, 3x3 "same"
//   s.batch = 32; s.in_h = s.in_w = 28; s.in_c = 1;
//   s.out_h = s.out_w = 28; s.out_c = 16; s.kernel_h = s.kernel_w = 3;
//   s.pad_top = s.pad_left = 1;
//   std::vector<float> scratch(simd::ConvForwardScratchFloats(s, pool.num_threads()));
//   simd::ConvForward(x, w, y, s, scratch.data(), pool);   // scratch 64-byte aligned
//
// The convolution is a product: y[M, Cout] = patches[M, K] w[K, Cout], one
// row per output pixel (M = N * OH * OW) and one column per (kh, kw, ci)
// (K = KH * KW * Cin), the weight stored [KH, KW, Cin, Cout] (Keras' kernel
// layout, HWIO). The patch matrix is never built whole. With stride 1 it is
// not built at all: bands of output rows (about 128 KiB of input each) are
// copied with their padding written out as zeros, and the GEMM's
// microkernel reads each kernel row's taps of consecutive outputs in place
// there. With a larger stride (and for the weight gradient) it is gathered
// from the NHWC input a tile of rows at a time (ConvTileRows, about 128 KiB)
// into scratch and multiplied there. Either way scratch stays small for any
// batch. A 1x1 convolution with stride 1 and no padding is the plain
// product on x itself. With at most 4 input channels (an image network's
// first layer) patches of a few floats would starve the GEMM: the forward
// pass and the weight gradient run simd/spatial.h's direct kernels instead
// (no scratch forward).
//
// Threads: with two or more bands or tiles, they run concurrently, each
// task in its own part of the scratch with single-threaded products; a
// single tile runs its product threaded. Backward: dw = patches^T dy summed
// over a fixed number of groups of consecutive tiles (tile order inside a
// group; the groups' sums added in order); with stride 1, dx is the
// forward convolution of dy with the kernel turned half a turn (channels
// swapped, padding K - 1 - pad), threaded like the forward pass; with a
// larger stride, dx = col2im(dy w^T), tile by tile in order. Bands, tiles
// and groups depend only on the shape, and no output element's sum is split
// across threads, so the bits are the same for any thread count. All scratch comes from the
// caller, 64-byte aligned, of the size the *ScratchFloats query gives for
// the same shape and thread count (more threads, more scratch); contents
// need no initialisation. Out-of-range taps (padding) read zeros. Bottom
// and right padding are implied by the output size.
#ifndef THAW_SIMD_CONV_H_
#define THAW_SIMD_CONV_H_

#include <cstddef>

#include "platform/threads.h"
#include "simd/gemm.h"

namespace thaw {
namespace simd {

struct ConvShape {
  size_t batch = 1;
  size_t in_h = 1, in_w = 1, in_c = 1;
  size_t out_h = 1, out_w = 1, out_c = 1;
  size_t kernel_h = 1, kernel_w = 1;
  size_t stride_h = 1, stride_w = 1;
  size_t pad_top = 0, pad_left = 0;

  size_t patch() const { return kernel_h * kernel_w * in_c; }  // K
  size_t pixels() const { return batch * out_h * out_w; }      // M
  // 1x1, stride 1, no padding: the patch matrix is x itself.
  bool pointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 &&
           pad_left == 0 && out_h == in_h && out_w == in_w;
  }
};

// Rows of the patch matrix per tile.
size_t ConvTileRows(const ConvShape& s);

// y[M, Cout] = patches w, then the epilogue (bias per output channel,
// activation) on each finished tile.
size_t ConvForwardScratchFloats(const ConvShape& s, int num_threads);
void ConvForward(const float* x, const float* w, float* y, const ConvShape& s,
                 float* scratch, ThreadPool& pool,
                 const GemmEpilogue& epilogue = GemmEpilogue());

// dw[K, Cout] = patches^T dy (when dw is not null) and dx = the input's
// gradient (when dx is not null; overwritten, not accumulated).
size_t ConvBackwardScratchFloats(const ConvShape& s, bool input_gradient, bool weight_gradient,
                                 int num_threads);
void ConvBackward(const float* x, const float* w, const float* dy, float* dx, float* dw,
                  const ConvShape& s, float* scratch, ThreadPool& pool);

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_CONV_H_
