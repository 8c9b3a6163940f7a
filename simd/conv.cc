// thaw/simd/conv.cc — convolution as tiles of the packed GEMM (simd/conv.h).
// No per-target code of its own: the work is Gemm's, Add's and, for narrow
// inputs, simd/spatial.h's direct kernels.
#include "simd/conv.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "platform/memory.h"
#include "platform/status.h"
#include "simd/elementwise.h"
#include "simd/parallel_chunks.h"
#include "simd/spatial.h"

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
// least 64 rows: large enough for the product to run at speed, small enough
// to stay in L2 (one tile per thread) while it is packed.
size_t ConvTileRows(const ConvShape& s) {
  const size_t rows = std::max<size_t>(64, 32768 / std::max<size_t>(1, s.patch()) / 64 * 64);
  return std::min(rows, std::max<size_t>(1, s.pixels()));
}

namespace {

using internal::DivCeil;

size_t Tiles(const ConvShape& s) { return DivCeil(s.pixels(), ConvTileRows(s)); }

// Tasks that take tiles (or groups of them) concurrently: one per thread, at
// most one per unit of work; 1 runs the units in order with each product
// threaded inside.
size_t Tasks(size_t units, int threads) {
  return units < 2 ? 1 : std::min(units, static_cast<size_t>(std::max(threads, 1)));
}

// The GEMM scratch query(rows) of any tile's product: a full tile's or the
// last, shorter one's (the need is not monotone in the row count).
template <class Q>
size_t AnyTile(const ConvShape& s, const Q& query) {
  const size_t full = ConvTileRows(s), last = s.pixels() - (Tiles(s) - 1) * full;
  return std::max(query(full), query(last));
}

// One task's scratch: a patch tile and the GEMM scratch of one tile's
// product (on one thread when tasks run concurrently).
size_t TaskFloats(const ConvShape& s, size_t gemm_floats) {
  return Lines(ConvTileRows(s) * s.patch()) + Lines(gemm_floats);
}

// Calls f(area, unit, pool) for units [0, units): in order on the caller
// with `pool` when tasks == 1; otherwise on `tasks` tasks of `pool`, task t
// with the scratch area at t * area_floats and a serial pool.
template <class F>
void ForUnits(size_t units, size_t tasks, float* scratch, size_t area_floats, ThreadPool& pool,
              const F& f) {
  if (tasks <= 1) {
    for (size_t u = 0; u < units; ++u) f(scratch, u, pool);
    return;
  }
  std::atomic<size_t> next{0};
  pool.ParallelFor(tasks, [&](size_t task) {
    float* area = scratch + task * area_floats;
    for (size_t u; (u = next.fetch_add(1, std::memory_order_relaxed)) < units;) {
      f(area, u, ThreadPool::Serial());
    }
  });
}

// Stride 1: band by band of output rows, read straight from a zero-padded
// copy of the band's input rows (internal::ConvImage), no patches gathered:
// an input pixel is copied once per band it falls in (a band and the
// kernel_h - 1 rows below it), not once per tap. A band's copy is about
// 128 KiB (kBandFloats; at least one output row), so the scratch stays
// small for any image and batch. Tasks take bands, each in its own copy,
// after W is packed once into the shared panels.
constexpr size_t kBandFloats = 32768;

bool FromImage(const ConvShape& s) { return s.stride_h == 1 && s.stride_w == 1; }

size_t PaddedW(const ConvShape& s) { return s.out_w + s.kernel_w - 1; }

// Output rows per band.
size_t BandRows(const ConvShape& s) {
  const size_t row = PaddedW(s) * s.in_c, halo = s.kernel_h - 1;
  const size_t rows = kBandFloats / row > halo ? kBandFloats / row - halo : 1;
  return std::min(rows, s.out_h);
}

size_t Bands(const ConvShape& s) { return DivCeil(s.out_h, BandRows(s)); }

size_t BandFloats(const ConvShape& s) {
  return Lines(((BandRows(s) + s.kernel_h - 1) * PaddedW(s) + internal::kConvImageSlackPixels) *
               s.in_c);
}

size_t ImageFloats(const ConvShape& s, int threads) {
  return Lines(internal::ConvWeightPanelsFloats(s.patch(), s.out_c)) +
         Tasks(s.batch * Bands(s), threads) * BandFloats(s);
}

// The input that output rows [oh0, oh0 + rows) of image n read: rows +
// kernel_h - 1 rows of PaddedW pixels, zeros where they fall outside the
// input (the padding), then the slack pixels, zeros too.
void PadBand(const float* x, const ConvShape& s, size_t n, size_t oh0, size_t rows,
             float* padded) {
  const size_t cin = s.in_c, row = PaddedW(s) * cin;
  const size_t left = s.pad_left * cin, cols = std::min(s.in_w, PaddedW(s) - s.pad_left) * cin;
  for (size_t r = 0; r < rows + s.kernel_h - 1; ++r, padded += row) {
    const size_t h = oh0 + r;  // + pad_top - pad_top: the input row h - pad_top
    if (h < s.pad_top || h - s.pad_top >= s.in_h) {
      std::fill(padded, padded + row, 0.0f);
      continue;
    }
    std::fill(padded, padded + left, 0.0f);
    std::memcpy(padded + left, x + (n * s.in_h + h - s.pad_top) * s.in_w * cin,
                cols * sizeof(float));
    std::fill(padded + left + cols, padded + row, 0.0f);
  }
  std::fill(padded, padded + internal::kConvImageSlackPixels * cin, 0.0f);
}

void ForwardFromImage(const float* x, const float* w, float* y, const ConvShape& s,
                      float* scratch, ThreadPool& pool, const GemmEpilogue& epilogue) {
  internal::PackConvWeights(w, s.patch(), s.out_c, scratch);
  float* const areas = scratch + Lines(internal::ConvWeightPanelsFloats(s.patch(), s.out_c));
  const size_t bands = Bands(s), band_rows = BandRows(s), units = s.batch * bands;
  ForUnits(units, Tasks(units, pool.num_threads()), areas, BandFloats(s), pool,
           [&](float* padded, size_t unit, ThreadPool&) {
             const size_t n = unit / bands, oh0 = unit % bands * band_rows;
             const size_t rows = std::min(band_rows, s.out_h - oh0);
             PadBand(x, s, n, oh0, rows, padded);
             internal::ConvImage(padded, PaddedW(s), s.in_c, s.kernel_h, s.kernel_w, scratch,
                                 s.out_c, y + ((n * s.out_h + oh0) * s.out_w) * s.out_c, rows,
                                 s.out_w, epilogue);
           });
}

// Forward tiles: y rows [r0, r0 + rows) = patches w, then the epilogue.
size_t ForwardFloats(const ConvShape& s, int threads) {
  if (FromImage(s)) return ImageFloats(s, threads);
  const size_t tasks = Tasks(Tiles(s), threads);
  const int gemm_threads = tasks > 1 ? 1 : threads;
  return tasks * TaskFloats(s, AnyTile(s, [&](size_t rows) {
           return GemmScratchFloats(rows, s.out_c, s.patch(), false, false, gemm_threads);
         }));
}

void Forward(const float* x, const float* w, float* y, const ConvShape& s, float* scratch,
             ThreadPool& pool, const GemmEpilogue& epilogue) {
  if (FromImage(s)) {
    ForwardFromImage(x, w, y, s, scratch, pool, epilogue);
    return;
  }
  const size_t m = s.pixels(), k = s.patch(), cout = s.out_c, tile_rows = ConvTileRows(s);
  const size_t tiles = Tiles(s), tasks = Tasks(tiles, pool.num_threads());
  const size_t area = ForwardFloats(s, pool.num_threads()) / tasks;
  ForUnits(tiles, tasks, scratch, area, pool, [&](float* mine, size_t t, ThreadPool& gemm_pool) {
    const size_t r0 = t * tile_rows, rows = std::min(tile_rows, m - r0);
    float* tile = mine;
    GatherPatches(x, s, r0, rows, tile);
    Gemm(tile, k, false, w, cout, false, y + r0 * cout, cout, rows, cout, k,
         /*accumulate=*/false, mine + Lines(tile_rows * k), gemm_pool, epilogue);
  });
}

// The weight gradient sums `units` (tiles, or bands with stride 1) in a
// fixed number of groups of consecutive units (each in unit order, group 0
// into dw, the others into partial buffers), then adds the partials to dw
// in group order: the groups depend on the shape only, so the bits do not
// depend on the thread count. Scratch: the partials, then `area` floats per
// task.
constexpr size_t kWeightGroups = 4;

size_t GroupedFloats(size_t units, size_t weights, size_t area, int threads) {
  const size_t groups = std::min(units, kWeightGroups);
  return (groups - 1) * Lines(weights) + Tasks(groups, threads) * area;
}

// The GEMM pool of a group's products: the caller's when one task runs them.
int GroupGemmThreads(size_t units, int threads) {
  return Tasks(std::min(units, kWeightGroups), threads) > 1 ? 1 : threads;
}

// Calls f(area, sum, unit, first, gemm_pool) for every unit, `first` for
// the first of its group (then f overwrites `sum`, else adds to it).
template <class F>
void SumInGroups(size_t units, size_t weights, size_t area, float* dw, float* scratch,
                 ThreadPool& pool, const F& f) {
  const size_t groups = std::min(units, kWeightGroups), partial = Lines(weights);
  ForUnits(groups, Tasks(groups, pool.num_threads()), scratch + (groups - 1) * partial, area,
           pool, [&](float* mine, size_t g, ThreadPool& gemm_pool) {
             float* const sum = g == 0 ? dw : scratch + (g - 1) * partial;
             const size_t first = g * units / groups;
             for (size_t u = first; u < (g + 1) * units / groups; ++u) {
               f(mine, sum, u, u == first, gemm_pool);
             }
           });
  for (size_t g = 1; g < groups; ++g) Add(dw, scratch + (g - 1) * partial, dw, weights, pool);
}

// Stride 1: the units are bands (internal::ConvWeightBand), each band's
// input padded as for the forward pass and its dy copied with a row per
// padded column (zeros on the columns past the output's width). Those
// virtual outputs add input * 0 to dw: nothing, unless the input holds an
// infinity or NaN. Then dw is NaN where the true patches give infinity or
// NaN anyway, or a finite sum (only when every dy that reads that input is
// zero), and a training step's check of the gradients refuses it.
size_t VirtualDyFloats(const ConvShape& s) {
  return Lines(BandRows(s) * PaddedW(s) * s.out_c + internal::ConvWeightSlackFloats());
}

size_t BandAreaFloats(const ConvShape& s) { return BandFloats(s) + VirtualDyFloats(s); }

void WeightFromImage(const float* x, const float* dy, float* dw, const ConvShape& s,
                     float* scratch, ThreadPool& pool) {
  const size_t cout = s.out_c, padded_w = PaddedW(s);
  const size_t bands = Bands(s), band_rows = BandRows(s);
  SumInGroups(s.batch * bands, s.patch() * cout, BandAreaFloats(s), dw, scratch, pool,
              [&](float* padded, float* sum, size_t u, bool first, ThreadPool&) {
                float* const dyv = padded + BandFloats(s);
                // The virtual columns stay zero: each band writes the others.
                if (first) std::fill(dyv, dyv + VirtualDyFloats(s), 0.0f);
                const size_t n = u / bands, oh0 = u % bands * band_rows;
                const size_t rows = std::min(band_rows, s.out_h - oh0);
                PadBand(x, s, n, oh0, rows, padded);
                for (size_t r = 0; r < rows; ++r) {
                  std::memcpy(dyv + r * padded_w * cout,
                              dy + ((n * s.out_h + oh0 + r) * s.out_w) * cout,
                              s.out_w * cout * sizeof(float));
                }
                internal::ConvWeightBand(padded, padded_w, s.in_c, s.kernel_h, s.kernel_w, dyv,
                                         cout, rows * padded_w, sum, /*add=*/!first);
              });
}

// Otherwise the units are tiles: patches gathered, then patches^T dy.
size_t TileAreaFloats(const ConvShape& s, int threads) {
  const int gemm_threads = GroupGemmThreads(Tiles(s), threads);
  return TaskFloats(s, AnyTile(s, [&](size_t rows) {
    return GemmScratchFloats(s.patch(), s.out_c, rows, true, false, gemm_threads);
  }));
}

size_t WeightFloats(const ConvShape& s, int threads) {
  if (FromImage(s)) {
    return GroupedFloats(s.batch * Bands(s), s.patch() * s.out_c, BandAreaFloats(s), threads);
  }
  return GroupedFloats(Tiles(s), s.patch() * s.out_c, TileAreaFloats(s, threads), threads);
}

void WeightGradient(const float* x, const float* dy, float* dw, const ConvShape& s,
                    float* scratch, ThreadPool& pool) {
  if (FromImage(s)) {
    WeightFromImage(x, dy, dw, s, scratch, pool);
    return;
  }
  const size_t m = s.pixels(), k = s.patch(), cout = s.out_c, tile_rows = ConvTileRows(s);
  SumInGroups(Tiles(s), k * cout, TileAreaFloats(s, pool.num_threads()), dw, scratch, pool,
              [&](float* mine, float* sum, size_t t, bool first, ThreadPool& gemm_pool) {
                const size_t r0 = t * tile_rows, rows = std::min(tile_rows, m - r0);
                GatherPatches(x, s, r0, rows, mine);
                Gemm(mine, k, true, dy + r0 * cout, cout, false, sum, cout, k, cout, rows,
                     /*accumulate=*/!first, mine + Lines(tile_rows * k), gemm_pool);
              });
}

// With stride 1, the input gradient is a forward convolution of dy with the
// kernel turned half a turn and its channels swapped, padded K - 1 - pad
// on top and left: tiles that write disjoint rows of dx, threaded as the
// forward pass. With a larger stride it is col2im: each tile's patch
// gradients dy w^T added into dx in tile and row order, in order.
bool InputByForward(const ConvShape& s) { return s.stride_h == 1 && s.stride_w == 1; }

ConvShape Transposed(const ConvShape& s) {
  ConvShape t = s;
  t.in_h = s.out_h;
  t.in_w = s.out_w;
  t.in_c = s.out_c;
  t.out_h = s.in_h;
  t.out_w = s.in_w;
  t.out_c = s.in_c;
  t.pad_top = s.kernel_h - 1 - s.pad_top;
  t.pad_left = s.kernel_w - 1 - s.pad_left;
  return t;
}

size_t InputFloats(const ConvShape& s, int threads) {
  if (InputByForward(s)) return Lines(s.patch() * s.out_c) + ForwardFloats(Transposed(s), threads);
  return TaskFloats(s, AnyTile(s, [&](size_t rows) {
    return GemmScratchFloats(rows, s.patch(), s.out_c, false, true, threads);
  }));
}

void InputGradient(const float* w, const float* dy, float* dx, const ConvShape& s,
                   float* scratch, ThreadPool& pool) {
  const size_t k = s.patch(), cin = s.in_c, cout = s.out_c;
  if (InputByForward(s)) {
    // turned[kh, kw, co, ci] = w[KH-1-kh, KW-1-kw, ci, co]
    float* turned = scratch;
    for (size_t kh = 0; kh < s.kernel_h; ++kh) {
      for (size_t kw = 0; kw < s.kernel_w; ++kw) {
        const float* from = w + ((s.kernel_h - 1 - kh) * s.kernel_w + (s.kernel_w - 1 - kw)) * cin * cout;
        float* to = turned + (kh * s.kernel_w + kw) * cout * cin;
        for (size_t ci = 0; ci < cin; ++ci) {
          for (size_t co = 0; co < cout; ++co) to[co * cin + ci] = from[ci * cout + co];
        }
      }
    }
    Forward(dy, turned, dx, Transposed(s), scratch + Lines(k * cout), pool, GemmEpilogue());
    return;
  }
  const size_t m = s.pixels(), tile_rows = ConvTileRows(s);
  std::memset(dx, 0, s.batch * s.in_h * s.in_w * cin * sizeof(float));
  for (size_t r0 = 0; r0 < m; r0 += tile_rows) {
    const size_t rows = std::min(tile_rows, m - r0);
    Gemm(dy + r0 * cout, cout, false, w, cout, true, scratch, k, rows, k, cout, false,
         scratch + Lines(tile_rows * k), pool);
    ScatterPatches(scratch, s, r0, rows, dx);
  }
}

// Few input channels: the direct kernels of simd/spatial.h for the weight
// gradient, and for the forward pass with a stride (with stride 1 the bands
// are faster: 3x3 1->16 at 28x28, AMD EPYC AVX3, 114 -> 81 us, where the
// direct kernel's pixels at the edges go one at a time); the input
// gradient, rarely wanted of a first layer, stays the GEMM's.
bool Narrow(const ConvShape& s) { return s.in_c <= 4; }

}  // namespace

size_t ConvForwardScratchFloats(const ConvShape& s, int threads) {
  if (s.pointwise()) return GemmScratchFloats(s.pixels(), s.out_c, s.in_c, false, false, threads);
  if (Narrow(s) && !FromImage(s)) return 0;
  return ForwardFloats(s, threads);
}

void ConvForward(const float* x, const float* w, float* y, const ConvShape& s, float* scratch,
                 ThreadPool& pool, const GemmEpilogue& epilogue) {
  if (s.pointwise()) {
    Gemm(x, s.in_c, false, w, s.out_c, false, y, s.out_c, s.pixels(), s.out_c, s.in_c,
         /*accumulate=*/false, scratch, pool, epilogue);
    return;
  }
  if (Narrow(s) && !FromImage(s)) {
    DirectConvForward(x, w, y, s, pool, epilogue);
    return;
  }
  Forward(x, w, y, s, scratch, pool, epilogue);
}

size_t ConvBackwardScratchFloats(const ConvShape& s, bool input_gradient, bool weight_gradient,
                                 int threads) {
  const size_t k = s.patch(), cout = s.out_c;
  size_t floats = 0;
  if (s.pointwise()) {
    if (weight_gradient) floats = GemmScratchFloats(k, cout, s.pixels(), true, false, threads);
    if (input_gradient) {
      floats = std::max(floats, GemmScratchFloats(s.pixels(), k, cout, false, true, threads));
    }
    return floats;
  }
  // The two run one after the other and share the scratch.
  if (weight_gradient) {
    floats = Narrow(s) ? DirectConvWeightScratchFloats(s) : WeightFloats(s, threads);
  }
  if (input_gradient) floats = std::max(floats, InputFloats(s, threads));
  return floats;
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
  if (dw != nullptr) {
    if (Narrow(s)) {
      DirectConvWeightGradient(x, dy, dw, s, scratch, pool);
    } else {
      WeightGradient(x, dy, dw, s, scratch, pool);
    }
  }
  if (dx != nullptr) InputGradient(w, dy, dx, s, scratch, pool);
}

}  // namespace simd
}  // namespace thaw
