// thaw/simd/spatial-inl.h — per-target loops behind simd/spatial.h.
// Included once per Highway target (toggling guard below).
//
// Every kernel works on a block of channels at a time: whole vectors, then
// the last C % Lanes channels one at a time with a one-lane descriptor, so
// that the same operations (MulAdd included) run on every channel.

#if defined(THAW_SIMD_SPATIAL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_SPATIAL_INL_H_
#undef THAW_SIMD_SPATIAL_INL_H_
#else
#define THAW_SIMD_SPATIAL_INL_H_
#endif

#include <algorithm>
#include <cstddef>

#include "hwy/highway.h"
#include "simd/conv.h"
#include "simd/elementwise-inl.h"
#include "simd/epilogue-inl.h"
#include "simd/ieee-inl.h"
#include "simd/spatial.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace spatial {

// Calls block(d, j) for channel blocks covering [j0, j1): full vectors of
// ScalableTag<float>, then single lanes.
template <class Block>
HWY_INLINE void ForChannels(size_t j0, size_t j1, const Block& block) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const size_t N = hn::Lanes(d);
  size_t j = j0;
  for (; j + N <= j1; j += N) block(d, j);
  for (; j < j1; ++j) block(d1, j);
}

// The input pixel of tap (kh, kw) of output pixel (oh, ow), if inside.
HWY_INLINE bool Tap(const simd::ConvShape& s, size_t oh, size_t ow, size_t kh, size_t kw,
                    size_t* ih, size_t* iw) {
  const size_t h = oh * s.stride_h + kh, w = ow * s.stride_w + kw;
  if (h < s.pad_top || w < s.pad_left) return false;
  *ih = h - s.pad_top;
  *iw = w - s.pad_left;
  return *ih < s.in_h && *iw < s.in_w;
}

// The output pixel whose tap (kh, kw) is input pixel (ih, iw), if any.
HWY_INLINE bool Window(const simd::ConvShape& s, size_t ih, size_t iw, size_t kh, size_t kw,
                       size_t* oh, size_t* ow) {
  const size_t h = ih + s.pad_top, w = iw + s.pad_left;
  if (h < kh || w < kw || (h - kh) % s.stride_h != 0 || (w - kw) % s.stride_w != 0) return false;
  *oh = (h - kh) / s.stride_h;
  *ow = (w - kw) / s.stride_w;
  return *oh < s.out_h && *ow < s.out_w;
}

HWY_INLINE size_t InOffset(const simd::ConvShape& s, size_t n, size_t h, size_t w) {
  return ((n * s.in_h + h) * s.in_w + w) * s.in_c;
}
HWY_INLINE size_t OutOffset(const simd::ConvShape& s, size_t n, size_t h, size_t w) {
  return ((n * s.out_h + h) * s.out_w + w) * s.in_c;
}

// The taps k in [*lo, *hi) of output o that fall inside [0, extent) along
// one axis: 0 <= o * stride + k - pad < extent.
HWY_INLINE void TapRange(size_t o, size_t stride, size_t pad, size_t kernel, size_t extent,
                         size_t* lo, size_t* hi) {
  const long start = static_cast<long>(o * stride) - static_cast<long>(pad);
  *lo = start < 0 ? std::min(kernel, static_cast<size_t>(-start)) : 0;
  const long end = static_cast<long>(extent) - start;  // k < end
  *hi = end <= 0 ? 0 : std::min(kernel, static_cast<size_t>(end));
  if (*hi < *lo) *hi = *lo;
}

// The outputs o in [*lo, *hi) (of `out`) whose tap k falls inside
// [0, extent) along one axis.
HWY_INLINE void OutputRange(size_t k, size_t stride, size_t pad, size_t extent, size_t out,
                            size_t* lo, size_t* hi) {
  *lo = *hi = 0;
  if (extent + pad <= k) return;
  *lo = k >= pad ? 0 : (pad - k + stride - 1) / stride;
  *hi = std::min(out, (extent - 1 + pad - k) / stride + 1);
  if (*hi < *lo) *hi = *lo;
}

// The outputs [*lo, *hi) along one axis whose windows read input i:
// o * stride <= i + pad < o * stride + kernel, o < out.
HWY_INLINE void WindowsOf(size_t i, size_t stride, size_t pad, size_t kernel, size_t out,
                          size_t* lo, size_t* hi) {
  const size_t h = i + pad;
  *hi = std::min(out, h / stride + 1);
  *lo = h + 1 > kernel ? (h + 1 - kernel + stride - 1) / stride : 0;
  if (*lo > *hi) *lo = *hi;
}

}  // namespace spatial

// Whether outputs [ow, ow + count) of a row all have every kw tap inside.
HWY_INLINE bool FullWidth(const simd::ConvShape& s, size_t ow, size_t count) {
  return ow * s.stride_w >= s.pad_left &&
         (ow + count - 1) * s.stride_w - s.pad_left + s.kernel_w <= s.in_w;
}

// Output rows [q0, q1) (a row is one (n, oh)) of a convolution with few
// input channels (w [KH, KW, Cin, Cout]): per output pixel and vector of
// output channels, x broadcast against the weight rows of the taps inside,
// in (kh, kw, ci) order. Eight or four pixels whose taps are all inside go
// together, independent sums (the same order per pixel, so the same bits).
// Each sum goes through the epilogue e (null: none) as it is stored.
HWY_INLINE void DirectConvForwardRows(const float* x, const float* w, float* y,
                                      const simd::ConvShape& s, size_t q0, size_t q1,
                                      const simd::GemmEpilogue* e) {
  const size_t cin = s.in_c, cout = s.out_c, step = s.stride_w * cin;
  for (size_t q = q0; q < q1; ++q) {
    const size_t n = q / s.out_h, oh = q % s.out_h;
    size_t kh0, kh1;
    spatial::TapRange(oh, s.stride_h, s.pad_top, s.kernel_h, s.in_h, &kh0, &kh1);
    const size_t ih0 = oh * s.stride_h - s.pad_top;  // wraps; ih0 + kh is inside
    for (size_t ow = 0; ow < s.out_w;) {
      float* out = y + ((n * s.out_h + oh) * s.out_w + ow) * cout;
      const size_t iw0 = ow * s.stride_w - s.pad_left;
      // 8 (else 4) pixels: 8 independent sums keep both FMA pipes busy
      // (4 left half of an AVX3 core idle on the first layer's 3x3x1 taps).
      const size_t group = ow + 8 <= s.out_w && FullWidth(s, ow, 8)   ? 8
                           : ow + 4 <= s.out_w && FullWidth(s, ow, 4) ? 4
                                                                       : 1;
      if (group > 1) {
        spatial::ForChannels(0, cout, [&](auto d, size_t j) HWY_ATTR {
          auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
          for (size_t kh = kh0; kh < kh1; ++kh) {
            const float* px = x + ((n * s.in_h + ih0 + kh) * s.in_w + iw0) * cin;
            const float* wk = w + kh * s.kernel_w * cin * cout + j;
            for (size_t t = 0; t < s.kernel_w * cin; ++t) {
              const auto wv = hn::LoadU(d, wk + t * cout);
              a0 = hn::MulAdd(hn::Set(d, px[t]), wv, a0);
              a1 = hn::MulAdd(hn::Set(d, px[t + step]), wv, a1);
              a2 = hn::MulAdd(hn::Set(d, px[t + 2 * step]), wv, a2);
              a3 = hn::MulAdd(hn::Set(d, px[t + 3 * step]), wv, a3);
              if (group == 8) {
                a4 = hn::MulAdd(hn::Set(d, px[t + 4 * step]), wv, a4);
                a5 = hn::MulAdd(hn::Set(d, px[t + 5 * step]), wv, a5);
                a6 = hn::MulAdd(hn::Set(d, px[t + 6 * step]), wv, a6);
                a7 = hn::MulAdd(hn::Set(d, px[t + 7 * step]), wv, a7);
              }
            }
          }
          StoreThrough(d, e, a0, j, out + j);
          StoreThrough(d, e, a1, j, out + cout + j);
          StoreThrough(d, e, a2, j, out + 2 * cout + j);
          StoreThrough(d, e, a3, j, out + 3 * cout + j);
          if (group == 8) {
            StoreThrough(d, e, a4, j, out + 4 * cout + j);
            StoreThrough(d, e, a5, j, out + 5 * cout + j);
            StoreThrough(d, e, a6, j, out + 6 * cout + j);
            StoreThrough(d, e, a7, j, out + 7 * cout + j);
          }
        });
        ow += group;
        continue;
      }
      size_t kw0, kw1;
      spatial::TapRange(ow, s.stride_w, s.pad_left, s.kernel_w, s.in_w, &kw0, &kw1);
      spatial::ForChannels(0, cout, [&](auto d, size_t j) HWY_ATTR {
        auto acc = hn::Zero(d);
        for (size_t kh = kh0; kh < kh1; ++kh) {
          const float* px = x + ((n * s.in_h + ih0 + kh) * s.in_w + iw0 + kw0) * cin;
          const float* wk = w + ((kh * s.kernel_w + kw0) * cin) * cout + j;
          for (size_t t = 0; t < (kw1 - kw0) * cin; ++t) {
            acc = hn::MulAdd(hn::Set(d, px[t]), hn::LoadU(d, wk + t * cout), acc);
          }
        }
        StoreThrough(d, e, acc, j, out + j);
      });
      ++ow;
    }
  }
}

// Rows of dw per pass over the pixels: K = 9 (3x3x1) in one pass, 9 sums
// in flight (two passes of 4 and 5 waited on the FMA latency).
constexpr size_t kDirectWeightRows = 12;

// Rows [t0, t0 + count) (count <= kDirectWeightRows) of dw[K, Cout],
// channels [j, j + lanes): each row's sum over output pixels [p0, p1), in
// pixel order, of x at that row's tap times the pixel's dy, in registers
// from the first pixel to the last (a tap outside the input adds nothing).
template <class D>
HWY_INLINE void DirectConvWeightRows(D d, const float* x, const float* dy, float* dw,
                                     const simd::ConvShape& s, size_t p0, size_t p1,
                                     size_t t0, size_t count, size_t j) {
  const size_t cin = s.in_c, cout = s.out_c;
  // Each row's tap (kh, kw) and its offset in x from the window's corner.
  size_t kh[kDirectWeightRows] = {}, kw[kDirectWeightRows] = {};
  long offset[kDirectWeightRows] = {};
  for (size_t i = 0; i < count; ++i) {
    const size_t t = t0 + i;
    kh[i] = t / (s.kernel_w * cin);
    kw[i] = t / cin % s.kernel_w;
    offset[i] = static_cast<long>((kh[i] * s.in_w + kw[i]) * cin + t % cin);
  }
  using V = hn::Vec<D>;
  V a0 = hn::LoadU(d, dw + t0 * cout + j), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
    a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
  if (count > 1) a1 = hn::LoadU(d, dw + (t0 + 1) * cout + j);
  if (count > 2) a2 = hn::LoadU(d, dw + (t0 + 2) * cout + j);
  if (count > 3) a3 = hn::LoadU(d, dw + (t0 + 3) * cout + j);
  if (count > 4) a4 = hn::LoadU(d, dw + (t0 + 4) * cout + j);
  if (count > 5) a5 = hn::LoadU(d, dw + (t0 + 5) * cout + j);
  if (count > 6) a6 = hn::LoadU(d, dw + (t0 + 6) * cout + j);
  if (count > 7) a7 = hn::LoadU(d, dw + (t0 + 7) * cout + j);
  if (count > 8) a8 = hn::LoadU(d, dw + (t0 + 8) * cout + j);
  if (count > 9) a9 = hn::LoadU(d, dw + (t0 + 9) * cout + j);
  if (count > 10) a10 = hn::LoadU(d, dw + (t0 + 10) * cout + j);
  if (count > 11) a11 = hn::LoadU(d, dw + (t0 + 11) * cout + j);
  const long in_h = static_cast<long>(s.in_h), in_w = static_cast<long>(s.in_w);
  const size_t plane = s.out_h * s.out_w, step = s.stride_w * cin;
  // Outputs [lo, hi) of a row have every kw tap inside: the first tap from
  // lo on, the last before hi (hi < lo: none).
  size_t lo, hi, unused;
  spatial::OutputRange(0, s.stride_w, s.pad_left, s.in_w, s.out_w, &lo, &unused);
  spatial::OutputRange(s.kernel_w - 1, s.stride_w, s.pad_left, s.in_w, s.out_w, &unused, &hi);
  for (size_t p = p0; p < p1;) {
    // The rest of output row (n, oh) from ow, within [p0, p1).
    const size_t n = p / plane, oh = p % plane / s.out_w, ow = p % s.out_w;
    const size_t end = std::min(p1, p - ow + s.out_w);
    const long ih = static_cast<long>(oh * s.stride_h) - static_cast<long>(s.pad_top);
    const long row = (static_cast<long>(n) * in_h + ih) * in_w;  // pixel index of (n, ih, 0)
    // Outputs of the row with a tap outside the input: each tap checked.
    auto edges = [&](size_t o, size_t stop) HWY_ATTR {
      for (size_t q = p + (o - ow); o < stop; ++o, ++q) {
        const long iw = static_cast<long>(o * s.stride_w) - static_cast<long>(s.pad_left);
        const V g = hn::LoadU(d, dy + q * cout + j);
        auto tap = [&](V a, size_t i) HWY_ATTR {
          const long h = ih + static_cast<long>(kh[i]), w = iw + static_cast<long>(kw[i]);
          if (h < 0 || w < 0 || h >= in_h || w >= in_w) return a;
          return hn::MulAdd(hn::Set(d, x[(row + iw) * static_cast<long>(cin) + offset[i]]), g, a);
        };
        a0 = tap(a0, 0);
        if (count > 1) a1 = tap(a1, 1);
        if (count > 2) a2 = tap(a2, 2);
        if (count > 3) a3 = tap(a3, 3);
        if (count > 4) a4 = tap(a4, 4);
        if (count > 5) a5 = tap(a5, 5);
        if (count > 6) a6 = tap(a6, 6);
        if (count > 7) a7 = tap(a7, 7);
        if (count > 8) a8 = tap(a8, 8);
        if (count > 9) a9 = tap(a9, 9);
        if (count > 10) a10 = tap(a10, 10);
        if (count > 11) a11 = tap(a11, 11);
      }
    };
    // Outputs [inside_lo, inside_hi) of the segment have every tap inside.
    const size_t stop = ow + (end - p);
    size_t inside_lo = stop, inside_hi = stop;
    if (ih >= 0 && ih + static_cast<long>(s.kernel_h) <= in_h) {
      inside_lo = std::min(std::max(ow, lo), stop);
      inside_hi = std::min(std::max(inside_lo, hi), stop);
    }
    edges(ow, inside_lo);
    if (inside_lo < inside_hi) {  // the window's corner steps along the row
      const float* px = x + (row + static_cast<long>(inside_lo * s.stride_w) -
                             static_cast<long>(s.pad_left)) * static_cast<long>(cin);
      const float* g_row = dy + (p + (inside_lo - ow)) * cout + j;
      for (size_t o = inside_lo; o < inside_hi; ++o, px += step, g_row += cout) {
        const V g = hn::LoadU(d, g_row);
        a0 = hn::MulAdd(hn::Set(d, px[offset[0]]), g, a0);
        if (count > 1) a1 = hn::MulAdd(hn::Set(d, px[offset[1]]), g, a1);
        if (count > 2) a2 = hn::MulAdd(hn::Set(d, px[offset[2]]), g, a2);
        if (count > 3) a3 = hn::MulAdd(hn::Set(d, px[offset[3]]), g, a3);
        if (count > 4) a4 = hn::MulAdd(hn::Set(d, px[offset[4]]), g, a4);
        if (count > 5) a5 = hn::MulAdd(hn::Set(d, px[offset[5]]), g, a5);
        if (count > 6) a6 = hn::MulAdd(hn::Set(d, px[offset[6]]), g, a6);
        if (count > 7) a7 = hn::MulAdd(hn::Set(d, px[offset[7]]), g, a7);
        if (count > 8) a8 = hn::MulAdd(hn::Set(d, px[offset[8]]), g, a8);
        if (count > 9) a9 = hn::MulAdd(hn::Set(d, px[offset[9]]), g, a9);
        if (count > 10) a10 = hn::MulAdd(hn::Set(d, px[offset[10]]), g, a10);
        if (count > 11) a11 = hn::MulAdd(hn::Set(d, px[offset[11]]), g, a11);
      }
    }
    edges(inside_hi, stop);
    p = end;
  }
  hn::StoreU(a0, d, dw + t0 * cout + j);
  if (count > 1) hn::StoreU(a1, d, dw + (t0 + 1) * cout + j);
  if (count > 2) hn::StoreU(a2, d, dw + (t0 + 2) * cout + j);
  if (count > 3) hn::StoreU(a3, d, dw + (t0 + 3) * cout + j);
  if (count > 4) hn::StoreU(a4, d, dw + (t0 + 4) * cout + j);
  if (count > 5) hn::StoreU(a5, d, dw + (t0 + 5) * cout + j);
  if (count > 6) hn::StoreU(a6, d, dw + (t0 + 6) * cout + j);
  if (count > 7) hn::StoreU(a7, d, dw + (t0 + 7) * cout + j);
  if (count > 8) hn::StoreU(a8, d, dw + (t0 + 8) * cout + j);
  if (count > 9) hn::StoreU(a9, d, dw + (t0 + 9) * cout + j);
  if (count > 10) hn::StoreU(a10, d, dw + (t0 + 10) * cout + j);
  if (count > 11) hn::StoreU(a11, d, dw + (t0 + 11) * cout + j);
}

// Output pixels [p0, p1) of the same convolution, in order: dw[K, Cout] +=
// x at each tap inside times the pixel's dy row. The rows of dw in blocks of
// at most kDirectWeightRows (K = 9 in one), each block's sums held in
// registers over all the pixels, the same additions in the same order as
// one pixel at a time. Added into memory four pixels at a time instead,
// each sum waited on its own store: the reference CNN's first layer
// (28x28x1 -> 16, batch 32) took 290 us on one Intel AVX3 core, 170 us in
// blocks of 8 rows.
HWY_INLINE void DirectConvWeightPixels(const float* x, const float* dy, float* dw,
                                       const simd::ConvShape& s, size_t p0, size_t p1) {
  const size_t k = s.patch(), blocks = (k + kDirectWeightRows - 1) / kDirectWeightRows;
  spatial::ForChannels(0, s.out_c, [&](auto d, size_t j) HWY_ATTR {
    for (size_t b = 0; b < blocks; ++b) {
      const size_t t0 = b * k / blocks, t1 = (b + 1) * k / blocks;
      DirectConvWeightRows(d, x, dy, dw, s, p0, p1, t0, t1 - t0, j);
    }
  });
}

// Output rows [q0, q1) (a row is one (n, oh)): y = sum over taps x * w,
// through the epilogue e (null: none) as it is stored.
HWY_INLINE void DepthwiseForwardRows(const float* x, const float* w, float* y,
                                     const simd::ConvShape& s, size_t q0, size_t q1,
                                     const simd::GemmEpilogue* e) {
  for (size_t q = q0; q < q1; ++q) {
    const size_t n = q / s.out_h, oh = q % s.out_h;
    size_t kh0, kh1;
    spatial::TapRange(oh, s.stride_h, s.pad_top, s.kernel_h, s.in_h, &kh0, &kh1);
    for (size_t ow = 0; ow < s.out_w; ++ow) {
      size_t kw0, kw1;
      spatial::TapRange(ow, s.stride_w, s.pad_left, s.kernel_w, s.in_w, &kw0, &kw1);
      const size_t ih0 = oh * s.stride_h - s.pad_top, iw0 = ow * s.stride_w - s.pad_left;
      float* out = y + spatial::OutOffset(s, n, oh, ow);
      spatial::ForChannels(0, s.in_c, [&](auto d, size_t j) HWY_ATTR {
        auto acc = hn::Zero(d);
        for (size_t kh = kh0; kh < kh1; ++kh) {
          // Unsigned wrap-around cancels: ih0 + kh is inside.
          const float* px = x + spatial::InOffset(s, n, ih0 + kh, iw0 + kw0) + j;
          const float* wk = w + (kh * s.kernel_w + kw0) * s.in_c + j;
          for (size_t kw = kw0; kw < kw1; ++kw, px += s.in_c, wk += s.in_c) {
            acc = hn::MulAdd(hn::LoadU(d, px), hn::LoadU(d, wk), acc);
          }
        }
        StoreThrough(d, e, acc, j, out + j);
      });
    }
  }
}

// Input rows [q0, q1) (one (n, ih) each): dx = sum over the windows that
// read the pixel, in (kh, kw) order, of dy * w, in registers per channel
// vector. The windows come from the pixel's coordinates (WindowsOf: output
// rows and columns descending is taps ascending), not from a test of every
// tap, and are summed in registers, not into dx tap by tap (each add then
// waited on the previous tap's store): 20% of the MobileNet-style step on
// AVX3 before.
HWY_INLINE void DepthwiseBackwardInputRows(const float* w, const float* dy, float* dx,
                                           const simd::ConvShape& s, size_t q0, size_t q1) {
  for (size_t q = q0; q < q1; ++q) {
    const size_t n = q / s.in_h, ih = q % s.in_h;
    size_t oh0, oh1;
    spatial::WindowsOf(ih, s.stride_h, s.pad_top, s.kernel_h, s.out_h, &oh0, &oh1);
    for (size_t iw = 0; iw < s.in_w; ++iw) {
      size_t ow0, ow1;
      spatial::WindowsOf(iw, s.stride_w, s.pad_left, s.kernel_w, s.out_w, &ow0, &ow1);
      float* out = dx + spatial::InOffset(s, n, ih, iw);
      spatial::ForChannels(0, s.in_c, [&](auto d, size_t j) HWY_ATTR {
        auto acc = hn::Zero(d);
        for (size_t oh = oh1; oh-- > oh0;) {
          const size_t kh = ih + s.pad_top - oh * s.stride_h;
          for (size_t ow = ow1; ow-- > ow0;) {
            const size_t kw = iw + s.pad_left - ow * s.stride_w;
            acc = hn::MulAdd(hn::LoadU(d, dy + spatial::OutOffset(s, n, oh, ow) + j),
                             hn::LoadU(d, w + (kh * s.kernel_w + kw) * s.in_c + j), acc);
          }
        }
        hn::StoreU(acc, d, out + j);
      });
    }
  }
}

// Channels [j0, j1): dw[kh, kw, c] = sum over all output pixels, in order,
// of dy * x at the tap.
HWY_INLINE void DepthwiseBackwardWeightChannels(const float* x, const float* dy, float* dw,
                                                const simd::ConvShape& s, size_t j0, size_t j1) {
  for (size_t kh = 0; kh < s.kernel_h; ++kh) {
    for (size_t kw = 0; kw < s.kernel_w; ++kw) {
      float* out = dw + (kh * s.kernel_w + kw) * s.in_c;
      // The outputs whose tap (kh, kw) is inside, row by row in order.
      size_t oh0, oh1, ow0, ow1;
      spatial::OutputRange(kh, s.stride_h, s.pad_top, s.in_h, s.out_h, &oh0, &oh1);
      spatial::OutputRange(kw, s.stride_w, s.pad_left, s.in_w, s.out_w, &ow0, &ow1);
      // Four sums in flight (one waited on its own MulAdd, pixel after
      // pixel): output column ow0 + i of every row goes to sum i % 4; the
      // four are added pairwise at the end.
      const size_t c = s.in_c, step = s.stride_w * c;
      spatial::ForChannels(j0, j1, [&](auto d, size_t j) HWY_ATTR {
        auto acc0 = hn::Zero(d), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (size_t n = 0; n < s.batch; ++n) {
          for (size_t oh = oh0; oh < oh1; ++oh) {
            const size_t ih = oh * s.stride_h + kh - s.pad_top;
            const float* g = dy + spatial::OutOffset(s, n, oh, ow0) + j;
            const float* px = x + spatial::InOffset(s, n, ih, ow0 * s.stride_w + kw - s.pad_left) + j;
            size_t ow = ow0;
            for (; ow + 4 <= ow1; ow += 4, g += 4 * c, px += 4 * step) {
              acc0 = hn::MulAdd(hn::LoadU(d, g), hn::LoadU(d, px), acc0);
              acc1 = hn::MulAdd(hn::LoadU(d, g + c), hn::LoadU(d, px + step), acc1);
              acc2 = hn::MulAdd(hn::LoadU(d, g + 2 * c), hn::LoadU(d, px + 2 * step), acc2);
              acc3 = hn::MulAdd(hn::LoadU(d, g + 3 * c), hn::LoadU(d, px + 3 * step), acc3);
            }
            if (ow < ow1) acc0 = hn::MulAdd(hn::LoadU(d, g), hn::LoadU(d, px), acc0);
            if (ow + 1 < ow1) acc1 = hn::MulAdd(hn::LoadU(d, g + c), hn::LoadU(d, px + step), acc1);
            if (ow + 2 < ow1) {
              acc2 = hn::MulAdd(hn::LoadU(d, g + 2 * c), hn::LoadU(d, px + 2 * step), acc2);
            }
          }
        }
        hn::StoreU(hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3)), d, out + j);
      });
    }
  }
}

// The maximum so far after the next tap v: v when it is greater or NaN,
// else best (PyTorch's max pooling rule).
template <class V>
HWY_INLINE V PoolMax(V best, V v) {
  return hn::IfThenElse(hn::Or(hn::Gt(v, best), hn::IsNaN(v)), v, best);
}

// Output rows [q0, q1): y = the largest tap (later taps win only when
// strictly greater), or NaN when a tap is NaN, as PyTorch's max pooling.
HWY_INLINE void MaxPoolForwardRows(const float* x, float* y, const simd::ConvShape& s,
                                   size_t q0, size_t q1) {
  const size_t c = s.in_c, row = s.in_w * c;
  for (size_t q = q0; q < q1; ++q) {
    const size_t n = q / s.out_h, oh = q % s.out_h;
    size_t kh0, kh1;
    spatial::TapRange(oh, s.stride_h, s.pad_top, s.kernel_h, s.in_h, &kh0, &kh1);
    // Any window: the first tap inside, (kh0, kw0), starts the maximum (a
    // window always has one); the others follow in (kh, kw) order.
    auto window = [&](size_t ow) HWY_ATTR {
      size_t kw0, kw1;
      spatial::TapRange(ow, s.stride_w, s.pad_left, s.kernel_w, s.in_w, &kw0, &kw1);
      const float* first = x + spatial::InOffset(s, n, oh * s.stride_h + kh0 - s.pad_top,
                                                 ow * s.stride_w + kw0 - s.pad_left);
      float* out = y + spatial::OutOffset(s, n, oh, ow);
      spatial::ForChannels(0, c, [&](auto d, size_t j) HWY_ATTR {
        auto best = hn::LoadU(d, first + j);
        for (size_t kh = kh0; kh < kh1; ++kh) {
          const float* px = first + (kh - kh0) * row + j;
          for (size_t kw = kh == kh0 ? kw0 + 1 : kw0; kw < kw1; ++kw) {
            best = PoolMax(best, hn::LoadU(d, px + (kw - kw0) * c));
          }
        }
        hn::StoreU(best, d, out + j);
      });
    };
    // 2 x 2 windows all inside, columns [lo, hi), run with pointers stepped:
    // the address arithmetic per window cost more than its taps (a
    // 16-channel pooling 1.5x faster).
    size_t lo = s.out_w, hi = s.out_w;
    if (s.kernel_h == 2 && kh0 == 0 && kh1 == 2 && s.kernel_w == 2) {
      for (lo = 0; lo < s.out_w && !FullWidth(s, lo, 1); ++lo) {
      }
      for (hi = lo; hi < s.out_w && FullWidth(s, hi, 1); ++hi) {
      }
    }
    for (size_t ow = 0; ow < lo; ++ow) window(ow);
    if (lo < hi) {
      const float* p = x + spatial::InOffset(s, n, oh * s.stride_h - s.pad_top,
                                             lo * s.stride_w - s.pad_left);
      float* out = y + spatial::OutOffset(s, n, oh, lo);
      for (size_t ow = lo; ow < hi; ++ow, p += s.stride_w * c, out += c) {
        spatial::ForChannels(0, c, [&](auto d, size_t j) HWY_ATTR {
          auto best = hn::LoadU(d, p + j);
          for (const float* tap : {p + c + j, p + row + j, p + row + c + j}) {
            best = PoolMax(best, hn::LoadU(d, tap));
          }
          hn::StoreU(best, d, out + j);
        });
      }
    }
    for (size_t ow = hi; ow < s.out_w; ++ow) window(ow);
  }
}

// A window's dy, times the derivative of the activation that produced the
// pooled input (simd::PoolMask) at the window's maximum `top`.
template <class D, class V>
HWY_INLINE V MaskedDy(D d, simd::PoolMask mask, V top, V dy) {
  switch (mask) {
    case simd::PoolMask::kRelu: return ReluGradient(d, top, dy);
    case simd::PoolMask::kRelu6: return Relu6Gradient(d, top, dy);
    case simd::PoolMask::kNone: break;
  }
  return dy;
}

// Input rows [q0, q1): dx = the sum, over windows that read the pixel, of
// dy where the pixel is the window's first tap equal to its maximum. Windows
// are added in (kh, kw) order, each into dx, so the integer work of finding
// them is done once per pixel rather than once per channel vector.
HWY_INLINE void MaxPoolBackwardInputRows(const float* x, const float* y, const float* dy,
                                         float* dx, const simd::ConvShape& s,
                                         simd::PoolMask mask, size_t q0, size_t q1) {
  for (size_t q = q0; q < q1; ++q) {
    const size_t n = q / s.in_h, ih = q % s.in_h;
    for (size_t iw = 0; iw < s.in_w; ++iw) {
      float* out = dx + spatial::InOffset(s, n, ih, iw);
      const float* mine = x + spatial::InOffset(s, n, ih, iw);
      spatial::ForChannels(0, s.in_c, [&](auto d, size_t j) HWY_ATTR {
        hn::StoreU(hn::Zero(d), d, out + j);
      });
      for (size_t kh = 0; kh < s.kernel_h; ++kh) {
        for (size_t kw = 0; kw < s.kernel_w; ++kw) {
          size_t oh, ow;
          if (!spatial::Window(s, ih, iw, kh, kw, &oh, &ow)) continue;
          const size_t o = spatial::OutOffset(s, n, oh, ow);
          spatial::ForChannels(0, s.in_c, [&](auto d, size_t j) HWY_ATTR {
            const auto top = hn::LoadU(d, y + o + j);
            // Taps of the window before this one that hold the maximum too.
            auto earlier = hn::FirstN(d, 0);  // all false
            for (size_t k = 0; k < kh * s.kernel_w + kw; ++k) {
              size_t eh, ew;
              if (!spatial::Tap(s, oh, ow, k / s.kernel_w, k % s.kernel_w, &eh, &ew)) continue;
              earlier = hn::Or(earlier,
                               hn::Eq(hn::LoadU(d, x + spatial::InOffset(s, n, eh, ew) + j), top));
            }
            const auto wins = hn::AndNot(earlier, hn::Eq(hn::LoadU(d, mine + j), top));
            const auto g = MaskedDy(d, mask, top, hn::LoadU(d, dy + o + j));
            hn::StoreU(hn::Add(hn::LoadU(d, out + j), hn::IfThenElseZero(wins, g)), d, out + j);
          });
        }
      }
    }
  }
}

// Output rows [q0, q1) of a pooling whose windows do not overlap (stride at
// least the window on both axes): each output row owns the input rows from
// its first tap to the next row's, zeroes them (unless the windows tile the
// input exactly) and scatters each window's dy to its first largest tap. Every input pixel is in at most one window, so
// the bits equal MaxPoolBackwardInputRows' (0 + dy or 0 + 0).
HWY_INLINE void MaxPoolBackwardDisjointRows(const float* x, const float* y, const float* dy,
                                            float* dx, const simd::ConvShape& s,
                                            simd::PoolMask mask, size_t q0, size_t q1) {
  const size_t row = s.in_w * s.in_c;
  // Windows that tile the input exactly write every pixel of dx: no zeroing.
  const bool covered = s.stride_h == s.kernel_h && s.stride_w == s.kernel_w && s.pad_top == 0 &&
                       s.pad_left == 0 && s.out_h * s.stride_h == s.in_h &&
                       s.out_w * s.stride_w == s.in_w;
  auto first_row = [&](size_t oh) {
    const size_t h = oh * s.stride_h;
    return oh == 0 ? size_t{0} : std::min(s.in_h, h > s.pad_top ? h - s.pad_top : size_t{0});
  };
  for (size_t q = q0; q < q1; ++q) {
    const size_t n = q / s.out_h, oh = q % s.out_h;
    const size_t end = oh + 1 == s.out_h ? s.in_h : first_row(oh + 1);
    if (!covered) {
      float* rows = dx + spatial::InOffset(s, n, first_row(oh), 0);
      std::fill(rows, rows + (end - first_row(oh)) * row, 0.0f);
    }
    size_t kh0, kh1;
    spatial::TapRange(oh, s.stride_h, s.pad_top, s.kernel_h, s.in_h, &kh0, &kh1);
    const bool two_rows = s.kernel_h == 2 && kh0 == 0 && kh1 == 2;
    for (size_t ow = 0; ow < s.out_w; ++ow) {
      const size_t o = spatial::OutOffset(s, n, oh, ow);
      if (two_rows && s.kernel_w == 2 && FullWidth(s, ow, 1)) {  // 2 x 2, all inside
        const size_t first = spatial::InOffset(s, n, oh * s.stride_h - s.pad_top,
                                               ow * s.stride_w - s.pad_left);
        spatial::ForChannels(0, s.in_c, [&](auto d, size_t j) HWY_ATTR {
          const auto top = hn::LoadU(d, y + o + j);
          const auto g = MaskedDy(d, mask, top, hn::Add(hn::Zero(d), hn::LoadU(d, dy + o + j)));
          auto taken = hn::FirstN(d, 0);  // all false
          for (size_t i : {first, first + s.in_c, first + row, first + row + s.in_c}) {
            const auto wins = hn::AndNot(taken, hn::Eq(hn::LoadU(d, x + i + j), top));
            taken = hn::Or(taken, wins);
            hn::StoreU(hn::IfThenElseZero(wins, g), d, dx + i + j);
          }
        });
        continue;
      }
      size_t kw0, kw1;
      spatial::TapRange(ow, s.stride_w, s.pad_left, s.kernel_w, s.in_w, &kw0, &kw1);
      const size_t first = spatial::InOffset(s, n, oh * s.stride_h + kh0 - s.pad_top,
                                             ow * s.stride_w + kw0 - s.pad_left);
      spatial::ForChannels(0, s.in_c, [&](auto d, size_t j) HWY_ATTR {
        const auto top = hn::LoadU(d, y + o + j);
        const auto g = MaskedDy(d, mask, top, hn::Add(hn::Zero(d), hn::LoadU(d, dy + o + j)));
        auto taken = hn::FirstN(d, 0);  // all false
        for (size_t kh = kh0; kh < kh1; ++kh) {
          for (size_t kw = kw0; kw < kw1; ++kw) {
            const size_t i = first + ((kh - kh0) * s.in_w + (kw - kw0)) * s.in_c + j;
            const auto wins = hn::AndNot(taken, hn::Eq(hn::LoadU(d, x + i), top));
            taken = hn::Or(taken, wins);
            hn::StoreU(hn::IfThenElseZero(wins, g), d, dx + i);
          }
        }
      });
    }
  }
}

// The number of taps of window (oh, ow) inside the input: along each axis,
// the k with 0 <= o * stride + k - pad < extent.
HWY_INLINE size_t Taps(const simd::ConvShape& s, size_t oh, size_t ow) {
  size_t kh0, kh1, kw0, kw1;
  spatial::TapRange(oh, s.stride_h, s.pad_top, s.kernel_h, s.in_h, &kh0, &kh1);
  spatial::TapRange(ow, s.stride_w, s.pad_left, s.kernel_w, s.in_w, &kw0, &kw1);
  return (kh1 - kh0) * (kw1 - kw0);
}

// Output rows [q0, q1): y = (sum of the taps inside) / their number.
HWY_INLINE void AvgPoolForwardRows(const float* x, float* y, const simd::ConvShape& s,
                                   size_t q0, size_t q1) {
  for (size_t q = q0; q < q1; ++q) {
    const size_t n = q / s.out_h, oh = q % s.out_h;
    for (size_t ow = 0; ow < s.out_w; ++ow) {
      float* out = y + spatial::OutOffset(s, n, oh, ow);
      const float count = static_cast<float>(Taps(s, oh, ow));
      spatial::ForChannels(0, s.in_c, [&](auto d, size_t j) HWY_ATTR {
        auto sum = hn::Zero(d);
        for (size_t kh = 0; kh < s.kernel_h; ++kh) {
          for (size_t kw = 0; kw < s.kernel_w; ++kw) {
            size_t ih, iw;
            if (!spatial::Tap(s, oh, ow, kh, kw, &ih, &iw)) continue;
            sum = hn::Add(sum, hn::LoadU(d, x + spatial::InOffset(s, n, ih, iw) + j));
          }
        }
        hn::StoreU(IeeeDiv(d, sum, hn::Set(d, count)), d, out + j);
      });
    }
  }
}

// Input rows [q0, q1): dx = sum over windows reading the pixel of dy / taps,
// added in tap order (kh, then kw, ascending: output rows, then columns,
// descending). The windows come from the pixel's coordinates, not from a
// test of every tap: a global average pooling of 7 x 7 tested 49 taps per
// pixel and channel vector (13% of the MobileNet-style step on AVX3).
HWY_INLINE void AvgPoolBackwardInputRows(const float* dy, float* dx, const simd::ConvShape& s,
                                         size_t q0, size_t q1) {
  for (size_t q = q0; q < q1; ++q) {
    const size_t n = q / s.in_h, ih = q % s.in_h;
    size_t oh0, oh1;
    spatial::WindowsOf(ih, s.stride_h, s.pad_top, s.kernel_h, s.out_h, &oh0, &oh1);
    for (size_t iw = 0; iw < s.in_w; ++iw) {
      size_t ow0, ow1;
      spatial::WindowsOf(iw, s.stride_w, s.pad_left, s.kernel_w, s.out_w, &ow0, &ow1);
      float* out = dx + spatial::InOffset(s, n, ih, iw);
      spatial::ForChannels(0, s.in_c, [&](auto d, size_t j) HWY_ATTR {
        auto acc = hn::Zero(d);
        for (size_t oh = oh1; oh-- > oh0;) {
          for (size_t ow = ow1; ow-- > ow0;) {
            const float count = static_cast<float>(Taps(s, oh, ow));
            acc = hn::Add(acc, IeeeDiv(d, hn::LoadU(d, dy + spatial::OutOffset(s, n, oh, ow) + j),
                                       hn::Set(d, count)));
          }
        }
        hn::StoreU(acc, d, out + j);
      });
    }
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_SPATIAL_INL_H_ (toggle)
