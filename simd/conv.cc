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

// Calls f(r, n, oh, ow) for rows [r0, r0 + rows) of the patch matrix, the
// pixel's coordinates stepped rather than divided out per row.
template <class F>
void ForPixels(const ConvShape& s, size_t r0, size_t rows, const F& f) {
  const size_t plane = s.out_h * s.out_w;
  size_t n = r0 / plane, oh = r0 % plane / s.out_w, ow = r0 % s.out_w;
  for (size_t r = 0; r < rows; ++r) {
    f(r, n, oh, ow);
    if (++ow == s.out_w) {
      ow = 0;
      if (++oh == s.out_h) {
        oh = 0;
        ++n;
      }
    }
  }
}

// n floats from src to dst: short runs (few input channels) in a loop, which
// beats a call to memcpy several times over for 1 to 12 floats.
inline void CopyRun(const float* src, float* dst, size_t n) {
  if (n < 16) {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    std::memcpy(dst, src, n * sizeof(float));
  }
}

// Rows [r0, r0 + rows) of the patch matrix into tile[rows, K]. A kernel row
// whose taps are all inside is one contiguous run of KW * Cin floats in x.
void GatherPatches(const float* x, const ConvShape& s, size_t r0, size_t rows, float* tile) {
  const size_t cin = s.in_c, k = s.patch(), run = s.kernel_w * cin;
  ForPixels(s, r0, rows, [&](size_t r, size_t n, size_t oh, size_t ow) {
    float* dst = tile + r * k;
    const long left = static_cast<long>(ow * s.stride_w) - static_cast<long>(s.pad_left);
    const bool inside_w = left >= 0 && left + static_cast<long>(s.kernel_w) <= static_cast<long>(s.in_w);
    for (size_t kh = 0; kh < s.kernel_h; ++kh, dst += run) {
      const long ih = static_cast<long>(oh * s.stride_h + kh) - static_cast<long>(s.pad_top);
      if (ih < 0 || ih >= static_cast<long>(s.in_h)) {
        std::fill(dst, dst + run, 0.0f);
        continue;
      }
      const float* row = x + (n * s.in_h + static_cast<size_t>(ih)) * s.in_w * cin;
      if (inside_w) {
        CopyRun(row + static_cast<size_t>(left) * cin, dst, run);
        continue;
      }
      for (size_t kw = 0; kw < s.kernel_w; ++kw) {
        const long iw = left + static_cast<long>(kw);
        float* tap = dst + kw * cin;
        if (iw < 0 || iw >= static_cast<long>(s.in_w)) {
          std::fill(tap, tap + cin, 0.0f);
        } else {
          CopyRun(row + static_cast<size_t>(iw) * cin, tap, cin);
        }
      }
    }
  });
}

// dx += the patch gradients tile[rows, K] of rows [r0, r0 + rows), in row
// and tap order.
void ScatterPatches(const float* tile, const ConvShape& s, size_t r0, size_t rows, float* dx) {
  const size_t cin = s.in_c, k = s.patch();
  ThreadPool& serial = ThreadPool::Serial();
  ForPixels(s, r0, rows, [&](size_t r, size_t n, size_t oh, size_t ow) {
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
  });
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
