// thaw/simd/conv.cc — convolution as tiles of the packed GEMM (simd/conv.h).
// No per-target code of its own: the work is Gemm's and Add's.
#include "simd/conv.h"

#include <algorithm>
#include <cstring>

#include "platform/memory.h"
#include "platform/status.h"
#include "simd/elementwise.h"

namespace thaw {
namespace simd {
namespace {

// Floats of scratch rounded up to whole 64-byte lines, so that what follows
// stays aligned.
size_t Lines(size_t floats) { return AlignUp(floats * sizeof(float)) / sizeof(float); }

// The input pixel of tap (kh, kw) for output pixel (oh, ow), or false when
// it falls in the padding.
bool Tap(const ConvShape& s, size_t oh, size_t ow, size_t kh, size_t kw, size_t* ih,
         size_t* iw) {
  const size_t h = oh * s.stride_h + kh, w = ow * s.stride_w + kw;
  if (h < s.pad_top || w < s.pad_left) return false;
  *ih = h - s.pad_top;
  *iw = w - s.pad_left;
  return *ih < s.in_h && *iw < s.in_w;
}

// Rows [r0, r0 + rows) of the patch matrix into tile[rows, K].
void GatherPatches(const float* x, const ConvShape& s, size_t r0, size_t rows, float* tile) {
  const size_t plane = s.out_h * s.out_w, cin = s.in_c, k = s.patch();
  for (size_t r = 0; r < rows; ++r) {
    const size_t pixel = r0 + r, n = pixel / plane, oh = pixel % plane / s.out_w,
                 ow = pixel % s.out_w;
    float* dst = tile + r * k;
    for (size_t kh = 0; kh < s.kernel_h; ++kh) {
      for (size_t kw = 0; kw < s.kernel_w; ++kw, dst += cin) {
        size_t ih, iw;
        if (Tap(s, oh, ow, kh, kw, &ih, &iw)) {
          std::memcpy(dst, x + ((n * s.in_h + ih) * s.in_w + iw) * cin, cin * sizeof(float));
        } else {
          std::memset(dst, 0, cin * sizeof(float));
        }
      }
    }
  }
}

// dx += the patch gradients tile[rows, K] of rows [r0, r0 + rows), in row
// and tap order.
void ScatterPatches(const float* tile, const ConvShape& s, size_t r0, size_t rows, float* dx) {
  const size_t plane = s.out_h * s.out_w, cin = s.in_c, k = s.patch();
  ThreadPool& serial = ThreadPool::Serial();
  for (size_t r = 0; r < rows; ++r) {
    const size_t pixel = r0 + r, n = pixel / plane, oh = pixel % plane / s.out_w,
                 ow = pixel % s.out_w;
    const float* src = tile + r * k;
    for (size_t kh = 0; kh < s.kernel_h; ++kh) {
      for (size_t kw = 0; kw < s.kernel_w; ++kw, src += cin) {
        size_t ih, iw;
        if (!Tap(s, oh, ow, kh, kw, &ih, &iw)) continue;
        float* to = dx + ((n * s.in_h + ih) * s.in_w + iw) * cin;
        if (cin < 16) {  // a dispatched call per tap costs more than the adds
          for (size_t c = 0; c < cin; ++c) to[c] = to[c] + src[c];
        } else {
          Add(to, src, to, cin, serial);
        }
      }
    }
  }
}

}  // namespace

// About 32K floats (128 KiB) of patches per tile, whole 64-row groups, at
// least 64 rows: large enough to thread the product over, small enough to
// stay in L2 while it is packed.
size_t ConvTileRows(const ConvShape& s) {
  const size_t rows = std::max<size_t>(64, 32768 / std::max<size_t>(1, s.patch()) / 64 * 64);
  return std::min(rows, std::max<size_t>(1, s.pixels()));
}

size_t ConvForwardScratchFloats(const ConvShape& s, int threads) {
  if (s.pointwise()) return GemmScratchFloats(s.pixels(), s.out_c, s.in_c, false, false, threads);
  const size_t rows = ConvTileRows(s);
  return Lines(rows * s.patch()) + GemmScratchFloats(rows, s.out_c, s.patch(), false, false, threads);
}

void ConvForward(const float* x, const float* w, float* y, const ConvShape& s, float* scratch,
                 ThreadPool& pool, const GemmEpilogue& epilogue) {
  const size_t m = s.pixels(), k = s.patch(), cout = s.out_c;
  if (s.pointwise()) {
    Gemm(x, k, false, w, cout, false, y, cout, m, cout, k, /*accumulate=*/false, scratch, pool,
         epilogue);
    return;
  }
  const size_t tile_rows = ConvTileRows(s);
  float* tile = scratch;
  float* gemm = scratch + Lines(tile_rows * k);
  for (size_t r0 = 0; r0 < m; r0 += tile_rows) {
    const size_t rows = std::min(tile_rows, m - r0);
    GatherPatches(x, s, r0, rows, tile);
    Gemm(tile, k, false, w, cout, false, y + r0 * cout, cout, rows, cout, k,
         /*accumulate=*/false, gemm, pool, epilogue);
  }
}

size_t ConvBackwardScratchFloats(const ConvShape& s, bool input_gradient, bool weight_gradient,
                                 int threads) {
  const size_t k = s.patch(), cout = s.out_c;
  if (s.pointwise()) {
    size_t floats = 0;
    if (weight_gradient) floats = GemmScratchFloats(k, cout, s.pixels(), true, false, threads);
    if (input_gradient) {
      floats = std::max(floats, GemmScratchFloats(s.pixels(), k, cout, false, true, threads));
    }
    return floats;
  }
  const size_t rows = ConvTileRows(s);
  size_t gemm = 0;
  if (weight_gradient) gemm = GemmScratchFloats(k, cout, rows, true, false, threads);
  if (input_gradient) gemm = std::max(gemm, GemmScratchFloats(rows, k, cout, false, true, threads));
  return Lines(rows * k) + gemm;
}

void ConvBackward(const float* x, const float* w, const float* dy, float* dx, float* dw,
                  const ConvShape& s, float* scratch, ThreadPool& pool) {
  const size_t m = s.pixels(), k = s.patch(), cout = s.out_c;
  if (s.pointwise()) {
    if (dw != nullptr) {  // dw[Cin, Cout] = x^T dy
      Gemm(x, k, true, dy, cout, false, dw, cout, k, cout, m, false, scratch, pool);
    }
    if (dx != nullptr) {  // dx[M, Cin] = dy w^T
      Gemm(dy, cout, false, w, cout, true, dx, k, m, k, cout, false, scratch, pool);
    }
    return;
  }
  const size_t tile_rows = ConvTileRows(s);
  float* tile = scratch;
  float* gemm = scratch + Lines(tile_rows * k);
  if (dx != nullptr) std::memset(dx, 0, s.batch * s.in_h * s.in_w * s.in_c * sizeof(float));
  for (size_t r0 = 0; r0 < m; r0 += tile_rows) {
    const size_t rows = std::min(tile_rows, m - r0);
    const float* dy_tile = dy + r0 * cout;
    if (dw != nullptr) {  // dw[K, Cout] (+)= patches^T dy, tiles in order
      GatherPatches(x, s, r0, rows, tile);
      Gemm(tile, k, true, dy_tile, cout, false, dw, cout, k, cout, rows,
           /*accumulate=*/r0 > 0, gemm, pool);
    }
    if (dx != nullptr) {  // the tile's patch gradients, then into dx
      Gemm(dy_tile, cout, false, w, cout, true, tile, k, rows, k, cout, false, gemm, pool);
      ScatterPatches(tile, s, r0, rows, dx);
    }
  }
}

}  // namespace simd
}  // namespace thaw
